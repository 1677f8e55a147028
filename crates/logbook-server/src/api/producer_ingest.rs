//! What the producer protocols (`api::retraced`, `api::workos`, `api::otlp`) share: each one
//! translates its own wire event into a Logbook ingest event (the JSON `POST /api/v1/events`
//! takes), validates it with the very same `logbook_core::ingest` parser, and hands the valid
//! events to the same `store_parsed_events`. So limits, idempotency, durability, tamper evidence
//! and unfamiliar-IP detection cannot differ between the ways in; an adapter only decides how
//! its protocol's fields map and how its answers and errors look.
//!
//! # Design
//!
//! - **One ingest path.** Retraced's publisher API, WorkOS's audit log events and OTLP/HTTP logs
//!   are adapters: each parses its wire body into named serde types, translates every event into
//!   Logbook's ingest JSON, and hands it to the very `logbook_core::ingest` parser and
//!   `store_parsed_events` that `POST /api/v1/events` uses (`api::producer_ingest`), so limits,
//!   idempotency, fsync-before-2xx, the Merkle log and unfamiliar-IP detection cannot drift. Their
//!   error bodies come from `error::DialectError`: status and headers from `ApiError`'s one mapping,
//!   only the body in the protocol's shape.

use std::fmt;
use std::marker::PhantomData;

use logbook_core::api_key::ApiKeyRecord;
use logbook_core::ingest::{FieldError, ParsedEvent, parse_ingest_request};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::api::v1::events::{EventOutcome, body_error, key_binding, store_parsed_events};
use crate::error::ApiError;
use crate::state::AppState;

/// Validates Logbook ingest events (one JSON object each, as an adapter translated them) exactly
/// as `POST /api/v1/events` validates a batch: one result per event, in order. A request-level
/// refusal (an account key naming another account, too many events) is an `ApiError`.
pub(crate) fn validate_translated_events(
    state: &AppState,
    key: &ApiKeyRecord,
    translated_events: &[Value],
) -> Result<Vec<ParsedEvent>, ApiError> {
    if translated_events.is_empty() {
        return Ok(Vec::new());
    }
    let batch = serde_json::json!({ "events": translated_events });
    let body = serde_json::to_vec(&batch).map_err(ApiError::internal)?;
    let received_at = state.clock().now();
    let mut next_event_id = || uuid::Uuid::now_v7().to_string();
    parse_ingest_request(
        &body,
        key_binding(key),
        &state.settings().ingest_limits,
        received_at,
        &mut next_event_id,
    )
    .map(|parsed| parsed.events)
    .map_err(body_error)
}

/// Stores the valid events among `parsed` (see `store_parsed_events`) and counts them in the same
/// metrics as `POST /api/v1/events`; the outcomes come back in request order.
pub(crate) async fn store_translated_events(
    state: &AppState,
    key: &ApiKeyRecord,
    parsed: Vec<ParsedEvent>,
) -> Result<Vec<EventOutcome>, ApiError> {
    Ok(store_parsed_events(state, key, parsed)
        .await?
        .in_request_order())
}

/// Splits a validator pointer into the event's index and the pointer within the event:
/// `/events/3/actor/id` is `(3, "/actor/id")`.
pub(crate) fn split_event_pointer(field: &str) -> (usize, &str) {
    let Some(rest) = field.strip_prefix("/events/") else {
        return (0, field);
    };
    let (index, within) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    (index.parse().unwrap_or(0), within)
}

/// Rewrites a pointer within a translated Logbook event into the protocol's own pointer, by the
/// first matching `(logbook prefix, protocol prefix)` pair; a pointer no pair matches is kept.
/// Prefixes match whole pointer tokens only (`/metadata` matches `/metadata/a`, not `/metadatax`).
pub(crate) fn protocol_pointer(logbook_pointer: &str, prefixes: &[(&str, &str)]) -> String {
    for (logbook_prefix, protocol_prefix) in prefixes {
        if let Some(rest) = logbook_pointer.strip_prefix(logbook_prefix)
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return format!("{protocol_prefix}{rest}");
        }
    }
    logbook_pointer.to_owned()
}

/// A validator error with its pointer rewritten into the protocol's terms.
pub(crate) fn field_error_in_protocol_terms(
    error: FieldError,
    prefixes: &[(&str, &str)],
) -> (usize, FieldError) {
    let (index, within) = split_event_pointer(&error.field);
    let field = protocol_pointer(within, prefixes);
    (index, FieldError { field, ..error })
}

