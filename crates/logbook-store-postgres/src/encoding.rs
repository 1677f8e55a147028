//! How values reach PostgreSQL: the shared `SqlValue` as bound parameters (`Bound`), and full text
//! as Logbook's own tokens: a message's `tsvector` is built here from
//! `logbook_core::query::text_tokens`, in PostgreSQL's binary format, so a word means exactly the
//! same in SQL as in the in-memory matcher.

use std::collections::BTreeMap;
use std::error::Error;

use bytes::{BufMut, BytesMut};
use logbook_store_sql::SqlValue;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

pub(crate) use logbook_store_sql::encoding::{ip_bytes, micros_to_time, unix_micros_of};

/// A shared `SqlValue` bound as a PostgreSQL parameter. The type PostgreSQL infers for a
/// placeholder decides the wire format, so an integer is sent as `smallint`, `integer` or `bigint`
/// as the column asks, and a boolean as `boolean`.
#[derive(Debug)]
pub(crate) struct Bound<'value>(pub &'value SqlValue);

impl ToSql for Bound<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match (self.0, ty) {
            (SqlValue::Null, _) => Ok(IsNull::Yes),
            (SqlValue::Integer(value), &Type::INT2) => i16::try_from(*value)?.to_sql(ty, out),
            (SqlValue::Integer(value), &Type::INT4) => i32::try_from(*value)?.to_sql(ty, out),
            (SqlValue::Integer(value), &Type::INT8) => value.to_sql(ty, out),
            (SqlValue::Bool(value), &Type::BOOL) => value.to_sql(ty, out),
            (SqlValue::Text(text), &Type::TEXT | &Type::VARCHAR) => text.as_str().to_sql(ty, out),
            (SqlValue::Bytes(bytes), &Type::BYTEA) => bytes.as_slice().to_sql(ty, out),
            (value, ty) => Err(format!("cannot bind {value:?} as {ty}").into()),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::INT2
                | Type::INT4
                | Type::INT8
                | Type::BOOL
                | Type::TEXT
                | Type::VARCHAR
                | Type::BYTEA
        )
    }

    to_sql_checked!();
}

/// `parameters` bound for PostgreSQL.
pub(crate) fn bound(parameters: &[SqlValue]) -> Vec<Bound<'_>> {
    parameters.iter().map(Bound).collect()
}

/// PostgreSQL limits a lexeme to 2047 bytes; a longer token cannot be indexed (and is not
/// searchable on PostgreSQL, a documented difference from SQLite).
const MAX_LEXEME_BYTES: usize = 2047;
/// PostgreSQL keeps positions up to 16383; later tokens keep their words but lose phrase positions.
const MAX_POSITION: u16 = 16383;
/// PostgreSQL keeps at most 256 positions per lexeme.
const MAX_POSITIONS_PER_LEXEME: usize = 256;

/// A message's tokens as a `tsvector` in PostgreSQL's binary format (the `tsvector_send` layout:
/// lexeme count, then per lexeme its bytes, a NUL, its position count and positions), encoded once
/// on the caller's task and copied into COPY's buffer by the writer.
#[derive(Debug, Clone)]
pub struct MessageTokens(Vec<u8>);

impl MessageTokens {
    pub fn of_message(message: &str) -> Self {
        // Sorted by bytes (the order PostgreSQL keeps lexemes in), positions ascending.
        let mut lexemes: BTreeMap<String, Vec<u16>> = BTreeMap::new();
        for (index, token) in logbook_core::query::text_tokens(message)
            .into_iter()
            .enumerate()
        {
            if token.len() > MAX_LEXEME_BYTES {
                continue;
            }
            let position = u16::try_from(index + 1)
                .unwrap_or(MAX_POSITION)
                .min(MAX_POSITION);
            let positions = lexemes.entry(token).or_default();
            if positions.len() < MAX_POSITIONS_PER_LEXEME
                && positions.last().is_none_or(|last| *last < position)
            {
                positions.push(position);
            }
        }
        let mut encoded = Vec::with_capacity(4 + message.len() + lexemes.len() * 6);
        encoded.put_i32(lexemes.len() as i32);
        for (lexeme, positions) in &lexemes {
            encoded.extend_from_slice(lexeme.as_bytes());
            encoded.push(0);
            encoded.put_u16(positions.len() as u16);
            for position in positions {
                encoded.put_u16(*position);
            }
        }
        MessageTokens(encoded)
    }
}

impl ToSql for MessageTokens {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.extend_from_slice(&self.0);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TS_VECTOR
    }

    to_sql_checked!();
}

/// A `tsquery` in text form requiring every phrase: tokens of one phrase follow each other
/// (`'a' <-> 'b'`), phrases are ANDed. Each lexeme is quoted with its quotes and backslashes
/// escaped, so no user text can become tsquery syntax.
pub(crate) fn tsquery_text(phrases: &[Vec<String>]) -> String {
    let mut text = String::new();
    for tokens in phrases {
        if !text.is_empty() {
            text.push_str(" & ");
        }
        text.push('(');
        for (index, token) in tokens.iter().enumerate() {
            if index > 0 {
                text.push_str(" <-> ");
            }
            text.push('\'');
            for character in token.chars() {
                match character {
                    '\'' => text.push_str("''"),
                    '\\' => text.push_str("\\\\"),
                    other => text.push(other),
                }
            }
            text.push('\'');
        }
        text.push(')');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_tokens_list_sorted_lexemes_with_their_positions() {
        let MessageTokens(encoded) = MessageTokens::of_message("b a b");
        let mut expected = Vec::new();
        expected.extend_from_slice(&2_i32.to_be_bytes());
        expected.extend_from_slice(b"a\0");
        expected.extend_from_slice(&1_u16.to_be_bytes());
        expected.extend_from_slice(&2_u16.to_be_bytes());
        expected.extend_from_slice(b"b\0");
        expected.extend_from_slice(&2_u16.to_be_bytes());
        expected.extend_from_slice(&1_u16.to_be_bytes());
        expected.extend_from_slice(&3_u16.to_be_bytes());
        assert_eq!(encoded, expected);
    }

    #[test]
    fn tsquery_text_quotes_every_lexeme() {
        assert_eq!(
            tsquery_text(&[vec!["web".into(), "1".into()], vec!["it's".into()]]),
            "('web' <-> '1') & ('it''s')"
        );
    }
}
