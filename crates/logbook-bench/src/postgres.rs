//! The harness's PostgreSQL mode (`--database postgres://...`): the same workload, loaded over
//! HTTP into an in-process server on `PostgresStore`, the same queries and exports, and in the same
//! run a raw COPY baseline (binary COPY, 1000 events per transaction, one connection, no
//! idempotency, `seq` or tree bookkeeping) into a second database whose tables and indexes are the
//! store's own migrations except the full-text index: issue 4's target is "0.55x of raw COPY
//! without full-text", so the baseline neither maintains `events_message_tokens` nor sends tokens.
//! Both databases are created fresh on the given server and dropped at the end, so figures are
//! ratios measured on the same machine at the same moment.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use logbook_core::api_key::{KeyOwner, Scopes};
use logbook_core::event::Outcome;
use logbook_core::{AccountId, Clock, Store, SystemClock};
use logbook_server::AppState;
use logbook_store_postgres::scratch_database::url_with_database;
use logbook_store_postgres::{MessageTokens, PostgresOptions, PostgresStore};
use rand::Rng;
use time::OffsetDateTime;
use tokio_postgres::NoTls;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;

use crate::http_load::{self, ExportFigures, IngestFigures, QueryFigures};
use crate::server::create_key;
use crate::workload::{
    COMMON_ACTION, COMMON_WORDS, RARE_ACTION, RARE_WORD, Workload, WorkloadShape,
};
use crate::{Arguments, BASELINE_EVENTS_PER_TRANSACTION, BATCH_SIZE, Plan, SINGLE_EVENT_PRODUCERS};

/// The issue's ingest target: batched ingest at least this fraction of raw COPY.
const INGEST_RATIO_TARGET: f64 = 0.55;
/// Issue 17's target: batched ingest at least this fraction of the hand-written table's COPY.
const HAND_WRITTEN_RATIO_TARGET: f64 = 0.5;
const NEWEST_50_P99_TARGET_MICROS: u64 = 1_000;
const SELECTIVE_P99_TARGET_MICROS: u64 = 5_000;
const EXPORT_TARGET_EVENTS_PER_SECOND: f64 = 500_000.0;

/// A database created for this run on the operator's server, dropped (forcefully, best effort)
/// when this value is dropped, so an interrupted run leaves nothing behind either.
pub(crate) struct ScratchDatabase {
    server_url: String,
    name: String,
    pub(crate) url: String,
}

impl ScratchDatabase {
    pub(crate) async fn create(server_url: &str, purpose: &str) -> anyhow::Result<Self> {
        let (client, connection) = tokio_postgres::connect(server_url, NoTls)
            .await
            .context("connecting to the PostgreSQL server given by --database")?;
        tokio::spawn(connection);
        let name = format!(
            "logbook_bench_{purpose}_{:016x}",
            rand::rng().random::<u64>()
        );
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("creating the scratch database {name}"))?;
        Ok(Self {
            server_url: server_url.to_owned(),
            url: url_with_database(server_url, &name),
            name,
        })
    }

    async fn size_in_bytes(&self) -> anyhow::Result<u64> {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls).await?;
        tokio::spawn(connection);
        let row = client
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await?;
        Ok(row.get::<_, i64>(0) as u64)
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let server_url = self.server_url.clone();
        let name = self.name.clone();
        // Dropping happens inside the runtime; a thread with a small runtime of its own can block.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let (client, connection) =
                    tokio_postgres::connect(&server_url, NoTls).await.ok()?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop the scratch database {}", self.name);
        }
    }
}

/// One event as the store's writer COPYs it, computed before the baseline's clock starts.
struct CopyRow {
    account: AccountId,
    created_at_micros: i64,
    id: String,
    action: String,
    actor_id: Option<String>,
    ip: Option<[u8; 16]>,
    outcome: Option<i16>,
    idempotency_key: Option<String>,
    fingerprint: [u8; 32],
    body: String,
    target_ids: Vec<String>,
}

