//! Alert rules and destinations, free of I/O: what a rule is (a saved query, optionally with a
//! threshold over a sliding window), where deliveries go (`DestinationKind`), the per-destination
//! cursor the delivery worker advances, the retry schedule (exponential backoff with jitter), the
//! stable delivery id, and `AlertingStore`, the part of the `Store` that keeps all of it (reached
//! through `Store::alerting`).
//!
//! Delivery is at-least-once: a delivery row (the outbox) is written in the same transaction that
//! moves the destination's cursor past the event, and sending happens afterwards. A crash between
//! the two re-sends at most; the delivery id stays the same, so receivers can drop repeats.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::account::AccountId;
use crate::event::StoredEvent;
use crate::ids::{AlertRuleId, DestinationId};
use crate::query::{self, Query, QueryError};

/// Most events a threshold may ask for ("more than N"): the window keeps N + 1 timestamps.
pub const MAX_THRESHOLD_COUNT: u32 = 10_000;
/// Longest threshold window: one week.
pub const MAX_THRESHOLD_WINDOW: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Longest rule or destination name, in bytes.
pub const MAX_NAME_BYTES: usize = 200;

/// "More than `count` matching events within `window`".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    pub count: u32,
    pub window: Duration,
}

impl Threshold {
    /// Checks the bounds: `count` 1 ..= `MAX_THRESHOLD_COUNT`, `window` 1 s ..= one week.
    pub fn new(count: u32, window: Duration) -> Result<Self, AlertingInputError> {
        if count == 0 || count > MAX_THRESHOLD_COUNT {
            return Err(AlertingInputError {
                field: "threshold_count",
                message: format!("the threshold must be between 1 and {MAX_THRESHOLD_COUNT}"),
            });
        }
        if window < Duration::from_secs(1) || window > MAX_THRESHOLD_WINDOW {
            return Err(AlertingInputError {
                field: "threshold_window_minutes",
                message: "the window must be between 1 second and 7 days".to_owned(),
            });
        }
        Ok(Self { count, window })
    }
}

/// Bad input for a rule or destination, naming the form field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct AlertingInputError {
    pub field: &'static str,
    pub message: String,
}

/// Parses a rule's query with the search box's parser (and its error messages). An empty query
/// is refused: a rule that matches everything is what a whole-log stream is for.
pub fn parse_rule_query(text: &str) -> Result<Query, QueryError> {
    let parsed = query::parse(text)?;
    if parsed.is_empty() {
        return Err(QueryError {
            position: 0,
            term: String::new(),
            message: "a rule needs a query; stream the whole log with a destination instead"
                .to_owned(),
        });
    }
    Ok(parsed)
}

/// Checks a display name: 1 ..= `MAX_NAME_BYTES` bytes after trimming, no control characters.
pub fn validate_name(field: &'static str, text: &str) -> Result<String, AlertingInputError> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.len() > MAX_NAME_BYTES {
        return Err(AlertingInputError {
            field,
            message: format!("give a name of 1 to {MAX_NAME_BYTES} bytes"),
        });
    }
    if trimmed.chars().any(char::is_control) {
        return Err(AlertingInputError {
            field,
            message: "a name may not contain control characters".to_owned(),
        });
    }
    Ok(trimmed.to_owned())
}

/// Most bytes of PEM a syslog-over-TLS destination may carry as its own trusted CA certificates.
pub const MAX_TRUSTED_CA_PEM_BYTES: usize = 32 * 1024;

/// Where a destination sends, and how the receiver acknowledges (README, "What each destination
/// type guarantees").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationKind {
    /// An HTTP(S) URL that receives a signed JSON POST per delivery; a 2xx answer acknowledges it.
    Webhook { url: String },
    /// A syslog collector reached over plain TCP (RFC 5424 messages, RFC 6587 octet counting).
    /// TCP syslog has no acknowledgement; the collector closing its side after Logbook closed its
    /// own is the only sign that it read everything sent before.
    Syslog { host: String, port: u16 },
    /// The same messages and framing over TLS (RFC 5425), checked against the public web PKI
    /// roots and, when given, the destination's own CA certificates (PEM).
    SyslogTls {
        host: String,
        port: u16,
        trusted_ca_pem: Option<String>,
    },
    /// The same RFC 5424 messages as RELP `syslog` commands, each acknowledged by the collector
    /// (`rsp 200`), over plain TCP.
    Relp { host: String, port: u16 },
}

