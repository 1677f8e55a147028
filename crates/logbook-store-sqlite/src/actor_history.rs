//! Unfamiliar-IP detection on SQLite (tables of migration 0005) and `UnfamiliarIpStore`.
//!
//! The writer calls `ActorHistory::record` for each event it stores, in the events' transaction,
//! right after inserting the event: the single writer holds SQLite's write lock, so the history it
//! reads is exact, and an event earlier in the same group is already history for a later one. The
//! flags follow `logbook_core::unfamiliar_ip::ActorHistoryLookup::flags`.
//!
//! Cost: most events come from an (actor, address) seen before. The writer remembers such pairs
//! in a bounded in-memory set, so those events cost one hash lookup and no read; a miss costs one
//! primary-key read, and only something new writes (the history rows and the event's flags).

use std::collections::HashSet;
use std::net::IpAddr;

use async_trait::async_trait;
use logbook_core::event::NewEvent;
use logbook_core::unfamiliar_ip::{
    ACTOR_EVENTS_SCANNED, ActorAddress, ActorHistoryLookup, KnownNetwork, NetworkName,
    RecentAddressActivity, UnfamiliarIpFlags, UnfamiliarIpStore, address_bytes, block_bounds,
    merge_actor_addresses, network_key,
};
use logbook_core::{AccountId, StoreError};
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::encoding::{micros_to_time, unix_micros_of};
use crate::errors::database_error;
use crate::{SqliteStore, account_row};

/// Most (account, actor, address) pairs the writer remembers as known. About 100 bytes each; when
/// full the set starts over (it only ever saves reads, it never decides a flag on its own).
const KNOWN_PAIRS_REMEMBERED: usize = 100_000;

type KnownPair = (i64, String, [u8; 16]);

/// The writer's side of the detector: whether it runs, and the pairs known to be in the history.
pub(crate) struct ActorHistory {
    enabled: bool,
    /// Pairs whose history row is committed.
    known: HashSet<KnownPair>,
    /// Pairs seen by the current group: known only once its transaction commits.
    pending: Vec<KnownPair>,
}

impl ActorHistory {
    /// `enabled: false` stores no history and flags nothing (`SqliteOptions::detect_unfamiliar_ips`,
    /// benchmarks only).
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            known: HashSet::new(),
            pending: Vec::new(),
        }
    }

    /// Starts a group: pairs of a group whose commit failed are not known.
    pub(crate) fn begin_group(&mut self) {
        self.pending.clear();
    }

    /// The group committed: its pairs are known from now on.
    pub(crate) fn committed(&mut self) {
        if self.known.len() + self.pending.len() > KNOWN_PAIRS_REMEMBERED {
            self.known.clear();
        }
        self.known.extend(self.pending.drain(..));
    }

    /// Records the event's (actor, address) and (actor, network) in the account's history and
    /// stores its flags on the row `event_row` (already inserted), returning them.
    pub(crate) fn record(
        &mut self,
        transaction: &Transaction<'_>,
        account_row: i64,
        event_row: i64,
        event: &NewEvent,
    ) -> rusqlite::Result<UnfamiliarIpFlags> {
        let (true, Some(actor), Some(ip)) = (self.enabled, &event.actor, event.ip) else {
            return Ok(UnfamiliarIpFlags::default());
        };
        let address = address_bytes(ip);
        let pair: KnownPair = (account_row, actor.id.clone(), address);
        if self.known.contains(&pair) {
            return Ok(UnfamiliarIpFlags::default());
        }
        let address_seen_before = transaction
            .prepare_cached(
                "SELECT 1 FROM actor_addresses WHERE account_row = ?1 AND actor_id = ?2 AND ip = ?3",
            )?
            .query_row(params![account_row, actor.id, address.as_slice()], |_| {
                Ok(())
            })
            .optional()?
            .is_some();
        if address_seen_before {
            self.pending.push(pair);
            return Ok(UnfamiliarIpFlags::default());
        }
        let actor_has_history = transaction
            .prepare_cached(
                "SELECT 1 FROM actor_addresses WHERE account_row = ?1 AND actor_id = ?2 LIMIT 1",
            )?
            .query_row(params![account_row, actor.id], |_| Ok(()))
            .optional()?
            .is_some();
        let network = network_key(ip);
        let network_seen_before = transaction
            .prepare_cached(
                "SELECT 1 FROM actor_networks WHERE account_row = ?1 AND actor_id = ?2 AND network = ?3",
            )?
            .query_row(params![account_row, actor.id, network], |_| Ok(()))
            .optional()?
            .is_some();
        transaction
            .prepare_cached(
                "INSERT INTO actor_addresses (account_row, actor_id, ip, first_seen_at) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                account_row,
                actor.id,
                address.as_slice(),
                event.created_at_micros()
            ])?;
        if !network_seen_before {
            transaction
                .prepare_cached(
                    "INSERT INTO actor_networks (account_row, actor_id, network) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![account_row, actor.id, network])?;
        }
        let flags = ActorHistoryLookup {
            actor_has_history,
            address_seen_before,
            network_seen_before,
        }
        .flags();
        if flags != UnfamiliarIpFlags::default() {
            transaction
                .prepare_cached(
                    "UPDATE events SET new_ip = ?2, new_network = ?3 WHERE event_row = ?1",
                )?
                .execute(params![event_row, flags.new_ip, flags.new_network])?;
        }
        self.pending.push(pair);
        Ok(flags)
    }
}

