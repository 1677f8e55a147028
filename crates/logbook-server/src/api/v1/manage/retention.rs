//! `/api/v1/accounts/{account}/retention`, `.../legal-hold` and `.../erasures`: what
//! `logbook retention show|set|clear|personal|personal-fields|hold|release|erase` do, over HTTP
//! (README, "Retention and legal hold" and "Personal data"). Any admin key of the account may use
//! them: how long a customer keeps its own log and its people's data is the customer's decision,
//! and a legal hold stops every removal whoever asks. Each change is an event in the account's
//! log with the key as its actor and, for holds and erasures, the reason.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use logbook_core::AccountId;
use logbook_core::event::{Actor, ActorType};
use logbook_core::retention::{
    ChangedBy, ErasureOutcome, change_personal_data_policy, change_retention_period,
    declare_personal_metadata_fields, erase_person, hold_reason, place_legal_hold,
    release_legal_hold, retention_days, trim_spaces_as_the_schema_does,
};
use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;

use super::{AccountPath, AdminKey, json_body};
use crate::error::ApiError;
use crate::state::AppState;

/// An account's retention, legal hold and personal-data settings, and how far each went.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RetentionAnswer {
    pub account: String,
    /// The account's own period in days (`null`: the instance default applies).
    pub retention_days: Option<u32>,
    pub instance_default_retention_days: Option<u32>,
    pub legal_hold: Option<LegalHoldAnswer>,
    /// Every event below this seq was removed by retention (0: none).
    pub pruned_below_seq: u64,
    /// Days events keep their personal fields (`null`: the instance default applies).
    pub personal_data_days: Option<u32>,
    pub instance_default_personal_data_days: Option<u32>,
    /// Whether aging keeps the /24 or /48 of a removed address (the account's or the default).
    pub keep_network: bool,
    /// Metadata members the account declares personal.
    pub personal_metadata_fields: Vec<String>,
    /// Every event below this seq had its personal fields removed by age (0: none).
    pub personal_aged_below_seq: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LegalHoldAnswer {
    /// RFC 3339.
    pub since: String,
    pub set_by: String,
    pub reason: String,
}

async fn answer(state: &AppState, account: &AccountId) -> Result<Json<RetentionAnswer>, ApiError> {
    let settings = state.store().retention().account_retention(account).await?;
    let instance = &state.settings().retention;
    Ok(Json(RetentionAnswer {
        account: account.to_string(),
        retention_days: settings.retention_days,
        instance_default_retention_days: instance.default_retention_days,
        legal_hold: settings.legal_hold.map(|hold| LegalHoldAnswer {
            since: hold.since.format(&Rfc3339).unwrap_or_default(),
            set_by: hold.set_by,
            reason: hold.reason,
        }),
        pruned_below_seq: settings.pruned_below_seq,
        personal_data_days: settings.personal_data_days,
        instance_default_personal_data_days: instance.default_personal_data_days,
        keep_network: settings
            .keep_network
            .unwrap_or(instance.default_keep_network),
        personal_metadata_fields: settings.personal_metadata_fields,
        personal_aged_below_seq: settings.personal_aged_below_seq,
    }))
}

/// The key as the actor of the events these changes write.
fn changed_by(admin: &AdminKey) -> ChangedBy {
    ChangedBy {
        actor: Actor {
            id: admin.key.key_id.as_str().to_owned(),
            name: admin.key.description.clone(),
            actor_type: Some(ActorType::ApiKey),
        },
        ip: Some(admin.ip),
        user_agent: admin.user_agent.clone(),
    }
}

fn new_event_id() -> logbook_core::ids::EventId {
    uuid::Uuid::now_v7().to_string().into()
}

fn input_error(error: logbook_core::retention::RetentionInputError) -> ApiError {
    ApiError::bad_request("invalid_field", error.message, Some(error.field))
}

/// A change whose event the account's own stored-volume quota refused still stands (the
/// management API's rule: a quota never locks its operator out); the server's log has it.
fn settled(
    result: Result<(), logbook_core::StoreError>,
    admin: &AdminKey,
    what: &str,
) -> Result<(), ApiError> {
    match result {
        Err(logbook_core::StoreError::VolumeQuotaExceeded { account, .. }) => {
            tracing::warn!(%account, key_id = %admin.key.key_id, what, "the account's volume quota refused the event of a retention change; the change stands");
            Ok(())
        }
        other => other.map_err(ApiError::from),
    }
}

