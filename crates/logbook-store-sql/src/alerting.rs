//! `AlertingStore` in the SQL both stores run: rules, destinations with their delivery cursors, and
//! the delivery outbox (tables of migrations 0006 and 0011). Several nodes may run a delivery
//! worker against one database: a cursor only moves from the position a node read (compare and
//! set), and each destination's lane claims its due deliveries with a lease (`claimed_until`),
//! on PostgreSQL with `FOR UPDATE SKIP LOCKED` so no two nodes send the same delivery at once, on
//! SQLite inside one `BEGIN IMMEDIATE` transaction, which already excludes every other writer.

use std::time::Duration;

use async_trait::async_trait;
use logbook_core::alerting::{
    AlertRuleRecord, DeliveryCursor, DeliveryReason, DeliveryRecord, DestinationKind,
    DestinationRecord, NewAlertRule, NewDelivery, NewDestination, SigningSecret,
    threshold_from_stored,
};
use logbook_core::ids::{AlertRuleId, DestinationId};
use logbook_core::store::AlertingStore;
use logbook_core::{AccountId, StoreError};
use time::OffsetDateTime;

use crate::encoding::unix_micros_of;
use crate::executor::{SqlDatabase, SqlExecutor};
use crate::shared_store::{SharedStore, account_row, existing_account_row, stored_account};
use crate::value::{SqlRow, SqlValue};

/// Longest error text kept per delivery or destination, in bytes.
const MAX_ERROR_BYTES: usize = 1000;

