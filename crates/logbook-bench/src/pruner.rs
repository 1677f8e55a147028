//! `--pruner` and `--retention-disk`: what retention's pruner costs and whether it bounds the
//! database (issue 18, item 1).
//!
//! `--pruner` measures ingest and query latency at a fixed offered rate with the pruner idle and
//! with the pruner removing an old prefix, in alternating phases of one run. Events are prunable
//! by `received_at`, which the server takes from its `Clock`; so the server runs on a clock that
//! is set two days back while the first events are loaded and on the wall clock afterwards, which
//! makes every preloaded event older than a one-day period and every event of the measured phases
//! fresh. The pruner is the server's own task (`workers::retention::run`, with the server's batch
//! and pause unless the flags say otherwise, and a round every second), started for each phase with its own
//! shutdown signal: with retention off in the idle phases (its rounds find nothing to do) and a
//! one-day period in the pruning phases (it deletes the preloaded prefix until the phase ends).
//!
//! `--retention-disk` ingests at a fixed rate for a few minutes with a one-day period on a clock
//! that runs `86,400 / retention_seconds` times faster than the wall clock, so a "day" passes in
//! about a minute, and samples the database and WAL size: with space reused, the file stops
//! growing once the pruner removes as much per second as ingest adds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use hdrhistogram::Histogram;
use logbook_core::api_key::{KeyOwner, Scopes};
use logbook_core::checkpoint::CheckpointSigner;
use logbook_core::{AccountId, Clock, Store, SystemClock};
use logbook_server::AppState;
use logbook_server::state::ShutdownSignal;
use logbook_server::workers::checkpointer::CheckpointSigning;
use logbook_server::workers::retention::{self, RetentionSettings};
use logbook_store_postgres::{PostgresOptions, PostgresStore};
use logbook_store_sqlite::{SqliteOptions, SqliteStore};
use time::OffsetDateTime;
use tokio::task::JoinHandle;

use crate::http_load::{self, RequestBodies, new_latency_histogram};
use crate::postgres::ScratchDatabase;
use crate::server::{create_key, throughput_run_settings};
use crate::sqlite_probe::{ProbeFigures, SqliteProbe};
use crate::workload::{RARE_WORD, Workload, WorkloadShape};

/// Accounts of both runs: few enough that the pruner's round over all of them is short, with
/// Zipf-skewed sizes as in the main run.
const ACCOUNT_COUNT: usize = 20;
const BATCH_SIZE: usize = 500;
/// The retention period of both runs, in the only unit the settings take.
const RETENTION_DAYS: u32 = 1;
/// How often the pruner starts a round (the server's default is a minute; a second makes each
/// pruning phase start pruning at once).
const PRUNER_INTERVAL: Duration = Duration::from_secs(1);

/// Sizes of the `--pruner` run, from the command line.
pub struct PrunerRun {
    pub seed: u64,
    /// Events loaded before the phases, all received "two days ago".
    pub old_events: usize,
    /// Events per second offered during every phase, in batches of 500.
    pub events_per_second: f64,
    /// Queries per second offered during every phase, round robin over newest 50, `ip:` and a
    /// rare word.
    pub queries_per_second: f64,
    pub phase_seconds: u64,
    /// Idle/pruning pairs.
    pub phase_pairs: usize,
    pub pacing: PrunerPacing,
    /// A PostgreSQL server URL (`--database`) to run on instead of SQLite.
    pub postgres_server_url: Option<String>,
    /// Prune nothing in the pruning phases either (`--pruner-control`).
    pub control: bool,
    /// Run `sqlite_probe` beside the load (`--pruner-probe`).
    pub probe: bool,
}

/// The pruner's batch size and pause between batches (the server's defaults unless given).
#[derive(Debug, Clone, Copy)]
pub struct PrunerPacing {
    pub batch_size: u32,
    pub pause_between_batches: Duration,
}

impl PrunerPacing {
    pub fn from_arguments(batch_size: Option<u32>, pause_milliseconds: Option<u64>) -> Self {
        let defaults = RetentionSettings::default();
        Self {
            batch_size: batch_size.unwrap_or(defaults.batch_size).max(1),
            pause_between_batches: pause_milliseconds
                .map_or(defaults.pause_between_batches, Duration::from_millis),
        }
    }
}

