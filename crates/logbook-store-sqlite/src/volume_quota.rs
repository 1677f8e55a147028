//! Stored-volume quotas in the SQLite writer (issue 7; see `logbook_core::volume_quota`). One
//! group commit reads each touched account's quotas and usage once, refuses a whole request that
//! would go over before any of its events is written, counts every stored event, and writes the
//! usage rows back in the same transaction. SQLite's single writer (an IMMEDIATE transaction)
//! serializes every process, so the read-check-write cannot race.

// hashbrown's foldhash, not SipHash: the writer looks these up for every event.
use hashbrown::hash_map::Entry;
use hashbrown::{HashMap, HashSet};

use logbook_core::volume_quota::{RequestVolume, VolumeQuota, VolumeUsage, check_request};
use logbook_core::{AccountId, StoreError};
use rusqlite::{OptionalExtension, Transaction, params};
use time::OffsetDateTime;

use crate::writer::PreparedEvent;

struct AccountVolume {
    account: AccountId,
    quota: VolumeQuota,
    usage: VolumeUsage,
    /// `usage` plus every new event of the requests of this group accepted so far: requests are
    /// checked, in arrival order, before any event of the group is written.
    usage_with_accepted_requests: VolumeUsage,
    counted_in_this_group: bool,
}

/// The quotas and usage of the accounts one group commit touches.
#[derive(Default)]
pub(crate) struct GroupVolumes {
    accounts: HashMap<i64, AccountVolume>,
    /// The idempotency keys of accepted requests of this group, of accounts with a quota: a later
    /// event with one of them is a duplicate and adds nothing.
    keys_of_accepted_requests: HashSet<(i64, String)>,
}

fn count_of(value: Option<i64>) -> u64 {
    value.map_or(0, |value| u64::try_from(value).unwrap_or(0))
}

impl GroupVolumes {
    fn load(
        &mut self,
        transaction: &Transaction<'_>,
        account_row: i64,
        account: &AccountId,
    ) -> Result<&mut AccountVolume, rusqlite::Error> {
        match self.accounts.entry(account_row) {
            Entry::Occupied(entry) => Ok(entry.into_mut()),
            Entry::Vacant(entry) => {
                let volume = transaction
                    .prepare_cached(
                        "SELECT l.events_per_day, l.stored_bytes, u.usage_day, \
                         u.events_on_usage_day, u.stored_bytes FROM accounts a \
                         LEFT JOIN account_limits l ON l.account_row = a.account_row \
                         LEFT JOIN account_volume_usage u ON u.account_row = a.account_row \
                         WHERE a.account_row = ?1",
                    )?
                    .query_row([account_row], |row| {
                        let quota_of = |index: usize| -> rusqlite::Result<Option<u64>> {
                            Ok(row
                                .get::<_, Option<i64>>(index)?
                                .map(|value| count_of(Some(value))))
                        };
                        let usage = VolumeUsage {
                            usage_day: row.get::<_, Option<i64>>(2)?.unwrap_or(0),
                            events_on_usage_day: count_of(row.get(3)?),
                            stored_bytes: count_of(row.get(4)?),
                        };
                        Ok(AccountVolume {
                            account: account.clone(),
                            quota: VolumeQuota {
                                events_per_day: quota_of(0)?,
                                stored_bytes: quota_of(1)?,
                            },
                            usage,
                            usage_with_accepted_requests: usage,
                            counted_in_this_group: false,
                        })
                    })?;
                Ok(entry.insert(volume))
            }
        }
    }

