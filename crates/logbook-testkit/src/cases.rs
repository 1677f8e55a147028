//! The store conformance cases. Each takes a fresh, empty store and panics on a violation of the
//! `Store` contract; `store_conformance_tests!` turns each into a test of the store crate.

pub use crate::parity::query_engines_agree_on_generated_events_and_queries;
pub use crate::personal_data_cases::*;
pub use crate::retention_cases::{
    a_held_account_is_never_pruned, a_pruned_prefix_keeps_every_proof_of_the_rest_of_the_log,
    prune_below, prune_forty_events_with_two_targets_each_below_25,
    pruning_a_prefix_while_batches_are_appended_fails_no_append,
    retention_periods_and_legal_holds_are_kept_per_account,
};
use std::sync::Arc;

use futures::StreamExt;
use ipnet::IpNet;
use logbook_core::api_key::{KeyOwner, Scopes};
use logbook_core::event::{EventRow, NewEvent, Outcome, StoredEvent};
use logbook_core::people::{InvitationRecord, NewUser, Role, SessionRecord};
use logbook_core::query::{Condition, EventFlag, Query, TextSearch, TimeRange};
use logbook_core::store::{AppendOutcome, AppendReceipt, EventQuery, NewApiKey};
use logbook_core::timeline::{BucketCount, TimeBucket, count_in_memory};
use logbook_core::{AccountId, Store, StoreError};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::builders::{EventBuilder, RECEIVED_AT, clause, negated, patterns, query};

// Alert rules, destinations and the delivery outbox (issue 6) live in their own file.
pub use crate::account_management_cases::*;
pub use crate::alerting_cases::*;
// Unfamiliar IPs and known networks (issue 6) live in their own file too.
pub use crate::location_cases::{
    an_events_location_is_kept_outside_its_leaf_and_found_by_country_asn_and_city,
    the_backfill_locates_only_events_without_a_place_in_resumable_batches,
};
pub use crate::single_sign_on_cases::*;
pub use crate::unfamiliar_ip_cases::*;
// Viewer sessions and the embedded view's look (issue 15).
pub use crate::viewer_session_cases::*;
// Stored-volume quotas (issue 7) too.
pub use crate::volume_quota_cases::*;

fn account(name: &str) -> AccountId {
    AccountId::parse(name).expect("a valid test account name")
}

async fn append(store: &Arc<dyn Store>, events: Vec<NewEvent>) -> Vec<AppendOutcome> {
    store.append_events(events).await.expect("append succeeds")
}

fn stored(outcome: &AppendOutcome) -> &AppendReceipt {
    match outcome {
        AppendOutcome::Stored(receipt) => receipt,
        other => panic!("expected a stored event, got {other:?}"),
    }
}

/// Every event of `account` matching `query`, paging through with limit 1000.
pub(crate) async fn search(
    store: &Arc<dyn Store>,
    account_name: &str,
    query: Query,
) -> Vec<EventRow> {
    let mut found = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .query_events(
                &account(account_name),
                &EventQuery {
                    query: query.clone(),
                    limit: 1000,
                    after,
                },
            )
            .await
            .expect("query succeeds");
        found.extend(page.events);
        match page.next {
            Some(next) => after = Some(next),
            None => return found,
        }
    }
}

fn decoded(row: &EventRow) -> StoredEvent {
    row.decode().expect("a stored body decodes")
}

fn messages(rows: &[EventRow]) -> Vec<String> {
    rows.iter().map(|row| decoded(row).message).collect()
}

/// Messages matching the query, sorted, for tests that check the set rather than the order.
async fn matching_messages(
    store: &Arc<dyn Store>,
    account_name: &str,
    query: Query,
) -> Vec<String> {
    let mut found = messages(&search(store, account_name, query).await);
    found.sort();
    found
}

fn sorted(messages: &[&str]) -> Vec<String> {
    let mut expected: Vec<String> = messages
        .iter()
        .map(|message| (*message).to_owned())
        .collect();
    expected.sort();
    expected
}

fn api_key(key_id: &str, hash_byte: u8, owner: KeyOwner) -> NewApiKey {
    NewApiKey {
        key_id: key_id.into(),
        key_hash: [hash_byte; 32],
        owner,
        scopes: Scopes {
            ingest: true,
            read: false,
            admin: false,
        },
        display_prefix: "lbk_abcdef".into(),
        description: Some("deploy bot".into()),
        created_at: RECEIVED_AT,
    }
}

fn text_word(word: &str) -> Condition {
    Condition::Text(TextSearch::Word(word.into()))
}

fn text_phrase(phrase: &str) -> Condition {
    Condition::Text(TextSearch::Phrase(phrase.into()))
}

pub(crate) fn ip_networks(text: &str) -> Condition {
    Condition::Ip(
        text.split(',')
            .map(|part| {
                part.parse::<IpNet>()
                    .or_else(|_| part.parse::<std::net::IpAddr>().map(IpNet::from))
                    .expect("a valid test network")
            })
            .collect(),
    )
}

pub async fn creating_an_account_lists_it_with_no_events(store: Arc<dyn Store>) {
    let record = store
        .create_account(&account("acme"), RECEIVED_AT)
        .await
        .unwrap();
    assert_eq!(record.account, account("acme"));
    assert_eq!(record.event_count, 0);
    store
        .create_account(&account("globex"), RECEIVED_AT)
        .await
        .unwrap();
    append(
        &store,
        vec![
            EventBuilder::new("globex").build(),
            EventBuilder::new("globex").build(),
        ],
    )
    .await;
    let listed = store.list_accounts().await.unwrap();
    let summary: Vec<(String, u64)> = listed
        .iter()
        .map(|record| (record.account.to_string(), record.event_count))
        .collect();
    assert_eq!(
        summary,
        vec![("acme".to_owned(), 0), ("globex".to_owned(), 2)]
    );
    assert_eq!(listed[0].created_at, RECEIVED_AT);
}

pub async fn creating_an_existing_account_fails(store: Arc<dyn Store>) {
    store
        .create_account(&account("acme"), RECEIVED_AT)
        .await
        .unwrap();
    let second = store.create_account(&account("acme"), RECEIVED_AT).await;
    assert!(
        matches!(second, Err(StoreError::AccountAlreadyExists(ref name)) if name == &account("acme")),
        "{second:?}"
    );
    assert_eq!(store.list_accounts().await.unwrap().len(), 1);
}

pub async fn api_keys_are_created_listed_found_by_hash_and_revoked(store: Arc<dyn Store>) {
    store
        .create_account(&account("acme"), RECEIVED_AT)
        .await
        .unwrap();
    store
        .create_account(&account("globex"), RECEIVED_AT)
        .await
        .unwrap();
    let created = store
        .create_api_key(api_key("key_acme", 1, KeyOwner::Account(account("acme"))))
        .await
        .unwrap();
    assert!(created.is_active());
    assert_eq!(created.description.as_deref(), Some("deploy bot"));
    store
        .create_api_key(api_key(
            "key_globex",
            2,
            KeyOwner::Account(account("globex")),
        ))
        .await
        .unwrap();
    store
        .create_api_key(api_key("key_platform", 3, KeyOwner::Platform))
        .await
        .unwrap();

    let acme_keys = store.list_api_keys(Some(&account("acme"))).await.unwrap();
    assert_eq!(
        acme_keys
            .iter()
            .map(|key| key.key_id.as_str())
            .collect::<Vec<_>>(),
        vec!["key_acme"]
    );
    let mut every_key: Vec<String> = store
        .list_api_keys(None)
        .await
        .unwrap()
        .into_iter()
        .map(|key| key.key_id.into_string())
        .collect();
    every_key.sort();
    assert_eq!(every_key, vec!["key_acme", "key_globex", "key_platform"]);

    let found = store
        .find_api_key_by_hash(&[1; 32])
        .await
        .unwrap()
        .expect("the key is found by its hash");
    assert_eq!(found, created);
    assert_eq!(
        found.scopes,
        Scopes {
            ingest: true,
            read: false,
            admin: false,
        }
    );
    let platform = store.find_api_key_by_hash(&[3; 32]).await.unwrap().unwrap();
    assert_eq!(platform.owner, KeyOwner::Platform);
    assert!(
        store
            .find_api_key_by_hash(&[9; 32])
            .await
            .unwrap()
            .is_none()
    );

    let revoked_at = RECEIVED_AT + Duration::hours(1);
    let revoked = store
        .revoke_api_key(&"key_acme".into(), revoked_at)
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(revoked_at));
    assert!(!revoked.is_active());
    let found_after = store
        .find_api_key_by_hash(&[1; 32])
        .await
        .unwrap()
        .expect("a revoked key is still found");
    assert!(!found_after.is_active());
    assert!(matches!(
        store
            .revoke_api_key(&"key_missing".into(), revoked_at)
            .await,
        Err(StoreError::ApiKeyNotFound(_))
    ));
}

pub async fn a_key_for_an_unknown_account_is_refused(store: Arc<dyn Store>) {
    let refused = store
        .create_api_key(api_key("key_ghost", 4, KeyOwner::Account(account("ghost"))))
        .await;
    assert!(
        matches!(refused, Err(StoreError::AccountNotFound(_))),
        "{refused:?}"
    );
    assert!(store.list_api_keys(None).await.unwrap().is_empty());
}

pub async fn append_assigns_dense_seq_per_account_under_concurrent_appenders(
    store: Arc<dyn Store>,
) {
    let mut tasks = Vec::new();
    for task_number in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let account_name = format!("tenant-{}", task_number % 4);
            let mut seqs = Vec::new();
            for _ in 0..10 {
                let batch: Vec<NewEvent> = (0..3)
                    .map(|_| EventBuilder::new(&account_name).build())
                    .collect();
                for outcome in store.append_events(batch).await.unwrap() {
                    seqs.push(stored(&outcome).seq);
                }
            }
            (account_name, seqs)
        }));
    }
    let mut seqs_by_account: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for task in tasks {
        let (account_name, seqs) = task.await.unwrap();
        seqs_by_account
            .entry(account_name)
            .or_default()
            .extend(seqs);
    }
    assert_eq!(seqs_by_account.len(), 4);
    for (account_name, mut seqs) in seqs_by_account {
        seqs.sort_unstable();
        assert_eq!(
            seqs,
            (0..150).collect::<Vec<u64>>(),
            "seq of {account_name} is dense from 0"
        );
        assert_eq!(store.next_seq(&account(&account_name)).await.unwrap(), 150);
    }
}

