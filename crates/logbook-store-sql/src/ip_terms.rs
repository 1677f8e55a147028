//! The SQLite store's index of addresses since migration 0029: an event's IP address is a token of
//! its `events_fts` document, where a positive `ip:` clause finds it. Events stored before the
//! migration keep their entries of the dropped index `events_by_account_ip` as rows of
//! `event_ip_rows` (`events_with_ip_rows` names the last of them per account), and `ip:` reads
//! both. It lives here because the SQL both stores share (removing personal data, which takes the
//! address out of an event) replaces the event's document on SQLite without the token; PostgreSQL
//! keeps its index on the column.
//!
//! The token is `.<account_row>i<8 hex digits>` for an IPv4 address and `.<account_row>j<32 hex
//! digits>` for an IPv6 one, the address's bytes in network order: behind the marker no word of a
//! message can start with, and in hexadecimal, so a CIDR block is a prefix of its addresses'
//! tokens. A block whose length is a multiple of 4 bits is one FTS5 prefix query; any other is the
//! 2, 4 or 8 prefix queries of the next hex digit's values inside the block. The two families have
//! letters of their own because in the query language an IPv6 block never holds an IPv4 address
//! (`Query::matches`), and an address is stored in its canonical family (an IPv4-mapped IPv6
//! address is IPv4), so `::/0` is every IPv6 address and no IPv4 one.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::encoding::IPV4_MAPPED_FIRST;
use crate::target_terms::push_value_token_start;

/// The letter between the account's digits and an IPv4 address's hex.
const IPV4_TOKEN_KIND: char = 'i';
/// The letter between the account's digits and an IPv6 address's hex.
const IPV6_TOKEN_KIND: char = 'j';

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// The token kind and the bytes spelled in hex of a stored address (`encoding::ip_bytes`, 16
/// bytes, IPv4 as IPv4-mapped IPv6); `None` for bytes of another length, which no store writes.
fn kind_and_bytes(stored: &[u8]) -> Option<(char, &[u8])> {
    if stored.len() != 16 {
        return None;
    }
    Some(if stored[..12] == IPV4_MAPPED_FIRST[..12] {
        (IPV4_TOKEN_KIND, &stored[12..])
    } else {
        (IPV6_TOKEN_KIND, stored)
    })
}

fn push_hex_bytes(text: &mut String, bytes: &[u8]) {
    for byte in bytes {
        text.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(HEX_DIGITS[usize::from(byte & 0x0f)]));
    }
}

/// Appends the address token of `stored` (the 16 bytes of `encoding::ip_bytes`, as the writer has
/// them and as the `ip` column keeps them) for `account_row`, separated from what `document`
/// holds by a space. Bytes of another length add nothing.
pub fn push_full_text_ip_token(document: &mut String, account_row: i64, stored: &[u8]) {
    let Some((kind, bytes)) = kind_and_bytes(stored) else {
        return;
    };
    if !document.is_empty() {
        document.push(' ');
    }
    push_value_token_start(document, account_row, kind);
    push_hex_bytes(document, bytes);
}

/// The FTS5 expression matching, in `events_fts`, the events whose address lies in one of
/// `networks`: `".12i0a000001" OR ".12i0a00" *` for `10.0.0.1` and `10.0.0.0/16`. Empty when
/// `networks` is (no event matches; the caller must not look an empty expression up).
pub fn ip_match_expression(account_row: i64, networks: &[IpNet]) -> String {
    let mut expression = String::new();
    for network in networks {
        let (kind, bytes, prefix_bits): (char, Vec<u8>, u8) = match network.trunc() {
            IpNet::V4(block) => (
                IPV4_TOKEN_KIND,
                block.network().octets().to_vec(),
                block.prefix_len(),
            ),
            IpNet::V6(block) => (
                IPV6_TOKEN_KIND,
                block.network().octets().to_vec(),
                block.prefix_len(),
            ),
        };
        let mut hex = String::with_capacity(bytes.len() * 2);
        push_hex_bytes(&mut hex, &bytes);
        let whole_digits = usize::from(prefix_bits / 4);
        let bits_into_next_digit = prefix_bits % 4;
        let mut push_term = |digits: &str, next_digit: Option<u8>| {
            if !expression.is_empty() {
                expression.push_str(" OR ");
            }
            expression.push('"');
            push_value_token_start(&mut expression, account_row, kind);
            expression.push_str(digits);
            let mut length = digits.len();
            if let Some(digit) = next_digit {
                expression.push(char::from(HEX_DIGITS[usize::from(digit)]));
                length += 1;
            }
            expression.push('"');
            // A whole address is one exact token; anything shorter is a prefix of the tokens of
            // the addresses it holds.
            if length < hex.len() {
                expression.push_str(" *");
            }
        };
        if bits_into_next_digit == 0 {
            push_term(&hex[..whole_digits], None);
        } else {
            // The values of the next digit whose leading `bits_into_next_digit` bits are the
            // block's: 8, 4 or 2 of them.
            let digit = u8::from_str_radix(&hex[whole_digits..=whole_digits], 16)
                .expect("a hex digit this function wrote");
            let free_bits = 4 - bits_into_next_digit;
            let first = digit >> free_bits << free_bits;
            for next_digit in first..first + (1 << free_bits) {
                push_term(&hex[..whole_digits], Some(next_digit));
            }
        }
    }
    expression
}

/// The FTS5 expression matching, in `events_fts`, the events of the one address `ip`.
pub fn one_ip_match_expression(account_row: i64, ip: IpAddr) -> String {
    ip_match_expression(account_row, &[IpNet::from(ip)])
}

