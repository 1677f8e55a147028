//! The event model (v1) of PRODUCT.md: what a producer sends once validated (`NewEvent`), what
//! Logbook stores and returns (`StoredEvent`), and the stored row as the stores hand it back
//! (`EventRow`, whose JSON body is serialized once at ingest so reads and exports copy bytes
//! instead of re-encoding every event).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::account::AccountId;
use crate::personal_data::{EventSalt, SALTED_LEAF_VERSION};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorType {
    User,
    ApiKey,
    System,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub actor_type: Option<ActorType>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    #[serde(rename = "type")]
    pub target_type: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The before/after of one configuration field. `old` and `new` are any JSON value; absent means
/// the field did not exist before (or no longer exists after).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Change {
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<serde_json::Value>,
}

/// A validated event, ready to be stored. Built only by `crate::ingest` (or by Logbook itself for
/// its own `logbook.*` events), so every field already satisfies the event model.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub id: crate::ids::EventId,
    pub account: AccountId,
    pub received_at: OffsetDateTime,
    /// When the activity happened; the producer's value, or `received_at` when it sent none.
    pub created_at: OffsetDateTime,
    /// Whether the producer sent `created_at` (a retry without it must still be the same content).
    pub created_at_was_sent: bool,
    pub action: String,
    pub message: String,
    pub actor: Option<Actor>,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub outcome: Option<Outcome>,
    pub targets: Vec<Target>,
    pub changes: Vec<Change>,
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    pub key: Option<String>,
    /// The random salt through which the leaf commits to the personal fields
    /// (`crate::personal_data`); `EventSalt::random()` for every new event.
    pub salt: EventSalt,
}

/// An event as Logbook stores and returns it: everything the producer sent plus what Logbook
/// added. Field order here is the order of the JSON body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredEvent {
    pub seq: u64,
    pub id: crate::ids::EventId,
    pub account: AccountId,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    pub action: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The /24 or /48 of an address that aging removed and kept the network of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_network: Option<String>,
    /// 2 for an event whose leaf commits to its personal fields through salted hashes; absent
    /// for events stored before (`crate::personal_data`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_version: Option<u64>,
    /// The event's salt, while none of its personal fields was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salt: Option<String>,
    /// The salts of the personal fields that remain, once one was removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salts: Option<serde_json::Map<String, serde_json::Value>>,
    /// The personal fields removed by aging or erasure (`ip`, `user_agent`, `actor.name`,
    /// `metadata.<key>`, `ip_network`), whose values are now `null`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// The commitment of each removed field, which keeps the event verifiable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_commitments: Option<serde_json::Map<String, serde_json::Value>>,
    /// Where `ip` was when the event arrived, by the IP databases then loaded
    /// (`crate::location`); absent without a database or for an address it could not place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<crate::location::Location>,
    /// First time this actor was seen from this IP (filled by the unfamiliar-IP detector).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub new_ip: bool,
    /// First time this actor was seen from this IP's /24 (IPv4) or /48 (IPv6); implies `new_ip`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub new_network: bool,
    /// First time this actor was located in this country (filled by the same detector from the
    /// event's `location`; never on the actor's first located event).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub new_country: bool,
}

/// The body of an event without its `seq`, borrowed from a `NewEvent`. The stores keep this JSON
/// text and splice `"seq":N` in front of it when reading (`EventRow::write_json`), because `seq`
/// is the one field only the single writer can assign.
#[derive(Serialize)]
struct EventBodyWithoutSeq<'event> {
    id: &'event str,
    account: &'event AccountId,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    received_at: OffsetDateTime,
    action: &'event str,
    message: &'event str,
    #[serde(skip_serializing_if = "Option::is_none")]
    actor: Option<&'event Actor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip: Option<IpAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<&'event str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "<[Target]>::is_empty")]
    targets: &'event [Target],
    #[serde(skip_serializing_if = "<[Change]>::is_empty")]
    changes: &'event [Change],
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'event serde_json::Map<String, serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'event str>,
    leaf_version: u64,
    salt: &'event str,
}

/// The producer-sent content of an event, for the idempotency comparison: Logbook's own fields
/// (`id`, `received_at`, a defaulted `created_at`) are left out so a retry matches the original.
#[derive(Serialize)]
struct ProducerContent<'event> {
    account: &'event AccountId,
    #[serde(with = "time::serde::rfc3339::option")]
    created_at: Option<OffsetDateTime>,
    action: &'event str,
    message: &'event str,
    actor: Option<&'event Actor>,
    ip: Option<IpAddr>,
    user_agent: Option<&'event str>,
    outcome: Option<Outcome>,
    targets: &'event [Target],
    changes: &'event [Change],
    metadata: Option<&'event serde_json::Map<String, serde_json::Value>>,
}

impl NewEvent {
    /// The JSON object stored for this event, without `seq` (see `EventRow`).
    pub fn body_without_seq(&self) -> String {
        let salt = self.salt.to_hex();
        let body = EventBodyWithoutSeq {
            id: self.id.as_str(),
            account: &self.account,
            created_at: self.created_at,
            received_at: self.received_at,
            action: &self.action,
            message: &self.message,
            actor: self.actor.as_ref(),
            ip: self.ip,
            user_agent: self.user_agent.as_deref(),
            outcome: self.outcome,
            targets: &self.targets,
            changes: &self.changes,
            metadata: self.metadata.as_ref(),
            key: self.key.as_deref(),
            leaf_version: SALTED_LEAF_VERSION,
            salt: &salt,
        };
        serde_json::to_string(&body).expect("an event body always serializes")
    }

