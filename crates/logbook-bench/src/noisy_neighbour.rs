//! `--noisy-neighbour`: does one account flooding the server hurt another? Account B works
//! normally (small batches and queries at a fraction of its limits) for a fixed time, first
//! alone and then while account A floods ingest and reads at ten times its limits. It prints B's
//! latency percentiles in both phases, their ratio, and how many of B's requests were refused
//! (which must be none) beside how many of A's were.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;
use logbook_core::api_key::{KeyOwner, PlaintextApiKey, Scopes};
use logbook_core::store::NewApiKey;
use logbook_core::{AccountId, Clock, Store, SystemClock};
use logbook_server::limits::{AccountLimits, LimitSettings};
use logbook_server::{AppState, ServerSettings};
use logbook_store_sqlite::{SqliteOptions, SqliteStore};
use rand::Rng;
use tokio::sync::watch;

use crate::http_load::{http_client, new_latency_histogram};

/// The limits every account gets in this run; A floods at ten times these.
const INGEST_EVENTS_PER_SECOND: u32 = 2_000;
const READS_PER_SECOND: u32 = 50;

/// B's normal work: a batch of 10 events every 50 ms (200 events/s, a tenth of its ingest limit)
/// and a query every 100 ms (10 reads/s, a fifth of its read limit).
const B_EVENTS_PER_BATCH: usize = 10;
const B_BATCH_INTERVAL: Duration = Duration::from_millis(50);
const B_QUERY_INTERVAL: Duration = Duration::from_millis(100);

/// A's flood: 8 producers each sending 100 events every 40 ms (20,000 events/s) and 10 readers
/// each querying every 20 ms (500 reads/s): ten times both limits.
const A_PRODUCERS: usize = 8;
const A_EVENTS_PER_BATCH: usize = 100;
const A_BATCH_INTERVAL: Duration = Duration::from_millis(40);
const A_READERS: usize = 10;
const A_QUERY_INTERVAL: Duration = Duration::from_millis(20);

struct Tenant {
    ingest_key: String,
    read_key: String,
}

async fn create_tenant(store: &dyn Store, name: &str) -> anyhow::Result<Tenant> {
    let clock = SystemClock;
    let account = AccountId::parse(name).context("account name")?;
    store.create_account(&account, clock.now()).await?;
    let mut keys = Vec::new();
    for scope in ["ingest", "read"] {
        let plaintext = PlaintextApiKey::from_random_bytes(rand::rng().random());
        store
            .create_api_key(NewApiKey {
                key_id: format!("key_noisy{:016x}", rand::rng().random::<u64>()).into(),
                key_hash: plaintext.hash(),
                owner: KeyOwner::Account(account.clone()),
                scopes: Scopes::parse(scope).context("scope")?,
                display_prefix: plaintext.display_prefix(),
                description: Some("logbook-bench noisy neighbour".into()),
                created_at: clock.now(),
            })
            .await?;
        keys.push(plaintext.expose().to_owned());
    }
    let read_key = keys.pop().expect("two keys");
    let ingest_key = keys.pop().expect("two keys");
    Ok(Tenant {
        ingest_key,
        read_key,
    })
}

fn batch_body(tenant: &str, events: usize) -> Vec<u8> {
    let events: Vec<serde_json::Value> = (0..events)
        .map(|index| {
            serde_json::json!({
                "action": "user.login",
                "message": format!("{tenant} login {index}"),
                "actor": {"id": format!("user{index}@{tenant}.example"), "type": "user"},
                "ip": "203.0.113.9",
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "events": events })).expect("serializes")
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    refused: AtomicU64,
    other: AtomicU64,
}

impl Counts {
    fn record(&self, status: u16) {
        match status {
            200..=299 => &self.ok,
            429 => &self.refused,
            _ => &self.other,
        }
        .fetch_add(1, Ordering::Relaxed);
    }
}

/// One paced request loop until `stop` turns true; latencies go to the returned histogram.
async fn paced_loop(
    client: reqwest::Client,
    request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    interval: Duration,
    counts: Arc<Counts>,
    mut stop: watch::Receiver<bool>,
) -> Histogram<u64> {
    let mut latencies = new_latency_histogram();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => break,
        }
        let started = Instant::now();
        match request(&client).send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let _ = response.bytes().await;
                counts.record(status);
            }
            Err(_) => counts.record(0),
        }
        let _ = latencies.record(started.elapsed().as_micros().max(1) as u64);
    }
    latencies
}

struct PhaseFigures {
    latencies: Histogram<u64>,
    b_counts: Arc<Counts>,
    a_counts: Arc<Counts>,
}