pub async fn a_duplicate_key_returns_the_original_receipt(store: Arc<dyn Store>) {
    let original = EventBuilder::new("acme")
        .key("order-17")
        .message("Order 17 paid")
        .build();
    let first = append(&store, vec![original.clone()]).await;
    let original_receipt = stored(&first[0]).clone();
    let mut retry = original.clone();
    retry.id = "01900000-0000-7000-8000-ffffffffffff".into();
    retry.received_at = RECEIVED_AT + Duration::minutes(5);
    retry.created_at = retry.received_at;
    let second = append(&store, vec![retry, EventBuilder::new("acme").build()]).await;
    assert_eq!(
        second[0],
        AppendOutcome::Duplicate(original_receipt.clone())
    );
    assert_eq!(original_receipt.id, original.id);
    assert_eq!(original_receipt.received_at, original.received_at);
    assert_eq!(stored(&second[1]).seq, 1, "a duplicate takes no seq");
    assert_eq!(search(&store, "acme", Query::default()).await.len(), 2);
    // The same key in another account is another event.
    let other = append(
        &store,
        vec![EventBuilder::new("globex").key("order-17").build()],
    )
    .await;
    assert_eq!(stored(&other[0]).seq, 0);
}

pub async fn the_same_key_with_different_content_is_reported_as_reused(store: Arc<dyn Store>) {
    let first = append(
        &store,
        vec![
            EventBuilder::new("acme")
                .key("k-1")
                .message("first")
                .build(),
        ],
    )
    .await;
    let original = stored(&first[0]).clone();
    let second = append(
        &store,
        vec![
            EventBuilder::new("acme")
                .key("k-1")
                .message("different")
                .build(),
        ],
    )
    .await;
    assert_eq!(
        second[0],
        AppendOutcome::KeyReusedWithDifferentContent { original }
    );
    assert_eq!(
        messages(&search(&store, "acme", Query::default()).await),
        vec!["first"]
    );
}

pub async fn the_same_key_twice_in_one_batch_stores_the_event_once(store: Arc<dyn Store>) {
    let event = EventBuilder::new("acme").key("k-1").message("once").build();
    let mut again = event.clone();
    again.id = "01900000-0000-7000-8000-eeeeeeeeeeee".into();
    let changed = EventBuilder::new("acme")
        .key("k-1")
        .message("changed")
        .build();
    let outcomes = append(&store, vec![event, again, changed]).await;
    let original = stored(&outcomes[0]).clone();
    assert_eq!(outcomes[1], AppendOutcome::Duplicate(original.clone()));
    assert_eq!(
        outcomes[2],
        AppendOutcome::KeyReusedWithDifferentContent { original }
    );
    assert_eq!(
        messages(&search(&store, "acme", Query::default()).await),
        vec!["once"]
    );
}

pub async fn a_batch_interleaving_accounts_is_answered_in_the_order_sent_and_stored_in_it_per_account(
    store: Arc<dyn Store>,
) {
    let event = |account_name: &str, message: &str| {
        EventBuilder::new(account_name)
            .key(&format!("key-{message}"))
            .message(message)
            .build()
    };
    let batch = vec![
        event("acme", "acme first"),
        event("globex", "globex first"),
        event("acme", "acme second"),
        event("initech", "initech first"),
        event("globex", "globex second"),
        event("acme", "acme first"),
        event("acme", "acme third"),
    ];
    let outcomes = append(&store, batch).await;
    let seqs: Vec<Option<u64>> = outcomes
        .iter()
        .map(|outcome| match outcome {
            AppendOutcome::Stored(receipt) => Some(receipt.seq),
            _ => None,
        })
        .collect();
    assert_eq!(
        seqs,
        vec![Some(0), Some(0), Some(1), Some(0), Some(1), None, Some(2)],
        "receipts in the order sent, each account's seqs in its events' order"
    );
    assert_eq!(
        outcomes[5],
        AppendOutcome::Duplicate(stored(&outcomes[0]).clone())
    );
    assert_eq!(
        messages(&search(&store, "acme", Query::default()).await),
        vec!["acme third", "acme second", "acme first"]
    );
    assert_eq!(
        messages(&search(&store, "globex", Query::default()).await),
        vec!["globex second", "globex first"]
    );
}

pub async fn an_unknown_account_is_created_by_its_first_event(store: Arc<dyn Store>) {
    let outcomes = append(&store, vec![EventBuilder::new("newcomer").build()]).await;
    assert_eq!(stored(&outcomes[0]).seq, 0);
    let accounts = store.list_accounts().await.unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0].account, account("newcomer"));
    assert_eq!(accounts[0].event_count, 1);
    // Creating it explicitly afterwards reports that it exists.
    assert!(matches!(
        store
            .create_account(&account("newcomer"), RECEIVED_AT)
            .await,
        Err(StoreError::AccountAlreadyExists(_))
    ));
}

pub async fn query_returns_newest_first_with_ties_broken_by_seq(store: Arc<dyn Store>) {
    let noon = datetime!(2024-06-01 12:00 UTC);
    append(
        &store,
        vec![
            EventBuilder::new("acme")
                .created_at(noon)
                .message("tie first")
                .build(),
            EventBuilder::new("acme")
                .created_at(noon + Duration::hours(1))
                .message("newest")
                .build(),
            EventBuilder::new("acme")
                .created_at(noon - Duration::hours(1))
                .message("oldest")
                .build(),
            EventBuilder::new("acme")
                .created_at(noon)
                .message("tie second")
                .build(),
        ],
    )
    .await;
    let rows = search(&store, "acme", Query::default()).await;
    assert_eq!(
        messages(&rows),
        vec!["newest", "tie second", "tie first", "oldest"]
    );
    assert_eq!(
        rows.iter().map(|row| row.seq).collect::<Vec<_>>(),
        vec![1, 3, 0, 2]
    );
    assert_eq!(
        rows[0].created_at_micros,
        logbook_core::event::unix_micros(noon + Duration::hours(1))
    );
}

async fn append_people(store: &Arc<dyn Store>) {
    append(
        store,
        vec![
            EventBuilder::new("acme")
                .actor("alice@acme.com")
                .action("user.login")
                .message("alice login")
                .build(),
            EventBuilder::new("acme")
                .actor("alan@acme.com")
                .action("server.reboot")
                .message("alan reboot")
                .build(),
            EventBuilder::new("acme")
                .actor("bob@acme.com")
                .action("server.create")
                .message("bob create")
                .build(),
            EventBuilder::new("acme")
                .action("system.backup")
                .message("no actor")
                .build(),
            EventBuilder::new("acme")
                .actor("al")
                .action("serverless.deploy")
                .message("al deploy")
                .build(),
        ],
    )
    .await;
}

pub async fn actor_matches_exact_ids_prefixes_and_alternatives(store: Arc<dyn Store>) {
    append_people(&store).await;
    let actor = |text: &str| query(vec![clause(Condition::Actor(patterns(text)))]);
    assert_eq!(
        matching_messages(&store, "acme", actor("alice@acme.com")).await,
        sorted(&["alice login"])
    );
    assert_eq!(
        matching_messages(&store, "acme", actor("alice")).await,
        Vec::<String>::new(),
        "exact means exact"
    );
    assert_eq!(
        matching_messages(&store, "acme", actor("al*")).await,
        sorted(&["alice login", "alan reboot", "al deploy"])
    );
    assert_eq!(
        matching_messages(&store, "acme", actor("bob@acme.com,alan*")).await,
        sorted(&["alan reboot", "bob create"])
    );
    assert_eq!(
        matching_messages(&store, "acme", actor("*")).await.len(),
        4,
        "`*` matches every event with an actor"
    );
}

pub async fn action_matches_exact_prefix_and_alternatives(store: Arc<dyn Store>) {
    append_people(&store).await;
    let action = |text: &str| query(vec![clause(Condition::Action(patterns(text)))]);
    assert_eq!(
        matching_messages(&store, "acme", action("server.reboot")).await,
        sorted(&["alan reboot"])
    );
    assert_eq!(
        matching_messages(&store, "acme", action("server.*")).await,
        sorted(&["alan reboot", "bob create"]),
        "`server.*` does not match `serverless.deploy`"
    );
    assert_eq!(
        matching_messages(&store, "acme", action("user.login,system.*")).await,
        sorted(&["alice login", "no actor"])
    );
}

pub async fn negated_qualifiers_keep_events_without_the_field(store: Arc<dyn Store>) {
    append_people(&store).await;
    let without_alice = query(vec![negated(Condition::Actor(patterns("alice@acme.com")))]);
    assert_eq!(
        matching_messages(&store, "acme", without_alice).await,
        sorted(&["alan reboot", "bob create", "no actor", "al deploy"])
    );
    let servers_but_not_reboots = query(vec![
        clause(Condition::Action(patterns("server.*"))),
        negated(Condition::Action(patterns("server.reboot"))),
    ]);
    assert_eq!(
        matching_messages(&store, "acme", servers_but_not_reboots).await,
        sorted(&["bob create"])
    );
    let without_any_al = query(vec![negated(Condition::Actor(patterns(
        "al*,bob@acme.com",
    )))]);
    assert_eq!(
        matching_messages(&store, "acme", without_any_al).await,
        sorted(&["no actor"])
    );
}

