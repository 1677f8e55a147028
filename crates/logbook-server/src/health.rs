//! Health checks for orchestrators: `/healthz` says the process answers, `/readyz` says the store
//! can serve reads and accept writes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use logbook_core::StoreError;

use crate::error::{ErrorDetail, error_response};
use crate::state::AppState;

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.store().check_ready().await {
        Ok(()) => "ready".into_response(),
        Err(error) => {
            tracing::warn!(error = %error, "readiness check failed");
            // The reason names the kind of failure; database messages stay in the log. A store
            // that stopped accepting writes says why in its own words (a failed commit's I/O
            // error, a failed start-up check), because that is what an operator must act on.
            let reason = match &error {
                StoreError::StorageFull(_) => "storage is full".to_owned(),
                StoreError::Unavailable(why) => format!("store is not accepting writes: {why}"),
                StoreError::Locked(_) => "store is not accepting writes".to_owned(),
                _ => "store is not reachable".to_owned(),
            };
            let message = format!("{} {reason}", state.store().backend_name());
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorDetail {
                    code: "not_ready",
                    message: &message,
                    field: None,
                    position: None,
                    term: None,
                    request_id: None,
                },
            )
        }
    }
}
