//! The SQLite store's full-text index of places: what one located event's terms are, and which
//! terms a `country:`, `asn:` or `city:` clause looks up. It lives here because the SQL both
//! stores share (removing personal data, the location backfill) changes the place columns and must
//! keep that index in step when it runs on SQLite; PostgreSQL indexes the columns themselves and
//! has no such index.
//!
//! An event's place has been indexed three ways, by when and how it was located:
//!
//! - before migration 0020, or by the location backfill: a document of its own table
//!   (`events_place_terms`, migration 0019) holding up to three terms, `<account_row>c<hex of the
//!   country code>`, `<account_row>a<asn>`, `<account_row>y<hex of the city>`;
//! - at ingest between migrations 0020 and 0021: the same three terms as tokens of its
//!   `events_fts` document, each behind `.` (`FULL_TEXT_PLACE_MARKER`);
//! - at ingest since migration 0021: one token of its `events_fts` document, its location's row
//!   (`.<account_row>l<location_row>`). A clause finds the account's locations holding its value
//!   in `account_locations` and matches their tokens.
//!
//! The account prefix gives every term a doclist of one account; hexadecimal keeps every term
//! lower-case ASCII letters and digits, which FTS5's `ascii` tokenizer keeps whole and its case
//! folding cannot merge, so the index matches exactly the events holding the value. The letter
//! after the account's digits says what the term is. Migration 0019's SQL spells the same terms
//! for the events located before it.
//!
//! The document is written by the code that writes the columns, never by a trigger: a statement
//! that fires a trigger runs inside a statement savepoint, and at every savepoint FTS5 writes the
//! terms it holds in memory as a new segment, which made every insert write a segment to both
//! full-text tables (measured: the writer's event row phase 30 % slower with lookups on).

use logbook_core::query::Condition;

/// What starts a place token inside an `events_fts` document (migrations 0020 and 0021). A message token is
/// letters and digits behind its account's tag (`full_text::full_text_document`), and a searched
/// word is tokenized the same way, so no word can be, or find, a token starting with `.`.
pub const FULL_TEXT_PLACE_MARKER: char = '.';

/// The terms of one event's place, space-separated; `None` when it has none of the three.
pub fn place_document(
    account_row: i64,
    country_code: Option<&str>,
    asn: Option<i64>,
    city: Option<&str>,
) -> Option<String> {
    let mut document = String::new();
    push_place_terms(&mut document, "", account_row, country_code, asn, city);
    (!document.is_empty()).then_some(document)
}

/// Appends the place terms of one event to its `events_fts` document, each behind
/// `FULL_TEXT_PLACE_MARKER` and separated from what `document` holds by a space: how the writer
/// indexed a located event between migrations 0020 and 0021, which pruning and the removal of
/// personal data must spell again to take such a document out.
fn push_full_text_place_tokens(
    document: &mut String,
    account_row: i64,
    country_code: Option<&str>,
    asn: Option<i64>,
    city: Option<&str>,
) {
    let mut marker = [0; 4];
    let marker = FULL_TEXT_PLACE_MARKER.encode_utf8(&mut marker);
    push_place_terms(document, marker, account_row, country_code, asn, city);
}

/// Appends each known field's term, `marker` before each, space-separated: the one spelling of a
/// term both indexes use.
fn push_place_terms(
    document: &mut String,
    marker: &str,
    account_row: i64,
    country_code: Option<&str>,
    asn: Option<i64>,
    city: Option<&str>,
) {
    use std::fmt::Write;
    let start = |document: &mut String, field: char| {
        if !document.is_empty() {
            document.push(' ');
        }
        document.push_str(marker);
        // Writing to a String cannot fail.
        let _ = write!(document, "{account_row}{field}");
    };
    if let Some(code) = country_code {
        start(document, 'c');
        push_lower_hex(document, code);
    }
    if let Some(asn) = asn {
        start(document, 'a');
        let _ = write!(document, "{asn}");
    }
    if let Some(city) = city {
        start(document, 'y');
        push_lower_hex(document, city);
    }
}

/// Appends the one place token of an event located at ingest since migration 0021: its location's
/// row, behind `FULL_TEXT_PLACE_MARKER` and separated from what `document` holds by a space.
pub fn push_full_text_location_token(document: &mut String, account_row: i64, location_row: i64) {
    use std::fmt::Write;
    if !document.is_empty() {
        document.push(' ');
    }
    // Writing to a String cannot fail.
    let _ = write!(
        document,
        "{FULL_TEXT_PLACE_MARKER}{account_row}l{location_row}"
    );
}

