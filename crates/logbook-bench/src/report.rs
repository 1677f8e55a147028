//! The closing report: every figure beside its baseline and ratio, then the targets with
//! the measured value and whether each was met, as Markdown tables that paste into BENCHMARKS.md.

use crate::baseline::BaselineFigures;
use crate::http_load::{ExportFigures, IngestFigures, QueryFigures};
use crate::ratio;

pub struct Summary<'a> {
    pub machine: String,
    pub batched: &'a IngestFigures,
    pub single: &'a IngestFigures,
    pub baseline_one_per_transaction: &'a BaselineFigures,
    pub baseline_batched: &'a BaselineFigures,
    /// Baseline (c), the table you would write by hand (issue 17).
    pub baseline_hand_written: &'a BaselineFigures,
    /// Batched and single ingest offered at half their saturated rates.
    pub rate_batched: &'a IngestFigures,
    pub rate_single: &'a IngestFigures,
    /// Newest 50, ip filter and rare word, run beside `rate_batched`.
    pub query_latencies_beside_ingest: &'a [hdrhistogram::Histogram<u64>],
    pub bytes_per_event: f64,
    /// Bytes written to storage during the batched ingest phase, per event.
    pub batched_written_bytes_per_event: f64,
    pub single_written_bytes_per_event: f64,
    pub largest_account: &'a str,
    pub largest_account_events: usize,
    pub queries: &'a [(&'a str, String, QueryFigures)],
    pub export_ndjson: &'a ExportFigures,
    pub export_csv: &'a ExportFigures,
}

/// CPU model and core count, from /proc on Linux (the only platform the figures are kept for).
pub fn describe_machine() -> String {
    let cpu_info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu_info
        .lines()
        .find_map(|line| {
            line.strip_prefix("model name")
                .and_then(|rest| rest.split(':').nth(1))
        })
        .map_or_else(|| "unknown CPU".to_owned(), |model| model.trim().to_owned());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    format!("{model}, {cores} cores available")
}

