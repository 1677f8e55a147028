//! OTLP/HTTP logs: `POST /v1/logs` with an `ExportLogsServiceRequest`, as every OpenTelemetry
//! SDK's OTLP/HTTP log exporter sends it: protobuf (`application/x-protobuf`) or JSON
//! (`application/json`), optionally gzip (`Content-Encoding: gzip`), with the key in
//! `Authorization: Bearer KEY` (set through `OTEL_EXPORTER_OTLP_HEADERS`). The message types are
//! `opentelemetry-proto`'s (prost for protobuf, its serde derive for OTLP's JSON mapping).
//!
//! Each log record becomes one event (the mapping, by semantic convention where one exists):
//!
//! | event field | from |
//! |---|---|
//! | account | the key's account; for a platform key the record's attribute `logbook.account`, else the resource's |
//! | `action` | the record's `event_name`, else its attribute `event.name` |
//! | `message` | the body, which must be a string |
//! | `created_at` | `time_unix_nano`, else `observed_time_unix_nano`, else the time Logbook received it |
//! | `actor` | `id` from `user.id` (else `enduser.id`), `name` from `user.name`, `type` from `logbook.actor.type` (default `user`) |
//! | `ip` | `client.address` |
//! | `user_agent` | `user_agent.original` |
//! | `outcome` | `logbook.outcome` |
//! | `targets` | one target from `logbook.target.type`, `logbook.target.id`, `logbook.target.name` |
//! | `key` | `logbook.idempotency_key`, else a digest of the record with its resource and scope |
//! | `metadata` | `attributes` (the record's other attributes), `resource`, `scope`, `severity_text`, `severity_number`, `trace_id`, `span_id` |
//!
//! The digest key makes an exporter's retry of a batch store each record once (records identical
//! to the nanosecond, with the same attributes, resource and scope, are one event). Attribute
//! values become JSON: integers beyond ±(2^53 − 1) and non-finite doubles become strings, bytes
//! become hex. A record that lacks what an event needs or fails validation is rejected alone, and
//! the answer says so as OTLP's partial success (`rejected_log_records`, `error_message`); the
//! other records are stored. Refusals of the whole request are a `google.rpc.Status` in the
//! request's encoding (see `error::DialectError`).

use std::collections::HashSet;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use logbook_core::ingest::FieldError;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::api::producer_ingest::{
    field_error_in_protocol_terms, store_translated_events, validate_translated_events,
};
use crate::api::v1::events::{EventOutcome, read_ingest_body};
use crate::auth::{KeyPresentation, ingest_key_from_headers};
use crate::error::{ApiError, DialectError, ErrorDialect};
use crate::state::AppState;

/// The two encodings OTLP/HTTP defines; an answer uses the request's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpEncoding {
    Protobuf,
    Json,
}

impl OtlpEncoding {
    fn content_type(self) -> &'static str {
        match self {
            OtlpEncoding::Protobuf => "application/x-protobuf",
            OtlpEncoding::Json => "application/json",
        }
    }
}

/// `google.rpc.Status`, the body OTLP/HTTP gives a refused request (`details` left out: Logbook
/// sends none).
#[derive(Clone, PartialEq, prost::Message)]
pub struct GoogleRpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// A `google.rpc.Status` body in `encoding`, with its content type.
pub fn encode_status(encoding: OtlpEncoding, code: i32, message: &str) -> (&'static str, Vec<u8>) {
    let body = match encoding {
        OtlpEncoding::Protobuf => GoogleRpcStatus {
            code,
            message: message.to_owned(),
        }
        .encode_to_vec(),
        OtlpEncoding::Json => json!({"code": code, "message": message})
            .to_string()
            .into_bytes(),
    };
    (encoding.content_type(), body)
}