/// Appends the place tokens a stored event's `events_fts` document was written with, given the
/// event's `location_row`: the three terms of migration 0020 when `written_with_three_tokens`
/// (`written_with_three_place_tokens_sql`), else the location's one token.
pub fn push_full_text_place_of_stored_event(
    document: &mut String,
    account_row: i64,
    location_row: i64,
    written_with_three_tokens: bool,
    place: (Option<&str>, Option<i64>, Option<&str>),
) {
    let (country_code, asn, city) = place;
    if written_with_three_tokens {
        push_full_text_place_tokens(document, account_row, country_code, asn, city);
    } else {
        push_full_text_location_token(document, account_row, location_row);
    }
}

/// SQL that is true for an event of `events` (the table's own name in scope) whose located
/// document holds the three place tokens of migration 0020, false for one holding its location's
/// token (migration 0021); `account_row` is the SQL of the event's account row. Only meaningful
/// for an event with a `location_row`.
pub fn written_with_three_place_tokens_sql(account_row: &str) -> String {
    crate::full_text::stored_up_to_marker_sql("events_with_three_place_tokens", account_row)
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

/// The FTS5 expression matching any of `terms` (`"t1" OR "t2"`) in `events_place_terms`. Terms
/// are lower-case ASCII letters and digits, so quoting them is all the escaping they need.
pub fn any_term(terms: &[String]) -> String {
    any_term_behind(terms, "")
}

/// The FTS5 expression matching, in `events_fts`, the events holding any of `terms` as place
/// tokens (migration 0020) or the token of any of `location_rows` (migration 0021):
/// `".t1" OR ".t2" OR ".12l5"`.
pub fn any_full_text_place_token(
    account_row: i64,
    terms: &[String],
    location_rows: &[i64],
) -> String {
    let mut marker = [0; 4];
    let mut expression = any_term_behind(terms, FULL_TEXT_PLACE_MARKER.encode_utf8(&mut marker));
    let mut token = String::new();
    for location_row in location_rows {
        token.clear();
        push_full_text_location_token(&mut token, account_row, *location_row);
        if !expression.is_empty() {
            expression.push_str(" OR ");
        }
        expression.push('"');
        expression.push_str(&token);
        expression.push('"');
    }
    expression
}

fn any_term_behind(terms: &[String], marker: &str) -> String {
    terms
        .iter()
        .map(|term| format!("\"{marker}{term}\""))
        .collect::<Vec<_>>()
        .join(" OR ")
}

fn country_term(account_row: i64, code: &str) -> String {
    let mut term = String::new();
    push_place_terms(&mut term, "", account_row, Some(code), None, None);
    term
}

fn city_term(account_row: i64, city: &str) -> String {
    let mut term = String::new();
    push_place_terms(&mut term, "", account_row, None, None, Some(city));
    term
}

/// `text`'s UTF-8 bytes in lower-case hexadecimal, as SQLite's `lower(hex(text))`.
pub(crate) fn push_lower_hex(hex: &mut String, text: &str) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    hex.reserve(text.len() * 2);
    for byte in text.bytes() {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
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
    fn full_text_place_tokens_are_the_same_terms_behind_a_dot_after_the_message() {
        let mut document = String::from("0000chello");
        push_full_text_place_tokens(&mut document, 12, Some("IN"), Some(9829), None);
        assert_eq!(document, "0000chello .12c494e .12a9829");
        let mut place_only = String::new();
        push_full_text_place_tokens(&mut place_only, 3, None, None, Some("Pune"));
        assert_eq!(place_only, ".3y50756e65");
        assert_eq!(
            any_full_text_place_token(12, &["12c494e".into(), "12c5347".into()], &[]),
            "\".12c494e\" OR \".12c5347\""
        );
    }

    #[test]
    fn a_location_token_is_the_location_row_behind_the_account_and_an_l() {
        let mut document = String::from("0000chello");
        push_full_text_location_token(&mut document, 12, 4567);
        assert_eq!(document, "0000chello .12l4567");
        let mut place_only = String::new();
        push_full_text_place_of_stored_event(
            &mut place_only,
            3,
            9,
            false,
            (Some("IN"), None, None),
        );
        assert_eq!(place_only, ".3l9");
        let mut three = String::new();
        push_full_text_place_of_stored_event(&mut three, 3, 9, true, (Some("IN"), None, None));
        assert_eq!(three, ".3c494e");
        assert_eq!(
            any_full_text_place_token(12, &["12c494e".into()], &[5, 81]),
            "\".12c494e\" OR \".12l5\" OR \".12l81\""
        );
        assert_eq!(any_full_text_place_token(12, &[], &[5]), "\".12l5\"");
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