/// A removal refused because the account is under legal hold: 409, since only clearing the hold
/// (not retrying) lets it through.
fn under_hold(error: logbook_core::StoreError) -> ApiError {
    match error {
        logbook_core::StoreError::LegalHold(account) => ApiError::Conflict {
            code: "legal_hold",
            message: format!(
                "account {account} is under legal hold: nothing of it is pruned or erased until the hold is cleared"
            ),
            field: None,
        },
        other => other.into(),
    }
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{account}/retention",
    operation_id = "show_retention",
    tag = "management",
    params(("account" = String, Path, description = "The account name", example = "acme")),
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The account's retention, legal hold and personal-data settings", body = RetentionAnswer),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 404, description = "No such account, or one this key may not manage (never told apart)", body = crate::api::v1::openapi::ErrorDocument),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn show(
    State(state): State<AppState>,
    admin: AdminKey,
    AccountPath(name): AccountPath,
) -> Result<Json<RetentionAnswer>, ApiError> {
    let account = admin.managed_account(&state, &name).await?.account;
    answer(&state, &account).await
}

/// `PUT /api/v1/accounts/{account}/retention`: a field given sets it, `null` clears it (the
/// instance default applies), a field left out keeps its value.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRetention {
    /// Days an event is kept after it was received, 1 to 36500.
    #[serde(default, deserialize_with = "present_whole_number")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 36500)]
    pub retention_days: Option<Option<i64>>,
    /// Days an event keeps its personal fields, 1 to 36500.
    #[serde(default, deserialize_with = "present_whole_number")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 36500)]
    pub personal_data_days: Option<Option<i64>>,
    /// Keep the /24 or /48 of an address aging removes.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<bool>)]
    pub keep_network: Option<Option<bool>>,
    /// The metadata members the account declares personal (replaces the list; `[]` clears it),
    /// each 1 to 128 characters on one line.
    #[schema(max_items = 64, value_type = Option<Vec<PersonalFieldName>>)]
    pub personal_metadata_fields: Option<Vec<String>>,
}

/// A metadata member name, as the document describes it.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, pattern = "^\\s*[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]{0,126}[^\\s\\x00-\\x1f\\x7f-\\x9f])?\\s*$")]
#[allow(dead_code)]
pub struct PersonalFieldName(String);

/// `present` for a whole number, which may be written with a zero fraction (`30.0`: JSON Schema
/// counts it as an integer); anything else that is not a whole number is refused.
fn present_whole_number<'de, D>(deserializer: D) -> Result<Option<Option<i64>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(Some(None));
    };
    number
        .as_i64()
        .or_else(|| {
            number
                .as_f64()
                .filter(|value| value.fract() == 0.0 && value.abs() < 9.0e15)
                .map(|value| value as i64)
        })
        .map(|whole| Some(Some(whole)))
        .ok_or_else(|| D::Error::custom(format!("{number} is not a whole number of days")))
}