/// SQL that is true for an event of `events` (the table's own name in scope) whose address is a
/// row of `event_ip_rows` (stored before migration 0029), false for one whose address is a token
/// of its `events_fts` document; `account_row` is the SQL of the event's account row.
pub fn written_with_ip_rows_sql(account_row: &str) -> String {
    crate::full_text::stored_up_to_marker_sql("events_with_ip_rows", account_row)
}

/// SQLite SQL spelling, from columns in scope, the FTS5 expression that matches the documents
/// holding both the actor token of `actor_id_column` and the address token of `ip_column` (the
/// 16 stored bytes) of the account `account_row_column`: what the SQL both stores share asks of
/// every remembered (actor, address) pair when it must know whether any event still holds it.
/// `hex()` spells the bytes of a text in its UTF-8 (the database's encoding) as `actor_terms`
/// does, in capitals, which FTS5 folds as it folds the query's every token.
pub fn actor_and_ip_match_sql(
    account_row_column: &str,
    actor_id_column: &str,
    ip_column: &str,
) -> String {
    format!(
        "'\".' || {account_row_column} || 'p' || lower(hex({actor_id_column})) || '\" \".' || \
         {account_row_column} || CASE WHEN substr({ip_column}, 1, 12) = X'00000000000000000000FFFF' \
         THEN 'i' || lower(hex(substr({ip_column}, 13))) ELSE 'j' || lower(hex({ip_column})) END || '\"'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoding::ip_bytes;

    fn networks(texts: &[&str]) -> Vec<IpNet> {
        texts.iter().map(|text| text.parse().unwrap()).collect()
    }

    #[test]
    fn an_ipv4_address_is_its_four_bytes_and_an_ipv6_one_its_sixteen() {
        let mut document = String::from("00001rebooted");
        push_full_text_ip_token(&mut document, 12, &ip_bytes("10.0.0.1".parse().unwrap()));
        assert_eq!(document, "00001rebooted .12i0a000001");
        let mut alone = String::new();
        push_full_text_ip_token(&mut alone, 3, &ip_bytes("2001:db8::1".parse().unwrap()));
        assert_eq!(alone, ".3j20010db8000000000000000000000001");
        let mut mapped = String::new();
        push_full_text_ip_token(
            &mut mapped,
            3,
            &ip_bytes("::ffff:203.0.113.9".parse().unwrap()),
        );
        assert_eq!(mapped, ".3icb007109", "an IPv4-mapped address is IPv4");
        let mut nothing = String::new();
        push_full_text_ip_token(&mut nothing, 3, &[1, 2, 3]);
        assert_eq!(nothing, "");
    }

    #[test]
    fn a_block_of_whole_hex_digits_is_one_prefix_and_an_address_one_exact_token() {
        assert_eq!(
            ip_match_expression(12, &networks(&["10.0.0.1/32", "10.1.0.0/16", "0.0.0.0/0"])),
            "\".12i0a000001\" OR \".12i0a01\" * OR \".12i\" *"
        );
        assert_eq!(
            ip_match_expression(3, &networks(&["2001:db8::/32", "::/0"])),
            "\".3j20010db8\" * OR \".3j\" *"
        );
        assert_eq!(ip_match_expression(3, &[]), "");
    }

    #[test]
    fn a_block_between_hex_digits_is_the_prefixes_of_the_next_digits_inside_it() {
        // 10.0.0.0/9: the first two digits 0a, then 0 to 7 (the third digit's first bit is the
        // block's).
        assert_eq!(
            ip_match_expression(1, &networks(&["10.0.0.0/9"])),
            (0..8)
                .map(|digit| format!("\".1i0a{digit}\" *"))
                .collect::<Vec<_>>()
                .join(" OR ")
        );
        // 203.0.113.8/30 holds .8 to .11: the last digit is 8, 9, a or b, each a whole address.
        assert_eq!(
            ip_match_expression(1, &networks(&["203.0.113.9/30"])),
            "\".1icb007108\" OR \".1icb007109\" OR \".1icb00710a\" OR \".1icb00710b\""
        );
        // 10.128.0.0/10: the third digit's first two bits are 10, so 8 to b.
        assert_eq!(
            ip_match_expression(1, &networks(&["10.130.0.0/10"])),
            "\".1i0a8\" * OR \".1i0a9\" * OR \".1i0aa\" * OR \".1i0ab\" *"
        );
    }

    #[test]
    fn every_address_of_a_block_and_no_other_has_a_token_the_expression_names() {
        let block: IpNet = "10.0.0.0/13".parse().unwrap();
        let expression = ip_match_expression(5, &[block]);
        let terms: Vec<(String, bool)> = expression
            .split(" OR ")
            .map(|term| {
                let is_prefix = term.ends_with(" *");
                (
                    term.trim_end_matches(" *").trim_matches('"').to_owned(),
                    is_prefix,
                )
            })
            .collect();
        for address in [
            "10.0.0.0",
            "10.7.255.255",
            "10.8.0.0",
            "9.255.255.255",
            "10.3.2.1",
        ] {
            let ip: IpAddr = address.parse().unwrap();
            let mut token = String::new();
            push_full_text_ip_token(&mut token, 5, &ip_bytes(ip));
            let named = terms.iter().any(|(term, is_prefix)| {
                if *is_prefix {
                    token.starts_with(term.as_str())
                } else {
                    token == *term
                }
            });
            assert_eq!(named, block.contains(&ip), "{address}: {expression}");
        }
    }
}
