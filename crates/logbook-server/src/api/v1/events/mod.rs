//! The `events` resource: ingest (`post`), query (`list`), one event (`get`), streamed export
//! (`export`) and the live tail (`tail`).

mod export;
mod ingest;
mod read;
mod tail;

pub use crate::reading::export::{CSV_HEADER, export_bytes_of_rows};
pub use export::export;
pub use ingest::post;
pub(crate) use ingest::{
    EventOutcome, body_error, is_json_content_type, key_binding, read_ingest_body,
    store_parsed_events,
};
pub use read::{get, list};
pub use tail::tail;