/// Attributes with a place of their own in the event; the others go to `metadata.attributes`.
const ACCOUNT_ATTRIBUTE: &str = "logbook.account";
const EVENT_NAME_ATTRIBUTE: &str = "event.name";
const USER_ID_ATTRIBUTE: &str = "user.id";
const ENDUSER_ID_ATTRIBUTE: &str = "enduser.id";
const USER_NAME_ATTRIBUTE: &str = "user.name";
const ACTOR_TYPE_ATTRIBUTE: &str = "logbook.actor.type";
const CLIENT_ADDRESS_ATTRIBUTE: &str = "client.address";
const USER_AGENT_ATTRIBUTE: &str = "user_agent.original";
const OUTCOME_ATTRIBUTE: &str = "logbook.outcome";
const TARGET_TYPE_ATTRIBUTE: &str = "logbook.target.type";
const TARGET_ID_ATTRIBUTE: &str = "logbook.target.id";
const TARGET_NAME_ATTRIBUTE: &str = "logbook.target.name";
const IDEMPOTENCY_KEY_ATTRIBUTE: &str = "logbook.idempotency_key";
const MAPPED_ATTRIBUTES: [&str; 13] = [
    ACCOUNT_ATTRIBUTE,
    EVENT_NAME_ATTRIBUTE,
    USER_ID_ATTRIBUTE,
    ENDUSER_ID_ATTRIBUTE,
    USER_NAME_ATTRIBUTE,
    ACTOR_TYPE_ATTRIBUTE,
    CLIENT_ADDRESS_ATTRIBUTE,
    USER_AGENT_ATTRIBUTE,
    OUTCOME_ATTRIBUTE,
    TARGET_TYPE_ATTRIBUTE,
    TARGET_ID_ATTRIBUTE,
    TARGET_NAME_ATTRIBUTE,
    IDEMPOTENCY_KEY_ATTRIBUTE,
];

/// Where a translated event's fields came from, for the partial success's error message.
const ORIGINS: &[(&str, &str)] = &[
    ("/account", "attribute logbook.account"),
    ("/action", "event_name (or attribute event.name)"),
    ("/message", "body"),
    ("/created_at", "time_unix_nano"),
    ("/actor/id", "attribute user.id"),
    ("/actor/name", "attribute user.name"),
    ("/actor/type", "attribute logbook.actor.type"),
    ("/ip", "attribute client.address"),
    ("/user_agent", "attribute user_agent.original"),
    ("/outcome", "attribute logbook.outcome"),
    ("/targets/0/type", "attribute logbook.target.type"),
    ("/targets/0/id", "attribute logbook.target.id"),
    ("/targets/0/name", "attribute logbook.target.name"),
    ("/key", "attribute logbook.idempotency_key"),
    ("/metadata/attributes", "attributes"),
    ("/metadata/resource", "resource attributes"),
    ("/metadata/scope", "scope"),
    ("/metadata", "record"),
];

/// How many rejected records the partial success's message names one by one.
const REJECTIONS_NAMED: usize = 5;

