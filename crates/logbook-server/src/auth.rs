//! API key authentication. A key is accepted only in `Authorization: Bearer lbk_...`; its SHA-256
//! is looked up in the store. Missing, malformed, unknown and revoked keys all get the same 401 so
//! an answer never tells which keys exist. The extractors here also check the key's scope (403).

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use logbook_core::AccountId;
use logbook_core::api_key::{ApiKeyRecord, KEY_PREFIX, KeyOwner, hash_presented_key};

use crate::error::ApiError;
use crate::state::AppState;

const INVALID_KEY: ApiError = ApiError::Unauthenticated {
    message: "a valid API key is required: send Authorization: Bearer lbk_...",
};

/// Longest key text worth hashing; real keys are 32 characters.
const MAX_PRESENTED_KEY_BYTES: usize = 128;

/// Finds the active key presented in the `Authorization` header.
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<ApiKeyRecord, ApiError> {
    let header_value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or(INVALID_KEY)?;
    let header_text = header_value.to_str().map_err(|_| INVALID_KEY)?;
    let (scheme, presented_key) = header_text.split_once(' ').ok_or(INVALID_KEY)?;
    let presented_key = presented_key.trim();
    if !scheme.eq_ignore_ascii_case("bearer")
        || !presented_key.starts_with(KEY_PREFIX)
        || presented_key.len() > MAX_PRESENTED_KEY_BYTES
    {
        return Err(INVALID_KEY);
    }
    let key_hash = hash_presented_key(presented_key);
    match state.store().find_api_key_by_hash(&key_hash).await? {
        Some(record) if record.is_active() => Ok(record),
        _ => Err(INVALID_KEY),
    }
}

/// A request made with an active key that has the `ingest` scope.
pub struct IngestKey(pub ApiKeyRecord);

impl FromRequestParts<AppState> for IngestKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let record = authenticate(parts, state).await?;
        if !record.scopes.ingest {
            return Err(ApiError::forbidden(
                "this API key does not have the ingest scope",
            ));
        }
        Ok(IngestKey(record))
    }
}

/// A request made with an active account key that has the `read` scope: the account whose events
/// the request may read. Platform keys write for many accounts but read none.
pub struct ReadAccount {
    pub account: AccountId,
    pub key: ApiKeyRecord,
}

impl FromRequestParts<AppState> for ReadAccount {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let record = authenticate(parts, state).await?;
        if !record.scopes.read {
            return Err(ApiError::forbidden(
                "this API key does not have the read scope",
            ));
        }
        match &record.owner {
            KeyOwner::Account(account) => Ok(ReadAccount {
                account: account.clone(),
                key: record,
            }),
            KeyOwner::Platform => Err(ApiError::forbidden(
                "a platform key belongs to no account and cannot read events; use an account key",
            )),
        }
    }
}
