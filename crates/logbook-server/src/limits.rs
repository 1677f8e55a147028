//! Fair limits: what one account (or one key) may take from a shared server, so a misbehaving
//! client slows only itself.
//!
//! - Token buckets (GCRA, `governor`) per key and per account, for ingest and for reads. Ingest
//!   buckets count events, not requests, so one batch of 1000 costs what 1000 single-event
//!   requests cost. A request over either bucket is refused whole with 429 and `Retry-After`
//!   before anything is stored, so every event a 2xx acknowledged is durable as always and no
//!   event of a refused request is half-written.
//! - Counters of open exports and open live tails per account, each released when its answer's
//!   stream is dropped (finished, failed or disconnected).
//!
//! Per-account overrides replace the defaults for the accounts they name. They come from two
//! places, field by field: the database (`logbook limits set`, shared by every node) wins over the
//! configuration file (`[limits.accounts.NAME]`), which wins over the `[limits]` defaults.
//! `run_stored_override_refresher` rereads the database every few seconds, so a change reaches a
//! running server without a restart and no request reads the database for its limits. A rate of
//! zero turns that bucket off.

use logbook_core::ids::ApiKeyId;
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use logbook_core::AccountId;
use logbook_core::store::StoredAccountLimits;

use crate::state::AppState;

/// How often a server rereads the limit overrides stored in the database.
pub const STORED_OVERRIDE_REFRESH_INTERVAL: Duration = Duration::from_secs(3);

use crate::error::ApiError;

/// The rates and bounds one account gets. `Default` holds the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountLimits {
    /// Events per second an account may ingest (all its keys together); 0 = unlimited.
    pub ingest_events_per_second: u32,
    /// Events an account may send at once above its rate (at least one full batch).
    pub ingest_event_burst: u32,
    /// Read requests (queries, single events, exports, tails, proofs) per second; 0 = unlimited.
    pub reads_per_second: u32,
    /// Read requests an account may send at once above its rate.
    pub read_burst: u32,
    /// Exports streaming at the same time for one account.
    pub max_concurrent_exports: usize,
    /// Live tails (API and web page) open at the same time for one account.
    pub max_live_tails: usize,
}

impl Default for AccountLimits {
    fn default() -> Self {
        Self {
            ingest_events_per_second: 10_000,
            ingest_event_burst: 50_000,
            reads_per_second: 50,
            read_burst: 200,
            max_concurrent_exports: 4,
            max_live_tails: 16,
        }
    }
}

/// Every limit the server enforces per account and per key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitSettings {
    /// What every account gets unless `account_overrides` names it.
    pub account_defaults: AccountLimits,
    /// Events per second one key may ingest; 0 = unlimited. A platform key writes for many
    /// accounts, so its own bucket is usually larger than an account's.
    pub ingest_events_per_second_per_key: u32,
    pub ingest_event_burst_per_key: u32,
    /// Read requests per second one key may make; 0 = unlimited.
    pub reads_per_second_per_key: u32,
    pub read_burst_per_key: u32,
    /// Accounts with their own limits from the configuration file (the database's overrides,
    /// applied by `Limiter::apply_stored_overrides`, win over these field by field).
    pub account_overrides: HashMap<AccountId, AccountLimits>,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            account_defaults: AccountLimits::default(),
            ingest_events_per_second_per_key: 50_000,
            ingest_event_burst_per_key: 100_000,
            reads_per_second_per_key: 50,
            read_burst_per_key: 200,
            account_overrides: HashMap::new(),
        }
    }
}

fn quota(per_second: u32, burst: u32) -> Option<Quota> {
    let per_second = NonZeroU32::new(per_second)?;
    // A burst below the rate would make the bucket refuse what the rate allows.
    let burst = NonZeroU32::new(burst.max(per_second.get())).unwrap_or(per_second);
    Some(Quota::per_second(per_second).allow_burst(burst))
}

/// The buckets of one account with its own limits.
struct OverriddenAccount {
    limits: AccountLimits,
    ingest: Option<DefaultDirectRateLimiter>,
    reads: Option<DefaultDirectRateLimiter>,
}

