//! API key authentication. A key is accepted only in `Authorization: Bearer lbk_...`; its SHA-256
//! is looked up in the store. Missing, malformed, unknown and revoked keys all get the same 401 so
//! an answer never tells which keys exist. The extractors here also check the key's scope (403).
//!
//! Active keys are remembered for `ServerSettings::api_key_cache_ttl` (1 s by default) so the
//! ingest hot path does not pay a database round trip per request; a revoked key therefore stops
//! working on every node within that time. Unknown and revoked keys are never remembered.
//!
//! When each key was last used is kept here too (`ApiKeyUsage`), in memory: authenticating never
//! writes to the database. `run_key_usage_flusher` writes a key's newest use to the store at most
//! once per `KEY_USAGE_FLUSH_INTERVAL`, and `serve` writes what is left when it stops.

use logbook_core::ids::ApiKeyId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use logbook_core::api_key::{ApiKeyRecord, KEY_PREFIX, KeyOwner, hash_presented_key};
use logbook_core::{AccountId, Store};
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::state::{AppState, ShutdownSignal};

const INVALID_KEY: ApiError = ApiError::Unauthenticated {
    message: "a valid API key is required: send Authorization: Bearer lbk_...",
};

/// Longest key text worth hashing; real keys are 32 characters.
const MAX_PRESENTED_KEY_BYTES: usize = 128;

/// Active keys recently found in the store, by the SHA-256 of the presented key.
pub struct ApiKeyCache {
    time_to_live: Duration,
    entries: Mutex<HashMap<[u8; 32], CachedKey>>,
    usage: Arc<ApiKeyUsage>,
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
            usage: Arc::new(ApiKeyUsage::default()),
        }
    }

    /// When this node last saw each key used, and what of that the store has not been told yet.
    pub fn usage(&self) -> &Arc<ApiKeyUsage> {
        &self.usage
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

/// How a request may present its key in the `Authorization` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPresentation {
    /// `Authorization: Bearer lbk_...`, the only form Logbook's own API takes.
    Bearer,
    /// Also `Authorization: token=lbk_...` and `Token token=lbk_...`, the forms Retraced's
    /// publisher clients send (`api::producers::retraced`). Still only the `Authorization` header.
    BearerOrRetracedToken,
}

/// Finds the active key presented in the `Authorization` header.
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Arc<ApiKeyRecord>, ApiError> {
    authenticate_headers(&parts.headers, state, KeyPresentation::Bearer).await
}

/// Finds the active key presented in `headers` as `presentation` allows.
pub async fn authenticate_headers(
    headers: &HeaderMap,
    state: &AppState,
    presentation: KeyPresentation,
) -> Result<Arc<ApiKeyRecord>, ApiError> {
    let header_value = headers.get(header::AUTHORIZATION).ok_or(INVALID_KEY)?;
    let header_text = header_value.to_str().map_err(|_| INVALID_KEY)?;
    let presented_key = presented_key(header_text, presentation).ok_or(INVALID_KEY)?;
    if !presented_key.starts_with(KEY_PREFIX) || presented_key.len() > MAX_PRESENTED_KEY_BYTES {
        return Err(INVALID_KEY);
    }
    let key_hash = hash_presented_key(presented_key);
    let record = match state.api_key_cache().get(&key_hash) {
        Some(record) => record,
        None => match state.store().find_api_key_by_hash(&key_hash).await? {
            Some(record) if record.is_active() => {
                let record = Arc::new(record);
                state.api_key_cache().remember(key_hash, record.clone());
                record
            }
            _ => return Err(INVALID_KEY),
        },
    };
    state
        .api_key_cache()
        .usage()
        .record_use(&record.key_id, state.clock().now());
    Ok(record)
}

