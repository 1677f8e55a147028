//! The connections a destination's lane sends through, one kind each, and what "delivered"
//! means for it (README, "What each destination type guarantees"):
//!
//! - **Webhook**: one HTTP/1.1 keep-alive connection per sender, a POST per delivery in `seq`
//!   order; a 2xx answer acknowledges it. The guard checks every address DNS gives when a
//!   connection is made (`GuardedResolver`), and the connection goes to that address.
//! - **Syslog over TCP or TLS**: no acknowledgement exists in the protocol, so a batch of
//!   octet-counted messages is written on a fresh connection, Logbook then closes its side and
//!   waits for the collector to close its own. A collector sees Logbook's close only after
//!   reading everything before it, so a clean close confirms the batch was read by the collector's
//!   process; a reset, an early close, an error or no close within the send timeout leaves the
//!   whole batch unconfirmed, to be sent again.
//! - **RELP**: one long-lived session; every message is a `syslog` command the collector answers
//!   (`rsp 200`), with several outstanding at once (`relp_window`).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use logbook_core::alerting::{DestinationKind, DestinationRecord};
use logbook_core::delivery_format;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::DeliverySettings;
use super::relp::{MessageOutcome, RelpSession};
use super::sender::{
    self, Prepared, SendError, connect_guarded, error_chain_text, is_non_public_address,
    resolve_allowed,
};
use super::tls;

/// How long after a syslog collector's clean close Logbook looks for a reset that crossed it (a
/// collector that closed on its own, for example while stopping, resets what arrives after).
const CLOSE_SETTLE_TIME: Duration = Duration::from_millis(25);

/// What became of a batch.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    /// Acknowledged by the receiver.
    pub delivered: Vec<String>,
    /// Answered, but not with an acknowledgement (HTTP non-2xx, RELP non-200), or a webhook
    /// request that timed out after it was sent: one failed attempt each.
    pub refused: Vec<(String, SendError)>,
    /// Never acknowledged because the receiver could not be reached or the connection failed:
    /// no attempt is counted, and they are sent again.
    pub unsent: Vec<String>,
    /// Why the receiver could not be reached or did not confirm, when that happened.
    pub unreachable: Option<SendError>,
}

/// One connection (or, for a webhook, one keep-alive client) of a destination.
pub enum Transport {
    Webhook(WebhookTransport),
    SyslogStream(SyslogStreamTransport),
    Relp(RelpTransport),
}

impl Transport {
    /// The transport of `destination`'s kind. Fails only on a destination that can never be sent
    /// to as configured (a URL that does not parse, a CA that is not a certificate).
    pub fn for_destination(
        destination: &DestinationRecord,
        settings: &DeliverySettings,
    ) -> Result<Self, SendError> {
        Ok(match &destination.kind {
            DestinationKind::Webhook { url } => {
                Transport::Webhook(WebhookTransport::new(url, &destination.secret.0, settings)?)
            }
            DestinationKind::Syslog { host, port } => {
                Transport::SyslogStream(SyslogStreamTransport {
                    host: host.clone(),
                    port: *port,
                    tls: None,
                    settings: settings.clone(),
                })
            }
            DestinationKind::SyslogTls {
                host,
                port,
                trusted_ca_pem,
            } => Transport::SyslogStream(SyslogStreamTransport {
                host: host.clone(),
                port: *port,
                tls: Some(tls::client_config(trusted_ca_pem.as_deref())?),
                settings: settings.clone(),
            }),
            DestinationKind::Relp { host, port } => Transport::Relp(RelpTransport {
                host: host.clone(),
                port: *port,
                session: None,
                settings: settings.clone(),
            }),
        })
    }

    /// Sends `batch` (in `seq` order) and reports what the receiver acknowledged.
    pub async fn send_batch(&mut self, batch: Vec<Prepared>) -> BatchOutcome {
        match self {
            Transport::Webhook(transport) => transport.send_batch(batch).await,
            Transport::SyslogStream(transport) => transport.send_batch(batch).await,
            Transport::Relp(transport) => transport.send_batch(batch).await,
        }
    }

    /// Closes what stays open between batches (a RELP session).
    pub async fn close(self) {
        if let Transport::Relp(transport) = self
            && let Some(session) = transport.session
        {
            session.close(transport.settings.send_timeout).await;
        }
    }
}

/// reqwest's resolver with the guard in it: every address of every connection is checked.
/// (reqwest does not resolve IP literals; `WebhookTransport::new` checks those, and the single
/// sign-on client checks each request's.)
pub(crate) struct GuardedResolver {
    settings: DeliverySettings,
}