/// A JSON object read as its entries in order, refusing a key that appears twice (serde's maps
/// would keep the last silently, and Logbook refuses duplicate keys at every depth).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UniqueKeyMap<V>(pub Vec<(String, V)>);

impl<V> UniqueKeyMap<V> {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for UniqueKeyMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UniqueKeyMapVisitor<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for UniqueKeyMapVisitor<V> {
            type Value = UniqueKeyMap<V>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries: Vec<(String, V)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if entries.iter().any(|(seen, _)| *seen == key) {
                        return Err(de::Error::custom(format!(
                            "the key {key:?} appears more than once"
                        )));
                    }
                    let value = map.next_value::<V>()?;
                    entries.push((key, value));
                }
                Ok(UniqueKeyMap(entries))
            }
        }
        deserializer.deserialize_map(UniqueKeyMapVisitor(PhantomData))
    }
}

/// A JSON object of the entries, in order.
pub(crate) fn json_object<V: Into<Value> + Clone>(map: &UniqueKeyMap<V>) -> Value {
    Value::Object(
        map.0
            .iter()
            .map(|(key, value)| (key.clone(), value.clone().into()))
            .collect(),
    )
}

/// Parses a protocol's JSON body into its named wire type, with the pointer of the first problem
/// (for the protocol's error answer).
pub(crate) fn parse_wire_json<'body, T: Deserialize<'body>>(
    body: &'body [u8],
) -> Result<T, (String, String)> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    match parsed {
        Ok(value) => match deserializer.end() {
            Ok(()) => Ok(value),
            Err(error) => Err((String::new(), error.to_string())),
        },
        Err(error) => {
            let mut pointer = String::new();
            for segment in error.path().iter() {
                match segment {
                    serde_path_to_error::Segment::Seq { index } => {
                        pointer.push('/');
                        pointer.push_str(&index.to_string());
                    }
                    serde_path_to_error::Segment::Map { key }
                    | serde_path_to_error::Segment::Enum { variant: key } => {
                        pointer.push('/');
                        pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
                    }
                    serde_path_to_error::Segment::Unknown => {}
                }
            }
            let message = error.inner().to_string();
            // serde_json appends the position; the pointer says where, more usefully.
            let message = match message.rfind(" at line ") {
                Some(position_suffix) => message[..position_suffix].to_owned(),
                None => message,
            };
            Err((pointer, message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validator_pointers_become_the_protocols_own() {
        let prefixes = [("/message", "/description"), ("/metadata", "/fields")];
        assert_eq!(split_event_pointer("/events/3/actor/id"), (3, "/actor/id"));
        assert_eq!(split_event_pointer("/events/12"), (12, ""));
        assert_eq!(protocol_pointer("/message", &prefixes), "/description");
        assert_eq!(
            protocol_pointer("/metadata/a~1b", &prefixes),
            "/fields/a~1b"
        );
        assert_eq!(protocol_pointer("/metadatax", &prefixes), "/metadatax");
        assert_eq!(protocol_pointer("/ip", &prefixes), "/ip");
    }

    #[test]
    fn unique_key_maps_refuse_a_repeated_key_and_keep_order() {
        let map: UniqueKeyMap<String> = serde_json::from_str(r#"{"b":"1","a":"2"}"#).unwrap();
        assert_eq!(
            map.0,
            vec![("b".into(), "1".into()), ("a".into(), "2".into())]
        );
        let error = serde_json::from_str::<UniqueKeyMap<String>>(r#"{"a":"1","a":"2"}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("more than once"), "{error}");
    }

    #[test]
    fn wire_json_errors_point_at_the_offending_field() {
        #[derive(Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Wire {
            inner: Inner,
        }
        #[derive(Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        #[allow(dead_code)]
        struct Inner {
            id: String,
        }
        let (pointer, message) = parse_wire_json::<Wire>(br#"{"inner":{"id":5}}"#).unwrap_err();
        assert_eq!(pointer, "/inner/id");
        assert!(message.contains("invalid type"), "{message}");
        assert!(parse_wire_json::<Wire>(br#"{"inner":{"id":"a"}} x"#).is_err());
    }
}
