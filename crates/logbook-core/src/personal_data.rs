//! Personal data in events (issue 18): which fields are personal, how leaf version 2 commits to
//! them through salted hashes, and how they are removed (by age or on a person's request) while
//! the event still verifies field by field.
//!
//! # Personal fields
//!
//! `ip`, `user_agent`, `actor.name` and every top-level `metadata` member (`metadata.<key>`),
//! plus `ip_network`: the /24 (IPv4) or /48 (IPv6) of `ip` as CIDR text, which aging may keep
//! when it removes the address. Every metadata member is committed this way, not only the ones an
//! account declares personal today, so a field declared later can still be erased verifiably.
//! `actor.id`, `message`, `targets`, `changes`, `action`, `outcome` and the times are committed
//! as they are: they are what the log is for.
//!
//! # Leaf version 2
//!
//! An event stored since this version carries `"leaf_version":2` and a random 16-byte `salt`
//! (32 lowercase hex digits) in its body. For a personal field named `name` holding the JSON value
//! `value`:
//!
//! ```text
//! field_salt(name) = SHA-256(salt || UTF-8(name))                  (32 bytes)
//! commitment(name) = SHA-256(field_salt(name) || JCS(value))       (64 lowercase hex digits)
//! ```
//!
//! The leaf is the JCS canonical JSON of the event object with each personal field's value
//! replaced by its commitment (as a JSON string), `ip_network` added beside `ip` when the event
//! has an address, and the verification material (`salt`, `salts`, `removed`,
//! `removed_commitments`) left out, along with the fields `crate::leaf` leaves out of every
//! leaf. The salt makes a commitment of a short value (an IPv4 address has 2^32) impossible to
//! reverse by trying every value once the salt is gone.
//!
//! # Removal
//!
//! Removing a field sets its value to `null`, names it in `removed` (sorted), and keeps its
//! commitment in `removed_commitments`. The event-wide `salt` can no longer stay (it derives the
//! removed field's salt), so the first removal replaces it with `salts`: the field salt of every
//! personal field that still has a value. A verifier recomputes the leaf from the remaining
//! values, their salts and the kept commitments: what remains is checked against the leaf, and
//! what was removed is reported as removed, never as tampered.
//!
//! Events stored before leaf version 2 committed their personal fields in plain text. Their
//! fields are removed the same way (`null` and `removed`), but nothing can show that the rest is
//! unchanged: `logbook verify` checks such an event against the leaf hash stored for it and
//! reports it as "erased, content not verifiable", and still verifies the tree.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// The `leaf_version` of events whose personal fields are committed through salted hashes.
pub const SALTED_LEAF_VERSION: u64 = 2;

pub const LEAF_VERSION_FIELD: &str = "leaf_version";
pub const SALT_FIELD: &str = "salt";
pub const SALTS_FIELD: &str = "salts";
pub const REMOVED_FIELD: &str = "removed";
pub const REMOVED_COMMITMENTS_FIELD: &str = "removed_commitments";
pub const IP_NETWORK_FIELD: &str = "ip_network";

/// Body fields that carry what verifies personal fields, not content: the leaf leaves them out.
pub const VERIFICATION_MATERIAL_FIELDS: [&str; 4] = [
    SALT_FIELD,
    SALTS_FIELD,
    REMOVED_FIELD,
    REMOVED_COMMITMENTS_FIELD,
];

const METADATA_PREFIX: &str = "metadata.";

/// The most metadata fields an account may declare personal, and the longest name.
pub const MAX_DECLARED_PERSONAL_FIELDS: usize = 64;
pub const MAX_DECLARED_PERSONAL_FIELD_CHARACTERS: usize = 128;

/// An event's random salt (module docs).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EventSalt([u8; 16]);

impl std::fmt::Debug for EventSalt {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A salt is what keeps a removed value secret: it is never printed.
        formatter.write_str("EventSalt(..)")
    }
}

