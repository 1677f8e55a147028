//! Turning an ingest request body into validated `NewEvent`s, per PRODUCT.md's event model.
//!
//! The body is one event object or `{"events":[...]}`. Problems with the body as a whole are a
//! `BodyError` (the request is refused and nothing is stored); problems with one event are a
//! `FieldError` for that event only, whose `field` is a JSON pointer (`/events/3/ip`), and the
//! valid events of the same batch are still stored.
//!
//! This is the write path's hot loop, so it parses straight from the body's bytes: one pass
//! splits a batch into raw events (`&RawValue`), then each event is deserialized into a wire
//! struct that borrows its strings from the body, so each string is copied once, into the
//! `NewEvent`. Free JSON (`metadata`, change values) goes through a strict visitor that refuses
//! duplicate keys, U+0000 and excessive depth. Pointers to errors are found by parsing a failed
//! event a second time with path tracking, which keeps the tracking cost off valid events.
//!
//! A raw U+0000 byte inside a JSON string is not JSON at all, so it makes the body unparseable;
//! an escaped `\u0000` is a `null_character` error for that event. Metadata depth counts the
//! metadata object itself as 1. Optional fields sent as `null` count as absent, except a change's
//! `old` and `new`, where `null` is a value.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::marker::PhantomData;
use std::net::IpAddr;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::error::Category;
use serde_json::value::RawValue;
use serde_path_to_error::Segment;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::account::AccountId;
use crate::event::{Actor, ActorType, Change, NewEvent, Outcome, Target};

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

/// The highest `IngestLimits::max_short_text_bytes` a deployment may configure. The SQLite store
/// indexes a target id whole, as the hexadecimal of its bytes in one full-text token, and FTS5
/// keeps only a token's first 32,768 bytes: two longer ids that shared those would be one token,
/// and `target:` would find both.
pub const MAX_SHORT_TEXT_BYTES_LIMIT: usize = 16_000;

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

/// Which of the two accepted shapes a request body had, as the parser saw it (escaped key
/// spellings and whitespace included), so that an answer can point into the body the client sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestBodyShape {
    /// One event object: its fields are at `/field`.
    SingleEvent,
    /// `{"events":[...]}`: event N's fields are at `/events/N/field`.
    Batch,
}

impl IngestBodyShape {
    /// The JSON pointer to `field` of the event at `index` (in request order) in a body of this
    /// shape, e.g. `/key` or `/events/3/key`.
    pub fn pointer_to_event_field(self, index: usize, field: &str) -> String {
        match self {
            IngestBodyShape::SingleEvent => format!("/{field}"),
            IngestBodyShape::Batch => format!("/events/{index}/{field}"),
        }
    }
}

/// A parsed ingest request: one result per event, in order, and the body's shape.
#[derive(Debug)]
pub struct ParsedIngestBody {
    pub events: Vec<ParsedEvent>,
    pub shape: IngestBodyShape,
}

/// Parses and validates an ingest request body.
///
/// The outer `Result` refuses the whole request (nothing may be stored); the inner results are
/// one per event, in order. Valid events get `id = next_event_id()` and `received_at`.
pub fn parse_ingest_body(
    body: &[u8],
    binding: KeyBinding<'_>,
    limits: &IngestLimits,
    received_at: OffsetDateTime,
    next_event_id: &mut dyn FnMut() -> String,
) -> Result<Vec<ParsedEvent>, BodyError> {
    parse_ingest_request(body, binding, limits, received_at, next_event_id)
        .map(|parsed| parsed.events)
}

/// `parse_ingest_body`, also saying whether the body was one event or a batch (what the ingest
/// handler needs to point at a stored event's field, e.g. a reused idempotency key).
pub fn parse_ingest_request(
    body: &[u8],
    binding: KeyBinding<'_>,
    limits: &IngestLimits,
    received_at: OffsetDateTime,
    next_event_id: &mut dyn FnMut() -> String,
) -> Result<ParsedIngestBody, BodyError> {
    let body_text = std::str::from_utf8(body).map_err(|utf8_error| BodyError::NotParseable {
        message: format!(
            "request body is not UTF-8 (invalid byte at offset {})",
            utf8_error.valid_up_to()
        ),
    })?;
    let context = EventContext {
        binding,
        limits,
        received_at,
    };
    match split_body(body_text, limits)? {
        BodyShape::Single => {
            let event = parse_one_event(body_text, "", &context)?;
            Ok(ParsedIngestBody {
                events: vec![
                    event.map(|validated| validated.into_new_event(next_event_id(), &context)),
                ],
                shape: IngestBodyShape::SingleEvent,
            })
        }
        BodyShape::Batch(raw_events) => {
            let mut parsed_events = Vec::with_capacity(raw_events.len());
            let mut pointer_prefix = String::with_capacity(16);
            for (index, raw_event) in raw_events.iter().enumerate() {
                pointer_prefix.clear();
                write!(pointer_prefix, "/events/{index}").expect("writing to a String cannot fail");
                let event = parse_one_event(raw_event.get(), &pointer_prefix, &context)?;
                parsed_events.push(
                    event.map(|validated| validated.into_new_event(next_event_id(), &context)),
                );
            }
            Ok(ParsedIngestBody {
                events: parsed_events,
                shape: IngestBodyShape::Batch,
            })
        }
    }
}

struct EventContext<'binding, 'limits> {
    binding: KeyBinding<'binding>,
    limits: &'limits IngestLimits,
    received_at: OffsetDateTime,
}

// ---------------------------------------------------------------------------------------------
// The body's shape: one event, or `{"events":[...]}` split into raw events without parsing them.

enum BodyShape<'body> {
    Single,
    Batch(Vec<&'body RawValue>),
}

/// What the shape pass found at the top level of an object.
enum TopLevelObject<'body> {
    /// No `events` key: the object is one event.
    Event,
    /// Only an `events` key holding an array.
    Events(EventsArray<'body>),
    /// `events` next to other keys, or twice.
    Mixed,
}

struct EventsArray<'body> {
    raw_events: Vec<&'body RawValue>,
    event_count: usize,
}

fn split_body<'body>(
    body_text: &'body str,
    limits: &IngestLimits,
) -> Result<BodyShape<'body>, BodyError> {
    let first_byte = body_text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .bytes()
        .next();
    if first_byte != Some(b'{') {
        // Tell "not JSON at all" from "JSON, but not an object".
        return match serde_json::from_str::<IgnoredAny>(body_text) {
            Ok(_) => Err(BodyError::WrongShape),
            Err(error) => Err(not_parseable(&error, body_text)),
        };
    }
    let mut deserializer = serde_json::Deserializer::from_str(body_text);
    let top_level = deserializer
        .deserialize_map(TopLevelVisitor {
            max_events: limits.max_events_per_request,
        })
        .and_then(|top_level| deserializer.end().map(|()| top_level));
    let top_level = match top_level {
        Ok(top_level) => top_level,
        Err(error) if error.classify() == Category::Data => return Err(BodyError::WrongShape),
        Err(error) => return Err(not_parseable(&error, body_text)),
    };
    match top_level {
        TopLevelObject::Event => Ok(BodyShape::Single),
        TopLevelObject::Mixed => Err(BodyError::WrongShape),
        TopLevelObject::Events(events) if events.event_count > limits.max_events_per_request => {
            Err(BodyError::TooManyEvents {
                count: events.event_count,
                limit: limits.max_events_per_request,
            })
        }
        TopLevelObject::Events(events) if events.event_count == 0 => Err(BodyError::EmptyBatch),
        TopLevelObject::Events(events) => Ok(BodyShape::Batch(events.raw_events)),
    }
}

fn not_parseable(error: &serde_json::Error, body_text: &str) -> BodyError {
    // A raw U+0000 is not valid JSON at all; say so plainly, since producers ask about it.
    let message = if body_text.as_bytes().contains(&0) {
        "request body holds a raw U+0000 character, which JSON does not allow".to_owned()
    } else {
        error.to_string()
    };
    BodyError::NotParseable { message }
}

struct TopLevelVisitor {
    max_events: usize,
}

