-- Issue 19, item 7 (locating costs at most 5 % of batched ingest), second step: an event located
-- from now on stores its location object once per distinct location, and its place terms inside
-- the event's own full-text document.
--
-- Migration 0019 left three costs a located event paid at ingest (BENCHMARKS.md): the location
-- object and the place columns in every row (about 300 bytes, the same for every event from one
-- network), the commit of those bytes, and a second full-text table with a document of its own
-- per event, one more virtual-table statement. They go:
--
-- * `locations` holds each distinct location object once, with its place columns; a located
--   event stores only its `location_row`. Reading splices the object back exactly as before (the
--   event's own `location` column, which events located before this migration and by
--   `logbook geoip backfill` still use, or else the interned one), and a `country:`, `asn:` or
--   `city:` clause tests the event's own column or its location's (`location_row IN` the
--   locations holding the value, a table of one row per distinct location).
-- * The place terms of such an event are tokens of its `events_fts` document, written by the same
--   statement as its message: `.` followed by the term of `place_terms` (`.12c494e`). A message
--   token is a run of letters and digits behind its account's tag, and a searched word goes
--   through the same tokenization, so no word can be or find a place token.
--
-- Which index holds an event's place is told by its row: `location_row` set, `events_fts`;
-- `location` set, `events_place_terms`. Nothing is rewritten here: events located before keep
-- their object and terms where they are, and a place query looks in both.
CREATE TABLE locations (
    location_row INTEGER PRIMARY KEY,
    json TEXT NOT NULL UNIQUE,
    country_code TEXT,
    asn INTEGER,
    city TEXT
);
CREATE INDEX locations_by_country ON locations (country_code) WHERE country_code IS NOT NULL;
CREATE INDEX locations_by_asn ON locations (asn) WHERE asn IS NOT NULL;
CREATE INDEX locations_by_city ON locations (city) WHERE city IS NOT NULL;

ALTER TABLE events ADD COLUMN location_row INTEGER;
