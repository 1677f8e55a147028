-- Retention and legal hold (issue 18). An account's own retention period (NULL: the instance
-- default), its legal hold, and what was pruned: the compact range of the removed prefix's leaves
-- and the signed statement about it, which keep the rest of the log verifiable. Nothing here
-- rewrites existing events.
CREATE TABLE account_retention (
    account_row bigint PRIMARY KEY REFERENCES accounts (account_row),
    retention_days bigint,
    legal_hold_since bigint,
    legal_hold_set_by text,
    legal_hold_reason text,
    updated_at bigint NOT NULL
);

CREATE TABLE pruned_prefixes (
    account_row bigint PRIMARY KEY REFERENCES accounts (account_row),
    pruned_below_seq bigint NOT NULL,
    prefix_range bytea NOT NULL,
    statement text NOT NULL,
    pruned_at bigint NOT NULL
);

-- Every statement ever signed, so an export or an audit can show each pruning.
CREATE TABLE prune_statements (
    account_row bigint NOT NULL REFERENCES accounts (account_row),
    pruned_below_seq bigint NOT NULL,
    statement text NOT NULL,
    pruned_at bigint NOT NULL,
    PRIMARY KEY (account_row, pruned_below_seq)
);
