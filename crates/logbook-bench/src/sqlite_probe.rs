//! `--pruner --pruner-probe` (SQLite only): what a query costs inside SQLite while the pruner
//! runs, apart from HTTP and the server's threads. A thread of the bench with its own read-only
//! connection to the store's database (the store's reader cache and mmap sizes) runs, ten times a
//! second, the rare word's FTS5 lookup alone, the rare word with its rows, and newest 50 (no FTS5
//! at all), and records each as wall time and as the time the thread waited on a run queue
//! (`/proc/thread-self/schedstat`, which the kernel updates at each switch-in), so "the query did
//! more work" (more FTS5 segments or delete markers to read) and "the query waited for a core"
//! can be told apart. Once a second it also counts the FTS5 index's segments (distinct `segid`
//! of `events_fts_idx`) and pages (rows of `events_fts_data`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use hdrhistogram::Histogram;

use crate::http_load::new_latency_histogram;
use crate::workload::RARE_WORD;

/// The probe's three queries, in the order they run.
pub const PROBES: [&str; 3] = ["fts only", "rare word rows", "newest 50 rows"];

/// What the probe saw over one or more phases.
pub struct ProbeFigures {
    /// Per query of `PROBES`, in µs: wall time, wall time less run-queue wait, run-queue wait.
    pub wall: Vec<Histogram<u64>>,
    pub work: Vec<Histogram<u64>>,
    pub wait: Vec<Histogram<u64>>,
    /// FTS5 segments and pages, one sample a second.
    pub segments: Vec<i64>,
    pub data_rows: Vec<i64>,
}

impl ProbeFigures {
    pub fn empty() -> Self {
        let histograms = || PROBES.iter().map(|_| new_latency_histogram()).collect();
        Self {
            wall: histograms(),
            work: histograms(),
            wait: histograms(),
            segments: Vec::new(),
            data_rows: Vec::new(),
        }
    }

    pub fn add(&mut self, other: &ProbeFigures) -> anyhow::Result<()> {
        for index in 0..PROBES.len() {
            self.wall[index].add(&other.wall[index])?;
            self.work[index].add(&other.work[index])?;
            self.wait[index].add(&other.wait[index])?;
        }
        self.segments.extend(&other.segments);
        self.data_rows.extend(&other.data_rows);
        Ok(())
    }

    pub fn describe(&self) -> String {
        let mut text = String::new();
        for (index, name) in PROBES.iter().enumerate() {
            text.push_str(&format!(
                "{name}: wall p50 {} p99 {} work p50 {} p99 {} wait p99 {} µs ({}); ",
                self.wall[index].value_at_quantile(0.5),
                self.wall[index].value_at_quantile(0.99),
                self.work[index].value_at_quantile(0.5),
                self.work[index].value_at_quantile(0.99),
                self.wait[index].value_at_quantile(0.99),
                self.wall[index].len(),
            ));
        }
        let stats = |values: &[i64]| {
            if values.is_empty() {
                return "none".to_owned();
            }
            let min = values.iter().min().unwrap_or(&0);
            let max = values.iter().max().unwrap_or(&0);
            let mean = values.iter().sum::<i64>() as f64 / values.len() as f64;
            format!("{min}/{mean:.1}/{max}")
        };
        text.push_str(&format!(
            "segments min/mean/max {}, %_data rows {}",
            stats(&self.segments),
            stats(&self.data_rows)
        ));
        text
    }
}

/// The probe's thread; figures are collected with `take` and it ends with `stop`.
pub struct SqliteProbe {
    figures: Arc<Mutex<ProbeFigures>>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<anyhow::Result<()>>,
}

/// Nanoseconds this thread has waited runnable for a core since it started (0 where the kernel
/// does not say).
fn run_queue_wait_nanos() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|text| text.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// The store's fixed-width base-36 tag of an account's full-text terms (`account_text_tag` in
/// `logbook-store-sqlite`'s encoding, which is private to the store).
fn account_tag(account_row: i64) -> String {
    let mut digits = [b'0'; 5];
    let mut rest = account_row.unsigned_abs();
    for digit in digits.iter_mut().rev() {
        *digit = b"0123456789abcdefghijklmnopqrstuvwxyz"[(rest % 36) as usize];
        rest /= 36;
    }
    String::from_utf8(digits.to_vec()).expect("base-36 digits are ASCII")
}