/// Parses `host:port` (`[v6]:port` for IPv6 literals), as every syslog kind takes it.
fn parse_host_and_port(address: &str) -> Result<(String, u16), AlertingInputError> {
    let invalid = || AlertingInputError {
        field: "address",
        message: "give the collector as host:port, e.g. siem.example.com:514".to_owned(),
    };
    let address = address.trim();
    let (host, port) = address.rsplit_once(':').ok_or_else(invalid)?;
    let host = host
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host);
    let port: u16 = port.parse().map_err(|_| invalid())?;
    let host_is_plausible = !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || ".-:".contains(character));
    if port == 0 || !host_is_plausible {
        return Err(invalid());
    }
    Ok((host.to_owned(), port))
}

/// Checks the shape of PEM certificates (their content is parsed by the sender, which knows
/// X.509): at most `MAX_TRUSTED_CA_PEM_BYTES`, at least one `CERTIFICATE` block, nothing but
/// printable ASCII and line breaks. Blank text means none.
pub fn validate_trusted_ca_pem(text: &str) -> Result<Option<String>, AlertingInputError> {
    let invalid = |message: &str| AlertingInputError {
        field: "trusted_ca_pem",
        message: message.to_owned(),
    };
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_TRUSTED_CA_PEM_BYTES {
        return Err(invalid(&format!(
            "the CA certificates are longer than {MAX_TRUSTED_CA_PEM_BYTES} bytes"
        )));
    }
    if !text.contains("-----BEGIN CERTIFICATE-----") {
        return Err(invalid(
            "give one or more PEM certificates (-----BEGIN CERTIFICATE----- ...)",
        ));
    }
    if !text
        .chars()
        .all(|character| matches!(character, ' '..='~' | '\n' | '\r' | '\t'))
    {
        return Err(invalid(
            "PEM certificates hold only ASCII text and line breaks",
        ));
    }
    Ok(Some(text.replace("\r\n", "\n")))
}

impl DestinationKind {
    /// Parses a webhook URL: `https://` (or `http://`, which the sender refuses unless private
    /// destinations are allowed), with a host, at most 2048 bytes, no credentials in it.
    pub fn webhook(url: &str) -> Result<Self, AlertingInputError> {
        let url = url.trim();
        let invalid = |message: &str| AlertingInputError {
            field: "url",
            message: message.to_owned(),
        };
        if url.len() > 2048 {
            return Err(invalid("the URL is longer than 2048 bytes"));
        }
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"))
            .ok_or_else(|| invalid("the URL must start with https://"))?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.is_empty() {
            return Err(invalid("the URL has no host"));
        }
        if authority.contains('@') {
            return Err(invalid("the URL may not carry a user name or password"));
        }
        if url
            .chars()
            .any(|character| character.is_whitespace() || character.is_control())
        {
            return Err(invalid(
                "the URL may not contain spaces or control characters",
            ));
        }
        Ok(DestinationKind::Webhook {
            url: url.to_owned(),
        })
    }

    /// Parses a plain TCP syslog collector's `host:port` (`[v6]:port` for IPv6 literals).
    pub fn syslog(address: &str) -> Result<Self, AlertingInputError> {
        let (host, port) = parse_host_and_port(address)?;
        Ok(DestinationKind::Syslog { host, port })
    }

    /// Parses a TLS syslog collector's `host:port` and the PEM CA certificates it may be signed
    /// by besides the public roots (blank for none).
    pub fn syslog_tls(address: &str, trusted_ca_pem: &str) -> Result<Self, AlertingInputError> {
        let (host, port) = parse_host_and_port(address)?;
        Ok(DestinationKind::SyslogTls {
            host,
            port,
            trusted_ca_pem: validate_trusted_ca_pem(trusted_ca_pem)?,
        })
    }

    /// Parses a RELP collector's `host:port`.
    pub fn relp(address: &str) -> Result<Self, AlertingInputError> {
        let (host, port) = parse_host_and_port(address)?;
        Ok(DestinationKind::Relp { host, port })
    }

