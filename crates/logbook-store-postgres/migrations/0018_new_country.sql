-- Issue 19, item 5: `new_country`, the first time an actor is located in a country, decided by the
-- writer in the events' transaction exactly like `new_ip` (the rule is in
-- logbook_core::unfamiliar_ip). Like the other flags it is analysis, outside `body` and the leaf.
-- Adding a column with a constant default rewrites no event (PostgreSQL 11 and later keep the
-- default in the catalogue).
ALTER TABLE events ADD COLUMN new_country boolean NOT NULL DEFAULT false;

-- Every (actor, country) of an account that a successful event was located in, with the
-- `created_at` of the first such event.
CREATE TABLE actor_countries (
    account_row bigint NOT NULL,
    actor_id text NOT NULL,
    country_code text COLLATE "C" NOT NULL,
    first_seen_at bigint NOT NULL,
    PRIMARY KEY (account_row, actor_id, country_code)
);

-- Located events stored before this migration are history too (only successful ones, outcome 1
-- being failure), so an upgrade does not flag an actor's next sign-in from a country it already
-- used. It reads the located events through migration 0017's partial country index and writes
-- only this new table. The row-level policies would hide every event from it when the migrating
-- role is neither superuser nor BYPASSRLS (a database this migration read blind is filled by
-- migration 0021).
SET LOCAL logbook.all_accounts = 'on';
INSERT INTO actor_countries (account_row, actor_id, country_code, first_seen_at)
    SELECT account_row, actor_id, country_code, min(created_at) FROM events
    WHERE country_code IS NOT NULL AND actor_id IS NOT NULL AND outcome IS DISTINCT FROM 1
    GROUP BY account_row, actor_id, country_code;

-- How far `logbook geoip backfill` has read each account's events: the next seq it reads. Saved
-- with the locations of each batch, so an interrupted backfill continues where it stopped.
CREATE TABLE location_backfill_progress (
    account_row bigint PRIMARY KEY,
    next_seq bigint NOT NULL
);
