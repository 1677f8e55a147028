//! `GET /api/v1/events/export?format=ndjson|csv&q=&verifiable=`: every matching event of the key's
//! account, streamed (`crate::reading::export`).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use crate::auth::ReadAccount;
use crate::error::ApiError;
use crate::reading::export::{
    ExportFormat, export_filename, export_response, hold_until_body_ends,
};
use crate::reading::parse_query_parameter;
use crate::reading::verifiable_export::verifiable_export_response;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParameters {
    format: Option<String>,
    q: Option<String>,
    /// `true`: NDJSON with leaf hashes, inclusion proofs and a signed trailer
    /// (`verifiable_export`).
    verifiable: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/events/export",
    operation_id = "export_events",
    tag = "events",
    params(ExportParameters),
    security(("read_key" = [])),
    responses(
        (status = 200, description = "Every matching event, streamed: NDJSON, CSV, or a verifiable export", body = String, content_type = "application/x-ndjson"),
        (status = 400, description = "Bad parameter; field names it", body = crate::api::v1::openapi::ErrorDocument),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 429, description = "Over the account's or the key's read rate", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable or the query ran past its time budget", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn export(
    State(state): State<AppState>,
    reader: ReadAccount,
    parameters: Result<Query<ExportParameters>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(parameters) = parameters.map_err(|rejection| {
        ApiError::bad_request(
            "invalid_parameters",
            format!("query string is not valid: {}", rejection.body_text()),
            None,
        )
    })?;
    let format = ExportFormat::parse(parameters.format.as_deref())?;
    let query = parse_query_parameter(parameters.q.as_deref())?;
    let verifiable = match parameters.verifiable.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_parameters",
                "verifiable must be true or false",
                Some("verifiable"),
            ));
        }
    };
    if verifiable {
        if format != ExportFormat::Ndjson {
            return Err(ApiError::bad_request(
                "invalid_format",
                "only NDJSON exports can be verifiable",
                Some("format"),
            ));
        }
        let filename = export_filename(&state, &reader.account, format)?;
        let open_export = state.limiter().open_export(&reader.account)?;
        return verifiable_export_response(&state, &reader.account, query, filename)
            .await
            .map(|response| hold_until_body_ends(response, open_export));
    }
    export_response(&state, &reader.account, format, query)
}
