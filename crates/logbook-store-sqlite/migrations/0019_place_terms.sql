-- Issue 19, item 7 (locating costs at most 5 % of batched ingest): `country:`, `asn:` and `city:`
-- are found through a full-text index of place terms instead of three B-tree indexes.
--
-- The three partial indexes of migration 0017 cost 12.7 % of the writer's throughput: each is one
-- more B-tree with a tail per (account, value) that nearly every located event enters, a page
-- touched per event. FTS5 instead keeps a group commit's terms in memory and writes them as one
-- sorted segment, so a located event costs a few hash-table entries. The columns stay (they are
-- what a query's candidates are checked against, and what a common value's plan checks on each
-- row); only how a rare value is found changes.
--
-- Each located event is one document of `events_place_terms`, its rowid the event's `event_row`,
-- holding up to three terms, each prefixed with its account's row in decimal so every term's
-- doclist belongs to one account: `<account_row>c<hex of the country code>`,
-- `<account_row>a<asn in decimal>` and `<account_row>y<hex of the city>`. Hexadecimal makes every
-- term lower-case ASCII letters and digits, so the `ascii` tokenizer keeps it whole and case
-- folding cannot merge two values: the index's match is exact. The letter after the account's
-- digits says which field the term is, and cannot be read as a digit of the account.
-- `place_terms` in logbook-store-sql writes the same terms for new events and for queries.
--
-- Contentless (the values live in `events`), no positions (`detail = none`: a term is in an event
-- or not) and no per-document sizes (`columnsize = 0`: nothing ranks), so an event costs only its
-- terms.
CREATE VIRTUAL TABLE events_place_terms USING fts5 (
    terms,
    content = '',
    columnsize = 0,
    detail = none,
    tokenize = 'ascii'
);

-- The document is written by the code that writes the columns (the writer, the location
-- backfill, the removal of personal data, retention's deletes; `place_terms` in logbook-store-sql),
-- never by a trigger: a statement that fires a trigger runs in a statement savepoint, at which
-- FTS5 writes the terms it holds in memory as a segment, so a trigger made every insert write a
-- segment to both full-text tables.

-- Events located before this migration get their documents here. They are found through the
-- partial indexes about to go, each read whole as a covering index (a plain `WHERE country_code
-- IS NOT NULL OR ...` would scan the whole table), so only located events are read, never the
-- rest; their rows are then read by rowid, in rowid order as FTS5 prefers. Then the indexes go.
INSERT INTO events_place_terms (rowid, terms)
    SELECT event_row, concat_ws(' ',
        CASE WHEN country_code IS NOT NULL THEN account_row || 'c' || lower(hex(country_code)) END,
        CASE WHEN asn IS NOT NULL THEN account_row || 'a' || asn END,
        CASE WHEN city IS NOT NULL THEN account_row || 'y' || lower(hex(city)) END
    )
    FROM events
    WHERE event_row IN (
        SELECT event_row FROM events INDEXED BY events_by_account_country
            WHERE country_code IS NOT NULL
        UNION
        SELECT event_row FROM events INDEXED BY events_by_account_asn WHERE asn IS NOT NULL
        UNION
        SELECT event_row FROM events INDEXED BY events_by_account_city WHERE city IS NOT NULL
    )
    ORDER BY event_row;

DROP INDEX events_by_account_country;
DROP INDEX events_by_account_asn;
DROP INDEX events_by_account_city;
DELETE FROM sqlite_stat1
    WHERE idx IN ('events_by_account_country', 'events_by_account_asn', 'events_by_account_city');
