//! Every account's events counted per day of UTC (`event_day_counts`), so the timeline of a whole
//! log, or of a `created:` range, per day reads one row per day instead of every event.
//!
//! The writers add a group's counts in the transaction that stores its events, retention takes
//! the pruned events off in the transaction that deletes them, and `migrate-store` adds what it
//! imports, so the counts are exactly the stored events at every commit (issue 17, item 4: the
//! whole log's timeline had counted 1.8 million rows, 70 ms, and grew with the account). A
//! `created:` bound inside a day counts that partial day over the events themselves, so a range's
//! answer is exact to the microsecond. A query with any other clause, and a timeline per hour
//! (which the page draws only for two days or less), are counted over the matching events as
//! before (`page_query::compile_bucket_count_query`).
//!
//! Days rather than hours: the writer's cost is the pages of this table a commit touches, and a
//! commit of history spanning days (an import, the benchmark's load) touched one hour row per few
//! events, about 900 bytes written per event (BENCHMARKS.md, "Timelines and rare words").

use std::collections::HashMap;

use logbook_core::event::unix_micros;
use logbook_core::query::{Clause, Condition, Query};
use logbook_core::timeline::{BucketCount, TimeBucket};
use logbook_core::{AccountId, StoreError};

use crate::executor::{SqlDatabase, SqlExecutor};
use crate::shared_store::{SharedStore, account_row};
use crate::value::SqlValue;

/// The start of the UTC day holding `created_at_micros`, as `event_day_counts.day_start` keeps it.
pub fn day_start_of(created_at_micros: i64) -> i64 {
    TimeBucket::Day.start_micros_of(created_at_micros)
}

/// The counts a write adds or removes, per account and day, summed in memory so each pair is one
/// statement.
#[derive(Debug, Default)]
pub struct DayCountChanges {
    events: HashMap<(i64, i64), i64>,
}

impl DayCountChanges {
    /// Counts one event of `account_row` created at `created_at_micros`.
    pub fn count(&mut self, account_row: i64, created_at_micros: i64) {
        *self
            .events
            .entry((account_row, day_start_of(created_at_micros)))
            .or_default() += 1;
    }

    /// `(account_row, day_start, events)` per pair, in key order: PostgreSQL writers of several
    /// nodes lock the rows they upsert in the same order.
    pub fn rows(&self) -> Vec<(i64, i64, i64)> {
        let mut rows: Vec<(i64, i64, i64)> = self
            .events
            .iter()
            .map(|(&(account_row, day_start), &events)| (account_row, day_start, events))
            .collect();
        rows.sort_unstable();
        rows
    }
}

/// The counts a write adds or removes per account, day and value of one field (SQLite's
/// `event_day_action_counts` since migration 0026, `event_day_actor_counts` since 0028, both of
/// text, and `event_day_ip_counts` since 0029, of the 16 stored bytes of an address), summed in
/// memory so each triple is one statement. The value is owned once per triple, not per event.
#[derive(Debug)]
pub struct ValueDayCountChanges<Value = String> {
    events: HashMap<(i64, i64), HashMap<Value, i64>>,
}

impl<Value> Default for ValueDayCountChanges<Value> {
    fn default() -> Self {
        Self {
            events: HashMap::new(),
        }
    }
}

impl<Value: std::hash::Hash + Eq + Ord> ValueDayCountChanges<Value> {
    /// Counts one event of `account_row` created at `created_at_micros` with `value`.
    pub fn count<Borrowed>(&mut self, account_row: i64, created_at_micros: i64, value: &Borrowed)
    where
        Value: std::borrow::Borrow<Borrowed>,
        Borrowed: std::hash::Hash + Eq + ToOwned<Owned = Value> + ?Sized,
    {
        let values = self
            .events
            .entry((account_row, day_start_of(created_at_micros)))
            .or_default();
        match values.get_mut(value) {
            Some(events) => *events += 1,
            None => {
                values.insert(value.to_owned(), 1);
            }
        }
    }

    /// `(account_row, day_start, value, events)` per triple, in the tables' key order (day,
    /// account, value), so consecutive upserts land on the same pages.
    pub fn rows(&self) -> Vec<(i64, i64, &Value, i64)> {
        let mut rows: Vec<(i64, i64, &Value, i64)> = self
            .events
            .iter()
            .flat_map(|(&(account_row, day_start), values)| {
                values
                    .iter()
                    .map(move |(value, events)| (account_row, day_start, value, *events))
            })
            .collect();
        rows.sort_unstable_by(|left, right| {
            (left.1, left.0, left.2).cmp(&(right.1, right.0, right.2))
        });
        rows
    }
}

/// The `[start, end)` of `created_at`, in microseconds (either side open), when the day counts
/// answer the timeline of `query` per `bucket`: per day, and every clause is a positive
/// `created:` range, so every event of the account in the range matches. `None` otherwise.
pub fn range_counted_by_days(
    query: &Query,
    bucket: TimeBucket,
) -> Option<(Option<i64>, Option<i64>)> {
    if bucket != TimeBucket::Day {
        return None;
    }
    created_range(&query.clauses)
}

