//! `/api/v1/accounts/{account}/limits`: what `logbook limits show|set|clear` do, over HTTP. Any
//! admin key of the account may look; only a platform admin key may change them, since an
//! account raising its own limits would defeat them.
//!
//! A change is stored in the database like `logbook limits set` stores it and applied on this
//! node at once; other nodes apply it within `STORED_OVERRIDE_REFRESH_INTERVAL`.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use logbook_core::AccountId;
use logbook_core::store::StoredAccountLimits;
use serde::{Deserialize, Serialize};

use super::{AccountPath, AdminKey, Change, json_body, key_label, record_change, target};
use crate::error::ApiError;
use crate::state::AppState;

pub const LIMITS_SET: &str = "logbook.limits.set";
pub const LIMITS_CLEAR: &str = "logbook.limits.clear";

/// `PUT /api/v1/accounts/{account}/limits`: a number stores that field, `null` clears it, a
/// field left out keeps its stored value (`{}` changes nothing). Rates are at most 4294967295; 0 turns a rate off.
#[derive(Debug, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetLimits {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>, maximum = 4294967295.0)]
    pub ingest_events_per_second: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>, maximum = 4294967295.0)]
    pub ingest_event_burst: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>, maximum = 4294967295.0)]
    pub reads_per_second: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>, maximum = 4294967295.0)]
    pub read_burst: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>, maximum = 4294967295.0)]
    pub max_concurrent_exports: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>, maximum = 4294967295.0)]
    pub max_live_tails: Option<Option<u32>>,
    /// Events the account may store per UTC day (a stored-volume quota); `null`: off.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>)]
    pub events_per_day: Option<Option<u64>>,
    /// Bytes of event bodies the account may keep (a stored-volume quota); `null`: off.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>)]
    pub stored_bytes: Option<Option<u64>>,
}

/// Tells a field given as `null` (`Some(None)`) from a field left out (`None`), and takes a
/// whole number written with a fraction of zero (`100.0`), which JSON Schema counts as an
/// integer, as that number.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::de::Error;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(Some(None));
    };
    let whole = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|value| value.fract() == 0.0 && *value >= 0.0 && *value <= u64::MAX as f64)
            .map(|value| value as u64)
    });
    let value = whole
        .and_then(|whole| T::try_from(whole).ok())
        .ok_or_else(|| D::Error::custom(format!("{number} is not a whole number in range")))?;
    Ok(Some(Some(value)))
}

/// One limit: the value the account gets (`null`: a quota that is off) and where it comes from.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LimitValue {
    pub value: Option<u64>,
    #[schema(value_type = String)]
    pub source: &'static str,
}

/// Every limit of the account, named like the configuration fields.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LimitsAnswer {
    pub account: String,
    pub limits: AccountLimitValues,
}

/// Each limit with its value and source, as `logbook limits show --json` prints them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountLimitValues {
    pub ingest_events_per_second: LimitValue,
    pub ingest_event_burst: LimitValue,
    pub reads_per_second: LimitValue,
    pub read_burst: LimitValue,
    pub max_concurrent_exports: LimitValue,
    pub max_live_tails: LimitValue,
    pub events_per_day: LimitValue,
    pub stored_bytes: LimitValue,
}

const DATABASE: &str = "database (logbook limits set)";

async fn stored_limits_of(
    state: &AppState,
    account: &AccountId,
) -> Result<StoredAccountLimits, ApiError> {
    Ok(state
        .store()
        .account_limits()
        .stored_account_limits()
        .await?
        .into_iter()
        .find(|(stored_account, _)| stored_account == account)
        .map(|(_, limits)| limits)
        .unwrap_or_default())
}

fn limits_answer(
    state: &AppState,
    account: &AccountId,
    stored: &StoredAccountLimits,
) -> LimitsAnswer {
    let (effective, configured) = state.limiter().limits_given_stored(account, stored);
    let rate_source = |stored_value: Option<u32>| {
        if stored_value.is_some() {
            DATABASE
        } else if configured {
            "configuration file [limits.accounts]"
        } else {
            "default [limits]"
        }
    };
    let quota_source = |stored_value: Option<u64>| {
        if stored_value.is_some() {
            DATABASE
        } else {
            "off (quota not set)"
        }
    };
    let rate = |value: u64, stored_value: Option<u32>| LimitValue {
        value: Some(value),
        source: rate_source(stored_value),
    };
    let quota = |stored_value: Option<u64>| LimitValue {
        value: stored_value,
        source: quota_source(stored_value),
    };
    LimitsAnswer {
        account: account.to_string(),
        limits: AccountLimitValues {
            ingest_events_per_second: rate(
                u64::from(effective.ingest_events_per_second),
                stored.ingest_events_per_second,
            ),
            ingest_event_burst: rate(
                u64::from(effective.ingest_event_burst),
                stored.ingest_event_burst,
            ),
            reads_per_second: rate(
                u64::from(effective.reads_per_second),
                stored.reads_per_second,
            ),
            read_burst: rate(u64::from(effective.read_burst), stored.read_burst),
            max_concurrent_exports: rate(
                effective.max_concurrent_exports as u64,
                stored.max_concurrent_exports,
            ),
            max_live_tails: rate(effective.max_live_tails as u64, stored.max_live_tails),
            events_per_day: quota(stored.events_per_day),
            stored_bytes: quota(stored.stored_bytes),
        },
    }
}

