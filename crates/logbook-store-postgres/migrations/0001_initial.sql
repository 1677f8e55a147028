-- Logbook's PostgreSQL schema, version 1. Migrations are append-only: never edit this file once it
-- has landed; add 0002_*.sql instead. Times are microseconds since the Unix epoch (bigint), as in
-- the SQLite store, so cursors and comparisons are identical on both backends.

-- Tenants. `next_seq` is the truth about each account's `seq`: every node's writer locks the rows
-- of the accounts it appends to (`FOR UPDATE`), assigns seqs from here and updates it in the same
-- transaction, so `seq` stays dense and unique however many nodes ingest at once.
CREATE TABLE accounts (
    account_row bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text COLLATE "C" NOT NULL UNIQUE,
    created_at bigint NOT NULL,
    next_seq bigint NOT NULL DEFAULT 0
);

-- API keys; only the SHA-256 of a key is stored. `account_row` is NULL for platform keys.
CREATE TABLE api_keys (
    key_id text PRIMARY KEY,
    key_hash bytea NOT NULL UNIQUE,
    account_row bigint REFERENCES accounts (account_row),
    scope_ingest boolean NOT NULL,
    scope_read boolean NOT NULL,
    display_prefix text NOT NULL,
    description text,
    created_at bigint NOT NULL,
    revoked_at bigint
);
CREATE INDEX api_keys_by_account ON api_keys (account_row);

-- One row per event, keyed by (account, seq). Only what queries filter on is a column; everything
-- the producer sent is in `body` (the event's JSON without `seq`). Text compared by prefix ranges
-- uses the "C" collation so that index order is byte order, as the prefix bounds assume.
-- `message_tokens` holds the tokens of `message` exactly as `logbook_core::query::text_tokens`
-- splits them, with their positions, written by Logbook itself (not by a PostgreSQL parser).
CREATE TABLE events (
    account_row bigint NOT NULL,
    seq bigint NOT NULL,
    created_at bigint NOT NULL,
    id text COLLATE "C" NOT NULL,
    action text COLLATE "C" NOT NULL,
    actor_id text COLLATE "C",
    ip bytea,                     -- 16 bytes; IPv4 as IPv4-mapped IPv6, so a CIDR is a range
    outcome smallint,             -- 0 success, 1 failure
    new_ip boolean NOT NULL DEFAULT false,
    idempotency_key text COLLATE "C",
    fingerprint bytea,            -- SHA-256 of the producer's content, only when a key was sent
    message_tokens tsvector NOT NULL,
    body text NOT NULL,
    PRIMARY KEY (account_row, seq)
);
CREATE INDEX events_by_account_created ON events (account_row, created_at, seq);
CREATE INDEX events_by_account_actor ON events (account_row, actor_id, created_at, seq);
CREATE INDEX events_by_account_ip ON events (account_row, ip, created_at, seq);
CREATE INDEX events_by_account_action ON events (account_row, action, created_at, seq);
CREATE INDEX events_by_account_id ON events (account_row, id);
CREATE UNIQUE INDEX events_by_account_key ON events (account_row, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- GIN collects new entries in a pending list that every search reads in full; a small list (256
-- kB instead of 4 MB) keeps that read short and is merged into the index often, in batches.
CREATE INDEX events_message_tokens ON events USING gin (message_tokens)
    WITH (gin_pending_list_limit = 256);

-- The ids of every event's targets, for `target:`.
CREATE TABLE event_targets (
    account_row bigint NOT NULL,
    target_id text COLLATE "C" NOT NULL,
    seq bigint NOT NULL,
    PRIMARY KEY (account_row, target_id, seq)
);

-- Row-level security: the second isolation layer. Every read runs in a transaction that sets
-- `logbook.account_row` to the account of the request (SET LOCAL), so a query that forgot its
-- account filter still sees only that account. The writer and `migrate-store`, which work across
-- accounts, say so explicitly with `logbook.all_accounts = on` in their own transactions. FORCE
-- makes the policies apply to the tables' owner too (superusers always bypass them, which is why
-- the store switches such sessions to the unprivileged `logbook_rls` role).
ALTER TABLE events ENABLE ROW LEVEL SECURITY;
ALTER TABLE events FORCE ROW LEVEL SECURITY;
CREATE POLICY events_of_the_current_account ON events
    USING (account_row = nullif(current_setting('logbook.account_row', true), '')::bigint
           OR current_setting('logbook.all_accounts', true) = 'on')
    WITH CHECK (account_row = nullif(current_setting('logbook.account_row', true), '')::bigint
                OR current_setting('logbook.all_accounts', true) = 'on');
ALTER TABLE event_targets ENABLE ROW LEVEL SECURITY;
ALTER TABLE event_targets FORCE ROW LEVEL SECURITY;
CREATE POLICY event_targets_of_the_current_account ON event_targets
    USING (account_row = nullif(current_setting('logbook.account_row', true), '')::bigint
           OR current_setting('logbook.all_accounts', true) = 'on')
    WITH CHECK (account_row = nullif(current_setting('logbook.account_row', true), '')::bigint
                OR current_setting('logbook.all_accounts', true) = 'on');

-- Full-text lookups under row-level security. `@@` is not a leakproof operator, so PostgreSQL will
-- not use it as an index condition beneath a row-level security policy: through the policy, a rare
-- word could only be found by reading the whole account. This function finds the matching `seq`s
-- of the current account (the same `logbook.account_row` setting the policies read) through the
-- GIN index, running as the schema's owner. It returns sequence numbers only; callers join them
-- back to `events`, where the policies still apply. When the owner itself is subject to the
-- policies (a non-superuser owner, because of FORCE), results stay correct and only the GIN index
-- is out of reach.
CREATE FUNCTION logbook_message_matches(search tsquery, max_rows bigint)
RETURNS TABLE (seq bigint)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, public
ROWS 100
AS $$
    SELECT e.seq FROM public.events e
    WHERE e.account_row + 0 = nullif(current_setting('logbook.account_row', true), '')::bigint
      AND e.message_tokens @@ search
    LIMIT max_rows
$$;
REVOKE ALL ON FUNCTION logbook_message_matches(tsquery, bigint) FROM PUBLIC;
