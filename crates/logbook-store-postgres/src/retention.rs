//! `RetentionStore` on PostgreSQL: settings, holds and prefixes through the shared SQL
//! (`logbook_store_sql::retention`), and the deletion of pruned events, PostgreSQL's own: it runs
//! as the connecting role on a connection of its own, scoped to the account for row-level
//! security, and under the account's row lock, the same lock the writers take first, so it never
//! deadlocks with them and several nodes never delete one batch twice.

use async_trait::async_trait;
use logbook_core::personal_data::{PersonalDataBatch, PersonalDataRemoved};
use logbook_core::retention::{AccountRetention, LegalHold, PrunedPrefix};
use logbook_core::store::RetentionStore;
use logbook_core::{AccountId, StoreError};
use logbook_store_sql::day_counts::DayCountChanges;
use logbook_store_sql::personal_data::EventKeys;
use time::OffsetDateTime;

use crate::PostgresStore;
use crate::errors::{database_error, pool_error};

#[async_trait]
impl RetentionStore for PostgresStore {
    async fn account_retention(&self, account: &AccountId) -> Result<AccountRetention, StoreError> {
        self.shared.account_retention(account).await
    }

    async fn all_account_retention(
        &self,
    ) -> Result<Vec<(AccountId, AccountRetention)>, StoreError> {
        self.shared.all_account_retention().await
    }

    async fn set_retention_days(
        &self,
        account: &AccountId,
        retention_days: Option<u32>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.shared
            .set_retention_days(account, retention_days, now)
            .await
    }

    async fn set_legal_hold(
        &self,
        account: &AccountId,
        hold: Option<LegalHold>,
        now: OffsetDateTime,
    ) -> Result<Option<LegalHold>, StoreError> {
        self.shared.set_legal_hold(account, hold, now).await
    }

    async fn pruned_prefix(&self, account: &AccountId) -> Result<Option<PrunedPrefix>, StoreError> {
        self.shared.pruned_prefix(account).await
    }

    async fn record_prune(
        &self,
        account: &AccountId,
        pruned_below_seq: u64,
        prefix: &PrunedPrefix,
    ) -> Result<(), StoreError> {
        self.shared
            .record_prune(account, pruned_below_seq, prefix)
            .await
    }

    async fn set_personal_data_policy(
        &self,
        account: &AccountId,
        personal_data_days: Option<u32>,
        keep_network: Option<bool>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.shared
            .set_personal_data_policy(account, personal_data_days, keep_network, now)
            .await
    }

    async fn set_personal_metadata_fields(
        &self,
        account: &AccountId,
        fields: Vec<String>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.shared
            .set_personal_metadata_fields(account, fields, now)
            .await
    }

    async fn remove_personal_data(
        &self,
        account: &AccountId,
        batch: PersonalDataBatch,
    ) -> Result<PersonalDataRemoved, StoreError> {
        let keys = EventKeys {
            column: "seq",
            key_of_first_event: |_| 0,
        };
        self.shared.remove_personal_data(account, batch, keys).await
    }

