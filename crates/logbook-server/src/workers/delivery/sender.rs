//! What every transport shares: the SSRF guard, the errors a send ends with, and turning a
//! delivery into what goes on the wire (a signed webhook body or an RFC 5424 line); plus `send`,
//! the one-off "Send test" through the same transports. The guard runs whenever a connection is
//! made, on the addresses DNS gives then (not only when the destination was created), and the
//! connection goes to exactly the address that was checked, so a name that later resolves to
//! `127.0.0.1` or `169.254.169.254` is refused.

use logbook_core::ids::DestinationId;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use logbook_core::AccountId;
use logbook_core::alerting::{DeliveryReason, DestinationKind, DestinationRecord, NewDelivery};
use logbook_core::delivery_format::{
    self, DELIVERY_ID_HEADER, SIGNATURE_HEADER, SyslogFields, TIMESTAMP_HEADER,
};
use time::OffsetDateTime;
use tokio::net::TcpStream;

use super::DeliverySettings;
use super::transport::Transport;

/// Most bytes of a receiver's answer kept for the error text (never rendered unescaped).
const MAX_RESPONSE_BYTES_KEPT: usize = 512;

/// Why a send failed, as shown on the page and kept on the delivery.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("refused by the destination guard: {0}")]
    Refused(String),
    #[error("could not resolve {host}: {message}")]
    Resolve { host: String, message: String },
    #[error("could not connect or send: {0}")]
    Transport(String),
    #[error("the receiver answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("timed out after {0:?}")]
    TimedOut(Duration),
    #[error("TLS failed: {0}")]
    Tls(String),
    #[error("the collector broke the protocol: {0}")]
    Protocol(String),
    #[error("the delivery could not be encoded: {0}")]
    Encoding(String),
}

/// Whether an address is one Logbook must not send to by default: loopback, private, link-local
/// (which holds the cloud metadata address 169.254.169.254), shared (CGNAT), unspecified,
/// broadcast, multicast, documentation, unique-local IPv6, and IPv4 embedded in IPv6.
pub fn is_non_public_address(ip: IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => is_non_public_v4(v4),
        IpAddr::V6(v6) => is_non_public_v6(v6),
    }
}

fn is_non_public_v4(ip: Ipv4Addr) -> bool {
    let octets = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || octets[0] == 0
        // 100.64.0.0/10, shared address space (carrier-grade NAT).
        || (octets[0] == 100 && (octets[1] & 0xc0) == 64)
        // 192.0.0.0/24, IETF protocol assignments; 198.18.0.0/15, benchmarking.
        || (octets[0] == 192 && octets[1] == 0 && octets[2] == 0)
        || (octets[0] == 198 && (octets[1] & 0xfe) == 18)
        || octets[0] >= 240
}

fn is_non_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // fc00::/7 unique local (holds fd00:ec2::254, a metadata address), fe80::/10 link-local.
        || (segments[0] & 0xfe00) == 0xfc00
        || (segments[0] & 0xffc0) == 0xfe80
        // 2001:db8::/32 documentation; 64:ff9b::/96 NAT64 can reach private IPv4.
        || (segments[0] == 0x2001 && segments[1] == 0x0db8)
        || (segments[0] == 0x0064 && segments[1] == 0xff9b)
        // ::ffff:0:0/96 was folded to IPv4 by to_canonical; 2002::/16 (6to4) embeds IPv4.
        || segments[0] == 0x2002
        // ::/96, the deprecated IPv4-compatible form (::7f00:1), which to_canonical keeps.
        || segments[..6].iter().all(|segment| *segment == 0)
        // fec0::/10, deprecated site-local; 2001::/32 Teredo; 100::/64 discard-only.
        || (segments[0] & 0xffc0) == 0xfec0
        || (segments[0] == 0x2001 && segments[1] == 0)
        || (segments[0] == 0x0100 && segments[1..4].iter().all(|segment| *segment == 0))
}

/// Resolves `host:port` and returns the addresses to connect to, refusing every answer when any
/// of them is non-public and private destinations are not allowed (a name that resolves to a
/// public and a private address is not trusted to pick the public one).
pub async fn resolve_allowed(
    host: &str,
    port: u16,
    allow_private_destinations: bool,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, SendError> {
    let host_for_lookup = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<SocketAddr> = match host_for_lookup.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::time::timeout(timeout, tokio::net::lookup_host((host_for_lookup, port)))
            .await
            .map_err(|_| SendError::TimedOut(timeout))?
            .map_err(|error| SendError::Resolve {
                host: host.to_owned(),
                message: error.to_string(),
            })?
            .collect(),
    };
    if addresses.is_empty() {
        return Err(SendError::Resolve {
            host: host.to_owned(),
            message: "no addresses".to_owned(),
        });
    }
    if !allow_private_destinations
        && let Some(refused) = addresses
            .iter()
            .find(|address| is_non_public_address(address.ip()))
    {
        return Err(SendError::Refused(format!(
            "{host} resolves to {}, a loopback, private, link-local or otherwise non-public address \
             (set [delivery] allow_private_destinations = true to allow it)",
            refused.ip()
        )));
    }
    Ok(addresses)
}