/// `POST /v1/logs`.
#[utoipa::path(
    post,
    path = "/v1/logs",
    operation_id = "otlp_export_logs",
    tag = "producer protocols",
    description = "OTLP/HTTP logs (application/x-protobuf or application/json, optionally gzip): each log record becomes an event of the key's account; records that lack what an event needs are rejected per record in partial_success.",
    request_body(content = Object, description = "An ExportLogsServiceRequest", content_type = "application/json"),
    security(("ingest_key" = [])),
    responses(
        (status = 200, description = "Every valid record stored durably; partial_success counts and explains the rejected ones", body = Object),
        (status = 400, description = "The body is not an ExportLogsServiceRequest (a google.rpc.Status)", body = Object),
        (status = 415, description = "Neither protobuf nor JSON", body = Object),
        (status = 401, description = "No key, or a key that is unknown or revoked (in the protocol's own error format)", body = Object),
        (status = 403, description = "The key lacks the ingest scope, or the account's ingest is turned off", body = Object),
        (status = 413, description = "Body larger than the configured limit", body = Object),
        (status = 429, description = "A rate limit or the daily quota refused the whole request; nothing was stored", body = Object, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 503, description = "The store is unavailable", body = Object, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn export_logs(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, DialectError> {
    let encoding = request_encoding(&headers);
    let refusal = |error: ApiError| {
        DialectError::new(
            ErrorDialect::Otlp(encoding.unwrap_or(OtlpEncoding::Protobuf)),
            error,
        )
    };
    let key = ingest_key_from_headers(&headers, &state, KeyPresentation::Bearer)
        .await
        .map_err(refusal)?;
    let Some(encoding) = encoding else {
        return Err(refusal(ApiError::bad_request(
            "unsupported_media_type",
            "OTLP/HTTP bodies are application/x-protobuf or application/json",
            Some("Content-Type"),
        )));
    };
    let body = read_ingest_body(&state, &headers, body)
        .await
        .map_err(refusal)?;
    let request = match encoding {
        OtlpEncoding::Protobuf => ExportLogsServiceRequest::decode(&body[..]).map_err(|error| {
            refusal(ApiError::bad_request(
                "invalid_body",
                format!("the body is not an OTLP ExportLogsServiceRequest: {error}"),
                None,
            ))
        })?,
        OtlpEncoding::Json => {
            serde_json::from_slice::<ExportLogsServiceRequest>(&body).map_err(|error| {
                refusal(ApiError::bad_request(
                    "invalid_body",
                    format!("the body is not an OTLP ExportLogsServiceRequest: {error}"),
                    None,
                ))
            })?
        }
    };
    drop(body);

    // Every record in request order: its place (for messages) and its translation or refusal.
    let mut places: Vec<String> = Vec::new();
    let mut translations: Vec<Result<Value, FieldError>> = Vec::new();
    for (resource_index, resource_logs) in request.resource_logs.iter().enumerate() {
        for (scope_index, scope_logs) in resource_logs.scope_logs.iter().enumerate() {
            for (record_index, record) in scope_logs.log_records.iter().enumerate() {
                places.push(format!(
                    "resource_logs[{resource_index}].scope_logs[{scope_index}].log_records[{record_index}]"
                ));
                translations.push(translate(
                    resource_logs.resource.as_ref(),
                    scope_logs.scope.as_ref(),
                    record,
                ));
            }
        }
    }
    let record_count = translations.len();
    let translated: Vec<Value> = translations
        .iter()
        .filter_map(|translation| translation.as_ref().ok().cloned())
        .collect();
    let mut parsed = validate_translated_events(&state, &key, &translated)
        .map_err(refusal)?
        .into_iter();
    // Records refused in translation keep their slot as a rejection, so outcomes stay in order.
    let in_order: Vec<_> = translations
        .into_iter()
        .map(|translation| match translation {
            Ok(_) => parsed
                .next()
                .expect("one parsed event per translated record"),
            Err(error) => Err(error),
        })
        .collect();
    let outcomes = store_translated_events(&state, &key, in_order)
        .await
        .map_err(refusal)?;

    let mut rejections: Vec<String> = Vec::new();
    for (place, outcome) in places.iter().zip(outcomes) {
        let problem = match outcome {
            EventOutcome::Stored(_) | EventOutcome::Duplicate(_) => continue,
            EventOutcome::Rejected(error) => {
                let (_, error) = field_error_in_protocol_terms(error, ORIGINS);
                format!("{}: {} ({})", error.field, error.message, error.code)
            }
            EventOutcome::KeyReusedWithDifferentContent => format!(
                "{IDEMPOTENCY_KEY_ATTRIBUTE}: this idempotency key was already used for an event with different content (idempotency_key_reused)"
            ),
        };
        rejections.push(format!("{place}: {problem}"));
    }
    let partial_success = (!rejections.is_empty()).then(|| {
        let mut message = format!(
            "{} of {record_count} log records were rejected: ",
            rejections.len()
        );
        message.push_str(
            &rejections
                .iter()
                .take(REJECTIONS_NAMED)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
        );
        if rejections.len() > REJECTIONS_NAMED {
            message.push_str("; ...");
        }
        ExportLogsPartialSuccess {
            rejected_log_records: rejections.len() as i64,
            error_message: message,
        }
    });
    let answer = ExportLogsServiceResponse { partial_success };
    let body = match encoding {
        OtlpEncoding::Protobuf => answer.encode_to_vec(),
        OtlpEncoding::Json => {
            serde_json::to_vec(&answer).map_err(|error| refusal(ApiError::internal(error)))?
        }
    };
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    Ok(response)
}

/// The request's encoding from its `Content-Type`; `None` for anything else.
fn request_encoding(headers: &HeaderMap) -> Option<OtlpEncoding> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let media_type = value.split(';').next().unwrap_or_default().trim();
    if media_type.eq_ignore_ascii_case("application/x-protobuf") {
        Some(OtlpEncoding::Protobuf)
    } else if media_type.eq_ignore_ascii_case("application/json") {
        Some(OtlpEncoding::Json)
    } else {
        None
    }
}

fn refused(code: &'static str, message: impl Into<String>, origin: &str) -> FieldError {
    FieldError {
        code,
        message: message.into(),
        // Already in the protocol's terms: `field_error_in_protocol_terms` keeps a field that
        // is no validator pointer as it is.
        field: origin.to_owned(),
    }
}

/// The attributes of a record as a lookup that refuses a key sent twice.
fn attribute_lookup<'record>(
    attributes: &'record [KeyValue],
    what: &str,
) -> Result<Vec<(&'record str, Option<&'record AnyValue>)>, FieldError> {
    let mut seen = HashSet::with_capacity(attributes.len());
    let mut lookup = Vec::with_capacity(attributes.len());
    for attribute in attributes {
        if !seen.insert(attribute.key.as_str()) {
            return Err(refused(
                "duplicate_field",
                format!("the {what} {:?} appears more than once", attribute.key),
                what,
            ));
        }
        lookup.push((attribute.key.as_str(), attribute.value.as_ref()));
    }
    Ok(lookup)
}

fn find<'record>(
    lookup: &[(&'record str, Option<&'record AnyValue>)],
    key: &str,
) -> Option<&'record AnyValue> {
    lookup
        .iter()
        .find(|(name, _)| *name == key)
        .and_then(|(_, value)| *value)
}

