//! `/api/v1/accounts/{account}/sso`: what `logbook sso show|set|clear` do, over HTTP. An
//! account's own single sign-on settings (`logbook_core::single_sign_on`), which win over the
//! configuration file's `[sso]` section for that account. Any admin key of the account may read
//! and change them: choosing the company's identity provider is the account's own business.
//!
//! The client secret is write-only: answers say only whether one is stored, and a `PUT` without
//! one keeps the stored secret.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use logbook_core::AccountId;
use logbook_core::people::Role;
use logbook_core::single_sign_on::{ClientSecret, SingleSignOnSettings};
use serde::{Deserialize, Serialize};

use super::{AccountPath, AdminKey, Change, json_body, record_change, target};
use crate::error::ApiError;
use crate::state::AppState;

pub const SSO_SET: &str = "logbook.sso.set";
pub const SSO_CLEAR: &str = "logbook.sso.clear";

/// `PUT /api/v1/accounts/{account}/sso`.
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSingleSignOn {
    /// Shown on the sign-in page: "Sign in with <display_name>" (1 to 64 characters, no spaces
    /// at either end, no control characters).
    #[schema(
        example = "Okta",
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f](?:[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f])?$"
    )]
    pub display_name: String,
    /// The provider's issuer URL, without query or fragment: https, or plain http only on
    /// localhost, 127.0.0.1 or [::1].
    #[schema(
        example = "https://acme.okta.com",
        max_length = 2048,
        pattern = "^(https://[^/?#@\\s\\x00-\\x1f\\x7f-\\x9f]+|http://(localhost|127\\.0\\.0\\.1|\\[::1\\])(:[0-9]{1,5})?)(/[^?#\\s\\x00-\\x1f\\x7f-\\x9f]*)?$"
    )]
    pub issuer: String,
    /// 1 to 2048 characters without control characters.
    #[schema(
        example = "0oa1b2c3d4",
        min_length = 1,
        max_length = 2048,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub client_id: String,
    /// Required the first time (409 without it); left out or null, the stored secret is kept.
    /// Never returned. 1 to 2048 characters without control characters.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 2048,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    pub client_secret: Option<String>,
    /// The role of a person created by their first sign-in (default `viewer`).
    #[serde(default)]
    #[schema(value_type = Option<super::RoleName>)]
    pub default_role: Option<String>,
    /// Only people who are users of the account already, or invited, may sign in.
    #[serde(default)]
    pub invited_only: bool,
    /// Whether the account's people may still sign in with a password (default true).
    #[serde(default = "always_true")]
    pub password_sign_in_allowed: bool,
}

fn always_true() -> bool {
    true
}

/// The settings as answered: everything but the secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SingleSignOnView {
    pub display_name: String,
    pub issuer: String,
    pub client_id: String,
    /// Whether a client secret is stored (the secret itself is never returned).
    pub client_secret_set: bool,
    #[schema(value_type = super::RoleName)]
    pub default_role: &'static str,
    pub invited_only: bool,
    pub password_sign_in_allowed: bool,
}

/// An account's single sign-on: what applies, and where it comes from.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SingleSignOnAnswer {
    pub account: String,
    /// `database` (this API or `logbook sso set`), `configuration file` (`[sso]`) or `none`.
    #[schema(value_type = String)]
    pub source: &'static str,
    /// The redirect URI to register with the provider: absolute when the server has a public URL
    /// (`[web] public_url`), otherwise its path.
    pub redirect_uri: String,
    pub settings: Option<SingleSignOnView>,
}

pub fn view(settings: &SingleSignOnSettings) -> SingleSignOnView {
    SingleSignOnView {
        display_name: settings.display_name.clone(),
        issuer: settings.issuer.clone(),
        client_id: settings.client_id.clone(),
        client_secret_set: !settings.client_secret.expose().is_empty(),
        default_role: settings.default_role.as_str(),
        invited_only: settings.invited_only,
        password_sign_in_allowed: settings.password_sign_in_allowed,
    }
}

/// What applies to `account`: its stored settings win over the configuration file's.
pub fn answer_from(
    account: &AccountId,
    stored: Option<SingleSignOnSettings>,
    configured: Option<SingleSignOnSettings>,
    public_url: Option<&str>,
) -> SingleSignOnAnswer {
    let (source, settings) = match (stored, configured) {
        (Some(stored), _) => ("database", Some(stored)),
        (None, Some(configured)) => ("configuration file", Some(configured)),
        (None, None) => ("none", None),
    };
    SingleSignOnAnswer {
        account: account.to_string(),
        source,
        redirect_uri: format!(
            "{}/login/sso/{account}/callback",
            public_url.unwrap_or_default().trim_end_matches('/')
        ),
        settings: settings.as_ref().map(view),
    }
}

async fn answer(state: &AppState, account: &AccountId) -> Result<SingleSignOnAnswer, ApiError> {
    let stored = state
        .store()
        .single_sign_on()
        .single_sign_on_settings(account)
        .await?;
    let configured = state
        .settings()
        .single_sign_on
        .as_ref()
        .filter(|instance| instance.accounts.contains(account))
        .map(|instance| instance.settings.clone());
    Ok(answer_from(
        account,
        stored,
        configured,
        state.settings().public_url.as_deref(),
    ))
}