fn bounded(text: &str) -> String {
    let mut end = text.len().min(MAX_ERROR_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

const DESTINATION_COLUMNS: &str = "d.destination_id, a.name, d.name, d.kind, d.address, d.secret, \
     d.streams_whole_log, d.created_at, d.last_success_at, d.last_error, d.last_error_at, \
     (SELECT count(*) FROM deliveries p WHERE p.destination_id = d.destination_id \
      AND p.delivered_at IS NULL AND p.dead_at IS NULL), \
     (SELECT count(*) FROM deliveries p WHERE p.destination_id = d.destination_id \
      AND p.dead_at IS NOT NULL), \
     d.trusted_ca_pem, \
     (SELECT min(p.created_at) FROM deliveries p WHERE p.destination_id = d.destination_id \
      AND p.delivered_at IS NULL AND p.dead_at IS NULL)";

fn destination_from_row(row: &SqlRow) -> Result<DestinationRecord, StoreError> {
    const READING: &str = "reading destinations";
    Ok(DestinationRecord {
        destination_id: row.text(0)?.into(),
        account: stored_account(READING, &row.text(1)?)?,
        name: row.text(2)?,
        kind: DestinationKind::from_stored(
            &row.text(3)?,
            &row.text(4)?,
            row.optional_text(13)?.as_deref(),
        )
        .map_err(|error| StoreError::Database {
            context: READING,
            message: error.to_string(),
        })?,
        secret: SigningSecret(row.text(5)?),
        streams_whole_log: row.boolean(6)?,
        created_at: row.time(7)?,
        last_success_at: row.optional_time(8)?,
        last_error: row.optional_text(9)?,
        last_error_at: row.optional_time(10)?,
        pending_count: row.count(11)?,
        dead_letter_count: row.count(12)?,
        oldest_pending_at: row.optional_time(14)?,
    })
}

async fn select_destinations(
    sql: &dyn SqlExecutor,
    condition: &str,
    parameters: &[SqlValue],
) -> Result<Vec<DestinationRecord>, StoreError> {
    sql.query(
        "reading destinations",
        &format!(
            "SELECT {DESTINATION_COLUMNS} FROM alert_destinations d \
             JOIN accounts a ON a.account_row = d.account_row \
             WHERE {condition} ORDER BY d.created_at, d.destination_id"
        ),
        parameters,
    )
    .await?
    .iter()
    .map(destination_from_row)
    .collect()
}

async fn select_rules(
    sql: &dyn SqlExecutor,
    account_row: i64,
) -> Result<Vec<AlertRuleRecord>, StoreError> {
    const READING: &str = "reading rules";
    sql.query(
        READING,
        "SELECT r.rule_id, a.name, r.name, r.query_text, r.threshold_count, \
         r.threshold_window_seconds, r.enabled, r.created_at, \
         (SELECT string_agg(rd.destination_id, ' ') FROM alert_rule_destinations rd \
          WHERE rd.rule_id = r.rule_id) \
         FROM alert_rules r JOIN accounts a ON a.account_row = r.account_row \
         WHERE r.account_row = $1 ORDER BY r.created_at, r.rule_id",
        &[account_row.into()],
    )
    .await?
    .iter()
    .map(|row| {
        // Destination ids hold no spaces (they are made by Logbook); sorted so both stores agree.
        let mut destination_ids: Vec<DestinationId> = row
            .optional_text(8)?
            .unwrap_or_default()
            .split(' ')
            .filter(|id| !id.is_empty())
            .map(DestinationId::from)
            .collect();
        destination_ids.sort();
        Ok(AlertRuleRecord {
            rule_id: row.text(0)?.into(),
            account: stored_account(READING, &row.text(1)?)?,
            name: row.text(2)?,
            query_text: row.text(3)?,
            threshold: threshold_from_stored(row.optional_integer(4)?, row.optional_integer(5)?),
            destination_ids,
            enabled: row.boolean(6)?,
            created_at: row.time(7)?,
        })
    })
    .collect()
}

const DELIVERY_COLUMNS: &str = "dl.delivery_id, dl.destination_id, a.name, dl.event_seq, \
     dl.event_json, dl.rule_id, dl.rule_name, dl.rule_query, dl.threshold_count, \
     dl.threshold_window_seconds, dl.matched_count, dl.created_at, dl.attempts, \
     dl.next_attempt_at, dl.delivered_at, dl.dead_at, dl.last_error";

fn delivery_from_row(row: &SqlRow) -> Result<DeliveryRecord, StoreError> {
    let reason = match row.optional_text(5)? {
        None => DeliveryReason::WholeLog,
        Some(rule_id) => DeliveryReason::Rule {
            rule_id: rule_id.into(),
            rule_name: row.optional_text(6)?.unwrap_or_default(),
            query_text: row.optional_text(7)?.unwrap_or_default(),
            threshold: threshold_from_stored(row.optional_integer(8)?, row.optional_integer(9)?),
            matched_count: row
                .optional_integer(10)?
                .and_then(|count| u32::try_from(count).ok()),
        },
    };
    Ok(DeliveryRecord {
        delivery: NewDelivery {
            delivery_id: row.text(0)?,
            destination_id: row.text(1)?.into(),
            account: stored_account("reading deliveries", &row.text(2)?)?,
            event_seq: row.count(3)?,
            event_json: row.text(4)?,
            reason,
            created_at: row.time(11)?,
        },
        attempts: u32::try_from(row.count(12)?).unwrap_or(u32::MAX),
        next_attempt_at: row.time(13)?,
        delivered_at: row.optional_time(14)?,
        dead_at: row.optional_time(15)?,
        last_error: row.optional_text(16)?,
    })
}

async fn select_deliveries(
    sql: &dyn SqlExecutor,
    context: &'static str,
    condition_and_order: &str,
    parameters: &[SqlValue],
) -> Result<Vec<DeliveryRecord>, StoreError> {
    sql.query(
        context,
        &format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries dl \
             JOIN accounts a ON a.account_row = dl.account_row WHERE {condition_and_order}"
        ),
        parameters,
    )
    .await?
    .iter()
    .map(delivery_from_row)
    .collect()
}

async fn insert_delivery(
    sql: &dyn SqlExecutor,
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
    sql.execute(
        "queueing a delivery",
        "INSERT INTO deliveries (delivery_id, account_row, destination_id, event_seq, event_json, \
         rule_id, rule_name, rule_query, threshold_count, threshold_window_seconds, matched_count, \
         created_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (delivery_id) DO NOTHING",
        &[
            delivery.delivery_id.as_str().into(),
            account_row.into(),
            (&delivery.destination_id).into(),
            sequence_value(delivery.event_seq),
            delivery.event_json.as_str().into(),
            rule_id.into(),
            rule_name.into(),
            rule_query.into(),
            threshold.map(|threshold| i64::from(threshold.count)).into(),
            threshold
                .map(|threshold| threshold.window.as_secs() as i64)
                .into(),
            matched_count.map(i64::from).into(),
            created_at.into(),
            created_at.into(),
        ],
    )
    .await?;
    Ok(())
}

fn sequence_value(seq: u64) -> SqlValue {
    SqlValue::Integer(i64::try_from(seq).unwrap_or(i64::MAX))
}

/// `$first, $first + 1, ...` for `count` values, and those values, for an `IN (...)` list.
fn in_list(first: usize, values: &[String]) -> (String, Vec<SqlValue>) {
    let placeholders = (0..values.len())
        .map(|offset| format!("${}", first + offset))
        .collect::<Vec<_>>()
        .join(", ");
    let values = values.iter().map(|value| value.as_str().into()).collect();
    (placeholders, values)
}

#[async_trait]
impl<Database: SqlDatabase> AlertingStore for SharedStore<Database> {
    async fn create_destination(
        &self,
        destination: NewDestination,
    ) -> Result<DestinationRecord, StoreError> {
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    const CREATING: &str = "creating a destination";
                    let account_row =
                        existing_account_row(sql, CREATING, &destination.account).await?;
                    sql.execute(
                        CREATING,
                        "INSERT INTO alert_destinations (destination_id, account_row, name, kind, \
                         address, secret, streams_whole_log, created_at, cursor_next_seq, \
                         trusted_ca_pem) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                        &[
                            (&destination.destination_id).into(),
                            account_row.into(),
                            destination.name.as_str().into(),
                            destination.kind.kind_name().into(),
                            destination.kind.address().into(),
                            destination.secret.0.as_str().into(),
                            destination.streams_whole_log.into(),
                            unix_micros_of(destination.created_at).into(),
                            sequence_value(destination.start_seq),
                            destination.kind.trusted_ca_pem().into(),
                        ],
                    )
                    .await?;
                    select_destinations(
                        sql,
                        "d.destination_id = $1",
                        &[(&destination.destination_id).into()],
                    )
                    .await?
                    .pop()
                    .ok_or(StoreError::DestinationNotFound(destination.destination_id))
                })
            }))
            .await
    }

    async fn list_destinations(
        &self,
        account: &AccountId,
    ) -> Result<Vec<DestinationRecord>, StoreError> {
        let account = account.clone();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    select_destinations(sql, "a.name = $1", &[account.as_str().into()]).await
                })
            }))
            .await
    }

    async fn list_all_destinations(&self) -> Result<Vec<DestinationRecord>, StoreError> {
        self.database
            .read(Box::new(|sql| {
                Box::pin(async move { select_destinations(sql, "TRUE", &[]).await })
            }))
            .await
    }

    async fn delete_destination(
        &self,
        account: &AccountId,
        destination_id: &DestinationId,
    ) -> Result<bool, StoreError> {
        const DELETING: &str = "deleting a destination";
        let account = account.clone();
        let destination_id = destination_id.clone();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let Some(account_row) = account_row(sql, DELETING, &account).await? else {
                        return Ok(false);
                    };
                    let owned = sql
                        .query_optional(
                            DELETING,
                            &format!(
                                "SELECT 1 FROM alert_destinations \
                                 WHERE destination_id = $1 AND account_row = $2{}",
                                sql.backend().for_update()
                            ),
                            &[(&destination_id).into(), account_row.into()],
                        )
                        .await?;
                    if owned.is_none() {
                        return Ok(false);
                    }
                    for statement in [
                        "DELETE FROM alert_rule_destinations WHERE destination_id = $1",
                        "DELETE FROM deliveries WHERE destination_id = $1",
                        "DELETE FROM alert_destinations WHERE destination_id = $1",
                    ] {
                        sql.execute(DELETING, statement, &[(&destination_id).into()])
                            .await?;
                    }
                    Ok(true)
                })
            }))
            .await
    }

    async fn create_rule(&self, rule: NewAlertRule) -> Result<AlertRuleRecord, StoreError> {
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    const CREATING: &str = "creating a rule";
                    let account_row = existing_account_row(sql, CREATING, &rule.account).await?;
                    sql.execute(
                        CREATING,
                        "INSERT INTO alert_rules (rule_id, account_row, name, query_text, \
                         threshold_count, threshold_window_seconds, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        &[
                            (&rule.rule_id).into(),
                            account_row.into(),
                            rule.name.as_str().into(),
                            rule.query_text.as_str().into(),
                            rule.threshold
                                .map(|threshold| i64::from(threshold.count))
                                .into(),
                            rule.threshold
                                .map(|threshold| threshold.window.as_secs() as i64)
                                .into(),
                            unix_micros_of(rule.created_at).into(),
                        ],
                    )
                    .await?;
                    for destination_id in &rule.destination_ids {
                        let owned = sql
                            .query_optional(
                                CREATING,
                                "SELECT 1 FROM alert_destinations \
                                 WHERE destination_id = $1 AND account_row = $2",
                                &[destination_id.into(), account_row.into()],
                            )
                            .await?;
                        if owned.is_none() {
                            // The error rolls the whole write back, the rule included.
                            return Err(StoreError::DestinationNotFound(destination_id.clone()));
                        }
                        sql.execute(
                            CREATING,
                            "INSERT INTO alert_rule_destinations (rule_id, destination_id) \
                             VALUES ($1, $2) ON CONFLICT DO NOTHING",
                            &[(&rule.rule_id).into(), destination_id.into()],
                        )
                        .await?;
                    }
                    select_rules(sql, account_row)
                        .await?
                        .into_iter()
                        .find(|stored| stored.rule_id == rule.rule_id)
                        .ok_or_else(|| StoreError::Database {
                            context: CREATING,
                            message: "the new rule was not found after it was written".into(),
                        })
                })
            }))
            .await
    }

    async fn list_rules(&self, account: &AccountId) -> Result<Vec<AlertRuleRecord>, StoreError> {
        let account = account.clone();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    match account_row(sql, "reading rules", &account).await? {
                        Some(account_row) => select_rules(sql, account_row).await,
                        None => Ok(Vec::new()),
                    }
                })
            }))
            .await
    }

    async fn set_rule_enabled(
        &self,
        account: &AccountId,
        rule_id: &AlertRuleId,
        enabled: bool,
    ) -> Result<bool, StoreError> {
        const CHANGING: &str = "changing a rule";
        let account = account.clone();
        let rule_id = rule_id.clone();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let Some(account_row) = account_row(sql, CHANGING, &account).await? else {
                        return Ok(false);
                    };
                    let changed = sql
                        .execute(
                            CHANGING,
                            "UPDATE alert_rules SET enabled = $3 WHERE rule_id = $1 AND account_row = $2",
                            &[(&rule_id).into(), account_row.into(), enabled.into()],
                        )
                        .await?;
                    Ok(changed > 0)
                })
            }))
            .await
    }

    async fn delete_rule(
        &self,
        account: &AccountId,
        rule_id: &AlertRuleId,
    ) -> Result<bool, StoreError> {
        const DELETING: &str = "deleting a rule";
        let account = account.clone();
        let rule_id = rule_id.clone();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let Some(account_row) = account_row(sql, DELETING, &account).await? else {
                        return Ok(false);
                    };
                    sql.execute(
                        DELETING,
                        "DELETE FROM alert_rule_destinations WHERE rule_id IN \
                         (SELECT rule_id FROM alert_rules WHERE rule_id = $1 AND account_row = $2)",
                        &[(&rule_id).into(), account_row.into()],
                    )
                    .await?;
                    let deleted = sql
                        .execute(
                            DELETING,
                            "DELETE FROM alert_rules WHERE rule_id = $1 AND account_row = $2",
                            &[(&rule_id).into(), account_row.into()],
                        )
                        .await?;
                    Ok(deleted > 0)
                })
            }))
            .await
    }

    async fn delivery_cursor(
        &self,
        destination_id: &DestinationId,
    ) -> Result<Option<DeliveryCursor>, StoreError> {
        let destination_id = destination_id.clone();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    sql.query_optional(
                        "reading a delivery cursor",
                        "SELECT cursor_next_seq, cursor_windows FROM alert_destinations \
                         WHERE destination_id = $1",
                        &[destination_id.into()],
                    )
                    .await?
                    .map(|row| Ok(DeliveryCursor::from_stored(row.count(0)?, &row.text(1)?)))
                    .transpose()
                })
            }))
            .await
    }

    async fn advance_cursor(
        &self,
        destination_id: &DestinationId,
        expected_next_seq: u64,
        cursor: &DeliveryCursor,
        deliveries: &[NewDelivery],
    ) -> Result<bool, StoreError> {
        const ADVANCING: &str = "advancing a delivery cursor";
        let destination_id = destination_id.clone();
        let next_seq = cursor.next_seq;
        let windows = cursor.windows_to_text();
        let deliveries = deliveries.to_vec();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    // A compare-and-set: on PostgreSQL a second node's UPDATE waits for this
                    // one's row lock, then matches no row.
                    let Some(moved) = sql
                        .query_optional(
                            ADVANCING,
                            "UPDATE alert_destinations SET cursor_next_seq = $3, cursor_windows = $4 \
                             WHERE destination_id = $1 AND cursor_next_seq = $2 RETURNING account_row",
                            &[
                                destination_id.into(),
                                sequence_value(expected_next_seq),
                                sequence_value(next_seq),
                                windows.into(),
                            ],
                        )
                        .await?
                    else {
                        return Ok(false);
                    };
                    let account_row = moved.integer(0)?;
                    for delivery in &deliveries {
                        insert_delivery(sql, account_row, delivery).await?;
                    }
                    Ok(true)
                })
            }))
            .await
    }

    async fn claim_due_deliveries(
        &self,
        destination_id: &DestinationId,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        const CLAIMING: &str = "claiming deliveries";
        let destination_id = destination_id.clone();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let now_micros = unix_micros_of(now);
                    let lease_end =
                        now_micros.saturating_add(i64::try_from(lease.as_micros()).unwrap_or(i64::MAX));
                    // Lowest seq first, so each lane sends in the log's order. Rows another node
                    // is claiming right now are left to it (SKIP LOCKED on PostgreSQL).
                    let due: Vec<String> = sql
                        .query(
                            CLAIMING,
                            &format!(
                                "SELECT delivery_id FROM deliveries \
                                 WHERE destination_id = $1 AND delivered_at IS NULL AND dead_at IS NULL \
                                 AND next_attempt_at <= $2 AND (claimed_until IS NULL OR claimed_until <= $2) \
                                 ORDER BY event_seq, delivery_id LIMIT $3{}",
                                sql.backend().skip_locked()
                            ),
                            &[
                                (&destination_id).into(),
                                now_micros.into(),
                                i64::from(limit).into(),
                            ],
                        )
                        .await?
                        .iter()
                        .map(|row| row.text(0))
                        .collect::<Result<_, _>>()?;
                    if due.is_empty() {
                        return Ok(Vec::new());
                    }
                    let (placeholders, mut parameters) = in_list(2, &due);
                    parameters.insert(0, lease_end.into());
                    sql.execute(
                        CLAIMING,
                        &format!(
                            "UPDATE deliveries SET claimed_until = $1 WHERE delivery_id IN ({placeholders})"
                        ),
                        &parameters,
                    )
                    .await?;
                    let (placeholders, parameters) = in_list(1, &due);
                    select_deliveries(
                        sql,
                        CLAIMING,
                        &format!(
                            "dl.delivery_id IN ({placeholders}) ORDER BY dl.event_seq, dl.delivery_id"
                        ),
                        &parameters,
                    )
                    .await
                })
            }))
            .await
    }

    async fn mark_delivered(
        &self,
        delivery_ids: &[String],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if delivery_ids.is_empty() {
            return Ok(());
        }
        const RECORDING: &str = "recording deliveries";
        let delivery_ids = delivery_ids.to_vec();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let now = unix_micros_of(now);
                    // Every destination touched gets its last success (one per lane in practice),
                    // set while its deliveries are still undelivered so the subquery finds them.
                    let (placeholders, mut parameters) = in_list(2, &delivery_ids);
                    parameters.insert(0, now.into());
                    sql.execute(
                        RECORDING,
                        &format!(
                            "UPDATE alert_destinations SET last_success_at = $1 \
                             WHERE destination_id IN (SELECT destination_id FROM deliveries \
                             WHERE delivery_id IN ({placeholders})) \
                             AND (last_success_at IS NULL OR last_success_at < $1)"
                        ),
                        &parameters,
                    )
                    .await?;
                    sql.execute(
                        RECORDING,
                        &format!(
                            "UPDATE deliveries SET delivered_at = $1, claimed_until = NULL \
                             WHERE delivery_id IN ({placeholders})"
                        ),
                        &parameters,
                    )
                    .await?;
                    Ok(())
                })
            }))
            .await
    }

    async fn release_deliveries(
        &self,
        destination_id: &DestinationId,
        delivery_ids: &[String],
        now: OffsetDateTime,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        const RELEASING: &str = "releasing deliveries";
        let destination_id = destination_id.clone();
        let delivery_ids = delivery_ids.to_vec();
        let error = error.map(bounded);
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    if !delivery_ids.is_empty() {
                        let (placeholders, mut parameters) = in_list(2, &delivery_ids);
                        parameters.insert(0, (&destination_id).into());
                        sql.execute(
                            RELEASING,
                            &format!(
                                "UPDATE deliveries SET claimed_until = NULL \
                                 WHERE destination_id = $1 AND delivery_id IN ({placeholders})"
                            ),
                            &parameters,
                        )
                        .await?;
                    }
                    if let Some(error) = error {
                        sql.execute(
                            RELEASING,
                            "UPDATE alert_destinations SET last_error = $2, last_error_at = $3 \
                             WHERE destination_id = $1",
                            &[
                                destination_id.into(),
                                error.into(),
                                unix_micros_of(now).into(),
                            ],
                        )
                        .await?;
                    }
                    Ok(())
                })
            }))
            .await
    }

    async fn mark_failed(
        &self,
        delivery_id: &str,
        now: OffsetDateTime,
        error: &str,
        next_attempt_at: Option<OffsetDateTime>,
    ) -> Result<(), StoreError> {
        const RECORDING: &str = "recording a failed delivery";
        let delivery_id = delivery_id.to_owned();
        let error = bounded(error);
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let now = unix_micros_of(now);
                    match next_attempt_at {
                        Some(next_attempt_at) => {
                            sql.execute(
                                RECORDING,
                                "UPDATE deliveries SET attempts = attempts + 1, last_error = $2, \
                                 next_attempt_at = $3, claimed_until = NULL WHERE delivery_id = $1",
                                &[
                                    delivery_id.as_str().into(),
                                    error.as_str().into(),
                                    unix_micros_of(next_attempt_at).into(),
                                ],
                            )
                            .await?
                        }
                        None => {
                            sql.execute(
                                RECORDING,
                                "UPDATE deliveries SET attempts = attempts + 1, last_error = $2, \
                                 dead_at = $3, claimed_until = NULL WHERE delivery_id = $1",
                                &[
                                    delivery_id.as_str().into(),
                                    error.as_str().into(),
                                    now.into(),
                                ],
                            )
                            .await?
                        }
                    };
                    sql.execute(
                        RECORDING,
                        "UPDATE alert_destinations SET last_error = $2, last_error_at = $3 \
                         WHERE destination_id = (SELECT destination_id FROM deliveries WHERE delivery_id = $1)",
                        &[delivery_id.into(), error.into(), now.into()],
                    )
                    .await?;
                    Ok(())
                })
            }))
            .await
    }

    async fn record_test_result(
        &self,
        account: &AccountId,
        destination_id: &DestinationId,
        now: OffsetDateTime,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        const RECORDING: &str = "recording a test delivery";
        let account = account.clone();
        let destination_id = destination_id.clone();
        let error = error.map(bounded);
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let account_row = existing_account_row(sql, RECORDING, &account).await?;
                    let now = unix_micros_of(now);
                    match error {
                        None => {
                            sql.execute(
                                RECORDING,
                                "UPDATE alert_destinations SET last_success_at = $3 \
                                 WHERE destination_id = $1 AND account_row = $2",
                                &[destination_id.into(), account_row.into(), now.into()],
                            )
                            .await?
                        }
                        Some(error) => {
                            sql.execute(
                                RECORDING,
                                "UPDATE alert_destinations SET last_error = $4, last_error_at = $3 \
                                 WHERE destination_id = $1 AND account_row = $2",
                                &[
                                    destination_id.into(),
                                    account_row.into(),
                                    now.into(),
                                    error.into(),
                                ],
                            )
                            .await?
                        }
                    };
                    Ok(())
                })
            }))
            .await
    }

    async fn list_dead_letters(
        &self,
        account: &AccountId,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let account = account.clone();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    select_deliveries(
                        sql,
                        "reading dead deliveries",
                        "a.name = $1 AND dl.dead_at IS NOT NULL \
                         ORDER BY dl.dead_at DESC, dl.delivery_id LIMIT $2",
                        &[account.as_str().into(), i64::from(limit).into()],
                    )
                    .await
                })
            }))
            .await
    }

    async fn retry_dead_letter(
        &self,
        account: &AccountId,
        delivery_id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        const RETRYING: &str = "retrying a delivery";
        let account = account.clone();
        let delivery_id = delivery_id.to_owned();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let Some(account_row) = account_row(sql, RETRYING, &account).await? else {
                        return Ok(false);
                    };
                    let changed = sql
                        .execute(
                            RETRYING,
                            "UPDATE deliveries SET dead_at = NULL, attempts = 0, next_attempt_at = $3, \
                             claimed_until = NULL \
                             WHERE delivery_id = $1 AND account_row = $2 AND dead_at IS NOT NULL",
                            &[delivery_id.into(), account_row.into(), unix_micros_of(now).into()],
                        )
                        .await?;
                    Ok(changed > 0)
                })
            }))
            .await
    }
}
