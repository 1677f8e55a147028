-- Alert rules, destinations and the delivery outbox (issue 6). Times are Unix microseconds like
-- every other time. A destination carries its delivery cursor (the next seq of its account to
-- examine, and the sliding windows of its threshold rules as JSON), so the cursor and the
-- deliveries it produces are written in one transaction. Several nodes claim due deliveries with
-- FOR UPDATE SKIP LOCKED and a lease (claimed_until). These tables are read by the delivery worker
-- across accounts, so like the people tables they carry no row-level security policy; every
-- page query filters by account_row.

CREATE TABLE alert_destinations (
    destination_id text PRIMARY KEY,
    account_row bigint NOT NULL REFERENCES accounts (account_row),
    name text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('webhook', 'syslog')),
    address text NOT NULL,
    -- The webhook signing secret: kept in the clear because every send signs with it.
    secret text NOT NULL,
    streams_whole_log boolean NOT NULL,
    created_at bigint NOT NULL,
    cursor_next_seq bigint NOT NULL,
    cursor_windows text NOT NULL DEFAULT '{}',
    last_success_at bigint,
    last_error text,
    last_error_at bigint
);
CREATE INDEX alert_destinations_by_account ON alert_destinations (account_row, created_at);

CREATE TABLE alert_rules (
    rule_id text PRIMARY KEY,
    account_row bigint NOT NULL REFERENCES accounts (account_row),
    name text NOT NULL,
    query_text text NOT NULL,
    threshold_count bigint,
    threshold_window_seconds bigint,
    enabled boolean NOT NULL DEFAULT true,
    created_at bigint NOT NULL
);
CREATE INDEX alert_rules_by_account ON alert_rules (account_row, created_at);

CREATE TABLE alert_rule_destinations (
    rule_id text NOT NULL REFERENCES alert_rules (rule_id),
    destination_id text NOT NULL REFERENCES alert_destinations (destination_id),
    PRIMARY KEY (rule_id, destination_id)
);
CREATE INDEX alert_rule_destinations_by_destination ON alert_rule_destinations (destination_id);

-- The outbox. A row is due while delivered_at and dead_at are NULL and next_attempt_at has come;
-- claimed_until is the lease of the node sending it.
CREATE TABLE deliveries (
    delivery_id text PRIMARY KEY,
    account_row bigint NOT NULL REFERENCES accounts (account_row),
    destination_id text NOT NULL,
    event_seq bigint NOT NULL,
    event_json text NOT NULL,
    rule_id text,
    rule_name text,
    rule_query text,
    threshold_count bigint,
    threshold_window_seconds bigint,
    matched_count bigint,
    created_at bigint NOT NULL,
    attempts bigint NOT NULL DEFAULT 0,
    next_attempt_at bigint NOT NULL,
    claimed_until bigint,
    delivered_at bigint,
    dead_at bigint,
    last_error text
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE delivered_at IS NULL AND dead_at IS NULL;
CREATE INDEX deliveries_by_destination ON deliveries (destination_id, delivered_at, dead_at);
CREATE INDEX deliveries_dead_by_account ON deliveries (account_row, dead_at) WHERE dead_at IS NOT NULL;