/// Tells a field given as `null` (`Some(None)`) from a field left out (`None`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[utoipa::path(
    put,
    path = "/api/v1/accounts/{account}/retention",
    operation_id = "set_retention",
    tag = "management",
    params(("account" = String, Path, description = "The account name", example = "acme")),
    request_body = SetRetention,
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The settings as stored", body = RetentionAnswer),
        (status = 400, description = "Bad input; field names the offending member; nothing changed", body = crate::api::v1::openapi::ErrorDocument),
        (status = 413, description = "Body larger than 64 KiB", body = crate::api::v1::openapi::ErrorDocument),
        (status = 415, description = "Content-Type is not application/json", body = crate::api::v1::openapi::ErrorDocument),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 404, description = "No such account, or one this key may not manage (never told apart)", body = crate::api::v1::openapi::ErrorDocument),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn set(
    State(state): State<AppState>,
    admin: AdminKey,
    AccountPath(name): AccountPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<RetentionAnswer>, ApiError> {
    let account = admin.managed_account(&state, &name).await?.account;
    let change: SetRetention = json_body(&state, &headers, body).await?;
    // Everything is checked before anything is stored, so bad input changes nothing.
    let days = |value: Option<Option<i64>>| -> Result<Option<Option<u32>>, ApiError> {
        value
            .map(|days| days.map(retention_days).transpose())
            .transpose()
            .map_err(input_error)
    };
    let new_retention_days = days(change.retention_days)?;
    let new_personal_days = days(change.personal_data_days).map_err(|error| match error {
        ApiError::BadRequest { code, message, .. } => ApiError::BadRequest {
            code,
            message,
            field: Some("personal_data_days".into()),
        },
        other => other,
    })?;
    let fields = change
        .personal_metadata_fields
        .as_deref()
        .map(logbook_core::personal_data::declared_personal_fields)
        .transpose()
        .map_err(input_error)?;
    let now = state.clock().now();
    let by = changed_by(&admin);
    let store = state.store().as_ref();
    if let Some(days) = new_retention_days {
        settled(
            change_retention_period(store, &account, days, &by, now, new_event_id()).await,
            &admin,
            "retention period",
        )?;
    }
    if new_personal_days.is_some() || change.keep_network.is_some() {
        let current = store.retention().account_retention(&account).await?;
        let personal_days = new_personal_days.unwrap_or(current.personal_data_days);
        let keep_network = change.keep_network.unwrap_or(current.keep_network);
        settled(
            change_personal_data_policy(
                store,
                &account,
                personal_days,
                keep_network,
                &by,
                now,
                new_event_id(),
            )
            .await,
            &admin,
            "personal-data period",
        )?;
    }
    if let Some(fields) = fields {
        match declare_personal_metadata_fields(store, &account, &fields, &by, now, new_event_id())
            .await
        {
            Ok(_) => {}
            Err(logbook_core::retention::DeclareFieldsError::Input(error)) => {
                return Err(input_error(error));
            }
            Err(logbook_core::retention::DeclareFieldsError::Store(error)) => {
                settled(Err(error), &admin, "personal metadata fields")?;
            }
        }
    }
    answer(&state, &account).await
}

/// A reason, kept in the account's log.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// 1 to 500 characters on one line.
    // The pattern states the limit on the trimmed text, as the server counts it (a `maxLength` would
    // count the spaces around it too).
    #[schema(
        pattern = "^\\s*[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]{0,498}[^\\s\\x00-\\x1f\\x7f-\\x9f])?\\s*$"
    )]
    pub reason: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{account}/legal-hold",
    operation_id = "place_legal_hold",
    tag = "management",
    params(("account" = String, Path, description = "The account name", example = "acme")),
    request_body = Reason,
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The account is held (a second hold keeps the first)", body = RetentionAnswer),
        (status = 400, description = "Bad input; field names the offending member; nothing changed", body = crate::api::v1::openapi::ErrorDocument),
        (status = 413, description = "Body larger than 64 KiB", body = crate::api::v1::openapi::ErrorDocument),
        (status = 415, description = "Content-Type is not application/json", body = crate::api::v1::openapi::ErrorDocument),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 404, description = "No such account, or one this key may not manage (never told apart)", body = crate::api::v1::openapi::ErrorDocument),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn hold(
    State(state): State<AppState>,
    admin: AdminKey,
    AccountPath(name): AccountPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<RetentionAnswer>, ApiError> {
    let account = admin.managed_account(&state, &name).await?.account;
    let Reason { reason } = json_body(&state, &headers, body).await?;
    let reason = hold_reason(&reason).map_err(input_error)?;
    let now = state.clock().now();
    settled(
        place_legal_hold(
            state.store().as_ref(),
            &account,
            &reason,
            &changed_by(&admin),
            now,
            new_event_id(),
        )
        .await
        .map(|_| ()),
        &admin,
        "legal hold",
    )?;
    answer(&state, &account).await
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{account}/legal-hold/release",
    operation_id = "release_legal_hold",
    tag = "management",
    params(("account" = String, Path, description = "The account name", example = "acme")),
    request_body = Reason,
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The account is not held", body = RetentionAnswer),
        (status = 400, description = "Bad input; field names the offending member; nothing changed", body = crate::api::v1::openapi::ErrorDocument),
        (status = 413, description = "Body larger than 64 KiB", body = crate::api::v1::openapi::ErrorDocument),
        (status = 415, description = "Content-Type is not application/json", body = crate::api::v1::openapi::ErrorDocument),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 404, description = "No such account, or one this key may not manage (never told apart)", body = crate::api::v1::openapi::ErrorDocument),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn release(
    State(state): State<AppState>,
    admin: AdminKey,
    AccountPath(name): AccountPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<RetentionAnswer>, ApiError> {
    let account = admin.managed_account(&state, &name).await?.account;
    let Reason { reason } = json_body(&state, &headers, body).await?;
    let reason = hold_reason(&reason).map_err(input_error)?;
    settled(
        release_legal_hold(
            state.store().as_ref(),
            &account,
            &reason,
            &changed_by(&admin),
            state.clock().now(),
            new_event_id(),
        )
        .await
        .map(|_| ()),
        &admin,
        "legal hold release",
    )?;
    answer(&state, &account).await
}

/// Erase one person's personal data.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewErasure {
    /// The person's `actor.id`, as their events carry it.
    #[schema(
        pattern = "^\\s*[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]{0,510}[^\\s\\x00-\\x1f\\x7f-\\x9f])?\\s*$"
    )]
    pub actor_id: String,
    /// Why (the request's reference), kept in the account's log; 1 to 500 characters on one line.
    // The pattern states the limit on the trimmed text, as the server counts it (a `maxLength` would
    // count the spaces around it too).
    #[schema(
        pattern = "^\\s*[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]{0,498}[^\\s\\x00-\\x1f\\x7f-\\x9f])?\\s*$"
    )]
    pub reason: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErasureAnswer {
    pub actor_id: String,
    /// Events whose personal fields this erasure removed (0: nothing personal was left).
    pub events_changed: u64,
}

