//! Retraced's publisher API, as its official clients (`@retracedhq/retraced` on npm, the Go
//! client) send it: `POST /publisher/v1/project/{project_id}/event` (one event) and
//! `.../event/bulk` (`{"events":[...]}`), with `Authorization: token=KEY`.
//!
//! In Retraced the project is the platform and the `group` its customer, so `group.id` is the
//! Logbook account and the token is a Logbook ingest key: a platform key writes for any group, an
//! account key only for its own account (a group naming another is refused whole, 403). The
//! `project_id` in the path is no authority in Logbook (the key is): it is kept with each event as
//! `metadata.retraced.project_id`, so one Logbook can tell apart several Retraced projects that
//! send to it.
//!
//! Mapping: `action` -> `action`, `description` -> `message` (required here, since Logbook shows a
//! message for every event), `created` -> `created_at`, `actor {id,name}` -> `actor`, `target
//! {type,id,name}` -> the one target (type `unknown` when Retraced's is absent), `source_ip` -> `ip`,
//! `is_failure` -> `outcome`, `fields` -> `metadata` (one key each), `external_id` -> the
//! idempotency `key`; what Logbook has no field for (`crud`, `component`, `version`, `group.name`,
//! `is_anonymous`, `actor`/`target` `href` and `fields`, Retraced's own `metadata`) goes to
//! `metadata.retraced`. Retraced's own rules hold too (`crud` one of c/r/u/d, an actor unless
//! `is_anonymous`, ids inside present objects).
//!
//! Answers are Retraced's: 201 with `{"id","hash"}` (or a list of them for bulk), where `hash` is
//! Retraced's canonical event hash, which the clients check. A bulk request is all-or-nothing, as
//! in Retraced: one invalid event refuses the request with 400 and nothing is stored.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use logbook_core::api_key::ApiKeyRecord;
use logbook_core::ingest::FieldError;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::api::producer_ingest::{
    UniqueKeyMap, field_error_in_protocol_terms, json_object, parse_wire_json,
    store_translated_events, validate_translated_events,
};
use crate::api::v1::events::{EventOutcome, read_ingest_body};
use crate::auth::{KeyPresentation, ingest_key_from_headers};
use crate::error::{ApiError, DialectError, ErrorDialect, RejectedEventDetail};
use crate::state::AppState;

/// One event as Retraced's clients send it (`CreateEventRequest` in Retraced's publisher API).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetracedEventRequest {
    /// What happened, e.g. `user.login`; must be a Logbook action (dotted lowercase).
    pub action: Option<String>,
    /// `c`, `r`, `u` or `d`.
    pub crud: Option<String>,
    /// The customer: `group.id` is the Logbook account.
    pub group: Option<RetracedGroup>,
    /// When it happened, RFC 3339.
    pub created: Option<String>,
    pub actor: Option<RetracedActor>,
    pub target: Option<RetracedTarget>,
    pub source_ip: Option<String>,
    /// The human sentence: Logbook's `message`.
    pub description: Option<String>,
    pub is_anonymous: Option<bool>,
    pub is_failure: Option<bool>,
    /// Free string fields: Logbook's `metadata`, one key each.
    #[schema(value_type = Option<std::collections::HashMap<String, String>>)]
    pub fields: Option<UniqueKeyMap<String>>,
    pub component: Option<String>,
    pub version: Option<String>,
    /// The producer's own id for the event: Logbook's idempotency `key`.
    pub external_id: Option<String>,
    #[schema(value_type = Option<std::collections::HashMap<String, String>>)]
    pub metadata: Option<UniqueKeyMap<String>>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetracedGroup {
    pub id: Option<String>,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetracedActor {
    pub id: Option<String>,
    pub name: Option<String>,
    pub href: Option<String>,
    #[schema(value_type = Option<std::collections::HashMap<String, String>>)]
    pub fields: Option<UniqueKeyMap<String>>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetracedTarget {
    pub id: Option<String>,
    pub name: Option<String>,
    pub href: Option<String>,
    #[serde(rename = "type")]
    pub target_type: Option<String>,
    #[schema(value_type = Option<std::collections::HashMap<String, String>>)]
    pub fields: Option<UniqueKeyMap<String>>,
}

/// The body of `POST .../event/bulk`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetracedBulkRequest {
    pub events: Vec<RetracedEventRequest>,
}

/// The answer for each created event: its Logbook id and Retraced's canonical hash of it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RetracedEventResponse {
    pub id: String,
    pub hash: String,
}

