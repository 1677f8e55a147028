//! The state every handler shares (`AppState`) and the server's tunables (`ServerSettings`).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use logbook_core::ingest::IngestLimits;
use logbook_core::{Clock, Store};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::sync::watch;

use crate::auth::ApiKeyCache;
use crate::web::WebServices;
use crate::workers::checkpointer::CheckpointSigning;

/// What the server enforces and how it paces live work. `Default` holds the documented defaults.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub ingest_limits: IngestLimits,
    /// How long an active API key is remembered before the store is asked again; also the
    /// longest time a revoked key keeps working. Zero asks the store on every request.
    pub api_key_cache_ttl: Duration,
    /// How long a client may take to send an ingest body before it is answered 408.
    pub body_read_timeout: Duration,
    /// Largest `limit` a query may ask for.
    pub max_page_size: u32,
    /// `limit` of a query that does not name one.
    pub default_page_size: u32,
    /// How often a live tail asks the store for new events.
    pub tail_poll_interval: Duration,
    /// At most this many events are fetched (and buffered) per poll of a live tail.
    pub tail_batch_size: u32,
    /// How often a live tail sends a keep-alive comment when nothing happens.
    pub tail_keep_alive_interval: Duration,
    /// The address people reach Logbook at (`https://logbook.example.com`). When it is https the
    /// session cookie is `Secure`, and forms are accepted only from this origin.
    pub public_url: Option<String>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (see `logbook_core::client_ip`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Where the page footer's help link points: an email address or a URL.
    pub support_contact: Option<String>,
    /// A session unused this long ends.
    pub session_idle_timeout: Duration,
    /// A session ends this long after sign-in, however active.
    pub session_absolute_timeout: Duration,
    /// Password hashes computed at once; more wait (Argon2id takes 19 MiB and tens of ms each).
    pub max_concurrent_password_hashes: usize,
    /// Rate limits and bounds per account and per key (`limits`).
    pub limits: crate::limits::LimitSettings,
    /// How long one query (a page, one event, a proof) may run before it is stopped and
    /// answered `query_timeout`.
    pub query_time_budget: Duration,
    /// How long a client may take to send a request's headers before its connection is closed.
    pub header_read_timeout: Duration,
    /// Connections served at once; further ones wait in the listen queue until one closes.
    pub max_connections: usize,
    /// Alert and stream deliveries: SSRF guard, pacing, retries (`delivery`).
    pub delivery: crate::workers::delivery::DeliverySettings,
    /// The "Needs attention" detectors and how often their worker reads new events.
    pub attention: crate::workers::attention::AttentionWorkerSettings,
    /// How long accounts keep their events, and how the pruner paces itself.
    pub retention: crate::workers::retention::RetentionSettings,
    /// The embedded view of viewer sessions: look, framing, lifetimes, rate (`web::viewer`).
    pub embed: crate::web::viewer::EmbedSettings,
    /// The configuration file's `[sso]` provider and the accounts it signs people into.
    pub single_sign_on: Option<crate::web::single_sign_on::InstanceSingleSignOn>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            ingest_limits: IngestLimits::default(),
            api_key_cache_ttl: Duration::from_secs(1),
            body_read_timeout: Duration::from_secs(30),
            max_page_size: 1000,
            default_page_size: 50,
            tail_poll_interval: Duration::from_millis(250),
            tail_batch_size: 500,
            tail_keep_alive_interval: Duration::from_secs(15),
            public_url: None,
            trusted_proxies: Vec::new(),
            support_contact: None,
            session_idle_timeout: Duration::from_secs(30 * 60),
            session_absolute_timeout: Duration::from_secs(12 * 60 * 60),
            max_concurrent_password_hashes: 2,
            limits: crate::limits::LimitSettings::default(),
            query_time_budget: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 4096,
            delivery: crate::workers::delivery::DeliverySettings::default(),
            attention: crate::workers::attention::AttentionWorkerSettings::default(),
            retention: crate::workers::retention::RetentionSettings::default(),
            embed: crate::web::viewer::EmbedSettings::default(),
            single_sign_on: None,
        }
    }
}

/// Handed to every handler. Cheap to clone: everything inside is shared.
#[derive(Clone)]
pub struct AppState {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: Arc<ServerSettings>,
    metrics: PrometheusHandle,
    shutdown: ShutdownSignal,
    api_key_cache: Arc<ApiKeyCache>,
    web: Arc<WebServices>,
    checkpoint_signing: Option<Arc<CheckpointSigning>>,
    limiter: Arc<crate::limits::Limiter>,
    ip_databases: Option<Arc<crate::ip_databases::IpDatabases>>,
}