impl EventSalt {
    /// A fresh salt from the thread's cryptographically secure generator.
    pub fn random() -> Self {
        use rand::RngCore as _;
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The 32 lowercase hex digits the body keeps.
    pub fn to_hex(&self) -> String {
        crate::export_verification::hex(&self.0)
    }

    pub fn parse_hex(text: &str) -> Option<Self> {
        let bytes = parse_hex::<16>(text)?;
        Some(Self(bytes))
    }

    /// `SHA-256(salt || name)`.
    pub fn field_salt(&self, name: &str) -> Hash {
        let mut hasher = Sha256::new();
        hasher.update(self.0);
        hasher.update(name.as_bytes());
        hasher.finalize().into()
    }

    /// `field_salt("metadata.<key>")` without building the name.
    pub fn metadata_field_salt(&self, key: &str) -> Hash {
        let mut hasher = Sha256::new();
        hasher.update(self.0);
        hasher.update(METADATA_PREFIX.as_bytes());
        hasher.update(key.as_bytes());
        hasher.finalize().into()
    }
}

/// `SHA-256(field_salt || canonical_value)`: the commitment to one personal field.
pub fn commitment(field_salt: &Hash, canonical_value: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(field_salt);
    hasher.update(canonical_value);
    hasher.finalize().into()
}

/// Lowercase hex of exactly `N` bytes.
pub(crate) fn parse_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2 {
        return None;
    }
    let digit = |byte: u8| match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    };
    let mut bytes = [0u8; N];
    for (index, pair) in text.as_bytes().chunks_exact(2).enumerate() {
        bytes[index] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(bytes)
}

/// The network aging may keep of an address: its /24 or /48, as CIDR text.
pub fn ip_network_text(address: IpAddr) -> String {
    crate::unfamiliar_ip::network_of_address(address).to_string()
}

/// What to do with an event's address when its personal data goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressRemoval {
    /// Remove the address and its network.
    Remove,
    /// Remove the address, keep its /24 or /48 in `ip_network`.
    KeepNetwork,
}

/// Which personal fields a removal takes from an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalFieldRemoval {
    pub address: AddressRemoval,
    /// Metadata members the account declares personal (`metadata.<key>` without the prefix).
    pub metadata_keys: Vec<String>,
}

/// Why a stored event's personal fields could not be read or removed. Only a body edited outside
/// Logbook can cause one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PersonalFieldError(pub String);

fn error<T>(message: impl Into<String>) -> Result<T, PersonalFieldError> {
    Err(PersonalFieldError(message.into()))
}

/// A metadata member name an account declares personal: 1 to 128 characters, no control
/// characters, not only spaces.
pub fn declared_personal_field(
    name: &str,
) -> Result<String, crate::retention::RetentionInputError> {
    let trimmed = crate::retention::trim_spaces_as_the_schema_does(name);
    let key = trimmed.strip_prefix(METADATA_PREFIX).unwrap_or(trimmed);
    if key.is_empty()
        || key.chars().count() > MAX_DECLARED_PERSONAL_FIELD_CHARACTERS
        || key.chars().any(char::is_control)
    {
        return Err(crate::retention::RetentionInputError {
            field: "personal_metadata_fields",
            message: format!(
                "a personal metadata field is the name of a metadata member, 1 to {MAX_DECLARED_PERSONAL_FIELD_CHARACTERS} characters on one line; {name:?} is not"
            ),
        });
    }
    Ok(key.to_owned())
}

/// The declared personal metadata fields, deduplicated and sorted.
pub fn declared_personal_fields(
    names: &[String],
) -> Result<Vec<String>, crate::retention::RetentionInputError> {
    let mut keys: Vec<String> = names
        .iter()
        .map(|name| declared_personal_field(name))
        .collect::<Result<_, _>>()?;
    // Counted as given, before duplicates fold, so the bound is the one a client can check.
    if keys.len() > MAX_DECLARED_PERSONAL_FIELDS {
        return Err(crate::retention::RetentionInputError {
            field: "personal_metadata_fields",
            message: format!(
                "an account declares at most {MAX_DECLARED_PERSONAL_FIELDS} personal metadata fields"
            ),
        });
    }
    keys.sort();
    keys.dedup();
    Ok(keys)
}

