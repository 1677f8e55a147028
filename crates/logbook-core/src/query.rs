//! The query language of PRODUCT.md, shared by the search box, the API, the CLI and exports:
//! `actor:alice action:server.* -action:user.login ip:203.0.113.0/24 outcome:failure
//! created:>=2024-06-01 "reboot web-1"`. Qualifiers AND together, `-` negates, `*` is a prefix
//! wildcard, commas give alternatives, bare words and quoted phrases search the message.
//!
//! `parse` turns text into a `Query`; the stores compile a `Query` into their own SQL.

use std::ops::Range;

use ipnet::IpNet;
use time::OffsetDateTime;

use crate::event::Outcome;

/// Longest query text accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    pub clauses: Vec<Clause>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    pub negated: bool,
    pub condition: Condition,
    /// Byte range of this clause in the query text, for error messages.
    pub span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `actor:` matches the actor's id, any of the alternatives.
    Actor(Vec<TextPattern>),
    /// `action:` matches the action, any of the alternatives.
    Action(Vec<TextPattern>),
    /// `ip:` an address (a /32 or /128 network) or a CIDR block, any of the alternatives.
    Ip(Vec<IpNet>),
    Outcome(Vec<Outcome>),
    /// `target:` matches the id of any of the event's targets.
    Target(Vec<TextPattern>),
    /// `created:` a half-open or closed range of `created_at`.
    Created(TimeRange),
    /// `is:new-ip`.
    Is(Vec<EventFlag>),
    /// A bare word or a quoted phrase searched in the message.
    Text(TextSearch),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextPattern {
    Exact(String),
    /// `server.*`: the value starts with this prefix.
    Prefix(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFlag {
    NewIp,
}

/// `start <= created_at < end` with either side optional, after the parser resolved `>`, `>=`,
/// `<`, `<=`, `a..b` and whole dates (a date means the whole UTC day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start_inclusive: Option<OffsetDateTime>,
    pub end_exclusive: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextSearch {
    /// One word; matched as a whole token of the message, case-insensitively.
    Word(String),
    /// A quoted phrase; its words must appear next to each other in this order.
    Phrase(String),
}

/// A query that cannot be parsed: where, which term, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at position {position}: {term:?}")]
pub struct QueryError {
    /// Byte offset of the offending term in the query text.
    pub position: usize,
    pub term: String,
    pub message: String,
}

impl Query {
    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }
}
