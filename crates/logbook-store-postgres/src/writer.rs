//! The single writer of this process: one task owns the write connection. Requests arrive over a
//! channel; the writer waits for the first, drains whatever else is already queued (no timer, so a
//! lone request commits at once), writes the whole group in one transaction, commits, and only
//! then answers each request (a 2xx only after commit).
//!
//! Several nodes may append to the same account at once, so `seq` is not cached: inside the
//! transaction the writer locks the rows of the touched accounts (`FOR UPDATE`, in `account_row`
//! order so two writers never deadlock), reads `next_seq`, resolves idempotency keys (a second
//! node cannot store a key this one is storing: it waits on the account lock, then sees the key),
//! and writes `next_seq` back. The unique index of each account's keys (`(idempotency_key,
//! account_row)` since migration 0022) is the last line of defence.
//!
//! Events travel by binary COPY. COPY cannot write to a table with row-level security, so a writer
//! whose role is subject to the policies copies into session-local staging tables and moves the
//! rows with one `INSERT ... SELECT` each, under the policies' `WITH CHECK`; a writer whose role
//! bypasses them (a superuser or `BYPASSRLS`) copies straight into the tables.

use std::collections::{BTreeMap, HashMap};
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use deadpool_postgres::Pool;
use logbook_core::AccountId;
use logbook_core::StoreError;
use logbook_core::event::NewEvent;
use logbook_core::leaf::LeafParts;
use logbook_core::location::{IpLocator, LocationColumns};
use logbook_core::store::{AppendOutcome, AppendReceipt, LeafReceipt};
use logbook_store_sql::day_counts::DayCountChanges;
use logbook_store_sql::group_answers::GroupAnswers;
use logbook_store_sql::idempotency::{KeyedOriginal, KeysInGroup};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use logbook_store_sql::encoding::outcome_code;

use crate::AccountRows;
use crate::encoding::{MessageTokens, ip_bytes};
use crate::errors::{database_error, pool_error};

