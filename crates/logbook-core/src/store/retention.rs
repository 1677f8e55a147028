//! Retention settings, legal holds and pruned prefixes (`crate::retention`), reached through
//! `Store::retention`.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::account::AccountId;
use crate::personal_data::{PersonalDataBatch, PersonalDataRemoved};
use crate::retention::{AccountRetention, LegalHold, PrunedPrefix};
use crate::store::StoreError;

/// What retention keeps in the store. Removing events is two steps, so a pruned log is never
/// left without what proves the rest: `record_prune` keeps the prefix's compact range and signed
/// statement first, then `delete_pruned_events` removes the events below it, a bounded batch at
/// a time (a crash in between leaves events the next run deletes).
#[async_trait]
pub trait RetentionStore: Send + Sync {
    /// The account's settings and how far it was pruned. Errors: `AccountNotFound`.
    async fn account_retention(&self, account: &AccountId) -> Result<AccountRetention, StoreError>;
    /// Every account with its settings, by name (for the pruner).
    async fn all_account_retention(&self)
    -> Result<Vec<(AccountId, AccountRetention)>, StoreError>;
    /// Sets (or with `None` clears) the account's own retention period.
    async fn set_retention_days(
        &self,
        account: &AccountId,
        retention_days: Option<u32>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Sets or (with `None`) clears the account's legal hold. Setting a hold on a held account
    /// keeps the first one. Returns the hold as it was before.
    async fn set_legal_hold(
        &self,
        account: &AccountId,
        hold: Option<LegalHold>,
        now: OffsetDateTime,
    ) -> Result<Option<LegalHold>, StoreError>;
    /// The account's pruned prefix, `None` when nothing was pruned.
    async fn pruned_prefix(&self, account: &AccountId) -> Result<Option<PrunedPrefix>, StoreError>;
    /// Keeps the compact range of the first `pruned_below_seq` leaves and the signed statement
    /// about them, if `pruned_below_seq` is beyond what was pruned before. Refused with
    /// `LegalHold` while the account is held.
    async fn record_prune(
        &self,
        account: &AccountId,
        pruned_below_seq: u64,
        prefix: &PrunedPrefix,
    ) -> Result<(), StoreError>;
    /// Deletes at most `max_events` of the account's events below its recorded pruned prefix
    /// (with their targets, full text, tree nodes wholly inside it and checkpoints of smaller
    /// trees); returns how many went. Refused with `LegalHold` while the account is held.
    async fn delete_pruned_events(
        &self,
        account: &AccountId,
        max_events: u32,
    ) -> Result<u64, StoreError>;
    /// Sets (or with `None` clears) the account's own personal-data period and whether aging
    /// keeps the network of a removed address.
    async fn set_personal_data_policy(
        &self,
        account: &AccountId,
        personal_data_days: Option<u32>,
        keep_network: Option<bool>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Declares which metadata members of the account's events are personal (validated and
    /// sorted by `personal_data::declared_personal_fields`); an empty list clears it.
    async fn set_personal_metadata_fields(
        &self,
        account: &AccountId,
        fields: Vec<String>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// One bounded step of removing personal fields (`personal_data::PersonalDataBatch`), in one
    /// transaction. Refused with `LegalHold` while the account is held.
    async fn remove_personal_data(
        &self,
        account: &AccountId,
        batch: PersonalDataBatch,
    ) -> Result<PersonalDataRemoved, StoreError>;
}
