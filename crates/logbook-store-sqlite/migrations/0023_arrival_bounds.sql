-- Issue 17, item 4 (a query's cost must not grow with the stored events beyond the index depth):
-- a page of a rare word or place gathered every match of the account from the full-text index and
-- sorted them all by `created_at` (about 900 rows, 6 ms, for a word in 1 event of 2,000 at 10
-- million events), because matches come out of FTS5 in arrival (`event_row`) order, not in time
-- order. Events arrive nearly in time order, so the page is almost always among the newest
-- arrivals: `arrival_bounds` says when it is.
--
-- One row per account and block of 1,024 arrivals (`seq >> 10`): `newest_created_at` is the
-- newest `created_at` of every event of the account up to the end of that block, the block's own
-- and all before it. A page read from the arrivals at or above a block (`arrival_window`) is the
-- exact page when its last row is no older than the bound of the block below: no event below can
-- come before it. The writer keeps the rows in the transaction that stores the events; nothing
-- else moves them (retention only deletes events, which leaves every bound an upper bound, and no
-- event's `created_at` ever changes).
CREATE TABLE arrival_bounds (
    account_row INTEGER NOT NULL,
    arrival_block INTEGER NOT NULL,
    newest_created_at INTEGER NOT NULL,
    PRIMARY KEY (account_row, arrival_block)
) WITHOUT ROWID;

-- The events stored before this migration: each block's newest, carried forward over the blocks
-- after it.
INSERT INTO arrival_bounds (account_row, arrival_block, newest_created_at)
SELECT account_row, arrival_block,
       max(newest_in_block) OVER (PARTITION BY account_row ORDER BY arrival_block)
FROM (
    SELECT account_row, (event_row & 1099511627775) >> 10 AS arrival_block,
           max(created_at) AS newest_in_block
    FROM events GROUP BY 1, 2
);
