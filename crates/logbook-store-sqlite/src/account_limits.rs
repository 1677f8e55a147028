//! Per-account limit overrides (`account_limits`, migration 0008), set with `logbook limits set`
//! and reread by every server every few seconds (`logbook_server::limits`).

use logbook_core::store::{AccountLimitStore, StoredAccountLimits};
use logbook_core::{AccountId, StoreError};
use rusqlite::{OptionalExtension, params};
use time::OffsetDateTime;

use crate::SqliteStore;
use crate::encoding::unix_micros_of;
use crate::errors::database_error;

/// A stored integer as the `u32` it was written from; anything else (a hand-edited row) is an
/// error naming the column, not a silently wrapped limit.
fn limit_column(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Option<u32>> {
    let Some(value) = row.get::<_, Option<i64>>(index)? else {
        return Ok(None);
    };
    u32::try_from(value)
        .map(Some)
        .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(index, value))
}

/// A stored quota as the non-negative count it was written from (migration 0010).
fn quota_column(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Option<u64>> {
    let Some(value) = row.get::<_, Option<i64>>(index)? else {
        return Ok(None);
    };
    u64::try_from(value)
        .map(Some)
        .map_err(|_| rusqlite::Error::IntegralValueOutOfRange(index, value))
}

/// A quota as SQLite's signed integer; `logbook limits set` bounds it to `i64::MAX`.
fn quota_as_integer(value: Option<u64>) -> Option<i64> {
    value.map(|value| i64::try_from(value).unwrap_or(i64::MAX))
}

#[async_trait::async_trait]
impl AccountLimitStore for SqliteStore {
    async fn stored_account_limits(
        &self,
    ) -> Result<Vec<(AccountId, StoredAccountLimits)>, StoreError> {
        self.inner
            .read(|connection| {
                let mut statement = connection
                    .prepare_cached(
                        "SELECT a.name, l.ingest_events_per_second, l.ingest_event_burst, \
                         l.reads_per_second, l.read_burst, l.max_concurrent_exports, l.max_live_tails, \
                         l.events_per_day, l.stored_bytes \
                         FROM account_limits l JOIN accounts a ON a.account_row = l.account_row \
                         ORDER BY a.name",
                    )
                    .map_err(database_error("reading account limits"))?;
                let rows = statement
                    .query_map([], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            StoredAccountLimits {
                                ingest_events_per_second: limit_column(row, 1)?,
                                ingest_event_burst: limit_column(row, 2)?,
                                reads_per_second: limit_column(row, 3)?,
                                read_burst: limit_column(row, 4)?,
                                max_concurrent_exports: limit_column(row, 5)?,
                                max_live_tails: limit_column(row, 6)?,
                                events_per_day: quota_column(row, 7)?,
                                stored_bytes: quota_column(row, 8)?,
                            },
                        ))
                    })
                    .map_err(database_error("reading account limits"))?;
                let mut stored = Vec::new();
                for row in rows {
                    let (name, limits) = row.map_err(database_error("reading account limits"))?;
                    if limits.is_empty() {
                        continue;
                    }
                    let account = AccountId::parse(&name).map_err(|error| StoreError::Database {
                        context: "reading account limits",
                        message: format!("stored account name {name:?} is invalid: {error}"),
                    })?;
                    stored.push((account, limits));
                }
                Ok(stored)
            })
            .await
    }

    async fn set_stored_account_limits(
        &self,
        account: &AccountId,
        limits: &StoredAccountLimits,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let account = account.clone();
        let limits = limits.clone();
        let updated_at = unix_micros_of(now);
        self.inner
            .administer(move |connection| {
                let account_row: Option<i64> = connection
                    .query_row(
                        "SELECT account_row FROM accounts WHERE name = ?1",
                        [account.as_str()],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(database_error("setting account limits"))?;
                let Some(account_row) = account_row else {
                    return Err(StoreError::AccountNotFound(account));
                };
                connection
                    .execute(
                        "INSERT INTO account_limits (account_row, ingest_events_per_second, \
                         ingest_event_burst, reads_per_second, read_burst, max_concurrent_exports, \
                         max_live_tails, updated_at, events_per_day, stored_bytes) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
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
                        params![
                            account_row,
                            limits.ingest_events_per_second,
                            limits.ingest_event_burst,
                            limits.reads_per_second,
                            limits.read_burst,
                            limits.max_concurrent_exports,
                            limits.max_live_tails,
                            updated_at,
                            quota_as_integer(limits.events_per_day),
                            quota_as_integer(limits.stored_bytes),
                        ],
                    )
                    .map_err(database_error("setting account limits"))?;
                Ok(())
            })
            .await
    }
}
