//! What a delivery looks like on the wire, free of I/O: the webhook's JSON body and its
//! HMAC-SHA256 signature, and the RFC 5424 syslog message with RFC 6587 octet-counting framing.
//!
//! Webhook receivers verify `Logbook-Signature: v1=<hex>` where `<hex>` is
//! `HMAC-SHA256(key = the destination's secret as UTF-8 text, message = timestamp + "." + body)`
//! and `timestamp` is the `Logbook-Timestamp` header (Unix seconds); the README shows a snippet.

use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::value::RawValue;
use sha2::Sha256;
use time::OffsetDateTime;

use crate::account::AccountId;
use crate::alerting::{DeliveryReason, NewDelivery};

pub const SIGNATURE_HEADER: &str = "Logbook-Signature";
pub const TIMESTAMP_HEADER: &str = "Logbook-Timestamp";
pub const DELIVERY_ID_HEADER: &str = "Logbook-Delivery-Id";

/// The private enterprise number in syslog structured-data ids. 32473 is the number IANA
/// reserves for documentation and examples (RFC 5612); Logbook has no number of its own.
pub const SYSLOG_ENTERPRISE_NUMBER: u32 = 32473;

#[derive(Serialize)]
struct RuleBody<'a> {
    id: &'a str,
    name: &'a str,
    query: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    threshold_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    threshold_window_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    matched_count: Option<u32>,
}

#[derive(Serialize)]
struct WebhookBody<'a> {
    delivery_id: &'a str,
    test: bool,
    account: &'a AccountId,
    /// `null` for a whole-log stream.
    rule: Option<RuleBody<'a>>,
    event: &'a RawValue,
}

fn rule_body(reason: &DeliveryReason) -> Option<RuleBody<'_>> {
    match reason {
        DeliveryReason::WholeLog => None,
        DeliveryReason::Rule {
            rule_id,
            rule_name,
            query_text,
            threshold,
            matched_count,
        } => Some(RuleBody {
            id: rule_id.as_str(),
            name: rule_name,
            query: query_text,
            threshold_count: threshold.map(|threshold| threshold.count),
            threshold_window_seconds: threshold.map(|threshold| threshold.window.as_secs()),
            matched_count: *matched_count,
        }),
    }
}

/// The webhook body of a delivery: `{"delivery_id","test":false,"account","rule","event"}`, the
/// event copied byte for byte as the API returns it.
pub fn webhook_body(delivery: &NewDelivery) -> Result<String, serde_json::Error> {
    let event: &RawValue = serde_json::from_str(&delivery.event_json)?;
    serde_json::to_string(&WebhookBody {
        delivery_id: &delivery.delivery_id,
        test: false,
        account: &delivery.account,
        rule: rule_body(&delivery.reason),
        event,
    })
}

/// The body of a "send test": `"test": true` and a made-up event that says it is a test.
pub fn webhook_test_body(
    delivery_id: &str,
    account: &AccountId,
    now: OffsetDateTime,
) -> Result<String, serde_json::Error> {
    let event = test_event_json(account, now);
    let event: &RawValue = serde_json::from_str(&event)?;
    serde_json::to_string(&WebhookBody {
        delivery_id,
        test: true,
        account,
        rule: None,
        event,
    })
}

/// The event a "send test" carries: action `logbook.destination.test`, seq 0.
pub fn test_event_json(account: &AccountId, now: OffsetDateTime) -> String {
    serde_json::json!({
        "seq": 0,
        "account": account,
        "created_at": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "action": "logbook.destination.test",
        "message": "Test delivery from Logbook: this destination is reachable",
    })
    .to_string()
}

