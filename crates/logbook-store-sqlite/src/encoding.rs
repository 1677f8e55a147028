//! How event fields become compact, indexable column values: IPs as 16 bytes, UUIDs as 16 bytes,
//! times as integer microseconds, and the bounds that turn a prefix into an index range.

use std::net::IpAddr;

use rusqlite::types::Value;
use time::OffsetDateTime;

/// An IP address as 16 bytes, IPv4 as IPv4-mapped IPv6, so that byte order is address order and a
/// CIDR block is one contiguous range.
pub(crate) fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The stored form of an event id: a canonical (lowercase, hyphenated) UUID as 16 bytes, any
/// other id as its text. The mapping is a function of the text, so lookups use it too.
pub(crate) fn event_id_value(id: &str) -> Value {
    if id.len() == 36
        && let Ok(uuid) = uuid::Uuid::try_parse(id)
        && uuid
            .hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer())
            == id
    {
        return Value::Blob(uuid.as_bytes().to_vec());
    }
    Value::Text(id.to_owned())
}

pub(crate) fn unix_micros_of(at: OffsetDateTime) -> i64 {
    logbook_core::event::unix_micros(at)
}

pub(crate) fn micros_to_time(micros: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The smallest string greater than every string that starts with `prefix` (`None` when there is
/// none), so `prefix*` becomes the index range `value >= prefix AND value < bound`. UTF-8 byte
/// order is code point order, and SQLite compares TEXT bytewise, so incrementing the last code
/// point that can be incremented gives the bound.
pub(crate) fn prefix_upper_bound(prefix: &str) -> Option<String> {
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
        assert_eq!(&low[..12], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
    }

    #[test]
    fn canonical_uuids_are_stored_as_sixteen_bytes_and_other_ids_as_text() {
        let uuid = "0190a5b2-0000-7000-8000-000000000001";
        assert!(matches!(event_id_value(uuid), Value::Blob(bytes) if bytes.len() == 16));
        assert_eq!(
            event_id_value(&uuid.to_uppercase()),
            Value::Text(uuid.to_uppercase())
        );
        assert_eq!(event_id_value("evt-1"), Value::Text("evt-1".into()));
    }
}
