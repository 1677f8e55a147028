//! How event fields become compact, indexable column values: IPs as 16 bytes, UUIDs as 16 bytes,
//! times as integer microseconds, and the bounds that turn a prefix into an index range.

use logbook_store_sql::SqlValue;
use rusqlite::types::Value;

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

pub(crate) use logbook_store_sql::encoding::{ip_bytes, micros_to_time, unix_micros_of};

/// A shared `SqlValue` bound as a SQLite parameter, without copying its text or bytes.
pub(crate) struct Bound<'value>(pub &'value SqlValue);

impl rusqlite::ToSql for Bound<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self.0 {
            SqlValue::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            SqlValue::Integer(value) => ToSqlOutput::Borrowed(ValueRef::Integer(*value)),
            SqlValue::Bool(value) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*value))),
            SqlValue::Text(text) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            SqlValue::Bytes(bytes) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
        })
    }
}

/// `parameters` as SQLite parameters, for `params_from_iter`.
pub(crate) fn bound(parameters: &[SqlValue]) -> impl Iterator<Item = Bound<'_>> {
    parameters.iter().map(Bound)
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

pub use logbook_store_sql::full_text::full_text_document;
use logbook_store_sql::full_text::{ACCOUNT_TAG_WIDTH, push_account_text_tag};

/// Appends `document` (from `full_text_document` for any account) to `retagged` with every
/// token's tag replaced by `account_row`'s, without tokenizing again. The writer appends into one
/// buffer it reuses for every event of a group.
pub(crate) fn push_retagged_full_text_document(
    retagged: &mut String,
    document: &str,
    account_row: i64,
) {
    for tagged_token in document.split(' ') {
        if !retagged.is_empty() {
            retagged.push(' ');
        }
        push_account_text_tag(account_row, retagged);
        retagged.push_str(tagged_token.get(ACCOUNT_TAG_WIDTH..).unwrap_or_default());
    }
}

/// An FTS5 phrase for `tokens` in `account_row`: `"tagtok1 tagtok2"`. Tokens hold only letters and
/// digits, and doubling quotes keeps the quoting correct whatever they hold.
pub(crate) fn full_text_phrase(account_row: i64, tokens: &[String]) -> String {
    let mut phrase = String::from("\"");
    for (position, token) in tokens.iter().enumerate() {
        if position > 0 {
            phrase.push(' ');
        }
        push_account_text_tag(account_row, &mut phrase);
        phrase.push_str(&token.replace('"', "\"\""));
    }
    phrase.push('"');
    phrase
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut retagged = String::new();
        push_retagged_full_text_document(
            &mut retagged,
            &full_text_document(0, "Rebooted web-1"),
            37,
        );
        assert_eq!(retagged, full_text_document(37, "Rebooted web-1"));
        assert_eq!(
            full_text_phrase(1, &["web".into(), "1".into()]),
            "\"00001web 000011\""
        );
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