    /// `"webhook"`, `"syslog"`, `"syslog_tls"` or `"relp"`, as stored and chosen on the form.
    pub fn kind_name(&self) -> &'static str {
        match self {
            DestinationKind::Webhook { .. } => "webhook",
            DestinationKind::Syslog { .. } => "syslog",
            DestinationKind::SyslogTls { .. } => "syslog_tls",
            DestinationKind::Relp { .. } => "relp",
        }
    }

    /// What people read on the page: "webhook", "syslog over TCP", ...
    pub fn description(&self) -> &'static str {
        match self {
            DestinationKind::Webhook { .. } => "webhook",
            DestinationKind::Syslog { .. } => "syslog over TCP",
            DestinationKind::SyslogTls { .. } => "syslog over TLS",
            DestinationKind::Relp { .. } => "RELP",
        }
    }

    /// The collector's host and port, for every syslog kind.
    pub fn host_and_port(&self) -> Option<(&str, u16)> {
        match self {
            DestinationKind::Webhook { .. } => None,
            DestinationKind::Syslog { host, port }
            | DestinationKind::SyslogTls { host, port, .. }
            | DestinationKind::Relp { host, port } => Some((host, *port)),
        }
    }

    /// The URL or `host:port`, as stored and shown.
    pub fn address(&self) -> String {
        match self {
            DestinationKind::Webhook { url } => url.clone(),
            _ => match self.host_and_port() {
                Some((host, port)) if host.contains(':') => format!("[{host}]:{port}"),
                Some((host, port)) => format!("{host}:{port}"),
                None => String::new(),
            },
        }
    }

    /// The CA certificates a TLS destination trusts besides the public roots, as stored.
    pub fn trusted_ca_pem(&self) -> Option<&str> {
        match self {
            DestinationKind::SyslogTls { trusted_ca_pem, .. } => trusted_ca_pem.as_deref(),
            _ => None,
        }
    }

    /// Rebuilds a kind from its stored `kind_name`, `address` and trusted CA certificates.
    pub fn from_stored(
        kind_name: &str,
        address: &str,
        trusted_ca_pem: Option<&str>,
    ) -> Result<Self, AlertingInputError> {
        match kind_name {
            "webhook" => Self::webhook(address),
            "syslog" => Self::syslog(address),
            "syslog_tls" => Self::syslog_tls(address, trusted_ca_pem.unwrap_or_default()),
            "relp" => Self::relp(address),
            other => Err(AlertingInputError {
                field: "kind",
                message: format!("unknown destination kind {other:?}"),
            }),
        }
    }
}

/// A destination's signing secret (webhooks): shown once on creation, never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(pub String);

impl fmt::Debug for SigningSecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("SigningSecret(<redacted>)")
    }
}

impl SigningSecret {
    /// `whsec_` and 64 hex digits of the 32 random bytes the caller supplies.
    pub fn from_random_bytes(bytes: [u8; 32]) -> Self {
        let mut text = String::from("whsec_");
        for byte in bytes {
            text.push_str(&format!("{byte:02x}"));
        }
        SigningSecret(text)
    }
}

#[derive(Debug, Clone)]
pub struct NewDestination {
    /// `dst_...`, chosen by the caller.
    pub destination_id: DestinationId,
    pub account: AccountId,
    pub name: String,
    pub kind: DestinationKind,
    pub secret: SigningSecret,
    /// Every event of the account is delivered, rule or not (a SIEM stream).
    pub streams_whole_log: bool,
    /// The first `seq` the destination will look at: the account's next seq at creation, so a new
    /// destination does not replay history.
    pub start_seq: u64,
    pub created_at: OffsetDateTime,
}

