//! Every account's events counted per hour of UTC (`event_hour_counts`), so the timeline of a
//! whole log, or of a `created:` range, reads one row per hour instead of every event.
//!
//! The writers add a group's counts in the transaction that stores its events, retention takes
//! the pruned events off in the transaction that deletes them, and `migrate-store` adds what it
//! imports, so the counts are exactly the stored events at every commit (issue 17, item 4: the
//! whole log's timeline had counted 1.8 million rows, 70 ms, and grew with the account). A query
//! with any other clause is counted over the matching events as before
//! (`page_query::compile_bucket_count_query`). A `created:` bound that falls inside an hour counts
//! that partial hour over the events themselves, so a range's answer is exact at the microsecond.

use std::collections::HashMap;

use logbook_core::event::unix_micros;
use logbook_core::query::{Condition, Query};
use logbook_core::timeline::{BucketCount, TimeBucket};

use logbook_core::{AccountId, StoreError};

use crate::executor::{SqlDatabase, SqlExecutor};
use crate::shared_store::{SharedStore, account_row};
use crate::value::SqlValue;

/// One hour in microseconds, the width of a row of `event_hour_counts`.
const HOUR_MICROS: i64 = 3_600_000_000;

/// The start of the hour holding `created_at_micros`, as `event_hour_counts.hour_start` keeps it.
pub fn hour_start_of(created_at_micros: i64) -> i64 {
    TimeBucket::Hour.start_micros_of(created_at_micros)
}

/// The counts a write adds, per account and hour, summed in memory so each pair is one upsert.
#[derive(Debug, Default)]
pub struct HourCountChanges {
    events: HashMap<(i64, i64), i64>,
}

impl HourCountChanges {
    /// Counts one stored event of `account_row` created at `created_at_micros`.
    pub fn count(&mut self, account_row: i64, created_at_micros: i64) {
        *self
            .events
            .entry((account_row, hour_start_of(created_at_micros)))
            .or_default() += 1;
    }

    /// `(account_row, hour_start, events)` per pair, in key order: PostgreSQL writers of several
    /// nodes lock the rows they upsert in the same order.
    pub fn rows(&self) -> Vec<(i64, i64, i64)> {
        let mut rows: Vec<(i64, i64, i64)> = self
            .events
            .iter()
            .map(|(&(account_row, hour_start), &events)| (account_row, hour_start, events))
            .collect();
        rows.sort_unstable();
        rows
    }
}

/// The `[start, end)` of `created_at`, in microseconds (either side open), when the hour counts
/// answer the timeline of `query`: every clause is a positive `created:` range, so every event
/// of the account in the range matches. `None` for any other query.
pub fn range_counted_by_hours(query: &Query) -> Option<(Option<i64>, Option<i64>)> {
    let mut start: Option<i64> = None;
    let mut end: Option<i64> = None;
    for clause in &query.clauses {
        let (false, Condition::Created(range)) = (clause.negated, &clause.condition) else {
            return None;
        };
        if let Some(clause_start) = range.start_inclusive.map(unix_micros) {
            start = Some(start.map_or(clause_start, |start| start.max(clause_start)));
        }
        if let Some(clause_end) = range.end_exclusive.map(unix_micros) {
            end = Some(end.map_or(clause_end, |end| end.min(clause_end)));
        }
    }
    Some((start, end))
}

/// The timeline of the account's events created in `[start, end)`: whole hours from
/// `event_hour_counts`, the partial hour at either bound from `events`, in one statement (one
/// snapshot on both stores), grouped into `bucket`s, oldest first, empty buckets left out.
pub async fn count_over_time(
    sql: &dyn SqlExecutor,
    account_row: i64,
    (start, end): (Option<i64>, Option<i64>),
    bucket: TimeBucket,
) -> Result<Vec<BucketCount>, StoreError> {
    // Whole hours are `[first_whole_hour, end_of_whole_hours)`; what the range holds before and
    // after them lies within one hour each, counted over the events.
    let first_whole_hour = match start {
        None => i64::MIN,
        Some(start) if hour_start_of(start) == start => start,
        Some(start) => hour_start_of(start).saturating_add(HOUR_MICROS),
    };
    let end_of_whole_hours = end.map_or(i64::MAX, hour_start_of).max(first_whole_hour);
    // An empty range (`(0, 0)`) counts nothing, and `HAVING` leaves its bucket out.
    let leading = start.map_or((0, 0), |start| {
        (start, first_whole_hour.min(end.unwrap_or(i64::MAX)))
    });
    let trailing = end.map_or((0, 0), |end| {
        (end_of_whole_hours.max(start.unwrap_or(i64::MIN)), end)
    });
    let partial_bucket = |(from, _): (i64, i64)| bucket.start_micros_of(from);
    let rows = sql
        .query(
            "counting a timeline by hours",
            "SELECT bucket_start, CAST(sum(events) AS BIGINT) FROM ( \
             SELECT hour_start - (((hour_start % $2) + $2) % $2) AS bucket_start, events \
             FROM event_hour_counts WHERE account_row = $1 AND hour_start >= $3 AND hour_start < $4 \
             UNION ALL SELECT CAST($5 AS BIGINT), count(*) FROM events \
             WHERE account_row = $1 AND created_at >= $6 AND created_at < $7 \
             UNION ALL SELECT CAST($8 AS BIGINT), count(*) FROM events \
             WHERE account_row = $1 AND created_at >= $9 AND created_at < $10 \
             ) AS counted GROUP BY bucket_start HAVING sum(events) > 0 ORDER BY bucket_start",
            &[
                SqlValue::Integer(account_row),
                SqlValue::Integer(bucket.width_micros()),
                SqlValue::Integer(first_whole_hour),
                SqlValue::Integer(end_of_whole_hours),
                SqlValue::Integer(partial_bucket(leading)),
                SqlValue::Integer(leading.0),
                SqlValue::Integer(leading.1),
                SqlValue::Integer(partial_bucket(trailing)),
                SqlValue::Integer(trailing.0),
                SqlValue::Integer(trailing.1),
            ],
        )
        .await?;
    rows.iter()
        .map(|row| {
            Ok(BucketCount {
                start_micros: row.integer(0)?,
                events: row.integer(1)?.max(0) as u64,
            })
        })
        .collect()
}

impl<Database: SqlDatabase> SharedStore<Database> {
    /// The timeline of `query` for `account` from the hour counts, when they answer it
    /// (`range_counted_by_hours`); `None` when the store must count the matching events. An
    /// unknown account has no buckets.
    pub async fn count_over_time_by_hours(
        &self,
        account: &AccountId,
        query: &Query,
        bucket: TimeBucket,
    ) -> Result<Option<Vec<BucketCount>>, StoreError> {
        let Some(range) = range_counted_by_hours(query) else {
            return Ok(None);
        };
        let account = account.clone();
        let found = self
            .database
            .read(Box::new(move |sql| {
                Box::pin(
                    async move { account_row(sql, "counting a timeline by hours", &account).await },
                )
            }))
            .await?;
        let Some(account_row) = found else {
            return Ok(Some(Vec::new()));
        };
        self.database
            .read_account(
                account_row,
                Box::new(move |sql| {
                    Box::pin(async move { count_over_time(sql, account_row, range, bucket).await })
                }),
            )
            .await
            .map(Some)
    }
}