/// The `[start, end)` of `created_at`, in microseconds (either side open), that `clauses` ask for
/// when every one of them is a positive `created:` range (all of an account's events when there
/// is none); `None` when any is something else.
pub fn created_range<'query>(
    clauses: impl IntoIterator<Item = &'query Clause>,
) -> Option<(Option<i64>, Option<i64>)> {
    let mut start: Option<i64> = None;
    let mut end: Option<i64> = None;
    for clause in clauses {
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

/// A `created:` range `[start, end)` split into the whole days a day count answers and what lies
/// before and after them, within one day each, which is counted over the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaysOfRange {
    /// The whole days are `[first_whole_day, end_of_whole_days)`.
    pub first_whole_day: i64,
    pub end_of_whole_days: i64,
    /// `[start, end)` of the part before the whole days; `(0, 0)`, empty, when there is none.
    pub leading: (i64, i64),
    /// `[start, end)` of the part after them; `(0, 0)` when there is none.
    pub trailing: (i64, i64),
}

impl DaysOfRange {
    /// Splits `[start, end)` (either side open).
    pub fn of(start: Option<i64>, end: Option<i64>) -> Self {
        let day_micros = TimeBucket::Day.width_micros();
        let first_whole_day = match start {
            None => i64::MIN,
            Some(start) if day_start_of(start) == start => start,
            Some(start) => day_start_of(start).saturating_add(day_micros),
        };
        let end_of_whole_days = end.map_or(i64::MAX, day_start_of).max(first_whole_day);
        // An empty range (`(0, 0)`) counts nothing, and `HAVING` leaves its day out.
        let leading = start.map_or((0, 0), |start| {
            (start, first_whole_day.min(end.unwrap_or(i64::MAX)))
        });
        let trailing = end.map_or((0, 0), |end| {
            (end_of_whole_days.max(start.unwrap_or(i64::MIN)), end)
        });
        Self {
            first_whole_day,
            end_of_whole_days,
            leading,
            trailing,
        }
    }
}

/// The timeline per day of the account's events created in `[start, end)`: whole days from
/// `event_day_counts`, the partial day at either bound from `events`, in one statement (one
/// snapshot on both stores), oldest first, empty days left out.
pub async fn count_days(
    sql: &dyn SqlExecutor,
    account_row: i64,
    (start, end): (Option<i64>, Option<i64>),
) -> Result<Vec<BucketCount>, StoreError> {
    let DaysOfRange {
        first_whole_day,
        end_of_whole_days,
        leading,
        trailing,
    } = DaysOfRange::of(start, end);
    let rows = sql
        .query(
            "counting a timeline by days",
            "SELECT day_start, CAST(sum(events) AS BIGINT) FROM ( \
             SELECT day_start, events FROM event_day_counts \
             WHERE account_row = $1 AND day_start >= $2 AND day_start < $3 \
             UNION ALL SELECT CAST($4 AS BIGINT), count(*) FROM events \
             WHERE account_row = $1 AND created_at >= $5 AND created_at < $6 \
             UNION ALL SELECT CAST($7 AS BIGINT), count(*) FROM events \
             WHERE account_row = $1 AND created_at >= $8 AND created_at < $9 \
             ) AS counted GROUP BY day_start HAVING sum(events) > 0 ORDER BY day_start",
            &[
                SqlValue::Integer(account_row),
                SqlValue::Integer(first_whole_day),
                SqlValue::Integer(end_of_whole_days),
                SqlValue::Integer(day_start_of(leading.0)),
                SqlValue::Integer(leading.0),
                SqlValue::Integer(leading.1),
                SqlValue::Integer(day_start_of(trailing.0)),
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
    /// The timeline of `query` per `bucket` for `account` from the day counts, when they answer
    /// it (`range_counted_by_days`); `None` when the store must count the matching events. An
    /// unknown account has no buckets.
    pub async fn count_over_time_by_days(
        &self,
        account: &AccountId,
        query: &Query,
        bucket: TimeBucket,
    ) -> Result<Option<Vec<BucketCount>>, StoreError> {
        let Some(range) = range_counted_by_days(query, bucket) else {
            return Ok(None);
        };
        let account = account.clone();
        let found = self
            .database
            .read(Box::new(move |sql| {
                Box::pin(
                    async move { account_row(sql, "counting a timeline by days", &account).await },
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
                    Box::pin(async move { count_days(sql, account_row, range).await })
                }),
            )
            .await
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_groups_actions_are_counted_per_account_and_day_and_listed_day_first() {
        let day = TimeBucket::Day.width_micros();
        let mut changes: ValueDayCountChanges = ValueDayCountChanges::default();
        changes.count(2, 10, "user.login");
        changes.count(2, 20, "user.login");
        changes.count(2, 30, "server.reboot");
        changes.count(1, day + 5, "user.login");
        changes.count(2, day + 5, "user.login");
        changes.count(1, 40, "user.login");
        assert_eq!(
            changes
                .rows()
                .into_iter()
                .map(|(account_row, day_start, action, events)| {
                    (account_row, day_start, action.as_str(), events)
                })
                .collect::<Vec<_>>(),
            vec![
                (1, 0, "user.login", 1),
                (2, 0, "server.reboot", 1),
                (2, 0, "user.login", 2),
                (1, day, "user.login", 1),
                (2, day, "user.login", 1),
            ]
        );
    }
}
