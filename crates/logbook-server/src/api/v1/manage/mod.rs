//! The management API under `/api/v1/accounts`: what `logbook account|key|user|limits` do on the
//! database, over HTTP, for a platform that onboards customers from its own code.
//!
//! Every route takes a key with the `admin` scope (`AdminKey`). A platform admin key (no account)
//! manages every account; an account admin key manages its own account only, and any other
//! account answers 404 exactly as an account that does not exist would, so a key never learns
//! which other accounts exist. What only the operator of the whole instance decides (creating
//! accounts, turning an account's ingest off, its limits) is refused to an account admin key with
//! 403.
//!
//! Every change is an event in the affected account's own log (`logbook.*`, `record_change`),
//! with the key that made it as the actor, written before the answer: a change that could not
//! be recorded is answered as failed, except when the account's own stored-volume quota refuses
//! the event (then the change stands and the server's log has it), so a quota never locks its
//! operator out of raising it. Bad input is refused with the standard error body and
//! changes nothing; a change that lost a race (`409`) says so.

pub mod accounts;
pub mod embed;
pub mod keys;
pub mod limits;
pub mod people;
pub mod retention;
pub mod single_sign_on;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use logbook_core::api_key::{ApiKeyRecord, KeyOwner};
use logbook_core::event::{Actor, ActorType, Outcome, Target};
use logbook_core::{AccountId, NewEvent};
use serde::de::DeserializeOwned;

use crate::api::producer_ingest::parse_wire_json;
use crate::error::ApiError;
use crate::state::AppState;

/// Every management route. Kept here, beside its handlers, and merged into the one route table.
pub fn routes() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route(
            "/api/v1/accounts",
            post(accounts::create).get(accounts::list),
        )
        .route(
            "/api/v1/accounts/{account}",
            get(accounts::get).patch(accounts::update),
        )
        .route(
            "/api/v1/accounts/{account}/keys",
            post(keys::create).get(keys::list),
        )
        .route(
            "/api/v1/accounts/{account}/keys/{key_id}/revoke",
            post(keys::revoke),
        )
        .route(
            "/api/v1/accounts/{account}/people",
            post(people::add).get(people::list),
        )
        .route(
            "/api/v1/accounts/{account}/people/{user_id}",
            axum::routing::patch(people::change_role).delete(people::remove),
        )
        .route(
            "/api/v1/accounts/{account}/people/{user_id}/password-reset",
            post(people::reset_password),
        )
        .route(
            "/api/v1/accounts/{account}/limits",
            get(limits::show).put(limits::set),
        )
        .route(
            "/api/v1/accounts/{account}/limits/clear",
            post(limits::clear),
        )
        .route(
            "/api/v1/accounts/{account}/retention",
            get(retention::show).put(retention::set),
        )
        .route(
            "/api/v1/accounts/{account}/legal-hold",
            post(retention::hold),
        )
        .route(
            "/api/v1/accounts/{account}/legal-hold/release",
            post(retention::release),
        )
        .route(
            "/api/v1/accounts/{account}/erasures",
            post(retention::erase),
        )
        .route(
            "/api/v1/accounts/{account}/embed",
            get(embed::show).put(embed::set),
        )
        .route(
            "/api/v1/accounts/{account}/sso",
            get(single_sign_on::show).put(single_sign_on::set),
        )
        // Clearing is a POST beside the settings, like `limits/clear`: the settings stay readable
        // afterwards (they answer what applies, perhaps the configuration file's).
        .route(
            "/api/v1/accounts/{account}/sso/clear",
            post(single_sign_on::clear),
        )
}

/// A scope name, as the OpenAPI document lists them (the handlers parse them with `Scopes::parse`).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum ScopeName {
    Ingest,
    Read,
    Admin,
}

/// A role name, as the OpenAPI document lists them (the handlers parse them with `Role::parse`).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub enum RoleName {
    Owner,
    Admin,
    Viewer,
    Member,
}

/// Management bodies are small; a larger one is refused (413) before it is parsed.
const MAX_MANAGEMENT_BODY_BYTES: usize = 64 * 1024;

/// The most items one page of a management list holds.
pub const MAX_PAGE_LIMIT: u32 = 200;
/// A page's size when `limit` is not given.
pub const DEFAULT_PAGE_LIMIT: u32 = 50;

/// A request made with an active key that has the `admin` scope, and where it came from.
pub struct AdminKey {
    pub key: Arc<ApiKeyRecord>,
    pub ip: IpAddr,
    pub user_agent: Option<String>,
}

impl AdminKey {
    /// Whether this is a platform admin key, which manages every account.
    pub fn is_platform(&self) -> bool {
        self.key.owner == KeyOwner::Platform
    }

    /// Whether the key may manage `account` (which may not exist).
    pub fn may_manage(&self, account: &AccountId) -> bool {
        match &self.key.owner {
            KeyOwner::Platform => true,
            KeyOwner::Account(own) => own == account,
        }
    }

    /// Refuses with 403 what only a platform admin key may do.
    pub fn require_platform(&self, what: &str) -> Result<(), ApiError> {
        if self.is_platform() {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "only a platform admin key may {what}; this key manages one account"
            )))
        }
    }

    /// The account named in a path, if this key may manage it and it exists; otherwise 404, the
    /// same answer for an account that does not exist and one this key may not see.
    pub async fn managed_account(
        &self,
        state: &AppState,
        name: &str,
    ) -> Result<logbook_core::account::AccountSettings, ApiError> {
        let account = AccountId::parse(name).map_err(|_| ApiError::NotFound)?;
        if !self.may_manage(&account) {
            return Err(ApiError::NotFound);
        }
        state
            .store()
            .accounts()
            .account_settings(&account)
            .await?
            .ok_or(ApiError::NotFound)
    }
}

