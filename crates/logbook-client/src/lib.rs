//! An async client for [Logbook](https://crates.io/crates/logbook-client), the self-hosted
//! activity log: send events with retries that never duplicate, in batches bounded in size,
//! time and memory, and read them back (query, export, live tail) as streams.
//!
//! ```no_run
//! use futures::StreamExt;
//! use logbook_client::{Actor, BatcherSettings, Client, Event};
//!
//! # async fn example() -> Result<(), logbook_client::Error> {
//! let client = Client::builder("http://127.0.0.1:8080", std::env::var("LOGBOOK_KEY").unwrap())
//!     .build()?;
//!
//! // One batch, now: one result per event, in order.
//! let results = client
//!     .send(&[Event::new("server.reboot", "Rebooted server web-1")
//!         .actor(Actor::user("alice@acme.com"))
//!         .ip("203.0.113.9")])
//!     .await?;
//!
//! // Or from anywhere in a service: a background batcher with backpressure.
//! let batcher = client.batcher(BatcherSettings::default());
//! batcher.submit(Event::new("user.login", "Alice logged in")).await?;
//! batcher.close().await?;
//!
//! let mut events = Box::pin(client.query("action:server.* -outcome:failure", 100));
//! while let Some(event) = events.next().await {
//!     println!("{}", event?.json());
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Every event gets an idempotency key before its first attempt (a fresh time-ordered one when the
//! caller gives none), and every retry sends the same bytes, so a retry after a timeout stores one
//! event. Errors say what to do about them: `Error::kind` is `Retry`, `FixEvent` or `FixRequest`.
//!
//!
//! # Why its own wire types
//!
//! This crate carries its own wire types instead of depending on `logbook-core`: a published
//! client must not pin users to the server's internal crate (and its dependencies), and the JSON
//! API is the contract. What it sends is checked by the server anyway; read events stay the
//! server's JSON text, so nothing is lost when the server adds a field.

mod admin;
mod batcher;
mod error;
mod event;
mod read;
mod send;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use batcher::{Batcher, BatcherSettings, SubmittedEvent};
pub use error::{Error, ErrorDetail, ErrorKind};
pub use event::{
    Actor, Change, Event, EventResult, Outcome, PreparedEvent, Receipt, StoredEvent, Target,
    fresh_idempotency_key,
};
pub use read::{EventPage, ExportFormat, ExportRequest, TailItem};
pub use send::{RetryNotice, RetryPolicy};

/// An API key. Its `Debug` never shows it.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into().trim().to_owned())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("ApiKey(<redacted>)")
    }
}

type RetryObserver = Arc<dyn Fn(&RetryNotice<'_>) + Send + Sync>;

/// Builds a `Client`.
pub struct ClientBuilder {
    base_url: String,
    key: ApiKey,
    user_agent: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    retry: RetryPolicy,
    retry_observer: Option<RetryObserver>,
}

impl ClientBuilder {
    /// The `User-Agent` sent with every request (default `logbook-client/<version>`).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// How long connecting may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one send may take before it counts as timed out and is retried (default 60 s).
    /// Reads that stream (export, tail) have no overall timeout.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    pub fn retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Called before each wait between attempts of a send (to log or show it).
    pub fn on_retry(mut self, observer: impl Fn(&RetryNotice<'_>) + Send + Sync + 'static) -> Self {
        self.retry_observer = Some(Arc::new(observer));
        self
    }

    pub fn build(self) -> Result<Client, Error> {
        let base_url = self.base_url.trim_end_matches('/').to_owned();
        reqwest::Url::parse(&base_url)
            .map_err(|error| Error::Usage(format!("{base_url:?} is not a URL: {error}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .user_agent(self.user_agent)
            .build()
            .map_err(|error| Error::Usage(format!("could not build the HTTP client: {error}")))?;
        Ok(Client {
            inner: Arc::new(ClientInner {
                http,
                base_url,
                key: self.key,
                request_timeout: self.request_timeout,
                retry: self.retry,
                retry_observer: self.retry_observer,
            }),
        })
    }
}

/// A connection to one Logbook server with one API key. Cheap to clone: clones share one
/// connection pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    http: reqwest::Client,
    /// The server URL without a trailing slash, so paths can be appended (a server behind a
    /// reverse proxy may live under a path prefix).
    base_url: String,
    key: ApiKey,
    request_timeout: Duration,
    retry: RetryPolicy,
    retry_observer: Option<RetryObserver>,
}

impl fmt::Debug for Client {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Client")
            .field("base_url", &self.inner.base_url)
            .field("key", &self.inner.key)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A builder for a client of the server at `base_url` (e.g. `http://127.0.0.1:8080`) that
    /// presents `key` (`lbk_...`).
    pub fn builder(base_url: impl Into<String>, key: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            key: ApiKey::new(key),
            user_agent: concat!("logbook-client/", env!("CARGO_PKG_VERSION")).to_owned(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            retry_observer: None,
        }
    }

    /// The server URL, without a trailing slash.
    pub fn server(&self) -> &str {
        &self.inner.base_url
    }

    pub(crate) fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.inner
            .http
            .get(format!("{}{path}", self.inner.base_url))
            .bearer_auth(&self.inner.key.0)
    }

    pub(crate) fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.inner
            .http
            .post(format!("{}{path}", self.inner.base_url))
            .bearer_auth(&self.inner.key.0)
    }

    pub(crate) fn transport_error(&self, source: reqwest::Error) -> Error {
        Error::Transport {
            server: self.inner.base_url.clone(),
            source: Arc::new(source),
        }
    }
}

/// The `Retry-After` of an answer in seconds, when it has one.
pub(crate) fn retry_after_of(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// Turns a failed answer into an error, reading its body; passes a successful one through.
pub(crate) async fn ensure_success(
    client: &Client,
    response: reqwest::Response,
) -> Result<reqwest::Response, Error> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status();
    let retry_after = retry_after_of(&response);
    let body = response
        .bytes()
        .await
        .map_err(|error| client.transport_error(error))?;
    Err(Error::from_answer(status, &body, retry_after))
}
