-- The verifiable log of each account (ARCHITECTURE.md, "Tamper evidence"): the perfect subtree
-- hashes every proof is built from, each account's compact right edge, and signed checkpoints.
-- The writer fills tree_nodes and tree_state in the transaction that inserts the events, under
-- the same per-account row lock that assigns seq, so nodes of several writers never interleave.

-- Node (level, node_index) is the perfect subtree of 2^level leaves from leaf node_index << level.
CREATE TABLE tree_nodes (
    account_row bigint NOT NULL,
    level smallint NOT NULL,
    node_index bigint NOT NULL,
    hash bytea NOT NULL,
    PRIMARY KEY (account_row, level, node_index)
);

-- One row per account with events: its tree size and CompactRange::to_bytes.
CREATE TABLE tree_state (
    account_row bigint PRIMARY KEY REFERENCES accounts (account_row),
    tree_size bigint NOT NULL,
    compact_range bytea NOT NULL
);

CREATE TABLE checkpoints (
    account_row bigint NOT NULL REFERENCES accounts (account_row),
    tree_size bigint NOT NULL,
    root_hash bytea NOT NULL,
    signed_at bigint NOT NULL,    -- Unix microseconds
    note text NOT NULL,
    PRIMARY KEY (account_row, tree_size)
);

-- The same isolation layer as the events: a read bound to one account sees only its tree.
ALTER TABLE tree_nodes ENABLE ROW LEVEL SECURITY;
ALTER TABLE tree_nodes FORCE ROW LEVEL SECURITY;
CREATE POLICY tree_nodes_of_the_current_account ON tree_nodes
    USING (account_row = nullif(current_setting('logbook.account_row', true), '')::bigint
           OR current_setting('logbook.all_accounts', true) = 'on')
    WITH CHECK (account_row = nullif(current_setting('logbook.account_row', true), '')::bigint
                OR current_setting('logbook.all_accounts', true) = 'on');
ALTER TABLE tree_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE tree_state FORCE ROW LEVEL SECURITY;
CREATE POLICY tree_state_of_the_current_account ON tree_state
    USING (account_row = nullif(current_setting('logbook.account_row', true), '')::bigint
           OR current_setting('logbook.all_accounts', true) = 'on')
    WITH CHECK (account_row = nullif(current_setting('logbook.account_row', true), '')::bigint
                OR current_setting('logbook.all_accounts', true) = 'on');
ALTER TABLE checkpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE checkpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY checkpoints_of_the_current_account ON checkpoints
    USING (account_row = nullif(current_setting('logbook.account_row', true), '')::bigint
           OR current_setting('logbook.all_accounts', true) = 'on')
    WITH CHECK (account_row = nullif(current_setting('logbook.account_row', true), '')::bigint
                OR current_setting('logbook.all_accounts', true) = 'on');