/// Creates the writer connection's staging tables once per session (the pool's post-create hook).
pub(crate) const CREATE_STAGING_TABLES: &str = "
    CREATE TEMPORARY TABLE IF NOT EXISTS events_staging (LIKE events INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
    CREATE TEMPORARY TABLE IF NOT EXISTS event_targets_staging (LIKE event_targets) ON COMMIT DELETE ROWS;";

const EVENT_COPY_COLUMNS: &str = "account_row, seq, created_at, id, action, actor_id, ip, outcome, idempotency_key, fingerprint, message_tokens, body, leaf_hash, new_ip, new_network, country_code, asn, city, location, new_country";
const EVENT_COPY_TYPES: [Type; 20] = [
    Type::INT8,
    Type::INT8,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::BYTEA,
    Type::INT2,
    Type::TEXT,
    Type::BYTEA,
    Type::TS_VECTOR,
    Type::TEXT,
    Type::BYTEA,
    Type::BOOL,
    Type::BOOL,
    Type::TEXT,
    Type::INT8,
    Type::TEXT,
    Type::TEXT,
    Type::BOOL,
];

/// An event with every value the writer stores already computed, off the writer task.
pub(crate) struct PreparedEvent {
    pub event: NewEvent,
    pub body: String,
    /// The event's canonical leaf without `seq`; the writer only hashes it with the seq.
    pub leaf_parts: LeafParts,
    /// Only for events with an idempotency key (nothing else compares content).
    pub fingerprint: Option<[u8; 32]>,
    pub created_at_micros: i64,
    pub ip: Option<[u8; 16]>,
    pub outcome: Option<i16>,
    pub message_tokens: MessageTokens,
    /// Where the address is, looked up here so the writer only stores it.
    pub location: Option<std::sync::Arc<LocationColumns>>,
}

impl PreparedEvent {
    /// The country the event's address was located in, for `new_country`.
    pub(crate) fn country_code(&self) -> Option<&str> {
        self.location
            .as_ref()
            .and_then(|location| location.country_code.as_deref())
    }

    pub(crate) fn new(event: NewEvent, locator: &dyn IpLocator) -> Self {
        Self {
            location: LocationColumns::of(locator, event.ip),
            body: event.body_without_seq(),
            leaf_parts: event.canonical_leaf_parts(),
            fingerprint: event.key.as_ref().map(|_| event.content_fingerprint()),
            created_at_micros: event.created_at_micros(),
            ip: event.ip.map(ip_bytes),
            outcome: event.outcome.map(|outcome| outcome_code(outcome) as i16),
            message_tokens: MessageTokens::of_message(&event.message),
            event,
        }
    }
}

pub(crate) type AppendReply = Result<Vec<AppendOutcome>, StoreError>;

pub(crate) struct AppendRequest {
    pub events: Vec<PreparedEvent>,
    pub reply: oneshot::Sender<AppendReply>,
}

pub(crate) struct Writer {
    /// A pool of one connection: it reconnects after a lost connection.
    pub pool: Pool,
    /// COPY straight into `events` and `event_targets` (the role bypasses row-level security)
    /// rather than through the staging tables.
    pub copy_directly: bool,
    pub inbox: mpsc::UnboundedReceiver<AppendRequest>,
    pub account_rows: Arc<AccountRows>,
    pub max_events_per_commit: usize,
    /// Unfamiliar-IP detection (issue 6): pairs known to be in the history, see `actor_history`.
    pub known_actor_pairs: crate::actor_history::KnownPairs,
}

impl Writer {
    /// Runs until every sender is gone and the inbox is empty (that is how shutdown drains).
    pub(crate) async fn run(mut self) {
        while let Some(first) = self.inbox.recv().await {
            // Requests waiting for the writer (this one included) as it starts a group; published
            // again, usually 0, once the group is answered.
            metrics::gauge!("logbook_writer_queue_depth").set((self.inbox.len() + 1) as f64);
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
            let started = Instant::now();
            match write_group(
                &self.pool,
                &self.account_rows,
                self.copy_directly,
                &group,
                &mut self.known_actor_pairs,
            )
            .await
            {
                Ok(outcomes) => {
                    metrics::histogram!("logbook_commit_seconds")
                        .record(started.elapsed().as_secs_f64());
                    metrics::histogram!("logbook_commit_events").record(event_count as f64);
                    for (request, outcome) in group.into_iter().zip(outcomes) {
                        // A caller that went away no longer needs its answer; its events are stored
                        // (or, refused by a volume quota, none of them is).
                        let _ = request.reply.send(outcome);
                    }
                }
                Err(error) => {
                    tracing::error!(error = %error, event_count, "group commit failed");
                    for request in group {
                        let _ = request.reply.send(Err(clone_error(&error)));
                    }
                }
            }
            metrics::gauge!("logbook_writer_queue_depth").set(self.inbox.len() as f64);
        }
        tracing::debug!("PostgreSQL writer stopped");
    }
}

fn clone_error(error: &StoreError) -> StoreError {
    match error {
        StoreError::StorageFull(message) => StoreError::StorageFull(message.clone()),
        StoreError::Unavailable(message) => StoreError::Unavailable(message.clone()),
        StoreError::Database { context, message } => StoreError::Database {
            context,
            message: message.clone(),
        },
        other => StoreError::Database {
            context: "committing events",
            message: other.to_string(),
        },
    }
}

async fn write_group(
    pool: &Pool,
    account_rows: &AccountRows,
    copy_directly: bool,
    group: &[AppendRequest],
    known_actor_pairs: &mut crate::actor_history::KnownPairs,
) -> Result<Vec<AppendReply>, StoreError> {
    let mut client = pool
        .get()
        .await
        .map_err(pool_error("connecting the writer"))?;
    let mut accounts: BTreeMap<&AccountId, OffsetDateTime> = BTreeMap::new();
    for prepared in group.iter().flat_map(|request| &request.events) {
        accounts
            .entry(&prepared.event.account)
            .or_insert(prepared.event.received_at);
    }
    let rows_by_account = account_rows.resolve_or_create(&client, accounts).await?;

    let transaction = client
        .transaction()
        .await
        .map_err(database_error("starting a group commit"))?;
    // Every read of the group is a lookup by key (idempotency keys, actor history, account rows),
    // so the plans are pinned to nested loops over the indexes: on a table whose statistics are
    // stale (a young deployment, or one that grew fast since autovacuum last ran) the planner
    // otherwise sorts or hashes the whole events table once per group.
    transaction
        .batch_execute(
            "SET LOCAL logbook.all_accounts = 'on'; SET LOCAL enable_seqscan = off; \
             SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off",
        )
        .await
        .map_err(database_error("starting a group commit"))?;

    // Lock the touched accounts in row order and read their next seq.
    let mut touched_rows: Vec<i64> = rows_by_account.values().copied().collect();
    touched_rows.sort_unstable();
    touched_rows.dedup();
    let lock_statement = transaction
        .prepare_cached("SELECT account_row, next_seq FROM accounts WHERE account_row = ANY($1) ORDER BY account_row FOR UPDATE")
        .await
        .map_err(database_error("locking accounts"))?;
    let mut next_seqs: HashMap<i64, i64> = transaction
        .query(&lock_statement, &[&touched_rows])
        .await
        .map_err(database_error("locking accounts"))?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    // The locked accounts' trees: read here, under the same locks, since other nodes append too.
    let mut trees = crate::tree::load_trees(&*transaction, &touched_rows).await?;
    for (account_row, next_seq) in &next_seqs {
        let tree_size = trees.get(account_row).map_or(0, |tree| tree.size());
        if tree_size != *next_seq as u64 {
            // Events were added or removed outside the writers: appending would hide that.
            return Err(StoreError::Database {
                context: "appending to an account tree",
                message: format!(
                    "the tree of account row {account_row} covers {tree_size} events but {next_seq} are stored"
                ),
            });
        }
    }
    let mut tree_appends = crate::tree::TreeAppends::default();

    // Every key of the group already stored, read under the account locks.
    let mut key_rows = Vec::new();
    let mut key_texts = Vec::new();
    for prepared in group.iter().flat_map(|request| &request.events) {
        if let Some(key) = &prepared.event.key {
            key_rows.push(rows_by_account[&prepared.event.account]);
            key_texts.push(key.as_str());
        }
    }
    let mut originals = KeysInGroup::default();
    if !key_rows.is_empty() {
        let key_statement = transaction
            .prepare_cached(
                "SELECT k.account_row, k.idempotency_key, e.seq, e.body, e.fingerprint, e.leaf_hash \
                 FROM unnest($1::bigint[], $2::text[]) AS k (account_row, idempotency_key) \
                 CROSS JOIN LATERAL (SELECT seq, body, fingerprint, leaf_hash FROM events \
                     WHERE events.account_row = k.account_row \
                     AND events.idempotency_key = k.idempotency_key COLLATE \"C\") AS e",
            )
            .await
            .map_err(database_error("reading idempotency keys"))?;
        for row in transaction
            .query(&key_statement, &[&key_rows, &key_texts])
            .await
            .map_err(database_error("reading idempotency keys"))?
        {
            let account_row: i64 = row.get(0);
            let key: String = row.get(1);
            let seq: i64 = row.get(2);
            let body: &str = row.get(3);
            let fingerprint: Option<Vec<u8>> = row.get(4);
            let leaf_hash: Option<Vec<u8>> = row.get(5);
            let original = KeyedOriginal::from_stored(
                seq as u64,
                body,
                fingerprint.unwrap_or_default(),
                leaf_hash,
            )?;
            originals.remember(account_row, &key, original);
        }
    }

    // Stored-volume quotas, read under the account locks: each request admitted or refused whole.
    let mut volumes = crate::volume_quota::GroupVolumes::load(&transaction, &touched_rows).await?;
    let refusals = volumes.admit_requests(group, &rows_by_account, &|account_row, key| {
        originals.contains(account_row, key)
    });

    let (events_table, targets_table) = if copy_directly {
        ("events", "event_targets")
    } else {
        ("events_staging", "event_targets_staging")
    };
    // Unfamiliar-IP flags (issue 6): the group's actor history, read under the account locks.
    let mut detection = crate::actor_history::GroupDetection::load(
        &transaction,
        known_actor_pairs,
        crate::actor_history::events_with_rows(
            group
                .iter()
                .flat_map(|request| &request.events)
                .map(|prepared| (&prepared.event, prepared.country_code())),
            &rows_by_account,
        ),
    )
    .await?;
    let mut targets: Vec<(i64, &str, i64)> = Vec::new();
    // The timeline's counts of the group's stored events, per account and day.
    let mut day_counts = DayCountChanges::default();
    let answers = {
        let sink = transaction
            .copy_in(&format!(
                "COPY {events_table} ({EVENT_COPY_COLUMNS}) FROM STDIN (FORMAT binary)"
            ))
            .await
            .map_err(database_error("copying events"))?;
        let mut copy = pin!(BinaryCopyInWriter::new(sink, &EVENT_COPY_TYPES));
        // The events of every admitted request, one account after another, each account's in
        // arrival order: an event's seq, key, tree and flags depend only on its own account's
        // earlier events, so this stores exactly what arrival order would, and the answers keep
        // the order sent. Rows then reach each account's part of every index one after another
        // (issue 17, as in the SQLite writer; here worth about 5 % of batched ingest in one A/B
        // run of 200,000 events, within the noise of the shared machine).
        let mut write_order: Vec<(i64, usize, usize)> = Vec::new();
        for (request_index, (request, refusal)) in group.iter().zip(&refusals).enumerate() {
            if refusal.is_some() {
                continue;
            }
            for (event_index, prepared) in request.events.iter().enumerate() {
                write_order.push((
                    rows_by_account[&prepared.event.account],
                    request_index,
                    event_index,
                ));
            }
        }
        write_order.sort_unstable();
        let mut answers = GroupAnswers::new(
            group
                .iter()
                .map(|request| request.events.len())
                .zip(refusals),
        );
        for &(account_row, request_index, event_index) in &write_order {
            let prepared = &group[request_index].events[event_index];
            let event = &prepared.event;
            if let (Some(key), Some(fingerprint)) = (&event.key, &prepared.fingerprint)
                && let Some(original) = originals.get(account_row, key)
            {
                answers.answer(
                    request_index,
                    event_index,
                    original.replay_outcome(fingerprint),
                );
                continue;
            }
            let next_seq = next_seqs.entry(account_row).or_insert(0);
            let seq = *next_seq;
            *next_seq += 1;
            // The leaf hash travels in the event's row (migration 0009), so the tree adds no
            // row of its own for most events.
            let leaf_hash = prepared.leaf_parts.leaf_hash(seq as u64);
            // The flags travel in the event's row too: setting them afterwards would write
            // every flagged event twice (a new row version and an entry in every index).
            let flags = detection.record(account_row, event, prepared.country_code());
            let location = prepared.location.as_ref();
            copy.as_mut()
                .write(&[
                    &account_row,
                    &seq,
                    &prepared.created_at_micros,
                    &event.id.as_str(),
                    &event.action,
                    &event.actor.as_ref().map(|actor| actor.id.as_str()),
                    &prepared.ip.as_ref().map(|ip| ip.as_slice()),
                    &prepared.outcome,
                    &event.key,
                    &prepared
                        .fingerprint
                        .as_ref()
                        .map(|fingerprint| fingerprint.as_slice()),
                    &prepared.message_tokens,
                    &prepared.body,
                    &leaf_hash.as_slice(),
                    &flags.new_ip,
                    &flags.new_network,
                    &location.and_then(|location| location.country_code.as_deref()),
                    &location.and_then(|location| location.asn),
                    &location.and_then(|location| location.city.as_deref()),
                    &location.map(|location| location.json.as_str()),
                    &flags.new_country,
                ])
                .await
                .map_err(database_error("copying events"))?;
            for target in &event.targets {
                targets.push((account_row, target.id.as_str(), seq));
            }
            day_counts.count(account_row, prepared.created_at_micros);
            let tree = trees
                .entry(account_row)
                .or_insert_with(logbook_core::merkle::CompactRange::new);
            let tree_size = tree_appends.append_leaf(account_row, tree, leaf_hash);
            let receipt = AppendReceipt {
                id: event.id.clone(),
                seq: seq as u64,
                received_at: event.received_at,
                leaf: Some(LeafReceipt {
                    leaf_hash,
                    tree_size,
                }),
            };
            if let (Some(key), Some(fingerprint)) = (&event.key, &prepared.fingerprint) {
                // A second event with this key later in the group is its duplicate, exactly
                // as if they had come in two commits.
                originals.remember(
                    account_row,
                    key,
                    KeyedOriginal {
                        receipt: receipt.clone(),
                        fingerprint: fingerprint.to_vec(),
                    },
                );
            }
            answers.answer(request_index, event_index, AppendOutcome::Stored(receipt));
        }
        copy.as_mut()
            .finish()
            .await
            .map_err(database_error("copying events"))?;
        answers
    };
    if !targets.is_empty() {
        // The same target named twice by one event is stored once.
        targets.sort_unstable();
        targets.dedup();
        let sink = transaction
            .copy_in(&format!(
                "COPY {targets_table} (account_row, target_id, seq) FROM STDIN (FORMAT binary)"
            ))
            .await
            .map_err(database_error("copying event targets"))?;
        let mut copy = pin!(BinaryCopyInWriter::new(
            sink,
            &[Type::INT8, Type::TEXT, Type::INT8]
        ));
        for (account_row, target_id, seq) in &targets {
            copy.as_mut()
                .write(&[account_row, target_id, seq])
                .await
                .map_err(database_error("copying event targets"))?;
        }
        copy.as_mut()
            .finish()
            .await
            .map_err(database_error("copying event targets"))?;
    }

    tree_appends.write(&*transaction, &trees).await?;
    let (updated_rows, updated_next_seqs): (Vec<i64>, Vec<i64>) = next_seqs.into_iter().unzip();
    let move_events = async {
        if copy_directly {
            Ok(0)
        } else {
            transaction
                .execute("INSERT INTO events SELECT * FROM events_staging", &[])
                .await
        }
    };
    let move_targets = async {
        if copy_directly || targets.is_empty() {
            Ok(0)
        } else {
            transaction
                .execute(
                    "INSERT INTO event_targets SELECT * FROM event_targets_staging",
                    &[],
                )
                .await
        }
    };
    let update_parameters: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
        [&updated_rows, &updated_next_seqs];
    let update_accounts = transaction.execute(
        "UPDATE accounts SET next_seq = u.next_seq FROM unnest($1::bigint[], $2::bigint[]) AS u (account_row, next_seq) \
         WHERE accounts.account_row = u.account_row",
        &update_parameters,
    );
    // Sent together: PostgreSQL runs them in order, and the writer waits for one round trip.
    futures::try_join!(move_events, move_targets, update_accounts)
        .map_err(database_error("storing events"))?;
    detection.write(&transaction).await?;
    volumes.write(&transaction).await?;
    write_day_counts(&transaction, &day_counts).await?;
    transaction
        .commit()
        .await
        .map_err(database_error("committing events"))?;
    known_actor_pairs.committed(detection);
    Ok(answers.into_replies())
}

/// Adds a group's counts to `event_day_counts` in one statement. The rows come in key order and
/// belong to accounts this transaction has locked, so writers of several nodes never wait on
/// each other here.
async fn write_day_counts(
    transaction: &tokio_postgres::Transaction<'_>,
    day_counts: &DayCountChanges,
) -> Result<(), StoreError> {
    let rows = day_counts.rows();
    if rows.is_empty() {
        return Ok(());
    }
    let mut account_rows = Vec::with_capacity(rows.len());
    let mut day_starts = Vec::with_capacity(rows.len());
    let mut events = Vec::with_capacity(rows.len());
    for (account_row, day_start, count) in rows {
        account_rows.push(account_row);
        day_starts.push(day_start);
        events.push(count);
    }
    transaction
        .execute(
            "INSERT INTO event_day_counts (account_row, day_start, events) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) \
             ON CONFLICT (account_row, day_start) \
             DO UPDATE SET events = event_day_counts.events + excluded.events",
            &[&account_rows, &day_starts, &events],
        )
        .await
        .map_err(database_error("counting events per day"))?;
    Ok(())
}