/// A destination with its health.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestinationRecord {
    pub destination_id: DestinationId,
    pub account: AccountId,
    pub name: String,
    pub kind: DestinationKind,
    pub secret: SigningSecret,
    pub streams_whole_log: bool,
    pub created_at: OffsetDateTime,
    pub last_success_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    pub last_error_at: Option<OffsetDateTime>,
    /// Deliveries neither sent nor dead.
    pub pending_count: u64,
    pub dead_letter_count: u64,
    /// When the oldest pending delivery was queued (`None` without a pending one).
    pub oldest_pending_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlertRule {
    /// `rul_...`, chosen by the caller.
    pub rule_id: AlertRuleId,
    pub account: AccountId,
    pub name: String,
    /// The query text as typed (already checked with `parse_rule_query`).
    pub query_text: String,
    pub threshold: Option<Threshold>,
    /// Destinations of the same account; at least one.
    pub destination_ids: Vec<DestinationId>,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertRuleRecord {
    pub rule_id: AlertRuleId,
    pub account: AccountId,
    pub name: String,
    pub query_text: String,
    pub threshold: Option<Threshold>,
    pub destination_ids: Vec<DestinationId>,
    pub enabled: bool,
    pub created_at: OffsetDateTime,
}

/// Where a destination has got to in its account's log, and the sliding windows of its threshold
/// rules, stored together so they advance in one transaction with the deliveries they produce.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryCursor {
    /// The next `seq` to examine.
    pub next_seq: u64,
    /// Per threshold rule id.
    #[serde(default)]
    pub threshold_windows: BTreeMap<AlertRuleId, ThresholdWindow>,
}

impl DeliveryCursor {
    pub fn starting_at(next_seq: u64) -> Self {
        Self {
            next_seq,
            threshold_windows: BTreeMap::new(),
        }
    }

    /// The windows as stored (JSON text).
    pub fn windows_to_text(&self) -> String {
        serde_json::to_string(&self.threshold_windows).expect("windows serialize")
    }

    /// Rebuilds a cursor from its stored parts; unreadable windows start empty (a threshold may
    /// then fire late once, never lose an event).
    pub fn from_stored(next_seq: u64, windows_text: &str) -> Self {
        Self {
            next_seq,
            threshold_windows: serde_json::from_str(windows_text).unwrap_or_default(),
        }
    }
}

/// The recent matching events of one threshold rule, by `received_at` (Logbook's clock, so a
/// producer's back-dated `created_at` cannot open or close a window), plus when the rule may fire
/// again. It holds at most `count + 1` timestamps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThresholdWindow {
    pub recent_micros: VecDeque<i64>,
    /// After firing, the rule stays quiet until this time: once per window crossing.
    pub quiet_until_micros: Option<i64>,
}

impl ThresholdWindow {
    /// Records one matching event at `at_micros` and answers whether the rule fires now: more
    /// than `threshold.count` matches within `threshold.window` ending at this event, and not
    /// within the quiet window of the last time it fired.
    pub fn record_match(&mut self, threshold: Threshold, at_micros: i64) -> Option<u32> {
        let window_micros = i64::try_from(threshold.window.as_micros()).unwrap_or(i64::MAX);
        let window_start = at_micros.saturating_sub(window_micros);
        self.recent_micros.push_back(at_micros);
        while self
            .recent_micros
            .front()
            .is_some_and(|&oldest| oldest <= window_start)
        {
            self.recent_micros.pop_front();
        }
        while self.recent_micros.len() > threshold.count as usize + 1 {
            self.recent_micros.pop_front();
        }
        if self
            .quiet_until_micros
            .is_some_and(|until| at_micros < until)
        {
            return None;
        }
        if self.recent_micros.len() > threshold.count as usize {
            self.quiet_until_micros = Some(at_micros.saturating_add(window_micros));
            // Start counting the next crossing afresh.
            let matched = self.recent_micros.len() as u32;
            self.recent_micros.clear();
            return Some(matched);
        }
        None
    }
}

/// Why an event is delivered to a destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryReason {
    /// The destination streams the whole log.
    WholeLog,
    /// A rule matched (for threshold rules: the event that crossed it, with the count).
    Rule {
        rule_id: AlertRuleId,
        rule_name: String,
        query_text: String,
        threshold: Option<Threshold>,
        matched_count: Option<u32>,
    },
}

/// One delivery to write to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub delivery_id: String,
    pub destination_id: DestinationId,
    pub account: AccountId,
    pub event_seq: u64,
    /// The event's JSON as the API returns it.
    pub event_json: String,
    pub reason: DeliveryReason,
    pub created_at: OffsetDateTime,
}

/// A delivery as the outbox holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub delivery: NewDelivery,
    /// Failed sends so far.
    pub attempts: u32,
    pub next_attempt_at: OffsetDateTime,
    pub delivered_at: Option<OffsetDateTime>,
    pub dead_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

