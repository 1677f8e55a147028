//! The command line as clap types: every subcommand, flag and help text, and nothing else.
//! The options shared by every command are `global`, so they work before or after the
//! subcommand (`logbook --data-dir d account list` and `logbook account list --data-dir d`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::LogFormat;

#[derive(Debug, Parser)]
#[command(name = "logbook", version, about = "Logbook: a self-hosted, tamper-evident activity log.", long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOptions,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalOptions {
    /// Directory for the database and the lock file [default: ./logbook-data]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite:///absolute/path.db, sqlite://relative/path.db or postgres://user@host/database [default: sqlite://<data-dir>/logbook.db]
    #[arg(long, global = true, value_name = "URL")]
    pub database: Option<String>,
    /// TOML configuration file (or LOGBOOK_CONFIG)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Format of Logbook's own logs on stderr
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Logbook server for send, query, tail and export [default: http://127.0.0.1:8080]
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Logbook server on the data directory.
    Serve(ServeArgs),
    /// Create and list accounts (on the database directly, or with --server over the management
    /// API with an admin key in LOGBOOK_KEY).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Create, list and revoke API keys (on the database directly, or with --server over the
    /// management API with an admin key in LOGBOOK_KEY).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Add, list and remove the people who sign in to the web page (on the database directly, or
    /// with --server over the management API with an admin key in LOGBOOK_KEY).
    #[command(subcommand)]
    User(UserCommand),
    /// Write a consistent copy of the live database to DEST.
    Backup(BackupArgs),
    /// Copy everything from one database to another (SQLite to PostgreSQL); resumable.
    MigrateStore(MigrateStoreArgs),
    /// Fill an account with a realistic history of a sample team.
    Demo(DemoArgs),
    /// Show the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Send events to a server (key from LOGBOOK_KEY).
    Send(SendArgs),
    /// Search events on a server, newest first (key from LOGBOOK_KEY).
    Query(QueryArgs),
    /// Follow new events as they arrive (key from LOGBOOK_KEY).
    Tail(TailArgs),
    /// Stream every matching event as NDJSON or CSV (key from LOGBOOK_KEY).
    Export(ExportArgs),
    /// Show, set and clear one account's own limits, kept in the database so every node applies
    /// them within seconds (they win over [limits.accounts.NAME] in the configuration file); with
    /// --server through the management API with an admin key in LOGBOOK_KEY.
    #[command(subcommand)]
    Limits(LimitsCommand),
    /// Show, set and clear one account's single sign-on with an OpenID Connect provider (they win
    /// over the configuration file's [sso]); with --server through the management API with an
    /// admin key in LOGBOOK_KEY.
    #[command(subcommand)]
    Sso(SsoCommand),
    /// Show and set how long an account keeps its events, place and clear legal holds, and prune
    /// now (works on the database directly).
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Work with the IP databases of [geoip] (works on the database directly).
    #[command(subcommand)]
    Geoip(GeoIpCommand),
    /// Print the public key that verifies this instance's checkpoints and exports.
    CheckpointKey,
    /// Check the tamper evidence: the database, an export file, or growth since a saved checkpoint.
    Verify(crate::commands::verify::VerifyArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account.
    Create {
        /// Account name: lowercase letters, digits, '.', '_', '-'
        name: String,
    },
    /// List accounts with their event counts.
    List {
        /// Print a JSON array instead of a table
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a key and print it once.
    Create(KeyCreateArgs),
    /// List keys (never their secrets).
    List {
        /// Only this account's keys
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
        /// Print a JSON array instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by its id (key_...).
    Revoke {
        /// The key id shown by `key create` and `key list`
        key_id: String,
        /// The key's account (needed with --server, where keys are managed per account)
        #[arg(long, value_name = "NAME")]
        account: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum GeoIpCommand {
    /// Give events stored before an IP database was configured their place and network, in
    /// bounded batches; run again after an interruption, it continues where it stopped. Events
    /// that already have a place are never looked up again, and no event's leaf or new-IP and
    /// new-country flags change.
    Backfill {
        /// Events read per batch (one transaction each)
        #[arg(long, value_name = "EVENTS", default_value_t = 1000)]
        batch_size: u32,
        /// Read every account from its first event instead of from where the last run stopped
        #[arg(long)]
        from_start: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// One account's retention period, legal hold and what was pruned.
    Show {
        #[arg(long, value_name = "NAME")]
        account: String,
        /// Print JSON instead of lines
        #[arg(long)]
        json: bool,
    },
    /// Keep the account's events this many days after they were received.
    Set {
        #[arg(long, value_name = "NAME")]
        account: String,
        #[arg(long, value_name = "DAYS")]
        days: i64,
        /// Who asks for it (recorded in the account's log)
        #[arg(long, value_name = "NAME")]
        by: String,
    },
    /// Drop the account's own period: the instance default ([retention] days) applies.
    Clear {
        #[arg(long, value_name = "NAME")]
        account: String,
        /// Who asks for it (recorded in the account's log)
        #[arg(long, value_name = "NAME")]
        by: String,
    },
    /// Place a legal hold: nothing of the account is pruned or erased until it is cleared.
    Hold {
        #[arg(long, value_name = "NAME")]
        account: String,
        /// Why (recorded in the account's log)
        #[arg(long)]
        reason: String,
        /// Who places it (recorded in the account's log)
        #[arg(long, value_name = "NAME")]
        by: String,
    },
    /// Clear the account's legal hold.
    Release {
        #[arg(long, value_name = "NAME")]
        account: String,
        /// Why (recorded in the account's log)
        #[arg(long)]
        reason: String,
        /// Who clears it (recorded in the account's log)
        #[arg(long, value_name = "NAME")]
        by: String,
    },
    /// Set how long the account's events keep their personal fields (IP address, user agent,
    /// actor name, declared metadata), or with --clear follow the instance default again.
    Personal {
        #[arg(long, value_name = "NAME")]
        account: String,
        /// Days after which aging removes the personal fields
        #[arg(
            long,
            value_name = "DAYS",
            required_unless_present = "clear",
            conflicts_with = "clear"
        )]
        days: Option<i64>,
        /// Keep the /24 (IPv4) or /48 (IPv6) of a removed address
        #[arg(long, conflicts_with = "clear")]
        keep_network: bool,
        /// Drop the account's own period: the instance default ([retention] personal_data_days) applies
        #[arg(long)]
        clear: bool,
        /// Who asks for it (recorded in the account's log)
        #[arg(long, value_name = "NAME")]
        by: String,
    },
    /// Declare which metadata members of the account's events are personal (aged and erased
    /// with the rest); no --field declares none.
    PersonalFields {
        #[arg(long, value_name = "NAME")]
        account: String,
        /// A metadata member name (repeat for several)
        #[arg(long = "field", value_name = "KEY")]
        fields: Vec<String>,
        /// Who asks for it (recorded in the account's log)
        #[arg(long, value_name = "NAME")]
        by: String,
    },
    /// Erase a person's personal data from every event whose actor.id is theirs; the events stay
    /// and still verify.
    Erase {
        #[arg(long, value_name = "NAME")]
        account: String,
        /// The person's actor.id
        #[arg(long, value_name = "ID")]
        actor: String,
        /// Why (recorded in the account's log), e.g. the request's reference
        #[arg(long)]
        reason: String,
        /// Who asks for it (recorded in the account's log)
        #[arg(long, value_name = "NAME")]
        by: String,
    },
    /// Run one retention round now (pruning and aging), as the server does every minute.
    Prune,
}

#[derive(Debug, Subcommand)]
pub enum SsoCommand {
    /// Print the single sign-on that applies to the account (never its client secret) and the
    /// redirect URI to register with the provider.
    Show {
        /// The account
        #[arg(long, value_name = "NAME")]
        account: String,
        /// Print a JSON object instead of lines
        #[arg(long)]
        json: bool,
    },
    /// Store the account's provider; people then see "Sign in with <display name>".
    Set(SsoSetArgs),
    /// Remove the account's own settings (the configuration file's [sso] may still apply).
    Clear {
        /// The account
        #[arg(long, value_name = "NAME")]
        account: String,
    },
}

/// An account's OpenID Connect provider (README, "Single sign-on").
#[derive(Debug, Args)]
pub struct SsoSetArgs {
    /// The account
    #[arg(long, value_name = "NAME")]
    pub account: String,
    /// The provider's name on the sign-in button, e.g. Okta
    #[arg(long, value_name = "TEXT")]
    pub display_name: String,
    /// The provider's issuer URL (https), e.g. https://accounts.google.com
    #[arg(long, value_name = "URL")]
    pub issuer: String,
    /// The client id the provider gave Logbook
    #[arg(long, value_name = "ID")]
    pub client_id: String,
    /// Read the client secret from the first line of standard input (required the first time;
    /// without it the stored secret is kept). Never given on the command line, where other users
    /// of the machine could read it.
    #[arg(long)]
    pub client_secret_stdin: bool,
    /// Role of a person created by their first sign-in: owner, admin, viewer or member
    #[arg(long, value_name = "ROLE", default_value = "viewer")]
    pub default_role: String,
    /// Only people who are users already, or invited, may sign in; nobody is created
    #[arg(long)]
    pub invited_only: bool,
    /// Refuse password sign-in for the account's people (they use the provider only)
    #[arg(long)]
    pub no_password_sign_in: bool,
}

#[derive(Debug, Subcommand)]
pub enum LimitsCommand {
    /// Print the limits the account gets and where each value comes from.
    Show {
        /// The account
        #[arg(long, value_name = "NAME")]
        account: String,
        /// Print a JSON object instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Store overrides for the account; the fields named change, the others keep their stored value.
    Set(LimitsSetArgs),
    /// Remove the account's stored overrides (all of them, or only the fields named).
    Clear(LimitsClearArgs),
}

/// The per-account limits, named like their configuration fields (README, "Limits").
#[derive(Debug, Args)]
pub struct LimitsSetArgs {
    /// The account
    #[arg(long, value_name = "NAME")]
    pub account: String,
    /// Events per second the account may ingest, all its keys together (0 = unlimited)
    #[arg(long, value_name = "N")]
    pub ingest_events_per_second: Option<u32>,
    /// Events the account may send at once above its rate
    #[arg(long, value_name = "N")]
    pub ingest_event_burst: Option<u32>,
    /// Read requests per second (0 = unlimited)
    #[arg(long, value_name = "N")]
    pub reads_per_second: Option<u32>,
    /// Read requests the account may send at once above its rate
    #[arg(long, value_name = "N")]
    pub read_burst: Option<u32>,
    /// Exports streaming at the same time
    #[arg(long, value_name = "N")]
    pub max_concurrent_exports: Option<u32>,
    /// Live tails open at the same time
    #[arg(long, value_name = "N")]
    pub max_live_tails: Option<u32>,
    /// Quota: events the account may store per UTC day (by received_at); off unless set
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=i64::MAX as u64))]
    pub events_per_day: Option<u64>,
    /// Quota: bytes of events (their stored JSON) the account may keep in all; off unless set
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=i64::MAX as u64))]
    pub stored_bytes: Option<u64>,
}

