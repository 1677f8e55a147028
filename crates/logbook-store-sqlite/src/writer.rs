//! The single writer: one thread owns the write connection. Requests arrive over a channel; the
//! writer blocks for the first, drains whatever else is already queued (no timer, so a lone request
//! commits at once), writes the whole group in one transaction, commits (one fsync for everyone),
//! and only then answers each request. It alone assigns `seq`, so `seq` is dense per account.
//! Inside a group it writes the events account by account, each account's in the order they
//! arrived, so rows go in ascending `event_row` order (see `write_group`).

// hashbrown's foldhash, not SipHash: these maps are looked up several times per event.
use hashbrown::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crossbeam_channel::Receiver;
use logbook_core::AccountId;
use logbook_core::StoreError;
use logbook_core::event::NewEvent;
use logbook_core::leaf::LeafParts;
use logbook_core::location::{IpLocator, LocationColumns};
use logbook_core::merkle::CompactRange;
use logbook_core::store::{AppendOutcome, AppendReceipt, LeafReceipt};
use logbook_store_sql::TokenizedField;
use logbook_store_sql::action_terms::{action_hex, push_full_text_action_token};
use logbook_store_sql::actor_terms::{actor_hex, push_full_text_actor_token};
use logbook_store_sql::day_counts::{DayCountChanges, ValueDayCountChanges};
use logbook_store_sql::group_answers::GroupAnswers;
use logbook_store_sql::idempotency::{KeyedOriginal, KeysInGroup};
use logbook_store_sql::ip_terms::push_full_text_ip_token;
use logbook_store_sql::place_terms::push_full_text_location_token;
use logbook_store_sql::target_terms::{push_full_text_target_tokens, push_target_hex};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::encoding::{
    SEQ_BITS, event_id_value, event_row_of, first_event_row_of, full_text_document, ip_bytes,
    push_retagged_full_text_document, unix_micros_of,
};
use crate::errors::{FailureKind, failure_kind, to_store_error};
use logbook_store_sql::encoding::outcome_code;

/// An event with every value the writer stores already computed, off the writer thread.
pub(crate) struct PreparedEvent {
    pub event: NewEvent,
    pub body: String,
    /// The event's canonical leaf without `seq`; the writer only hashes it with the seq.
    pub leaf_parts: LeafParts,
    /// Only for events with an idempotency key (nothing else compares content).
    pub fingerprint: Option<[u8; 32]>,
    pub created_at_micros: i64,
    pub id_value: Value,
    pub ip: Option<[u8; 16]>,
    pub outcome: Option<i64>,
    /// The message's full-text tokens tagged for account row 0; the writer, which knows the
    /// account's row, swaps in the real tag (`push_retagged_full_text_document`).
    pub text_document: String,
    /// Where the address is, looked up here so the writer only stores it.
    pub location: Option<std::sync::Arc<LocationColumns>>,
    /// The hex of each target id (`target_terms::push_target_hex`); the writer makes them the
    /// account's target tokens of the event's document.
    pub target_hex: String,
    /// The hex of the action (`action_terms::action_hex`); the writer makes it the account's
    /// action token of the event's document.
    pub action_hex: String,
    /// The hex of the actor's id (`actor_terms::actor_hex`), when the event has an actor; the
    /// writer makes it the account's actor token of the event's document.
    pub actor_hex: Option<String>,
}

impl PreparedEvent {
    pub(crate) fn new(event: NewEvent, locator: &dyn IpLocator) -> Self {
        Self {
            location: LocationColumns::of(locator, event.ip),
            body: event.body_without_seq(),
            leaf_parts: event.canonical_leaf_parts(),
            fingerprint: event.key.as_ref().map(|_| event.content_fingerprint()),
            created_at_micros: event.created_at_micros(),
            id_value: event_id_value(event.id.as_str()),
            ip: event.ip.map(ip_bytes),
            outcome: event.outcome.map(outcome_code),
            text_document: full_text_document(0, &event.message),
            target_hex: {
                let mut target_hex = String::new();
                push_target_hex(
                    &mut target_hex,
                    event.targets.iter().map(|target| target.id.as_str()),
                );
                target_hex
            },
            action_hex: action_hex(&event.action),
            actor_hex: event.actor.as_ref().map(|actor| actor_hex(&actor.id)),
            event,
        }
    }
}

