//! Unfamiliar-IP and new-country detection on PostgreSQL (tables of migrations 0005 and 0018). Known networks and "where was
//! this actor seen" (`UnfamiliarIpStore`) are shared SQL (`logbook_store_sql::unfamiliar_ip`).
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
//! whose pairs are all known needs no read at all; otherwise one round trip reads the rest (and
//! one more for the (actor, country) pairs not known, keyed by the country of each event's
//! location).

use std::collections::{HashMap, HashSet};

use deadpool_postgres::GenericClient;
use logbook_core::event::NewEvent;
use logbook_core::unfamiliar_ip::{
    ActorHistoryLookup, CountryHistoryLookup, UnfamiliarIpFlags, address_bytes,
    event_becomes_history, network_key,
};
use logbook_core::{AccountId, StoreError};

use crate::errors::database_error;

/// Most (account, actor, address) pairs the writer remembers as known; when full the set starts
/// over (it only ever saves reads, it never decides a flag on its own).
const KNOWN_PAIRS_REMEMBERED: usize = 100_000;

type AddressKey = (i64, String, [u8; 16]);
type NetworkKey = (i64, String, Vec<u8>);
/// (account, actor, country code).
type CountryKey = (i64, String, String);

/// The (account, actor, address) pairs whose history row is committed.
#[derive(Default)]
pub(crate) struct KnownPairs {
    known: HashSet<AddressKey>,
    known_countries: HashSet<CountryKey>,
}

