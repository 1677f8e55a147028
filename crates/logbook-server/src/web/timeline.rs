//! The timeline above the Activity Logs table (issue 21, item 3): how many events of the current
//! search happened in each hour or day, drawn on the server as SVG so it needs no script and no
//! inline style under the strict Content-Security-Policy (the bars' sizes are SVG geometry
//! attributes, their colours the stylesheet's classes).
//!
//! The store counts the buckets in one query (`Store::count_events_over_time`) over exactly the
//! events the page query returns, the reader's scope included. The width of a bucket comes from
//! the search's `created:` range when it has both ends, otherwise from the span of the matching
//! events: a day's count first, and hours when their days are at most `HOURLY_SPAN_DAYS` apart.
//! More buckets than `MAX_BARS` are drawn several to a bar (two hours a bar over three days).
//!
//! Each bar is a plain link that narrows `created:` to its range (`add=` through
//! `web::narrowing`, which replaces the search's `created:` term), so it works by keyboard and
//! without script; the page's ES module adds selecting a range by dragging over the bars.

use logbook_core::query::{Clause, Condition, Query, TimeRange};
use logbook_core::timeline::{BucketCount, TimeBucket};
use logbook_core::{AccountId, Store};
use time::{Duration, OffsetDateTime};

use crate::web::activity::url_component;
use crate::web::render::utc_text;

/// The most bars drawn; more buckets are merged, several to a bar, so the chart stays readable at
/// 360 px and the page small.
pub const MAX_BARS: usize = 48;
/// A `created:` range or a span of matching events up to this many days is drawn per hour (two
/// days are `MAX_BARS` hours).
pub const HOURLY_SPAN_DAYS: i64 = 2;
/// The height of the chart's drawing area, in its own units (the stylesheet sets its size).
const CHART_HEIGHT: u64 = 100;
/// The width of one bar slot, in the chart's own units (the template draws a bar 8 wide in it).
const SLOT_WIDTH: usize = 10;

/// The timeline as the template draws it.
pub struct Timeline {
    pub bars: Vec<Bar>,
    /// "per hour" or "per day", or "per 3 days" when buckets are merged.
    pub per: String,
    pub total: u64,
    pub highest: u64,
    pub first_label: String,
    pub last_label: String,
    /// The chart's `viewBox` width.
    pub view_width: usize,
}

/// One bar: its range, its count and where clicking it goes.
pub struct Bar {
    pub start: String,
    /// The last microsecond inside the bar, as `created:A..B` (inclusive) takes it.
    pub end_inclusive: String,
    pub events: u64,
    /// "12 events, Jun 1 10:00 to 11:00 UTC".
    pub label: String,
    pub href: String,
    pub x: usize,
    pub y: u64,
    pub height: u64,
}

/// The `created:` bounds every positive `created:` clause of `query` leaves (the latest start, the
/// earliest end).
pub fn created_bounds(query: &Query) -> TimeRange {
    let mut bounds = TimeRange {
        start_inclusive: None,
        end_exclusive: None,
    };
    for clause in &query.clauses {
        if clause.negated {
            continue;
        }
        if let Condition::Created(range) = &clause.condition {
            if let Some(start) = range.start_inclusive {
                bounds.start_inclusive =
                    Some(bounds.start_inclusive.map_or(start, |s| s.max(start)));
            }
            if let Some(end) = range.end_exclusive {
                bounds.end_exclusive = Some(bounds.end_exclusive.map_or(end, |e| e.min(end)));
            }
        }
    }
    bounds
}

/// The `created:A..B` term of the range `[start, end)`, as the query language prints it.
pub fn created_term(start: OffsetDateTime, end: OffsetDateTime) -> String {
    Clause {
        negated: false,
        condition: Condition::Created(TimeRange {
            start_inclusive: Some(start),
            end_exclusive: Some(end),
        }),
        span: 0..0,
    }
    .to_string()
}

