//! The leaf encoding of an account's verifiable log: which bytes of an event the Merkle tree
//! commits to, and their hash.
//!
//! # Encoding
//!
//! The leaf bytes of an event are the RFC 8785 (JCS) canonical JSON of the event object exactly
//! as Logbook stores and returns it (`StoredEvent`: the producer's fields plus `id`, `account`,
//! `seq`, `received_at` and `created_at`), minus the derived fields: `new_ip`, `new_network` and
//! `new_country` are flags the unfamiliar-IP detector computes from the actor's history, not from what the
//! producer sent (and a later detector version could compute them differently), so committing to
//! them would make the tree depend on analysis rather than on what was recorded; export-only fields (`leaf_hash`, `inclusion_proof`)
//! are derived from the leaf itself. `leaf_hash = SHA-256(0x00 || leaf_bytes)` (RFC 6962 §2.1).
//!
//! JCS represents every number as an IEEE-754 double (I-JSON), so integers in `metadata` or
//! `changes` beyond ±2^53 are committed to by their nearest double.
//!
//! # Versions
//!
//! Events stored since leaf version 2 (`"leaf_version":2` in the event) commit to their personal
//! fields (`ip`, `user_agent`, `actor.name`, each `metadata` member) through salted hashes, so
//! those fields can be removed later and the rest of the event still verifies; the leaf is the
//! JCS form of the event with each personal value replaced by its commitment
//! (`crate::personal_data` has the exact rule). Events without `leaf_version` keep the plain leaf
//! above; once their personal fields are removed (`"removed":[...]`), their content can no longer
//! be checked (`EventLeaf::ErasedBeforeVersion2`).
//!
//! # Three ways to the same hash
//!
//! - On ingest, `NewEvent::canonical_leaf_parts` runs off the writer thread and produces the
//!   canonical JSON without `seq`, split where `"seq"` sorts: JCS sorts keys, and the top-level
//!   keys of an event are a fixed set, so `seq` always sits between `received_at` (always
//!   present) and `targets`/`user_agent`/the closing brace. The writer then only calls
//!   `LeafParts::leaf_hash(seq)`, which streams `0x00 || before || "seq":N || after` into
//!   SHA-256 without allocating.
//! - `StoredEvent::leaf_bytes`/`leaf_hash` serialize a decoded event with a JCS serializer.
//! - `leaf_bytes_from_json_object` canonicalizes the raw JSON object of a stored row or an export
//!   line. Verifiers use this one: decoding into `StoredEvent` would silently drop a field someone
//!   added to the stored body, which reads would still return.
//!
//! Tests prove all three agree.

use std::io::Write as _;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::account::AccountId;
use crate::event::{Actor, Change, EventRow, NewEvent, Outcome, StoredEvent, Target};
use crate::merkle::Hash;
use crate::personal_data::{
    EventSalt, IP_NETWORK_FIELD, LEAF_VERSION_FIELD, PersonalFieldError, REMOVED_FIELD,
    SALTED_LEAF_VERSION, commitment, ip_network_text, salted_leaf_object,
};

/// The RFC 6962 domain-separation prefix of a leaf hash.
pub const LEAF_HASH_PREFIX: u8 = 0x00;

/// Top-level fields of an event JSON object that the leaf does not commit to (see module docs).
pub const FIELDS_OUTSIDE_THE_LEAF: [&str; 6] = [
    "location",
    "new_ip",
    "new_network",
    "new_country",
    "leaf_hash",
    "inclusion_proof",
];

/// The canonical JSON of an event without its `seq`, split at the place `"seq":N` goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeafParts {
    /// From the opening brace through the comma after `received_at`'s value.
    pub before_seq: Vec<u8>,
    /// From just after the `seq` value through the closing brace (`,"targets":...}` or `}`).
    pub after_seq: Vec<u8>,
}

impl LeafParts {
    /// `SHA-256(0x00 || leaf_bytes(seq))`, hashed in pieces without building the leaf.
    pub fn leaf_hash(&self, seq: u64) -> [u8; 32] {
        let mut digits = [0u8; 20];
        let digits = decimal_digits(seq, &mut digits);
        let mut hasher = Sha256::new();
        hasher.update([LEAF_HASH_PREFIX]);
        hasher.update(&self.before_seq);
        hasher.update(b"\"seq\":");
        hasher.update(digits);
        hasher.update(&self.after_seq);
        hasher.finalize().into()
    }

    /// The full leaf bytes for `seq` (for tests and diagnostics; the writer uses `leaf_hash`).
    pub fn leaf_bytes(&self, seq: u64) -> Vec<u8> {
        let mut digits = [0u8; 20];
        let digits = decimal_digits(seq, &mut digits);
        let mut out =
            Vec::with_capacity(self.before_seq.len() + self.after_seq.len() + 6 + digits.len());
        out.extend_from_slice(&self.before_seq);
        out.extend_from_slice(b"\"seq\":");
        out.extend_from_slice(digits);
        out.extend_from_slice(&self.after_seq);
        out
    }
}

/// `SHA-256(0x00 || leaf_bytes)`.
pub fn leaf_hash_of_bytes(leaf_bytes: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_HASH_PREFIX]);
    hasher.update(leaf_bytes);
    hasher.finalize().into()
}