pub async fn outcome_target_and_flag_qualifiers_filter_events(store: Arc<dyn Store>) {
    append(
        &store,
        vec![
            EventBuilder::new("acme")
                .outcome(Outcome::Success)
                .target("server", "web-1")
                .message("ok web-1")
                .build(),
            EventBuilder::new("acme")
                .outcome(Outcome::Failure)
                .target("server", "web-2")
                .target("dns_zone", "acme.com")
                .message("failed web-2")
                .build(),
            EventBuilder::new("acme")
                .target("server", "db-1")
                .message("no outcome db-1")
                .build(),
        ],
    )
    .await;
    let outcome = |outcomes: Vec<Outcome>| query(vec![clause(Condition::Outcome(outcomes))]);
    assert_eq!(
        matching_messages(&store, "acme", outcome(vec![Outcome::Failure])).await,
        sorted(&["failed web-2"])
    );
    assert_eq!(
        matching_messages(
            &store,
            "acme",
            outcome(vec![Outcome::Failure, Outcome::Success])
        )
        .await,
        sorted(&["failed web-2", "ok web-1"])
    );
    let not_failed = query(vec![negated(Condition::Outcome(vec![Outcome::Failure]))]);
    assert_eq!(
        matching_messages(&store, "acme", not_failed).await,
        sorted(&["no outcome db-1", "ok web-1"])
    );

    let target = |text: &str| query(vec![clause(Condition::Target(patterns(text)))]);
    assert_eq!(
        matching_messages(&store, "acme", target("acme.com")).await,
        sorted(&["failed web-2"])
    );
    assert_eq!(
        matching_messages(&store, "acme", target("web-*")).await,
        sorted(&["failed web-2", "ok web-1"])
    );
    assert_eq!(
        matching_messages(&store, "acme", target("db-1,web-1")).await,
        sorted(&["no outcome db-1", "ok web-1"])
    );
    let not_web = query(vec![negated(Condition::Target(patterns("web-*")))]);
    assert_eq!(
        matching_messages(&store, "acme", not_web).await,
        sorted(&["no outcome db-1"])
    );

    // None of these events has an actor and an IP, so none is new-IP and the negation is all.
    let new_ip = query(vec![clause(Condition::Is(vec![EventFlag::NewIp]))]);
    assert!(search(&store, "acme", new_ip).await.is_empty());
    let not_new_ip = query(vec![negated(Condition::Is(vec![EventFlag::NewIp]))]);
    assert_eq!(search(&store, "acme", not_new_ip).await.len(), 3);
}

pub async fn ip_matches_addresses_and_ipv4_and_ipv6_blocks(store: Arc<dyn Store>) {
    append(
        &store,
        vec![
            EventBuilder::new("acme")
                .ip("203.0.113.9")
                .message("v4 inside")
                .build(),
            EventBuilder::new("acme")
                .ip("203.0.113.255")
                .message("v4 edge")
                .build(),
            EventBuilder::new("acme")
                .ip("203.0.114.1")
                .message("v4 outside")
                .build(),
            EventBuilder::new("acme")
                .ip("2001:db8::1")
                .message("v6 inside")
                .build(),
            EventBuilder::new("acme")
                .ip("2001:db9::1")
                .message("v6 outside")
                .build(),
            EventBuilder::new("acme").message("no ip").build(),
        ],
    )
    .await;
    let ip = |text: &str| query(vec![clause(ip_networks(text))]);
    assert_eq!(
        matching_messages(&store, "acme", ip("203.0.113.9")).await,
        sorted(&["v4 inside"])
    );
    assert_eq!(
        matching_messages(&store, "acme", ip("203.0.113.0/24")).await,
        sorted(&["v4 edge", "v4 inside"])
    );
    assert_eq!(
        matching_messages(&store, "acme", ip("2001:db8::/32")).await,
        sorted(&["v6 inside"])
    );
    assert_eq!(
        matching_messages(&store, "acme", ip("2001:db8::1")).await,
        sorted(&["v6 inside"])
    );
    assert_eq!(
        matching_messages(&store, "acme", ip("203.0.114.0/24,2001:db9::/32")).await,
        sorted(&["v4 outside", "v6 outside"])
    );
    assert_eq!(
        matching_messages(&store, "acme", ip("0.0.0.0/0"))
            .await
            .len(),
        3,
        "IPv4 blocks never match IPv6"
    );
    assert_eq!(
        matching_messages(&store, "acme", ip("::/0")).await,
        sorted(&["v6 inside", "v6 outside"]),
        "IPv6 blocks never match IPv4, though IPv4 is stored inside ::ffff:0:0/96"
    );
    let outside = query(vec![negated(ip_networks("203.0.113.0/24"))]);
    assert_eq!(
        matching_messages(&store, "acme", outside).await,
        sorted(&["no ip", "v4 outside", "v6 inside", "v6 outside"])
    );
}

pub async fn created_ranges_include_the_start_and_exclude_the_end(store: Arc<dyn Store>) {
    let start = datetime!(2024-06-01 00:00 UTC);
    append(
        &store,
        vec![
            EventBuilder::new("acme")
                .created_at(start - Duration::microseconds(1))
                .message("before")
                .build(),
            EventBuilder::new("acme")
                .created_at(start)
                .message("at start")
                .build(),
            EventBuilder::new("acme")
                .created_at(start + Duration::hours(12))
                .message("middle")
                .build(),
            EventBuilder::new("acme")
                .created_at(start + Duration::days(1))
                .message("at end")
                .build(),
        ],
    )
    .await;
    let range = |start_inclusive: Option<OffsetDateTime>, end_exclusive: Option<OffsetDateTime>| {
        query(vec![clause(Condition::Created(TimeRange {
            start_inclusive,
            end_exclusive,
        }))])
    };
    let day = range(Some(start), Some(start + Duration::days(1)));
    assert_eq!(
        matching_messages(&store, "acme", day).await,
        sorted(&["at start", "middle"])
    );
    assert_eq!(
        matching_messages(&store, "acme", range(Some(start), None)).await,
        sorted(&["at end", "at start", "middle"])
    );
    assert_eq!(
        matching_messages(&store, "acme", range(None, Some(start))).await,
        sorted(&["before"])
    );
    let outside_day = query(vec![negated(Condition::Created(TimeRange {
        start_inclusive: Some(start),
        end_exclusive: Some(start + Duration::days(1)),
    }))]);
    assert_eq!(
        matching_messages(&store, "acme", outside_day).await,
        sorted(&["at end", "before"])
    );
}

/// The timeline (issue 21): events per hour or day for one account, equal to what the page query
/// returns, with each bucket holding its first microsecond and not the next bucket's.
pub async fn the_timeline_counts_the_page_querys_events_per_hour_and_day(store: Arc<dyn Store>) {
    let day = datetime!(2024-06-01 00:00 UTC);
    let at = |offset: Duration, message: &str, actor: &str| {
        EventBuilder::new("acme")
            .created_at(day + offset)
            .message(message)
            .actor(actor)
            .build()
    };
    append(
        &store,
        vec![
            at(
                -Duration::microseconds(1),
                "last of the day before",
                "alice",
            ),
            at(Duration::ZERO, "first of the day", "alice"),
            at(Duration::minutes(59), "deploy started", "bob"),
            at(
                Duration::hours(1) - Duration::microseconds(1),
                "deploy finished",
                "alice",
            ),
            at(Duration::hours(1), "first of the second hour", "alice"),
            at(Duration::hours(23), "late deploy", "alice"),
            at(Duration::days(1), "first of the next day", "alice"),
            // Another account's events never count.
            EventBuilder::new("other")
                .created_at(day)
                .message("deploy elsewhere")
                .actor("alice")
                .build(),
        ],
    )
    .await;
    let acme = account("acme");
    let micros = |instant: OffsetDateTime| logbook_core::event::unix_micros(instant);
    let counted = |query: Query, bucket: TimeBucket| {
        let store = store.clone();
        let acme = acme.clone();
        async move {
            store
                .count_events_over_time(&acme, &query, bucket)
                .await
                .expect("the timeline is counted")
        }
    };
    let hours = counted(Query::default(), TimeBucket::Hour).await;
    let bucket = |start: OffsetDateTime, events: u64| BucketCount {
        start_micros: micros(start),
        events,
    };
    assert_eq!(
        hours,
        vec![
            bucket(day - Duration::hours(1), 1),
            bucket(day, 3),
            bucket(day + Duration::hours(1), 1),
            bucket(day + Duration::hours(23), 1),
            bucket(day + Duration::days(1), 1),
        ]
    );
    assert_eq!(
        counted(Query::default(), TimeBucket::Day).await,
        vec![
            bucket(day - Duration::days(1), 1),
            bucket(day, 5),
            bucket(day + Duration::days(1), 1),
        ]
    );
    // Every kind of condition narrows the count exactly as it narrows the page.
    for query in [
        query(vec![clause(Condition::Actor(patterns("alice")))]),
        query(vec![clause(text_word("deploy"))]),
        query(vec![negated(text_word("deploy"))]),
        query(vec![
            clause(text_word("deploy")),
            negated(Condition::Actor(patterns("bob"))),
        ]),
        query(vec![clause(Condition::Created(TimeRange {
            start_inclusive: Some(day),
            end_exclusive: Some(day + Duration::hours(1)),
        }))]),
    ] {
        for bucket_width in [TimeBucket::Hour, TimeBucket::Day] {
            let page = search(&store, "acme", query.clone()).await;
            let expected =
                count_in_memory(page.iter().map(|row| decoded(row).created_at), bucket_width);
            assert_eq!(
                counted(query.clone(), bucket_width).await,
                expected,
                "the timeline of {query} per {bucket_width:?}"
            );
        }
    }
    // Nothing matching, an account without events and an unknown account: no buckets.
    assert!(
        counted(query(vec![clause(text_word("absent"))]), TimeBucket::Hour)
            .await
            .is_empty()
    );
    store
        .create_account(&account("empty"), RECEIVED_AT)
        .await
        .expect("the account is created");
    for name in ["empty", "unknown"] {
        assert!(
            store
                .count_events_over_time(&account(name), &Query::default(), TimeBucket::Day)
                .await
                .expect("the timeline is counted")
                .is_empty()
        );
    }
    // The other account sees only its own event.
    assert_eq!(
        store
            .count_events_over_time(&account("other"), &Query::default(), TimeBucket::Day)
            .await
            .expect("the timeline is counted"),
        vec![bucket(day, 1)]
    );
}

