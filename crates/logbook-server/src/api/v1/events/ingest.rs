//! `POST /api/v1/events`: the hot path. Authenticate, check the media type and size, read the
//! body once into `Bytes` (never past the limit), validate every event, hand the valid ones to the
//! store in one call, and answer one result per event in order, serialized straight into one
//! buffer.

use std::io::Write;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use logbook_core::NewEvent;
use logbook_core::api_key::{ApiKeyRecord, KeyOwner};
use logbook_core::ingest::{
    BodyError, FieldError, IngestBodyShape, KeyBinding, ParsedEvent, ParsedIngestBody,
    parse_ingest_request,
};
use logbook_core::store::{AppendOutcome, AppendReceipt};
use time::format_description::well_known::Rfc3339;

use crate::auth::IngestKey;
use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::state::AppState;

#[utoipa::path(
    post,
    path = "/api/v1/events",
    operation_id = "ingest_events",
    tag = "events",
    request_body = crate::api::v1::openapi::IngestRequestDocument,
    security(("ingest_key" = [])),
    responses(
        (status = 200, description = "Every event stored (or a replay of a stored one)", body = crate::api::v1::openapi::IngestAnswerDocument),
        (status = 207, description = "Some events stored, some refused; each result says which", body = crate::api::v1::openapi::IngestAnswerDocument),
        (status = 400, description = "The body is not an event or a batch of 1 to the limit of events (`too_many_events`), or every event was refused and at least one for its form (then the body is the ingest answer, with the first refusal as its `error`)", body = crate::api::v1::openapi::ErrorDocument),
        (status = 409, description = "Every event was refused because its idempotency key was already used for an event with different content (`idempotency_key_reused`); nothing stored", body = crate::api::v1::openapi::IngestAnswerDocument),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 408, description = "The body did not arrive in time", body = crate::api::v1::openapi::ErrorDocument),
        (status = 413, description = "Body over the byte limit", body = crate::api::v1::openapi::ErrorDocument),
        (status = 415, description = "Content-Type is not application/json", body = crate::api::v1::openapi::ErrorDocument),
        (status = 429, description = "Over a rate limit or the daily quota; nothing stored", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable or the query ran past its time budget", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 507, description = "The store is full; nothing stored", body = crate::api::v1::openapi::ErrorDocument)
    )
)]
pub async fn post(
    State(state): State<AppState>,
    IngestKey(key): IngestKey,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    if !is_json_content_type(&headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let body = read_ingest_body(&state, &headers, body).await?;
    let limits = &state.settings().ingest_limits;
    let received_at = state.clock().now();
    let mut next_event_id = || uuid::Uuid::now_v7().to_string();
    let ParsedIngestBody {
        events: parsed,
        shape,
    } = parse_ingest_request(
        &body,
        key_binding(&key),
        limits,
        received_at,
        &mut next_event_id,
    )
    .map_err(body_error)?;
    drop(body);
    let StoredEvents { slots, outcomes } = store_parsed_events(&state, &key, parsed).await?;

    let answer = write_answer(&slots, outcomes, shape);

    // Nothing stored: 400 when any event was malformed, 409 when every refusal was an
    // idempotency key already used for other content (the request's form was fine; the
    // account's state refused it).
    let status = match (answer.accepted, answer.rejected) {
        (_, 0) => StatusCode::OK,
        (0, rejected) if rejected == answer.rejected_for_reused_keys => StatusCode::CONFLICT,
        (0, _) => StatusCode::BAD_REQUEST,
        _ => StatusCode::MULTI_STATUS,
    };
    let mut response = (status, answer.body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

pub(crate) enum Slot {
    Stored,
    Rejected(FieldError),
}

/// Which account a key may write for, as the validator takes it.
pub(crate) fn key_binding(key: &ApiKeyRecord) -> KeyBinding<'_> {
    match &key.owner {
        KeyOwner::Account(account) => KeyBinding::Account(account),
        KeyOwner::Platform => KeyBinding::Platform,
    }
}

/// Reads an ingest body within the configured size and time, inflating gzip within the same
/// size limit (so a small bomb costs at most `max_body_bytes` of memory before it is refused).
/// Every way in for events (this route and the producer protocols in `api::producers`) reads its
/// body here.
pub(crate) async fn read_ingest_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Bytes, ApiError> {
    let limits = &state.settings().ingest_limits;
    let body = crate::hardening::read_body_within_limit(
        headers,
        body,
        limits.max_body_bytes,
        state.settings().body_read_timeout,
    )
    .await?;
    crate::hardening::decode_content_encoding(headers, body, limits.max_body_bytes)
}

/// The events of one request after the store had them: `slots` says, in request order, whether
/// each event went to the store or was rejected by validation, and `outcomes` holds the store's
/// answer for each one that went, in the order handed over.
pub(crate) struct StoredEvents {
    pub(crate) slots: Vec<Slot>,
    pub(crate) outcomes: Vec<AppendOutcome>,
}

/// What became of one event of a request, in request order (`StoredEvents::in_request_order`).
pub(crate) enum EventOutcome {
    Stored(AppendReceipt),
    Duplicate(AppendReceipt),
    Rejected(FieldError),
    /// The idempotency key was stored before for an event with different content.
    KeyReusedWithDifferentContent,
}

impl StoredEvents {
    pub(crate) fn in_request_order(self) -> Vec<EventOutcome> {
        let mut outcomes = self.outcomes.into_iter();
        self.slots
            .into_iter()
            .map(|slot| match slot {
                Slot::Rejected(error) => EventOutcome::Rejected(error),
                Slot::Stored => match outcomes
                    .next()
                    .expect("one outcome per stored slot, checked by store_parsed_events")
                {
                    AppendOutcome::Stored(receipt) => EventOutcome::Stored(receipt),
                    AppendOutcome::Duplicate(receipt) => EventOutcome::Duplicate(receipt),
                    AppendOutcome::KeyReusedWithDifferentContent { .. } => {
                        EventOutcome::KeyReusedWithDifferentContent
                    }
                },
            })
            .collect()
    }
}

/// The one way validated events reach the store: the fair limits refuse the whole request (429)
/// before anything is stored, then the valid events go to the store in one call, which commits
/// them (fsync) before it answers. Every way in for events calls this, so limits, idempotency,
/// durability, tamper evidence and unfamiliar-IP detection are the same for all of them.
pub(crate) async fn store_parsed_events(
    state: &AppState,
    key: &ApiKeyRecord,
    parsed: Vec<ParsedEvent>,
) -> Result<StoredEvents, ApiError> {
    // Valid events move to the store; `slots` remembers, in request order, which result each
    // position gets: an outcome from the store (in the order handed over) or its own error.
    let mut valid_events: Vec<NewEvent> = Vec::with_capacity(parsed.len());
    let mut slots: Vec<Slot> = Vec::with_capacity(parsed.len());
    for parsed_event in parsed {
        match parsed_event {
            Ok(event) => {
                valid_events.push(event);
                slots.push(Slot::Stored);
            }
            Err(field_error) => slots.push(Slot::Rejected(field_error)),
        }
    }
    // The whole request is refused before anything is stored when it would take any bucket past
    // its limit, so a 429 never leaves part of a batch written.
    let mut events_per_account: Vec<(&logbook_core::AccountId, u32)> = Vec::with_capacity(1);
    for event in &valid_events {
        match events_per_account
            .iter_mut()
            .find(|(account, _)| *account == &event.account)
        {
            Some((_, count)) => *count += 1,
            None => events_per_account.push((&event.account, 1)),
        }
    }
    state
        .limiter()
        .check_ingest_enabled(events_per_account.iter().map(|(account, _)| *account))?;
    state.limiter().check_ingest(
        &key.key_id,
        u32::try_from(valid_events.len()).unwrap_or(u32::MAX),
        &events_per_account,
    )?;
    drop(events_per_account);
    let outcomes = if valid_events.is_empty() {
        Vec::new()
    } else {
        let handed_over = valid_events.len();
        let outcomes = state.store().append_events(valid_events).await?;
        if outcomes.len() != handed_over {
            return Err(ApiError::internal(OutcomeCountMismatch {
                handed_over,
                returned: outcomes.len(),
            }));
        }
        outcomes
    };
    count_ingested(&slots, &outcomes);
    Ok(StoredEvents { slots, outcomes })
}

/// The ingest counters, for every way in alike: events stored, replays of stored events (which
/// store nothing new, so they are counted apart), and events refused, by validation or because
/// their idempotency key stands for other content.
fn count_ingested(slots: &[Slot], outcomes: &[AppendOutcome]) {
    let mut stored = 0u64;
    let mut replayed = 0u64;
    let mut rejected = 0u64;
    for slot in slots {
        if let Slot::Rejected(_) = slot {
            rejected += 1;
        }
    }
    for outcome in outcomes {
        match outcome {
            AppendOutcome::Stored(_) => stored += 1,
            AppendOutcome::Duplicate(_) => replayed += 1,
            AppendOutcome::KeyReusedWithDifferentContent { .. } => rejected += 1,
        }
    }
    metrics::histogram!(crate::metrics::INGEST_BATCH_EVENTS).record(slots.len() as f64);
    metrics::counter!(crate::metrics::EVENTS_ACCEPTED).increment(stored);
    metrics::counter!(crate::metrics::EVENTS_REPLAYED).increment(replayed);
    metrics::counter!(crate::metrics::EVENTS_REJECTED).increment(rejected);
}

#[derive(Debug, thiserror::Error)]
#[error("the store returned {returned} outcomes for {handed_over} events")]
struct OutcomeCountMismatch {
    handed_over: usize,
    returned: usize,
}

/// `application/json`, with or without parameters such as `charset=utf-8`.
pub(crate) fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let media_type = value.split(';').next().unwrap_or_default().trim();
    media_type.eq_ignore_ascii_case("application/json")
}

pub(crate) fn body_error(error: BodyError) -> ApiError {
    match error {
        BodyError::NotParseable { .. } => {
            ApiError::bad_request("invalid_json", error.to_string(), None)
        }
        BodyError::WrongShape => ApiError::bad_request("invalid_body", error.to_string(), None),
        BodyError::EmptyBatch => {
            ApiError::bad_request("empty_batch", error.to_string(), Some("/events"))
        }
        // A count over the limit is the batch's form (the document's `maxItems`), not its size
        // in bytes: 400 naming `/events`, while 413 stays for a body over the byte limit.
        BodyError::TooManyEvents { .. } => {
            ApiError::bad_request("too_many_events", error.to_string(), Some("/events"))
        }
        BodyError::ForeignAccount { ref field, .. } => {
            let field = field.clone();
            ApiError::Forbidden {
                message: error.to_string(),
                field: Some(field),
            }
        }
    }
}

struct IngestAnswer {
    body: Vec<u8>,
    accepted: usize,
    rejected: usize,
    /// Of `rejected`, the events whose idempotency key was already used for other content.
    rejected_for_reused_keys: usize,
}

/// Writes `{"accepted":N,"rejected":M,"results":[...]}` (plus the first error as `"error"` when
/// nothing was accepted, so every 4xx carries the standard error body) into one buffer. `shape`
/// is the parser's view of the body, used to point at the `key` of an event whose idempotency key
/// was reused (the validator's own errors already carry their pointer).
fn write_answer(
    slots: &[Slot],
    outcomes: Vec<AppendOutcome>,
    shape: IngestBodyShape,
) -> IngestAnswer {
    let mut results: Vec<u8> = Vec::with_capacity(16 + slots.len() * 112);
    let mut outcomes = outcomes.into_iter();
    let mut accepted = 0usize;
    let mut rejected = 0usize;
    let mut rejected_for_reused_keys = 0usize;
    let mut first_error: Option<Vec<u8>> = None;
    for (index, slot) in slots.iter().enumerate() {
        if index > 0 {
            results.push(b',');
        }
        let error_start = results.len();
        match slot {
            Slot::Rejected(error) => {
                rejected += 1;
                write_error(&mut results, error.code, &error.message, &error.field);
            }
            Slot::Stored => match outcomes
                .next()
                .expect("one outcome per stored slot, checked by the caller")
            {
                AppendOutcome::Stored(receipt) => {
                    accepted += 1;
                    write_receipt(&mut results, &receipt, false);
                    continue;
                }
                AppendOutcome::Duplicate(receipt) => {
                    accepted += 1;
                    write_receipt(&mut results, &receipt, true);
                    continue;
                }
                AppendOutcome::KeyReusedWithDifferentContent { .. } => {
                    rejected += 1;
                    rejected_for_reused_keys += 1;
                    let field = shape.pointer_to_event_field(index, "key");
                    write_error(
                        &mut results,
                        "idempotency_key_reused",
                        "this idempotency key was already used for an event with different content",
                        &field,
                    );
                }
            },
        }
        if first_error.is_none() {
            first_error = Some(results[error_start..].to_vec());
        }
    }

    let mut body: Vec<u8> = Vec::with_capacity(results.len() + 64);
    write!(body, "{{\"accepted\":{accepted},\"rejected\":{rejected},")
        .expect("writing to a Vec cannot fail");
    if accepted == 0
        && let Some(error_object) = &first_error
    {
        // `error_object` is `{"error":{...}}`; the top level takes its inner object.
        body.extend_from_slice(&error_object[1..error_object.len() - 1]);
        body.push(b',');
    }
    body.extend_from_slice(b"\"results\":[");
    body.extend_from_slice(&results);
    body.extend_from_slice(b"]}");
    IngestAnswer {
        body,
        accepted,
        rejected,
        rejected_for_reused_keys,
    }
}

fn write_receipt(out: &mut Vec<u8>, receipt: &AppendReceipt, duplicate: bool) {
    out.extend_from_slice(b"{\"id\":");
    serde_json::to_writer(&mut *out, &receipt.id).expect("writing to a Vec cannot fail");
    write!(out, ",\"seq\":{},", receipt.seq).expect("writing to a Vec cannot fail");
    if let Some(leaf) = &receipt.leaf {
        // The tamper-evidence receipt: the event's leaf hash and the account's tree size after it.
        out.extend_from_slice(b"\"leaf_hash\":\"");
        out.extend_from_slice(logbook_core::export_verification::hex(&leaf.leaf_hash).as_bytes());
        write!(out, "\",\"tree_size\":{},", leaf.tree_size).expect("writing to a Vec cannot fail");
    }
    out.extend_from_slice(b"\"received_at\":\"");
    receipt
        .received_at
        .format_into(out, &Rfc3339)
        .expect("a stored received_at is a valid RFC 3339 time");
    out.extend_from_slice(if duplicate {
        b"\",\"duplicate\":true}"
    } else {
        b"\",\"duplicate\":false}"
    });
}

/// One event's error, in the body every error answer has (`crate::error::ErrorBody`).
fn write_error(out: &mut Vec<u8>, code: &str, message: &str, field: &str) {
    let body = ErrorBody {
        error: ErrorDetail {
            code,
            message,
            field: Some(field),
            position: None,
            term: None,
            request_id: None,
        },
    };
    serde_json::to_writer(out, &body).expect("writing to a Vec cannot fail");
}