/// Sizes of the `--retention-disk` run, from the command line.
pub struct RetentionDiskRun {
    pub seed: u64,
    pub events_per_second: f64,
    pub seconds: u64,
    /// Wall-clock seconds the one-day period lasts on the run's clock.
    pub retention_seconds: u64,
    pub pacing: PrunerPacing,
}

/// The wall clock moved by a shift the run sets: back while the old events load, then zero.
struct ShiftedClock {
    shift_micros: AtomicI64,
}

impl ShiftedClock {
    fn set_shift(&self, shift: time::Duration) {
        self.shift_micros
            .store(shift.whole_microseconds() as i64, Ordering::SeqCst);
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> OffsetDateTime {
        SystemClock.now() + time::Duration::microseconds(self.shift_micros.load(Ordering::SeqCst))
    }
}

/// A clock that runs `speed` times faster than the wall clock from when it was made.
struct FastClock {
    origin: OffsetDateTime,
    started: Instant,
    speed: f64,
}

impl Clock for FastClock {
    fn now(&self) -> OffsetDateTime {
        let elapsed = self.started.elapsed().as_secs_f64() * self.speed;
        self.origin + time::Duration::seconds_f64(elapsed)
    }
}

/// A server on a fresh SQLite store with the workload's accounts, a platform ingest key and a
/// read key of `read_account`, with no ingest or read limits (these runs load one account far
/// above its default rate); stopped (and its directory removed) by `stop`.
pub(crate) struct PrunerServer {
    pub(crate) base_url: String,
    pub(crate) ingest_key: String,
    read_key: String,
    pub(crate) store: Arc<dyn Store>,
    /// The SQLite database file; `None` on PostgreSQL.
    database_path: Option<PathBuf>,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: JoinHandle<std::io::Result<()>>,
    _data_directory: tempfile::TempDir,
    /// Dropped (and so the database dropped) after the server has stopped.
    _scratch_database: Option<ScratchDatabase>,
}

impl PrunerServer {
    /// On a fresh SQLite store in a temporary directory, or, with `postgres_server_url`, on a
    /// `PostgresStore` in a scratch database created on that server for the run.
    pub(crate) async fn start(
        workload: &Workload,
        read_account: &AccountId,
        clock: Arc<dyn Clock>,
        postgres_server_url: Option<&str>,
    ) -> anyhow::Result<Self> {
        let data_directory = tempfile::tempdir().context("creating the server's data directory")?;
        let (store, database_path, scratch_database): (Arc<dyn Store>, _, _) =
            match postgres_server_url {
                None => {
                    let database_path = data_directory.path().join("logbook.db");
                    let store = SqliteStore::open(&database_path, SqliteOptions::default())
                        .context("opening the SQLite store")?;
                    (Arc::new(store), Some(database_path), None)
                }
                Some(server_url) => {
                    let database = ScratchDatabase::create(server_url, "pruner").await?;
                    let store = PostgresStore::connect(&database.url, PostgresOptions::default())
                        .await
                        .context("opening the PostgreSQL store")?;
                    (Arc::new(store), None, Some(database))
                }
            };
        for account in workload.accounts() {
            store.create_account(account, clock.now()).await?;
        }
        let ingest_key = create_key(
            &*store,
            KeyOwner::Platform,
            Scopes::parse("ingest").context("scope")?,
            &*clock,
        )
        .await?;
        let read_key = create_key(
            &*store,
            KeyOwner::Account(read_account.clone()),
            Scopes::parse("read").context("scope")?,
            &*clock,
        )
        .await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding a loopback port")?;
        let base_url = format!("http://{}", listener.local_addr()?);
        // No checkpoint signing in the state, so the server starts no pruner of its own: the run
        // starts the same task itself, phase by phase.
        let mut settings = throughput_run_settings();
        settings.limits.account_defaults.ingest_events_per_second = 0;
        settings.limits.ingest_events_per_second_per_key = 0;
        let state = AppState::new(store.clone(), clock, settings);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(logbook_server::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            base_url,
            ingest_key,
            read_key,
            store,
            database_path,
            stop,
            serving,
            _data_directory: data_directory,
            _scratch_database: scratch_database,
        })
    }

    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.serving
            .await
            .context("the server task panicked")?
            .context("serving")
    }
}

