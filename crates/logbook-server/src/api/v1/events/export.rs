//! `GET /api/v1/events/export?format=ndjson|csv&q=`: every matching event of the key's account,
//! streamed (`crate::reading::export`), and `GET /api/v1/events/export/verifiable?q=`: the NDJSON
//! export whose lines carry leaf hashes and inclusion proofs, ending with a signed trailer
//! (`crate::reading::verifiable_export`). The verifiable export is its own operation rather than a
//! flag on the first, because it has one format and answers of its own (409 when the server signs
//! no checkpoints or the account has no events yet).

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
#[serde(deny_unknown_fields)]
pub struct ExportParameters {
    /// `ndjson` (the default) or `csv`.
    #[param(schema_with = export_format_schema)]
    format: Option<String>,
    /// In the query language (README, "The query language"); absent or blank: every event.
    #[param(schema_with = crate::api::v1::openapi::query_language_schema)]
    q: Option<String>,
}

fn export_format_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["ndjson", "csv"]))
        .build()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VerifiableExportParameters {
    /// In the query language (README, "The query language"); absent or blank: every event.
    #[param(schema_with = crate::api::v1::openapi::query_language_schema)]
    q: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/events/export",
    operation_id = "export_events",
    tag = "events",
    params(ExportParameters),
    security(("read_key" = [])),
    responses(
        (status = 200, description = "Every matching event, streamed as NDJSON (`format=ndjson`) or CSV with a header row (`format=csv`)", content(
            (String = "application/x-ndjson"),
            (String = "text/csv")
        )),
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
    let Query(parameters) = parameters?;
    let format = ExportFormat::parse(parameters.format.as_deref())?;
    let query = parse_query_parameter(parameters.q.as_deref())?;
    export_response(&state, &reader.account, format, query)
}

#[utoipa::path(
    get,
    path = "/api/v1/events/export/verifiable",
    operation_id = "export_events_verifiable",
    tag = "events",
    params(VerifiableExportParameters),
    security(("read_key" = [])),
    responses(
        (status = 200, description = "Every matching event as NDJSON, each line with its leaf hash and inclusion proof, then a signed trailer naming the checkpoint they prove against", body = String, content_type = "application/x-ndjson"),
        (status = 400, description = "Bad parameter; field names it", body = crate::api::v1::openapi::ErrorDocument),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 409, description = "This server signs no checkpoints (`verifiable_export_unavailable`), or the account has no events yet (`nothing_to_verify`)", body = crate::api::v1::openapi::ErrorDocument),
        (status = 429, description = "Over the account's or the key's read rate, or as many exports open as the account may have", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable or the query ran past its time budget", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn export_verifiable(
    State(state): State<AppState>,
    reader: ReadAccount,
    parameters: Result<Query<VerifiableExportParameters>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(parameters) = parameters?;
    let query = parse_query_parameter(parameters.q.as_deref())?;
    let filename = export_filename(&state, &reader.account, ExportFormat::Ndjson)?;
    let open_export = state.limiter().open_export(&reader.account)?;
    verifiable_export_response(&state, &reader.account, query, filename)
        .await
        .map(|response| hold_until_body_ends(response, open_export))
}
