//! The one `Config` of the binary and where its values come from, in increasing precedence:
//! built-in defaults, then a TOML file (`--config FILE` or `LOGBOOK_CONFIG`), then `LOGBOOK_*`
//! environment variables, then command-line flags. Also the database URL (`sqlite://...`), which
//! is the one place a backend is picked.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use std::time::Duration;

use logbook_core::ingest::IngestLimits;
use logbook_server::ServerSettings;
use serde::{Deserialize, Serialize};

/// How Logbook writes its own logs to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// SQLite's `synchronous` pragma. `full` fsyncs the WAL on every commit, which is what makes a 2xx
/// mean "on disk"; `normal` trades the last commits before a power loss for speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SqliteSynchronous {
    #[default]
    Full,
    Normal,
}

impl SqliteSynchronous {
    fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "full" => Some(Self::Full),
            "normal" => Some(Self::Normal),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Normal => "normal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the database, the lock file and anything else Logbook keeps on disk live.
    pub data_dir: PathBuf,
    /// `sqlite:///absolute/path.db`, `sqlite://relative/path.db` or
    /// `postgres://user:password@host:port/database`; `None` means `<data_dir>/logbook.db`, so
    /// moving the data directory moves the database with it.
    pub database: Option<String>,
    /// The address `serve` listens on.
    pub listen: SocketAddr,
    pub log_format: LogFormat,
    /// The Logbook server the client commands (`send`, `query`, `tail`, `export`) talk to.
    pub server: String,
    pub ingest: IngestSettings,
    pub sqlite: SqliteSettings,
    pub postgres: PostgresSettings,
    pub checkpoints: CheckpointSettings,
    pub web: WebSettings,
    pub limits: LimitsSettings,
    pub delivery: DeliveryConfig,
    pub retention: RetentionConfig,
    pub embed: EmbedConfig,
    pub geoip: GeoIpConfig,
    /// Single sign-on with an OpenID Connect provider for the accounts it names (README,
    /// "Single sign-on"); accounts can also have their own (`logbook sso set`).
    pub sso: Option<SingleSignOnConfig>,
}

/// The embedded Activity Logs view in a platform's console (README, "Logbook in your console").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmbedConfig {
    /// Origins allowed to put the view in an `<iframe>` (each account may add its own).
    pub frame_ancestors: Vec<String>,
    /// Shown in place of "Logbook" in the view.
    pub product_name: Option<String>,
    /// `#rrggbb`.
    pub accent_colour: Option<String>,
    /// `light`, `dark` or `auto`.
    pub theme: Option<String>,
    /// An https URL of an image shown beside the product name.
    pub logo_url: Option<String>,
    /// How long a viewer-session URL may wait before it is opened.
    pub open_within_seconds: u64,
    /// A session's life, counted from its making, when the request does not say.
    pub default_session_lifetime_seconds: u64,
    /// The longest life a request may ask for (at most 30 days).
    pub max_session_lifetime_seconds: u64,
    /// Sessions one API key may make per minute; 0 turns the limit off.
    pub sessions_per_minute_per_key: u32,
    /// Sessions made per minute for one account; 0 turns the limit off.
    pub sessions_per_minute_per_account: u32,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        let server = logbook_server::web::viewer::EmbedSettings::default();
        Self {
            frame_ancestors: Vec::new(),
            product_name: None,
            accent_colour: None,
            theme: None,
            logo_url: None,
            open_within_seconds: server.open_within.as_secs(),
            default_session_lifetime_seconds: server.default_session_lifetime.as_secs(),
            max_session_lifetime_seconds: server.max_session_lifetime.as_secs(),
            sessions_per_minute_per_key: server.sessions_per_minute_per_key,
            sessions_per_minute_per_account: server.sessions_per_minute_per_account,
        }
    }
}

/// The longest viewer session an operator may allow: 30 days.
const MAX_VIEWER_SESSION_LIFETIME_SECONDS: u64 = 30 * 24 * 60 * 60;

impl EmbedConfig {
    /// Copies these settings into the server's, checking every value the way the management API
    /// checks an account's (each ends up in a page or a header).
    pub fn apply_to(&self, server: &mut ServerSettings) -> Result<()> {
        let look = logbook_core::viewer::EmbedLook::validate(
            &self.frame_ancestors,
            self.product_name.as_deref(),
            self.accent_colour.as_deref(),
            self.theme.as_deref(),
            self.logo_url.as_deref(),
        )
        .map_err(|error| anyhow::anyhow!("embed.{}: {}", error.field, error.message))?;
        if self.open_within_seconds == 0 || self.open_within_seconds > 3600 {
            bail!("embed.open_within_seconds must be 1 to 3600");
        }
        if self.max_session_lifetime_seconds > MAX_VIEWER_SESSION_LIFETIME_SECONDS {
            bail!(
                "embed.max_session_lifetime_seconds must be at most {MAX_VIEWER_SESSION_LIFETIME_SECONDS} (30 days)"
            );
        }
        if self.max_session_lifetime_seconds == 0
            || self.default_session_lifetime_seconds == 0
            || self.default_session_lifetime_seconds > self.max_session_lifetime_seconds
        {
            bail!(
                "embed.default_session_lifetime_seconds must be at least 1 and at most embed.max_session_lifetime_seconds"
            );
        }
        server.embed = logbook_server::web::viewer::EmbedSettings {
            look,
            open_within: std::time::Duration::from_secs(self.open_within_seconds),
            default_session_lifetime: std::time::Duration::from_secs(
                self.default_session_lifetime_seconds,
            ),
            max_session_lifetime: std::time::Duration::from_secs(self.max_session_lifetime_seconds),
            sessions_per_minute_per_key: self.sessions_per_minute_per_key,
            sessions_per_minute_per_account: self.sessions_per_minute_per_account,
        };
        Ok(())
    }
}

/// The `[sso]` section: one OpenID Connect provider for the accounts it names.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SingleSignOnConfig {
    /// Shown on the sign-in page: "Sign in with <display_name>".
    pub display_name: String,
    /// The provider's issuer URL (https; plain http only on a loopback address).
    pub issuer: String,
    pub client_id: String,
    /// Also `LOGBOOK_SSO_CLIENT_SECRET`, which wins. Printed as `<redacted>` by `config show`.
    #[serde(default, serialize_with = "redacted")]
    pub client_secret: String,
    /// The accounts whose people sign in with this provider.
    pub accounts: Vec<String>,
    /// The role of a person created by their first sign-in.
    #[serde(default = "default_single_sign_on_role")]
    pub default_role: String,
    /// Only people who are users of the account already, or invited, may sign in.
    #[serde(default)]
    pub invited_only: bool,
    /// Whether these accounts' people may still sign in with a password.
    #[serde(default = "always_true")]
    pub password_sign_in_allowed: bool,
}

fn default_single_sign_on_role() -> String {
    "viewer".to_owned()
}

fn always_true() -> bool {
    true
}

fn redacted<S: serde::Serializer>(secret: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(if secret.is_empty() { "" } else { "<redacted>" })
}

impl std::fmt::Debug for SingleSignOnConfig {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SingleSignOnConfig")
            .field("display_name", &self.display_name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("accounts", &self.accounts)
            .field("default_role", &self.default_role)
            .field("invited_only", &self.invited_only)
            .field("password_sign_in_allowed", &self.password_sign_in_allowed)
            .finish()
    }
}

impl SingleSignOnConfig {
    /// Checks the section and hands it to the server.
    pub fn apply_to(&self, server: &mut ServerSettings) -> Result<()> {
        let settings = logbook_core::single_sign_on::SingleSignOnSettings {
            display_name: self.display_name.trim().to_owned(),
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            client_secret: logbook_core::single_sign_on::ClientSecret::new(
                self.client_secret.clone(),
            ),
            default_role: logbook_core::people::Role::parse(&self.default_role)
                .map_err(|error| anyhow::anyhow!("sso.default_role: {error}"))?,
            invited_only: self.invited_only,
            password_sign_in_allowed: self.password_sign_in_allowed,
        };
        settings
            .validate()
            .map_err(|error| anyhow::anyhow!("sso.{error}"))?;
        if self.accounts.is_empty() {
            bail!(
                "sso.accounts: name at least one account whose people sign in with this provider"
            );
        }
        let accounts = self
            .accounts
            .iter()
            .map(|name| {
                logbook_core::AccountId::parse(name)
                    .map_err(|error| anyhow::anyhow!("sso.accounts: {name:?}: {error}"))
            })
            .collect::<Result<Vec<_>>>()?;
        server.single_sign_on =
            Some(logbook_server::web::single_sign_on::InstanceSingleSignOn { accounts, settings });
        Ok(())
    }
}

/// The IP databases that give each event's address its place and network (README, "Where each
/// address is").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeoIpConfig {
    /// A MaxMind DB file with places (GeoLite2 City, DB-IP City Lite, IPinfo Lite);
    /// `LOGBOOK_GEOIP_CITY_DATABASE`.
    pub city_database: Option<PathBuf>,
    /// A MaxMind DB file with networks (GeoLite2 ASN, DB-IP ASN Lite); `LOGBOOK_GEOIP_ASN_DATABASE`.
    pub asn_database: Option<PathBuf>,
    /// How often the files are checked for a replacement.
    pub reload_interval_seconds: u64,
    /// Two successful logins of one actor farther apart than this many kilometres per hour
    /// (less both places' accuracy radii) are impossible travel under Needs attention;
    /// `LOGBOOK_GEOIP_IMPOSSIBLE_TRAVEL_SPEED_KMH`.
    pub impossible_travel_speed_kmh: u32,
}

