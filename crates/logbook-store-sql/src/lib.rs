//! What Logbook's two SQL stores share, written once and free of any database driver:
//!
//! - `page_query`: the walk of a parsed query into SQL, with a small `Dialect` trait for what
//!   truly differs (placeholders, booleans, the keyset condition, flags, the message search);
//! - `encoding`: the column values both stores index (16-byte IPs, microsecond times, outcome
//!   codes, prefix and CIDR bounds);
//! - `value`: bound parameters and result rows in a driver-neutral form;
//! - `idempotency`: what a replayed idempotency key answers, and the receipt of a stored event;
//! - `export`: exports as a stream of bounded pages;
//! - `day_counts`: every account's events counted per day, kept by the writers, which answer the
//!   timeline of a whole log or a `created:` range;
//! - `full_text`, `place_terms`, `target_terms`, `action_terms` and `actor_terms`: the documents
//!   of the SQLite store's full-text index, its place terms and its target, action and actor
//!   tokens, which shared SQL (removing personal data, the location backfill) keeps in step.
//!
//! Each store keeps what differs on purpose: its driver, writer, migrations, the choice of text
//! search plan, and (PostgreSQL) row-level security.

mod account_limits;
mod accounts;
pub mod action_terms;
pub mod actor_terms;
mod alerting;
mod api_keys;
mod attention;
pub mod day_counts;
pub mod encoding;
pub mod executor;
pub mod export;
pub mod full_text;
pub mod group_answers;
pub mod idempotency;
pub mod ip_terms;
mod location_backfill;
pub mod page_query;
mod people;
pub mod personal_data;
pub mod place_terms;
pub mod retention;
pub mod shared_store;
mod single_sign_on;
pub mod target_terms;
mod unfamiliar_ip;
pub mod value;
mod viewer;

pub use page_query::{
    BucketCountRequest, CompiledQuery, Dialect, PageRequest, SelectedColumns, SqlBuilder,
    TextTerms, TokenizedField, compile_bucket_count_query, compile_matching_created_at,
    compile_page_query, tokenized_field_values_condition,
};
pub use shared_store::SharedStore;
pub use value::{SqlRow, SqlValue};