async fn run_phase(
    base_url: &str,
    b: &Tenant,
    a: Option<&Tenant>,
    duration: Duration,
) -> anyhow::Result<PhaseFigures> {
    let client = http_client()?;
    let (stop_sender, stop) = watch::channel(false);
    let b_counts = Arc::new(Counts::default());
    let a_counts = Arc::new(Counts::default());
    let mut b_tasks = Vec::new();
    let mut a_tasks = Vec::new();

    let b_body = bytes::Bytes::from(batch_body("b", B_EVENTS_PER_BATCH));
    let (url, key) = (format!("{base_url}/api/v1/events"), b.ingest_key.clone());
    b_tasks.push(tokio::spawn(paced_loop(
        client.clone(),
        move |client| {
            client
                .post(&url)
                .bearer_auth(&key)
                .header("content-type", "application/json")
                .body(b_body.clone())
        },
        B_BATCH_INTERVAL,
        b_counts.clone(),
        stop.clone(),
    )));
    let (url, key) = (
        format!("{base_url}/api/v1/events?q=login&limit=50"),
        b.read_key.clone(),
    );
    b_tasks.push(tokio::spawn(paced_loop(
        client.clone(),
        move |client| client.get(&url).bearer_auth(&key),
        B_QUERY_INTERVAL,
        b_counts.clone(),
        stop.clone(),
    )));

    if let Some(a) = a {
        let a_body = bytes::Bytes::from(batch_body("a", A_EVENTS_PER_BATCH));
        for _ in 0..A_PRODUCERS {
            let (url, key, body) = (
                format!("{base_url}/api/v1/events"),
                a.ingest_key.clone(),
                a_body.clone(),
            );
            a_tasks.push(tokio::spawn(paced_loop(
                client.clone(),
                move |client| {
                    client
                        .post(&url)
                        .bearer_auth(&key)
                        .header("content-type", "application/json")
                        .body(body.clone())
                },
                A_BATCH_INTERVAL,
                a_counts.clone(),
                stop.clone(),
            )));
        }
        for _ in 0..A_READERS {
            let (url, key) = (
                format!("{base_url}/api/v1/events?q=login&limit=50"),
                a.read_key.clone(),
            );
            a_tasks.push(tokio::spawn(paced_loop(
                client.clone(),
                move |client| client.get(&url).bearer_auth(&key),
                A_QUERY_INTERVAL,
                a_counts.clone(),
                stop.clone(),
            )));
        }
    }

    tokio::time::sleep(duration).await;
    stop_sender.send_replace(true);
    let mut latencies = new_latency_histogram();
    for task in b_tasks {
        latencies.add(task.await.context("a B task panicked")?)?;
    }
    for task in a_tasks {
        task.await.context("an A task panicked")?;
    }
    Ok(PhaseFigures {
        latencies,
        b_counts,
        a_counts,
    })
}

fn milliseconds(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

pub async fn run(seconds: u64) -> anyhow::Result<()> {
    let data_directory = tempfile::tempdir().context("a data directory")?;
    let store = SqliteStore::open(
        &data_directory.path().join("logbook.db"),
        SqliteOptions::default(),
    )
    .context("opening the store")?;
    let store: Arc<dyn Store> = Arc::new(store);
    let a = create_tenant(store.as_ref(), "noisy-a").await?;
    let b = create_tenant(store.as_ref(), "quiet-b").await?;
    let account_limits = AccountLimits {
        ingest_events_per_second: INGEST_EVENTS_PER_SECOND,
        ingest_event_burst: INGEST_EVENTS_PER_SECOND,
        reads_per_second: READS_PER_SECOND,
        read_burst: READS_PER_SECOND,
        ..AccountLimits::default()
    };
    let settings = ServerSettings {
        limits: LimitSettings {
            account_defaults: account_limits,
            ingest_events_per_second_per_key: INGEST_EVENTS_PER_SECOND,
            ingest_event_burst_per_key: INGEST_EVENTS_PER_SECOND,
            reads_per_second_per_key: READS_PER_SECOND,
            read_burst_per_key: READS_PER_SECOND,
            ..LimitSettings::default()
        },
        ..ServerSettings::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let state = AppState::new(store, Arc::new(SystemClock), settings);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(logbook_server::serve(listener, state, async move {
        let _ = stopped.await;
    }));

    let duration = Duration::from_secs(seconds);
    println!(
        "noisy neighbour: limits {INGEST_EVENTS_PER_SECOND} events/s and {READS_PER_SECOND} reads/s per account and key; \
         B sends {B_EVENTS_PER_BATCH} events every {B_BATCH_INTERVAL:?} and a query every {B_QUERY_INTERVAL:?} for {seconds}s per phase"
    );
    let alone = run_phase(&base_url, &b, None, duration).await?;
    let flooded = run_phase(&base_url, &b, Some(&a), duration).await?;
    let _ = stop.send(());
    serving.await.context("the server task panicked")??;

    for (name, phase) in [("B alone", &alone), ("B while A floods", &flooded)] {
        println!(
            "{name}: {} requests, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} ok, {} refused (429), {} other",
            phase.latencies.len(),
            milliseconds(phase.latencies.value_at_quantile(0.50)),
            milliseconds(phase.latencies.value_at_quantile(0.99)),
            milliseconds(phase.latencies.max()),
            phase.b_counts.ok.load(Ordering::Relaxed),
            phase.b_counts.refused.load(Ordering::Relaxed),
            phase.b_counts.other.load(Ordering::Relaxed),
        );
    }
    let a_ok = flooded.a_counts.ok.load(Ordering::Relaxed);
    let a_refused = flooded.a_counts.refused.load(Ordering::Relaxed);
    println!(
        "A (10x its limits): {} requests, {a_ok} ok, {a_refused} refused (429), {} other",
        a_ok + a_refused + flooded.a_counts.other.load(Ordering::Relaxed),
        flooded.a_counts.other.load(Ordering::Relaxed),
    );
    let ratio = flooded.latencies.value_at_quantile(0.99) as f64
        / alone.latencies.value_at_quantile(0.99).max(1) as f64;
    let b_refused = flooded.b_counts.refused.load(Ordering::Relaxed)
        + alone.b_counts.refused.load(Ordering::Relaxed);
    println!(
        "B's p99 with A / without A: {ratio:.2}x (target <= 2x: {}); B's 429s: {b_refused} (target 0: {})",
        if ratio <= 2.0 { "met" } else { "MISSED" },
        if b_refused == 0 { "met" } else { "MISSED" },
    );
    Ok(())
}