pub(crate) type AppendReply = Result<Vec<AppendOutcome>, StoreError>;

pub(crate) struct AppendRequest {
    pub events: Vec<PreparedEvent>,
    pub reply: oneshot::Sender<AppendReply>,
}

/// Writing that is not ingest but comes back again and again in bounded batches (retention's
/// deletes), given to the writer so that it runs between two groups on the writer's connection.
/// On a connection of its own it would compete with group commits for SQLite's write lock, which
/// a waiting connection takes only by polling: a loop of batches could hold it at every poll of
/// the writer's busy timeout, and the writer's group would fail with "database is locked"
/// (found by the benchmark's `--pruner` phase). The job is given the connection, or the reason the
/// writer refuses writes.
pub(crate) type WriterJob = Box<dyn FnOnce(Result<&mut Connection, StoreError>) + Send>;

/// What the writer's inbox carries.
pub(crate) enum WriterWork {
    Append(AppendRequest),
    Job(WriterJob),
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

    pub(crate) fn fail(&self, message: String) {
        *self.failure.lock().expect("writer health lock poisoned") = Some(message);
    }
}

/// An account's next `seq`, read inside the write transaction the first time a group touches the
/// account. The transaction holds SQLite's write lock, so the value is right even when another
/// process (`logbook demo` while `serve` runs) appended to the same file since the last group.
type NextSeqs = HashMap<i64, u64>;

/// WAL frames committed between two requests to the background checkpointer. Counted in frames,
/// not events: what the writer's `RESTART` (below) must copy itself, while every commit waits, is
/// what the background passes have not, and a single event costs a commit of its own pages. Woken
/// every 10,000 events instead, the checkpointer ran once per 1.6 s of single-event ingest while
/// the WAL reached the restart threshold every 0.5 to 0.7 s, so each restart copied nearly the
/// whole WAL itself: 86 to 145 ms without a commit, which was the p99 of single-event
/// acknowledgements. The step trades latency for throughput: more passes copy a page that many
/// commits change more often, and saturated single-event ingest is 6 % slower for acknowledgement
/// p99s a quarter to a third lower (BENCHMARKS.md, "The writer's WAL restarts").
const CHECKPOINT_EVERY_FRAMES: i64 = 4_096;

/// WAL frames (pages) beyond which the writer, between two groups, copies what is left of the WAL
/// into the database and starts the WAL over (`SqliteOptions::wal_restart_frames`). The background
/// checkpointer copies most frames while the writer keeps committing, but a checkpoint that
/// overlaps a commit never finishes the WAL, and SQLite starts the WAL over only after a complete
/// one that no reader still needs: the writer's own runs while nothing commits, and as a
/// `RESTART` it waits (briefly, `WAL_RESTART_READER_WAIT`) for the readers still on the WAL.
pub(crate) const DEFAULT_WAL_RESTART_FRAMES: i64 = 32_768;

/// How long the writer's `RESTART` checkpoint waits for readers still reading WAL frames before it
/// gives up until the next group. Reads finish in milliseconds, and readers that start during the
/// wait read the database file only, so a short wait nearly always suffices; a long reader (an
/// export) makes it give up, and the WAL grows until that reader is done, as it must. The wait is
/// between groups, after their answers, so no acknowledgement waits for it. Before (a PASSIVE
/// checkpoint that never waited, next to automatic checkpoints on the admin connection), the WAL
/// never started over under saturated ingest: 24 GB after six minutes in the benchmark, every
/// commit writing into new file blocks the file system zeroed first (12 % of the writer thread's
/// time in one profile), and every page read searching the WAL index of millions of frames.
const WAL_RESTART_READER_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// Copies committed WAL pages into the database on its own connection and thread, so neither the
/// writer nor any acknowledgement waits for it. `PASSIVE` never blocks the writer or readers
/// (SQLite allows one checkpoint concurrently with one writer).
pub(crate) struct Checkpointer {
    pub connection: Connection,
    pub requests: Receiver<()>,
}

impl Checkpointer {
    pub(crate) fn run(self) {
        while self.requests.recv().is_ok() {
            run_checkpoint(&self.connection, "PASSIVE");
        }
    }
}

