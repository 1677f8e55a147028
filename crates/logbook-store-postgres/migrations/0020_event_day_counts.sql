-- The timeline's counts per day instead of per hour (migration 0019). The writer's cost of the
-- counts is the rows of their table a commit touches: a commit of history spanning days (an
-- import, the benchmark's load of 181 days) touched about one hour row per few events, where day
-- rows are a twentieth of that. The page draws hours only for two days or less, which it counts
-- over the events themselves at a cost bounded by those two days.
--
-- One row per account and day of UTC with events; `day_start` is the first microsecond of the
-- day (floor division, as `TimeBucket::start_micros_of`). Kept by the writer in the transaction
-- that stores the events (under the account row locks it already holds, in key order), by
-- retention in the one that deletes them, and by `migrate-store` for what it imports
-- (`logbook_store_sql::day_counts`).
DROP TABLE event_hour_counts;

CREATE TABLE event_day_counts (
    account_row bigint NOT NULL,
    day_start bigint NOT NULL,
    events bigint NOT NULL,
    PRIMARY KEY (account_row, day_start)
);

ALTER TABLE event_day_counts ENABLE ROW LEVEL SECURITY;
ALTER TABLE event_day_counts FORCE ROW LEVEL SECURITY;
CREATE POLICY event_day_counts_of_the_current_account ON event_day_counts
    USING (account_row = nullif(current_setting('logbook.account_row', true), '')::bigint
           OR current_setting('logbook.all_accounts', true) = 'on')
    WITH CHECK (account_row = nullif(current_setting('logbook.account_row', true), '')::bigint
                OR current_setting('logbook.all_accounts', true) = 'on');

-- The row-level policies would hide every event from this count when the migrating role is
-- neither superuser nor BYPASSRLS (the owner the README recommends).
SET LOCAL logbook.all_accounts = 'on';
INSERT INTO event_day_counts (account_row, day_start, events)
SELECT account_row, created_at - (((created_at % 86400000000) + 86400000000) % 86400000000), count(*)
FROM events GROUP BY 1, 2;
