//! `--page-load`: how fast the Activity Logs page of the largest benchmark account renders in a
//! real browser (issue 21, item 7: first contentful paint under 300 ms on the 2-core machine).
//!
//! It generates the full run's workload (same seed, size and Zipf law), loads only the largest
//! account's events (~179,000 with the defaults) into an in-process server, adds an owner who
//! signs in through the sign-in form in Debian's headless Chromium (over chromedriver, as the
//! browser tests do), and loads each page `runs` times after one warm-up load: the sign-in page
//! (almost no work on the server: the baseline of the machine's noise), the Activity Logs page,
//! the page filtered by an actor and the page searching a rare word. For each load it reads
//! Navigation Timing (`responseStart`: the server's answer began; `responseEnd`;
//! `domContentLoadedEventEnd`) and Paint Timing's `first-contentful-paint`, all in milliseconds
//! from the start of the navigation, and prints their p50 and p99. The stylesheet and script are
//! cached after the warm-up load, as for a person who comes back to the page.
//!
//! Without Chromium or chromedriver the run prints a loud SKIPPED line and stops.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use logbook_core::people::{NewUser, Role};
use logbook_core::{Clock, SystemClock};
use serde_json::{Value, json};

use crate::http_load;
use crate::workload::{RARE_WORD, Workload, WorkloadShape};

const OWNER_EMAIL: &str = "owner@bench.example";
const OWNER_PASSWORD: &str = "correct horse battery staple bench";
const WAIT: Duration = Duration::from_secs(30);

/// The `--page-load` run, from the command line.
pub struct PageLoadRun {
    pub event_count: usize,
    pub account_count: usize,
    pub seed: u64,
    pub runs: usize,
}