impl Default for GeoIpConfig {
    fn default() -> Self {
        Self {
            city_database: None,
            asn_database: None,
            reload_interval_seconds: 60,
            impossible_travel_speed_kmh:
                logbook_core::attention::DEFAULT_IMPOSSIBLE_TRAVEL_SPEED_KMH,
        }
    }
}

impl GeoIpConfig {
    /// Sets the impossible-travel speed of the Needs attention detectors.
    pub fn apply_to(&self, server: &mut ServerSettings) -> Result<()> {
        if self.impossible_travel_speed_kmh == 0 {
            bail!("geoip.impossible_travel_speed_kmh must be at least 1");
        }
        server.attention.detectors.impossible_travel_speed_kmh = self.impossible_travel_speed_kmh;
        Ok(())
    }

    /// The server's settings; `None` without a database. Snapshots go to `<data_dir>/ip-databases`.
    pub fn settings(
        &self,
        data_dir: &Path,
    ) -> Result<Option<logbook_server::ip_databases::IpDatabaseSettings>> {
        if self.city_database.is_none() && self.asn_database.is_none() {
            return Ok(None);
        }
        if self.reload_interval_seconds == 0 {
            bail!("geoip.reload_interval_seconds must be at least 1");
        }
        Ok(Some(logbook_server::ip_databases::IpDatabaseSettings {
            city_database: self.city_database.clone(),
            asn_database: self.asn_database.clone(),
            snapshot_directory: data_dir.join("ip-databases"),
            reload_interval: std::time::Duration::from_secs(self.reload_interval_seconds),
        }))
    }
}

/// How long accounts keep their events (README, "Retention and legal hold").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days an account keeps its events after they were received, unless it has its own period
    /// (`logbook retention set`); 0 keeps everything.
    pub days: u32,
    /// How often each node looks for events to remove.
    pub interval_seconds: u64,
    /// Events one delete transaction removes (a short pause follows each).
    pub batch_size: u32,
    /// Days an event keeps its personal fields (IP address, user agent, actor name, declared
    /// metadata) unless its account has its own period (`logbook retention personal`); 0 keeps
    /// them as long as the event.
    pub personal_data_days: u32,
    /// Whether aging keeps the /24 (IPv4) or /48 (IPv6) of a removed address.
    pub keep_network: bool,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        let server = logbook_server::workers::retention::RetentionSettings::default();
        Self {
            days: 0,
            interval_seconds: server.interval.as_secs(),
            batch_size: server.batch_size,
            personal_data_days: 0,
            keep_network: server.default_keep_network,
        }
    }
}

impl RetentionConfig {
    /// Copies these settings into the server's, checking what a file or variable may get wrong.
    pub fn apply_to(&self, server: &mut ServerSettings) -> Result<()> {
        if self.days > logbook_core::retention::MAX_RETENTION_DAYS {
            bail!(
                "retention.days must be 0 (keep everything) or at most {}",
                logbook_core::retention::MAX_RETENTION_DAYS
            );
        }
        if self.personal_data_days > logbook_core::retention::MAX_RETENTION_DAYS {
            bail!(
                "retention.personal_data_days must be 0 (keep personal data) or at most {}",
                logbook_core::retention::MAX_RETENTION_DAYS
            );
        }
        if self.interval_seconds == 0 || !(1..=100_000).contains(&self.batch_size) {
            bail!(
                "retention.interval_seconds must be at least 1 and retention.batch_size between 1 and 100000"
            );
        }
        let retention = &mut server.retention;
        retention.default_retention_days = (self.days > 0).then_some(self.days);
        retention.interval = std::time::Duration::from_secs(self.interval_seconds);
        retention.batch_size = self.batch_size;
        retention.default_personal_data_days =
            (self.personal_data_days > 0).then_some(self.personal_data_days);
        retention.default_keep_network = self.keep_network;
        Ok(())
    }
}

/// Alert and stream deliveries (README, "Alerts and destinations").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Allow destinations on loopback, private, link-local and metadata addresses, and plain
    /// http:// webhooks. Off by default (SSRF); on for tests and on-premises receivers.
    pub allow_private_destinations: bool,
    /// Failed attempts after which a delivery goes to the dead-letter list.
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles per failure up to `max_backoff_milliseconds`.
    pub initial_backoff_milliseconds: u64,
    pub max_backoff_milliseconds: u64,
    /// How often the delivery worker looks for new events and due deliveries.
    pub poll_interval_milliseconds: u64,
    /// Connecting to a receiver (TLS handshake included).
    pub connect_timeout_milliseconds: u64,
    /// One send: a webhook answer, a syslog collector's close, a RELP window's answers.
    pub send_timeout_milliseconds: u64,
    /// Keep-alive connections per webhook destination.
    pub webhook_connections: usize,
    /// Connections per syslog, syslog-over-TLS or RELP destination.
    pub syslog_connections: usize,
    /// Messages one syslog connection sends before it closes to have them confirmed.
    pub syslog_batch_size: u32,
    /// RELP messages sent before their answers are awaited.
    pub relp_window: usize,
    /// HOSTNAME of syslog messages. Unset means the instance name (`[checkpoints]`).
    pub syslog_hostname: Option<String>,
    /// APP-NAME of syslog messages.
    pub syslog_app_name: String,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        let server = logbook_server::workers::delivery::DeliverySettings::default();
        Self {
            allow_private_destinations: server.allow_private_destinations,
            max_attempts: server.retry.max_attempts,
            initial_backoff_milliseconds: server.retry.initial_backoff.as_millis() as u64,
            max_backoff_milliseconds: server.retry.max_backoff.as_millis() as u64,
            poll_interval_milliseconds: server.poll_interval.as_millis() as u64,
            connect_timeout_milliseconds: server.connect_timeout.as_millis() as u64,
            send_timeout_milliseconds: server.send_timeout.as_millis() as u64,
            webhook_connections: server.webhook_connections,
            syslog_connections: server.syslog_connections,
            syslog_batch_size: server.syslog_batch_size,
            relp_window: server.relp_window,
            syslog_hostname: None,
            syslog_app_name: server.syslog_app_name,
        }
    }
}

impl DeliveryConfig {
    /// Copies these settings into the server's, checking what a file or variable may get wrong.
    /// `instance_name` is the syslog HOSTNAME when `syslog_hostname` is unset.
    pub fn apply_to(&self, server: &mut ServerSettings, instance_name: &str) -> Result<()> {
        if self.max_attempts == 0 {
            bail!("delivery.max_attempts must be at least 1");
        }
        if self.initial_backoff_milliseconds == 0
            || self.max_backoff_milliseconds < self.initial_backoff_milliseconds
        {
            bail!(
                "delivery backoff must be at least 1 ms, and max_backoff_milliseconds at least initial_backoff_milliseconds"
            );
        }
        if self.poll_interval_milliseconds == 0 {
            bail!("delivery.poll_interval_milliseconds must be at least 1");
        }
        if self.connect_timeout_milliseconds == 0 || self.send_timeout_milliseconds == 0 {
            bail!(
                "delivery.connect_timeout_milliseconds and send_timeout_milliseconds must be at least 1"
            );
        }
        for (name, value, most) in [
            ("webhook_connections", self.webhook_connections, 64),
            ("syslog_connections", self.syslog_connections, 64),
            (
                "syslog_batch_size",
                self.syslog_batch_size as usize,
                100_000,
            ),
            ("relp_window", self.relp_window, 10_000),
        ] {
            if value == 0 || value > most {
                bail!("delivery.{name} must be between 1 and {most}");
            }
        }
        let hostname = self.syslog_hostname.as_deref().unwrap_or(instance_name);
        for (name, value) in [
            ("syslog_hostname", hostname),
            ("syslog_app_name", &self.syslog_app_name),
        ] {
            if value.is_empty() || !value.bytes().all(|byte| byte.is_ascii_graphic()) {
                bail!("delivery.{name} must be printable ASCII without spaces, not {value:?}");
            }
        }
        let delivery = &mut server.delivery;
        delivery.allow_private_destinations = self.allow_private_destinations;
        delivery.retry.max_attempts = self.max_attempts;
        delivery.retry.initial_backoff =
            std::time::Duration::from_millis(self.initial_backoff_milliseconds);
        delivery.retry.max_backoff =
            std::time::Duration::from_millis(self.max_backoff_milliseconds);
        delivery.poll_interval = std::time::Duration::from_millis(self.poll_interval_milliseconds);
        delivery.connect_timeout =
            std::time::Duration::from_millis(self.connect_timeout_milliseconds);
        delivery.send_timeout = std::time::Duration::from_millis(self.send_timeout_milliseconds);
        delivery.webhook_connections = self.webhook_connections;
        delivery.syslog_connections = self.syslog_connections;
        delivery.syslog_batch_size = self.syslog_batch_size;
        delivery.relp_window = self.relp_window;
        delivery.syslog_hostname = hostname.to_owned();
        delivery.syslog_app_name = self.syslog_app_name.clone();
        Ok(())
    }
}

/// Fair limits and hostile-client defences (README, "Limits"). Rates of 0 turn a bucket off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSettings {
    /// Events per second one account may ingest, all its keys together.
    pub ingest_events_per_second: u32,
    /// Events an account may send at once above its rate; at least one full batch.
    pub ingest_event_burst: u32,
    /// Read requests per second per account (queries, events, exports, tails, proofs).
    pub reads_per_second: u32,
    pub read_burst: u32,
    /// Exports streaming at once per account.
    pub max_concurrent_exports: usize,
    /// Live tails open at once per account.
    pub max_live_tails: usize,
    /// Events per second one key may ingest (a platform key writes for many accounts).
    pub ingest_events_per_second_per_key: u32,
    pub ingest_event_burst_per_key: u32,
    /// Read requests per second one key may make.
    pub reads_per_second_per_key: u32,
    pub read_burst_per_key: u32,
    /// A query running longer than this is stopped and answered `query_timeout`.
    pub query_time_budget_milliseconds: u64,
    /// A connection whose request headers take longer than this is closed.
    pub header_read_timeout_seconds: u64,
    /// Connections served at once; more wait in the listen queue.
    pub max_connections: usize,
    /// Per-account overrides: `[limits.accounts.acme]` with any of the per-account fields above.
    pub accounts: std::collections::BTreeMap<String, AccountLimitsOverride>,
}

