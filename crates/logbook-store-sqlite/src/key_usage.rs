//! When API keys were last used (`api_keys.last_used_at`, migration 0004). The server remembers
//! each key's latest use in memory and hands a batch here at most once a minute per key, so this
//! is one short transaction on the admin connection per flush, never a write per request.

use logbook_core::StoreError;
use rusqlite::params;
use time::OffsetDateTime;

use crate::SqliteStore;
use crate::encoding::unix_micros_of;
use crate::errors::database_error;

impl SqliteStore {
    /// `Store::record_api_key_use`: every use in one transaction. Each key moves forward only,
    /// since several processes may flush their own observations in any order.
    pub(crate) async fn record_api_key_use_in_sqlite(
        &self,
        uses: &[(String, OffsetDateTime)],
    ) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        let uses: Vec<(String, i64)> = uses
            .iter()
            .map(|(key_id, used_at)| (key_id.clone(), unix_micros_of(*used_at)))
            .collect();
        self.inner
            .administer(move |connection| {
                let transaction = connection
                    .transaction()
                    .map_err(database_error("recording when API keys were last used"))?;
                {
                    let mut statement = transaction
                        .prepare_cached(
                            "UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, ?2), ?2) \
                             WHERE key_id = ?1",
                        )
                        .map_err(database_error("recording when API keys were last used"))?;
                    for (key_id, used_at) in &uses {
                        statement
                            .execute(params![key_id, used_at])
                            .map_err(database_error("recording when API keys were last used"))?;
                    }
                }
                transaction
                    .commit()
                    .map_err(database_error("recording when API keys were last used"))
            })
            .await
    }
}