/// `GET /api/v1/accounts/{account}/limits`.
#[utoipa::path(
    get,
    path = "/api/v1/accounts/{account}/limits",
    operation_id = "show_limits",
    tag = "management",
    params(("account" = String, Path, description = "The account name", example = "acme")),
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "Every limit with its value and source", body = LimitsAnswer),
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
) -> Result<Json<LimitsAnswer>, ApiError> {
    let account = admin.managed_account(&state, &name).await?.account;
    let stored = stored_limits_of(&state, &account).await?;
    Ok(Json(limits_answer(&state, &account, &stored)))
}

/// Stores `stored`, applies every stored override on this node now, and records the change.
async fn store_and_apply(
    state: &AppState,
    admin: &AdminKey,
    account: &AccountId,
    stored: &StoredAccountLimits,
    action: &'static str,
    message: String,
) -> Result<(), ApiError> {
    state
        .store()
        .account_limits()
        .set_stored_account_limits(account, stored, state.clock().now())
        .await?;
    let everything = state
        .store()
        .account_limits()
        .stored_account_limits()
        .await?;
    state.limiter().apply_stored_overrides(&everything);
    let mut metadata = serde_json::Map::new();
    metadata.insert(
        "stored_limits".to_owned(),
        serde_json::to_value(SetLimits {
            ingest_events_per_second: Some(stored.ingest_events_per_second),
            ingest_event_burst: Some(stored.ingest_event_burst),
            reads_per_second: Some(stored.reads_per_second),
            read_burst: Some(stored.read_burst),
            max_concurrent_exports: Some(stored.max_concurrent_exports),
            max_live_tails: Some(stored.max_live_tails),
            events_per_day: Some(stored.events_per_day),
            stored_bytes: Some(stored.stored_bytes),
        })
        .expect("limits serialize"),
    );
    record_change(
        state,
        admin,
        Change {
            account,
            action,
            message,
            targets: vec![target("account", account.as_str(), None)],
            metadata: Some(metadata),
        },
    )
    .await
}

/// `PUT /api/v1/accounts/{account}/limits` (platform admin key).
#[utoipa::path(
    put,
    path = "/api/v1/accounts/{account}/limits",
    operation_id = "set_limits",
    tag = "management",
    params(("account" = String, Path, description = "The account name", example = "acme")),
    request_body = SetLimits,
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The limits as stored and applied", body = LimitsAnswer),
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
pub async fn set(
    State(state): State<AppState>,
    admin: AdminKey,
    AccountPath(name): AccountPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<LimitsAnswer>, ApiError> {
    let account = admin.managed_account(&state, &name).await?.account;
    admin.require_platform("change an account's limits")?;
    let request: SetLimits = json_body(&state, &headers, body).await?;
    let quota_in_range = |value: &Option<Option<u64>>, field: &str| match value {
        Some(Some(value)) if *value > i64::MAX as u64 => Err(ApiError::bad_request(
            "invalid_limit_value",
            format!("{field} must be at most {}", i64::MAX),
            Some(&format!("/{field}")),
        )),
        _ => Ok(()),
    };
    quota_in_range(&request.events_per_day, "events_per_day")?;
    quota_in_range(&request.stored_bytes, "stored_bytes")?;
    let mut stored = stored_limits_of(&state, &account).await?;
    let mut named = Vec::new();
    macro_rules! apply {
        ($($field:ident),*) => {
            $(
                if let Some(value) = request.$field {
                    stored.$field = value;
                    named.push(stringify!($field));
                }
            )*
        };
    }
    apply!(
        ingest_events_per_second,
        ingest_event_burst,
        reads_per_second,
        read_burst,
        max_concurrent_exports,
        max_live_tails,
        events_per_day,
        stored_bytes
    );
    // A body that names no limit changes nothing and is not a change to record.
    if named.is_empty() {
        return Ok(Json(limits_answer(&state, &account, &stored)));
    }
    store_and_apply(
        &state,
        &admin,
        &account,
        &stored,
        LIMITS_SET,
        format!(
            "{} set the limits of {account}: {}",
            key_label(&admin),
            named.join(", ")
        ),
    )
    .await?;
    Ok(Json(limits_answer(&state, &account, &stored)))
}

/// `POST /api/v1/accounts/{account}/limits/clear` (platform admin key): every stored override goes;
/// the account falls back to the configuration.
#[utoipa::path(
    post,
    path = "/api/v1/accounts/{account}/limits/clear",
    operation_id = "clear_limits",
    tag = "management",
    params(("account" = String, Path, description = "The account name", example = "acme")),
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The limits without stored overrides", body = LimitsAnswer),
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
) -> Result<Json<LimitsAnswer>, ApiError> {
    let account = admin.managed_account(&state, &name).await?.account;
    admin.require_platform("change an account's limits")?;
    let stored = StoredAccountLimits::default();
    store_and_apply(
        &state,
        &admin,
        &account,
        &stored,
        LIMITS_CLEAR,
        format!(
            "{} cleared the stored limits of {account}",
            key_label(&admin)
        ),
    )
    .await?;
    Ok(Json(limits_answer(&state, &account, &stored)))
}