/// Whether `object` is an event of leaf version 2 (an unknown version is an error).
fn is_salted(object: &Map<String, Value>) -> Result<bool, PersonalFieldError> {
    match object.get(LEAF_VERSION_FIELD) {
        None => Ok(false),
        Some(value) if value.as_u64() == Some(SALTED_LEAF_VERSION) => Ok(true),
        Some(other) => error(format!("unknown leaf_version {other}")),
    }
}

/// The personal fields of `object` that hold a value, with that value: `ip_network` derived from
/// `ip` when the body does not spell it out.
fn present_personal_values(
    object: &Map<String, Value>,
) -> Result<Vec<(String, Value)>, PersonalFieldError> {
    let mut values = Vec::new();
    let ip = object.get("ip").filter(|value| !value.is_null());
    if let Some(ip) = ip {
        values.push(("ip".to_owned(), ip.clone()));
    }
    match object
        .get(IP_NETWORK_FIELD)
        .filter(|value| !value.is_null())
    {
        Some(network) => values.push((IP_NETWORK_FIELD.to_owned(), network.clone())),
        None => {
            if let Some(ip) = ip {
                let address: IpAddr = ip
                    .as_str()
                    .and_then(|text| text.parse().ok())
                    .map_or_else(|| error("ip is not an IP address"), Ok)?;
                values.push((
                    IP_NETWORK_FIELD.to_owned(),
                    Value::String(ip_network_text(address)),
                ));
            }
        }
    }
    if let Some(user_agent) = object.get("user_agent").filter(|value| !value.is_null()) {
        values.push(("user_agent".to_owned(), user_agent.clone()));
    }
    if let Some(name) = object
        .get("actor")
        .and_then(|actor| actor.get("name"))
        .filter(|value| !value.is_null())
    {
        values.push(("actor.name".to_owned(), name.clone()));
    }
    if let Some(metadata) = object.get("metadata").and_then(Value::as_object) {
        let removed = removed_names(object)?;
        for (key, value) in metadata {
            let name = format!("{METADATA_PREFIX}{key}");
            // A member's own value may be null; only `removed` says it was taken away.
            if !removed.contains(&name) {
                values.push((name, value.clone()));
            }
        }
    }
    Ok(values)
}

/// The names in `removed` (empty when there is none).
fn removed_names(
    object: &Map<String, Value>,
) -> Result<std::collections::BTreeSet<String>, PersonalFieldError> {
    match object.get(REMOVED_FIELD) {
        None => Ok(Default::default()),
        Some(Value::Array(names)) => names
            .iter()
            .map(|name| {
                name.as_str()
                    .map(str::to_owned)
                    .map_or_else(|| error("removed holds something other than names"), Ok)
            })
            .collect(),
        Some(_) => error("removed is not a list of names"),
    }
}

/// The field salts of a version 2 event: derived from `salt`, or spelled out in `salts` once
/// something was removed.
enum FieldSalts<'object> {
    Derived(EventSalt),
    Kept(&'object Map<String, Value>),
}

impl<'object> FieldSalts<'object> {
    fn of(object: &'object Map<String, Value>) -> Result<Self, PersonalFieldError> {
        match (object.get(SALT_FIELD), object.get(SALTS_FIELD)) {
            (Some(salt), None) => salt
                .as_str()
                .and_then(EventSalt::parse_hex)
                .map(FieldSalts::Derived)
                .map_or_else(|| error("salt is not 32 hex digits"), Ok),
            (None, Some(Value::Object(salts))) => Ok(FieldSalts::Kept(salts)),
            (None, None) => Ok(FieldSalts::Kept(empty_map())),
            _ => error("an event has either salt or salts, not both"),
        }
    }

