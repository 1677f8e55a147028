//! Unfamiliar-IP detection and known networks, free of I/O: which network an address belongs to
//! for `new_network`, the rule that decides the `new_ip`/`new_network` flags from an actor's
//! history, the names and blocks of an account's known networks, and `UnfamiliarIpStore`, the part
//! of the `Store` that keeps them (reached through `Store::unfamiliar_ips`).
//!
//! # The rule
//!
//! Each store's writer keeps, per account, every (actor, address) and every (actor, network)
//! it has seen, and decides inside the transaction that stores the event:
//! - an event without an `actor` or an `ip` is never flagged and changes no history;
//! - the first event of an actor that carries an `ip` is never flagged: there is no history to
//!   compare with, so nothing about it is unfamiliar yet (its address and network are recorded);
//! - afterwards, an address the actor was never seen from is `new_ip`, and when its network (the
//!   /24 of an IPv4 address, the /48 of an IPv6 address) is new for the actor too, `new_network`;
//! - only successful activity (an `outcome` that is not `failure`) becomes history: a failed
//!   event is flagged like any other when its address is new, but it leaves the actor's history
//!   as it was, so an intruder who fails once from an address and then succeeds from it is
//!   flagged on the success too (`event_becomes_history`).
//!
//! `new_country` follows the same rule with the country code of the event's location (what the
//! IP databases said when it arrived) in place of the address: an event without a located
//! country is never flagged and changes no history; the actor's first event with a country is
//! never flagged; afterwards a country the actor was never located in by a successful event is
//! `new_country` (`CountryHistoryLookup::new_country`), and only a successful event adds it.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use time::OffsetDateTime;

/// Prefix length of the network of an IPv4 address for `new_network`.
pub const IPV4_NETWORK_PREFIX_LENGTH: u8 = 24;
/// Prefix length of the network of an IPv6 address for `new_network`.
pub const IPV6_NETWORK_PREFIX_LENGTH: u8 = 48;

/// The flags the detector sets on one stored event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UnfamiliarIpFlags {
    /// First time this actor was seen from this address.
    pub new_ip: bool,
    /// First time this actor was seen from this address's network (implies `new_ip`).
    pub new_network: bool,
    /// First time this actor was located in this address's country.
    pub new_country: bool,
}

/// What the writer knows about one (actor, address) before storing an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActorHistoryLookup {
    /// The actor has been seen from at least one address in this account.
    pub actor_has_history: bool,
    pub address_seen_before: bool,
    pub network_seen_before: bool,
}

impl ActorHistoryLookup {
    /// The flags of the event, by the rule in the module documentation.
    pub fn flags(self) -> UnfamiliarIpFlags {
        if !self.actor_has_history {
            return UnfamiliarIpFlags::default();
        }
        UnfamiliarIpFlags {
            new_ip: !self.address_seen_before,
            new_network: !self.address_seen_before && !self.network_seen_before,
            new_country: false,
        }
    }
}

/// What the writer knows about one (actor, country) before storing a located event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountryHistoryLookup {
    /// The actor has been located in at least one country in this account.
    pub actor_has_country_history: bool,
    pub country_seen_before: bool,
}

impl CountryHistoryLookup {
    /// Whether the event is `new_country`, by the rule in the module documentation.
    pub fn new_country(self) -> bool {
        self.actor_has_country_history && !self.country_seen_before
    }
}

/// Whether an event's address and network join its actor's history once it is stored: only
/// successful activity makes an address familiar. A failed sign-in proves nothing about who used
/// the address, and counting it would hide the intruder's later success from `new_ip`.
pub fn event_becomes_history(outcome: Option<crate::event::Outcome>) -> bool {
    outcome != Some(crate::event::Outcome::Failure)
}

