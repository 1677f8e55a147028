//! The events this client sends and receives, as Logbook's HTTP API carries them. These are the
//! client's own wire types (it does not depend on the server's crates): what goes out is checked
//! by the server, which answers any problem per event.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{Error, ErrorDetail};

/// One event to send. Only `action` and `message` are required; the rest is what Logbook's
/// event model holds (see Logbook's README for every field's rules).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Event {
    /// The account, for a platform key that writes for several; an account key's events may
    /// leave it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// Dotted lowercase, e.g. `user.login`, `firewall.rule.update`.
    pub action: String,
    /// The sentence shown in the table, e.g. "Rebooted server web-1".
    pub message: String,
    /// When it happened, RFC 3339 with an offset; Logbook's receive time when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<Target>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// The idempotency key: a retry with the same key stores one event. The client gives every
    /// event without one a fresh time-ordered key (`fresh_idempotency_key`) before its first
    /// attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl Event {
    pub fn new(action: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            message: message.into(),
            ..Self::default()
        }
    }

    pub fn account(mut self, account: impl Into<String>) -> Self {
        self.account = Some(account.into());
        self
    }

    pub fn actor(mut self, actor: Actor) -> Self {
        self.actor = Some(actor);
        self
    }

    pub fn ip(mut self, ip: impl Into<String>) -> Self {
        self.ip = Some(ip.into());
        self
    }

    pub fn created_at(mut self, created_at: impl Into<String>) -> Self {
        self.created_at = Some(created_at.into());
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = Some(outcome);
        self
    }

    pub fn target(mut self, target: Target) -> Self {
        self.targets.push(target);
        self
    }

    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `user`, `api_key` or `system`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub actor_type: Option<String>,
}

impl Actor {
    pub fn user(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            name: None,
            actor_type: Some("user".to_owned()),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    #[serde(rename = "type")]
    pub target_type: String,
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    pub old: serde_json::Value,
    pub new: serde_json::Value,
}

/// One event ready to go: one JSON object that carries its idempotency key, kept as text so every
/// retry sends the very same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedEvent {
    json: String,
}

#[derive(Deserialize)]
struct KeyProbe<'text> {
    #[serde(borrow, default)]
    key: Option<&'text RawValue>,
}

impl PreparedEvent {
    /// Serializes `event`, giving it a fresh key (`fresh_idempotency_key`) when it has none.
    pub fn from_event(event: &Event) -> Result<Self, Error> {
        let mut event = event.clone();
        if event.key.is_none() {
            event.key = Some(fresh_idempotency_key());
        }
        serde_json::to_string(&event)
            .map(|json| Self { json })
            .map_err(|error| Error::Usage(format!("the event cannot be serialized: {error}")))
    }

    /// Takes one JSON object as written (a line of NDJSON, say) and gives it a fresh key as its
    /// first field when it has none. Its own bytes are kept otherwise: re-encoding could hide what
    /// the server checks, such as a duplicate field.
    pub fn from_json_object(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        if !text.starts_with('{') {
            return Err(Error::Usage(
                "each event must be one JSON object".to_owned(),
            ));
        }
        let probe: KeyProbe<'_> = serde_json::from_str(text)
            .map_err(|error| Error::Usage(format!("the line is not valid JSON: {error}")))?;
        if probe.key.is_some() {
            return Ok(Self {
                json: text.to_owned(),
            });
        }
        let key = fresh_idempotency_key();
        let rest = &text[1..];
        let mut json = String::with_capacity(text.len() + 48);
        json.push_str("{\"key\":\"");
        json.push_str(&key);
        json.push('"');
        if !rest.trim_start().starts_with('}') {
            json.push(',');
        }
        json.push_str(rest);
        Ok(Self { json })
    }

    pub fn json(&self) -> &str {
        &self.json
    }
}

/// A time-ordered (version 7) UUID: the milliseconds since the epoch, then random bits. Unique like
/// a random UUID, and the keys a producer sends grow with time, so the server's unique index of
/// keys (keyed by the key first) adds each one at its right edge instead of on a random page.
pub fn fresh_idempotency_key() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The receipt of a stored event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Receipt {
    pub id: String,
    /// The event's position in its account's log (0, 1, 2, ...).
    pub seq: u64,
    pub received_at: String,
    /// The event was stored before (same idempotency key and content); this is the original.
    #[serde(default)]
    pub duplicate: bool,
    /// Hex SHA-256 of the event's leaf in the account's tamper-evident log.
    #[serde(default)]
    pub leaf_hash: Option<String>,
    /// The account's log size after this event.
    #[serde(default)]
    pub tree_size: Option<u64>,
}

