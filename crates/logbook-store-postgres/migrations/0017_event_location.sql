-- Issue 19, where each address is: the location the IP databases gave an event's address when it
-- arrived (logbook_core::location), kept with the event and never looked up again. Like the
-- new-IP flags it is analysis, not what the producer sent, so it stays out of `body` (and the
-- leaf): the object is kept verbatim in `location` and spliced into the event JSON on reading.
--
-- What the query language filters on (`country:`, `asn:`, `city:`) is a column of its own with an
-- index leading with the account, like actor, ip and action, so a rare country, network or city
-- is found without walking the account; the rest (country name, region, coordinates and their
-- accuracy, organization) is only ever shown, so it lives in the JSON alone. Events without a
-- location are left out of the partial indexes.
ALTER TABLE events ADD COLUMN country_code text COLLATE "C";
ALTER TABLE events ADD COLUMN asn bigint;
ALTER TABLE events ADD COLUMN city text COLLATE "C";
ALTER TABLE events ADD COLUMN location text;
CREATE INDEX events_by_account_country ON events (account_row, country_code, created_at, seq)
    WHERE country_code IS NOT NULL;
CREATE INDEX events_by_account_asn ON events (account_row, asn, created_at, seq)
    WHERE asn IS NOT NULL;
CREATE INDEX events_by_account_city ON events (account_row, city, created_at, seq)
    WHERE city IS NOT NULL;