/// Chromium and chromedriver, from the variables the browser tests read, or why not.
fn browser_tools() -> Result<(PathBuf, PathBuf), String> {
    let chromium = PathBuf::from(
        std::env::var("LOGBOOK_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
    );
    let chromedriver = PathBuf::from(
        std::env::var("LOGBOOK_TEST_CHROMEDRIVER")
            .unwrap_or_else(|_| "/usr/bin/chromedriver".into()),
    );
    for tool in [&chromium, &chromedriver] {
        if !tool.is_file() {
            return Err(format!("{} not found", tool.display()));
        }
    }
    Ok((chromium, chromedriver))
}

/// chromedriver on a free loopback port with one headless Chromium session; the driver is
/// stopped when this is dropped.
struct Chromium {
    driver: Child,
    client: reqwest::Client,
    session_url: String,
    _profile: tempfile::TempDir,
}

impl Chromium {
    async fn start(
        chromium: &std::path::Path,
        chromedriver: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?;
        let profile = tempfile::tempdir()?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()?;
        let driver_url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        loop {
            let ready = client
                .get(format!("{driver_url}/status"))
                .send()
                .await
                .is_ok_and(|answer| answer.status().is_success());
            if ready {
                break;
            }
            if started.elapsed() > WAIT {
                bail!("chromedriver did not start within {WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,800",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let answer: Value = client
            .post(format!("{driver_url}/session"))
            .json(&json!({ "capabilities": { "alwaysMatch": capabilities } }))
            .send()
            .await?
            .json()
            .await?;
        let session_id = answer["value"]["sessionId"]
            .as_str()
            .with_context(|| format!("chromedriver opened no session: {answer}"))?;
        Ok(Self {
            session_url: format!("{driver_url}/session/{session_id}"),
            driver,
            client,
            _profile: profile,
        })
    }

    async fn command(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        let answer: Value = self
            .client
            .post(format!("{}{path}", self.session_url))
            .json(&body)
            .send()
            .await
            .with_context(|| format!("WebDriver {path}"))?
            .json()
            .await
            .with_context(|| format!("WebDriver {path} answered no JSON"))?;
        if let Some(error) = answer["value"]["error"].as_str() {
            bail!(
                "WebDriver {path} failed: {error}: {}",
                answer["value"]["message"]
            );
        }
        Ok(answer["value"].clone())
    }

    /// Navigates and returns when the page's load event has fired (WebDriver's normal page
    /// load strategy).
    async fn goto(&self, url: &str) -> anyhow::Result<()> {
        self.command("/url", json!({ "url": url })).await.map(drop)
    }

    async fn execute(&self, script: &str) -> anyhow::Result<Value> {
        self.command("/execute/sync", json!({ "script": script, "args": [] }))
            .await
    }

    async fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let element = self
            .command("/element", json!({ "using": "css selector", "value": css }))
            .await?;
        let reference = element
            .as_object()
            .and_then(|object| object.values().next())
            .and_then(Value::as_str)
            .with_context(|| format!("no element {css}"))?
            .to_owned();
        self.command(
            &format!("/element/{reference}/value"),
            json!({ "text": text }),
        )
        .await
        .map(drop)
    }

    async fn quit(&self) {
        let _ = self.client.delete(&self.session_url).send().await;
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One page load's timings, in milliseconds from the start of the navigation.
#[derive(Debug, Clone, Copy)]
struct PageTimings {
    response_start: f64,
    response_end: f64,
    dom_content_loaded: f64,
    first_contentful_paint: f64,
}

/// Reads the current page's navigation and paint timings, waiting for the paint entry (it can
/// land just after the load event).
async fn read_timings(browser: &Chromium) -> anyhow::Result<PageTimings> {
    let started = Instant::now();
    loop {
        let value = browser
            .execute(
                "const navigation = performance.getEntriesByType('navigation')[0];
                 const paint = performance.getEntriesByType('paint')
                     .find((entry) => entry.name === 'first-contentful-paint');
                 return {
                     status: navigation.responseStatus,
                     response_start: navigation.responseStart,
                     response_end: navigation.responseEnd,
                     dom_content_loaded: navigation.domContentLoadedEventEnd,
                     first_contentful_paint: paint ? paint.startTime : null,
                 };",
            )
            .await?;
        if value["status"].as_u64() != Some(200) {
            bail!("the page answered {}", value["status"]);
        }
        if let Some(first_contentful_paint) = value["first_contentful_paint"].as_f64() {
            let number = |name: &str| value[name].as_f64().unwrap_or(f64::NAN);
            return Ok(PageTimings {
                response_start: number("response_start"),
                response_end: number("response_end"),
                dom_content_loaded: number("dom_content_loaded"),
                first_contentful_paint,
            });
        }
        if started.elapsed() > WAIT {
            bail!("the page recorded no first contentful paint within {WAIT:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The nearest-rank quantile of `values` (sorted here).
fn quantile(values: &mut [f64], quantile: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((quantile * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

pub async fn run(run: PageLoadRun) -> anyhow::Result<()> {
    let (chromium, chromedriver) = match browser_tools() {
        Ok(tools) => tools,
        Err(why) => {
            println!(
                "\n!!!!!!!! SKIPPED --page-load ({why}): install chromium and chromium-driver, or set LOGBOOK_TEST_CHROMIUM and LOGBOOK_TEST_CHROMEDRIVER !!!!!!!!\n"
            );
            return Ok(());
        }
    };
    let generation_started = Instant::now();
    let workload = Workload::generate(
        WorkloadShape {
            event_count: run.event_count,
            account_count: run.account_count,
            seed: run.seed,
            zipf_exponent: 1.1,
        },
        SystemClock.now(),
    );
    let (largest_account, largest_events) = workload.largest_account();
    let indexes: Vec<usize> = (0..workload.event_count())
        .filter(|&index| workload.event(index).account == largest_account)
        .collect();
    let mut bodies = Vec::new();
    for chunk in indexes.chunks(500) {
        let mut body = Vec::with_capacity(chunk.len() * 500 + 16);
        body.extend_from_slice(b"{\"events\":[");
        for (position, &index) in chunk.iter().enumerate() {
            if position > 0 {
                body.push(b',');
            }
            workload.event(index).write_json(&mut body);
        }
        body.extend_from_slice(b"]}");
        bodies.push((bytes::Bytes::from(body), chunk.len()));
    }
    println!(
        "page load (issue 21): the largest account of the full run's workload ({} events, {} accounts, seed {}), {largest_account}, {largest_events} events, generated in {:.1}s",
        run.event_count,
        run.account_count,
        run.seed,
        generation_started.elapsed().as_secs_f64()
    );

    let running = crate::pruner::PrunerServer::start(
        &workload,
        &largest_account,
        Arc::new(SystemClock),
        None,
    )
    .await?;
    let client = http_load::http_client()?;
    let loaded = http_load::ingest(
        &client,
        &running.base_url,
        &running.ingest_key,
        Arc::new(bodies),
        16,
    )
    .await?;
    println!(
        "loaded {} events in {:.1}s",
        loaded.event_count,
        loaded.elapsed.as_secs_f64()
    );
    crate::server::wait_for_attention_worker(&*running.store, Duration::from_secs(600)).await?;
    let password_hash = tokio::task::spawn_blocking(|| {
        logbook_server::web::password::hash_password_blocking(OWNER_PASSWORD)
    })
    .await?
    .context("hashing the owner's password")?;
    running
        .store
        .people()
        .create_user(NewUser {
            user_id: logbook_server::web::login::new_user_id().into(),
            account: largest_account.clone(),
            email: OWNER_EMAIL.into(),
            role: Role::Owner,
            password_hash,
            created_at: SystemClock.now(),
        })
        .await
        .context("adding the owner")?;

    let browser = Chromium::start(&chromium, &chromedriver).await?;
    let result = measure(
        &browser,
        &running.base_url,
        &workload,
        &largest_account,
        run.runs,
    )
    .await;
    browser.quit().await;
    drop(browser);
    running.stop().await?;
    result
}

async fn measure(
    browser: &Chromium,
    base_url: &str,
    workload: &Workload,
    account: &logbook_core::AccountId,
    runs: usize,
) -> anyhow::Result<()> {
    browser.goto(&format!("{base_url}/login")).await?;
    browser.type_into("#email", OWNER_EMAIL).await?;
    browser
        .type_into("#password", &format!("{OWNER_PASSWORD}\u{E007}"))
        .await?;
    let started = Instant::now();
    loop {
        let heading = browser
            .execute("const heading = document.querySelector('h1'); return heading ? heading.textContent : '';")
            .await?;
        if heading.as_str() == Some("Activity Logs") {
            break;
        }
        if started.elapsed() > WAIT {
            bail!("signing in did not reach the Activity Logs page (it shows {heading})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (actor_id, _) = workload.sample_actor_and_ip(account);
    let search = |query: &str| -> anyhow::Result<String> {
        Ok(reqwest::Url::parse_with_params(&format!("{base_url}/"), &[("q", query)])?.to_string())
    };
    let pages = [
        ("sign-in page (baseline)", format!("{base_url}/login")),
        ("Activity Logs", format!("{base_url}/")),
        (
            "Activity Logs, actor filter",
            search(&format!("actor:{actor_id}"))?,
        ),
        ("Activity Logs, rare word", search(RARE_WORD)?),
    ];
    let mut timings: Vec<Vec<PageTimings>> = pages.iter().map(|_| Vec::new()).collect();
    // Round robin, so a stall of the shared machine falls on every page alike; the first round
    // is the warm-up (cold caches, first stylesheet and script fetch) and is not counted.
    for round in 0..=runs {
        for ((_, url), page_timings) in pages.iter().zip(timings.iter_mut()) {
            browser.goto(url).await?;
            let measured = read_timings(browser).await?;
            if round > 0 {
                page_timings.push(measured);
            }
        }
    }
    println!(
        "page loads in headless Chromium at 1280x800, {runs} each after a warm-up, ms from navigation start (p50 / p99):"
    );
    println!(
        "  {:<30} {:>17} {:>17} {:>17} {:>17}",
        "page", "responseStart", "responseEnd", "DOMContentLoaded", "first paint (FCP)"
    );
    let mut first_contentful_paint_p50 = Vec::new();
    for ((name, _), page_timings) in pages.iter().zip(&timings) {
        let column = |pick: fn(&PageTimings) -> f64| {
            let mut values: Vec<f64> = page_timings.iter().map(pick).collect();
            (quantile(&mut values, 0.5), quantile(&mut values, 0.99))
        };
        let response_start = column(|timings| timings.response_start);
        let response_end = column(|timings| timings.response_end);
        let dom_content_loaded = column(|timings| timings.dom_content_loaded);
        let paint = column(|timings| timings.first_contentful_paint);
        first_contentful_paint_p50.push(paint);
        println!(
            "  {name:<30} {:>7.1} / {:>7.1} {:>7.1} / {:>7.1} {:>7.1} / {:>7.1} {:>7.1} / {:>7.1}",
            response_start.0,
            response_start.1,
            response_end.0,
            response_end.1,
            dom_content_loaded.0,
            dom_content_loaded.1,
            paint.0,
            paint.1
        );
    }
    let baseline = first_contentful_paint_p50[0];
    for ((name, _), paint) in pages.iter().zip(&first_contentful_paint_p50).skip(1) {
        println!(
            "{name}: FCP p50 {:.0} ms, p99 {:.0} ms (target < 300 ms: {}), {:.2}x the sign-in page's p50",
            paint.0,
            paint.1,
            if paint.1 < 300.0 { "met" } else { "MISSED" },
            paint.0 / baseline.0.max(0.001)
        );
    }
    Ok(())
}