/// One account's own limits; a field left out keeps the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountLimitsOverride {
    pub ingest_events_per_second: Option<u32>,
    pub ingest_event_burst: Option<u32>,
    pub reads_per_second: Option<u32>,
    pub read_burst: Option<u32>,
    pub max_concurrent_exports: Option<usize>,
    pub max_live_tails: Option<usize>,
}

impl Default for LimitsSettings {
    fn default() -> Self {
        let server = ServerSettings::default();
        let account = &server.limits.account_defaults;
        Self {
            ingest_events_per_second: account.ingest_events_per_second,
            ingest_event_burst: account.ingest_event_burst,
            reads_per_second: account.reads_per_second,
            read_burst: account.read_burst,
            max_concurrent_exports: account.max_concurrent_exports,
            max_live_tails: account.max_live_tails,
            ingest_events_per_second_per_key: server.limits.ingest_events_per_second_per_key,
            ingest_event_burst_per_key: server.limits.ingest_event_burst_per_key,
            reads_per_second_per_key: server.limits.reads_per_second_per_key,
            read_burst_per_key: server.limits.read_burst_per_key,
            query_time_budget_milliseconds: server.query_time_budget.as_millis() as u64,
            header_read_timeout_seconds: server.header_read_timeout.as_secs(),
            max_connections: server.max_connections,
            accounts: std::collections::BTreeMap::new(),
        }
    }
}

impl LimitsSettings {
    /// Copies these limits into the server's, checking account names and values.
    pub fn apply_to(&self, server: &mut ServerSettings) -> Result<()> {
        if self.query_time_budget_milliseconds == 0 {
            bail!("limits.query_time_budget_milliseconds must be at least 1");
        }
        if self.header_read_timeout_seconds == 0 || self.max_connections == 0 {
            bail!(
                "limits.header_read_timeout_seconds and limits.max_connections must be at least 1"
            );
        }
        let defaults = logbook_server::limits::AccountLimits {
            ingest_events_per_second: self.ingest_events_per_second,
            ingest_event_burst: self.ingest_event_burst,
            reads_per_second: self.reads_per_second,
            read_burst: self.read_burst,
            max_concurrent_exports: self.max_concurrent_exports,
            max_live_tails: self.max_live_tails,
        };
        let mut account_overrides = std::collections::HashMap::new();
        for (name, overrides) in &self.accounts {
            let account = logbook_core::AccountId::parse(name)
                .with_context(|| format!("limits.accounts.{name:?} is not a valid account name"))?;
            let limits = logbook_server::limits::AccountLimits {
                ingest_events_per_second: overrides
                    .ingest_events_per_second
                    .unwrap_or(defaults.ingest_events_per_second),
                ingest_event_burst: overrides
                    .ingest_event_burst
                    .unwrap_or(defaults.ingest_event_burst),
                reads_per_second: overrides
                    .reads_per_second
                    .unwrap_or(defaults.reads_per_second),
                read_burst: overrides.read_burst.unwrap_or(defaults.read_burst),
                max_concurrent_exports: overrides
                    .max_concurrent_exports
                    .unwrap_or(defaults.max_concurrent_exports),
                max_live_tails: overrides.max_live_tails.unwrap_or(defaults.max_live_tails),
            };
            account_overrides.insert(account, limits);
        }
        server.limits = logbook_server::limits::LimitSettings {
            account_defaults: defaults,
            ingest_events_per_second_per_key: self.ingest_events_per_second_per_key,
            ingest_event_burst_per_key: self.ingest_event_burst_per_key,
            reads_per_second_per_key: self.reads_per_second_per_key,
            read_burst_per_key: self.read_burst_per_key,
            account_overrides,
        };
        server.query_time_budget = Duration::from_millis(self.query_time_budget_milliseconds);
        server.header_read_timeout = Duration::from_secs(self.header_read_timeout_seconds);
        server.max_connections = self.max_connections;
        Ok(())
    }
}

/// The sign-in page and its sessions (README, "People and the Activity Logs page").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSettings {
    /// The address people reach Logbook at (`https://logbook.example.com`): an https URL makes
    /// the session cookie `Secure`, and forms are accepted from this origin.
    pub public_url: Option<String>,
    /// Reverse proxies (addresses or CIDRs) whose `X-Forwarded-For` is believed for client IPs.
    pub trusted_proxies: Vec<String>,
    /// Where the page footer's help link points: an email address or a URL.
    pub support_contact: Option<String>,
    /// A session unused this many seconds ends.
    pub session_idle_timeout_seconds: u64,
    /// A session ends this many seconds after sign-in, however active.
    pub session_absolute_timeout_seconds: u64,
    /// Argon2id password hashes computed at once (19 MiB each); more wait their turn.
    pub max_concurrent_password_hashes: usize,
}

impl Default for WebSettings {
    fn default() -> Self {
        let server = ServerSettings::default();
        Self {
            public_url: server.public_url,
            trusted_proxies: Vec::new(),
            support_contact: server.support_contact,
            session_idle_timeout_seconds: server.session_idle_timeout.as_secs(),
            session_absolute_timeout_seconds: server.session_absolute_timeout.as_secs(),
            max_concurrent_password_hashes: server.max_concurrent_password_hashes,
        }
    }
}

impl WebSettings {
    /// Copies these settings into the server's, checking what a file or variable may get wrong.
    pub fn apply_to(&self, server: &mut ServerSettings) -> Result<()> {
        if let Some(public_url) = &self.public_url
            && !(public_url.starts_with("http://") || public_url.starts_with("https://"))
        {
            bail!("web.public_url must start with http:// or https://, not {public_url:?}");
        }
        if self.session_idle_timeout_seconds == 0 || self.session_absolute_timeout_seconds == 0 {
            bail!("web session timeouts must be at least one second");
        }
        if self.max_concurrent_password_hashes == 0 {
            bail!("web.max_concurrent_password_hashes must be at least 1");
        }
        server.trusted_proxies = self
            .trusted_proxies
            .iter()
            .map(|proxy| parse_proxy(proxy))
            .collect::<Result<_>>()?;
        server.public_url = self
            .public_url
            .as_ref()
            .map(|url| url.trim_end_matches('/').to_owned());
        server.support_contact = self.support_contact.clone();
        server.session_idle_timeout = Duration::from_secs(self.session_idle_timeout_seconds);
        server.session_absolute_timeout =
            Duration::from_secs(self.session_absolute_timeout_seconds);
        server.max_concurrent_password_hashes = self.max_concurrent_password_hashes;
        Ok(())
    }
}

/// A trusted proxy: a network (`10.0.0.0/8`) or one address (`192.0.2.1`, a /32 or /128).
fn parse_proxy(text: &str) -> Result<ipnet::IpNet> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| {
            anyhow::anyhow!("web.trusted_proxies holds {text:?}, which is not an address or CIDR")
        })
}

/// Signed checkpoints of each account's verifiable log (README, "Verifying the log").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckpointSettings {
    /// The first part of every checkpoint origin (`<instance_name>/<account>`) and the name of
    /// the signing key. Unset means the host name (or `logbook`) on SQLite, and `logbook` on
    /// PostgreSQL, where every node must sign under the same name.
    pub instance_name: Option<String>,
    /// The shortest time between two checkpoints of one account, in milliseconds.
    pub interval_milliseconds: u64,
    /// The Ed25519 signing key file. Unset means `<data_dir>/checkpoint-signing.key`. Every
    /// PostgreSQL node of one database must use a copy of the same file.
    pub signing_key_file: Option<PathBuf>,
}

impl Default for CheckpointSettings {
    fn default() -> Self {
        Self {
            instance_name: None,
            interval_milliseconds: 1000,
            signing_key_file: None,
        }
    }
}

/// Every bound of `logbook_core::ingest::IngestLimits`, in units a config file can hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestSettings {
    pub max_events_per_request: usize,
    pub max_body_bytes: usize,
    pub max_message_bytes: usize,
    pub max_short_text_bytes: usize,
    pub max_metadata_bytes: usize,
    pub max_metadata_depth: usize,
    pub max_targets: usize,
    pub max_changes: usize,
    pub max_future_skew_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SqliteSettings {
    pub synchronous: SqliteSynchronous,
    /// How many read-only connections serve queries and exports beside the single writer.
    pub reader_connections: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PostgresSettings {
    /// Connections each node opens for reads, accounts and keys; the writer has one more.
    pub pool_size: usize,
}

impl Default for PostgresSettings {
    fn default() -> Self {
        Self { pool_size: 8 }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./logbook-data"),
            database: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            log_format: LogFormat::Text,
            server: "http://127.0.0.1:8080".to_owned(),
            ingest: IngestSettings::default(),
            sqlite: SqliteSettings::default(),
            postgres: PostgresSettings::default(),
            checkpoints: CheckpointSettings::default(),
            web: WebSettings::default(),
            limits: LimitsSettings::default(),
            delivery: DeliveryConfig::default(),
            retention: RetentionConfig::default(),
            embed: EmbedConfig::default(),
            geoip: GeoIpConfig::default(),
            sso: None,
        }
    }
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self::from_limits(&IngestLimits::default())
    }
}