#[derive(Debug, Args)]
pub struct LimitsClearArgs {
    /// The account
    #[arg(long, value_name = "NAME")]
    pub account: String,
    /// Clear only these fields (e.g. --field read_burst); without it, every stored override
    #[arg(long = "field", value_name = "FIELD", value_enum)]
    pub fields: Vec<LimitField>,
}

/// One per-account limit, by its configuration name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum LimitField {
    IngestEventsPerSecond,
    IngestEventBurst,
    ReadsPerSecond,
    ReadBurst,
    MaxConcurrentExports,
    MaxLiveTails,
    EventsPerDay,
    StoredBytes,
}

#[derive(Debug, Args)]
pub struct KeyCreateArgs {
    /// The account the key reads and writes
    #[arg(
        long,
        value_name = "NAME",
        required_unless_present = "platform",
        conflicts_with = "platform"
    )]
    pub account: Option<String>,
    /// A platform key, which writes for any account (each event names its account)
    #[arg(long)]
    pub platform: bool,
    /// ingest, read, admin, comma-separated (a platform key: ingest and/or admin)
    #[arg(long, value_name = "SCOPES")]
    pub scope: String,
    /// A note shown in `key list`
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Print a JSON object (key included) instead of the key alone
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user to an account (password from a prompt, or one line of stdin).
    Add {
        #[arg(long, value_name = "NAME")]
        account: String,
        #[arg(long)]
        email: String,
        /// owner, admin, viewer or member
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Read the password from the first line of stdin instead of prompting
        #[arg(long)]
        password_stdin: bool,
    },
    /// List an account's users.
    List {
        #[arg(long, value_name = "NAME")]
        account: String,
        /// Print a JSON array instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Remove a user; their sessions end.
    Remove {
        #[arg(long, value_name = "NAME")]
        account: String,
        #[arg(long)]
        email: String,
    },
    /// Set a new password; every session of the user ends.
    ResetPassword {
        #[arg(long, value_name = "NAME")]
        account: String,
        #[arg(long)]
        email: String,
        /// Read the password from the first line of stdin instead of prompting
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// File to write the copy to (must not exist)
    pub destination: PathBuf,
}

#[derive(Debug, Args)]
pub struct MigrateStoreArgs {
    /// The database to copy from, e.g. sqlite:///var/lib/logbook/logbook.db
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The PostgreSQL database to copy into, e.g. postgres://logbook@db/logbook
    #[arg(long, value_name = "URL")]
    pub to: String,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Account to fill (created if missing)
    #[arg(long, default_value = "demo", value_name = "NAME")]
    pub account: String,
    /// How many events to write
    #[arg(long, default_value_t = 800, value_name = "N")]
    pub events: usize,
    /// Seed of the generator: the same seed writes the same history
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a commented configuration file holding every default.
    Default,
    /// Print the configuration in effect (file, environment and flags applied).
    Show,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// NDJSON input: a file, or '-' for stdin (same as --file)
    #[arg(value_name = "INPUT", conflicts_with_all = ["action", "message"])]
    pub input: Option<PathBuf>,
    /// NDJSON file of events, one per line ('-' for stdin)
    #[arg(long, value_name = "FILE", conflicts_with_all = ["input", "action", "message"])]
    pub file: Option<PathBuf>,
    /// Action of a single event, e.g. server.reboot
    #[arg(long, requires = "message")]
    pub action: Option<String>,
    /// Message of a single event
    #[arg(long, requires = "action")]
    pub message: Option<String>,
    /// Actor id of a single event
    #[arg(long, value_name = "ID", requires = "action")]
    pub actor: Option<String>,
    /// IP address of a single event's actor
    #[arg(long, requires = "action")]
    pub ip: Option<String>,
    /// When it happened (RFC 3339 with offset) [default: when received]
    #[arg(long, value_name = "TIME", requires = "action")]
    pub created_at: Option<String>,
    /// success or failure
    #[arg(long, requires = "action")]
    pub outcome: Option<String>,
    /// Account of a single event (needed with a platform key)
    #[arg(long, requires = "action")]
    pub account: Option<String>,
    /// Idempotency key of a single event [default: a fresh UUID]
    #[arg(long, requires = "action")]
    pub key: Option<String>,
    /// Events per request
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub batch_size: u64,
    /// Attempts per request before giving up (timeouts, 5xx, 429, connection errors are retried)
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_attempts: u32,
    /// Print the server's answer as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The query, e.g. 'actor:alice@acme.com action:server.* "reboot web-1"'
    #[arg(value_name = "QUERY", default_value = "")]
    pub query: String,
    /// Events per page
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Follow next_cursor until every matching event was shown
    #[arg(long)]
    pub all: bool,
    /// Print NDJSON, one event per line
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// Only events matching this query
    #[arg(value_name = "QUERY", default_value = "")]
    pub query: String,
    /// Print NDJSON, one event per line
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Ndjson,
    Csv,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only events matching this query
    #[arg(value_name = "QUERY", default_value = "")]
    pub query: String,
    #[arg(long, value_enum, default_value_t = ExportFormat::Ndjson)]
    pub format: ExportFormat,
    /// Write to this file instead of stdout
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// NDJSON with leaf hashes, inclusion proofs and a signed trailer, for `logbook verify FILE`
    #[arg(long)]
    pub verifiable: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