impl GuardedResolver {
    pub(crate) fn new(settings: &DeliverySettings) -> Self {
        Self {
            settings: settings.clone(),
        }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let settings = self.settings.clone();
        Box::pin(async move {
            // Port 0: the connector puts the URL's port on each address.
            let addresses = resolve_allowed(
                &host,
                0,
                settings.allow_private_destinations,
                settings.connect_timeout,
            )
            .await
            .map_err(|error| -> Box<dyn std::error::Error + Send + Sync> { Box::new(error) })?;
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

/// A webhook: one keep-alive HTTP client, requests one after another.
pub struct WebhookTransport {
    url: reqwest::Url,
    secret: String,
    client: reqwest::Client,
    send_timeout: Duration,
}

impl WebhookTransport {
    fn new(url: &str, secret: &str, settings: &DeliverySettings) -> Result<Self, SendError> {
        let (host, _port) = sender::webhook_host_and_port(url, settings)?;
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>()
            && !settings.allow_private_destinations
            && is_non_public_address(ip)
        {
            return Err(SendError::Refused(format!(
                "{host} is a loopback, private, link-local or otherwise non-public address \
                 (set [delivery] allow_private_destinations = true to allow it)"
            )));
        }
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                settings: settings.clone(),
            }))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy from the environment (HTTPS_PROXY, ...) would resolve the name again on its
            // side and reach whatever the guard refused: deliveries always connect directly.
            .no_proxy()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.send_timeout)
            .pool_max_idle_per_host(1)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent("logbook-delivery/1")
            .build()
            .map_err(|error| SendError::Transport(error.to_string()))?;
        Ok(Self {
            url: reqwest::Url::parse(url)
                .map_err(|error| SendError::Refused(format!("the URL does not parse: {error}")))?,
            secret: secret.to_owned(),
            client,
            send_timeout: settings.send_timeout,
        })
    }

    async fn send_batch(&mut self, batch: Vec<Prepared>) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        let mut queue: VecDeque<Prepared> = batch.into();
        while let Some(prepared) = queue.pop_front() {
            let mut request = self
                .client
                .post(self.url.clone())
                .header("content-type", "application/json");
            for (name, value) in sender::webhook_headers(&self.secret, &prepared) {
                request = request.header(name, value);
            }
            match request.body(prepared.payload.clone()).send().await {
                Ok(response) if response.status().is_success() => {
                    outcome.delivered.push(prepared.delivery_id);
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let body = sender::bounded_response_text(response).await;
                    outcome
                        .refused
                        .push((prepared.delivery_id, SendError::Status { status, body }));
                }
                Err(error) if error.is_connect() => {
                    // Nothing reached the receiver: this and the rest wait for the lane's retry.
                    outcome.unsent.push(prepared.delivery_id);
                    outcome
                        .unsent
                        .extend(queue.drain(..).map(|rest| rest.delivery_id));
                    outcome.unreachable = Some(SendError::Transport(error_chain_text(&error)));
                }
                Err(error) => {
                    // Sent, then no answer in time or a broken connection: the receiver may
                    // have it, so this counts as an attempt and the others go on.
                    let failure = if error.is_timeout() {
                        SendError::TimedOut(self.send_timeout)
                    } else {
                        SendError::Transport(error_chain_text(&error))
                    };
                    outcome.refused.push((prepared.delivery_id, failure));
                }
            }
        }
        outcome
    }
}

/// Anything a syslog batch is written to: a TCP stream or TLS over one.
trait SyslogConnection: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> SyslogConnection for T {}

/// Syslog over TCP or TLS: a connection per batch, confirmed by the collector's close.
pub struct SyslogStreamTransport {
    host: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    settings: DeliverySettings,
}

impl SyslogStreamTransport {
    async fn send_batch(&mut self, batch: Vec<Prepared>) -> BatchOutcome {
        let ids: Vec<String> = batch.iter().map(|item| item.delivery_id.clone()).collect();
        match self.send_and_confirm(&batch).await {
            Ok(()) => BatchOutcome {
                delivered: ids,
                ..BatchOutcome::default()
            },
            Err(error) => BatchOutcome {
                unsent: ids,
                unreachable: Some(error),
                ..BatchOutcome::default()
            },
        }
    }

