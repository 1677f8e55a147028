//! `RetentionStore` on SQLite: settings, holds and prefixes through the shared SQL
//! (`logbook_store_sql::retention`), and the deletion of pruned events, which is SQLite's own:
//! an account's events below the pruned prefix are one `event_row` range, and the contentless
//! full-text index forgets a document only when told its exact tokens again.

use async_trait::async_trait;
use logbook_core::personal_data::{PersonalDataBatch, PersonalDataRemoved};
use logbook_core::retention::{AccountRetention, LegalHold, PrunedPrefix};
use logbook_core::store::RetentionStore;
use logbook_core::{AccountId, StoreError};
use logbook_store_sql::TokenizedField;
use logbook_store_sql::action_terms::{
    action_hex, push_full_text_action_token, written_with_action_rows_sql,
};
use logbook_store_sql::actor_terms::{
    actor_hex, push_full_text_actor_token, written_with_actor_rows_sql,
};
use logbook_store_sql::day_counts::{DayCountChanges, ValueDayCountChanges};
use logbook_store_sql::ip_terms::{push_full_text_ip_token, written_with_ip_rows_sql};
use logbook_store_sql::personal_data::EventKeys;
use logbook_store_sql::place_terms::{
    place_document, push_full_text_place_of_stored_event, written_with_three_place_tokens_sql,
};
use logbook_store_sql::target_terms::{
    push_full_text_target_tokens_of_body, written_with_target_rows_sql,
};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use time::OffsetDateTime;

use crate::encoding::{first_event_row_of, full_text_document};
use crate::errors::database_error;
use crate::{SqliteStore, account_row};

#[async_trait]
impl RetentionStore for SqliteStore {
    async fn account_retention(&self, account: &AccountId) -> Result<AccountRetention, StoreError> {
        self.shared.account_retention(account).await
    }

    async fn all_account_retention(
        &self,
    ) -> Result<Vec<(AccountId, AccountRetention)>, StoreError> {
        self.shared.all_account_retention().await
    }

    async fn set_retention_days(
        &self,
        account: &AccountId,
        retention_days: Option<u32>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.shared
            .set_retention_days(account, retention_days, now)
            .await
    }

    async fn set_legal_hold(
        &self,
        account: &AccountId,
        hold: Option<LegalHold>,
        now: OffsetDateTime,
    ) -> Result<Option<LegalHold>, StoreError> {
        self.shared.set_legal_hold(account, hold, now).await
    }

    async fn pruned_prefix(&self, account: &AccountId) -> Result<Option<PrunedPrefix>, StoreError> {
        self.shared.pruned_prefix(account).await
    }

    async fn record_prune(
        &self,
        account: &AccountId,
        pruned_below_seq: u64,
        prefix: &PrunedPrefix,
    ) -> Result<(), StoreError> {
        self.shared
            .record_prune(account, pruned_below_seq, prefix)
            .await
    }

    async fn set_personal_data_policy(
        &self,
        account: &AccountId,
        personal_data_days: Option<u32>,
        keep_network: Option<bool>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.shared
            .set_personal_data_policy(account, personal_data_days, keep_network, now)
            .await
    }

    async fn set_personal_metadata_fields(
        &self,
        account: &AccountId,
        fields: Vec<String>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.shared
            .set_personal_metadata_fields(account, fields, now)
            .await
    }

    async fn remove_personal_data(
        &self,
        account: &AccountId,
        batch: PersonalDataBatch,
    ) -> Result<PersonalDataRemoved, StoreError> {
        let keys = EventKeys {
            column: "event_row",
            key_of_first_event: first_event_row_of,
        };
        self.shared.remove_personal_data(account, batch, keys).await
    }