/// Writes `value` in decimal into `buffer` and returns the digits. JCS writes an integer below
/// 2^53 exactly like this, and `seq` never comes near 2^53.
fn decimal_digits(mut value: u64, buffer: &mut [u8; 20]) -> &[u8] {
    let mut start = buffer.len();
    loop {
        start -= 1;
        buffer[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    &buffer[start..]
}

/// Why an event could not be put into canonical form. Validated events always can; a hostile
/// export line or an edited database row may not.
#[derive(Debug, thiserror::Error)]
pub enum LeafEncodingError {
    #[error("a timestamp cannot be written as RFC 3339: {0}")]
    Timestamp(#[from] time::error::Format),
    #[error("the value cannot be written as canonical JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the personal fields do not add up: {0}")]
    PersonalFields(#[from] PersonalFieldError),
    #[error(
        "the event's personal data was removed before leaf version 2, so its content can no longer be checked against its leaf"
    )]
    ErasedBeforeVersion2,
}

/// What the content of a stored event says about its leaf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventLeaf {
    /// The content hashes to `leaf_hash`; `removed_fields` of its personal fields were removed
    /// and stand in the leaf through the commitments kept for them.
    Verifiable {
        leaf_hash: Hash,
        removed_fields: usize,
    },
    /// An event stored before leaf version 2 whose personal fields (`removed`) were removed: its
    /// leaf can only be taken from where it was stored when the event was committed.
    ErasedBeforeVersion2 { removed: Vec<String> },
}

impl EventLeaf {
    /// The leaf hash the content proves, `None` when it can prove none.
    pub fn verifiable_hash(&self) -> Option<Hash> {
        match self {
            EventLeaf::Verifiable { leaf_hash, .. } => Some(*leaf_hash),
            EventLeaf::ErasedBeforeVersion2 { .. } => None,
        }
    }
}

/// Writes a JSON string the way JCS does. serde_json's escaping is JCS's (RFC 8785 §3.2.2.2):
/// `"` and `\\` escaped, `\b \t \n \f \r` short forms, other controls as lowercase `\u00hh`, and
/// everything else, including non-ASCII, as is.
fn write_canonical_str(out: &mut Vec<u8>, text: &str) {
    serde_json::to_writer(&mut *out, text).expect("writing to a Vec cannot fail");
}

/// Writes any JSON value in JCS form. Objects and strings are written here rather than by
/// `serde_json_canonicalizer`, which re-parses every object key to sort it and made the leaf 8
/// times slower than the stored body; numbers, where ECMAScript formatting is the subtle part,
/// are still written by that crate. Tests compare the result against the crate's whole output.
pub(crate) fn write_canonical_json(out: &mut Vec<u8>, value: &serde_json::Value) {
    write_canonical_value(out, value);
}

fn write_canonical_value(out: &mut Vec<u8>, value: &serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => serde_json_canonicalizer::to_writer(number, out)
            .expect("JSON numbers are finite and serialize"),
        Value::String(text) => write_canonical_str(out, text),
        Value::Array(items) => {
            out.push(b'[');
            for (position, item) in items.iter().enumerate() {
                if position > 0 {
                    out.push(b',');
                }
                write_canonical_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(object) => write_canonical_object(out, object),
    }
}

/// JCS sorts object members by the UTF-16 code units of their names.
fn write_canonical_object(out: &mut Vec<u8>, object: &serde_json::Map<String, serde_json::Value>) {
    let mut members: Vec<(&String, &serde_json::Value)> = object.iter().collect();
    members.sort_unstable_by(|(left, _), (right, _)| left.encode_utf16().cmp(right.encode_utf16()));
    out.push(b'{');
    for (position, (name, value)) in members.into_iter().enumerate() {
        if position > 0 {
            out.push(b',');
        }
        write_canonical_str(out, name);
        out.push(b':');
        write_canonical_value(out, value);
    }
    out.push(b'}');
}

/// Writes `"<hex>"`, the commitment to a personal field whose canonical value is in `scratch`.
fn write_commitment(out: &mut Vec<u8>, field_salt: &Hash, scratch: &[u8]) {
    out.push(b'"');
    crate::export_verification::write_hex(out, &commitment(field_salt, scratch));
    out.push(b'"');
}

/// Writes a personal string field: as it is, or (leaf version 2) as its commitment.
fn write_personal_str(
    out: &mut Vec<u8>,
    salt: Option<&EventSalt>,
    name: &str,
    text: &str,
    scratch: &mut Vec<u8>,
) {
    match salt {
        None => write_canonical_str(out, text),
        Some(salt) => {
            scratch.clear();
            write_canonical_str(scratch, text);
            write_commitment(out, &salt.field_salt(name), scratch);
        }
    }
}

/// `{"id":..,"name":..,"type":..}`: the fields of an actor in JCS order.
fn write_canonical_actor(
    out: &mut Vec<u8>,
    actor: &Actor,
    salt: Option<&EventSalt>,
    scratch: &mut Vec<u8>,
) {
    out.extend_from_slice(b"{\"id\":");
    write_canonical_str(out, &actor.id);
    if let Some(name) = &actor.name {
        out.extend_from_slice(b",\"name\":");
        write_personal_str(out, salt, "actor.name", name, scratch);
    }
    if let Some(actor_type) = actor.actor_type {
        out.extend_from_slice(b",\"type\":");
        serde_json::to_writer(&mut *out, &actor_type).expect("writing to a Vec cannot fail");
    }
    out.push(b'}');
}

fn write_canonical_targets(out: &mut Vec<u8>, targets: &[Target]) {
    out.push(b'[');
    for (position, target) in targets.iter().enumerate() {
        if position > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"id\":");
        write_canonical_str(out, &target.id);
        if let Some(name) = &target.name {
            out.extend_from_slice(b",\"name\":");
            write_canonical_str(out, name);
        }
        out.extend_from_slice(b",\"type\":");
        write_canonical_str(out, &target.target_type);
        out.push(b'}');
    }
    out.push(b']');
}

fn write_canonical_changes(out: &mut Vec<u8>, changes: &[Change]) {
    out.push(b'[');
    for (position, change) in changes.iter().enumerate() {
        if position > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"field\":");
        write_canonical_str(out, &change.field);
        if let Some(new) = &change.new {
            out.extend_from_slice(b",\"new\":");
            write_canonical_value(out, new);
        }
        if let Some(old) = &change.old {
            out.extend_from_slice(b",\"old\":");
            write_canonical_value(out, old);
        }
        out.push(b'}');
    }
    out.push(b']');
}

