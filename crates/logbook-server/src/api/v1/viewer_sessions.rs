//! `POST /api/v1/viewer-sessions`: a platform's backend lets one of its customers' people read
//! that customer's Activity Logs inside the platform's console (README, "Logbook in your
//! console"). It takes a key with the `admin` scope: a platform admin key for any account, an
//! account admin key for its own. The answer is a URL that opens the session once, within the
//! instance's `open_within` (60 s by default); see `web::viewer` for what opening it does.
//!
//! Nothing of a refused request is stored, and making sessions is rate-limited per key and per
//! account.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use logbook_core::AccountId;
use logbook_core::people::hash_token;
use logbook_core::viewer::{NewViewerSession, ViewerInputError, ViewerPerson, ViewerScope};
use serde::{Deserialize, Serialize};

use crate::api::v1::manage::{AdminKey, json_body, rfc3339};
use crate::error::ApiError;
use crate::limits::LimitScope;
use crate::state::AppState;
use crate::web::session::new_session_id;

/// Who the person is, as the platform knows them. The patterns state what
/// `ViewerPerson::validate` refuses: controls, bidi controls, zero-width characters, line
/// separators and angle brackets (it lets ZWJ and ZWNJ through inside a joined emoji or script,
/// which the patterns leave out for simplicity), and spaces at either end.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewerPersonBody {
    /// The platform's id of the person; with the `own` scope, the `actor.id` of the events they
    /// may see. No spaces at either end, no control, bidi, zero-width or `<>` characters.
    #[schema(
        example = "user_8831",
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\s<>\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200b-\\u200f\\u2028-\\u202e\\u2060\\u2066-\\u2069\\ufeff](?:[^<>\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200b-\\u200f\\u2028-\\u202e\\u2060\\u2066-\\u2069\\ufeff]*[^\\s<>\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200b-\\u200f\\u2028-\\u202e\\u2060\\u2066-\\u2069\\ufeff])?$"
    )]
    pub id: String,
    /// Shown in the view and in the `logbook.log.view` event; the same rules as `id`.
    #[schema(
        example = "Ana Lima",
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\s<>\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200b-\\u200f\\u2028-\\u202e\\u2060\\u2066-\\u2069\\ufeff](?:[^<>\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200b-\\u200f\\u2028-\\u202e\\u2060\\u2066-\\u2069\\ufeff]*[^\\s<>\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200b-\\u200f\\u2028-\\u202e\\u2060\\u2066-\\u2069\\ufeff])?$"
    )]
    pub name: Option<String>,
    #[schema(
        example = "ana@acme.com",
        min_length = 3,
        max_length = 256,
        pattern = "^[^@\\s<>\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200b-\\u200f\\u2028-\\u202e\\u2060\\u2066-\\u2069\\ufeff]+@[^\\s<>\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200b-\\u200f\\u2028-\\u202e\\u2060\\u2066-\\u2069\\ufeff]*\\.[^\\s<>\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200b-\\u200f\\u2028-\\u202e\\u2060\\u2066-\\u2069\\ufeff]*$"
    )]
    pub email: Option<String>,
}

/// `all` (the whole log) or `own` (only the events whose `actor.id` is `person.id`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NamedViewerScope {
    All,
    Own,
}

/// The events a fixed query matches, whatever the person types.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FixedQueryScope {
    /// In the query language (README, "The query language").
    #[schema(
        example = "target:srv-123",
        format = "logbook-query",
        min_length = 1,
        max_length = 2048
    )]
    pub query: String,
}

/// What the person may see: `"all"`, `"own"` or `{"query": "target:srv-123"}`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ViewerScopeBody {
    Named(NamedViewerScope),
    Query(FixedQueryScope),
}

/// A viewer session to make.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateViewerSession {
    /// The account whose log the person reads.
    #[schema(example = "acme")]
    pub account: String,
    pub person: ViewerPersonBody,
    pub scope: ViewerScopeBody,
    /// Whether the person may export what they see (default false).
    #[serde(default)]
    pub export: bool,
    /// How long the session may live once opened, in seconds (default 3600; at most the
    /// instance's `[embed] max_session_lifetime_seconds`, 43200 unless configured).
    #[serde(default, deserialize_with = "whole_seconds")]
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 43200, example = 3600)]
    pub lifetime_seconds: Option<u64>,
}

/// A whole number of seconds, which JSON may write with a zero fraction (`600.0` is an integer
/// to JSON Schema); anything else that is not a whole, non-negative number is refused.
fn whole_seconds<'de, D>(deserializer: D) -> Result<Option<u64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    number
        .as_u64()
        .or_else(|| {
            number
                .as_f64()
                .filter(|value| value.fract() == 0.0 && (0.0..9.0e15).contains(value))
                .map(|value| value as u64)
        })
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("{number} is not a whole number of seconds")))
}

/// A viewer session that can be opened once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ViewerSessionAnswer {
    /// The session's id, as its `logbook.log.view` event names it.
    pub viewer_session: String,
    /// Open this URL (top level or in an `<iframe>`) once, before `open_by`.
    pub url: String,
    /// RFC 3339.
    pub open_by: String,
    /// RFC 3339: the session ends then, however active.
    pub expires_at: String,
    pub account: String,
    pub scope: ViewerScopeBody,
    pub export: bool,
}