/// A string-valued attribute; any other kind of value is a refusal.
fn string_attribute<'record>(
    lookup: &[(&'record str, Option<&'record AnyValue>)],
    key: &str,
) -> Result<Option<&'record str>, FieldError> {
    match find(lookup, key).and_then(|value| value.value.as_ref()) {
        None => Ok(None),
        Some(any_value::Value::StringValue(text)) => Ok(Some(text.as_str())),
        Some(_) => Err(refused(
            "invalid_field",
            format!("the attribute {key:?} must be a string"),
            &format!("attribute {key}"),
        )),
    }
}

/// The Logbook ingest event for one log record (see the module's mapping), or why the record
/// cannot be one.
fn translate(
    resource: Option<&Resource>,
    scope: Option<&InstrumentationScope>,
    record: &LogRecord,
) -> Result<Value, FieldError> {
    let attributes = attribute_lookup(&record.attributes, "attribute")?;
    let resource_attributes = attribute_lookup(
        resource.map_or(&[][..], |resource| &resource.attributes),
        "resource attribute",
    )?;
    let mut event = serde_json::Map::new();

    let account = match string_attribute(&attributes, ACCOUNT_ATTRIBUTE)? {
        Some(account) => Some(account),
        None => string_attribute(&resource_attributes, ACCOUNT_ATTRIBUTE)?,
    };
    if let Some(account) = account {
        event.insert("account".into(), json!(account));
    }

    let action = if record.event_name.is_empty() {
        string_attribute(&attributes, EVENT_NAME_ATTRIBUTE)?
    } else {
        Some(record.event_name.as_str())
    };
    let Some(action) = action else {
        return Err(refused(
            "missing_field",
            "the record has no event name: set the record's event_name or the attribute event.name (it becomes the action)",
            "event_name (or attribute event.name)",
        ));
    };
    event.insert("action".into(), json!(action));

    match record.body.as_ref().and_then(|body| body.value.as_ref()) {
        Some(any_value::Value::StringValue(message)) => {
            event.insert("message".into(), json!(message));
        }
        _ => {
            return Err(refused(
                "missing_field",
                "the record's body must be a string: it becomes the message",
                "body",
            ));
        }
    }

    let timestamp = if record.time_unix_nano != 0 {
        record.time_unix_nano
    } else {
        record.observed_time_unix_nano
    };
    if timestamp != 0 {
        let created_at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(timestamp))
            .ok()
            .and_then(|time| time.format(&Rfc3339).ok())
            .ok_or_else(|| {
                refused(
                    "invalid_field",
                    "the time is out of range",
                    "time_unix_nano",
                )
            })?;
        event.insert("created_at".into(), json!(created_at));
    }

    let actor_id = match string_attribute(&attributes, USER_ID_ATTRIBUTE)? {
        Some(id) => Some(id),
        None => string_attribute(&attributes, ENDUSER_ID_ATTRIBUTE)?,
    };
    if let Some(actor_id) = actor_id {
        let mut actor = serde_json::Map::new();
        actor.insert("id".into(), json!(actor_id));
        if let Some(name) = string_attribute(&attributes, USER_NAME_ATTRIBUTE)? {
            actor.insert("name".into(), json!(name));
        }
        let actor_type = string_attribute(&attributes, ACTOR_TYPE_ATTRIBUTE)?.unwrap_or("user");
        actor.insert("type".into(), json!(actor_type));
        event.insert("actor".into(), Value::Object(actor));
    }
    if let Some(ip) = string_attribute(&attributes, CLIENT_ADDRESS_ATTRIBUTE)? {
        event.insert("ip".into(), json!(ip));
    }
    if let Some(user_agent) = string_attribute(&attributes, USER_AGENT_ATTRIBUTE)? {
        event.insert("user_agent".into(), json!(user_agent));
    }
    if let Some(outcome) = string_attribute(&attributes, OUTCOME_ATTRIBUTE)? {
        event.insert("outcome".into(), json!(outcome));
    }
    if let Some(target_id) = string_attribute(&attributes, TARGET_ID_ATTRIBUTE)? {
        let mut target = serde_json::Map::new();
        target.insert(
            "type".into(),
            json!(string_attribute(&attributes, TARGET_TYPE_ATTRIBUTE)?.unwrap_or("unknown")),
        );
        target.insert("id".into(), json!(target_id));
        if let Some(name) = string_attribute(&attributes, TARGET_NAME_ATTRIBUTE)? {
            target.insert("name".into(), json!(name));
        }
        event.insert("targets".into(), json!([Value::Object(target)]));
    }

    let mut metadata = serde_json::Map::new();
    let other_attributes = attributes_json(
        attributes
            .iter()
            .filter(|(name, _)| !MAPPED_ATTRIBUTES.contains(name)),
    )?;
    if !other_attributes.is_empty() {
        metadata.insert("attributes".into(), Value::Object(other_attributes));
    }
    let resource_json = attributes_json(
        resource_attributes
            .iter()
            .filter(|(name, _)| *name != ACCOUNT_ATTRIBUTE),
    )?;
    if !resource_json.is_empty() {
        metadata.insert("resource".into(), Value::Object(resource_json));
    }
    if let Some(scope) = scope {
        let mut scope_json = serde_json::Map::new();
        if !scope.name.is_empty() {
            scope_json.insert("name".into(), json!(scope.name));
        }
        if !scope.version.is_empty() {
            scope_json.insert("version".into(), json!(scope.version));
        }
        let scope_attributes =
            attributes_json(attribute_lookup(&scope.attributes, "scope attribute")?.iter())?;
        if !scope_attributes.is_empty() {
            scope_json.insert("attributes".into(), Value::Object(scope_attributes));
        }
        if !scope_json.is_empty() {
            metadata.insert("scope".into(), Value::Object(scope_json));
        }
    }
    if !record.severity_text.is_empty() {
        metadata.insert("severity_text".into(), json!(record.severity_text));
    }
    if record.severity_number != 0 {
        metadata.insert("severity_number".into(), json!(record.severity_number));
    }
    if !record.trace_id.is_empty() {
        metadata.insert(
            "trace_id".into(),
            json!(logbook_core::export_verification::hex(&record.trace_id)),
        );
    }
    if !record.span_id.is_empty() {
        metadata.insert(
            "span_id".into(),
            json!(logbook_core::export_verification::hex(&record.span_id)),
        );
    }
    if !metadata.is_empty() {
        event.insert("metadata".into(), Value::Object(metadata));
    }

    let key = match string_attribute(&attributes, IDEMPOTENCY_KEY_ATTRIBUTE)? {
        Some(key) => key.to_owned(),
        None => record_digest_key(resource, scope, record),
    };
    event.insert("key".into(), json!(key));
    Ok(Value::Object(event))
}

