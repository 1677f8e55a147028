//! Values that cross between the shared SQL and a driver: bound parameters (`SqlValue`) and the
//! rows that come back (`SqlRow`), with typed getters that say which column was not what the
//! store expected.

use logbook_core::StoreError;

/// A bound parameter or a column value. Each store converts it to its driver's own type; the
/// PostgreSQL store sends an `Integer` as `smallint`, `integer` or `bigint`, as the column asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Bool(bool),
    Text(String),
    Bytes(Vec<u8>),
}

impl From<i64> for SqlValue {
    fn from(value: i64) -> Self {
        SqlValue::Integer(value)
    }
}

impl From<bool> for SqlValue {
    fn from(value: bool) -> Self {
        SqlValue::Bool(value)
    }
}

impl From<&str> for SqlValue {
    fn from(value: &str) -> Self {
        SqlValue::Text(value.to_owned())
    }
}

impl From<String> for SqlValue {
    fn from(value: String) -> Self {
        SqlValue::Text(value)
    }
}

impl From<Vec<u8>> for SqlValue {
    fn from(value: Vec<u8>) -> Self {
        SqlValue::Bytes(value)
    }
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(value: Option<T>) -> Self {
        value.map_or(SqlValue::Null, Into::into)
    }
}

/// Ids bind as their text.
macro_rules! text_id_values {
    ($($id:ty),*) => {
        $(
            impl From<$id> for SqlValue {
                fn from(id: $id) -> Self {
                    SqlValue::Text(id.into_string())
                }
            }

            impl From<&$id> for SqlValue {
                fn from(id: &$id) -> Self {
                    SqlValue::Text(id.as_str().to_owned())
                }
            }
        )*
    };
}

text_id_values!(
    logbook_core::ids::EventId,
    logbook_core::ids::UserId,
    logbook_core::ids::ApiKeyId,
    logbook_core::ids::AlertRuleId,
    logbook_core::ids::DestinationId
);

/// One row of a result, its columns in the order of the statement's select list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlRow {
    pub columns: Vec<SqlValue>,
}

impl SqlRow {
    fn column(&self, index: usize) -> Result<&SqlValue, StoreError> {
        self.columns.get(index).ok_or_else(|| StoreError::Database {
            context: "reading a row",
            message: format!("the row has no column {index}"),
        })
    }

    fn unexpected(&self, index: usize, expected: &str) -> StoreError {
        StoreError::Database {
            context: "reading a row",
            message: format!(
                "column {index} is {:?}, not {expected}",
                self.columns.get(index)
            ),
        }
    }

    pub fn integer(&self, index: usize) -> Result<i64, StoreError> {
        self.optional_integer(index)?
            .ok_or_else(|| self.unexpected(index, "an integer"))
    }

    pub fn optional_integer(&self, index: usize) -> Result<Option<i64>, StoreError> {
        match self.column(index)? {
            SqlValue::Null => Ok(None),
            SqlValue::Integer(value) => Ok(Some(*value)),
            SqlValue::Bool(value) => Ok(Some(i64::from(*value))),
            _ => Err(self.unexpected(index, "an integer")),
        }
    }

    /// A non-negative count or size.
    pub fn count(&self, index: usize) -> Result<u64, StoreError> {
        u64::try_from(self.integer(index)?).map_err(|_| self.unexpected(index, "a count"))
    }

    /// A boolean; SQLite keeps booleans as 0 and 1.
    pub fn boolean(&self, index: usize) -> Result<bool, StoreError> {
        match self.column(index)? {
            SqlValue::Bool(value) => Ok(*value),
            SqlValue::Integer(value) => Ok(*value != 0),
            _ => Err(self.unexpected(index, "a boolean")),
        }
    }

    pub fn text(&self, index: usize) -> Result<String, StoreError> {
        self.optional_text(index)?
            .ok_or_else(|| self.unexpected(index, "text"))
    }

    pub fn optional_text(&self, index: usize) -> Result<Option<String>, StoreError> {
        match self.column(index)? {
            SqlValue::Null => Ok(None),
            SqlValue::Text(text) => Ok(Some(text.clone())),
            _ => Err(self.unexpected(index, "text")),
        }
    }

    pub fn bytes(&self, index: usize) -> Result<Vec<u8>, StoreError> {
        self.optional_bytes(index)?
            .ok_or_else(|| self.unexpected(index, "bytes"))
    }

    pub fn optional_bytes(&self, index: usize) -> Result<Option<Vec<u8>>, StoreError> {
        match self.column(index)? {
            SqlValue::Null => Ok(None),
            SqlValue::Bytes(bytes) => Ok(Some(bytes.clone())),
            _ => Err(self.unexpected(index, "bytes")),
        }
    }

    /// A stored microsecond timestamp as an instant.
    pub fn time(&self, index: usize) -> Result<time::OffsetDateTime, StoreError> {
        Ok(crate::encoding::micros_to_time(self.integer(index)?))
    }

    pub fn optional_time(&self, index: usize) -> Result<Option<time::OffsetDateTime>, StoreError> {
        Ok(self
            .optional_integer(index)?
            .map(crate::encoding::micros_to_time))
    }
}
