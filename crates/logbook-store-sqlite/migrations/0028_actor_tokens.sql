-- Issue 17 (ingest that costs less than the table a platform would write by hand): an event's
-- actor id is a token of its `events_fts` document from now on, no longer an entry of the index
-- `events_by_account_actor`.
--
-- The index was keyed `(account, actor, created_at)`, so each new entry went to the end of its
-- (account, actor) run: a group of ~17,000 events over 1,000 accounts rewrote 7,252 of the
-- index's pages in every commit at two million events, 28 % of the pages a commit wrote
-- (BENCHMARKS.md, "Where a commit's pages go now"). FTS5 writes a commit's tokens as one new
-- sorted segment, as for the targets since migration 0025 and the actions since 0026. The token is
-- `.<account_row>p<lower-case hex of the id's UTF-8>` (`actor_terms`): behind `.`, so no word of
-- a message can be or find one; in hexadecimal, so it is one exact token and the hex of a prefix
-- (`actor:alice*`) is a prefix of the token. The `actor_id` column stays: a negated clause
-- (`-actor:alice`) tests it on the rows it reads, and every positive lookup is confirmed on it.
--
-- The events stored before keep their entries, moved into `event_actor_rows` (the index's very
-- key, plus the row), and `actor:` looks in both. Pruning must hand FTS5 exactly the tokens a
-- document was written with, so `events_with_actor_rows` says which events are which: an
-- account's events up to `last_event_row` have a row in `event_actor_rows` (when they have an
-- actor), every later one a token (an account without a row here has only tokens). The marker
-- stays right because an account's seqs are never reused.
CREATE TABLE event_actor_rows (
    account_row INTEGER NOT NULL,
    actor_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    event_row INTEGER NOT NULL,
    PRIMARY KEY (account_row, actor_id, created_at, event_row)
) WITHOUT ROWID;

INSERT INTO event_actor_rows (account_row, actor_id, created_at, event_row)
SELECT account_row, actor_id, created_at, event_row FROM events INDEXED BY events_by_account_actor
WHERE actor_id IS NOT NULL
ORDER BY account_row, actor_id, created_at, event_row;

CREATE TABLE events_with_actor_rows (
    account_row INTEGER PRIMARY KEY,
    last_event_row INTEGER NOT NULL
);

INSERT INTO events_with_actor_rows (account_row, last_event_row)
SELECT account_row, last_event_row FROM (
    SELECT accounts.account_row AS account_row,
        (SELECT event_row FROM events
         WHERE event_row >= (accounts.account_row << 40) AND event_row < ((accounts.account_row + 1) << 40)
         ORDER BY event_row DESC LIMIT 1) AS last_event_row
    FROM accounts
)
WHERE last_event_row IS NOT NULL;

-- The timeline of one actor per day had counted each bucket's range of that index; its tokens
-- give every match at once, in arrival order, so the count would read every event of the actor.
-- These are the account's events per day and actor, kept like `event_day_action_counts`
-- (migration 0026) by the writer and by retention in the transactions that add and delete
-- events, and keyed the same way, the day first, so a commit's rows share their pages across
-- accounts. `actor:` alone, per day, walks the account's days in `event_day_counts` and reads
-- each day's rows here (`count_over_time`).
CREATE TABLE event_day_actor_counts (
    day_start INTEGER NOT NULL,
    account_row INTEGER NOT NULL,
    actor_id TEXT NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (day_start, account_row, actor_id)
) WITHOUT ROWID;

INSERT INTO event_day_actor_counts (account_row, day_start, actor_id, events)
SELECT account_row, created_at - (((created_at % 86400000000) + 86400000000) % 86400000000), actor_id, count(*)
FROM events WHERE actor_id IS NOT NULL GROUP BY 1, 2, 3;

DROP INDEX events_by_account_actor;
DELETE FROM sqlite_stat1 WHERE idx = 'events_by_account_actor';
