//! API key authentication. A key is accepted only in `Authorization: Bearer lbk_...`; its SHA-256
//! is looked up in the store. Missing, malformed, unknown and revoked keys all get the same 401 so
//! an answer never tells which keys exist. The extractors here also check the key's scope (403).
//!
//! Active keys are remembered for `ServerSettings::api_key_cache_ttl` (1 s by default) so the
//! ingest hot path does not pay a database round trip per request; a revoked key therefore stops
//! working on every node within that time. Unknown and revoked keys are never remembered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Active keys recently found in the store, by the SHA-256 of the presented key.
pub struct ApiKeyCache {
    time_to_live: Duration,
    entries: Mutex<HashMap<[u8; 32], CachedKey>>,
}

struct CachedKey {
    record: Arc<ApiKeyRecord>,
    fetched_at: Instant,
}

/// Bounds the cache; when full it is emptied, which only costs one lookup per active key.
const MAX_CACHED_KEYS: usize = 10_000;

impl ApiKeyCache {
    pub fn new(time_to_live: Duration) -> Self {
        Self {
            time_to_live,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key_hash: &[u8; 32]) -> Option<Arc<ApiKeyRecord>> {
        if self.time_to_live.is_zero() {
            return None;
        }
        let entries = self.entries.lock().expect("key cache lock poisoned");
        let cached = entries.get(key_hash)?;
        (cached.fetched_at.elapsed() < self.time_to_live).then(|| cached.record.clone())
    }

    fn remember(&self, key_hash: [u8; 32], record: Arc<ApiKeyRecord>) {
        if self.time_to_live.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().expect("key cache lock poisoned");
        if entries.len() >= MAX_CACHED_KEYS {
            entries.clear();
        }
        entries.insert(
            key_hash,
            CachedKey {
                record,
                fetched_at: Instant::now(),
            },
        );
    }
}

/// Finds the active key presented in the `Authorization` header.
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Arc<ApiKeyRecord>, ApiError> {
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
    if let Some(record) = state.api_key_cache().get(&key_hash) {
        return Ok(record);
    }
    match state.store().find_api_key_by_hash(&key_hash).await? {
        Some(record) if record.is_active() => {
            let record = Arc::new(record);
            state.api_key_cache().remember(key_hash, record.clone());
            Ok(record)
        }
        _ => Err(INVALID_KEY),
    }
}

/// A request made with an active key that has the `ingest` scope.
pub struct IngestKey(pub Arc<ApiKeyRecord>);

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
    pub key: Arc<ApiKeyRecord>,
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
            KeyOwner::Account(account) => {
                state.limiter().check_read(&record.key_id, account)?;
                Ok(ReadAccount {
                    account: account.clone(),
                    key: record,
                })
            }
            KeyOwner::Platform => Err(ApiError::forbidden(
                "a platform key belongs to no account and cannot read events; use an account key",
            )),
        }
    }
}
