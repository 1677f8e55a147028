//! The `Store` trait and everything it is made of: `StoreError`, and one trait per part of what
//! Logbook keeps (people, alerting, attention, known networks, limits, the verifiable log), each
//! reached through a `Store` method. Each backend crate implements them and `logbook-testkit`'s
//! conformance suite checks every backend alike; handlers only ever see an `Arc<dyn Store>`.
//!
//! The domain modules (`people`, `alerting`, `attention`, `unfamiliar_ip`) define the records
//! these traits take and return, and never import this module back.

use std::path::Path;

use async_trait::async_trait;
use futures::stream::BoxStream;
use time::OffsetDateTime;

use crate::account::AccountId;
use crate::api_key::{ApiKeyRecord, KeyOwner, Scopes};
use crate::cursor::CursorPosition;
use crate::event::{EventRow, NewEvent};
use crate::ids::{ApiKeyId, EventId};
use crate::query::Query;
use crate::timeline::{BucketCount, TimeBucket};

mod accounts;
mod alerting;
mod attention;
mod location;
mod people;
mod retention;
mod single_sign_on;
mod unfamiliar_ip;
mod viewer;

pub use accounts::AccountSettingsStore;
pub use alerting::AlertingStore;
pub use attention::AttentionStore;
pub use location::LocationStore;
pub use people::PeopleStore;
pub use retention::RetentionStore;
pub use single_sign_on::SingleSignOnStore;
pub use unfamiliar_ip::UnfamiliarIpStore;
pub use viewer::ViewerSessionStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("account {0} already exists")]
    AccountAlreadyExists(AccountId),
    #[error("account {0} does not exist")]
    AccountNotFound(AccountId),
    #[error("API key {0} does not exist")]
    ApiKeyNotFound(ApiKeyId),
    #[error("user {0} does not exist")]
    UserNotFound(crate::ids::UserId),
    #[error("{email} is already a user of account {account}")]
    UserAlreadyExists { account: AccountId, email: String },
    /// A rule named a destination that is not one of its account's.
    #[error("destination {0} does not exist")]
    DestinationNotFound(crate::ids::DestinationId),
    /// The database refused a write because it is full; nothing of the write was committed.
    #[error("storage is full: {0}")]
    StorageFull(String),
    /// The data directory is already in use by another `logbook` process.
    #[error("{0}")]
    Locked(String),
    /// The store stopped accepting writes (shutting down, or a previous commit failed).
    #[error("store is not accepting writes: {0}")]
    Unavailable(String),
    /// A per-account stored-volume quota (`crate::volume_quota`) refused a whole request;
    /// nothing of it was stored. `retry_after_seconds` is set for the per-day quota only.
    #[error("{}", crate::volume_quota::refusal_message(.account, *.field, *.limit))]
    VolumeQuotaExceeded {
        account: AccountId,
        field: crate::volume_quota::VolumeQuotaField,
        limit: u64,
        retry_after_seconds: Option<u64>,
    },
    /// The account is under legal hold: nothing of it may be pruned or erased.
    #[error(
        "account {0} is under legal hold: nothing of it is pruned or erased until the hold is cleared"
    )]
    LegalHold(AccountId),
    #[error("database error while {context}: {message}")]
    Database {
        context: &'static str,
        message: String,
    },
}

/// What happened to one event handed to `Store::append_events`, in the same order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Committed and fsynced as a new event.
    Stored(AppendReceipt),
    /// An event with the same idempotency key and the same content was already stored; this is
    /// the original.
    Duplicate(AppendReceipt),
    /// An event with the same idempotency key but different content was already stored.
    KeyReusedWithDifferentContent { original: AppendReceipt },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendReceipt {
    pub id: crate::ids::EventId,
    pub seq: u64,
    pub received_at: OffsetDateTime,
    /// The event's place in the account's verifiable log, from the writer's transaction. `None`
    /// only from a store opened without its tree (a benchmark baseline).
    pub leaf: Option<LeafReceipt>,
}

/// The tamper-evidence receipt of one event: its leaf hash and the tree size right after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeafReceipt {
    pub leaf_hash: crate::merkle::Hash,
    pub tree_size: u64,
}

/// One page of a query, newest `created_at` first, ties broken by `seq` (newest first).
#[derive(Debug, Clone)]
pub struct EventQuery {
    pub query: Query,
    /// 1 ..= 1000.
    pub limit: u32,
    /// Start strictly after this position (from a decoded cursor).
    pub after: Option<CursorPosition>,
}

