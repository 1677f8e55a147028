//! The SQLite store's index of actions since migration 0026: an event's action is a token of its
//! `events_fts` document, `.<account_row>v<lower-case hex of the action's UTF-8>`, where a positive
//! `action:` clause finds it. Events stored before the migration keep their rows of
//! `event_action_rows` (`events_with_action_rows` names the last of them per account), and
//! `action:` reads both. It lives here because the SQL both stores share (removing personal data)
//! replaces a located event's document on SQLite and must write its action token again;
//! PostgreSQL keeps its index on the column.
//!
//! The token is built like a target's (`target_terms`): behind the marker no word of a message can
//! start with, then the account's digits and a letter of its own (`v`, for the verb), then
//! hexadecimal, which the tokenizer keeps whole and its case folding cannot merge, and whose
//! prefixes are the prefixes of the action (`action:server.*` is an FTS5 prefix query).

use logbook_core::query::TextPattern;

use crate::place_terms::push_lower_hex;
use crate::target_terms::{push_value_token_start, value_match_expression};

/// The letter between the account's digits and the action's hex in an action token.
const ACTION_TOKEN_KIND: char = 'v';

/// The hex of an action, what `push_full_text_action_token` turns into the token of one account.
/// Computed before the writer knows the account's row, off its thread.
pub fn action_hex(action: &str) -> String {
    let mut hex = String::with_capacity(action.len() * 2);
    push_lower_hex(&mut hex, action);
    hex
}

/// Appends the action token of `action_hex` (from `action_hex`) for `account_row`, separated from
/// what `document` holds by a space.
pub fn push_full_text_action_token(document: &mut String, account_row: i64, action_hex: &str) {
    if !document.is_empty() {
        document.push(' ');
    }
    push_value_token_start(document, account_row, ACTION_TOKEN_KIND);
    document.push_str(action_hex);
}

/// Appends the action token of a stored event from its JSON `body` (`action`), for code that must
/// spell a document again to take it out of FTS5. Every stored event has an action; a body
/// without one (never written by Logbook) appends nothing.
pub fn push_full_text_action_token_of_body(
    document: &mut String,
    account_row: i64,
    body: &serde_json::Value,
) {
    if let Some(action) = body.get("action").and_then(serde_json::Value::as_str) {
        push_full_text_action_token(document, account_row, &action_hex(action));
    }
}

/// The FTS5 expression matching, in `events_fts`, the events whose action one of `patterns`
/// matches: `".12v757365722e6c6f67696e" OR ".12v7365727665722e" *`.
pub fn action_match_expression(account_row: i64, patterns: &[TextPattern]) -> String {
    value_match_expression(account_row, ACTION_TOKEN_KIND, patterns)
}

/// SQL that is true for an event of `events` (the table's own name in scope) whose action is a row
/// of `event_action_rows` (stored before migration 0026), false for one whose action is a token of
/// its `events_fts` document; `account_row` is the SQL of the event's account row.
pub fn written_with_action_rows_sql(account_row: &str) -> String {
    crate::full_text::stored_up_to_marker_sql("events_with_action_rows", account_row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_token_is_the_hex_of_the_action_behind_the_account_and_its_letter() {
        let mut document = String::from("00001rebooted");
        push_full_text_action_token(&mut document, 12, &action_hex("user.login"));
        assert_eq!(document, "00001rebooted .12v757365722e6c6f67696e");
        let mut alone = String::new();
        push_full_text_action_token(&mut alone, 3, &action_hex("a"));
        assert_eq!(alone, ".3v61");
    }

    #[test]
    fn a_stored_body_spells_the_token_the_writer_wrote() {
        let body = serde_json::json!({"action": "user.login", "message": "hello"});
        let mut document = String::new();
        push_full_text_action_token_of_body(&mut document, 12, &body);
        let mut written = String::new();
        push_full_text_action_token(&mut written, 12, &action_hex("user.login"));
        assert_eq!(document, written);
        let mut none = String::new();
        push_full_text_action_token_of_body(&mut none, 12, &serde_json::json!({}));
        assert_eq!(none, "");
    }

    #[test]
    fn an_action_clause_matches_exact_tokens_and_prefixes_and_never_a_target() {
        let expression = action_match_expression(
            3,
            &[
                TextPattern::Exact("db".into()),
                TextPattern::Prefix("server.".into()),
            ],
        );
        assert_eq!(expression, "\".3v6462\" OR \".3v7365727665722e\" *");
        assert!(!expression.contains(".3t"));
    }
}