fn field_error(error: ViewerInputError) -> ApiError {
    ApiError::bad_request("invalid_field", error.message, Some(error.field))
}

/// Where the person's browser reaches Logbook: the configured public URL, or else the address
/// this request was sent to.
fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(public_url) = &state.settings().public_url {
        return public_url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .filter(|host| {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || b".-:[]".contains(&byte))
        })
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

#[utoipa::path(
    post,
    path = "/api/v1/viewer-sessions",
    operation_id = "create_viewer_session",
    tag = "embedding",
    request_body = CreateViewerSession,
    security(("admin_key" = [])),
    responses(
        (status = 201, description = "The session, with the URL that opens it once", body = ViewerSessionAnswer),
        (status = 400, description = "Bad input; field names the offending member; nothing stored", body = crate::api::v1::openapi::ErrorDocument),
        (status = 404, description = "No such account, or one this key may not manage (never told apart); field is account", body = crate::api::v1::openapi::ErrorDocument),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 413, description = "Body larger than 64 KiB", body = crate::api::v1::openapi::ErrorDocument),
        (status = 415, description = "Content-Type is not application/json", body = crate::api::v1::openapi::ErrorDocument),
        (status = 429, description = "Too many sessions made with this key or for this account; nothing stored", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn create(
    State(state): State<AppState>,
    admin: AdminKey,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<ViewerSessionAnswer>), ApiError> {
    let request: CreateViewerSession = json_body(&state, &headers, body).await?;
    let unknown_account = || ApiError::UnknownReference {
        code: "unknown_account",
        message: format!(
            "no account {:?} that this key manages",
            crate::web::audit::truncate(&request.account, 64)
        ),
        field: "account",
    };
    // An account this key may not manage is answered exactly like one that does not exist.
    let account = AccountId::parse(&request.account).map_err(|_| unknown_account())?;
    if !admin.may_manage(&account)
        || state
            .store()
            .accounts()
            .account_settings(&account)
            .await?
            .is_none()
    {
        return Err(unknown_account());
    }
    let person = ViewerPerson::validate(
        &request.person.id,
        request.person.name.as_deref(),
        request.person.email.as_deref(),
    )
    .map_err(field_error)?;
    let scope = match &request.scope {
        ViewerScopeBody::Named(NamedViewerScope::All) => ViewerScope::from_parts("all", None),
        ViewerScopeBody::Named(NamedViewerScope::Own) => ViewerScope::from_parts("own", None),
        ViewerScopeBody::Query(fixed) => ViewerScope::from_parts("query", Some(&fixed.query)),
    }
    .map_err(|error| ApiError::BadRequest {
        code: "invalid_field",
        message: error.message,
        // The fixed query sits inside `scope` on the wire.
        field: Some(match error.field {
            "query" => "scope.query".to_owned(),
            other => other.to_owned(),
        }),
    })?;
    let embed = &state.settings().embed;
    let lifetime = match request.lifetime_seconds {
        None => embed.default_session_lifetime,
        Some(seconds) => {
            let maximum = embed.max_session_lifetime.as_secs();
            if seconds == 0 || seconds > maximum {
                return Err(ApiError::bad_request(
                    "invalid_field",
                    format!("lifetime_seconds must be 1 to {maximum}"),
                    Some("lifetime_seconds"),
                ));
            }
            std::time::Duration::from_secs(seconds)
        }
    };
    state
        .web()
        .viewer_sessions
        .take(&admin.key.key_id, &account)
        .map_err(|(which, retry_after_seconds)| ApiError::RateLimited {
            scope: if which == "key" {
                LimitScope::KeyViewerSessions
            } else {
                LimitScope::AccountViewerSessions
            },
            retry_after_seconds,
        })?;
    // The answer states the fixed query as stored (trimmed).
    let scope_answer = scope.fixed_query().map(str::to_owned);
    let now = state.clock().now();
    let open_by = now + embed.open_within;
    let expires_at = now + lifetime;
    let ticket = new_session_id();
    let viewer_session_id = format!("vs_{}", uuid::Uuid::now_v7().simple());
    state
        .store()
        .viewer_sessions()
        .create_viewer_session(
            NewViewerSession {
                viewer_session_id: viewer_session_id.clone(),
                account: account.clone(),
                person,
                scope,
                may_export: request.export,
                created_by: admin.key.key_id.as_str().to_owned(),
                created_at: now,
                open_by,
                expires_at,
                ticket_hash: hash_token(&ticket),
            },
            // Ended sessions are forgotten a day after their end.
            now - time::Duration::days(1),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ViewerSessionAnswer {
            viewer_session: viewer_session_id,
            url: format!("{}/view/open/{ticket}", public_base(&state, &headers)),
            open_by: rfc3339(open_by),
            expires_at: rfc3339(expires_at),
            account: account.to_string(),
            scope: match scope_answer {
                Some(query) => ViewerScopeBody::Query(FixedQueryScope { query }),
                None => request.scope,
            },
            export: request.export,
        }),
    ))
}
