//! `/api/v1/accounts`: create (idempotent by name), list in pages with event counts and the time
//! of the last event, get, and change the display name and the ingest switch.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use logbook_core::account::{AccountSettings, validate_display_name};
use logbook_core::{AccountId, StoreError};
use serde::{Deserialize, Serialize};

use super::{
    AccountPath, AdminKey, Change, json_body, key_label, page_limit, record_change, rfc3339, target,
};
use crate::error::ApiError;
use crate::state::AppState;

pub const ACCOUNT_CREATE: &str = "logbook.account.create";
pub const ACCOUNT_RENAME: &str = "logbook.account.display_name_change";
pub const ACCOUNT_INGEST_DISABLE: &str = "logbook.account.ingest_disable";
pub const ACCOUNT_INGEST_ENABLE: &str = "logbook.account.ingest_enable";

/// `POST /api/v1/accounts`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// `[a-z0-9][a-z0-9._-]{0,62}`: the account's name in every event and URL; never changes.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,62}$", example = "acme")]
    pub name: String,
    /// A name for people; 1 to 200 characters.
    #[serde(default)]
    #[schema(
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$",
        example = "Acme Corp"
    )]
    pub display_name: Option<String>,
}

/// `PATCH /api/v1/accounts/{account}`: the fields given change, the others stay.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    /// A new display name, or `null` to clear it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 200, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub display_name: Option<Option<String>>,
    /// Turns ingest on or off (a platform admin key only).
    #[serde(default)]
    pub ingest_enabled: Option<bool>,
}

/// Tells a field given as `null` (`Some(None)`) from a field left out (`None`).
fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// One account as the management API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountAnswer {
    pub account: String,
    pub display_name: Option<String>,
    pub ingest_enabled: bool,
    pub created_at: String,
    /// Events ever appended (the next `seq`).
    pub event_count: u64,
    /// When the newest event was received; `null` without events.
    pub last_event_at: Option<String>,
}

/// A page of accounts by name; `next_cursor` fetches the next page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountPage {
    pub accounts: Vec<AccountAnswer>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParameters {
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The last account name of the previous page.
    #[param(pattern = "^([a-z0-9][a-z0-9._-]{0,62})?$")]
    pub cursor: Option<String>,
}

/// The account's settings with its event count and the receive time of its newest event.
pub(crate) async fn account_answer(
    state: &AppState,
    settings: AccountSettings,
) -> Result<AccountAnswer, ApiError> {
    let store = state.store();
    let event_count = store.next_seq(&settings.account).await?;
    let last_event_at = match event_count.checked_sub(1) {
        Some(last_seq) => store
            .events_since(&settings.account, last_seq, 1)
            .await?
            .first()
            .and_then(|row| {
                #[derive(Deserialize)]
                struct ReceivedAt {
                    received_at: String,
                }
                serde_json::from_str::<ReceivedAt>(&row.body_without_seq)
                    .ok()
                    .map(|event| event.received_at)
            }),
        None => None,
    };
    Ok(AccountAnswer {
        account: settings.account.to_string(),
        display_name: settings.display_name,
        ingest_enabled: settings.ingest_enabled,
        created_at: rfc3339(settings.created_at),
        event_count,
        last_event_at,
    })
}

