-- Retention and legal hold (issue 18). An account's own retention period (NULL: the instance
-- default), its legal hold, and what was pruned: the compact range of the removed prefix's leaves
-- and the signed statement about it, which keep the rest of the log verifiable. Nothing here
-- rewrites existing events.
CREATE TABLE account_retention (
    account_row INTEGER PRIMARY KEY REFERENCES accounts (account_row),
    retention_days INTEGER,
    legal_hold_since INTEGER,
    legal_hold_set_by TEXT,
    legal_hold_reason TEXT,
    updated_at INTEGER NOT NULL
);

CREATE TABLE pruned_prefixes (
    account_row INTEGER PRIMARY KEY REFERENCES accounts (account_row),
    pruned_below_seq INTEGER NOT NULL,
    prefix_range BLOB NOT NULL,
    statement TEXT NOT NULL,
    pruned_at INTEGER NOT NULL
);

-- Every statement ever signed, so an export or an audit can show each pruning.
CREATE TABLE prune_statements (
    account_row INTEGER NOT NULL REFERENCES accounts (account_row),
    pruned_below_seq INTEGER NOT NULL,
    statement TEXT NOT NULL,
    pruned_at INTEGER NOT NULL,
    PRIMARY KEY (account_row, pruned_below_seq)
);