/// Bytes this process has caused to be written to storage so far (`write_bytes` of
/// /proc/self/io; 0 where that is unavailable). The server runs in-process, so the difference
/// across a phase is what that phase wrote: WAL frames, checkpoints, and nothing of the network.
pub fn bytes_written_to_storage() -> u64 {
    std::fs::read_to_string("/proc/self/io")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("write_bytes:")?.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn milliseconds(microseconds: u64) -> String {
    format!("{:.2} ms", microseconds as f64 / 1000.0)
}

fn latency_pair(figures: &IngestFigures) -> String {
    format!(
        "{} / {}",
        milliseconds(figures.latency.value_at_quantile(0.5)),
        milliseconds(figures.latency.value_at_quantile(0.99))
    )
}

fn query<'a>(summary: &'a Summary<'a>, name: &str) -> &'a QueryFigures {
    &summary
        .queries
        .iter()
        .find(|(query_name, _, _)| *query_name == name)
        .expect("every query case ran")
        .2
}

pub fn print_summary(summary: &Summary<'_>) {
    let batched_rate = summary.batched.events_per_second();
    let single_rate = summary.single.events_per_second();
    let baseline_batched_rate = summary.baseline_batched.events_per_second();
    let baseline_single_rate = summary.baseline_one_per_transaction.events_per_second();
    let batched_ratio = ratio(batched_rate, baseline_batched_rate);
    let single_ratio = ratio(single_rate, baseline_single_rate);

    println!();
    println!("## Figures ({})", summary.machine);
    println!();
    println!("| figure | Logbook | baseline | ratio |");
    println!("|---|---:|---:|---:|");
    println!(
        "| ingest, batches of 500 ({} events) | {batched_rate:.0} events/s | {baseline_batched_rate:.0} events/s (b: 1000/tx, {} events) | {batched_ratio:.2}x |",
        summary.batched.event_count, summary.baseline_batched.event_count
    );
    println!(
        "| ingest, 1 event/request, 64 producers ({} events) | {single_rate:.0} events/s | {baseline_single_rate:.0} events/s (a: 1/tx, {} events) | {single_ratio:.2}x |",
        summary.single.event_count, summary.baseline_one_per_transaction.event_count
    );
    let hand_written_rate = summary.baseline_hand_written.events_per_second();
    let hand_written_ratio = ratio(batched_rate, hand_written_rate);
    let single_hand_written_ratio = ratio(single_rate, hand_written_rate / 10.0);
    println!(
        "| ingest, batches of 500, against the hand-written table | {batched_rate:.0} events/s | {hand_written_rate:.0} events/s (c: hand-written table, 1000/tx, {} events) | {hand_written_ratio:.2}x |",
        summary.baseline_hand_written.event_count
    );
    println!(
        "| ingest, 1 event/request, against the hand-written table ÷ 10 | {single_rate:.0} events/s | {:.0} events/s (c ÷ 10) | {single_hand_written_ratio:.2}x |",
        hand_written_rate / 10.0
    );
    println!(
        "| ack latency p50 / p99, batches of 500 | {} | | |",
        latency_pair(summary.batched)
    );
    println!(
        "| ack latency p50 / p99, batches of 500 at half rate ({:.0} events/s offered) | {} | | |",
        summary.batched.events_per_second() / 2.0,
        latency_pair(summary.rate_batched)
    );
    println!(
        "| ack latency p50 / p99, 1 event/request at half rate ({:.0} events/s offered) | {} | | |",
        summary.single.events_per_second() / 2.0,
        latency_pair(summary.rate_single)
    );
    for (name, latency) in ["newest 50", "ip filter", "rare word"]
        .iter()
        .zip(summary.query_latencies_beside_ingest)
    {
        println!(
            "| query p50 / p99 beside batched ingest at half rate: {name} ({} runs) | {} / {} | | |",
            latency.len(),
            milliseconds(latency.value_at_quantile(0.5)),
            milliseconds(latency.value_at_quantile(0.99))
        );
    }
    println!(
        "| ack latency p50 / p99, 1 event/request | {} | | |",
        latency_pair(summary.single)
    );
    println!(
        "| bytes on disk per event (db + WAL after checkpoint) | {:.0} B | {:.0} B (b) | {:.2}x |",
        summary.bytes_per_event,
        summary.baseline_batched.bytes_per_event,
        ratio(
            summary.bytes_per_event,
            summary.baseline_batched.bytes_per_event
        )
    );
    println!(
        "| bytes written to storage per event, batches of 500 | {:.0} B | {:.0} B (b) | {:.2}x |",
        summary.batched_written_bytes_per_event,
        summary.baseline_batched.written_bytes_per_event,
        ratio(
            summary.batched_written_bytes_per_event,
            summary.baseline_batched.written_bytes_per_event
        )
    );
    println!(
        "| bytes written to storage per event, batches of 500, against the hand-written table | {:.0} B | {:.0} B (c) | {:.2}x |",
        summary.batched_written_bytes_per_event,
        summary.baseline_hand_written.written_bytes_per_event,
        ratio(
            summary.batched_written_bytes_per_event,
            summary.baseline_hand_written.written_bytes_per_event
        )
    );
    println!(
        "| bytes on disk per event, against the hand-written table | {:.0} B | {:.0} B (c) | {:.2}x |",
        summary.bytes_per_event,
        summary.baseline_hand_written.bytes_per_event,
        ratio(
            summary.bytes_per_event,
            summary.baseline_hand_written.bytes_per_event
        )
    );
    println!(
        "| bytes written to storage per event, 1 event/request | {:.0} B | {:.0} B (a) | {:.2}x |",
        summary.single_written_bytes_per_event,
        summary.baseline_one_per_transaction.written_bytes_per_event,
        ratio(
            summary.single_written_bytes_per_event,
            summary.baseline_one_per_transaction.written_bytes_per_event
        )
    );
    for (name, query_text, figures) in summary.queries {
        println!(
            "| query p50 / p99 on the largest account ({} events): {name} `{}` ({} runs) | {} / {} | | |",
            summary.largest_account_events,
            if query_text.is_empty() {
                "limit=50"
            } else {
                query_text
            },
            figures.latency.len(),
            milliseconds(figures.latency.value_at_quantile(0.5)),
            milliseconds(figures.latency.value_at_quantile(0.99)),
        );
    }
    for (format, figures) in [
        ("NDJSON", summary.export_ndjson),
        ("CSV", summary.export_csv),
    ] {
        println!(
            "| export {format} of the largest account ({} events, {:.1} MB) | {:.0} events/s | | |",
            figures.event_count,
            figures.byte_count as f64 / 1e6,
            figures.events_per_second()
        );
    }

    let newest_p99 = query(summary, "newest 50").latency.value_at_quantile(0.99);
    let ip_p99 = query(summary, "ip filter").latency.value_at_quantile(0.99);
    let rare_p99 = query(summary, "rare word").latency.value_at_quantile(0.99);
    let export_rate = summary.export_ndjson.events_per_second();
    let rate_batched_p99 = summary.rate_batched.latency.value_at_quantile(0.99);
    let rate_single_p99 = summary.rate_single.latency.value_at_quantile(0.99);
    let beside_p99 = |index: usize| {
        summary
            .query_latencies_beside_ingest
            .get(index)
            .map_or(u64::MAX, |latency| latency.value_at_quantile(0.99))
    };
    let targets: [(&str, String, String, bool); 14] = [
        (
            "batched ingest ÷ baseline (c), the hand-written table",
            "≥ 1.0x".into(),
            format!("{hand_written_ratio:.2}x"),
            hand_written_ratio >= 1.0,
        ),
        (
            "single-event ingest ÷ (baseline (c) ÷ 10)",
            "≥ 1.0x".into(),
            format!("{single_hand_written_ratio:.2}x"),
            single_hand_written_ratio >= 1.0,
        ),
        (
            "batched ack p99 at half rate",
            "≤ 100 ms".into(),
            milliseconds(rate_batched_p99),
            rate_batched_p99 <= 100_000,
        ),
        (
            "single-event ack p99 at half rate",
            "≤ 25 ms".into(),
            milliseconds(rate_single_p99),
            rate_single_p99 <= 25_000,
        ),
        (
            "bytes written to storage per batched event",
            "≤ 3 KB".into(),
            format!("{:.0} B", summary.batched_written_bytes_per_event),
            summary.batched_written_bytes_per_event <= 3_000.0,
        ),
        (
            "newest-50 p99 beside ingest at half rate",
            "≤ 1 ms".into(),
            milliseconds(beside_p99(0)),
            beside_p99(0) <= 1_000,
        ),
        (
            "ip filter p99 beside ingest at half rate",
            "≤ 5 ms".into(),
            milliseconds(beside_p99(1)),
            beside_p99(1) <= 5_000,
        ),
        (
            "rare word p99 beside ingest at half rate",
            "≤ 5 ms".into(),
            milliseconds(beside_p99(2)),
            beside_p99(2) <= 5_000,
        ),
        (
            "batched ingest ÷ baseline (b)",
            "≥ 2.0x".into(),
            format!("{batched_ratio:.2}x"),
            batched_ratio >= 2.0,
        ),
        (
            "single-event ingest ÷ baseline (a)",
            "≥ 3.4x".into(),
            format!("{single_ratio:.2}x"),
            single_ratio >= 3.4,
        ),
        (
            "newest-50 p99",
            "≤ 1 ms".into(),
            milliseconds(newest_p99),
            newest_p99 <= 1_000,
        ),
        (
            "ip filter p99",
            "≤ 5 ms".into(),
            milliseconds(ip_p99),
            ip_p99 <= 5_000,
        ),
        (
            "rare word p99",
            "≤ 5 ms".into(),
            milliseconds(rare_p99),
            rare_p99 <= 5_000,
        ),
        (
            "export NDJSON",
            "≥ 500000 events/s".into(),
            format!("{export_rate:.0} events/s"),
            export_rate >= 500_000.0,
        ),
    ];
    println!();
    println!("## Targets (largest account: {})", summary.largest_account);
    println!();
    println!("| target | wanted | actual | met |");
    println!("|---|---|---|---|");
    for (name, wanted, actual, met) in &targets {
        println!(
            "| {name} | {wanted} | {actual} | {} |",
            if *met { "yes" } else { "NO" }
        );
    }
    let met_count = targets.iter().filter(|(_, _, _, met)| *met).count();
    println!();
    println!("{met_count} of {} targets met", targets.len());
}