/// The stable id of delivering event `seq` to `destination_id` because of `rule_id` (or the
/// whole-log stream): the same inputs give the same id on every node and after every restart,
/// so a receiver can drop repeats. `dlv_` and 32 hex digits of a SHA-256.
pub fn delivery_id(
    destination_id: &DestinationId,
    rule_id: Option<&AlertRuleId>,
    event_seq: u64,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"logbook delivery v1\0");
    hasher.update(destination_id.as_str().as_bytes());
    hasher.update(b"\0");
    hasher.update(
        rule_id
            .map_or("*whole-log*", AlertRuleId::as_str)
            .as_bytes(),
    );
    hasher.update(b"\0");
    hasher.update(event_seq.to_be_bytes());
    let digest = hasher.finalize();
    let mut text = String::from("dlv_");
    for byte in &digest[..16] {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// How retries are spaced and when a delivery gives up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetrySchedule {
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Failed attempts after which a delivery goes to the dead-letter list.
    pub max_attempts: u32,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60 * 60),
            max_attempts: 10,
        }
    }
}

impl RetrySchedule {
    /// The wait after the `failed_attempts`-th failure (1-based), or `None` once the delivery
    /// has failed `max_attempts` times. The wait doubles per failure up to `max_backoff`, and
    /// `jitter` (0.0 ..= 1.0, random in production) takes it down by up to half, so receivers that
    /// recover are not hit by every node at the same instant.
    pub fn backoff_after(&self, failed_attempts: u32, jitter: f64) -> Option<Duration> {
        if failed_attempts >= self.max_attempts {
            return None;
        }
        Some(self.wait_after(failed_attempts, jitter))
    }

    /// The same wait with no attempt limit: how long a destination's lane pauses after its
    /// `failures`-th consecutive failure to reach the receiver at all.
    pub fn wait_after(&self, failures: u32, jitter: f64) -> Duration {
        let exponent = failures.saturating_sub(1).min(30);
        let full = self
            .initial_backoff
            .saturating_mul(1_u32 << exponent)
            .min(self.max_backoff);
        let jitter = jitter.clamp(0.0, 1.0);
        full.mul_f64(1.0 - jitter / 2.0)
    }
}

/// A rule the worker evaluates: its record and its parsed query.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub record: AlertRuleRecord,
    pub query: Query,
}

impl CompiledRule {
    /// `None` when the stored query no longer parses (a newer grammar was rolled back): such a
    /// rule is skipped and logged, never guessed at.
    pub fn compile(record: AlertRuleRecord) -> Option<Self> {
        let query = parse_rule_query(&record.query_text).ok()?;
        Some(Self { record, query })
    }
}

/// Which deliveries one event produces for one destination, updating the threshold windows in
/// `cursor`. `rules` are the enabled rules of the destination's account that name it.
pub fn deliveries_for_event(
    destination: &DestinationRecord,
    rules: &[CompiledRule],
    cursor: &mut DeliveryCursor,
    event: &StoredEvent,
    event_json: &str,
    now: OffsetDateTime,
) -> Vec<NewDelivery> {
    let mut deliveries = Vec::new();
    let make = |rule_id: Option<&AlertRuleId>, reason: DeliveryReason| NewDelivery {
        delivery_id: delivery_id(&destination.destination_id, rule_id, event.seq),
        destination_id: destination.destination_id.clone(),
        account: destination.account.clone(),
        event_seq: event.seq,
        event_json: event_json.to_owned(),
        reason,
        created_at: now,
    };
    if destination.streams_whole_log {
        deliveries.push(make(None, DeliveryReason::WholeLog));
    }
    for rule in rules {
        if !rule.query.matches(event) {
            continue;
        }
        let matched_count = match rule.record.threshold {
            None => None,
            Some(threshold) => {
                let window = cursor
                    .threshold_windows
                    .entry(rule.record.rule_id.clone())
                    .or_default();
                match window.record_match(threshold, crate::event::unix_micros(event.received_at)) {
                    Some(count) => Some(count),
                    None => continue,
                }
            }
        };
        deliveries.push(make(
            Some(&rule.record.rule_id),
            DeliveryReason::Rule {
                rule_id: rule.record.rule_id.clone(),
                rule_name: rule.record.name.clone(),
                query_text: rule.record.query_text.clone(),
                threshold: rule.record.threshold,
                matched_count,
            },
        ));
    }
    deliveries
}