fn time_of(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Counts and lays out the timeline of `scoped` (the search with the reader's scope added) for
/// `account`. `None` when nothing matches. `q` and `base` make the bars' links.
pub async fn timeline(
    store: &dyn Store,
    account: &AccountId,
    scoped: &Query,
    q: &str,
    base: &str,
) -> Result<Option<Timeline>, logbook_core::StoreError> {
    let bounds = created_bounds(scoped);
    let (bucket, counts) = match (bounds.start_inclusive, bounds.end_exclusive) {
        (Some(start), Some(end)) => {
            if end <= start {
                return Ok(None);
            }
            let bucket = if end - start <= Duration::days(HOURLY_SPAN_DAYS) {
                TimeBucket::Hour
            } else {
                TimeBucket::Day
            };
            (
                bucket,
                store
                    .count_events_over_time(account, scoped, bucket)
                    .await?,
            )
        }
        _ => {
            let days = store
                .count_events_over_time(account, scoped, TimeBucket::Day)
                .await?;
            match (days.first(), days.last()) {
                (Some(first), Some(last))
                    if last.start_micros - first.start_micros
                        <= HOURLY_SPAN_DAYS * TimeBucket::Day.width_micros() =>
                {
                    (
                        TimeBucket::Hour,
                        store
                            .count_events_over_time(account, scoped, TimeBucket::Hour)
                            .await?,
                    )
                }
                _ => (TimeBucket::Day, days),
            }
        }
    };
    Ok(lay_out(&counts, bucket, &bounds, q, base))
}

/// Places `counts` on bars: from the range's start (or the first bucket) to its end (or the end of
/// the last bucket), empty buckets included so the time axis is even, merged `group` to a bar when
/// there are more than `MAX_BARS`.
pub fn lay_out(
    counts: &[BucketCount],
    bucket: TimeBucket,
    bounds: &TimeRange,
    q: &str,
    base: &str,
) -> Option<Timeline> {
    let (first, last) = (counts.first()?, counts.last()?);
    let width = bucket.width_micros();
    let range_start = bounds.start_inclusive.map(logbook_core::event::unix_micros);
    let range_end = bounds.end_exclusive.map(logbook_core::event::unix_micros);
    let domain_start = range_start
        .map(|start| bucket.start_micros_of(start))
        .unwrap_or(first.start_micros)
        .min(first.start_micros);
    let domain_end = range_end
        .map(|end| bucket.start_micros_of(end - 1) + width)
        .unwrap_or(last.start_micros + width)
        .max(last.start_micros + width);
    let buckets = usize::try_from((domain_end - domain_start) / width).ok()?;
    let group = buckets.div_ceil(MAX_BARS).max(1);
    let bar_count = buckets.div_ceil(group);
    let mut events = vec![0_u64; bar_count];
    for count in counts {
        let index = usize::try_from((count.start_micros - domain_start) / width).ok()? / group;
        if let Some(slot) = events.get_mut(index) {
            *slot += count.events;
        }
    }
    let highest = events.iter().copied().max().unwrap_or(0).max(1);
    let group_micros = width * group as i64;
    let per = match (bucket, group) {
        (TimeBucket::Hour, 1) => "per hour".to_owned(),
        (TimeBucket::Day, 1) => "per day".to_owned(),
        (TimeBucket::Hour, hours) => format!("per {hours} hours"),
        (TimeBucket::Day, days) => format!("per {days} days"),
    };
    let mut bars = Vec::with_capacity(bar_count);
    for (index, &count) in events.iter().enumerate() {
        let mut start = domain_start + group_micros * index as i64;
        let mut end = (start + group_micros).min(domain_end);
        // A bar's link never widens the search: it keeps the part of the bar inside the range.
        if let Some(range_start) = range_start {
            start = start.max(range_start);
        }
        if let Some(range_end) = range_end {
            end = end.min(range_end);
        }
        let (start_time, end_time) = (time_of(start), time_of(end.max(start + 1)));
        let term = created_term(start_time, end_time);
        // Bars scale to the highest; a bar with events is never thinner than 3 units, so one
        // event beside thousands still shows.
        let height = if count == 0 {
            0
        } else {
            (count * CHART_HEIGHT / highest).max(3)
        };
        bars.push(Bar {
            start: utc_text(start_time),
            end_inclusive: utc_text(end_time - Duration::MICROSECOND),
            events: count,
            label: format!(
                "{count} event{}, {} to {}",
                if count == 1 { "" } else { "s" },
                short_utc(start_time, bucket),
                short_utc(end_time, bucket)
            ),
            href: format!(
                "{base}/?q={}&add={}",
                url_component(q),
                url_component(&term)
            ),
            x: index * SLOT_WIDTH,
            y: CHART_HEIGHT - height,
            height,
        });
    }
    Some(Timeline {
        total: events.iter().sum(),
        highest,
        per,
        first_label: short_utc(time_of(domain_start), bucket),
        last_label: short_utc(time_of(domain_end), bucket),
        view_width: bar_count * SLOT_WIDTH,
        bars,
    })
}

/// "2024-06-01 10:00 UTC" for hours, "2024-06-01" for days.
fn short_utc(at: OffsetDateTime, bucket: TimeBucket) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    match bucket {
        TimeBucket::Hour => format!(
            "{}-{:02}-{:02} {:02}:{:02} UTC",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute()
        ),
        TimeBucket::Day => format!("{}-{:02}-{:02}", at.year(), u8::from(at.month()), at.day()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn at(instant: OffsetDateTime, events: u64) -> BucketCount {
        BucketCount {
            start_micros: logbook_core::event::unix_micros(instant),
            events,
        }
    }

    #[test]
    fn empty_hours_between_events_are_drawn_as_empty_bars() {
        let start = datetime!(2024-06-01 10:00 UTC);
        let timeline = lay_out(
            &[at(start, 2), at(start + Duration::hours(3), 4)],
            TimeBucket::Hour,
            &created_bounds(&Query::default()),
            "",
            "",
        )
        .unwrap();
        let counts: Vec<u64> = timeline.bars.iter().map(|bar| bar.events).collect();
        assert_eq!(counts, vec![2, 0, 0, 4]);
        assert_eq!(timeline.total, 6);
        assert_eq!(timeline.bars[3].height, CHART_HEIGHT);
        assert_eq!(timeline.bars[0].height, CHART_HEIGHT / 2);
        assert_eq!(
            timeline.bars[1].href,
            format!(
                "/?q=&add={}",
                url_component("created:2024-06-01T11:00:00Z..2024-06-01T11:59:59.999999Z")
            )
        );
    }

    #[test]
    fn a_bar_link_keeps_only_the_part_of_the_bar_inside_the_searched_range() {
        let query =
            logbook_core::query::parse("created:2024-06-01T10:30:00Z..2024-06-01T12:14:59.999999Z")
                .unwrap();
        let bounds = created_bounds(&query);
        let timeline = lay_out(
            &[at(datetime!(2024-06-01 10:00 UTC), 1)],
            TimeBucket::Hour,
            &bounds,
            "",
            "",
        )
        .unwrap();
        assert_eq!(timeline.bars.len(), 3);
        assert_eq!(timeline.bars[0].start, "2024-06-01T10:30:00Z");
        assert_eq!(
            timeline.bars[2].end_inclusive,
            "2024-06-01T12:14:59.999999Z"
        );
    }

    #[test]
    fn more_buckets_than_bars_are_merged_several_to_a_bar() {
        let start = datetime!(2020-01-01 0:00 UTC);
        let timeline = lay_out(
            &[at(start, 1), at(start + Duration::days(719), 1)],
            TimeBucket::Day,
            &created_bounds(&Query::default()),
            "",
            "",
        )
        .unwrap();
        assert!(timeline.bars.len() <= MAX_BARS);
        assert_eq!(timeline.per, "per 15 days");
        assert_eq!(timeline.total, 2);
    }
}
