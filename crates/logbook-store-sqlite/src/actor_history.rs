//! Unfamiliar-IP and new-country detection on SQLite (tables of migrations 0005 and 0018). Known networks and "where was
//! this actor seen" (`UnfamiliarIpStore`) are shared SQL (`logbook_store_sql::unfamiliar_ip`).
//!
//! The writer calls `ActorHistory::record` for each event it stores, in the events' transaction,
//! right after inserting the event: the single writer holds SQLite's write lock, so the history it
//! reads is exact, and an event earlier in the same group is already history for a later one. The
//! flags follow `logbook_core::unfamiliar_ip::ActorHistoryLookup::flags`.
//!
//! Cost: most events come from an (actor, address) seen before. The writer remembers such pairs
//! in a bounded in-memory set, so those events cost one hash lookup and no read; a miss costs one
//! primary-key read, and only something new writes (the history rows and the event's flags).
//! Countries work the same way with their own remembered set, keyed by the country code of the
//! event's location.

use hashbrown::{Equivalent, HashSet};
use logbook_core::event::NewEvent;
use logbook_core::unfamiliar_ip::{
    ActorHistoryLookup, CountryHistoryLookup, UnfamiliarIpFlags, address_bytes,
    event_becomes_history, network_key,
};
use rusqlite::{OptionalExtension, Transaction, params};

/// Most (account, actor, address) pairs the writer remembers as known. About 100 bytes each; when
/// full the set starts over (it only ever saves reads, it never decides a flag on its own).
const KNOWN_PAIRS_REMEMBERED: usize = 100_000;

/// (account, actor, address): an actor's address known to be in the history.
#[derive(Hash, PartialEq, Eq)]
struct KnownPair {
    account_row: i64,
    actor_id: String,
    address: [u8; 16],
}

/// A `KnownPair` looked up by the event's own values: hashed exactly as the pair (the fields in
/// the same order, `&str` as `String`), so a lookup copies nothing. Nearly every event's pair is
/// known, and the copy of its actor id was an allocation per event.
#[derive(Hash, Clone, Copy)]
struct KnownPairOfEvent<'event> {
    account_row: i64,
    actor_id: &'event str,
    address: &'event [u8; 16],
}

impl Equivalent<KnownPair> for KnownPairOfEvent<'_> {
    fn equivalent(&self, known: &KnownPair) -> bool {
        self.account_row == known.account_row
            && self.actor_id == known.actor_id
            && *self.address == known.address
    }
}

impl KnownPairOfEvent<'_> {
    fn to_known(self) -> KnownPair {
        KnownPair {
            account_row: self.account_row,
            actor_id: self.actor_id.to_owned(),
            address: *self.address,
        }
    }
}

/// (account, actor, country code): an actor's country known to be in the history.
#[derive(Hash, PartialEq, Eq)]
struct KnownCountry {
    account_row: i64,
    actor_id: String,
    country_code: String,
}

/// A `KnownCountry` looked up by the event's own values, as `KnownPairOfEvent`.
#[derive(Hash, Clone, Copy)]
struct KnownCountryOfEvent<'event> {
    account_row: i64,
    actor_id: &'event str,
    country_code: &'event str,
}

impl Equivalent<KnownCountry> for KnownCountryOfEvent<'_> {
    fn equivalent(&self, known: &KnownCountry) -> bool {
        self.account_row == known.account_row
            && self.actor_id == known.actor_id
            && self.country_code == known.country_code
    }
}

impl KnownCountryOfEvent<'_> {
    fn to_known(self) -> KnownCountry {
        KnownCountry {
            account_row: self.account_row,
            actor_id: self.actor_id.to_owned(),
            country_code: self.country_code.to_owned(),
        }
    }
}

/// The writer's side of the detector: whether it runs, and the pairs known to be in the history.
pub(crate) struct ActorHistory {
    enabled: bool,
    /// Pairs whose history row is committed.
    known: HashSet<KnownPair>,
    /// Pairs seen by the current group: known only once its transaction commits.
    pending: Vec<KnownPair>,
    /// The same two for (actor, country): far fewer, so they share the bound of the pairs.
    known_countries: HashSet<KnownCountry>,
    pending_countries: Vec<KnownCountry>,
}

