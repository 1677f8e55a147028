//! `GET /api/v1/events` (one page of a query, newest first) and `GET /api/v1/events/{id}`.
//! Stored event bodies are copied into the answer as they are (`EventRow::write_json`), never
//! decoded and re-encoded.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use logbook_core::cursor;
use logbook_core::ids::EventId;
use logbook_core::store::EventQuery;
use serde::Deserialize;

use crate::auth::ReadAccount;
use crate::error::ApiError;
use crate::reading::{parse_query_parameter, whole_number_parameter};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParameters {
    /// In the query language (README, "The query language"); absent or blank: every event.
    #[param(schema_with = crate::api::v1::openapi::query_language_schema)]
    q: Option<String>,
    /// Events per page (default 50). The maximum is `MAX_PAGE_SIZE`, which a test compares.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    #[param(schema_with = crate::api::v1::openapi::cursor_schema)]
    cursor: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/events",
    operation_id = "list_events",
    tag = "events",
    params(ListParameters),
    security(("read_key" = [])),
    responses(
        (status = 200, description = "A page of events, newest first", body = crate::api::v1::openapi::EventPageDocument),
        (status = 400, description = "Bad parameter; field names it", body = crate::api::v1::openapi::ErrorDocument),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 429, description = "Over the account's or the key's read rate", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable or the query ran past its time budget", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn list(
    State(state): State<AppState>,
    reader: ReadAccount,
    parameters: Result<Query<ListParameters>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(parameters) = parameters?;
    let settings = state.settings();
    let limit = whole_number_parameter(
        parameters.limit.as_deref(),
        "limit",
        "invalid_limit",
        1..=u64::from(settings.max_page_size),
    )?
    .map_or(settings.default_page_size, |limit| limit as u32);
    let query = parse_query_parameter(parameters.q.as_deref())?;
    let after = match parameters.cursor.as_deref() {
        None | Some("") => None,
        // A cursor of another account gets the same answer as garbage: nothing is revealed.
        Some(text) => Some(cursor::decode(&reader.account, text).map_err(|_| {
            ApiError::bad_request(
                "invalid_cursor",
                "cursor is not valid for this key",
                Some("cursor"),
            )
        })?),
    };

    let event_query = EventQuery {
        query,
        limit,
        after,
    };
    let page = crate::hardening::within_query_budget(
        settings.query_time_budget,
        state.store().query_events(&reader.account, &event_query),
    )
    .await??;

    let body_bytes: usize = page
        .events
        .iter()
        .map(|row| row.body_without_seq.len() + 32)
        .sum();
    let mut body: Vec<u8> = Vec::with_capacity(body_bytes + 128);
    body.extend_from_slice(b"{\"events\":[");
    for (index, row) in page.events.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        row.write_json(&mut body);
    }
    body.extend_from_slice(b"],\"next_cursor\":");
    match page.next {
        Some(position) => {
            // Cursors are URL-safe base64: no JSON escaping is ever needed.
            body.push(b'"');
            body.extend_from_slice(cursor::encode(&reader.account, position).as_bytes());
            body.push(b'"');
        }
        None => body.extend_from_slice(b"null"),
    }
    body.push(b'}');
    Ok(json_response(body))
}

#[utoipa::path(
    get,
    path = "/api/v1/events/{id}",
    operation_id = "get_event",
    tag = "events",
    params(("id" = String, Path, description = "The event id")),
    security(("read_key" = [])),
    responses(
        (status = 200, description = "The event", body = crate::api::v1::openapi::EventDocument),
        (status = 404, description = "No such event in this account", body = crate::api::v1::openapi::ErrorDocument),
        (status = 400, description = "Bad parameter; field names it", body = crate::api::v1::openapi::ErrorDocument),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 429, description = "Over the account's or the key's read rate", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable or the query ran past its time budget", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn get(
    State(state): State<AppState>,
    reader: ReadAccount,
    event_id: Result<Path<EventId>, PathRejection>,
) -> Result<Response, ApiError> {
    // An id that is not even valid UTF-8 names no event.
    let Ok(Path(event_id)) = event_id else {
        return Err(ApiError::NotFound);
    };
    // Ids are UUIDs; anything much longer cannot exist, so it never reaches the store.
    if event_id.as_str().len() > 64 {
        return Err(ApiError::NotFound);
    }
    let row = crate::hardening::within_query_budget(
        state.settings().query_time_budget,
        state.store().get_event(&reader.account, &event_id),
    )
    .await??
    .ok_or(ApiError::NotFound)?;
    let mut body = Vec::with_capacity(row.body_without_seq.len() + 32);
    row.write_json(&mut body);
    Ok(json_response(body))
}

fn json_response(body: Vec<u8>) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
