//! `AlertingStore` on SQLite: rules, destinations with their delivery cursors, and the delivery
//! outbox (tables of migration 0006). Everything runs on the admin connection, like accounts and
//! keys: these are small writes that must not queue behind a group commit, and one connection
//! makes a claim (select due rows, then lease them) atomic without extra locking.

use std::time::Duration;

use async_trait::async_trait;
use logbook_core::alerting::{
    AlertRuleRecord, DeliveryCursor, DeliveryReason, DeliveryRecord, DestinationKind,
    DestinationRecord, NewAlertRule, NewDelivery, NewDestination, SigningSecret,
    threshold_from_stored,
};
use logbook_core::store::AlertingStore;
use logbook_core::{AccountId, StoreError};
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use crate::encoding::{micros_to_time, unix_micros_of};
use crate::errors::database_error;
use crate::{SqliteStore, account_row, parse_stored_account};

/// Longest error text kept per delivery or destination, in bytes.
const MAX_ERROR_BYTES: usize = 1000;

fn bounded(text: &str) -> &str {
    let mut end = text.len().min(MAX_ERROR_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn stored_data_error(context: &'static str) -> impl Fn(String) -> StoreError {
    move |message| StoreError::Database { context, message }
}

const DESTINATION_COLUMNS: &str = "d.destination_id, a.name, d.name, d.kind, d.address, d.secret, d.streams_whole_log, d.created_at, \
     d.last_success_at, d.last_error, d.last_error_at, \
     (SELECT count(*) FROM deliveries p WHERE p.destination_id = d.destination_id AND p.delivered_at IS NULL AND p.dead_at IS NULL), \
     (SELECT count(*) FROM deliveries p WHERE p.destination_id = d.destination_id AND p.dead_at IS NOT NULL), \
     d.trusted_ca_pem, \
     (SELECT min(p.created_at) FROM deliveries p WHERE p.destination_id = d.destination_id AND p.delivered_at IS NULL AND p.dead_at IS NULL)";

fn select_destinations(
    connection: &Connection,
    filter: &str,
    parameters: &[&dyn rusqlite::ToSql],
) -> Result<Vec<DestinationRecord>, StoreError> {
    let sql = format!(
        "SELECT {DESTINATION_COLUMNS} FROM alert_destinations d JOIN accounts a ON a.account_row = d.account_row \
         WHERE {filter} ORDER BY d.created_at, d.destination_id"
    );
    let mut statement = connection
        .prepare_cached(&sql)
        .map_err(database_error("reading destinations"))?;
    let rows = statement
        .query_map(parameters, |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, String>(5)?,
                row.get::<_, bool>(6)?,
                row.get::<_, i64>(7)?,
                row.get::<_, Option<i64>>(8)?,
                row.get::<_, Option<String>>(9)?,
                row.get::<_, Option<i64>>(10)?,
                row.get::<_, i64>(11)?,
                row.get::<_, i64>(12)?,
                row.get::<_, Option<String>>(13)?,
                row.get::<_, Option<i64>>(14)?,
            ))
        })
        .map_err(database_error("reading destinations"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(database_error("reading destinations"))?;
    rows.into_iter()
        .map(|row| {
            Ok(DestinationRecord {
                destination_id: row.0,
                account: parse_stored_account(&row.1)?,
                name: row.2,
                kind: DestinationKind::from_stored(&row.3, &row.4, row.13.as_deref())
                    .map_err(|error| error.to_string())
                    .map_err(stored_data_error("reading destinations"))?,
                secret: SigningSecret(row.5),
                streams_whole_log: row.6,
                created_at: micros_to_time(row.7),
                last_success_at: row.8.map(micros_to_time),
                last_error: row.9,
                last_error_at: row.10.map(micros_to_time),
                pending_count: row.11 as u64,
                dead_letter_count: row.12 as u64,
                oldest_pending_at: row.14.map(micros_to_time),
            })
        })
        .collect()
}

fn select_rules(
    connection: &Connection,
    account_row: i64,
) -> Result<Vec<AlertRuleRecord>, StoreError> {
    let mut statement = connection
        .prepare_cached(
            "SELECT r.rule_id, a.name, r.name, r.query_text, r.threshold_count, r.threshold_window_seconds, r.enabled, r.created_at, \
             (SELECT group_concat(destination_id, ' ') FROM alert_rule_destinations rd WHERE rd.rule_id = r.rule_id) \
             FROM alert_rules r JOIN accounts a ON a.account_row = r.account_row WHERE r.account_row = ?1 \
             ORDER BY r.created_at, r.rule_id",
        )
        .map_err(database_error("reading rules"))?;
    let rows = statement
        .query_map([account_row], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, Option<i64>>(4)?,
                row.get::<_, Option<i64>>(5)?,
                row.get::<_, bool>(6)?,
                row.get::<_, i64>(7)?,
                row.get::<_, Option<String>>(8)?,
            ))
        })
        .map_err(database_error("reading rules"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(database_error("reading rules"))?;
    rows.into_iter()
        .map(|row| {
            let mut destination_ids: Vec<String> = row
                .8
                .unwrap_or_default()
                .split(' ')
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect();
            destination_ids.sort();
            Ok(AlertRuleRecord {
                rule_id: row.0,
                account: parse_stored_account(&row.1)?,
                name: row.2,
                query_text: row.3,
                threshold: threshold_from_stored(row.4, row.5),
                destination_ids,
                enabled: row.6,
                created_at: micros_to_time(row.7),
            })
        })
        .collect()
}

const DELIVERY_COLUMNS: &str = "dl.delivery_id, dl.destination_id, a.name, dl.event_seq, dl.event_json, dl.rule_id, dl.rule_name, dl.rule_query, \
     dl.threshold_count, dl.threshold_window_seconds, dl.matched_count, dl.created_at, dl.attempts, dl.next_attempt_at, \
     dl.delivered_at, dl.dead_at, dl.last_error";

type DeliveryRow = (
    String,
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    i64,
    i64,
    i64,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

fn delivery_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
        row.get(10)?,
        row.get(11)?,
        row.get(12)?,
        row.get(13)?,
        row.get(14)?,
        row.get(15)?,
        row.get(16)?,
    ))
}