/// The timeline of a whole log or of `created:` ranges (issue 17: kept as counts per day by the
/// SQL stores' writers): exact at bounds inside an hour, at hour edges and across days, blind to
/// a replayed duplicate, and without the events retention deletes.
pub async fn the_timeline_of_a_whole_log_or_a_created_range_counts_exactly_what_is_stored(
    store: Arc<dyn Store>,
) {
    let day = datetime!(2024-06-01 00:00 UTC);
    let offsets = [
        -Duration::microseconds(1),
        Duration::ZERO,
        Duration::hours(10) + Duration::minutes(30) - Duration::microseconds(1),
        Duration::hours(10) + Duration::minutes(30),
        Duration::hours(10) + Duration::minutes(44),
        Duration::hours(10) + Duration::minutes(45),
        Duration::hours(11) - Duration::microseconds(1),
        Duration::hours(11),
        Duration::hours(11) + Duration::minutes(30),
        Duration::hours(13) + Duration::minutes(15),
        Duration::hours(14) + Duration::minutes(29),
        Duration::hours(14) + Duration::minutes(30),
        Duration::days(1) + Duration::seconds(1),
        Duration::days(3),
    ];
    let event = |number: usize, offset: Duration| {
        EventBuilder::new("acme")
            .id(&format!("01900000-0000-7000-9000-{number:012x}"))
            .created_at(day + offset)
            .message(&format!("event {number}"))
            .key(&format!("key-{number}"))
            .build()
    };
    let mut events: Vec<NewEvent> = offsets
        .iter()
        .enumerate()
        .map(|(number, &offset)| event(number, offset))
        .collect();
    // Two events in one hour of another account, which never count for `acme`.
    events.extend((0..2).map(|_| {
        EventBuilder::new("other")
            .created_at(day + Duration::hours(10))
            .build()
    }));
    append(&store, events).await;
    // A replay of a stored event is answered with its receipt and stores nothing.
    let replayed = append(&store, vec![event(3, offsets[3])]).await;
    assert!(
        matches!(replayed[0], AppendOutcome::Duplicate(_)),
        "the replay is a duplicate: {replayed:?}"
    );

    let acme = account("acme");
    let between = |start: Option<Duration>, end: Option<Duration>| {
        clause(Condition::Created(TimeRange {
            start_inclusive: start.map(|start| day + start),
            end_exclusive: end.map(|end| day + end),
        }))
    };
    let minutes = |hours: i64, minutes: i64| Duration::hours(hours) + Duration::minutes(minutes);
    let queries = [
        query(vec![]),
        // Within one hour, across one hour's edge, across several hours, open on either side.
        query(vec![between(Some(minutes(10, 30)), Some(minutes(10, 45)))]),
        query(vec![between(Some(minutes(10, 30)), Some(minutes(11, 30)))]),
        query(vec![between(Some(minutes(10, 30)), Some(minutes(14, 30)))]),
        query(vec![between(None, Some(minutes(14, 30)))]),
        query(vec![between(Some(minutes(10, 30)), None)]),
        // On whole hours and whole days, and two ranges that intersect.
        query(vec![between(
            Some(Duration::hours(10)),
            Some(Duration::hours(14)),
        )]),
        query(vec![between(Some(Duration::ZERO), Some(Duration::days(2)))]),
        query(vec![
            between(Some(minutes(10, 30)), None),
            between(None, Some(Duration::days(2))),
        ]),
        // A range that ends where it starts, or before.
        query(vec![between(Some(minutes(10, 30)), Some(minutes(10, 30)))]),
        query(vec![between(Some(minutes(11, 30)), Some(minutes(10, 30)))]),
    ];
    let check_every_query = |stage: &'static str| {
        let store = store.clone();
        let acme = acme.clone();
        let queries = queries.clone();
        async move {
            for query in queries {
                let page = search(&store, "acme", query.clone()).await;
                for bucket in [TimeBucket::Hour, TimeBucket::Day] {
                    assert_eq!(
                        store
                            .count_events_over_time(&acme, &query, bucket)
                            .await
                            .expect("the timeline is counted"),
                        count_in_memory(page.iter().map(|row| decoded(row).created_at), bucket),
                        "{stage}: the timeline of {query} per {bucket:?}"
                    );
                }
            }
        }
    };
    check_every_query("as stored").await;
    let whole_log = |store: Arc<dyn Store>, acme: AccountId| async move {
        store
            .count_events_over_time(&acme, &Query::default(), TimeBucket::Day)
            .await
            .expect("the timeline is counted")
            .iter()
            .map(|bucket| bucket.events)
            .sum::<u64>()
    };
    assert_eq!(whole_log(store.clone(), acme.clone()).await, 14);

    // Retention deletes the oldest events (the first five seqs, in three batches): they leave
    // every bucket, and an hour left empty is no bucket.
    prune_below(store.as_ref(), &acme, 5, 2)
        .await
        .expect("the prefix is pruned");
    assert_eq!(whole_log(store.clone(), acme.clone()).await, 9);
    check_every_query("after pruning").await;
    // Events stored after the prune count again, in their hours.
    append(
        &store,
        vec![
            event(100, -Duration::microseconds(1)),
            event(101, Duration::hours(11)),
        ],
    )
    .await;
    assert_eq!(whole_log(store.clone(), acme.clone()).await, 11);
    check_every_query("stored after pruning").await;
}

pub async fn words_and_phrases_search_the_message(store: Arc<dyn Store>) {
    append(
        &store,
        vec![
            EventBuilder::new("acme")
                .message("Rebooted server web-1 after kernel update")
                .build(),
            EventBuilder::new("acme")
                .message("Server web-2 rebooted")
                .build(),
            EventBuilder::new("acme")
                .message("Updated firewall rule for web-1")
                .build(),
            EventBuilder::new("acme").message("Café opened").build(),
            EventBuilder::new("acme")
                .message("Long-s ſtop sign")
                .build(),
        ],
    )
    .await;
    let text = |condition: Condition| query(vec![clause(condition)]);
    assert!(
        matching_messages(&store, "acme", text(text_word("stop")))
            .await
            .is_empty(),
        "a word is its lowercase letters, not a case folding that merges ſ with s"
    );
    assert_eq!(
        matching_messages(&store, "acme", text(text_word("ſtop"))).await,
        sorted(&["Long-s ſtop sign"])
    );
    assert_eq!(
        matching_messages(&store, "acme", text(text_word("SERVER"))).await,
        sorted(&[
            "Rebooted server web-1 after kernel update",
            "Server web-2 rebooted"
        ]),
        "words match case-insensitively"
    );
    assert_eq!(
        matching_messages(&store, "acme", text(text_word("web-1"))).await,
        sorted(&[
            "Rebooted server web-1 after kernel update",
            "Updated firewall rule for web-1"
        ])
    );
    assert!(
        matching_messages(&store, "acme", text(text_word("serv")))
            .await
            .is_empty(),
        "words are whole tokens"
    );
    assert_eq!(
        matching_messages(&store, "acme", text(text_phrase("server web-1"))).await,
        sorted(&["Rebooted server web-1 after kernel update"])
    );
    assert!(
        matching_messages(&store, "acme", text(text_phrase("web-1 server")))
            .await
            .is_empty(),
        "a phrase keeps its order"
    );
    let two_words = query(vec![
        clause(text_word("web-1")),
        clause(text_word("firewall")),
    ]);
    assert_eq!(
        matching_messages(&store, "acme", two_words).await,
        sorted(&["Updated firewall rule for web-1"])
    );
    let without = query(vec![
        clause(text_word("web-1")),
        negated(text_word("kernel")),
    ]);
    assert_eq!(
        matching_messages(&store, "acme", without).await,
        sorted(&["Updated firewall rule for web-1"])
    );
    assert_eq!(
        matching_messages(&store, "acme", text(text_word("café"))).await,
        sorted(&["Café opened"])
    );
}

pub async fn hostile_full_text_syntax_is_searched_as_literal_text(store: Arc<dyn Store>) {
    append(
        &store,
        vec![
            EventBuilder::new("acme")
                .message("use NEAR(a b) OR -x \"quoted\" star*")
                .build(),
            EventBuilder::new("acme").message("plain message").build(),
        ],
    )
    .await;
    for hostile in [
        "\"",
        "*",
        "NEAR(",
        "OR",
        "-",
        "\"quoted",
        "star*",
        "a\" OR \"plain",
        "-x",
        "{message}:plain",
        "^plain",
    ] {
        let result = store
            .query_events(
                &account("acme"),
                &EventQuery {
                    query: query(vec![clause(text_word(hostile))]),
                    limit: 10,
                    after: None,
                },
            )
            .await;
        let rows = result.unwrap_or_else(|error| panic!("searching {hostile:?} failed: {error}"));
        assert!(
            messages(&rows.events)
                .iter()
                .all(|message| message != "plain message")
                || hostile.contains("plain"),
            "{hostile:?} must not act as FTS syntax"
        );
    }
    let near = query(vec![clause(text_word("NEAR("))]);
    assert_eq!(
        matching_messages(&store, "acme", near).await,
        sorted(&["use NEAR(a b) OR -x \"quoted\" star*"])
    );
    let or = query(vec![clause(text_word("OR"))]);
    assert_eq!(
        matching_messages(&store, "acme", or).await.len(),
        1,
        "OR is a word, not an operator"
    );
    let injected = query(vec![clause(text_phrase("a\" OR \"plain"))]);
    assert!(
        search(&store, "acme", injected).await.is_empty(),
        "a quote cannot end the phrase early"
    );
    let punctuation_only = query(vec![clause(text_word("\"*-"))]);
    assert!(search(&store, "acme", punctuation_only).await.is_empty());
    let negated_punctuation = query(vec![negated(text_word("\"*-"))]);
    assert_eq!(search(&store, "acme", negated_punctuation).await.len(), 2);
}

