-- Alert rules, destinations and the delivery outbox (issue 6). Times are Unix microseconds like
-- every other time. A destination carries its delivery cursor (the next seq of its account to
-- examine, and the sliding windows of its threshold rules as JSON), so the cursor and the
-- deliveries it produces are written in one transaction.

CREATE TABLE alert_destinations (
    destination_id TEXT PRIMARY KEY,
    account_row INTEGER NOT NULL REFERENCES accounts (account_row),
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('webhook', 'syslog')),
    address TEXT NOT NULL,
    -- The webhook signing secret: kept in the clear because every send signs with it.
    secret TEXT NOT NULL,
    streams_whole_log INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    cursor_next_seq INTEGER NOT NULL,
    cursor_windows TEXT NOT NULL DEFAULT '{}',
    last_success_at INTEGER,
    last_error TEXT,
    last_error_at INTEGER
);
CREATE INDEX alert_destinations_by_account ON alert_destinations (account_row, created_at);

CREATE TABLE alert_rules (
    rule_id TEXT PRIMARY KEY,
    account_row INTEGER NOT NULL REFERENCES accounts (account_row),
    name TEXT NOT NULL,
    query_text TEXT NOT NULL,
    threshold_count INTEGER,
    threshold_window_seconds INTEGER,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL
);
CREATE INDEX alert_rules_by_account ON alert_rules (account_row, created_at);

CREATE TABLE alert_rule_destinations (
    rule_id TEXT NOT NULL REFERENCES alert_rules (rule_id),
    destination_id TEXT NOT NULL REFERENCES alert_destinations (destination_id),
    PRIMARY KEY (rule_id, destination_id)
);
CREATE INDEX alert_rule_destinations_by_destination ON alert_rule_destinations (destination_id);

-- The outbox. A row is due while delivered_at and dead_at are NULL and next_attempt_at has come;
-- claimed_until is the lease of the node sending it.
CREATE TABLE deliveries (
    delivery_id TEXT PRIMARY KEY,
    account_row INTEGER NOT NULL REFERENCES accounts (account_row),
    destination_id TEXT NOT NULL,
    event_seq INTEGER NOT NULL,
    event_json TEXT NOT NULL,
    rule_id TEXT,
    rule_name TEXT,
    rule_query TEXT,
    threshold_count INTEGER,
    threshold_window_seconds INTEGER,
    matched_count INTEGER,
    created_at INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_until INTEGER,
    delivered_at INTEGER,
    dead_at INTEGER,
    last_error TEXT
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX deliveries_by_destination ON deliveries (destination_id, delivered_at, dead_at);
CREATE INDEX deliveries_dead_by_account ON deliveries (account_row, dead_at) WHERE dead_at IS NOT NULL;
