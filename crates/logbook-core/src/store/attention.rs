//! "Needs attention" findings and each account's detector progress (`crate::attention`), reached
//! through `Store::attention`.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::account::AccountId;
use crate::attention::{AttentionProgress, Dismissal, Finding, FindingFilter, FindingRecord};
use crate::store::StoreError;

/// The part of the `Store` that keeps findings and each account's detector progress (reached
/// through `Store::attention`).
#[async_trait]
pub trait AttentionStore: Send + Sync {
    /// The account's saved progress, `None` before the first save.
    async fn attention_progress(
        &self,
        account: &AccountId,
    ) -> Result<Option<AttentionProgress>, StoreError>;

    /// Saves `progress` and stores `findings` in one transaction, but only if the saved progress
    /// is still `expected_next_seq` (`None`: nothing saved yet); otherwise saves nothing and
    /// returns false, because another worker got there first. A finding whose identity (account,
    /// kind, subject, first seq) is already stored is skipped. Errors: `AccountNotFound`.
    async fn save_attention_progress(
        &self,
        account: &AccountId,
        expected_next_seq: Option<u64>,
        progress: &AttentionProgress,
        findings: &[Finding],
        detected_at: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// The account's findings matching `filter`, newest `detected_at` first (ties: newest id).
    async fn list_findings(
        &self,
        account: &AccountId,
        filter: &FindingFilter,
    ) -> Result<Vec<FindingRecord>, StoreError>;

    /// One finding of the account (`None` when it belongs to another account or does not exist).
    async fn get_finding(
        &self,
        account: &AccountId,
        finding_id: i64,
    ) -> Result<Option<FindingRecord>, StoreError>;

    /// Records the dismissal of a finding of the account. A finding dismissed already keeps its
    /// first dismissal. Returns the finding as stored afterwards, `None` when the account has no
    /// such finding.
    async fn dismiss_finding(
        &self,
        account: &AccountId,
        finding_id: i64,
        dismissal: &Dismissal,
    ) -> Result<Option<FindingRecord>, StoreError>;
}
