//! The SQLite store's full-text documents (`events_fts`, migration 0001): each token of an
//! event's message behind its account's fixed-width tag, so every term's doclist belongs to one
//! account. It lives here because the SQL both stores share (removing personal data) rewrites a
//! located event's document on SQLite, whose place tokens sit beside the message's since migration
//! 0020 (`place_terms::push_full_text_place_of_stored_event`), and its target tokens since
//! migration 0025 (`target_terms`).

/// Width of an account's full-text tag: 36^5 (60 million) accounts.
pub const ACCOUNT_TAG_WIDTH: usize = 5;

/// Appends the fixed-width base-36 tag prefixed to every full-text token of an account, so each
/// term in the FTS index belongs to one account.
pub fn push_account_text_tag(account_row: i64, tag: &mut String) {
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
        push_account_text_tag(account_row, &mut document);
        document.push_str(&token);
    }
    document
}

/// SQL that is true for an event of `events` (the table's own name in scope) stored at or before
/// the event a migration's `marker_table` (`account_row`, `last_event_row`) names for its
/// account, false for one stored after it or in an account the table does not name; `account_row`
/// is the SQL of the event's account row. A migration that changes how the writer spells an
/// event's document records each account's last event of the old spelling this way, so code that
/// must spell a stored document again can tell which it is. The marker stays right because an
/// account's seqs are never reused: retention never prunes an account's newest event.
pub fn stored_up_to_marker_sql(marker_table: &str, account_row: &str) -> String {
    format!(
        "(events.event_row <= coalesce((SELECT last_event_row FROM {marker_table} \
         WHERE {marker_table}.account_row = {account_row}), -1))"
    )
}