/// `POST /api/v1/accounts` (platform admin key): 201 with the new account; 200 with the existing
/// one when an account of that name exists with the same display name (or none was asked for),
/// so a retried create is harmless; 409 `account_exists` when it exists with another display
/// name, which is how the loser of two different creates of one name learns of the winner.
#[utoipa::path(
    post,
    path = "/api/v1/accounts",
    operation_id = "create_account",
    tag = "management",
    request_body = CreateAccount,
    security(("admin_key" = [])),
    responses(
        (status = 201, description = "Created", body = AccountAnswer),
        (status = 200, description = "It existed already with this display name", body = AccountAnswer),
        (status = 400, description = "Bad input; field is the JSON pointer of the offending member; nothing changed", body = crate::api::v1::openapi::ErrorDocument),
        (status = 413, description = "Body larger than 64 KiB", body = crate::api::v1::openapi::ErrorDocument),
        (status = 415, description = "Content-Type is not application/json", body = crate::api::v1::openapi::ErrorDocument),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 409, description = "It exists with another display name; nothing changed", body = crate::api::v1::openapi::ErrorDocument),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn create(
    State(state): State<AppState>,
    admin: AdminKey,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    admin.require_platform("create accounts")?;
    let request: CreateAccount = json_body(&state, &headers, body).await?;
    let account = AccountId::parse(&request.name).map_err(|error| {
        ApiError::bad_request("invalid_account", error.to_string(), Some("/name"))
    })?;
    let display_name = request
        .display_name
        .as_deref()
        .map(validate_display_name)
        .transpose()
        .map_err(|error| {
            ApiError::bad_request(
                "invalid_display_name",
                error.to_string(),
                Some("/display_name"),
            )
        })?;
    let created = state
        .store()
        .accounts()
        .create_account_with_display_name(&account, display_name.as_deref(), state.clock().now())
        .await;
    match created {
        Ok(settings) => {
            record_change(
                &state,
                &admin,
                Change {
                    account: &account,
                    action: ACCOUNT_CREATE,
                    message: format!("{} created account {account}", key_label(&admin)),
                    targets: vec![target("account", account.as_str(), display_name.as_deref())],
                    metadata: None,
                },
            )
            .await?;
            let answer = account_answer(&state, settings).await?;
            Ok((StatusCode::CREATED, Json(answer)).into_response())
        }
        Err(StoreError::AccountAlreadyExists(_)) => {
            let existing = state
                .store()
                .accounts()
                .account_settings(&account)
                .await?
                .ok_or(ApiError::NotFound)?;
            if display_name.is_some() && existing.display_name != display_name {
                return Err(ApiError::Conflict {
                    code: "account_exists",
                    message: format!(
                        "account {account} already exists with another display name; nothing was changed"
                    ),
                    field: Some("/name".to_owned()),
                });
            }
            let answer = account_answer(&state, existing).await?;
            Ok((StatusCode::OK, Json(answer)).into_response())
        }
        Err(error) => Err(error.into()),
    }
}

/// `GET /api/v1/accounts`: a platform admin key pages through every account by name; an
/// account admin key sees its own account only.
#[utoipa::path(
    get,
    path = "/api/v1/accounts",
    operation_id = "list_accounts",
    tag = "management",
    params(ListParameters),
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "A page of accounts by name", body = AccountPage),
        (status = 400, description = "Bad limit or cursor", body = crate::api::v1::openapi::ErrorDocument),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn list(
    State(state): State<AppState>,
    admin: AdminKey,
    parameters: Result<Query<ListParameters>, QueryRejection>,
) -> Result<Json<AccountPage>, ApiError> {
    let Query(parameters) = parameters?;
    let limit = page_limit(parameters.limit)?;
    let after = match parameters.cursor.as_deref() {
        None | Some("") => None,
        Some(cursor) => Some(AccountId::parse(cursor).map_err(|_| {
            ApiError::bad_request(
                "invalid_cursor",
                "cursor must be the next_cursor of a previous page",
                Some("cursor"),
            )
        })?),
    };
    let settings = match &admin.key.owner {
        logbook_core::api_key::KeyOwner::Platform => {
            state
                .store()
                .accounts()
                .account_settings_page(after.as_ref(), limit)
                .await?
        }
        logbook_core::api_key::KeyOwner::Account(own) => {
            if after.is_some() {
                Vec::new()
            } else {
                state
                    .store()
                    .accounts()
                    .account_settings(own)
                    .await?
                    .into_iter()
                    .collect()
            }
        }
    };
    let next_cursor = (admin.is_platform() && settings.len() == limit as usize)
        .then(|| settings.last().map(|last| last.account.to_string()))
        .flatten();
    let mut accounts = Vec::with_capacity(settings.len());
    for account in settings {
        accounts.push(account_answer(&state, account).await?);
    }
    Ok(Json(AccountPage {
        accounts,
        next_cursor,
    }))
}

