//! `logbook-bench`: the benchmark harness of BENCHMARKS.md. It generates a realistic multi-tenant
//! workload, measures the naive SQLite baselines on it, starts a real Logbook server in-process on
//! a temporary directory, loads the same events over HTTP, times queries and exports on the
//! largest account, and prints every figure beside its baseline and the targets.
//!
//! All load goes to the loopback address, with fixed counts, and the run stops by itself.

mod baseline;
mod geoip;
mod hand_written;
mod http_load;
mod noisy_neighbour;
mod page_load;
mod postgres;
mod pruner;
mod report;
mod server;
mod sqlite_probe;
mod workload;

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use logbook_core::{Clock, SystemClock};

use crate::baseline::BaselineFigures;
use crate::http_load::{CommitCounters, ExportFigures, QueryFigures, RequestBodies};
use crate::workload::{
    COMMON_ACTION, COMMON_WORDS, RARE_ACTION, RARE_WORD, Workload, WorkloadShape,
};

#[derive(Debug, Parser)]
#[command(
    about = "Loads realistic events into an in-process Logbook over HTTP and prints figures beside naive SQLite baselines."
)]
struct Arguments {
    /// Events loaded over HTTP in total (batched, then one per request).
    #[arg(long, default_value_t = 1_000_000)]
    events: usize,
    /// Accounts the events are spread over, with Zipf-skewed sizes.
    #[arg(long, default_value_t = 1000)]
    accounts: usize,
    /// Seed of the generated workload; the same seed generates the same events.
    #[arg(long, default_value_t = 20_240_601)]
    seed: u64,
    /// A 50,000-event smoke run with proportionally smaller phases.
    #[arg(long)]
    quick: bool,
    /// Events sent one per request by the 64 single-event producers (taken from the total).
    #[arg(long)]
    single_events: Option<usize>,
    /// Concurrent producers sending batches of 500 (64, as the single-event phase and
    /// real fleets of producers: the server must not serialize them).
    #[arg(long, default_value_t = 64)]
    batch_connections: usize,
    /// Timed runs of each export (the median run is reported).
    #[arg(long, default_value_t = 3)]
    export_runs: usize,
    /// Timed runs of each query.
    #[arg(long, default_value_t = 300)]
    query_runs: usize,
    /// Runs against PostgreSQL instead of SQLite: a server URL (e.g.
    /// postgres://postgres@127.0.0.1:5432/postgres) on which fresh scratch databases are created
    /// for the store and a raw COPY baseline, and dropped at the end. With `--pruner`, the pruner
    /// run's store is on a scratch database of this server.
    #[arg(long)]
    database: Option<String>,
    /// Instead of the full run: account A floods ingest and reads at ten times its limits while
    /// account B works normally; prints B's p99 with and without A and B's 429 count.
    #[arg(long)]
    noisy_neighbour: bool,
    /// Seconds of each `--noisy-neighbour` phase (B alone, then B while A floods).
    #[arg(long, default_value_t = 20)]
    noisy_neighbour_seconds: u64,
    /// Instead of the full run (issue 18): ingest and query latency at a fixed rate with the
    /// retention pruner idle and while it removes an old prefix, in alternating phases.
    #[arg(long)]
    pruner: bool,
    /// Events loaded before the `--pruner` phases, all older than the retention period.
    #[arg(long, default_value_t = 400_000)]
    pruner_old_events: usize,
    /// Events per second offered in every `--pruner` phase (batches of 500).
    #[arg(long, default_value_t = 5_000.0)]
    pruner_events_per_second: f64,
    /// Queries per second offered in every `--pruner` phase.
    #[arg(long, default_value_t = 30.0)]
    pruner_queries_per_second: f64,
    /// Seconds of each `--pruner` phase.
    #[arg(long, default_value_t = 15)]
    pruner_phase_seconds: u64,
    /// Idle/pruning pairs of `--pruner` phases.
    #[arg(long, default_value_t = 3)]
    pruner_phase_pairs: usize,
    /// Events one pruner delete transaction removes, in `--pruner` and `--retention-disk`
    /// (default: the server's, `[retention] batch_size`).
    #[arg(long)]
    pruner_batch_size: Option<u32>,
    /// Milliseconds the pruner pauses between two delete batches (default: the server's).
    #[arg(long)]
    pruner_pause_milliseconds: Option<u64>,
    /// A control run of `--pruner`: the pruning phases run the pruner with retention off as the
    /// idle ones do, so nothing is pruned and the ratios printed are the run's own noise, the
    /// yardstick for a real run's.
    #[arg(long)]
    pruner_control: bool,
    /// In `--pruner` on SQLite, also time three queries inside SQLite from a connection of the
    /// bench's own, as wall time and run-queue wait, and count FTS5 segments (`sqlite_probe.rs`).
    #[arg(long)]
    pruner_probe: bool,
    /// Instead of the full run (issue 18): steady ingest with a short retention, sampling the
    /// database and WAL size to show whether it stops growing.
    #[arg(long)]
    retention_disk: bool,
    /// Events per second of `--retention-disk` (batches of 100).
    #[arg(long, default_value_t = 2_000.0)]
    retention_disk_events_per_second: f64,
    /// Seconds of `--retention-disk`.
    #[arg(long, default_value_t = 240)]
    retention_disk_seconds: u64,
    /// Wall-clock seconds one day of retention lasts in `--retention-disk` (its clock runs fast).
    #[arg(long, default_value_t = 60)]
    retention_disk_period_seconds: u64,
    /// Instead of the full run (issue 21): first contentful paint of the Activity Logs page of
    /// an account as large as the full run's largest, in Debian's Chromium over chromedriver.
    #[arg(long)]
    page_load: bool,
    /// Timed loads of each page in `--page-load` (after a warm-up load).
    #[arg(long, default_value_t = 30)]
    page_load_runs: usize,
    /// Instead of the full run: batched ingest of the same `--events` with IP database lookups
    /// off and on, alternating, and the cost of the lookups (issue 19).
    #[arg(long)]
    geoip: bool,
    /// Rounds of each mode in `--geoip`, alternating; each mode's figure is the median of its
    /// rounds, so one round slowed by a neighbour's load does not decide it.
    #[arg(long, default_value_t = 2)]
    geoip_rounds: usize,
    /// Runs only lookups off and on in `--geoip`, without the two modes that split the cost
    /// ("stored only", "coordinates only"): half the time, and a profile of the product alone.
    #[arg(long)]
    geoip_off_and_on_only: bool,
}