#[utoipa::path(
    post,
    path = "/api/v1/accounts/{account}/erasures",
    operation_id = "erase_personal_data",
    tag = "management",
    params(("account" = String, Path, description = "The account name", example = "acme")),
    request_body = NewErasure,
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The person's personal data is gone from every event with their actor id; the erasure is in the log", body = ErasureAnswer),
        (status = 400, description = "Bad input; field names the offending member; nothing changed", body = crate::api::v1::openapi::ErrorDocument),
        (status = 409, description = "No event has this actor id (code unknown_actor), or the account is under legal hold (code legal_hold); nothing changed", body = crate::api::v1::openapi::ErrorDocument),
        (status = 413, description = "Body larger than 64 KiB", body = crate::api::v1::openapi::ErrorDocument),
        (status = 415, description = "Content-Type is not application/json", body = crate::api::v1::openapi::ErrorDocument),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 404, description = "No such account, or one this key may not manage (never told apart)", body = crate::api::v1::openapi::ErrorDocument),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn erase(
    State(state): State<AppState>,
    admin: AdminKey,
    AccountPath(name): AccountPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<ErasureAnswer>, ApiError> {
    let account = admin.managed_account(&state, &name).await?.account;
    let NewErasure { actor_id, reason } = json_body(&state, &headers, body).await?;
    let actor_id = trim_spaces_as_the_schema_does(&actor_id).to_owned();
    if actor_id.is_empty()
        || actor_id.chars().count() > 512
        || actor_id.chars().any(char::is_control)
    {
        return Err(ApiError::bad_request(
            "invalid_field",
            "actor_id is the person's actor id, 1 to 512 characters on one line",
            Some("actor_id"),
        ));
    }
    let reason = hold_reason(&reason)
        .map_err(|error| ApiError::bad_request("invalid_field", error.message, Some("reason")))?;
    let outcome = erase_person(
        state.store().as_ref(),
        &account,
        &actor_id,
        &reason,
        &changed_by(&admin),
        state.clock().now(),
        new_event_id(),
        state.settings().retention.batch_size,
    )
    .await
    .map_err(under_hold)?;
    let events_changed = match outcome {
        ErasureOutcome::Erased {
            events_changed,
            recorded,
        } => {
            if !recorded {
                tracing::warn!(%account, key_id = %admin.key.key_id, events_changed, "the account's volume quota refused the event of an erasure; the erasure stands");
            }
            events_changed
        }
        ErasureOutcome::NothingLeft => 0,
        // 409: the request is well formed, but the log holds nobody by that id.
        ErasureOutcome::UnknownActor => {
            return Err(ApiError::Conflict {
                code: "unknown_actor",
                message: format!("no event of {account} has this actor id: nothing was erased"),
                field: Some("actor_id".into()),
            });
        }
    };
    Ok(Json(ErasureAnswer {
        actor_id,
        events_changed,
    }))
}
