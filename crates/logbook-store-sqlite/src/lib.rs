//! Logbook's embedded store on SQLite: WAL with `synchronous=FULL`, one writer thread with group
//! commit (`writer`), a small pool of read-only connections for queries, the schema and its
//! migrations (`migrations/`), query compilation to SQL (`query_sql`) and FTS5 full text.
//!
//! # Storage layout
//!
//! - `events`: one row per event, clustered by account: `event_row = (account_row << 40) | seq`.
//!   Columns are the ones queries filter on (`account_row`, `created_at` in microseconds, `action`,
//!   `actor_id`, `ip` as 16 bytes, IPv4 as IPv4-mapped IPv6) and `body`, the event's JSON
//!   without `seq`.
//!   Reads and exports copy `body` and splice `"seq":N` in front (`EventRow::write_json`) instead
//!   of decoding and re-encoding each event; `seq` is `event_row & (2^40 - 1)`.
//! - Indexes lead with the account, so no query reads another tenant's rows and selective filters
//!   never scan a whole account: `(account, created_at)` (actors and addresses are tokens since
//!   migrations 0028 and 0029, below). Two exceptions keyed by a value
//!   that grows with time, so a commit appends at their right edge instead of touching a page per
//!   account: `(id)` (UUIDv7, below), and, since migration 0027, `(key, account)`, unique where a
//!   key was sent (time-ordered keys, such as the client's UUIDv7s, append; random ones cost the
//!   same as keyed by the account first). Lookups name the account too.
//! - Targets: since migration 0025 each target of an event is a token of its `events_fts`
//!   document, `.<account_row>t<hex of the id>` (`logbook_store_sql::target_terms`), found by an
//!   exact or a prefix FTS5 term; events stored before keep their rows of
//!   `event_targets(account, target_id, event_row)`, and `target:` reads both. The table's rows
//!   went to the end of each (account, target) run, so a group commit rewrote two thirds of its
//!   pages, where FTS5 writes the group's tokens as one sorted segment (BENCHMARKS.md).
//! - Actions: since migration 0026 an event's action is a token of its `events_fts` document,
//!   `.<account_row>v<hex of the action>` (`logbook_store_sql::action_terms`), for the same reason:
//!   the index `(account, action, created_at)` rewrote a quarter of its pages per commit. Events
//!   stored before keep their entries, moved into `event_action_rows` (the index's key), and a
//!   positive `action:` reads both; a negated one tests the `action` column, which stays. A page
//!   of a common action alone is read from the blocks of arrivals holding its newest matches
//!   (`arrival_window`); beside a clause that leads (a target, a rare term, action, actor or
//!   address, or a `created:` range whose newest days hold a page of it by the day counts) it is
//!   tested on the column of the rows that clause reads.
//! - Actors: since migration 0028 an event's actor id is a token of its `events_fts` document,
//!   `.<account_row>p<hex of the id>` (`logbook_store_sql::actor_terms`), as actions are: the
//!   index `(account, actor_id, created_at)` rewrote 28 % of a commit's pages at 2M events, one
//!   per (account, actor) run. Events stored before keep their entries in `event_actor_rows`;
//!   `actor:` is planned like `action:` (`TokenizedField`), an actor's timeline per day reads
//!   `event_day_actor_counts`, and where an actor was seen (`actor_addresses`) reads the
//!   actor's newest tokens and rows, each cut at its bound, and keeps the newest. Removing a
//!   person's data takes each batch's candidates from the actor's tokens (from the batch's first
//!   row on) and rows, each cut at the batch's size.
//! - Addresses: since migration 0029 an event's address is a token of its `events_fts` document,
//!   `.<account_row>i<8 hex digits>` (IPv4) or `.<account_row>j<32 hex digits>` (IPv6)
//!   (`logbook_store_sql::ip_terms`): the index `(account, ip, created_at)` rewrote a quarter of a
//!   commit's pages at 1.8M events. A CIDR block is an FTS5 prefix query of its addresses' tokens
//!   (2, 4 or 8 of them when its length is not a multiple of 4 bits). Events stored before keep
//!   their entries in `event_ip_rows`; `ip:` is planned like `actor:` (`TokenizedField`), and its
//!   timeline per day reads `event_day_ip_counts` (a block is a range of each day's rows).
//!   Removing an address (aging, erasure) replaces the event's document by one without its
//!   token and takes the event off its day count; aging's history cleanup asks FTS5 for the
//!   actor's and the address's tokens together.
//! - `events_fts`: a contentless FTS5 index whose documents are the message's `text_tokens`, each
//!   prefixed with a 5-character base-36 tag of the account (the text lives once, in `body`).
//! - Places: a located event's country, network and city are account-prefixed terms
//!   (`logbook_store_sql::place_terms`); `country:`, `asn:` and `city:` find rare values there and
//!   test the unindexed columns. Since migration 0020 the writer puts them in the event's
//!   `events_fts` document behind `.` (no word can spell one) and stores the location object once
//!   per distinct location (`locations`, `interned_locations`), the row only its `location_row`;
//!   since migration 0021 as one token, the location's row, which a query finds through the
//!   locations each account uses (`account_locations`) that hold its value. Events located
//!   before, or by the backfill, keep the object in the row and their terms in
//!   `events_place_terms` (migration 0019); a place query looks in both. The columns have no
//!   B-tree index: three more tails per account cost 12.7 % of batched ingest, while FTS5 writes a
//!   group commit's terms as one sorted segment (BENCHMARKS.md).
//!
//! ## Decisions beyond the layout above (and why)
//!
//! - **Clustered by account, and every index must earn its write.** Ingest is bound by pages written
//!   per commit, not CPU: each event dirties the tail page of every index it enters, and with indexes
//!   that lead with the account those are separate pages per account. So `event_row` carries the
//!   account in its high bits: the primary key itself keeps `seq` unique per account (the
//!   `(account, seq)` index is gone), an account's events sit on contiguous pages in `seq` order
//!   (`events_since` and exports read a rowid range; `max(event_row)` in the range is the next seq),
//!   and every index implicitly ends with `event_row`, which grows with `seq`, so
//!   `ORDER BY created_at DESC, event_row DESC` needs no sort and keyset pages use
//!   `created_at <= ? AND (created_at < ? OR event_row < ?)`. Ids are UUIDv7, time-ordered, so the
//!   `id` index is global and appends at its right edge (lookups add `account_row = ?`). The ip
//!   index skips events without one. Measured (quick run, 50k events over 1000 accounts): 2.2 KB
//!   written to storage per batched event, against 21.5 KB with the account-first `seq` and `id`
//!   indexes and the old FTS layout.
//! - **Full text per account, tokenized by core.** FTS5 receives `text_tokens(message)` with every
//!   token tagged by account and a tokenizer that only splits at spaces, so a word means exactly what
//!   `logbook_core::query::text_tokens` says (phrases included), and every term's doclist belongs to
//!   one account: a word common in the largest account costs another account nothing. MATCH terms are
//!   tagged the same way (always quoted, so user text is never FTS syntax).
//! - **Rare terms from FTS, common terms checked in Rust.** A capped count
//!   (`SELECT count(*) FROM (... MATCH ... LIMIT 2000)`, per account) decides. Rare: FTS first
//!   (`event_row IN (...)`), then sort the few rows. Common: walk the account's newest-first index
//!   and test each row with `logbook_message_has(body, phrases)`, a deterministic SQL function
//!   registered on reader connections that reads `message` from the body and matches the phrases on
//!   `text_tokens`; it costs microseconds per row where the old correlated FTS probe cost about a
//!   millisecond (two common words on the largest account: p99 119 ms before).
//! - **The next seq is read inside the write transaction.** The writer caches only account row ids;
//!   once per account per group it reads `max(event_row)` of the account's range while holding
//!   SQLite's write lock, so a second process appending to the same file (`logbook demo` while
//!   `serve` runs) keeps `seq` dense instead of making commits fail. It is one B-tree seek.
//! - **Duplicates found by the unique index, not by a lookup first.** A keyed event is inserted
//!   straight away; the unique index of keys (`(key, account)`) refuses one already stored, and
//!   only then does the writer read the original to answer with its receipt (SQLite backs out the
//!   refused statement alone, and the seq is taken only once the row is in). Keys repeated inside
//!   one group are answered from memory. Nearly every keyed event is new, so this saves one index
//!   descent per event (issue 17's profile in BENCHMARKS.md).
//! - **Fixed planner statistics.** Migration 0001 writes `sqlite_stat1` rows describing a large
//!   multi-tenant log (an ip picks a few rows of an account) and
//!   Logbook never runs `ANALYZE`, so a fresh database plans like a full one. Tests check the plans
//!   with `EXPLAIN QUERY PLAN` (`SqliteStore::explain_query_plan`).
//! - **Compact rows.** A canonical UUID id is stored as 16 bytes (other ids as text); `received_at` is
//!   not a column (the rare duplicate answer reads it from `body`); the fingerprint is stored only for
//!   events with a key; the message lives once, in `body` (FTS5 is contentless).
//! - **Accounts and keys on their own connection.** They are rare writes; they take SQLite's write
//!   lock briefly (busy timeout 5 s) instead of queueing behind group commits. The writer creates an
//!   unknown account on its first event with `INSERT ... ON CONFLICT DO NOTHING`. Retention's
//!   deletes are not rare (batch after batch until a prefix is gone): they run on the writer's
//!   thread between two groups (`writer::WriterJob`), since a loop of them on another connection
//!   could win SQLite's polled write lock at every poll of the writer's busy timeout and fail its
//!   group.
//! - **Checkpoints off the writer.** SQLite's automatic checkpoint would run inside the commit that
//!   crosses 1000 WAL pages, delaying that group's acknowledgements (or, on the admin connection,
//!   holding SQLite's one checkpoint lock so that no other checkpoint completes). Every writable
//!   connection turns it off. Every 4,096 WAL frames committed the writer wakes a checkpointer thread
//!   with its own connection, which runs `wal_checkpoint(PASSIVE)` while the writer keeps
//!   committing (SQLite allows one checkpointer beside one writer). A checkpoint that overlaps a
//!   commit never completes the WAL, and only a complete one that no reader still needs lets SQLite
//!   start the WAL over, so when the WAL passes 32,768 frames (the WAL hook reports its size after
//!   each commit) the writer runs a `RESTART` checkpoint itself between groups, after answering
//!   them: it copies what the background one left and waits up to 50 ms for the readers still on
//!   the WAL, and the next commit writes the WAL from its start. No group commits meanwhile, so
//!   the restart's copy is the longest wait a single event's acknowledgement meets (43 to 80 ms
//!   of copying about 4,000 frames once the background passes keep pace; a batched commit of
//!   20,000 frames leaves a restart more to copy; BENCHMARKS.md, "The writer's WAL restarts"). `journal_size_limit` (512 MiB)
//!   is above what the WAL reaches between two restarts, so the file keeps its size and commits
//!   overwrite it. Shutdown stops the checkpointer and checkpoints with TRUNCATE.
//!   The Merkle tree (issue 5) goes into the same group transaction: its per-account state loads
//!   where `next_seq` does, its nodes insert right after each event.
//! - **I/O errors stop writes.** `SQLITE_FULL` fails only its group; `SQLITE_IOERR` on a commit makes the
//!   store refuse every later write and fail `/readyz`, since a failed fsync cannot be retried safely.