/// Maps a stored rule's threshold columns back to a `Threshold` (`None` when either is absent).
pub fn threshold_from_stored(count: Option<i64>, window_seconds: Option<i64>) -> Option<Threshold> {
    Some(Threshold {
        count: u32::try_from(count?).ok()?,
        window: Duration::from_secs(u64::try_from(window_seconds?).ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE_MICROS: i64 = 60_000_000;

    fn five_in_ten_minutes() -> Threshold {
        Threshold::new(5, Duration::from_secs(600)).unwrap()
    }

    #[test]
    fn a_threshold_fires_on_the_event_that_makes_more_than_count_within_the_window() {
        let mut window = ThresholdWindow::default();
        for minute in 0..5 {
            assert_eq!(
                window.record_match(five_in_ten_minutes(), minute * MINUTE_MICROS),
                None
            );
        }
        assert_eq!(
            window.record_match(five_in_ten_minutes(), 5 * MINUTE_MICROS),
            Some(6)
        );
    }

    #[test]
    fn a_threshold_fires_once_per_window_crossing_not_on_every_later_match() {
        let mut window = ThresholdWindow::default();
        let mut fired_at = Vec::new();
        // One match every 10 seconds for 30 minutes: far above 5 per 10 minutes throughout.
        for step in 0..180 {
            let at = step * 10_000_000;
            if window.record_match(five_in_ten_minutes(), at).is_some() {
                fired_at.push(at / MINUTE_MICROS);
            }
        }
        assert_eq!(fired_at, vec![0, 10, 20]);
    }

    #[test]
    fn matches_spread_wider_than_the_window_never_fire() {
        let mut window = ThresholdWindow::default();
        for step in 0..100 {
            // One every 2.5 minutes: at most 4 in any 10 minutes.
            let fired = window.record_match(five_in_ten_minutes(), step * 150_000_000);
            assert_eq!(fired, None, "step {step}");
        }
        assert!(window.recent_micros.len() <= 6);
    }

    #[test]
    fn threshold_windows_survive_a_round_trip_through_their_stored_text() {
        let mut cursor = DeliveryCursor::starting_at(7);
        let mut window = ThresholdWindow::default();
        window.record_match(five_in_ten_minutes(), 42);
        cursor.threshold_windows.insert("rul_a".into(), window);
        let restored = DeliveryCursor::from_stored(7, &cursor.windows_to_text());
        assert_eq!(restored, cursor);
        assert_eq!(
            DeliveryCursor::from_stored(3, "not json"),
            DeliveryCursor::starting_at(3)
        );
    }

    #[test]
    fn threshold_bounds_name_the_offending_field() {
        assert_eq!(
            Threshold::new(0, Duration::from_secs(60))
                .unwrap_err()
                .field,
            "threshold_count"
        );
        assert_eq!(
            Threshold::new(5, Duration::from_secs(8 * 24 * 3600))
                .unwrap_err()
                .field,
            "threshold_window_minutes"
        );
    }

    #[test]
    fn delivery_ids_are_stable_and_differ_by_destination_rule_and_seq() {
        let first = delivery_id(&"dst_a".into(), Some(&"rul_a".into()), 7);
        assert_eq!(
            first,
            delivery_id(&"dst_a".into(), Some(&"rul_a".into()), 7)
        );
        assert!(first.starts_with("dlv_") && first.len() == 36);
        assert_ne!(
            first,
            delivery_id(&"dst_b".into(), Some(&"rul_a".into()), 7)
        );
        assert_ne!(
            first,
            delivery_id(&"dst_a".into(), Some(&"rul_b".into()), 7)
        );
        assert_ne!(
            first,
            delivery_id(&"dst_a".into(), Some(&"rul_a".into()), 8)
        );
        assert_ne!(first, delivery_id(&"dst_a".into(), None, 7));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_gives_up_after_max_attempts() {
        let schedule = RetrySchedule {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            max_attempts: 6,
        };
        let waits: Vec<_> = (1..=6)
            .map(|attempt| schedule.backoff_after(attempt, 0.0))
            .collect();
        assert_eq!(
            waits,
            vec![
                Some(Duration::from_secs(1)),
                Some(Duration::from_secs(2)),
                Some(Duration::from_secs(4)),
                Some(Duration::from_secs(8)),
                Some(Duration::from_secs(10)),
                None,
            ]
        );
        assert_eq!(
            schedule.backoff_after(3, 1.0),
            Some(Duration::from_secs(2)),
            "full jitter halves the wait"
        );
        assert_eq!(
            RetrySchedule {
                max_attempts: 100,
                ..schedule
            }
            .backoff_after(90, 0.5),
            Some(Duration::from_millis(7500)),
            "large attempt counts do not overflow"
        );
    }

    #[test]
    fn webhook_urls_must_be_http_with_a_host_and_no_credentials() {
        assert!(DestinationKind::webhook("https://hooks.example.com/x").is_ok());
        for bad in [
            "ftp://example.com",
            "https://",
            "https://user:pw@example.com/",
            "https://exa mple.com/",
            "example.com",
        ] {
            let error = DestinationKind::webhook(bad).unwrap_err();
            assert_eq!(error.field, "url", "{bad}");
        }
    }

    #[test]
    fn syslog_addresses_parse_hosts_ports_and_bracketed_ipv6() {
        assert_eq!(
            DestinationKind::syslog("siem.example.com:514").unwrap(),
            DestinationKind::Syslog {
                host: "siem.example.com".into(),
                port: 514
            }
        );
        let v6 = DestinationKind::syslog("[2001:db8::1]:514").unwrap();
        assert_eq!(v6.address(), "[2001:db8::1]:514");
        assert_eq!(
            DestinationKind::from_stored("syslog", &v6.address(), None).unwrap(),
            v6
        );
        for bad in [
            "siem.example.com",
            "host:0",
            "host:99999",
            ":514",
            "bad host:514",
        ] {
            assert_eq!(
                DestinationKind::syslog(bad).unwrap_err().field,
                "address",
                "{bad}"
            );
        }
    }

    #[test]
    fn tls_and_relp_destinations_round_trip_through_their_stored_form() {
        let pem = "-----BEGIN CERTIFICATE-----\r\nMIIB\r\n-----END CERTIFICATE-----\r\n";
        let tls = DestinationKind::syslog_tls("siem.example.com:6514", pem).unwrap();
        assert_eq!(tls.kind_name(), "syslog_tls");
        assert_eq!(
            tls.trusted_ca_pem(),
            Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----")
        );
        assert_eq!(
            DestinationKind::from_stored(tls.kind_name(), &tls.address(), tls.trusted_ca_pem())
                .unwrap(),
            tls
        );
        let relp = DestinationKind::relp("[2001:db8::1]:2514").unwrap();
        assert_eq!(relp.address(), "[2001:db8::1]:2514");
        assert_eq!(relp.host_and_port(), Some(("2001:db8::1", 2514)));
        assert_eq!(
            DestinationKind::from_stored("relp", &relp.address(), None).unwrap(),
            relp
        );
        assert_eq!(
            DestinationKind::syslog_tls("siem.example.com:6514", "  ")
                .unwrap()
                .trusted_ca_pem(),
            None
        );
        for bad in ["not a certificate", "-----BEGIN CERTIFICATE-----\u{202e}"] {
            assert_eq!(
                DestinationKind::syslog_tls("siem.example.com:6514", bad)
                    .unwrap_err()
                    .field,
                "trusted_ca_pem",
                "{bad}"
            );
        }
        let too_long = format!(
            "-----BEGIN CERTIFICATE-----{}",
            "A".repeat(MAX_TRUSTED_CA_PEM_BYTES)
        );
        assert!(validate_trusted_ca_pem(&too_long).is_err());
        assert!(DestinationKind::from_stored("carrier_pigeon", "a:1", None).is_err());
    }

    #[test]
    fn an_empty_rule_query_is_refused_and_bad_ones_keep_the_search_box_error() {
        assert!(parse_rule_query("   ").is_err());
        let error = parse_rule_query("acton:user.login").unwrap_err();
        assert_eq!(error, query::parse("acton:user.login").unwrap_err());
        assert!(parse_rule_query("is:new-ip action:user.login").is_ok());
    }

    #[test]
    fn signing_secrets_are_redacted_in_debug_output() {
        let secret = SigningSecret::from_random_bytes([7; 32]);
        assert!(secret.0.starts_with("whsec_0707"));
        assert!(!format!("{secret:?}").contains("0707"));
    }
}