/// The idempotency key of a record that names none: the SHA-256 of the protobuf encodings of its
/// resource, scope and the record itself (prost encodes one message the same way every time, and a
/// JSON request decodes into the same messages, so both encodings give one key).
fn record_digest_key(
    resource: Option<&Resource>,
    scope: Option<&InstrumentationScope>,
    record: &LogRecord,
) -> String {
    let mut hasher = Sha256::new();
    for part in [
        resource.map(Message::encode_to_vec).unwrap_or_default(),
        scope.map(Message::encode_to_vec).unwrap_or_default(),
        record.encode_to_vec(),
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(&part);
    }
    format!(
        "otlp-{}",
        logbook_core::export_verification::hex(&hasher.finalize())
    )
}

fn attributes_json<'record>(
    attributes: impl Iterator<Item = &'record (&'record str, Option<&'record AnyValue>)>,
) -> Result<serde_json::Map<String, Value>, FieldError> {
    let mut object = serde_json::Map::new();
    for (name, value) in attributes {
        object.insert(
            (*name).to_owned(),
            value.map_or(Ok(Value::Null), |value| any_value_json(value, name))?,
        );
    }
    Ok(object)
}

/// The largest integer every JSON reader holds exactly (I-JSON); larger ones become strings.
const MAX_EXACT_JSON_INTEGER: i64 = (1 << 53) - 1;