/// The size SQLite cuts the WAL file back to when it starts the WAL over (`journal_size_limit`).
/// It is above what the WAL reaches between two of the writer's restarts (32,768 frames, see
/// `writer`, plus one group of up to 20,000 events: one such commit wrote 160 MB of pages at 2.1
/// million stored events, BENCHMARKS.md "Where a commit's pages go", and commits grow with the
/// log), so in steady ingest the file keeps its size and each commit overwrites blocks the file
/// system already holds, instead of writing past the end into new blocks it must allocate and
/// zero first. The file is never larger than what the WAL itself reached.
const WAL_FILE_KEPT_BYTES: i64 = 512 * 1024 * 1024;

/// How long a connection waits for SQLite's write lock before it answers busy: the admin
/// connection's rare writes wait behind a group commit at most this long.
pub(crate) const CONNECTION_BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

mod actor_history;
mod arrival_window;
mod encoding;
mod errors;
mod interned_locations;
mod migrations;
mod query_budget;
mod query_sql;
mod retention;
mod shared_sql;
mod startup_check;
mod tree;
mod volume_quota;
mod writer;

use std::path::Path;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::BoxStream;
use logbook_core::api_key::ApiKeyRecord;
use logbook_core::cursor::CursorPosition;
use logbook_core::event::{EventRow, NewEvent};
use logbook_core::ids::{ApiKeyId, EventId};
use logbook_core::query::Query;
use logbook_core::store::{AccountRecord, AppendOutcome, EventPage, EventQuery, NewApiKey};
use logbook_core::timeline::{BucketCount, TimeBucket};
use logbook_core::{AccountId, Store, StoreError};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use time::OffsetDateTime;
use tokio::sync::{Semaphore, oneshot};

pub use migrations::schema_sql;

pub use encoding::{event_row_of, full_text_document};

