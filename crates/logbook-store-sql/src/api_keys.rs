//! API keys in the SQL both stores run (table `api_keys`, migrations 0001, 0004 and 0013): created with
//! their SHA-256 only, listed without it, revoked, found by hash on every authenticated request
//! (the server caches a found key for at most a second), and their last use written in batches.

use logbook_core::api_key::{ApiKeyRecord, KeyOwner, Scopes};
use logbook_core::ids::ApiKeyId;
use logbook_core::store::NewApiKey;
use logbook_core::{AccountId, StoreError};
use time::OffsetDateTime;

use crate::encoding::unix_micros_of;
use crate::executor::{SqlDatabase, SqlExecutor};
use crate::shared_store::{SharedStore, existing_account_row, stored_account};
use crate::value::{SqlRow, SqlValue};

const API_KEY_COLUMNS: &str = "k.key_id, a.name, k.scope_ingest, k.scope_read, k.display_prefix, \
     k.description, k.created_at, k.revoked_at, k.last_used_at, k.scope_admin";

fn api_key_from_row(row: &SqlRow) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        key_id: row.text(0)?.into(),
        owner: match row.optional_text(1)? {
            Some(name) => KeyOwner::Account(stored_account("reading API keys", &name)?),
            None => KeyOwner::Platform,
        },
        scopes: Scopes {
            ingest: row.boolean(2)?,
            read: row.boolean(3)?,
            admin: row.boolean(9)?,
        },
        display_prefix: row.text(4)?,
        description: row.optional_text(5)?,
        created_at: row.time(6)?,
        revoked_at: row.optional_time(7)?,
        last_used_at: row.optional_time(8)?,
    })
}

async fn select_api_keys(
    sql: &dyn SqlExecutor,
    condition: &str,
    parameters: &[SqlValue],
) -> Result<Vec<ApiKeyRecord>, StoreError> {
    sql.query(
        "reading API keys",
        &format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys k LEFT JOIN accounts a ON a.account_row = k.account_row \
             WHERE {condition} ORDER BY k.created_at, k.key_id"
        ),
        parameters,
    )
    .await?
    .iter()
    .map(api_key_from_row)
    .collect()
}

impl<Database: SqlDatabase> SharedStore<Database> {
    /// `Store::create_api_key`.
    pub async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKeyRecord, StoreError> {
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    const CREATING: &str = "creating an API key";
                    let account_row = match &key.owner {
                        KeyOwner::Account(account) => {
                            Some(existing_account_row(sql, CREATING, account).await?)
                        }
                        KeyOwner::Platform => None,
                    };
                    sql.execute(
                        CREATING,
                        "INSERT INTO api_keys (key_id, key_hash, account_row, scope_ingest, scope_read, \
                         display_prefix, description, created_at, scope_admin) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        &[
                            key.key_id.as_str().into(),
                            key.key_hash.to_vec().into(),
                            account_row.into(),
                            key.scopes.ingest.into(),
                            key.scopes.read.into(),
                            key.display_prefix.as_str().into(),
                            key.description.clone().into(),
                            unix_micros_of(key.created_at).into(),
                            key.scopes.admin.into(),
                        ],
                    )
                    .await?;
                    select_api_keys(sql, "k.key_id = $1", &[key.key_id.as_str().into()])
                        .await?
                        .pop()
                        .ok_or(StoreError::ApiKeyNotFound(key.key_id))
                })
            }))
            .await
    }

    /// `Store::list_api_keys`: one account's keys, or every key when `account` is `None`.
    pub async fn list_api_keys(
        &self,
        account: Option<&AccountId>,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let account = account.cloned();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    match account {
                        Some(account) => {
                            select_api_keys(sql, "a.name = $1", &[account.as_str().into()]).await
                        }
                        None => select_api_keys(sql, "TRUE", &[]).await,
                    }
                })
            }))
            .await
    }

    /// `Store::revoke_api_key`: revoking twice keeps the first revocation time.
    pub async fn revoke_api_key(
        &self,
        key_id: &ApiKeyId,
        now: OffsetDateTime,
    ) -> Result<ApiKeyRecord, StoreError> {
        let key_id = key_id.clone();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let updated = sql
                        .execute(
                            "revoking an API key",
                            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE key_id = $1",
                            &[key_id.as_str().into(), unix_micros_of(now).into()],
                        )
                        .await?;
                    if updated == 0 {
                        return Err(StoreError::ApiKeyNotFound(key_id));
                    }
                    select_api_keys(sql, "k.key_id = $1", &[key_id.as_str().into()])
                        .await?
                        .pop()
                        .ok_or(StoreError::ApiKeyNotFound(key_id))
                })
            }))
            .await
    }

    /// `Store::api_key_hash`.
    pub async fn api_key_hash(&self, key_id: &ApiKeyId) -> Result<Option<[u8; 32]>, StoreError> {
        let key_id = key_id.clone();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    let row = sql
                        .query_optional(
                            "reading a key hash",
                            "SELECT key_hash FROM api_keys WHERE key_id = $1",
                            &[key_id.into()],
                        )
                        .await?;
                    Ok(match row {
                        Some(row) => row.bytes(0)?.try_into().ok(),
                        None => None,
                    })
                })
            }))
            .await
    }

    /// `Store::find_api_key_by_hash`.
    pub async fn find_api_key_by_hash(
        &self,
        key_hash: &[u8; 32],
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        let key_hash = key_hash.to_vec();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    Ok(select_api_keys(sql, "k.key_hash = $1", &[key_hash.into()])
                        .await?
                        .pop())
                })
            }))
            .await
    }

    /// `Store::record_api_key_use`: every use in one transaction, each key moving forward only,
    /// since several nodes flush their own observations in any order. The server calls this at
    /// most once a minute per key.
    pub async fn record_api_key_use(
        &self,
        uses: &[(ApiKeyId, OffsetDateTime)],
    ) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        let uses: Vec<(ApiKeyId, i64)> = uses
            .iter()
            .map(|(key_id, used_at)| (key_id.clone(), unix_micros_of(*used_at)))
            .collect();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    for (key_id, used_at) in uses {
                        sql.execute(
                            "recording when API keys were last used",
                            "UPDATE api_keys SET last_used_at = $2 \
                             WHERE key_id = $1 AND (last_used_at IS NULL OR last_used_at < $2)",
                            &[key_id.into(), used_at.into()],
                        )
                        .await?;
                    }
                    Ok(())
                })
            }))
            .await
    }
}
