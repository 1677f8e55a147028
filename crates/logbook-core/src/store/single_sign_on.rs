//! Each account's single sign-on settings and the sign-in attempts in flight
//! (`crate::single_sign_on`), reached through `Store::single_sign_on`. Attempts live in the
//! store, not in one server's memory, so a provider's answer may reach any node.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::account::AccountId;
use crate::single_sign_on::{SignInAttempt, SingleSignOnSettings};
use crate::store::StoreError;

#[async_trait]
pub trait SingleSignOnStore: Send + Sync {
    /// The account's stored settings, or `None` when it has none (the configuration file's
    /// `[sso]` section may still apply).
    async fn single_sign_on_settings(
        &self,
        account: &AccountId,
    ) -> Result<Option<SingleSignOnSettings>, StoreError>;
    /// Every account with stored settings, by name (for the sign-in page).
    async fn list_single_sign_on_settings(
        &self,
    ) -> Result<Vec<(AccountId, SingleSignOnSettings)>, StoreError>;
    /// Stores (replacing) or with `None` removes the account's settings.
    /// Errors: `AccountNotFound`.
    async fn set_single_sign_on_settings(
        &self,
        account: &AccountId,
        settings: Option<&SingleSignOnSettings>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Records a sign-in sent to the provider. Errors: `AccountNotFound`.
    async fn create_sign_in_attempt(&self, attempt: SignInAttempt) -> Result<(), StoreError>;
    /// Takes the attempt whose `state` hashes to `state_hash`: it is deleted in the same
    /// statement, so of two answers naming one `state` only the first gets it. Expired attempts
    /// are not returned (and are deleted on the way).
    async fn take_sign_in_attempt(
        &self,
        state_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<Option<SignInAttempt>, StoreError>;
}