pub async fn pagination_returns_every_event_exactly_once_in_order(store: Arc<dyn Store>) {
    let start = datetime!(2024-06-01 00:00 UTC);
    // Many ties on created_at, so pages must break ties by seq.
    let events: Vec<NewEvent> = (0..95)
        .map(|number| {
            EventBuilder::new("acme")
                .created_at(start + Duration::seconds(number / 4))
                .message(&format!("event {number}"))
                .build()
        })
        .collect();
    append(&store, events).await;
    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = store
            .query_events(
                &account("acme"),
                &EventQuery {
                    query: Query::default(),
                    limit: 10,
                    after,
                },
            )
            .await
            .unwrap();
        pages += 1;
        assert!(page.events.len() <= 10);
        seen.extend(
            page.events
                .iter()
                .map(|row| (row.created_at_micros, row.seq)),
        );
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 10);
    let mut expected: Vec<(i64, u64)> = seen.clone();
    expected.sort_by(|left, right| right.cmp(left));
    expected.dedup();
    assert_eq!(seen, expected, "newest first, each event once");
    assert_eq!(seen.len(), 95);

    let exactly_one_page = store
        .query_events(
            &account("acme"),
            &EventQuery {
                query: Query::default(),
                limit: 95,
                after: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(exactly_one_page.events.len(), 95);
    assert!(
        exactly_one_page.next.is_none(),
        "no next page when nothing is left"
    );
}

pub async fn another_account_never_sees_events_through_any_read(store: Arc<dyn Store>) {
    let secret = EventBuilder::new("acme")
        .actor("alice")
        .message("secret launch plan")
        .key("k")
        .build();
    let secret_id = secret.id.clone();
    append(&store, vec![secret]).await;
    store
        .create_account(&account("globex"), RECEIVED_AT)
        .await
        .unwrap();
    append(
        &store,
        vec![EventBuilder::new("globex").message("globex own").build()],
    )
    .await;

    let everything = search(&store, "globex", Query::default()).await;
    assert_eq!(messages(&everything), vec!["globex own"]);
    assert!(
        search(&store, "globex", query(vec![clause(text_word("secret"))]))
            .await
            .is_empty()
    );
    assert!(
        search(
            &store,
            "globex",
            query(vec![clause(Condition::Actor(patterns("alice")))])
        )
        .await
        .is_empty()
    );
    assert!(
        store
            .get_event(&account("globex"), &secret_id)
            .await
            .unwrap()
            .is_none()
    );
    let exported: Vec<EventRow> = store
        .export_events(&account("globex"), Query::default())
        .map(|row| row.unwrap())
        .collect()
        .await;
    assert_eq!(messages(&exported), vec!["globex own"]);
    let since = store
        .events_since(&account("globex"), 0, 100)
        .await
        .unwrap();
    assert_eq!(messages(&since), vec!["globex own"]);
    assert!(search(&store, "nobody", Query::default()).await.is_empty());
    // The same key in globex is not a duplicate of acme's.
    let outcome = append(&store, vec![EventBuilder::new("globex").key("k").build()]).await;
    assert!(matches!(outcome[0], AppendOutcome::Stored(_)));
}

pub async fn get_event_finds_by_id_and_returns_none_for_an_unknown_id(store: Arc<dyn Store>) {
    // An id with letters, so its upper-case spelling below is a different string whichever
    // number the builder would have given it.
    let event = EventBuilder::new("acme")
        .id("01900000-0000-7000-8000-00000000beef")
        .message("find me")
        .build();
    let event_id = event.id.clone();
    let custom = EventBuilder::new("acme")
        .id("custom-id-1")
        .message("custom id")
        .build();
    append(&store, vec![event, custom]).await;
    let found = store
        .get_event(&account("acme"), &event_id)
        .await
        .unwrap()
        .expect("found by id");
    assert_eq!(decoded(&found).message, "find me");
    assert_eq!(found.seq, 0);
    let custom_found = store
        .get_event(&account("acme"), &"custom-id-1".into())
        .await
        .unwrap()
        .expect("found by any id");
    assert_eq!(decoded(&custom_found).message, "custom id");
    assert!(
        store
            .get_event(
                &account("acme"),
                &"01900000-0000-7000-8000-000000000000".into()
            )
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get_event(&account("acme"), &"not-an-id".into())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get_event(&account("acme"), &event_id.as_str().to_uppercase().into())
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn export_streams_every_matching_event_in_order(store: Arc<dyn Store>) {
    let start = datetime!(2024-06-01 00:00 UTC);
    let events: Vec<NewEvent> = (0..2_500)
        .map(|number| {
            EventBuilder::new("acme")
                .created_at(start + Duration::seconds(number / 3))
                .action(if number % 2 == 0 {
                    "user.login"
                } else {
                    "server.reboot"
                })
                .message(&format!("event {number}"))
                .build()
        })
        .collect();
    append(&store, events).await;
    let logins = query(vec![clause(Condition::Action(patterns("user.login")))]);
    let exported: Vec<EventRow> = store
        .export_events(&account("acme"), logins.clone())
        .map(|row| row.unwrap())
        .collect()
        .await;
    assert_eq!(exported.len(), 1_250);
    assert_eq!(exported, search(&store, "acme", logins).await);
    let positions: Vec<(i64, u64)> = exported
        .iter()
        .map(|row| (row.created_at_micros, row.seq))
        .collect();
    assert!(
        positions.windows(2).all(|pair| pair[0] > pair[1]),
        "strictly newest first"
    );
    let everything = store
        .export_events(&account("acme"), Query::default())
        .count()
        .await;
    assert_eq!(everything, 2_500);
}

pub async fn bodies_come_back_byte_identical_to_what_was_sent(store: Arc<dyn Store>) {
    let hostile = "Emoji 🚀👩‍💻, bidi \u{202E}evil\u{202C}, quotes \"' `, <script>alert(1)</script>\nnew line\r\n\ttab \\ back";
    let event = EventBuilder::new("acme")
        .message(hostile)
        .actor("ünïcødé@acme.com")
        .ip("2001:db8::7")
        .user_agent("curl/8 <b>")
        .target("server", "web-1")
        .metadata(serde_json::json!({"nested": {"list": [1, 2.5, null, true]}, "html": "<img src=x onerror=alert(1)>"}))
        .key("key \"quoted\"")
        .build();
    let expected_body = event.body_without_seq();
    let event_id = event.id.clone();
    append(&store, vec![event]).await;
    let found = store
        .get_event(&account("acme"), &event_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.body_without_seq, expected_body);
    let queried = search(&store, "acme", Query::default()).await;
    assert_eq!(queried[0].body_without_seq, expected_body);
    let decoded = decoded(&queried[0]);
    assert_eq!(decoded.message, hostile);
    assert_eq!(decoded.ip, Some("2001:db8::7".parse().unwrap()));
    let by_text = search(&store, "acme", query(vec![clause(text_word("script"))])).await;
    assert_eq!(by_text.len(), 1);
}

pub async fn next_seq_and_events_since_follow_the_accounts_seq(store: Arc<dyn Store>) {
    assert_eq!(store.next_seq(&account("acme")).await.unwrap(), 0);
    let events: Vec<NewEvent> = (0..7)
        .map(|number| {
            EventBuilder::new("acme")
                .message(&format!("event {number}"))
                .build()
        })
        .collect();
    append(&store, events).await;
    append(&store, vec![EventBuilder::new("globex").build()]).await;
    assert_eq!(store.next_seq(&account("acme")).await.unwrap(), 7);
    assert_eq!(store.next_seq(&account("globex")).await.unwrap(), 1);
    let since = store.events_since(&account("acme"), 3, 2).await.unwrap();
    assert_eq!(
        since.iter().map(|row| row.seq).collect::<Vec<_>>(),
        vec![3, 4]
    );
    assert_eq!(messages(&since), vec!["event 3", "event 4"]);
    assert!(
        store
            .events_since(&account("acme"), 7, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn backup_writes_a_copy_and_refuses_an_existing_destination(store: Arc<dyn Store>) {
    append(&store, vec![EventBuilder::new("acme").build()]).await;
    let directory = std::env::temp_dir().join(format!(
        "logbook-backup-{}-{}",
        std::process::id(),
        EventBuilder::new("acme").build().id
    ));
    std::fs::create_dir_all(&directory).unwrap();
    let destination = directory.join("copy.db");
    store.backup(&destination).await.unwrap();
    let written = std::fs::metadata(&destination)
        .map(|metadata| metadata.len())
        .unwrap_or(0);
    assert!(written > 0, "the backup file holds data");
    assert!(
        store.backup(&destination).await.is_err(),
        "an existing file is never overwritten"
    );
    std::fs::remove_dir_all(&directory).unwrap();
}

pub async fn shutdown_finishes_accepted_writes_and_refuses_new_ones(store: Arc<dyn Store>) {
    let mut writers = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            store
                .append_events(vec![EventBuilder::new("acme").build()])
                .await
        }));
    }
    let mut acknowledged = 0;
    for writer in writers {
        // Appends that raced with nothing all finish: shutdown has not started yet.
        if writer.await.unwrap().is_ok() {
            acknowledged += 1;
        }
    }
    store.check_ready().await.unwrap();
    store.shutdown().await;
    assert_eq!(acknowledged, 8);
    let refused = store
        .append_events(vec![EventBuilder::new("acme").build()])
        .await;
    assert!(
        matches!(refused, Err(StoreError::Unavailable(_))),
        "{refused:?}"
    );
    assert!(store.check_ready().await.is_err());
    assert_eq!(
        search(&store, "acme", Query::default()).await.len(),
        8,
        "reads still work after shutdown"
    );
}

fn new_user(user_id: &str, account_name: &str, email: &str, role: Role) -> NewUser {
    NewUser {
        user_id: user_id.into(),
        account: account(account_name),
        email: email.into(),
        role,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        created_at: RECEIVED_AT,
    }
}

fn session(hash_byte: u8, user_id: &str) -> SessionRecord {
    SessionRecord {
        session_hash: [hash_byte; 32],
        user_id: user_id.into(),
        created_at: RECEIVED_AT,
        last_seen_at: RECEIVED_AT,
        ip: Some("203.0.113.7".parse().expect("a valid test address")),
        user_agent: Some("Mozilla/5.0".into()),
        awaiting_second_factor: false,
        revoked_at: None,
    }
}

pub async fn users_are_created_found_changed_and_removed_with_their_sessions(
    store: Arc<dyn Store>,
) {
    store
        .create_account(&account("acme"), RECEIVED_AT)
        .await
        .unwrap();
    store
        .create_account(&account("globex"), RECEIVED_AT)
        .await
        .unwrap();
    let people = store.people();
    let alice = people
        .create_user(new_user(
            "usr_alice",
            "acme",
            "alice@example.com",
            Role::Owner,
        ))
        .await
        .unwrap();
    assert_eq!(alice.account, account("acme"));
    assert_eq!(alice.role, Role::Owner);
    assert!(alice.totp_secret.is_none());
    people
        .create_user(new_user(
            "usr_alice_globex",
            "globex",
            "alice@example.com",
            Role::Viewer,
        ))
        .await
        .unwrap();
    assert!(
        matches!(
            people
                .create_user(new_user(
                    "usr_again",
                    "acme",
                    "alice@example.com",
                    Role::Viewer
                ))
                .await,
            Err(StoreError::UserAlreadyExists { .. })
        ),
        "one email once per account"
    );
    assert!(matches!(
        people
            .create_user(new_user("usr_x", "nowhere", "x@example.com", Role::Viewer))
            .await,
        Err(StoreError::AccountNotFound(_))
    ));
    let found: Vec<AccountId> = people
        .find_users_by_email("alice@example.com")
        .await
        .unwrap()
        .into_iter()
        .map(|user| user.account)
        .collect();
    assert_eq!(found, vec![account("acme"), account("globex")]);
    assert_eq!(people.list_users(&account("acme")).await.unwrap().len(), 1);

    let promoted = people
        .set_user_role(&"usr_alice_globex".into(), Role::Admin)
        .await
        .unwrap();
    assert_eq!(promoted.role, Role::Admin);
    assert!(matches!(
        people
            .set_user_role(&"usr_missing".into(), Role::Admin)
            .await,
        Err(StoreError::UserNotFound(_))
    ));

    people
        .set_totp(
            &"usr_alice".into(),
            Some((vec![7; 20], vec![[1; 32], [2; 32]])),
        )
        .await
        .unwrap();
    assert_eq!(
        people
            .get_user(&"usr_alice".into())
            .await
            .unwrap()
            .unwrap()
            .totp_secret,
        Some(vec![7; 20])
    );
    assert_eq!(
        people
            .count_unused_recovery_codes(&"usr_alice".into())
            .await
            .unwrap(),
        2
    );
    assert!(
        people
            .use_recovery_code(&"usr_alice".into(), &[1; 32], RECEIVED_AT)
            .await
            .unwrap()
    );
    assert!(
        !people
            .use_recovery_code(&"usr_alice".into(), &[1; 32], RECEIVED_AT)
            .await
            .unwrap(),
        "a recovery code works once"
    );
    assert_eq!(
        people
            .count_unused_recovery_codes(&"usr_alice".into())
            .await
            .unwrap(),
        1
    );

    people
        .create_session(session(1, "usr_alice"))
        .await
        .unwrap();
    people
        .set_password(
            &"usr_alice".into(),
            "$argon2id$new",
            RECEIVED_AT + Duration::minutes(1),
        )
        .await
        .unwrap();
    let (after_password_change, user) = people.find_session(&[1; 32]).await.unwrap().unwrap();
    assert!(
        after_password_change.revoked_at.is_some(),
        "a new password ends every session"
    );
    assert_eq!(user.password_hash, "$argon2id$new");

    people
        .create_session(session(2, "usr_alice"))
        .await
        .unwrap();
    let removed = people.remove_user(&"usr_alice".into()).await.unwrap();
    assert_eq!(removed.user_id, "usr_alice");
    assert!(
        people
            .get_user(&"usr_alice".into())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        people.find_session(&[2; 32]).await.unwrap().is_none(),
        "sessions go with their user"
    );
    assert!(matches!(
        people.remove_user(&"usr_alice".into()).await,
        Err(StoreError::UserNotFound(_))
    ));
}

pub async fn sessions_are_found_touched_listed_and_revoked(store: Arc<dyn Store>) {
    store
        .create_account(&account("acme"), RECEIVED_AT)
        .await
        .unwrap();
    let people = store.people();
    people
        .create_user(new_user("usr_bob", "acme", "bob@example.com", Role::Viewer))
        .await
        .unwrap();
    people
        .create_user(new_user("usr_eve", "acme", "eve@example.com", Role::Viewer))
        .await
        .unwrap();
    people.create_session(session(1, "usr_bob")).await.unwrap();
    people.create_session(session(2, "usr_bob")).await.unwrap();
    let mut halfway = session(3, "usr_bob");
    halfway.awaiting_second_factor = true;
    people.create_session(halfway).await.unwrap();

    let (found, user) = people.find_session(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(found, session(1, "usr_bob"));
    assert_eq!(user.user_id, "usr_bob");
    assert!(people.find_session(&[9; 32]).await.unwrap().is_none());

    let later = RECEIVED_AT + Duration::minutes(5);
    people.touch_session(&[2; 32], later).await.unwrap();
    people.touch_session(&[2; 32], RECEIVED_AT).await.unwrap();
    let (touched, _) = people.find_session(&[2; 32]).await.unwrap().unwrap();
    assert_eq!(
        touched.last_seen_at, later,
        "last activity never moves back"
    );

    let active: Vec<[u8; 32]> = people
        .list_active_sessions(&"usr_bob".into())
        .await
        .unwrap()
        .into_iter()
        .map(|session| session.session_hash)
        .collect();
    assert_eq!(
        active,
        vec![[2; 32], [1; 32]],
        "newest activity first, half-finished sign-ins left out"
    );

    assert!(
        !people
            .revoke_session(&"usr_eve".into(), &[1; 32], later)
            .await
            .unwrap(),
        "a user ends only their own sessions"
    );
    assert!(
        people
            .revoke_session(&"usr_bob".into(), &[1; 32], later)
            .await
            .unwrap()
    );
    assert!(
        !people
            .revoke_session(&"usr_bob".into(), &[1; 32], later)
            .await
            .unwrap()
    );
    let (revoked, _) = people.find_session(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(later));
    assert_eq!(
        people
            .list_active_sessions(&"usr_bob".into())
            .await
            .unwrap()
            .len(),
        1
    );

    assert!(
        !people
            .requires_second_factor(&account("acme"))
            .await
            .unwrap()
    );
    people
        .set_requires_second_factor(&account("acme"), true)
        .await
        .unwrap();
    assert!(
        people
            .requires_second_factor(&account("acme"))
            .await
            .unwrap()
    );
}

fn invitation(account_name: &str, email: &str, role: Role, lifetime: Duration) -> InvitationRecord {
    InvitationRecord {
        account: account(account_name),
        email: email.into(),
        role,
        invited_by: "alice@example.com".into(),
        created_at: RECEIVED_AT,
        expires_at: RECEIVED_AT + lifetime,
    }
}

pub async fn an_invitation_is_accepted_once_with_what_it_was_created_with(store: Arc<dyn Store>) {
    store
        .create_account(&account("acme"), RECEIVED_AT)
        .await
        .unwrap();
    let people = store.people();
    let created = invitation("acme", "bob@example.com", Role::Admin, Duration::days(7));
    people
        .create_invitation([1; 32], created.clone())
        .await
        .unwrap();
    people
        .create_invitation(
            [2; 32],
            invitation("acme", "carol@example.com", Role::Viewer, Duration::days(7)),
        )
        .await
        .unwrap();

    let accepted_at = RECEIVED_AT + Duration::hours(1);
    assert!(
        people
            .take_invitation(&[9; 32], accepted_at)
            .await
            .unwrap()
            .is_none(),
        "an unknown token finds nothing"
    );
    assert_eq!(
        people.take_invitation(&[1; 32], accepted_at).await.unwrap(),
        Some(created),
        "the invitation comes back as it was created"
    );
    assert!(
        people
            .take_invitation(&[1; 32], accepted_at + Duration::seconds(1))
            .await
            .unwrap()
            .is_none(),
        "an accepted invitation cannot be accepted again"
    );
    let other = people
        .take_invitation(&[2; 32], accepted_at)
        .await
        .unwrap()
        .expect("accepting one invitation leaves the others usable");
    assert_eq!(other.email, "carol@example.com");
    assert_eq!(other.role, Role::Viewer);
}

pub async fn an_invitation_accepted_by_two_callers_at_once_admits_only_one(store: Arc<dyn Store>) {
    store
        .create_account(&account("acme"), RECEIVED_AT)
        .await
        .unwrap();
    store
        .people()
        .create_invitation(
            [3; 32],
            invitation("acme", "dave@example.com", Role::Member, Duration::days(1)),
        )
        .await
        .unwrap();
    let accepted_at = RECEIVED_AT + Duration::minutes(1);
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .people()
                    .take_invitation(&[3; 32], accepted_at)
                    .await
                    .expect("accepting answers")
            })
        })
        .collect();
    let mut admitted = 0;
    for attempt in attempts {
        if attempt.await.expect("the task finishes").is_some() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 1, "a one-time link admits exactly one person");
}