    /// SHA-256 of the producer-sent content. Two sends with the same idempotency key are the same
    /// event exactly when their fingerprints are equal.
    pub fn content_fingerprint(&self) -> [u8; 32] {
        let content = ProducerContent {
            account: &self.account,
            created_at: self.created_at_was_sent.then_some(self.created_at),
            action: &self.action,
            message: &self.message,
            actor: self.actor.as_ref(),
            ip: self.ip,
            user_agent: self.user_agent.as_deref(),
            outcome: self.outcome,
            targets: &self.targets,
            changes: &self.changes,
            metadata: self.metadata.as_ref(),
        };
        let encoded = serde_json::to_vec(&content).expect("event content always serializes");
        Sha256::digest(&encoded).into()
    }

    /// `created_at` as microseconds since the Unix epoch, the sort key the stores index.
    pub fn created_at_micros(&self) -> i64 {
        unix_micros(self.created_at)
    }
}

pub fn unix_micros(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000) as i64
}

/// One stored event as a store returns it: its position and its JSON body without `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub seq: u64,
    pub created_at_micros: i64,
    /// A JSON object (starting with `{`) holding every field of `StoredEvent` except `seq`.
    pub body_without_seq: String,
    /// The event's location as a JSON object (`Location::to_json`), kept beside the body because
    /// it is not part of what the producer sent (nor of the leaf).
    pub location: Option<String>,
    pub new_ip: bool,
    pub new_network: bool,
    pub new_country: bool,
}

impl EventRow {
    /// Appends the full event JSON (`{"seq":N,...}`) to `out` without re-encoding the body.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        debug_assert!(self.body_without_seq.starts_with('{'));
        out.extend_from_slice(b"{\"seq\":");
        out.extend_from_slice(self.seq.to_string().as_bytes());
        out.push(b',');
        out.extend_from_slice(&self.body_without_seq.as_bytes()[1..]);
        if let Some(location) = &self.location {
            // The location is looked up beside the body; splice it before the closing brace.
            out.pop();
            out.extend_from_slice(b",\"location\":");
            out.extend_from_slice(location.as_bytes());
            out.push(b'}');
        }
        if self.new_ip || self.new_network || self.new_country {
            // Flags are computed after the body was written; splice them before the closing brace.
            out.pop();
            if self.new_ip {
                out.extend_from_slice(b",\"new_ip\":true");
            }
            if self.new_network {
                out.extend_from_slice(b",\"new_network\":true");
            }
            if self.new_country {
                out.extend_from_slice(b",\"new_country\":true");
            }
            out.push(b'}');
        }
    }

    pub fn to_json(&self) -> String {
        let mut out = Vec::with_capacity(self.body_without_seq.len() + 24);
        self.write_json(&mut out);
        String::from_utf8(out).expect("event bodies are UTF-8")
    }

    pub fn decode(&self) -> Result<StoredEvent, serde_json::Error> {
        serde_json::from_str(&self.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn sample_event() -> NewEvent {
        NewEvent {
            id: "0190a5b2-0000-7000-8000-000000000001".into(),
            account: AccountId::parse("acme").unwrap(),
            received_at: datetime!(2024-06-01 12:00:05 UTC),
            created_at: datetime!(2024-06-01 12:00:00 UTC),
            created_at_was_sent: true,
            action: "server.reboot".into(),
            message: "Rebooted server web-1".into(),
            actor: Some(Actor {
                id: "alice@acme.com".into(),
                name: None,
                actor_type: Some(ActorType::User),
            }),
            ip: Some("203.0.113.9".parse().unwrap()),
            user_agent: None,
            outcome: Some(Outcome::Success),
            targets: vec![Target {
                target_type: "server".into(),
                id: "web-1".into(),
                name: None,
            }],
            changes: vec![],
            metadata: None,
            key: Some("k-1".into()),
            salt: crate::personal_data::EventSalt::random(),
        }
    }

    #[test]
    fn a_stored_row_decodes_to_the_event_that_was_sent_with_its_seq() {
        let event = sample_event();
        let row = EventRow {
            seq: 41,
            created_at_micros: event.created_at_micros(),
            body_without_seq: event.body_without_seq(),
            location: Some(r#"{"country_code":"IN","asn":9829}"#.into()),
            new_ip: true,
            new_network: true,
            new_country: true,
        };
        let decoded = row.decode().unwrap();
        assert!(decoded.new_network);
        assert!(decoded.new_country);
        let location = decoded.location.as_ref().unwrap();
        assert_eq!(location.country_code.as_deref(), Some("IN"));
        assert_eq!(location.asn, Some(9829));
        assert!(row.to_json().ends_with(
            r#","location":{"country_code":"IN","asn":9829},"new_ip":true,"new_network":true,"new_country":true}"#
        ));
        assert_eq!(decoded.seq, 41);
        assert_eq!(decoded.message, "Rebooted server web-1");
        assert_eq!(decoded.key.as_deref(), Some("k-1"));
        assert!(decoded.new_ip);
        assert!(row.to_json().starts_with("{\"seq\":41,\"id\":"));
    }

    #[test]
    fn the_fingerprint_ignores_what_logbook_adds_but_not_what_the_producer_sent() {
        let original = sample_event();
        let mut retry = original.clone();
        retry.id = "another-id".into();
        retry.received_at = datetime!(2024-06-01 13:00:00 UTC);
        assert_eq!(original.content_fingerprint(), retry.content_fingerprint());
        retry.message = "Rebooted server web-2".into();
        assert_ne!(original.content_fingerprint(), retry.content_fingerprint());
    }
}