impl OverriddenAccount {
    fn new(limits: AccountLimits) -> Self {
        let direct = |per_second, burst| quota(per_second, burst).map(RateLimiter::direct);
        Self {
            ingest: direct(limits.ingest_events_per_second, limits.ingest_event_burst),
            reads: direct(limits.reads_per_second, limits.read_burst),
            limits,
        }
    }
}

/// `base` with every field `stored` sets replaced by the stored value.
fn with_stored_fields(mut base: AccountLimits, stored: &StoredAccountLimits) -> AccountLimits {
    let count = |value: u32| usize::try_from(value).unwrap_or(usize::MAX);
    if let Some(value) = stored.ingest_events_per_second {
        base.ingest_events_per_second = value;
    }
    if let Some(value) = stored.ingest_event_burst {
        base.ingest_event_burst = value;
    }
    if let Some(value) = stored.reads_per_second {
        base.reads_per_second = value;
    }
    if let Some(value) = stored.read_burst {
        base.read_burst = value;
    }
    if let Some(value) = stored.max_concurrent_exports {
        base.max_concurrent_exports = count(value);
    }
    if let Some(value) = stored.max_live_tails {
        base.max_live_tails = count(value);
    }
    base
}

/// The live state of every limit. One per server, shared by every request.
pub struct Limiter {
    defaults: AccountLimits,
    ingest_by_account: Option<DefaultKeyedRateLimiter<AccountId>>,
    reads_by_account: Option<DefaultKeyedRateLimiter<AccountId>>,
    ingest_by_key: Option<DefaultKeyedRateLimiter<ApiKeyId>>,
    reads_by_key: Option<DefaultKeyedRateLimiter<ApiKeyId>>,
    /// The configuration file's overrides, kept to rebuild `overridden` when the stored ones change.
    configured_overrides: HashMap<AccountId, AccountLimits>,
    /// Every account with limits of its own (configured or stored), with its own buckets. Replaced
    /// whole, under a short write lock, only when the stored overrides change.
    overridden: RwLock<HashMap<AccountId, Arc<OverriddenAccount>>>,
    open_exports: Arc<Mutex<HashMap<AccountId, usize>>>,
    open_tails: Arc<Mutex<HashMap<AccountId, usize>>>,
    /// Accounts whose ingest an operator turned off (`accounts.ingest_enabled`), reread with the
    /// stored overrides and changed at once on the node that changed it.
    ingest_disabled: RwLock<HashSet<AccountId>>,
    clock: DefaultClock,
}

/// Which bucket refused a request, for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    AccountIngest,
    KeyIngest,
    AccountReads,
    KeyReads,
    /// Viewer sessions made for one account (`web::viewer::ViewerSessionThrottle`).
    AccountViewerSessions,
    /// Viewer sessions made with one key.
    KeyViewerSessions,
}

impl LimitScope {
    pub fn describe(self) -> &'static str {
        match self {
            LimitScope::AccountIngest => "this account's ingest rate (events per second)",
            LimitScope::KeyIngest => "this API key's ingest rate (events per second)",
            LimitScope::AccountReads => "this account's read rate (requests per second)",
            LimitScope::KeyReads => "this API key's read rate (requests per second)",
            LimitScope::AccountViewerSessions => {
                "this account's rate of new viewer sessions (per minute)"
            }
            LimitScope::KeyViewerSessions => {
                "this API key's rate of new viewer sessions (per minute)"
            }
        }
    }
}

impl Limiter {
    pub fn new(settings: &LimitSettings) -> Self {
        let defaults = settings.account_defaults.clone();
        let overridden = settings
            .account_overrides
            .iter()
            .map(|(account, limits)| {
                (
                    account.clone(),
                    Arc::new(OverriddenAccount::new(limits.clone())),
                )
            })
            .collect();
        Self {
            ingest_by_account: quota(
                defaults.ingest_events_per_second,
                defaults.ingest_event_burst,
            )
            .map(RateLimiter::keyed),
            reads_by_account: quota(defaults.reads_per_second, defaults.read_burst)
                .map(RateLimiter::keyed),
            ingest_by_key: quota(
                settings.ingest_events_per_second_per_key,
                settings.ingest_event_burst_per_key,
            )
            .map(RateLimiter::keyed),
            reads_by_key: quota(
                settings.reads_per_second_per_key,
                settings.read_burst_per_key,
            )
            .map(RateLimiter::keyed),
            defaults,
            configured_overrides: settings.account_overrides.clone(),
            overridden: RwLock::new(overridden),
            open_exports: Arc::default(),
            open_tails: Arc::default(),
            ingest_disabled: RwLock::default(),
            clock: DefaultClock::default(),
        }
    }