impl<'de> Visitor<'de> for TopLevelVisitor {
    type Value = TopLevelObject<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an event object or {\"events\":[...]}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut events = None;
        let mut saw_other_key = false;
        let mut saw_events_twice = false;
        while let Some(key) = map.next_key::<WireStr<'de>>()? {
            if key.0 == "events" && events.is_none() {
                events = Some(map.next_value_seed(EventsArraySeed {
                    max_events: self.max_events,
                })?);
            } else {
                saw_events_twice |= key.0 == "events";
                saw_other_key |= key.0 != "events";
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(match events {
            None => TopLevelObject::Event,
            Some(_) if saw_other_key || saw_events_twice => TopLevelObject::Mixed,
            Some(events) => TopLevelObject::Events(events),
        })
    }
}

/// Splits the `events` array into raw events, keeping at most `max_events` of them (the rest are
/// only counted, so an oversized batch cannot make us allocate for it).
struct EventsArraySeed {
    max_events: usize,
}

impl<'de> DeserializeSeed<'de> for EventsArraySeed {
    type Value = EventsArray<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EventsArraySeed {
    type Value = EventsArray<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an array of events")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut raw_events = Vec::with_capacity(seq.size_hint().unwrap_or(16).min(self.max_events));
        let mut event_count = 0;
        loop {
            if event_count < self.max_events {
                match seq.next_element::<&'de RawValue>()? {
                    Some(raw_event) => raw_events.push(raw_event),
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            event_count += 1;
        }
        Ok(EventsArray {
            raw_events,
            event_count,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The wire form of one event, borrowed from the body.

/// A string borrowed from the body when it holds no escapes, owned otherwise.
#[derive(Debug)]
struct WireStr<'body>(Cow<'body, str>);

impl<'de: 'body, 'body> Deserialize<'de> for WireStr<'body> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct WireStrVisitor;
        impl<'de> Visitor<'de> for WireStrVisitor {
            type Value = WireStr<'de>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a string")
            }

            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
                Ok(WireStr(Cow::Borrowed(text)))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                Ok(WireStr(Cow::Owned(text.to_owned())))
            }

            fn visit_string<E: de::Error>(self, text: String) -> Result<Self::Value, E> {
                Ok(WireStr(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(WireStrVisitor)
    }
}

/// Accepts only a JSON object for `T` (serde's derived structs would also take an array).
struct ObjectOnly<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectOnlyVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOnlyVisitor<T> {
            type Value = T;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        deserializer
            .deserialize_map(ObjectOnlyVisitor(PhantomData))
            .map(ObjectOnly)
    }
}

/// Keeps a present value, `null` included, as raw JSON (plain `Option` would turn `null` into
/// "absent", and a change's `"old": null` means something else than no `old`).
fn present_raw_value<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(deserializer).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEvent<'body> {
    #[serde(borrow, default)]
    account: Option<WireStr<'body>>,
    #[serde(borrow)]
    action: WireStr<'body>,
    #[serde(borrow)]
    message: WireStr<'body>,
    #[serde(borrow, default)]
    created_at: Option<WireStr<'body>>,
    #[serde(borrow, default)]
    actor: Option<ObjectOnly<WireActor<'body>>>,
    #[serde(borrow, default)]
    ip: Option<WireStr<'body>>,
    #[serde(borrow, default)]
    user_agent: Option<WireStr<'body>>,
    #[serde(default)]
    outcome: Option<Outcome>,
    #[serde(borrow, default)]
    targets: Option<Vec<ObjectOnly<WireTarget<'body>>>>,
    #[serde(borrow, default)]
    changes: Option<Vec<ObjectOnly<WireChange<'body>>>>,
    #[serde(borrow, default)]
    metadata: Option<&'body RawValue>,
    #[serde(borrow, default)]
    key: Option<WireStr<'body>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireActor<'body> {
    #[serde(borrow)]
    id: WireStr<'body>,
    #[serde(borrow, default)]
    name: Option<WireStr<'body>>,
    #[serde(rename = "type", default)]
    actor_type: Option<ActorType>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireTarget<'body> {
    #[serde(rename = "type", borrow)]
    target_type: WireStr<'body>,
    #[serde(borrow)]
    id: WireStr<'body>,
    #[serde(borrow, default)]
    name: Option<WireStr<'body>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireChange<'body> {
    #[serde(borrow)]
    field: WireStr<'body>,
    #[serde(borrow, default, deserialize_with = "present_raw_value")]
    old: Option<&'body RawValue>,
    #[serde(borrow, default, deserialize_with = "present_raw_value")]
    new: Option<&'body RawValue>,
}

/// Only the `account` of an event, read leniently from an event that failed validation, so an
/// account key's event for another account refuses the request even when it is also malformed.
#[derive(Deserialize)]
struct AccountOnly<'body> {
    #[serde(borrow, default)]
    account: Option<WireStr<'body>>,
}

// ---------------------------------------------------------------------------------------------
// Validating one event.

/// A valid event still waiting for its id.
struct ValidatedEvent {
    account: AccountId,
    created_at: Option<OffsetDateTime>,
    action: String,
    message: String,
    actor: Option<Actor>,
    ip: Option<IpAddr>,
    user_agent: Option<String>,
    outcome: Option<Outcome>,
    targets: Vec<Target>,
    changes: Vec<Change>,
    metadata: Option<serde_json::Map<String, Value>>,
    key: Option<String>,
}

impl ValidatedEvent {
    fn into_new_event(self, id: String, context: &EventContext<'_, '_>) -> NewEvent {
        NewEvent {
            id: crate::ids::EventId::from(id),
            account: self.account,
            received_at: context.received_at,
            created_at: self.created_at.unwrap_or(context.received_at),
            created_at_was_sent: self.created_at.is_some(),
            action: self.action,
            message: self.message,
            actor: self.actor,
            ip: self.ip,
            user_agent: self.user_agent,
            outcome: self.outcome,
            targets: self.targets,
            changes: self.changes,
            metadata: self.metadata,
            key: self.key,
            salt: crate::personal_data::EventSalt::random(),
        }
    }
}

fn parse_one_event(
    raw_event: &str,
    pointer_prefix: &str,
    context: &EventContext<'_, '_>,
) -> Result<Result<ValidatedEvent, FieldError>, BodyError> {
    let wire_event = match serde_json::from_str::<ObjectOnly<WireEvent<'_>>>(raw_event) {
        Ok(ObjectOnly(wire_event)) => wire_event,
        Err(_) => {
            refuse_foreign_account_of_malformed_event(raw_event, pointer_prefix, context)?;
            return Ok(Err(locate_serde_error::<ObjectOnly<WireEvent<'_>>>(
                raw_event,
                pointer_prefix,
            )));
        }
    };
    let mut checker = FieldChecker {
        pointer_prefix,
        limits: context.limits,
    };
    checker.validate(wire_event, context)
}

fn refuse_foreign_account_of_malformed_event(
    raw_event: &str,
    pointer_prefix: &str,
    context: &EventContext<'_, '_>,
) -> Result<(), BodyError> {
    let KeyBinding::Account(bound_account) = context.binding else {
        return Ok(());
    };
    match serde_json::from_str::<AccountOnly<'_>>(raw_event) {
        Ok(AccountOnly {
            account: Some(account),
        }) if account.0 != bound_account.as_str() => Err(BodyError::ForeignAccount {
            account: account.0.into_owned(),
            field: format!("{pointer_prefix}/account"),
        }),
        _ => Ok(()),
    }
}

/// Parses `raw` again with path tracking (only on the error path, which keeps the hot path free
/// of it) and turns the serde error into a `FieldError` with a precise pointer.
fn locate_serde_error<'de, T: Deserialize<'de>>(raw: &'de str, pointer_prefix: &str) -> FieldError {
    let mut track = serde_path_to_error::Track::new();
    let mut deserializer = serde_json::Deserializer::from_str(raw);
    let error = match T::deserialize(serde_path_to_error::Deserializer::new(
        &mut deserializer,
        &mut track,
    )) {
        Ok(_) => {
            // Unreachable in practice: the fast pass failed on the same text.
            return FieldError {
                code: "invalid_field",
                message: "the event could not be read".to_owned(),
                field: pointer_prefix.to_owned(),
            };
        }
        Err(error) => error,
    };
    field_error_from_serde(&error, &track.path(), pointer_prefix)
}

fn locate_strict_value_error(raw: &str, depth_limit: usize, pointer: &str) -> FieldError {
    let mut track = serde_path_to_error::Track::new();
    let mut deserializer = serde_json::Deserializer::from_str(raw);
    let seed = StrictValueSeed::new(depth_limit);
    match seed.deserialize(serde_path_to_error::Deserializer::new(
        &mut deserializer,
        &mut track,
    )) {
        Ok(_) => FieldError {
            code: "invalid_field",
            message: "the value could not be read".to_owned(),
            field: pointer.to_owned(),
        },
        Err(error) => field_error_from_serde(&error, &track.path(), pointer),
    }
}

/// Maps serde's (stable) error messages and our own `[code] message` errors to a `FieldError`.
fn field_error_from_serde(
    error: &serde_json::Error,
    path: &serde_path_to_error::Path,
    pointer_prefix: &str,
) -> FieldError {
    let full_message = error.to_string();
    // serde_json appends the position; the pointer says where, more usefully.
    let message = match full_message.rfind(" at line ") {
        Some(position_suffix) => &full_message[..position_suffix],
        None => full_message.as_str(),
    };
    let mut pointer = String::with_capacity(pointer_prefix.len() + 16);
    pointer.push_str(pointer_prefix);
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => {
                write!(pointer, "/{index}").expect("writing to a String cannot fail")
            }
            Segment::Map { key } | Segment::Enum { variant: key } => {
                push_pointer_token(&mut pointer, key)
            }
            Segment::Unknown => {}
        }
    }
    if let Some((code, text)) = message
        .strip_prefix('[')
        .and_then(|coded| coded.split_once("] "))
    {
        return FieldError {
            code: static_code(code),
            message: text.to_owned(),
            field: pointer,
        };
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        // The path already ends with the unknown key (it failed while being read).
        let name = rest.rsplit_once("`, ").map_or(rest, |(name, _)| name);
        if name.contains('\0') {
            return FieldError {
                code: "null_character",
                message: "field names may not contain U+0000".to_owned(),
                field: pointer,
            };
        }
        return FieldError {
            code: "unknown_field",
            message: format!("unknown field {name:?}"),
            field: pointer,
        };
    }
    if let Some(rest) = message.strip_prefix("duplicate field `") {
        let name = rest.strip_suffix('`').unwrap_or(rest);
        push_pointer_token(&mut pointer, name);
        return FieldError {
            code: "duplicate_field",
            message: format!("field {name:?} appears more than once"),
            field: pointer,
        };
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        let name = rest.strip_suffix('`').unwrap_or(rest);
        push_pointer_token(&mut pointer, name);
        return FieldError {
            code: "missing_field",
            message: format!("field {name:?} is required"),
            field: pointer,
        };
    }
    FieldError {
        code: "invalid_field",
        message: message.to_owned(),
        field: pointer,
    }
}

