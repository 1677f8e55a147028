//! The HTTP side of the benchmark: ingest with pre-serialized bodies from many concurrent
//! connections, timed queries, and timed exports, each recorded in an HDR histogram.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;

/// Request bodies, each with the number of events it holds.
pub type RequestBodies = Vec<(Bytes, usize)>;

/// Throughput and acknowledgement latency of one ingest phase.
pub struct IngestFigures {
    pub event_count: usize,
    pub elapsed: Duration,
    /// Per request, in microseconds.
    pub latency: Histogram<u64>,
    /// When the phase's acknowledged events first reached each whole million (1, 2, ...), from
    /// its start: the rate of each million shows how ingest slows as the store grows (issue 17,
    /// item 4). Empty for phases of fewer than a million events.
    pub million_reached_after: Vec<Duration>,
}

/// Events per million-event mark of [`IngestFigures::million_reached_after`].
pub const EVENTS_PER_MARK: usize = 1_000_000;

impl IngestFigures {
    pub fn events_per_second(&self) -> f64 {
        self.event_count as f64 / self.elapsed.as_secs_f64()
    }

    /// The rate of each whole million of the phase's events, in the order they were acknowledged.
    pub fn events_per_second_of_each_million(&self) -> Vec<f64> {
        let mut previous_mark = Duration::ZERO;
        self.million_reached_after
            .iter()
            .map(|&reached_after| {
                let seconds = (reached_after - previous_mark).as_secs_f64();
                previous_mark = reached_after;
                EVENTS_PER_MARK as f64 / seconds
            })
            .collect()
    }
}

pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")
}

pub fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        // The server closes a kept-alive connection that sends no request within its header read
        // timeout (10 s by default); a pooled connection idle that long (the single-event phase's,
        // across the half-rate batched phase and its queries) could be reused in the very instant
        // the server closed it, and the request failed with a reset. Dropping idle connections
        // sooner leaves the closing to the client.
        .pool_idle_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(120))
        .build()
        .context("building the HTTP client")
}

/// Sends every body (each holding `events_per_body` events) from `concurrency` tasks, each taking
/// the next body from a shared counter, and checks that every event of every answer was accepted.
pub async fn ingest(
    client: &reqwest::Client,
    base_url: &str,
    ingest_key: &str,
    bodies: Arc<RequestBodies>,
    concurrency: usize,
) -> anyhow::Result<IngestFigures> {
    let next_body = Arc::new(AtomicUsize::new(0));
    let acknowledged_events = Arc::new(AtomicUsize::new(0));
    let million_reached_after = Arc::new(std::sync::Mutex::new(Vec::new()));
    let url = format!("{base_url}/api/v1/events");
    let authorization = format!("Bearer {ingest_key}");
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let client = client.clone();
        let bodies = Arc::clone(&bodies);
        let next_body = Arc::clone(&next_body);
        let acknowledged_events = Arc::clone(&acknowledged_events);
        let million_reached_after = Arc::clone(&million_reached_after);
        let url = url.clone();
        let authorization = authorization.clone();
        tasks.push(tokio::spawn(async move {
            let mut latency = new_latency_histogram();
            let mut event_count = 0usize;
            loop {
                let index = next_body.fetch_add(1, Ordering::Relaxed);
                let Some((body, events_in_body)) = bodies.get(index) else {
                    break;
                };
                let sent_at = Instant::now();
                let response = client
                    .post(&url)
                    .header("authorization", &authorization)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .context("sending an ingest request")?;
                let status = response.status();
                let answer = response.bytes().await.context("reading an ingest answer")?;
                latency.saturating_record(sent_at.elapsed().as_micros() as u64);
                if !status.is_success() {
                    bail!(
                        "ingest answered {status}: {}",
                        String::from_utf8_lossy(&answer[..answer.len().min(500)])
                    );
                }
                check_all_accepted(&answer, *events_in_body)?;
                event_count += events_in_body;
                let acknowledged_before =
                    acknowledged_events.fetch_add(*events_in_body, Ordering::Relaxed);
                let marks_crossed = (acknowledged_before + events_in_body) / EVENTS_PER_MARK
                    - acknowledged_before / EVENTS_PER_MARK;
                if marks_crossed > 0 {
                    let reached_after = started.elapsed();
                    million_reached_after
                        .lock()
                        .expect("no task panics holding the marks")
                        .extend(std::iter::repeat_n(reached_after, marks_crossed));
                }
            }
            anyhow::Ok((latency, event_count))
        }));
    }
    let mut latency = new_latency_histogram();
    let mut event_count = 0;
    for task in tasks {
        let (task_latency, task_events) = task.await.context("an ingest task panicked")??;
        latency.add(task_latency).expect("histograms share bounds");
        event_count += task_events;
    }
    let mut million_reached_after = std::mem::take(
        &mut *million_reached_after
            .lock()
            .expect("no task panics holding the marks"),
    );
    // Two tasks can cross consecutive marks and take the lock in the other order.
    million_reached_after.sort();
    Ok(IngestFigures {
        event_count,
        elapsed: started.elapsed(),
        latency,
        million_reached_after,
    })
}