/// The metadata object of a version 2 leaf: each member's value replaced by its commitment.
fn write_committed_metadata(
    out: &mut Vec<u8>,
    metadata: &serde_json::Map<String, serde_json::Value>,
    salt: &EventSalt,
    scratch: &mut Vec<u8>,
) {
    let mut members: Vec<(&String, &serde_json::Value)> = metadata.iter().collect();
    members.sort_unstable_by(|(left, _), (right, _)| left.encode_utf16().cmp(right.encode_utf16()));
    out.push(b'{');
    for (position, (name, value)) in members.into_iter().enumerate() {
        if position > 0 {
            out.push(b',');
        }
        write_canonical_str(out, name);
        out.push(b':');
        scratch.clear();
        write_canonical_value(scratch, value);
        write_commitment(out, &salt.metadata_field_salt(name), scratch);
    }
    out.push(b'}');
}

fn write_key(out: &mut Vec<u8>, key: &str, first: &mut bool) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    out.push(b'"');
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

fn write_timestamp(out: &mut Vec<u8>, at: OffsetDateTime) -> Result<(), time::error::Format> {
    // RFC 3339 text never needs JSON escaping (digits, '-', ':', '.', 'T', 'Z', '+').
    out.push(b'"');
    at.format_into(out, &Rfc3339)?;
    out.push(b'"');
    Ok(())
}

impl NewEvent {
    /// The canonical leaf of this event without `seq`, split where `seq` goes. Runs off the
    /// writer thread; the writer finishes with `LeafParts::leaf_hash(seq)`.
    pub fn canonical_leaf_parts(&self) -> LeafParts {
        let borrowed = BorrowedEvent {
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
            salt: Some(&self.salt),
        };
        borrowed
            .leaf_parts()
            .expect("validated events have RFC 3339 timestamps")
    }
}

/// The fields of an event the leaf commits to, borrowed from either a `NewEvent` or a
/// `StoredEvent`, written in JCS key order by hand (the keys are fixed ASCII names, so their
/// UTF-16 order is their byte order) and each value written in JCS form.
struct BorrowedEvent<'event> {
    id: &'event str,
    account: &'event AccountId,
    created_at: OffsetDateTime,
    received_at: OffsetDateTime,
    action: &'event str,
    message: &'event str,
    actor: Option<&'event Actor>,
    ip: Option<std::net::IpAddr>,
    user_agent: Option<&'event str>,
    outcome: Option<Outcome>,
    targets: &'event [Target],
    changes: &'event [Change],
    metadata: Option<&'event serde_json::Map<String, serde_json::Value>>,
    key: Option<&'event str>,
    /// Leaf version 2: personal fields are committed through this salt.
    salt: Option<&'event EventSalt>,
}