fn static_code(code: &str) -> &'static str {
    match code {
        "duplicate_field" => "duplicate_field",
        "null_character" => "null_character",
        "too_large" => "too_large",
        _ => "invalid_field",
    }
}

/// Appends `/token` to a JSON pointer, escaping per RFC 6901 (`~` as `~0`, `/` as `~1`).
fn push_pointer_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    for character in token.chars() {
        match character {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            other => pointer.push(other),
        }
    }
}

struct FieldChecker<'prefix, 'limits> {
    pointer_prefix: &'prefix str,
    limits: &'limits IngestLimits,
}

impl FieldChecker<'_, '_> {
    fn pointer(&self, path: &[&str]) -> String {
        let mut pointer = String::with_capacity(self.pointer_prefix.len() + 24);
        pointer.push_str(self.pointer_prefix);
        for token in path {
            push_pointer_token(&mut pointer, token);
        }
        pointer
    }

    fn error(&self, code: &'static str, message: impl Into<String>, path: &[&str]) -> FieldError {
        FieldError {
            code,
            message: message.into(),
            field: self.pointer(path),
        }
    }

    /// Checks a string for U+0000 and its size; returns it owned (its only copy out of the body).
    fn text(
        &self,
        text: WireStr<'_>,
        max_bytes: usize,
        required: bool,
        path: &[&str],
    ) -> Result<String, FieldError> {
        if text.0.contains('\0') {
            return Err(self.error("null_character", "text may not contain U+0000", path));
        }
        if required && text.0.is_empty() {
            return Err(self.error("invalid_field", "must not be empty", path));
        }
        if text.0.len() > max_bytes {
            return Err(self.error(
                "too_large",
                format!("must be at most {max_bytes} bytes"),
                path,
            ));
        }
        Ok(text.0.into_owned())
    }

    fn short_text(&self, text: WireStr<'_>, path: &[&str]) -> Result<String, FieldError> {
        self.text(text, self.limits.max_short_text_bytes, false, path)
    }

    fn required_short_text(&self, text: WireStr<'_>, path: &[&str]) -> Result<String, FieldError> {
        self.text(text, self.limits.max_short_text_bytes, true, path)
    }

    fn strict_value(&self, raw: &RawValue, path: &[&str]) -> Result<Value, FieldError> {
        let depth_limit = self.limits.max_metadata_depth;
        let mut deserializer = serde_json::Deserializer::from_str(raw.get());
        StrictValueSeed::new(depth_limit)
            .deserialize(&mut deserializer)
            .map_err(|_| locate_strict_value_error(raw.get(), depth_limit, &self.pointer(path)))
    }

    fn validate(
        &mut self,
        wire_event: WireEvent<'_>,
        context: &EventContext<'_, '_>,
    ) -> Result<Result<ValidatedEvent, FieldError>, BodyError> {
        let account = match (wire_event.account, context.binding) {
            (None, KeyBinding::Account(bound_account)) => bound_account.clone(),
            (None, KeyBinding::Platform) => {
                return Ok(Err(self.error(
                    "missing_field",
                    "a platform key's events must name their account",
                    &["account"],
                )));
            }
            (Some(sent_account), KeyBinding::Account(bound_account)) => {
                if sent_account.0 != bound_account.as_str() {
                    return Err(BodyError::ForeignAccount {
                        account: sent_account.0.into_owned(),
                        field: self.pointer(&["account"]),
                    });
                }
                bound_account.clone()
            }
            (Some(sent_account), KeyBinding::Platform) => match AccountId::parse(&sent_account.0) {
                Ok(account) => account,
                Err(invalid) => {
                    let code = if sent_account.0.contains('\0') {
                        "null_character"
                    } else {
                        "invalid_field"
                    };
                    return Ok(Err(self.error(code, invalid.to_string(), &["account"])));
                }
            },
        };
        Ok(self.validate_fields(
            account,
            wire_event.action,
            wire_event.message,
            wire_event.created_at,
            WireRest {
                actor: wire_event.actor,
                ip: wire_event.ip,
                user_agent: wire_event.user_agent,
                outcome: wire_event.outcome,
                targets: wire_event.targets,
                changes: wire_event.changes,
                metadata: wire_event.metadata,
                key: wire_event.key,
            },
            context.received_at,
        ))
    }

    fn validate_fields(
        &self,
        account: AccountId,
        action: WireStr<'_>,
        message: WireStr<'_>,
        created_at: Option<WireStr<'_>>,
        rest: WireRest<'_>,
        received_at: OffsetDateTime,
    ) -> Result<ValidatedEvent, FieldError> {
        let action = self.required_short_text(action, &["action"])?;
        if !is_valid_action(&action) {
            return Err(self.error(
                "invalid_field",
                "action must be dotted lowercase words, e.g. user.login ([a-z0-9_-]+ segments separated by '.', at least two)",
                &["action"],
            ));
        }
        let message = self.text(message, self.limits.max_message_bytes, true, &["message"])?;
        let created_at = match created_at {
            None => None,
            Some(text) => Some(self.created_at(text, received_at)?),
        };
        let actor = match rest.actor {
            None => None,
            Some(ObjectOnly(wire_actor)) => Some(Actor {
                id: self.required_short_text(wire_actor.id, &["actor", "id"])?,
                name: wire_actor
                    .name
                    .map(|name| self.short_text(name, &["actor", "name"]))
                    .transpose()?,
                actor_type: wire_actor.actor_type,
            }),
        };
        let ip = rest.ip.map(|ip| self.ip(ip)).transpose()?;
        let user_agent = rest
            .user_agent
            .map(|user_agent| self.short_text(user_agent, &["user_agent"]))
            .transpose()?;
        let targets = self.targets(rest.targets.unwrap_or_default())?;
        let changes = self.changes(rest.changes.unwrap_or_default())?;
        let metadata = rest.metadata.map(|raw| self.metadata(raw)).transpose()?;
        let key = rest
            .key
            .map(|key| self.required_short_text(key, &["key"]))
            .transpose()?;
        Ok(ValidatedEvent {
            account,
            created_at,
            action,
            message,
            actor,
            ip,
            user_agent,
            outcome: rest.outcome,
            targets,
            changes,
            metadata,
            key,
        })
    }