/// The answer's top-level `accepted` must equal the number of events sent. A cheap byte search
/// keeps the client's cost low; a mismatch falls back to a full parse for a clear error.
fn check_all_accepted(answer: &[u8], expected: usize) -> anyhow::Result<()> {
    let needle = format!("\"accepted\":{expected}");
    let head = &answer[..answer.len().min(200)];
    if head
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
    {
        return Ok(());
    }
    let parsed: serde_json::Value =
        serde_json::from_slice(answer).context("ingest answer is not JSON")?;
    if parsed["accepted"].as_u64() == Some(expected as u64) {
        return Ok(());
    }
    bail!(
        "ingest accepted {} of {expected} events; first results: {}",
        parsed["accepted"],
        parsed["results"]
            .as_array()
            .map(|results| results
                .iter()
                .take(3)
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "))
            .unwrap_or_default()
    )
}

/// Latency of one query, run `run_count` times in a row after a short warm-up.
pub struct QueryFigures {
    pub latency: Histogram<u64>,
    pub events_returned: usize,
}

pub async fn time_query(
    client: &reqwest::Client,
    base_url: &str,
    read_key: &str,
    query_text: &str,
    run_count: usize,
) -> anyhow::Result<QueryFigures> {
    let request = || {
        let mut builder = client
            .get(format!("{base_url}/api/v1/events"))
            .bearer_auth(read_key);
        builder = if query_text.is_empty() {
            builder.query(&[("limit", "50")])
        } else {
            builder.query(&[("limit", "50"), ("q", query_text)])
        };
        builder
    };
    let warm_up = request().send().await.context("sending a query")?;
    let status = warm_up.status();
    let first_answer = warm_up.bytes().await?;
    if !status.is_success() {
        bail!(
            "query {query_text:?} answered {status}: {}",
            String::from_utf8_lossy(&first_answer)
        );
    }
    let parsed: serde_json::Value =
        serde_json::from_slice(&first_answer).context("query answer is not JSON")?;
    let events_returned = parsed["events"].as_array().map_or(0, Vec::len);
    for _ in 0..10 {
        request().send().await?.bytes().await?;
    }
    let mut latency = new_latency_histogram();
    for _ in 0..run_count {
        let sent_at = Instant::now();
        let response = request().send().await?;
        let status = response.status();
        response.bytes().await?;
        latency.saturating_record(sent_at.elapsed().as_micros() as u64);
        if !status.is_success() {
            bail!("query {query_text:?} answered {status}");
        }
    }
    Ok(QueryFigures {
        latency,
        events_returned,
    })
}

pub struct ExportFigures {
    pub event_count: usize,
    pub byte_count: usize,
    pub elapsed: Duration,
}

impl ExportFigures {
    pub fn events_per_second(&self) -> f64 {
        self.event_count as f64 / self.elapsed.as_secs_f64()
    }
}

/// Streams a whole export and counts its records (lines; CSV minus its header line).
pub async fn time_export(
    client: &reqwest::Client,
    base_url: &str,
    read_key: &str,
    format: &str,
) -> anyhow::Result<ExportFigures> {
    let started = Instant::now();
    let mut response = client
        .get(format!("{base_url}/api/v1/events/export"))
        .bearer_auth(read_key)
        .query(&[("format", format)])
        .send()
        .await
        .context("starting an export")?;
    if !response.status().is_success() {
        let status = response.status();
        bail!(
            "export answered {status}: {}",
            response.text().await.unwrap_or_default()
        );
    }
    let mut line_count = 0usize;
    let mut byte_count = 0usize;
    while let Some(chunk) = response.chunk().await.context("reading an export")? {
        byte_count += chunk.len();
        // memchr's SIMD search keeps the client's share of the two cores small.
        line_count += memchr::memchr_iter(b'\n', &chunk).count();
    }
    let elapsed = started.elapsed();
    let event_count = if format == "csv" {
        line_count.saturating_sub(1)
    } else {
        line_count
    };
    Ok(ExportFigures {
        event_count,
        byte_count,
        elapsed,
    })
}

/// The store's own commit figures from `/metrics`, to explain the ingest figures: how many
/// commits (fsyncs) a phase took, how many events each carried, and time spent committing and
/// checkpointing.
#[derive(Debug, Clone, Default)]
pub struct CommitCounters {
    pub commit_count: f64,
    pub committed_events: f64,
    pub commit_seconds: f64,
    /// Of `commit_seconds`, writing the WAL and fsyncing (SQLite only).
    pub durable_seconds: f64,
    pub checkpoint_count: f64,
    pub checkpoint_seconds: f64,
    /// The SQLite writer's seconds per phase (`logbook_writer_phase_seconds`), by phase name.
    pub phase_seconds: Vec<(String, f64)>,
}

impl CommitCounters {
    pub async fn scrape(client: &reqwest::Client, base_url: &str) -> anyhow::Result<Self> {
        let text = client
            .get(format!("{base_url}/metrics"))
            .send()
            .await?
            .text()
            .await?;
        let sum_of = |name: &str| -> f64 {
            text.lines()
                .filter(|line| {
                    line.strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
                })
                .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        Ok(Self {
            commit_count: sum_of("logbook_commit_seconds_count"),
            committed_events: sum_of("logbook_commit_events_sum"),
            commit_seconds: sum_of("logbook_commit_seconds_sum"),
            durable_seconds: sum_of("logbook_commit_durable_seconds_sum"),
            checkpoint_count: sum_of("logbook_checkpoint_seconds_count"),
            checkpoint_seconds: sum_of("logbook_checkpoint_seconds_sum"),
            phase_seconds: text
                .lines()
                .filter_map(|line| {
                    let rest = line.strip_prefix("logbook_writer_phase_seconds_sum{")?;
                    let phase = rest.split("phase=\"").nth(1)?.split('"').next()?;
                    let seconds = line.rsplit(' ').next()?.parse::<f64>().ok()?;
                    Some((phase.to_owned(), seconds))
                })
                .collect(),
        })
    }

    /// The writer's microseconds per committed event in each phase between `earlier` and `self`,
    /// with the WAL write and fsync of the commit as the last phase; empty on PostgreSQL.
    pub fn phase_micros_per_event_since(&self, earlier: &Self) -> Vec<(String, f64)> {
        let events = (self.committed_events - earlier.committed_events).max(1.0);
        let mut phases: Vec<(String, f64)> = self
            .phase_seconds
            .iter()
            .map(|(phase, seconds)| {
                let before = earlier
                    .phase_seconds
                    .iter()
                    .find(|(earlier_phase, _)| earlier_phase == phase)
                    .map_or(0.0, |(_, seconds)| *seconds);
                (phase.clone(), (seconds - before) * 1e6 / events)
            })
            .collect();
        if !phases.is_empty() {
            phases.push((
                "commit (WAL write + fsync)".to_owned(),
                (self.durable_seconds - earlier.durable_seconds) * 1e6 / events,
            ));
        }
        phases
    }

    /// What happened between `earlier` and `self`, as one printable line.
    pub fn describe_since(&self, earlier: &Self) -> String {
        let commits = self.commit_count - earlier.commit_count;
        let events = self.committed_events - earlier.committed_events;
        let commit_seconds = self.commit_seconds - earlier.commit_seconds;
        format!(
            "{commits:.0} commits, {:.1} events per commit, {:.2} ms per commit (insert + fsync) of which {:.2} ms WAL write + fsync, {:.0} checkpoints taking {:.2}s",
            events / commits.max(1.0),
            commit_seconds * 1000.0 / commits.max(1.0),
            (self.durable_seconds - earlier.durable_seconds) * 1000.0 / commits.max(1.0),
            self.checkpoint_count - earlier.checkpoint_count,
            self.checkpoint_seconds - earlier.checkpoint_seconds
        )
    }
}

/// What a fixed-rate ingest did: the events stored, how long it took, every request's latency
/// (refused ones included), and the requests the server refused, by status and answer.
pub struct FixedRateIngest {
    pub event_count: usize,
    pub elapsed: Duration,
    /// Per request, in microseconds.
    pub latency: Histogram<u64>,
    pub failures: Vec<(u16, String)>,
}

/// Sends every body at a fixed offered rate (`requests_per_second`), open loop: request `i` is
/// due at `start + i / rate` whether or not earlier ones were answered, and its latency runs from
/// when it was due, so a server that falls behind shows it in the tail instead of slowing the
/// sender down (no coordinated omission). A request the server refuses is counted and kept, not
/// fatal: a pruner that starves the writer shows as failures (`--pruner`).
pub async fn ingest_at_fixed_rate_counting_failures(
    client: &reqwest::Client,
    base_url: &str,
    ingest_key: &str,
    bodies: Arc<RequestBodies>,
    requests_per_second: f64,
) -> anyhow::Result<FixedRateIngest> {
    let url = Arc::new(format!("{base_url}/api/v1/events"));
    let authorization = Arc::new(format!("Bearer {ingest_key}"));
    let interval = Duration::from_secs_f64(1.0 / requests_per_second.max(0.001));
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(bodies.len());
    for index in 0..bodies.len() {
        let due = started + interval * index as u32;
        tokio::time::sleep_until(due).await;
        let client = client.clone();
        let bodies = Arc::clone(&bodies);
        let url = Arc::clone(&url);
        let authorization = Arc::clone(&authorization);
        tasks.push(tokio::spawn(async move {
            let (body, events_in_body) = &bodies[index];
            let response = client
                .post(url.as_str())
                .header("authorization", authorization.as_str())
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .context("sending an ingest request")?;
            let status = response.status();
            let answer = response.bytes().await.context("reading an ingest answer")?;
            let latency = due.elapsed();
            if !status.is_success() {
                let failure = (
                    status.as_u16(),
                    String::from_utf8_lossy(&answer[..answer.len().min(500)]).into_owned(),
                );
                return anyhow::Ok((latency, *events_in_body, Some(failure)));
            }
            check_all_accepted(&answer, *events_in_body)?;
            anyhow::Ok((latency, *events_in_body, None))
        }));
    }
    let mut figures = FixedRateIngest {
        event_count: 0,
        elapsed: Duration::ZERO,
        latency: new_latency_histogram(),
        failures: Vec::new(),
    };
    for task in tasks {
        let (latency, events, failure) = task.await.context("an ingest task panicked")??;
        figures
            .latency
            .saturating_record(latency.as_micros() as u64);
        match failure {
            Some(failure) => figures.failures.push(failure),
            None => figures.event_count += events,
        }
    }
    figures.elapsed = started.elapsed();
    Ok(figures)
}

/// `ingest_at_fixed_rate_counting_failures`, where any refused request ends the run.
pub async fn ingest_at_fixed_rate(
    client: &reqwest::Client,
    base_url: &str,
    ingest_key: &str,
    bodies: Arc<RequestBodies>,
    requests_per_second: f64,
) -> anyhow::Result<IngestFigures> {
    let ingested = ingest_at_fixed_rate_counting_failures(
        client,
        base_url,
        ingest_key,
        bodies,
        requests_per_second,
    )
    .await?;
    if let Some((status, answer)) = ingested.failures.first() {
        bail!(
            "ingest answered {status} ({} requests refused): {answer}",
            ingested.failures.len()
        );
    }
    Ok(IngestFigures {
        event_count: ingested.event_count,
        elapsed: ingested.elapsed,
        latency: ingested.latency,
        // At a fixed offered rate every million arrives at that rate: nothing to measure.
        million_reached_after: Vec::new(),
    })
}

/// Runs `query_texts` round robin, one at a time with `pause` between runs, until `stop` is
/// set, and returns one latency histogram per query: query latency while something else (ingest
/// at a fixed rate) runs.
pub async fn query_until_stopped(
    client: reqwest::Client,
    base_url: String,
    read_key: String,
    query_texts: Vec<String>,
    pause: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<Vec<Histogram<u64>>> {
    let mut latencies: Vec<Histogram<u64>> = query_texts
        .iter()
        .map(|_| new_latency_histogram())
        .collect();
    let url = format!("{base_url}/api/v1/events");
    while !stop.load(Ordering::Relaxed) {
        for (query_text, latency) in query_texts.iter().zip(latencies.iter_mut()) {
            let mut builder = client.get(&url).bearer_auth(&read_key);
            builder = if query_text.is_empty() {
                builder.query(&[("limit", "50")])
            } else {
                builder.query(&[("limit", "50"), ("q", query_text.as_str())])
            };
            let sent_at = Instant::now();
            let response = builder.send().await.context("sending a query")?;
            let status = response.status();
            response.bytes().await?;
            latency.saturating_record(sent_at.elapsed().as_micros() as u64);
            if !status.is_success() {
                bail!("query {query_text:?} answered {status}");
            }
            tokio::time::sleep(pause).await;
        }
    }
    Ok(latencies)
}