/// Sizes of every phase, fixed before the run starts.
struct Plan {
    event_count: usize,
    single_event_count: usize,
    baseline_one_per_transaction_count: usize,
    baseline_batched_count: usize,
    /// Events of the fixed-rate phases (SQLite mode), taken from the end of the workload: batched
    /// at half the saturation rate, then single events at half theirs.
    rate_batched_count: usize,
    rate_single_count: usize,
}

const BATCH_SIZE: usize = 500;
const SINGLE_EVENT_PRODUCERS: usize = 64;
const BASELINE_EVENTS_PER_TRANSACTION: usize = 1000;
/// The longest the run waits for the attention worker to read the loaded events before timing
/// queries; past it the run fails rather than time queries against a worker still catching up.
const ATTENTION_CATCH_UP_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

impl Plan {
    fn from_arguments(arguments: &Arguments) -> Self {
        let event_count = if arguments.quick {
            50_000
        } else {
            arguments.events
        };
        let single_event_count = arguments
            .single_events
            .unwrap_or(if arguments.quick { 10_000 } else { 100_000 })
            .min(event_count / 2);
        // A tenth of the events for the fixed-rate batched phase (whole batches), a tenth of the
        // single events for the fixed-rate single phase.
        let rate_batched_count = (event_count / 10 / BATCH_SIZE) * BATCH_SIZE;
        let rate_single_count = single_event_count / 10;
        Self {
            event_count,
            single_event_count,
            rate_batched_count,
            rate_single_count,
            baseline_one_per_transaction_count: (if arguments.quick { 2_000 } else { 10_000 })
                .min(event_count),
            baseline_batched_count: (if arguments.quick { 20_000 } else { 200_000 })
                .min(event_count),
        }
    }
}

