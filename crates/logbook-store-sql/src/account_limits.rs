//! Per-account limit overrides (`account_limits`, migration 0008), set with `logbook limits set`
//! and reread by every server every few seconds (`logbook_server::limits`).

use async_trait::async_trait;
use logbook_core::store::{AccountLimitStore, StoredAccountLimits};
use logbook_core::{AccountId, StoreError};
use time::OffsetDateTime;

use crate::encoding::unix_micros_of;
use crate::executor::SqlDatabase;
use crate::shared_store::{SharedStore, existing_account_row, stored_account};
use crate::value::{SqlRow, SqlValue};

const READING: &str = "reading account limits";

/// A stored integer as the `u32` it was written from; anything else (a hand-edited row) is an
/// error naming the column, not a silently wrapped limit.
fn limit_column(row: &SqlRow, index: usize, column: &str) -> Result<Option<u32>, StoreError> {
    row.optional_integer(index)?
        .map(|value| {
            u32::try_from(value).map_err(|_| StoreError::Database {
                context: READING,
                message: format!(
                    "account_limits.{column} holds {value}, outside 0 ..= {}",
                    u32::MAX
                ),
            })
        })
        .transpose()
}

/// A stored quota (migration 0010) as the non-negative count it was written from.
fn quota_column(row: &SqlRow, index: usize, column: &str) -> Result<Option<u64>, StoreError> {
    row.optional_integer(index)?
        .map(|value| {
            u64::try_from(value).map_err(|_| StoreError::Database {
                context: READING,
                message: format!("account_limits.{column} holds {value}, below 0"),
            })
        })
        .transpose()
}

/// A quota as the databases' signed 64-bit integer; `logbook limits set` bounds it to `i64::MAX`.
fn quota_value(value: Option<u64>) -> SqlValue {
    value
        .map(|value| i64::try_from(value).unwrap_or(i64::MAX))
        .into()
}

fn limit_value(value: Option<u32>) -> SqlValue {
    value.map(i64::from).into()
}

#[async_trait]
impl<Database: SqlDatabase> AccountLimitStore for SharedStore<Database> {
    async fn stored_account_limits(
        &self,
    ) -> Result<Vec<(AccountId, StoredAccountLimits)>, StoreError> {
        self.database
            .read(Box::new(|sql| {
                Box::pin(async move {
                    let rows = sql
                        .query(
                            READING,
                            "SELECT a.name, l.ingest_events_per_second, l.ingest_event_burst, \
                             l.reads_per_second, l.read_burst, l.max_concurrent_exports, \
                             l.max_live_tails, l.events_per_day, l.stored_bytes \
                             FROM account_limits l JOIN accounts a ON a.account_row = l.account_row \
                             ORDER BY a.name",
                            &[],
                        )
                        .await?;
                    let mut stored = Vec::new();
                    for row in rows {
                        let limits = StoredAccountLimits {
                            ingest_events_per_second: limit_column(
                                &row,
                                1,
                                "ingest_events_per_second",
                            )?,
                            ingest_event_burst: limit_column(&row, 2, "ingest_event_burst")?,
                            reads_per_second: limit_column(&row, 3, "reads_per_second")?,
                            read_burst: limit_column(&row, 4, "read_burst")?,
                            max_concurrent_exports: limit_column(
                                &row,
                                5,
                                "max_concurrent_exports",
                            )?,
                            max_live_tails: limit_column(&row, 6, "max_live_tails")?,
                            events_per_day: quota_column(&row, 7, "events_per_day")?,
                            stored_bytes: quota_column(&row, 8, "stored_bytes")?,
                        };
                        if !limits.is_empty() {
                            stored.push((stored_account(READING, &row.text(0)?)?, limits));
                        }
                    }
                    Ok(stored)
                })
            }))
            .await
    }

    async fn set_stored_account_limits(
        &self,
        account: &AccountId,
        limits: &StoredAccountLimits,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const SETTING: &str = "setting account limits";
        let account = account.clone();
        let limits = limits.clone();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let account_row = existing_account_row(sql, SETTING, &account).await?;
                    sql.execute(
                        SETTING,
                        "INSERT INTO account_limits (account_row, ingest_events_per_second, \
                         ingest_event_burst, reads_per_second, read_burst, max_concurrent_exports, \
                         max_live_tails, updated_at, events_per_day, stored_bytes) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                         ON CONFLICT (account_row) DO UPDATE SET \
                         ingest_events_per_second = excluded.ingest_events_per_second, \
                         ingest_event_burst = excluded.ingest_event_burst, \
                         reads_per_second = excluded.reads_per_second, \
                         read_burst = excluded.read_burst, \
                         max_concurrent_exports = excluded.max_concurrent_exports, \
                         max_live_tails = excluded.max_live_tails, \
                         updated_at = excluded.updated_at, \
                         events_per_day = excluded.events_per_day, \
                         stored_bytes = excluded.stored_bytes",
                        &[
                            account_row.into(),
                            limit_value(limits.ingest_events_per_second),
                            limit_value(limits.ingest_event_burst),
                            limit_value(limits.reads_per_second),
                            limit_value(limits.read_burst),
                            limit_value(limits.max_concurrent_exports),
                            limit_value(limits.max_live_tails),
                            unix_micros_of(now).into(),
                            quota_value(limits.events_per_day),
                            quota_value(limits.stored_bytes),
                        ],
                    )
                    .await?;
                    Ok(())
                })
            }))
            .await
    }
}
