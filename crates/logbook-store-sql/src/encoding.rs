//! How event fields become the column values both SQL stores index: IPs as 16 bytes (IPv4 as
//! IPv4-mapped IPv6), times as integer microseconds, outcomes as small integers, and the bounds
//! that turn a prefix or a CIDR block into an index range.

use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;
use logbook_core::event::Outcome;
use time::OffsetDateTime;

/// An IP address as 16 bytes, IPv4 as IPv4-mapped IPv6, so that byte order is address order and a
/// CIDR block is one contiguous range (SQLite's BLOB and PostgreSQL's `bytea` compare bytewise).
pub fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    logbook_core::unfamiliar_ip::address_bytes(ip)
}

/// The first and last 16-byte forms of the IPv4-mapped block `::ffff:0:0/96`, where every IPv4
/// address is stored.
pub const IPV4_MAPPED_FIRST: [u8; 16] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 0];
pub const IPV4_MAPPED_LAST: [u8; 16] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
];

/// The ranges of stored addresses that lie in `network`, as inclusive `(first, last)` pairs.
///
/// IPv4 addresses are stored inside `::ffff:0:0/96`, so an IPv6 block wide enough to cover that
/// block (`::/0`, `::/80`) would also cover every IPv4 address if it were one range. In the query
/// language an IPv6 block never holds an IPv4 address (`Query::matches` says so), so such a block
/// becomes the ranges on either side of the IPv4-mapped block.
pub fn ip_ranges(network: &IpNet) -> Vec<([u8; 16], [u8; 16])> {
    let first = ip_bytes(network.network());
    let last = ip_bytes(network.broadcast());
    if network.addr().is_ipv4() || last < IPV4_MAPPED_FIRST || first > IPV4_MAPPED_LAST {
        return vec![(first, last)];
    }
    let mut ranges = Vec::with_capacity(2);
    if first < IPV4_MAPPED_FIRST {
        ranges.push((first, address_before(IPV4_MAPPED_FIRST)));
    }
    if last > IPV4_MAPPED_LAST {
        ranges.push((address_after(IPV4_MAPPED_LAST), last));
    }
    ranges
}

fn address_before(bytes: [u8; 16]) -> [u8; 16] {
    (u128::from(Ipv6Addr::from(bytes)) - 1).to_be_bytes()
}

fn address_after(bytes: [u8; 16]) -> [u8; 16] {
    (u128::from(Ipv6Addr::from(bytes)) + 1).to_be_bytes()
}

pub fn unix_micros_of(at: OffsetDateTime) -> i64 {
    logbook_core::event::unix_micros(at)
}

/// The instant `micros` microseconds after the Unix epoch (the epoch itself for a value no date can
/// hold, which the stores never write).
pub fn micros_to_time(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The stored code of an outcome (both stores keep it as a small integer).
pub fn outcome_code(outcome: Outcome) -> i64 {
    match outcome {
        Outcome::Success => 0,
        Outcome::Failure => 1,
    }
}

/// The smallest string greater than every string that starts with `prefix` (`None` when there is
/// none), so `prefix*` becomes the index range `value >= prefix AND value < bound`. UTF-8 byte
/// order is code point order, and both stores compare these columns bytewise (SQLite's BINARY
/// collation, PostgreSQL's "C"), so incrementing the last code point that can be incremented gives
/// the bound.
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut characters: Vec<char> = prefix.chars().collect();
    while let Some(last) = characters.pop() {
        let mut next = u32::from(last) + 1;
        if (0xD800..=0xDFFF).contains(&next) {
            next = 0xE000;
        }
        if let Some(next_character) = char::from_u32(next) {
            characters.push(next_character);
            return Some(characters.into_iter().collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_bound_is_above_every_extension_and_below_the_next_prefix() {
        let bound = prefix_upper_bound("server.").unwrap();
        assert_eq!(bound, "server/");
        assert!("server.reboot" < bound.as_str());
        assert!("server/" >= bound.as_str());
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").unwrap(), "b");
        assert_eq!(prefix_upper_bound("\u{D7FF}").unwrap(), "\u{E000}");
    }

    #[test]
    fn ipv4_addresses_sort_inside_the_ipv4_mapped_block() {
        let low = ip_bytes("10.0.0.0".parse().unwrap());
        let high = ip_bytes("10.0.0.255".parse().unwrap());
        let inside = ip_bytes("10.0.0.7".parse().unwrap());
        assert!(low <= inside && inside <= high);
        assert!(IPV4_MAPPED_FIRST <= low && high <= IPV4_MAPPED_LAST);
    }

    #[test]
    fn an_ipv6_block_over_the_ipv4_mapped_block_leaves_ipv4_addresses_out() {
        let everything: IpNet = "::/0".parse().unwrap();
        let ranges = ip_ranges(&everything);
        assert_eq!(ranges.len(), 2);
        let ipv4 = ip_bytes("203.0.113.9".parse().unwrap());
        let ipv6 = ip_bytes("2001:db8::1".parse().unwrap());
        let low_ipv6 = ip_bytes("::1".parse().unwrap());
        let inside = |address: [u8; 16]| {
            ranges
                .iter()
                .any(|(first, last)| *first <= address && address <= *last)
        };
        assert!(!inside(ipv4));
        assert!(inside(ipv6));
        assert!(inside(low_ipv6));
        assert_eq!(ranges[0].1, address_before(IPV4_MAPPED_FIRST));
        assert_eq!(ranges[1].0, address_after(IPV4_MAPPED_LAST));
    }

    #[test]
    fn blocks_away_from_the_ipv4_mapped_block_are_one_range() {
        for block in ["10.0.0.0/8", "0.0.0.0/0", "2001:db8::/32", "::1/128"] {
            let network: IpNet = block.parse().unwrap();
            assert_eq!(
                ip_ranges(&network),
                vec![(ip_bytes(network.network()), ip_bytes(network.broadcast()))],
                "{block}"
            );
        }
    }
}
