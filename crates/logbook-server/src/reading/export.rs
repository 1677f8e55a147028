//! Exports: every matching event of an account, newest first, streamed from the store in bounded
//! chunks so memory stays flat however large the account is. The API (`GET
//! /api/v1/events/export`) and the page's export buttons both answer with `export_response`.
//!
//! NDJSON copies each stored body as it is; the verifiable export
//! (`GET /api/v1/events/export/verifiable`, `verifiable_export`) also carries each event's leaf
//! hash and inclusion proof and ends with a signed trailer. CSV follows RFC 4180 (CRLF, quotes
//! where needed) and defuses spreadsheet formulas: any cell starting with `=`, `+`, `-`, `@`, TAB
//! or CR gets a leading `'` unless it is a plain number, so hostile event text stays inert when
//! the file is opened.

use std::borrow::Cow;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use logbook_core::event::{ActorType, Outcome, StoredEvent};
use logbook_core::{EventRow, StoreError};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::error::{ApiError, ErrorChain};
use crate::state::AppState;

/// Rows gathered into one body chunk: large enough that per-chunk costs vanish, small enough that
/// a slow client holds little memory.
const ROWS_PER_CHUNK: usize = 256;

pub const CSV_HEADER: [&str; 29] = [
    "seq",
    "id",
    "created_at",
    "received_at",
    "account",
    "action",
    "message",
    "actor_id",
    "actor_name",
    "actor_type",
    "ip",
    "user_agent",
    "outcome",
    "targets",
    "changes",
    "metadata",
    "key",
    "new_ip",
    "new_network",
    // Where the address was when the event arrived (empty without an IP database's answer).
    "country_code",
    "country_name",
    "region",
    "city",
    "latitude",
    "longitude",
    "accuracy_radius_km",
    "asn",
    "organization",
    // Appended after the location so every earlier column keeps its place.
    "new_country",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExportFormat {
    Ndjson,
    Csv,
}

impl ExportFormat {
    /// `ndjson` (the default) or `csv`.
    pub(crate) fn parse(text: Option<&str>) -> Result<Self, ApiError> {
        match text {
            None | Some("ndjson") => Ok(ExportFormat::Ndjson),
            Some("csv") => Ok(ExportFormat::Csv),
            Some(_) => Err(ApiError::bad_request(
                "invalid_format",
                "format must be ndjson or csv",
                Some("format"),
            )),
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            ExportFormat::Ndjson => "ndjson",
            ExportFormat::Csv => "csv",
        }
    }
}

pub(crate) fn export_filename(
    state: &AppState,
    account: &logbook_core::AccountId,
    format: ExportFormat,
) -> Result<String, ApiError> {
    let exported_at = state
        .clock()
        .now()
        .to_offset(time::UtcOffset::UTC)
        .format(format_description!(
            "[year][month][day]T[hour][minute][second]Z"
        ))
        .map_err(ApiError::internal)?;
    Ok(format!("logbook-{account}-{exported_at}.{}", format.name()))
}

/// The streamed export of `account`'s events matching `query`; shared with the web page's export
/// buttons, which authenticate by session instead of key.
pub(crate) fn export_response(
    state: &AppState,
    account: &logbook_core::AccountId,
    format: ExportFormat,
    query: logbook_core::query::Query,
) -> Result<Response, ApiError> {
    let filename = export_filename(state, account, format)?;
    // Held by the body stream: the account's export place is freed when the stream ends or the
    // client goes away.
    let open_export = state.limiter().open_export(account)?;

    let rows = state
        .store()
        .export_events(account, query)
        .ready_chunks(ROWS_PER_CHUNK);
    let chunks = rows.map(move |rows| {
        let _held = &open_export;
        encode_chunk(format, rows)
    });
    let body = match format {
        ExportFormat::Ndjson => Body::from_stream(chunks),
        ExportFormat::Csv => {
            let header_row = futures::stream::once(async { Ok(Bytes::from(csv_header_row())) });
            Body::from_stream(header_row.chain(chunks))
        }
    };

    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(match format {
            ExportFormat::Ndjson => "application/x-ndjson",
            ExportFormat::Csv => "text/csv; charset=utf-8; header=present",
        }),
    );
    let disposition = format!("attachment; filename=\"{filename}\"");
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).map_err(ApiError::internal)?,
    );
    Ok(response)
}

