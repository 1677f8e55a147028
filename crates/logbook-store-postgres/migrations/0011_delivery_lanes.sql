-- Syslog over TLS and RELP destinations, a private CA a TLS destination may trust, and the index
-- each destination's sending lane claims its due deliveries through, in seq order (issue 22).
ALTER TABLE alert_destinations DROP CONSTRAINT alert_destinations_kind_check;
ALTER TABLE alert_destinations ADD CONSTRAINT alert_destinations_kind_check
    CHECK (kind IN ('webhook', 'syslog', 'syslog_tls', 'relp'));
-- PEM certificates a syslog_tls destination trusts besides the public web PKI roots.
ALTER TABLE alert_destinations ADD COLUMN trusted_ca_pem text;

-- A lane claims its destination's pending deliveries lowest seq first.
CREATE INDEX deliveries_pending_by_destination ON deliveries (destination_id, event_seq)
    WHERE delivered_at IS NULL AND dead_at IS NULL;