pub async fn an_expired_invitation_is_refused_from_its_expiry_on(store: Arc<dyn Store>) {
    store
        .create_account(&account("acme"), RECEIVED_AT)
        .await
        .unwrap();
    let people = store.people();
    let lifetime = Duration::days(7);
    people
        .create_invitation(
            [4; 32],
            invitation("acme", "erin@example.com", Role::Viewer, lifetime),
        )
        .await
        .unwrap();
    assert!(
        people
            .take_invitation(&[4; 32], RECEIVED_AT + lifetime)
            .await
            .unwrap()
            .is_none(),
        "the link stops working at its expiry time"
    );
    assert!(
        people
            .take_invitation(&[4; 32], RECEIVED_AT + lifetime + Duration::days(1))
            .await
            .unwrap()
            .is_none()
    );
    people
        .create_invitation(
            [5; 32],
            invitation("acme", "frank@example.com", Role::Viewer, lifetime),
        )
        .await
        .unwrap();
    assert!(
        people
            .take_invitation(&[5; 32], RECEIVED_AT + lifetime - Duration::seconds(1))
            .await
            .unwrap()
            .is_some(),
        "the link works until just before its expiry time"
    );
}

pub async fn an_invitation_to_an_unknown_account_is_refused(store: Arc<dyn Store>) {
    let refused = store
        .people()
        .create_invitation(
            [6; 32],
            invitation(
                "nowhere",
                "gina@example.com",
                Role::Viewer,
                Duration::days(7),
            ),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::AccountNotFound(_))),
        "got {refused:?}"
    );
    assert!(
        store
            .people()
            .take_invitation(&[6; 32], RECEIVED_AT)
            .await
            .unwrap()
            .is_none(),
        "a refused invitation leaves nothing behind to accept"
    );
}

