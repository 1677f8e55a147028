//! The SQLite store's index of targets since migration 0025: each target of an event is a token of
//! the event's `events_fts` document, `.<account_row>t<lower-case hex of the id's UTF-8>`, where
//! `target:` finds it. Events stored before the migration keep their rows of `event_targets`
//! (`events_with_target_rows` names the last of them per account), and `target:` reads both. It
//! lives here because the SQL both stores share (removing personal data) replaces a located
//! event's document on SQLite and must write its target tokens again; PostgreSQL keeps its
//! `event_targets` table.
//!
//! Like the place tokens (`place_terms`), a target token starts with
//! `place_terms::FULL_TEXT_PLACE_MARKER`, which no word of a message can, and the letter after the
//! account's digits (`t`) is one no place token uses. Hexadecimal keeps the token one run of
//! lower-case ASCII letters and digits, which the tokenizer keeps whole and its case folding
//! cannot merge, so a token matches exactly the events holding that id; and the hex of a prefix is
//! a prefix of the hex of every id starting with it, so `target:web-*` is an FTS5 prefix query.

use logbook_core::query::TextPattern;

use crate::place_terms::{FULL_TEXT_PLACE_MARKER, push_lower_hex};

/// The letter between the account's digits and the id's hex in a target token.
const TARGET_TOKEN_KIND: char = 't';

/// Appends the hex of each target id, space-separated: what `push_full_text_target_tokens` turns
/// into the tokens of one account. Computed before the writer knows the account's row, off its
/// thread.
pub fn push_target_hex<'id>(target_hex: &mut String, target_ids: impl Iterator<Item = &'id str>) {
    for target_id in target_ids {
        if !target_hex.is_empty() {
            target_hex.push(' ');
        }
        push_lower_hex(target_hex, target_id);
    }
}

/// Appends one token per id of `target_hex` (from `push_target_hex`) for `account_row`, each
/// separated from what `document` holds by a space.
pub fn push_full_text_target_tokens(document: &mut String, account_row: i64, target_hex: &str) {
    if target_hex.is_empty() {
        return;
    }
    for id_hex in target_hex.split(' ') {
        if !document.is_empty() {
            document.push(' ');
        }
        push_target_token_start(document, account_row);
        document.push_str(id_hex);
    }
}

/// Appends what every target token of `account_row` starts with.
fn push_target_token_start(token: &mut String, account_row: i64) {
    push_value_token_start(token, account_row, TARGET_TOKEN_KIND);
}

/// Appends what every token of a value of one kind (`kind`: a target's `t`, an action's `v`)
/// starts with: the marker, the account's digits and the kind's letter. The letter is one no
/// place token uses (`c`, `a`, `y`, `l`) and no other kind of value token, so kinds never meet.
pub(crate) fn push_value_token_start(token: &mut String, account_row: i64, kind: char) {
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = write!(token, "{FULL_TEXT_PLACE_MARKER}{account_row}{kind}");
}

/// Appends the target tokens of a stored event from its JSON `body` (`targets[].id`, in the order
/// the writer indexed them), for code that must spell a document again to take it out of FTS5.
pub fn push_full_text_target_tokens_of_body(
    document: &mut String,
    account_row: i64,
    body: &serde_json::Value,
) {
    let mut target_hex = String::new();
    push_target_hex(
        &mut target_hex,
        body.get("targets")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|target| target.get("id")?.as_str()),
    );
    push_full_text_target_tokens(document, account_row, &target_hex);
}

/// The FTS5 expression matching, in `events_fts`, the events holding a target that any of
/// `patterns` matches: `".12t776562" OR ".12t7765622d" *`. The tokens are lower-case ASCII letters,
/// digits and the marker, so quoting them is all the escaping they need.
pub fn target_match_expression(account_row: i64, patterns: &[TextPattern]) -> String {
    value_match_expression(account_row, TARGET_TOKEN_KIND, patterns)
}

/// The FTS5 expression matching the tokens of `kind` (`push_value_token_start`) whose value one
/// of `patterns` matches: an exact pattern is its quoted token, a prefix the quoted start of its
/// tokens followed by ` *`.
pub(crate) fn value_match_expression(
    account_row: i64,
    kind: char,
    patterns: &[TextPattern],
) -> String {
    let mut expression = String::new();
    for pattern in patterns {
        if !expression.is_empty() {
            expression.push_str(" OR ");
        }
        let (value, is_prefix) = match pattern {
            TextPattern::Exact(value) => (value, false),
            TextPattern::Prefix(prefix) => (prefix, true),
        };
        expression.push('"');
        push_value_token_start(&mut expression, account_row, kind);
        push_lower_hex(&mut expression, value);
        expression.push('"');
        if is_prefix {
            expression.push_str(" *");
        }
    }
    expression
}

/// SQL that is true for an event of `events` (the table's own name in scope) whose targets are
/// rows of `event_targets` (stored before migration 0025), false for one whose targets are tokens
/// of its `events_fts` document; `account_row` is the SQL of the event's account row.
pub fn written_with_target_rows_sql(account_row: &str) -> String {
    crate::full_text::stored_up_to_marker_sql("events_with_target_rows", account_row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_tokens_are_the_hex_of_each_id_behind_the_account_and_the_marker() {
        let mut target_hex = String::new();
        push_target_hex(&mut target_hex, ["web-1", "Ü"].into_iter());
        assert_eq!(target_hex, "7765622d31 c39c");
        let mut document = String::from("00001rebooted");
        push_full_text_target_tokens(&mut document, 12, &target_hex);
        assert_eq!(document, "00001rebooted .12t7765622d31 .12tc39c");
        let mut alone = String::new();
        push_full_text_target_tokens(&mut alone, 12, "");
        assert_eq!(alone, "");
    }

    #[test]
    fn a_stored_body_spells_the_tokens_the_writer_wrote() {
        let body = serde_json::json!({"targets": [{"type": "host", "id": "web-1"}, {"id": "Ü"}]});
        let mut document = String::new();
        push_full_text_target_tokens_of_body(&mut document, 12, &body);
        assert_eq!(document, ".12t7765622d31 .12tc39c");
        let mut none = String::new();
        push_full_text_target_tokens_of_body(&mut none, 12, &serde_json::json!({}));
        assert_eq!(none, "");
    }

    #[test]
    fn a_target_clause_matches_exact_tokens_and_prefixes_of_tokens() {
        assert_eq!(
            target_match_expression(
                3,
                &[
                    TextPattern::Exact("db".into()),
                    TextPattern::Prefix("web-".into()),
                    TextPattern::Prefix(String::new()),
                ]
            ),
            "\".3t6462\" OR \".3t7765622d\" * OR \".3t\" *"
        );
    }
}