use crate::encoding::{
    SEQ_BITS, event_id_value, first_event_row_of, micros_to_time, unix_micros_of,
};
use crate::errors::database_error;
use crate::query_sql::{EVENT_COLUMNS, compile_page_query};
use crate::writer::{AppendRequest, Checkpointer, PreparedEvent, Writer, WriterHealth, WriterWork};
use logbook_store_sql::export::{EXPORT_PAGE_SIZE, page_from_rows};
use logbook_store_sql::{CompiledQuery, SqlValue};

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// `synchronous=FULL` (every commit fsyncs the WAL); `false` means NORMAL, which may lose the
    /// last commits on power loss.
    pub synchronous_full: bool,
    pub reader_connections: usize,
    /// The most events one group commit takes before it starts committing.
    pub max_events_per_commit: usize,
    /// WAL frames (pages) beyond which the writer starts the WAL over between two groups (32,768,
    /// 128 MiB of 4 KiB pages, by default); see `writer::DEFAULT_WAL_RESTART_FRAMES`. Tests lower
    /// it to see the WAL start over without writing 128 MiB.
    pub wal_restart_frames: i64,
    /// A page query running longer than this is interrupted (SQLite's progress handler) and
    /// fails as unavailable; `None` lets queries run to completion.
    pub query_time_budget: Option<std::time::Duration>,
    /// Maintain each account's verifiable log (Merkle tree) in the events' transaction. Only the
    /// benchmark turns it off, to measure what the tree costs; such a store cannot be verified.
    pub keep_tree: bool,
    /// Flag unfamiliar IPs at ingest (`new_ip`, `new_network`; see `actor_history`). Only the
    /// benchmark turns it off, to measure what detection costs.
    pub detect_unfamiliar_ips: bool,
    /// Where each event's address is (`logbook_core::location`), asked while events are prepared,
    /// off the writer. `NoIpLocator` (the default) locates nothing.
    pub ip_locator: logbook_core::location::SharedIpLocator,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous_full: true,
            reader_connections: 4,
            max_events_per_commit: 20_000,
            wal_restart_frames: writer::DEFAULT_WAL_RESTART_FRAMES,
            query_time_budget: Some(std::time::Duration::from_secs(10)),
            keep_tree: true,
            detect_unfamiliar_ips: true,
            ip_locator: std::sync::Arc::new(logbook_core::location::NoIpLocator),
        }
    }
}

/// The SQLite `Store`. Cheap to share behind an `Arc<dyn Store>`.
pub struct SqliteStore {
    inner: Arc<StoreInner>,
    /// Limits, people, alerting, attention and known networks, in the SQL both stores share.
    shared: logbook_store_sql::SharedStore<shared_sql::SqliteDatabase>,
}

struct StoreInner {
    database_path: std::path::PathBuf,
    options: SqliteOptions,
    /// `None` once shutdown started: no new writes are accepted.
    writer_inbox: Mutex<Option<crossbeam_channel::Sender<WriterWork>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    writer_health: Arc<WriterHealth>,
    readers: Mutex<Vec<Connection>>,
    reader_permits: Arc<Semaphore>,
    /// Accounts and API keys are written rarely, on their own connection, so they never wait
    /// behind a group commit queue.
    admin: Mutex<Option<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `database_path` and applies migrations.
    pub fn open(database_path: &Path, options: SqliteOptions) -> Result<SqliteStore, StoreError> {
        let mut write_connection = open_connection(database_path, false, &options)?;
        // Checked before anything is written: a damaged file is never migrated or appended to.
        let startup_failure = startup_check::quick_check(&write_connection, database_path).err();
        if let Some(failure) = &startup_failure {
            tracing::error!(%failure, "the database is damaged; refusing writes");
        }
        let mut startup_failure = startup_failure;
        if startup_failure.is_none() {
            migrations::apply_migrations(&mut write_connection)?;
            let rebuilt = tree::build_missing_trees(&mut write_connection)?;
            if rebuilt > 0 {
                tracing::info!(
                    events = rebuilt,
                    "built the trees of accounts written before tree storage"
                );
            }
            // The stored history must still be what the newest checkpoints signed.
            if let Err(failure) = startup_check::newest_checkpoints_match(&write_connection) {
                tracing::error!(%failure, "the stored tree does not match a signed checkpoint; refusing writes");
                startup_failure = Some(failure);
            }
        }
        // The writer checkpoints itself after answering each group (see `writer`); like every
        // writable connection it runs no automatic checkpoint (`open_connection`).
        write_connection
            .execute_batch(&format!(
                "PRAGMA journal_size_limit = {WAL_FILE_KEPT_BYTES};"
            ))
            .map_err(database_error("bounding the WAL file"))?;
        let admin = open_connection(database_path, false, &options)?;
        let reader_count = options.reader_connections.max(1);
        let readers = (0..reader_count)
            .map(|_| open_connection(database_path, true, &options))
            .collect::<Result<Vec<_>, _>>()?;

        let checkpoint_connection = open_connection(database_path, false, &options)?;
        let (checkpoint_requests, checkpoint_inbox) = crossbeam_channel::bounded(1);
        let checkpointer = Checkpointer {
            connection: checkpoint_connection,
            requests: checkpoint_inbox,
        };
        let checkpointer_thread = std::thread::Builder::new()
            .name("logbook-sqlite-checkpointer".into())
            .spawn(move || checkpointer.run())
            .map_err(|error| StoreError::Database {
                context: "starting the checkpointer thread",
                message: error.to_string(),
            })?;

        let (sender, inbox) = crossbeam_channel::unbounded();
        let writer_health = Arc::new(WriterHealth::default());
        if let Some(failure) = startup_failure {
            writer_health.fail(failure);
        }
        let writer = Writer {
            connection: write_connection,
            inbox,
            health: writer_health.clone(),
            max_events_per_commit: options.max_events_per_commit.max(1),
            wal_restart_frames: options.wal_restart_frames.max(1),
            keep_tree: options.keep_tree,
            actor_history: actor_history::ActorHistory::new(options.detect_unfamiliar_ips),
            interned_locations: interned_locations::InternedLocations::new(),
            checkpoint_requests: Some(checkpoint_requests),
            checkpointer_thread: Some(checkpointer_thread),
        };
        let writer_thread = std::thread::Builder::new()
            .name("logbook-sqlite-writer".into())
            .spawn(move || writer.run())
            .map_err(|error| StoreError::Database {
                context: "starting the writer thread",
                message: error.to_string(),
            })?;

        let inner = Arc::new(StoreInner {
            database_path: database_path.to_owned(),
            options,
            writer_inbox: Mutex::new(Some(sender)),
            writer_thread: Mutex::new(Some(writer_thread)),
            writer_health,
            readers: Mutex::new(readers),
            reader_permits: Arc::new(Semaphore::new(reader_count)),
            admin: Mutex::new(Some(admin)),
        });
        Ok(SqliteStore {
            shared: logbook_store_sql::SharedStore::new(shared_sql::SqliteDatabase {
                inner: inner.clone(),
            }),
            inner,
        })
    }