    fn field_salt(&self, name: &str) -> Result<Hash, PersonalFieldError> {
        match self {
            FieldSalts::Derived(salt) => Ok(salt.field_salt(name)),
            FieldSalts::Kept(salts) => salts
                .get(name)
                .and_then(Value::as_str)
                .and_then(parse_hex::<32>)
                .map_or_else(|| error(format!("the salt of {name} is missing")), Ok),
        }
    }
}

fn empty_map() -> &'static Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(Map::new)
}

fn canonical(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    crate::leaf::write_canonical_json(&mut out, value);
    out
}

fn commitment_text(field_salt: &Hash, value: &Value) -> String {
    crate::export_verification::hex(&commitment(field_salt, &canonical(value)))
}

/// Sets the value of the personal field `name` in `object` to `null` (a metadata member stays,
/// as `null`; `ip_network` goes only when the body spells it out).
fn set_removed(object: &mut Map<String, Value>, name: &str) {
    match name {
        "ip" | "user_agent" => {
            object.insert(name.to_owned(), Value::Null);
        }
        IP_NETWORK_FIELD => {
            if object.contains_key(IP_NETWORK_FIELD) {
                object.insert(IP_NETWORK_FIELD.to_owned(), Value::Null);
            }
        }
        "actor.name" => {
            if let Some(Value::Object(actor)) = object.get_mut("actor") {
                actor.insert("name".to_owned(), Value::Null);
            }
        }
        _ => {
            if let (Some(key), Some(Value::Object(metadata))) = (
                name.strip_prefix(METADATA_PREFIX),
                object.get_mut("metadata"),
            ) {
                metadata.insert(key.to_owned(), Value::Null);
            }
        }
    }
}

/// Removes the personal fields `removal` names from the stored event body `body` (module docs).
/// Returns the new body, or `None` when the event holds none of them any more.
pub fn remove_personal_fields(
    body: &str,
    removal: &PersonalFieldRemoval,
) -> Result<Option<String>, PersonalFieldError> {
    let mut object: Map<String, Value> = serde_json::from_str(body)
        .or_else(|parse_error| error(format!("the stored event is not JSON: {parse_error}")))?;
    let salted = is_salted(&object)?;
    let present = present_personal_values(&object)?;
    let doomed: Vec<&(String, Value)> = present
        .iter()
        .filter(|(name, _)| match name.as_str() {
            "ip" | "user_agent" | "actor.name" => true,
            // An event before leaf version 2 has a network only when aging spelled one out.
            IP_NETWORK_FIELD => {
                removal.address == AddressRemoval::Remove
                    && (salted || object.contains_key(IP_NETWORK_FIELD))
            }
            _ => name
                .strip_prefix(METADATA_PREFIX)
                .is_some_and(|key| removal.metadata_keys.iter().any(|declared| declared == key)),
        })
        .collect();
    if doomed.is_empty() {
        return Ok(None);
    }
    let mut removed = removed_names(&object)?;
    if salted {
        let field_salts = FieldSalts::of(&object)?;
        let mut salts = Map::new();
        for (name, _) in &present {
            salts.insert(
                name.clone(),
                Value::String(crate::export_verification::hex(
                    &field_salts.field_salt(name)?,
                )),
            );
        }
        let mut commitments: BTreeMap<String, Value> = match object.get(REMOVED_COMMITMENTS_FIELD) {
            None => BTreeMap::new(),
            Some(Value::Object(kept)) => kept.clone().into_iter().collect(),
            Some(_) => return error("removed_commitments is not an object"),
        };
        for (name, value) in &doomed {
            let field_salt = field_salts.field_salt(name)?;
            commitments.insert(
                name.clone(),
                Value::String(commitment_text(&field_salt, value)),
            );
            salts.remove(name);
        }
        object.remove(SALT_FIELD);
        object.remove(SALTS_FIELD);
        object.remove(REMOVED_COMMITMENTS_FIELD);
        if !salts.is_empty() {
            object.insert(SALTS_FIELD.to_owned(), Value::Object(salts));
        }
        object.insert(
            REMOVED_COMMITMENTS_FIELD.to_owned(),
            Value::Object(commitments.into_iter().collect()),
        );
    }
    // The network aging keeps is spelled out once the address it came from is gone.
    if removal.address == AddressRemoval::KeepNetwork
        && !object.contains_key(IP_NETWORK_FIELD)
        && let Some((_, network)) = present.iter().find(|(name, _)| name == IP_NETWORK_FIELD)
    {
        object.insert(IP_NETWORK_FIELD.to_owned(), network.clone());
    }
    for (name, _) in &doomed {
        set_removed(&mut object, name);
        removed.insert(name.clone());
    }
    object.insert(
        REMOVED_FIELD.to_owned(),
        Value::Array(removed.into_iter().map(Value::String).collect()),
    );
    Ok(Some(
        serde_json::to_string(&object).expect("a JSON object always serializes"),
    ))
}