    async fn delete_pruned_events(
        &self,
        account: &AccountId,
        max_events: u32,
    ) -> Result<u64, StoreError> {
        const DELETING: &str = "deleting pruned events";
        let account = account.clone();
        // On the writer's thread, between two group commits: a loop of delete batches on a
        // connection of its own would race the writer for SQLite's write lock.
        self.inner
            .on_writer(move |connection| {
                let transaction = connection
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(database_error(DELETING))?;
                let account_row = account_row(&transaction, &account)?
                    .ok_or_else(|| StoreError::AccountNotFound(account.clone()))?;
                let held: bool = transaction
                    .query_row(
                        "SELECT legal_hold_since IS NOT NULL FROM account_retention WHERE account_row = ?1",
                        [account_row],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(database_error(DELETING))?
                    .unwrap_or(false);
                if held {
                    return Err(StoreError::LegalHold(account));
                }
                let pruned_below: Option<i64> = transaction
                    .query_row(
                        "SELECT pruned_below_seq FROM pruned_prefixes WHERE account_row = ?1",
                        [account_row],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(database_error(DELETING))?;
                let Some(pruned_below) = pruned_below else {
                    return Ok(0);
                };
                let first = first_event_row_of(account_row);
                // Each event's row, body and place (its own columns, or its interned location's);
                // the place's tokens are in `events_fts` when the event was located at ingest
                // since migration 0020 (`location_row`: three tokens up to migration 0021, the
                // location's one since), else its terms are in `events_place_terms`.
                let doomed: Vec<DoomedEvent> = transaction
                    .prepare_cached(&format!(
                        "SELECT events.event_row, events.body, \
                         coalesce(events.country_code, locations.country_code), \
                         coalesce(events.asn, locations.asn), coalesce(events.city, locations.city), \
                         events.location_row, {}, events.created_at, {}, {}, events.action, \
                         {}, events.actor_id, {}, events.ip \
                         FROM events LEFT JOIN locations ON locations.location_row = events.location_row \
                         WHERE events.event_row >= ?1 AND events.event_row < ?2 \
                         ORDER BY events.event_row LIMIT ?3",
                        written_with_three_place_tokens_sql("?4"),
                        written_with_target_rows_sql("?4"),
                        written_with_action_rows_sql("?4"),
                        written_with_actor_rows_sql("?4"),
                        written_with_ip_rows_sql("?4")
                    ))
                    .map_err(database_error(DELETING))?
                    .query_map(
                        params![first, first + pruned_below, max_events, account_row],
                        |row| {
                            Ok(DoomedEvent {
                                event_row: row.get(0)?,
                                body: row.get(1)?,
                                country_code: row.get(2)?,
                                asn: row.get(3)?,
                                city: row.get(4)?,
                                location_row: row.get(5)?,
                                written_with_three_place_tokens: row.get(6)?,
                                created_at_micros: row.get(7)?,
                                written_with_target_rows: row.get(8)?,
                                written_with_action_rows: row.get(9)?,
                                action: row.get(10)?,
                                written_with_actor_rows: row.get(11)?,
                                actor_id: row.get(12)?,
                                written_with_ip_rows: row.get(13)?,
                                ip: row.get(14)?,
                            })
                        },
                    )
                    .and_then(|rows| rows.collect())
                    .map_err(database_error(DELETING))?;
                let mut freed_bytes = 0_i64;
                let mut day_counts = DayCountChanges::default();
                let mut action_day_counts = ValueDayCountChanges::default();
                let mut actor_day_counts = ValueDayCountChanges::default();
                let mut ip_day_counts: ValueDayCountChanges<Vec<u8>> =
                    ValueDayCountChanges::default();
                for doomed_event in &doomed {
                    let DoomedEvent {
                        event_row, body, ..
                    } = doomed_event;
                    let stored = serde_json::from_str::<serde_json::Value>(body).ok();
                    // The document the writer indexed, rebuilt from the stored message and
                    // place: a contentless FTS5 table removes exactly the tokens it is given.
                    let message = stored
                        .as_ref()
                        .and_then(|value| value.get("message")?.as_str())
                        .unwrap_or_default();
                    let mut document = full_text_document(account_row, message);
                    let country_code = doomed_event.country_code.as_deref();
                    let city = doomed_event.city.as_deref();
                    if let Some(location_row) = doomed_event.location_row {
                        push_full_text_place_of_stored_event(
                            &mut document,
                            account_row,
                            location_row,
                            doomed_event.written_with_three_place_tokens,
                            (country_code, doomed_event.asn, city),
                        );
                    }
                    if !doomed_event.written_with_target_rows
                        && let Some(stored) = &stored
                    {
                        push_full_text_target_tokens_of_body(&mut document, account_row, stored);
                    }
                    if !doomed_event.written_with_action_rows {
                        push_full_text_action_token(
                            &mut document,
                            account_row,
                            &action_hex(&doomed_event.action),
                        );
                    }
                    if let (false, Some(actor_id)) =
                        (doomed_event.written_with_actor_rows, &doomed_event.actor_id)
                    {
                        push_full_text_actor_token(&mut document, account_row, &actor_hex(actor_id));
                    }
                    if let (false, Some(ip)) = (doomed_event.written_with_ip_rows, &doomed_event.ip)
                    {
                        push_full_text_ip_token(&mut document, account_row, ip);
                    }
                    transaction
                        .prepare_cached(
                            "INSERT INTO events_fts (events_fts, rowid, message) VALUES ('delete', ?1, ?2)",
                        )
                        .and_then(|mut statement| statement.execute(params![event_row, document]))
                        .map_err(database_error(DELETING))?;
                    let legacy_place = doomed_event
                        .location_row
                        .is_none()
                        .then(|| place_document(account_row, country_code, doomed_event.asn, city))
                        .flatten();
                    if let Some(place) = legacy_place {
                        transaction
                            .prepare_cached(
                                "INSERT INTO events_place_terms (events_place_terms, rowid, terms) VALUES ('delete', ?1, ?2)",
                            )
                            .and_then(|mut statement| statement.execute(params![event_row, place]))
                            .map_err(database_error(DELETING))?;
                    }
                    // By the whole key of each target row the writer stored (`targets[].id`)
                    // before migration 0025: the key leads with the target id, so a delete by
                    // account and event alone read every target row of the account, about 1.6 ms
                    // an event on an account of 290,000 (the benchmark's `--pruner` phase).
                    let target_ids = stored
                        .as_ref()
                        .filter(|_| doomed_event.written_with_target_rows)
                        .and_then(|value| value.get("targets")?.as_array())
                        .into_iter()
                        .flatten()
                        .filter_map(|target| target.get("id")?.as_str());
                    for target_id in target_ids {
                        transaction
                            .prepare_cached(
                                "DELETE FROM event_targets WHERE account_row = ?1 AND target_id = ?2 AND event_row = ?3",
                            )
                            .and_then(|mut statement| {
                                statement.execute(params![account_row, target_id, event_row])
                            })
                            .map_err(database_error(DELETING))?;
                    }
                    if doomed_event.written_with_action_rows {
                        delete_field_row(
                            &transaction,
                            TokenizedField::Action,
                            account_row,
                            &doomed_event.action,
                            doomed_event.created_at_micros,
                            *event_row,
                        )?;
                    }
                    if let (true, Some(actor_id)) =
                        (doomed_event.written_with_actor_rows, &doomed_event.actor_id)
                    {
                        delete_field_row(
                            &transaction,
                            TokenizedField::Actor,
                            account_row,
                            actor_id,
                            doomed_event.created_at_micros,
                            *event_row,
                        )?;
                    }
                    if let (true, Some(ip)) = (doomed_event.written_with_ip_rows, &doomed_event.ip) {
                        delete_field_row(
                            &transaction,
                            TokenizedField::Ip,
                            account_row,
                            ip,
                            doomed_event.created_at_micros,
                            *event_row,
                        )?;
                    }
                    transaction
                        .prepare_cached("DELETE FROM events WHERE event_row = ?1")
                        .and_then(|mut statement| statement.execute([event_row]))
                        .map_err(database_error(DELETING))?;
                    freed_bytes += body.len() as i64;
                    day_counts.count(account_row, doomed_event.created_at_micros);
                    action_day_counts.count(
                        account_row,
                        doomed_event.created_at_micros,
                        &doomed_event.action,
                    );
                    if let Some(actor_id) = &doomed_event.actor_id {
                        actor_day_counts.count(
                            account_row,
                            doomed_event.created_at_micros,
                            actor_id,
                        );
                    }
                    if let Some(ip) = &doomed_event.ip {
                        ip_day_counts.count(account_row, doomed_event.created_at_micros, ip);
                    }
                }
                // The timeline's day counts, and its day counts per action, actor and address,
                // lose the deleted events in the same transaction; a day left with none has no
                // row, as if it had never had any.
                for (account_row, day_start, events) in day_counts.rows() {
                    transaction
                        .prepare_cached(
                            "UPDATE event_day_counts SET events = events - ?3 WHERE account_row = ?1 AND day_start = ?2",
                        )
                        .and_then(|mut statement| {
                            statement.execute(params![account_row, day_start, events])
                        })
                        .map_err(database_error(DELETING))?;
                    transaction
                        .prepare_cached(
                            "DELETE FROM event_day_counts WHERE account_row = ?1 AND day_start = ?2 AND events <= 0",
                        )
                        .and_then(|mut statement| statement.execute(params![account_row, day_start]))
                        .map_err(database_error(DELETING))?;
                }
                subtract_value_day_counts(&transaction, TokenizedField::Action, &action_day_counts)?;
                subtract_value_day_counts(&transaction, TokenizedField::Actor, &actor_day_counts)?;
                subtract_value_day_counts(&transaction, TokenizedField::Ip, &ip_day_counts)?;
                if doomed.len() < max_events as usize {
                    // The prefix is gone: so are its nodes (its compact range stands for them)
                    // and the checkpoints of trees smaller than what is left.
                    transaction
                        .execute(
                            "DELETE FROM tree_nodes WHERE account_row = ?1 AND ((node_index + 1) << level) <= ?2",
                            params![account_row, pruned_below],
                        )
                        .map_err(database_error(DELETING))?;
                    transaction
                        .execute(
                            "DELETE FROM checkpoints WHERE account_row = ?1 AND tree_size < ?2",
                            params![account_row, pruned_below],
                        )
                        .map_err(database_error(DELETING))?;
                }
                transaction
                    .execute(
                        "UPDATE account_volume_usage SET stored_bytes = max(stored_bytes - ?2, 0) WHERE account_row = ?1",
                        params![account_row, freed_bytes],
                    )
                    .map_err(database_error(DELETING))?;
                transaction.commit().map_err(database_error(DELETING))?;
                Ok(doomed.len() as u64)
            })
            .await
    }
}

/// Deletes an event's row of the table that keeps `field` of the events stored before it became
/// a token (`event_action_rows`, `event_actor_rows`, `event_ip_rows`), by the row's whole key:
/// the key leads with the value, so a delete by account and event alone would read every row of
/// the account's value.
fn delete_field_row(
    transaction: &rusqlite::Transaction<'_>,
    field: TokenizedField,
    account_row: i64,
    value: &dyn rusqlite::ToSql,
    created_at_micros: i64,
    event_row: i64,
) -> Result<(), StoreError> {
    let statement = match field {
        TokenizedField::Action => {
            "DELETE FROM event_action_rows WHERE account_row = ?1 AND action = ?2 \
             AND created_at = ?3 AND event_row = ?4"
        }
        TokenizedField::Actor => {
            "DELETE FROM event_actor_rows WHERE account_row = ?1 AND actor_id = ?2 \
             AND created_at = ?3 AND event_row = ?4"
        }
        TokenizedField::Ip => {
            "DELETE FROM event_ip_rows WHERE account_row = ?1 AND ip = ?2 \
             AND created_at = ?3 AND event_row = ?4"
        }
    };
    transaction
        .prepare_cached(statement)
        .and_then(|mut statement| {
            statement.execute(params![account_row, value, created_at_micros, event_row])
        })
        .map_err(database_error(
            "deleting a pruned event's row of an earlier field index",
        ))?;
    Ok(())
}

/// Takes `changes` (the deleted events per account, day and value) off the day counts per value
/// of `field` (`query_sql::field_day_counts_table`), and deletes the rows left with none.
fn subtract_value_day_counts<Value: std::hash::Hash + Eq + Ord + rusqlite::ToSql>(
    transaction: &rusqlite::Transaction<'_>,
    field: TokenizedField,
    changes: &ValueDayCountChanges<Value>,
) -> Result<(), StoreError> {
    const DELETING: &str = "taking pruned events off the day counts";
    let table = crate::query_sql::field_day_counts_table(field);
    let column = field.column();
    let subtract = format!(
        "UPDATE {table} SET events = events - ?4 \
         WHERE account_row = ?1 AND day_start = ?2 AND {column} = ?3"
    );
    let delete_emptied = format!(
        "DELETE FROM {table} \
         WHERE account_row = ?1 AND day_start = ?2 AND {column} = ?3 AND events <= 0"
    );
    for (account_row, day_start, value, events) in changes.rows() {
        transaction
            .prepare_cached(&subtract)
            .and_then(|mut statement| {
                statement.execute(params![account_row, day_start, value, events])
            })
            .map_err(database_error(DELETING))?;
        transaction
            .prepare_cached(&delete_emptied)
            .and_then(|mut statement| statement.execute(params![account_row, day_start, value]))
            .map_err(database_error(DELETING))?;
    }
    Ok(())
}

/// An event retention deletes, with what its full-text documents were made of.
struct DoomedEvent {
    event_row: i64,
    body: String,
    country_code: Option<String>,
    asn: Option<i64>,
    city: Option<String>,
    /// Set when the event was located at ingest since migration 0020: its place is in its
    /// `events_fts` document rather than a document of `events_place_terms`.
    location_row: Option<i64>,
    /// Located between migrations 0020 and 0021: the document holds the three place tokens, not
    /// the location's one.
    written_with_three_place_tokens: bool,
    /// Its `created_at`, whose day count it leaves.
    created_at_micros: i64,
    /// Stored before migration 0025: its targets are rows of `event_targets`, not tokens of its
    /// document.
    written_with_target_rows: bool,
    /// Stored before migration 0026: its action is a row of `event_action_rows`, not a token of
    /// its document.
    written_with_action_rows: bool,
    action: String,
    /// Stored before migration 0028: its actor is a row of `event_actor_rows`, not a token of its
    /// document.
    written_with_actor_rows: bool,
    actor_id: Option<String>,
    /// Stored before migration 0029: its address is a row of `event_ip_rows`, not a token of its
    /// document.
    written_with_ip_rows: bool,
    /// The stored address (`encoding::ip_bytes`), when the event has one.
    ip: Option<Vec<u8>>,
}