    /// Replaces the set of accounts whose ingest is off with what the store says now.
    pub fn apply_ingest_disabled(&self, accounts: Vec<AccountId>) {
        *self
            .ingest_disabled
            .write()
            .expect("ingest switch lock poisoned") = accounts.into_iter().collect();
    }

    /// Notes one account's switch at once, on the node that changed it in the store (other
    /// nodes see it at their next reread).
    pub fn note_ingest_enabled(&self, account: &AccountId, enabled: bool) {
        let mut disabled = self
            .ingest_disabled
            .write()
            .expect("ingest switch lock poisoned");
        if enabled {
            disabled.remove(account);
        } else {
            disabled.insert(account.clone());
        }
    }

    /// Refuses (403 `account_ingest_disabled`) a request with an event for an account whose
    /// ingest is off, before anything of it is stored.
    pub fn check_ingest_enabled<'account>(
        &self,
        accounts: impl IntoIterator<Item = &'account AccountId>,
    ) -> Result<(), ApiError> {
        let disabled = self
            .ingest_disabled
            .read()
            .expect("ingest switch lock poisoned");
        if disabled.is_empty() {
            return Ok(());
        }
        match accounts
            .into_iter()
            .find(|account| disabled.contains(*account))
        {
            Some(account) => Err(ApiError::IngestDisabled {
                account: account.clone(),
            }),
            None => Ok(()),
        }
    }

    /// The account's own buckets, if it has limits of its own.
    fn overridden_account(&self, account: &AccountId) -> Option<Arc<OverriddenAccount>> {
        self.overridden
            .read()
            .expect("limit overrides lock poisoned")
            .get(account)
            .cloned()
    }

    /// The limits `account` gets now: defaults, then the configuration file's override, then the
    /// database's, field by field.
    pub fn limits_of(&self, account: &AccountId) -> AccountLimits {
        self.overridden_account(account).map_or_else(
            || self.defaults.clone(),
            |overridden| overridden.limits.clone(),
        )
    }

    /// The limits `account` gets with `stored` as its stored overrides (what `limits_of` says
    /// once the refresher has read them), and whether the configuration file names the account.
    pub fn limits_given_stored(
        &self,
        account: &AccountId,
        stored: &StoredAccountLimits,
    ) -> (AccountLimits, bool) {
        let configured = self.configured_overrides.get(account);
        let base = configured.cloned().unwrap_or_else(|| self.defaults.clone());
        (with_stored_fields(base, stored), configured.is_some())
    }

    /// Applies the overrides stored in the database (`logbook limits set`) on top of the
    /// configuration file's. An account whose resulting limits did not change keeps its buckets
    /// (and so what it already used); one whose limits changed starts with full new buckets; an
    /// account whose stored override was cleared falls back to its configured limits.
    pub fn apply_stored_overrides(&self, stored: &[(AccountId, StoredAccountLimits)]) {
        let mut wanted: HashMap<AccountId, AccountLimits> = self.configured_overrides.clone();
        for (account, stored_limits) in stored {
            let base = wanted
                .get(account)
                .cloned()
                .unwrap_or_else(|| self.defaults.clone());
            wanted.insert(account.clone(), with_stored_fields(base, stored_limits));
        }
        let unchanged = {
            let current = self
                .overridden
                .read()
                .expect("limit overrides lock poisoned");
            current.len() == wanted.len()
                && wanted.iter().all(|(account, limits)| {
                    current
                        .get(account)
                        .is_some_and(|existing| existing.limits == *limits)
                })
        };
        if unchanged {
            return;
        }
        let mut current = self
            .overridden
            .write()
            .expect("limit overrides lock poisoned");
        let rebuilt = wanted
            .into_iter()
            .map(|(account, limits)| {
                let buckets = match current.get(&account) {
                    Some(existing) if existing.limits == limits => existing.clone(),
                    _ => Arc::new(OverriddenAccount::new(limits)),
                };
                (account, buckets)
            })
            .collect();
        *current = rebuilt;
        tracing::info!(
            accounts_with_own_limits = current.len(),
            "applied changed per-account limit overrides"
        );
    }

    /// Takes one read from the key's and the account's buckets, or says how long to wait.
    pub fn check_read(&self, key_id: &ApiKeyId, account: &AccountId) -> Result<(), ApiError> {
        if let Some(limiter) = &self.reads_by_key
            && let Err(not_until) = limiter.check_key(key_id)
        {
            return Err(self.refusal(
                LimitScope::KeyReads,
                not_until.wait_time_from(self.clock.now()),
            ));
        }
        let refusal = match self.overridden_account(account) {
            Some(overridden) => overridden
                .reads
                .as_ref()
                .and_then(|limiter| limiter.check().err()),
            None => self
                .reads_by_account
                .as_ref()
                .and_then(|limiter| limiter.check_key(account).err()),
        };
        match refusal {
            Some(not_until) => Err(self.refusal(
                LimitScope::AccountReads,
                not_until.wait_time_from(self.clock.now()),
            )),
            None => Ok(()),
        }
    }

    /// Takes `event_count` events from the key's bucket and, for each account, its count from
    /// the account's bucket. `per_account` holds each account once.
    pub fn check_ingest(
        &self,
        key_id: &ApiKeyId,
        event_count: u32,
        per_account: &[(&AccountId, u32)],
    ) -> Result<(), ApiError> {
        if let (Some(limiter), Some(count)) = (&self.ingest_by_key, NonZeroU32::new(event_count)) {
            match limiter.check_key_n(key_id, count) {
                Ok(Ok(())) => {}
                Ok(Err(not_until)) => {
                    return Err(self.refusal(
                        LimitScope::KeyIngest,
                        not_until.wait_time_from(self.clock.now()),
                    ));
                }
                Err(_insufficient) => return Err(batch_larger_than_burst(LimitScope::KeyIngest)),
            }
        }
        for (account, count) in per_account {
            let Some(count) = NonZeroU32::new(*count) else {
                continue;
            };
            let outcome = match self.overridden_account(account) {
                Some(overridden) => overridden
                    .ingest
                    .as_ref()
                    .map(|limiter| limiter.check_n(count)),
                None => self
                    .ingest_by_account
                    .as_ref()
                    .map(|limiter| limiter.check_key_n(account, count)),
            };
            match outcome {
                None | Some(Ok(Ok(()))) => {}
                Some(Ok(Err(not_until))) => {
                    return Err(self.refusal(
                        LimitScope::AccountIngest,
                        not_until.wait_time_from(self.clock.now()),
                    ));
                }
                Some(Err(_insufficient)) => {
                    return Err(batch_larger_than_burst(LimitScope::AccountIngest));
                }
            }
        }
        Ok(())
    }

    fn refusal(&self, scope: LimitScope, wait: Duration) -> ApiError {
        metrics::counter!("logbook_rate_limited_total", "scope" => scope_label(scope)).increment(1);
        // Whole seconds, rounded up, and never 0: `Retry-After: 0` invites an immediate retry.
        let retry_after_seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ApiError::RateLimited {
            scope,
            retry_after_seconds: retry_after_seconds.max(1),
        }
    }

    /// Opens one export for `account`, or refuses it (429) when it already has its maximum.
    pub fn open_export(&self, account: &AccountId) -> Result<OpenSlot, ApiError> {
        let maximum = self.limits_of(account).max_concurrent_exports;
        OpenSlot::take(&self.open_exports, account, maximum).ok_or(ApiError::TooManyOpen {
            code: "too_many_exports",
            message: format!(
                "this account already has {maximum} exports streaming; wait for one to finish"
            ),
        })
    }

    /// Opens one live tail for `account`, or refuses it (429) when it already has its maximum.
    pub fn open_tail(&self, account: &AccountId) -> Result<OpenSlot, ApiError> {
        let maximum = self.limits_of(account).max_live_tails;
        OpenSlot::take(&self.open_tails, account, maximum).ok_or(ApiError::TooManyOpen {
            code: "too_many_live_tails",
            message: format!("this account already has {maximum} live tails open; close one first"),
        })
    }
}

