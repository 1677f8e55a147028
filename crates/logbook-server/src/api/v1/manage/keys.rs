//! `/api/v1/accounts/{account}/keys`: create an account's API key (its secret in the answer, once,
//! and never again), list them without secrets, revoke one.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use logbook_core::api_key::{ApiKeyRecord, KeyOwner, PlaintextApiKey, Scopes};
use logbook_core::ids::ApiKeyId;
use logbook_core::store::NewApiKey;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{
    AccountItemPath, AccountPath, AdminKey, Change, json_body, key_label, record_change, rfc3339,
    target,
};
use crate::error::ApiError;
use crate::state::AppState;

pub const API_KEY_CREATE: &str = "logbook.api_key.create";
pub const API_KEY_REVOKE: &str = "logbook.api_key.revoke";

/// The longest description of a key, in characters.
const MAX_DESCRIPTION_CHARS: usize = 200;

/// `POST /api/v1/accounts/{account}/keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// At least one of `ingest`, `read`, `admin`.
    #[schema(value_type = Vec<super::ScopeName>, min_items = 1)]
    pub scopes: Vec<String>,
    /// A note shown in lists ("deploy bot").
    #[serde(default)]
    #[schema(max_length = 200, pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*$")]
    pub description: Option<String>,
}

/// A key as lists show it: never its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyAnswer {
    pub key_id: String,
    pub account: Option<String>,
    #[schema(value_type = Vec<String>)]
    pub scopes: Vec<&'static str>,
    /// The first characters of the key, to tell keys apart.
    pub prefix: String,
    pub description: Option<String>,
    pub created_at: String,
    /// As the servers last wrote it, up to a minute behind.
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
    pub active: bool,
}

/// A new key: the one answer that holds its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    /// The key itself (`lbk_...`): shown only here; only its hash is kept.
    pub key: String,
    #[serde(flatten)]
    pub details: KeyAnswer,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyAnswer>,
}

pub(crate) fn key_answer(key: &ApiKeyRecord) -> KeyAnswer {
    KeyAnswer {
        key_id: key.key_id.to_string(),
        account: match &key.owner {
            KeyOwner::Account(account) => Some(account.to_string()),
            KeyOwner::Platform => None,
        },
        scopes: key.scopes.names(),
        prefix: key.display_prefix.clone(),
        description: key.description.clone(),
        created_at: rfc3339(key.created_at),
        last_used_at: key.last_used_at.map(rfc3339),
        revoked_at: key.revoked_at.map(rfc3339),
        active: key.is_active(),
    }
}

fn new_key_id() -> ApiKeyId {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut random = rand::rng();
    let mut key_id = String::from("key_");
    key_id.extend((0..16).map(|_| ALPHABET[random.random_range(0..ALPHABET.len())] as char));
    key_id.into()
}

