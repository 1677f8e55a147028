-- Issue 17 (ingest that costs less than the table a platform would write by hand): an event's
-- action is a token of its `events_fts` document from now on, no longer an entry of the index
-- `events_by_account_action`.
--
-- The index was keyed `(account, action, created_at)`, so each new entry went to the end of its
-- (account, action) run: a group of ~19,000 events over 1,000 accounts rewrote a quarter of the
-- index's pages in every commit, 14 % of the pages a commit wrote (BENCHMARKS.md, "Where a
-- commit's pages go"). FTS5 writes a commit's tokens as one new sorted segment, as for the
-- targets since migration 0025. The token is `.<account_row>v<lower-case hex of the action's
-- UTF-8>` (`action_terms`): behind `.`, so no word of a message can be or find one; in
-- hexadecimal, so it is one exact token and the hex of a prefix (`action:server.*`) is a prefix of
-- the token. The `action` column stays: a negated clause (`-action:user.login`) tests it on the
-- rows it reads, and every positive lookup is confirmed on it.
--
-- The events stored before keep their entries, moved into `event_action_rows` (the index's very
-- key, plus the row), and `action:` looks in both. Pruning must hand FTS5 exactly the tokens a
-- document was written with, so `events_with_action_rows` says which events are which: an
-- account's events up to `last_event_row` have a row in `event_action_rows`, every later one a
-- token (an account without a row here has only tokens). The marker stays right because an
-- account's seqs are never reused.
CREATE TABLE event_action_rows (
    account_row INTEGER NOT NULL,
    action TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    event_row INTEGER NOT NULL,
    PRIMARY KEY (account_row, action, created_at, event_row)
) WITHOUT ROWID;

INSERT INTO event_action_rows (account_row, action, created_at, event_row)
SELECT account_row, action, created_at, event_row FROM events INDEXED BY events_by_account_action
ORDER BY account_row, action, created_at, event_row;

CREATE TABLE events_with_action_rows (
    account_row INTEGER PRIMARY KEY,
    last_event_row INTEGER NOT NULL
);

INSERT INTO events_with_action_rows (account_row, last_event_row)
SELECT account_row, last_event_row FROM (
    SELECT accounts.account_row AS account_row,
        (SELECT event_row FROM events
         WHERE event_row >= (accounts.account_row << 40) AND event_row < ((accounts.account_row + 1) << 40)
         ORDER BY event_row DESC LIMIT 1) AS last_event_row
    FROM accounts
)
WHERE last_event_row IS NOT NULL;


-- The timeline of an action per day had counted each bucket's range of that index (a millisecond
-- on the benchmark's largest account); its tokens give every match at once, in arrival order, so
-- the count would read every matching event (50 ms there, growing with the account). These are
-- the account's events per day and action, kept like `event_day_counts` (migration 0024) by the
-- writer and by retention in the transactions that add and delete events. The day leads the key:
-- a commit of events sent as they happen touches the rows of one day, which share their pages
-- across accounts (keyed by account first, as the index was, each account's rows would be a page
-- of their own, a page per account per commit). `action:` alone, per day, walks the account's
-- days in `event_day_counts` and reads each day's rows here (`count_over_time`).
CREATE TABLE event_day_action_counts (
    day_start INTEGER NOT NULL,
    account_row INTEGER NOT NULL,
    action TEXT NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (day_start, account_row, action)
) WITHOUT ROWID;

INSERT INTO event_day_action_counts (account_row, day_start, action, events)
SELECT account_row, created_at - (((created_at % 86400000000) + 86400000000) % 86400000000), action, count(*)
FROM events GROUP BY 1, 2, 3;

DROP INDEX events_by_account_action;
