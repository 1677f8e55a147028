-- Issue 17, item 4 (a query's cost must not grow with the stored events beyond the index depth):
-- every account's events counted per hour of UTC, so the timeline of a whole log or of a
-- `created:` range reads one row per hour with events instead of counting every event.
--
-- The writer adds each group's counts in the transaction that stores its events (under the
-- account row locks it already holds, in key order), retention takes pruned events off in the
-- transaction that deletes them, and `migrate-store` adds what it imports, so the rows are
-- exactly the stored events at every commit (`logbook_store_sql::hour_counts`, since replaced by `day_counts`). `hour_start` is
-- the first microsecond of the hour (floor division, as `TimeBucket::start_micros_of`).
CREATE TABLE event_hour_counts (
    account_row bigint NOT NULL,
    hour_start bigint NOT NULL,
    events bigint NOT NULL,
    PRIMARY KEY (account_row, hour_start)
);

ALTER TABLE event_hour_counts ENABLE ROW LEVEL SECURITY;
ALTER TABLE event_hour_counts FORCE ROW LEVEL SECURITY;
CREATE POLICY event_hour_counts_of_the_current_account ON event_hour_counts
    USING (account_row = nullif(current_setting('logbook.account_row', true), '')::bigint
           OR current_setting('logbook.all_accounts', true) = 'on')
    WITH CHECK (account_row = nullif(current_setting('logbook.account_row', true), '')::bigint
                OR current_setting('logbook.all_accounts', true) = 'on');

-- Migration 0020 replaces this table with counts per day, computed from the events; counting
-- them here first would only make an upgrade read every event twice.