    /// SQLite's plan for `query` on `account`, one line per step (`EXPLAIN QUERY PLAN`), so tests
    /// and operators can check which indexes a query uses.
    pub async fn explain_query_plan(
        &self,
        account: &AccountId,
        query: &EventQuery,
    ) -> Result<Vec<String>, StoreError> {
        let account = account.clone();
        let query = query.clone();
        self.inner
            .read(move |connection| {
                let account_row = account_row(connection, &account)?.unwrap_or(-1);
                let compiled = compile_page_query(
                    connection,
                    account_row,
                    &query.query,
                    query.after,
                    query.limit + 1,
                )?;
                let mut statement = connection
                    .prepare(&format!("EXPLAIN QUERY PLAN {}", compiled.sql))
                    .map_err(database_error("explaining a query"))?;
                let lines = statement
                    .query_map(
                        rusqlite::params_from_iter(encoding::bound(&compiled.parameters)),
                        |row| row.get::<_, String>(3),
                    )
                    .map_err(database_error("explaining a query"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(database_error("explaining a query"))?;
                Ok(lines)
            })
            .await
    }
}

impl SqliteStore {
    /// SQLite's plan for the timeline of `query` (`Store::count_events_over_time`), one line per
    /// step, so tests can check it reads an index and no event bodies: the per-bucket range
    /// count for a query without message terms, the `GROUP BY` for one with them.
    pub async fn explain_timeline_plan(
        &self,
        account: &AccountId,
        query: &Query,
        bucket: TimeBucket,
    ) -> Result<Vec<String>, StoreError> {
        let account = account.clone();
        let query = query.clone();
        self.inner
            .read(move |connection| {
                let account_row = account_row(connection, &account)?.unwrap_or(-1);
                let compiled = if let Some((counts_table, condition, range)) =
                    field_counted_by_days(&query, bucket)
                {
                    field_days_sql(account_row, counts_table, condition, range)
                } else if !counts_by_bucket_ranges(&query) {
                    crate::query_sql::compile_bucket_count_query(
                        connection,
                        account_row,
                        &query,
                        bucket,
                    )?
                } else {
                    let mut matching =
                        crate::query_sql::compile_matching_created_at(account_row, &query);
                    let sql = range_count_sql(&matching);
                    let width = bucket.width_micros();
                    matching
                        .parameters
                        .extend([SqlValue::Integer(0), SqlValue::Integer(width)]);
                    CompiledQuery {
                        sql,
                        parameters: matching.parameters,
                    }
                };
                let mut statement = connection
                    .prepare(&format!("EXPLAIN QUERY PLAN {}", compiled.sql))
                    .map_err(database_error("explaining a timeline query"))?;
                let lines = statement
                    .query_map(
                        rusqlite::params_from_iter(encoding::bound(&compiled.parameters)),
                        |row| row.get::<_, String>(3),
                    )
                    .map_err(database_error("explaining a timeline query"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(database_error("explaining a timeline query"))?;
                Ok(lines)
            })
            .await
    }
}

/// Opens one connection with Logbook's pragmas. Readers are read-only and map the file.
/// Prepared statements each connection keeps compiled (`prepare_cached`).
const PREPARED_STATEMENTS_KEPT: usize = 64;

fn open_connection(
    database_path: &Path,
    read_only: bool,
    options: &SqliteOptions,
) -> Result<Connection, StoreError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI
    };
    let connection = Connection::open_with_flags(database_path, flags)
        .map_err(database_error("opening the database"))?;
    // rusqlite keeps 16 prepared statements by default, fewer than one group commit runs (the
    // event, its text, targets, history, volumes, tree and locations), so statements were
    // evicted and compiled again within every group.
    connection.set_prepared_statement_cache_capacity(PREPARED_STATEMENTS_KEPT);
    connection
        .busy_timeout(CONNECTION_BUSY_TIMEOUT)
        .map_err(database_error("setting the busy timeout"))?;
    if !read_only {
        let journal_mode: String = connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(database_error("enabling WAL"))?;
        if !journal_mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Database {
                context: "enabling WAL",
                message: format!("SQLite kept journal mode {journal_mode}"),
            });
        }
    }
    let synchronous = if options.synchronous_full {
        "FULL"
    } else {
        "NORMAL"
    };
    // 64 MiB of page cache for the writer (index pages of recent inserts stay hot), 16 MiB and a
    // 256 MiB memory map for each reader.
    //
    // No writable connection checkpoints by itself: only the writer and the checkpointer do (see
    // `writer`). SQLite's automatic checkpoint runs inside the commit of whichever connection
    // crosses 1000 WAL pages, so the admin connection's rare commits (an attention cursor, a
    // setting) copied the writer's whole WAL backlog on the async task that made them, holding
    // SQLite's one checkpoint lock for seconds. The writer's and the checkpointer's checkpoints,
    // refused at once while it was held, never completed, the WAL never started over, and it
    // grew to 24 GB in six minutes of saturated ingest in the benchmark (issue 17).
    let cache_and_map = if read_only {
        "PRAGMA cache_size = -16384; PRAGMA mmap_size = 268435456;"
    } else {
        "PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 0;"
    };
    connection
        .execute_batch(&format!(
            "PRAGMA synchronous = {synchronous}; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; {cache_and_map}"
        ))
        .map_err(database_error("setting connection pragmas"))?;
    query_sql::register_functions(&connection)
        .map_err(database_error("registering SQL functions"))?;
    Ok(connection)
}

fn account_row(connection: &Connection, account: &AccountId) -> Result<Option<i64>, StoreError> {
    connection
        .prepare_cached("SELECT account_row FROM accounts WHERE name = ?1")
        .map_err(database_error("looking up an account"))?
        .query_row([account.as_str()], |row| row.get(0))
        .optional()
        .map_err(database_error("looking up an account"))
}

fn row_to_event(row: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        seq: row.get::<_, i64>(0)? as u64,
        created_at_micros: row.get(1)?,
        body_without_seq: row.get(2)?,
        new_ip: row.get::<_, i64>(3)? != 0,
        new_network: row.get::<_, i64>(4)? != 0,
        location: row.get(5)?,
        new_country: row.get::<_, i64>(6)? != 0,
    })
}

