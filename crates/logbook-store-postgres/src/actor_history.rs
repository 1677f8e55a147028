//! Unfamiliar-IP detection on PostgreSQL (tables of migration 0005) and `UnfamiliarIpStore`.
//!
//! The writer holds the `FOR UPDATE` locks of every account of its group before it calls
//! `GroupDetection::load`, so the history read here cannot change until it commits, even with
//! several nodes ingesting into the same account: two nodes never both call an address new. The
//! group is decided in memory in the order the events get their `seq` (an event earlier in the
//! group is history for a later one), the writer copies each event's flags in its row, and
//! `GroupDetection::write` stores only the new history rows, in the same transaction. The flags
//! follow `logbook_core::unfamiliar_ip::ActorHistoryLookup::flags`.
//!
//! Cost: the writer remembers (account, actor, address) pairs known to be committed, so a group
//! whose pairs are all known needs no read at all; otherwise one round trip reads the rest.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use logbook_core::event::NewEvent;
use logbook_core::unfamiliar_ip::{
    ACTOR_EVENTS_SCANNED, ActorAddress, ActorHistoryLookup, KnownNetwork, NetworkName,
    RecentAddressActivity, UnfamiliarIpFlags, UnfamiliarIpStore, address_bytes, block_bounds,
    merge_actor_addresses, network_key,
};
use logbook_core::{AccountId, StoreError};

use crate::PostgresStore;
use crate::encoding::{micros_to_time, unix_micros_of};
use crate::errors::database_error;

/// Most (account, actor, address) pairs the writer remembers as known; when full the set starts
/// over (it only ever saves reads, it never decides a flag on its own).
const KNOWN_PAIRS_REMEMBERED: usize = 100_000;

type AddressKey = (i64, String, [u8; 16]);
type NetworkKey = (i64, String, Vec<u8>);

/// The (account, actor, address) pairs whose history row is committed.
#[derive(Default)]
pub(crate) struct KnownPairs {
    known: HashSet<AddressKey>,
}

impl KnownPairs {
    /// The group committed: its pairs are known from now on.
    pub(crate) fn committed(&mut self, detection: GroupDetection) {
        if self.known.len() + detection.touched.len() > KNOWN_PAIRS_REMEMBERED {
            self.known.clear();
        }
        self.known.extend(detection.touched);
    }
}

/// One group's detection: the history it read, what it decided, and what it will write.
#[derive(Default)]
pub(crate) struct GroupDetection {
    addresses_seen: HashSet<AddressKey>,
    actors_with_history: HashSet<(i64, String)>,
    networks_seen: HashSet<NetworkKey>,
    /// Every pair of the group, known once it commits.
    touched: Vec<AddressKey>,
    new_addresses: Vec<(AddressKey, i64)>,
    new_networks: Vec<NetworkKey>,
}