/// How the leaf of a version 2 event was rebuilt.
#[derive(Debug)]
pub(crate) struct SaltedLeafObject {
    pub(crate) leaf_object: Map<String, Value>,
    pub(crate) removed_fields: usize,
}

/// The object whose JCS form is the leaf of the version 2 event `object` (module docs), checking
/// that every personal field either has a value with a salt or was removed with a commitment.
pub(crate) fn salted_leaf_object(
    object: &Map<String, Value>,
    fields_outside_the_leaf: &[&str],
) -> Result<SaltedLeafObject, PersonalFieldError> {
    if !is_salted(object)? {
        return error("the event is not of leaf version 2");
    }
    let field_salts = FieldSalts::of(object)?;
    let removed = removed_names(object)?;
    let commitments: &Map<String, Value> = match object.get(REMOVED_COMMITMENTS_FIELD) {
        None => empty_map(),
        Some(Value::Object(kept)) => kept,
        Some(_) => return error("removed_commitments is not an object"),
    };
    if commitments.len() != removed.len() || commitments.keys().any(|name| !removed.contains(name))
    {
        return error("removed does not name exactly the fields removed_commitments keeps");
    }
    let kept_commitment = |name: &str| -> Result<Option<Value>, PersonalFieldError> {
        match commitments.get(name) {
            None => Ok(None),
            Some(value) => value
                .as_str()
                .filter(|text| parse_hex::<32>(text).is_some())
                .map(|text| Some(Value::String(text.to_owned())))
                .map_or_else(
                    || {
                        error(format!(
                            "the commitment kept for {name} is not 64 hex digits"
                        ))
                    },
                    Ok,
                ),
        }
    };
    // A removed field's value must be gone; a field's value is replaced by its commitment.
    let committed =
        |name: &str, value: Option<&Value>| -> Result<Option<Value>, PersonalFieldError> {
            if let Some(kept) = kept_commitment(name)? {
                if value.is_some_and(|value| !value.is_null()) {
                    return error(format!("{name} is marked removed but still has a value"));
                }
                return Ok(Some(kept));
            }
            match value {
                None => Ok(None),
                Some(value) => Ok(Some(Value::String(commitment_text(
                    &field_salts.field_salt(name)?,
                    value,
                )))),
            }
        };
    // A removed field is `null` in the body, or absent once an event went through a decoder
    // that drops nulls; either way its kept commitment takes its place in the leaf.
    let present = |value: Option<&Value>| value.filter(|value| !value.is_null()).cloned();
    let mut leaf_object = Map::with_capacity(object.len() + 1);
    for (name, value) in object {
        if !fields_outside_the_leaf.contains(&name.as_str())
            && !VERIFICATION_MATERIAL_FIELDS.contains(&name.as_str())
            && name != IP_NETWORK_FIELD
        {
            leaf_object.insert(name.clone(), value.clone());
        }
    }
    for name in ["ip", "user_agent"] {
        match committed(name, present(object.get(name)).as_ref())? {
            Some(leaf_value) => leaf_object.insert(name.to_owned(), leaf_value),
            None => leaf_object.remove(name),
        };
    }
    let mut containers_present = 0usize;
    if let Some(actor) = leaf_object.get_mut("actor") {
        let actor = actor
            .as_object_mut()
            .map_or_else(|| error("actor is not an object"), Ok)?;
        containers_present += usize::from(commitments.contains_key("actor.name"));
        match committed("actor.name", present(actor.get("name")).as_ref())? {
            Some(leaf_name) => actor.insert("name".to_owned(), leaf_name),
            None => actor.remove("name"),
        };
    }
    if let Some(metadata) = leaf_object.get_mut("metadata") {
        let members = metadata
            .as_object_mut()
            .map_or_else(|| error("metadata is not an object"), Ok)?;
        let mut keys: Vec<String> = members.keys().cloned().collect();
        for name in commitments.keys() {
            if let Some(key) = name.strip_prefix(METADATA_PREFIX)
                && !members.contains_key(key)
            {
                keys.push(key.to_owned());
            }
        }
        for key in keys {
            let member_name = format!("{METADATA_PREFIX}{key}");
            containers_present += usize::from(commitments.contains_key(&member_name));
            // A member the producer sent as null is committed as null; a removed one is null too,
            // and only `removed` tells them apart.
            let value = if commitments.contains_key(&member_name) {
                present(members.get(&key))
            } else {
                members.get(&key).cloned()
            };
            let leaf_member = committed(&member_name, value.as_ref())?
                .expect("a member has a value or a kept commitment");
            members.insert(key, leaf_member);
        }
    }
    // The address's network sits beside it in the leaf, spelled out or derived from the address.
    let ip = present(object.get("ip"));
    let network = match present(object.get(IP_NETWORK_FIELD)) {
        Some(network) => Some(network),
        None => match &ip {
            None => None,
            Some(ip) => Some(Value::String(ip_network_text(
                ip.as_str()
                    .and_then(|text| text.parse::<IpAddr>().ok())
                    .map_or_else(|| error("ip is not an IP address"), Ok)?,
            ))),
        },
    };
    if let Some(leaf_network) = committed(IP_NETWORK_FIELD, network.as_ref())? {
        leaf_object.insert(IP_NETWORK_FIELD.to_owned(), leaf_network);
    }
    let top_level = ["ip", "user_agent", IP_NETWORK_FIELD]
        .iter()
        .filter(|name| commitments.contains_key(**name))
        .count();
    if top_level + containers_present != commitments.len() {
        return error("removed_commitments keeps a field the event does not have");
    }
    Ok(SaltedLeafObject {
        leaf_object,
        removed_fields: commitments.len(),
    })
}

