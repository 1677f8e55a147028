//! Health checks for orchestrators: `/healthz` says the process answers, `/readyz` says the store
//! can serve reads and accept writes.
//!
//! `/readyz` is public, so by default it says only ready or not ready: a store's failure text
//! (an I/O error, a path, a start-up check's finding) tells an outsider about the host. The reason
//! is added only for someone who runs Logbook (`may_see_failure_text`).

use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use logbook_core::StoreError;
use logbook_core::people::Role;

use crate::error::{ErrorDetail, error_response};
use crate::state::AppState;

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    match state.store().check_ready().await {
        Ok(()) => {
            // A refused IP database leaves the node serving (the previous database stays in use),
            // so it stays ready; the answer says so, and an operator sees why.
            let refusals = state
                .ip_databases()
                .map(|databases| databases.refusals())
                .unwrap_or_default();
            if refusals.is_empty() {
                return "ready".into_response();
            }
            let (mut parts, _body) = request.into_parts();
            let mut answer =
                "ready; a replaced IP database was refused and the previous one is in use"
                    .to_owned();
            if may_see_failure_text(&mut parts, &state).await {
                for refusal in refusals {
                    answer.push_str(&format!("\n{refusal}"));
                }
            }
            answer.into_response()
        }
        Err(error) => {
            tracing::warn!(error = %error, "readiness check failed");
            let (mut parts, _body) = request.into_parts();
            if !may_see_failure_text(&mut parts, &state).await {
                return not_ready(&format!("{} is not ready", state.store().backend_name()));
            }
            // The reason names the kind of failure; database messages stay in the log. A store
            // that stopped accepting writes says why in its own words (a failed commit's I/O
            // error, a failed start-up check), because that is what an operator must act on.
            let reason = match &error {
                StoreError::StorageFull(_) => "storage is full".to_owned(),
                StoreError::Unavailable(why) => format!("store is not accepting writes: {why}"),
                StoreError::Locked(_) => "store is not accepting writes".to_owned(),
                _ => "store is not reachable".to_owned(),
            };
            not_ready(&format!("{} {reason}", state.store().backend_name()))
        }
    }
}

fn not_ready(message: &str) -> Response {
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorDetail {
            code: "not_ready",
            message,
            field: None,
            position: None,
            term: None,
            request_id: None,
        },
    )
}

/// Whether the request comes from someone who runs Logbook: a signed-in owner or admin, or an API
/// key with the `admin` scope. Either is looked up in the store, which may be the thing that is
/// failing; a lookup that fails counts as no.
async fn may_see_failure_text(parts: &mut Parts, state: &AppState) -> bool {
    if parts
        .headers
        .contains_key(axum::http::header::AUTHORIZATION)
    {
        return crate::auth::authenticate(parts, state)
            .await
            .is_ok_and(|key| key.scopes.admin);
    }
    match crate::web::session::SignedIn::from_request_parts(parts, state).await {
        Ok(signed_in) => matches!(signed_in.user.role, Role::Owner | Role::Admin),
        Err(_) => false,
    }
}