/// An attribute value as JSON (see the module's notes on integers, doubles and bytes).
fn any_value_json(value: &AnyValue, attribute: &str) -> Result<Value, FieldError> {
    Ok(match &value.value {
        None | Some(any_value::Value::StringValueStrindex(_)) => Value::Null,
        Some(any_value::Value::StringValue(text)) => json!(text),
        Some(any_value::Value::BoolValue(flag)) => json!(flag),
        Some(any_value::Value::IntValue(number))
            if number.unsigned_abs() <= MAX_EXACT_JSON_INTEGER as u64 =>
        {
            json!(number)
        }
        Some(any_value::Value::IntValue(number)) => json!(number.to_string()),
        Some(any_value::Value::DoubleValue(number)) => serde_json::Number::from_f64(*number)
            .map_or_else(|| json!(number.to_string()), Value::Number),
        Some(any_value::Value::BytesValue(bytes)) => {
            json!(logbook_core::export_verification::hex(bytes))
        }
        Some(any_value::Value::ArrayValue(array)) => Value::Array(
            array
                .values
                .iter()
                .map(|element| any_value_json(element, attribute))
                .collect::<Result<_, _>>()?,
        ),
        Some(any_value::Value::KvlistValue(list)) => {
            let lookup = attribute_lookup(&list.values, &format!("attribute {attribute}"))?;
            Value::Object(attributes_json(lookup.iter())?)
        }
    })
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{ArrayValue, KeyValueList};

    use super::*;

    fn string_value(text: &str) -> Option<AnyValue> {
        Some(AnyValue {
            value: Some(any_value::Value::StringValue(text.to_owned())),
        })
    }

    fn attribute(key: &str, value: Option<AnyValue>) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value,
            ..Default::default()
        }
    }

    fn audit_record() -> LogRecord {
        LogRecord {
            time_unix_nano: 1_717_233_120_123_456_789,
            observed_time_unix_nano: 1_717_233_121_000_000_000,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: string_value("Alice rebooted web-1"),
            event_name: "server.reboot".into(),
            attributes: vec![
                attribute("user.id", string_value("alice@acme.com")),
                attribute("user.name", string_value("Alice")),
                attribute("client.address", string_value("203.0.113.9")),
                attribute("user_agent.original", string_value("curl/8")),
                attribute("logbook.outcome", string_value("success")),
                attribute("logbook.target.type", string_value("server")),
                attribute("logbook.target.id", string_value("web-1")),
                attribute(
                    "http.status",
                    Some(AnyValue {
                        value: Some(any_value::Value::IntValue(9_007_199_254_740_993)),
                    }),
                ),
            ],
            trace_id: vec![0xab; 16],
            span_id: vec![0xcd; 8],
            ..Default::default()
        }
    }

    #[test]
    fn a_log_record_maps_to_every_event_field() {
        let resource = Resource {
            attributes: vec![
                attribute("service.name", string_value("billing")),
                attribute("logbook.account", string_value("acme")),
            ],
            ..Default::default()
        };
        let scope = InstrumentationScope {
            name: "audit".into(),
            version: "1.0".into(),
            ..Default::default()
        };
        let event = translate(Some(&resource), Some(&scope), &audit_record()).unwrap();
        let key = event["key"].as_str().unwrap().to_owned();
        assert!(key.starts_with("otlp-") && key.len() == 69, "{key}");
        assert_eq!(
            event,
            json!({
                "account": "acme", "action": "server.reboot", "message": "Alice rebooted web-1",
                "created_at": "2024-06-01T09:12:00.123456789Z",
                "actor": {"id": "alice@acme.com", "name": "Alice", "type": "user"},
                "ip": "203.0.113.9", "user_agent": "curl/8", "outcome": "success",
                "targets": [{"type": "server", "id": "web-1"}],
                "metadata": {
                    "attributes": {"http.status": "9007199254740993"},
                    "resource": {"service.name": "billing"},
                    "scope": {"name": "audit", "version": "1.0"},
                    "severity_text": "INFO", "severity_number": 9,
                    "trace_id": "ab".repeat(16), "span_id": "cd".repeat(8),
                },
                "key": key,
            })
        );
    }

    #[test]
    fn the_digest_key_is_stable_and_tells_records_apart() {
        let record = audit_record();
        assert_eq!(
            record_digest_key(None, None, &record),
            record_digest_key(None, None, &record.clone())
        );
        let mut later = record.clone();
        later.time_unix_nano += 1;
        assert_ne!(
            record_digest_key(None, None, &record),
            record_digest_key(None, None, &later)
        );
        let mut named = record;
        named
            .attributes
            .push(attribute("logbook.idempotency_key", string_value("k-1")));
        assert_eq!(translate(None, None, &named).unwrap()["key"], "k-1");
    }

    #[test]
    fn records_without_a_name_or_a_string_body_are_refused_with_the_reason() {
        let mut nameless = audit_record();
        nameless.event_name.clear();
        let error = translate(None, None, &nameless).unwrap_err();
        assert_eq!(error.code, "missing_field");
        nameless
            .attributes
            .push(attribute("event.name", string_value("server.reboot")));
        assert_eq!(
            translate(None, None, &nameless).unwrap()["action"],
            "server.reboot"
        );

        let mut structured = audit_record();
        structured.body = Some(AnyValue {
            value: Some(any_value::Value::KvlistValue(KeyValueList::default())),
        });
        assert!(
            translate(None, None, &structured)
                .unwrap_err()
                .message
                .contains("body")
        );

        let mut repeated = audit_record();
        repeated
            .attributes
            .push(attribute("user.id", string_value("mallory")));
        assert_eq!(
            translate(None, None, &repeated).unwrap_err().code,
            "duplicate_field"
        );
    }

    #[test]
    fn attribute_values_become_json() {
        let nested = AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue {
                values: vec![
                    AnyValue {
                        value: Some(any_value::Value::DoubleValue(f64::NAN)),
                    },
                    AnyValue {
                        value: Some(any_value::Value::BytesValue(vec![1, 255])),
                    },
                    AnyValue {
                        value: Some(any_value::Value::KvlistValue(KeyValueList {
                            values: vec![attribute("a", string_value("b"))],
                        })),
                    },
                ],
            })),
        };
        assert_eq!(
            any_value_json(&nested, "x").unwrap(),
            json!(["NaN", "01ff", {"a": "b"}])
        );
    }

    #[test]
    fn refusal_bodies_are_google_rpc_status_in_the_requests_encoding() {
        let (content_type, body) = encode_status(OtlpEncoding::Protobuf, 3, "bad");
        assert_eq!(content_type, "application/x-protobuf");
        assert_eq!(
            GoogleRpcStatus::decode(&body[..]).unwrap(),
            GoogleRpcStatus {
                code: 3,
                message: "bad".into()
            }
        );
        let (content_type, body) = encode_status(OtlpEncoding::Json, 16, "who?");
        assert_eq!(content_type, "application/json");
        assert_eq!(
            serde_json::from_slice::<Value>(&body).unwrap(),
            json!({"code": 16, "message": "who?"})
        );
    }
}
