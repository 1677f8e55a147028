//! Retention settings, legal holds and pruned prefixes in the SQL both stores run (tables of
//! migration 0012). Deleting the pruned events themselves is each store's own (their event keys,
//! full text and row-level security differ); everything else is here.

use logbook_core::retention::{AccountRetention, LegalHold, PrunedPrefix};
use logbook_core::{AccountId, StoreError};
use time::OffsetDateTime;

use crate::encoding::unix_micros_of;
use crate::executor::{SqlDatabase, SqlExecutor};
use crate::shared_store::{SharedStore, existing_account_row, stored_account};
use crate::value::SqlRow;

const RETENTION_COLUMNS: &str = "r.retention_days, r.legal_hold_since, r.legal_hold_set_by, \
     r.legal_hold_reason, coalesce(p.pruned_below_seq, 0), r.personal_data_days, \
     r.personal_keep_network, r.personal_metadata_fields, coalesce(r.personal_aged_below_seq, 0)";

/// The settings from `RETENTION_COLUMNS` starting at column `first` (all NULL when the account
/// never had any).
fn retention_from_row(row: &SqlRow, first: usize) -> Result<AccountRetention, StoreError> {
    let legal_hold = match row.optional_time(first + 1)? {
        Some(since) => Some(LegalHold {
            since,
            set_by: row.optional_text(first + 2)?.unwrap_or_default(),
            reason: row.optional_text(first + 3)?.unwrap_or_default(),
        }),
        None => None,
    };
    Ok(AccountRetention {
        retention_days: row
            .optional_integer(first)?
            .and_then(|days| u32::try_from(days).ok()),
        legal_hold,
        pruned_below_seq: row.count(first + 4)?,
        personal_data_days: row
            .optional_integer(first + 5)?
            .and_then(|days| u32::try_from(days).ok()),
        keep_network: row.optional_integer(first + 6)?.map(|keep| keep != 0),
        personal_metadata_fields: match row.optional_text(first + 7)? {
            None => Vec::new(),
            Some(text) => serde_json::from_str(&text).map_err(|error| StoreError::Database {
                context: "reading retention settings",
                message: format!(
                    "the declared personal metadata fields are not a JSON list: {error}"
                ),
            })?,
        },
        personal_aged_below_seq: row.count(first + 8)?,
    })
}

/// The account's settings, read inside `sql` (also by the stores' deletes, which must see a hold
/// set a moment ago).
pub async fn retention_of_account_row(
    sql: &dyn SqlExecutor,
    account_row: i64,
) -> Result<AccountRetention, StoreError> {
    let row = sql
        .query_one(
            "reading retention settings",
            &format!(
                "SELECT {RETENTION_COLUMNS} FROM accounts a \
                 LEFT JOIN account_retention r ON r.account_row = a.account_row \
                 LEFT JOIN pruned_prefixes p ON p.account_row = a.account_row \
                 WHERE a.account_row = $1"
            ),
            &[account_row.into()],
        )
        .await?;
    retention_from_row(&row, 0)
}

/// The account's pruned prefix, read inside `sql` (the stores' proofs read it in their own read).
pub async fn pruned_prefix_of_account_row(
    sql: &dyn SqlExecutor,
    account_row: i64,
) -> Result<Option<(u64, PrunedPrefix)>, StoreError> {
    sql.query_optional(
        "reading a pruned prefix",
        "SELECT pruned_below_seq, prefix_range, statement, pruned_at FROM pruned_prefixes \
         WHERE account_row = $1",
        &[account_row.into()],
    )
    .await?
    .map(|row| {
        Ok((
            row.count(0)?,
            PrunedPrefix {
                prefix_range: row.bytes(1)?,
                statement: row.text(2)?,
                pruned_at: row.time(3)?,
            },
        ))
    })
    .transpose()
}

