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
