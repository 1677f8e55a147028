//! The `events` resource: ingest (`post`), query (`list`), one event (`get`), streamed export
//! (`export`, `export_verifiable`) and the live tail (`tail`).

mod export;
mod ingest;
mod read;
mod tail;

pub use crate::reading::export::{CSV_HEADER, export_bytes_of_rows};
// `__path_*` are the OpenAPI operations `#[utoipa::path]` makes of each handler (`openapi`).
pub use export::{__path_export, __path_export_verifiable, export, export_verifiable};
pub use ingest::{__path_post, post};
pub(crate) use ingest::{
    EventOutcome, body_error, is_json_content_type, key_binding, read_ingest_body,
    store_parsed_events,
};
pub use read::{__path_get, __path_list, get, list};
pub use tail::{__path_tail, tail};
