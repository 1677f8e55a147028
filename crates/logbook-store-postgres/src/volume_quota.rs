//! Stored-volume quotas in the PostgreSQL writer (issue 7; see `logbook_core::volume_quota`).
//! The group commit reads the touched accounts' quotas and usage after locking their rows
//! (`FOR UPDATE`), so a second node writing to the same account waits and then sees this one's
//! count: nodes writing at once cannot overshoot. Before anything is copied, each request is
//! admitted or refused whole; the usage rows are written back in the same transaction.

use std::collections::{HashMap, HashSet};

use deadpool_postgres::Transaction;
use logbook_core::volume_quota::{RequestVolume, VolumeQuota, VolumeUsage, check_request};
use logbook_core::{AccountId, StoreError};

use crate::errors::database_error;
use crate::writer::AppendRequest;

#[derive(Default)]
struct AccountVolume {
    quota: VolumeQuota,
    usage: VolumeUsage,
    counted_in_this_group: bool,
}

/// The quotas and usage of the accounts one group commit touches (their rows locked).
pub(crate) struct GroupVolumes {
    accounts: HashMap<i64, AccountVolume>,
}

fn count_of(value: Option<i64>) -> u64 {
    value.map_or(0, |value| u64::try_from(value).unwrap_or(0))
}

impl GroupVolumes {
    /// Reads the quotas and usage of `locked_rows`; call only with their rows locked.
    pub(crate) async fn load(
        transaction: &Transaction<'_>,
        locked_rows: &[i64],
    ) -> Result<Self, StoreError> {
        let statement = transaction
            .prepare_cached(
                "SELECT a.account_row, l.events_per_day, l.stored_bytes, u.usage_day, \
                 u.events_on_usage_day, u.stored_bytes \
                 FROM unnest($1::bigint[]) AS a (account_row) \
                 LEFT JOIN account_limits l ON l.account_row = a.account_row \
                 LEFT JOIN account_volume_usage u ON u.account_row = a.account_row",
            )
            .await
            .map_err(database_error("reading volume quotas"))?;
        let mut accounts = HashMap::with_capacity(locked_rows.len());
        for row in transaction
            .query(&statement, &[&locked_rows])
            .await
            .map_err(database_error("reading volume quotas"))?
        {
            let quota_of = |index: usize| {
                row.get::<_, Option<i64>>(index)
                    .map(|value| count_of(Some(value)))
            };
            accounts.insert(
                row.get::<_, i64>(0),
                AccountVolume {
                    quota: VolumeQuota {
                        events_per_day: quota_of(1),
                        stored_bytes: quota_of(2),
                    },
                    usage: VolumeUsage {
                        usage_day: row.get::<_, Option<i64>>(3).unwrap_or(0),
                        events_on_usage_day: count_of(row.get(4)),
                        stored_bytes: count_of(row.get(5)),
                    },
                    counted_in_this_group: false,
                },
            );
        }
        Ok(Self { accounts })
    }

    /// Admits or refuses each request of the group, in order, and counts the new events of the
    /// admitted ones (exactly those the writer then stores). `stored_keys` are the group's keys
    /// already stored; a key stored by an earlier admitted request is a duplicate too, a key of a
    /// refused request is not. The answer has one entry per request: `Some(refusal)` is not
    /// to be written.
    pub(crate) fn admit_requests(
        &mut self,
        group: &[AppendRequest],
        rows_by_account: &HashMap<AccountId, i64>,
        is_stored_key: &dyn Fn(i64, &str) -> bool,
    ) -> Vec<Option<StoreError>> {
        let mut keys_of_admitted: HashSet<(i64, &str)> = HashSet::new();
        let mut refusals = Vec::with_capacity(group.len());
        for request in group {
            let mut keys_of_request: HashSet<(i64, &str)> = HashSet::new();
            let mut new_events = Vec::with_capacity(request.events.len());
            let mut requested: HashMap<i64, (&AccountId, RequestVolume)> = HashMap::new();
            for prepared in &request.events {
                let account_row = rows_by_account[&prepared.event.account];
                if let Some(key) = &prepared.event.key {
                    let seen_before = !keys_of_request.insert((account_row, key.as_str()))
                        || keys_of_admitted.contains(&(account_row, key.as_str()))
                        || is_stored_key(account_row, key);
                    if seen_before {
                        continue;
                    }
                }
                requested
                    .entry(account_row)
                    .or_insert_with(|| (&prepared.event.account, RequestVolume::default()))
                    .1
                    .add(prepared.event.received_at, prepared.body.len() as u64);
                new_events.push((account_row, prepared));
            }
            let refusal = requested
                .iter()
                .find_map(|(account_row, (account, request))| {
                    let volume = self.accounts.entry(*account_row).or_default();
                    check_request(account, &volume.quota, &volume.usage, request).err()
                });
            if refusal.is_none() {
                keys_of_admitted.extend(keys_of_request);
                for (account_row, prepared) in new_events {
                    let volume = self.accounts.entry(account_row).or_default();
                    volume
                        .usage
                        .count(prepared.event.received_at, prepared.body.len() as u64);
                    volume.counted_in_this_group = true;
                }
            }
            refusals.push(refusal);
        }
        refusals
    }

    /// Writes the usage of every account that stored events, before the group commits.
    pub(crate) async fn write(&self, transaction: &Transaction<'_>) -> Result<(), StoreError> {
        let mut account_rows = Vec::new();
        let mut usage_days = Vec::new();
        let mut events_on_usage_days = Vec::new();
        let mut stored_bytes = Vec::new();
        for (account_row, volume) in &self.accounts {
            if volume.counted_in_this_group {
                account_rows.push(*account_row);
                usage_days.push(volume.usage.usage_day);
                events_on_usage_days
                    .push(i64::try_from(volume.usage.events_on_usage_day).unwrap_or(i64::MAX));
                stored_bytes.push(i64::try_from(volume.usage.stored_bytes).unwrap_or(i64::MAX));
            }
        }
        if account_rows.is_empty() {
            return Ok(());
        }
        transaction
            .execute(
                "INSERT INTO account_volume_usage (account_row, usage_day, events_on_usage_day, stored_bytes) \
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[]) \
                 ON CONFLICT (account_row) DO UPDATE SET usage_day = excluded.usage_day, \
                 events_on_usage_day = excluded.events_on_usage_day, \
                 stored_bytes = excluded.stored_bytes",
                &[&account_rows, &usage_days, &events_on_usage_days, &stored_bytes],
            )
            .await
            .map_err(database_error("writing volume usage"))?;
        Ok(())
    }
}
