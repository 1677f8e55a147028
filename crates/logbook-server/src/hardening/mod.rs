//! Defences against hostile or broken clients that the route handlers should not each repeat,
//! one room each:
//!
//! - `accept_loop`: caps the connections served at once (further ones wait in the kernel's
//!   listen queue, costing this process nothing), closes a connection whose request headers do
//!   not arrive within `header_read_timeout` (a client trickling a byte a second cannot hold a
//!   connection open), and shuts down gracefully.
//! - `body`: bodies read never past the size limit, a refused body's rest read and thrown away
//!   (up to `MAX_DISCARDED_BODY_BYTES`, for at most `DISCARD_DEADLINE`) so a client that writes
//!   the whole body before reading hears the 413 instead of a reset; gzip request bodies,
//!   inflated never past the body size limit, so a 10 KB body that would inflate to gigabytes is
//!   refused (413) after at most the limit's worth of memory.
//! - `query_budget`: a query that runs past its time budget is answered `query_timeout` instead
//!   of tying up the request. The stores also interrupt the statement itself (SQLite's progress
//!   handler, PostgreSQL's `statement_timeout`) where they support it.

mod accept_loop;
mod body;
mod query_budget;

pub use accept_loop::{ConnectionLimits, serve_connections};
pub use body::{
    decode_content_encoding, discard_refused_body, inflate_gzip_within_limit,
    read_body_within_limit,
};
pub use query_budget::within_query_budget;
