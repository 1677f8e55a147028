//! Shared test helpers and the store conformance suite. Every store crate runs the identical cases
//! with `store_conformance_tests!(make_store)`, where `make_store` is an async fn returning a fresh
//! `(Arc<dyn Store>, guard)` (the guard keeps e.g. a temporary directory alive for the test).

mod account_management_cases;
mod alerting_cases;
pub mod builders;
pub mod cases;
pub mod location_cases;
pub mod parity;
mod personal_data_cases;
mod retention_cases;
mod single_sign_on_cases;
mod unfamiliar_ip_cases;
mod viewer_session_cases;
mod volume_quota_cases;

pub use builders::{EventBuilder, clause, first_page_seqs, negated, patterns, query};

/// Expands to one `#[tokio::test]` per conformance case, each with a fresh store from
/// `$make_store().await`. The crate using it needs `tokio` (with `macros`) as a dev-dependency.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make_store:path) => {
        $crate::__conformance_cases!(
            $make_store;
            creating_an_account_lists_it_with_no_events,
            // Account management (issue 16, account_management_cases.rs).
            account_settings_are_kept_changed_and_paged_by_name,
            admin_keys_keep_their_scope_for_an_account_and_for_the_platform,
            // Viewer sessions of the embedded view (issue 15, viewer_session_cases.rs).
            a_viewer_ticket_opens_once_before_its_deadline_and_the_session_is_found_by_its_token,
            a_viewer_ticket_opened_by_two_callers_at_once_opens_one_session,
            an_ended_viewer_session_neither_opens_nor_reads_after_its_end,
            an_accounts_embed_look_is_kept_replaced_and_removed,
            // Single sign-on (issue 15, single_sign_on_cases.rs).
            single_sign_on_settings_are_kept_replaced_and_removed_per_account,
            a_sign_in_attempt_is_taken_once_and_never_after_it_expires,
            of_two_answers_naming_one_state_only_one_takes_it,
            // Retention and legal hold (issue 18, retention_cases.rs).
            retention_periods_and_legal_holds_are_kept_per_account,
            a_pruned_prefix_keeps_every_proof_of_the_rest_of_the_log,
            pruning_a_prefix_while_batches_are_appended_fails_no_append,
            a_held_account_is_never_pruned,
            // Personal data by age and on request (issue 18, personal_data_cases.rs).
            personal_data_settings_are_kept_per_account,
            aging_removes_personal_fields_below_a_seq_and_every_event_still_verifies,
            erasure_removes_one_persons_personal_data_and_is_recorded,
            a_held_account_is_never_aged_or_erased,
            // The parity of the three query engines (issue 14, parity.rs).
            query_engines_agree_on_generated_events_and_queries,
            // Unfamiliar IPs and known networks (issue 6, unfamiliar_ip_cases.rs).
            an_actors_first_address_is_never_new_and_later_new_addresses_are,
            history_is_per_account_and_per_actor,
            a_replay_returns_the_original_and_keeps_its_flags,
            the_same_new_address_twice_in_one_group_is_new_once,
            only_successful_activity_makes_an_address_familiar,
            a_country_is_new_only_after_a_located_success_elsewhere,
            // Where each address is (issue 19, location_cases.rs).
            an_events_location_is_kept_outside_its_leaf_and_found_by_country_asn_and_city,
            the_backfill_locates_only_events_without_a_place_in_resumable_batches,
            known_networks_are_saved_replaced_deleted_and_matched_by_name,
            one_network_saved_by_several_callers_at_once_is_replaced_in_turn,
            actor_addresses_list_first_and_last_seen_newest_first,
            creating_an_existing_account_fails,
            api_keys_are_created_listed_found_by_hash_and_revoked,
            key_use_is_recorded_forward_only_and_shown_with_the_key,
            a_key_for_an_unknown_account_is_refused,
            append_assigns_dense_seq_per_account_under_concurrent_appenders,
            a_duplicate_key_returns_the_original_receipt,
            every_proof_of_the_account_tree_verifies_against_the_receipts,
            the_same_key_with_different_content_is_reported_as_reused,
            the_same_key_twice_in_one_batch_stores_the_event_once,
            a_batch_interleaving_accounts_is_answered_in_the_order_sent_and_stored_in_it_per_account,
            an_unknown_account_is_created_by_its_first_event,
            query_returns_newest_first_with_ties_broken_by_seq,
            actor_matches_exact_ids_prefixes_and_alternatives,
            action_matches_exact_prefix_and_alternatives,
            negated_qualifiers_keep_events_without_the_field,
            outcome_target_and_flag_qualifiers_filter_events,
            ip_matches_addresses_and_ipv4_and_ipv6_blocks,
            created_ranges_include_the_start_and_exclude_the_end,
            the_timeline_counts_the_page_querys_events_per_hour_and_day,
            the_timeline_of_a_whole_log_or_a_created_range_counts_exactly_what_is_stored,
            words_and_phrases_search_the_message,
            hostile_full_text_syntax_is_searched_as_literal_text,
            pagination_returns_every_event_exactly_once_in_order,
            another_account_never_sees_events_through_any_read,
            get_event_finds_by_id_and_returns_none_for_an_unknown_id,
            export_streams_every_matching_event_in_order,
            bodies_come_back_byte_identical_to_what_was_sent,
            next_seq_and_events_since_follow_the_accounts_seq,
            backup_writes_a_copy_and_refuses_an_existing_destination,
            shutdown_finishes_accepted_writes_and_refuses_new_ones,
            users_are_created_found_changed_and_removed_with_their_sessions,
            sessions_are_found_touched_listed_and_revoked,
            an_invitation_is_accepted_once_with_what_it_was_created_with,
            an_invitation_accepted_by_two_callers_at_once_admits_only_one,
            an_expired_invitation_is_refused_from_its_expiry_on,
            an_invitation_to_an_unknown_account_is_refused,
            account_limit_overrides_are_stored_replaced_cleared_and_refused_for_unknown_accounts,
            // Stored-volume quotas (issue 7, volume_quota_cases.rs).
            events_per_day_quota_refuses_a_whole_batch_over_it_and_allows_the_next_day,
            stored_bytes_quota_counts_every_stored_event_and_refuses_the_batch_that_would_pass_it,
            concurrent_batches_never_take_an_account_past_its_daily_quota,
            destinations_and_rules_are_kept_per_account_and_never_cross_accounts,
            a_cursor_moves_with_its_deliveries_only_from_the_position_it_was_read_at,
            a_due_delivery_is_claimed_by_one_caller_until_its_lease_ends,
            failed_deliveries_wait_for_their_retry_then_go_dead_and_can_be_retried,
            a_destinations_lane_claims_its_own_deliveries_lowest_seq_first_and_gets_released_ones_back,
            tls_and_relp_destinations_keep_their_kind_address_and_trusted_ca,
            attention_progress_is_saved_only_from_the_position_it_was_read_at,
            attention_progress_saved_by_several_workers_at_once_is_saved_by_exactly_one,
            attention_findings_are_stored_once_listed_newest_first_and_kept_per_account,
            a_dismissal_records_who_and_when_once_and_hides_the_finding_by_default,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($make_store:path; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _guard) = $make_store().await;
                $crate::cases::$case(store).await;
            }
        )*
    };
}