impl BorrowedEvent<'_> {
    fn leaf_parts(&self) -> Result<LeafParts, time::error::Format> {
        let mut before_seq = Vec::with_capacity(256 + self.message.len());
        let mut scratch = Vec::new();
        let salt = self.salt;
        let first = &mut true;
        before_seq.push(b'{');
        write_key(&mut before_seq, "account", first);
        write_canonical_str(&mut before_seq, self.account.as_str());
        write_key(&mut before_seq, "action", first);
        write_canonical_str(&mut before_seq, self.action);
        if let Some(actor) = self.actor {
            write_key(&mut before_seq, "actor", first);
            write_canonical_actor(&mut before_seq, actor, salt, &mut scratch);
        }
        if !self.changes.is_empty() {
            write_key(&mut before_seq, "changes", first);
            write_canonical_changes(&mut before_seq, self.changes);
        }
        write_key(&mut before_seq, "created_at", first);
        write_timestamp(&mut before_seq, self.created_at)?;
        write_key(&mut before_seq, "id", first);
        write_canonical_str(&mut before_seq, self.id);
        if let Some(ip) = self.ip {
            write_key(&mut before_seq, "ip", first);
            // Display is what serde writes for an address in a human-readable format.
            match salt {
                None => write!(before_seq, "\"{ip}\"").expect("writing to a Vec cannot fail"),
                Some(salt) => {
                    scratch.clear();
                    write!(scratch, "\"{ip}\"").expect("writing to a Vec cannot fail");
                    write_commitment(&mut before_seq, &salt.field_salt("ip"), &scratch);
                    write_key(&mut before_seq, IP_NETWORK_FIELD, first);
                    scratch.clear();
                    write_canonical_str(&mut scratch, &ip_network_text(ip));
                    write_commitment(
                        &mut before_seq,
                        &salt.field_salt(IP_NETWORK_FIELD),
                        &scratch,
                    );
                }
            }
        }
        if let Some(key) = self.key {
            write_key(&mut before_seq, "key", first);
            write_canonical_str(&mut before_seq, key);
        }
        if salt.is_some() {
            write_key(&mut before_seq, LEAF_VERSION_FIELD, first);
            write!(before_seq, "{SALTED_LEAF_VERSION}").expect("writing to a Vec cannot fail");
        }
        write_key(&mut before_seq, "message", first);
        write_canonical_str(&mut before_seq, self.message);
        if let Some(metadata) = self.metadata {
            write_key(&mut before_seq, "metadata", first);
            match salt {
                None => write_canonical_object(&mut before_seq, metadata),
                Some(salt) => {
                    write_committed_metadata(&mut before_seq, metadata, salt, &mut scratch)
                }
            }
        }
        if let Some(outcome) = self.outcome {
            write_key(&mut before_seq, "outcome", first);
            write_canonical_str(&mut before_seq, outcome.as_str());
        }
        write_key(&mut before_seq, "received_at", first);
        write_timestamp(&mut before_seq, self.received_at)?;
        before_seq.push(b',');

        let mut after_seq = Vec::with_capacity(64);
        if !self.targets.is_empty() {
            after_seq.extend_from_slice(b",\"targets\":");
            write_canonical_targets(&mut after_seq, self.targets);
        }
        if let Some(user_agent) = self.user_agent {
            after_seq.extend_from_slice(b",\"user_agent\":");
            write_personal_str(&mut after_seq, salt, "user_agent", user_agent, &mut scratch);
        }
        after_seq.push(b'}');
        Ok(LeafParts {
            before_seq,
            after_seq,
        })
    }
}

impl StoredEvent {
    /// The leaf bytes of this event (module docs), computed from the decoded event through its
    /// JSON object, the way a verifier sees it.
    pub fn leaf_bytes(&self) -> Result<Vec<u8>, LeafEncodingError> {
        let serde_json::Value::Object(object) = serde_json::to_value(self)? else {
            unreachable!("an event serializes as a JSON object");
        };
        leaf_bytes_from_json_object(&object)
    }

    /// `SHA-256(0x00 || leaf_bytes)`.
    pub fn leaf_hash(&self) -> Result<[u8; 32], LeafEncodingError> {
        Ok(leaf_hash_of_bytes(&self.leaf_bytes()?))
    }
}

impl EventRow {
    /// The leaf of this stored row, canonicalized from the raw stored JSON (so a field added to
    /// the body by hand changes the hash, as it changes what reads return).
    pub fn leaf(&self) -> Result<EventLeaf, LeafEncodingError> {
        let mut object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&self.body_without_seq)?;
        object.insert("seq".to_owned(), serde_json::Value::from(self.seq));
        event_leaf_of_json_object(&object)
    }

    /// The leaf hash of this stored row; an error for an event whose content can no longer prove
    /// its leaf (`EventLeaf::ErasedBeforeVersion2`).
    pub fn leaf_hash(&self) -> Result<[u8; 32], LeafEncodingError> {
        self.leaf()?
            .verifiable_hash()
            .ok_or(LeafEncodingError::ErasedBeforeVersion2)
    }
}

/// What the JSON object of an event (a stored body with `seq`, or an export line) says about
/// its leaf (`EventLeaf`).
pub fn event_leaf_of_json_object(
    object: &serde_json::Map<String, serde_json::Value>,
) -> Result<EventLeaf, LeafEncodingError> {
    match object.get(LEAF_VERSION_FIELD) {
        None => {
            if let Some(serde_json::Value::Array(removed)) = object.get(REMOVED_FIELD)
                && !removed.is_empty()
            {
                return Ok(EventLeaf::ErasedBeforeVersion2 {
                    removed: removed
                        .iter()
                        .filter_map(|name| name.as_str().map(str::to_owned))
                        .collect(),
                });
            }
            Ok(EventLeaf::Verifiable {
                leaf_hash: leaf_hash_of_bytes(&canonical_object_without(
                    object,
                    &FIELDS_OUTSIDE_THE_LEAF,
                )),
                removed_fields: 0,
            })
        }
        Some(_) => {
            let salted = salted_leaf_object(object, &FIELDS_OUTSIDE_THE_LEAF)?;
            Ok(EventLeaf::Verifiable {
                leaf_hash: leaf_hash_of_bytes(&canonical_object_without(&salted.leaf_object, &[])),
                removed_fields: salted.removed_fields,
            })
        }
    }
}

