//! `/metrics` checked by Prometheus's own linter, `promtool check metrics` (Debian's `prometheus`
//! package), after a server has ingested, replayed and delivered: every family has its help and
//! type, and replays are counted apart from stored events. Without promtool a local run prints
//! `SKIPPED`; under CI it fails.
//!
//! A test binary of its own: the metrics recorder is per process, and other tests ingesting at
//! the same time would make the counts inexact.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use logbook_core::alerting::{DestinationKind, NewDestination, SigningSecret};
use logbook_core::api_key::{KeyOwner, PlaintextApiKey, Scopes};
use logbook_core::store::NewApiKey;
use logbook_core::{AccountId, Clock, Store, SystemClock};
use logbook_server::workers::delivery::DeliverySettings;
use logbook_server::{AppState, ServerSettings};
use logbook_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::{Value, json};

const PROMTOOL: &str = "/usr/bin/promtool";

fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// A webhook receiver on 127.0.0.1 answering 503 to its first request and 200 to the others;
/// it records each answer.
async fn start_receiver() -> (String, Arc<Mutex<Vec<StatusCode>>>) {
    let answers: Arc<Mutex<Vec<StatusCode>>> = Arc::default();
    let log = answers.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let log = log.clone();
            async move {
                let mut log = log.lock().unwrap();
                let answer = if log.is_empty() {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                };
                log.push(answer);
                answer
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, answers)
}

async fn ingest(base_url: &str, key: &str, events: Vec<Value>) {
    let response = reqwest::Client::new()
        .post(format!("{base_url}/api/v1/events"))
        .bearer_auth(key)
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_page_passes_promtool_and_counts_replays_apart_from_stored_events() {
    if !std::path::Path::new(PROMTOOL).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must provide promtool (Debian's prometheus package); .ci/run installs it"
        );
        eprintln!("SKIPPED (promtool is not installed here)");
        return;
    }
    let directory = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(
            &directory.path().join("logbook.db"),
            SqliteOptions::default(),
        )
        .unwrap(),
    );
    let settings = ServerSettings {
        delivery: DeliverySettings {
            allow_private_destinations: true,
            poll_interval: Duration::from_millis(20),
            ..DeliverySettings::default()
        },
        ..ServerSettings::default()
    };
    let state = AppState::new(store.clone(), Arc::new(SystemClock), settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(logbook_server::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    let (receiver_url, answers) = start_receiver().await;
    let account = AccountId::parse("metrics").unwrap();
    store
        .create_account(&account, SystemClock.now())
        .await
        .unwrap();
    store
        .alerting()
        .create_destination(NewDestination {
            destination_id: "dst_metrics".to_owned().into(),
            account: account.clone(),
            name: "metrics".to_owned(),
            kind: DestinationKind::webhook(&receiver_url).unwrap(),
            secret: SigningSecret("whsec_metrics".to_owned()),
            streams_whole_log: true,
            start_seq: 0,
            created_at: SystemClock.now(),
        })
        .await
        .unwrap();
    let key = PlaintextApiKey::from_random_bytes([7; 17]);
    store
        .create_api_key(NewApiKey {
            key_id: "key_metrics".to_owned().into(),
            key_hash: key.hash(),
            owner: KeyOwner::Account(account.clone()),
            scopes: Scopes::parse("ingest").unwrap(),
            display_prefix: key.display_prefix(),
            description: None,
            created_at: SystemClock.now(),
        })
        .await
        .unwrap();
    let key = key.expose().to_owned();
    let scrape = || async {
        reqwest::get(format!("{base_url}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let before = scrape().await;
    let keyed = |key: &str| json!({"action": "server.reboot", "message": "reboot", "key": key});
    ingest(&base_url, &key, vec![keyed("a"), keyed("b"), keyed("c")]).await;
    // Two replays and one new event.
    ingest(&base_url, &key, vec![keyed("a"), keyed("b"), keyed("d")]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while answers
        .lock()
        .unwrap()
        .iter()
        .filter(|answer| **answer == StatusCode::OK)
        .count()
        < 4
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the four deliveries did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The worker publishes the backlog gauges on its next round.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let page = scrape().await;
    let grew = |series: &str| {
        sample(&page, series).unwrap_or_default() - sample(&before, series).unwrap_or_default()
    };
    assert_eq!(grew("logbook_events_accepted_total"), 4.0, "{page}");
    assert_eq!(grew("logbook_events_replayed_total"), 2.0, "{page}");
    let labels = r#"{destination="dst_metrics",account="metrics"}"#;
    assert_eq!(
        sample(&page, &format!("logbook_deliveries_sent_total{labels}")),
        Some(4.0)
    );
    assert_eq!(
        sample(
            &page,
            r#"logbook_delivery_failures_total{destination="dst_metrics",account="metrics",reason="refused"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&page, &format!("logbook_delivery_backlog{labels}")),
        Some(0.0)
    );
    for family in [
        "logbook_writer_queue_depth",
        "logbook_commit_seconds",
        "logbook_attention_lag_events",
        "logbook_delivery_oldest_pending_age_seconds",
        "logbook_delivery_dead_letters",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(
            page.contains(&format!("# HELP {family} "))
                && page.contains(&format!("# TYPE {family} ")),
            "{family} has its help and type: {page}"
        );
    }

    let mut promtool = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && complaints.trim().is_empty(),
        "promtool check metrics: {complaints}"
    );
    let _ = shutdown.send(());
    serving.await.unwrap().unwrap();
}
