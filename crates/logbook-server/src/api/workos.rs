//! WorkOS's audit log events API, as its SDKs send it: `POST /audit_logs/events` with
//! `Authorization: Bearer KEY`, an `Idempotency-Key` header and
//! `{"organization_id", "event": {action, occurred_at, version, actor, targets, context, metadata}}`.
//!
//! `organization_id` is the Logbook account, with ASCII letters lowercased: WorkOS's own ids
//! (`org_01EHZNVPK3SFK441A1RGBFSHRT`) are case-insensitive ULIDs, and Logbook account names are
//! lowercase, so `org_01EHZ...` writes to the account `org_01ehz...` (two organization ids that
//! differ only in case are one account). A platform key writes for any organization, an account
//! key only for its own account (another organization is refused whole, 403). The
//! `Idempotency-Key` header is the event's idempotency `key`: a retry with the same header stores
//! one event and answers as the first did.
//!
//! Mapping: `action` -> `action`, `occurred_at` -> `created_at`, `actor {id, name, type}` -> `actor`
//! (a type other than `user`, `api_key` or `system` is kept in `metadata.workos.actor_type`),
//! `targets` -> `targets`, `context.location` -> `ip` when it is an IP address (otherwise
//! `metadata.workos.location`), `context.user_agent` -> `user_agent`, `metadata` -> `metadata`;
//! `version` and the actor's and targets' own metadata go to `metadata.workos`. WorkOS events have
//! no sentence, so the message is written from them: `"<action> by <actor name or id>"`, then
//! `" on <type> <name or id>, ..."` for the targets.
//!
//! Answers are WorkOS's: 201 `{"success":true}`; a refused event is 400
//! `{"code":"invalid_audit_log","message":"Invalid Audit Log event","errors":[...]}` and other
//! refusals `{"code","message"}` with Logbook's status and code.

use std::net::IpAddr;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::producer_ingest::{
    UniqueKeyMap, field_error_in_protocol_terms, json_object, parse_wire_json,
    store_translated_events, validate_translated_events,
};
use crate::api::v1::events::{EventOutcome, is_json_content_type, read_ingest_body};
use crate::auth::{KeyPresentation, ingest_key_from_headers};
use crate::error::{ApiError, DialectError, ErrorDialect, RejectedEventDetail};
use crate::state::AppState;

/// The body of `POST /audit_logs/events`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkOsCreateEventRequest {
    /// The organization: the Logbook account (ASCII letters lowercased).
    pub organization_id: String,
    pub event: WorkOsAuditLogEvent,
}

/// One audit log event as WorkOS's SDKs send it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkOsAuditLogEvent {
    pub action: String,
    /// ISO 8601 (RFC 3339) time of the action: Logbook's `created_at`.
    pub occurred_at: String,
    /// The schema version the event follows (kept in `metadata.workos.version`).
    pub version: Option<i64>,
    pub actor: WorkOsEntity,
    pub targets: Vec<WorkOsEntity>,
    pub context: WorkOsContext,
    /// String, number or boolean values: Logbook's `metadata`.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<UniqueKeyMap<Value>>,
}

/// An actor or a target.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkOsEntity {
    pub id: String,
    #[serde(rename = "type")]
    pub entity_type: String,
    pub name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<UniqueKeyMap<Value>>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkOsContext {
    /// An IP address or another place identifier.
    pub location: String,
    pub user_agent: Option<String>,
}

/// The answer to a created (or replayed) event.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WorkOsCreateEventResponse {
    pub success: bool,
}

const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// The actor types Logbook's event model names; other WorkOS actor types are kept in metadata.
const LOGBOOK_ACTOR_TYPES: [&str; 3] = ["user", "api_key", "system"];

/// Where WorkOS's fields went in the translated Logbook event, relative to `event`.
const POINTERS: &[(&str, &str)] = &[
    ("/account", "/organization_id"),
    ("/created_at", "/event/occurred_at"),
    ("/ip", "/event/context/location"),
    ("/user_agent", "/event/context/user_agent"),
    ("/key", "/Idempotency-Key"),
    ("/metadata/workos/actor_metadata", "/event/actor/metadata"),
    ("/metadata/workos/target_metadata", "/event/targets"),
    ("/metadata/workos/location", "/event/context/location"),
    ("/metadata/workos", "/event"),
    ("/metadata", "/event/metadata"),
    ("/action", "/event/action"),
    ("/actor", "/event/actor"),
    ("/targets", "/event/targets"),
    ("/message", "/event"),
];

