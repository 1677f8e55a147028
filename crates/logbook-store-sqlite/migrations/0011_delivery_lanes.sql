-- Syslog over TLS and RELP destinations, a private CA a TLS destination may trust, and the index
-- each destination's sending lane claims its due deliveries through, in seq order (issue 22).
--
-- SQLite cannot change a CHECK constraint in place, so alert_destinations is rebuilt.
-- alert_rule_destinations references it: with foreign keys deferred, dropping the old table leaves
-- those references unresolved until the new table's rows (the same ids) resolve them again,
-- before the commit checks them.
PRAGMA defer_foreign_keys = ON;

CREATE TEMP TABLE alert_destinations_before_0011 AS SELECT * FROM alert_destinations;
DROP TABLE alert_destinations;

CREATE TABLE alert_destinations (
    destination_id TEXT PRIMARY KEY,
    account_row INTEGER NOT NULL REFERENCES accounts (account_row),
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('webhook', 'syslog', 'syslog_tls', 'relp')),
    address TEXT NOT NULL,
    -- The webhook signing secret: kept in the clear because every send signs with it.
    secret TEXT NOT NULL,
    streams_whole_log INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    cursor_next_seq INTEGER NOT NULL,
    cursor_windows TEXT NOT NULL DEFAULT '{}',
    last_success_at INTEGER,
    last_error TEXT,
    last_error_at INTEGER,
    -- PEM certificates a syslog_tls destination trusts besides the public web PKI roots.
    trusted_ca_pem TEXT
);
INSERT INTO alert_destinations (destination_id, account_row, name, kind, address, secret, streams_whole_log,
    created_at, cursor_next_seq, cursor_windows, last_success_at, last_error, last_error_at)
SELECT destination_id, account_row, name, kind, address, secret, streams_whole_log,
    created_at, cursor_next_seq, cursor_windows, last_success_at, last_error, last_error_at
FROM alert_destinations_before_0011;
DROP TABLE alert_destinations_before_0011;
CREATE INDEX alert_destinations_by_account ON alert_destinations (account_row, created_at);

-- A lane claims its destination's pending deliveries lowest seq first.
CREATE INDEX deliveries_pending_by_destination ON deliveries (destination_id, event_seq)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