impl KnownPairs {
    /// The group committed: its pairs are known from now on.
    pub(crate) fn committed(&mut self, detection: GroupDetection) {
        if self.known.len() + detection.touched.len() > KNOWN_PAIRS_REMEMBERED {
            self.known.clear();
        }
        self.known.extend(detection.touched);
        if self.known_countries.len() + detection.touched_countries.len() > KNOWN_PAIRS_REMEMBERED {
            self.known_countries.clear();
        }
        self.known_countries.extend(detection.touched_countries);
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
    countries_seen: HashSet<CountryKey>,
    actors_with_country_history: HashSet<(i64, String)>,
    /// Every (actor, country) of the group in the history once it commits.
    touched_countries: Vec<CountryKey>,
    new_countries: Vec<(CountryKey, i64)>,
}

impl GroupDetection {
    /// Reads, in one round trip, the history of every (actor, address) of the group that
    /// `known_pairs` does not already hold. Call it under the accounts' row locks.
    pub(crate) async fn load<'event>(
        client: &impl GenericClient,
        known_pairs: &KnownPairs,
        events: impl Iterator<Item = (i64, &'event NewEvent, Option<&'event str>)>,
    ) -> Result<Self, StoreError> {
        let mut detection = GroupDetection::default();
        let mut rows = Vec::new();
        let mut actors = Vec::new();
        let mut ips: Vec<Vec<u8>> = Vec::new();
        let mut networks: Vec<Vec<u8>> = Vec::new();
        let mut asked: HashSet<AddressKey> = HashSet::new();
        let mut countries_asked: HashSet<CountryKey> = HashSet::new();
        for (account_row, event, country_code) in events {
            if let (Some(actor), Some(country_code)) = (&event.actor, country_code) {
                let key: CountryKey = (account_row, actor.id.clone(), country_code.to_owned());
                if known_pairs.known_countries.contains(&key) {
                    detection.countries_seen.insert(key);
                } else {
                    countries_asked.insert(key);
                }
            }
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
        detection
            .load_countries(client, countries_asked.into_iter().collect())
            .await?;
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

    /// Reads, in one round trip, whether each (actor, country) not already known is in the
    /// history and whether its actor has any country there.
    async fn load_countries(
        &mut self,
        client: &impl GenericClient,
        asked: Vec<CountryKey>,
    ) -> Result<(), StoreError> {
        if asked.is_empty() {
            return Ok(());
        }
        let rows: Vec<i64> = asked.iter().map(|(row, _, _)| *row).collect();
        let actors: Vec<&str> = asked.iter().map(|(_, actor, _)| actor.as_str()).collect();
        let countries: Vec<&str> = asked
            .iter()
            .map(|(_, _, country)| country.as_str())
            .collect();
        let context = "reading actor countries";
        let statement = client
            .prepare_cached(
                "SELECT p.account_row, p.actor_id, p.country_code, \
                   EXISTS (SELECT 1 FROM actor_countries c WHERE c.account_row = p.account_row AND c.actor_id = p.actor_id AND c.country_code = p.country_code), \
                   EXISTS (SELECT 1 FROM actor_countries c WHERE c.account_row = p.account_row AND c.actor_id = p.actor_id) \
                 FROM unnest($1::bigint[], $2::text[], $3::text[]) AS p (account_row, actor_id, country_code)",
            )
            .await
            .map_err(database_error(context))?;
        for row in client
            .query(&statement, &[&rows, &actors, &countries])
            .await
            .map_err(database_error(context))?
        {
            let account_row: i64 = row.get(0);
            let actor_id: String = row.get(1);
            let country_code: String = row.get(2);
            if row.get::<_, bool>(4) {
                self.actors_with_country_history
                    .insert((account_row, actor_id.clone()));
            }
            if row.get::<_, bool>(3) {
                self.countries_seen
                    .insert((account_row, actor_id, country_code));
            }
        }
        Ok(())
    }

    /// Decides the flags of one event the writer is about to store, in `seq` order, and adds a
    /// successful one to the history; the writer puts the flags in the event's own row.
    /// `country_code` is the country of the event's location.
    pub(crate) fn record(
        &mut self,
        account_row: i64,
        event: &NewEvent,
        country_code: Option<&str>,
    ) -> UnfamiliarIpFlags {
        let mut flags = self.record_address(account_row, event);
        flags.new_country = self.record_country(account_row, event, country_code);
        flags
    }

    /// The country half of `record`.
    fn record_country(
        &mut self,
        account_row: i64,
        event: &NewEvent,
        country_code: Option<&str>,
    ) -> bool {
        let (Some(actor), Some(country_code)) = (&event.actor, country_code) else {
            return false;
        };
        let key: CountryKey = (account_row, actor.id.clone(), country_code.to_owned());
        if self.countries_seen.contains(&key) {
            self.touched_countries.push(key);
            return false;
        }
        let actor_key = (account_row, actor.id.clone());
        let lookup = CountryHistoryLookup {
            actor_has_country_history: self.actors_with_country_history.contains(&actor_key),
            country_seen_before: false,
        };
        if event_becomes_history(event.outcome) {
            self.touched_countries.push(key.clone());
            self.new_countries
                .push((key.clone(), event.created_at_micros()));
            self.countries_seen.insert(key);
            self.actors_with_country_history.insert(actor_key);
        }
        lookup.new_country()
    }

    /// The address half of `record`: `new_ip` and `new_network`.
    fn record_address(&mut self, account_row: i64, event: &NewEvent) -> UnfamiliarIpFlags {
        let (Some(actor), Some(ip)) = (&event.actor, event.ip) else {
            return UnfamiliarIpFlags::default();
        };
        let address: AddressKey = (account_row, actor.id.clone(), address_bytes(ip));
        if self.addresses_seen.contains(&address) {
            self.touched.push(address);
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
        // A failed event is flagged but leaves the history as it was (`event_becomes_history`),
        // so a later event of the group from the same address is still compared with it.
        if !event_becomes_history(event.outcome) {
            return flags;
        }
        self.touched.push(address.clone());
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
        if !self.new_countries.is_empty() {
            let rows: Vec<i64> = self
                .new_countries
                .iter()
                .map(|((row, _, _), _)| *row)
                .collect();
            let actors: Vec<&str> = self
                .new_countries
                .iter()
                .map(|((_, actor, _), _)| actor.as_str())
                .collect();
            let countries: Vec<&str> = self
                .new_countries
                .iter()
                .map(|((_, _, country), _)| country.as_str())
                .collect();
            let first_seen: Vec<i64> = self.new_countries.iter().map(|(_, at)| *at).collect();
            client
                .execute(
                    "INSERT INTO actor_countries (account_row, actor_id, country_code, first_seen_at) \
                     SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[]) \
                     ON CONFLICT DO NOTHING",
                    &[&rows, &actors, &countries, &first_seen],
                )
                .await
                .map_err(database_error(context))?;
        }
        Ok(())
    }
}

/// The account rows of a group's events, for `GroupDetection::load`.
pub(crate) fn events_with_rows<'group>(
    events: impl Iterator<Item = (&'group NewEvent, Option<&'group str>)>,
    rows_by_account: &'group HashMap<AccountId, i64>,
) -> impl Iterator<Item = (i64, &'group NewEvent, Option<&'group str>)> {
    events.filter_map(|(event, country_code)| {
        rows_by_account
            .get(&event.account)
            .map(|account_row| (*account_row, event, country_code))
    })
}
