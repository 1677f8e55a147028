-- Issue 17 (ingest that costs less than the table a platform would write by hand): the unique
-- index of idempotency keys is keyed by the key first, then the account.
--
-- Keyed `(account_row, idempotency_key)`, each new key went to the end of its account's run of
-- keys when the producer's keys grow with time, as the benchmark's and most producers' do: a
-- group of ~19,000 events over 1,000 accounts rewrote a page per account, 2,289 pages of a
-- commit's 38,930 at two million events (BENCHMARKS.md, "Where a commit's pages go"). Keyed by the
-- key first, keys that grow with time (UUIDv7, ULID, a counter behind a fixed prefix) append at
-- the index's right edge, a few pages per commit whatever the number of accounts, as the event
-- ids do in `events_by_id`; random keys (UUIDv4) land on random pages either way, so no producer
-- pays more. Lookups name both columns (`account_row = ? AND idempotency_key = ?`), so they seek
-- the same way, and the pair stays unique: one key per account, as before.
CREATE UNIQUE INDEX events_by_key_account ON events (idempotency_key, account_row)
    WHERE idempotency_key IS NOT NULL;
DROP INDEX events_by_account_key;

-- Fixed planner statistics in the spirit of migration 0001: a key names one event.
DELETE FROM sqlite_stat1 WHERE idx = 'events_by_account_key';
INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
    ('events', 'events_by_key_account', '500000 1 1');