    async fn send_and_confirm(&self, batch: &[Prepared]) -> Result<(), SendError> {
        let tcp = connect_guarded(&self.host, self.port, &self.settings).await?;
        // A second handle on the socket, to read a reset once TLS owns the stream.
        let socket = tcp
            .as_fd()
            .try_clone_to_owned()
            .map(socket2::Socket::from)
            .map_err(|error| SendError::Transport(error.to_string()))?;
        let timeout = self.settings.send_timeout;
        let mut stream: Box<dyn SyslogConnection> = match &self.tls {
            None => Box::new(tcp),
            Some(config) => Box::new(
                tokio::time::timeout(
                    self.settings.connect_timeout,
                    tls::handshake(config.clone(), &self.host, tcp),
                )
                .await
                .map_err(|_| SendError::TimedOut(self.settings.connect_timeout))??,
            ),
        };
        let mut frames = Vec::new();
        for item in batch {
            frames.extend_from_slice(&delivery_format::octet_counted_frame(&item.payload));
        }
        let transport_error = |error: std::io::Error| SendError::Transport(error.to_string());
        tokio::time::timeout(timeout, async {
            stream.write_all(&frames).await.map_err(transport_error)?;
            stream.flush().await.map_err(transport_error)?;
            Ok::<(), SendError>(())
        })
        .await
        .map_err(|_| SendError::TimedOut(timeout))??;
        tokio::time::timeout(timeout, async {
            // The collector must not have closed first: a collector that closes on its own (it
            // is stopping, or timed the connection out) resets what it had not read.
            let mut probe = [0u8; 512];
            if let Ok(read) = tokio::time::timeout(Duration::ZERO, stream.read(&mut probe)).await {
                match read {
                    Ok(0) | Err(_) => {
                        return Err(SendError::Transport(
                            "the collector closed the connection before Logbook closed it"
                                .to_owned(),
                        ));
                    }
                    // Collectors send nothing on a syslog connection; whatever it is, ignore it.
                    Ok(_) => {}
                }
            }
            stream.shutdown().await.map_err(transport_error)?;
            loop {
                match stream.read(&mut probe).await {
                    Ok(0) => return Ok(()),
                    Ok(_) => continue,
                    // A TLS collector that closes TCP without its own close_notify has still
                    // read everything before Logbook's.
                    Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => {
                        return Ok(());
                    }
                    Err(error) => return Err(transport_error(error)),
                }
            }
        })
        .await
        .map_err(|_| {
            SendError::Transport(format!(
                "the collector did not close the connection within {timeout:?} of Logbook closing \
                 it; its close is how a syslog collector confirms it read the messages"
            ))
        })??;
        tokio::time::sleep(CLOSE_SETTLE_TIME).await;
        match socket.take_error() {
            Ok(None) => Ok(()),
            Ok(Some(error)) | Err(error) => Err(SendError::Transport(format!(
                "the collector reset the connection: {error}"
            ))),
        }
    }
}

/// RELP: one session kept open between batches.
pub struct RelpTransport {
    host: String,
    port: u16,
    session: Option<RelpSession>,
    settings: DeliverySettings,
}

impl RelpTransport {
    async fn send_batch(&mut self, batch: Vec<Prepared>) -> BatchOutcome {
        let mut outcome = BatchOutcome::default();
        if let Some(session) = &mut self.session
            && session.closed_while_idle().await
        {
            self.session = None;
        }
        if self.session.is_none() {
            let opened = async {
                let tcp = connect_guarded(&self.host, self.port, &self.settings).await?;
                RelpSession::open(tcp, self.settings.send_timeout).await
            }
            .await;
            match opened {
                Ok(session) => self.session = Some(session),
                Err(error) => {
                    outcome.unsent = batch.into_iter().map(|item| item.delivery_id).collect();
                    outcome.unreachable = Some(error);
                    return outcome;
                }
            }
        }
        let Some(session) = self.session.as_mut() else {
            return outcome;
        };
        let messages: Vec<&str> = batch.iter().map(|item| item.payload.as_str()).collect();
        let (answers, error) = session
            .send_messages(
                &messages,
                self.settings.relp_window,
                self.settings.send_timeout,
            )
            .await;
        let answered = answers.len();
        for (item, answer) in batch.iter().zip(answers) {
            match answer {
                MessageOutcome::Accepted => outcome.delivered.push(item.delivery_id.clone()),
                MessageOutcome::Refused(text) => outcome
                    .refused
                    .push((item.delivery_id.clone(), SendError::Protocol(text))),
            }
        }
        outcome.unsent.extend(
            batch[answered..]
                .iter()
                .map(|item| item.delivery_id.clone()),
        );
        if let Some(error) = error {
            // The session is unusable after an error; the next batch opens a new one.
            self.session = None;
            outcome.unreachable = Some(error);
        }
        outcome
    }
}