impl GroupDetection {
    /// Reads, in one round trip, the history of every (actor, address) of the group that
    /// `known_pairs` does not already hold. Call it under the accounts' row locks.
    pub(crate) async fn load<'event>(
        client: &impl GenericClient,
        known_pairs: &KnownPairs,
        events: impl Iterator<Item = (i64, &'event NewEvent)>,
    ) -> Result<Self, StoreError> {
        let mut detection = GroupDetection::default();
        let mut rows = Vec::new();
        let mut actors = Vec::new();
        let mut ips: Vec<Vec<u8>> = Vec::new();
        let mut networks: Vec<Vec<u8>> = Vec::new();
        let mut asked: HashSet<AddressKey> = HashSet::new();
        for (account_row, event) in events {
            let (Some(actor), Some(ip)) = (&event.actor, event.ip) else {
                continue;
            };
            let key: AddressKey = (account_row, actor.id.clone(), address_bytes(ip));
            if known_pairs.known.contains(&key) {
                detection.addresses_seen.insert(key);
            } else if asked.insert(key.clone()) {
                rows.push(account_row);
                actors.push(actor.id.clone());
                ips.push(key.2.to_vec());
                networks.push(network_key(ip));
            }
        }
        if rows.is_empty() {
            return Ok(detection);
        }
        let context = "reading actor history";
        let statement = client
            .prepare_cached(
                "SELECT p.account_row, p.actor_id, p.ip, p.network, \
                   EXISTS (SELECT 1 FROM actor_addresses a WHERE a.account_row = p.account_row AND a.actor_id = p.actor_id AND a.ip = p.ip), \
                   EXISTS (SELECT 1 FROM actor_addresses a WHERE a.account_row = p.account_row AND a.actor_id = p.actor_id), \
                   EXISTS (SELECT 1 FROM actor_networks n WHERE n.account_row = p.account_row AND n.actor_id = p.actor_id AND n.network = p.network) \
                 FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::bytea[]) AS p (account_row, actor_id, ip, network)",
            )
            .await
            .map_err(database_error(context))?;
        for row in client
            .query(&statement, &[&rows, &actors, &ips, &networks])
            .await
            .map_err(database_error(context))?
        {
            let account_row: i64 = row.get(0);
            let actor_id: String = row.get(1);
            let ip: Vec<u8> = row.get(2);
            let network: Vec<u8> = row.get(3);
            let Ok(ip) = <[u8; 16]>::try_from(ip) else {
                continue;
            };
            if row.get::<_, bool>(4) {
                detection
                    .addresses_seen
                    .insert((account_row, actor_id.clone(), ip));
            }
            if row.get::<_, bool>(5) {
                detection
                    .actors_with_history
                    .insert((account_row, actor_id.clone()));
            }
            if row.get::<_, bool>(6) {
                detection
                    .networks_seen
                    .insert((account_row, actor_id, network));
            }
        }
        Ok(detection)
    }

    /// Decides the flags of one event the writer is about to store, in `seq` order; the writer
    /// puts them in the event's own row.
    pub(crate) fn record(&mut self, account_row: i64, event: &NewEvent) -> UnfamiliarIpFlags {
        let (Some(actor), Some(ip)) = (&event.actor, event.ip) else {
            return UnfamiliarIpFlags::default();
        };
        let address: AddressKey = (account_row, actor.id.clone(), address_bytes(ip));
        self.touched.push(address.clone());
        if self.addresses_seen.contains(&address) {
            return UnfamiliarIpFlags::default();
        }
        let actor_key = (account_row, actor.id.clone());
        let network: NetworkKey = (account_row, actor.id.clone(), network_key(ip));
        let lookup = ActorHistoryLookup {
            actor_has_history: self.actors_with_history.contains(&actor_key),
            address_seen_before: false,
            network_seen_before: self.networks_seen.contains(&network),
        };
        let flags = lookup.flags();
        self.new_addresses
            .push((address.clone(), event.created_at_micros()));
        self.addresses_seen.insert(address);
        self.actors_with_history.insert(actor_key);
        if !lookup.network_seen_before {
            self.new_networks.push(network.clone());
            self.networks_seen.insert(network);
        }
        flags
    }

    /// Writes the new history rows, in the writer's transaction.
    pub(crate) async fn write(&self, client: &impl GenericClient) -> Result<(), StoreError> {
        let context = "storing actor history";
        if !self.new_addresses.is_empty() {
            let rows: Vec<i64> = self
                .new_addresses
                .iter()
                .map(|((row, _, _), _)| *row)
                .collect();
            let actors: Vec<&str> = self
                .new_addresses
                .iter()
                .map(|((_, actor, _), _)| actor.as_str())
                .collect();
            let ips: Vec<&[u8]> = self
                .new_addresses
                .iter()
                .map(|((_, _, ip), _)| ip.as_slice())
                .collect();
            let first_seen: Vec<i64> = self.new_addresses.iter().map(|(_, at)| *at).collect();
            client
                .execute(
                    "INSERT INTO actor_addresses (account_row, actor_id, ip, first_seen_at) \
                     SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::bigint[]) \
                     ON CONFLICT DO NOTHING",
                    &[&rows, &actors, &ips, &first_seen],
                )
                .await
                .map_err(database_error(context))?;
        }
        if !self.new_networks.is_empty() {
            let rows: Vec<i64> = self.new_networks.iter().map(|(row, _, _)| *row).collect();
            let actors: Vec<&str> = self
                .new_networks
                .iter()
                .map(|(_, actor, _)| actor.as_str())
                .collect();
            let networks: Vec<&[u8]> = self
                .new_networks
                .iter()
                .map(|(_, _, network)| network.as_slice())
                .collect();
            client
                .execute(
                    "INSERT INTO actor_networks (account_row, actor_id, network) \
                     SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[]) \
                     ON CONFLICT DO NOTHING",
                    &[&rows, &actors, &networks],
                )
                .await
                .map_err(database_error(context))?;
        }
        Ok(())
    }
}