fn main() -> anyhow::Result<()> {
    let arguments = Arguments::parse();
    let plan = Plan::from_arguments(&arguments);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    if arguments.noisy_neighbour {
        return runtime.block_on(noisy_neighbour::run(arguments.noisy_neighbour_seconds));
    }
    if arguments.pruner {
        return runtime.block_on(pruner::run_latency(pruner::PrunerRun {
            seed: arguments.seed,
            old_events: arguments.pruner_old_events,
            events_per_second: arguments.pruner_events_per_second,
            queries_per_second: arguments.pruner_queries_per_second,
            phase_seconds: arguments.pruner_phase_seconds,
            phase_pairs: arguments.pruner_phase_pairs,
            pacing: pruner::PrunerPacing::from_arguments(
                arguments.pruner_batch_size,
                arguments.pruner_pause_milliseconds,
            ),
            postgres_server_url: arguments.database.clone(),
            control: arguments.pruner_control,
            probe: arguments.pruner_probe,
        }));
    }
    if arguments.retention_disk {
        return runtime.block_on(pruner::run_disk(pruner::RetentionDiskRun {
            seed: arguments.seed,
            events_per_second: arguments.retention_disk_events_per_second,
            seconds: arguments.retention_disk_seconds,
            retention_seconds: arguments.retention_disk_period_seconds,
            pacing: pruner::PrunerPacing::from_arguments(
                arguments.pruner_batch_size,
                arguments.pruner_pause_milliseconds,
            ),
        }));
    }
    if arguments.page_load {
        return runtime.block_on(page_load::run(page_load::PageLoadRun {
            event_count: arguments.events,
            account_count: arguments.accounts,
            seed: arguments.seed,
            runs: arguments.page_load_runs,
        }));
    }
    if arguments.geoip {
        return runtime.block_on(geoip::run(
            plan.event_count,
            arguments.accounts,
            arguments.seed,
            arguments.batch_connections,
            arguments.geoip_rounds.max(1),
            arguments.geoip_off_and_on_only,
        ));
    }
    if let Some(server_url) = arguments.database.clone() {
        return runtime.block_on(postgres::run(arguments, plan, server_url));
    }
    runtime.block_on(run(arguments, plan))
}

