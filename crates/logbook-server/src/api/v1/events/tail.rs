//! `GET /api/v1/events/tail?q=&from_seq=`: a live tail as Server-Sent Events
//! (`crate::reading::tail`); a reconnecting client's `Last-Event-ID` resumes right after the last
//! event it saw.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderName};
use axum::response::Response;
use serde::Deserialize;

use crate::auth::ReadAccount;
use crate::error::ApiError;
use crate::reading::tail::tail_response;
use crate::reading::{
    MAX_WHOLE_NUMBER_PARAMETER, parse_query_parameter, resolve_known_networks_for_live_view,
    whole_number_parameter,
};
use crate::state::AppState;

static LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TailParameters {
    /// In the query language (README, "The query language"); absent or blank: every event.
    #[param(schema_with = crate::api::v1::openapi::query_language_schema)]
    q: Option<String>,
    /// Start at this seq instead of the next event stored.
    #[param(value_type = Option<u64>, minimum = 0, maximum = 9007199254740991_u64)]
    from_seq: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/events/tail",
    operation_id = "tail_events",
    tag = "events",
    params(TailParameters, ("Last-Event-ID" = Option<u64>, Header, nullable = false, minimum = 0, maximum = 9007199254740991_u64, description = "The seq of the last event received, to resume after it")),
    security(("read_key" = [])),
    responses(
        (status = 200, description = "Server-sent events, one per new event; resume with Last-Event-ID", body = crate::api::v1::openapi::TailEventDocument, content_type = "text/event-stream"),
        (status = 400, description = "Bad parameter; field names it", body = crate::api::v1::openapi::ErrorDocument),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 429, description = "Over the account's or the key's read rate", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable or the query ran past its time budget", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn tail(
    State(state): State<AppState>,
    reader: ReadAccount,
    headers: HeaderMap,
    parameters: Result<Query<TailParameters>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(parameters) = parameters?;
    let filter = parse_query_parameter(parameters.q.as_deref())?;
    let from_seq = whole_number_parameter(
        parameters.from_seq.as_deref(),
        "from_seq",
        "invalid_from_seq",
        0..=MAX_WHOLE_NUMBER_PARAMETER,
    )?;
    let last_event_id = match headers.get(&LAST_EVENT_ID) {
        None => None,
        Some(value) => whole_number_parameter(
            Some(value.to_str().unwrap_or_default().trim()),
            "Last-Event-ID",
            "invalid_last_event_id",
            0..=MAX_WHOLE_NUMBER_PARAMETER,
        )?
        .map(|seq| seq + 1),
    };
    // A reconnecting browser repeats the original URL (with its from_seq) and adds Last-Event-ID,
    // which is the more recent position.
    let next_seq = match last_event_id.or(from_seq) {
        Some(seq) => seq,
        None => state.store().next_seq(&reader.account).await?,
    };

    let filter = resolve_known_networks_for_live_view(&state, &reader.account, filter).await?;
    Ok(tail_response(
        &state,
        reader.account,
        filter,
        next_seq,
        None,
    ))
}
