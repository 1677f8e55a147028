//! Turning an ingest request body into validated `NewEvent`s, per PRODUCT.md's event model.
//!
//! The body is one event object or `{"events":[...]}`. Problems with the body as a whole are a
//! `BodyError` (the request is refused and nothing is stored); problems with one event are a
//! `FieldError` for that event only, whose `field` is a JSON pointer (`/events/3/ip`), and the
//! valid events of the same batch are still stored.

use time::{Duration, OffsetDateTime};

use crate::account::AccountId;
use crate::event::NewEvent;

/// Bounds on what one request and one event may hold. Defaults are documented in the README.
#[derive(Debug, Clone)]
pub struct IngestLimits {
    pub max_events_per_request: usize,
    pub max_body_bytes: usize,
    pub max_message_bytes: usize,
    /// Bounds `action`, `key`, `user_agent`, actor and target ids, names and types, change fields.
    pub max_short_text_bytes: usize,
    pub max_metadata_bytes: usize,
    pub max_metadata_depth: usize,
    pub max_targets: usize,
    pub max_changes: usize,
    /// How far in the future `created_at` may be, relative to `received_at`.
    pub max_future_skew: Duration,
}

impl Default for IngestLimits {
    fn default() -> Self {
        Self {
            max_events_per_request: 1000,
            max_body_bytes: 4 * 1024 * 1024,
            max_message_bytes: 4096,
            max_short_text_bytes: 512,
            max_metadata_bytes: 16 * 1024,
            max_metadata_depth: 8,
            max_targets: 32,
            max_changes: 64,
            max_future_skew: Duration::hours(24),
        }
    }
}

/// Which account the presented key may write for.
#[derive(Debug, Clone, Copy)]
pub enum KeyBinding<'key> {
    /// Events go to this account; an event may omit `account` or repeat this one.
    Account(&'key AccountId),
    /// A platform key: every event must name its `account`.
    Platform,
}

/// Why one event of a request was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Stable machine-readable code, e.g. `invalid_field`, `unknown_field`, `missing_field`,
    /// `duplicate_field`, `too_large`, `null_character`, `created_at_in_future`.
    pub code: &'static str,
    pub message: String,
    /// JSON pointer to the offending value in the request body, e.g. `/events/3/ip`.
    pub field: String,
}

/// Why a whole request body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("request body is not valid JSON: {message}")]
    NotParseable { message: String },
    #[error("request body must be an event object or {{\"events\":[...]}}")]
    WrongShape,
    #[error("a request holds at most {limit} events; this one holds {count}")]
    TooManyEvents { count: usize, limit: usize },
    #[error("the batch holds no events")]
    EmptyBatch,
    /// An account key sent an event for another account (answered 403, nothing stored).
    #[error("this key cannot write for account {account:?}")]
    ForeignAccount { account: String, field: String },
}

pub type ParsedEvent = Result<NewEvent, FieldError>;
