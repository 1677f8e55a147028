//! Google's Lighthouse (npm `lighthouse`, pinned in `lighthouse/package.json`) scores the sign-in
//! page, the Activity Logs page and the event view for accessibility and best practices (issue 21,
//! item 7: each at least 95). It runs against the same headless Chromium the other browser tests
//! drive: the test signs in through WebDriver, then Lighthouse connects to that browser's DevTools
//! port and audits each page in a new tab of the signed-in profile, the way Lighthouse's own
//! documentation audits pages behind a login.
//!
//! The Lighthouse package is installed by `.ci/run` (`npm ci` in `lighthouse/`). Without it a local
//! run prints a loud `SKIPPED` line; under CI (`CI=true`) the test fails instead.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use super::{Chromium, Site, browser_tools, sign_in};

/// The lowest score (0 to 1) either category may have on any audited page.
const LOWEST_SCORE: f64 = 0.95;

fn lighthouse_binary() -> Option<PathBuf> {
    let binary = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser/lighthouse/node_modules/.bin/lighthouse");
    if binary.is_file() {
        return Some(binary);
    }
    if std::env::var("CI").is_ok_and(|value| value == "true") {
        panic!(
            "Lighthouse not found at {}: CI must run `npm ci` in crates/logbook/tests/browser/lighthouse",
            binary.display()
        );
    }
    eprintln!(
        "\n!!!!!!!! SKIPPED (Lighthouse not found at {}): run `npm ci` in crates/logbook/tests/browser/lighthouse !!!!!!!!\n",
        binary.display()
    );
    None
}

/// The port of the running Chromium's DevTools, which it writes into its profile on start.
fn devtools_port(chromium: &Chromium) -> u16 {
    let written = std::fs::read_to_string(chromium._profile.path().join("DevToolsActivePort"))
        .expect("Chromium writes DevToolsActivePort into its profile");
    written
        .lines()
        .next()
        .and_then(|line| line.trim().parse().ok())
        .expect("DevToolsActivePort starts with the port")
}

/// Lighthouse's report of `url`, audited in the browser listening on `port`.
fn audit(lighthouse: &PathBuf, port: u16, url: &str) -> Value {
    let output = Command::new(lighthouse)
        .arg(url)
        .arg(format!("--port={port}"))
        .args([
            "--only-categories=accessibility,best-practices",
            "--preset=desktop",
            "--output=json",
            "--output-path=stdout",
            "--quiet",
            // The session lives in the browser's profile; clearing storage would sign it out.
            "--disable-storage-reset",
        ])
        .output()
        .expect("lighthouse runs");
    assert!(
        output.status.success(),
        "lighthouse failed on {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("lighthouse prints its JSON report")
}

/// The category's score, after naming every audit of it that did not pass (so a drop says why).
fn score_of(report: &Value, category: &str, page: &str) -> f64 {
    let score = report["categories"][category]["score"]
        .as_f64()
        .unwrap_or_else(|| panic!("{page}: no {category} score in the report"));
    for reference in report["categories"][category]["auditRefs"]
        .as_array()
        .unwrap()
    {
        let audit = &report["audits"][reference["id"].as_str().unwrap()];
        if reference["weight"].as_f64().unwrap_or(0.0) > 0.0
            && audit["score"].as_f64().is_some_and(|score| score < 1.0)
        {
            eprintln!(
                "{page}: {category} audit not passed: {} ({}): {}",
                audit["id"], audit["title"], audit["details"]["items"]
            );
        }
    }
    score
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lighthouse_scores_the_sign_in_page_the_activity_logs_and_the_event_view_at_least_95() {
    let Some(tools) = browser_tools() else { return };
    let Some(lighthouse) = lighthouse_binary() else {
        return;
    };
    let mut site = Site::new();
    site.account("acme");
    site.user("acme", "owner@acme.example", "owner");
    let key = site.key("acme");
    site.serve();
    let alice = json!({"id": "alice@acme.example", "name": "Alice", "type": "user"});
    let mut events = Vec::new();
    for index in 0..40 {
        events.push(json!({
            "action": if index % 3 == 0 { "server.resize" } else { "user.login" },
            "message": format!("Alice changed server web-{index}"),
            "actor": alice,
            "ip": format!("203.0.113.{}", index % 7),
            "outcome": if index % 5 == 0 { "failure" } else { "success" },
            "targets": [{"type": "server", "id": format!("web-{index}")}],
            "changes": [{"field": "size", "old": "s-1vcpu-1gb", "new": "s-2vcpu-4gb"}],
        }));
    }
    let ids = site.send(&key, Value::Array(events)).await;

    let chromium = Chromium::start(&tools).await;
    let port = devtools_port(&chromium);
    let sign_in_url = site.url("/login");
    let sign_in_report = audit(&lighthouse, port, &sign_in_url);
    sign_in(chromium.browser(), &site, "owner@acme.example").await;
    let activity_url = site.url("/");
    let event_url = site.url(&format!("/events/{}", ids[0]));
    let pages = [
        ("the sign-in page", sign_in_url.clone(), sign_in_report),
        (
            "the Activity Logs page",
            activity_url.clone(),
            audit(&lighthouse, port, &activity_url),
        ),
        (
            "the event view",
            event_url.clone(),
            audit(&lighthouse, port, &event_url),
        ),
    ];
    let mut scores = Vec::new();
    for (page, url, report) in &pages {
        // Each audit must have scored the page meant, not a redirect (to the sign-in form).
        assert_eq!(
            report["finalDisplayedUrl"].as_str().unwrap_or_default(),
            url,
            "{page} was not the page Lighthouse scored"
        );
        for category in ["accessibility", "best-practices"] {
            scores.push((*page, category, score_of(report, category, page)));
        }
    }
    eprintln!("Lighthouse scores: {scores:?}");
    for (page, category, score) in scores {
        assert!(
            score >= LOWEST_SCORE,
            "{page}: {category} scored {score}, below {LOWEST_SCORE}"
        );
    }
    chromium.stop().await;
}
