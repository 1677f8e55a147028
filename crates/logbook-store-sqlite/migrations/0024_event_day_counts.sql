-- The timeline's counts per day instead of per hour (migration 0022). The writer's cost of the
-- counts is the pages of their table a commit touches: a commit of history spanning days (an
-- import, the benchmark's load of 181 days) touched about one hour row per few events, 900 bytes
-- written per event, where day rows cost a twentieth of that. The page draws hours only for two
-- days or less, which it counts over the events themselves at a cost bounded by those two days.
--
-- One row per account and day of UTC with events; `day_start` is the first microsecond of the
-- day (floor division, as `TimeBucket::start_micros_of`). Kept by the writer in the transaction
-- that stores the events and by retention in the one that deletes them
-- (`logbook_store_sql::day_counts`).
DROP TABLE event_hour_counts;

CREATE TABLE event_day_counts (
    account_row INTEGER NOT NULL,
    day_start INTEGER NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (account_row, day_start)
) WITHOUT ROWID;

INSERT INTO event_day_counts (account_row, day_start, events)
SELECT account_row, created_at - (((created_at % 86400000000) + 86400000000) % 86400000000), count(*)
FROM events GROUP BY 1, 2;
