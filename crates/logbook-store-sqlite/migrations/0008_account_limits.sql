-- Per-account limit overrides set with `logbook limits set`, kept in the database so every
-- process sees them (a server rereads them every few seconds). A NULL column keeps the
-- configuration file's value; a row whose columns are all NULL means "no override".
CREATE TABLE account_limits (
    account_row INTEGER PRIMARY KEY REFERENCES accounts (account_row),
    ingest_events_per_second INTEGER,
    ingest_event_burst INTEGER,
    reads_per_second INTEGER,
    read_burst INTEGER,
    max_concurrent_exports INTEGER,
    max_live_tails INTEGER,
    updated_at INTEGER NOT NULL -- microseconds since the Unix epoch
);