async fn run(arguments: Arguments, plan: Plan) -> anyhow::Result<()> {
    let clock = SystemClock;
    let machine = report::describe_machine();
    println!("logbook-bench on {machine}");
    println!(
        "plan: {} events over {} accounts (seed {}), {} batched in {}s over {} connections, {} single from {} producers, then {} batched and {} single at half those rates",
        plan.event_count,
        arguments.accounts,
        arguments.seed,
        plan.event_count - plan.single_event_count - plan.rate_batched_count,
        BATCH_SIZE,
        arguments.batch_connections,
        plan.single_event_count - plan.rate_single_count,
        SINGLE_EVENT_PRODUCERS,
        plan.rate_batched_count,
        plan.rate_single_count
    );

    let generation_started = Instant::now();
    let shape = WorkloadShape {
        event_count: plan.event_count,
        account_count: arguments.accounts,
        seed: arguments.seed,
        zipf_exponent: 1.1,
    };
    let workload = Workload::generate(shape, clock.now());
    // The workload in order: saturated batched, saturated single, fixed-rate batched, fixed-rate
    // single.
    let batched_end = plan.event_count - plan.single_event_count - plan.rate_batched_count;
    let single_end = batched_end + plan.single_event_count - plan.rate_single_count;
    let rate_batched_end = single_end + plan.rate_batched_count;
    let (batch_bodies, mut wire_bytes) = serialize_batches(&workload, 0..batched_end);
    let (single_bodies, single_wire_bytes) = serialize_singles(&workload, batched_end..single_end);
    let (rate_batch_bodies, rate_batch_wire_bytes) =
        serialize_batches(&workload, single_end..rate_batched_end);
    let (rate_single_bodies, rate_single_wire_bytes) =
        serialize_singles(&workload, rate_batched_end..plan.event_count);
    wire_bytes += single_wire_bytes + rate_batch_wire_bytes + rate_single_wire_bytes;
    let (largest_account, largest_account_events) = workload.largest_account();
    println!(
        "generated {} events ({:.0} B of JSON each on average) in {:.1}s; largest account {largest_account} holds {largest_account_events}",
        workload.event_count(),
        wire_bytes as f64 / workload.event_count() as f64,
        generation_started.elapsed().as_secs_f64()
    );

    // Baselines first, while nothing else runs, on the first events of the same workload.
    // The baselines run twice, before and after Logbook's load, and the faster of the two runs
    // counts: fsync latency on a shared machine varies, and the faster baseline is the stricter one.
    let baselines_before = run_baselines(&workload, &plan, clock.now(), "before")?;

    let running = server::start(&workload, &largest_account).await?;
    let client = http_load::http_client()?;
    println!("server listening on {}", running.base_url);

    let before_batched = CommitCounters::scrape(&client, &running.base_url).await?;
    let written_before_batched = report::bytes_written_to_storage();
    let batched = http_load::ingest(
        &client,
        &running.base_url,
        &running.ingest_key,
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
    let rate_of_each_million = batched.events_per_second_of_each_million();
    if rate_of_each_million.len() > 1 {
        println!(
            "  events/s of each million, in order: {}",
            rate_of_each_million
                .iter()
                .map(|rate| format!("{rate:.0}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let written_after_batched = report::bytes_written_to_storage();
    let after_batched = CommitCounters::scrape(&client, &running.base_url).await?;
    println!("  store: {}", after_batched.describe_since(&before_batched));
    print_writer_phases(&after_batched, &before_batched);
    let single = http_load::ingest(
        &client,
        &running.base_url,
        &running.ingest_key,
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
    let written_after_single = report::bytes_written_to_storage();
    let after_single = CommitCounters::scrape(&client, &running.base_url).await?;
    let batched_written_bytes_per_event =
        (written_after_batched - written_before_batched) as f64 / batched.event_count as f64;
    let single_written_bytes_per_event =
        (written_after_single - written_after_batched) as f64 / single.event_count as f64;
    println!("  store: {}", after_single.describe_since(&after_batched));
    print_writer_phases(&after_single, &after_batched);
    println!(
        "  written to storage per event: {batched_written_bytes_per_event:.0} B batched, {single_written_bytes_per_event:.0} B single"
    );

    // Latency at a fixed offered rate: half the highest sustained rate of each kind, with the
    // selective queries running one at a time beside the batched phase. It starts once the
    // attention worker has read what the saturated phases stored: at a steady half rate it keeps
    // up as it goes, while its backlog from saturation would measure the end of an overload
    // (it shares the two cores with everything else) rather than the fixed rate.
    let attention_backlog =
        server::wait_for_attention_worker(&*running.store, ATTENTION_CATCH_UP_LIMIT).await?;
    println!(
        "attention worker caught up {:.1}s after the saturated phases; batched and single ingest including that catch-up: {:.0} events/s",
        attention_backlog.as_secs_f64(),
        (batched.event_count + single.event_count) as f64
            / (batched.elapsed + single.elapsed + attention_backlog).as_secs_f64()
    );
    let (actor_id, ip) = workload.sample_actor_and_ip(&largest_account);
    let rate_batched_events_per_second = batched.events_per_second() / 2.0;
    let stop_queries = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let queries_beside_ingest = tokio::spawn(http_load::query_until_stopped(
        client.clone(),
        running.base_url.clone(),
        running.read_key.clone(),
        vec![String::new(), format!("ip:{ip}"), RARE_WORD.to_owned()],
        std::time::Duration::from_millis(10),
        stop_queries.clone(),
    ));
    let rate_batched = http_load::ingest_at_fixed_rate(
        &client,
        &running.base_url,
        &running.ingest_key,
        Arc::new(rate_batch_bodies),
        rate_batched_events_per_second / BATCH_SIZE as f64,
    )
    .await?;
    stop_queries.store(true, std::sync::atomic::Ordering::Relaxed);
    let query_latencies_beside_ingest = queries_beside_ingest
        .await
        .context("the query task panicked")??;
    println!(
        "ingest at half rate, batches of {BATCH_SIZE}: {} events offered at {rate_batched_events_per_second:.0} events/s, done in {:.1}s, ack p50 {} µs, p99 {} µs",
        rate_batched.event_count,
        rate_batched.elapsed.as_secs_f64(),
        rate_batched.latency.value_at_quantile(0.5),
        rate_batched.latency.value_at_quantile(0.99)
    );
    for (name, latency) in ["newest 50", "ip filter", "rare word"]
        .iter()
        .zip(&query_latencies_beside_ingest)
    {
        println!(
            "  query {name} beside it: p50 {} µs, p99 {} µs over {} runs",
            latency.value_at_quantile(0.5),
            latency.value_at_quantile(0.99),
            latency.len()
        );
    }
    let rate_single_events_per_second = single.events_per_second() / 2.0;
    let rate_single = http_load::ingest_at_fixed_rate(
        &client,
        &running.base_url,
        &running.ingest_key,
        Arc::new(rate_single_bodies),
        rate_single_events_per_second,
    )
    .await?;
    println!(
        "ingest at half rate, one event per request: {} events offered at {rate_single_events_per_second:.0} events/s, done in {:.1}s, ack p50 {} µs, p99 {} µs",
        rate_single.event_count,
        rate_single.elapsed.as_secs_f64(),
        rate_single.latency.value_at_quantile(0.5),
        rate_single.latency.value_at_quantile(0.99)
    );
    let stored_event_count = batched.event_count
        + single.event_count
        + rate_batched.event_count
        + rate_single.event_count;

    let baselines_after = run_baselines(&workload, &plan, clock.now(), "after")?;
    let baseline_one_per_transaction = faster(baselines_before.0, baselines_after.0);
    let baseline_batched = faster(baselines_before.1, baselines_after.1);
    let baseline_hand_written = faster(baselines_before.2, baselines_after.2);

    let catch_up =
        server::wait_for_attention_worker(&*running.store, ATTENTION_CATCH_UP_LIMIT).await?;
    println!(
        "attention worker caught up {:.1}s after the last ingest phase and the baselines",
        catch_up.as_secs_f64()
    );

    let query_cases = [
        ("newest 50", String::new()),
        ("actor filter", format!("actor:{actor_id}")),
        ("common action", COMMON_ACTION.to_owned()),
        ("rare action", RARE_ACTION.to_owned()),
        ("ip filter", format!("ip:{ip}")),
        (
            "target filter",
            format!("target:{}", workload.sample_server_target(&largest_account)),
        ),
        ("rare word", RARE_WORD.to_owned()),
        ("two common words", COMMON_WORDS.to_owned()),
    ];
    let mut queries: Vec<(&str, String, QueryFigures)> = Vec::new();
    for (name, query_text) in query_cases {
        let figures = http_load::time_query(
            &client,
            &running.base_url,
            &running.read_key,
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
        queries.push((name, query_text, figures));
    }

    // The timeline above the Activity Logs page (issue 21, item 3), counted by the store per day
    // over the largest account: the whole log, an actor and an action by the day counts, an
    // address and a word by GROUP BY.
    for (name, query_text) in [
        ("whole log", String::new()),
        ("actor filter", format!("actor:{actor_id}")),
        ("common action", COMMON_ACTION.to_owned()),
        ("ip filter", format!("ip:{ip}")),
        ("rare word", RARE_WORD.to_owned()),
    ] {
        let (latency, buckets) = time_timeline(
            &*running.store,
            &largest_account,
            &query_text,
            arguments.query_runs,
        )
        .await?;
        println!(
            "timeline per day, {name} ({query_text:?}): {buckets} days, p50 {} µs, p99 {} µs over {} runs",
            latency.value_at_quantile(0.5),
            latency.value_at_quantile(0.99),
            latency.len()
        );
    }

    let export_ndjson = median_export(&client, &running, "ndjson", arguments.export_runs).await?;
    print_export("NDJSON", &export_ndjson);
    let export_csv = median_export(&client, &running, "csv", arguments.export_runs).await?;
    print_export("CSV", &export_csv);

    let store_bytes = running.stop_and_measure_bytes_on_disk().await?;
    let bytes_per_event = store_bytes as f64 / stored_event_count as f64;
    println!(
        "bytes on disk after shutdown and checkpoint: {store_bytes} for {stored_event_count} events = {bytes_per_event:.0} B/event"
    );

    report::print_summary(&report::Summary {
        machine,
        batched: &batched,
        single: &single,
        baseline_one_per_transaction: &baseline_one_per_transaction,
        baseline_batched: &baseline_batched,
        baseline_hand_written: &baseline_hand_written,
        rate_batched: &rate_batched,
        rate_single: &rate_single,
        query_latencies_beside_ingest: &query_latencies_beside_ingest,
        bytes_per_event,
        batched_written_bytes_per_event,
        single_written_bytes_per_event,
        largest_account: largest_account.as_str(),
        largest_account_events,
        queries: &queries,
        export_ndjson: &export_ndjson,
        export_csv: &export_csv,
    });
    Ok(())
}

/// Baseline (a), one transaction per event, baseline (b), 1000 events per transaction, each
/// in a fresh database with the store's schema, and baseline (c), the hand-written table.
fn run_baselines(
    workload: &Workload,
    plan: &Plan,
    received_at: time::OffsetDateTime,
    label: &str,
) -> anyhow::Result<(BaselineFigures, BaselineFigures, BaselineFigures)> {
    let baseline_directory = tempfile::tempdir().context("creating the baseline directory")?;
    let rows = baseline::prepare_rows(
        workload,
        0..plan.baseline_one_per_transaction_count,
        received_at,
    );
    let one_per_transaction = baseline::run(baseline_directory.path(), workload, &rows, 1)?;
    drop(rows);
    println!(
        "baseline (a) one transaction per event, {label}: {} events, {:.0} events/s, {:.0} B/event written",
        one_per_transaction.event_count,
        one_per_transaction.events_per_second(),
        one_per_transaction.written_bytes_per_event
    );
    let rows = baseline::prepare_rows(workload, 0..plan.baseline_batched_count, received_at);
    let batched = baseline::run(
        baseline_directory.path(),
        workload,
        &rows,
        BASELINE_EVENTS_PER_TRANSACTION,
    )?;
    println!(
        "baseline (b) {BASELINE_EVENTS_PER_TRANSACTION} events per transaction, {label}: {} events, {:.0} events/s, {:.0} B/event on disk, {:.0} B/event written",
        batched.event_count,
        batched.events_per_second(),
        batched.bytes_per_event,
        batched.written_bytes_per_event
    );
    drop(rows);
    let rows = hand_written::prepare_rows(workload, 0..plan.baseline_batched_count, received_at);
    let hand_written = hand_written::run(
        baseline_directory.path(),
        &rows,
        BASELINE_EVENTS_PER_TRANSACTION,
    )?;
    println!(
        "baseline (c) the table you would write by hand, {BASELINE_EVENTS_PER_TRANSACTION} events per transaction, {label}: {} events, {:.0} events/s, {:.0} B/event on disk, {:.0} B/event written",
        hand_written.event_count,
        hand_written.events_per_second(),
        hand_written.bytes_per_event,
        hand_written.written_bytes_per_event
    );
    Ok((one_per_transaction, batched, hand_written))
}

/// The writer's time per event by phase, as one line (SQLite only); returns the total.
fn print_writer_phases(after: &CommitCounters, before: &CommitCounters) -> Option<f64> {
    let phases = after.phase_micros_per_event_since(before);
    if phases.is_empty() {
        return None;
    }
    let total: f64 = phases.iter().map(|(_, micros)| micros).sum();
    let parts: Vec<String> = phases
        .iter()
        .map(|(phase, micros)| format!("{phase} {micros:.1}"))
        .collect();
    println!("  writer µs per event: {total:.1} = {}", parts.join(", "));
    Some(total)
}

fn faster(first: BaselineFigures, second: BaselineFigures) -> BaselineFigures {
    if first.events_per_second() >= second.events_per_second() {
        first
    } else {
        second
    }
}

/// Times the store's timeline of `query_text` per day on `account`, `run_count` times after a
/// warm-up; returns the latencies in microseconds and how many days had events.
async fn time_timeline(
    store: &dyn logbook_core::Store,
    account: &logbook_core::AccountId,
    query_text: &str,
    run_count: usize,
) -> anyhow::Result<(hdrhistogram::Histogram<u64>, usize)> {
    let query = logbook_core::query::parse(query_text).context("parsing a timeline query")?;
    let bucket = logbook_core::timeline::TimeBucket::Day;
    let buckets = store
        .count_events_over_time(account, &query, bucket)
        .await?
        .len();
    let mut latency = hdrhistogram::Histogram::<u64>::new(3)?;
    for _ in 0..run_count {
        let started = Instant::now();
        store
            .count_events_over_time(account, &query, bucket)
            .await?;
        latency.record(started.elapsed().as_micros() as u64)?;
    }
    Ok((latency, buckets))
}

/// Runs the export `run_count` times and keeps the median run, so one stall of the shared
/// machine neither makes nor breaks the figure.
async fn median_export(
    client: &reqwest::Client,
    running: &server::RunningServer,
    format: &str,
    run_count: usize,
) -> anyhow::Result<ExportFigures> {
    let mut runs = Vec::with_capacity(run_count.max(1));
    for _ in 0..run_count.max(1) {
        runs.push(
            http_load::time_export(client, &running.base_url, &running.read_key, format).await?,
        );
    }
    runs.sort_by_key(|figures| figures.elapsed);
    Ok(runs.swap_remove(runs.len() / 2))
}

fn print_export(format: &str, figures: &ExportFigures) {
    println!(
        "export {format}: {} events, {:.1} MB in {:.2}s = {:.0} events/s",
        figures.event_count,
        figures.byte_count as f64 / 1e6,
        figures.elapsed.as_secs_f64(),
        figures.events_per_second()
    );
}

/// `{"events":[...]}` bodies of `BATCH_SIZE` for the events of `range`, and their JSON bytes.
fn serialize_batches(workload: &Workload, range: std::ops::Range<usize>) -> (RequestBodies, usize) {
    let mut wire_bytes = 0usize;
    let mut bodies = Vec::with_capacity(range.len().div_ceil(BATCH_SIZE));
    let mut start = range.start;
    while start < range.end {
        let end = (start + BATCH_SIZE).min(range.end);
        let mut body = Vec::with_capacity((end - start) * 480 + 16);
        body.extend_from_slice(b"{\"events\":[");
        for index in start..end {
            if index > start {
                body.push(b',');
            }
            let before = body.len();
            workload.event(index).write_json(&mut body);
            wire_bytes += body.len() - before;
        }
        body.extend_from_slice(b"]}");
        bodies.push((Bytes::from(body), end - start));
        start = end;
    }
    (bodies, wire_bytes)
}

/// One body per event of `range`, and their JSON bytes.
fn serialize_singles(workload: &Workload, range: std::ops::Range<usize>) -> (RequestBodies, usize) {
    let mut wire_bytes = 0usize;
    let bodies = range
        .map(|index| {
            let mut body = Vec::with_capacity(480);
            workload.event(index).write_json(&mut body);
            wire_bytes += body.len();
            (Bytes::from(body), 1)
        })
        .collect();
    (bodies, wire_bytes)
}

/// Pre-serializes every request body before any clock starts: `{"events":[...]}` bodies of
/// `BATCH_SIZE` for the first `batched_event_count` events, one body per event for the rest.
/// Returns the bodies (with their event counts) and the total JSON bytes of the events.
fn serialize_bodies(
    workload: &Workload,
    batched_event_count: usize,
) -> (RequestBodies, RequestBodies, usize) {
    let (batch_bodies, batch_wire_bytes) = serialize_batches(workload, 0..batched_event_count);
    let (single_bodies, single_wire_bytes) =
        serialize_singles(workload, batched_event_count..workload.event_count());
    (
        batch_bodies,
        single_bodies,
        batch_wire_bytes + single_wire_bytes,
    )
}

/// Ratio of two throughputs, printed as `2.31x`.
pub fn ratio(figure: f64, baseline: f64) -> f64 {
    if baseline > 0.0 {
        figure / baseline
    } else {
        f64::NAN
    }
}