/// `POST /api/v1/accounts/{account}/keys`: 201 with the key's secret, shown this once.
#[utoipa::path(
    post,
    path = "/api/v1/accounts/{account}/keys",
    operation_id = "create_api_key",
    tag = "management",
    params(("account" = String, Path, description = "The account name", example = "acme")),
    request_body = CreateKey,
    security(("admin_key" = [])),
    responses(
        (status = 201, description = "The new key, with its secret shown this once", body = CreatedKey),
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
pub async fn create(
    State(state): State<AppState>,
    admin: AdminKey,
    AccountPath(name): AccountPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let account = admin.managed_account(&state, &name).await?.account;
    let request: CreateKey = json_body(&state, &headers, body).await?;
    let scopes = Scopes::parse(&request.scopes.join(",")).map_err(|error| {
        ApiError::bad_request("invalid_scope", error.to_string(), Some("/scopes"))
    })?;
    if scopes.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_scope",
            "scopes must name at least one of ingest, read and admin",
            Some("/scopes"),
        ));
    }
    // Checked as sent (what the document's pattern and length state), then trimmed: a blank
    // description is none.
    if let Some(text) = &request.description
        && (text.chars().count() > MAX_DESCRIPTION_CHARS || text.chars().any(char::is_control))
    {
        return Err(ApiError::bad_request(
            "invalid_description",
            "description must be at most 200 characters, without control characters",
            Some("/description"),
        ));
    }
    let description = request
        .description
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty());
    let plaintext = PlaintextApiKey::from_random_bytes(rand::rng().random());
    let record = state
        .store()
        .create_api_key(NewApiKey {
            key_id: new_key_id(),
            key_hash: plaintext.hash(),
            owner: KeyOwner::Account(account.clone()),
            scopes,
            display_prefix: plaintext.display_prefix(),
            description,
            created_at: state.clock().now(),
        })
        .await?;
    record_change(
        &state,
        &admin,
        Change {
            account: &account,
            action: API_KEY_CREATE,
            message: format!(
                "{} created API key {} ({scopes}) for {account}",
                key_label(&admin),
                record.key_id
            ),
            targets: vec![target(
                "api_key",
                record.key_id.as_str(),
                record.description.as_deref(),
            )],
            metadata: None,
        },
    )
    .await?;
    let answer = CreatedKey {
        key: plaintext.expose().to_owned(),
        details: key_answer(&record),
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// `GET /api/v1/accounts/{account}/keys`: the account's keys, revoked ones included, oldest
/// first, never their secrets.
#[utoipa::path(
    get,
    path = "/api/v1/accounts/{account}/keys",
    operation_id = "list_api_keys",
    tag = "management",
    params(("account" = String, Path, description = "The account name", example = "acme")),
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The account's keys, never their secrets", body = KeyList),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 404, description = "No such account, or one this key may not manage (never told apart)", body = crate::api::v1::openapi::ErrorDocument),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn list(
    State(state): State<AppState>,
    admin: AdminKey,
    AccountPath(name): AccountPath,
) -> Result<Json<KeyList>, ApiError> {
    let account = admin.managed_account(&state, &name).await?.account;
    let keys = state.store().list_api_keys(Some(&account)).await?;
    Ok(Json(KeyList {
        keys: keys.iter().map(key_answer).collect(),
    }))
}

/// `POST /api/v1/accounts/{account}/keys/{key_id}/revoke`: the key stops working on every node
/// within the key cache's lifetime (a second). Revoking a revoked key answers it as it is and
/// records nothing new. A key of another account is 404.
#[utoipa::path(
    post,
    path = "/api/v1/accounts/{account}/keys/{key_id}/revoke",
    operation_id = "revoke_api_key",
    tag = "management",
    params(("account" = String, Path, description = "The account name", example = "acme"), ("key_id" = String, Path, description = "The key id (key_...)")),
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The key, revoked", body = KeyAnswer),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 404, description = "No such account, or one this key may not manage (never told apart)", body = crate::api::v1::openapi::ErrorDocument),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    admin: AdminKey,
    AccountItemPath(name, key_id): AccountItemPath,
) -> Result<Json<KeyAnswer>, ApiError> {
    let account = admin.managed_account(&state, &name).await?.account;
    let key_id = ApiKeyId::from(key_id.as_str());
    let existing = state
        .store()
        .list_api_keys(Some(&account))
        .await?
        .into_iter()
        .find(|key| key.key_id == key_id)
        .ok_or(ApiError::NotFound)?;
    if !existing.is_active() {
        return Ok(Json(key_answer(&existing)));
    }
    let revoked = state
        .store()
        .revoke_api_key(&key_id, state.clock().now())
        .await?;
    record_change(
        &state,
        &admin,
        Change {
            account: &account,
            action: API_KEY_REVOKE,
            message: format!(
                "{} revoked API key {} of {account}",
                key_label(&admin),
                revoked.key_id
            ),
            targets: vec![target(
                "api_key",
                revoked.key_id.as_str(),
                revoked.description.as_deref(),
            )],
            metadata: None,
        },
    )
    .await?;
    Ok(Json(key_answer(&revoked)))
}