impl Default for SqliteSettings {
    fn default() -> Self {
        Self {
            synchronous: SqliteSynchronous::Full,
            reader_connections: 4,
        }
    }
}

impl IngestSettings {
    fn from_limits(limits: &IngestLimits) -> Self {
        Self {
            max_events_per_request: limits.max_events_per_request,
            max_body_bytes: limits.max_body_bytes,
            max_message_bytes: limits.max_message_bytes,
            max_short_text_bytes: limits.max_short_text_bytes,
            max_metadata_bytes: limits.max_metadata_bytes,
            max_metadata_depth: limits.max_metadata_depth,
            max_targets: limits.max_targets,
            max_changes: limits.max_changes,
            max_future_skew_seconds: limits.max_future_skew.whole_seconds().max(0) as u64,
        }
    }

    /// The core's limits, checking what a file or variable may get wrong.
    pub fn to_limits(&self) -> Result<IngestLimits> {
        let most = logbook_core::ingest::MAX_SHORT_TEXT_BYTES_LIMIT;
        if !(1..=most).contains(&self.max_short_text_bytes) {
            bail!("ingest.max_short_text_bytes must be between 1 and {most}");
        }
        Ok(IngestLimits {
            max_events_per_request: self.max_events_per_request,
            max_body_bytes: self.max_body_bytes,
            max_message_bytes: self.max_message_bytes,
            max_short_text_bytes: self.max_short_text_bytes,
            max_metadata_bytes: self.max_metadata_bytes,
            max_metadata_depth: self.max_metadata_depth,
            max_targets: self.max_targets,
            max_changes: self.max_changes,
            max_future_skew: time::Duration::seconds(
                i64::try_from(self.max_future_skew_seconds).unwrap_or(i64::MAX),
            ),
        })
    }
}

/// The values given on the command line; `None` leaves the lower layers' value.
#[derive(Debug, Clone, Default)]
pub struct FlagOverrides {
    pub data_dir: Option<PathBuf>,
    pub database: Option<String>,
    pub listen: Option<SocketAddr>,
    pub log_format: Option<LogFormat>,
    pub server: Option<String>,
}

/// Where the database lives, resolved from the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    Sqlite(PathBuf),
    Postgres(PostgresUrl),
}

/// A `postgres://` URL, which may carry a password: its `Debug` never shows the URL.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresUrl(pub String);

impl std::fmt::Debug for PostgresUrl {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("PostgresUrl(<redacted>)")
    }
}

impl Config {
    /// Builds the configuration from every layer. `config_file` is the `--config` flag; without
    /// it `LOGBOOK_CONFIG` names the file; without either only defaults, environment and flags
    /// apply. `environment` looks a variable up (the process environment in production, a map in
    /// tests).
    pub fn load(
        config_file: Option<&Path>,
        environment: &dyn Fn(&str) -> Option<String>,
        flags: &FlagOverrides,
    ) -> Result<Self> {
        let file_from_environment = environment("LOGBOOK_CONFIG")
            .filter(|value| !value.is_empty())
            .map(PathBuf::from);
        let mut config = match config_file.map(Path::to_path_buf).or(file_from_environment) {
            Some(path) => Self::from_file(&path)?,
            None => Self::default(),
        };
        config.apply_environment(environment)?;
        config.apply_flags(flags);
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read config file {}", path.display()))?;
        Self::from_toml(&text)
            .with_context(|| format!("config file {} is not valid", path.display()))
    }

    pub fn from_toml(text: &str) -> Result<Self> {
        Ok(toml::from_str(text)?)
    }

    fn apply_environment(&mut self, environment: &dyn Fn(&str) -> Option<String>) -> Result<()> {
        let read = |name: &str| environment(name).filter(|value| !value.is_empty());
        if let Some(value) = read("LOGBOOK_DATA_DIR") {
            self.data_dir = PathBuf::from(value);
        }
        if let Some(value) = read("LOGBOOK_DATABASE") {
            self.database = Some(value);
        }
        if let Some(value) = read("LOGBOOK_SSO_CLIENT_SECRET") {
            let Some(sso) = self.sso.as_mut() else {
                bail!(
                    "LOGBOOK_SSO_CLIENT_SECRET is set but the configuration has no [sso] section"
                );
            };
            sso.client_secret = value;
        }
        if let Some(value) = read("LOGBOOK_DELIVERY_ALLOW_PRIVATE_DESTINATIONS") {
            self.delivery.allow_private_destinations = match value.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => bail!(
                    "LOGBOOK_DELIVERY_ALLOW_PRIVATE_DESTINATIONS must be true or false, not {value:?}"
                ),
            };
        }
        if let Some(value) = read("LOGBOOK_DELIVERY_SYSLOG_HOSTNAME") {
            self.delivery.syslog_hostname = Some(value);
        }
        if let Some(value) = read("LOGBOOK_DELIVERY_SYSLOG_APP_NAME") {
            self.delivery.syslog_app_name = value;
        }
        if let Some(value) = read("LOGBOOK_RETENTION_DAYS") {
            self.retention.days = value.parse().map_err(|_| {
                anyhow!("LOGBOOK_RETENTION_DAYS must be a whole number of days (0 keeps everything), not {value:?}")
            })?;
        }
        if let Some(value) = read("LOGBOOK_PERSONAL_DATA_DAYS") {
            self.retention.personal_data_days = value.parse().map_err(|_| {
                anyhow!("LOGBOOK_PERSONAL_DATA_DAYS must be a whole number of days (0 keeps personal data), not {value:?}")
            })?;
        }
        if let Some(value) = read("LOGBOOK_GEOIP_CITY_DATABASE") {
            self.geoip.city_database = Some(PathBuf::from(value));
        }
        if let Some(value) = read("LOGBOOK_GEOIP_ASN_DATABASE") {
            self.geoip.asn_database = Some(PathBuf::from(value));
        }
        if let Some(value) = read("LOGBOOK_GEOIP_IMPOSSIBLE_TRAVEL_SPEED_KMH") {
            self.geoip.impossible_travel_speed_kmh = value.parse().map_err(|_| {
                anyhow!("LOGBOOK_GEOIP_IMPOSSIBLE_TRAVEL_SPEED_KMH must be a whole number of km/h, not {value:?}")
            })?;
        }
        if let Some(value) = read("LOGBOOK_LISTEN") {
            self.listen = value.parse().with_context(|| {
                format!("LOGBOOK_LISTEN must be an address like 127.0.0.1:8080, not {value:?}")
            })?;
        }
        if let Some(value) = read("LOGBOOK_LOG_FORMAT") {
            self.log_format = match value.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => bail!("LOGBOOK_LOG_FORMAT must be text or json, not {other:?}"),
            };
        }
        if let Some(value) = read("LOGBOOK_SERVER") {
            self.server = value;
        }
        let ingest = &mut self.ingest;
        let numbers: [(&str, &mut usize); 8] = [
            (
                "LOGBOOK_MAX_EVENTS_PER_REQUEST",
                &mut ingest.max_events_per_request,
            ),
            ("LOGBOOK_MAX_BODY_BYTES", &mut ingest.max_body_bytes),
            ("LOGBOOK_MAX_MESSAGE_BYTES", &mut ingest.max_message_bytes),
            (
                "LOGBOOK_MAX_SHORT_TEXT_BYTES",
                &mut ingest.max_short_text_bytes,
            ),
            ("LOGBOOK_MAX_METADATA_BYTES", &mut ingest.max_metadata_bytes),
            ("LOGBOOK_MAX_METADATA_DEPTH", &mut ingest.max_metadata_depth),
            ("LOGBOOK_MAX_TARGETS", &mut ingest.max_targets),
            ("LOGBOOK_MAX_CHANGES", &mut ingest.max_changes),
        ];
        for (name, slot) in numbers {
            if let Some(value) = read(name) {
                *slot = parse_number(name, &value)?;
            }
        }
        let limits = &mut self.limits;
        let rates: [(&str, &mut u32); 8] = [
            (
                "LOGBOOK_INGEST_EVENTS_PER_SECOND",
                &mut limits.ingest_events_per_second,
            ),
            ("LOGBOOK_INGEST_EVENT_BURST", &mut limits.ingest_event_burst),
            ("LOGBOOK_READS_PER_SECOND", &mut limits.reads_per_second),
            ("LOGBOOK_READ_BURST", &mut limits.read_burst),
            (
                "LOGBOOK_INGEST_EVENTS_PER_SECOND_PER_KEY",
                &mut limits.ingest_events_per_second_per_key,
            ),
            (
                "LOGBOOK_INGEST_EVENT_BURST_PER_KEY",
                &mut limits.ingest_event_burst_per_key,
            ),
            (
                "LOGBOOK_READS_PER_SECOND_PER_KEY",
                &mut limits.reads_per_second_per_key,
            ),
            ("LOGBOOK_READ_BURST_PER_KEY", &mut limits.read_burst_per_key),
        ];
        for (name, slot) in rates {
            if let Some(value) = read(name) {
                *slot = parse_number(name, &value)?;
            }
        }
        if let Some(value) = read("LOGBOOK_QUERY_TIME_BUDGET_MILLISECONDS") {
            limits.query_time_budget_milliseconds =
                parse_number("LOGBOOK_QUERY_TIME_BUDGET_MILLISECONDS", &value)?;
        }
        if let Some(value) = read("LOGBOOK_MAX_FUTURE_SKEW_SECONDS") {
            ingest.max_future_skew_seconds =
                parse_number("LOGBOOK_MAX_FUTURE_SKEW_SECONDS", &value)?;
        }
        if let Some(value) = read("LOGBOOK_SQLITE_SYNCHRONOUS") {
            self.sqlite.synchronous = SqliteSynchronous::parse(&value).with_context(|| {
                format!("LOGBOOK_SQLITE_SYNCHRONOUS must be full or normal, not {value:?}")
            })?;
        }
        if let Some(value) = read("LOGBOOK_SQLITE_READER_CONNECTIONS") {
            self.sqlite.reader_connections =
                parse_number("LOGBOOK_SQLITE_READER_CONNECTIONS", &value)?;
        }
        if let Some(value) = read("LOGBOOK_POSTGRES_POOL_SIZE") {
            self.postgres.pool_size = parse_number("LOGBOOK_POSTGRES_POOL_SIZE", &value)?;
        }
        if let Some(value) = read("LOGBOOK_INSTANCE_NAME") {
            self.checkpoints.instance_name = Some(value);
        }
        if let Some(value) = read("LOGBOOK_CHECKPOINT_INTERVAL_MILLISECONDS") {
            self.checkpoints.interval_milliseconds =
                parse_number("LOGBOOK_CHECKPOINT_INTERVAL_MILLISECONDS", &value)?;
        }
        if let Some(value) = read("LOGBOOK_CHECKPOINT_SIGNING_KEY_FILE") {
            self.checkpoints.signing_key_file = Some(PathBuf::from(value));
        }
        if let Some(value) = read("LOGBOOK_PUBLIC_URL") {
            self.web.public_url = Some(value);
        }
        if let Some(value) = read("LOGBOOK_TRUSTED_PROXIES") {
            self.web.trusted_proxies = value
                .split(',')
                .map(str::trim)
                .filter(|proxy| !proxy.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Some(value) = read("LOGBOOK_SUPPORT_CONTACT") {
            self.web.support_contact = Some(value);
        }
        if let Some(value) = read("LOGBOOK_SESSION_IDLE_TIMEOUT_SECONDS") {
            self.web.session_idle_timeout_seconds =
                parse_number("LOGBOOK_SESSION_IDLE_TIMEOUT_SECONDS", &value)?;
        }
        if let Some(value) = read("LOGBOOK_SESSION_ABSOLUTE_TIMEOUT_SECONDS") {
            self.web.session_absolute_timeout_seconds =
                parse_number("LOGBOOK_SESSION_ABSOLUTE_TIMEOUT_SECONDS", &value)?;
        }
        if let Some(value) = read("LOGBOOK_MAX_CONCURRENT_PASSWORD_HASHES") {
            self.web.max_concurrent_password_hashes =
                parse_number("LOGBOOK_MAX_CONCURRENT_PASSWORD_HASHES", &value)?;
        }
        Ok(())
    }

    fn apply_flags(&mut self, flags: &FlagOverrides) {
        if let Some(data_dir) = &flags.data_dir {
            self.data_dir = data_dir.clone();
        }
        if let Some(database) = &flags.database {
            self.database = Some(database.clone());
        }
        if let Some(listen) = flags.listen {
            self.listen = listen;
        }
        if let Some(log_format) = flags.log_format {
            self.log_format = log_format;
        }
        if let Some(server) = &flags.server {
            self.server = server.clone();
        }
    }

    /// Where the database is: the `database` URL, or `<data_dir>/logbook.db`.
    pub fn database_location(&self) -> Result<DatabaseLocation> {
        match &self.database {
            Some(url) => parse_database_url(url),
            None => Ok(DatabaseLocation::Sqlite(self.data_dir.join("logbook.db"))),
        }
    }

    /// Where the checkpoint signing key lives.
    pub fn checkpoint_signing_key_file(&self) -> PathBuf {
        self.checkpoints
            .signing_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("checkpoint-signing.key"))
    }

    /// The instance name checkpoints are signed under (see `CheckpointSettings::instance_name`).
    pub fn checkpoint_instance_name(&self) -> Result<String> {
        if let Some(name) = &self.checkpoints.instance_name {
            return Ok(name.clone());
        }
        if matches!(self.database_location()?, DatabaseLocation::Postgres(_)) {
            return Ok("logbook".to_owned());
        }
        let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .unwrap_or_default();
        let host_name = host_name.trim();
        let usable = !host_name.is_empty()
            && host_name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-' | b'_'));
        Ok(if usable {
            host_name.to_owned()
        } else {
            "logbook".to_owned()
        })
    }

    /// Renders this configuration as TOML (for `logbook config show`).
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string_pretty(self).context("could not render the configuration as TOML")
    }
}