/// What the server said about one event of a batch.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum EventResult {
    Rejected { error: ErrorDetail },
    Accepted(Receipt),
}

/// An event as Logbook returns it (from a query, the live tail or an export), kept as the JSON
/// text the server sent so nothing of it is lost or reordered; `decode` reads it into any type.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    raw: Box<RawValue>,
}

impl StoredEvent {
    pub(crate) fn from_raw(raw: Box<RawValue>) -> Self {
        Self { raw }
    }

    pub(crate) fn from_json(text: &str) -> Result<Self, Error> {
        RawValue::from_string(text.to_owned())
            .map(Self::from_raw)
            .map_err(|error| Error::UnexpectedAnswer(format!("an event is not JSON: {error}")))
    }

    /// The event's JSON, byte for byte as the server sent it.
    pub fn json(&self) -> &str {
        self.raw.get()
    }

    /// Reads the event into `T` (a struct of the fields you need, or `serde_json::Value`).
    pub fn decode<'event, T: Deserialize<'event>>(&'event self) -> Result<T, Error> {
        serde_json::from_str(self.raw.get())
            .map_err(|error| Error::UnexpectedAnswer(format!("an event is malformed: {error}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_keys_are_distinct_version_7_uuids_that_sort_in_the_order_they_were_made() {
        let earlier = fresh_idempotency_key();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later = fresh_idempotency_key();
        for key in [&earlier, &later] {
            let parsed = uuid::Uuid::parse_str(key).unwrap();
            assert_eq!(parsed.get_version_num(), 7, "{key}");
            assert_eq!(
                key.as_str(),
                parsed.hyphenated().to_string(),
                "lower-case, hyphenated"
            );
        }
        assert!(
            earlier < later,
            "a later key sorts after an earlier one: {earlier} then {later}"
        );
        let many: std::collections::HashSet<String> =
            (0..1000).map(|_| fresh_idempotency_key()).collect();
        assert_eq!(many.len(), 1000, "keys made in the same millisecond differ");
    }

    #[test]
    fn events_without_a_key_get_a_fresh_one_and_keyed_ones_are_kept_byte_for_byte() {
        let prepared =
            PreparedEvent::from_json_object("{\"action\":\"a.b\",\"message\":\"m\"}\r\n").unwrap();
        let value: serde_json::Value = serde_json::from_str(prepared.json()).unwrap();
        assert_eq!(value["key"].as_str().unwrap().len(), 36);
        let again =
            PreparedEvent::from_json_object("{\"action\":\"a.b\",\"message\":\"m\"}").unwrap();
        assert_ne!(prepared, again, "each event gets its own key");
        assert_eq!(
            PreparedEvent::from_json_object("{}").unwrap().json().len(),
            "{\"key\":\"\"}".len() + 36
        );
        let line = r#"{"key":"k-1","action":"a.b","message":"m","message":"twice"}"#;
        assert_eq!(PreparedEvent::from_json_object(line).unwrap().json(), line);
        assert!(PreparedEvent::from_json_object("[1]").is_err());
        assert!(PreparedEvent::from_json_object("{\"action\":").is_err());
    }

    #[test]
    fn typed_events_serialize_to_logbooks_fields_with_a_key() {
        let event = Event::new("server.reboot", "Rebooted web-1")
            .actor(Actor::user("alice@acme.com"))
            .ip("203.0.113.9")
            .outcome(Outcome::Success);
        let prepared = PreparedEvent::from_event(&event).unwrap();
        let value: serde_json::Value = serde_json::from_str(prepared.json()).unwrap();
        assert_eq!(
            value["actor"],
            serde_json::json!({"id": "alice@acme.com", "type": "user"})
        );
        assert_eq!(value["outcome"], "success");
        assert!(value.get("targets").is_none());
        assert_eq!(value["key"].as_str().unwrap().len(), 36);
    }

    #[test]
    fn results_read_as_receipts_or_rejections() {
        let results: Vec<EventResult> = serde_json::from_str(
            r#"[{"id":"e1","seq":4,"received_at":"2024-06-01T00:00:00Z","duplicate":true},
                {"error":{"code":"invalid_field","message":"bad","field":"/events/1/ip"}}]"#,
        )
        .unwrap();
        assert!(
            matches!(&results[0], EventResult::Accepted(receipt) if receipt.duplicate && receipt.seq == 4)
        );
        assert!(
            matches!(&results[1], EventResult::Rejected { error } if error.code == "invalid_field")
        );
    }
}
