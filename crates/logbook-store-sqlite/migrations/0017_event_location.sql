-- Issue 19, where each address is: the location the IP databases gave an event's address when it
-- arrived (logbook_core::location), kept with the event and never looked up again. Like the
-- new-IP flags it is analysis, not what the producer sent, so it stays out of `body` (and the
-- leaf): the object is kept verbatim in `location` and spliced into the event JSON on reading.
--
-- What the query language filters on (`country:`, `asn:`, `city:`) is a column of its own with an
-- index leading with the account, like actor, ip and action, so a rare country, network or city
-- is found without walking the account; the rest (country name, region, coordinates and their
-- accuracy, organization) is only ever shown, so it lives in the JSON alone. Events without a
-- location are not indexed (`= ?` implies NOT NULL, so SQLite still uses the partial indexes).
ALTER TABLE events ADD COLUMN country_code TEXT;
ALTER TABLE events ADD COLUMN asn INTEGER;
ALTER TABLE events ADD COLUMN city TEXT;
ALTER TABLE events ADD COLUMN location TEXT;
CREATE INDEX events_by_account_country ON events (account_row, country_code, created_at)
    WHERE country_code IS NOT NULL;
CREATE INDEX events_by_account_asn ON events (account_row, asn, created_at)
    WHERE asn IS NOT NULL;
CREATE INDEX events_by_account_city ON events (account_row, city, created_at)
    WHERE city IS NOT NULL;

-- Fixed planner statistics in the spirit of migration 0001: a country holds many of an account's
-- events, a network fewer, a city fewer still.
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('events', 'events_by_account_country', '1000000 1000 200 2'),
    ('events', 'events_by_account_asn', '1000000 1000 50 2'),
    ('events', 'events_by_account_city', '1000000 1000 50 2');