/// The key text of an `Authorization` header value, if it has a form `presentation` allows.
fn presented_key(header_text: &str, presentation: KeyPresentation) -> Option<&str> {
    if let Some((scheme, key)) = header_text.split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
    {
        return Some(key.trim());
    }
    if presentation == KeyPresentation::BearerOrRetracedToken {
        // Retraced's clients send `token=KEY` for events and `Token token=KEY` elsewhere.
        let text = header_text.trim();
        let text = match text.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("token") => rest.trim_start(),
            _ => text,
        };
        return text.strip_prefix("token=").map(str::trim);
    }
    None
}

/// An active key with the `ingest` scope presented in `headers` as `presentation` allows: how
/// the producer protocols (`api::producers`) authenticate, so they can answer a refusal in their
/// own error shape.
pub async fn ingest_key_from_headers(
    headers: &HeaderMap,
    state: &AppState,
    presentation: KeyPresentation,
) -> Result<Arc<ApiKeyRecord>, ApiError> {
    let record = authenticate_headers(headers, state, presentation).await?;
    if !record.scopes.ingest {
        return Err(ApiError::forbidden(
            "this API key does not have the ingest scope",
        ));
    }
    Ok(record)
}

/// The shortest time between two writes of one key's last use to the store.
pub const KEY_USAGE_FLUSH_INTERVAL: Duration = Duration::from_secs(60);

/// How often the flusher looks for uses due to be written. Shorter than the flush interval so a
/// key's first use reaches the store (and other nodes' pages) within seconds.
const KEY_USAGE_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// Bounds the memory of `ApiKeyUsage`; see `ApiKeyUsage::record_use`.
const MAX_TRACKED_KEYS: usize = 100_000;

/// When each key was last used on this node, by key id.
#[derive(Default)]
pub struct ApiKeyUsage {
    entries: Mutex<HashMap<ApiKeyId, KeyUse>>,
}

struct KeyUse {
    last_used_at: OffsetDateTime,
    /// Whether `last_used_at` is newer than what this node last wrote to the store.
    unwritten: bool,
    /// When this key's use was last written to the store (`None`: not yet).
    written_at: Option<Instant>,
}

impl ApiKeyUsage {
    /// Notes a use of `key_id` at `used_at`. This runs on every authenticated request, so it only
    /// takes a lock and updates a map entry (allocating only for a key's first use).
    pub fn record_use(&self, key_id: &ApiKeyId, used_at: OffsetDateTime) {
        let mut entries = self.entries.lock().expect("key usage lock poisoned");
        if let Some(key_use) = entries.get_mut(key_id) {
            if used_at > key_use.last_used_at {
                key_use.last_used_at = used_at;
                key_use.unwritten = true;
            }
            return;
        }
        if entries.len() >= MAX_TRACKED_KEYS {
            // Uses already written are in the store; forgetting them only costs a lookup later.
            entries.retain(|_, key_use| key_use.unwritten);
            if entries.len() >= MAX_TRACKED_KEYS {
                return;
            }
        }
        entries.insert(
            key_id.clone(),
            KeyUse {
                last_used_at: used_at,
                unwritten: true,
                written_at: None,
            },
        );
    }

    /// The newest use of `key_id` this node has seen, written to the store or not.
    pub fn last_use_of(&self, key_id: &ApiKeyId) -> Option<OffsetDateTime> {
        let entries = self.entries.lock().expect("key usage lock poisoned");
        entries.get(key_id).map(|key_use| key_use.last_used_at)
    }

    /// Takes the uses to write now: every unwritten one when `everything`, otherwise those of keys
    /// not written within `KEY_USAGE_FLUSH_INTERVAL`. They count as written from here on.
    fn take_due(&self, everything: bool) -> Vec<(ApiKeyId, OffsetDateTime)> {
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("key usage lock poisoned");
        let mut due = Vec::new();
        for (key_id, key_use) in entries.iter_mut() {
            let interval_passed = key_use.written_at.is_none_or(|written_at| {
                now.duration_since(written_at) >= KEY_USAGE_FLUSH_INTERVAL
            });
            if key_use.unwritten && (everything || interval_passed) {
                key_use.unwritten = false;
                key_use.written_at = Some(now);
                due.push((key_id.clone(), key_use.last_used_at));
            }
        }
        due
    }