/// Connects to `host:port` after the guard, trying each checked address in turn.
pub async fn connect_guarded(
    host: &str,
    port: u16,
    settings: &DeliverySettings,
) -> Result<TcpStream, SendError> {
    let addresses = resolve_allowed(
        host,
        port,
        settings.allow_private_destinations,
        settings.connect_timeout,
    )
    .await?;
    let mut last_error = SendError::Transport("no address to connect to".to_owned());
    for address in addresses {
        match tokio::time::timeout(settings.connect_timeout, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                // Frames are written whole; waiting to coalesce them only adds latency.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(error)) => last_error = SendError::Transport(format!("{address}: {error}")),
            Err(_) => last_error = SendError::TimedOut(settings.connect_timeout),
        }
    }
    Err(last_error)
}

/// What one send carries, whatever the destination kind.
pub struct Outgoing<'a> {
    pub delivery_id: &'a str,
    pub account: &'a AccountId,
    pub event_seq: u64,
    pub event_json: &'a str,
    pub reason: &'a DeliveryReason,
    pub test: bool,
    pub now: OffsetDateTime,
}

impl<'a> Outgoing<'a> {
    pub fn of_delivery(delivery: &'a NewDelivery, now: OffsetDateTime) -> Self {
        Self {
            delivery_id: &delivery.delivery_id,
            account: &delivery.account,
            event_seq: delivery.event_seq,
            event_json: &delivery.event_json,
            reason: &delivery.reason,
            test: false,
            now,
        }
    }
}

/// A delivery as its transport sends it: the webhook body (signed at `timestamp`) or the syslog
/// message (without framing).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub delivery_id: String,
    pub payload: String,
    /// Unix seconds the webhook signature covers.
    pub timestamp: i64,
}

/// Turns `outgoing` into what `kind` sends.
pub fn prepare(
    kind: &DestinationKind,
    outgoing: &Outgoing<'_>,
    settings: &DeliverySettings,
) -> Result<Prepared, SendError> {
    let payload = match kind {
        DestinationKind::Webhook { .. } => webhook_body(outgoing)?,
        DestinationKind::Syslog { .. }
        | DestinationKind::SyslogTls { .. }
        | DestinationKind::Relp { .. } => syslog_line(outgoing, settings),
    };
    Ok(Prepared {
        delivery_id: outgoing.delivery_id.to_owned(),
        payload,
        timestamp: outgoing.now.unix_timestamp(),
    })
}

/// Sends `outgoing` to `destination` now, through the transport its lane uses: a "Send test".
pub async fn send(
    destination: &DestinationRecord,
    outgoing: &Outgoing<'_>,
    settings: &DeliverySettings,
) -> Result<(), SendError> {
    // The guard is asked first, so a refused destination answers with the guard's reason.
    match &destination.kind {
        DestinationKind::Webhook { url } => {
            let (host, port) = webhook_host_and_port(url, settings)?;
            resolve_allowed(
                &host,
                port,
                settings.allow_private_destinations,
                settings.connect_timeout,
            )
            .await?;
        }
        other => {
            if let Some((host, port)) = other.host_and_port() {
                resolve_allowed(
                    host,
                    port,
                    settings.allow_private_destinations,
                    settings.connect_timeout,
                )
                .await?;
            }
        }
    }
    let prepared = prepare(&destination.kind, outgoing, settings)?;
    let mut transport = Transport::for_destination(destination, settings)?;
    let outcome = transport.send_batch(vec![prepared]).await;
    transport.close().await;
    if !outcome.delivered.is_empty() {
        return Ok(());
    }
    if let Some((_, error)) = outcome.refused.into_iter().next() {
        return Err(error);
    }
    Err(outcome
        .unreachable
        .unwrap_or_else(|| SendError::Transport("nothing was sent".to_owned())))
}