fn prepare_copy_rows(
    workload: &Workload,
    range: std::ops::Range<usize>,
    received_at: OffsetDateTime,
) -> Vec<CopyRow> {
    range
        .map(|index| {
            let event = workload
                .event(index)
                .into_new_event(uuid::Uuid::now_v7().to_string(), received_at);
            CopyRow {
                created_at_micros: event.created_at_micros(),
                fingerprint: event.content_fingerprint(),
                body: event.body_without_seq(),
                actor_id: event.actor.as_ref().map(|actor| actor.id.clone()),
                ip: event.ip.map(|ip| match ip {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
                    IpAddr::V6(v6) => v6.octets(),
                }),
                outcome: event.outcome.map(|outcome| match outcome {
                    Outcome::Success => 0,
                    Outcome::Failure => 1,
                }),
                target_ids: event
                    .targets
                    .iter()
                    .map(|target| target.id.clone())
                    .collect(),
                id: event.id.to_string(),
                account: event.account,
                action: event.action,
                idempotency_key: event.key,
            }
        })
        .collect()
}

const EVENT_COPY_TYPES: [Type; 12] = [
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
];

struct CopyBaselineFigures {
    event_count: usize,
    elapsed: Duration,
    bytes_per_event: f64,
}

impl CopyBaselineFigures {
    fn events_per_second(&self) -> f64 {
        self.event_count as f64 / self.elapsed.as_secs_f64()
    }
}

/// The raw COPY baseline: a fresh database migrated by the store itself (same tables, indexes
/// and row-level security) without its full-text index, every account created, then the rows
/// COPYed as the superuser-like connecting role, `BASELINE_EVENTS_PER_TRANSACTION` per
/// transaction, each with an empty token list (the column is NOT NULL).
async fn copy_baseline(
    server_url: &str,
    workload: &Workload,
    rows: &[CopyRow],
) -> anyhow::Result<CopyBaselineFigures> {
    let database = ScratchDatabase::create(server_url, "copy").await?;
    let store = PostgresStore::connect(&database.url, PostgresOptions::default())
        .await
        .context("migrating the baseline database")?;
    let clock = SystemClock;
    for account in workload.accounts() {
        store.create_account(account, clock.now()).await?;
    }
    store.shutdown().await;
    drop(store);

    let (mut client, connection) = tokio_postgres::connect(&database.url, NoTls).await?;
    tokio::spawn(connection);
    let account_rows: HashMap<AccountId, i64> = client
        .query("SELECT name, account_row FROM accounts", &[])
        .await?
        .iter()
        .map(|row| {
            let name: String = row.get(0);
            Ok((AccountId::parse(&name)?, row.get(1)))
        })
        .collect::<anyhow::Result<_>>()?;
    client
        .batch_execute("DROP INDEX events_message_tokens")
        .await
        .context("dropping the baseline's full-text index")?;
    let no_tokens = MessageTokens::of_message("");
    let mut next_seqs: HashMap<i64, i64> = HashMap::new();
    let mut targets: Vec<(i64, &str, i64)> = Vec::new();
    let started = Instant::now();
    for chunk in rows.chunks(BASELINE_EVENTS_PER_TRANSACTION) {
        let transaction = client.transaction().await?;
        let sink = transaction
            .copy_in("COPY events (account_row, seq, created_at, id, action, actor_id, ip, outcome, idempotency_key, fingerprint, message_tokens, body) FROM STDIN (FORMAT binary)")
            .await?;
        let mut writer = pin!(BinaryCopyInWriter::new(sink, &EVENT_COPY_TYPES));
        targets.clear();
        for row in chunk {
            let account_row = account_rows[&row.account];
            let next_seq = next_seqs.entry(account_row).or_insert(0);
            let seq = *next_seq;
            *next_seq += 1;
            writer
                .as_mut()
                .write(&[
                    &account_row,
                    &seq,
                    &row.created_at_micros,
                    &row.id,
                    &row.action,
                    &row.actor_id,
                    &row.ip.as_ref().map(|ip| ip.as_slice()),
                    &row.outcome,
                    &row.idempotency_key,
                    &row.fingerprint.as_slice(),
                    &no_tokens,
                    &row.body,
                ])
                .await?;
            for target_id in &row.target_ids {
                targets.push((account_row, target_id.as_str(), seq));
            }
        }
        writer.as_mut().finish().await?;
        targets.sort_unstable();
        targets.dedup();
        let sink = transaction
            .copy_in("COPY event_targets (account_row, target_id, seq) FROM STDIN (FORMAT binary)")
            .await?;
        let mut writer = pin!(BinaryCopyInWriter::new(
            sink,
            &[Type::INT8, Type::TEXT, Type::INT8]
        ));
        for (account_row, target_id, seq) in &targets {
            writer
                .as_mut()
                .write(&[account_row, target_id, seq])
                .await?;
        }
        writer.as_mut().finish().await?;
        transaction.commit().await?;
    }
    let elapsed = started.elapsed();
    drop(client);
    let bytes = database.size_in_bytes().await?;
    Ok(CopyBaselineFigures {
        event_count: rows.len(),
        elapsed,
        bytes_per_event: bytes as f64 / rows.len() as f64,
    })
}

