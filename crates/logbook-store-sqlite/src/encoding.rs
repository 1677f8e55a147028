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

/// Bits of `event_row` that hold `seq`; the account's row id sits above them. 2^40 events per
/// account is far beyond any log, and 2^23 accounts fit in the remaining positive range.
pub const SEQ_BITS: u32 = 40;
const SEQ_MASK: i64 = (1 << SEQ_BITS) - 1;

/// The primary key of an account's event: its account in the high bits, its `seq` in the low
/// ones, so an account's events are one contiguous rowid range in `seq` order.
pub fn event_row_of(account_row: i64, seq: u64) -> i64 {
    (account_row << SEQ_BITS) | (seq as i64 & SEQ_MASK)
}

/// The first `event_row` of an account; its range is `[first, first + 2^40)`.
pub(crate) fn first_event_row_of(account_row: i64) -> i64 {
    account_row << SEQ_BITS
}

/// Width of an account's full-text tag: 36^5 (60 million) accounts.
const ACCOUNT_TAG_WIDTH: usize = 5;

/// The fixed-width base-36 tag prefixed to every full-text token of an account, so each term in
/// the FTS index belongs to one account.
fn account_text_tag(account_row: i64, tag: &mut String) {
    let mut digits = [b'0'; ACCOUNT_TAG_WIDTH];
    let mut rest = account_row.unsigned_abs();
    for digit in digits.iter_mut().rev() {
        *digit = b"0123456789abcdefghijklmnopqrstuvwxyz"[(rest % 36) as usize];
        rest /= 36;
    }
    tag.push_str(std::str::from_utf8(&digits).expect("base-36 digits are ASCII"));
}

/// What the FTS index receives for a message: each of `text_tokens(message)` prefixed with the
/// account's tag, space-separated (the FTS tokenizer splits only at spaces). Empty when the
/// message has no token.
pub fn full_text_document(account_row: i64, message: &str) -> String {
    let mut document = String::with_capacity(message.len() + message.len() / 2);
    for token in logbook_core::query::text_tokens(message) {
        if !document.is_empty() {
            document.push(' ');
        }
        account_text_tag(account_row, &mut document);
        document.push_str(&token);
    }
    document
}

/// `document` (from `full_text_document` for any account) with every token's tag replaced by
/// `account_row`'s, without tokenizing again.
pub(crate) fn retag_full_text_document(document: &str, account_row: i64) -> String {
    let mut retagged = String::with_capacity(document.len());
    for tagged_token in document.split(' ') {
        if !retagged.is_empty() {
            retagged.push(' ');
        }
        account_text_tag(account_row, &mut retagged);
        retagged.push_str(tagged_token.get(ACCOUNT_TAG_WIDTH..).unwrap_or_default());
    }
    retagged
}

/// An FTS5 phrase for `tokens` in `account_row`: `"tagtok1 tagtok2"`. Tokens hold only letters and
/// digits, and doubling quotes keeps the quoting correct whatever they hold.
pub(crate) fn full_text_phrase(account_row: i64, tokens: &[String]) -> String {
    let mut phrase = String::from("\"");
    for (position, token) in tokens.iter().enumerate() {
        if position > 0 {
            phrase.push(' ');
        }
        account_text_tag(account_row, &mut phrase);
        phrase.push_str(&token.replace('"', "\"\""));
    }
    phrase.push('"');
    phrase
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
    fn event_rows_keep_accounts_apart_and_seq_in_the_low_bits() {
        assert_eq!(event_row_of(1, 0), 1 << 40);
        assert_eq!(event_row_of(3, 7) & ((1 << 40) - 1), 7);
        assert!(event_row_of(2, (1 << 40) - 1) < event_row_of(3, 0));
    }

    #[test]
    fn full_text_documents_tag_every_token_with_the_account() {
        assert_eq!(
            full_text_document(37, "Rebooted web-1, now OK"),
            "00011rebooted 00011web 000111 00011now 00011ok"
        );
        assert_eq!(full_text_document(1, "-- !!"), "");
        assert_eq!(
            retag_full_text_document(&full_text_document(0, "Rebooted web-1"), 37),
            full_text_document(37, "Rebooted web-1")
        );
        assert_eq!(
            full_text_phrase(1, &["web".into(), "1".into()]),
            "\"00001web 000011\""
        );
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
