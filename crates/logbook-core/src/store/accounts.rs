//! What an operator sets per account (`crate::account::AccountSettings`), reached through
//! `Store::accounts`: its display name and whether it takes events.

use async_trait::async_trait;

use crate::account::{AccountId, AccountSettings};
use crate::store::StoreError;

#[async_trait]
pub trait AccountSettingsStore: Send + Sync {
    /// Creates the account with its display name in one statement, so a racing create of the
    /// same name sees either nothing or the whole account. Errors: `AccountAlreadyExists`
    /// (nothing changed).
    async fn create_account_with_display_name(
        &self,
        account: &AccountId,
        display_name: Option<&str>,
        now: time::OffsetDateTime,
    ) -> Result<AccountSettings, StoreError>;
    /// The account's settings, or `None` when it does not exist.
    async fn account_settings(
        &self,
        account: &AccountId,
    ) -> Result<Option<AccountSettings>, StoreError>;
    /// A page of accounts with their settings, by name, starting strictly after `after`.
    async fn account_settings_page(
        &self,
        after: Option<&AccountId>,
        limit: u32,
    ) -> Result<Vec<AccountSettings>, StoreError>;
    /// Sets (or with `None` clears) the display name. Errors: `AccountNotFound`.
    async fn set_display_name(
        &self,
        account: &AccountId,
        display_name: Option<&str>,
    ) -> Result<AccountSettings, StoreError>;
    /// Turns the account's ingest on or off. Errors: `AccountNotFound`.
    async fn set_ingest_enabled(
        &self,
        account: &AccountId,
        enabled: bool,
    ) -> Result<AccountSettings, StoreError>;
    /// Every account whose ingest is off, by name (servers reread this every few seconds).
    async fn ingest_disabled_accounts(&self) -> Result<Vec<AccountId>, StoreError>;
}