/// Escapes `text` for a field of COPY's text format: backslash, tab, newline and carriage return.
fn push_copy_text(line: &mut String, text: &str) {
    for character in text.chars() {
        match character {
            '\\' => line.push_str("\\\\"),
            '\t' => line.push_str("\\t"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            other => line.push(other),
        }
    }
}

fn push_copy_field(line: &mut String, value: Option<&str>) {
    if !line.is_empty() {
        line.push('\t');
    }
    match value {
        Some(text) => push_copy_text(line, text),
        None => line.push_str("\\N"),
    }
}

/// Baseline (c) on PostgreSQL, "the table you would write by hand" (issue 17): one plain table
/// with the event's columns plus its JSON (`jsonb`), one `(account, created_at)` index, a GIN
/// index over `to_tsvector('simple', message)`, loaded with COPY (text format, the lines built
/// before the clock starts), `BASELINE_EVENTS_PER_TRANSACTION` per transaction. No idempotency,
/// `seq`, tree or history: none of Logbook's promises.
async fn hand_written_copy_baseline(
    server_url: &str,
    workload: &Workload,
    range: std::ops::Range<usize>,
) -> anyhow::Result<CopyBaselineFigures> {
    let received_at = SystemClock.now();
    let lines: Vec<String> = range
        .map(|index| {
            let event = workload
                .event(index)
                .into_new_event(uuid::Uuid::now_v7().to_string(), received_at);
            let created_at = event
                .created_at
                .format(&time::format_description::well_known::Rfc3339)
                .expect("generated times format");
            let mut line = String::with_capacity(1024);
            push_copy_field(&mut line, Some(event.id.as_str()));
            push_copy_field(&mut line, Some(event.account.as_str()));
            push_copy_field(&mut line, Some(&created_at));
            push_copy_field(&mut line, Some(&event.action));
            push_copy_field(
                &mut line,
                event.actor.as_ref().map(|actor| actor.id.as_str()),
            );
            push_copy_field(&mut line, event.ip.map(|ip| ip.to_string()).as_deref());
            push_copy_field(&mut line, event.outcome.map(|outcome| outcome.as_str()));
            push_copy_field(&mut line, event.key.as_deref());
            push_copy_field(&mut line, Some(&event.message));
            push_copy_field(&mut line, Some(&event.body_without_seq()));
            line.push('\n');
            line
        })
        .collect();
    let database = ScratchDatabase::create(server_url, "hand").await?;
    let (mut client, connection) = tokio_postgres::connect(&database.url, NoTls).await?;
    tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE TABLE events (
                row_id bigserial PRIMARY KEY,
                id text NOT NULL,
                account text NOT NULL,
                created_at timestamptz NOT NULL,
                action text NOT NULL,
                actor_id text,
                ip inet,
                outcome text,
                idempotency_key text,
                message text NOT NULL,
                body jsonb NOT NULL
            );
            CREATE INDEX events_by_account_created ON events (account, created_at);
            CREATE INDEX events_message_text ON events USING gin (to_tsvector('simple', message));",
        )
        .await
        .context("creating the hand-written table")?;
    let started = Instant::now();
    for chunk in lines.chunks(BASELINE_EVENTS_PER_TRANSACTION) {
        let transaction = client.transaction().await?;
        let sink = transaction
            .copy_in("COPY events (id, account, created_at, action, actor_id, ip, outcome, idempotency_key, message, body) FROM STDIN")
            .await?;
        let mut sink = pin!(sink);
        let mut buffer = bytes::BytesMut::with_capacity(chunk.iter().map(String::len).sum());
        for line in chunk {
            buffer.extend_from_slice(line.as_bytes());
        }
        futures::SinkExt::send(&mut sink, buffer.freeze()).await?;
        sink.as_mut().finish().await?;
        transaction.commit().await?;
    }
    let elapsed = started.elapsed();
    drop(client);
    let bytes = database.size_in_bytes().await?;
    Ok(CopyBaselineFigures {
        event_count: lines.len(),
        elapsed,
        bytes_per_event: bytes as f64 / lines.len() as f64,
    })
}

