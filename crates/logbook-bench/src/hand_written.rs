//! Baseline (c) of issue 17, "the table you would write by hand": what a platform engineer writes
//! instead of running Logbook. One plain SQLite table with the event's columns plus its JSON, one
//! `(account, created_at)` index, an FTS5 table over the message, WAL, `synchronous=FULL`, 1000
//! events per transaction, rusqlite prepared statements. No idempotency, no dense `seq`, no
//! Merkle leaf, no new-IP history, no tenant clustering: none of Logbook's promises, which is the
//! point of the comparison (Logbook must keep all of them and still cost less).
//!
//! Rows are prepared before the clock starts (the event's JSON included), so only SQLite is
//! timed. The connection gets the store writer's 64 MiB page cache, which a hand-written table
//! would not set: it can only make the baseline faster, so the comparison stays the strict one.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use rusqlite::{Connection, params};
use time::OffsetDateTime;

use crate::baseline::BaselineFigures;
use crate::workload::Workload;

/// One event as the hand-written table stores it, computed before timing.
pub struct HandWrittenRow {
    id: String,
    account: String,
    created_at_micros: i64,
    action: String,
    actor_id: Option<String>,
    ip: Option<String>,
    outcome: Option<&'static str>,
    idempotency_key: Option<String>,
    message: String,
    /// The whole event as JSON (the same body Logbook stores, without `seq`).
    body: String,
}

/// Events `range` of the workload as rows, with fresh UUIDv7 ids as ingest would assign.
pub fn prepare_rows(
    workload: &Workload,
    range: std::ops::Range<usize>,
    received_at: OffsetDateTime,
) -> Vec<HandWrittenRow> {
    range
        .map(|index| {
            let event = workload
                .event(index)
                .into_new_event(uuid::Uuid::now_v7().to_string(), received_at);
            HandWrittenRow {
                body: event.body_without_seq(),
                id: event.id.to_string(),
                account: event.account.as_str().to_owned(),
                created_at_micros: event.created_at_micros(),
                actor_id: event.actor.as_ref().map(|actor| actor.id.clone()),
                ip: event.ip.map(|ip| ip.to_string()),
                outcome: event.outcome.map(|outcome| outcome.as_str()),
                idempotency_key: event.key.clone(),
                action: event.action,
                message: event.message,
            }
        })
        .collect()
}

/// The schema a platform engineer would write for an activity log with search.
pub const HAND_WRITTEN_SCHEMA: &str = "
CREATE TABLE events (
    row_id INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    account TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    action TEXT NOT NULL,
    actor_id TEXT,
    ip TEXT,
    outcome TEXT,
    idempotency_key TEXT,
    message TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX events_by_account_created ON events (account, created_at);
CREATE VIRTUAL TABLE events_fts USING fts5 (message);
";

/// Baseline (c): `events_per_transaction` events per transaction into a fresh hand-written table.
pub fn run(
    directory: &Path,
    rows: &[HandWrittenRow],
    events_per_transaction: usize,
) -> anyhow::Result<BaselineFigures> {
    let database_path = directory.join("hand-written.db");
    let connection =
        Connection::open(&database_path).context("opening the hand-written baseline")?;
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA cache_size = -65536;",
        )
        .context("setting the hand-written baseline's pragmas")?;
    connection
        .execute_batch(HAND_WRITTEN_SCHEMA)
        .context("creating the hand-written table")?;
    let written_before = crate::report::bytes_written_to_storage();
    let started = Instant::now();
    for chunk in rows.chunks(events_per_transaction) {
        let transaction = connection.unchecked_transaction()?;
        {
            let mut insert_event = transaction.prepare_cached(
                "INSERT INTO events (id, account, created_at, action, actor_id, ip, outcome, idempotency_key, message, body) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            let mut insert_text = transaction
                .prepare_cached("INSERT INTO events_fts (rowid, message) VALUES (?1, ?2)")?;
            for row in chunk {
                insert_event.execute(params![
                    row.id,
                    row.account,
                    row.created_at_micros,
                    row.action,
                    row.actor_id,
                    row.ip,
                    row.outcome,
                    row.idempotency_key,
                    row.message,
                    row.body,
                ])?;
                insert_text.execute(params![transaction.last_insert_rowid(), row.message])?;
            }
        }
        transaction
            .commit()
            .context("committing a hand-written baseline transaction")?;
    }
    let elapsed = started.elapsed();
    let written = crate::report::bytes_written_to_storage().saturating_sub(written_before);
    connection
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .context("checkpointing the hand-written baseline")?;
    let mut wal_path = database_path.clone().into_os_string();
    wal_path.push("-wal");
    let bytes = std::fs::metadata(&database_path)?.len()
        + std::fs::metadata(&wal_path).map_or(0, |metadata| metadata.len());
    Ok(BaselineFigures {
        event_count: rows.len(),
        elapsed,
        bytes_per_event: bytes as f64 / rows.len() as f64,
        written_bytes_per_event: written as f64 / rows.len() as f64,
    })
}