impl AppState {
    /// Builds the state, installing the process-wide Prometheus recorder on first use.
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, settings: ServerSettings) -> Self {
        Self {
            store,
            clock,
            api_key_cache: Arc::new(ApiKeyCache::new(settings.api_key_cache_ttl)),
            web: Arc::new(WebServices::new(&settings)),
            limiter: Arc::new(crate::limits::Limiter::new(&settings.limits)),
            settings: Arc::new(settings),
            metrics: prometheus_handle(),
            shutdown: ShutdownSignal::default(),
            checkpoint_signing: None,
            ip_databases: None,
        }
    }

    /// Reloads these IP databases when their files are replaced (`workers::ip_databases`) and
    /// reports a refused replacement at `/readyz`. The store must locate through the same
    /// databases (`SqliteOptions::ip_locator`, `PostgresOptions::ip_locator`).
    pub fn with_ip_databases(mut self, databases: Arc<crate::ip_databases::IpDatabases>) -> Self {
        self.ip_databases = Some(databases);
        self
    }

    pub fn ip_databases(&self) -> Option<&Arc<crate::ip_databases::IpDatabases>> {
        self.ip_databases.as_ref()
    }

    /// Signs checkpoints with `signing` (see `checkpointer`); without it no checkpoint is written.
    pub fn with_checkpoint_signing(mut self, signing: CheckpointSigning) -> Self {
        self.checkpoint_signing = Some(Arc::new(signing));
        self
    }

    pub fn checkpoint_signing(&self) -> Option<&Arc<CheckpointSigning>> {
        self.checkpoint_signing.as_ref()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn settings(&self) -> &ServerSettings {
        &self.settings
    }

    /// Rate limits and open exports/tails per account and key.
    pub fn limiter(&self) -> &crate::limits::Limiter {
        &self.limiter
    }

    pub fn api_key_cache(&self) -> &ApiKeyCache {
        &self.api_key_cache
    }

    /// Password hashing, sign-in throttling and the page's assets.
    pub fn web(&self) -> &WebServices {
        &self.web
    }

    pub fn metrics(&self) -> &PrometheusHandle {
        &self.metrics
    }

    /// The signal that tells long-lived answers (live tails) to end because the server stops.
    pub fn shutdown_signal(&self) -> ShutdownSignal {
        self.shutdown.clone()
    }
}

/// A one-way flag raised once when the server begins its graceful shutdown.
#[derive(Clone)]
pub struct ShutdownSignal {
    sender: Arc<watch::Sender<bool>>,
}

impl Default for ShutdownSignal {
    fn default() -> Self {
        let (sender, _receiver) = watch::channel(false);
        Self {
            sender: Arc::new(sender),
        }
    }
}

impl ShutdownSignal {
    pub fn begin(&self) {
        self.sender.send_replace(true);
    }

    /// Whether `begin` has been called.
    pub fn is_raised(&self) -> bool {
        *self.sender.borrow()
    }

    /// Completes once `begin` has been called (at once if it already was).
    pub fn wait(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut receiver = self.sender.subscribe();
        async move {
            // An error means the sender is gone, which also means the server is gone.
            let _ = receiver.wait_for(|begun| *begun).await;
        }
    }
}

/// Latency buckets in seconds, from 100 µs (a cached read) to 10 s (a stalled disk).
const LATENCY_BUCKETS_SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Buckets for event counts per batch, up to the largest batch allowed by default.
const BATCH_SIZE_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0];

/// The process-wide Prometheus recorder. A process has one global `metrics` recorder, so it is
/// installed once and every `AppState` (tests build many) shares its handle.
pub fn prometheus_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS_SECONDS)
                .and_then(|builder| {
                    builder.set_buckets_for_metric(Matcher::Suffix("_events".to_owned()), BATCH_SIZE_BUCKETS)
                })
                .expect("bucket lists are non-empty constants");
            match builder.install_recorder() {
                Ok(handle) => {
                    crate::metrics::describe_every_family();
                    handle
                }
                Err(error) => {
                    // Another recorder was installed first (by an embedding program): keep serving,
                    // with a local recorder whose `/metrics` shows only what it was given.
                    tracing::warn!(%error, "a metrics recorder is already installed; /metrics will be empty");
                    PrometheusBuilder::new().build_recorder().handle()
                }
            }
        })
        .clone()
}