async fn run_hand_written_baseline(
    server_url: &str,
    workload: &Workload,
    plan: &Plan,
    label: &str,
) -> anyhow::Result<CopyBaselineFigures> {
    let figures =
        hand_written_copy_baseline(server_url, workload, 0..plan.baseline_batched_count).await?;
    println!(
        "baseline (c) the table you would write by hand (COPY, GIN full text), {BASELINE_EVENTS_PER_TRANSACTION} events per transaction, {label}: {} events, {:.0} events/s, {:.0} B/event on disk",
        figures.event_count,
        figures.events_per_second(),
        figures.bytes_per_event
    );
    Ok(figures)
}

async fn run_copy_baseline(
    server_url: &str,
    workload: &Workload,
    plan: &Plan,
    label: &str,
) -> anyhow::Result<CopyBaselineFigures> {
    let rows = prepare_copy_rows(workload, 0..plan.baseline_batched_count, SystemClock.now());
    let figures = copy_baseline(server_url, workload, &rows).await?;
    println!(
        "baseline raw binary COPY without full-text, {BASELINE_EVENTS_PER_TRANSACTION} events per transaction, {label}: {} events, {:.0} events/s, {:.0} B/event on disk",
        figures.event_count,
        figures.events_per_second(),
        figures.bytes_per_event
    );
    Ok(figures)
}