impl ActorHistory {
    /// `enabled: false` stores no history and flags nothing (`SqliteOptions::detect_unfamiliar_ips`,
    /// benchmarks only).
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            known: HashSet::new(),
            pending: Vec::new(),
            known_countries: HashSet::new(),
            pending_countries: Vec::new(),
        }
    }

    /// Starts a group: pairs of a group whose commit failed are not known.
    pub(crate) fn begin_group(&mut self) {
        self.pending.clear();
        self.pending_countries.clear();
    }

    /// The group committed: its pairs are known from now on.
    pub(crate) fn committed(&mut self) {
        if self.known.len() + self.pending.len() > KNOWN_PAIRS_REMEMBERED {
            self.known.clear();
        }
        self.known.extend(self.pending.drain(..));
        if self.known_countries.len() + self.pending_countries.len() > KNOWN_PAIRS_REMEMBERED {
            self.known_countries.clear();
        }
        self.known_countries
            .extend(self.pending_countries.drain(..));
    }

    /// Records the event's (actor, address) and (actor, network) in the account's history, and
    /// its (actor, country) when the event was located in one (`country_code`, from the event's
    /// location), only when it succeeded (`event_becomes_history`), and stores its flags on the
    /// row `event_row` (already inserted), returning them.
    pub(crate) fn record(
        &mut self,
        transaction: &Transaction<'_>,
        account_row: i64,
        event_row: i64,
        event: &NewEvent,
        country_code: Option<&str>,
    ) -> rusqlite::Result<UnfamiliarIpFlags> {
        if !self.enabled {
            return Ok(UnfamiliarIpFlags::default());
        }
        let mut flags = self.record_address(transaction, account_row, event)?;
        flags.new_country = self.record_country(transaction, account_row, event, country_code)?;
        if flags != UnfamiliarIpFlags::default() {
            transaction
                .prepare_cached(
                    "UPDATE events SET new_ip = ?2, new_network = ?3, new_country = ?4 WHERE event_row = ?1",
                )?
                .execute(params![
                    event_row,
                    flags.new_ip,
                    flags.new_network,
                    flags.new_country
                ])?;
        }
        Ok(flags)
    }

    /// The address half of `record`: `new_ip` and `new_network`, and the history rows.
    fn record_address(
        &mut self,
        transaction: &Transaction<'_>,
        account_row: i64,
        event: &NewEvent,
    ) -> rusqlite::Result<UnfamiliarIpFlags> {
        let (Some(actor), Some(ip)) = (&event.actor, event.ip) else {
            return Ok(UnfamiliarIpFlags::default());
        };
        let address = address_bytes(ip);
        let pair = KnownPairOfEvent {
            account_row,
            actor_id: &actor.id,
            address: &address,
        };
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
            self.pending.push(pair.to_known());
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
        let becomes_history = event_becomes_history(event.outcome);
        if becomes_history {
            self.insert_history(
                transaction,
                account_row,
                event,
                &address,
                &network,
                network_seen_before,
            )?;
        }
        let flags = ActorHistoryLookup {
            actor_has_history,
            address_seen_before,
            network_seen_before,
        }
        .flags();
        // A failed event wrote no history row, so its pair is not known: the next event from the
        // same address must still read the history.
        if becomes_history {
            self.pending.push(pair.to_known());
        }
        Ok(flags)
    }

    /// The country half of `record`: whether the event is `new_country`, and the history row of a
    /// successful event located in a country new for its actor.
    fn record_country(
        &mut self,
        transaction: &Transaction<'_>,
        account_row: i64,
        event: &NewEvent,
        country_code: Option<&str>,
    ) -> rusqlite::Result<bool> {
        let (Some(actor), Some(country_code)) = (&event.actor, country_code) else {
            return Ok(false);
        };
        let pair = KnownCountryOfEvent {
            account_row,
            actor_id: &actor.id,
            country_code,
        };
        if self.known_countries.contains(&pair) {
            return Ok(false);
        }
        let country_seen_before = transaction
            .prepare_cached(
                "SELECT 1 FROM actor_countries WHERE account_row = ?1 AND actor_id = ?2 AND country_code = ?3",
            )?
            .query_row(params![account_row, actor.id, country_code], |_| Ok(()))
            .optional()?
            .is_some();
        if country_seen_before {
            self.pending_countries.push(pair.to_known());
            return Ok(false);
        }
        let actor_has_country_history = transaction
            .prepare_cached(
                "SELECT 1 FROM actor_countries WHERE account_row = ?1 AND actor_id = ?2 LIMIT 1",
            )?
            .query_row(params![account_row, actor.id], |_| Ok(()))
            .optional()?
            .is_some();
        if event_becomes_history(event.outcome) {
            transaction
                .prepare_cached(
                    "INSERT INTO actor_countries (account_row, actor_id, country_code, first_seen_at) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![
                    account_row,
                    actor.id,
                    country_code,
                    event.created_at_micros()
                ])?;
            self.pending_countries.push(pair.to_known());
        }
        Ok(CountryHistoryLookup {
            actor_has_country_history,
            country_seen_before,
        }
        .new_country())
    }

    /// Writes the (actor, address) row and, when new, the (actor, network) row of a successful
    /// event.
    fn insert_history(
        &self,
        transaction: &Transaction<'_>,
        account_row: i64,
        event: &NewEvent,
        address: &[u8; 16],
        network: &[u8],
        network_seen_before: bool,
    ) -> rusqlite::Result<()> {
        let Some(actor) = &event.actor else {
            return Ok(());
        };
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remembered_pair_is_found_by_the_events_borrowed_values_and_only_by_its_own() {
        let address = [7; 16];
        let pair = KnownPairOfEvent {
            account_row: 3,
            actor_id: "user_dmitri",
            address: &address,
        };
        let mut known = HashSet::new();
        known.insert(pair.to_known());
        assert!(known.contains(&pair));
        let other_address = [8; 16];
        for other in [
            KnownPairOfEvent {
                account_row: 4,
                ..pair
            },
            KnownPairOfEvent {
                actor_id: "user_dmitr",
                ..pair
            },
            KnownPairOfEvent {
                address: &other_address,
                ..pair
            },
        ] {
            assert!(!known.contains(&other));
        }

        let country = KnownCountryOfEvent {
            account_row: 3,
            actor_id: "user_dmitri",
            country_code: "IN",
        };
        let mut known_countries = HashSet::new();
        known_countries.insert(country.to_known());
        assert!(known_countries.contains(&country));
        assert!(!known_countries.contains(&KnownCountryOfEvent {
            country_code: "SG",
            ..country
        }));
        // The actor id and the country code are two fields, not one string: moving a letter
        // from one to the other is another pair.
        assert!(!known_countries.contains(&KnownCountryOfEvent {
            actor_id: "user_dmitriI",
            country_code: "N",
            ..country
        }));
    }
}