/// Keeps `slot` alive as long as `response`'s body is being sent.
pub(crate) fn hold_until_body_ends(response: Response, slot: crate::limits::OpenSlot) -> Response {
    let (parts, body) = response.into_parts();
    let stream = body.into_data_stream().map(move |chunk| {
        let _held = &slot;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// Why an export stopped part-way. The client sees a truncated transfer (the chunked body never
/// ends properly), which every HTTP client reports as an error rather than a short file.
#[derive(Debug, thiserror::Error)]
enum ExportStreamError {
    #[error("reading events failed")]
    Store(#[source] StoreError),
    #[error("a stored event could not be decoded")]
    Decode(#[source] serde_json::Error),
    #[error("writing CSV failed")]
    Csv(#[source] csv::Error),
}

fn encode_chunk(
    format: ExportFormat,
    rows: Vec<Result<EventRow, StoreError>>,
) -> Result<Bytes, ExportStreamError> {
    let result = match format {
        ExportFormat::Ndjson => encode_ndjson(rows),
        ExportFormat::Csv => encode_csv(rows),
    };
    match result {
        Ok((bytes, row_count)) => {
            metrics::counter!("logbook_events_exported_total", "format" => format.name())
                .increment(row_count);
            Ok(bytes)
        }
        Err(error) => {
            tracing::error!(error = %ErrorChain(&error), "export stopped part-way");
            Err(error)
        }
    }
}

fn encode_ndjson(
    rows: Vec<Result<EventRow, StoreError>>,
) -> Result<(Bytes, u64), ExportStreamError> {
    let mut out = Vec::with_capacity(rows.len() * 512);
    let row_count = rows.len() as u64;
    for row in rows {
        row.map_err(ExportStreamError::Store)?.write_json(&mut out);
        out.push(b'\n');
    }
    Ok((Bytes::from(out), row_count))
}

/// The exact bytes an export sends for `rows` (CSV with its header row, or NDJSON), for the fuzz
/// targets and tests that check the writers from outside the crate.
#[doc(hidden)]
pub fn export_bytes_of_rows(csv: bool, rows: Vec<EventRow>) -> Result<Vec<u8>, String> {
    let rows = rows.into_iter().map(Ok).collect();
    let encoded = if csv {
        encode_csv(rows)
    } else {
        encode_ndjson(rows)
    };
    let (body, _row_count) = encoded.map_err(|error| ErrorChain(&error).to_string())?;
    let mut out = if csv { csv_header_row() } else { Vec::new() };
    out.extend_from_slice(&body);
    Ok(out)
}

fn csv_writer(capacity: usize) -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(capacity))
}

fn csv_header_row() -> Vec<u8> {
    let mut writer = csv_writer(256);
    writer
        .write_record(CSV_HEADER)
        .expect("writing to a Vec cannot fail");
    writer.into_inner().expect("writing to a Vec cannot fail")
}

fn encode_csv(rows: Vec<Result<EventRow, StoreError>>) -> Result<(Bytes, u64), ExportStreamError> {
    let mut writer = csv_writer(rows.len() * 512);
    let row_count = rows.len() as u64;
    for row in rows {
        let event = row
            .map_err(ExportStreamError::Store)?
            .decode()
            .map_err(ExportStreamError::Decode)?;
        write_csv_record(&mut writer, &event).map_err(ExportStreamError::Csv)?;
    }
    let out = writer
        .into_inner()
        .map_err(|error| ExportStreamError::Csv(error.into_error().into()))?;
    Ok((Bytes::from(out), row_count))
}

fn write_csv_record(
    writer: &mut csv::Writer<Vec<u8>>,
    event: &StoredEvent,
) -> Result<(), csv::Error> {
    let actor = event.actor.as_ref();
    let location = event.location.as_ref();
    fn text(part: Option<&String>) -> Cow<'_, str> {
        Cow::Borrowed(part.map(String::as_str).unwrap_or_default())
    }
    let number = |part: Option<String>| Cow::<str>::Owned(part.unwrap_or_default());
    let cells: [Cow<'_, str>; 29] = [
        Cow::Owned(event.seq.to_string()),
        Cow::Borrowed(event.id.as_str()),
        Cow::Owned(rfc3339(event.created_at)),
        Cow::Owned(rfc3339(event.received_at)),
        Cow::Borrowed(event.account.as_str()),
        Cow::Borrowed(&event.action),
        Cow::Borrowed(&event.message),
        Cow::Borrowed(actor.map(|actor| actor.id.as_str()).unwrap_or_default()),
        Cow::Borrowed(
            actor
                .and_then(|actor| actor.name.as_deref())
                .unwrap_or_default(),
        ),
        Cow::Borrowed(match actor.and_then(|actor| actor.actor_type) {
            Some(ActorType::User) => "user",
            Some(ActorType::ApiKey) => "api_key",
            Some(ActorType::System) => "system",
            None => "",
        }),
        Cow::Owned(event.ip.map(|ip| ip.to_string()).unwrap_or_default()),
        Cow::Borrowed(event.user_agent.as_deref().unwrap_or_default()),
        Cow::Borrowed(event.outcome.map(Outcome::as_str).unwrap_or_default()),
        json_cell(&event.targets, event.targets.is_empty()),
        json_cell(&event.changes, event.changes.is_empty()),
        json_cell(&event.metadata, event.metadata.is_none()),
        Cow::Borrowed(event.key.as_deref().unwrap_or_default()),
        Cow::Borrowed(if event.new_ip { "true" } else { "false" }),
        Cow::Borrowed(if event.new_network { "true" } else { "false" }),
        text(location.and_then(|location| location.country_code.as_ref())),
        text(location.and_then(|location| location.country_name.as_ref())),
        text(location.and_then(|location| location.region.as_ref())),
        text(location.and_then(|location| location.city.as_ref())),
        number(location.and_then(|location| location.latitude.map(|value| value.to_string()))),
        number(location.and_then(|location| location.longitude.map(|value| value.to_string()))),
        number(
            location
                .and_then(|location| location.accuracy_radius_km.map(|value| value.to_string())),
        ),
        number(location.and_then(|location| location.asn.map(|value| value.to_string()))),
        text(location.and_then(|location| location.organization.as_ref())),
        Cow::Borrowed(if event.new_country { "true" } else { "false" }),
    ];
    let cells = cells.map(defuse_formula);
    writer.write_record(cells.iter().map(|cell| cell.as_bytes()))
}

/// A structured column as compact JSON, or an empty cell when the event has none.
fn json_cell(value: &impl serde::Serialize, is_absent: bool) -> Cow<'static, str> {
    if is_absent {
        Cow::Borrowed("")
    } else {
        Cow::Owned(serde_json::to_string(value).expect("event fields always serialize"))
    }
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .expect("stored times are valid RFC 3339 times")
}

/// Prefixes `'` to a cell a spreadsheet would read as a formula (OWASP's CSV injection advice).
pub fn defuse_formula(cell: Cow<'_, str>) -> Cow<'_, str> {
    // A plain number (a negative latitude, "-2") is only ever read as that number.
    if cell.parse::<f64>().is_ok_and(f64::is_finite) {
        return cell;
    }
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => Cow::Owned(format!("'{cell}")),
        _ => cell,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_that_spreadsheets_would_evaluate_are_prefixed_with_a_quote_and_plain_numbers_are_not()
    {
        for hostile in [
            "=SUM(A1)",
            "+1+cmd",
            "-2+3+cmd|' /C calc'!A0",
            "@cmd",
            "\tx",
            "\rx",
        ] {
            assert_eq!(
                defuse_formula(Cow::Borrowed(hostile)),
                format!("'{hostile}")
            );
        }
        for inert in ["Rebooted web-1", "", "1=1", " =x", "-33.8688", "+1", "-2"] {
            assert_eq!(defuse_formula(Cow::Borrowed(inert)), inert);
        }
    }
}
