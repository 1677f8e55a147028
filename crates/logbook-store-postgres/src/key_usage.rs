//! When API keys were last used (`api_keys.last_used_at`, migration 0004). The server remembers
//! each key's latest use in memory and hands a batch here at most once a minute per key, so this
//! is one statement per flush, never a write per request.

use std::collections::HashMap;

use logbook_core::StoreError;
use time::OffsetDateTime;

use crate::PostgresStore;
use crate::encoding::unix_micros_of;
use crate::errors::database_error;

impl PostgresStore {
    /// `Store::record_api_key_use`: one `UPDATE ... FROM unnest(...)` for the whole batch. Each
    /// key moves forward only (`greatest`), since nodes flush their own observations in any order.
    pub(crate) async fn record_api_key_use_in_postgres(
        &self,
        uses: &[(String, OffsetDateTime)],
    ) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        // `UPDATE ... FROM` applies an arbitrary one of several matching rows, so a key named
        // twice in the batch is reduced to its latest use first.
        let mut latest_by_key: HashMap<&str, i64> = HashMap::with_capacity(uses.len());
        for (key_id, used_at) in uses {
            let used_at = unix_micros_of(*used_at);
            latest_by_key
                .entry(key_id.as_str())
                .and_modify(|latest| *latest = (*latest).max(used_at))
                .or_insert(used_at);
        }
        let (key_ids, used_ats): (Vec<&str>, Vec<i64>) = latest_by_key.into_iter().unzip();
        let client = self.inner.connection().await?;
        client
            .execute(
                "UPDATE api_keys k SET last_used_at = greatest(k.last_used_at, u.used_at) \
                 FROM unnest($1::text[], $2::bigint[]) AS u (key_id, used_at) \
                 WHERE k.key_id = u.key_id",
                &[&key_ids, &used_ats],
            )
            .await
            .map_err(database_error("recording when API keys were last used"))?;
        Ok(())
    }
}