fn parse_number<Number: std::str::FromStr>(name: &str, value: &str) -> Result<Number> {
    value
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("{name} must be a whole number, not {value:?}"))
}

/// `sqlite:///absolute/path.db` (three slashes: an absolute path) or `sqlite://relative/path.db`.
pub fn parse_database_url(url: &str) -> Result<DatabaseLocation> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            bail!(
                "database URL {url:?} names no file: use sqlite:///absolute/path.db or sqlite://relative/path.db"
            );
        }
        return Ok(DatabaseLocation::Sqlite(PathBuf::from(path)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(DatabaseLocation::Postgres(PostgresUrl(url.to_owned())));
    }
    // Never echo the URL itself here: a postgres-like URL may carry a password.
    let scheme = url.split_once("://").map_or("(none)", |(scheme, _)| scheme);
    bail!(
        "unsupported database URL scheme {scheme:?}: use sqlite:///absolute/path.db, sqlite://relative/path.db or postgres://user@host/database"
    )
}

/// The commented default configuration file printed by `logbook config default`. Every value is
/// the built-in default, so the file parses back into `Config::default()`.
pub fn default_config_toml() -> String {
    let defaults = Config::default();
    let ingest = &defaults.ingest;
    let mut text = String::new();
    let _ = write!(
        text,
        r#"# Logbook configuration. Every value below is the built-in default.
# Precedence, lowest first: defaults, this file (--config FILE or LOGBOOK_CONFIG),
# LOGBOOK_* environment variables, command-line flags.

# Where the database and the lock file live (LOGBOOK_DATA_DIR, --data-dir).
data_dir = {data_dir:?}

# The database URL (LOGBOOK_DATABASE, --database): sqlite:///absolute/path.db,
# sqlite://relative/path.db, or postgres://user:password@host:5432/database for several nodes
# on one PostgreSQL. Unset means sqlite://<data_dir>/logbook.db.
# database = "sqlite://./logbook-data/logbook.db"

# The address `logbook serve` listens on (LOGBOOK_LISTEN, --listen).
listen = "{listen}"

# Logbook's own logs on stderr: "text" or "json" (LOGBOOK_LOG_FORMAT, --log-format).
# The level filter comes from LOGBOOK_LOG (default "info").
log_format = "text"

# The server that `send`, `query`, `tail` and `export` talk to (LOGBOOK_SERVER, --server).
server = "{server}"

[ingest]
# Events in one POST /api/v1/events (LOGBOOK_MAX_EVENTS_PER_REQUEST).
max_events_per_request = {max_events_per_request}
# Bytes of one request body; nothing past this is read (LOGBOOK_MAX_BODY_BYTES).
max_body_bytes = {max_body_bytes}
# Bytes of an event's message (LOGBOOK_MAX_MESSAGE_BYTES).
max_message_bytes = {max_message_bytes}
# Bytes of action, key, user_agent, actor and target fields, change fields, at most 16000
# (LOGBOOK_MAX_SHORT_TEXT_BYTES).
max_short_text_bytes = {max_short_text_bytes}
# Bytes of an event's metadata as JSON (LOGBOOK_MAX_METADATA_BYTES).
max_metadata_bytes = {max_metadata_bytes}
# Nesting depth of an event's metadata (LOGBOOK_MAX_METADATA_DEPTH).
max_metadata_depth = {max_metadata_depth}
# Targets of one event (LOGBOOK_MAX_TARGETS).
max_targets = {max_targets}
# Changes of one event (LOGBOOK_MAX_CHANGES).
max_changes = {max_changes}
# How far in the future created_at may be, in seconds (LOGBOOK_MAX_FUTURE_SKEW_SECONDS).
max_future_skew_seconds = {max_future_skew_seconds}

[sqlite]
# "full" fsyncs every commit, so an acknowledged event survives power loss; "normal" may lose
# the last commits on power loss (LOGBOOK_SQLITE_SYNCHRONOUS).
synchronous = "{synchronous}"
# Read-only connections for queries and exports (LOGBOOK_SQLITE_READER_CONNECTIONS).
reader_connections = {reader_connections}

[postgres]
# Used when `database` is a postgres:// URL. Connections each node keeps for reads, accounts and
# keys; the single writer of each node has one more (LOGBOOK_POSTGRES_POOL_SIZE).
pool_size = {pool_size}

[checkpoints]
# Checkpoint origins are "<instance_name>/<account>" (LOGBOOK_INSTANCE_NAME). Unset means the
# host name (or "logbook") on SQLite and "logbook" on PostgreSQL; set the same on every node.
# instance_name = "logbook.example.com"
# Shortest time between two checkpoints of an account (LOGBOOK_CHECKPOINT_INTERVAL_MILLISECONDS).
interval_milliseconds = {checkpoint_interval}
# The Ed25519 signing key, created with mode 0600 on first start if missing
# (LOGBOOK_CHECKPOINT_SIGNING_KEY_FILE). Unset means <data_dir>/checkpoint-signing.key.
# Every PostgreSQL node of one database must use a copy of the same key file.
# signing_key_file = "/etc/logbook/checkpoint-signing.key"

[web]
# The address people reach Logbook at (LOGBOOK_PUBLIC_URL). An https:// URL makes the session
# cookie Secure; forms are accepted from this origin.
# public_url = "https://logbook.example.com"
# Reverse proxies whose X-Forwarded-For is believed, as addresses or CIDRs
# (LOGBOOK_TRUSTED_PROXIES, comma-separated). Empty means the socket peer is the client.
trusted_proxies = []
# The page footer's help link: an email address or a URL (LOGBOOK_SUPPORT_CONTACT).
# support_contact = "support@example.com"
# A session unused this long ends, in seconds (LOGBOOK_SESSION_IDLE_TIMEOUT_SECONDS).
session_idle_timeout_seconds = {session_idle}
# A session ends this long after sign-in, in seconds (LOGBOOK_SESSION_ABSOLUTE_TIMEOUT_SECONDS).
session_absolute_timeout_seconds = {session_absolute}
# Argon2id password hashes computed at once, 19 MiB each (LOGBOOK_MAX_CONCURRENT_PASSWORD_HASHES).
max_concurrent_password_hashes = {password_hashes}

# Single sign-on with an OpenID Connect provider (README, "Single sign-on") for the accounts
# named here; an account's own settings (logbook sso set) win over this section.
# [sso]
# display_name = "Google"
# issuer = "https://accounts.google.com"
# client_id = "1234.apps.googleusercontent.com"
# client_secret = "..."   # or LOGBOOK_SSO_CLIENT_SECRET
# accounts = ["acme"]
# default_role = "viewer"   # owner, admin, viewer or member
# invited_only = false      # true: only existing or invited people may sign in
# password_sign_in_allowed = true

[delivery]
# Alert and stream deliveries (README, "Alerts and destinations"). Destinations on loopback,
# private, link-local or metadata addresses, and plain http:// webhooks, are refused at send time
# unless this is true (LOGBOOK_DELIVERY_ALLOW_PRIVATE_DESTINATIONS): for on-premises receivers.
allow_private_destinations = false
# Failed attempts before a delivery goes to the dead-letter list on the Alerts page.
max_attempts = {delivery_attempts}
# Retries wait initial_backoff, doubling per failure up to max_backoff (minus up to half, random).
initial_backoff_milliseconds = {delivery_initial_backoff}
max_backoff_milliseconds = {delivery_max_backoff}
# How often each node looks for new events and due deliveries.
poll_interval_milliseconds = {delivery_poll}
# Connecting to a receiver, TLS handshake included, and one send (a webhook's answer, a syslog
# collector's close, a RELP window's answers).
connect_timeout_milliseconds = {delivery_connect_timeout}
send_timeout_milliseconds = {delivery_send_timeout}
# Each destination has its own connections, so a slow one never delays another: keep-alive
# connections per webhook, and connections per syslog, syslog-over-TLS or RELP collector.
webhook_connections = {delivery_webhook_connections}
syslog_connections = {delivery_syslog_connections}
# Messages a syslog connection sends before closing it, which is how a collector confirms them.
syslog_batch_size = {delivery_syslog_batch}
# RELP messages sent before their answers are awaited.
relp_window = {delivery_relp_window}
# HOSTNAME of syslog messages (LOGBOOK_DELIVERY_SYSLOG_HOSTNAME); unset means the instance name.
# syslog_hostname = "logbook.example.com"
# APP-NAME of syslog messages (LOGBOOK_DELIVERY_SYSLOG_APP_NAME).
syslog_app_name = "{delivery_app_name}"

[retention]
# Days an account keeps its events after they were received (LOGBOOK_RETENTION_DAYS); 0 keeps
# everything. An account's own period (`logbook retention set`) wins; a legal hold
# (`logbook retention hold`) stops every removal. What is removed stays verifiable: the tree of
# the removed events and a statement signed with the checkpoint key are kept.
days = 0
# How often each node looks for events to remove, and how many one transaction removes.
interval_seconds = {retention_interval}
batch_size = {retention_batch}
# Days an event keeps its personal fields (IP address, user agent, actor name, and the metadata
# members an account declares personal) before aging removes them (LOGBOOK_PERSONAL_DATA_DAYS);
# 0 keeps them as long as the event. The event, its message, targets and changes stay, and still
# verify. An account's own period (`logbook retention personal`) wins.
personal_data_days = 0
# Keep the /24 (IPv4) or /48 (IPv6) of an address that aging removes.
keep_network = false

[geoip]
# Where each address is (README, "Where each address is"): MaxMind DB files giving every event's
# ip its place (GeoLite2 City, DB-IP City Lite, IPinfo Lite) and network owner (GeoLite2 ASN,
# DB-IP ASN Lite), looked up at ingest and kept with the event. Without them nothing is located.
# A replaced file is loaded within reload_interval_seconds; a bad one is refused and the
# previous database stays in use.
# city_database = "/var/lib/GeoIP/GeoLite2-City.mmdb"   # LOGBOOK_GEOIP_CITY_DATABASE
# asn_database = "/var/lib/GeoIP/GeoLite2-ASN.mmdb"     # LOGBOOK_GEOIP_ASN_DATABASE
reload_interval_seconds = 60
# Needs attention reports two successful logins of one actor as impossible travel when the
# distance between their places, less both places' accuracy radii, divided by the time between
# them is above this speed (LOGBOOK_GEOIP_IMPOSSIBLE_TRAVEL_SPEED_KMH).
impossible_travel_speed_kmh = 900

[embed]
# The Activity Logs view a platform embeds in its console with viewer sessions (README, "Logbook
# in your console"). Origins allowed to frame it, as https://host[:port] (http:// only for
# localhost); each account may add its own through the API. Empty means top-level only.
frame_ancestors = []
# How the view looks, unless an account sets its own: the product name shown in place of
# "Logbook", an accent colour (#rrggbb), light, dark or auto, and an https URL of a logo.
# product_name = "Example Cloud"
# accent_colour = '#1f6feb'
# theme = "auto"
# logo_url = "https://cdn.example.com/logo.svg"
# A viewer-session URL opens once, within this many seconds of its making.
open_within_seconds = {embed_open_within}
# How long a session lives from its making, unless the request says, and the longest it may ask
# for (at most 30 days).
default_session_lifetime_seconds = {embed_default_lifetime}
max_session_lifetime_seconds = {embed_max_lifetime}
# Sessions made per minute with one API key, and for one account; 0 turns a limit off.
sessions_per_minute_per_key = {embed_per_key}
sessions_per_minute_per_account = {embed_per_account}

[limits]
# Fair limits per account (all its keys together); a rate of 0 turns that bucket off. Over a
# limit a request is refused whole with 429 and Retry-After; nothing of it is stored. Each rate
# and burst can also be set as LOGBOOK_<NAME IN CAPITALS> (LOGBOOK_READS_PER_SECOND, ...).
ingest_events_per_second = {limit_ingest_rate}
ingest_event_burst = {limit_ingest_burst}
reads_per_second = {limit_read_rate}
read_burst = {limit_read_burst}
max_concurrent_exports = {limit_exports}
max_live_tails = {limit_tails}
# The same per API key (a platform key writes for many accounts).
ingest_events_per_second_per_key = {limit_key_ingest_rate}
ingest_event_burst_per_key = {limit_key_ingest_burst}
reads_per_second_per_key = {limit_key_read_rate}
read_burst_per_key = {limit_key_read_burst}
# A query running longer than this is stopped and answered query_timeout (503).
query_time_budget_milliseconds = {limit_query_budget}
# A connection whose request headers take longer than this is closed.
header_read_timeout_seconds = {limit_header_timeout}
# Connections served at once; more wait in the listen queue.
max_connections = {limit_connections}
# One account's own limits; fields left out keep the values above.
# [limits.accounts.acme]
# ingest_events_per_second = 50000
# reads_per_second = 200
"#,
        data_dir = defaults.data_dir.display().to_string(),
        listen = defaults.listen,
        server = defaults.server,
        pool_size = defaults.postgres.pool_size,
        checkpoint_interval = defaults.checkpoints.interval_milliseconds,
        delivery_attempts = defaults.delivery.max_attempts,
        delivery_initial_backoff = defaults.delivery.initial_backoff_milliseconds,
        delivery_max_backoff = defaults.delivery.max_backoff_milliseconds,
        delivery_poll = defaults.delivery.poll_interval_milliseconds,
        delivery_connect_timeout = defaults.delivery.connect_timeout_milliseconds,
        delivery_send_timeout = defaults.delivery.send_timeout_milliseconds,
        delivery_webhook_connections = defaults.delivery.webhook_connections,
        delivery_syslog_connections = defaults.delivery.syslog_connections,
        delivery_syslog_batch = defaults.delivery.syslog_batch_size,
        delivery_relp_window = defaults.delivery.relp_window,
        delivery_app_name = defaults.delivery.syslog_app_name,
        retention_interval = defaults.retention.interval_seconds,
        embed_open_within = defaults.embed.open_within_seconds,
        embed_default_lifetime = defaults.embed.default_session_lifetime_seconds,
        embed_max_lifetime = defaults.embed.max_session_lifetime_seconds,
        embed_per_key = defaults.embed.sessions_per_minute_per_key,
        embed_per_account = defaults.embed.sessions_per_minute_per_account,
        retention_batch = defaults.retention.batch_size,
        session_idle = defaults.web.session_idle_timeout_seconds,
        session_absolute = defaults.web.session_absolute_timeout_seconds,
        password_hashes = defaults.web.max_concurrent_password_hashes,
        limit_ingest_rate = defaults.limits.ingest_events_per_second,
        limit_ingest_burst = defaults.limits.ingest_event_burst,
        limit_read_rate = defaults.limits.reads_per_second,
        limit_read_burst = defaults.limits.read_burst,
        limit_exports = defaults.limits.max_concurrent_exports,
        limit_tails = defaults.limits.max_live_tails,
        limit_key_ingest_rate = defaults.limits.ingest_events_per_second_per_key,
        limit_key_ingest_burst = defaults.limits.ingest_event_burst_per_key,
        limit_key_read_rate = defaults.limits.reads_per_second_per_key,
        limit_key_read_burst = defaults.limits.read_burst_per_key,
        limit_query_budget = defaults.limits.query_time_budget_milliseconds,
        limit_header_timeout = defaults.limits.header_read_timeout_seconds,
        limit_connections = defaults.limits.max_connections,
        max_events_per_request = ingest.max_events_per_request,
        max_body_bytes = ingest.max_body_bytes,
        max_message_bytes = ingest.max_message_bytes,
        max_short_text_bytes = ingest.max_short_text_bytes,
        max_metadata_bytes = ingest.max_metadata_bytes,
        max_metadata_depth = ingest.max_metadata_depth,
        max_targets = ingest.max_targets,
        max_changes = ingest.max_changes,
        max_future_skew_seconds = ingest.max_future_skew_seconds,
        synchronous = defaults.sqlite.synchronous.as_str(),
        reader_connections = defaults.sqlite.reader_connections,
    );
    text
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn environment_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn ip_databases_come_from_the_geoip_section_and_the_environment() {
        assert!(
            Config::default()
                .geoip
                .settings(Path::new("data"))
                .unwrap()
                .is_none()
        );
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("logbook.toml");
        std::fs::write(
            &file,
            "[geoip]\ncity_database = \"/srv/GeoLite2-City.mmdb\"\nreload_interval_seconds = 300\n",
        )
        .unwrap();
        let environment = environment_of(&[
            (
                "LOGBOOK_GEOIP_CITY_DATABASE",
                "/var/lib/GeoIP/dbip-city-lite.mmdb",
            ),
            (
                "LOGBOOK_GEOIP_ASN_DATABASE",
                "/var/lib/GeoIP/GeoLite2-ASN.mmdb",
            ),
        ]);
        let config = Config::load(Some(&file), &environment, &FlagOverrides::default()).unwrap();
        let settings = config.geoip.settings(Path::new("/data")).unwrap().unwrap();
        assert_eq!(
            settings.city_database.as_deref(),
            Some(Path::new("/var/lib/GeoIP/dbip-city-lite.mmdb"))
        );
        assert_eq!(
            settings.asn_database.as_deref(),
            Some(Path::new("/var/lib/GeoIP/GeoLite2-ASN.mmdb"))
        );
        assert_eq!(settings.snapshot_directory, Path::new("/data/ip-databases"));
        assert_eq!(
            settings.reload_interval,
            std::time::Duration::from_secs(300)
        );
        let never =
            Config::from_toml("[geoip]\nasn_database = \"a.mmdb\"\nreload_interval_seconds = 0\n")
                .unwrap();
        assert!(never.geoip.settings(Path::new("data")).is_err());
    }

    #[test]
    fn the_impossible_travel_speed_comes_from_the_geoip_section_and_the_environment() {
        let mut server = ServerSettings::default();
        Config::default().geoip.apply_to(&mut server).unwrap();
        assert_eq!(server.attention.detectors.impossible_travel_speed_kmh, 900);
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("logbook.toml");
        std::fs::write(&file, "[geoip]\nimpossible_travel_speed_kmh = 1200\n").unwrap();
        let config =
            Config::load(Some(&file), &environment_of(&[]), &FlagOverrides::default()).unwrap();
        config.geoip.apply_to(&mut server).unwrap();
        assert_eq!(server.attention.detectors.impossible_travel_speed_kmh, 1200);
        let environment = environment_of(&[("LOGBOOK_GEOIP_IMPOSSIBLE_TRAVEL_SPEED_KMH", "700")]);
        let config = Config::load(Some(&file), &environment, &FlagOverrides::default()).unwrap();
        config.geoip.apply_to(&mut server).unwrap();
        assert_eq!(server.attention.detectors.impossible_travel_speed_kmh, 700);
        let bad = environment_of(&[("LOGBOOK_GEOIP_IMPOSSIBLE_TRAVEL_SPEED_KMH", "fast")]);
        assert!(Config::load(Some(&file), &bad, &FlagOverrides::default()).is_err());
        let zero = Config::from_toml("[geoip]\nimpossible_travel_speed_kmh = 0\n").unwrap();
        assert!(zero.geoip.apply_to(&mut server).is_err());
    }

    #[test]
    fn a_limits_section_sets_defaults_and_per_account_overrides() {
        let config = Config::from_toml(
            "[limits]\nreads_per_second = 30\n[limits.accounts.acme]\nreads_per_second = 500\nmax_live_tails = 2\n",
        )
        .unwrap();
        let mut server = ServerSettings::default();
        config.limits.apply_to(&mut server).unwrap();
        assert_eq!(server.limits.account_defaults.reads_per_second, 30);
        let acme =
            &server.limits.account_overrides[&logbook_core::AccountId::parse("acme").unwrap()];
        assert_eq!(acme.reads_per_second, 500);
        assert_eq!(acme.max_live_tails, 2);
        assert_eq!(acme.read_burst, server.limits.account_defaults.read_burst);

        let environment = environment_of(&[
            ("LOGBOOK_READS_PER_SECOND", "0"),
            ("LOGBOOK_READ_BURST_PER_KEY", "999"),
        ]);
        let config = Config::load(None, &environment, &FlagOverrides::default()).unwrap();
        assert_eq!(config.limits.reads_per_second, 0, "0 turns the bucket off");
        assert_eq!(config.limits.read_burst_per_key, 999);

        let bad = Config::from_toml("[limits.accounts.\"Not An Account\"]\nreads_per_second = 1\n")
            .unwrap();
        let error = bad
            .limits
            .apply_to(&mut ServerSettings::default())
            .unwrap_err();
        assert!(
            error.to_string().contains("not a valid account name"),
            "{error}"
        );
    }

    #[test]
    fn the_commented_default_file_parses_back_into_the_defaults() {
        assert_eq!(
            Config::from_toml(&default_config_toml()).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn default_ingest_settings_are_the_core_ingest_limits() {
        let limits = IngestSettings::default().to_limits().unwrap();
        let core = IngestLimits::default();
        assert_eq!(limits.max_events_per_request, core.max_events_per_request);
        assert_eq!(limits.max_body_bytes, core.max_body_bytes);
        assert_eq!(limits.max_future_skew, core.max_future_skew);
        assert_eq!(
            IngestSettings::from_limits(&limits),
            IngestSettings::default()
        );
    }

    #[test]
    fn a_short_text_limit_longer_than_an_index_token_holds_is_refused_at_start_up() {
        let mut settings = IngestSettings {
            max_short_text_bytes: logbook_core::ingest::MAX_SHORT_TEXT_BYTES_LIMIT,
            ..IngestSettings::default()
        };
        assert!(settings.to_limits().is_ok());
        settings.max_short_text_bytes += 1;
        let error = settings.to_limits().unwrap_err().to_string();
        assert!(error.contains("ingest.max_short_text_bytes"), "{error}");
        settings.max_short_text_bytes = 0;
        assert!(settings.to_limits().is_err());
    }

    #[test]
    fn environment_overrides_the_file_and_flags_override_the_environment() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("logbook.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:1111\"\ndata_dir = \"/from/file\"\n[ingest]\nmax_body_bytes = 100\nmax_targets = 3\n").unwrap();
        let environment = environment_of(&[
            ("LOGBOOK_LISTEN", "127.0.0.1:2222"),
            ("LOGBOOK_MAX_BODY_BYTES", "200"),
        ]);
        let flags = FlagOverrides {
            data_dir: Some(PathBuf::from("/from/flag")),
            ..FlagOverrides::default()
        };
        let config = Config::load(Some(&file), &environment, &flags).unwrap();
        assert_eq!(config.listen, "127.0.0.1:2222".parse().unwrap());
        assert_eq!(config.ingest.max_body_bytes, 200);
        assert_eq!(config.ingest.max_targets, 3);
        assert_eq!(config.data_dir, PathBuf::from("/from/flag"));

        let flags = FlagOverrides {
            listen: Some("127.0.0.1:3333".parse().unwrap()),
            ..FlagOverrides::default()
        };
        assert_eq!(
            Config::load(Some(&file), &environment, &flags)
                .unwrap()
                .listen,
            "127.0.0.1:3333".parse().unwrap()
        );
    }

    #[test]
    fn the_config_file_can_come_from_logbook_config() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("logbook.toml");
        std::fs::write(&file, "[sqlite]\nsynchronous = \"normal\"\n").unwrap();
        let environment = environment_of(&[("LOGBOOK_CONFIG", file.to_str().unwrap())]);
        let config = Config::load(None, &environment, &FlagOverrides::default()).unwrap();
        assert_eq!(config.sqlite.synchronous, SqliteSynchronous::Normal);
    }

    #[test]
    fn unknown_keys_and_bad_environment_values_are_clear_errors() {
        assert!(Config::from_toml("lisen = \"127.0.0.1:1\"").is_err());
        let environment = environment_of(&[("LOGBOOK_MAX_BODY_BYTES", "lots")]);
        let error = Config::load(None, &environment, &FlagOverrides::default()).unwrap_err();
        assert!(
            error.to_string().contains("LOGBOOK_MAX_BODY_BYTES"),
            "{error}"
        );
    }

    #[test]
    fn database_urls_pick_sqlite_paths_or_postgres() {
        assert_eq!(
            parse_database_url("sqlite:///var/lib/logbook.db").unwrap(),
            DatabaseLocation::Sqlite(PathBuf::from("/var/lib/logbook.db"))
        );
        assert_eq!(
            parse_database_url("sqlite://data/logbook.db").unwrap(),
            DatabaseLocation::Sqlite(PathBuf::from("data/logbook.db"))
        );
        let postgres = parse_database_url("postgres://user:secret@db/logbook").unwrap();
        assert_eq!(
            postgres,
            DatabaseLocation::Postgres(PostgresUrl("postgres://user:secret@db/logbook".into()))
        );
        assert!(!format!("{postgres:?}").contains("secret"));
        let error = parse_database_url("mysql://user:secret@db/logbook")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("secret"), "{error}");
    }

    #[test]
    fn delivery_settings_come_from_the_file_and_the_environment_into_the_server_settings() {
        let mut config: Config = toml::from_str(
            "[delivery]\nmax_attempts = 3\ninitial_backoff_milliseconds = 50\nmax_backoff_milliseconds = 400\nwebhook_connections = 2\nsyslog_app_name = \"audit\"\n",
        )
        .unwrap();
        config
            .apply_environment(&environment_of(&[
                ("LOGBOOK_DELIVERY_ALLOW_PRIVATE_DESTINATIONS", "true"),
                ("LOGBOOK_DELIVERY_SYSLOG_HOSTNAME", "log-1.example.com"),
            ]))
            .unwrap();
        let mut server = ServerSettings::default();
        config
            .delivery
            .apply_to(&mut server, "instance.example.com")
            .unwrap();
        assert_eq!(server.delivery.webhook_connections, 2);
        assert_eq!(server.delivery.syslog_connections, 1);
        assert_eq!(server.delivery.syslog_app_name, "audit");
        assert_eq!(server.delivery.syslog_hostname, "log-1.example.com");
        let mut defaults = ServerSettings::default();
        Config::default()
            .delivery
            .apply_to(&mut defaults, "instance.example.com")
            .unwrap();
        assert_eq!(
            defaults.delivery.syslog_hostname, "instance.example.com",
            "the instance name unless set"
        );
        assert_eq!(defaults.delivery.syslog_app_name, "logbook");
        assert!(server.delivery.allow_private_destinations);
        assert_eq!(server.delivery.retry.max_attempts, 3);
        assert_eq!(
            server.delivery.retry.max_backoff,
            std::time::Duration::from_millis(400)
        );
        assert!(
            !ServerSettings::default()
                .delivery
                .allow_private_destinations
        );
        config.delivery.max_attempts = 0;
        assert!(
            config
                .delivery
                .apply_to(&mut server, "instance.example.com")
                .is_err()
        );
        config.delivery.max_attempts = 3;
        config.delivery.syslog_app_name = "two words".to_owned();
        assert!(
            config
                .delivery
                .apply_to(&mut server, "instance.example.com")
                .is_err()
        );
    }

    #[test]
    fn web_settings_come_from_the_file_and_the_environment_into_the_server_settings() {
        let directory = tempfile::tempdir().unwrap();
        let file = directory.path().join("logbook.toml");
        std::fs::write(
            &file,
            "[web]\npublic_url = \"https://logbook.example.com/\"\ntrusted_proxies = [\"10.0.0.0/8\"]\nsupport_contact = \"help@example.com\"\nsession_idle_timeout_seconds = 600\n",
        )
        .unwrap();
        let environment = environment_of(&[
            ("LOGBOOK_TRUSTED_PROXIES", "192.0.2.1, 2001:db8::/32"),
            ("LOGBOOK_SESSION_ABSOLUTE_TIMEOUT_SECONDS", "3600"),
            ("LOGBOOK_MAX_CONCURRENT_PASSWORD_HASHES", "4"),
        ]);
        let config = Config::load(Some(&file), &environment, &FlagOverrides::default()).unwrap();
        let mut server = ServerSettings::default();
        config.web.apply_to(&mut server).unwrap();
        assert_eq!(
            server.public_url.as_deref(),
            Some("https://logbook.example.com")
        );
        assert_eq!(
            server.trusted_proxies,
            vec![
                "192.0.2.1/32".parse::<ipnet::IpNet>().unwrap(),
                "2001:db8::/32".parse().unwrap()
            ],
            "the environment replaces the file's list"
        );
        assert_eq!(server.support_contact.as_deref(), Some("help@example.com"));
        assert_eq!(server.session_idle_timeout, Duration::from_secs(600));
        assert_eq!(server.session_absolute_timeout, Duration::from_secs(3600));
        assert_eq!(server.max_concurrent_password_hashes, 4);
    }

    #[test]
    fn default_web_settings_leave_the_server_defaults_unchanged() {
        let mut server = ServerSettings::default();
        WebSettings::default().apply_to(&mut server).unwrap();
        let defaults = ServerSettings::default();
        assert_eq!(server.public_url, defaults.public_url);
        assert_eq!(server.trusted_proxies, defaults.trusted_proxies);
        assert_eq!(server.session_idle_timeout, defaults.session_idle_timeout);
        assert_eq!(
            server.session_absolute_timeout,
            defaults.session_absolute_timeout
        );
        assert_eq!(
            server.max_concurrent_password_hashes,
            defaults.max_concurrent_password_hashes
        );
    }

    #[test]
    fn bad_web_settings_are_clear_errors() {
        let mut server = ServerSettings::default();
        let bad_proxy = WebSettings {
            trusted_proxies: vec!["not-an-address".into()],
            ..WebSettings::default()
        };
        let error = bad_proxy.apply_to(&mut server).unwrap_err().to_string();
        assert!(error.contains("not-an-address"), "{error}");
        let bad_url = WebSettings {
            public_url: Some("logbook.example.com".into()),
            ..WebSettings::default()
        };
        assert!(bad_url.apply_to(&mut server).is_err());
        let no_hashing = WebSettings {
            max_concurrent_password_hashes: 0,
            ..WebSettings::default()
        };
        assert!(no_hashing.apply_to(&mut server).is_err());
    }

    #[test]
    fn the_default_database_lives_in_the_data_directory() {
        let config = Config {
            data_dir: PathBuf::from("/srv/logbook"),
            ..Config::default()
        };
        assert_eq!(
            config.database_location().unwrap(),
            DatabaseLocation::Sqlite(PathBuf::from("/srv/logbook/logbook.db"))
        );
    }

    const SSO_SECTION: &str = "[sso]\ndisplay_name = \"Okta\"\nissuer = \"https://acme.okta.com\"\nclient_id = \"0oa1\"\nclient_secret = \"file secret\"\naccounts = [\"acme\"]\n";

    #[test]
    fn an_sso_section_reaches_the_server_with_its_defaults_and_the_secret_from_the_environment() {
        let mut config = Config::from_toml(SSO_SECTION).unwrap();
        config
            .apply_environment(&environment_of(&[(
                "LOGBOOK_SSO_CLIENT_SECRET",
                "environment secret",
            )]))
            .unwrap();
        let mut server = ServerSettings::default();
        config.sso.as_ref().unwrap().apply_to(&mut server).unwrap();
        let instance = server.single_sign_on.expect("the section is applied");
        assert_eq!(
            instance.accounts,
            vec![logbook_core::AccountId::parse("acme").unwrap()]
        );
        assert_eq!(instance.settings.display_name, "Okta");
        assert_eq!(
            instance.settings.client_secret.expose(),
            "environment secret"
        );
        assert_eq!(
            instance.settings.default_role,
            logbook_core::people::Role::Viewer
        );
        assert!(!instance.settings.invited_only);
        assert!(instance.settings.password_sign_in_allowed);
    }

    #[test]
    fn the_sso_client_secret_is_never_shown_by_debug_or_config_show() {
        let config = Config::from_toml(SSO_SECTION).unwrap();
        assert!(!format!("{config:?}").contains("file secret"));
        let shown = config.to_toml().unwrap();
        assert!(!shown.contains("file secret"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn bad_sso_settings_are_clear_errors_naming_the_field() {
        for (replace, with, expected) in [
            (
                "https://acme.okta.com",
                "http://acme.okta.com",
                "sso.issuer",
            ),
            ("accounts = [\"acme\"]", "accounts = []", "sso.accounts"),
            (
                "accounts = [\"acme\"]",
                "accounts = [\"Not An Account\"]",
                "sso.accounts",
            ),
            ("client_id = \"0oa1\"", "client_id = \"\"", "sso.client_id"),
            (
                "accounts = [",
                "default_role = \"root\"\naccounts = [",
                "sso.default_role",
            ),
        ] {
            let text = SSO_SECTION.replace(replace, with);
            let config = Config::from_toml(&text).unwrap();
            let error = config
                .sso
                .unwrap()
                .apply_to(&mut ServerSettings::default())
                .unwrap_err()
                .to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
        assert!(
            Config::from_toml("[sso]\nissuer = \"https://x\"\nsurprise = 1\n").is_err(),
            "unknown keys are refused"
        );
        let error = Config::default()
            .apply_environment(&environment_of(&[("LOGBOOK_SSO_CLIENT_SECRET", "x")]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("[sso]"), "{error}");
    }

    #[test]
    fn a_loopback_http_issuer_is_accepted_for_a_provider_on_this_machine() {
        let text = SSO_SECTION.replace("https://acme.okta.com", "http://127.0.0.1:4000");
        let config = Config::from_toml(&text).unwrap();
        config
            .sso
            .unwrap()
            .apply_to(&mut ServerSettings::default())
            .unwrap();
    }
}