/// One page of `query` (at most `limit` events after `after`) on one reader connection.
fn read_page(
    connection: &Connection,
    account: &AccountId,
    query: &Query,
    limit: u32,
    after: Option<CursorPosition>,
) -> Result<(EventPage, crate::arrival_window::PageRead), StoreError> {
    let Some(account_row) = account_row(connection, account)? else {
        return Ok((
            EventPage {
                events: Vec::new(),
                next: None,
            },
            crate::arrival_window::PageRead::InOrder,
        ));
    };
    // Compiling reads the account's locations a place clause names (`account_locations`), so it
    // and the query share one snapshot: an event committed in between at a location new to the
    // account would match the place but not the tokens looked up, and be missing from the page.
    let snapshot = connection
        .unchecked_transaction()
        .map_err(database_error("starting a query read"))?;
    // One more than asked tells whether a next page exists without a second query.
    let mut plan = crate::query_sql::plan_page(&snapshot, account_row, query)?;
    let (events, read) = crate::arrival_window::read_page_rows(
        &snapshot,
        &mut plan,
        query,
        after,
        limit + 1,
        |connection, compiled| {
            connection
                .prepare_cached(&compiled.sql)
                .map_err(database_error("preparing a query"))?
                .query_map(
                    rusqlite::params_from_iter(encoding::bound(&compiled.parameters)),
                    row_to_event,
                )
                .map_err(database_error("running a query"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(database_error("reading query results"))
        },
    )?;
    snapshot
        .finish()
        .map_err(database_error("ending a query read"))?;
    Ok((page_from_rows(events, limit), read))
}

/// The most buckets the timeline counts one range at a time; a wider span is counted by one
/// `GROUP BY` instead (the page asks for at most a few hundred).
const MOST_BUCKETS_COUNTED_BY_RANGE: i64 = 1000;

/// The timeline of `query` (matching events per bucket) on one reader connection, for a query
/// the day counts do not answer (`logbook_store_sql::day_counts`: the whole log and `created:`
/// ranges are counted there first).
///
/// A positive action or actor, alone or with `created:` ranges, per day, is read from the day
/// counts per action or actor (`field_days_sql`). A query whose every clause reads an index
/// ending in `created_at` (`counts_by_bucket_ranges`: outcomes, flags, negated actors or actions,
/// with or without a time range) is counted one bucket at a time, in one read transaction so
/// every bucket sees the same snapshot: the first and last matching instants
/// come from the index in `created_at` order, then one prepared `count(*)` per bucket reads that
/// bucket's range of the index. SQLite's `GROUP BY` of a computed bucket sorts every matching row
/// in a temporary B-tree first, which on the largest benchmark account (179,000 events) costs
/// about six times the range counts (30 ms against 5). Any other query is counted by the one
/// `GROUP BY`.
fn count_over_time(
    connection: &Connection,
    account: &AccountId,
    query: &Query,
    bucket: TimeBucket,
) -> Result<Vec<BucketCount>, StoreError> {
    let Some(account_row) = account_row(connection, account)? else {
        return Ok(Vec::new());
    };
    if let Some((counts_table, condition, range)) = field_counted_by_days(query, bucket) {
        return read_bucket_counts(
            connection,
            &field_days_sql(account_row, counts_table, condition, range),
        );
    }
    if counts_by_bucket_ranges(query) {
        // One snapshot for every bucket: a deferred transaction on the read-only connection.
        let snapshot = connection
            .unchecked_transaction()
            .map_err(database_error("starting a timeline read"))?;
        let counts = count_over_time_by_ranges(&snapshot, account_row, query, bucket)?;
        snapshot
            .finish()
            .map_err(database_error("ending a timeline read"))?;
        if let Some(counts) = counts {
            return Ok(counts);
        }
    }
    // One snapshot for compiling (the account's locations) and counting, as in `read_page`.
    let snapshot = connection
        .unchecked_transaction()
        .map_err(database_error("starting a timeline read"))?;
    let compiled =
        crate::query_sql::compile_bucket_count_query(&snapshot, account_row, query, bucket)?;
    let counts = read_bucket_counts(&snapshot, &compiled)?;
    snapshot
        .finish()
        .map_err(database_error("ending a timeline read"))?;
    Ok(counts)
}

/// What of `query` the day counts per action (`event_day_action_counts`, migration 0026) or per
/// actor (`event_day_actor_counts`, migration 0028) answer per `bucket`: per day, one positive
/// `action:`, `actor:` or `ip:` (addresses and blocks, `event_day_ip_counts`, migration 0029)
/// clause, and otherwise only positive `created:` ranges. Answers the day counts' table, the
/// clause's condition and the range `[start, end)` (either side open).
fn field_counted_by_days(query: &Query, bucket: TimeBucket) -> Option<FieldCountedByDays<'_>> {
    if bucket != TimeBucket::Day {
        return None;
    }
    let is_field = |clause: &&logbook_core::query::Clause| {
        !clause.negated && logbook_store_sql::TokenizedField::of(&clause.condition).is_some()
    };
    let mut fields = query.clauses.iter().filter(is_field);
    let field_clause = fields.next()?;
    if fields.next().is_some() {
        return None;
    }
    let counts_table = crate::query_sql::field_day_counts_table(
        logbook_store_sql::TokenizedField::of(&field_clause.condition)?,
    );
    let range = logbook_store_sql::day_counts::created_range(
        query.clauses.iter().filter(|clause| !is_field(clause)),
    )?;
    Some((counts_table, &field_clause.condition, range))
}

/// The day counts table of a tokenized field, its clause's condition and a `created:` range
/// (`field_counted_by_days`).
type FieldCountedByDays<'query> = (
    &'static str,
    &'query logbook_core::query::Condition,
    (Option<i64>, Option<i64>),
);