#[derive(Debug, Clone)]
pub struct EventPage {
    pub events: Vec<EventRow>,
    /// Set when there may be more events after the last one returned.
    pub next: Option<CursorPosition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRecord {
    pub account: AccountId,
    pub created_at: OffsetDateTime,
    pub event_count: u64,
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub key_id: crate::ids::ApiKeyId,
    pub key_hash: [u8; 32],
    pub owner: KeyOwner,
    pub scopes: Scopes,
    pub display_prefix: String,
    pub description: Option<String>,
    pub created_at: OffsetDateTime,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// A short name of the backend for logs and `/readyz` ("sqlite", "postgres").
    fn backend_name(&self) -> &'static str;

    async fn create_account(
        &self,
        account: &AccountId,
        now: OffsetDateTime,
    ) -> Result<AccountRecord, StoreError>;
    async fn list_accounts(&self) -> Result<Vec<AccountRecord>, StoreError>;

    /// Stores a new key; for `KeyOwner::Account` the account must exist.
    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKeyRecord, StoreError>;
    /// Keys of one account, or every key (platform keys included) when `account` is `None`.
    async fn list_api_keys(
        &self,
        account: Option<&AccountId>,
    ) -> Result<Vec<ApiKeyRecord>, StoreError>;
    async fn revoke_api_key(
        &self,
        key_id: &ApiKeyId,
        now: OffsetDateTime,
    ) -> Result<ApiKeyRecord, StoreError>;
    /// The SHA-256 stored for the key `key_id` (`None` if there is no such key), so that
    /// `logbook migrate-store` can copy keys to another store.
    async fn api_key_hash(&self, key_id: &ApiKeyId) -> Result<Option<[u8; 32]>, StoreError>;
    /// The key whose SHA-256 is `key_hash`, revoked or not (the caller checks `is_active`).
    async fn find_api_key_by_hash(
        &self,
        key_hash: &[u8; 32],
    ) -> Result<Option<ApiKeyRecord>, StoreError>;
    /// Moves each named key's `last_used_at` forward to its `used_at`, never back (several nodes
    /// flush what they saw, in any order). Unknown key ids are skipped. The server calls this at
    /// most once a minute per key, never per request.
    async fn record_api_key_use(
        &self,
        uses: &[(ApiKeyId, OffsetDateTime)],
    ) -> Result<(), StoreError>;

    /// Appends validated events and returns only after they are durably committed (fsync or
    /// database commit). Concurrent callers share one transaction (group commit). An account
    /// named by an event that does not exist yet is created. `seq` is dense per account.
    async fn append_events(&self, events: Vec<NewEvent>) -> Result<Vec<AppendOutcome>, StoreError>;

    async fn query_events(
        &self,
        account: &AccountId,
        query: &EventQuery,
    ) -> Result<EventPage, StoreError>;
    async fn get_event(
        &self,
        account: &AccountId,
        event_id: &EventId,
    ) -> Result<Option<EventRow>, StoreError>;
    /// How many of the account's events match `query` in each `bucket` (hour or day of UTC),
    /// oldest bucket first, empty buckets left out: the timeline above the Activity Logs table.
    /// One query over the matching events' `created_at` only (never their bodies, except to check
    /// message terms); an unknown account has no buckets.
    async fn count_events_over_time(
        &self,
        account: &AccountId,
        query: &Query,
        bucket: TimeBucket,
    ) -> Result<Vec<BucketCount>, StoreError>;
    /// Every event of the account matching `query`, newest first, streamed in bounded chunks.
    fn export_events(
        &self,
        account: &AccountId,
        query: Query,
    ) -> BoxStream<'static, Result<EventRow, StoreError>>;
    /// The highest `seq` stored for the account plus one (0 when empty): what a live tail starts from.
    async fn next_seq(&self, account: &AccountId) -> Result<u64, StoreError>;
    /// Events with `seq >= from_seq`, in `seq` order, at most `limit` (for live tails).
    async fn events_since(
        &self,
        account: &AccountId,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<EventRow>, StoreError>;

    /// Users, sessions, invitations and sign-in settings (see `crate::people`).
    fn people(&self) -> &dyn PeopleStore;

    /// Each account's single sign-on settings and the sign-ins in flight (see
    /// `crate::single_sign_on`).
    fn single_sign_on(&self) -> &dyn SingleSignOnStore;

    /// Each account's display name and ingest switch (see `crate::account::AccountSettings`).
    fn accounts(&self) -> &dyn AccountSettingsStore;

    /// Viewer sessions of the embedded view and each account's look of it (`crate::viewer`).
    fn viewer_sessions(&self) -> &dyn ViewerSessionStore;

    /// Known networks and the addresses each actor was seen from (see `crate::unfamiliar_ip`).
    fn unfamiliar_ips(&self) -> &dyn UnfamiliarIpStore;

    /// Locating events stored before an IP database was configured (see `crate::location`).
    fn locations(&self) -> &dyn LocationStore;

    /// Alert rules, destinations and the delivery outbox (see `crate::alerting`).
    fn alerting(&self) -> &dyn AlertingStore;

    /// "Needs attention" findings, their dismissals and each account's detector progress (see
    /// `crate::attention`).
    fn attention(&self) -> &dyn AttentionStore;

    /// Per-account limit overrides set with `logbook limits set` (see `AccountLimitStore`).
    fn account_limits(&self) -> &dyn AccountLimitStore;

    /// The account trees and checkpoints (see `LogTree`). `None` only while a backend is being
    /// brought up without the tree; every shipped backend returns its tree.
    fn log_tree(&self) -> Option<&dyn LogTree> {
        None
    }

    /// Retention settings, legal holds and pruned prefixes (see `RetentionStore`).
    fn retention(&self) -> &dyn RetentionStore;

    /// Writes a consistent copy of the live database to `destination`.
    async fn backup(&self, destination: &Path) -> Result<(), StoreError>;
    /// Cheap check that the store can serve reads and accept writes.
    async fn check_ready(&self) -> Result<(), StoreError>;
    /// Stops accepting new writes and waits until every accepted write is committed.
    async fn shutdown(&self);
}

/// One account's limit overrides as kept in the database by `logbook limits set`, so that every
/// node sees them. A field left `None` falls back to the configuration file's value for the
/// account (`[limits.accounts.NAME]`), then to the `[limits]` default; a stored value wins over
/// both. The meanings are those of the configuration fields of the same names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredAccountLimits {
    pub ingest_events_per_second: Option<u32>,
    pub ingest_event_burst: Option<u32>,
    pub reads_per_second: Option<u32>,
    pub read_burst: Option<u32>,
    pub max_concurrent_exports: Option<u32>,
    pub max_live_tails: Option<u32>,
    /// Stored-volume quotas (`crate::volume_quota`), enforced by the writers, not the limiter.
    pub events_per_day: Option<u64>,
    pub stored_bytes: Option<u64>,
}

impl StoredAccountLimits {
    /// No field is set: the account has no stored override.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The per-account limit overrides of `logbook limits`. Servers read
/// them every few seconds, never per request.
#[async_trait]
pub trait AccountLimitStore: Send + Sync {
    /// Every account with at least one stored override, by name.
    async fn stored_account_limits(
        &self,
    ) -> Result<Vec<(AccountId, StoredAccountLimits)>, StoreError>;
    /// Replaces the account's stored overrides with `limits` (all `None` removes them). The
    /// account must exist.
    async fn set_stored_account_limits(
        &self,
        account: &AccountId,
        limits: &StoredAccountLimits,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// A signed checkpoint as a store keeps it: the account's tree at `tree_size` with `root_hash`,
/// and the signed note (`crate::checkpoint`) that commits to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub account: AccountId,
    pub tree_size: u64,
    pub root_hash: crate::merkle::Hash,
    pub signed_at: OffsetDateTime,
    /// The whole signed note, exactly as served and exported.
    pub text: String,
}

/// The current head of an account's tree, as the writer left it in its last commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeHead {
    pub account: AccountId,
    pub tree_size: u64,
    pub root_hash: crate::merkle::Hash,
}

/// The verifiable log a store keeps beside the events (`logbook_core::merkle`, "The verifiable log, end to end"): the
/// stored perfect-subtree hashes every proof is built from, each account's current tree head, and
/// the signed checkpoints. The writer maintains the tree in the transaction of the events; this
/// trait is everything that reads it or adds checkpoints.
#[async_trait]
pub trait LogTree: Send + Sync {
    /// The account's tree head after the last commit (size 0 and the empty root when it has no
    /// events).
    async fn tree_head(&self, account: &AccountId) -> Result<TreeHead, StoreError>;
    /// The stored hashes of `node_ids` (absent ones are simply missing from the map), in one query.
    async fn tree_nodes(
        &self,
        account: &AccountId,
        node_ids: &[crate::merkle::NodeId],
    ) -> Result<std::collections::HashMap<crate::merkle::NodeId, crate::merkle::Hash>, StoreError>;
    /// Every account whose tree grew past its newest checkpoint (or has none yet), with its head.
    async fn tree_heads_without_checkpoint(&self) -> Result<Vec<TreeHead>, StoreError>;
    /// Stores a checkpoint. Storing a second checkpoint of the same account and tree size keeps
    /// the first (several nodes may sign the same head at once).
    async fn store_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError>;
    /// The account's checkpoint of the largest tree.
    async fn latest_checkpoint(
        &self,
        account: &AccountId,
    ) -> Result<Option<StoredCheckpoint>, StoreError>;
    /// The account's checkpoints with `tree_size < before_tree_size` (all when `None`), largest
    /// tree first, at most `limit`.
    async fn checkpoints(
        &self,
        account: &AccountId,
        before_tree_size: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>, StoreError>;
}
