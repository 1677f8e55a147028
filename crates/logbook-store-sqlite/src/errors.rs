//! The one mapping from SQLite errors to `StoreError`.

use logbook_core::StoreError;
use rusqlite::ErrorCode;

/// What kind of failure a SQLite error is, for the writer's decision to retry or to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// The disk is full: nothing was committed and the next group may succeed.
    StorageFull,
    /// An I/O error: after a failed fsync the state of the file is unknown, so writing stops.
    InputOutput,
    Other,
}

pub(crate) fn failure_kind(error: &rusqlite::Error) -> FailureKind {
    match error.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => FailureKind::StorageFull,
        Some(ErrorCode::SystemIoFailure) => FailureKind::InputOutput,
        _ => FailureKind::Other,
    }
}

/// Converts a SQLite error, keeping the context of what the store was doing.
pub(crate) fn to_store_error(context: &'static str, error: &rusqlite::Error) -> StoreError {
    match failure_kind(error) {
        FailureKind::StorageFull => StoreError::StorageFull(error.to_string()),
        FailureKind::InputOutput | FailureKind::Other => StoreError::Database {
            context,
            message: error.to_string(),
        },
    }
}

/// `map_err(database_error("doing X"))`.
pub(crate) fn database_error(context: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |error| to_store_error(context, &error)
}
