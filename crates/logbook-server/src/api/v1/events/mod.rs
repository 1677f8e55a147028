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
pub(crate) use ingest::{
    EventOutcome, body_error, is_json_content_type, key_binding, read_ingest_body,
    store_parsed_events,
};
pub use read::{get, list};
pub use tail::tail;
pub(crate) use tail::tail_response;

use logbook_core::query::{self, Query};

use crate::error::ApiError;

/// Parses the `q` parameter; absent or blank means "every event".
/// `filter` with each `ip:NAME` replaced by the account's known network of that name, for the
/// live views, which match events in memory instead of in the store's SQL. Resolved once when
/// the view opens: a network renamed later applies to views opened after it.
pub(crate) async fn resolve_known_networks_for_live_view(
    state: &crate::state::AppState,
    account: &logbook_core::AccountId,
    filter: Query,
) -> Result<Query, ApiError> {
    let names_a_known_network = filter.clauses.iter().any(|clause| {
        matches!(
            clause.condition,
            logbook_core::query::Condition::KnownNetwork(_)
        )
    });
    if !names_a_known_network {
        return Ok(filter);
    }
    let known_networks = state
        .store()
        .unfamiliar_ips()
        .known_networks(account)
        .await?;
    Ok(filter.resolve_known_networks(&known_networks))
}

pub(crate) fn parse_query_parameter(text: Option<&str>) -> Result<Query, ApiError> {
    match text {
        None => Ok(Query::default()),
        Some(text) if text.trim().is_empty() => Ok(Query::default()),
        Some(text) => {
            query::parse(text).map_err(|source| ApiError::InvalidQuery { source, field: "q" })
        }
    }
}
