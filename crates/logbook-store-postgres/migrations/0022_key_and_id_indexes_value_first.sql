-- Issue 17 (ingest that costs less than the table a platform would write by hand): the unique
-- index of idempotency keys and the index of event ids are keyed by the value first.
--
-- Keyed by the account first, each new entry went to the end of its account's run: a group of
-- events over a thousand accounts touched a page per account in each index. Event ids are
-- UUIDv7, time first, so keyed by the id alone they append at the index's right edge, a few pages
-- per commit (SQLite's `events_by_id` has always been so); an event is still read by its account
-- and id, the account now tested on the one row the id finds. Idempotency keys that grow with
-- time (UUIDv7, ULID, a counter behind a fixed prefix) append the same way keyed by the key
-- first, and random ones (UUIDv4) land on random pages either way; lookups name both columns and
-- the pair stays unique, one key per account, as before.
CREATE UNIQUE INDEX events_by_key_account ON events (idempotency_key, account_row)
    WHERE idempotency_key IS NOT NULL;
DROP INDEX events_by_account_key;
CREATE INDEX events_by_id ON events (id);
DROP INDEX events_by_account_id;