async fn read_known_networks(
    client: &impl GenericClient,
    account_row: i64,
) -> Result<Vec<KnownNetwork>, StoreError> {
    let context = "reading known networks";
    let names = client
        .query(
            "SELECT name, updated_at FROM known_networks WHERE account_row = $1 ORDER BY name",
            &[&account_row],
        )
        .await
        .map_err(database_error(context))?;
    let blocks = client
        .query(
            "SELECT name, cidr FROM known_network_blocks WHERE account_row = $1 ORDER BY name, position",
            &[&account_row],
        )
        .await
        .map_err(database_error(context))?;
    names
        .iter()
        .map(|row| {
            let name: &str = row.get(0);
            let corrupt = |message: String| StoreError::Database { context, message };
            Ok(KnownNetwork {
                name: NetworkName::parse(name)
                    .map_err(|error| corrupt(format!("stored network name {name:?}: {error}")))?,
                blocks: blocks
                    .iter()
                    .filter(|block| block.get::<_, &str>(0) == name)
                    .map(|block| {
                        let cidr: &str = block.get(1);
                        cidr.parse()
                            .map_err(|_| corrupt(format!("stored block {cidr:?} of {name:?}")))
                    })
                    .collect::<Result<_, _>>()?,
                updated_at: micros_to_time(row.get(1)),
            })
        })
        .collect()
}

async fn delete_network_rows(
    client: &impl GenericClient,
    account_row: i64,
    name: &NetworkName,
) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "DELETE FROM known_network_blocks WHERE account_row = $1 AND name = $2",
            &[&account_row, &name.as_str()],
        )
        .await?;
    client
        .execute(
            "DELETE FROM known_networks WHERE account_row = $1 AND name = $2",
            &[&account_row, &name.as_str()],
        )
        .await?;
    Ok(())
}

fn ip_of_stored_bytes(bytes: &[u8]) -> Option<IpAddr> {
    let octets: [u8; 16] = bytes.try_into().ok()?;
    Some(IpAddr::V6(octets.into()).to_canonical())
}

#[async_trait]
impl UnfamiliarIpStore for PostgresStore {
    async fn known_networks(&self, account: &AccountId) -> Result<Vec<KnownNetwork>, StoreError> {
        let Some(account_row) = self.inner.account_row(account).await? else {
            return Ok(Vec::new());
        };
        let client = self.inner.connection().await?;
        read_known_networks(&client, account_row).await
    }

