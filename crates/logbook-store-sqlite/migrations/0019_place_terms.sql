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
-- `place_terms` in the SQLite store's `encoding.rs` writes the same terms for a query.
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

-- The document is kept by triggers, so that every statement that writes the columns keeps it
-- exact: the writer's inserts, `logbook geoip backfill`, the removal of personal data (which takes
-- the place with the address), retention's deletes, and anything an operator runs. A contentless
-- table removes exactly the terms it is given, which the triggers read from the row's old values.
-- The terms are built in SQL (not by a function of Logbook's), so the triggers also run on a
-- connection Logbook did not open, such as the `sqlite3` shell.
CREATE TRIGGER events_place_terms_on_insert AFTER INSERT ON events
WHEN new.country_code IS NOT NULL OR new.asn IS NOT NULL OR new.city IS NOT NULL
BEGIN
    INSERT INTO events_place_terms (rowid, terms) VALUES (
        new.event_row,
        concat_ws(' ',
            CASE WHEN new.country_code IS NOT NULL THEN new.account_row || 'c' || lower(hex(new.country_code)) END,
            CASE WHEN new.asn IS NOT NULL THEN new.account_row || 'a' || new.asn END,
            CASE WHEN new.city IS NOT NULL THEN new.account_row || 'y' || lower(hex(new.city)) END
        )
    );
END;

CREATE TRIGGER events_place_terms_on_delete AFTER DELETE ON events
WHEN old.country_code IS NOT NULL OR old.asn IS NOT NULL OR old.city IS NOT NULL
BEGIN
    INSERT INTO events_place_terms (events_place_terms, rowid, terms) VALUES (
        'delete',
        old.event_row,
        concat_ws(' ',
            CASE WHEN old.country_code IS NOT NULL THEN old.account_row || 'c' || lower(hex(old.country_code)) END,
            CASE WHEN old.asn IS NOT NULL THEN old.account_row || 'a' || old.asn END,
            CASE WHEN old.city IS NOT NULL THEN old.account_row || 'y' || lower(hex(old.city)) END
        )
    );
END;

CREATE TRIGGER events_place_terms_on_update AFTER UPDATE OF country_code, asn, city ON events
WHEN old.country_code IS NOT new.country_code OR old.asn IS NOT new.asn
    OR old.city IS NOT new.city
BEGIN
    INSERT INTO events_place_terms (events_place_terms, rowid, terms)
        SELECT 'delete', old.event_row, concat_ws(' ',
            CASE WHEN old.country_code IS NOT NULL THEN old.account_row || 'c' || lower(hex(old.country_code)) END,
            CASE WHEN old.asn IS NOT NULL THEN old.account_row || 'a' || old.asn END,
            CASE WHEN old.city IS NOT NULL THEN old.account_row || 'y' || lower(hex(old.city)) END
        )
        WHERE old.country_code IS NOT NULL OR old.asn IS NOT NULL OR old.city IS NOT NULL;
    INSERT INTO events_place_terms (rowid, terms)
        SELECT new.event_row, concat_ws(' ',
            CASE WHEN new.country_code IS NOT NULL THEN new.account_row || 'c' || lower(hex(new.country_code)) END,
            CASE WHEN new.asn IS NOT NULL THEN new.account_row || 'a' || new.asn END,
            CASE WHEN new.city IS NOT NULL THEN new.account_row || 'y' || lower(hex(new.city)) END
        )
        WHERE new.country_code IS NOT NULL OR new.asn IS NOT NULL OR new.city IS NOT NULL;
END;

-- Events located before this migration get their documents here, read through the partial
-- indexes about to go (so only located events are read, never the whole table), in rowid order as
-- FTS5 prefers. Then the indexes go.
INSERT INTO events_place_terms (rowid, terms)
    SELECT event_row, concat_ws(' ',
        CASE WHEN country_code IS NOT NULL THEN account_row || 'c' || lower(hex(country_code)) END,
        CASE WHEN asn IS NOT NULL THEN account_row || 'a' || asn END,
        CASE WHEN city IS NOT NULL THEN account_row || 'y' || lower(hex(city)) END
    )
    FROM events
    WHERE country_code IS NOT NULL OR asn IS NOT NULL OR city IS NOT NULL
    ORDER BY event_row;

DROP INDEX events_by_account_country;
DROP INDEX events_by_account_asn;
DROP INDEX events_by_account_city;
DELETE FROM sqlite_stat1
    WHERE idx IN ('events_by_account_country', 'events_by_account_asn', 'events_by_account_city');
