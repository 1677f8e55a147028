//! Per-account limit overrides (`account_limits`, migration 0008), set with `logbook limits set`
//! and reread by every node every few seconds (`logbook_server::limits`).

use logbook_core::store::{AccountLimitStore, StoredAccountLimits};
use logbook_core::{AccountId, StoreError};
use time::OffsetDateTime;
use tokio_postgres::Row;

use crate::PostgresStore;
use crate::encoding::unix_micros_of;
use crate::errors::database_error;

/// A stored `bigint` as the `u32` it was written from; anything else (a hand-edited row) is an
/// error naming the column, not a silently wrapped limit.
fn limit_column(row: &Row, column: &'static str) -> Result<Option<u32>, StoreError> {
    let Some(value) = row.get::<_, Option<i64>>(column) else {
        return Ok(None);
    };
    u32::try_from(value)
        .map(Some)
        .map_err(|_| StoreError::Database {
            context: "reading account limits",
            message: format!(
                "account_limits.{column} holds {value}, outside 0 ..= {}",
                u32::MAX
            ),
        })
}

/// A stored quota (migration 0010) as the non-negative count it was written from.
fn quota_column(row: &Row, column: &'static str) -> Result<Option<u64>, StoreError> {
    let Some(value) = row.get::<_, Option<i64>>(column) else {
        return Ok(None);
    };
    u64::try_from(value)
        .map(Some)
        .map_err(|_| StoreError::Database {
            context: "reading account limits",
            message: format!("account_limits.{column} holds {value}, below 0"),
        })
}

#[async_trait::async_trait]
impl AccountLimitStore for PostgresStore {
    async fn stored_account_limits(
        &self,
    ) -> Result<Vec<(AccountId, StoredAccountLimits)>, StoreError> {
        let client = self.inner.connection().await?;
        let rows = client
            .query(
                "SELECT a.name, l.ingest_events_per_second, l.ingest_event_burst, \
                 l.reads_per_second, l.read_burst, l.max_concurrent_exports, l.max_live_tails, \
                 l.events_per_day, l.stored_bytes \
                 FROM account_limits l JOIN accounts a ON a.account_row = l.account_row \
                 ORDER BY a.name",
                &[],
            )
            .await
            .map_err(database_error("reading account limits"))?;
        let mut stored = Vec::new();
        for row in &rows {
            let limits = StoredAccountLimits {
                ingest_events_per_second: limit_column(row, "ingest_events_per_second")?,
                ingest_event_burst: limit_column(row, "ingest_event_burst")?,
                reads_per_second: limit_column(row, "reads_per_second")?,
                read_burst: limit_column(row, "read_burst")?,
                max_concurrent_exports: limit_column(row, "max_concurrent_exports")?,
                max_live_tails: limit_column(row, "max_live_tails")?,
                events_per_day: quota_column(row, "events_per_day")?,
                stored_bytes: quota_column(row, "stored_bytes")?,
            };
            if limits.is_empty() {
                continue;
            }
            let name: String = row.get("name");
            let account = AccountId::parse(&name).map_err(|error| StoreError::Database {
                context: "reading account limits",
                message: format!("stored account name {name:?} is invalid: {error}"),
            })?;
            stored.push((account, limits));
        }
        Ok(stored)
    }

    async fn set_stored_account_limits(
        &self,
        account: &AccountId,
        limits: &StoredAccountLimits,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let Some(account_row) = self.inner.account_row(account).await? else {
            return Err(StoreError::AccountNotFound(account.clone()));
        };
        let as_bigint = |value: Option<u32>| value.map(i64::from);
        let quota_as_bigint =
            |value: Option<u64>| value.map(|value| i64::try_from(value).unwrap_or(i64::MAX));
        let client = self.inner.connection().await?;
        client
            .execute(
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
                    &account_row,
                    &as_bigint(limits.ingest_events_per_second),
                    &as_bigint(limits.ingest_event_burst),
                    &as_bigint(limits.reads_per_second),
                    &as_bigint(limits.read_burst),
                    &as_bigint(limits.max_concurrent_exports),
                    &as_bigint(limits.max_live_tails),
                    &unix_micros_of(now),
                    &quota_as_bigint(limits.events_per_day),
                    &quota_as_bigint(limits.stored_bytes),
                ],
            )
            .await
            .map_err(database_error("setting account limits"))?;
        Ok(())
    }
}