pub async fn key_use_is_recorded_forward_only_and_shown_with_the_key(store: Arc<dyn Store>) {
    store
        .create_account(&account("acme"), RECEIVED_AT)
        .await
        .unwrap();
    let acme = KeyOwner::Account(account("acme"));
    let created = store
        .create_api_key(api_key("key_used", 1, acme.clone()))
        .await
        .unwrap();
    assert_eq!(created.last_used_at, None, "a new key was never used");
    store
        .create_api_key(api_key("key_idle", 2, acme))
        .await
        .unwrap();
    let last_use_of = |keys: &[logbook_core::api_key::ApiKeyRecord], key_id: &str| {
        keys.iter()
            .find(|key| key.key_id == key_id)
            .expect("the key is listed")
            .last_used_at
    };

    let latest = RECEIVED_AT + Duration::minutes(5);
    store
        .record_api_key_use(&[
            ("key_used".to_owned().into(), latest),
            (
                "key_used".to_owned().into(),
                RECEIVED_AT + Duration::minutes(2),
            ),
            ("key_unknown".to_owned().into(), latest),
        ])
        .await
        .expect("uses of known and unknown keys are recorded");
    let keys = store.list_api_keys(Some(&account("acme"))).await.unwrap();
    assert_eq!(
        last_use_of(&keys, "key_used"),
        Some(latest),
        "the latest use of a batch wins"
    );
    assert_eq!(
        last_use_of(&keys, "key_idle"),
        None,
        "other keys are untouched"
    );
    assert_eq!(
        store
            .find_api_key_by_hash(&[1; 32])
            .await
            .unwrap()
            .unwrap()
            .last_used_at,
        Some(latest)
    );

    store
        .record_api_key_use(&[(
            "key_used".to_owned().into(),
            RECEIVED_AT + Duration::minutes(1),
        )])
        .await
        .unwrap();
    assert_eq!(
        last_use_of(&store.list_api_keys(None).await.unwrap(), "key_used"),
        Some(latest),
        "an older use flushed late never moves the time back"
    );

    let later = RECEIVED_AT + Duration::hours(1);
    store
        .record_api_key_use(&[
            ("key_used".to_owned().into(), later),
            ("key_idle".to_owned().into(), later),
        ])
        .await
        .unwrap();
    store.record_api_key_use(&[]).await.unwrap();
    let revoked = store
        .revoke_api_key(&"key_used".into(), later + Duration::minutes(1))
        .await
        .unwrap();
    assert_eq!(
        revoked.last_used_at,
        Some(later),
        "revoking keeps the last use"
    );
    assert_eq!(
        last_use_of(
            &store.list_api_keys(Some(&account("acme"))).await.unwrap(),
            "key_idle"
        ),
        Some(later)
    );
}

// ---------------------------------------------------------------------------------------------
// "Needs attention": findings, dismissals and the workers' progress (`AttentionStore`).

fn attention_finding(actor: &str, first_seq: u64, title: &str) -> logbook_core::attention::Finding {
    use logbook_core::attention::{Finding, FindingKind, FindingSubject};
    Finding {
        kind: FindingKind::FailedLoginBurst,
        subject: FindingSubject::Actor(actor.to_owned()),
        first_seq,
        last_seq: first_seq + 4,
        first_at: datetime!(2024-06-01 12:00:00.000001 UTC),
        last_at: datetime!(2024-06-01 12:09:00 UTC),
        title: title.to_owned(),
        evidence_query: format!("actor:{actor} outcome:failure"),
    }
}

fn attention_progress(next_seq: u64, state: &[u8]) -> logbook_core::attention::AttentionProgress {
    logbook_core::attention::AttentionProgress {
        next_seq,
        state: state.to_vec(),
    }
}

fn every_finding() -> logbook_core::attention::FindingFilter {
    logbook_core::attention::FindingFilter {
        about_actor: None,
        include_dismissed: true,
        limit: 100,
    }
}

pub async fn attention_progress_is_saved_only_from_the_position_it_was_read_at(
    store: Arc<dyn Store>,
) {
    let acme = account("acme");
    store.create_account(&acme, RECEIVED_AT).await.unwrap();
    let attention = store.attention();
    assert_eq!(attention.attention_progress(&acme).await.unwrap(), None);
    let first = attention_progress(10, b"{\"after\":10}");
    assert!(
        attention
            .save_attention_progress(&acme, None, &first, &[], RECEIVED_AT)
            .await
            .unwrap()
    );
    assert_eq!(
        attention.attention_progress(&acme).await.unwrap(),
        Some(first.clone())
    );
    // A second worker that also started from nothing, or from a stale position, saves nothing,
    // and the findings it carried are not stored either.
    let stale_finding = attention_finding("alice@acme.com", 3, "stale");
    for stale_expectation in [None, Some(4)] {
        assert!(
            !attention
                .save_attention_progress(
                    &acme,
                    stale_expectation,
                    &attention_progress(12, b"stale"),
                    std::slice::from_ref(&stale_finding),
                    RECEIVED_AT,
                )
                .await
                .unwrap()
        );
    }
    assert_eq!(
        attention.attention_progress(&acme).await.unwrap(),
        Some(first)
    );
    assert!(
        attention
            .list_findings(&acme, &every_finding())
            .await
            .unwrap()
            .is_empty()
    );
    let second = attention_progress(25, b"{\"after\":25}");
    assert!(
        attention
            .save_attention_progress(&acme, Some(10), &second, &[], RECEIVED_AT)
            .await
            .unwrap()
    );
    assert_eq!(
        attention.attention_progress(&acme).await.unwrap(),
        Some(second)
    );
    assert!(matches!(
        attention
            .save_attention_progress(
                &account("nobody"),
                None,
                &attention_progress(1, b""),
                &[],
                RECEIVED_AT
            )
            .await,
        Err(StoreError::AccountNotFound(_))
    ));
}