/// Rereads the limit overrides stored in the database every `STORED_OVERRIDE_REFRESH_INTERVAL`
/// (the first time at once) until shutdown. A failed read keeps the overrides in force and is
/// logged; the next round tries again.
pub async fn run_stored_override_refresher(state: AppState) {
    let shutdown = state.shutdown_signal();
    let mut ticker = tokio::time::interval(STORED_OVERRIDE_REFRESH_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = ticker.tick() => {
                match state.store().account_limits().stored_account_limits().await {
                    Ok(stored) => state.limiter().apply_stored_overrides(&stored),
                    Err(error) => tracing::warn!(
                        %error,
                        "could not reread the per-account limit overrides; the previous ones stay in force"
                    ),
                }
                match state.store().accounts().ingest_disabled_accounts().await {
                    Ok(disabled) => state.limiter().apply_ingest_disabled(disabled),
                    Err(error) => tracing::warn!(
                        %error,
                        "could not reread which accounts have ingest turned off; the previous set stays in force"
                    ),
                }
            }
        }
    }
}

fn scope_label(scope: LimitScope) -> &'static str {
    match scope {
        LimitScope::AccountIngest => "account_ingest",
        LimitScope::KeyIngest => "key_ingest",
        LimitScope::AccountReads => "account_reads",
        LimitScope::KeyReads => "key_reads",
        LimitScope::AccountViewerSessions => "account_viewer_sessions",
        LimitScope::KeyViewerSessions => "key_viewer_sessions",
    }
}