    async fn save_known_network(
        &self,
        account: &AccountId,
        network: &KnownNetwork,
    ) -> Result<Option<KnownNetwork>, StoreError> {
        let context = "saving a known network";
        let account_row = self
            .inner
            .account_row(account)
            .await?
            .ok_or_else(|| StoreError::AccountNotFound(account.clone()))?;
        let mut client = self.inner.connection().await?;
        let transaction = client
            .transaction()
            .await
            .map_err(database_error(context))?;
        // Two admins saving the same name at once: the second waits here, then replaces.
        transaction
            .execute(
                "SELECT 1 FROM accounts WHERE account_row = $1 FOR UPDATE",
                &[&account_row],
            )
            .await
            .map_err(database_error(context))?;
        let previous = read_known_networks(&transaction, account_row)
            .await?
            .into_iter()
            .find(|known| known.name == network.name);
        delete_network_rows(&transaction, account_row, &network.name)
            .await
            .map_err(database_error(context))?;
        transaction
            .execute(
                "INSERT INTO known_networks (account_row, name, updated_at) VALUES ($1, $2, $3)",
                &[
                    &account_row,
                    &network.name.as_str(),
                    &unix_micros_of(network.updated_at),
                ],
            )
            .await
            .map_err(database_error(context))?;
        for (position, block) in network.blocks.iter().enumerate() {
            let (first, last) = block_bounds(block);
            transaction
                .execute(
                    "INSERT INTO known_network_blocks (account_row, name, position, cidr, first_ip, last_ip) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    &[
                        &account_row,
                        &network.name.as_str(),
                        &(position as i32),
                        &block.to_string(),
                        &first.as_slice(),
                        &last.as_slice(),
                    ],
                )
                .await
                .map_err(database_error(context))?;
        }
        transaction
            .commit()
            .await
            .map_err(database_error(context))?;
        Ok(previous)
    }

    async fn delete_known_network(
        &self,
        account: &AccountId,
        name: &NetworkName,
    ) -> Result<Option<KnownNetwork>, StoreError> {
        let context = "deleting a known network";
        let Some(account_row) = self.inner.account_row(account).await? else {
            return Ok(None);
        };
        let mut client = self.inner.connection().await?;
        let transaction = client
            .transaction()
            .await
            .map_err(database_error(context))?;
        transaction
            .execute(
                "SELECT 1 FROM accounts WHERE account_row = $1 FOR UPDATE",
                &[&account_row],
            )
            .await
            .map_err(database_error(context))?;
        let previous = read_known_networks(&transaction, account_row)
            .await?
            .into_iter()
            .find(|known| known.name == *name);
        delete_network_rows(&transaction, account_row, name)
            .await
            .map_err(database_error(context))?;
        transaction
            .commit()
            .await
            .map_err(database_error(context))?;
        Ok(previous)
    }

    async fn actor_addresses(
        &self,
        account: &AccountId,
        actor_id: &str,
        limit: u32,
    ) -> Result<Vec<ActorAddress>, StoreError> {
        let context = "reading where an actor was seen";
        let Some(account_row) = self.inner.account_row(account).await? else {
            return Ok(Vec::new());
        };
        let reader = crate::AccountReader::begin(&self.inner.pool, account_row).await?;
        let scanned = i64::from(ACTOR_EVENTS_SCANNED);
        let recent_rows = reader
            .client()
            .query(
                "SELECT ip, min(created_at), max(created_at), count(*) FROM \
                 (SELECT ip, created_at FROM events WHERE account_row = $1 AND actor_id = $2 \
                  ORDER BY created_at DESC LIMIT $3) AS newest \
                 WHERE ip IS NOT NULL GROUP BY ip",
                &[&account_row, &actor_id, &scanned],
            )
            .await
            .map_err(database_error(context))?;
        let history_rows = reader
            .client()
            .query(
                "SELECT ip, first_seen_at FROM actor_addresses WHERE account_row = $1 AND actor_id = $2 \
                 ORDER BY first_seen_at DESC LIMIT $3",
                &[&account_row, &actor_id, &scanned],
            )
            .await
            .map_err(database_error(context))?;
        reader.finish().await?;
        let recent = recent_rows
            .iter()
            .filter_map(|row| {
                Some(RecentAddressActivity {
                    ip: ip_of_stored_bytes(row.get(0))?,
                    earliest_at: micros_to_time(row.get(1)),
                    latest_at: micros_to_time(row.get(2)),
                    event_count: row.get::<_, i64>(3) as u64,
                })
            })
            .collect();
        let history = history_rows
            .iter()
            .filter_map(|row| Some((ip_of_stored_bytes(row.get(0))?, micros_to_time(row.get(1)))))
            .collect();
        Ok(merge_actor_addresses(recent, history, limit as usize))
    }
}

/// The account rows of a group's events, for `GroupDetection::load`.
pub(crate) fn events_with_rows<'group>(
    events: impl Iterator<Item = &'group NewEvent>,
    rows_by_account: &'group HashMap<AccountId, i64>,
) -> impl Iterator<Item = (i64, &'group NewEvent)> {
    events.filter_map(|event| {
        rows_by_account
            .get(&event.account)
            .map(|account_row| (*account_row, event))
    })
}
