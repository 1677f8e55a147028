//! `GET /metrics`: the process's counters and histograms in Prometheus text format.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

pub async fn get(State(state): State<AppState>) -> Response {
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