fn batch_larger_than_burst(scope: LimitScope) -> ApiError {
    ApiError::PayloadTooLarge {
        code: "batch_exceeds_rate_limit",
        message: format!(
            "this batch holds more events than {} allows at once; send smaller batches",
            scope.describe()
        ),
    }
}

/// One open export or live tail of an account; dropping it frees the place.
pub struct OpenSlot {
    counts: Arc<Mutex<HashMap<AccountId, usize>>>,
    account: AccountId,
}

impl OpenSlot {
    fn take(
        counts: &Arc<Mutex<HashMap<AccountId, usize>>>,
        account: &AccountId,
        maximum: usize,
    ) -> Option<Self> {
        let mut open = counts.lock().expect("open slot counts poisoned");
        let count = open.entry(account.clone()).or_insert(0);
        if *count >= maximum {
            return None;
        }
        *count += 1;
        Some(Self {
            counts: counts.clone(),
            account: account.clone(),
        })
    }
}

impl Drop for OpenSlot {
    fn drop(&mut self) {
        let mut open = self.counts.lock().expect("open slot counts poisoned");
        if let Some(count) = open.get_mut(&self.account) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                // Keeps the map as small as the set of accounts with something open.
                open.remove(&self.account);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(name: &str) -> AccountId {
        AccountId::parse(name).unwrap()
    }

    #[test]
    fn reads_beyond_the_burst_are_refused_with_a_retry_after_of_at_least_one_second() {
        let mut settings = LimitSettings::default();
        settings.account_defaults.reads_per_second = 1;
        settings.account_defaults.read_burst = 3;
        let limiter = Limiter::new(&settings);
        let acme = account("acme");
        for _ in 0..3 {
            limiter.check_read(&"key_a".into(), &acme).unwrap();
        }
        match limiter.check_read(&"key_a".into(), &acme) {
            Err(ApiError::RateLimited {
                scope,
                retry_after_seconds,
            }) => {
                assert_eq!(scope, LimitScope::AccountReads);
                assert!(retry_after_seconds >= 1);
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        // Another account has its own bucket.
        limiter
            .check_read(&"key_b".into(), &account("globex"))
            .unwrap();
    }

    #[test]
    fn ingest_counts_events_and_an_override_replaces_the_default() {
        let mut settings = LimitSettings::default();
        settings.account_defaults.ingest_events_per_second = 10;
        settings.account_defaults.ingest_event_burst = 10;
        let generous = AccountLimits {
            ingest_events_per_second: 1000,
            ingest_event_burst: 1000,
            ..AccountLimits::default()
        };
        settings.account_overrides.insert(account("big"), generous);
        let limiter = Limiter::new(&settings);
        let small = account("small");
        limiter
            .check_ingest(&"key_s".into(), 8, &[(&small, 8)])
            .unwrap();
        assert!(matches!(
            limiter.check_ingest(&"key_s".into(), 8, &[(&small, 8)]),
            Err(ApiError::RateLimited { .. })
        ));
        let big = account("big");
        limiter
            .check_ingest(&"key_b".into(), 500, &[(&big, 500)])
            .unwrap();
    }

    #[test]
    fn a_stored_override_wins_over_the_configured_one_field_by_field_and_clearing_it_falls_back() {
        let mut settings = LimitSettings::default();
        settings.account_defaults.reads_per_second = 1;
        settings.account_defaults.read_burst = 1;
        let configured = AccountLimits {
            reads_per_second: 7,
            read_burst: 7,
            max_concurrent_exports: 3,
            ..AccountLimits::default()
        };
        settings
            .account_overrides
            .insert(account("configured"), configured.clone());
        let limiter = Limiter::new(&settings);
        let stored = StoredAccountLimits {
            read_burst: Some(2),
            ..StoredAccountLimits::default()
        };
        limiter.apply_stored_overrides(&[
            (account("configured"), stored.clone()),
            (account("plain"), stored.clone()),
        ]);
        // The stored field wins; the configured fields it does not name stay.
        let effective = limiter.limits_of(&account("configured"));
        assert_eq!(effective.read_burst, 2);
        assert_eq!(effective.reads_per_second, 7);
        assert_eq!(effective.max_concurrent_exports, 3);
        // An account without a configured override gets the defaults under the stored field.
        assert_eq!(limiter.limits_of(&account("plain")).reads_per_second, 1);
        let plain = account("plain");
        limiter.check_read(&"key_p".into(), &plain).unwrap();
        limiter.check_read(&"key_p".into(), &plain).unwrap();
        assert!(
            limiter.check_read(&"key_p".into(), &plain).is_err(),
            "the stored burst of 2 applies at once"
        );

        // Clearing the stored overrides: back to the configuration file and the defaults.
        limiter.apply_stored_overrides(&[]);
        assert_eq!(limiter.limits_of(&account("configured")), configured);
        assert_eq!(limiter.limits_of(&plain), settings.account_defaults);
    }

    #[test]
    fn reapplying_unchanged_overrides_keeps_what_the_account_already_used() {
        let limiter = Limiter::new(&LimitSettings::default());
        let stored = vec![(
            account("acme"),
            StoredAccountLimits {
                reads_per_second: Some(1),
                read_burst: Some(1),
                ..StoredAccountLimits::default()
            },
        )];
        limiter.apply_stored_overrides(&stored);
        limiter
            .check_read(&"key_a".into(), &account("acme"))
            .unwrap();
        // The refresher applies the same list again a few seconds later: the spent bucket stays.
        limiter.apply_stored_overrides(&stored);
        assert!(
            limiter
                .check_read(&"key_a".into(), &account("acme"))
                .is_err()
        );
    }

    #[test]
    fn open_slots_are_bounded_and_freed_when_dropped() {
        let mut settings = LimitSettings::default();
        settings.account_defaults.max_concurrent_exports = 2;
        let limiter = Limiter::new(&settings);
        let acme = account("acme");
        let first = limiter.open_export(&acme).unwrap();
        let _second = limiter.open_export(&acme).unwrap();
        assert!(limiter.open_export(&acme).is_err());
        drop(first);
        assert!(limiter.open_export(&acme).is_ok());
    }
}
