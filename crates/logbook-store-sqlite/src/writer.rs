//! The single writer: one thread owns the write connection. Requests arrive over a channel; the
//! writer blocks for the first, drains whatever else is already queued (no timer, so a lone request
//! commits at once), writes the whole group in one transaction, commits (one fsync for everyone),
//! and only then answers each request. It alone assigns `seq`, so `seq` is dense per account.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crossbeam_channel::Receiver;
use logbook_core::AccountId;
use logbook_core::StoreError;
use logbook_core::event::NewEvent;
use logbook_core::store::{AppendOutcome, AppendReceipt};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::oneshot;

use crate::encoding::{event_id_value, ip_bytes, unix_micros_of};
use crate::errors::{FailureKind, failure_kind, to_store_error};
use crate::query_sql::outcome_code;

/// An event with every value the writer stores already computed, off the writer thread.
pub(crate) struct PreparedEvent {
    pub event: NewEvent,
    pub body: String,
    /// Only for events with an idempotency key (nothing else compares content).
    pub fingerprint: Option<[u8; 32]>,
    pub created_at_micros: i64,
    pub id_value: Value,
    pub ip: Option<[u8; 16]>,
    pub outcome: Option<i64>,
}

impl PreparedEvent {
    pub(crate) fn new(event: NewEvent) -> Self {
        Self {
            body: event.body_without_seq(),
            fingerprint: event.key.as_ref().map(|_| event.content_fingerprint()),
            created_at_micros: event.created_at_micros(),
            id_value: event_id_value(&event.id),
            ip: event.ip.map(ip_bytes),
            outcome: event.outcome.map(outcome_code),
            event,
        }
    }
}

pub(crate) type AppendReply = Result<Vec<AppendOutcome>, StoreError>;

pub(crate) struct AppendRequest {
    pub events: Vec<PreparedEvent>,
    pub reply: oneshot::Sender<AppendReply>,
}

/// Whether the store still accepts writes. After an I/O error during a commit the state of the
/// file is unknown (a failed fsync cannot be retried safely), so the store refuses every later
/// write and reports not ready until it is restarted.
#[derive(Debug, Default)]
pub(crate) struct WriterHealth {
    failure: Mutex<Option<String>>,
}

impl WriterHealth {
    pub(crate) fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .expect("writer health lock poisoned")
            .clone()
    }

    fn fail(&self, message: String) {
        *self.failure.lock().expect("writer health lock poisoned") = Some(message);
    }
}

struct AccountState {
    account_row: i64,
    next_seq: u64,
}

/// Events committed between two WAL checkpoints. The writer turns SQLite's automatic checkpoint
/// off and checkpoints itself after answering a group, so no acknowledgement waits for the copy
/// from the WAL into the database, and pages changed by several groups are copied once.
const CHECKPOINT_EVERY_EVENTS: usize = 10_000;

pub(crate) struct Writer {
    pub connection: Connection,
    pub inbox: Receiver<AppendRequest>,
    pub health: std::sync::Arc<WriterHealth>,
    pub max_events_per_commit: usize,
}

