-- Issue 17 (ingest that costs less than the table a platform would write by hand): an event's
-- targets are tokens of its `events_fts` document from now on, no longer rows of `event_targets`.
--
-- `event_targets` was keyed `(account, target_id, event_row)`, so each new row went to the end of
-- its (account, target) run: a group of ~19,000 events over 1,000 accounts rewrote two thirds of
-- the table's pages in every commit (BENCHMARKS.md, "Where a commit's pages go"), 15 % of the
-- bytes a commit wrote. FTS5 writes a commit's tokens as one new sorted segment and merges them
-- later, so the same lookups cost a few pages per commit. The token is
-- `.<account_row>t<lower-case hex of the target id's UTF-8>` (`target_terms`): behind `.` like
-- the place tokens, so no word of a message can be or find one, and in hexadecimal so it is one
-- exact token whatever the id holds, and a prefix of an id is a prefix of its token.
--
-- Nothing is rewritten here: the events stored before keep their rows, and `target:` looks in
-- both. Pruning must hand FTS5 exactly the tokens a document was written with, so this table says
-- which events are which: an account's events up to `last_event_row` have rows in
-- `event_targets`, every later one has tokens (an account without a row here has only tokens).
-- The marker stays right because an account's seqs are never reused.
CREATE TABLE events_with_target_rows (
    account_row INTEGER PRIMARY KEY,
    last_event_row INTEGER NOT NULL
);

INSERT INTO events_with_target_rows (account_row, last_event_row)
SELECT account_row, last_event_row FROM (
    SELECT accounts.account_row AS account_row,
        (SELECT event_row FROM events
         WHERE event_row >= (accounts.account_row << 40) AND event_row < ((accounts.account_row + 1) << 40)
         ORDER BY event_row DESC LIMIT 1) AS last_event_row
    FROM accounts
)
WHERE last_event_row IS NOT NULL;