fn read_known_networks(
    connection: &Connection,
    account_row: i64,
) -> Result<Vec<KnownNetwork>, StoreError> {
    let context = "reading known networks";
    let names: Vec<(String, i64)> = connection
        .prepare_cached(
            "SELECT name, updated_at FROM known_networks WHERE account_row = ?1 ORDER BY name",
        )
        .map_err(database_error(context))?
        .query_map([account_row], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(database_error(context))?
        .collect::<Result<_, _>>()
        .map_err(database_error(context))?;
    let blocks: Vec<(String, String)> = connection
        .prepare_cached(
            "SELECT name, cidr FROM known_network_blocks WHERE account_row = ?1 ORDER BY name, position",
        )
        .map_err(database_error(context))?
        .query_map([account_row], |row| Ok((row.get(0)?, row.get(1)?)))
        .map_err(database_error(context))?
        .collect::<Result<_, _>>()
        .map_err(database_error(context))?;
    names
        .into_iter()
        .map(|(name, updated_at)| {
            let corrupt = |message: String| StoreError::Database { context, message };
            Ok(KnownNetwork {
                name: NetworkName::parse(&name)
                    .map_err(|error| corrupt(format!("stored network name {name:?}: {error}")))?,
                blocks: blocks
                    .iter()
                    .filter(|(block_name, _)| *block_name == name)
                    .map(|(_, cidr)| {
                        cidr.parse()
                            .map_err(|_| corrupt(format!("stored block {cidr:?} of {name:?}")))
                    })
                    .collect::<Result<_, _>>()?,
                updated_at: micros_to_time(updated_at),
            })
        })
        .collect()
}

fn delete_network_rows(
    transaction: &Transaction<'_>,
    account_row: i64,
    name: &NetworkName,
) -> rusqlite::Result<()> {
    transaction.execute(
        "DELETE FROM known_network_blocks WHERE account_row = ?1 AND name = ?2",
        params![account_row, name.as_str()],
    )?;
    transaction.execute(
        "DELETE FROM known_networks WHERE account_row = ?1 AND name = ?2",
        params![account_row, name.as_str()],
    )?;
    Ok(())
}

fn ip_of_stored_bytes(bytes: &[u8]) -> Option<IpAddr> {
    let octets: [u8; 16] = bytes.try_into().ok()?;
    Some(IpAddr::V6(octets.into()).to_canonical())
}

#[async_trait]
impl UnfamiliarIpStore for SqliteStore {
    async fn known_networks(&self, account: &AccountId) -> Result<Vec<KnownNetwork>, StoreError> {
        let account = account.clone();
        self.inner
            .read(move |connection| match account_row(connection, &account)? {
                Some(account_row) => read_known_networks(connection, account_row),
                None => Ok(Vec::new()),
            })
            .await
    }

    async fn save_known_network(
        &self,
        account: &AccountId,
        network: &KnownNetwork,
    ) -> Result<Option<KnownNetwork>, StoreError> {
        let account = account.clone();
        let network = network.clone();
        self.inner
            .administer(move |connection| {
                let context = "saving a known network";
                let account_row = account_row(connection, &account)?
                    .ok_or_else(|| StoreError::AccountNotFound(account.clone()))?;
                let transaction = connection.transaction().map_err(database_error(context))?;
                let previous = read_known_networks(&transaction, account_row)?
                    .into_iter()
                    .find(|known| known.name == network.name);
                delete_network_rows(&transaction, account_row, &network.name)
                    .map_err(database_error(context))?;
                transaction
                    .execute(
                        "INSERT INTO known_networks (account_row, name, updated_at) VALUES (?1, ?2, ?3)",
                        params![
                            account_row,
                            network.name.as_str(),
                            unix_micros_of(network.updated_at)
                        ],
                    )
                    .map_err(database_error(context))?;
                for (position, block) in network.blocks.iter().enumerate() {
                    let (first, last) = block_bounds(block);
                    transaction
                        .execute(
                            "INSERT INTO known_network_blocks (account_row, name, position, cidr, first_ip, last_ip) \
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                            params![
                                account_row,
                                network.name.as_str(),
                                position as i64,
                                block.to_string(),
                                first.as_slice(),
                                last.as_slice()
                            ],
                        )
                        .map_err(database_error(context))?;
                }
                transaction.commit().map_err(database_error(context))?;
                Ok(previous)
            })
            .await
    }

    async fn delete_known_network(
        &self,
        account: &AccountId,
        name: &NetworkName,
    ) -> Result<Option<KnownNetwork>, StoreError> {
        let account = account.clone();
        let name = name.clone();
        self.inner
            .administer(move |connection| {
                let context = "deleting a known network";
                let Some(account_row) = account_row(connection, &account)? else {
                    return Ok(None);
                };
                let transaction = connection.transaction().map_err(database_error(context))?;
                let previous = read_known_networks(&transaction, account_row)?
                    .into_iter()
                    .find(|known| known.name == name);
                delete_network_rows(&transaction, account_row, &name)
                    .map_err(database_error(context))?;
                transaction.commit().map_err(database_error(context))?;
                Ok(previous)
            })
            .await
    }

    async fn actor_addresses(
        &self,
        account: &AccountId,
        actor_id: &str,
        limit: u32,
    ) -> Result<Vec<ActorAddress>, StoreError> {
        let account = account.clone();
        let actor_id = actor_id.to_owned();
        self.inner
            .read(move |connection| {
                let context = "reading where an actor was seen";
                let Some(account_row) = account_row(connection, &account)? else {
                    return Ok(Vec::new());
                };
                // The actor's newest events through events_by_account_actor, bounded.
                let recent: Vec<RecentAddressActivity> = connection
                    .prepare_cached(
                        "SELECT ip, min(created_at), max(created_at), count(*) FROM \
                         (SELECT ip, created_at FROM events WHERE account_row = ?1 AND actor_id = ?2 \
                          ORDER BY created_at DESC LIMIT ?3) \
                         WHERE ip IS NOT NULL GROUP BY ip",
                    )
                    .map_err(database_error(context))?
                    .query_map(params![account_row, actor_id, ACTOR_EVENTS_SCANNED], |row| {
                        Ok((
                            row.get::<_, Vec<u8>>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, i64>(2)?,
                            row.get::<_, i64>(3)?,
                        ))
                    })
                    .map_err(database_error(context))?
                    .filter_map(|row| match row {
                        Ok((ip, earliest, latest, count)) => {
                            ip_of_stored_bytes(&ip).map(|ip| {
                                Ok(RecentAddressActivity {
                                    ip,
                                    earliest_at: micros_to_time(earliest),
                                    latest_at: micros_to_time(latest),
                                    event_count: count as u64,
                                })
                            })
                        }
                        Err(error) => Some(Err(error)),
                    })
                    .collect::<Result<_, _>>()
                    .map_err(database_error(context))?;
                let history: Vec<(IpAddr, time::OffsetDateTime)> = connection
                    .prepare_cached(
                        "SELECT ip, first_seen_at FROM actor_addresses WHERE account_row = ?1 AND actor_id = ?2 \
                         ORDER BY first_seen_at DESC LIMIT ?3",
                    )
                    .map_err(database_error(context))?
                    .query_map(
                        params![account_row, actor_id, ACTOR_EVENTS_SCANNED],
                        |row| Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, i64>(1)?)),
                    )
                    .map_err(database_error(context))?
                    .filter_map(|row| match row {
                        Ok((ip, first_seen)) => ip_of_stored_bytes(&ip)
                            .map(|ip| Ok((ip, micros_to_time(first_seen)))),
                        Err(error) => Some(Err(error)),
                    })
                    .collect::<Result<_, _>>()
                    .map_err(database_error(context))?;
                Ok(merge_actor_addresses(recent, history, limit as usize))
            })
            .await
    }
}