/// `v1=` and the hex HMAC-SHA256 of `timestamp + "." + body` under `secret`.
pub fn webhook_signature(secret: &str, timestamp_seconds: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(timestamp_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let mut text = String::from("v1=");
    for byte in mac.finalize().into_bytes() {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// Whether `signature` (a header value) is `secret`'s signature of `body` at `timestamp_seconds`,
/// compared in constant time. For receivers written in Rust, and for Logbook's own tests.
pub fn verify_webhook_signature(
    secret: &str,
    timestamp_seconds: i64,
    body: &str,
    signature: &str,
) -> bool {
    let Some(hex) = signature.strip_prefix("v1=") else {
        return false;
    };
    let Some(expected) = decode_hex(hex) else {
        return false;
    };
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(timestamp_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    mac.verify_slice(&expected).is_ok()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(text.get(index..index + 2)?, 16).ok())
        .collect()
}

/// The structured-data ID of every syslog message Logbook sends: `logbook@32473`.
pub const SYSLOG_STRUCTURED_DATA_ID: &str = "logbook@32473";

/// The fields a syslog message carries beyond the event JSON.
pub struct SyslogFields<'a> {
    /// HOSTNAME: the Logbook instance (`[delivery] syslog_hostname`); `-` when empty.
    pub hostname: &'a str,
    /// APP-NAME (`[delivery] syslog_app_name`, `logbook` by default); `-` when empty.
    pub app_name: &'a str,
    pub account: &'a AccountId,
    pub event_seq: u64,
    pub action: &'a str,
    pub delivery_id: &'a str,
    pub rule_name: Option<&'a str>,
    pub created_at: OffsetDateTime,
    /// The MSG part: the event JSON.
    pub message: &'a str,
    pub test: bool,
}

/// One RFC 5424 message: facility 13 (log audit), severity warning (4) for a rule's alert and
/// informational (6) for a streamed event; HOSTNAME and APP-NAME as given (printable ASCII, at
/// most 255 and 48 characters); MSGID the action (as far as printable ASCII allows, at most 32);
/// structured data `[logbook@32473 account seq action delivery_id rule test]`; MSG the event JSON
/// in UTF-8 with a BOM.
pub fn syslog_message(fields: &SyslogFields<'_>) -> String {
    let severity = if fields.rule_name.is_some() { 4 } else { 6 };
    let priority = 13 * 8 + severity;
    let timestamp = syslog_timestamp(fields.created_at);
    let hostname = header_token(fields.hostname, 255);
    let app_name = header_token(fields.app_name, 48);
    let message_id = header_token(fields.action, 32);
    let mut structured = format!("[{SYSLOG_STRUCTURED_DATA_ID}");
    let mut parameter = |name: &str, value: &str| {
        structured.push(' ');
        structured.push_str(name);
        structured.push_str("=\"");
        structured.push_str(&escape_sd_param_value(value));
        structured.push('"');
    };
    parameter("account", fields.account.as_str());
    parameter("seq", &fields.event_seq.to_string());
    parameter("action", fields.action);
    parameter("delivery_id", fields.delivery_id);
    if let Some(rule_name) = fields.rule_name {
        parameter("rule", rule_name);
    }
    if fields.test {
        parameter("test", "true");
    }
    structured.push(']');
    format!(
        "<{priority}>1 {timestamp} {hostname} {app_name} - {message_id} {structured} \u{feff}{}",
        fields.message
    )
}

/// RFC 6587 octet-counting framing: `MSG-LEN SP SYSLOG-MSG`, the length in bytes.
pub fn octet_counted_frame(message: &str) -> Vec<u8> {
    let mut frame = format!("{} ", message.len()).into_bytes();
    frame.extend_from_slice(message.as_bytes());
    frame
}

/// Escapes a PARAM-VALUE (RFC 5424 section 6.3.3): `"`, `\` and `]` get a backslash.
pub fn escape_sd_param_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for character in value.chars() {
        if matches!(character, '"' | '\\' | ']') {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

/// A header field (HOSTNAME, MSGID): printable US-ASCII only (33..=126), at most `max` bytes,
/// other characters replaced by `_`; `-` (NILVALUE) when empty.
fn header_token(text: &str, max: usize) -> String {
    let token: String = text
        .chars()
        .map(|character| {
            if ('!'..='~').contains(&character) {
                character
            } else {
                '_'
            }
        })
        .take(max)
        .collect();
    if token.is_empty() {
        "-".to_owned()
    } else {
        token
    }
}

fn syslog_timestamp(at: OffsetDateTime) -> String {
    let utc = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second(),
        utc.microsecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::Threshold;
    use std::time::Duration;
    use time::macros::datetime;

    fn account() -> AccountId {
        AccountId::parse("acme").unwrap()
    }

    #[test]
    fn the_signature_matches_a_known_answer() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test
        assert_eq!(
            webhook_signature("whsec_test", 1_700_000_000, r#"{"a":1}"#),
            "v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn verification_accepts_the_signature_and_refuses_any_change() {
        let signature = webhook_signature("whsec_test", 1_700_000_000, "body");
        assert!(verify_webhook_signature(
            "whsec_test",
            1_700_000_000,
            "body",
            &signature
        ));
        assert!(!verify_webhook_signature(
            "whsec_test",
            1_700_000_001,
            "body",
            &signature
        ));
        assert!(!verify_webhook_signature(
            "whsec_other",
            1_700_000_000,
            "body",
            &signature
        ));
        assert!(!verify_webhook_signature(
            "whsec_test",
            1_700_000_000,
            "body!",
            &signature
        ));
        assert!(!verify_webhook_signature(
            "whsec_test",
            1_700_000_000,
            "body",
            "v1=zz"
        ));
    }

    #[test]
    fn the_webhook_body_carries_the_event_bytes_and_the_rule() {
        let delivery = NewDelivery {
            delivery_id: "dlv_1".into(),
            destination_id: "dst_1".into(),
            account: account(),
            event_seq: 3,
            event_json: r#"{"seq":3,"message":"<script>\"x\"</script>"}"#.into(),
            reason: DeliveryReason::Rule {
                rule_id: "rul_1".into(),
                rule_name: "logins".into(),
                query_text: "action:user.login".into(),
                threshold: Some(Threshold {
                    count: 5,
                    window: Duration::from_secs(600),
                }),
                matched_count: Some(6),
            },
            created_at: datetime!(2026-01-01 0:00 UTC),
        };
        let body = webhook_body(&delivery).unwrap();
        assert!(body.contains(r#""event":{"seq":3,"message":"<script>\"x\"</script>"}"#));
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["delivery_id"], "dlv_1");
        assert_eq!(parsed["test"], false);
        assert_eq!(parsed["rule"]["matched_count"], 6);
        assert_eq!(parsed["rule"]["threshold_window_seconds"], 600);
    }

    #[test]
    fn sd_param_values_escape_quote_backslash_and_closing_bracket() {
        assert_eq!(escape_sd_param_value(r#"a"b\c]d[e"#), r#"a\"b\\c\]d[e"#);
    }

    #[test]
    fn a_syslog_message_is_rfc_5424_with_hostile_text_escaped() {
        let message = syslog_message(&SyslogFields {
            hostname: "log book",
            app_name: "logbook",
            account: &account(),
            event_seq: 42,
            action: "user.login",
            delivery_id: "dlv_1",
            rule_name: Some(r#"evil"] [x a="b"#),
            created_at: datetime!(2026-03-04 05:06:07.123456789 UTC),
            message: r#"{"message":"line\nbreak"}"#,
            test: false,
        });
        assert_eq!(
            message,
            "<108>1 2026-03-04T05:06:07.123456Z log_book logbook - user.login \
             [logbook@32473 account=\"acme\" seq=\"42\" action=\"user.login\" delivery_id=\"dlv_1\" rule=\"evil\\\"\\] [x a=\\\"b\"] \
             \u{feff}{\"message\":\"line\\nbreak\"}"
        );
    }

    #[test]
    fn octet_counting_counts_bytes_not_characters() {
        assert_eq!(octet_counted_frame("é"), b"2 \xc3\xa9".to_vec());
    }

    #[test]
    fn msgid_is_cut_to_32_printable_ascii_characters() {
        let long_action = "a".repeat(40) + "é";
        let message = syslog_message(&SyslogFields {
            hostname: "",
            app_name: "audit app with a very long name that goes past forty-eight",
            account: &account(),
            event_seq: 0,
            action: &long_action,
            delivery_id: "d",
            rule_name: None,
            created_at: datetime!(2026-01-01 0:00 UTC),
            message: "{}",
            test: true,
        });
        assert!(message.starts_with(&format!(
            "<110>1 2026-01-01T00:00:00.000000Z - audit_app_with_a_very_long_name_that_goes_past_f - {} [",
            "a".repeat(32)
        )));
        assert!(message.contains(" test=\"true\"]"));
    }

    #[test]
    fn the_structured_data_id_names_the_documentation_enterprise_number() {
        assert_eq!(
            SYSLOG_STRUCTURED_DATA_ID,
            format!("logbook@{SYSLOG_ENTERPRISE_NUMBER}")
        );
    }
}