impl<Database: SqlDatabase> SharedStore<Database> {
    /// `RetentionStore::account_retention`.
    pub async fn account_retention(
        &self,
        account: &AccountId,
    ) -> Result<AccountRetention, StoreError> {
        let account = account.clone();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    let account_row =
                        existing_account_row(sql, "reading retention settings", &account).await?;
                    retention_of_account_row(sql, account_row).await
                })
            }))
            .await
    }

    /// `RetentionStore::all_account_retention`.
    pub async fn all_account_retention(
        &self,
    ) -> Result<Vec<(AccountId, AccountRetention)>, StoreError> {
        self.database
            .read(Box::new(|sql| {
                Box::pin(async move {
                    const READING: &str = "reading retention settings";
                    sql.query(
                        READING,
                        &format!(
                            "SELECT a.name, {RETENTION_COLUMNS} FROM accounts a \
                             LEFT JOIN account_retention r ON r.account_row = a.account_row \
                             LEFT JOIN pruned_prefixes p ON p.account_row = a.account_row \
                             ORDER BY a.name"
                        ),
                        &[],
                    )
                    .await?
                    .iter()
                    .map(|row| {
                        Ok((
                            stored_account(READING, &row.text(0)?)?,
                            retention_from_row(row, 1)?,
                        ))
                    })
                    .collect()
                })
            }))
            .await
    }

    /// `RetentionStore::set_retention_days`.
    pub async fn set_retention_days(
        &self,
        account: &AccountId,
        retention_days: Option<u32>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const SETTING: &str = "setting a retention period";
        let account = account.clone();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let account_row = existing_account_row(sql, SETTING, &account).await?;
                    sql.execute(
                        SETTING,
                        "INSERT INTO account_retention (account_row, retention_days, updated_at) \
                         VALUES ($1, $2, $3) ON CONFLICT (account_row) DO UPDATE SET \
                         retention_days = excluded.retention_days, updated_at = excluded.updated_at",
                        &[
                            account_row.into(),
                            retention_days.map(i64::from).into(),
                            unix_micros_of(now).into(),
                        ],
                    )
                    .await?;
                    Ok(())
                })
            }))
            .await
    }

    /// `RetentionStore::set_legal_hold`.
    pub async fn set_legal_hold(
        &self,
        account: &AccountId,
        hold: Option<LegalHold>,
        now: OffsetDateTime,
    ) -> Result<Option<LegalHold>, StoreError> {
        const SETTING: &str = "setting a legal hold";
        let account = account.clone();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let account_row = existing_account_row(sql, SETTING, &account).await?;
                    let before = retention_of_account_row(sql, account_row).await?.legal_hold;
                    sql.execute(
                        SETTING,
                        "INSERT INTO account_retention (account_row, updated_at) VALUES ($1, $2) \
                         ON CONFLICT (account_row) DO NOTHING",
                        &[account_row.into(), unix_micros_of(now).into()],
                    )
                    .await?;
                    match (&before, hold) {
                        // A second hold keeps the first one's time, author and reason.
                        (Some(_), Some(_)) => {}
                        (_, Some(hold)) => {
                            sql.execute(
                                SETTING,
                                "UPDATE account_retention SET legal_hold_since = $2, \
                                 legal_hold_set_by = $3, legal_hold_reason = $4, updated_at = $5 \
                                 WHERE account_row = $1",
                                &[
                                    account_row.into(),
                                    unix_micros_of(hold.since).into(),
                                    hold.set_by.into(),
                                    hold.reason.into(),
                                    unix_micros_of(now).into(),
                                ],
                            )
                            .await?;
                        }
                        (_, None) => {
                            sql.execute(
                                SETTING,
                                "UPDATE account_retention SET legal_hold_since = NULL, \
                                 legal_hold_set_by = NULL, legal_hold_reason = NULL, updated_at = $2 \
                                 WHERE account_row = $1",
                                &[account_row.into(), unix_micros_of(now).into()],
                            )
                            .await?;
                        }
                    }
                    Ok(before)
                })
            }))
            .await
    }

    /// `RetentionStore::pruned_prefix`.
    pub async fn pruned_prefix(
        &self,
        account: &AccountId,
    ) -> Result<Option<PrunedPrefix>, StoreError> {
        let account = account.clone();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    let account_row =
                        existing_account_row(sql, "reading a pruned prefix", &account).await?;
                    Ok(pruned_prefix_of_account_row(sql, account_row)
                        .await?
                        .map(|(_, prefix)| prefix))
                })
            }))
            .await
    }

    /// `RetentionStore::record_prune`.
    pub async fn record_prune(
        &self,
        account: &AccountId,
        pruned_below_seq: u64,
        prefix: &PrunedPrefix,
    ) -> Result<(), StoreError> {
        const RECORDING: &str = "recording a pruned prefix";
        let account = account.clone();
        let prefix = prefix.clone();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let account_row = existing_account_row(sql, RECORDING, &account).await?;
                    let settings = retention_of_account_row(sql, account_row).await?;
                    if settings.legal_hold.is_some() {
                        return Err(StoreError::LegalHold(account));
                    }
                    if pruned_below_seq <= settings.pruned_below_seq {
                        return Ok(());
                    }
                    let below = i64::try_from(pruned_below_seq).unwrap_or(i64::MAX);
                    let pruned_at = unix_micros_of(prefix.pruned_at);
                    sql.execute(
                        RECORDING,
                        "INSERT INTO pruned_prefixes (account_row, pruned_below_seq, prefix_range, \
                         statement, pruned_at) VALUES ($1, $2, $3, $4, $5) \
                         ON CONFLICT (account_row) DO UPDATE SET \
                         pruned_below_seq = excluded.pruned_below_seq, \
                         prefix_range = excluded.prefix_range, statement = excluded.statement, \
                         pruned_at = excluded.pruned_at",
                        &[
                            account_row.into(),
                            below.into(),
                            prefix.prefix_range.into(),
                            prefix.statement.as_str().into(),
                            pruned_at.into(),
                        ],
                    )
                    .await?;
                    sql.execute(
                        RECORDING,
                        "INSERT INTO prune_statements (account_row, pruned_below_seq, statement, \
                         pruned_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                        &[
                            account_row.into(),
                            below.into(),
                            prefix.statement.into(),
                            pruned_at.into(),
                        ],
                    )
                    .await?;
                    Ok(())
                })
            }))
            .await
    }
}
