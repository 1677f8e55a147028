//! `/api/v1/accounts/{account}/embed`: how one account's embedded Activity Logs view looks and
//! which origins may frame it (README, "Logbook in your console"). What the account leaves unset
//! comes from the instance's `[embed]` settings; framing origins of both apply. Any admin key of
//! the account may change them, and each change is a `logbook.embed.change` event in its log.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use logbook_core::AccountId;
use logbook_core::viewer::{EmbedLook, Theme};
use serde::{Deserialize, Serialize};

use super::{AccountPath, AdminKey, Change, json_body, key_label, record_change, target};
use crate::error::ApiError;
use crate::state::AppState;

/// An account's look of the embedded view: what it sets, and what applies.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EmbedAnswer {
    pub account: String,
    /// What the account itself sets (`null` members come from the instance).
    pub own: EmbedLookBody,
    /// What applies: the account's settings over the instance's.
    pub effective: EmbedLookBody,
}

/// The look of the embedded view and the origins allowed to frame it. The patterns state what
/// `EmbedLook::validate` accepts.
#[derive(Debug, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbedLookBody {
    /// Origins allowed to put the view in an `<iframe>`: `https://host[:port]` (`http://` only
    /// for localhost and 127.0.0.1), at most 20.
    #[serde(default)]
    #[schema(example = json!(["https://console.example.com"]), max_items = 20, value_type = Vec<FrameAncestor>)]
    pub frame_ancestors: Vec<String>,
    /// Shown in place of "Logbook", 1 to 60 characters, no spaces at either end, no control,
    /// bidi, zero-width or `<>` characters.
    #[schema(
        example = "Acme Cloud",
        min_length = 1,
        max_length = 60,
        pattern = "^[^\\s<>\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200b-\\u200f\\u2028-\\u202e\\u2060\\u2066-\\u2069\\ufeff](?:[^<>\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200b-\\u200f\\u2028-\\u202e\\u2060\\u2066-\\u2069\\ufeff]*[^\\s<>\\x00-\\x1f\\x7f-\\x9f\\u061c\\u200b-\\u200f\\u2028-\\u202e\\u2060\\u2066-\\u2069\\ufeff])?$"
    )]
    pub product_name: Option<String>,
    /// `#rrggbb` or `#rgb`.
    #[schema(example = "#1f6feb", pattern = "^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")]
    pub accent_colour: Option<String>,
    pub theme: Option<ThemeName>,
    /// An https URL of an image shown beside the product name.
    #[schema(
        example = "https://cdn.example.com/logo.svg",
        max_length = 1024,
        pattern = "^https://[^/?#@\\s\"\'\\\\<>;,\\x00-\\x1f\\x7f-\\x9f]+([/?#][^\\s\"\'\\\\<>;,\\x00-\\x1f\\x7f-\\x9f]*)?$"
    )]
    pub logo_url: Option<String>,
}

/// `light`, `dark` or `auto` (the person's system decides).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ThemeName {
    Light,
    Dark,
    Auto,
}

/// A framing origin, as the document describes it.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, pattern = "^(https://([A-Za-z0-9-]{1,63}(\\.[A-Za-z0-9-]{1,63}){0,9}|\\[::1\\])|http://(localhost|127\\.0\\.0\\.1|\\[::1\\]))(:[0-9]{1,5})?/?$")]
#[allow(dead_code)]
pub struct FrameAncestor(String);

impl EmbedLookBody {
    fn of(look: &EmbedLook) -> Self {
        Self {
            frame_ancestors: look.frame_ancestors.clone(),
            product_name: look.product_name.clone(),
            accent_colour: look.accent_colour.clone(),
            theme: look.theme.map(|theme| match theme {
                Theme::Light => ThemeName::Light,
                Theme::Dark => ThemeName::Dark,
                Theme::Auto => ThemeName::Auto,
            }),
            logo_url: look.logo_url.clone(),
        }
    }
}

async fn answer(state: &AppState, account: &AccountId) -> Result<Json<EmbedAnswer>, ApiError> {
    let own = state
        .store()
        .viewer_sessions()
        .embed_look(account)
        .await?
        .unwrap_or_default();
    Ok(Json(EmbedAnswer {
        account: account.to_string(),
        effective: EmbedLookBody::of(&own.over(&state.settings().embed.look)),
        own: EmbedLookBody::of(&own),
    }))
}

#[utoipa::path(
    get,
    path = "/api/v1/accounts/{account}/embed",
    operation_id = "show_embed",
    tag = "embedding",
    params(("account" = String, Path, description = "The account name", example = "acme")),
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The account's look of the embedded view", body = EmbedAnswer),
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
) -> Result<Json<EmbedAnswer>, ApiError> {
    let account = admin.managed_account(&state, &name).await?.account;
    answer(&state, &account).await
}

#[utoipa::path(
    put,
    path = "/api/v1/accounts/{account}/embed",
    operation_id = "set_embed",
    tag = "embedding",
    params(("account" = String, Path, description = "The account name", example = "acme")),
    request_body = EmbedLookBody,
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The settings as stored (the body replaces the account's settings; `{}` clears them)", body = EmbedAnswer),
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
) -> Result<Json<EmbedAnswer>, ApiError> {
    let account = admin.managed_account(&state, &name).await?.account;
    let body: EmbedLookBody = json_body(&state, &headers, body).await?;
    let look = EmbedLook::validate(
        &body.frame_ancestors,
        body.product_name.as_deref(),
        body.accent_colour.as_deref(),
        body.theme.map(|theme| match theme {
            ThemeName::Light => "light",
            ThemeName::Dark => "dark",
            ThemeName::Auto => "auto",
        }),
        body.logo_url.as_deref(),
    )
    .map_err(|error| ApiError::bad_request("invalid_field", error.message, Some(error.field)))?;
    let stored = (look != EmbedLook::default()).then_some(look);
    let mut metadata = serde_json::Map::new();
    if let Some(look) = &stored {
        metadata.insert(
            "frame_ancestors".into(),
            serde_json::json!(look.frame_ancestors),
        );
        for (name, value) in [
            ("product_name", &look.product_name),
            ("accent_colour", &look.accent_colour),
            ("logo_url", &look.logo_url),
        ] {
            if let Some(value) = value {
                metadata.insert(name.into(), value.clone().into());
            }
        }
        if let Some(theme) = look.theme {
            metadata.insert("theme".into(), theme.as_str().into());
        }
    }
    state
        .store()
        .viewer_sessions()
        .set_embed_look(&account, stored)
        .await?;
    record_change(
        &state,
        &admin,
        Change {
            account: &account,
            action: "logbook.embed.change",
            message: format!(
                "{} changed the embedded view's look and framing of {account}",
                key_label(&admin)
            ),
            targets: vec![target("account", account.as_str(), None)],
            metadata: Some(metadata),
        },
    )
    .await?;
    answer(&state, &account).await
}