/// The host and port of a webhook URL, refusing schemes other than https (and http when private
/// destinations are allowed).
pub fn webhook_host_and_port(
    url: &str,
    settings: &DeliverySettings,
) -> Result<(String, u16), SendError> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|error| SendError::Refused(format!("the URL does not parse: {error}")))?;
    match parsed.scheme() {
        "https" => {}
        "http" if settings.allow_private_destinations => {}
        "http" => {
            return Err(SendError::Refused(
                "plain http is not allowed; use https (or set [delivery] allow_private_destinations = true)"
                    .to_owned(),
            ));
        }
        other => return Err(SendError::Refused(format!("unsupported scheme {other}"))),
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| SendError::Refused("the URL has no host".to_owned()))?
        .to_owned();
    let port = parsed
        .port_or_known_default()
        .ok_or_else(|| SendError::Refused("the URL has no port".to_owned()))?;
    Ok((host, port))
}

fn webhook_body(outgoing: &Outgoing<'_>) -> Result<String, SendError> {
    let body = if outgoing.test {
        delivery_format::webhook_test_body(outgoing.delivery_id, outgoing.account, outgoing.now)
    } else {
        delivery_format::webhook_body(&NewDelivery {
            delivery_id: outgoing.delivery_id.to_owned(),
            destination_id: DestinationId::new(""),
            account: outgoing.account.clone(),
            event_seq: outgoing.event_seq,
            event_json: outgoing.event_json.to_owned(),
            reason: outgoing.reason.clone(),
            created_at: outgoing.now,
        })
    };
    body.map_err(|error| SendError::Encoding(error.to_string()))
}

/// The signature headers of a webhook body.
pub fn webhook_headers(secret: &str, prepared: &Prepared) -> [(&'static str, String); 3] {
    [
        (TIMESTAMP_HEADER, prepared.timestamp.to_string()),
        (
            SIGNATURE_HEADER,
            delivery_format::webhook_signature(secret, prepared.timestamp, &prepared.payload),
        ),
        (DELIVERY_ID_HEADER, prepared.delivery_id.clone()),
    ]
}

/// At most `MAX_RESPONSE_BYTES_KEPT` bytes of the answer, read chunk by chunk (a hostile receiver
/// cannot make Logbook buffer a large body), with control characters replaced.
pub async fn bounded_response_text(mut response: reqwest::Response) -> String {
    let mut kept = Vec::new();
    while kept.len() < MAX_RESPONSE_BYTES_KEPT {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_RESPONSE_BYTES_KEPT - kept.len();
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&kept)
        .chars()
        .map(|character| {
            if character.is_control() {
                ' '
            } else {
                character
            }
        })
        .collect()
}

/// An error and its causes, joined with `: `.
pub fn error_chain_text(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The RFC 5424 message of `outgoing` (HOSTNAME and APP-NAME from the settings).
pub fn syslog_line(outgoing: &Outgoing<'_>, settings: &DeliverySettings) -> String {
    let action = serde_json::from_str::<serde_json::Value>(outgoing.event_json)
        .ok()
        .and_then(|event| {
            event
                .get("action")
                .and_then(|action| action.as_str().map(str::to_owned))
        })
        .unwrap_or_default();
    let test_event;
    let message = if outgoing.test {
        test_event = delivery_format::test_event_json(outgoing.account, outgoing.now);
        &test_event
    } else {
        outgoing.event_json
    };
    let rule_name = match outgoing.reason {
        DeliveryReason::WholeLog => None,
        DeliveryReason::Rule { rule_name, .. } => Some(rule_name.as_str()),
    };
    delivery_format::syslog_message(&SyslogFields {
        hostname: &settings.syslog_hostname,
        app_name: &settings.syslog_app_name,
        account: outgoing.account,
        event_seq: outgoing.event_seq,
        action: if outgoing.test {
            "logbook.destination.test"
        } else {
            &action
        },
        delivery_id: outgoing.delivery_id,
        rule_name,
        created_at: outgoing.now,
        message,
        test: outgoing.test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_private_link_local_and_metadata_addresses_are_non_public() {
        for text in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2002:7f00:1::1",
            "::7f00:1",
            "fec0::1",
            "2001:0:4136:e378::1",
            "100::1",
        ] {
            assert!(is_non_public_address(text.parse().unwrap()), "{text}");
        }
        for text in ["93.184.216.34", "2606:4700::1111", "8.8.8.8"] {
            assert!(!is_non_public_address(text.parse().unwrap()), "{text}");
        }
    }

    #[tokio::test]
    async fn a_private_literal_is_refused_unless_allowed() {
        let refused = resolve_allowed("127.0.0.1", 80, false, Duration::from_secs(1)).await;
        assert!(matches!(refused, Err(SendError::Refused(_))));
        let allowed = resolve_allowed("127.0.0.1", 80, true, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(allowed, vec!["127.0.0.1:80".parse().unwrap()]);
        let refused_name = resolve_allowed("localhost", 80, false, Duration::from_secs(5)).await;
        assert!(
            matches!(refused_name, Err(SendError::Refused(_))),
            "{refused_name:?}"
        );
    }
}
