//! `GET /metrics`: the process's counters, gauges and histograms in Prometheus text format, each
//! family with its `# HELP` and `# TYPE` (so `promtool check metrics` accepts the page), plus the
//! process's CPU, memory and open files (`metrics-process`, collected at each scrape).
//!
//! Every family Logbook records is named and described here, including those the stores record
//! (commit latency, the writer's queue depth), so this list is the README's.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use metrics::Unit;

use crate::state::AppState;

/// Events stored by ingest requests; replays of an idempotency key are not counted here.
pub const EVENTS_ACCEPTED: &str = "logbook_events_accepted_total";
/// Events answered with what an earlier request stored under the same idempotency key.
pub const EVENTS_REPLAYED: &str = "logbook_events_replayed_total";
/// The events' JSON and proofs written by exports, by format.
pub const EVENTS_EXPORTED: &str = "logbook_events_exported_total";
/// Events removed by retention.
pub const EVENTS_PRUNED: &str = "logbook_events_pruned_total";
/// Events whose personal fields were removed by age.
pub const EVENTS_AGED: &str = "logbook_events_aged_total";
/// Events a request could not store (validation, a reused key, a quota).
pub const EVENTS_REJECTED: &str = "logbook_events_rejected_total";
/// Events per ingest request.
pub const INGEST_BATCH_EVENTS: &str = "logbook_ingest_batch_events";
/// Requests answered, by route template and status class, with their latency.
pub const HTTP_REQUEST_SECONDS: &str = "logbook_http_request_seconds";
/// The store writer's commits: latency (fsync or PostgreSQL `COMMIT` included) and events each.
pub const COMMIT_SECONDS: &str = "logbook_commit_seconds";
pub const COMMIT_EVENTS: &str = "logbook_commit_events";
/// The part of a SQLite group commit spent writing its pages to the WAL and fsyncing.
pub const COMMIT_DURABLE_SECONDS: &str = "logbook_commit_durable_seconds";
/// The SQLite writer's time inside each group, by phase of an event's write.
pub const WRITER_PHASE_SECONDS: &str = "logbook_writer_phase_seconds";
/// Append requests waiting for the store's writer.
pub const WRITER_QUEUE_DEPTH: &str = "logbook_writer_queue_depth";
/// SQLite WAL checkpoints run by the writer or its checkpointer thread.
pub const WAL_CHECKPOINT_SECONDS: &str = "logbook_checkpoint_seconds";
/// The SQLite writer's attempts to start the WAL over, by outcome (`restarted`, or `busy` when a
/// reader outlasted the wait or the background checkpoint was still copying, and the WAL grows
/// until a later attempt).
pub const WAL_RESTARTS: &str = "logbook_wal_restarts_total";
/// Signed tree checkpoints.
pub const CHECKPOINTS_SIGNED: &str = "logbook_checkpoints_signed_total";
/// Queries stopped by the query time budget.
pub const QUERY_TIMEOUTS: &str = "logbook_query_timeouts_total";
/// Requests refused by the fair limits, by scope.
pub const RATE_LIMITED: &str = "logbook_rate_limited_total";
/// "Needs attention" findings stored.
pub const ATTENTION_FINDINGS: &str = "logbook_attention_findings_total";
/// Events stored but not yet examined by the attention worker, over every account.
pub const ATTENTION_LAG: &str = "logbook_attention_lag_events";
/// Deliveries the receiver acknowledged, per destination.
pub const DELIVERIES_SENT: &str = "logbook_deliveries_sent_total";
/// Failed deliveries (`reason="refused"`) and unreachable or unconfirmed connections
/// (`reason="unreachable"`), per destination.
pub const DELIVERY_FAILURES: &str = "logbook_delivery_failures_total";
/// Deliveries moved to the dead letters, per destination.
pub const DELIVERIES_DEAD_LETTERED: &str = "logbook_deliveries_dead_lettered_total";
/// Deliveries neither sent nor dead, per destination.
pub const DELIVERY_BACKLOG: &str = "logbook_delivery_backlog";
/// Seconds since the oldest pending delivery was queued, per destination.
pub const DELIVERY_OLDEST_PENDING_AGE: &str = "logbook_delivery_oldest_pending_age_seconds";
/// Dead letters waiting for a retry, per destination.
pub const DELIVERY_DEAD_LETTERS: &str = "logbook_delivery_dead_letters";