fn checkpoint_signing() -> anyhow::Result<Arc<CheckpointSigning>> {
    Ok(Arc::new(CheckpointSigning {
        signer: CheckpointSigner::generate(rand::random(), "logbook-bench")
            .context("generating a checkpoint key")?,
        instance_name: "logbook-bench".into(),
        interval: Duration::from_secs(1),
    }))
}

/// The server's pruner task with `retention_days` for every account, running until the returned
/// signal is raised.
fn start_pruner(
    store: &Arc<dyn Store>,
    signing: &Arc<CheckpointSigning>,
    clock: Arc<dyn Clock>,
    retention_days: Option<u32>,
    pacing: PrunerPacing,
) -> (ShutdownSignal, JoinHandle<()>) {
    let shutdown = ShutdownSignal::default();
    let settings = RetentionSettings {
        default_retention_days: retention_days,
        interval: PRUNER_INTERVAL,
        batch_size: pacing.batch_size,
        pause_between_batches: pacing.pause_between_batches,
        ..RetentionSettings::default()
    };
    let task = tokio::spawn(retention::run(
        store.clone(),
        signing.clone(),
        clock,
        Arc::new(settings),
        shutdown.clone(),
    ));
    (shutdown, task)
}

/// `{"events":[...]}` bodies of `batch_size` for the events of `range`.
fn batch_bodies(
    workload: &Workload,
    range: std::ops::Range<usize>,
    batch_size: usize,
) -> RequestBodies {
    let mut bodies = Vec::with_capacity(range.len().div_ceil(batch_size));
    let mut start = range.start;
    while start < range.end {
        let end = (start + batch_size).min(range.end);
        let mut body = Vec::with_capacity((end - start) * 500 + 16);
        body.extend_from_slice(b"{\"events\":[");
        for index in start..end {
            if index > start {
                body.push(b',');
            }
            workload.event(index).write_json(&mut body);
        }
        body.extend_from_slice(b"]}");
        bodies.push((Bytes::from(body), end - start));
        start = end;
    }
    bodies
}

/// The requests a fixed-rate ingest saw refused, in a line.
fn describe_failures(failures: &[(u16, String)]) -> String {
    match failures.first() {
        None => "no failed requests".to_owned(),
        Some((status, body)) => format!(
            "{} FAILED requests, the first answered {status}: {body}",
            failures.len()
        ),
    }
}

/// Sends the queries round robin at a fixed offered rate for `duration`, open loop: query `i` is
/// due at `start + i / rate` whatever happened to earlier ones, and its latency runs from when it
/// was due. Returns one histogram per query.
async fn query_at_fixed_rate(
    client: &reqwest::Client,
    base_url: &str,
    read_key: &str,
    query_texts: &[String],
    queries_per_second: f64,
    duration: Duration,
) -> anyhow::Result<Vec<Histogram<u64>>> {
    let interval = Duration::from_secs_f64(1.0 / queries_per_second.max(0.001));
    let count = (duration.as_secs_f64() * queries_per_second) as usize;
    let started = tokio::time::Instant::now();
    let url = Arc::new(format!("{base_url}/api/v1/events"));
    let mut tasks = Vec::with_capacity(count);
    for index in 0..count {
        let due = started + interval * index as u32;
        tokio::time::sleep_until(due).await;
        let which = index % query_texts.len();
        let mut request = client.get(url.as_str()).bearer_auth(read_key);
        request = if query_texts[which].is_empty() {
            request.query(&[("limit", "50")])
        } else {
            request.query(&[("limit", "50"), ("q", query_texts[which].as_str())])
        };
        tasks.push(tokio::spawn(async move {
            let response = request.send().await.context("sending a query")?;
            let status = response.status();
            response.bytes().await.context("reading a query answer")?;
            anyhow::ensure!(status.is_success(), "a query answered {status}");
            anyhow::Ok((which, due.elapsed()))
        }));
    }
    let mut latencies: Vec<Histogram<u64>> = query_texts
        .iter()
        .map(|_| new_latency_histogram())
        .collect();
    for task in tasks {
        let (which, latency) = task.await.context("a query task panicked")??;
        latencies[which].saturating_record(latency.as_micros() as u64);
    }
    Ok(latencies)
}