/// The one Logbook target type given to a Retraced target that has none.
const UNKNOWN_TARGET_TYPE: &str = "unknown";

/// Where Retraced's fields went in the translated Logbook event, to point errors at the field
/// the producer sent.
const POINTERS: &[(&str, &str)] = &[
    ("/account", "/group/id"),
    ("/message", "/description"),
    ("/created_at", "/created"),
    ("/ip", "/source_ip"),
    ("/targets/0/type", "/target/type"),
    ("/targets/0", "/target"),
    ("/key", "/external_id"),
    ("/metadata/retraced/metadata", "/metadata"),
    ("/metadata/retraced/actor_fields", "/actor/fields"),
    ("/metadata/retraced/target_fields", "/target/fields"),
    ("/metadata/retraced/actor_href", "/actor/href"),
    ("/metadata/retraced/target_href", "/target/href"),
    ("/metadata/retraced/group_name", "/group/name"),
    ("/metadata/retraced", ""),
    ("/metadata", "/fields"),
];

/// `POST /publisher/v1/project/{project_id}/event`.
#[utoipa::path(
    post,
    path = "/publisher/v1/project/{project_id}/event",
    operation_id = "retraced_create_event",
    tag = "producer protocols",
    description = "Retraced's publisher API, as @retracedhq/retraced sends it: the project is the platform (a platform ingest key as the project token), group.id is the Logbook account.",
    params(("project_id" = String, Path, description = "Retraced's project id (any value; the key decides)")),
    request_body = RetracedEventRequest,
    security(("retraced_token" = [])),
    responses(
        (status = 201, description = "Stored durably (or already stored under its external_id)", body = RetracedEventResponse),
        (status = 400, description = "The event cannot be represented; Retraced's error format names the field", body = Object),
        (status = 401, description = "No key, or a key that is unknown or revoked (in the protocol's own error format)", body = Object),
        (status = 403, description = "The key lacks the ingest scope, or the account's ingest is turned off", body = Object),
        (status = 413, description = "Body larger than the configured limit", body = Object),
        (status = 429, description = "A rate limit or the daily quota refused the whole request; nothing was stored", body = Object, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 503, description = "The store is unavailable", body = Object, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn create_event(
    State(state): State<AppState>,
    Path(project_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, DialectError> {
    let (key, request) = read_request::<RetracedEventRequest>(&state, &headers, body).await?;
    let mut answers = create(&state, &key, &project_id, vec![request]).await?;
    let answer = answers.pop().expect("one answer per event");
    Ok((StatusCode::CREATED, axum::Json(answer)).into_response())
}

/// `POST /publisher/v1/project/{project_id}/event/bulk`.
#[utoipa::path(
    post,
    path = "/publisher/v1/project/{project_id}/event/bulk",
    operation_id = "retraced_create_events_bulk",
    tag = "producer protocols",
    description = "Retraced's bulk publisher call: every event is stored, or none is.",
    params(("project_id" = String, Path, description = "Retraced's project id (any value; the key decides)")),
    request_body = RetracedBulkRequest,
    security(("retraced_token" = [])),
    responses(
        (status = 201, description = "Stored durably, one answer per event in order", body = Vec<RetracedEventResponse>),
        (status = 400, description = "An event cannot be represented; Retraced's error format names it", body = Object),
        (status = 401, description = "No key, or a key that is unknown or revoked (in the protocol's own error format)", body = Object),
        (status = 403, description = "The key lacks the ingest scope, or the account's ingest is turned off", body = Object),
        (status = 413, description = "Body larger than the configured limit", body = Object),
        (status = 429, description = "A rate limit or the daily quota refused the whole request; nothing was stored", body = Object, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 503, description = "The store is unavailable", body = Object, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn create_events_bulk(
    State(state): State<AppState>,
    Path(project_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, DialectError> {
    let (key, request) = read_request::<RetracedBulkRequest>(&state, &headers, body).await?;
    let answers = create(&state, &key, &project_id, request.events).await?;
    Ok((StatusCode::CREATED, axum::Json(answers)).into_response())
}

fn refusal(error: ApiError) -> DialectError {
    DialectError::new(ErrorDialect::Retraced, error)
}

/// The request's key and body. The key is checked before the body is read, so an
/// unauthenticated client cannot make the server read and parse a large body.
async fn read_request<T: for<'body> Deserialize<'body>>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Arc<ApiKeyRecord>, T), DialectError> {
    let key = ingest_key_from_headers(headers, state, KeyPresentation::BearerOrRetracedToken)
        .await
        .map_err(refusal)?;
    let body = read_ingest_body(state, headers, body)
        .await
        .map_err(refusal)?;
    let request = parse_wire_json::<T>(&body).map_err(|(pointer, message)| {
        refusal(ApiError::bad_request(
            "invalid_body",
            format!("the request body is not a Retraced event request: {message}"),
            Some(&pointer),
        ))
    })?;
    Ok((key, request))
}

async fn create(
    state: &AppState,
    key: &ApiKeyRecord,
    project_id: &str,
    requests: Vec<RetracedEventRequest>,
) -> Result<Vec<RetracedEventResponse>, DialectError> {
    if requests.is_empty() {
        return Err(refusal(ApiError::bad_request(
            "empty_batch",
            "the bulk request holds no events",
            Some("/events"),
        )));
    }
    let limits = &state.settings().ingest_limits;
    if project_id.is_empty() || project_id.len() > limits.max_short_text_bytes {
        return Err(refusal(ApiError::bad_request(
            "invalid_field",
            format!(
                "the project id must be 1 to {} bytes",
                limits.max_short_text_bytes
            ),
            Some("project_id"),
        )));
    }

    // Retraced's own rules first, then Logbook's validator on the translated events; any problem
    // refuses the whole request before anything is stored (Retraced's bulk is all-or-nothing).
    let mut rejected: Vec<RejectedEventDetail> = Vec::new();
    let mut translated = Vec::with_capacity(requests.len());
    for (index, request) in requests.iter().enumerate() {
        match check_retraced_rules(request) {
            Ok(()) => translated.push(translate(request, project_id)),
            Err(error) => {
                rejected.push(detail(index, error));
                translated.push(Value::Null);
            }
        }
    }
    if !rejected.is_empty() {
        return Err(invalid_events(rejected));
    }
    let parsed = validate_translated_events(state, key, &translated).map_err(|error| {
        let error = match error {
            ApiError::Forbidden {
                message,
                field: Some(field),
            } => {
                let (_, field) =
                    field_error_in_protocol_terms(field_error("forbidden", "", &field), POINTERS);
                ApiError::Forbidden {
                    message,
                    field: Some(field.field),
                }
            }
            other => other,
        };
        refusal(error)
    })?;
    for parsed_event in &parsed {
        if let Err(error) = parsed_event {
            let (index, error) = field_error_in_protocol_terms(error.clone(), POINTERS);
            rejected.push(detail(index, error));
        }
    }
    if !rejected.is_empty() {
        return Err(invalid_events(rejected));
    }

    let outcomes = store_translated_events(state, key, parsed)
        .await
        .map_err(refusal)?;
    let mut answers = Vec::with_capacity(outcomes.len());
    for (index, (outcome, request)) in outcomes.into_iter().zip(&requests).enumerate() {
        match outcome {
            EventOutcome::Stored(receipt) | EventOutcome::Duplicate(receipt) => {
                answers.push(RetracedEventResponse {
                    hash: retraced_event_hash(request, receipt.id.as_str()),
                    id: receipt.id.into_string(),
                });
            }
            EventOutcome::KeyReusedWithDifferentContent => {
                // The store answers this per event, after the batch's other events committed;
                // they are stored and a retry of this request answers them as duplicates.
                let mut error = DialectError::new(
                    ErrorDialect::Retraced,
                    ApiError::bad_request(
                        "idempotency_key_reused",
                        format!(
                            "event {index}: this external_id was already used for an event with different content"
                        ),
                        Some("/external_id"),
                    ),
                );
                error.rejected_events.push(RejectedEventDetail {
                    index,
                    code: "idempotency_key_reused",
                    message:
                        "this external_id was already used for an event with different content"
                            .to_owned(),
                    field: "/external_id".to_owned(),
                });
                return Err(error);
            }
            EventOutcome::Rejected(error) => {
                // Unreachable: every event was valid above. Answered all the same.
                return Err(invalid_events(vec![detail(index, error)]));
            }
        }
    }
    Ok(answers)
}

fn field_error(code: &'static str, message: &str, field: &str) -> FieldError {
    FieldError {
        code,
        message: message.to_owned(),
        field: field.to_owned(),
    }
}

fn detail(index: usize, error: FieldError) -> RejectedEventDetail {
    RejectedEventDetail {
        index,
        code: error.code,
        message: error.message,
        field: error.field,
    }
}

fn invalid_events(rejected: Vec<RejectedEventDetail>) -> DialectError {
    let summary = rejected
        .iter()
        .map(|rejected| {
            format!(
                "event {}: {} ({})",
                rejected.index, rejected.message, rejected.field
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let mut error = DialectError::new(
        ErrorDialect::Retraced,
        ApiError::bad_request(
            "invalid_event",
            format!("One or more invalid inputs, no events were logged: {summary}"),
            None,
        ),
    );
    error.rejected_events = rejected;
    error
}

fn is_blank(text: &Option<String>) -> bool {
    text.as_deref().is_none_or(str::is_empty)
}

impl RetracedGroup {
    fn is_empty(&self) -> bool {
        self.id.is_none() && self.name.is_none()
    }
}

impl RetracedActor {
    fn is_empty(&self) -> bool {
        self.id.is_none() && self.name.is_none() && self.href.is_none() && self.fields.is_none()
    }
}

impl RetracedTarget {
    fn is_empty(&self) -> bool {
        self.id.is_none()
            && self.name.is_none()
            && self.href.is_none()
            && self.target_type.is_none()
            && self.fields.is_none()
    }
}

/// The rules Retraced's own publisher API enforces, with its messages, so a producer gets the
/// answer it got from Retraced.
fn check_retraced_rules(request: &RetracedEventRequest) -> Result<(), FieldError> {
    if is_blank(&request.action) {
        return Err(field_error(
            "missing_field",
            "Missing required field 'action'",
            "/action",
        ));
    }
    match request.crud.as_deref() {
        None | Some("") => {
            return Err(field_error(
                "missing_field",
                "Missing required field 'crud'",
                "/crud",
            ));
        }
        Some("c" | "r" | "u" | "d") => {}
        Some(_) => {
            return Err(field_error(
                "invalid_field",
                "Invalid value for 'crud' field: must be one of c, r, u, d",
                "/crud",
            ));
        }
    }
    if let Some(group) = &request.group
        && !group.is_empty()
        && is_blank(&group.id)
    {
        return Err(field_error(
            "missing_field",
            "Field 'group.id' is required if 'group' is present",
            "/group/id",
        ));
    }
    let has_actor = request
        .actor
        .as_ref()
        .is_some_and(|actor| !actor.is_empty());
    if has_actor
        && request
            .actor
            .as_ref()
            .is_some_and(|actor| is_blank(&actor.id))
    {
        return Err(field_error(
            "missing_field",
            "Field 'actor.id' is required if 'actor' is present",
            "/actor/id",
        ));
    }
    if let Some(target) = &request.target
        && !target.is_empty()
        && is_blank(&target.id)
    {
        return Err(field_error(
            "missing_field",
            "Field 'target.id' is required if 'target' is present",
            "/target/id",
        ));
    }
    if !has_actor && request.is_anonymous != Some(true) {
        return Err(field_error(
            "missing_field",
            "Event is not marked anonymous, and missing required field 'actor'",
            "/actor",
        ));
    }
    if request.description.is_none() {
        return Err(field_error(
            "missing_field",
            "Logbook requires 'description': it is the message shown for the event",
            "/description",
        ));
    }
    if request
        .fields
        .as_ref()
        .is_some_and(|fields| fields.0.iter().any(|(name, _)| name == "retraced"))
    {
        return Err(field_error(
            "invalid_field",
            "the field name \"retraced\" is reserved: Logbook keeps Retraced's own attributes under metadata.retraced",
            "/fields/retraced",
        ));
    }
    Ok(())
}

/// The Logbook ingest event for a Retraced event (see the module's mapping).
fn translate(request: &RetracedEventRequest, project_id: &str) -> Value {
    let mut event = serde_json::Map::new();
    if let Some(group_id) = request.group.as_ref().and_then(|group| group.id.as_ref()) {
        event.insert("account".into(), json!(group_id));
    }
    event.insert("action".into(), json!(request.action));
    event.insert("message".into(), json!(request.description));
    if let Some(created) = &request.created {
        event.insert("created_at".into(), json!(created));
    }
    if let Some(actor) = &request.actor
        && let Some(id) = &actor.id
    {
        let mut actor_json = serde_json::Map::new();
        actor_json.insert("id".into(), json!(id));
        if let Some(name) = &actor.name {
            actor_json.insert("name".into(), json!(name));
        }
        event.insert("actor".into(), Value::Object(actor_json));
    }
    if let Some(source_ip) = request.source_ip.as_ref().filter(|ip| !ip.is_empty()) {
        event.insert("ip".into(), json!(source_ip));
    }
    if let Some(is_failure) = request.is_failure {
        event.insert(
            "outcome".into(),
            json!(if is_failure { "failure" } else { "success" }),
        );
    }
    if let Some(target) = &request.target
        && let Some(id) = &target.id
    {
        let mut target_json = serde_json::Map::new();
        target_json.insert(
            "type".into(),
            json!(target.target_type.as_deref().unwrap_or(UNKNOWN_TARGET_TYPE)),
        );
        target_json.insert("id".into(), json!(id));
        if let Some(name) = &target.name {
            target_json.insert("name".into(), json!(name));
        }
        event.insert("targets".into(), json!([Value::Object(target_json)]));
    }

    let mut retraced = serde_json::Map::new();
    retraced.insert("project_id".into(), json!(project_id));
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            retraced.insert(name.to_owned(), value);
        }
    };
    put("crud", request.crud.as_ref().map(|crud| json!(crud)));
    put(
        "component",
        request.component.as_ref().map(|text| json!(text)),
    );
    put("version", request.version.as_ref().map(|text| json!(text)));
    put(
        "group_name",
        request
            .group
            .as_ref()
            .and_then(|group| group.name.as_ref())
            .map(|name| json!(name)),
    );
    put(
        "is_anonymous",
        request
            .is_anonymous
            .filter(|anonymous| *anonymous)
            .map(Value::Bool),
    );
    if let Some(actor) = &request.actor {
        put("actor_href", actor.href.as_ref().map(|href| json!(href)));
        put("actor_fields", actor.fields.as_ref().map(json_object));
    }
    if let Some(target) = &request.target {
        put("target_href", target.href.as_ref().map(|href| json!(href)));
        put("target_fields", target.fields.as_ref().map(json_object));
    }
    put("metadata", request.metadata.as_ref().map(json_object));
    let mut metadata = match request.fields.as_ref().map(json_object) {
        Some(Value::Object(fields)) => fields,
        _ => serde_json::Map::new(),
    };
    metadata.insert("retraced".into(), Value::Object(retraced));
    event.insert("metadata".into(), Value::Object(metadata));
    if let Some(external_id) = request.external_id.as_ref().filter(|id| !id.is_empty()) {
        event.insert("key".into(), json!(external_id));
    }
    Value::Object(event)
}

/// Retraced's canonical hash of an event, as its clients compute it to check the server's answer
/// (the "hashing formula" of Retraced's documentation): SHA-256 of
/// `id:action:target.id:actor.id:group.id:source_ip:is_failure:is_anonymous:fields[:external_id][:metadata]`,
/// with `%` and `:` percent-encoded in every value, `=` and `;` too in the `key=value;` pairs of
/// `fields` and `metadata`, whose keys are sorted as JavaScript sorts strings (by UTF-16 code unit).
pub fn retraced_event_hash(request: &RetracedEventRequest, id: &str) -> String {
    fn pass_one(text: &str) -> String {
        text.replace('%', "%25").replace(':', "%3A")
    }
    fn pass_two(text: &str) -> String {
        text.replace('=', "%3D").replace(';', "%3B")
    }
    fn sorted_pairs(map: &UniqueKeyMap<String>) -> String {
        let mut entries: Vec<&(String, String)> = map.0.iter().collect();
        entries.sort_by(|(left, _), (right, _)| left.encode_utf16().cmp(right.encode_utf16()));
        let mut text = String::new();
        for (name, value) in entries {
            text.push_str(&pass_two(&pass_one(name)));
            text.push('=');
            text.push_str(&pass_two(&pass_one(value)));
            text.push(';');
        }
        text
    }
    fn optional_id(present: bool, id: Option<&String>) -> String {
        match (present, id) {
            (true, Some(id)) => format!("{}:", pass_one(id)),
            (true, None) => "undefined:".to_owned(),
            (false, _) => ":".to_owned(),
        }
    }

    let mut canonical = String::new();
    canonical.push_str(&pass_one(id));
    canonical.push(':');
    canonical.push_str(&pass_one(request.action.as_deref().unwrap_or_default()));
    canonical.push(':');
    let target = request.target.as_ref().filter(|target| !target.is_empty());
    canonical.push_str(&optional_id(
        target.is_some(),
        target.and_then(|target| target.id.as_ref()),
    ));
    let actor = request.actor.as_ref().filter(|actor| !actor.is_empty());
    canonical.push_str(&optional_id(
        actor.is_some(),
        actor.and_then(|actor| actor.id.as_ref()),
    ));
    let group = request.group.as_ref().filter(|group| !group.is_empty());
    canonical.push_str(&optional_id(
        group.is_some(),
        group.and_then(|group| group.id.as_ref()),
    ));
    match request.source_ip.as_deref() {
        Some(source_ip) if !source_ip.is_empty() => {
            canonical.push_str(&pass_one(source_ip));
            canonical.push(':');
        }
        _ => canonical.push(':'),
    }
    canonical.push_str(if request.is_failure == Some(true) {
        "1:"
    } else {
        "0:"
    });
    canonical.push_str(if request.is_anonymous == Some(true) {
        "1:"
    } else {
        "0:"
    });
    match &request.fields {
        None => canonical.push(':'),
        Some(fields) => canonical.push_str(&sorted_pairs(fields)),
    }
    if let Some(external_id) = request.external_id.as_deref().filter(|id| !id.is_empty()) {
        canonical.push(':');
        canonical.push_str(&pass_one(external_id));
    }
    if let Some(metadata) = &request.metadata {
        canonical.push(':');
        canonical.push_str(&sorted_pairs(metadata));
    }
    let digest = Sha256::digest(canonical.as_bytes());
    logbook_core::export_verification::hex(&digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: Value) -> RetracedEventRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn the_hash_follows_retraceds_formula() {
        let event = request(json!({
            "action": "user.login", "crud": "c", "group": {"id": "acme"},
            "actor": {"id": "alice:1"}, "target": {"id": "doc%1"},
            "source_ip": "203.0.113.9", "is_failure": true,
            "fields": {"b": "x=y", "a": "1;2"}, "external_id": "ext-1",
            "metadata": {"k": "v"},
        }));
        let expected_canonical =
            "evt:user.login:doc%251:alice%3A1:acme:203.0.113.9:1:0:a=1%3B2;b=x%3Dy;:ext-1:k=v;";
        assert_eq!(
            retraced_event_hash(&event, "evt"),
            logbook_core::export_verification::hex(&Sha256::digest(expected_canonical))
        );

        let bare = request(json!({"action": "a.b", "crud": "r", "is_anonymous": true}));
        assert_eq!(
            retraced_event_hash(&bare, "evt"),
            logbook_core::export_verification::hex(&Sha256::digest("evt:a.b:::::0:1::"))
        );
        let empty_fields = request(json!({"action": "a.b", "fields": {}}));
        assert_eq!(
            retraced_event_hash(&empty_fields, "evt"),
            logbook_core::export_verification::hex(&Sha256::digest("evt:a.b:::::0:0:"))
        );
    }

    #[test]
    fn field_names_sort_as_javascript_sorts_them() {
        // By code point U+FF5E sorts before U+1F600; by UTF-16 code unit, as JavaScript sorts,
        // U+1F600's leading surrogate (0xD83D) sorts first.
        let event =
            request(json!({"action": "a.b", "fields": {"\u{1F600}": "1", "\u{FF5E}": "2"}}));
        let expected = "evt:a.b:::::0:0:\u{1F600}=1;\u{FF5E}=2;";
        assert_eq!(
            retraced_event_hash(&event, "evt"),
            logbook_core::export_verification::hex(&Sha256::digest(expected))
        );
    }

    #[test]
    fn retraceds_own_rules_refuse_what_retraced_refuses() {
        let cases = [
            (
                json!({"crud": "c", "actor": {"id": "a"}, "description": "d"}),
                "/action",
            ),
            (
                json!({"action": "a.b", "actor": {"id": "a"}, "description": "d"}),
                "/crud",
            ),
            (
                json!({"action": "a.b", "crud": "x", "actor": {"id": "a"}, "description": "d"}),
                "/crud",
            ),
            (
                json!({"action": "a.b", "crud": "c", "description": "d"}),
                "/actor",
            ),
            (
                json!({"action": "a.b", "crud": "c", "actor": {"name": "A"}, "description": "d"}),
                "/actor/id",
            ),
            (
                json!({"action": "a.b", "crud": "c", "actor": {"id": "a"}, "group": {"name": "G"}, "description": "d"}),
                "/group/id",
            ),
            (
                json!({"action": "a.b", "crud": "c", "actor": {"id": "a"}, "target": {"type": "t"}, "description": "d"}),
                "/target/id",
            ),
            (
                json!({"action": "a.b", "crud": "c", "actor": {"id": "a"}}),
                "/description",
            ),
            (
                json!({"action": "a.b", "crud": "c", "actor": {"id": "a"}, "description": "d", "fields": {"retraced": "x"}}),
                "/fields/retraced",
            ),
        ];
        for (event, field) in cases {
            let error = check_retraced_rules(&request(event.clone())).unwrap_err();
            assert_eq!(error.field, field, "{event}");
        }
        let anonymous =
            json!({"action": "a.b", "crud": "c", "is_anonymous": true, "description": "d"});
        assert!(check_retraced_rules(&request(anonymous)).is_ok());
    }

    #[test]
    fn every_retraced_field_has_a_place_in_the_logbook_event() {
        let event = request(json!({
            "action": "doc.update", "crud": "u",
            "group": {"id": "acme", "name": "Acme"},
            "created": "2024-06-01T09:12:00.000Z",
            "actor": {"id": "alice", "name": "Alice", "href": "https://a", "fields": {"role": "admin"}},
            "target": {"id": "doc-1", "name": "Plan", "href": "https://t", "type": "document", "fields": {"size": "3"}},
            "source_ip": "203.0.113.9", "description": "Alice updated Plan",
            "is_anonymous": false, "is_failure": false,
            "fields": {"reason": "typo"}, "component": "api", "version": "abc123",
            "external_id": "ext-1", "metadata": {"m": "1"},
        }));
        assert_eq!(
            translate(&event, "proj-1"),
            json!({
                "account": "acme", "action": "doc.update", "message": "Alice updated Plan",
                "created_at": "2024-06-01T09:12:00.000Z",
                "actor": {"id": "alice", "name": "Alice"},
                "ip": "203.0.113.9", "outcome": "success",
                "targets": [{"type": "document", "id": "doc-1", "name": "Plan"}],
                "metadata": {"reason": "typo", "retraced": {
                    "project_id": "proj-1", "crud": "u", "component": "api", "version": "abc123",
                    "group_name": "Acme", "actor_href": "https://a", "actor_fields": {"role": "admin"},
                    "target_href": "https://t", "target_fields": {"size": "3"}, "metadata": {"m": "1"},
                }},
                "key": "ext-1",
            })
        );
    }
}
