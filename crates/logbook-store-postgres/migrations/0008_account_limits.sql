-- Per-account limit overrides set with `logbook limits set`, kept in the database so every node
-- sees them (each server rereads them every few seconds). A NULL column keeps the configuration
-- file's value; a row whose columns are all NULL means "no override" (clearing updates the row
-- rather than deleting it, so the reading role needs no DELETE).
CREATE TABLE account_limits (
    account_row bigint PRIMARY KEY REFERENCES accounts (account_row),
    ingest_events_per_second bigint,
    ingest_event_burst bigint,
    reads_per_second bigint,
    read_burst bigint,
    max_concurrent_exports bigint,
    max_live_tails bigint,
    updated_at bigint NOT NULL
);
