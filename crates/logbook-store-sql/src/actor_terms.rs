//! The SQLite store's index of actors since migration 0028: an event's actor id is a token of its
//! `events_fts` document, `.<account_row>p<lower-case hex of the id's UTF-8>`, where a positive
//! `actor:` clause finds it. Events stored before the migration keep their rows of
//! `event_actor_rows` (`events_with_actor_rows` names the last of them per account), and `actor:`
//! reads both. It lives here because the SQL both stores share (removing personal data, where an
//! actor was seen) replaces a located event's document on SQLite and must write its actor token
//! again; PostgreSQL keeps its index on the column.
//!
//! The token is built like an action's (`action_terms`): behind the marker no word of a message
//! can start with, then the account's digits and a letter of its own (`p`, for the person or
//! principal who acted), then hexadecimal, which the tokenizer keeps whole and its case folding
//! cannot merge, and whose prefixes are the prefixes of the id (`actor:alice*` is an FTS5 prefix
//! query).

use logbook_core::query::TextPattern;

use crate::place_terms::push_lower_hex;
use crate::target_terms::{push_value_token_start, value_match_expression};

/// The letter between the account's digits and the actor id's hex in an actor token.
const ACTOR_TOKEN_KIND: char = 'p';

/// The hex of an actor id, what `push_full_text_actor_token` turns into the token of one account.
/// Computed before the writer knows the account's row, off its thread.
pub fn actor_hex(actor_id: &str) -> String {
    let mut hex = String::with_capacity(actor_id.len() * 2);
    push_lower_hex(&mut hex, actor_id);
    hex
}

/// Appends the actor token of `actor_hex` (from `actor_hex`) for `account_row`, separated from
/// what `document` holds by a space.
pub fn push_full_text_actor_token(document: &mut String, account_row: i64, actor_hex: &str) {
    if !document.is_empty() {
        document.push(' ');
    }
    push_value_token_start(document, account_row, ACTOR_TOKEN_KIND);
    document.push_str(actor_hex);
}

/// Appends the actor token of a stored event from its JSON `body` (`actor.id`), for code that
/// must spell a document again to take it out of FTS5. An event without an actor has no token.
pub fn push_full_text_actor_token_of_body(
    document: &mut String,
    account_row: i64,
    body: &serde_json::Value,
) {
    if let Some(actor_id) = body
        .get("actor")
        .and_then(|actor| actor.get("id"))
        .and_then(serde_json::Value::as_str)
    {
        push_full_text_actor_token(document, account_row, &actor_hex(actor_id));
    }
}

/// The FTS5 expression matching, in `events_fts`, the events whose actor id one of `patterns`
/// matches: `".12p616c696365" OR ".12p626f62" *`.
pub fn actor_match_expression(account_row: i64, patterns: &[TextPattern]) -> String {
    value_match_expression(account_row, ACTOR_TOKEN_KIND, patterns)
}

/// The FTS5 expression matching, in `events_fts`, the events of the one actor `actor_id`: what
/// the SQL both stores share (where an actor was seen, removing a person's data) looks up on
/// SQLite.
pub fn one_actor_match_expression(account_row: i64, actor_id: &str) -> String {
    actor_match_expression(account_row, &[TextPattern::Exact(actor_id.to_owned())])
}

/// SQL that is true for an event of `events` (the table's own name in scope) whose actor is a row
/// of `event_actor_rows` (stored before migration 0028), false for one whose actor is a token of
/// its `events_fts` document; `account_row` is the SQL of the event's account row.
pub fn written_with_actor_rows_sql(account_row: &str) -> String {
    crate::full_text::stored_up_to_marker_sql("events_with_actor_rows", account_row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_actor_token_is_the_hex_of_the_id_behind_the_account_and_its_letter() {
        let mut document = String::from("00001rebooted");
        push_full_text_actor_token(&mut document, 12, &actor_hex("alice"));
        assert_eq!(document, "00001rebooted .12p616c696365");
        let mut alone = String::new();
        push_full_text_actor_token(&mut alone, 3, &actor_hex("Ü"));
        assert_eq!(alone, ".3pc39c");
    }

    #[test]
    fn a_stored_body_spells_the_token_the_writer_wrote_and_none_without_an_actor() {
        let body = serde_json::json!({"actor": {"id": "alice", "name": "Alice"}, "message": "hi"});
        let mut document = String::new();
        push_full_text_actor_token_of_body(&mut document, 12, &body);
        let mut written = String::new();
        push_full_text_actor_token(&mut written, 12, &actor_hex("alice"));
        assert_eq!(document, written);
        let mut none = String::new();
        push_full_text_actor_token_of_body(&mut none, 12, &serde_json::json!({"message": "hi"}));
        assert_eq!(none, "");
    }

    #[test]
    fn an_actor_clause_matches_exact_tokens_and_prefixes_and_never_an_action() {
        let expression = actor_match_expression(
            3,
            &[
                TextPattern::Exact("bob".into()),
                TextPattern::Prefix("ali".into()),
            ],
        );
        assert_eq!(expression, "\".3p626f62\" OR \".3p616c69\" *");
        assert!(!expression.contains(".3v"));
    }
}
