//! The one mapping from PostgreSQL and pool errors to `StoreError`.

use logbook_core::StoreError;
use tokio_postgres::error::SqlState;

/// Converts a PostgreSQL error, keeping the context of what the store was doing. A full disk is
/// `StorageFull` (nothing of the transaction was committed; the next one may succeed).
pub(crate) fn to_store_error(context: &'static str, error: &tokio_postgres::Error) -> StoreError {
    if let Some(database_error) = error.as_db_error() {
        if *database_error.code() == SqlState::DISK_FULL {
            return StoreError::StorageFull(database_error.message().to_owned());
        }
        return StoreError::Database {
            context,
            message: format!(
                "{} ({})",
                database_error.message(),
                database_error.code().code()
            ),
        };
    }
    StoreError::Database {
        context,
        message: error.to_string(),
    }
}

/// `map_err(database_error("doing X"))`.
pub(crate) fn database_error(
    context: &'static str,
) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |error| to_store_error(context, &error)
}

/// A connection could not be taken from the pool: PostgreSQL is unreachable or the pool is closed.
pub(crate) fn pool_error(
    context: &'static str,
) -> impl Fn(deadpool_postgres::PoolError) -> StoreError {
    move |error| match error {
        deadpool_postgres::PoolError::Backend(error) => to_store_error(context, &error),
        other => StoreError::Unavailable(format!("{context}: {other}")),
    }
}