async fn median_export(
    client: &reqwest::Client,
    base_url: &str,
    read_key: &str,
    format: &str,
    run_count: usize,
) -> anyhow::Result<ExportFigures> {
    let mut runs = Vec::with_capacity(run_count.max(1));
    for _ in 0..run_count.max(1) {
        runs.push(http_load::time_export(client, base_url, read_key, format).await?);
    }
    runs.sort_by_key(|figures| figures.elapsed);
    Ok(runs.swap_remove(runs.len() / 2))
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

pub async fn run(arguments: Arguments, plan: Plan, server_url: String) -> anyhow::Result<()> {
    let clock = Arc::new(SystemClock);
    let machine = crate::report::describe_machine();
    println!("logbook-bench (PostgreSQL) on {machine}");
    println!(
        "plan: {} events over {} accounts (seed {}), {} batched in {}s over {} connections, {} single from {} producers; raw COPY baseline on {} events",
        plan.event_count,
        arguments.accounts,
        arguments.seed,
        plan.event_count - plan.single_event_count,
        BATCH_SIZE,
        arguments.batch_connections,
        plan.single_event_count,
        SINGLE_EVENT_PRODUCERS,
        plan.baseline_batched_count
    );
    let workload = Workload::generate(
        WorkloadShape {
            event_count: plan.event_count,
            account_count: arguments.accounts,
            seed: arguments.seed,
            zipf_exponent: 1.1,
        },
        clock.now(),
    );
    let batched_event_count = plan.event_count - plan.single_event_count;
    let (batch_bodies, single_bodies, _) = crate::serialize_bodies(&workload, batched_event_count);
    let (largest_account, largest_account_events) = workload.largest_account();
    println!("largest account {largest_account} holds {largest_account_events} events");

    // As in SQLite mode, the baseline runs before and after Logbook's load and the faster run
    // counts: it is the stricter comparison on a shared machine.
    let baseline_before = run_copy_baseline(&server_url, &workload, &plan, "before").await?;
    let hand_written_before =
        run_hand_written_baseline(&server_url, &workload, &plan, "before").await?;

    let database = ScratchDatabase::create(&server_url, "store").await?;
    let postgres_store = Arc::new(
        PostgresStore::connect(&database.url, PostgresOptions::default())
            .await
            .context("opening the PostgreSQL store")?,
    );
    let store: Arc<dyn Store> = postgres_store.clone();
    for account in workload.accounts() {
        store.create_account(account, clock.now()).await?;
    }
    let ingest_key = create_key(
        &*store,
        KeyOwner::Platform,
        Scopes {
            ingest: true,
            read: false,
            admin: false,
        },
        &*clock,
    )
    .await?;
    let read_key = create_key(
        &*store,
        KeyOwner::Account(largest_account.clone()),
        Scopes {
            ingest: false,
            read: true,
            admin: false,
        },
        &*clock,
    )
    .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let state = AppState::new(
        store,
        clock.clone(),
        crate::server::throughput_run_settings(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(logbook_server::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    println!("server on PostgresStore listening on {base_url}");

    let client = http_load::http_client()?;
    let batched = http_load::ingest(
        &client,
        &base_url,
        &ingest_key,
        Arc::new(batch_bodies),
        arguments.batch_connections,
    )
    .await?;
    println!(
        "ingest, batches of {BATCH_SIZE}: {} events in {:.1}s = {:.0} events/s",
        batched.event_count,
        batched.elapsed.as_secs_f64(),
        batched.events_per_second()
    );
    let single = http_load::ingest(
        &client,
        &base_url,
        &ingest_key,
        Arc::new(single_bodies),
        SINGLE_EVENT_PRODUCERS,
    )
    .await?;
    println!(
        "ingest, one event per request: {} events in {:.1}s = {:.0} events/s",
        single.event_count,
        single.elapsed.as_secs_f64(),
        single.events_per_second()
    );

    // PostgreSQL's statistics lag a bulk load; an operator's autovacuum would analyze soon after,
    // and the store pins its query shapes so plans do not depend on them much. Analyzing here
    // makes the run repeatable rather than dependent on autovacuum's timing.
    {
        let (analyze_client, connection) = tokio_postgres::connect(&database.url, NoTls).await?;
        tokio::spawn(connection);
        analyze_client.batch_execute("ANALYZE").await?;
    }
    let catch_up =
        crate::server::wait_for_attention_worker(&*postgres_store, crate::ATTENTION_CATCH_UP_LIMIT)
            .await?;
    println!(
        "attention worker caught up {:.1}s after the last ingest phase",
        catch_up.as_secs_f64()
    );

    let (actor_id, ip) = workload.sample_actor_and_ip(&largest_account);
    let query_cases = [
        (
            "newest 50",
            String::new(),
            Some(NEWEST_50_P99_TARGET_MICROS),
        ),
        ("actor filter", format!("actor:{actor_id}"), None),
        ("common action", COMMON_ACTION.to_owned(), None),
        ("rare action", RARE_ACTION.to_owned(), None),
        (
            "ip filter",
            format!("ip:{ip}"),
            Some(SELECTIVE_P99_TARGET_MICROS),
        ),
        (
            "target filter",
            format!("target:{}", workload.sample_server_target(&largest_account)),
            None,
        ),
        (
            "rare word",
            RARE_WORD.to_owned(),
            Some(SELECTIVE_P99_TARGET_MICROS),
        ),
        ("two common words", COMMON_WORDS.to_owned(), None),
    ];
    let mut queries: Vec<(&str, String, Option<u64>, QueryFigures)> = Vec::new();
    for (name, query_text, target) in query_cases {
        let figures = http_load::time_query(
            &client,
            &base_url,
            &read_key,
            &query_text,
            arguments.query_runs,
        )
        .await?;
        println!(
            "query {name} ({query_text:?}): {} events, p50 {} µs, p99 {} µs over {} runs",
            figures.events_returned,
            figures.latency.value_at_quantile(0.5),
            figures.latency.value_at_quantile(0.99),
            figures.latency.len()
        );
        queries.push((name, query_text, target, figures));
    }
    let export_ndjson = median_export(
        &client,
        &base_url,
        &read_key,
        "ndjson",
        arguments.export_runs,
    )
    .await?;
    let export_csv =
        median_export(&client, &base_url, &read_key, "csv", arguments.export_runs).await?;
    for (format, figures) in [("NDJSON", &export_ndjson), ("CSV", &export_csv)] {
        println!(
            "export {format}: {} events, {:.1} MB in {:.2}s = {:.0} events/s",
            figures.event_count,
            figures.byte_count as f64 / 1e6,
            figures.elapsed.as_secs_f64(),
            figures.events_per_second()
        );
    }

    let _ = stop.send(());
    serving
        .await
        .context("the server task panicked")?
        .context("serving")?;
    postgres_store.shutdown().await;
    drop(postgres_store);
    let stored_event_count = batched.event_count + single.event_count;
    let store_bytes = database.size_in_bytes().await?;
    drop(database);

    let baseline_after = run_copy_baseline(&server_url, &workload, &plan, "after").await?;
    let baseline = if baseline_before.events_per_second() >= baseline_after.events_per_second() {
        baseline_before
    } else {
        baseline_after
    };
    let hand_written_after =
        run_hand_written_baseline(&server_url, &workload, &plan, "after").await?;
    let hand_written =
        if hand_written_before.events_per_second() >= hand_written_after.events_per_second() {
            hand_written_before
        } else {
            hand_written_after
        };

    print_summary(&Summary {
        machine,
        batched: &batched,
        single: &single,
        baseline: &baseline,
        hand_written: &hand_written,
        store_bytes_per_event: store_bytes as f64 / stored_event_count as f64,
        largest_account: largest_account.as_str(),
        largest_account_events,
        queries: &queries,
        export_ndjson: &export_ndjson,
        export_csv: &export_csv,
    });
    Ok(())
}

struct Summary<'a> {
    machine: String,
    batched: &'a IngestFigures,
    single: &'a IngestFigures,
    baseline: &'a CopyBaselineFigures,
    /// Baseline (c): the hand-written plain table with GIN full text, loaded with COPY.
    hand_written: &'a CopyBaselineFigures,
    store_bytes_per_event: f64,
    largest_account: &'a str,
    largest_account_events: usize,
    queries: &'a [(&'a str, String, Option<u64>, QueryFigures)],
    export_ndjson: &'a ExportFigures,
    export_csv: &'a ExportFigures,
}

fn print_summary(summary: &Summary<'_>) {
    let ingest_ratio = crate::ratio(
        summary.batched.events_per_second(),
        summary.baseline.events_per_second(),
    );
    println!();
    println!("== summary (PostgreSQL) on {}", summary.machine);
    println!(
        "raw COPY baseline without full-text ({BASELINE_EVENTS_PER_TRANSACTION}/transaction, faster of two runs): {:.0} events/s, {:.0} B/event in the database",
        summary.baseline.events_per_second(),
        summary.baseline.bytes_per_event
    );
    println!(
        "batched ingest over HTTP: {:.0} events/s = {ingest_ratio:.2}x raw COPY (target >= {INGEST_RATIO_TARGET:.2}x: {})",
        summary.batched.events_per_second(),
        verdict(ingest_ratio >= INGEST_RATIO_TARGET)
    );
    let hand_written_ratio = crate::ratio(
        summary.batched.events_per_second(),
        summary.hand_written.events_per_second(),
    );
    println!(
        "baseline (c), the hand-written table with GIN full text, COPY ({BASELINE_EVENTS_PER_TRANSACTION}/transaction, faster of two runs): {:.0} events/s, {:.0} B/event in the database",
        summary.hand_written.events_per_second(),
        summary.hand_written.bytes_per_event
    );
    println!(
        "batched ingest over HTTP: {:.0} events/s = {hand_written_ratio:.2}x the hand-written table (target >= {HAND_WRITTEN_RATIO_TARGET:.2}x: {})",
        summary.batched.events_per_second(),
        verdict(hand_written_ratio >= HAND_WRITTEN_RATIO_TARGET)
    );
    println!(
        "single-event ingest over HTTP: {:.0} events/s = {:.2}x raw COPY",
        summary.single.events_per_second(),
        crate::ratio(
            summary.single.events_per_second(),
            summary.baseline.events_per_second()
        )
    );
    println!(
        "store database size: {:.0} B/event ({:.2}x the baseline's)",
        summary.store_bytes_per_event,
        summary.store_bytes_per_event / summary.baseline.bytes_per_event
    );
    println!(
        "queries on the largest account ({}, {} events), p99:",
        summary.largest_account, summary.largest_account_events
    );
    for (name, query_text, target, figures) in summary.queries {
        let p99 = figures.latency.value_at_quantile(0.99);
        let target_text = match target {
            Some(target) => format!(" (target <= {target} µs: {})", verdict(p99 <= *target)),
            None => String::new(),
        };
        println!("  {name:<17} {query_text:?}: p99 {p99} µs{target_text}");
    }
    for (format, figures) in [
        ("NDJSON", summary.export_ndjson),
        ("CSV", summary.export_csv),
    ] {
        let rate = figures.events_per_second();
        println!(
            "export {format}: {rate:.0} events/s (target >= {EXPORT_TARGET_EVENTS_PER_SECOND:.0}: {})",
            verdict(rate >= EXPORT_TARGET_EVENTS_PER_SECOND)
        );
    }
}