fn delivery_record(row: DeliveryRow) -> Result<DeliveryRecord, StoreError> {
    let reason = match row.5 {
        None => DeliveryReason::WholeLog,
        Some(rule_id) => DeliveryReason::Rule {
            rule_id,
            rule_name: row.6.unwrap_or_default(),
            query_text: row.7.unwrap_or_default(),
            threshold: threshold_from_stored(row.8, row.9),
            matched_count: row.10.and_then(|count| u32::try_from(count).ok()),
        },
    };
    Ok(DeliveryRecord {
        delivery: NewDelivery {
            delivery_id: row.0,
            destination_id: row.1,
            account: parse_stored_account(&row.2)?,
            event_seq: row.3 as u64,
            event_json: row.4,
            reason,
            created_at: micros_to_time(row.11),
        },
        attempts: u32::try_from(row.12).unwrap_or(u32::MAX),
        next_attempt_at: micros_to_time(row.13),
        delivered_at: row.14.map(micros_to_time),
        dead_at: row.15.map(micros_to_time),
        last_error: row.16,
    })
}

fn select_deliveries(
    connection: &Connection,
    filter: &str,
    parameters: &[&dyn rusqlite::ToSql],
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries dl JOIN accounts a ON a.account_row = dl.account_row WHERE {filter}"
    );
    let mut statement = connection
        .prepare_cached(&sql)
        .map_err(database_error("reading deliveries"))?;
    let rows = statement
        .query_map(parameters, delivery_row)
        .map_err(database_error("reading deliveries"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(database_error("reading deliveries"))?;
    rows.into_iter().map(delivery_record).collect()
}

fn insert_delivery(
    connection: &Connection,
    account_row: i64,
    delivery: &NewDelivery,
) -> Result<(), StoreError> {
    let (rule_id, rule_name, rule_query, threshold, matched_count) = match &delivery.reason {
        DeliveryReason::WholeLog => (None, None, None, None, None),
        DeliveryReason::Rule {
            rule_id,
            rule_name,
            query_text,
            threshold,
            matched_count,
        } => (
            Some(rule_id.as_str()),
            Some(rule_name.as_str()),
            Some(query_text.as_str()),
            *threshold,
            *matched_count,
        ),
    };
    let created_at = unix_micros_of(delivery.created_at);
    connection
        .prepare_cached(
            "INSERT INTO deliveries (delivery_id, account_row, destination_id, event_seq, event_json, rule_id, rule_name, rule_query, \
             threshold_count, threshold_window_seconds, matched_count, created_at, next_attempt_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12) ON CONFLICT (delivery_id) DO NOTHING",
        )
        .map_err(database_error("queueing a delivery"))?
        .execute(params![
            delivery.delivery_id,
            account_row,
            delivery.destination_id,
            delivery.event_seq as i64,
            delivery.event_json,
            rule_id,
            rule_name,
            rule_query,
            threshold.map(|threshold| threshold.count),
            threshold.map(|threshold| threshold.window.as_secs() as i64),
            matched_count,
            created_at,
        ])
        .map_err(database_error("queueing a delivery"))?;
    Ok(())
}

fn required_account_row(connection: &Connection, account: &AccountId) -> Result<i64, StoreError> {
    account_row(connection, account)?.ok_or_else(|| StoreError::AccountNotFound(account.clone()))
}

#[async_trait]
impl AlertingStore for SqliteStore {
    async fn create_destination(
        &self,
        destination: NewDestination,
    ) -> Result<DestinationRecord, StoreError> {
        self.inner
            .administer(move |connection| {
                let account_row = required_account_row(connection, &destination.account)?;
                connection
                    .execute(
                        "INSERT INTO alert_destinations (destination_id, account_row, name, kind, address, secret, streams_whole_log, created_at, cursor_next_seq, trusted_ca_pem) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                        params![
                            destination.destination_id,
                            account_row,
                            destination.name,
                            destination.kind.kind_name(),
                            destination.kind.address(),
                            destination.secret.0,
                            destination.streams_whole_log,
                            unix_micros_of(destination.created_at),
                            destination.start_seq as i64,
                            destination.kind.trusted_ca_pem(),
                        ],
                    )
                    .map_err(database_error("creating a destination"))?;
                select_destinations(
                    connection,
                    "d.destination_id = ?1",
                    &[&destination.destination_id],
                )?
                .pop()
                .ok_or(StoreError::DestinationNotFound(destination.destination_id))
            })
            .await
    }

    async fn list_destinations(
        &self,
        account: &AccountId,
    ) -> Result<Vec<DestinationRecord>, StoreError> {
        let account = account.clone();
        self.inner
            .administer(move |connection| {
                let Some(account_row) = account_row(connection, &account)? else {
                    return Ok(Vec::new());
                };
                select_destinations(connection, "d.account_row = ?1", &[&account_row])
            })
            .await
    }

    async fn list_all_destinations(&self) -> Result<Vec<DestinationRecord>, StoreError> {
        self.inner
            .administer(move |connection| select_destinations(connection, "1 = 1", &[]))
            .await
    }

    async fn delete_destination(
        &self,
        account: &AccountId,
        destination_id: &str,
    ) -> Result<bool, StoreError> {
        let account = account.clone();
        let destination_id = destination_id.to_owned();
        self.inner
            .administer(move |connection| {
                let Some(account_row) = account_row(connection, &account)? else {
                    return Ok(false);
                };
                let transaction = connection
                    .transaction()
                    .map_err(database_error("deleting a destination"))?;
                let owned: Option<i64> = transaction
                    .query_row(
                        "SELECT 1 FROM alert_destinations WHERE destination_id = ?1 AND account_row = ?2",
                        params![destination_id, account_row],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(database_error("deleting a destination"))?;
                if owned.is_none() {
                    return Ok(false);
                }
                for statement in [
                    "DELETE FROM alert_rule_destinations WHERE destination_id = ?1",
                    "DELETE FROM deliveries WHERE destination_id = ?1",
                    "DELETE FROM alert_destinations WHERE destination_id = ?1",
                ] {
                    transaction
                        .execute(statement, [&destination_id])
                        .map_err(database_error("deleting a destination"))?;
                }
                transaction
                    .commit()
                    .map_err(database_error("deleting a destination"))?;
                Ok(true)
            })
            .await
    }

    async fn create_rule(&self, rule: NewAlertRule) -> Result<AlertRuleRecord, StoreError> {
        self.inner
            .administer(move |connection| {
                let account_row = required_account_row(connection, &rule.account)?;
                let transaction = connection
                    .transaction()
                    .map_err(database_error("creating a rule"))?;
                transaction
                    .execute(
                        "INSERT INTO alert_rules (rule_id, account_row, name, query_text, threshold_count, threshold_window_seconds, created_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![
                            rule.rule_id,
                            account_row,
                            rule.name,
                            rule.query_text,
                            rule.threshold.map(|threshold| threshold.count),
                            rule.threshold.map(|threshold| threshold.window.as_secs() as i64),
                            unix_micros_of(rule.created_at),
                        ],
                    )
                    .map_err(database_error("creating a rule"))?;
                for destination_id in &rule.destination_ids {
                    let owned: Option<i64> = transaction
                        .query_row(
                            "SELECT 1 FROM alert_destinations WHERE destination_id = ?1 AND account_row = ?2",
                            params![destination_id, account_row],
                            |row| row.get(0),
                        )
                        .optional()
                        .map_err(database_error("creating a rule"))?;
                    if owned.is_none() {
                        // Dropping the transaction rolls the rule back.
                        return Err(StoreError::DestinationNotFound(destination_id.clone()));
                    }
                    transaction
                        .execute(
                            "INSERT OR IGNORE INTO alert_rule_destinations (rule_id, destination_id) VALUES (?1, ?2)",
                            params![rule.rule_id, destination_id],
                        )
                        .map_err(database_error("creating a rule"))?;
                }
                transaction
                    .commit()
                    .map_err(database_error("creating a rule"))?;
                select_rules(connection, account_row)?
                    .into_iter()
                    .find(|stored| stored.rule_id == rule.rule_id)
                    .ok_or_else(|| StoreError::Database {
                        context: "creating a rule",
                        message: "the new rule was not found after commit".to_owned(),
                    })
            })
            .await
    }

    async fn list_rules(&self, account: &AccountId) -> Result<Vec<AlertRuleRecord>, StoreError> {
        let account = account.clone();
        self.inner
            .administer(move |connection| {
                let Some(account_row) = account_row(connection, &account)? else {
                    return Ok(Vec::new());
                };
                select_rules(connection, account_row)
            })
            .await
    }

    async fn set_rule_enabled(
        &self,
        account: &AccountId,
        rule_id: &str,
        enabled: bool,
    ) -> Result<bool, StoreError> {
        let account = account.clone();
        let rule_id = rule_id.to_owned();
        self.inner
            .administer(move |connection| {
                let Some(account_row) = account_row(connection, &account)? else {
                    return Ok(false);
                };
                let changed = connection
                    .execute(
                        "UPDATE alert_rules SET enabled = ?3 WHERE rule_id = ?1 AND account_row = ?2",
                        params![rule_id, account_row, enabled],
                    )
                    .map_err(database_error("changing a rule"))?;
                Ok(changed > 0)
            })
            .await
    }

    async fn delete_rule(&self, account: &AccountId, rule_id: &str) -> Result<bool, StoreError> {
        let account = account.clone();
        let rule_id = rule_id.to_owned();
        self.inner
            .administer(move |connection| {
                let Some(account_row) = account_row(connection, &account)? else {
                    return Ok(false);
                };
                let transaction = connection
                    .transaction()
                    .map_err(database_error("deleting a rule"))?;
                transaction
                    .execute(
                        "DELETE FROM alert_rule_destinations WHERE rule_id IN \
                         (SELECT rule_id FROM alert_rules WHERE rule_id = ?1 AND account_row = ?2)",
                        params![rule_id, account_row],
                    )
                    .map_err(database_error("deleting a rule"))?;
                let deleted = transaction
                    .execute(
                        "DELETE FROM alert_rules WHERE rule_id = ?1 AND account_row = ?2",
                        params![rule_id, account_row],
                    )
                    .map_err(database_error("deleting a rule"))?;
                transaction
                    .commit()
                    .map_err(database_error("deleting a rule"))?;
                Ok(deleted > 0)
            })
            .await
    }

    async fn delivery_cursor(
        &self,
        destination_id: &str,
    ) -> Result<Option<DeliveryCursor>, StoreError> {
        let destination_id = destination_id.to_owned();
        self.inner
            .administer(move |connection| {
                connection
                    .query_row(
                        "SELECT cursor_next_seq, cursor_windows FROM alert_destinations WHERE destination_id = ?1",
                        [&destination_id],
                        |row| Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?)),
                    )
                    .optional()
                    .map_err(database_error("reading a delivery cursor"))
                    .map(|found| {
                        found.map(|(next_seq, windows)| {
                            DeliveryCursor::from_stored(next_seq as u64, &windows)
                        })
                    })
            })
            .await
    }

    async fn advance_cursor(
        &self,
        destination_id: &str,
        expected_next_seq: u64,
        cursor: &DeliveryCursor,
        deliveries: &[NewDelivery],
    ) -> Result<bool, StoreError> {
        let destination_id = destination_id.to_owned();
        let cursor = cursor.clone();
        let deliveries = deliveries.to_vec();
        self.inner
            .administer(move |connection| {
                let transaction = connection
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(database_error("advancing a delivery cursor"))?;
                let account_row: Option<i64> = transaction
                    .query_row(
                        "UPDATE alert_destinations SET cursor_next_seq = ?3, cursor_windows = ?4 \
                         WHERE destination_id = ?1 AND cursor_next_seq = ?2 RETURNING account_row",
                        params![
                            destination_id,
                            expected_next_seq as i64,
                            cursor.next_seq as i64,
                            cursor.windows_to_text(),
                        ],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(database_error("advancing a delivery cursor"))?;
                let Some(account_row) = account_row else {
                    return Ok(false);
                };
                for delivery in &deliveries {
                    insert_delivery(&transaction, account_row, delivery)?;
                }
                transaction
                    .commit()
                    .map_err(database_error("advancing a delivery cursor"))?;
                Ok(true)
            })
            .await
    }

    async fn claim_due_deliveries(
        &self,
        destination_id: &str,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let destination_id = destination_id.to_owned();
        self.inner
            .administer(move |connection| {
                let now_micros = unix_micros_of(now);
                let lease_end = now_micros.saturating_add(lease.as_micros() as i64);
                // IMMEDIATE takes the write lock first, so a second process on the same file
                // cannot claim the same rows between the select and the update.
                let transaction = connection
                    .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                    .map_err(database_error("claiming deliveries"))?;
                let claimed = select_deliveries(
                    &transaction,
                    "dl.destination_id = ?3 AND dl.delivered_at IS NULL AND dl.dead_at IS NULL \
                     AND dl.next_attempt_at <= ?1 AND (dl.claimed_until IS NULL OR dl.claimed_until <= ?1) \
                     ORDER BY dl.event_seq, dl.delivery_id LIMIT ?2",
                    &[&now_micros, &limit, &destination_id],
                )?;
                for delivery in &claimed {
                    transaction
                        .execute(
                            "UPDATE deliveries SET claimed_until = ?2 WHERE delivery_id = ?1",
                            params![delivery.delivery.delivery_id, lease_end],
                        )
                        .map_err(database_error("claiming deliveries"))?;
                }
                transaction
                    .commit()
                    .map_err(database_error("claiming deliveries"))?;
                Ok(claimed)
            })
            .await
    }

    async fn mark_delivered(
        &self,
        delivery_ids: &[String],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let delivery_ids = delivery_ids.to_vec();
        self.inner
            .administer(move |connection| {
                let transaction = connection
                    .transaction()
                    .map_err(database_error("recording deliveries"))?;
                let now = unix_micros_of(now);
                for delivery_id in &delivery_ids {
                    transaction
                        .prepare_cached(
                            "UPDATE deliveries SET delivered_at = ?2, claimed_until = NULL WHERE delivery_id = ?1",
                        )
                        .and_then(|mut statement| statement.execute(params![delivery_id, now]))
                        .map_err(database_error("recording deliveries"))?;
                }
                // One destination per lane in practice; every one touched gets its last success.
                for delivery_id in &delivery_ids {
                    transaction
                        .prepare_cached(
                            "UPDATE alert_destinations SET last_success_at = ?2 WHERE destination_id = \
                             (SELECT destination_id FROM deliveries WHERE delivery_id = ?1) \
                             AND (last_success_at IS NULL OR last_success_at < ?2)",
                        )
                        .and_then(|mut statement| statement.execute(params![delivery_id, now]))
                        .map_err(database_error("recording deliveries"))?;
                }
                transaction
                    .commit()
                    .map_err(database_error("recording deliveries"))
            })
            .await
    }

    async fn release_deliveries(
        &self,
        destination_id: &str,
        delivery_ids: &[String],
        now: OffsetDateTime,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let destination_id = destination_id.to_owned();
        let delivery_ids = delivery_ids.to_vec();
        let error = error.map(|text| bounded(text).to_owned());
        self.inner
            .administer(move |connection| {
                let transaction = connection
                    .transaction()
                    .map_err(database_error("releasing deliveries"))?;
                for delivery_id in &delivery_ids {
                    transaction
                        .prepare_cached(
                            "UPDATE deliveries SET claimed_until = NULL WHERE delivery_id = ?1 AND destination_id = ?2",
                        )
                        .and_then(|mut statement| {
                            statement.execute(params![delivery_id, destination_id])
                        })
                        .map_err(database_error("releasing deliveries"))?;
                }
                if let Some(error) = error {
                    transaction
                        .execute(
                            "UPDATE alert_destinations SET last_error = ?2, last_error_at = ?3 WHERE destination_id = ?1",
                            params![destination_id, error, unix_micros_of(now)],
                        )
                        .map_err(database_error("releasing deliveries"))?;
                }
                transaction
                    .commit()
                    .map_err(database_error("releasing deliveries"))
            })
            .await
    }

    async fn mark_failed(
        &self,
        delivery_id: &str,
        now: OffsetDateTime,
        error: &str,
        next_attempt_at: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let delivery_id = delivery_id.to_owned();
        let error = bounded(error).to_owned();
        self.inner
            .administer(move |connection| {
                let transaction = connection
                    .transaction()
                    .map_err(database_error("recording a failed delivery"))?;
                let now = unix_micros_of(now);
                match next_attempt_at {
                    Some(next_attempt_at) => transaction.execute(
                        "UPDATE deliveries SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3, claimed_until = NULL \
                         WHERE delivery_id = ?1",
                        params![delivery_id, error, unix_micros_of(next_attempt_at)],
                    ),
                    None => transaction.execute(
                        "UPDATE deliveries SET attempts = attempts + 1, last_error = ?2, dead_at = ?3, claimed_until = NULL \
                         WHERE delivery_id = ?1",
                        params![delivery_id, error, now],
                    ),
                }
                .map_err(database_error("recording a failed delivery"))?;
                transaction
                    .execute(
                        "UPDATE alert_destinations SET last_error = ?2, last_error_at = ?3 WHERE destination_id = \
                         (SELECT destination_id FROM deliveries WHERE delivery_id = ?1)",
                        params![delivery_id, error, now],
                    )
                    .map_err(database_error("recording a failed delivery"))?;
                transaction
                    .commit()
                    .map_err(database_error("recording a failed delivery"))
            })
            .await
    }

    async fn record_test_result(
        &self,
        account: &AccountId,
        destination_id: &str,
        now: OffsetDateTime,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let account = account.clone();
        let destination_id = destination_id.to_owned();
        let error = error.map(|text| bounded(text).to_owned());
        self.inner
            .administer(move |connection| {
                let account_row = required_account_row(connection, &account)?;
                let now = unix_micros_of(now);
                match error {
                    None => connection.execute(
                        "UPDATE alert_destinations SET last_success_at = ?3 WHERE destination_id = ?1 AND account_row = ?2",
                        params![destination_id, account_row, now],
                    ),
                    Some(error) => connection.execute(
                        "UPDATE alert_destinations SET last_error = ?4, last_error_at = ?3 WHERE destination_id = ?1 AND account_row = ?2",
                        params![destination_id, account_row, now, error],
                    ),
                }
                .map_err(database_error("recording a test delivery"))?;
                Ok(())
            })
            .await
    }

    async fn list_dead_letters(
        &self,
        account: &AccountId,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let account = account.clone();
        self.inner
            .administer(move |connection| {
                let Some(account_row) = account_row(connection, &account)? else {
                    return Ok(Vec::new());
                };
                select_deliveries(
                    connection,
                    "dl.account_row = ?1 AND dl.dead_at IS NOT NULL ORDER BY dl.dead_at DESC, dl.delivery_id LIMIT ?2",
                    &[&account_row, &limit],
                )
            })
            .await
    }

    async fn retry_dead_letter(
        &self,
        account: &AccountId,
        delivery_id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let account = account.clone();
        let delivery_id = delivery_id.to_owned();
        self.inner
            .administer(move |connection| {
                let Some(account_row) = account_row(connection, &account)? else {
                    return Ok(false);
                };
                let changed = connection
                    .execute(
                        "UPDATE deliveries SET dead_at = NULL, attempts = 0, next_attempt_at = ?3, claimed_until = NULL \
                         WHERE delivery_id = ?1 AND account_row = ?2 AND dead_at IS NOT NULL",
                        params![delivery_id, account_row, unix_micros_of(now)],
                    )
                    .map_err(database_error("retrying a delivery"))?;
                Ok(changed > 0)
            })
            .await
    }
}