    /// Marks uses whose write failed as unwritten again, so the next round retries them.
    fn give_back(&self, failed: Vec<(ApiKeyId, OffsetDateTime)>) {
        let mut entries = self.entries.lock().expect("key usage lock poisoned");
        for (key_id, _) in failed {
            if let Some(key_use) = entries.get_mut(&key_id) {
                key_use.unwritten = true;
                key_use.written_at = None;
            }
        }
    }

    /// Writes the due uses (all unwritten ones when `everything`) to the store; returns how many.
    pub async fn flush(&self, store: &dyn Store, everything: bool) -> usize {
        let due = self.take_due(everything);
        if due.is_empty() {
            return 0;
        }
        match store.record_api_key_use(&due).await {
            Ok(()) => due.len(),
            Err(error) => {
                tracing::warn!(%error, key_count = due.len(), "could not record when API keys were last used; will retry");
                self.give_back(due);
                0
            }
        }
    }
}

/// Writes due key uses to the store every few seconds until `shutdown` is raised. `serve` writes
/// the rest after the last request is answered.
pub async fn run_key_usage_flusher(
    store: Arc<dyn Store>,
    usage: Arc<ApiKeyUsage>,
    shutdown: ShutdownSignal,
) {
    let mut ticker = tokio::time::interval(KEY_USAGE_CHECK_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = ticker.tick() => {
                usage.flush(store.as_ref(), false).await;
            }
        }
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
        ingest_key_from_headers(&parts.headers, state, KeyPresentation::Bearer)
            .await
            .map(IngestKey)
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

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn a_key_is_written_at_most_once_per_interval_but_everything_is_written_at_stop() {
        let usage = ApiKeyUsage::default();
        let first_use = datetime!(2024-06-01 09:00 UTC);
        usage.record_use(&"key_a".into(), first_use);
        usage.record_use(&"key_a".into(), first_use - time::Duration::seconds(5));
        assert_eq!(
            usage.take_due(false),
            vec![(ApiKeyId::from("key_a"), first_use)],
            "a first use is due at once, and an older use never replaces a newer one"
        );

        let second_use = first_use + time::Duration::seconds(10);
        usage.record_use(&"key_a".into(), second_use);
        assert_eq!(usage.last_use_of(&"key_a".into()), Some(second_use));
        assert!(
            usage.take_due(false).is_empty(),
            "a key written less than a minute ago waits"
        );
        assert_eq!(
            usage.take_due(true),
            vec![(ApiKeyId::from("key_a"), second_use)],
            "a stop writes what is left"
        );
        assert!(usage.take_due(true).is_empty(), "nothing is written twice");
    }

    #[test]
    fn retraced_token_forms_are_accepted_only_where_retraced_clients_send_them() {
        let bearer = KeyPresentation::Bearer;
        let retraced = KeyPresentation::BearerOrRetracedToken;
        assert_eq!(presented_key("Bearer lbk_a", bearer), Some("lbk_a"));
        assert_eq!(presented_key("bearer  lbk_a ", retraced), Some("lbk_a"));
        assert_eq!(presented_key("token=lbk_a", bearer), None);
        assert_eq!(presented_key("token=lbk_a", retraced), Some("lbk_a"));
        assert_eq!(presented_key("Token token=lbk_a", retraced), Some("lbk_a"));
        assert_eq!(presented_key("Basic token=lbk_a", retraced), None);
        assert_eq!(presented_key("lbk_a", retraced), None);
    }

    #[test]
    fn uses_whose_write_failed_are_written_again() {
        let usage = ApiKeyUsage::default();
        let used_at = datetime!(2024-06-01 09:00 UTC);
        usage.record_use(&"key_a".into(), used_at);
        let due = usage.take_due(false);
        assert_eq!(due.len(), 1);
        usage.give_back(due);
        assert_eq!(
            usage.take_due(false),
            vec![(ApiKeyId::from("key_a"), used_at)]
        );
    }
}
