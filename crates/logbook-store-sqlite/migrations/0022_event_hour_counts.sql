-- Issue 17, item 4 (a query's cost must not grow with the stored events beyond the index depth):
-- every account's events counted per hour of UTC, so the timeline of a whole log or of a
-- `created:` range reads one row per hour with events instead of counting every event (1.8
-- million rows, 70 ms, at 10 million events).
--
-- The writer adds each group's counts in the transaction that stores its events, and retention
-- takes pruned events off in the transaction that deletes them, so the rows are exactly the
-- stored events at every commit (`logbook_store_sql::hour_counts`, since replaced by `day_counts`). `hour_start` is the first
-- microsecond of the hour (floor division, as `TimeBucket::start_micros_of`).
CREATE TABLE event_hour_counts (
    account_row INTEGER NOT NULL,
    hour_start INTEGER NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (account_row, hour_start)
) WITHOUT ROWID;

-- Migration 0024 replaces this table with counts per day, computed from the events; counting
-- them here first would only make an upgrade read every event twice.
