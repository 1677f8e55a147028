-- Issue 17 (ingest that costs less than the table a platform would write by hand): an event's IP
-- address is a token of its `events_fts` document from now on, no longer an entry of the index
-- `events_by_account_ip`.
--
-- The index was keyed `(account, ip, created_at)`, so each new entry went to the end of its
-- (account, address) run: a group of ~17,000 events over 1,000 accounts rewrote 4,506 of the
-- index's pages in a commit at 1.8 million events, 25 % of the pages a commit wrote (BENCHMARKS.md,
-- "Actors as full-text tokens"). FTS5 writes a commit's tokens as one new sorted segment, as for
-- targets (0025), actions (0026) and actors (0028). The token is `.<account_row>i<8 hex digits>`
-- for an IPv4 address and `.<account_row>j<32 hex digits>` for an IPv6 one (`ip_terms`): behind
-- `.`, so no word of a message can be or find one; the address's bytes in hexadecimal, so a CIDR
-- block is an FTS5 prefix query (or the 2, 4 or 8 prefixes of the next digit's values inside it).
-- The `ip` column stays: a negated clause (`-ip:10.0.0.0/8`), a known network (`ip:office`) and
-- every positive lookup's confirmation test it on the rows read.
--
-- The events stored before keep their entries, moved into `event_ip_rows` (the index's very key,
-- plus the row), and `ip:` looks in both. Pruning and the removal of personal data must hand FTS5
-- exactly the tokens a document was written with, so `events_with_ip_rows` says which events are
-- which: an account's events up to `last_event_row` have a row in `event_ip_rows` (when they have
-- an address), every later one a token (an account without a row here has only tokens). The
-- marker stays right because an account's seqs are never reused.
CREATE TABLE event_ip_rows (
    account_row INTEGER NOT NULL,
    ip BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    event_row INTEGER NOT NULL,
    PRIMARY KEY (account_row, ip, created_at, event_row)
) WITHOUT ROWID;

INSERT INTO event_ip_rows (account_row, ip, created_at, event_row)
SELECT account_row, ip, created_at, event_row FROM events INDEXED BY events_by_account_ip
WHERE ip IS NOT NULL
ORDER BY account_row, ip, created_at, event_row;

CREATE TABLE events_with_ip_rows (
    account_row INTEGER PRIMARY KEY,
    last_event_row INTEGER NOT NULL
);

INSERT INTO events_with_ip_rows (account_row, last_event_row)
SELECT account_row, last_event_row FROM (
    SELECT accounts.account_row AS account_row,
        (SELECT event_row FROM events
         WHERE event_row >= (accounts.account_row << 40) AND event_row < ((accounts.account_row + 1) << 40)
         ORDER BY event_row DESC LIMIT 1) AS last_event_row
    FROM accounts
)
WHERE last_event_row IS NOT NULL;

DROP INDEX events_by_account_ip;
DELETE FROM sqlite_stat1 WHERE idx = 'events_by_account_ip';

-- The timeline of one address (or block) per day had counted each bucket's range of that index;
-- its tokens give every match at once, in arrival order, so the count would read every event of
-- the address. These are the account's events per day and address, kept like
-- `event_day_actor_counts` (migration 0028) by the writer and by retention in the transactions
-- that add and delete events, and by the removal of personal data when it takes an address out
-- of an event; keyed the same way, the day first, so a commit's rows share their pages across
-- accounts, and the address last, so a block is a range of each (day, account).
CREATE TABLE event_day_ip_counts (
    day_start INTEGER NOT NULL,
    account_row INTEGER NOT NULL,
    ip BLOB NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (day_start, account_row, ip)
) WITHOUT ROWID;

-- Counted from `event_ip_rows`, which holds every stored event's address and `created_at` at
-- this point: the index is gone, and the events' rows would be read whole, bodies and all.
INSERT INTO event_day_ip_counts (account_row, day_start, ip, events)
SELECT account_row, created_at - (((created_at % 86400000000) + 86400000000) % 86400000000), ip, count(*)
FROM event_ip_rows GROUP BY 1, 2, 3;
