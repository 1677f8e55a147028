//! The SQLite store's full-text index of places (`events_place_terms`, migration 0019): what one
//! located event's document holds, and which terms a `country:`, `asn:` or `city:` clause looks
//! up. It lives here because the SQL both stores share (removing personal data, the location
//! backfill) changes the place columns and must keep that index in step when it runs on SQLite;
//! PostgreSQL indexes the columns themselves and has no such table.
//!
//! A term is its account's row in decimal, a letter saying the field, and the value:
//! `<account_row>c<hex of the country code>`, `<account_row>a<asn>`, `<account_row>y<hex of the
//! city>`. The account prefix gives every term a doclist of one account; hexadecimal keeps every
//! term lower-case ASCII letters and digits, which FTS5's `ascii` tokenizer keeps whole and its case
//! folding cannot merge, so the index matches exactly the events holding the value. Migration
//! 0019's SQL spells the same terms for the events located before it.
//!
//! The document is written by the code that writes the columns, never by a trigger: a statement
//! that fires a trigger runs inside a statement savepoint, and at every savepoint FTS5 writes the
//! terms it holds in memory as a new segment, which made every insert write a segment to both
//! full-text tables (measured: the writer's event row phase 30 % slower with lookups on).

use logbook_core::query::Condition;

/// The terms of one event's place, space-separated; `None` when it has none of the three.
pub fn place_document(
    account_row: i64,
    country_code: Option<&str>,
    asn: Option<i64>,
    city: Option<&str>,
) -> Option<String> {
    let mut document = String::new();
    let mut add = |term: String| {
        if !document.is_empty() {
            document.push(' ');
        }
        document.push_str(&term);
    };
    if let Some(code) = country_code {
        add(country_term(account_row, code));
    }
    if let Some(asn) = asn {
        add(format!("{account_row}a{asn}"));
    }
    if let Some(city) = city {
        add(city_term(account_row, city));
    }
    (!document.is_empty()).then_some(document)
}

/// The terms of a `country:`, `asn:` or `city:` clause (any of them matches); `None` for any other
/// condition.
pub fn condition_terms(account_row: i64, condition: &Condition) -> Option<Vec<String>> {
    Some(match condition {
        Condition::Country(codes) => codes
            .iter()
            .map(|code| country_term(account_row, code.as_str()))
            .collect(),
        Condition::Asn(numbers) => numbers
            .iter()
            .map(|number| format!("{account_row}a{number}"))
            .collect(),
        Condition::City(cities) => cities
            .iter()
            .map(|city| city_term(account_row, city))
            .collect(),
        _ => return None,
    })
}

/// The FTS5 expression matching any of `terms` (`"t1" OR "t2"`). Terms are lower-case ASCII
/// letters and digits, so quoting them is all the escaping they need.
pub fn any_term(terms: &[String]) -> String {
    terms
        .iter()
        .map(|term| format!("\"{term}\""))
        .collect::<Vec<_>>()
        .join(" OR ")
}

fn country_term(account_row: i64, code: &str) -> String {
    format!("{account_row}c{}", lower_hex(code))
}

fn city_term(account_row: i64, city: &str) -> String {
    format!("{account_row}y{}", lower_hex(city))
}

/// `text`'s UTF-8 bytes in lower-case hexadecimal, as SQLite's `lower(hex(text))`.
fn lower_hex(text: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(text.len() * 2);
    for byte in text.bytes() {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use logbook_core::location::CountryCode;

    #[test]
    fn a_place_document_holds_one_term_per_known_field_prefixed_with_the_account() {
        assert_eq!(
            place_document(12, Some("IN"), Some(9829), Some("Mumbai")).as_deref(),
            Some("12c494e 12a9829 12y4d756d626169")
        );
        assert_eq!(
            place_document(3, None, Some(64512), None).as_deref(),
            Some("3a64512")
        );
        assert_eq!(place_document(3, None, None, None), None);
    }

    #[test]
    fn a_clause_looks_up_the_terms_its_events_were_indexed_with() {
        let country = Condition::Country(vec![
            CountryCode::parse("in").unwrap(),
            CountryCode::parse("SG").unwrap(),
        ]);
        let terms = condition_terms(12, &country).unwrap();
        assert_eq!(terms, vec!["12c494e", "12c5347"]);
        assert_eq!(any_term(&terms), "\"12c494e\" OR \"12c5347\"");
        assert_eq!(
            condition_terms(12, &Condition::City(vec!["Mumbai".into()])).unwrap(),
            vec!["12y4d756d626169"]
        );
        assert_eq!(condition_terms(12, &Condition::Outcome(Vec::new())), None);
    }

    #[test]
    fn a_city_beyond_ascii_becomes_a_term_of_hex_digits_that_keeps_its_case() {
        assert_eq!(city_term(1, "Zürich"), "1y5ac3bc72696368");
        assert_ne!(city_term(1, "zürich"), city_term(1, "Zürich"));
    }
}