impl Writer {
    /// Runs until every sender is gone and the inbox is empty (that is how shutdown drains).
    pub(crate) fn run(mut self) {
        // Cached per account: its row id and the next `seq`. Dropped after any failed commit and
        // reloaded from the database, which is the truth.
        let mut accounts: HashMap<AccountId, AccountState> = HashMap::new();
        let mut events_since_checkpoint = 0;
        while let Ok(first) = self.inbox.recv() {
            let mut event_count = first.events.len();
            let mut group = vec![first];
            while event_count < self.max_events_per_commit {
                match self.inbox.try_recv() {
                    Ok(request) => {
                        event_count += request.events.len();
                        group.push(request);
                    }
                    Err(_) => break,
                }
            }
            if let Some(failure) = self.health.failure() {
                for request in group {
                    let _ = request
                        .reply
                        .send(Err(StoreError::Unavailable(failure.clone())));
                }
                continue;
            }
            let started = Instant::now();
            match write_group(&mut self.connection, &mut accounts, &mut group) {
                Ok(outcomes) => {
                    metrics::histogram!("logbook_commit_seconds")
                        .record(started.elapsed().as_secs_f64());
                    metrics::histogram!("logbook_commit_events").record(event_count as f64);
                    for (request, outcome) in group.into_iter().zip(outcomes) {
                        // A caller that went away no longer needs its answer; its events are stored.
                        let _ = request.reply.send(Ok(outcome));
                    }
                    events_since_checkpoint += event_count;
                    if events_since_checkpoint >= CHECKPOINT_EVERY_EVENTS {
                        events_since_checkpoint = 0;
                        self.checkpoint("PASSIVE");
                    }
                }
                Err(error) => {
                    accounts.clear();
                    let kind = failure_kind(&error);
                    tracing::error!(error = %error, event_count, "group commit failed");
                    if kind == FailureKind::InputOutput {
                        self.health
                            .fail(format!("a commit failed with an I/O error: {error}"));
                    }
                    for request in group {
                        let reply = match kind {
                            FailureKind::InputOutput => StoreError::Unavailable(format!(
                                "a commit failed with an I/O error: {error}"
                            )),
                            _ => to_store_error("committing events", &error),
                        };
                        let _ = request.reply.send(Err(reply));
                    }
                }
            }
        }
        // On the way out, empty the WAL so the file left behind is the whole database.
        self.checkpoint("TRUNCATE");
        tracing::debug!("SQLite writer stopped");
    }

    /// Copies committed WAL pages into the database (`PASSIVE` does not wait for readers), so the
    /// WAL stays small. A failure here loses nothing (the WAL still holds every commit).
    fn checkpoint(&self, mode: &'static str) {
        let started = Instant::now();
        match self
            .connection
            .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()))
        {
            Ok(()) => metrics::histogram!("logbook_checkpoint_seconds")
                .record(started.elapsed().as_secs_f64()),
            Err(error) => tracing::warn!(error = %error, "WAL checkpoint failed"),
        }
    }
}

/// What one idempotency key already stands for: its receipt and content fingerprint.
type KeyedOriginal = (AppendReceipt, Vec<u8>);

fn write_group(
    connection: &mut Connection,
    accounts: &mut HashMap<AccountId, AccountState>,
    group: &mut [AppendRequest],
) -> Result<Vec<Vec<AppendOutcome>>, rusqlite::Error> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut all_outcomes = Vec::with_capacity(group.len());
    {
        let mut insert_event = transaction.prepare_cached(
            "INSERT INTO events (account_row, seq, created_at, id, action, actor_id, ip, outcome, idempotency_key, fingerprint, body) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        let mut insert_text = transaction
            .prepare_cached("INSERT INTO events_fts (rowid, message) VALUES (?1, ?2)")?;
        let mut insert_target = transaction.prepare_cached(
            "INSERT OR IGNORE INTO event_targets (account_row, target_id, event_row) VALUES (?1, ?2, ?3)",
        )?;
        // Keys stored earlier in this same group: the second event with a key is a duplicate of the
        // first exactly as if they had come in two commits.
        let mut keys_in_group: HashMap<(i64, String), KeyedOriginal> = HashMap::new();
        for request in group.iter_mut() {
            let mut outcomes = Vec::with_capacity(request.events.len());
            for prepared in &mut request.events {
                let account = account_state(
                    &transaction,
                    accounts,
                    &prepared.event.account,
                    prepared.event.received_at,
                )?;
                let account_row = account.account_row;
                if let (Some(key), Some(fingerprint)) = (&prepared.event.key, &prepared.fingerprint)
                {
                    let original = match keys_in_group.get(&(account_row, key.clone())) {
                        Some(original) => Some(original.clone()),
                        None => stored_original(&transaction, account_row, key)?,
                    };
                    if let Some((receipt, original_fingerprint)) = original {
                        outcomes.push(if original_fingerprint == fingerprint.as_slice() {
                            AppendOutcome::Duplicate(receipt)
                        } else {
                            AppendOutcome::KeyReusedWithDifferentContent { original: receipt }
                        });
                        continue;
                    }
                }
                let seq = account.next_seq;
                let event = &prepared.event;
                insert_event.execute(params![
                    account_row,
                    seq as i64,
                    prepared.created_at_micros,
                    prepared.id_value,
                    event.action,
                    event.actor.as_ref().map(|actor| actor.id.as_str()),
                    prepared.ip.as_ref().map(|ip| ip.as_slice()),
                    prepared.outcome,
                    event.key,
                    prepared
                        .fingerprint
                        .as_ref()
                        .map(|fingerprint| fingerprint.as_slice()),
                    prepared.body,
                ])?;
                let event_row = transaction.last_insert_rowid();
                if !event.message.is_empty() {
                    insert_text.execute(params![event_row, event.message])?;
                }
                for target in &event.targets {
                    insert_target.execute(params![account_row, target.id, event_row])?;
                }
                account.next_seq += 1;
                let receipt = AppendReceipt {
                    id: event.id.clone(),
                    seq,
                    received_at: event.received_at,
                };
                if let (Some(key), Some(fingerprint)) = (&event.key, &prepared.fingerprint) {
                    keys_in_group.insert(
                        (account_row, key.clone()),
                        (receipt.clone(), fingerprint.to_vec()),
                    );
                }
                outcomes.push(AppendOutcome::Stored(receipt));
            }
            all_outcomes.push(outcomes);
        }
    }
    transaction.commit()?;
    Ok(all_outcomes)
}