/// `GET /api/v1/accounts/{account}/sso`.
#[utoipa::path(
    get,
    path = "/api/v1/accounts/{account}/sso",
    operation_id = "show_single_sign_on",
    tag = "management",
    params(("account" = String, Path, description = "The account name", example = "acme")),
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The single sign-on that applies to the account, without its secret", body = SingleSignOnAnswer),
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
) -> Result<Json<SingleSignOnAnswer>, ApiError> {
    let account = admin.managed_account(&state, &name).await?.account;
    Ok(Json(answer(&state, &account).await?))
}

/// The settings a `PUT` asks for, checked; the stored secret is kept when none is given.
pub fn settings_of(
    request: SetSingleSignOn,
    stored_secret: Option<ClientSecret>,
) -> Result<SingleSignOnSettings, ApiError> {
    let default_role = match request.default_role.as_deref() {
        None => Role::Viewer,
        Some(text) => Role::parse(text).map_err(|error| {
            ApiError::bad_request("invalid_role", error.to_string(), Some("/default_role"))
        })?,
    };
    let client_secret = match (request.client_secret, stored_secret) {
        (Some(secret), _) => ClientSecret::new(secret),
        (None, Some(stored)) => stored,
        // The body is well formed; what it lacks is only missing because nothing is stored yet.
        (None, None) => {
            return Err(ApiError::Conflict {
                code: "client_secret_required",
                message: "client_secret is required: this account has no stored secret to keep"
                    .into(),
                field: Some("/client_secret".into()),
            });
        }
    };
    let settings = SingleSignOnSettings {
        display_name: request.display_name,
        issuer: request.issuer,
        client_id: request.client_id,
        client_secret,
        default_role,
        invited_only: request.invited_only,
        password_sign_in_allowed: request.password_sign_in_allowed,
    };
    settings.validate().map_err(|error| {
        ApiError::bad_request(
            "invalid_single_sign_on",
            error.to_string(),
            Some(&format!("/{}", error.field)),
        )
    })?;
    Ok(settings)
}

/// `PUT /api/v1/accounts/{account}/sso`.
#[utoipa::path(
    put,
    path = "/api/v1/accounts/{account}/sso",
    operation_id = "set_single_sign_on",
    tag = "management",
    params(("account" = String, Path, description = "The account name", example = "acme")),
    request_body = SetSingleSignOn,
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The settings as stored, without the secret", body = SingleSignOnAnswer),
        (status = 400, description = "Bad input; field is the JSON pointer of the offending member; nothing changed", body = crate::api::v1::openapi::ErrorDocument),
        (status = 409, description = "No client_secret given and none stored to keep; nothing changed", body = crate::api::v1::openapi::ErrorDocument),
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
) -> Result<Json<SingleSignOnAnswer>, ApiError> {
    let account = admin.managed_account(&state, &name).await?.account;
    let request: SetSingleSignOn = json_body(&state, &headers, body).await?;
    let stored_secret = state
        .store()
        .single_sign_on()
        .single_sign_on_settings(&account)
        .await?
        .map(|stored| stored.client_secret);
    let settings = settings_of(request, stored_secret)?;
    state
        .store()
        .single_sign_on()
        .set_single_sign_on_settings(&account, Some(&settings), state.clock().now())
        .await?;
    let answered = answer(&state, &account).await?;
    let mut metadata = serde_json::Map::new();
    metadata.insert(
        "single_sign_on".to_owned(),
        serde_json::to_value(view(&settings)).expect("settings serialize"),
    );
    record_change(
        &state,
        &admin,
        Change {
            account: &account,
            action: SSO_SET,
            message: format!(
                "Single sign-on set to {} for {account}",
                crate::web::audit::truncate(&settings.display_name, 64)
            ),
            targets: vec![target("account", account.as_str(), None)],
            metadata: Some(metadata),
        },
    )
    .await?;
    Ok(Json(answered))
}

/// `POST /api/v1/accounts/{account}/sso/clear`: removes the account's own settings (the
/// configuration file's `[sso]` may still apply).
#[utoipa::path(
    post,
    path = "/api/v1/accounts/{account}/sso/clear",
    operation_id = "clear_single_sign_on",
    tag = "management",
    params(("account" = String, Path, description = "The account name", example = "acme")),
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "What applies now", body = SingleSignOnAnswer),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 404, description = "No such account, or one this key may not manage (never told apart)", body = crate::api::v1::openapi::ErrorDocument),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn clear(
    State(state): State<AppState>,
    admin: AdminKey,
    AccountPath(name): AccountPath,
) -> Result<Json<SingleSignOnAnswer>, ApiError> {
    let account = admin.managed_account(&state, &name).await?.account;
    state
        .store()
        .single_sign_on()
        .set_single_sign_on_settings(&account, None, state.clock().now())
        .await?;
    record_change(
        &state,
        &admin,
        Change {
            account: &account,
            action: SSO_CLEAR,
            message: format!("Single sign-on settings removed for {account}"),
            targets: vec![target("account", account.as_str(), None)],
            metadata: None,
        },
    )
    .await?;
    Ok(Json(answer(&state, &account).await?))
}
