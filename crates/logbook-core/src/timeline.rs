//! The timeline of a query: how many of an account's events match it in each hour or day, so the
//! Activity Logs page can draw *when* things happened above the table.
//!
//! Buckets are whole hours or whole days of UTC, aligned to the Unix epoch (a day bucket starts at
//! 00:00 UTC). The stores count them in one `GROUP BY` over the matching events' `created_at`
//! (`logbook_store_sql::page_query::compile_bucket_count_query`); `count_in_memory` is the same
//! counting over events already in memory, which the conformance suite holds the stores to.

use time::OffsetDateTime;

use crate::event::unix_micros;

/// The width of one bar of the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeBucket {
    Hour,
    Day,
}

impl TimeBucket {
    /// The bucket's width in microseconds (how `created_at` is stored).
    pub fn width_micros(self) -> i64 {
        match self {
            TimeBucket::Hour => 3_600_000_000,
            TimeBucket::Day => 86_400_000_000,
        }
    }

    /// The start of the bucket that holds `created_at_micros`, in microseconds since the epoch.
    /// Floor division, so an instant before 1970 falls in the bucket that starts before it.
    pub fn start_micros_of(self, created_at_micros: i64) -> i64 {
        created_at_micros - created_at_micros.rem_euclid(self.width_micros())
    }
}

/// How many matching events were created in the bucket starting at `start_micros`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketCount {
    /// The first microsecond of the bucket (since the Unix epoch, UTC).
    pub start_micros: i64,
    pub events: u64,
}

impl BucketCount {
    pub fn start(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.start_micros) * 1_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

/// The buckets of `created_at` instants, oldest first, leaving out empty buckets (as the stores
/// do).
pub fn count_in_memory(
    created_at: impl IntoIterator<Item = OffsetDateTime>,
    bucket: TimeBucket,
) -> Vec<BucketCount> {
    let mut counts = std::collections::BTreeMap::<i64, u64>::new();
    for instant in created_at {
        *counts
            .entry(bucket.start_micros_of(unix_micros(instant)))
            .or_default() += 1;
    }
    counts
        .into_iter()
        .map(|(start_micros, events)| BucketCount {
            start_micros,
            events,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instant_before_the_epoch_falls_in_the_bucket_that_starts_before_it() {
        assert_eq!(TimeBucket::Hour.start_micros_of(-1), -3_600_000_000);
        assert_eq!(TimeBucket::Hour.start_micros_of(0), 0);
        assert_eq!(
            TimeBucket::Day.start_micros_of(86_400_000_000 + 5),
            86_400_000_000
        );
    }
}