    fn created_at(
        &self,
        text: WireStr<'_>,
        received_at: OffsetDateTime,
    ) -> Result<OffsetDateTime, FieldError> {
        if text.0.contains('\0') {
            return Err(self.error(
                "null_character",
                "text may not contain U+0000",
                &["created_at"],
            ));
        }
        let created_at = OffsetDateTime::parse(&text.0, &Rfc3339).map_err(|_| {
            self.error(
                "invalid_field",
                "created_at must be an RFC 3339 date-time with an offset, e.g. 2024-06-01T12:00:00Z or 2024-06-01T14:00:00+02:00",
                &["created_at"],
            )
        })?;
        if created_at < OffsetDateTime::UNIX_EPOCH {
            return Err(self.error(
                "invalid_field",
                "created_at may not be before 1970-01-01T00:00:00Z",
                &["created_at"],
            ));
        }
        if created_at - received_at > self.limits.max_future_skew {
            return Err(self.error(
                "created_at_in_future",
                format!(
                    "created_at may be at most {} in the future",
                    self.limits.max_future_skew
                ),
                &["created_at"],
            ));
        }
        Ok(created_at)
    }

    fn ip(&self, text: WireStr<'_>) -> Result<IpAddr, FieldError> {
        if text.0.contains('\0') {
            return Err(self.error("null_character", "text may not contain U+0000", &["ip"]));
        }
        text.0
            .parse::<IpAddr>()
            .map(|ip| ip.to_canonical())
            .map_err(|_| {
                self.error(
                    "invalid_field",
                    "ip must be an IPv4 or IPv6 address",
                    &["ip"],
                )
            })
    }

    fn targets(
        &self,
        wire_targets: Vec<ObjectOnly<WireTarget<'_>>>,
    ) -> Result<Vec<Target>, FieldError> {
        if wire_targets.len() > self.limits.max_targets {
            return Err(self.error(
                "too_large",
                format!("at most {} targets", self.limits.max_targets),
                &["targets"],
            ));
        }
        let mut targets = Vec::with_capacity(wire_targets.len());
        let mut index_text = String::new();
        for (index, ObjectOnly(wire_target)) in wire_targets.into_iter().enumerate() {
            index_text.clear();
            write!(index_text, "{index}").expect("writing to a String cannot fail");
            targets.push(Target {
                target_type: self.required_short_text(
                    wire_target.target_type,
                    &["targets", &index_text, "type"],
                )?,
                id: self.required_short_text(wire_target.id, &["targets", &index_text, "id"])?,
                name: wire_target
                    .name
                    .map(|name| self.short_text(name, &["targets", &index_text, "name"]))
                    .transpose()?,
            });
        }
        Ok(targets)
    }

    fn changes(
        &self,
        wire_changes: Vec<ObjectOnly<WireChange<'_>>>,
    ) -> Result<Vec<Change>, FieldError> {
        if wire_changes.len() > self.limits.max_changes {
            return Err(self.error(
                "too_large",
                format!("at most {} changes", self.limits.max_changes),
                &["changes"],
            ));
        }
        let mut changes = Vec::with_capacity(wire_changes.len());
        let mut index_text = String::new();
        for (index, ObjectOnly(wire_change)) in wire_changes.into_iter().enumerate() {
            index_text.clear();
            write!(index_text, "{index}").expect("writing to a String cannot fail");
            changes.push(Change {
                field: self
                    .required_short_text(wire_change.field, &["changes", &index_text, "field"])?,
                old: wire_change
                    .old
                    .map(|raw| self.strict_value(raw, &["changes", &index_text, "old"]))
                    .transpose()?,
                new: wire_change
                    .new
                    .map(|raw| self.strict_value(raw, &["changes", &index_text, "new"]))
                    .transpose()?,
            });
        }
        Ok(changes)
    }

    fn metadata(&self, raw: &RawValue) -> Result<serde_json::Map<String, Value>, FieldError> {
        if raw.get().len() > self.limits.max_metadata_bytes {
            return Err(self.error(
                "too_large",
                format!(
                    "metadata must be at most {} bytes",
                    self.limits.max_metadata_bytes
                ),
                &["metadata"],
            ));
        }
        if !raw.get().starts_with('{') {
            return Err(self.error(
                "invalid_field",
                "metadata must be a JSON object",
                &["metadata"],
            ));
        }
        match self.strict_value(raw, &["metadata"])? {
            Value::Object(metadata) => Ok(metadata),
            _ => Err(self.error(
                "invalid_field",
                "metadata must be a JSON object",
                &["metadata"],
            )),
        }
    }
}

/// The optional fields of a wire event, checked after the required ones.
struct WireRest<'body> {
    actor: Option<ObjectOnly<WireActor<'body>>>,
    ip: Option<WireStr<'body>>,
    user_agent: Option<WireStr<'body>>,
    outcome: Option<Outcome>,
    targets: Option<Vec<ObjectOnly<WireTarget<'body>>>>,
    changes: Option<Vec<ObjectOnly<WireChange<'body>>>>,
    metadata: Option<&'body RawValue>,
    key: Option<WireStr<'body>>,
}

/// `user.login`, `firewall.rule.update`: at least two `[a-z0-9_-]+` segments joined by `.`.
pub fn is_valid_action(action: &str) -> bool {
    let mut segment_count = 0;
    for segment in action.split('.') {
        if segment.is_empty()
            || !segment.bytes().all(|byte| {
                byte.is_ascii_lowercase() || byte.is_ascii_digit() || matches!(byte, b'_' | b'-')
            })
        {
            return false;
        }
        segment_count += 1;
    }
    segment_count >= 2
}

// ---------------------------------------------------------------------------------------------
// Free JSON (metadata, change values): no duplicate keys, no U+0000, bounded depth, exact integers.

/// The largest integer magnitude every JSON reader holds exactly (I-JSON, RFC 7493 §2.2). The
/// leaf encoding (RFC 8785) writes numbers as IEEE-754 doubles, so a larger integer would be
/// committed to as a different number than the one stored; such events are refused instead.
const MAX_EXACT_JSON_INTEGER: u64 = (1 << 53) - 1;
const INEXACT_INTEGER_MESSAGE: &str =
    "[invalid_field] integers must lie within ±(2^53 - 1) (I-JSON), larger ones are not exact";

/// Deserializes any JSON value into a `serde_json::Value`, refusing duplicate keys, U+0000 in
/// strings and keys, and containers nested deeper than `depth_remaining`. Problems with a key are
/// raised while reading that key's value, so the error's path points at the key.
struct StrictValueSeed {
    depth_remaining: usize,
    key_problem: Option<KeyProblem>,
}

#[derive(Clone, Copy)]
enum KeyProblem {
    Duplicate,
    NullCharacter,
}

impl StrictValueSeed {
    fn new(depth_limit: usize) -> Self {
        Self {
            depth_remaining: depth_limit,
            key_problem: None,
        }
    }

    fn enter_container<E: de::Error>(&self) -> Result<usize, E> {
        match self.depth_remaining.checked_sub(1) {
            Some(depth_remaining) => Ok(depth_remaining),
            None => Err(E::custom("[too_large] nested too deeply")),
        }
    }
}

