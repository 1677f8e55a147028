//! The naive baselines the issue compares Logbook against: the same generated events written
//! straight into a separate SQLite database with the store's own schema (`schema_sql()`) and
//! pragmas (WAL, `synchronous=FULL`), row by row the way the store's writer writes them, without
//! HTTP, validation or group commit. Rows are prepared before the clock starts, so the baselines
//! time SQLite alone and are, if anything, flattered.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use logbook_core::AccountId;
use logbook_core::event::{NewEvent, Outcome};
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use crate::workload::Workload;

/// Each account's row id and next `seq`, kept in memory as the store's writer keeps them.
type AccountRows = HashMap<AccountId, (i64, i64)>;

/// One event as the writer stores it, computed before timing.
pub struct PreparedRow {
    account: AccountId,
    created_at_micros: i64,
    id: Vec<u8>,
    action: String,
    actor_id: Option<String>,
    ip: Option<[u8; 16]>,
    outcome: Option<i64>,
    idempotency_key: Option<String>,
    fingerprint: [u8; 32],
    body: String,
    message: String,
    target_ids: Vec<String>,
}

pub struct BaselineFigures {
    pub event_count: usize,
    pub elapsed: Duration,
    /// Database plus WAL after a checkpoint, divided by `event_count`.
    pub bytes_per_event: f64,
    /// Bytes written to storage while inserting (WAL frames and checkpoints), per event.
    pub written_bytes_per_event: f64,
}

impl BaselineFigures {
    pub fn events_per_second(&self) -> f64 {
        self.event_count as f64 / self.elapsed.as_secs_f64()
    }
}

/// The 16-byte form the schema stores: IPv4 as IPv4-mapped IPv6 so a CIDR is one byte range.
fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

fn prepare_row(event: NewEvent) -> PreparedRow {
    let body = event.body_without_seq();
    let fingerprint = event.content_fingerprint();
    let id = uuid::Uuid::parse_str(event.id.as_str())
        .map(|uuid| uuid.as_bytes().to_vec())
        .unwrap_or_else(|_| event.id.as_str().as_bytes().to_vec());
    PreparedRow {
        created_at_micros: event.created_at_micros(),
        id,
        actor_id: event.actor.as_ref().map(|actor| actor.id.clone()),
        ip: event.ip.map(ip_bytes),
        outcome: event.outcome.map(|outcome| match outcome {
            Outcome::Success => 0,
            Outcome::Failure => 1,
        }),
        target_ids: event
            .targets
            .iter()
            .map(|target| target.id.clone())
            .collect(),
        account: event.account,
        action: event.action,
        idempotency_key: event.key,
        fingerprint,
        body,
        message: event.message,
    }
}

/// Events `range` of the workload as rows, with fresh UUIDv7 ids as ingest would assign.
pub fn prepare_rows(
    workload: &Workload,
    range: std::ops::Range<usize>,
    received_at: OffsetDateTime,
) -> Vec<PreparedRow> {
    range
        .map(|index| {
            prepare_row(
                workload
                    .event(index)
                    .into_new_event(uuid::Uuid::now_v7().to_string(), received_at),
            )
        })
        .collect()
}

/// A fresh baseline database: the store's schema, its pragmas, and every account created.
fn open_baseline_database(
    path: &Path,
    workload: &Workload,
) -> anyhow::Result<(Connection, AccountRows)> {
    let connection = Connection::open(path).context("opening the baseline database")?;
    connection
        .execute_batch(
            // The store's writer pragmas, page cache included: with 1000 accounts the tail pages of
            // the account-first indexes do not fit SQLite's default 2 MB cache, and a baseline
            // that spills them would flatter Logbook.
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -65536;",
        )
        .context("setting the baseline pragmas")?;
    connection
        .execute_batch(&logbook_store_sqlite::schema_sql())
        .context("creating the store's schema")?;
    let mut accounts = HashMap::new();
    {
        let transaction = connection.unchecked_transaction()?;
        for account in workload.accounts() {
            transaction.execute(
                "INSERT INTO accounts (name, created_at) VALUES (?1, 0)",
                params![account.as_str()],
            )?;
            accounts.insert(account.clone(), (transaction.last_insert_rowid(), 0i64));
        }
        transaction.commit()?;
    }
    Ok((connection, accounts))
}

