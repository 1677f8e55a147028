-- Issue 5 (the tree's cost at ingest): each event's leaf hash moves from its own level-0 row in
-- tree_nodes into the event's row, and tree_nodes keeps only levels >= 4 (merkle.rs,
-- LOWEST_STORED_NODE_LEVEL); a lower node is recomputed from its at most 8 leaf hashes when a
-- proof asks for it. About two node rows (and index entries) per event become one eighth of one.
ALTER TABLE events ADD COLUMN leaf_hash bytea;

-- Existing events keep the leaf hash their commit stored (never recomputed from the body, so an
-- event edited before this upgrade is still caught by `verify`). The policies would hide every
-- row from this statement otherwise.
SET LOCAL logbook.all_accounts = 'on';
UPDATE events e SET leaf_hash = n.hash
FROM tree_nodes n
WHERE n.account_row = e.account_row AND n.level = 0 AND n.node_index = e.seq;

DELETE FROM tree_nodes WHERE level < 4;