/// Events pruned so far in this process, from the server's `/metrics`.
async fn events_pruned(client: &reqwest::Client, base_url: &str) -> anyhow::Result<u64> {
    let text = client
        .get(format!("{base_url}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|line| line.starts_with(logbook_server::metrics::EVENTS_PRUNED))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PhaseKind {
    Idle,
    Pruning,
}

const MEASURES: [&str; 4] = ["batched ingest ack", "newest 50", "ip filter", "rare word"];

pub async fn run_latency(run: PrunerRun) -> anyhow::Result<()> {
    anyhow::ensure!(
        !(run.probe && run.postgres_server_url.is_some()),
        "--pruner-probe reads the SQLite store's database file: drop --database"
    );
    print_server_warnings();
    let clock = Arc::new(ShiftedClock {
        shift_micros: AtomicI64::new(0),
    });
    let batches_per_phase =
        ((run.events_per_second * run.phase_seconds as f64) / BATCH_SIZE as f64).ceil() as usize;
    let phase_count = run.phase_pairs * 2;
    // A warm-up phase first (not counted), then the pairs.
    let measured_events = (phase_count + 1) * batches_per_phase * BATCH_SIZE;
    let shape = WorkloadShape {
        event_count: run.old_events + measured_events,
        account_count: ACCOUNT_COUNT,
        seed: run.seed,
        zipf_exponent: 1.1,
    };
    let workload = Workload::generate(shape, clock.now());
    let (largest_account, largest_events) = workload.largest_account();
    let (_, ip) = workload.sample_actor_and_ip(&largest_account);
    let query_texts = vec![String::new(), format!("ip:{ip}"), RARE_WORD.to_owned()];
    println!(
        "pruner latency (issue 18) on {}: {} old events over {ACCOUNT_COUNT} accounts received two days ago, then {} phases of {}s alternating idle and pruning (after a {}s warm-up), each offering {:.0} events/s in batches of {BATCH_SIZE} and {:.0} queries/s on {largest_account} (newest 50, ip:{ip}, {RARE_WORD:?}); retention {RETENTION_DAYS} day in pruning phases, off in idle ones; pruner batch {} events, pause {:?}, round every {PRUNER_INTERVAL:?}",
        if run.postgres_server_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        run.old_events,
        phase_count,
        run.phase_seconds,
        run.phase_seconds,
        run.events_per_second,
        run.queries_per_second,
        run.pacing.batch_size,
        run.pacing.pause_between_batches,
    );
    let old_bodies = Arc::new(batch_bodies(&workload, 0..run.old_events, BATCH_SIZE));
    let mut phase_bodies: Vec<Arc<RequestBodies>> = (0..=phase_count)
        .map(|phase| {
            let start = run.old_events + phase * batches_per_phase * BATCH_SIZE;
            Arc::new(batch_bodies(
                &workload,
                start..start + batches_per_phase * BATCH_SIZE,
                BATCH_SIZE,
            ))
        })
        .collect();
    phase_bodies.reverse();

    let server = PrunerServer::start(
        &workload,
        &largest_account,
        clock.clone(),
        run.postgres_server_url.as_deref(),
    )
    .await?;
    let client = http_load::http_client()?;
    let signing = checkpoint_signing()?;

    clock.set_shift(-time::Duration::days(2));
    let loaded = http_load::ingest(
        &client,
        &server.base_url,
        &server.ingest_key,
        old_bodies,
        16,
    )
    .await?;
    clock.set_shift(time::Duration::ZERO);
    println!(
        "loaded {} old events in {:.1}s ({:.0} events/s); {largest_account} holds {largest_events} of all generated events",
        loaded.event_count,
        loaded.elapsed.as_secs_f64(),
        loaded.events_per_second()
    );
    let catch_up =
        crate::server::wait_for_attention_worker(&*server.store, Duration::from_secs(600)).await?;
    println!(
        "attention worker caught up {:.1}s after the load",
        catch_up.as_secs_f64()
    );
    let probe = if run.probe {
        let database_path = server
            .database_path
            .clone()
            .context("--pruner-probe reads the SQLite store's database file")?;
        Some(SqliteProbe::start(database_path, largest_account.as_str())?)
    } else {
        None
    };
    // The probe's figures of the idle and the pruning phases.
    let mut probe_sums = [ProbeFigures::empty(), ProbeFigures::empty()];

    let phase_duration = Duration::from_secs(run.phase_seconds);
    let mut idle: Vec<Histogram<u64>> = MEASURES.iter().map(|_| new_latency_histogram()).collect();
    let mut pruning: Vec<Histogram<u64>> =
        MEASURES.iter().map(|_| new_latency_histogram()).collect();
    // Failed ingest requests of the idle and the pruning phases.
    let mut failed_requests = [0_usize; 2];
    let mut kinds = vec![PhaseKind::Idle];
    for _ in 0..run.phase_pairs {
        kinds.extend([PhaseKind::Idle, PhaseKind::Pruning]);
    }
    for (index, kind) in kinds.into_iter().enumerate() {
        let warm_up = index == 0;
        let (shutdown, pruner) = start_pruner(
            &server.store,
            &signing,
            clock.clone(),
            (kind == PhaseKind::Pruning && !run.control).then_some(RETENTION_DAYS),
            run.pacing,
        );
        let pruned_before = events_pruned(&client, &server.base_url).await?;
        if let Some(probe) = &probe {
            probe.take();
        }
        let bodies = phase_bodies.pop().context("a phase without bodies")?;
        let (ingest, queries) = tokio::join!(
            http_load::ingest_at_fixed_rate_counting_failures(
                &client,
                &server.base_url,
                &server.ingest_key,
                bodies,
                run.events_per_second / BATCH_SIZE as f64,
            ),
            query_at_fixed_rate(
                &client,
                &server.base_url,
                &server.read_key,
                &query_texts,
                run.queries_per_second,
                phase_duration,
            )
        );
        let (ingest, queries) = (ingest?, queries?);
        let probe_figures = probe.as_ref().map(|probe| probe.take());
        shutdown.begin();
        pruner.await.context("the pruner task panicked")?;
        let pruned = events_pruned(&client, &server.base_url).await? - pruned_before;
        let name = match (warm_up, kind) {
            (true, _) => "warm-up",
            (false, PhaseKind::Idle) => "idle",
            (false, PhaseKind::Pruning) => "pruning",
        };
        println!(
            "phase {index} {name:<8} ingest p50 {:>7} µs p99 {:>7} µs | {} | {pruned} events pruned ({:.0}/s)",
            ingest.latency.value_at_quantile(0.5),
            ingest.latency.value_at_quantile(0.99),
            query_texts
                .iter()
                .zip(&queries)
                .map(|(_, latency)| format!(
                    "p50 {} p99 {} µs",
                    latency.value_at_quantile(0.5),
                    latency.value_at_quantile(0.99)
                ))
                .collect::<Vec<_>>()
                .join(" | "),
            pruned as f64 / phase_duration.as_secs_f64(),
        );
        if let Some(probe_figures) = &probe_figures {
            println!("  SQLite probe: {}", probe_figures.describe());
            if !warm_up {
                probe_sums[usize::from(kind == PhaseKind::Pruning)].add(probe_figures)?;
            }
        }
        if !ingest.failures.is_empty() {
            println!("  ingest: {}", describe_failures(&ingest.failures));
            failed_requests[usize::from(kind == PhaseKind::Pruning)] += ingest.failures.len();
        }
        if kind == PhaseKind::Pruning && pruned == 0 && !run.control {
            println!("  WARNING: the pruner removed nothing in this pruning phase");
        }
        if warm_up {
            continue;
        }
        let target = if kind == PhaseKind::Pruning {
            &mut pruning
        } else {
            &mut idle
        };
        target[0].add(&ingest.latency)?;
        for (sum, latency) in target[1..].iter_mut().zip(&queries) {
            sum.add(latency)?;
        }
    }
    // Only old events are ever prunable here (the phases' own events are fresh), so what the
    // pruner removed in all is what left of the old prefix.
    let pruned_in_all = events_pruned(&client, &server.base_url).await?;
    println!(
        "old events still stored after the last pruning phase: {} of {} (near 0 means the pruner ran out of work before the end: raise --pruner-old-events)",
        (run.old_events as u64).saturating_sub(pruned_in_all),
        run.old_events
    );
    println!(
        "failed ingest requests: {} while idle, {} while pruning (of {} per phase)",
        failed_requests[0], failed_requests[1], batches_per_phase
    );
    if run.control {
        println!(
            "CONTROL run (--pruner-control): the \"pruning\" phases pruned nothing, so these ratios are the run's own noise"
        );
    }
    println!("pruner idle vs pruning (ratio = pruning / idle, target <= 1.20):");
    for (name, (idle, pruning)) in MEASURES.iter().zip(idle.iter().zip(&pruning)) {
        for quantile in [0.5, 0.99] {
            let idle_value = idle.value_at_quantile(quantile);
            let pruning_value = pruning.value_at_quantile(quantile);
            let ratio = pruning_value as f64 / idle_value.max(1) as f64;
            println!(
                "  {name:<20} p{:<2} idle {:>8.2} ms, pruning {:>8.2} ms, ratio {ratio:.2} ({}), {} / {} samples",
                (quantile * 100.0) as u32,
                idle_value as f64 / 1000.0,
                pruning_value as f64 / 1000.0,
                if ratio <= 1.20 { "met" } else { "MISSED" },
                idle.len(),
                pruning.len(),
            );
        }
    }
    if let Some(probe) = probe {
        probe.stop()?;
        println!("SQLite probe, idle phases:    {}", probe_sums[0].describe());
        println!("SQLite probe, pruning phases: {}", probe_sums[1].describe());
    }
    server.stop().await
}

/// The server's warnings and errors on standard error, so a refused request's cause (the store
/// error behind a 500) is seen beside the figures; `RUST_LOG` overrides the level.
fn print_server_warnings() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Database and WAL bytes, and the free pages inside the database, seen from a reader.
struct DiskSample {
    elapsed: Duration,
    database_bytes: u64,
    wal_bytes: u64,
    free_pages: i64,
    page_count: i64,
    stored_events: i64,
}

fn sample_disk(
    database_path: &Path,
    connection: &rusqlite::Connection,
    started: Instant,
) -> anyhow::Result<DiskSample> {
    let mut wal_path = database_path.as_os_str().to_owned();
    wal_path.push("-wal");
    let free_pages: i64 = connection.query_row("PRAGMA freelist_count", [], |row| row.get(0))?;
    let page_count: i64 = connection.query_row("PRAGMA page_count", [], |row| row.get(0))?;
    let stored_events: i64 =
        connection.query_row("SELECT count(*) FROM events", [], |row| row.get(0))?;
    Ok(DiskSample {
        elapsed: started.elapsed(),
        database_bytes: std::fs::metadata(database_path)?.len(),
        wal_bytes: std::fs::metadata(&wal_path).map_or(0, |metadata| metadata.len()),
        free_pages,
        page_count,
        stored_events,
    })
}

pub async fn run_disk(run: RetentionDiskRun) -> anyhow::Result<()> {
    print_server_warnings();
    let speed = 86_400.0 * f64::from(RETENTION_DAYS) / run.retention_seconds.max(1) as f64;
    let fast_clock = Arc::new(FastClock {
        origin: SystemClock.now(),
        started: Instant::now(),
        speed,
    });
    // Batches of 100 keep the requests frequent at the modest rate of this run.
    let batch_size = 100;
    let event_count = (run.events_per_second * run.seconds as f64) as usize;
    let shape = WorkloadShape {
        event_count,
        account_count: ACCOUNT_COUNT,
        seed: run.seed,
        zipf_exponent: 1.1,
    };
    let workload = Workload::generate(shape, SystemClock.now());
    let (largest_account, _) = workload.largest_account();
    let bodies = Arc::new(batch_bodies(&workload, 0..event_count, batch_size));
    println!(
        "retention disk (issue 18): {event_count} events over {ACCOUNT_COUNT} accounts at {:.0} events/s for {}s, retention {RETENTION_DAYS} day on a clock {speed:.0}x faster than the wall clock (the period lasts {}s), pruner batch {} and pause {:?}, round every {PRUNER_INTERVAL:?}",
        run.events_per_second,
        run.seconds,
        run.retention_seconds,
        run.pacing.batch_size,
        run.pacing.pause_between_batches,
    );
    let server = PrunerServer::start(&workload, &largest_account, fast_clock.clone(), None).await?;
    let client = http_load::http_client()?;
    let signing = checkpoint_signing()?;
    let (shutdown, pruner) = start_pruner(
        &server.store,
        &signing,
        fast_clock.clone(),
        Some(RETENTION_DAYS),
        run.pacing,
    );

    let started = Instant::now();
    let stop_sampling = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop_sampling = stop_sampling.clone();
        let database_path = server
            .database_path
            .clone()
            .context("--retention-disk runs on SQLite")?;
        tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<DiskSample>> {
            let connection = rusqlite::Connection::open_with_flags(
                &database_path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .context("opening the store's database to sample it")?;
            connection.busy_timeout(Duration::from_secs(10))?;
            let mut samples = Vec::new();
            let mut next = Duration::ZERO;
            while !stop_sampling.load(Ordering::Relaxed) {
                if started.elapsed() >= next {
                    samples.push(sample_disk(&database_path, &connection, started)?);
                    next += Duration::from_secs(10);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            samples.push(sample_disk(&database_path, &connection, started)?);
            Ok(samples)
        })
    };
    let ingested = http_load::ingest_at_fixed_rate_counting_failures(
        &client,
        &server.base_url,
        &server.ingest_key,
        bodies,
        run.events_per_second / batch_size as f64,
    )
    .await?;
    stop_sampling.store(true, Ordering::Relaxed);
    let samples = sampler.await.context("the sampler panicked")??;
    shutdown.begin();
    pruner.await.context("the pruner task panicked")?;
    let pruned = events_pruned(&client, &server.base_url).await?;
    println!(
        "ingested {} events in {:.1}s, ack p50 {} µs p99 {} µs, {}; the pruner removed {pruned}",
        ingested.event_count,
        ingested.elapsed.as_secs_f64(),
        ingested.latency.value_at_quantile(0.5),
        ingested.latency.value_at_quantile(0.99),
        describe_failures(&ingested.failures),
    );
    println!("  seconds  events stored  database MB  WAL MB  free pages / pages");
    for sample in &samples {
        println!(
            "  {:>7.0}  {:>13}  {:>11.1}  {:>6.1}  {:>10} / {}",
            sample.elapsed.as_secs_f64(),
            sample.stored_events,
            sample.database_bytes as f64 / 1e6,
            sample.wal_bytes as f64 / 1e6,
            sample.free_pages,
            sample.page_count
        );
    }
    print_growth(&samples, Duration::from_secs(run.retention_seconds));
    server.stop().await
}

/// Database + WAL growth over the first retention period against the last one of the run.
fn print_growth(samples: &[DiskSample], period: Duration) {
    let total = |sample: &DiskSample| (sample.database_bytes + sample.wal_bytes) as f64;
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return;
    };
    let at_or_after = |time: Duration| samples.iter().find(|sample| sample.elapsed >= time);
    let Some(end_of_first) = at_or_after(first.elapsed + period) else {
        println!("the run is shorter than one retention period: no growth to compare");
        return;
    };
    let Some(start_of_last) = samples
        .iter()
        .rev()
        .find(|sample| sample.elapsed + period <= last.elapsed)
    else {
        return;
    };
    let first_growth = total(end_of_first) - total(first);
    let last_growth = total(last) - total(start_of_last);
    println!(
        "database + WAL grew {:.1} MB in the first {:.0}s and {:.1} MB in the last {:.0}s ({:.0} % of the first); database pages {} -> {}",
        first_growth / 1e6,
        (end_of_first.elapsed - first.elapsed).as_secs_f64(),
        last_growth / 1e6,
        (last.elapsed - start_of_last.elapsed).as_secs_f64(),
        100.0 * last_growth / first_growth.max(1.0),
        end_of_first.page_count,
        last.page_count,
    );
}