    async fn delete_pruned_events(
        &self,
        account: &AccountId,
        max_events: u32,
    ) -> Result<u64, StoreError> {
        const DELETING: &str = "deleting pruned events";
        let Some(account_row) = self.inner.account_row(account).await? else {
            return Err(StoreError::AccountNotFound(account.clone()));
        };
        let mut client = self
            .inner
            .maintenance_pool
            .get()
            .await
            .map_err(pool_error(DELETING))?;
        let transaction = client
            .transaction()
            .await
            .map_err(database_error(DELETING))?;
        // The account row is an integer from our own table: formatting it in is safe.
        transaction
            .batch_execute(&format!("SET LOCAL logbook.account_row = '{account_row}'"))
            .await
            .map_err(database_error(DELETING))?;
        transaction
            .query_one(
                "SELECT 1 FROM accounts WHERE account_row = $1 FOR UPDATE",
                &[&account_row],
            )
            .await
            .map_err(database_error(DELETING))?;
        let state = transaction
            .query_one(
                "SELECT (SELECT legal_hold_since IS NOT NULL FROM account_retention WHERE account_row = $1), \
                 (SELECT pruned_below_seq FROM pruned_prefixes WHERE account_row = $1)",
                &[&account_row],
            )
            .await
            .map_err(database_error(DELETING))?;
        if state.get::<_, Option<bool>>(0).unwrap_or(false) {
            return Err(StoreError::LegalHold(account.clone()));
        }
        let Some(pruned_below) = state.get::<_, Option<i64>>(1) else {
            return Ok(0);
        };
        let deleted = transaction
            .query(
                "WITH doomed AS (SELECT seq FROM events WHERE account_row = $1 AND seq < $2 \
                 ORDER BY seq LIMIT $3) \
                 DELETE FROM events e USING doomed WHERE e.account_row = $1 AND e.seq = doomed.seq \
                 RETURNING e.seq, e.body, e.created_at",
                &[&account_row, &pruned_below, &i64::from(max_events)],
            )
            .await
            .map_err(database_error(DELETING))?;
        let mut freed_bytes = 0_i64;
        let mut day_counts = DayCountChanges::default();
        let (mut target_ids, mut target_seqs): (Vec<String>, Vec<i64>) = (Vec::new(), Vec::new());
        for row in &deleted {
            let seq: i64 = row.get(0);
            let body: &str = row.get(1);
            freed_bytes += body.len() as i64;
            day_counts.count(account_row, row.get(2));
            // By the whole key of each target row the writer stored (`targets[].id`): the key
            // leads with the target id, so a delete by account and seq alone read every target
            // row of the account (15 ms of a 22 ms batch, holding the account's row lock that the
            // writer's groups wait for; the benchmark's `--pruner --database`).
            let stored = serde_json::from_str::<serde_json::Value>(body).ok();
            for target_id in stored
                .as_ref()
                .and_then(|value| value.get("targets")?.as_array())
                .into_iter()
                .flatten()
                .filter_map(|target| target.get("id")?.as_str())
            {
                target_ids.push(target_id.to_owned());
                target_seqs.push(seq);
            }
        }
        transaction
            .execute(
                "DELETE FROM event_targets WHERE account_row = $1 \
                 AND (target_id, seq) IN (SELECT * FROM unnest($2::text[], $3::bigint[]))",
                &[&account_row, &target_ids, &target_seqs],
            )
            .await
            .map_err(database_error(DELETING))?;
        // The timeline's day counts lose the deleted events in the same transaction; a day
        // left with none has no row, as if it had never had any.
        let (day_starts, day_events): (Vec<i64>, Vec<i64>) = day_counts
            .rows()
            .into_iter()
            .map(|(_, day_start, events)| (day_start, events))
            .unzip();
        transaction
            .execute(
                "UPDATE event_day_counts c SET events = c.events - u.events \
                 FROM unnest($2::bigint[], $3::bigint[]) AS u (day_start, events) \
                 WHERE c.account_row = $1 AND c.day_start = u.day_start",
                &[&account_row, &day_starts, &day_events],
            )
            .await
            .map_err(database_error(DELETING))?;
        transaction
            .execute(
                "DELETE FROM event_day_counts WHERE account_row = $1 AND day_start = ANY($2) AND events <= 0",
                &[&account_row, &day_starts],
            )
            .await
            .map_err(database_error(DELETING))?;
        if deleted.len() < max_events as usize {
            // The prefix is gone: so are its nodes (its compact range stands for them) and the
            // checkpoints of trees smaller than what is left.
            transaction
                .execute(
                    "DELETE FROM tree_nodes WHERE account_row = $1 AND ((node_index + 1) << level) <= $2",
                    &[&account_row, &pruned_below],
                )
                .await
                .map_err(database_error(DELETING))?;
            transaction
                .execute(
                    "DELETE FROM checkpoints WHERE account_row = $1 AND tree_size < $2",
                    &[&account_row, &pruned_below],
                )
                .await
                .map_err(database_error(DELETING))?;
        }
        transaction
            .execute(
                "UPDATE account_volume_usage SET stored_bytes = greatest(stored_bytes - $2, 0) WHERE account_row = $1",
                &[&account_row, &freed_bytes],
            )
            .await
            .map_err(database_error(DELETING))?;
        transaction
            .commit()
            .await
            .map_err(database_error(DELETING))?;
        Ok(deleted.len() as u64)
    }
}
