-- Issue 19, item 7 (locating costs at most 5 % of batched ingest), third step: an event located at
-- ingest from now on holds one place token in its `events_fts` document, its location's row
-- (`.<account_row>l<location_row>`), instead of three (country, network and city, migration 0020).
--
-- The three tokens were the largest part left of what locating cost the writer (about 1 µs of
-- full text per event, and their bytes in every commit, BENCHMARKS.md). A location already holds
-- its country, network and city (`locations`), so one token per event names all three. A
-- `country:`, `asn:` or `city:` clause looks up, in `account_locations`, the locations the
-- account's events have been located at that hold the value, and matches their tokens.
--
-- * `account_locations` has one row per (account, location) the writer has given an event since
--   this migration; it adds the row with an event's first use of the pair. It is what keeps a
--   query's tokens to the account's own locations: a country of the whole `locations` table can
--   be thousands of them.
-- * `events_with_three_place_tokens` keeps, per account, the last `event_row` stored before this
--   migration. An event at or below it with a `location_row` holds the three tokens of migration
--   0020; any later one holds the one token. Pruning and the removal of personal data must give
--   FTS5 the exact tokens a contentless document was written with, so they tell the two apart by
--   this. A place query looks for both spellings, and for the documents of
--   `events_place_terms` (events located before migration 0020, or by the backfill).
--
-- Nothing is rewritten: the last row of each account is one seek into its `event_row` range.
CREATE TABLE account_locations (
    account_row INTEGER NOT NULL,
    location_row INTEGER NOT NULL,
    PRIMARY KEY (account_row, location_row)
) WITHOUT ROWID;

CREATE TABLE events_with_three_place_tokens (
    account_row INTEGER PRIMARY KEY,
    last_event_row INTEGER NOT NULL
);

INSERT INTO events_with_three_place_tokens (account_row, last_event_row)
SELECT account_row, last_event_row FROM (
    SELECT accounts.account_row AS account_row,
        (SELECT event_row FROM events
         WHERE event_row >= (accounts.account_row << 40) AND event_row < ((accounts.account_row + 1) << 40)
         ORDER BY event_row DESC LIMIT 1) AS last_event_row
    FROM accounts
)
WHERE last_event_row IS NOT NULL;
