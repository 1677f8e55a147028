//! `/metrics` checked by Prometheus's own linter, `promtool check metrics` (Debian's `prometheus`
//! package), after a server has ingested, replayed and delivered: every family has its help and
//! type, and replays are counted apart from stored events. Without promtool a local run prints
//! `SKIPPED`; under CI it fails.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use logbook_core::alerting::DestinationKind;
use serde_json::json;

use super::{add_destination, fast_delivery, new_account, start_receiver, start_server};

const PROMTOOL: &str = "/usr/bin/promtool";

fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
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
    let server = start_server(&directory.path().join("logbook.db"), fast_delivery(true)).await;
    let receiver = start_receiver(1).await;
    let account = new_account(&server.store, "metrics").await;
    add_destination(
        &server.store,
        &account,
        "dst_metrics",
        DestinationKind::webhook(&receiver.url).unwrap(),
        true,
    )
    .await;
    let key = server.ingest_key(&account).await;
    let scrape = || async {
        reqwest::get(format!("{}/metrics", server.base_url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let before = scrape().await;
    let keyed = |key: &str| json!({"action": "server.reboot", "message": "reboot", "key": key});
    server
        .send_events(&key, vec![keyed("a"), keyed("b"), keyed("c")])
        .await;
    // Two replays and one new event.
    server
        .send_events(&key, vec![keyed("a"), keyed("b"), keyed("d")])
        .await;
    receiver
        .wait_for("the four deliveries", |requests| {
            requests
                .iter()
                .filter(|request| request.answered == axum::http::StatusCode::OK)
                .count()
                >= 4
        })
        .await;
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
    server.stop().await;
}
