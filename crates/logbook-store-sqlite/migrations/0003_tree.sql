-- The verifiable log of each account (ARCHITECTURE.md, "Tamper evidence"): the perfect subtree
-- hashes every proof is built from, the writer's compact right edge, and signed checkpoints.
-- The writer fills tree_nodes and tree_state in the transaction that inserts the events.

-- Node (level, node_index) is the perfect subtree of 2^level leaves from leaf node_index << level.
CREATE TABLE tree_nodes (
    account_row INTEGER NOT NULL REFERENCES accounts (account_row),
    level INTEGER NOT NULL,
    node_index INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (account_row, level, node_index)
) WITHOUT ROWID;

-- One row per account with events: its tree size and CompactRange::to_bytes.
CREATE TABLE tree_state (
    account_row INTEGER PRIMARY KEY REFERENCES accounts (account_row),
    tree_size INTEGER NOT NULL,
    compact_range BLOB NOT NULL
);

CREATE TABLE checkpoints (
    account_row INTEGER NOT NULL REFERENCES accounts (account_row),
    tree_size INTEGER NOT NULL,
    root_hash BLOB NOT NULL,
    -- Unix microseconds.
    signed_at INTEGER NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (account_row, tree_size)
) WITHOUT ROWID;