    /// Called for each request of a group in arrival order, before any event of the group is
    /// written. `Ok(Some(refusal))`: the request would take an account over a quota, on top of
    /// the requests accepted before it, and must be answered with the refusal and not written.
    /// Only new events count: a key already stored (`is_stored_key`) or in an earlier accepted
    /// request of this group is answered from that event.
    pub(crate) fn refusal_for(
        &mut self,
        transaction: &Transaction<'_>,
        events: &[PreparedEvent],
        row_of: &mut dyn FnMut(&AccountId, OffsetDateTime) -> Result<i64, rusqlite::Error>,
    ) -> Result<Option<StoreError>, rusqlite::Error> {
        let mut rows = Vec::with_capacity(events.len());
        let mut any_quota = false;
        for prepared in events {
            let account_row = row_of(&prepared.event.account, prepared.event.received_at)?;
            any_quota |= !self
                .load(transaction, account_row, &prepared.event.account)?
                .quota
                .is_unlimited();
            rows.push(account_row);
        }
        if !any_quota {
            return Ok(None);
        }
        let mut requested: HashMap<i64, RequestVolume> = HashMap::new();
        let mut keys_in_request: HashSet<(i64, &str)> = HashSet::new();
        let mut new_events: Vec<(i64, &PreparedEvent)> = Vec::new();
        for (prepared, &account_row) in events.iter().zip(&rows) {
            if self.accounts[&account_row].quota.is_unlimited() {
                continue;
            }
            if let Some(key) = &prepared.event.key {
                let seen_before = !keys_in_request.insert((account_row, key.as_str()))
                    || self
                        .keys_of_accepted_requests
                        .contains(&(account_row, key.clone()))
                    || is_stored_key(transaction, account_row, key)?;
                if seen_before {
                    continue;
                }
            }
            requested
                .entry(account_row)
                .or_default()
                .add(prepared.event.received_at, prepared.body.len() as u64);
            new_events.push((account_row, prepared));
        }
        for (account_row, request) in &requested {
            let volume = &self.accounts[account_row];
            if let Err(refusal) = check_request(
                &volume.account,
                &volume.quota,
                &volume.usage_with_accepted_requests,
                request,
            ) {
                return Ok(Some(refusal));
            }
        }
        for (account_row, prepared) in new_events {
            if let Some(volume) = self.accounts.get_mut(&account_row) {
                volume
                    .usage_with_accepted_requests
                    .count(prepared.event.received_at, prepared.body.len() as u64);
            }
            if let Some(key) = &prepared.event.key {
                self.keys_of_accepted_requests
                    .insert((account_row, key.clone()));
            }
        }
        Ok(None)
    }

    /// Counts one stored event toward its account's usage.
    pub(crate) fn count_stored(
        &mut self,
        transaction: &Transaction<'_>,
        account_row: i64,
        prepared: &PreparedEvent,
    ) -> Result<(), rusqlite::Error> {
        let volume = self.load(transaction, account_row, &prepared.event.account)?;
        volume
            .usage
            .count(prepared.event.received_at, prepared.body.len() as u64);
        volume.counted_in_this_group = true;
        Ok(())
    }

    /// Writes the usage of every account that stored events, before the group commits.
    pub(crate) fn write(&self, transaction: &Transaction<'_>) -> Result<(), rusqlite::Error> {
        let mut upsert = transaction.prepare_cached(
            "INSERT INTO account_volume_usage (account_row, usage_day, events_on_usage_day, stored_bytes) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (account_row) DO UPDATE SET \
             usage_day = excluded.usage_day, events_on_usage_day = excluded.events_on_usage_day, \
             stored_bytes = excluded.stored_bytes",
        )?;
        for (account_row, volume) in &self.accounts {
            if volume.counted_in_this_group {
                upsert.execute(params![
                    account_row,
                    volume.usage.usage_day,
                    i64::try_from(volume.usage.events_on_usage_day).unwrap_or(i64::MAX),
                    i64::try_from(volume.usage.stored_bytes).unwrap_or(i64::MAX),
                ])?;
            }
        }
        Ok(())
    }
}

fn is_stored_key(
    transaction: &Transaction<'_>,
    account_row: i64,
    key: &str,
) -> Result<bool, rusqlite::Error> {
    Ok(transaction
        .prepare_cached("SELECT 1 FROM events WHERE account_row = ?1 AND idempotency_key = ?2")?
        .query_row(params![account_row, key], |_| Ok(()))
        .optional()?
        .is_some())
}