/// The address as the 16 bytes the stores keep: IPv4 as IPv4-mapped IPv6, so one column orders
/// both families and a CIDR block is a byte range.
pub fn address_bytes(address: IpAddr) -> [u8; 16] {
    match address.to_canonical() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The network of an address for `new_network`: its /24 (IPv4, IPv4-mapped IPv6 included) or /48.
pub fn network_of_address(address: IpAddr) -> IpNet {
    let address = address.to_canonical();
    let prefix_length = match address {
        IpAddr::V4(_) => IPV4_NETWORK_PREFIX_LENGTH,
        IpAddr::V6(_) => IPV6_NETWORK_PREFIX_LENGTH,
    };
    IpNet::new(address, prefix_length)
        .expect("both prefix lengths fit their family")
        .trunc()
}

/// The bytes the stores key an actor's networks by: the leading bytes of `address_bytes` that the
/// network prefix covers (15 for IPv4, whose mapped form has 12 bytes of prefix, 6 for IPv6). The
/// two lengths differ, so keys of the two families never collide.
pub fn network_key(address: IpAddr) -> Vec<u8> {
    let bytes = address_bytes(address);
    match address.to_canonical() {
        IpAddr::V4(_) => bytes[..15].to_vec(),
        IpAddr::V6(_) => bytes[..6].to_vec(),
    }
}

/// The first and last 16-byte addresses (`address_bytes`) of a block, for range lookups.
pub fn block_bounds(block: &IpNet) -> ([u8; 16], [u8; 16]) {
    (
        address_bytes(block.network()),
        address_bytes(block.broadcast()),
    )
}

/// Longest known-network name, in bytes.
pub const MAX_NETWORK_NAME_BYTES: usize = 40;
/// Most blocks one known network may hold.
pub const MAX_BLOCKS_PER_NETWORK: usize = 32;

/// The name of a known network, as used in `ip:NAME`: a lowercase ASCII letter, then lowercase
/// letters, digits, `-` and `_`, at most 40 bytes. It can never read as an address or a block
/// (those hold `.` or `:`) and needs no quoting in a query.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NetworkName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidNetworkName(pub String);

impl NetworkName {
    pub fn parse(text: &str) -> Result<Self, InvalidNetworkName> {
        if text.is_empty() {
            return Err(InvalidNetworkName("a network needs a name".into()));
        }
        if text.len() > MAX_NETWORK_NAME_BYTES {
            return Err(InvalidNetworkName(format!(
                "a network name is at most {MAX_NETWORK_NAME_BYTES} characters"
            )));
        }
        let mut characters = text.chars();
        let starts_with_letter = characters
            .next()
            .is_some_and(|first| first.is_ascii_lowercase());
        let rest_allowed = characters.all(|character| {
            character.is_ascii_lowercase()
                || character.is_ascii_digit()
                || matches!(character, '-' | '_')
        });
        if !starts_with_letter || !rest_allowed {
            return Err(InvalidNetworkName(
                "a network name starts with a lowercase letter and holds only lowercase letters, digits, '-' and '_' (e.g. office, home-vpn)".into(),
            ));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NetworkName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Parses the blocks of a known network: addresses or CIDR blocks separated by commas,
/// whitespace or newlines (`203.0.113.0/24, 2001:db8::/48`), canonical as in the query language
/// (host bits dropped, IPv4-mapped IPv6 as IPv4), duplicates removed, order kept.
pub fn parse_network_blocks(text: &str) -> Result<Vec<IpNet>, String> {
    let mut blocks: Vec<IpNet> = Vec::new();
    for piece in text
        .split(|character: char| character == ',' || character.is_whitespace())
        .filter(|piece| !piece.is_empty())
    {
        let block = crate::query::parse_network(piece).ok_or_else(|| {
            format!("{piece:?} is not an IP address or CIDR block (e.g. 203.0.113.0/24)")
        })?;
        if !blocks.contains(&block) {
            blocks.push(block);
        }
    }
    if blocks.is_empty() {
        return Err("a network needs at least one address or CIDR block".into());
    }
    if blocks.len() > MAX_BLOCKS_PER_NETWORK {
        return Err(format!(
            "a network holds at most {MAX_BLOCKS_PER_NETWORK} blocks"
        ));
    }
    Ok(blocks)
}

/// A named network of an account ("office" = 203.0.113.0/24).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownNetwork {
    pub name: NetworkName,
    pub blocks: Vec<IpNet>,
    pub updated_at: OffsetDateTime,
}

impl KnownNetwork {
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.blocks.iter().any(|block| block.contains(&address))
    }

    /// The blocks as the text the form shows and audit events record.
    pub fn blocks_text(&self) -> String {
        self.blocks
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The first known network (by name) holding `address`.
pub fn known_network_of(networks: &[KnownNetwork], address: IpAddr) -> Option<&KnownNetwork> {
    networks.iter().find(|network| network.contains(address))
}

/// One address an actor was seen from, for the event detail view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorAddress {
    pub ip: IpAddr,
    /// `created_at` of the first event the detector saw from this address.
    pub first_seen_at: OffsetDateTime,
    /// `created_at` of the newest event from this address among the actor's newest
    /// `ACTOR_EVENTS_SCANNED` events (`None` when it is older than those).
    pub last_seen_at: Option<OffsetDateTime>,
    /// Events from this address among the actor's newest `ACTOR_EVENTS_SCANNED` events.
    pub recent_event_count: u64,
}

/// One address's activity among an actor's newest `ACTOR_EVENTS_SCANNED` events, as a store
/// reads it for `merge_actor_addresses`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentAddressActivity {
    pub ip: IpAddr,
    pub earliest_at: OffsetDateTime,
    pub latest_at: OffsetDateTime,
    pub event_count: u64,
}

/// Joins an actor's recent activity with its address history (address, first seen): addresses
/// used recently come first, most recently used first; then addresses only seen before the
/// scanned window, most recently first-seen first. At most `limit`.
pub fn merge_actor_addresses(
    mut recent: Vec<RecentAddressActivity>,
    mut history: Vec<(IpAddr, OffsetDateTime)>,
    limit: usize,
) -> Vec<ActorAddress> {
    recent.sort_by_key(|activity| std::cmp::Reverse(activity.latest_at));
    history.sort_by_key(|(_, first_seen_at)| std::cmp::Reverse(*first_seen_at));
    let first_seen = |ip: IpAddr| {
        history
            .iter()
            .find(|(known, _)| *known == ip)
            .map(|(_, first_seen_at)| *first_seen_at)
    };
    let mut addresses: Vec<ActorAddress> = recent
        .iter()
        .map(|activity| ActorAddress {
            ip: activity.ip,
            first_seen_at: first_seen(activity.ip).map_or(activity.earliest_at, |first| {
                first.min(activity.earliest_at)
            }),
            last_seen_at: Some(activity.latest_at),
            recent_event_count: activity.event_count,
        })
        .collect();
    for (ip, first_seen_at) in &history {
        if !recent.iter().any(|activity| activity.ip == *ip) {
            addresses.push(ActorAddress {
                ip: *ip,
                first_seen_at: *first_seen_at,
                last_seen_at: None,
                recent_event_count: 0,
            });
        }
    }
    addresses.truncate(limit);
    addresses
}

/// How many of an actor's newest events `UnfamiliarIpStore::actor_addresses` reads for last-seen
/// times and counts: a bound, so an actor with millions of events keeps the page fast. (The
/// SQLite store takes the newest among the actor's full-text tokens by arrival; see its
/// `actor_addresses`.)
pub const ACTOR_EVENTS_SCANNED: u32 = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(history: bool, address: bool, network: bool) -> ActorHistoryLookup {
        ActorHistoryLookup {
            actor_has_history: history,
            address_seen_before: address,
            network_seen_before: network,
        }
    }

    #[test]
    fn an_actor_without_history_is_never_flagged() {
        assert_eq!(
            lookup(false, false, false).flags(),
            UnfamiliarIpFlags::default()
        );
    }

    #[test]
    fn a_country_is_new_only_for_an_actor_already_located_elsewhere() {
        let lookup = |history: bool, seen: bool| CountryHistoryLookup {
            actor_has_country_history: history,
            country_seen_before: seen,
        };
        assert!(!lookup(false, false).new_country());
        assert!(lookup(true, false).new_country());
        assert!(!lookup(true, true).new_country());
    }

    #[test]
    fn a_new_address_in_a_known_network_is_new_ip_only() {
        let flags = lookup(true, false, true).flags();
        assert!(flags.new_ip);
        assert!(!flags.new_network);
        let flags = lookup(true, false, false).flags();
        assert!(flags.new_ip && flags.new_network);
        assert_eq!(
            lookup(true, true, true).flags(),
            UnfamiliarIpFlags::default()
        );
    }

    #[test]
    fn networks_are_the_slash_24_and_the_slash_48_and_mapped_ipv4_is_ipv4() {
        let v4: IpAddr = "203.0.113.9".parse().unwrap();
        let mapped: IpAddr = "::ffff:203.0.113.200".parse().unwrap();
        let v6: IpAddr = "2001:db8:1:2::9".parse().unwrap();
        assert_eq!(network_of_address(v4).to_string(), "203.0.113.0/24");
        assert_eq!(network_of_address(mapped).to_string(), "203.0.113.0/24");
        assert_eq!(network_of_address(v6).to_string(), "2001:db8:1::/48");
        assert_eq!(network_key(v4), network_key(mapped));
        assert_eq!(network_key(v4).len(), 15);
        assert_eq!(network_key(v6).len(), 6);
        assert_ne!(network_key(v4), network_key("203.0.114.9".parse().unwrap()));
        assert_eq!(
            network_key(v6),
            network_key("2001:db8:1:ffff::1".parse().unwrap())
        );
    }

    #[test]
    fn recently_used_addresses_come_first_then_older_ones_by_first_seen() {
        let at = |seconds: i64| OffsetDateTime::from_unix_timestamp(seconds).unwrap();
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        let recent = vec![
            RecentAddressActivity {
                ip: ip("10.0.0.1"),
                earliest_at: at(50),
                latest_at: at(60),
                event_count: 2,
            },
            RecentAddressActivity {
                ip: ip("10.0.0.2"),
                earliest_at: at(70),
                latest_at: at(90),
                event_count: 5,
            },
        ];
        let history = vec![
            (ip("10.0.0.1"), at(10)),
            (ip("10.0.0.2"), at(70)),
            (ip("10.0.0.3"), at(20)),
            (ip("10.0.0.4"), at(30)),
        ];
        let merged = merge_actor_addresses(recent, history, 3);
        let order: Vec<String> = merged
            .iter()
            .map(|address| address.ip.to_string())
            .collect();
        assert_eq!(order, ["10.0.0.2", "10.0.0.1", "10.0.0.4"]);
        assert_eq!(merged[1].first_seen_at, at(10));
        assert_eq!(merged[1].last_seen_at, Some(at(60)));
        assert_eq!(merged[0].recent_event_count, 5);
        assert_eq!(merged[2].last_seen_at, None);
    }

    #[test]
    fn network_names_are_plain_lowercase_words_that_never_read_as_addresses() {
        for good in ["office", "vpn", "home-vpn", "dc_2", "a"] {
            assert!(NetworkName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Office",
            "1office",
            "203.0.113.0",
            "fe80::1",
            "two words",
            "<b>",
            "office,vpn",
            &"x".repeat(41),
        ] {
            assert!(NetworkName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn blocks_parse_from_commas_and_whitespace_and_are_canonical() {
        let blocks = parse_network_blocks("203.0.113.7/24,\n 2001:db8::/48 10.0.0.1").unwrap();
        let texts: Vec<String> = blocks.iter().map(ToString::to_string).collect();
        assert_eq!(texts, ["203.0.113.0/24", "2001:db8::/48", "10.0.0.1/32"]);
        assert!(parse_network_blocks("").is_err());
        assert!(
            parse_network_blocks("203.0.113.0/33")
                .unwrap_err()
                .contains("203.0.113.0/33")
        );
    }

    #[test]
    fn a_known_network_contains_the_addresses_of_its_blocks() {
        let office = KnownNetwork {
            name: NetworkName::parse("office").unwrap(),
            blocks: parse_network_blocks("203.0.113.0/24").unwrap(),
            updated_at: OffsetDateTime::UNIX_EPOCH,
        };
        assert!(office.contains("203.0.113.77".parse().unwrap()));
        assert!(office.contains("::ffff:203.0.113.77".parse().unwrap()));
        assert!(!office.contains("203.0.114.1".parse().unwrap()));
        let (first, last) = block_bounds(&office.blocks[0]);
        assert_eq!(first, address_bytes("203.0.113.0".parse().unwrap()));
        assert_eq!(last, address_bytes("203.0.113.255".parse().unwrap()));
    }
}