/// The cached state of `account`, loading it (or creating the account, on its first event).
fn account_state<'cache>(
    transaction: &Transaction<'_>,
    accounts: &'cache mut HashMap<AccountId, AccountState>,
    account: &AccountId,
    first_seen_at: OffsetDateTime,
) -> Result<&'cache mut AccountState, rusqlite::Error> {
    if !accounts.contains_key(account) {
        transaction
            .prepare_cached("INSERT INTO accounts (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING")?
            .execute(params![account.as_str(), unix_micros_of(first_seen_at)])?;
        let account_row: i64 = transaction
            .prepare_cached("SELECT account_row FROM accounts WHERE name = ?1")?
            .query_row([account.as_str()], |row| row.get(0))?;
        let next_seq: i64 = transaction
            .prepare_cached("SELECT coalesce(max(seq) + 1, 0) FROM events WHERE account_row = ?1")?
            .query_row([account_row], |row| row.get(0))?;
        accounts.insert(
            account.clone(),
            AccountState {
                account_row,
                next_seq: next_seq as u64,
            },
        );
    }
    Ok(accounts.get_mut(account).expect("inserted above"))
}

/// The stored event with this idempotency key, if any. Its `id` and `received_at` are read from
/// the body (duplicates are rare, so the row keeps no extra columns for them).
fn stored_original(
    transaction: &Transaction<'_>,
    account_row: i64,
    key: &str,
) -> Result<Option<KeyedOriginal>, rusqlite::Error> {
    let found: Option<(i64, String, Vec<u8>)> = transaction
        .prepare_cached(
            "SELECT seq, body, fingerprint FROM events WHERE account_row = ?1 AND idempotency_key = ?2",
        )?
        .query_row(params![account_row, key], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .optional()?;
    let Some((seq, body, fingerprint)) = found else {
        return Ok(None);
    };
    let receipt = receipt_from_body(seq as u64, &body).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            1,
            rusqlite::types::Type::Text,
            "stored event body lacks id or received_at".into(),
        )
    })?;
    Ok(Some((receipt, fingerprint)))
}

fn receipt_from_body(seq: u64, body: &str) -> Option<AppendReceipt> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let id = value.get("id")?.as_str()?.to_owned();
    let received_at = OffsetDateTime::parse(value.get("received_at")?.as_str()?, &Rfc3339).ok()?;
    Some(AppendReceipt {
        id,
        seq,
        received_at,
    })
}