/// Which events of an account one removal pass goes through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonalDataSelection {
    /// Aging: every event below `below_seq` (the first event received within the account's
    /// personal-data period). Done, the store remembers how far aging went.
    AgedBelow { below_seq: u64 },
    /// Erasure: every event whose `actor.id` is `actor_id`. Done, the store forgets the person's
    /// new-IP history as well.
    Actor { actor_id: String },
}

/// One bounded step of a removal: the events of `selection` from `from_seq` on, at most
/// `max_events` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalDataBatch {
    pub selection: PersonalDataSelection,
    pub removal: PersonalFieldRemoval,
    pub from_seq: u64,
    pub max_events: u32,
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PersonalDataRemoved {
    /// Events of the selection this step read.
    pub events_examined: u64,
    /// Events whose body changed.
    pub events_changed: u64,
    /// Where the next step starts; `None` once the selection is done.
    pub next_seq: Option<u64>,
}

/// The new bodies of the stored events `rows` (`(seq, body)`) after `removal`, only for events
/// that held something to remove.
pub fn bodies_after_removal(
    rows: &[(u64, String)],
    removal: &PersonalFieldRemoval,
) -> Result<Vec<(u64, String)>, (u64, PersonalFieldError)> {
    let mut changed = Vec::with_capacity(rows.len());
    for (seq, body) in rows {
        if let Some(new_body) =
            remove_personal_fields(body, removal).map_err(|error| (*seq, error))?
        {
            changed.push((*seq, new_body));
        }
    }
    Ok(changed)
}