/// Runs `counted`, a statement whose rows are a bucket's start and its count, in bucket order.
fn read_bucket_counts(
    connection: &Connection,
    counted: &CompiledQuery,
) -> Result<Vec<BucketCount>, StoreError> {
    connection
        .prepare_cached(&counted.sql)
        .map_err(database_error("preparing a timeline query"))?
        .query_map(
            rusqlite::params_from_iter(encoding::bound(&counted.parameters)),
            |row| {
                Ok(BucketCount {
                    start_micros: row.get(0)?,
                    events: row.get::<_, i64>(1)?.max(0) as u64,
                })
            },
        )
        .map_err(database_error("running a timeline query"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(database_error("reading a timeline"))
}

/// The timeline per day of the account's events whose action (actor, address) `condition`
/// matches, created in `[start, end)`: the whole days from `counts_table`
/// (`event_day_action_counts`, `event_day_actor_counts`, `event_day_ip_counts`), through the account's days in `event_day_counts` (its key leads
/// with the account) and each day's rows of the values (whose key leads with the day), one row
/// per day and value whatever the number of events; the part of a day at either bound of the
/// range counted over the events of that part, which the account's `created_at` index reads.
fn field_days_sql(
    account_row: i64,
    counts_table: &str,
    condition: &logbook_core::query::Condition,
    (start, end): (Option<i64>, Option<i64>),
) -> CompiledQuery {
    let days = logbook_store_sql::day_counts::DaysOfRange::of(start, end);
    let mut builder = logbook_store_sql::SqlBuilder::new('?');
    let account = builder.bind(SqlValue::Integer(account_row));
    let first_whole_day = builder.bind(SqlValue::Integer(days.first_whole_day));
    let end_of_whole_days = builder.bind(SqlValue::Integer(days.end_of_whole_days));
    let whole_days_condition =
        logbook_store_sql::tokenized_field_values_condition(&mut builder, condition);
    // A part that is empty (the range is open on that side, or starts or ends at midnight) is
    // left out of the statement.
    let mut part_of_day = |(part_start, part_end): (i64, i64)| {
        if part_start >= part_end {
            return String::new();
        }
        let day = builder.bind(SqlValue::Integer(
            logbook_store_sql::day_counts::day_start_of(part_start),
        ));
        let part_start = builder.bind(SqlValue::Integer(part_start));
        let part_end = builder.bind(SqlValue::Integer(part_end));
        let values = logbook_store_sql::tokenized_field_values_condition(&mut builder, condition);
        format!(
            " UNION ALL SELECT {day}, count(*) FROM events WHERE account_row = {account} \
             AND created_at >= {part_start} AND created_at < {part_end} AND ({values})"
        )
    };
    let leading = part_of_day(days.leading);
    let trailing = part_of_day(days.trailing);
    builder.push(&format!(
        "SELECT day_start, sum(events) FROM ( \
         SELECT days.day_start AS day_start, counts.events AS events FROM event_day_counts AS days \
         JOIN {counts_table} AS counts \
         ON counts.day_start = days.day_start AND counts.account_row = days.account_row \
         WHERE days.account_row = {account} AND days.day_start >= {first_whole_day} \
         AND days.day_start < {end_of_whole_days} AND ({whole_days_condition}){leading}{trailing}) \
         GROUP BY day_start HAVING sum(events) > 0 ORDER BY day_start"
    ));
    builder.finish()
}

/// `SELECT count(*)` of the `matching` events created in `[?N+1, ?N+2)`, where `N` is the number of
/// `matching`'s own parameters.
fn range_count_sql(matching: &CompiledQuery) -> String {
    let range_start = matching.parameters.len() + 1;
    format!(
        "SELECT count(*) FROM ({}) WHERE created_at >= ?{range_start} AND created_at < ?{}",
        matching.sql,
        range_start + 1
    )
}

/// Whether each bucket's count of `query` reads only that bucket's range of an index that ends
/// in `created_at`: no clause at all, a `created:` range, or row checks on the created index's
/// range (outcome, flags, a negated actor or action). A message term or a positive actor or action
/// (tokens since migrations 0028 and 0026) would repeat its full-text lookup per bucket, and a
/// prefix, an address range, a target or a location would rescan all its matches per bucket; those
/// are counted by the one `GROUP BY`.
fn counts_by_bucket_ranges(query: &Query) -> bool {
    use logbook_core::query::Condition;
    query.clauses.iter().all(|clause| match &clause.condition {
        Condition::Created(_) | Condition::Outcome(_) | Condition::Is(_) => true,
        Condition::Actor(_) | Condition::Action(_) => clause.negated,
        _ => false,
    })
}

/// The timeline counted one bucket's range at a time, or `None` when the matching events span
/// more than `MOST_BUCKETS_COUNTED_BY_RANGE` buckets.
fn count_over_time_by_ranges(
    connection: &Connection,
    account_row: i64,
    query: &Query,
    bucket: TimeBucket,
) -> Result<Option<Vec<BucketCount>>, StoreError> {
    let matching = crate::query_sql::compile_matching_created_at(account_row, query);
    let bound: Vec<encoding::Bound<'_>> = encoding::bound(&matching.parameters).collect();
    let parameters: Vec<&dyn rusqlite::ToSql> = bound
        .iter()
        .map(|value| value as &dyn rusqlite::ToSql)
        .collect();
    let instant = |order: &str| -> Result<Option<i64>, StoreError> {
        connection
            .prepare_cached(&format!(
                "SELECT created_at FROM ({}) ORDER BY created_at {order} LIMIT 1",
                matching.sql
            ))
            .map_err(database_error("preparing a timeline query"))?
            .query_row(parameters.as_slice(), |row| row.get(0))
            .optional()
            .map_err(database_error("running a timeline query"))
    };
    let (Some(first), Some(last)) = (instant("ASC")?, instant("DESC")?) else {
        return Ok(Some(Vec::new()));
    };
    let width = bucket.width_micros();
    let first_bucket = bucket.start_micros_of(first);
    if (last - first_bucket) / width >= MOST_BUCKETS_COUNTED_BY_RANGE {
        return Ok(None);
    }
    let mut count_in_range = connection
        .prepare_cached(&range_count_sql(&matching))
        .map_err(database_error("preparing a timeline query"))?;
    let mut counts = Vec::new();
    let mut start = first_bucket;
    while start <= last {
        let Some(end) = start.checked_add(width) else {
            break;
        };
        let events: i64 = count_in_range
            .query_row(
                rusqlite::params_from_iter(
                    parameters
                        .iter()
                        .copied()
                        .chain([&start as &dyn rusqlite::ToSql, &end]),
                ),
                |row| row.get(0),
            )
            .map_err(database_error("running a timeline query"))?;
        if events > 0 {
            counts.push(BucketCount {
                start_micros: start,
                events: events as u64,
            });
        }
        start = end;
    }
    Ok(Some(counts))
}

fn account_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, i64, i64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

fn to_account_record(
    (name, created_at, event_count): (String, i64, i64),
) -> Result<AccountRecord, StoreError> {
    Ok(AccountRecord {
        account: parse_stored_account(&name)?,
        created_at: micros_to_time(created_at),
        event_count: event_count as u64,
    })
}

fn parse_stored_account(name: &str) -> Result<AccountId, StoreError> {
    AccountId::parse(name).map_err(|_| StoreError::Database {
        context: "reading accounts",
        message: format!("stored account name {name:?} is not valid"),
    })
}

impl StoreInner {
    /// Runs `work` on a pooled read-only connection on the blocking thread pool.
    async fn read<T, F>(self: &Arc<Self>, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.read_owned(move |connection| {
            let result = work(&connection);
            (connection, result)
        })
        .await
    }

    /// Runs `work` on the admin (accounts and keys) connection on the blocking thread pool.
    /// Runs `work` on the writer's thread and connection, between two group commits
    /// (`writer::WriterJob`): for writes that come in repeated batches, which on the admin
    /// connection would race the writer for SQLite's write lock.
    async fn on_writer<T, F>(self: &Arc<Self>, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: crate::writer::WriterJob = Box::new(move |connection| {
            let _ = reply.send(connection.and_then(work));
        });
        self.send_to_writer(WriterWork::Job(job), answer).await
    }

    /// Queues `work` for the writer thread and waits for its answer.
    async fn send_to_writer<T>(
        &self,
        work: WriterWork,
        answer: oneshot::Receiver<Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        {
            let inbox = self
                .writer_inbox
                .lock()
                .expect("writer inbox lock poisoned");
            let Some(inbox) = inbox.as_ref() else {
                return Err(StoreError::Unavailable("the store is shutting down".into()));
            };
            inbox
                .send(work)
                .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        }
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the writer stopped before answering".into()))?
    }

    async fn administer<T, F>(self: &Arc<Self>, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.administer_owned(move |mut connection| {
            let result = work(&mut connection);
            (connection, result)
        })
        .await
    }

    /// `read`, handing `work` the connection itself (it hands it back), for work that must own
    /// it (`shared_sql`).
    async fn read_owned<T, F>(self: &Arc<Self>, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Connection) -> (Connection, Result<T, StoreError>) + Send + 'static,
    {
        let permit = self
            .reader_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("the store is closed".into()))?;
        let inner = self.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner
                .readers
                .lock()
                .expect("reader pool lock poisoned")
                .pop();
            let connection = match pooled {
                Some(connection) => connection,
                None => open_connection(&inner.database_path, true, &inner.options)?,
            };
            let (connection, result) = work(connection);
            inner
                .readers
                .lock()
                .expect("reader pool lock poisoned")
                .push(connection);
            drop(permit);
            result
        })
        .await
        .map_err(|error| StoreError::Database {
            context: "running a read",
            message: error.to_string(),
        })?
    }

    /// `administer`, handing `work` the connection itself (it hands it back), for work that must
    /// own it (`shared_sql`). A connection lost to a panic is reopened by the next caller.
    async fn administer_owned<T, F>(self: &Arc<Self>, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Connection) -> (Connection, Result<T, StoreError>) + Send + 'static,
    {
        let inner = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut admin = inner.admin.lock().expect("admin connection lock poisoned");
            let connection = match admin.take() {
                Some(connection) => connection,
                None => open_connection(&inner.database_path, false, &inner.options)?,
            };
            let (connection, result) = work(connection);
            *admin = Some(connection);
            result
        })
        .await
        .map_err(|error| StoreError::Database {
            context: "running a change",
            message: error.to_string(),
        })?
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend_name(&self) -> &'static str {
        "sqlite"
    }

    fn log_tree(&self) -> Option<&dyn logbook_core::store::LogTree> {
        Some(self)
    }

    fn people(&self) -> &dyn logbook_core::store::PeopleStore {
        &self.shared
    }

    fn account_limits(&self) -> &dyn logbook_core::store::AccountLimitStore {
        &self.shared
    }

    fn unfamiliar_ips(&self) -> &dyn logbook_core::store::UnfamiliarIpStore {
        &self.shared
    }

    fn locations(&self) -> &dyn logbook_core::store::LocationStore {
        self
    }

    fn single_sign_on(&self) -> &dyn logbook_core::store::SingleSignOnStore {
        &self.shared
    }

    fn alerting(&self) -> &dyn logbook_core::store::AlertingStore {
        &self.shared
    }

    fn retention(&self) -> &dyn logbook_core::store::RetentionStore {
        self
    }

    fn attention(&self) -> &dyn logbook_core::store::AttentionStore {
        &self.shared
    }

    fn accounts(&self) -> &dyn logbook_core::store::AccountSettingsStore {
        &self.shared
    }

    fn viewer_sessions(&self) -> &dyn logbook_core::store::ViewerSessionStore {
        &self.shared
    }

    async fn create_account(
        &self,
        account: &AccountId,
        now: OffsetDateTime,
    ) -> Result<AccountRecord, StoreError> {
        let account = account.clone();
        self.inner
            .administer(move |connection| {
                let inserted = connection
                    .execute(
                        "INSERT INTO accounts (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
                        params![account.as_str(), unix_micros_of(now)],
                    )
                    .map_err(database_error("creating an account"))?;
                if inserted == 0 {
                    return Err(StoreError::AccountAlreadyExists(account));
                }
                Ok(AccountRecord { account, created_at: micros_to_time(unix_micros_of(now)), event_count: 0 })
            })
            .await
    }

    async fn list_accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        self.inner
            .read(|connection| {
                // `seq` is dense from 0, so the highest seq + 1 is the event count (a seek to the
                // end of the account's rowid range, where count(*) would read every event).
                let mut statement = connection
                    .prepare_cached(
                        "SELECT a.name, a.created_at, coalesce((SELECT e.event_row - (a.account_row << 40) + 1 FROM events e \
                         WHERE e.event_row >= (a.account_row << 40) AND e.event_row < ((a.account_row + 1) << 40) \
                         ORDER BY e.event_row DESC LIMIT 1), 0) \
                         FROM accounts a ORDER BY a.name",
                    )
                    .map_err(database_error("listing accounts"))?;
                let rows = statement
                    .query_map([], account_record)
                    .map_err(database_error("listing accounts"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(database_error("listing accounts"))?;
                rows.into_iter().map(to_account_record).collect()
            })
            .await
    }

    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKeyRecord, StoreError> {
        self.shared.create_api_key(key).await
    }

    async fn list_api_keys(
        &self,
        account: Option<&AccountId>,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.shared.list_api_keys(account).await
    }

    async fn revoke_api_key(
        &self,
        key_id: &ApiKeyId,
        now: OffsetDateTime,
    ) -> Result<ApiKeyRecord, StoreError> {
        self.shared.revoke_api_key(key_id, now).await
    }

    async fn record_api_key_use(
        &self,
        uses: &[(ApiKeyId, OffsetDateTime)],
    ) -> Result<(), StoreError> {
        self.shared.record_api_key_use(uses).await
    }

    async fn api_key_hash(&self, key_id: &ApiKeyId) -> Result<Option<[u8; 32]>, StoreError> {
        self.shared.api_key_hash(key_id).await
    }

    async fn find_api_key_by_hash(
        &self,
        key_hash: &[u8; 32],
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.shared.find_api_key_by_hash(key_hash).await
    }

    async fn append_events(&self, events: Vec<NewEvent>) -> Result<Vec<AppendOutcome>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(failure) = self.inner.writer_health.failure() {
            return Err(StoreError::Unavailable(failure));
        }
        // Bodies, fingerprints and column values are computed here, on the caller's task, so the
        // single writer does nothing but SQL.
        // The IP databases are asked here too, so the writer only stores each location.
        let locator = self.inner.options.ip_locator.as_ref();
        let events: Vec<PreparedEvent> = events
            .into_iter()
            .map(|event| PreparedEvent::new(event, locator))
            .collect();
        let (reply, answer) = oneshot::channel();
        self.inner
            .send_to_writer(WriterWork::Append(AppendRequest { events, reply }), answer)
            .await
    }

    async fn query_events(
        &self,
        account: &AccountId,
        query: &EventQuery,
    ) -> Result<EventPage, StoreError> {
        let account = account.clone();
        let query = query.clone();
        let limit = query.limit.clamp(1, 1000);
        let budget = self.inner.options.query_time_budget;
        let (page, read) = self
            .inner
            .read(move |connection| {
                query_budget::within_budget(connection, budget, |connection| {
                    read_page(connection, &account, &query.query, limit, query.after)
                })
            })
            .await?;
        read.record();
        Ok(page)
    }

    async fn count_events_over_time(
        &self,
        account: &AccountId,
        query: &Query,
        bucket: TimeBucket,
    ) -> Result<Vec<BucketCount>, StoreError> {
        // A whole log or a `created:` range: per day, one row per day with events.
        if let Some(counts) = self
            .shared
            .count_over_time_by_days(account, query, bucket)
            .await?
        {
            return Ok(counts);
        }
        let account = account.clone();
        let query = query.clone();
        let budget = self.inner.options.query_time_budget;
        self.inner
            .read(move |connection| {
                query_budget::within_budget(connection, budget, |connection| {
                    count_over_time(connection, &account, &query, bucket)
                })
            })
            .await
    }

    async fn get_event(
        &self,
        account: &AccountId,
        event_id: &EventId,
    ) -> Result<Option<EventRow>, StoreError> {
        let account = account.clone();
        let id_value = event_id_value(event_id.as_str());
        self.inner
            .read(move |connection| {
                connection
                    .prepare_cached(&format!(
                        "SELECT {EVENT_COLUMNS} FROM events WHERE id = ?2 AND account_row = (SELECT account_row FROM accounts WHERE name = ?1)"
                    ))
                    .map_err(database_error("reading an event"))?
                    .query_row(params![account.as_str(), id_value], row_to_event)
                    .optional()
                    .map_err(database_error("reading an event"))
            })
            .await
    }

    fn export_events(
        &self,
        account: &AccountId,
        query: Query,
    ) -> BoxStream<'static, Result<EventRow, StoreError>> {
        let inner = self.inner.clone();
        let account = account.clone();
        logbook_store_sql::export::export_pages(move |after| {
            let inner = inner.clone();
            let account = account.clone();
            let query = query.clone();
            async move {
                inner
                    .read(move |connection| {
                        read_page(connection, &account, &query, EXPORT_PAGE_SIZE, after)
                            .map(|(page, _)| page)
                    })
                    .await
            }
        })
    }

    async fn next_seq(&self, account: &AccountId) -> Result<u64, StoreError> {
        let account = account.clone();
        self.inner
            .read(move |connection| {
                let Some(account_row) = account_row(connection, &account)? else {
                    return Ok(0);
                };
                let first = first_event_row_of(account_row);
                let last: Option<i64> = connection
                    .prepare_cached(
                        "SELECT event_row FROM events WHERE event_row >= ?1 AND event_row < ?2 ORDER BY event_row DESC LIMIT 1",
                    )
                    .map_err(database_error("reading the next seq"))?
                    .query_row(params![first, first + (1_i64 << SEQ_BITS)], |row| row.get(0))
                    .optional()
                    .map_err(database_error("reading the next seq"))?;
                Ok(last.map_or(0, |last| (last - first) as u64 + 1))
            })
            .await
    }

    async fn events_since(
        &self,
        account: &AccountId,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<EventRow>, StoreError> {
        let account = account.clone();
        self.inner
            .read(move |connection| {
                let Some(account_row) = account_row(connection, &account)? else {
                    return Ok(Vec::new());
                };
                // The account's events from `from_seq` on are one contiguous rowid range.
                let first = first_event_row_of(account_row);
                let end = first + (1_i64 << SEQ_BITS);
                let from = event_row_of(account_row, from_seq.min((1 << SEQ_BITS) - 1));
                let mut statement = connection
                    .prepare_cached(&format!(
                        "SELECT {EVENT_COLUMNS} FROM events WHERE event_row >= ?1 AND event_row < ?2 ORDER BY event_row LIMIT ?3"
                    ))
                    .map_err(database_error("reading new events"))?;
                statement
                    .query_map(params![from, end, limit], row_to_event)
                    .map_err(database_error("reading new events"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(database_error("reading new events"))
            })
            .await
    }

    async fn backup(&self, destination: &Path) -> Result<(), StoreError> {
        let destination = destination.to_owned();
        if destination.exists() {
            return Err(StoreError::Database {
                context: "backing up",
                message: format!(
                    "{} already exists; choose a new file",
                    destination.display()
                ),
            });
        }
        let Some(destination_text) = destination.to_str().map(str::to_owned) else {
            return Err(StoreError::Database {
                context: "backing up",
                message: "the destination path is not UTF-8".into(),
            });
        };
        // VACUUM INTO reads one consistent snapshot of the live WAL database and writes a compact
        // copy, without blocking the writer.
        self.inner
            .read(move |connection| {
                connection
                    .execute("VACUUM INTO ?1", [destination_text])
                    .map_err(database_error("backing up"))?;
                Ok(())
            })
            .await
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        if let Some(failure) = self.inner.writer_health.failure() {
            return Err(StoreError::Unavailable(failure));
        }
        if self
            .inner
            .writer_inbox
            .lock()
            .expect("writer inbox lock poisoned")
            .is_none()
        {
            return Err(StoreError::Unavailable("the store is shutting down".into()));
        }
        self.inner
            .read(|connection| {
                connection
                    .query_row("SELECT 1", [], |_| Ok(()))
                    .map_err(database_error("checking readiness"))
            })
            .await
    }

    async fn shutdown(&self) {
        // Dropping the sender lets the writer finish everything already queued, then stop.
        drop(
            self.inner
                .writer_inbox
                .lock()
                .expect("writer inbox lock poisoned")
                .take(),
        );
        let writer_thread = self
            .inner
            .writer_thread
            .lock()
            .expect("writer thread lock poisoned")
            .take();
        if let Some(writer_thread) = writer_thread {
            let joined = tokio::task::spawn_blocking(move || writer_thread.join()).await;
            if !matches!(joined, Ok(Ok(()))) {
                tracing::error!("the SQLite writer thread ended abnormally");
            }
        }
    }
}

/// `logbook geoip backfill`'s batches, in the shared SQL (`logbook_store_sql`).
#[async_trait::async_trait]
impl logbook_core::store::LocationStore for SqliteStore {
    async fn locate_stored_events(
        &self,
        account: &AccountId,
        max_events: u32,
        locator: logbook_core::location::SharedIpLocator,
        from_start: bool,
    ) -> Result<logbook_core::location::LocationBackfillBatch, StoreError> {
        self.shared
            .locate_stored_events(
                account,
                max_events,
                locator,
                from_start,
                logbook_store_sql::personal_data::EventKeys {
                    column: "event_row",
                    key_of_first_event: crate::encoding::first_event_row_of,
                },
            )
            .await
    }
}