impl SqliteProbe {
    pub fn start(database_path: PathBuf, account: &str) -> anyhow::Result<Self> {
        let connection = rusqlite::Connection::open_with_flags(
            &database_path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .context("opening the probe's connection to the store's database")?;
        connection.busy_timeout(Duration::from_secs(10))?;
        connection.execute_batch("PRAGMA cache_size = -16384; PRAGMA mmap_size = 268435456;")?;
        let account_row: i64 = connection
            .query_row(
                "SELECT account_row FROM accounts WHERE name = ?1",
                [account],
                |row| row.get(0),
            )
            .context("reading the probed account's row")?;
        let expression = format!("\"{}{RARE_WORD}\"", account_tag(account_row));
        let first = account_row << 40;
        let last = (account_row + 1) << 40;
        let figures = Arc::new(Mutex::new(ProbeFigures::empty()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let figures = figures.clone();
            let stop = stop.clone();
            std::thread::spawn(move || -> anyhow::Result<()> {
                let mut iteration = 0_u64;
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let mut timings = [(0_u64, 0_u64); 3];
                    for (index, timing) in timings.iter_mut().enumerate() {
                        let wait_before = run_queue_wait_nanos();
                        let clock = Instant::now();
                        let rows: i64 = match index {
                            0 => connection
                                .prepare_cached(
                                    "SELECT count(*) FROM events_fts WHERE events_fts MATCH ?1",
                                )?
                                .query_row([&expression], |row| row.get(0))?,
                            1 => connection
                                .prepare_cached(
                                    "SELECT body FROM events WHERE event_row >= ?1 AND event_row < ?2 \
                                     AND event_row IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?3) \
                                     ORDER BY event_row DESC LIMIT 51",
                                )?
                                .query_map(rusqlite::params![first, last, expression], |row| {
                                    row.get::<_, String>(0).map(|body| body.len() as i64)
                                })?
                                .collect::<Result<Vec<_>, _>>()?
                                .len() as i64,
                            _ => connection
                                .prepare_cached(
                                    "SELECT body FROM events WHERE event_row >= ?1 AND event_row < ?2 \
                                     ORDER BY event_row DESC LIMIT 51",
                                )?
                                .query_map(rusqlite::params![first, last], |row| {
                                    row.get::<_, String>(0).map(|body| body.len() as i64)
                                })?
                                .collect::<Result<Vec<_>, _>>()?
                                .len() as i64,
                        };
                        std::hint::black_box(rows);
                        let wall = clock.elapsed().as_micros() as u64;
                        let wait = run_queue_wait_nanos().saturating_sub(wait_before) / 1000;
                        *timing = (wall, wait);
                    }
                    let (segments, data_rows) = if iteration.is_multiple_of(10) {
                        let segments: i64 = connection.query_row(
                            "SELECT count(DISTINCT segid) FROM events_fts_idx",
                            [],
                            |row| row.get(0),
                        )?;
                        let data_rows: i64 = connection.query_row(
                            "SELECT count(*) FROM events_fts_data",
                            [],
                            |row| row.get(0),
                        )?;
                        (Some(segments), Some(data_rows))
                    } else {
                        (None, None)
                    };
                    {
                        let mut figures = figures.lock().expect("probe figures");
                        for (index, (wall, wait)) in timings.iter().enumerate() {
                            figures.wall[index].saturating_record(*wall);
                            figures.work[index].saturating_record(wall.saturating_sub(*wait));
                            figures.wait[index].saturating_record(*wait);
                        }
                        if let (Some(segments), Some(data_rows)) = (segments, data_rows) {
                            figures.segments.push(segments);
                            figures.data_rows.push(data_rows);
                        }
                    }
                    iteration += 1;
                    let next = Duration::from_millis(100) * iteration as u32;
                    if let Some(sleep) = next.checked_sub(started.elapsed()) {
                        std::thread::sleep(sleep);
                    }
                }
                Ok(())
            })
        };
        Ok(Self {
            figures,
            stop,
            thread,
        })
    }

    /// The figures since the last call.
    pub fn take(&self) -> ProbeFigures {
        std::mem::replace(
            &mut *self.figures.lock().expect("probe figures"),
            ProbeFigures::empty(),
        )
    }

    pub fn stop(self) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .map_err(|_| anyhow::anyhow!("the SQLite probe's thread panicked"))?
    }
}