pub async fn attention_progress_saved_by_several_workers_at_once_is_saved_by_exactly_one(
    store: Arc<dyn Store>,
) {
    let acme = account("acme");
    store.create_account(&acme, RECEIVED_AT).await.unwrap();
    // Eight workers (on PostgreSQL, eight pooled connections, as on several nodes) read the same
    // position and save at once, first from nothing, then from the first winner's position. Each
    // carries its own finding, so a loser's finding in the list would show a loser's save.
    for (round, expected_next_seq) in [None, Some(100)].into_iter().enumerate() {
        let attempts: Vec<_> = (0..8u64)
            .map(|worker| {
                let store = store.clone();
                let acme = acme.clone();
                let next_seq = if round == 0 { 100 } else { 200 + worker };
                tokio::spawn(async move {
                    let saved = store
                        .attention()
                        .save_attention_progress(
                            &acme,
                            expected_next_seq,
                            &attention_progress(next_seq, format!("worker {worker}").as_bytes()),
                            &[attention_finding(
                                "alice@acme.com",
                                1000 * (round as u64 + 1) + worker,
                                &format!("round {round} worker {worker}"),
                            )],
                            RECEIVED_AT,
                        )
                        .await
                        .expect("saving answers");
                    (worker, saved)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for attempt in attempts {
            let (worker, saved) = attempt.await.expect("the task finishes");
            if saved {
                winners.push(worker);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?} all saved");
        let winner = winners[0];
        let saved = store.attention().attention_progress(&acme).await.unwrap();
        assert_eq!(
            saved.map(|progress| progress.state),
            Some(format!("worker {winner}").into_bytes())
        );
        let titles: Vec<String> = store
            .attention()
            .list_findings(&acme, &every_finding())
            .await
            .unwrap()
            .into_iter()
            .filter(|record| record.finding.title.starts_with(&format!("round {round} ")))
            .map(|record| record.finding.title)
            .collect();
        assert_eq!(titles, vec![format!("round {round} worker {winner}")]);
    }
}

pub async fn attention_findings_are_stored_once_listed_newest_first_and_kept_per_account(
    store: Arc<dyn Store>,
) {
    use logbook_core::attention::FindingFilter;
    let (acme, globex) = (account("acme"), account("globex"));
    for name in [&acme, &globex] {
        store.create_account(name, RECEIVED_AT).await.unwrap();
    }
    let attention = store.attention();
    let hostile_title = "5 failed logins for <script>alert(1)</script> \"'";
    let alice_first = attention_finding("alice@acme.com", 0, hostile_title);
    let bob = attention_finding("bob@acme.com", 7, "bob");
    assert!(
        attention
            .save_attention_progress(
                &acme,
                None,
                &attention_progress(8, b"a"),
                &[alice_first.clone(), bob.clone()],
                datetime!(2024-06-01 12:10:00 UTC),
            )
            .await
            .unwrap()
    );
    // Reading the same events again (after a crash between detecting and saving elsewhere)
    // offers the same episodes again: they are stored once.
    let alice_later = attention_finding("alice@acme.com", 20, "alice again");
    assert!(
        attention
            .save_attention_progress(
                &acme,
                Some(8),
                &attention_progress(30, b"b"),
                &[alice_first.clone(), alice_later.clone()],
                datetime!(2024-06-01 13:00:00 UTC),
            )
            .await
            .unwrap()
    );
    let listed = attention
        .list_findings(&acme, &every_finding())
        .await
        .unwrap();
    let firsts: Vec<(String, u64)> = listed
        .iter()
        .map(|record| (record.finding.subject.value(), record.finding.first_seq))
        .collect();
    assert_eq!(
        firsts,
        vec![
            ("alice@acme.com".to_owned(), 20),
            ("bob@acme.com".to_owned(), 7),
            ("alice@acme.com".to_owned(), 0),
        ]
    );
    let oldest = &listed[2];
    assert_eq!(oldest.finding, alice_first, "stored exactly as found");
    assert_eq!(oldest.account, acme);
    assert_eq!(oldest.detected_at, datetime!(2024-06-01 12:10:00 UTC));
    assert_eq!(oldest.dismissal, None);
    let limited = attention
        .list_findings(
            &acme,
            &FindingFilter {
                limit: 1,
                ..every_finding()
            },
        )
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0].finding, alice_later);
    let about_bob = attention
        .list_findings(
            &acme,
            &FindingFilter {
                about_actor: Some("bob@acme.com".into()),
                ..every_finding()
            },
        )
        .await
        .unwrap();
    assert_eq!(about_bob.len(), 1);
    assert_eq!(about_bob[0].finding, bob);
    // Another account sees none of them, by list or by id, and cannot dismiss them.
    assert!(
        attention
            .list_findings(&globex, &every_finding())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        attention
            .get_finding(&globex, oldest.finding_id)
            .await
            .unwrap(),
        None
    );
    let dismissal = logbook_core::attention::Dismissal {
        dismissed_by: "mallory@globex.com".into(),
        dismissed_at: datetime!(2024-06-01 14:00:00 UTC),
    };
    assert_eq!(
        attention
            .dismiss_finding(&globex, oldest.finding_id, &dismissal)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        attention
            .get_finding(&acme, oldest.finding_id)
            .await
            .unwrap()
            .unwrap()
            .dismissal,
        None
    );
}

pub async fn a_dismissal_records_who_and_when_once_and_hides_the_finding_by_default(
    store: Arc<dyn Store>,
) {
    use logbook_core::attention::{Dismissal, FindingFilter};
    let acme = account("acme");
    store.create_account(&acme, RECEIVED_AT).await.unwrap();
    let attention = store.attention();
    attention
        .save_attention_progress(
            &acme,
            None,
            &attention_progress(9, b"s"),
            &[
                attention_finding("alice@acme.com", 0, "one"),
                attention_finding("alice@acme.com", 5, "two"),
            ],
            RECEIVED_AT,
        )
        .await
        .unwrap();
    let listed = attention
        .list_findings(&acme, &every_finding())
        .await
        .unwrap();
    let finding_id = listed
        .iter()
        .find(|record| record.finding.title == "one")
        .unwrap()
        .finding_id;
    let first = Dismissal {
        dismissed_by: "alice@acme.com".into(),
        dismissed_at: datetime!(2024-06-02 08:00:00 UTC),
    };
    let dismissed = attention
        .dismiss_finding(&acme, finding_id, &first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dismissed.dismissal, Some(first.clone()));
    let second = Dismissal {
        dismissed_by: "owner@acme.com".into(),
        dismissed_at: datetime!(2024-06-02 09:00:00 UTC),
    };
    let again = attention
        .dismiss_finding(&acme, finding_id, &second)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.dismissal, Some(first), "the first dismissal stands");
    let open = attention
        .list_findings(
            &acme,
            &FindingFilter {
                include_dismissed: false,
                ..every_finding()
            },
        )
        .await
        .unwrap();
    let titles: Vec<&str> = open
        .iter()
        .map(|record| record.finding.title.as_str())
        .collect();
    assert_eq!(titles, vec!["two"]);
    assert_eq!(
        attention
            .dismiss_finding(&acme, finding_id + 1000, &second)
            .await
            .unwrap(),
        None
    );
}

// ---------------------------------------------------------------------------------------------
// Per-account limit overrides (`logbook limits set`, issue 7).

pub async fn account_limit_overrides_are_stored_replaced_cleared_and_refused_for_unknown_accounts(
    store: Arc<dyn Store>,
) {
    use logbook_core::store::StoredAccountLimits;
    let limits = store.account_limits();
    assert!(limits.stored_account_limits().await.unwrap().is_empty());
    for name in ["acme", "globex"] {
        store
            .create_account(&account(name), RECEIVED_AT)
            .await
            .unwrap();
    }
    let generous = StoredAccountLimits {
        ingest_events_per_second: Some(100_000),
        read_burst: Some(u32::MAX),
        max_live_tails: Some(0),
        ..StoredAccountLimits::default()
    };
    limits
        .set_stored_account_limits(&account("globex"), &generous, RECEIVED_AT)
        .await
        .unwrap();
    let strict = StoredAccountLimits {
        reads_per_second: Some(1),
        ..StoredAccountLimits::default()
    };
    limits
        .set_stored_account_limits(&account("acme"), &strict, RECEIVED_AT)
        .await
        .unwrap();
    assert_eq!(
        limits.stored_account_limits().await.unwrap(),
        vec![
            (account("acme"), strict.clone()),
            (account("globex"), generous.clone()),
        ],
        "each account's own values, every field kept exactly (u32::MAX and 0 included)"
    );

    // Setting replaces the whole row: a field left out is no longer overridden.
    let replaced = StoredAccountLimits {
        max_concurrent_exports: Some(2),
        ..StoredAccountLimits::default()
    };
    limits
        .set_stored_account_limits(&account("globex"), &replaced, RECEIVED_AT)
        .await
        .unwrap();
    // Clearing (every field `None`) removes the account from the list.
    limits
        .set_stored_account_limits(
            &account("acme"),
            &StoredAccountLimits::default(),
            RECEIVED_AT,
        )
        .await
        .unwrap();
    assert_eq!(
        limits.stored_account_limits().await.unwrap(),
        vec![(account("globex"), replaced)]
    );

    match limits
        .set_stored_account_limits(&account("nobody"), &strict, RECEIVED_AT)
        .await
    {
        Err(StoreError::AccountNotFound(missing)) => assert_eq!(missing, account("nobody")),
        other => panic!("expected AccountNotFound, got {other:?}"),
    }
}

/// The account's tree keeps the leaf hashes in the event rows and only the higher nodes apart
/// (merkle.rs, `LOWEST_STORED_NODE_LEVEL`): every inclusion and consistency proof, whether its
/// nodes are stored or recomputed from leaves, must lead to the root of the receipts' leaves.
pub async fn every_proof_of_the_account_tree_verifies_against_the_receipts(store: Arc<dyn Store>) {
    use logbook_core::merkle::{self, MemoryTree};
    let acme = account("acme");
    let mut leaf_hashes = Vec::new();
    // Batches of uneven sizes, so commits end inside and on the edges of stored subtrees.
    for (batch_number, batch_size) in [1_usize, 14, 1, 17, 31, 6].into_iter().enumerate() {
        let events = (0..batch_size)
            .map(|number| {
                EventBuilder::new("acme")
                    .message(&format!("batch {batch_number} event {number}"))
                    .key(&format!("key-{batch_number}-{number}"))
                    .build()
            })
            .collect();
        for outcome in append(&store, events).await {
            let receipt = stored(&outcome);
            let leaf = receipt.leaf.as_ref().expect("a receipt with its leaf");
            assert_eq!(receipt.seq, leaf_hashes.len() as u64);
            assert_eq!(leaf.tree_size, receipt.seq + 1);
            leaf_hashes.push(leaf.leaf_hash);
        }
    }
    let size = leaf_hashes.len() as u64;
    assert_eq!(size, 70);
    let tree = store.log_tree().expect("the store keeps a tree");
    let head = tree.tree_head(&acme).await.unwrap();
    assert_eq!(head.tree_size, size);
    assert_eq!(head.root_hash, merkle::root_from_leaf_hashes(&leaf_hashes));

    // A duplicate's receipt carries the leaf hash stored with the original.
    let duplicate = append(
        &store,
        vec![
            EventBuilder::new("acme")
                .message("batch 3 event 4")
                .key("key-3-4")
                .build(),
        ],
    )
    .await;
    match &duplicate[0] {
        AppendOutcome::Duplicate(receipt) => {
            assert_eq!(receipt.seq, 20);
            assert_eq!(
                receipt.leaf.as_ref().map(|leaf| leaf.leaf_hash),
                Some(leaf_hashes[20])
            );
        }
        other => panic!("expected a duplicate, got {other:?}"),
    }

    for tree_size in [1_u64, 15, 16, 17, 32, 33, 64, 70] {
        let root = merkle::root_from_leaf_hashes(&leaf_hashes[..tree_size as usize]);
        for index in 0..tree_size {
            let ids = merkle::inclusion_proof_node_ids(index, tree_size).unwrap();
            let nodes = tree.tree_nodes(&acme, &ids).await.unwrap();
            let proof = merkle::inclusion_proof(&nodes, index, tree_size)
                .unwrap_or_else(|error| panic!("seq {index} in {tree_size}: {error}"));
            merkle::verify_inclusion(
                &leaf_hashes[index as usize],
                index,
                tree_size,
                &proof,
                &root,
            )
            .unwrap_or_else(|error| panic!("seq {index} in {tree_size}: {error}"));
        }
        for old_size in 1..=tree_size {
            let ids = merkle::consistency_proof_node_ids(old_size, tree_size).unwrap();
            let nodes = tree.tree_nodes(&acme, &ids).await.unwrap();
            let proof = merkle::consistency_proof(&nodes, old_size, tree_size).unwrap();
            let old_root = merkle::root_from_leaf_hashes(&leaf_hashes[..old_size as usize]);
            merkle::verify_consistency(old_size, tree_size, &proof, &old_root, &root)
                .unwrap_or_else(|error| panic!("{old_size} to {tree_size}: {error}"));
        }
    }
    // Every leaf is readable on its own (what `verify` compares each event against), and a node
    // past the tree is absent rather than made up.
    let leaf_ids: Vec<_> = (0..size).map(|seq| merkle::NodeId::new(0, seq)).collect();
    let leaves = tree.tree_nodes(&acme, &leaf_ids).await.unwrap();
    let mut reference = MemoryTree::new();
    for seq in 0..size {
        assert_eq!(
            leaves.get(&merkle::NodeId::new(0, seq)),
            Some(&leaf_hashes[seq as usize])
        );
        reference.append(leaf_hashes[seq as usize]);
    }
    assert_eq!(reference.root(), head.root_hash);
    let beyond = [
        merkle::NodeId::new(0, size),
        merkle::NodeId::new(3, 8),
        merkle::NodeId::new(6, 1),
    ];
    assert!(tree.tree_nodes(&acme, &beyond).await.unwrap().is_empty());
    let signer = logbook_core::checkpoint::CheckpointSigner::generate([7; 32], "conformance")
        .expect("a signing key");
    let verified = logbook_core::log_verification::verify_account(
        store.as_ref(),
        tree,
        &acme,
        &signer.verifier(),
    )
    .await
    .expect("the log verifies");
    assert_eq!(verified.events, size);
}