fn refusal(error: ApiError) -> DialectError {
    DialectError::new(ErrorDialect::WorkOs, error)
}

fn invalid_event(field: String, code: &'static str, message: String) -> DialectError {
    let mut error = refusal(ApiError::bad_request(
        "invalid_audit_log",
        "Invalid Audit Log event",
        None,
    ));
    error.rejected_events.push(RejectedEventDetail {
        index: 0,
        code,
        message,
        field,
    });
    error
}

/// `POST /audit_logs/events`.
#[utoipa::path(
    post,
    path = "/audit_logs/events",
    operation_id = "workos_create_event",
    tag = "producer protocols",
    description = "WorkOS's audit log events API, as its SDKs send it: organization_id is the Logbook account; the Idempotency-Key header is honoured.",
    params(("Idempotency-Key" = Option<String>, Header, description = "Stores the event once however often it is sent")),
    request_body = WorkOsCreateEventRequest,
    security(("ingest_key" = [])),
    responses(
        (status = 201, description = "Stored durably (or already stored under its idempotency key)", body = WorkOsCreateEventResponse),
        (status = 400, description = "The event cannot be represented; WorkOS's error format names the field", body = Object),
        (status = 422, description = "Refused as WorkOS refuses it (WorkOS's error format)", body = Object),
        (status = 401, description = "No key, or a key that is unknown or revoked (in the protocol's own error format)", body = Object),
        (status = 403, description = "The key lacks the ingest scope, or the account's ingest is turned off", body = Object),
        (status = 413, description = "Body larger than the configured limit", body = Object),
        (status = 429, description = "A rate limit or the daily quota refused the whole request; nothing was stored", body = Object, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 503, description = "The store is unavailable", body = Object, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn create_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, DialectError> {
    let key = ingest_key_from_headers(&headers, &state, KeyPresentation::Bearer)
        .await
        .map_err(refusal)?;
    if !is_json_content_type(&headers) {
        return Err(refusal(ApiError::UnsupportedMediaType));
    }
    let body = read_ingest_body(&state, &headers, body)
        .await
        .map_err(refusal)?;
    let request = parse_wire_json::<WorkOsCreateEventRequest>(&body)
        .map_err(|(pointer, message)| invalid_event(pointer, "invalid_field", message))?;
    let idempotency_key = match headers.get(IDEMPOTENCY_KEY_HEADER) {
        None => None,
        Some(value) => Some(value.to_str().map(str::to_owned).map_err(|_| {
            invalid_event(
                "/Idempotency-Key".to_owned(),
                "invalid_field",
                "the Idempotency-Key header must be visible ASCII".to_owned(),
            )
        })?),
    };

    check_metadata_values(&request.event)?;
    let max_message_bytes = state.settings().ingest_limits.max_message_bytes;
    let translated = translate(&request, idempotency_key.as_deref(), max_message_bytes);
    let mut parsed = validate_translated_events(&state, &key, std::slice::from_ref(&translated))
        .map_err(|error| match error {
            ApiError::Forbidden { message, .. } => refusal(ApiError::Forbidden {
                message,
                field: Some("/organization_id".to_owned()),
            }),
            other => refusal(other),
        })?;
    if let Some(Err(error)) = parsed.first() {
        let (_, error) = field_error_in_protocol_terms(error.clone(), POINTERS);
        return Err(invalid_event(error.field, error.code, error.message));
    }
    let parsed_event = parsed.pop().expect("one parsed event");

    let outcome = store_translated_events(&state, &key, vec![parsed_event])
        .await
        .map_err(refusal)?
        .pop()
        .expect("one outcome per event");
    match outcome {
        EventOutcome::Stored(_) | EventOutcome::Duplicate(_) => Ok((
            StatusCode::CREATED,
            axum::Json(WorkOsCreateEventResponse { success: true }),
        )
            .into_response()),
        EventOutcome::KeyReusedWithDifferentContent => Err(refusal(ApiError::bad_request(
            "idempotency_key_reused",
            "this Idempotency-Key was already used for an event with different content",
            Some("Idempotency-Key"),
        ))),
        EventOutcome::Rejected(error) => {
            let (_, error) = field_error_in_protocol_terms(error, POINTERS);
            Err(invalid_event(error.field, error.code, error.message))
        }
    }
}

/// WorkOS metadata values are strings, numbers or booleans.
fn check_metadata_values(event: &WorkOsAuditLogEvent) -> Result<(), DialectError> {
    let mut maps: Vec<(String, &UniqueKeyMap<Value>)> = Vec::new();
    if let Some(metadata) = &event.metadata {
        maps.push(("/event/metadata".to_owned(), metadata));
        if metadata.0.iter().any(|(name, _)| name == "workos") {
            return Err(invalid_event(
                "/event/metadata/workos".to_owned(),
                "invalid_field",
                "the metadata key \"workos\" is reserved: Logbook keeps WorkOS's own attributes under metadata.workos".to_owned(),
            ));
        }
    }
    if let Some(metadata) = &event.actor.metadata {
        maps.push(("/event/actor/metadata".to_owned(), metadata));
    }
    for (index, target) in event.targets.iter().enumerate() {
        if let Some(metadata) = &target.metadata {
            maps.push((format!("/event/targets/{index}/metadata"), metadata));
        }
    }
    for (pointer, map) in maps {
        for (name, value) in &map.0 {
            if !matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
                return Err(invalid_event(
                    format!("{pointer}/{}", name.replace('~', "~0").replace('/', "~1")),
                    "invalid_field",
                    "metadata values must be strings, numbers or booleans".to_owned(),
                ));
            }
        }
    }
    Ok(())
}

/// The sentence Logbook shows for a WorkOS event, which has none of its own, cut to
/// `max_bytes` at a character boundary.
fn message_of(event: &WorkOsAuditLogEvent, max_bytes: usize) -> String {
    let actor = event.actor.name.as_deref().unwrap_or(&event.actor.id);
    let mut message = format!("{} by {actor}", event.action);
    for (index, target) in event.targets.iter().enumerate() {
        message.push_str(if index == 0 { " on " } else { ", " });
        message.push_str(&target.entity_type);
        message.push(' ');
        message.push_str(target.name.as_deref().unwrap_or(&target.id));
    }
    if message.len() > max_bytes {
        let mut end = max_bytes.saturating_sub('…'.len_utf8());
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

/// The Logbook ingest event for a WorkOS event (see the module's mapping).
fn translate(
    request: &WorkOsCreateEventRequest,
    idempotency_key: Option<&str>,
    max_message_bytes: usize,
) -> Value {
    let event = &request.event;
    let mut logbook_event = serde_json::Map::new();
    logbook_event.insert(
        "account".into(),
        json!(request.organization_id.to_ascii_lowercase()),
    );
    logbook_event.insert("action".into(), json!(event.action));
    logbook_event.insert(
        "message".into(),
        json!(message_of(event, max_message_bytes)),
    );
    logbook_event.insert("created_at".into(), json!(event.occurred_at));

    let mut workos = serde_json::Map::new();
    let mut actor = serde_json::Map::new();
    actor.insert("id".into(), json!(event.actor.id));
    if let Some(name) = &event.actor.name {
        actor.insert("name".into(), json!(name));
    }
    if LOGBOOK_ACTOR_TYPES.contains(&event.actor.entity_type.as_str()) {
        actor.insert("type".into(), json!(event.actor.entity_type));
    } else {
        workos.insert("actor_type".into(), json!(event.actor.entity_type));
    }
    logbook_event.insert("actor".into(), Value::Object(actor));

    let location = event.context.location.trim();
    if location.parse::<IpAddr>().is_ok() {
        logbook_event.insert("ip".into(), json!(location));
    } else {
        workos.insert("location".into(), json!(event.context.location));
    }
    if let Some(user_agent) = &event.context.user_agent {
        logbook_event.insert("user_agent".into(), json!(user_agent));
    }
    if !event.targets.is_empty() {
        let targets: Vec<Value> = event
            .targets
            .iter()
            .map(|target| {
                let mut target_json = serde_json::Map::new();
                target_json.insert("type".into(), json!(target.entity_type));
                target_json.insert("id".into(), json!(target.id));
                if let Some(name) = &target.name {
                    target_json.insert("name".into(), json!(name));
                }
                Value::Object(target_json)
            })
            .collect();
        logbook_event.insert("targets".into(), Value::Array(targets));
    }

    if let Some(version) = event.version {
        workos.insert("version".into(), json!(version));
    }
    if let Some(metadata) = &event.actor.metadata {
        workos.insert("actor_metadata".into(), json_object(metadata));
    }
    if event.targets.iter().any(|target| target.metadata.is_some()) {
        let target_metadata: Vec<Value> = event
            .targets
            .iter()
            .map(|target| target.metadata.as_ref().map_or(Value::Null, json_object))
            .collect();
        workos.insert("target_metadata".into(), Value::Array(target_metadata));
    }
    let mut metadata = match event.metadata.as_ref().map(json_object) {
        Some(Value::Object(metadata)) => metadata,
        _ => serde_json::Map::new(),
    };
    if !workos.is_empty() {
        metadata.insert("workos".into(), Value::Object(workos));
    }
    if !metadata.is_empty() {
        logbook_event.insert("metadata".into(), Value::Object(metadata));
    }
    if let Some(key) = idempotency_key {
        logbook_event.insert("key".into(), json!(key));
    }
    Value::Object(logbook_event)
}

#[cfg(test)]
mod tests {
    use logbook_core::ingest::FieldError;

    use super::*;

    fn pointer_of(error: FieldError) -> String {
        field_error_in_protocol_terms(error, POINTERS).1.field
    }

    fn request(json: Value) -> WorkOsCreateEventRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn every_workos_field_has_a_place_in_the_logbook_event() {
        let workos_request = request(json!({
            "organization_id": "org_01EHWNCE74X7JSDV0X3SZ3KJNY",
            "event": {
                "action": "user.signed_in", "occurred_at": "2024-06-01T09:12:00.000Z", "version": 2,
                "actor": {"type": "user", "id": "user_1", "name": "Jon Smith", "metadata": {"role": "admin"}},
                "targets": [
                    {"type": "team", "id": "team_1", "name": "Core"},
                    {"type": "document", "id": "doc_1", "metadata": {"size": 3}},
                ],
                "context": {"location": "203.0.113.9", "user_agent": "Chrome/104.0.0.0"},
                "metadata": {"plan": "pro", "seats": 4, "trial": false},
            }
        }));
        assert_eq!(
            translate(&workos_request, Some("idem-1"), 4096),
            json!({
                "account": "org_01ehwnce74x7jsdv0x3sz3kjny",
                "action": "user.signed_in",
                "message": "user.signed_in by Jon Smith on team Core, document doc_1",
                "created_at": "2024-06-01T09:12:00.000Z",
                "actor": {"id": "user_1", "name": "Jon Smith", "type": "user"},
                "ip": "203.0.113.9", "user_agent": "Chrome/104.0.0.0",
                "targets": [
                    {"type": "team", "id": "team_1", "name": "Core"},
                    {"type": "document", "id": "doc_1"},
                ],
                "metadata": {"plan": "pro", "seats": 4, "trial": false, "workos": {
                    "version": 2, "actor_metadata": {"role": "admin"},
                    "target_metadata": [null, {"size": 3}],
                }},
                "key": "idem-1",
            })
        );
    }

    #[test]
    fn a_location_that_is_no_address_and_an_unknown_actor_type_stay_in_metadata() {
        let workos_request = request(json!({
            "organization_id": "acme",
            "event": {
                "action": "report.export", "occurred_at": "2024-06-01T09:12:00Z",
                "actor": {"type": "service", "id": "svc-7"}, "targets": [],
                "context": {"location": "Paris, FR"},
            }
        }));
        let translated = translate(&workos_request, None, 4096);
        assert_eq!(translated["actor"], json!({"id": "svc-7"}));
        assert_eq!(translated["message"], "report.export by svc-7");
        assert_eq!(
            translated["metadata"],
            json!({"workos": {"actor_type": "service", "location": "Paris, FR"}})
        );
        assert!(translated.get("ip").is_none() && translated.get("key").is_none());
    }

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        let workos_request = request(json!({
            "organization_id": "acme",
            "event": {
                "action": "a.b", "occurred_at": "2024-06-01T09:12:00Z",
                "actor": {"type": "user", "id": "é".repeat(40)}, "targets": [],
                "context": {"location": "x"},
            }
        }));
        let message = message_of(&workos_request.event, 20);
        assert!(message.len() <= 20 && message.ends_with('…'), "{message}");
    }

    #[test]
    fn logbook_pointers_read_as_the_workos_request() {
        let error = |field: &str| FieldError {
            code: "invalid_field",
            message: String::new(),
            field: format!("/events/0{field}"),
        };
        assert_eq!(pointer_of(error("/created_at")), "/event/occurred_at");
        assert_eq!(pointer_of(error("/actor/id")), "/event/actor/id");
        assert_eq!(pointer_of(error("/metadata/plan")), "/event/metadata/plan");
        assert_eq!(pointer_of(error("/account")), "/organization_id");
    }
}
