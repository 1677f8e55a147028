//! Account settings (`accounts.display_name`, `accounts.ingest_enabled`, migration 0013) in the
//! SQL both stores run: read one or a page by name, set the display name, turn ingest on or off,
//! and list the accounts whose ingest is off for the servers' refresher.

use async_trait::async_trait;
use logbook_core::account::AccountSettings;
use logbook_core::store::AccountSettingsStore;
use logbook_core::{AccountId, StoreError};

use crate::encoding::unix_micros_of;
use crate::executor::{SqlDatabase, SqlExecutor};
use crate::shared_store::{SharedStore, stored_account};
use crate::value::{SqlRow, SqlValue};

const READING: &str = "reading account settings";
const SETTINGS_COLUMNS: &str = "name, display_name, ingest_enabled, created_at";

fn settings_from_row(row: &SqlRow) -> Result<AccountSettings, StoreError> {
    Ok(AccountSettings {
        account: stored_account(READING, &row.text(0)?)?,
        display_name: row.optional_text(1)?,
        ingest_enabled: row.boolean(2)?,
        created_at: row.time(3)?,
    })
}

async fn select_settings(
    sql: &dyn SqlExecutor,
    account: &AccountId,
) -> Result<Option<AccountSettings>, StoreError> {
    sql.query_optional(
        READING,
        &format!("SELECT {SETTINGS_COLUMNS} FROM accounts WHERE name = $1"),
        &[account.as_str().into()],
    )
    .await?
    .as_ref()
    .map(settings_from_row)
    .transpose()
}

impl<Database: SqlDatabase> SharedStore<Database> {
    /// Sets one column of an existing account and reads the settings back, in one transaction.
    async fn update_account_column(
        &self,
        context: &'static str,
        assignment: &'static str,
        account: &AccountId,
        value: SqlValue,
    ) -> Result<AccountSettings, StoreError> {
        let account = account.clone();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let updated = sql
                        .execute(
                            context,
                            &format!("UPDATE accounts SET {assignment} = $2 WHERE name = $1"),
                            &[account.as_str().into(), value],
                        )
                        .await?;
                    if updated == 0 {
                        return Err(StoreError::AccountNotFound(account));
                    }
                    select_settings(sql, &account)
                        .await?
                        .ok_or(StoreError::AccountNotFound(account))
                })
            }))
            .await
    }
}

#[async_trait]
impl<Database: SqlDatabase> AccountSettingsStore for SharedStore<Database> {
    async fn create_account_with_display_name(
        &self,
        account: &AccountId,
        display_name: Option<&str>,
        now: time::OffsetDateTime,
    ) -> Result<AccountSettings, StoreError> {
        const CREATING: &str = "creating an account";
        let account = account.clone();
        let display_name = display_name.map(str::to_owned);
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let inserted = sql
                        .execute(
                            CREATING,
                            "INSERT INTO accounts (name, created_at, display_name) VALUES ($1, $2, $3) \
                             ON CONFLICT (name) DO NOTHING",
                            &[
                                account.as_str().into(),
                                unix_micros_of(now).into(),
                                display_name.into(),
                            ],
                        )
                        .await?;
                    if inserted == 0 {
                        return Err(StoreError::AccountAlreadyExists(account));
                    }
                    select_settings(sql, &account)
                        .await?
                        .ok_or(StoreError::AccountNotFound(account))
                })
            }))
            .await
    }

    async fn account_settings(
        &self,
        account: &AccountId,
    ) -> Result<Option<AccountSettings>, StoreError> {
        let account = account.clone();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move { select_settings(sql, &account).await })
            }))
            .await
    }

    async fn account_settings_page(
        &self,
        after: Option<&AccountId>,
        limit: u32,
    ) -> Result<Vec<AccountSettings>, StoreError> {
        let after = after.cloned();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    let limit = i64::from(limit);
                    let rows = match after {
                        Some(after) => {
                            sql.query(
                                READING,
                                &format!(
                                    "SELECT {SETTINGS_COLUMNS} FROM accounts WHERE name > $1 \
                                     ORDER BY name LIMIT $2"
                                ),
                                &[after.as_str().into(), limit.into()],
                            )
                            .await?
                        }
                        None => {
                            sql.query(
                                READING,
                                &format!(
                                    "SELECT {SETTINGS_COLUMNS} FROM accounts ORDER BY name LIMIT $1"
                                ),
                                &[limit.into()],
                            )
                            .await?
                        }
                    };
                    rows.iter().map(settings_from_row).collect()
                })
            }))
            .await
    }

    async fn set_display_name(
        &self,
        account: &AccountId,
        display_name: Option<&str>,
    ) -> Result<AccountSettings, StoreError> {
        self.update_account_column(
            "setting an account's display name",
            "display_name",
            account,
            display_name.map(str::to_owned).into(),
        )
        .await
    }

    async fn set_ingest_enabled(
        &self,
        account: &AccountId,
        enabled: bool,
    ) -> Result<AccountSettings, StoreError> {
        self.update_account_column(
            "turning an account's ingest on or off",
            "ingest_enabled",
            account,
            enabled.into(),
        )
        .await
    }

    async fn ingest_disabled_accounts(&self) -> Result<Vec<AccountId>, StoreError> {
        self.database
            .read(Box::new(|sql| {
                Box::pin(async move {
                    sql.query(
                        READING,
                        "SELECT name FROM accounts WHERE ingest_enabled = $1 ORDER BY name",
                        &[false.into()],
                    )
                    .await?
                    .iter()
                    .map(|row| stored_account(READING, &row.text(0)?))
                    .collect()
                })
            }))
            .await
    }
}