/// The leaf bytes of an event given as its JSON object (a stored body with `seq`, or an export
/// line): for an event before leaf version 2, the JCS form of the object without the fields
/// listed in `FIELDS_OUTSIDE_THE_LEAF`; for version 2, with personal values replaced by their
/// commitments (`crate::personal_data`).
pub fn leaf_bytes_from_json_object(
    object: &serde_json::Map<String, serde_json::Value>,
) -> Result<Vec<u8>, LeafEncodingError> {
    match object.get(LEAF_VERSION_FIELD) {
        None => {
            if object
                .get(REMOVED_FIELD)
                .and_then(serde_json::Value::as_array)
                .is_some_and(|removed| !removed.is_empty())
            {
                return Err(LeafEncodingError::ErasedBeforeVersion2);
            }
            Ok(canonical_object_without(object, &FIELDS_OUTSIDE_THE_LEAF))
        }
        Some(_) => {
            let salted = salted_leaf_object(object, &FIELDS_OUTSIDE_THE_LEAF)?;
            Ok(canonical_object_without(&salted.leaf_object, &[]))
        }
    }
}

/// The JCS form of `object` without the members named in `left_out`.
fn canonical_object_without(
    object: &serde_json::Map<String, serde_json::Value>,
    left_out: &[&str],
) -> Vec<u8> {
    let mut members: Vec<(&String, &serde_json::Value)> = object
        .iter()
        .filter(|(name, _)| !left_out.contains(&name.as_str()))
        .collect();
    members.sort_unstable_by(|(left, _), (right, _)| left.encode_utf16().cmp(right.encode_utf16()));
    let mut out = Vec::with_capacity(512);
    out.push(b'{');
    for (position, (name, value)) in members.into_iter().enumerate() {
        if position > 0 {
            out.push(b',');
        }
        write_canonical_str(&mut out, name);
        out.push(b':');
        write_canonical_value(&mut out, value);
    }
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ActorType;
    use time::macros::datetime;

    fn full_event() -> NewEvent {
        let mut metadata = serde_json::Map::new();
        metadata.insert("zeta".into(), serde_json::json!(1.0));
        metadata.insert(
            "alpha".into(),
            serde_json::json!({"b": [1e21, -0.0, 0.000001], "a": "é\u{1}"}),
        );
        metadata.insert(
            "targets".into(),
            serde_json::json!("nested keys named like top-level ones"),
        );
        NewEvent {
            id: "0190a5b2-0000-7000-8000-000000000001".into(),
            account: AccountId::parse("acme").unwrap(),
            received_at: datetime!(2024-06-01 12:00:05.123456 UTC),
            created_at: datetime!(2024-06-01 12:00:00 +02:00),
            created_at_was_sent: true,
            action: "server.reboot".into(),
            message: "Rebooted \"web-1\"\n\u{2028}😀".into(),
            actor: Some(Actor {
                id: "alice@acme.com".into(),
                name: Some("Alice".into()),
                actor_type: Some(ActorType::User),
            }),
            ip: Some("2001:db8::1".parse().unwrap()),
            user_agent: Some("curl/8".into()),
            outcome: Some(Outcome::Failure),
            targets: vec![Target {
                target_type: "server".into(),
                id: "web-1".into(),
                name: None,
            }],
            changes: vec![Change {
                field: "size".into(),
                old: Some(serde_json::json!(2)),
                new: None,
            }],
            metadata: Some(metadata),
            key: Some("k-1".into()),
            salt: crate::personal_data::EventSalt::from_bytes([7; 16]),
        }
    }

    fn minimal_event() -> NewEvent {
        NewEvent {
            id: "e-2".into(),
            account: AccountId::parse("acme").unwrap(),
            received_at: datetime!(2024-06-01 12:00:05 UTC),
            created_at: datetime!(2024-06-01 12:00:05 UTC),
            created_at_was_sent: false,
            action: "a.b".into(),
            message: "m".into(),
            actor: None,
            ip: None,
            user_agent: None,
            outcome: None,
            targets: vec![],
            changes: vec![],
            metadata: None,
            key: None,
            salt: crate::personal_data::EventSalt::random(),
        }
    }

    fn stored_row(event: &NewEvent, seq: u64, new_ip: bool) -> EventRow {
        EventRow {
            seq,
            created_at_micros: event.created_at_micros(),
            body_without_seq: event.body_without_seq(),
            // Logbook's analysis rides along with the flags: none of it is in the leaf.
            location: new_ip.then(|| r#"{"country_code":"IN","asn":9829}"#.to_owned()),
            new_ip,
            new_network: new_ip,
            new_country: new_ip,
        }
    }

    /// The version 2 leaf computed independently of `crate::personal_data`: the stored event as
    /// JSON, each personal value replaced by `SHA-256(SHA-256(salt || name) || JCS(value))` with
    /// the JCS crate, `ip_network` added, then the JCS crate over the whole object.
    fn oracle_leaf_bytes(stored: &StoredEvent, salt: [u8; 16]) -> Vec<u8> {
        use sha2::{Digest, Sha256};
        let commit = |name: &str, value: &serde_json::Value| -> serde_json::Value {
            let field_salt: [u8; 32] = Sha256::new()
                .chain_update(salt)
                .chain_update(name.as_bytes())
                .finalize()
                .into();
            let digest = Sha256::new()
                .chain_update(field_salt)
                .chain_update(serde_json_canonicalizer::to_vec(value).unwrap())
                .finalize();
            serde_json::Value::String(digest.iter().map(|byte| format!("{byte:02x}")).collect())
        };
        let mut value = serde_json::to_value(stored).unwrap();
        let object = value.as_object_mut().unwrap();
        for left_out in ["location", "new_ip", "new_network", "new_country", "salt"] {
            object.remove(left_out);
        }
        if let Some(ip) = object.get("ip").cloned() {
            let address: std::net::IpAddr = ip.as_str().unwrap().parse().unwrap();
            let network = match address {
                std::net::IpAddr::V4(v4) => {
                    let [a, b, c, _] = v4.octets();
                    format!("{a}.{b}.{c}.0/24")
                }
                std::net::IpAddr::V6(v6) => {
                    let segments = v6.segments();
                    let prefix = std::net::Ipv6Addr::new(
                        segments[0],
                        segments[1],
                        segments[2],
                        0,
                        0,
                        0,
                        0,
                        0,
                    );
                    format!("{prefix}/48")
                }
            };
            object.insert("ip".into(), commit("ip", &ip));
            object.insert(
                "ip_network".into(),
                commit("ip_network", &serde_json::Value::String(network)),
            );
        }
        if let Some(user_agent) = object.get("user_agent").cloned() {
            object.insert("user_agent".into(), commit("user_agent", &user_agent));
        }
        if let Some(actor) = object
            .get_mut("actor")
            .and_then(|actor| actor.as_object_mut())
            && let Some(name) = actor.get("name").cloned()
        {
            actor.insert("name".into(), commit("actor.name", &name));
        }
        if let Some(metadata) = object
            .get_mut("metadata")
            .and_then(|metadata| metadata.as_object_mut())
        {
            for (key, member) in metadata.iter_mut() {
                *member = commit(&format!("metadata.{key}"), member);
            }
        }
        serde_json_canonicalizer::to_vec(&value).unwrap()
    }

    fn salt_of(stored: &StoredEvent) -> [u8; 16] {
        crate::personal_data::parse_hex(stored.salt.as_deref().expect("a new event keeps its salt"))
            .unwrap()
    }

    #[test]
    fn the_writer_path_the_decoded_path_and_the_raw_json_path_give_the_same_leaf() {
        for event in [full_event(), minimal_event()] {
            for seq in [0, 7, 10, 123_456_789] {
                let parts = event.canonical_leaf_parts();
                let row = stored_row(&event, seq, true);
                let stored = row.decode().unwrap();
                let full_jcs = oracle_leaf_bytes(&stored, salt_of(&stored));
                assert_eq!(
                    String::from_utf8_lossy(&parts.leaf_bytes(seq)),
                    String::from_utf8_lossy(&full_jcs),
                );
                assert_eq!(stored.leaf_bytes().unwrap(), full_jcs);
                assert_eq!(parts.leaf_hash(seq), leaf_hash_of_bytes(&full_jcs));
                assert_eq!(stored.leaf_hash().unwrap(), parts.leaf_hash(seq));
                assert_eq!(row.leaf_hash().unwrap(), parts.leaf_hash(seq));
            }
        }
    }

    /// The body of `row` as an event stored before leaf version 2 would have it.
    fn body_before_version_2(row: &EventRow) -> String {
        let mut body: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&row.body_without_seq).unwrap();
        body.remove("leaf_version");
        body.remove("salt");
        serde_json::to_string(&body).unwrap()
    }

    #[test]
    fn the_leaf_is_jcs_with_sorted_keys_and_ecmascript_numbers() {
        // Before leaf version 2, every field is committed as it is.
        let row = stored_row(&full_event(), 3, false);
        let old_row = with_body(&row, body_before_version_2(&row));
        let old_leaf = String::from_utf8(old_row.decode().unwrap().leaf_bytes().unwrap()).unwrap();
        assert!(old_leaf.starts_with("{\"account\":\"acme\",\"action\":\"server.reboot\",\"actor\":{\"id\":\"alice@acme.com\",\"name\":\"Alice\",\"type\":\"user\"},\"changes\":[{\"field\":\"size\",\"old\":2}],\"created_at\":\"2024-06-01T12:00:00+02:00\""), "{old_leaf}");
        assert!(old_leaf.contains("\"metadata\":{\"alpha\":{\"a\":\"é\\u0001\",\"b\":[1e+21,0,0.000001]},\"targets\":\"nested keys named like top-level ones\",\"zeta\":1}"), "{old_leaf}");
        assert!(old_leaf.contains("\"received_at\":\"2024-06-01T12:00:05.123456Z\",\"seq\":3,\"targets\":[{\"id\":\"web-1\",\"type\":\"server\"}],\"user_agent\":\"curl/8\"}"), "{old_leaf}");
        assert_eq!(
            old_row.leaf_hash().unwrap(),
            leaf_hash_of_bytes(old_leaf.as_bytes())
        );

        // Since version 2, personal values are 64-hex commitments and the rest is as before.
        let leaf = String::from_utf8(full_event().canonical_leaf_parts().leaf_bytes(3)).unwrap();
        let commitment_after = |prefix: &str| {
            let start = leaf
                .find(prefix)
                .unwrap_or_else(|| panic!("{prefix} in {leaf}"))
                + prefix.len();
            let text = &leaf[start..start + 66];
            assert!(
                text.starts_with('"')
                    && text.ends_with('"')
                    && text[1..65].bytes().all(|byte| byte.is_ascii_hexdigit()),
                "{prefix} is followed by a commitment in {leaf}"
            );
        };
        assert!(leaf.starts_with("{\"account\":\"acme\",\"action\":\"server.reboot\",\"actor\":{\"id\":\"alice@acme.com\",\"name\":\""), "{leaf}");
        commitment_after("\"name\":");
        commitment_after("\"ip\":");
        commitment_after("\"ip_network\":");
        commitment_after("\"metadata\":{\"alpha\":");
        commitment_after("\"user_agent\":");
        assert!(
            leaf.contains("\"leaf_version\":2,\"message\":\"Rebooted \\\"web-1\\\"\\n\u{2028}😀\""),
            "{leaf}"
        );
        assert!(
            !leaf.contains("Alice") && !leaf.contains("curl") && !leaf.contains("salt"),
            "{leaf}"
        );
        let minimal =
            String::from_utf8(minimal_event().canonical_leaf_parts().leaf_bytes(0)).unwrap();
        assert_eq!(
            minimal,
            "{\"account\":\"acme\",\"action\":\"a.b\",\"created_at\":\"2024-06-01T12:00:05Z\",\"id\":\"e-2\",\"leaf_version\":2,\"message\":\"m\",\"received_at\":\"2024-06-01T12:00:05Z\",\"seq\":0}"
        );
    }

    fn removal(
        address: crate::personal_data::AddressRemoval,
        keys: &[&str],
    ) -> crate::personal_data::PersonalFieldRemoval {
        crate::personal_data::PersonalFieldRemoval {
            address,
            metadata_keys: keys.iter().map(|key| (*key).to_owned()).collect(),
        }
    }

    fn with_body(row: &EventRow, body: String) -> EventRow {
        EventRow {
            body_without_seq: body,
            ..row.clone()
        }
    }

    #[test]
    fn removing_personal_fields_of_a_version_2_event_keeps_its_leaf_and_marks_them_removed() {
        use crate::personal_data::{AddressRemoval, remove_personal_fields};
        let row = stored_row(&full_event(), 9, false);
        let original = row.leaf_hash().unwrap();

        let aged = remove_personal_fields(
            &row.body_without_seq,
            &removal(AddressRemoval::KeepNetwork, &[]),
        )
        .unwrap()
        .expect("the event had personal fields");
        let aged_row = with_body(&row, aged.clone());
        let stored = aged_row.decode().unwrap();
        assert_eq!(stored.ip, None);
        assert_eq!(stored.user_agent, None);
        assert_eq!(stored.actor.as_ref().unwrap().name, None);
        assert_eq!(stored.actor.as_ref().unwrap().id, "alice@acme.com");
        assert_eq!(stored.ip_network.as_deref(), Some("2001:db8::/48"));
        assert_eq!(stored.removed, vec!["actor.name", "ip", "user_agent"]);
        assert!(
            stored.salt.is_none(),
            "the event salt goes with the first removal"
        );
        assert!(
            !aged.contains("Alice") && !aged.contains("curl/8") && !aged.contains("2001:db8::1")
        );
        assert_eq!(
            aged_row.leaf().unwrap(),
            EventLeaf::Verifiable {
                leaf_hash: original,
                removed_fields: 3
            }
        );
        assert_eq!(
            stored.leaf_hash().unwrap(),
            original,
            "the decoded event verifies too"
        );

        // Erasure later takes the network and a declared metadata member as well.
        let erased = remove_personal_fields(&aged, &removal(AddressRemoval::Remove, &["alpha"]))
            .unwrap()
            .unwrap();
        let erased_row = with_body(&row, erased.clone());
        let stored = erased_row.decode().unwrap();
        assert_eq!(stored.ip_network, None);
        assert_eq!(
            stored.removed,
            vec![
                "actor.name",
                "ip",
                "ip_network",
                "metadata.alpha",
                "user_agent"
            ]
        );
        assert_eq!(
            stored.metadata.as_ref().unwrap()["alpha"],
            serde_json::Value::Null
        );
        assert_eq!(
            stored.metadata.as_ref().unwrap()["zeta"],
            serde_json::json!(1.0)
        );
        assert_eq!(
            erased_row.leaf().unwrap(),
            EventLeaf::Verifiable {
                leaf_hash: original,
                removed_fields: 5
            }
        );
        assert_eq!(stored.leaf_hash().unwrap(), original);
        // Nothing left to remove: the body stays as it is.
        assert_eq!(
            remove_personal_fields(&erased, &removal(AddressRemoval::Remove, &["alpha"])).unwrap(),
            None
        );
    }

    #[test]
    fn an_edit_of_what_remains_after_a_removal_changes_the_leaf() {
        use crate::personal_data::{AddressRemoval, remove_personal_fields};
        let row = stored_row(&full_event(), 9, false);
        let original = row.leaf_hash().unwrap();
        let aged =
            remove_personal_fields(&row.body_without_seq, &removal(AddressRemoval::Remove, &[]))
                .unwrap()
                .unwrap();
        let edits = [
            aged.replace("Rebooted", "Restarted"),
            aged.replace("\"zeta\":1.0", "\"zeta\":2.0"),
            aged.replace("\"ip\":null", "\"ip\":\"192.0.2.1\""),
        ];
        for edited in edits {
            assert_ne!(edited, aged, "the edit must apply");
            let outcome = with_body(&row, edited.clone()).leaf_hash();
            assert!(
                outcome.as_ref().map_or(true, |hash| *hash != original),
                "{edited} must not verify"
            );
        }
        // Pretending a remaining field was removed (dropping its salt) cannot verify either.
        let mut object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&aged).unwrap();
        object["salts"]
            .as_object_mut()
            .unwrap()
            .remove("metadata.zeta");
        assert!(
            with_body(&row, serde_json::to_string(&object).unwrap())
                .leaf_hash()
                .is_err()
        );
        // A removed list that does not match the kept commitments is refused.
        let mut object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&aged).unwrap();
        object["removed"] = serde_json::json!(["ip"]);
        assert!(
            with_body(&row, serde_json::to_string(&object).unwrap())
                .leaf_hash()
                .is_err()
        );
    }

    #[test]
    fn removing_personal_fields_of_an_event_before_version_2_makes_it_erased_and_unverifiable() {
        use crate::personal_data::{AddressRemoval, remove_personal_fields};
        let row = stored_row(&full_event(), 2, false);
        let erased = remove_personal_fields(
            &body_before_version_2(&row),
            &removal(AddressRemoval::Remove, &[]),
        )
        .unwrap()
        .unwrap();
        let erased_row = with_body(&row, erased);
        assert_eq!(
            erased_row.leaf().unwrap(),
            EventLeaf::ErasedBeforeVersion2 {
                removed: vec!["actor.name".into(), "ip".into(), "user_agent".into()]
            }
        );
        assert!(matches!(
            erased_row.leaf_hash(),
            Err(LeafEncodingError::ErasedBeforeVersion2)
        ));
    }

    #[test]
    fn an_event_salt_is_never_printed() {
        let salt = crate::personal_data::EventSalt::from_bytes([0xab; 16]);
        assert_eq!(format!("{salt:?}"), "EventSalt(..)");
    }

    #[test]
    fn the_derived_new_ip_and_new_network_flags_are_outside_the_leaf_but_every_stored_field_is_inside()
     {
        let event = full_event();
        let flagged = stored_row(&event, 5, true).leaf_hash().unwrap();
        let unflagged = stored_row(&event, 5, false).leaf_hash().unwrap();
        assert_eq!(flagged, unflagged);
        assert_ne!(stored_row(&event, 6, false).leaf_hash().unwrap(), unflagged);

        let mut edited = stored_row(&event, 5, false);
        edited.body_without_seq = edited.body_without_seq.replacen('{', "{\"extra\":1,", 1);
        assert_ne!(
            edited.leaf_hash().unwrap(),
            unflagged,
            "an added field must change the leaf"
        );

        let mut later = event.clone();
        later.received_at += time::Duration::microseconds(1);
        assert_ne!(later.canonical_leaf_parts().leaf_hash(5), unflagged);
    }

    #[test]
    fn rfc_8785_number_examples_serialize_as_the_rfc_prints_them() {
        // RFC 8785 Appendix B: IEEE-754 values and their canonical text.
        let cases: [(u64, &str); 8] = [
            (0x0000_0000_0000_0000, "0"),
            (0x8000_0000_0000_0000, "0"),
            (0x0000_0000_0000_0001, "5e-324"),
            (0x7fef_ffff_ffff_ffff, "1.7976931348623157e+308"),
            (0x4340_0000_0000_0000, "9007199254740992"),
            (0x4430_0000_0000_0000, "295147905179352830000"),
            (0x44b5_2d02_c7e1_4af6, "1e+23"),
            (0x3eb0_c6f7_a0b5_ed8d, "0.000001"),
        ];
        for (bits, expected) in cases {
            let mut text = Vec::new();
            write_canonical_value(&mut text, &serde_json::json!(f64::from_bits(bits)));
            assert_eq!(String::from_utf8(text).unwrap(), expected, "bits {bits:#x}");
        }
        // RFC 8785 §3.2.3: members sort by UTF-16 code units, so U+1F600 (a surrogate pair
        // starting 0xD83D) sorts before U+FF5E but after U+20AC.
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"\u20ac":1,"\r":2,"\ud83d\ude00":3,"1":4,"\u00f6":5,"\uff5e":6,"new_ip":true,"new_network":true}"#,
        )
        .unwrap();
        let sorted = String::from_utf8(leaf_bytes_from_json_object(&object).unwrap()).unwrap();
        assert_eq!(
            sorted,
            "{\"\\r\":2,\"1\":4,\"ö\":5,\"€\":1,\"😀\":3,\"～\":6}"
        );
    }

    fn arbitrary_json() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |number| number.is_finite())
                .prop_map(serde_json::Value::from),
            "\\PC{0,6}|[\u{0}-\u{1f}\"\\\\\u{7f}\u{2028}\u{e9}\u{20ac}\u{1f600}\u{ff5e}]{0,4}"
                .prop_map(serde_json::Value::String),
        ];
        leaf.prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                proptest::collection::vec(
                    ("[a-z\u{e9}\u{20ac}\u{1f600}\u{ff5e}\r1]{0,3}", inner),
                    0..5
                )
                .prop_map(|members| serde_json::Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn the_hand_written_canonical_form_equals_the_jcs_crate_for_any_metadata(value in arbitrary_json()) {
            let mut ours = Vec::new();
            write_canonical_value(&mut ours, &value);
            let theirs = serde_json_canonicalizer::to_vec(&value).unwrap();
            proptest::prop_assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(theirs).unwrap());
        }
    }
}
