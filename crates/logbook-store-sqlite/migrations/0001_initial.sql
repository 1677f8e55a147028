-- Logbook's embedded schema, version 1. Migrations are append-only: never edit this file once it
-- has landed; add 0002_*.sql instead.

-- Tenants. `account_row` is the compact integer every other table refers to.
CREATE TABLE accounts (
    account_row INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL -- microseconds since the Unix epoch
);

-- API keys; only the SHA-256 of a key is stored. `account_row` is NULL for platform keys.
CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    key_hash BLOB NOT NULL UNIQUE,
    account_row INTEGER REFERENCES accounts (account_row),
    scope_ingest INTEGER NOT NULL,
    scope_read INTEGER NOT NULL,
    display_prefix TEXT NOT NULL,
    description TEXT,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX api_keys_by_account ON api_keys (account_row);

-- One row per event, clustered by account: `event_row = (account_row << 40) | seq`, so the
-- primary key itself makes `seq` unique and dense-checkable per account, an account's events sit
-- on contiguous pages in `seq` order (exports and `events_since` read rowid ranges), and no
-- separate `(account, seq)` index is written. Only what queries filter on is a column; everything
-- the producer sent is in `body` (the event's JSON without `seq`). Every index implicitly ends with
-- `event_row`, which grows with `seq` inside an account, so newest-first order needs no sort.
CREATE TABLE events (
    event_row INTEGER PRIMARY KEY,
    account_row INTEGER NOT NULL REFERENCES accounts (account_row),
    created_at INTEGER NOT NULL, -- microseconds since the Unix epoch
    id ANY NOT NULL,             -- a UUID as 16 bytes, or the text of any other id
    action TEXT NOT NULL,
    actor_id TEXT,
    ip BLOB,                     -- 16 bytes; IPv4 as IPv4-mapped IPv6, so a CIDR is a range
    outcome INTEGER,             -- 0 success, 1 failure
    new_ip INTEGER NOT NULL DEFAULT 0,
    idempotency_key TEXT,
    fingerprint BLOB,            -- SHA-256 of the producer's content, only when a key was sent
    body TEXT NOT NULL
);
CREATE INDEX events_by_account_created ON events (account_row, created_at);
-- Events without an actor or an ip are not indexed for them (`actor_id = ?` and `ip` ranges
-- imply NOT NULL, so SQLite still uses these partial indexes).
CREATE INDEX events_by_account_actor ON events (account_row, actor_id, created_at)
    WHERE actor_id IS NOT NULL;
CREATE INDEX events_by_account_ip ON events (account_row, ip, created_at)
    WHERE ip IS NOT NULL;
CREATE INDEX events_by_account_action ON events (account_row, action, created_at);
-- Ids are UUIDv7 (time-ordered), so a global index appends at its right edge instead of touching
-- one page per account; lookups add `account_row = ?`.
CREATE INDEX events_by_id ON events (id);
CREATE UNIQUE INDEX events_by_account_key ON events (account_row, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- The ids of every event's targets, for `target:`.
CREATE TABLE event_targets (
    account_row INTEGER NOT NULL,
    target_id TEXT NOT NULL,
    event_row INTEGER NOT NULL,
    PRIMARY KEY (account_row, target_id, event_row)
) WITHOUT ROWID;

-- Full text of `message`, contentless (the text lives once, in `events.body`); rowid = event_row.
-- The writer does not give FTS5 the message but the tokens of `logbook_core::query::text_tokens`,
-- each prefixed with its account's fixed-width tag (`account_text_tag`), joined by spaces. The
-- tokenizer therefore only splits at spaces (every category but separators is a token character),
-- so a word means exactly the same in SQL as in the in-memory matcher, and every term's doclist
-- belongs to one account: a word frequent in one account never makes another account's search
-- walk it.
CREATE VIRTUAL TABLE events_fts USING fts5 (
    message,
    content = '',
    tokenize = "unicode61 remove_diacritics 0 categories 'L* N* M* P* S* C*'"
);

-- Fixed planner statistics describing a large multi-tenant log (a million events, a thousand per
-- account; an actor, an ip or an id picks a few, an action a few hundred). Logbook never runs
-- ANALYZE: these shapes hold for every real log, and fixed numbers keep query plans the same on a
-- fresh database as on a full one.
ANALYZE main;
DELETE FROM sqlite_stat1;
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('events', 'events_by_account_created', '1000000 1000 2'),
    ('events', 'events_by_account_actor', '1000000 1000 20 2'),
    ('events', 'events_by_account_ip', '1000000 1000 20 2'),
    ('events', 'events_by_account_action', '1000000 1000 200 2'),
    ('events', 'events_by_id', '1000000 1'),
    ('events', 'events_by_account_key', '500000 500 1'),
    ('event_targets', 'event_targets', '1000000 1000 20 1'),
    ('accounts', 'sqlite_autoindex_accounts_1', '1000 1'),
    ('api_keys', 'sqlite_autoindex_api_keys_1', '1000 1'),
    ('api_keys', 'sqlite_autoindex_api_keys_2', '1000 1'),
    ('api_keys', 'api_keys_by_account', '1000 2');
