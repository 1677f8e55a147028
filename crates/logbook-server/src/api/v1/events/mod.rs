//! The `events` resource: ingest (`post`), query (`list`), one event (`get`), streamed export
//! (`export`) and the live tail (`tail`).

mod export;
mod ingest;
mod read;
mod tail;
mod verifiable_export;

pub use export::{CSV_HEADER, export, export_bytes_of_rows};
pub(crate) use export::{ExportFormat, export_response};
pub use ingest::post;
pub use read::{get, list};
pub use tail::tail;
pub(crate) use tail::tail_response;

use logbook_core::query::{self, Query};

use crate::error::ApiError;

/// Parses the `q` parameter; absent or blank means "every event".
pub(crate) fn parse_query_parameter(text: Option<&str>) -> Result<Query, ApiError> {
    match text {
        None => Ok(Query::default()),
        Some(text) if text.trim().is_empty() => Ok(Query::default()),
        Some(text) => {
            query::parse(text).map_err(|source| ApiError::InvalidQuery { source, field: "q" })
        }
    }
}