/// Writes one event the way the store's writer does: resolve the idempotency key, insert the
/// row with the next dense `seq`, and its full-text entry with its target ids.
fn insert_row(
    connection: &Connection,
    accounts: &mut AccountRows,
    row: &PreparedRow,
) -> anyhow::Result<()> {
    let (account_row, next_seq) = accounts
        .get_mut(&row.account)
        .expect("accounts are created up front");
    if let Some(key) = &row.idempotency_key {
        let existing: Option<i64> = connection
            .prepare_cached(
                "SELECT event_row FROM events WHERE account_row = ?1 AND idempotency_key = ?2",
            )?
            .query_row(params![*account_row, key], |found| found.get(0))
            .optional()?;
        if existing.is_some() {
            return Ok(());
        }
    }
    connection
        .prepare_cached(
            "INSERT INTO events (event_row, account_row, created_at, id, action, actor_id, ip, outcome, idempotency_key, fingerprint, body) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            logbook_store_sqlite::event_row_of(*account_row, *next_seq as u64),
            *account_row,
            row.created_at_micros,
            row.id,
            row.action,
            row.actor_id,
            row.ip.as_ref().map(|ip| &ip[..]),
            row.outcome,
            row.idempotency_key,
            &row.fingerprint[..],
            row.body,
        ])?;
    let event_row = connection.last_insert_rowid();
    *next_seq += 1;
    // The store's full-text document: the message's tokens tagged with the account, since
    // migration 0025 a token per target, since migration 0026 the action's token, since migration
    // 0028 the actor's and since migration 0029 the address's.
    let mut text_document = logbook_store_sqlite::full_text_document(*account_row, &row.message);
    let mut target_hex = String::new();
    logbook_store_sql::target_terms::push_target_hex(
        &mut target_hex,
        row.target_ids.iter().map(String::as_str),
    );
    logbook_store_sql::target_terms::push_full_text_target_tokens(
        &mut text_document,
        *account_row,
        &target_hex,
    );
    logbook_store_sql::action_terms::push_full_text_action_token(
        &mut text_document,
        *account_row,
        &logbook_store_sql::action_terms::action_hex(&row.action),
    );
    if let Some(actor_id) = &row.actor_id {
        logbook_store_sql::actor_terms::push_full_text_actor_token(
            &mut text_document,
            *account_row,
            &logbook_store_sql::actor_terms::actor_hex(actor_id),
        );
    }
    if let Some(ip) = &row.ip {
        logbook_store_sql::ip_terms::push_full_text_ip_token(&mut text_document, *account_row, ip);
    }
    connection
        .prepare_cached("INSERT INTO events_fts (rowid, message) VALUES (?1, ?2)")?
        .execute(params![event_row, text_document])?;
    Ok(())
}

fn bytes_on_disk(connection: &Connection, database_path: &Path) -> anyhow::Result<u64> {
    connection
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .context("checkpointing the baseline")?;
    let wal_path = database_path.with_extension("db-wal");
    let database_bytes = std::fs::metadata(database_path)?.len();
    let wal_bytes = std::fs::metadata(&wal_path)
        .map(|metadata| metadata.len())
        .unwrap_or(0);
    Ok(database_bytes + wal_bytes)
}

/// Baseline (a) and (b): `events_per_transaction` events per transaction, each committed with
/// an fsync (`synchronous=FULL`).
pub fn run(
    directory: &Path,
    workload: &Workload,
    rows: &[PreparedRow],
    events_per_transaction: usize,
) -> anyhow::Result<BaselineFigures> {
    let database_path = directory.join(format!("baseline-{events_per_transaction}.db"));
    let (connection, mut accounts) = open_baseline_database(&database_path, workload)?;
    let written_before = crate::report::bytes_written_to_storage();
    let started = Instant::now();
    for chunk in rows.chunks(events_per_transaction) {
        let transaction = connection.unchecked_transaction()?;
        for row in chunk {
            insert_row(&transaction, &mut accounts, row)?;
        }
        transaction
            .commit()
            .context("committing a baseline transaction")?;
    }
    let elapsed = started.elapsed();
    let written = crate::report::bytes_written_to_storage().saturating_sub(written_before);
    let bytes = bytes_on_disk(&connection, &database_path)?;
    Ok(BaselineFigures {
        event_count: rows.len(),
        elapsed,
        bytes_per_event: bytes as f64 / rows.len() as f64,
        written_bytes_per_event: written as f64 / rows.len() as f64,
    })
}