impl FromRequestParts<AppState> for AdminKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let key = crate::auth::authenticate(parts, state).await?;
        if !key.scopes.admin {
            return Err(ApiError::forbidden(
                "this API key does not have the admin scope",
            ));
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok());
        let ip =
            logbook_core::client_ip::client_ip(peer, forwarded, &state.settings().trusted_proxies);
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|text| crate::web::audit::truncate(text, 512).to_owned())
            .filter(|text| !text.is_empty());
        Ok(AdminKey {
            key,
            ip,
            user_agent,
        })
    }
}

/// The `{account}` of a management path. A path that cannot be decoded (not UTF-8) names nothing
/// here: 404 in the standard error body, like any other account this key cannot see.
pub struct AccountPath(pub String);

/// The `{account}` and the `{key_id}` or `{user_id}` of a management path.
pub struct AccountItemPath(pub String, pub String);

impl FromRequestParts<AppState> for AccountPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let axum::extract::Path(account) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::NotFound)?;
        Ok(AccountPath(account))
    }
}

impl FromRequestParts<AppState> for AccountItemPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let axum::extract::Path((account, item)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::NotFound)?;
        Ok(AccountItemPath(account, item))
    }
}

/// Reads and parses a JSON management body: 415 without a JSON content type, 413 past
/// `MAX_MANAGEMENT_BODY_BYTES`, 400 `invalid_body` with the JSON pointer of the first problem.
pub async fn json_body<T: DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<T, ApiError> {
    if !crate::api::v1::events::is_json_content_type(headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let bytes = crate::hardening::read_body_within_limit(
        headers,
        body,
        MAX_MANAGEMENT_BODY_BYTES,
        state.settings().body_read_timeout,
    )
    .await?;
    // serde reads a struct from a JSON array too; the bodies here are objects (or `null` where
    // a body is optional), as the document says.
    if bytes.trim_ascii_start().first() == Some(&b'[') {
        return Err(ApiError::bad_request(
            "invalid_body",
            "the body must be a JSON object",
            None,
        ));
    }
    parse_wire_json::<T>(&bytes).map_err(|(pointer, message)| {
        ApiError::bad_request(
            "invalid_body",
            format!("the body is not what this route takes: {message}"),
            (!pointer.is_empty()).then_some(pointer.as_str()),
        )
    })
}

/// One change about to be written to the affected account's own log.
pub struct Change<'text> {
    pub account: &'text AccountId,
    pub action: &'static str,
    pub message: String,
    pub targets: Vec<Target>,
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Appends the change as an event of `account` with the key as its actor, and waits until it is
/// committed.
pub async fn record_change(
    state: &AppState,
    admin: &AdminKey,
    change: Change<'_>,
) -> Result<(), ApiError> {
    let now = state.clock().now();
    let action = change.action;
    let event = NewEvent {
        id: uuid::Uuid::now_v7().to_string().into(),
        account: change.account.clone(),
        received_at: now,
        created_at: now,
        created_at_was_sent: false,
        action: change.action.to_owned(),
        message: change.message,
        actor: Some(Actor {
            id: admin.key.key_id.as_str().to_owned(),
            name: admin.key.description.clone(),
            actor_type: Some(ActorType::ApiKey),
        }),
        ip: Some(admin.ip),
        user_agent: admin.user_agent.clone(),
        outcome: Some(Outcome::Success),
        targets: change.targets,
        changes: Vec::new(),
        metadata: change.metadata,
        key: None,
        salt: logbook_core::personal_data::EventSalt::random(),
    };
    match state.store().append_events(vec![event]).await {
        Ok(_) => Ok(()),
        // The account's own stored-volume quota must not lock its operator out of changing it
        // (raising the quota, say): the change stands, and is written to the server's log.
        Err(logbook_core::StoreError::VolumeQuotaExceeded { account, .. }) => {
            tracing::warn!(
                %account,
                action,
                key_id = %admin.key.key_id,
                "the account's volume quota refused the event of a management change; the change stands"
            );
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

/// A target of a change: what kind of thing, its id, and a name for people.
pub fn target(target_type: &str, id: &str, name: Option<&str>) -> Target {
    Target {
        target_type: target_type.to_owned(),
        id: crate::web::audit::truncate(id, 512).to_owned(),
        name: name.map(|name| crate::web::audit::truncate(name, 512).to_owned()),
    }
}

/// How the key that made a change is named in its event's message.
pub fn key_label(admin: &AdminKey) -> String {
    let scope = if admin.is_platform() {
        "platform admin key"
    } else {
        "admin key"
    };
    format!("{scope} {}", admin.key.key_id)
}

/// `limit` of a list, within `1 ..= MAX_PAGE_LIMIT`.
pub fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    match limit {
        None => Ok(DEFAULT_PAGE_LIMIT),
        Some(limit) if (1..=MAX_PAGE_LIMIT).contains(&limit) => Ok(limit),
        Some(_) => Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be 1 to {MAX_PAGE_LIMIT}"),
            Some("limit"),
        )),
    }
}

/// Times in answers, as everywhere in the API.
pub fn rfc3339(time: time::OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339)
        .expect("a stored time formats as RFC 3339")
}