/// `GET /api/v1/accounts/{account}`.
#[utoipa::path(
    get,
    path = "/api/v1/accounts/{account}",
    operation_id = "get_account",
    tag = "management",
    params(("account" = String, Path, description = "The account name", example = "acme")),
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The account", body = AccountAnswer),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 404, description = "No such account, or one this key may not manage (never told apart)", body = crate::api::v1::openapi::ErrorDocument),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn get(
    State(state): State<AppState>,
    admin: AdminKey,
    AccountPath(name): AccountPath,
) -> Result<Json<AccountAnswer>, ApiError> {
    let settings = admin.managed_account(&state, &name).await?;
    Ok(Json(account_answer(&state, settings).await?))
}

/// `PATCH /api/v1/accounts/{account}`: the display name (any admin key of the account) and the
/// ingest switch (a platform admin key only). Each field that changes is one event.
#[utoipa::path(
    patch,
    path = "/api/v1/accounts/{account}",
    operation_id = "update_account",
    tag = "management",
    params(("account" = String, Path, description = "The account name", example = "acme")),
    request_body = UpdateAccount,
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The account as changed", body = AccountAnswer),
        (status = 400, description = "Bad input; field is the JSON pointer of the offending member; nothing changed", body = crate::api::v1::openapi::ErrorDocument),
        (status = 413, description = "Body larger than 64 KiB", body = crate::api::v1::openapi::ErrorDocument),
        (status = 415, description = "Content-Type is not application/json", body = crate::api::v1::openapi::ErrorDocument),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 404, description = "No such account, or one this key may not manage (never told apart)", body = crate::api::v1::openapi::ErrorDocument),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn update(
    State(state): State<AppState>,
    admin: AdminKey,
    AccountPath(name): AccountPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<AccountAnswer>, ApiError> {
    let mut settings = admin.managed_account(&state, &name).await?;
    let request: UpdateAccount = json_body(&state, &headers, body).await?;
    if request.ingest_enabled.is_some() {
        admin.require_platform("turn an account's ingest on or off")?;
    }
    let display_name = match &request.display_name {
        Some(Some(text)) => Some(Some(validate_display_name(text).map_err(|error| {
            ApiError::bad_request(
                "invalid_display_name",
                error.to_string(),
                Some("/display_name"),
            )
        })?)),
        Some(None) => Some(None),
        None => None,
    };
    let account = settings.account.clone();
    if let Some(display_name) = display_name
        && display_name != settings.display_name
    {
        settings = state
            .store()
            .accounts()
            .set_display_name(&account, display_name.as_deref())
            .await
            .map_err(not_found_if_gone)?;
        record_change(
            &state,
            &admin,
            Change {
                account: &account,
                action: ACCOUNT_RENAME,
                message: match &display_name {
                    Some(name) => format!(
                        "{} set the display name of {account} to {name:?}",
                        key_label(&admin)
                    ),
                    None => format!(
                        "{} cleared the display name of {account}",
                        key_label(&admin)
                    ),
                },
                targets: vec![target("account", account.as_str(), display_name.as_deref())],
                metadata: None,
            },
        )
        .await?;
    }
    if let Some(enabled) = request.ingest_enabled
        && enabled != settings.ingest_enabled
    {
        settings = state
            .store()
            .accounts()
            .set_ingest_enabled(&account, enabled)
            .await
            .map_err(not_found_if_gone)?;
        state.limiter().note_ingest_enabled(&account, enabled);
        record_change(
            &state,
            &admin,
            Change {
                account: &account,
                action: if enabled {
                    ACCOUNT_INGEST_ENABLE
                } else {
                    ACCOUNT_INGEST_DISABLE
                },
                message: format!(
                    "{} turned ingest {} for {account}",
                    key_label(&admin),
                    if enabled { "on" } else { "off" }
                ),
                targets: vec![target("account", account.as_str(), None)],
                metadata: None,
            },
        )
        .await?;
    }
    Ok(Json(account_answer(&state, settings).await?))
}

fn not_found_if_gone(error: StoreError) -> ApiError {
    match error {
        StoreError::AccountNotFound(_) => ApiError::NotFound,
        other => other.into(),
    }
}
