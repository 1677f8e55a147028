-- Issue 19, item 5: `new_country`, the first time an actor is located in a country, decided by the
-- writer in the events' transaction exactly like `new_ip` (the rule is in
-- logbook_core::unfamiliar_ip). Like the other flags it is analysis, outside `body` and the leaf.
-- Adding a column with a constant default rewrites no event.
ALTER TABLE events ADD COLUMN new_country INTEGER NOT NULL DEFAULT 0;

-- Every (actor, country) of an account that a successful event was located in, with the
-- `created_at` of the first such event.
CREATE TABLE actor_countries (
    account_row INTEGER NOT NULL,
    actor_id TEXT NOT NULL,
    country_code TEXT NOT NULL,
    first_seen_at INTEGER NOT NULL,
    PRIMARY KEY (account_row, actor_id, country_code)
) WITHOUT ROWID;

-- Located events stored before this migration are history too (only successful ones, outcome 1
-- being failure), so an upgrade does not flag an actor's next sign-in from a country it already
-- used. It reads the located events through migration 0017's partial country index and writes
-- only this new table.
INSERT INTO actor_countries (account_row, actor_id, country_code, first_seen_at)
    SELECT account_row, actor_id, country_code, min(created_at) FROM events
    WHERE country_code IS NOT NULL AND actor_id IS NOT NULL AND (outcome IS NULL OR outcome <> 1)
    GROUP BY account_row, actor_id, country_code;

-- How far `logbook geoip backfill` has read each account's events: the next seq it reads. Saved
-- with the locations of each batch, so an interrupted backfill continues where it stopped.
CREATE TABLE location_backfill_progress (
    account_row INTEGER PRIMARY KEY,
    next_seq INTEGER NOT NULL
);