impl<'de> DeserializeSeed<'de> for StrictValueSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        match self.key_problem {
            Some(KeyProblem::Duplicate) => Err(de::Error::custom(
                "[duplicate_field] this key appears more than once",
            )),
            Some(KeyProblem::NullCharacter) => Err(de::Error::custom(
                "[null_character] keys may not contain U+0000",
            )),
            None => deserializer.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for StrictValueSeed {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        if value.unsigned_abs() > MAX_EXACT_JSON_INTEGER {
            return Err(E::custom(INEXACT_INTEGER_MESSAGE));
        }
        Ok(Value::from(value))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        if value > MAX_EXACT_JSON_INTEGER {
            return Err(E::custom(INEXACT_INTEGER_MESSAGE));
        }
        Ok(Value::from(value))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        if value.contains('\0') {
            return Err(E::custom("[null_character] text may not contain U+0000"));
        }
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Value, E> {
        if value.contains('\0') {
            return Err(E::custom("[null_character] text may not contain U+0000"));
        }
        Ok(Value::String(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let depth_remaining = self.enter_container()?;
        let mut elements = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(element) = seq.next_element_seed(StrictValueSeed {
            depth_remaining,
            key_problem: None,
        })? {
            elements.push(element);
        }
        Ok(Value::Array(elements))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let depth_remaining = self.enter_container()?;
        let mut object = serde_json::Map::new();
        while let Some(WireStr(key)) = map.next_key::<WireStr<'de>>()? {
            let key_problem = if key.contains('\0') {
                Some(KeyProblem::NullCharacter)
            } else if object.contains_key(key.as_ref()) {
                Some(KeyProblem::Duplicate)
            } else {
                None
            };
            let value = map.next_value_seed(StrictValueSeed {
                depth_remaining,
                key_problem,
            })?;
            object.insert(key.into_owned(), value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use time::macros::datetime;

    const RECEIVED_AT: OffsetDateTime = datetime!(2024-06-01 12:00:00 UTC);

    fn acme() -> AccountId {
        AccountId::parse("acme").unwrap()
    }

    fn parse_with(
        body: &str,
        binding: KeyBinding<'_>,
        limits: &IngestLimits,
    ) -> Result<Vec<ParsedEvent>, BodyError> {
        let mut next_number = 0;
        let mut next_event_id = || {
            next_number += 1;
            format!("event-{next_number}")
        };
        parse_ingest_body(
            body.as_bytes(),
            binding,
            limits,
            RECEIVED_AT,
            &mut next_event_id,
        )
    }

    fn parse_for_acme(body: &str) -> Result<Vec<ParsedEvent>, BodyError> {
        let account = acme();
        parse_with(
            body,
            KeyBinding::Account(&account),
            &IngestLimits::default(),
        )
    }

    fn single_event(body: &str) -> ParsedEvent {
        let mut events = parse_for_acme(body).expect("the body as a whole is accepted");
        assert_eq!(events.len(), 1);
        events.remove(0)
    }

    fn rejection(body: &str) -> (&'static str, String) {
        let error = single_event(body).expect_err("the event is rejected");
        (error.code, error.field)
    }

    fn rejection_of(event: serde_json::Value) -> (&'static str, String) {
        rejection(&event.to_string())
    }

    fn minimal() -> serde_json::Value {
        json!({"action": "user.login", "message": "Alice logged in"})
    }

    fn with(field: &str, value: serde_json::Value) -> serde_json::Value {
        let mut event = minimal();
        event[field] = value;
        event
    }

    fn shape_of(body: &str) -> IngestBodyShape {
        let account = acme();
        parse_ingest_request(
            body.as_bytes(),
            KeyBinding::Account(&account),
            &IngestLimits::default(),
            RECEIVED_AT,
            &mut || "event".to_owned(),
        )
        .expect("the body as a whole is accepted")
        .shape
    }

    #[test]
    fn the_parser_reports_a_batch_however_its_events_key_is_spelled_and_a_single_event_otherwise() {
        let event = r#"{"action":"user.login","message":"Alice logged in"}"#;
        assert_eq!(shape_of(event), IngestBodyShape::SingleEvent);
        assert_eq!(
            shape_of(&format!(r#"{{"events":[{event}]}}"#)),
            IngestBodyShape::Batch
        );
        // Whitespace and an escaped key are the same JSON; a byte-prefix check missed both.
        assert_eq!(
            shape_of(&format!("\n\t {{ \"\\u0065vents\" : [{event},{event}]}}")),
            IngestBodyShape::Batch
        );
        // A single event whose first key is not `events` stays single.
        assert_eq!(
            shape_of(r#"{"message":"Alice logged in","action":"user.login"}"#),
            IngestBodyShape::SingleEvent
        );
        assert_eq!(
            IngestBodyShape::Batch.pointer_to_event_field(3, "key"),
            "/events/3/key"
        );
        assert_eq!(
            IngestBodyShape::SingleEvent.pointer_to_event_field(0, "key"),
            "/key"
        );
    }

    #[test]
    fn a_minimal_event_gets_its_id_the_keys_account_and_received_at_as_created_at() {
        let event = single_event(r#"{"action":"user.login","message":"Alice logged in"}"#).unwrap();
        assert_eq!(event.id, "event-1");
        assert_eq!(event.account, acme());
        assert_eq!(event.received_at, RECEIVED_AT);
        assert_eq!(event.created_at, RECEIVED_AT);
        assert!(!event.created_at_was_sent);
        assert_eq!(event.action, "user.login");
        assert_eq!(event.message, "Alice logged in");
    }

    #[test]
    fn a_full_event_keeps_every_field_it_sent() {
        let body = json!({
            "account": "acme", "action": "firewall.rule.update", "message": "Opened port 22",
            "created_at": "2024-06-01T13:30:00+02:00",
            "actor": {"id": "alice@acme.com", "name": "Alice", "type": "user"},
            "ip": "2001:db8::1", "user_agent": "curl/8", "outcome": "failure",
            "targets": [{"type": "firewall", "id": "fw-1", "name": "edge"}],
            "changes": [{"field": "port", "old": null, "new": [22, {"proto": "tcp"}]}, {"field": "open"}],
            "metadata": {"ticket": "OPS-1", "nested": {"deep": [1, 2.5, true, null]}},
            "key": "retry-key-1"
        });
        let event = single_event(&body.to_string()).unwrap();
        assert_eq!(event.created_at, datetime!(2024-06-01 11:30:00 UTC));
        assert!(event.created_at_was_sent);
        assert_eq!(
            event.actor,
            Some(Actor {
                id: "alice@acme.com".into(),
                name: Some("Alice".into()),
                actor_type: Some(ActorType::User)
            })
        );
        assert_eq!(event.ip, Some("2001:db8::1".parse().unwrap()));
        assert_eq!(event.user_agent.as_deref(), Some("curl/8"));
        assert_eq!(event.outcome, Some(Outcome::Failure));
        assert_eq!(
            event.targets,
            vec![Target {
                target_type: "firewall".into(),
                id: "fw-1".into(),
                name: Some("edge".into())
            }]
        );
        assert_eq!(event.changes[0].old, Some(Value::Null));
        assert_eq!(event.changes[0].new, Some(json!([22, {"proto": "tcp"}])));
        assert_eq!(
            event.changes[1],
            Change {
                field: "open".into(),
                old: None,
                new: None
            }
        );
        assert_eq!(Value::Object(event.metadata.unwrap()), body["metadata"]);
        assert_eq!(event.key.as_deref(), Some("retry-key-1"));
    }

    #[test]
    fn a_batch_gives_one_result_per_event_in_order_with_pointers_into_the_batch() {
        let body = json!({"events": [minimal(), {"action": "user.login"}, minimal()]}).to_string();
        let events = parse_for_acme(&body).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].as_ref().unwrap().id, "event-1");
        let error = events[1].as_ref().unwrap_err();
        assert_eq!(
            (error.code, error.field.as_str()),
            ("missing_field", "/events/1/message")
        );
        // Only valid events draw an id.
        assert_eq!(events[2].as_ref().unwrap().id, "event-2");
    }

    #[test]
    fn a_body_that_is_not_json_is_not_parseable() {
        for body in [
            "",
            "{",
            "{\"action\":",
            "nope",
            "{\"a\":1} trailing",
            "{\"events\":[{}]",
            "\u{0}",
        ] {
            assert!(
                matches!(parse_for_acme(body), Err(BodyError::NotParseable { .. })),
                "{body:?}"
            );
        }
        let invalid_utf8 = parse_ingest_body(
            b"{\"message\":\"\xff\"}",
            KeyBinding::Platform,
            &IngestLimits::default(),
            RECEIVED_AT,
            &mut || String::new(),
        );
        assert!(matches!(invalid_utf8, Err(BodyError::NotParseable { .. })));
    }

    #[test]
    fn a_raw_null_character_makes_the_body_unparseable_and_says_so() {
        let Err(BodyError::NotParseable { message }) =
            parse_for_acme("{\"action\":\"a.b\",\"message\":\"x\u{0}y\"}")
        else {
            panic!("a raw U+0000 is not JSON");
        };
        assert!(message.contains("U+0000"), "{message}");
    }

    #[test]
    fn a_body_that_is_json_but_not_an_object_has_the_wrong_shape() {
        for body in [
            "[]",
            "[{\"action\":\"a.b\",\"message\":\"m\"}]",
            "\"text\"",
            "42",
            "null",
        ] {
            assert_eq!(parse_for_acme(body), Err(BodyError::WrongShape), "{body}");
        }
    }

    #[test]
    fn events_that_is_not_an_array_has_the_wrong_shape() {
        for body in [
            r#"{"events":{}}"#,
            r#"{"events":"x"}"#,
            r#"{"events":null}"#,
        ] {
            assert_eq!(parse_for_acme(body), Err(BodyError::WrongShape), "{body}");
        }
    }

    #[test]
    fn events_next_to_other_keys_or_twice_has_the_wrong_shape() {
        for body in [
            r#"{"events":[],"action":"a.b"}"#,
            r#"{"action":"a.b","events":[]}"#,
            r#"{"events":[],"events":[]}"#,
        ] {
            assert_eq!(parse_for_acme(body), Err(BodyError::WrongShape), "{body}");
        }
    }

    #[test]
    fn more_events_than_the_limit_refuse_the_request_with_the_count() {
        let limits = IngestLimits {
            max_events_per_request: 2,
            ..IngestLimits::default()
        };
        let body = json!({"events": [minimal(), minimal(), minimal()]}).to_string();
        let account = acme();
        assert_eq!(
            parse_with(&body, KeyBinding::Account(&account), &limits),
            Err(BodyError::TooManyEvents { count: 3, limit: 2 })
        );
    }

    #[test]
    fn an_empty_batch_is_refused() {
        assert_eq!(
            parse_for_acme(r#"{"events":[]}"#),
            Err(BodyError::EmptyBatch)
        );
    }

    #[test]
    fn an_event_naming_another_account_refuses_the_whole_request() {
        let body = json!({"events": [minimal(), with("account", json!("globex"))]}).to_string();
        assert_eq!(
            parse_for_acme(&body),
            Err(BodyError::ForeignAccount {
                account: "globex".into(),
                field: "/events/1/account".into()
            })
        );
    }

    #[test]
    fn a_malformed_event_naming_another_account_still_refuses_the_whole_request() {
        let body = json!({"account": "globex", "action": "NOT VALID", "bogus": 1}).to_string();
        assert_eq!(
            parse_for_acme(&body),
            Err(BodyError::ForeignAccount {
                account: "globex".into(),
                field: "/account".into()
            })
        );
    }

    #[test]
    fn an_event_repeating_its_keys_account_is_accepted() {
        assert_eq!(
            single_event(&with("account", json!("acme")).to_string())
                .unwrap()
                .account,
            acme()
        );
    }

    #[test]
    fn a_platform_key_needs_every_event_to_name_a_valid_account() {
        let limits = IngestLimits::default();
        let body = json!({"events": [with("account", json!("globex")), minimal(), with("account", json!("Not Valid"))]}).to_string();
        let events = parse_with(&body, KeyBinding::Platform, &limits).unwrap();
        assert_eq!(
            events[0].as_ref().unwrap().account,
            AccountId::parse("globex").unwrap()
        );
        let missing = events[1].as_ref().unwrap_err();
        assert_eq!(
            (missing.code, missing.field.as_str()),
            ("missing_field", "/events/1/account")
        );
        let invalid = events[2].as_ref().unwrap_err();
        assert_eq!(
            (invalid.code, invalid.field.as_str()),
            ("invalid_field", "/events/2/account")
        );
    }

    #[test]
    fn a_missing_action_or_message_is_a_missing_field() {
        assert_eq!(
            rejection(r#"{"message":"m"}"#),
            ("missing_field", "/action".into())
        );
        assert_eq!(
            rejection(r#"{"action":"a.b"}"#),
            ("missing_field", "/message".into())
        );
    }

    #[test]
    fn an_action_must_be_at_least_two_dotted_lowercase_segments() {
        for good in [
            "user.login",
            "firewall.rule.update",
            "ssh_key.add",
            "v2.api-key.use",
        ] {
            assert!(
                single_event(&with("action", json!(good)).to_string()).is_ok(),
                "{good}"
            );
        }
        for bad in [
            "login",
            "User.login",
            "user..login",
            ".user.login",
            "user.login.",
            "user login.x",
            "",
            "user.lögin",
        ] {
            assert_eq!(
                rejection_of(with("action", json!(bad))),
                ("invalid_field", "/action".into()),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_empty_message_is_rejected_and_a_long_one_is_too_large() {
        assert_eq!(
            rejection_of(with("message", json!(""))),
            ("invalid_field", "/message".into())
        );
        let long = "x".repeat(IngestLimits::default().max_message_bytes + 1);
        assert_eq!(
            rejection_of(with("message", json!(long))),
            ("too_large", "/message".into())
        );
    }

    #[test]
    fn the_message_is_stored_byte_for_byte_with_escapes_decoded() {
        let sent = "  <script>alert(1)</script>\n\u{1b}[31m \u{202e} é \\ \"quoted\"  ";
        assert_eq!(
            single_event(&with("message", json!(sent)).to_string())
                .unwrap()
                .message,
            sent
        );
    }

    #[test]
    fn created_at_needs_an_rfc_3339_offset() {
        for bad in [
            "2024-06-01T12:00:00",
            "2024-06-01",
            "yesterday",
            "2024-06-01T12:00Z",
            "2024-06-01T12:00:00+0200",
        ] {
            assert_eq!(
                rejection_of(with("created_at", json!(bad))),
                ("invalid_field", "/created_at".into()),
                "{bad}"
            );
        }
        let event = single_event(
            &with("created_at", json!("2024-06-01T10:00:00.123456-02:00")).to_string(),
        )
        .unwrap();
        assert_eq!(event.created_at, datetime!(2024-06-01 12:00:00.123456 UTC));
    }

    #[test]
    fn created_at_more_than_the_allowed_skew_in_the_future_is_rejected() {
        assert!(
            single_event(&with("created_at", json!("2024-06-02T12:00:00Z")).to_string()).is_ok()
        );
        assert_eq!(
            rejection_of(with("created_at", json!("2024-06-02T12:00:01Z"))),
            ("created_at_in_future", "/created_at".into())
        );
    }

    #[test]
    fn created_at_before_1970_is_rejected() {
        assert_eq!(
            rejection_of(with("created_at", json!("1969-12-31T23:59:59Z"))),
            ("invalid_field", "/created_at".into())
        );
        assert!(
            single_event(&with("created_at", json!("1970-01-01T00:00:00Z")).to_string()).is_ok()
        );
    }

    #[test]
    fn ip_addresses_are_stored_canonical() {
        let mapped = single_event(&with("ip", json!("::ffff:203.0.113.9")).to_string()).unwrap();
        assert_eq!(mapped.ip, Some("203.0.113.9".parse().unwrap()));
        let long_form =
            single_event(&with("ip", json!("2001:0db8:0000::0001")).to_string()).unwrap();
        assert_eq!(long_form.ip.unwrap().to_string(), "2001:db8::1");
    }

    #[test]
    fn ip_addresses_std_does_not_accept_are_rejected() {
        for bad in [
            "fe80::1%eth0",
            "010.0.0.1",
            "1.2.3",
            "203.0.113.0/24",
            " 1.2.3.4",
            "example.com",
        ] {
            assert_eq!(
                rejection_of(with("ip", json!(bad))),
                ("invalid_field", "/ip".into()),
                "{bad}"
            );
        }
    }

    #[test]
    fn an_actor_needs_a_non_empty_id_and_a_known_type() {
        assert_eq!(
            rejection_of(with("actor", json!({"name": "Alice"}))),
            ("missing_field", "/actor/id".into())
        );
        assert_eq!(
            rejection_of(with("actor", json!({"id": ""}))),
            ("invalid_field", "/actor/id".into())
        );
        assert_eq!(
            rejection_of(with("actor", json!({"id": "a", "type": "robot"}))),
            ("invalid_field", "/actor/type".into())
        );
        assert_eq!(
            rejection_of(with("actor", json!(["alice"]))),
            ("invalid_field", "/actor".into())
        );
        for actor_type in ["user", "api_key", "system"] {
            assert!(
                single_event(&with("actor", json!({"id": "a", "type": actor_type})).to_string())
                    .is_ok()
            );
        }
    }

    #[test]
    fn an_outcome_is_success_or_failure() {
        assert_eq!(
            single_event(&with("outcome", json!("success")).to_string())
                .unwrap()
                .outcome,
            Some(Outcome::Success)
        );
        assert_eq!(
            rejection_of(with("outcome", json!("Success"))),
            ("invalid_field", "/outcome".into())
        );
    }

    #[test]
    fn unknown_fields_are_rejected_at_the_top_and_inside_actor_targets_and_changes() {
        assert_eq!(
            rejection_of(with("severity", json!(1))),
            ("unknown_field", "/severity".into())
        );
        assert_eq!(
            rejection_of(with("actor", json!({"id": "a", "role": "admin"}))),
            ("unknown_field", "/actor/role".into())
        );
        assert_eq!(
            rejection_of(with("actor", json!({"id": "a", "actor": "x"}))),
            ("unknown_field", "/actor/actor".into())
        );
        assert_eq!(
            rejection_of(with(
                "targets",
                json!([{"type": "s", "id": "1"}, {"type": "s", "id": "2", "x": 1}])
            )),
            ("unknown_field", "/targets/1/x".into())
        );
        assert_eq!(
            rejection_of(with("changes", json!([{"field": "f", "before": 1}]))),
            ("unknown_field", "/changes/0/before".into())
        );
        let body = json!({"events": [minimal(), minimal(), with("a/b~c", json!(1))]}).to_string();
        let error = parse_for_acme(&body).unwrap().remove(2).unwrap_err();
        assert_eq!(
            (error.code, error.field.as_str()),
            ("unknown_field", "/events/2/a~1b~0c")
        );
    }

    #[test]
    fn duplicate_keys_are_rejected_at_every_depth() {
        assert_eq!(
            rejection(r#"{"action":"a.b","message":"m","action":"a.b"}"#),
            ("duplicate_field", "/action".into())
        );
        assert_eq!(
            rejection(r#"{"action":"a.b","message":"m","\u0061ction":"a.b"}"#),
            ("duplicate_field", "/action".into())
        );
        assert_eq!(
            rejection(r#"{"action":"a.b","message":"m","actor":{"id":"a","id":"b"}}"#),
            ("duplicate_field", "/actor/id".into())
        );
        assert_eq!(
            rejection(r#"{"action":"a.b","message":"m","metadata":{"a":{"b":1,"b":2}}}"#),
            ("duplicate_field", "/metadata/a/b".into())
        );
        assert_eq!(
            rejection(
                r#"{"action":"a.b","message":"m","changes":[{"field":"f","new":[{"x":1,"x":1}]}]}"#
            ),
            ("duplicate_field", "/changes/0/new/0/x".into())
        );
    }

    #[test]
    fn an_escaped_null_character_is_rejected_in_any_string_or_key() {
        assert_eq!(
            rejection(r#"{"action":"a.b","message":"x\u0000y"}"#),
            ("null_character", "/message".into())
        );
        assert_eq!(
            rejection(r#"{"action":"a.b","message":"m","actor":{"id":"a\u0000"}}"#),
            ("null_character", "/actor/id".into())
        );
        assert_eq!(
            rejection(r#"{"action":"a.b","message":"m","key":"\u0000"}"#),
            ("null_character", "/key".into())
        );
        assert_eq!(
            rejection(r#"{"action":"a.b","message":"m","metadata":{"a":["\u0000"]}}"#),
            ("null_character", "/metadata/a/0".into())
        );
        assert_eq!(
            rejection(r#"{"action":"a.b","message":"m","metadata":{"a\u0000":1}}"#),
            ("null_character", "/metadata/a\u{0}".into())
        );
        assert_eq!(
            rejection(r#"{"action":"a.b","message":"m","x\u0000":1}"#),
            ("null_character", "/x\u{0}".into())
        );
        assert_eq!(
            rejection(r#"{"action":"a.b","message":"m","changes":[{"field":"f","old":"\u0000"}]}"#),
            ("null_character", "/changes/0/old".into())
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_is_an_invalid_field() {
        assert_eq!(
            rejection_of(with("ip", json!(5))),
            ("invalid_field", "/ip".into())
        );
        assert_eq!(
            rejection_of(with("message", json!(["m"]))),
            ("invalid_field", "/message".into())
        );
        assert_eq!(
            rejection_of(with("targets", json!({"type": "s"}))),
            ("invalid_field", "/targets".into())
        );
        assert_eq!(
            rejection_of(with("targets", json!([{"type": "s", "id": 7}]))),
            ("invalid_field", "/targets/0/id".into())
        );
        assert_eq!(
            rejection_of(with("metadata", json!([1]))),
            ("invalid_field", "/metadata".into())
        );
        assert_eq!(
            rejection_of(with("metadata", json!("text"))),
            ("invalid_field", "/metadata".into())
        );
        let body = json!({"events": [minimal(), 5]}).to_string();
        let error = parse_for_acme(&body).unwrap().remove(1).unwrap_err();
        assert_eq!(
            (error.code, error.field.as_str()),
            ("invalid_field", "/events/1")
        );
        let array_event = json!({"events": [["user.login", "m"]]}).to_string();
        assert_eq!(
            parse_for_acme(&array_event).unwrap()[0]
                .as_ref()
                .unwrap_err()
                .field,
            "/events/0"
        );
    }

    #[test]
    fn optional_fields_sent_as_null_are_absent() {
        let event = single_event(
            r#"{"action":"a.b","message":"m","ip":null,"actor":null,"metadata":null,"key":null}"#,
        )
        .unwrap();
        assert_eq!(
            (event.ip, event.actor, event.metadata, event.key),
            (None, None, None, None)
        );
    }

    #[test]
    fn short_texts_beyond_their_limit_are_too_large() {
        let long = "a".repeat(IngestLimits::default().max_short_text_bytes + 1);
        assert_eq!(
            rejection_of(with("key", json!(long))),
            ("too_large", "/key".into())
        );
        assert_eq!(
            rejection_of(with("user_agent", json!(long))),
            ("too_large", "/user_agent".into())
        );
        assert_eq!(
            rejection_of(with("actor", json!({"id": long}))),
            ("too_large", "/actor/id".into())
        );
        assert_eq!(
            rejection_of(with(
                "targets",
                json!([{"type": "s", "id": "1", "name": long}])
            )),
            ("too_large", "/targets/0/name".into())
        );
        assert_eq!(
            rejection_of(with("changes", json!([{"field": long}]))),
            ("too_large", "/changes/0/field".into())
        );
        assert_eq!(
            rejection_of(with("action", json!(format!("a.{long}")))),
            ("too_large", "/action".into())
        );
    }

    #[test]
    fn an_empty_idempotency_key_is_rejected() {
        assert_eq!(
            rejection_of(with("key", json!(""))),
            ("invalid_field", "/key".into())
        );
    }

    #[test]
    fn too_many_targets_or_changes_are_too_large() {
        let limits = IngestLimits::default();
        let targets: Vec<_> = (0..=limits.max_targets)
            .map(|index| json!({"type": "s", "id": index.to_string()}))
            .collect();
        assert_eq!(
            rejection_of(with("targets", json!(targets))),
            ("too_large", "/targets".into())
        );
        let changes: Vec<_> = (0..=limits.max_changes)
            .map(|index| json!({"field": index.to_string()}))
            .collect();
        assert_eq!(
            rejection_of(with("changes", json!(changes))),
            ("too_large", "/changes".into())
        );
    }

    #[test]
    fn metadata_beyond_its_size_or_depth_is_too_large() {
        let limits = IngestLimits::default();
        let big = json!({"blob": "x".repeat(limits.max_metadata_bytes)});
        assert_eq!(
            rejection_of(with("metadata", big)),
            ("too_large", "/metadata".into())
        );
        // The metadata object itself is depth 1.
        let mut deepest_allowed = json!(1);
        for _ in 0..limits.max_metadata_depth {
            deepest_allowed = json!({"a": deepest_allowed});
        }
        assert!(single_event(&with("metadata", deepest_allowed.clone()).to_string()).is_ok());
        let too_deep = with("metadata", json!({"a": deepest_allowed}));
        let (code, field) = rejection_of(too_deep);
        assert_eq!(code, "too_large");
        assert_eq!(
            field,
            format!("/metadata{}", "/a".repeat(limits.max_metadata_depth))
        );
    }

    #[test]
    fn integers_beyond_the_exact_double_range_are_rejected_where_they_stand() {
        let largest_exact = (1_i64 << 53) - 1;
        assert!(
            single_event(
                &with("metadata", json!({"n": largest_exact, "m": -largest_exact})).to_string()
            )
            .is_ok()
        );
        assert_eq!(
            rejection_of(with("metadata", json!({"deep": {"n": largest_exact + 1}}))),
            ("invalid_field", "/metadata/deep/n".into())
        );
        assert_eq!(
            rejection_of(with("metadata", json!({"n": -(largest_exact + 1)}))),
            ("invalid_field", "/metadata/n".into())
        );
        assert_eq!(
            rejection_of(with("metadata", json!({"n": u64::MAX}))),
            ("invalid_field", "/metadata/n".into())
        );
    }

    #[test]
    fn keys_with_slashes_and_tildes_are_escaped_in_pointers() {
        assert_eq!(
            rejection(r#"{"action":"a.b","message":"m","metadata":{"a/b":{"~":1,"~":2}}}"#),
            ("duplicate_field", "/metadata/a~1b/~0".into())
        );
    }

    #[test]
    fn escaped_strings_are_decoded_and_plain_ones_borrowed() {
        let event = single_event(
            r#"{"action":"a.b","message":"caf\u00e9 \ud83d\ude00","actor":{"id":"al\"ice"}}"#,
        )
        .unwrap();
        assert_eq!(event.message, "café 😀");
        assert_eq!(event.actor.unwrap().id, "al\"ice");
    }

    fn short_text() -> impl Strategy<Value = String> {
        "[^\u{0}]{1,24}"
    }

    fn json_scalar() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-(1_i64 << 53) + 1..(1_i64 << 53)).prop_map(Value::from),
            "[^\u{0}]{0,12}".prop_map(Value::String),
        ]
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        json_scalar().prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z~/ ]{1,6}", inner, 0..4)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    prop_compose! {
        fn valid_event()(
            action in "[a-z0-9_-]{1,8}(\\.[a-z0-9_-]{1,8}){1,3}",
            message in "[^\u{0}]{1,60}",
            created_seconds in proptest::option::of(0i64..1_717_243_200),
            actor in proptest::option::of((short_text(), proptest::option::of(short_text()), proptest::option::of(prop_oneof![Just("user"), Just("api_key"), Just("system")]))),
            ip in proptest::option::of(any::<std::net::IpAddr>()),
            user_agent in proptest::option::of("[^\u{0}]{0,24}"),
            outcome in proptest::option::of(prop_oneof![Just("success"), Just("failure")]),
            targets in proptest::collection::vec((short_text(), short_text(), proptest::option::of(short_text())), 0..3),
            changes in proptest::collection::vec((short_text(), proptest::option::of(json_value()), proptest::option::of(json_value())), 0..3),
            metadata in proptest::option::of(proptest::collection::btree_map("[a-z]{1,6}", json_value(), 0..4)),
            key in proptest::option::of(short_text()),
        ) -> serde_json::Value {
            let mut event = json!({"action": action, "message": message});
            if let Some(seconds) = created_seconds {
                let created_at = OffsetDateTime::from_unix_timestamp(seconds).unwrap();
                event["created_at"] = json!(created_at.format(&Rfc3339).unwrap());
            }
            if let Some((id, name, actor_type)) = actor {
                let mut actor = json!({"id": id});
                if let Some(name) = name { actor["name"] = json!(name); }
                if let Some(actor_type) = actor_type { actor["type"] = json!(actor_type); }
                event["actor"] = actor;
            }
            if let Some(ip) = ip { event["ip"] = json!(ip.to_string()); }
            if let Some(user_agent) = user_agent { event["user_agent"] = json!(user_agent); }
            if let Some(outcome) = outcome { event["outcome"] = json!(outcome); }
            if !targets.is_empty() {
                event["targets"] = targets.into_iter().map(|(target_type, id, name)| {
                    let mut target = json!({"type": target_type, "id": id});
                    if let Some(name) = name { target["name"] = json!(name); }
                    target
                }).collect();
            }
            if !changes.is_empty() {
                event["changes"] = changes.into_iter().map(|(field, old, new)| {
                    let mut change = json!({"field": field});
                    if let Some(old) = old { change["old"] = old; }
                    if let Some(new) = new { change["new"] = new; }
                    change
                }).collect();
            }
            if let Some(metadata) = metadata { event["metadata"] = Value::Object(metadata.into_iter().collect()); }
            if let Some(key) = key { event["key"] = json!(key); }
            event
        }
    }

    proptest! {
        #[test]
        fn any_valid_event_comes_back_as_the_new_event_that_was_sent(sent in valid_event()) {
            let event = single_event(&sent.to_string()).unwrap();
            // The event, serialized the way it is stored, holds exactly what was sent.
            let stored: Value = serde_json::from_str(&event.body_without_seq()).unwrap();
            let mut expected = sent.clone();
            if let Some(ip) = sent.get("ip").and_then(Value::as_str) {
                let canonical = ip.parse::<IpAddr>().unwrap().to_canonical();
                expected["ip"] = json!(canonical.to_string());
            }
            if sent.get("created_at").is_none() {
                expected["created_at"] = json!(RECEIVED_AT.format(&Rfc3339).unwrap());
            }
            expected["id"] = json!("event-1");
            expected["account"] = json!("acme");
            expected["received_at"] = json!(RECEIVED_AT.format(&Rfc3339).unwrap());
            // Logbook adds the leaf version and the event's random salt (crate::personal_data).
            expected["leaf_version"] = json!(2);
            let salt = stored["salt"].as_str().unwrap_or_default();
            prop_assert!(salt.len() == 32 && salt.bytes().all(|byte| byte.is_ascii_hexdigit()));
            expected["salt"] = json!(salt);
            prop_assert_eq!(stored, expected);
            prop_assert_eq!(event.created_at_was_sent, sent.get("created_at").is_some());
        }

        #[test]
        fn a_batch_of_valid_events_is_accepted_whole(events in proptest::collection::vec(valid_event(), 1..5)) {
            let count = events.len();
            let parsed = parse_for_acme(&json!({"events": events}).to_string()).unwrap();
            prop_assert_eq!(parsed.len(), count);
            prop_assert!(parsed.iter().all(Result::is_ok));
        }

        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_ingest_body(&body, KeyBinding::Platform, &IngestLimits::default(), RECEIVED_AT, &mut || "id".to_owned());
        }

        #[test]
        fn arbitrary_json_never_panics(value in json_value(), wrap in any::<bool>()) {
            let body = if wrap { json!({"events": [value]}) } else { value };
            let _ = parse_ingest_body(body.to_string().as_bytes(), KeyBinding::Platform, &IngestLimits::default(), RECEIVED_AT, &mut || "id".to_owned());
        }

        #[test]
        fn a_mutated_valid_event_never_panics(sent in valid_event(), cut in 0usize..400, byte in any::<u8>()) {
            let mut body = sent.to_string().into_bytes();
            let position = cut.min(body.len().saturating_sub(1));
            if !body.is_empty() { body[position] = byte; }
            let _ = parse_ingest_body(&body, KeyBinding::Platform, &IngestLimits::default(), RECEIVED_AT, &mut || "id".to_owned());
        }
    }
}