/// Runs one checkpoint and tells whether it completed: every frame copied and, for `RESTART` and
/// `TRUNCATE`, the WAL started over. A failure here loses nothing (the WAL still holds every
/// commit).
fn run_checkpoint(connection: &Connection, mode: &'static str) -> bool {
    let started = Instant::now();
    match connection.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        row.get::<_, i64>(0)
    }) {
        Ok(busy) => {
            metrics::histogram!("logbook_checkpoint_seconds")
                .record(started.elapsed().as_secs_f64());
            busy == 0
        }
        Err(error) => {
            tracing::warn!(error = %error, "WAL checkpoint failed");
            false
        }
    }
}

thread_local! {
    /// Frames in the WAL after the last commit of the writer's connection, as SQLite's WAL hook
    /// reports it. SQLite calls the hook inside the commit, on the committing thread, and the
    /// writer's connection commits only on the writer's thread.
    static WAL_FRAMES_AFTER_LAST_COMMIT: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

/// The writer connection's WAL hook (`sqlite3_wal_hook`): remembers the WAL's size after a commit.
fn remember_wal_frames(
    _wal: &rusqlite::hooks::Wal,
    frames: std::ffi::c_int,
) -> rusqlite::Result<()> {
    WAL_FRAMES_AFTER_LAST_COMMIT.set(i64::from(frames));
    Ok(())
}

/// Copies what is left of the WAL into the database and, once the readers still on the WAL are
/// done (waiting at most `WAL_RESTART_READER_WAIT`), lets the next commit write the WAL from its
/// start. A reader that outlasts the wait, or the background checkpointer still copying (SQLite
/// refuses a second checkpoint at once), only postpones this to the next group: outcome `busy`.
fn restart_wal(connection: &Connection) {
    if let Err(error) = connection.busy_timeout(WAL_RESTART_READER_WAIT) {
        tracing::warn!(error = %error, "could not shorten the busy timeout for a WAL restart");
        return;
    }
    let outcome = if run_checkpoint(connection, "RESTART") {
        // The next commit's hook reports again; until then the WAL is empty.
        WAL_FRAMES_AFTER_LAST_COMMIT.set(0);
        "restarted"
    } else {
        "busy"
    };
    metrics::counter!("logbook_wal_restarts_total", "outcome" => outcome).increment(1);
    if let Err(error) = connection.busy_timeout(crate::CONNECTION_BUSY_TIMEOUT) {
        tracing::warn!(error = %error, "could not restore the writer's busy timeout");
    }
}

pub(crate) struct Writer {
    pub connection: Connection,
    pub inbox: Receiver<WriterWork>,
    pub health: std::sync::Arc<WriterHealth>,
    pub max_events_per_commit: usize,
    /// `SqliteOptions::wal_restart_frames`.
    pub wal_restart_frames: i64,
    /// Maintain each account's verifiable log (`SqliteOptions::keep_tree`).
    pub keep_tree: bool,
    /// Unfamiliar-IP detection (issue 6): the known (actor, address) pairs, see `actor_history`.
    pub actor_history: crate::actor_history::ActorHistory,
    /// The rows of the location objects stored so far (migration 0020).
    pub interned_locations: crate::interned_locations::InternedLocations,
    /// Wakes the background checkpointer (a full inbox means it is already due to run).
    pub checkpoint_requests: Option<crossbeam_channel::Sender<()>>,
    pub checkpointer_thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// Runs `job` on the writer's connection, or tells it why the store refuses writes.
    fn run_job(&mut self, job: WriterJob) {
        match self.health.failure() {
            Some(failure) => job(Err(StoreError::Unavailable(failure))),
            None => job(Ok(&mut self.connection)),
        }
        // Retention's delete batches commit here too, batch after batch while nothing is
        // ingested, and no connection checkpoints on its own: without this the WAL of a pruner
        // working alone would grow until the next group.
        if WAL_FRAMES_AFTER_LAST_COMMIT.get() > self.wal_restart_frames {
            restart_wal(&self.connection);
        }
    }

    /// Runs until every sender is gone and the inbox is empty (that is how shutdown drains).
    pub(crate) fn run(mut self) {
        // Registered here, after `wal_autocheckpoint = 0` (which replaces any WAL hook), so the
        // hook runs on this thread, whose thread-local it writes.
        self.connection.wal_hook(Some(remember_wal_frames));
        // Cached per account: its row id, which never changes once the account exists. (The next
        // `seq` is not cached across groups: see `NextSeqs`.)
        let mut accounts: HashMap<AccountId, i64> = HashMap::new();
        // The WAL's size when the background checkpointer was last woken.
        let mut frames_at_last_wake: i64 = 0;
        while let Ok(first) = self.inbox.recv() {
            let first = match first {
                WriterWork::Append(request) => request,
                WriterWork::Job(job) => {
                    self.run_job(job);
                    continue;
                }
            };
            // Requests waiting for the writer (this one included) as it starts a group; published
            // again, usually 0, once the group is answered.
            metrics::gauge!("logbook_writer_queue_depth").set((self.inbox.len() + 1) as f64);
            let mut event_count = first.events.len();
            let mut group = vec![first];
            // A job queued behind the group's requests runs once the group is answered.
            let mut job_after_group = None;
            while event_count < self.max_events_per_commit {
                match self.inbox.try_recv() {
                    Ok(WriterWork::Append(request)) => {
                        event_count += request.events.len();
                        group.push(request);
                    }
                    Ok(WriterWork::Job(job)) => {
                        job_after_group = Some(job);
                        break;
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
                if let Some(job) = job_after_group {
                    self.run_job(job);
                }
                continue;
            }
            let started = Instant::now();
            match write_group(
                &mut self.connection,
                &mut accounts,
                &mut group,
                self.keep_tree,
                &mut self.actor_history,
                &mut self.interned_locations,
            ) {
                Ok(outcomes) => {
                    metrics::histogram!("logbook_commit_seconds")
                        .record(started.elapsed().as_secs_f64());
                    metrics::histogram!("logbook_commit_events").record(event_count as f64);
                    for (request, outcome) in group.into_iter().zip(outcomes) {
                        // A caller that went away no longer needs its answer; its events are stored
                        // (or, refused by a volume quota, none of them is).
                        let _ = request.reply.send(outcome);
                    }
                    let frames = WAL_FRAMES_AFTER_LAST_COMMIT.get();
                    if frames > self.wal_restart_frames {
                        // Not together with a wake of the background checkpointer: SQLite runs
                        // one checkpoint at a time and refuses a second at once, so a restart
                        // right after waking it fails. Past the threshold nothing wakes it, so
                        // a restart refused by its last pass succeeds after a later group.
                        restart_wal(&self.connection);
                        frames_at_last_wake = 0;
                    } else {
                        // A WAL smaller than at the last wake started over (SQLite restarts it
                        // itself after a complete checkpoint): all its frames are new.
                        let new_frames = if frames >= frames_at_last_wake {
                            frames - frames_at_last_wake
                        } else {
                            frames
                        };
                        if new_frames >= CHECKPOINT_EVERY_FRAMES {
                            frames_at_last_wake = frames;
                            if let Some(requests) = &self.checkpoint_requests {
                                let _ = requests.try_send(());
                            }
                        }
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
            metrics::gauge!("logbook_writer_queue_depth").set(self.inbox.len() as f64);
            if let Some(job) = job_after_group {
                self.run_job(job);
            }
        }
        // On the way out, stop the background checkpointer, then empty the WAL so the file left
        // behind is the whole database.
        drop(self.checkpoint_requests.take());
        if let Some(checkpointer) = self.checkpointer_thread.take() {
            let _ = checkpointer.join();
        }
        run_checkpoint(&self.connection, "TRUNCATE");
        tracing::debug!("SQLite writer stopped");
    }
}

/// Where the writer's time goes inside a group, summed per phase and recorded once per group as
/// `logbook_writer_phase_seconds{phase}`: the benchmark divides the sums by the events stored to
/// say what each part of an event costs (issue 17's profile). Laps cost two clock reads per
/// phase, far below the microseconds each phase takes.
struct PhaseTimes {
    lap_started: Instant,
    seconds: [f64; PHASE_NAMES.len()],
}

/// The writer's phases, in the order an event goes through them.
const PHASE_NAMES: [&str; 9] = [
    "idempotency_lookup",
    "account_state",
    "leaf_hash",
    "location_row",
    "event_row",
    "full_text",
    "actor_history",
    "tree_and_volume",
    "other",
];

#[derive(Clone, Copy)]
enum Phase {
    IdempotencyLookup = 0,
    AccountState,
    LeafHash,
    LocationRow,
    EventRow,
    FullText,
    ActorHistory,
    TreeAndVolume,
    Other,
}

impl PhaseTimes {
    fn new() -> Self {
        Self {
            lap_started: Instant::now(),
            seconds: [0.0; PHASE_NAMES.len()],
        }
    }

    /// Charges the time since the last lap to `phase`.
    fn lap(&mut self, phase: Phase) {
        let now = Instant::now();
        self.seconds[phase as usize] += (now - self.lap_started).as_secs_f64();
        self.lap_started = now;
    }

    fn record(&self) {
        for (name, seconds) in PHASE_NAMES.iter().zip(self.seconds) {
            metrics::histogram!("logbook_writer_phase_seconds", "phase" => *name).record(seconds);
        }
    }
}

fn write_group(
    connection: &mut Connection,
    accounts: &mut HashMap<AccountId, i64>,
    group: &mut [AppendRequest],
    keep_tree: bool,
    actor_history: &mut crate::actor_history::ActorHistory,
    interned_locations: &mut crate::interned_locations::InternedLocations,
) -> Result<Vec<Result<Vec<AppendOutcome>, StoreError>>, rusqlite::Error> {
    actor_history.begin_group();
    interned_locations.begin_group();
    let mut phases = PhaseTimes::new();
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Each touched account's tree, loaded with its next seq and saved before the commit.
    let mut trees: HashMap<i64, CompactRange> = HashMap::new();
    let mut volumes = crate::volume_quota::GroupVolumes::default();
    // The timeline's counts of the group's stored events, per account and day.
    let mut day_counts = DayCountChanges::default();
    // And per account, day and action, for the timeline of an action (migration 0026).
    let mut action_day_counts = ValueDayCountChanges::default();
    // And per account, day and actor, for the timeline of an actor (migration 0028).
    let mut actor_day_counts = ValueDayCountChanges::default();
    // And per account, day and address, for the timeline of an address (migration 0029).
    let mut ip_day_counts: ValueDayCountChanges<[u8; 16]> = ValueDayCountChanges::default();
    // The newest `created_at` of each account's arrivals, for the reader's windows.
    let mut arrival_bounds = crate::arrival_window::ArrivalBounds::default();
    // The statements live as long as this block; the answers outlive it.
    let answers = {
        let mut insert_event = transaction.prepare_cached(
            "INSERT INTO events (event_row, account_row, created_at, id, action, actor_id, ip, outcome, idempotency_key, fingerprint, body, leaf_hash, location_row) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?;
        let mut insert_text = transaction
            .prepare_cached("INSERT INTO events_fts (rowid, message) VALUES (?1, ?2)")?;
        // First, in arrival order, each request's account rows and whether a volume quota refuses
        // it: a refused request is answered with the refusal and none of its events is written.
        let mut refusals: Vec<Option<StoreError>> = Vec::with_capacity(group.len());
        let mut write_order: Vec<(i64, u32, u32)> = Vec::new();
        for (request_index, request) in group.iter().enumerate() {
            let refusal = volumes.refusal_for(
                &transaction,
                &request.events,
                &mut |account, received_at| {
                    account_row_of(&transaction, accounts, account, received_at)
                },
            )?;
            if refusal.is_none() {
                for (event_index, prepared) in request.events.iter().enumerate() {
                    let account_row = account_row_of(
                        &transaction,
                        accounts,
                        &prepared.event.account,
                        prepared.event.received_at,
                    )?;
                    write_order.push((account_row, request_index as u32, event_index as u32));
                }
            }
            refusals.push(refusal);
        }
        // Then the events of every accepted request, one account after another, each account's in
        // arrival order, which is ascending `event_row` order. An event's seq, key, tree and
        // history depend only on its own account's earlier events, so this order stores exactly
        // what arrival order would, and the answers keep the order sent. It is much cheaper
        // (issue 17, measured in BENCHMARKS.md): FTS5 flushes its pending terms to a new segment
        // whenever a rowid is not above the last one it was given, which in arrival order happens
        // at nearly every event of a group spanning accounts; and consecutive inserts land on the
        // same pages of the table, its indexes and the tree instead of a cold leaf page of each.
        write_order.sort_unstable();
        let mut answers = GroupAnswers::new(
            group
                .iter()
                .map(|request| request.events.len())
                .zip(refusals),
        );
        // Keys stored earlier in this same group: the second event with a key is a duplicate of the
        // first exactly as if they had come in two commits.
        let mut keys_in_group = KeysInGroup::default();
        let mut next_seqs: NextSeqs = HashMap::new();
        // Each event's full-text document, built in one buffer the whole group reuses.
        let mut document = String::new();
        for &(account_row, request_index, event_index) in &write_order {
            phases.lap(Phase::Other);
            let (request_index, event_index) = (request_index as usize, event_index as usize);
            let prepared = &group[request_index].events[event_index];
            // A key stored earlier in this group is answered from memory. A key stored by an
            // earlier commit is not looked up first: the unique `(key, account)` index refuses
            // the row below, and only then is the original read. Nearly every keyed event is
            // new, so this saves one index descent per event (issue 17's profile).
            if let (Some(key), Some(fingerprint)) = (&prepared.event.key, &prepared.fingerprint)
                && let Some(original) = keys_in_group.get(account_row, key)
            {
                answers.answer(
                    request_index,
                    event_index,
                    original.replay_outcome(fingerprint),
                );
                continue;
            }
            phases.lap(Phase::IdempotencyLookup);
            let next_seq = match next_seqs.entry(account_row) {
                hashbrown::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                hashbrown::hash_map::Entry::Vacant(entry) => {
                    let next_seq = stored_next_seq(&transaction, account_row)?;
                    let tree = if keep_tree {
                        crate::tree::load_account_tree(&transaction, account_row)?
                    } else {
                        CompactRange::new()
                    };
                    if keep_tree && tree.size() != next_seq {
                        // Events were added or removed outside this writer: appending would
                        // hide that, so the account refuses writes until `verify` is run.
                        return Err(rusqlite::Error::FromSqlConversionFailure(
                                0,
                                rusqlite::types::Type::Blob,
                                format!(
                                    "the tree of account row {account_row} covers {} events but {next_seq} are stored",
                                    tree.size()
                                )
                                .into(),
                            ));
                    }
                    if keep_tree {
                        trees.insert(account_row, tree);
                    }
                    entry.insert(next_seq)
                }
            };
            // Taken only once the row is in: a duplicate refused below uses no seq.
            let seq = *next_seq;
            phases.lap(Phase::AccountState);
            let event_row = event_row_of(account_row, seq);
            let event = &prepared.event;
            // The leaf hash is stored in the event's row (migration 0009), so the tree adds
            // no row of its own for most events.
            let leaf_hash = trees
                .contains_key(&account_row)
                .then(|| prepared.leaf_parts.leaf_hash(seq));
            phases.lap(Phase::LeafHash);
            let location = prepared.location.as_ref();
            // The object and the place columns once per distinct location (migration 0020).
            let location_row = location
                .map(|location| interned_locations.row_of(&transaction, location))
                .transpose()?;
            phases.lap(Phase::LocationRow);
            let inserted = insert_event.execute(params![
                event_row,
                account_row,
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
                leaf_hash.as_ref().map(|leaf_hash| leaf_hash.as_slice()),
                location_row,
            ]);
            if let Err(error) = inserted {
                // SQLite backed out the refused statement alone; the group goes on.
                let original = match (&event.key, &prepared.fingerprint) {
                    (Some(key), Some(_)) if is_unique_violation(&error) => {
                        stored_original(&transaction, account_row, key)?
                    }
                    _ => None,
                };
                let (Some(original), Some(fingerprint)) = (original, &prepared.fingerprint) else {
                    return Err(error);
                };
                answers.answer(
                    request_index,
                    event_index,
                    original.replay_outcome(fingerprint),
                );
                phases.lap(Phase::IdempotencyLookup);
                continue;
            }
            *next_seq += 1;
            phases.lap(Phase::EventRow);
            // Only once the row is in: a duplicate refused above locates no event of the account.
            if let Some(location_row) = location_row {
                interned_locations.record_account_location(
                    &transaction,
                    account_row,
                    location_row,
                )?;
            }
            phases.lap(Phase::LocationRow);
            // The message's tokens, since migration 0021 the location's token, through which
            // `country:`, `asn:` and `city:` find the event, since migration 0025 a token per
            // target, through which `target:` does, since migration 0026 the action's token,
            // through which `action:` does, since migration 0028 the actor's, through which
            // `actor:` does, and since migration 0029 the address's, through which `ip:` does:
            // one document, one statement.
            document.clear();
            if !prepared.text_document.is_empty() {
                push_retagged_full_text_document(
                    &mut document,
                    &prepared.text_document,
                    account_row,
                );
            }
            if let Some(location_row) = location_row {
                push_full_text_location_token(&mut document, account_row, location_row);
            }
            push_full_text_target_tokens(&mut document, account_row, &prepared.target_hex);
            push_full_text_action_token(&mut document, account_row, &prepared.action_hex);
            if let Some(actor_hex) = &prepared.actor_hex {
                push_full_text_actor_token(&mut document, account_row, actor_hex);
            }
            if let Some(ip) = &prepared.ip {
                push_full_text_ip_token(&mut document, account_row, ip);
            }
            if !document.is_empty() {
                insert_text.execute(params![event_row, document.as_str()])?;
            }
            phases.lap(Phase::FullText);
            // Unfamiliar-IP flags, in this transaction (issue 6; see `actor_history`).
            actor_history.record(
                &transaction,
                account_row,
                event_row,
                event,
                location.and_then(|location| location.country_code.as_deref()),
            )?;
            phases.lap(Phase::ActorHistory);
            volumes.count_stored(&transaction, account_row, prepared)?;
            day_counts.count(account_row, prepared.created_at_micros);
            action_day_counts.count(account_row, prepared.created_at_micros, &event.action);
            if let Some(actor) = &event.actor {
                actor_day_counts.count(account_row, prepared.created_at_micros, &actor.id);
            }
            if let Some(ip) = &prepared.ip {
                ip_day_counts.count(account_row, prepared.created_at_micros, ip);
            }
            arrival_bounds.record(&transaction, account_row, seq, prepared.created_at_micros)?;
            let leaf = match (trees.get_mut(&account_row), leaf_hash) {
                (Some(tree), Some(leaf_hash)) => {
                    let tree_size =
                        crate::tree::append_leaf(&transaction, account_row, tree, leaf_hash)?;
                    Some(LeafReceipt {
                        leaf_hash,
                        tree_size,
                    })
                }
                _ => None,
            };
            phases.lap(Phase::TreeAndVolume);
            let receipt = AppendReceipt {
                id: event.id.clone(),
                seq,
                received_at: event.received_at,
                leaf,
            };
            if let (Some(key), Some(fingerprint)) = (&event.key, &prepared.fingerprint) {
                keys_in_group.remember(
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
        answers
    };
    phases.lap(Phase::Other);
    volumes.write(&transaction)?;
    write_day_counts(
        &transaction,
        &day_counts,
        &action_day_counts,
        &actor_day_counts,
        &ip_day_counts,
    )?;
    arrival_bounds.write(&transaction)?;
    for (account_row, tree) in &trees {
        crate::tree::save_account_tree(&transaction, *account_row, tree)?;
    }
    phases.lap(Phase::AccountState);
    phases.record();
    // The commit itself: the group's dirty pages appended to the WAL and the fsync. The rest of
    // `logbook_commit_seconds` is building the group (the inserts), so the two tell where a
    // commit's time goes.
    let committing = Instant::now();
    transaction.commit()?;
    metrics::histogram!("logbook_commit_durable_seconds")
        .record(committing.elapsed().as_secs_f64());
    actor_history.committed();
    interned_locations.committed();
    Ok(answers.into_replies())
}

/// Adds a group's counts to `event_day_counts`, one upsert per account and day (one per account
/// a commit touches, on its newest day's row, when events are sent as they happen), and to the
/// counts per value of `event_day_action_counts`, `event_day_actor_counts` and
/// `event_day_ip_counts`, one upsert per account, day and value.
fn write_day_counts(
    transaction: &rusqlite::Transaction<'_>,
    day_counts: &DayCountChanges,
    action_day_counts: &ValueDayCountChanges,
    actor_day_counts: &ValueDayCountChanges,
    ip_day_counts: &ValueDayCountChanges<[u8; 16]>,
) -> Result<(), rusqlite::Error> {
    let mut upsert = transaction.prepare_cached(
        "INSERT INTO event_day_counts (account_row, day_start, events) VALUES (?1, ?2, ?3) \
         ON CONFLICT (account_row, day_start) DO UPDATE SET events = events + excluded.events",
    )?;
    for (account_row, day_start, events) in day_counts.rows() {
        upsert.execute(params![account_row, day_start, events])?;
    }
    add_value_day_counts(transaction, TokenizedField::Action, action_day_counts)?;
    add_value_day_counts(transaction, TokenizedField::Actor, actor_day_counts)?;
    add_value_day_counts(transaction, TokenizedField::Ip, ip_day_counts)
}

/// Adds `changes` to the day counts per value of `field` (`query_sql::field_day_counts_table`).
fn add_value_day_counts<Value: std::hash::Hash + Eq + Ord + rusqlite::ToSql>(
    transaction: &rusqlite::Transaction<'_>,
    field: TokenizedField,
    changes: &ValueDayCountChanges<Value>,
) -> Result<(), rusqlite::Error> {
    let table = crate::query_sql::field_day_counts_table(field);
    let column = field.column();
    let mut upsert = transaction.prepare_cached(&format!(
        "INSERT INTO {table} (account_row, day_start, {column}, events) \
         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (day_start, account_row, {column}) \
         DO UPDATE SET events = events + excluded.events"
    ))?;
    for (account_row, day_start, value, events) in changes.rows() {
        upsert.execute(params![account_row, day_start, value, events])?;
    }
    Ok(())
}

/// Whether `error` is a UNIQUE constraint refusing a row; on `events` only the `(key, account)`
/// index is unique (the primary key reports its own code), and the caller still confirms with a
/// lookup before treating the event as a duplicate.
fn is_unique_violation(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
    )
}

/// The row id of `account` (cached), creating the account on its first event.
fn account_row_of(
    transaction: &Transaction<'_>,
    accounts: &mut HashMap<AccountId, i64>,
    account: &AccountId,
    first_seen_at: OffsetDateTime,
) -> Result<i64, rusqlite::Error> {
    if let Some(account_row) = accounts.get(account) {
        return Ok(*account_row);
    }
    transaction
        .prepare_cached(
            "INSERT INTO accounts (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
        )?
        .execute(params![account.as_str(), unix_micros_of(first_seen_at)])?;
    let account_row: i64 = transaction
        .prepare_cached("SELECT account_row FROM accounts WHERE name = ?1")?
        .query_row([account.as_str()], |row| row.get(0))?;
    accounts.insert(account.clone(), account_row);
    Ok(account_row)
}

/// The account's next `seq` as stored: one seek to the end of its rowid range. (`max(event_row)`
/// with a range condition walks the whole range: SQLite's min/max shortcut needs no WHERE.)
fn stored_next_seq(
    transaction: &Transaction<'_>,
    account_row: i64,
) -> Result<u64, rusqlite::Error> {
    let first = first_event_row_of(account_row);
    let last: Option<i64> = transaction
        .prepare_cached(
            "SELECT event_row FROM events WHERE event_row >= ?1 AND event_row < ?2 ORDER BY event_row DESC LIMIT 1",
        )?
        .query_row(params![first, first + (1_i64 << SEQ_BITS)], |row| {
            row.get(0)
        })
        .optional()?;
    Ok(last.map_or(0, |last| (last - first) as u64 + 1))
}

/// A stored keyed event as read back: its seq, body, fingerprint and leaf hash.
type StoredKeyedRow = (i64, String, Vec<u8>, Option<Vec<u8>>);

/// The stored event with this idempotency key, if any. Its `id` and `received_at` are read from
/// the body (duplicates are rare, so the row keeps no extra columns for them).
fn stored_original(
    transaction: &Transaction<'_>,
    account_row: i64,
    key: &str,
) -> Result<Option<KeyedOriginal>, rusqlite::Error> {
    let found: Option<StoredKeyedRow> = transaction
        .prepare_cached(
            "SELECT event_row & 1099511627775, body, fingerprint, leaf_hash FROM events WHERE account_row = ?1 AND idempotency_key = ?2",
        )?
        .query_row(params![account_row, key], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .optional()?;
    let Some((seq, body, fingerprint, leaf_hash)) = found else {
        return Ok(None);
    };
    KeyedOriginal::from_stored(seq as u64, &body, fingerprint, leaf_hash)
        .map(Some)
        .map_err(|error| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, error.into())
        })
}
