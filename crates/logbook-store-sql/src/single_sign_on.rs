//! `SingleSignOnStore`: each account's provider settings (`single_sign_on_settings`) and the
//! sign-ins in flight (`single_sign_on_attempts`, migration 0016), in one SQL text for both
//! stores. An attempt is taken with `DELETE ... RETURNING`, one statement that both SQLite and
//! PostgreSQL run atomically, so two answers naming one `state` cannot both get it.

use async_trait::async_trait;
use logbook_core::people::Role;
use logbook_core::single_sign_on::{ClientSecret, SignInAttempt, SingleSignOnSettings};
use logbook_core::store::SingleSignOnStore;
use logbook_core::{AccountId, StoreError};
use time::OffsetDateTime;

use crate::encoding::unix_micros_of;
use crate::executor::SqlDatabase;
use crate::shared_store::{SharedStore, existing_account_row, stored_account};
use crate::value::SqlRow;

const READING: &str = "reading single sign-on settings";
const SETTINGS_COLUMNS: &str = "s.display_name, s.issuer, s.client_id, s.client_secret, \
     s.default_role, s.invited_only, s.password_sign_in_allowed";

/// Settings from `SETTINGS_COLUMNS` starting at column `first`.
fn settings_from(row: &SqlRow, first: usize) -> Result<SingleSignOnSettings, StoreError> {
    let role = row.text(first + 4)?;
    Ok(SingleSignOnSettings {
        display_name: row.text(first)?,
        issuer: row.text(first + 1)?,
        client_id: row.text(first + 2)?,
        client_secret: ClientSecret::new(row.text(first + 3)?),
        default_role: Role::parse(&role).map_err(|error| StoreError::Database {
            context: READING,
            message: error.to_string(),
        })?,
        invited_only: row.boolean(first + 5)?,
        password_sign_in_allowed: row.boolean(first + 6)?,
    })
}

fn hash_from(row: &SqlRow, index: usize) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(row.bytes(index)?.as_slice()).map_err(|_| StoreError::Database {
        context: "reading a sign-in attempt",
        message: "a stored hash is not 32 bytes".into(),
    })
}

#[async_trait]
impl<Database: SqlDatabase> SingleSignOnStore for SharedStore<Database> {
    async fn single_sign_on_settings(
        &self,
        account: &AccountId,
    ) -> Result<Option<SingleSignOnSettings>, StoreError> {
        let account = account.clone();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    sql.query_optional(
                        READING,
                        &format!(
                            "SELECT {SETTINGS_COLUMNS} FROM single_sign_on_settings s \
                             JOIN accounts a ON a.account_row = s.account_row WHERE a.name = $1"
                        ),
                        &[account.as_str().into()],
                    )
                    .await?
                    .map(|row| settings_from(&row, 0))
                    .transpose()
                })
            }))
            .await
    }

    async fn list_single_sign_on_settings(
        &self,
    ) -> Result<Vec<(AccountId, SingleSignOnSettings)>, StoreError> {
        self.database
            .read(Box::new(|sql| {
                Box::pin(async move {
                    sql.query(
                        READING,
                        &format!(
                            "SELECT a.name, {SETTINGS_COLUMNS} FROM single_sign_on_settings s \
                             JOIN accounts a ON a.account_row = s.account_row ORDER BY a.name"
                        ),
                        &[],
                    )
                    .await?
                    .iter()
                    .map(|row| {
                        Ok((
                            stored_account(READING, &row.text(0)?)?,
                            settings_from(row, 1)?,
                        ))
                    })
                    .collect()
                })
            }))
            .await
    }

    async fn set_single_sign_on_settings(
        &self,
        account: &AccountId,
        settings: Option<&SingleSignOnSettings>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const SETTING: &str = "setting single sign-on";
        let account = account.clone();
        let settings = settings.cloned();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let account_row = existing_account_row(sql, SETTING, &account).await?;
                    sql.execute(
                        SETTING,
                        "DELETE FROM single_sign_on_settings WHERE account_row = $1",
                        &[account_row.into()],
                    )
                    .await?;
                    if let Some(settings) = settings {
                        sql.execute(
                            SETTING,
                            "INSERT INTO single_sign_on_settings (account_row, display_name, \
                             issuer, client_id, client_secret, default_role, invited_only, \
                             password_sign_in_allowed, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                            &[
                                account_row.into(),
                                settings.display_name.as_str().into(),
                                settings.issuer.as_str().into(),
                                settings.client_id.as_str().into(),
                                settings.client_secret.expose().into(),
                                settings.default_role.as_str().into(),
                                settings.invited_only.into(),
                                settings.password_sign_in_allowed.into(),
                                unix_micros_of(now).into(),
                            ],
                        )
                        .await?;
                    }
                    Ok(())
                })
            }))
            .await
    }

    async fn create_sign_in_attempt(&self, attempt: SignInAttempt) -> Result<(), StoreError> {
        const STARTING: &str = "recording a sign-in attempt";
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let account_row = existing_account_row(sql, STARTING, &attempt.account).await?;
                    // Abandoned attempts go when new ones come, so the table stays as small as
                    // the sign-ins of the last few minutes.
                    sql.execute(
                        STARTING,
                        "DELETE FROM single_sign_on_attempts WHERE expires_at <= $1",
                        &[unix_micros_of(attempt.created_at).into()],
                    )
                    .await?;
                    sql.execute(
                        STARTING,
                        "INSERT INTO single_sign_on_attempts (state_hash, browser_hash, \
                         account_row, nonce, pkce_verifier, created_at, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        &[
                            attempt.state_hash.to_vec().into(),
                            attempt.browser_hash.to_vec().into(),
                            account_row.into(),
                            attempt.nonce.as_str().into(),
                            attempt.pkce_verifier.as_str().into(),
                            unix_micros_of(attempt.created_at).into(),
                            unix_micros_of(attempt.expires_at).into(),
                        ],
                    )
                    .await?;
                    Ok(())
                })
            }))
            .await
    }

    async fn take_sign_in_attempt(
        &self,
        state_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<Option<SignInAttempt>, StoreError> {
        const TAKING: &str = "taking a sign-in attempt";
        let state_hash = *state_hash;
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let Some(row) = sql
                        .query_optional(
                            TAKING,
                            "DELETE FROM single_sign_on_attempts WHERE state_hash = $1 \
                             RETURNING browser_hash, account_row, nonce, pkce_verifier, \
                             created_at, expires_at",
                            &[state_hash.to_vec().into()],
                        )
                        .await?
                    else {
                        return Ok(None);
                    };
                    let expires_at = row.time(5)?;
                    if expires_at <= now {
                        return Ok(None);
                    }
                    let name = sql
                        .query_one(
                            TAKING,
                            "SELECT name FROM accounts WHERE account_row = $1",
                            &[row.integer(1)?.into()],
                        )
                        .await?
                        .text(0)?;
                    Ok(Some(SignInAttempt {
                        state_hash,
                        browser_hash: hash_from(&row, 0)?,
                        account: stored_account(TAKING, &name)?,
                        nonce: row.text(2)?,
                        pkce_verifier: row.text(3)?,
                        created_at: row.time(4)?,
                        expires_at,
                    }))
                })
            }))
            .await
    }
}
