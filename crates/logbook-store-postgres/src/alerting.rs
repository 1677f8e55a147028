//! `AlertingStore` on PostgreSQL: rules, destinations with their delivery cursors, and the
//! delivery outbox (tables of migration 0006), on the shared pool. Several nodes run a delivery
//! worker against one database: a cursor only moves from the position a node read (compare and
//! set), and due deliveries are claimed with `FOR UPDATE SKIP LOCKED` plus a lease
//! (`claimed_until`), so no two nodes send the same delivery at once.

use std::time::Duration;

use async_trait::async_trait;
use logbook_core::alerting::{
    AlertRuleRecord, DeliveryCursor, DeliveryReason, DeliveryRecord, DestinationKind,
    DestinationRecord, NewAlertRule, NewDelivery, NewDestination, SigningSecret,
    threshold_from_stored,
};
use logbook_core::store::AlertingStore;
use logbook_core::{AccountId, StoreError};
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};

use crate::encoding::{micros_to_time, unix_micros_of};
use crate::errors::database_error;
use crate::{PostgresStore, parse_stored_account};

/// Longest error text kept per delivery or destination, in bytes.
const MAX_ERROR_BYTES: usize = 1000;

fn bounded(text: &str) -> &str {
    let mut end = text.len().min(MAX_ERROR_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

const DESTINATION_COLUMNS: &str = "d.destination_id, a.name, d.name, d.kind, d.address, d.secret, d.streams_whole_log, d.created_at, \
     d.last_success_at, d.last_error, d.last_error_at, \
     (SELECT count(*) FROM deliveries p WHERE p.destination_id = d.destination_id AND p.delivered_at IS NULL AND p.dead_at IS NULL), \
     (SELECT count(*) FROM deliveries p WHERE p.destination_id = d.destination_id AND p.dead_at IS NOT NULL), \
     d.trusted_ca_pem, \
     (SELECT min(p.created_at) FROM deliveries p WHERE p.destination_id = d.destination_id AND p.delivered_at IS NULL AND p.dead_at IS NULL)";

fn destination_from_row(row: &Row) -> Result<DestinationRecord, StoreError> {
    Ok(DestinationRecord {
        destination_id: row.get(0),
        account: parse_stored_account(row.get(1))?,
        name: row.get(2),
        kind: DestinationKind::from_stored(row.get(3), row.get(4), row.get(13)).map_err(
            |error| StoreError::Database {
                context: "reading destinations",
                message: error.to_string(),
            },
        )?,
        secret: SigningSecret(row.get(5)),
        streams_whole_log: row.get(6),
        created_at: micros_to_time(row.get(7)),
        last_success_at: row.get::<_, Option<i64>>(8).map(micros_to_time),
        last_error: row.get(9),
        last_error_at: row.get::<_, Option<i64>>(10).map(micros_to_time),
        pending_count: row.get::<_, i64>(11) as u64,
        dead_letter_count: row.get::<_, i64>(12) as u64,
        oldest_pending_at: row.get::<_, Option<i64>>(14).map(micros_to_time),
    })
}

async fn select_destinations(
    client: &impl GenericClient,
    filter: &str,
    parameters: &[&(dyn ToSql + Sync)],
) -> Result<Vec<DestinationRecord>, StoreError> {
    client
        .query(
            &format!(
                "SELECT {DESTINATION_COLUMNS} FROM alert_destinations d JOIN accounts a ON a.account_row = d.account_row \
                 WHERE {filter} ORDER BY d.created_at, d.destination_id"
            ),
            parameters,
        )
        .await
        .map_err(database_error("reading destinations"))?
        .iter()
        .map(destination_from_row)
        .collect()
}

async fn select_rules(
    client: &impl GenericClient,
    account_row: i64,
) -> Result<Vec<AlertRuleRecord>, StoreError> {
    client
        .query(
            "SELECT r.rule_id, a.name, r.name, r.query_text, r.threshold_count, r.threshold_window_seconds, r.enabled, r.created_at, \
             ARRAY(SELECT destination_id FROM alert_rule_destinations rd WHERE rd.rule_id = r.rule_id ORDER BY destination_id) \
             FROM alert_rules r JOIN accounts a ON a.account_row = r.account_row WHERE r.account_row = $1 \
             ORDER BY r.created_at, r.rule_id",
            &[&account_row],
        )
        .await
        .map_err(database_error("reading rules"))?
        .iter()
        .map(|row| {
            Ok(AlertRuleRecord {
                rule_id: row.get(0),
                account: parse_stored_account(row.get(1))?,
                name: row.get(2),
                query_text: row.get(3),
                threshold: threshold_from_stored(row.get(4), row.get(5)),
                enabled: row.get(6),
                created_at: micros_to_time(row.get(7)),
                destination_ids: row.get(8),
            })
        })
        .collect()
}

const DELIVERY_COLUMNS: &str = "dl.delivery_id, dl.destination_id, a.name, dl.event_seq, dl.event_json, dl.rule_id, dl.rule_name, dl.rule_query, \
     dl.threshold_count, dl.threshold_window_seconds, dl.matched_count, dl.created_at, dl.attempts, dl.next_attempt_at, \
     dl.delivered_at, dl.dead_at, dl.last_error";

fn delivery_from_row(row: &Row) -> Result<DeliveryRecord, StoreError> {
    let reason = match row.get::<_, Option<String>>(5) {
        None => DeliveryReason::WholeLog,
        Some(rule_id) => DeliveryReason::Rule {
            rule_id,
            rule_name: row.get::<_, Option<String>>(6).unwrap_or_default(),
            query_text: row.get::<_, Option<String>>(7).unwrap_or_default(),
            threshold: threshold_from_stored(row.get(8), row.get(9)),
            matched_count: row
                .get::<_, Option<i64>>(10)
                .and_then(|count| u32::try_from(count).ok()),
        },
    };
    Ok(DeliveryRecord {
        delivery: NewDelivery {
            delivery_id: row.get(0),
            destination_id: row.get(1),
            account: parse_stored_account(row.get(2))?,
            event_seq: row.get::<_, i64>(3) as u64,
            event_json: row.get(4),
            reason,
            created_at: micros_to_time(row.get(11)),
        },
        attempts: u32::try_from(row.get::<_, i64>(12)).unwrap_or(u32::MAX),
        next_attempt_at: micros_to_time(row.get(13)),
        delivered_at: row.get::<_, Option<i64>>(14).map(micros_to_time),
        dead_at: row.get::<_, Option<i64>>(15).map(micros_to_time),
        last_error: row.get(16),
    })
}

async fn insert_delivery(
    client: &impl GenericClient,
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
    let threshold_count = threshold.map(|threshold| i64::from(threshold.count));
    let threshold_window = threshold.map(|threshold| threshold.window.as_secs() as i64);
    let matched_count = matched_count.map(i64::from);
    client
        .execute(
            "INSERT INTO deliveries (delivery_id, account_row, destination_id, event_seq, event_json, rule_id, rule_name, rule_query, \
             threshold_count, threshold_window_seconds, matched_count, created_at, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) ON CONFLICT (delivery_id) DO NOTHING",
            &[
                &delivery.delivery_id,
                &account_row,
                &delivery.destination_id,
                &(delivery.event_seq as i64),
                &delivery.event_json,
                &rule_id,
                &rule_name,
                &rule_query,
                &threshold_count,
                &threshold_window,
                &matched_count,
                &unix_micros_of(delivery.created_at),
            ],
        )
        .await
        .map_err(database_error("queueing a delivery"))?;
    Ok(())
}

impl PostgresStore {
    async fn required_account_row(&self, account: &AccountId) -> Result<i64, StoreError> {
        self.inner
            .account_row(account)
            .await?
            .ok_or_else(|| StoreError::AccountNotFound(account.clone()))
    }
}

#[async_trait]
impl AlertingStore for PostgresStore {
    async fn create_destination(
        &self,
        destination: NewDestination,
    ) -> Result<DestinationRecord, StoreError> {
        let account_row = self.required_account_row(&destination.account).await?;
        let client = self.inner.connection().await?;
        client
            .execute(
                "INSERT INTO alert_destinations (destination_id, account_row, name, kind, address, secret, streams_whole_log, created_at, cursor_next_seq, trusted_ca_pem) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                &[
                    &destination.destination_id,
                    &account_row,
                    &destination.name,
                    &destination.kind.kind_name(),
                    &destination.kind.address(),
                    &destination.secret.0,
                    &destination.streams_whole_log,
                    &unix_micros_of(destination.created_at),
                    &(destination.start_seq as i64),
                    &destination.kind.trusted_ca_pem(),
                ],
            )
            .await
            .map_err(database_error("creating a destination"))?;
        select_destinations(
            &**client,
            "d.destination_id = $1",
            &[&destination.destination_id],
        )
        .await?
        .pop()
        .ok_or(StoreError::DestinationNotFound(destination.destination_id))
    }

    async fn list_destinations(
        &self,
        account: &AccountId,
    ) -> Result<Vec<DestinationRecord>, StoreError> {
        let Some(account_row) = self.inner.account_row(account).await? else {
            return Ok(Vec::new());
        };
        let client = self.inner.connection().await?;
        select_destinations(&**client, "d.account_row = $1", &[&account_row]).await
    }

    async fn list_all_destinations(&self) -> Result<Vec<DestinationRecord>, StoreError> {
        let client = self.inner.connection().await?;
        select_destinations(&**client, "true", &[]).await
    }

    async fn delete_destination(
        &self,
        account: &AccountId,
        destination_id: &str,
    ) -> Result<bool, StoreError> {
        let Some(account_row) = self.inner.account_row(account).await? else {
            return Ok(false);
        };
        let mut client = self.inner.connection().await?;
        let transaction = client
            .transaction()
            .await
            .map_err(database_error("deleting a destination"))?;
        let owned = transaction
            .query_opt(
                "SELECT 1 FROM alert_destinations WHERE destination_id = $1 AND account_row = $2 FOR UPDATE",
                &[&destination_id, &account_row],
            )
            .await
            .map_err(database_error("deleting a destination"))?;
        if owned.is_none() {
            return Ok(false);
        }
        for statement in [
            "DELETE FROM alert_rule_destinations WHERE destination_id = $1",
            "DELETE FROM deliveries WHERE destination_id = $1",
            "DELETE FROM alert_destinations WHERE destination_id = $1",
        ] {
            transaction
                .execute(statement, &[&destination_id])
                .await
                .map_err(database_error("deleting a destination"))?;
        }
        transaction
            .commit()
            .await
            .map_err(database_error("deleting a destination"))?;
        Ok(true)
    }

    async fn create_rule(&self, rule: NewAlertRule) -> Result<AlertRuleRecord, StoreError> {
        let account_row = self.required_account_row(&rule.account).await?;
        let mut client = self.inner.connection().await?;
        let transaction = client
            .transaction()
            .await
            .map_err(database_error("creating a rule"))?;
        let threshold_count = rule.threshold.map(|threshold| i64::from(threshold.count));
        let threshold_window = rule
            .threshold
            .map(|threshold| threshold.window.as_secs() as i64);
        transaction
            .execute(
                "INSERT INTO alert_rules (rule_id, account_row, name, query_text, threshold_count, threshold_window_seconds, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &rule.rule_id,
                    &account_row,
                    &rule.name,
                    &rule.query_text,
                    &threshold_count,
                    &threshold_window,
                    &unix_micros_of(rule.created_at),
                ],
            )
            .await
            .map_err(database_error("creating a rule"))?;
        for destination_id in &rule.destination_ids {
            let owned = transaction
                .query_opt(
                    "SELECT 1 FROM alert_destinations WHERE destination_id = $1 AND account_row = $2",
                    &[destination_id, &account_row],
                )
                .await
                .map_err(database_error("creating a rule"))?;
            if owned.is_none() {
                // Dropping the transaction rolls the rule back.
                return Err(StoreError::DestinationNotFound(destination_id.clone()));
            }
            transaction
                .execute(
                    "INSERT INTO alert_rule_destinations (rule_id, destination_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    &[&rule.rule_id, destination_id],
                )
                .await
                .map_err(database_error("creating a rule"))?;
        }
        transaction
            .commit()
            .await
            .map_err(database_error("creating a rule"))?;
        select_rules(&**client, account_row)
            .await?
            .into_iter()
            .find(|stored| stored.rule_id == rule.rule_id)
            .ok_or_else(|| StoreError::Database {
                context: "creating a rule",
                message: "the new rule was not found after commit".to_owned(),
            })
    }

    async fn list_rules(&self, account: &AccountId) -> Result<Vec<AlertRuleRecord>, StoreError> {
        let Some(account_row) = self.inner.account_row(account).await? else {
            return Ok(Vec::new());
        };
        let client = self.inner.connection().await?;
        select_rules(&**client, account_row).await
    }

    async fn set_rule_enabled(
        &self,
        account: &AccountId,
        rule_id: &str,
        enabled: bool,
    ) -> Result<bool, StoreError> {
        let Some(account_row) = self.inner.account_row(account).await? else {
            return Ok(false);
        };
        let client = self.inner.connection().await?;
        let changed = client
            .execute(
                "UPDATE alert_rules SET enabled = $3 WHERE rule_id = $1 AND account_row = $2",
                &[&rule_id, &account_row, &enabled],
            )
            .await
            .map_err(database_error("changing a rule"))?;
        Ok(changed > 0)
    }

    async fn delete_rule(&self, account: &AccountId, rule_id: &str) -> Result<bool, StoreError> {
        let Some(account_row) = self.inner.account_row(account).await? else {
            return Ok(false);
        };
        let mut client = self.inner.connection().await?;
        let transaction = client
            .transaction()
            .await
            .map_err(database_error("deleting a rule"))?;
        transaction
            .execute(
                "DELETE FROM alert_rule_destinations WHERE rule_id IN \
                 (SELECT rule_id FROM alert_rules WHERE rule_id = $1 AND account_row = $2)",
                &[&rule_id, &account_row],
            )
            .await
            .map_err(database_error("deleting a rule"))?;
        let deleted = transaction
            .execute(
                "DELETE FROM alert_rules WHERE rule_id = $1 AND account_row = $2",
                &[&rule_id, &account_row],
            )
            .await
            .map_err(database_error("deleting a rule"))?;
        transaction
            .commit()
            .await
            .map_err(database_error("deleting a rule"))?;
        Ok(deleted > 0)
    }

    async fn delivery_cursor(
        &self,
        destination_id: &str,
    ) -> Result<Option<DeliveryCursor>, StoreError> {
        let client = self.inner.connection().await?;
        Ok(client
            .query_opt(
                "SELECT cursor_next_seq, cursor_windows FROM alert_destinations WHERE destination_id = $1",
                &[&destination_id],
            )
            .await
            .map_err(database_error("reading a delivery cursor"))?
            .map(|row| DeliveryCursor::from_stored(row.get::<_, i64>(0) as u64, row.get(1))))
    }

    async fn advance_cursor(
        &self,
        destination_id: &str,
        expected_next_seq: u64,
        cursor: &DeliveryCursor,
        deliveries: &[NewDelivery],
    ) -> Result<bool, StoreError> {
        let mut client = self.inner.connection().await?;
        let transaction = client
            .transaction()
            .await
            .map_err(database_error("advancing a delivery cursor"))?;
        // The row lock of this UPDATE makes a second node's compare-and-set wait, then fail.
        let moved = transaction
            .query_opt(
                "UPDATE alert_destinations SET cursor_next_seq = $3, cursor_windows = $4 \
                 WHERE destination_id = $1 AND cursor_next_seq = $2 RETURNING account_row",
                &[
                    &destination_id,
                    &(expected_next_seq as i64),
                    &(cursor.next_seq as i64),
                    &cursor.windows_to_text(),
                ],
            )
            .await
            .map_err(database_error("advancing a delivery cursor"))?;
        let Some(moved) = moved else {
            return Ok(false);
        };
        let account_row: i64 = moved.get(0);
        for delivery in deliveries {
            insert_delivery(&*transaction, account_row, delivery).await?;
        }
        transaction
            .commit()
            .await
            .map_err(database_error("advancing a delivery cursor"))?;
        Ok(true)
    }

    async fn claim_due_deliveries(
        &self,
        destination_id: &str,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let client = self.inner.connection().await?;
        let now_micros = unix_micros_of(now);
        let lease_end = now_micros.saturating_add(lease.as_micros() as i64);
        // SKIP LOCKED: rows another node is claiming right now are left to it.
        let sql = format!(
            "WITH claimed AS ( \
                 UPDATE deliveries SET claimed_until = $2 WHERE delivery_id IN ( \
                     SELECT delivery_id FROM deliveries \
                     WHERE destination_id = $4 AND delivered_at IS NULL AND dead_at IS NULL AND next_attempt_at <= $1 \
                       AND (claimed_until IS NULL OR claimed_until <= $1) \
                     ORDER BY event_seq, delivery_id LIMIT $3 FOR UPDATE SKIP LOCKED) \
                 RETURNING *) \
             SELECT {DELIVERY_COLUMNS} FROM claimed dl JOIN accounts a ON a.account_row = dl.account_row \
             ORDER BY dl.event_seq, dl.delivery_id"
        );
        client
            .query(
                &sql,
                &[&now_micros, &lease_end, &i64::from(limit), &destination_id],
            )
            .await
            .map_err(database_error("claiming deliveries"))?
            .iter()
            .map(delivery_from_row)
            .collect()
    }

    async fn mark_delivered(
        &self,
        delivery_ids: &[String],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut client = self.inner.connection().await?;
        let transaction = client
            .transaction()
            .await
            .map_err(database_error("recording deliveries"))?;
        let now = unix_micros_of(now);
        transaction
            .execute(
                "WITH sent AS ( \
                     UPDATE deliveries SET delivered_at = $2, claimed_until = NULL \
                     WHERE delivery_id = ANY($1) RETURNING destination_id) \
                 UPDATE alert_destinations SET last_success_at = $2 \
                 WHERE destination_id IN (SELECT destination_id FROM sent)",
                &[&delivery_ids, &now],
            )
            .await
            .map_err(database_error("recording deliveries"))?;
        transaction
            .commit()
            .await
            .map_err(database_error("recording deliveries"))
    }

    async fn release_deliveries(
        &self,
        destination_id: &str,
        delivery_ids: &[String],
        now: OffsetDateTime,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let error = error.map(bounded);
        let mut client = self.inner.connection().await?;
        let transaction = client
            .transaction()
            .await
            .map_err(database_error("releasing deliveries"))?;
        transaction
            .execute(
                "UPDATE deliveries SET claimed_until = NULL WHERE delivery_id = ANY($1) AND destination_id = $2",
                &[&delivery_ids, &destination_id],
            )
            .await
            .map_err(database_error("releasing deliveries"))?;
        if let Some(error) = error {
            transaction
                .execute(
                    "UPDATE alert_destinations SET last_error = $2, last_error_at = $3 WHERE destination_id = $1",
                    &[&destination_id, &error, &unix_micros_of(now)],
                )
                .await
                .map_err(database_error("releasing deliveries"))?;
        }
        transaction
            .commit()
            .await
            .map_err(database_error("releasing deliveries"))
    }

    async fn mark_failed(
        &self,
        delivery_id: &str,
        now: OffsetDateTime,
        error: &str,
        next_attempt_at: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        let error = bounded(error);
        let mut client = self.inner.connection().await?;
        let transaction = client
            .transaction()
            .await
            .map_err(database_error("recording a failed delivery"))?;
        let now = unix_micros_of(now);
        match next_attempt_at {
            Some(next_attempt_at) => {
                transaction
                    .execute(
                        "UPDATE deliveries SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3, claimed_until = NULL \
                         WHERE delivery_id = $1",
                        &[&delivery_id, &error, &unix_micros_of(next_attempt_at)],
                    )
                    .await
            }
            None => {
                transaction
                    .execute(
                        "UPDATE deliveries SET attempts = attempts + 1, last_error = $2, dead_at = $3, claimed_until = NULL \
                         WHERE delivery_id = $1",
                        &[&delivery_id, &error, &now],
                    )
                    .await
            }
        }
        .map_err(database_error("recording a failed delivery"))?;
        transaction
            .execute(
                "UPDATE alert_destinations SET last_error = $2, last_error_at = $3 WHERE destination_id = \
                 (SELECT destination_id FROM deliveries WHERE delivery_id = $1)",
                &[&delivery_id, &error, &now],
            )
            .await
            .map_err(database_error("recording a failed delivery"))?;
        transaction
            .commit()
            .await
            .map_err(database_error("recording a failed delivery"))
    }

    async fn record_test_result(
        &self,
        account: &AccountId,
        destination_id: &str,
        now: OffsetDateTime,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let account_row = self.required_account_row(account).await?;
        let client = self.inner.connection().await?;
        let now = unix_micros_of(now);
        match error {
            None => {
                client
                    .execute(
                        "UPDATE alert_destinations SET last_success_at = $3 WHERE destination_id = $1 AND account_row = $2",
                        &[&destination_id, &account_row, &now],
                    )
                    .await
            }
            Some(error) => {
                client
                    .execute(
                        "UPDATE alert_destinations SET last_error = $4, last_error_at = $3 WHERE destination_id = $1 AND account_row = $2",
                        &[&destination_id, &account_row, &now, &bounded(error)],
                    )
                    .await
            }
        }
        .map_err(database_error("recording a test delivery"))?;
        Ok(())
    }

    async fn list_dead_letters(
        &self,
        account: &AccountId,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let Some(account_row) = self.inner.account_row(account).await? else {
            return Ok(Vec::new());
        };
        let client = self.inner.connection().await?;
        client
            .query(
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries dl JOIN accounts a ON a.account_row = dl.account_row \
                     WHERE dl.account_row = $1 AND dl.dead_at IS NOT NULL ORDER BY dl.dead_at DESC, dl.delivery_id LIMIT $2"
                ),
                &[&account_row, &i64::from(limit)],
            )
            .await
            .map_err(database_error("reading dead deliveries"))?
            .iter()
            .map(delivery_from_row)
            .collect()
    }

    async fn retry_dead_letter(
        &self,
        account: &AccountId,
        delivery_id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let Some(account_row) = self.inner.account_row(account).await? else {
            return Ok(false);
        };
        let client = self.inner.connection().await?;
        let changed = client
            .execute(
                "UPDATE deliveries SET dead_at = NULL, attempts = 0, next_attempt_at = $3, claimed_until = NULL \
                 WHERE delivery_id = $1 AND account_row = $2 AND dead_at IS NOT NULL",
                &[&delivery_id, &account_row, &unix_micros_of(now)],
            )
            .await
            .map_err(database_error("retrying a delivery"))?;
        Ok(changed > 0)
    }
}