/// Gives every family its help text (and unit). Called once, when the recorder is installed.
pub fn describe_every_family() {
    metrics::describe_counter!(
        EVENTS_ACCEPTED,
        Unit::Count,
        "Events stored by ingest requests (replays of an idempotency key are counted apart)."
    );
    metrics::describe_counter!(
        EVENTS_REPLAYED,
        Unit::Count,
        "Events answered with the event an earlier request stored under the same idempotency key; nothing new was stored."
    );
    metrics::describe_counter!(
        EVENTS_REJECTED,
        Unit::Count,
        "Events an ingest request could not store: invalid, an idempotency key reused with other content, or over a quota."
    );
    metrics::describe_counter!(
        EVENTS_PRUNED,
        "Events removed by retention (their compact range and a signed statement are kept)"
    );
    metrics::describe_counter!(
        EVENTS_AGED,
        "Events whose personal fields were removed by age (the events and their proofs stay)"
    );
    metrics::describe_counter!(
        EVENTS_EXPORTED,
        Unit::Count,
        "Events written by exports, by format."
    );
    metrics::describe_histogram!(
        INGEST_BATCH_EVENTS,
        Unit::Count,
        "Events per ingest request."
    );
    metrics::describe_histogram!(
        HTTP_REQUEST_SECONDS,
        Unit::Seconds,
        "Time to answer a request, by route template and status class."
    );
    metrics::describe_histogram!(
        COMMIT_SECONDS,
        Unit::Seconds,
        "Time of one group commit of the store's writer, fsync or PostgreSQL COMMIT included."
    );
    metrics::describe_histogram!(
        COMMIT_DURABLE_SECONDS,
        Unit::Seconds,
        "Part of one SQLite group commit spent writing the group's pages to the WAL and fsyncing (the rest is the inserts)."
    );
    metrics::describe_histogram!(
        WRITER_PHASE_SECONDS,
        Unit::Seconds,
        "Time the SQLite writer spent in one group on each phase of writing its events (idempotency lookup, account state, leaf hash, event row, full text, targets, actor history, tree and volume, other)."
    );
    metrics::describe_histogram!(
        COMMIT_EVENTS,
        Unit::Count,
        "Events per group commit of the store's writer."
    );
    metrics::describe_gauge!(
        WRITER_QUEUE_DEPTH,
        Unit::Count,
        "Append requests waiting for the store's writer as it starts a group (0 when idle)."
    );
    metrics::describe_histogram!(
        WAL_CHECKPOINT_SECONDS,
        Unit::Seconds,
        "Time of one SQLite WAL checkpoint."
    );
    metrics::describe_counter!(
        WAL_RESTARTS,
        "Attempts of the SQLite writer to start the WAL over, by outcome (restarted, busy)."
    );
    metrics::describe_counter!(
        CHECKPOINTS_SIGNED,
        Unit::Count,
        "Signed checkpoints of accounts' verifiable logs."
    );
    metrics::describe_counter!(
        QUERY_TIMEOUTS,
        Unit::Count,
        "Queries stopped by the query time budget."
    );
    metrics::describe_counter!(
        RATE_LIMITED,
        Unit::Count,
        "Requests refused by the fair limits, by scope."
    );
    metrics::describe_counter!(
        ATTENTION_FINDINGS,
        Unit::Count,
        "Needs-attention findings stored."
    );
    metrics::describe_gauge!(
        ATTENTION_LAG,
        Unit::Count,
        "Events stored but not yet examined by the attention worker, over every account."
    );
    metrics::describe_counter!(
        DELIVERIES_SENT,
        Unit::Count,
        "Deliveries the receiver acknowledged, per destination."
    );
    metrics::describe_counter!(
        DELIVERY_FAILURES,
        Unit::Count,
        "Deliveries the receiver refused (reason=refused) and connections that could not reach or confirm with it (reason=unreachable), per destination."
    );
    metrics::describe_counter!(
        DELIVERIES_DEAD_LETTERED,
        Unit::Count,
        "Deliveries moved to the dead letters after their last attempt, per destination."
    );
    metrics::describe_gauge!(
        DELIVERY_BACKLOG,
        Unit::Count,
        "Deliveries neither acknowledged nor dead, per destination."
    );
    metrics::describe_gauge!(
        DELIVERY_OLDEST_PENDING_AGE,
        Unit::Seconds,
        "Seconds since the oldest pending delivery was queued, per destination (0 without one)."
    );
    metrics::describe_gauge!(
        DELIVERY_DEAD_LETTERS,
        Unit::Count,
        "Dead letters waiting for a retry from the Alerts page, per destination."
    );
    process_collector().describe();
}

/// CPU seconds, resident and virtual memory, open and maximum file descriptors, threads and
/// start time of this process (`process_*`, the names every Prometheus client uses).
fn process_collector() -> &'static metrics_process::Collector {
    static COLLECTOR: OnceLock<metrics_process::Collector> = OnceLock::new();
    COLLECTOR.get_or_init(metrics_process::Collector::default)
}

pub async fn get(State(state): State<AppState>) -> Response {
    process_collector().collect();
    // Without the exporter's own HTTP listener nothing else runs the upkeep that drains histogram
    // samples, so a scrape does it.
    state.metrics().run_upkeep();
    let mut response = state.metrics().render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
