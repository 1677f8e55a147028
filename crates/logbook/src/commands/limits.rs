//! `logbook limits show|set|clear --account NAME`: one account's own limits, kept in the database
//! (`account_limits`) so every node applies them; each server rereads them every few seconds.
//! Field by field, a stored value wins over the configuration file's `[limits.accounts.NAME]`,
//! which wins over the `[limits]` defaults. The stored-volume quotas (`--events-per-day`,
//! `--stored-bytes`) are off unless stored here: the stores' writers enforce them in the events'
//! transaction and read them from the database only, so every node applies the same numbers.

use std::io::Write;

use anyhow::{Context, Result, anyhow};
use logbook_core::store::StoredAccountLimits;
use logbook_core::{AccountId, Clock, StoreError, SystemClock};
use logbook_server::ServerSettings;
use logbook_server::limits::{AccountLimits, Limiter};

use crate::cli::{LimitField, LimitsClearArgs, LimitsCommand, LimitsSetArgs};
use crate::commands::{CreateDatabase, open_store};
use crate::config::{AccountLimitsOverride, Config};
use crate::output::write_table;

pub async fn run(config: &Config, command: LimitsCommand, over_http: bool) -> Result<()> {
    if over_http {
        return run_over_http(config, command).await;
    }
    match command {
        LimitsCommand::Show { account, json } => {
            show(config, &parse_account(&account)?, json).await
        }
        LimitsCommand::Set(arguments) => set(config, &arguments).await,
        LimitsCommand::Clear(arguments) => clear(config, &arguments).await,
    }
}

/// The same commands through the management API (`--server`, admin key in `LOGBOOK_KEY`); the
/// server computes what it applies, so `show` prints the server's own values and sources.
async fn run_over_http(config: &Config, command: LimitsCommand) -> Result<()> {
    let client = crate::client::manage::admin_client(config)?;
    let failed = |error: logbook_client::Error| anyhow!("{error}");
    match command {
        LimitsCommand::Show { account, json } => {
            let account = parse_account(&account)?;
            let answer = client
                .account_limits(account.as_str())
                .await
                .map_err(failed)?;
            let rows = ALL_FIELDS
                .iter()
                .map(|&field| {
                    let limit = &answer["limits"][field_name(field)];
                    let source = limit["source"].as_str().ok_or_else(|| {
                        anyhow!(
                            "the server's answer has no source for {}",
                            field_name(field)
                        )
                    })?;
                    Ok((
                        field_name(field),
                        limit["value"].as_u64(),
                        source.to_owned(),
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            print_limits(&account, &rows, json)
        }
        LimitsCommand::Set(arguments) => {
            let account = parse_account(&arguments.account)?;
            let rate = |value: Option<u32>| value.map(u64::from);
            let given = [
                (
                    LimitField::IngestEventsPerSecond,
                    rate(arguments.ingest_events_per_second),
                ),
                (
                    LimitField::IngestEventBurst,
                    rate(arguments.ingest_event_burst),
                ),
                (LimitField::ReadsPerSecond, rate(arguments.reads_per_second)),
                (LimitField::ReadBurst, rate(arguments.read_burst)),
                (
                    LimitField::MaxConcurrentExports,
                    rate(arguments.max_concurrent_exports),
                ),
                (LimitField::MaxLiveTails, rate(arguments.max_live_tails)),
                (LimitField::EventsPerDay, arguments.events_per_day),
                (LimitField::StoredBytes, arguments.stored_bytes),
            ];
            let body: serde_json::Map<String, serde_json::Value> = given
                .iter()
                .filter_map(|(field, value)| {
                    value.map(|value| (field_name(*field).to_owned(), value.into()))
                })
                .collect();
            if body.is_empty() {
                return Err(anyhow!(
                    "name at least one limit to set, e.g. --reads-per-second 100 (see logbook limits set --help)"
                ));
            }
            client
                .set_account_limits(account.as_str(), serde_json::Value::Object(body))
                .await
                .map_err(failed)?;
            eprintln!(
                "Stored. The server applied it now and other nodes do within {} seconds; `logbook limits show --account {account}` shows the result.",
                logbook_server::limits::STORED_OVERRIDE_REFRESH_INTERVAL.as_secs()
            );
            Ok(())
        }
        LimitsCommand::Clear(arguments) => {
            let account = parse_account(&arguments.account)?;
            if arguments.fields.is_empty() {
                client
                    .clear_account_limits(account.as_str())
                    .await
                    .map_err(failed)?;
            } else {
                let body: serde_json::Map<String, serde_json::Value> = arguments
                    .fields
                    .iter()
                    .map(|field| (field_name(*field).to_owned(), serde_json::Value::Null))
                    .collect();
                client
                    .set_account_limits(account.as_str(), serde_json::Value::Object(body))
                    .await
                    .map_err(failed)?;
            }
            eprintln!("Cleared. Running servers fall back to the configuration within seconds.");
            Ok(())
        }
    }
}

fn parse_account(name: &str) -> Result<AccountId> {
    AccountId::parse(name).map_err(|error| anyhow!("invalid account name {name:?}: {error}"))
}

const ALL_FIELDS: [LimitField; 8] = [
    LimitField::IngestEventsPerSecond,
    LimitField::IngestEventBurst,
    LimitField::ReadsPerSecond,
    LimitField::ReadBurst,
    LimitField::MaxConcurrentExports,
    LimitField::MaxLiveTails,
    LimitField::EventsPerDay,
    LimitField::StoredBytes,
];

fn field_name(field: LimitField) -> &'static str {
    match field {
        LimitField::IngestEventsPerSecond => "ingest_events_per_second",
        LimitField::IngestEventBurst => "ingest_event_burst",
        LimitField::ReadsPerSecond => "reads_per_second",
        LimitField::ReadBurst => "read_burst",
        LimitField::MaxConcurrentExports => "max_concurrent_exports",
        LimitField::MaxLiveTails => "max_live_tails",
        LimitField::EventsPerDay => "events_per_day",
        LimitField::StoredBytes => "stored_bytes",
    }
}

/// A stored-volume quota (enforced by the store's writer), not a rate limit of the server.
fn is_volume_quota(field: LimitField) -> bool {
    matches!(field, LimitField::EventsPerDay | LimitField::StoredBytes)
}

fn stored_value(stored: &StoredAccountLimits, field: LimitField) -> Option<u64> {
    match field {
        LimitField::IngestEventsPerSecond => stored.ingest_events_per_second.map(u64::from),
        LimitField::IngestEventBurst => stored.ingest_event_burst.map(u64::from),
        LimitField::ReadsPerSecond => stored.reads_per_second.map(u64::from),
        LimitField::ReadBurst => stored.read_burst.map(u64::from),
        LimitField::MaxConcurrentExports => stored.max_concurrent_exports.map(u64::from),
        LimitField::MaxLiveTails => stored.max_live_tails.map(u64::from),
        LimitField::EventsPerDay => stored.events_per_day,
        LimitField::StoredBytes => stored.stored_bytes,
    }
}

/// Stores `value` in `field`; the rate fields' values come from `u32` flags, so they fit.
fn set_stored_value(stored: &mut StoredAccountLimits, field: LimitField, value: Option<u64>) {
    let rate = value.map(|value| u32::try_from(value).unwrap_or(u32::MAX));
    match field {
        LimitField::IngestEventsPerSecond => stored.ingest_events_per_second = rate,
        LimitField::IngestEventBurst => stored.ingest_event_burst = rate,
        LimitField::ReadsPerSecond => stored.reads_per_second = rate,
        LimitField::ReadBurst => stored.read_burst = rate,
        LimitField::MaxConcurrentExports => stored.max_concurrent_exports = rate,
        LimitField::MaxLiveTails => stored.max_live_tails = rate,
        LimitField::EventsPerDay => stored.events_per_day = value,
        LimitField::StoredBytes => stored.stored_bytes = value,
    }
}

fn configured_field(configured: &AccountLimitsOverride, field: LimitField) -> bool {
    match field {
        LimitField::IngestEventsPerSecond => configured.ingest_events_per_second.is_some(),
        LimitField::IngestEventBurst => configured.ingest_event_burst.is_some(),
        LimitField::ReadsPerSecond => configured.reads_per_second.is_some(),
        LimitField::ReadBurst => configured.read_burst.is_some(),
        LimitField::MaxConcurrentExports => configured.max_concurrent_exports.is_some(),
        LimitField::MaxLiveTails => configured.max_live_tails.is_some(),
        LimitField::EventsPerDay | LimitField::StoredBytes => false,
    }
}

/// The value the account gets; `None` for a quota that is off.
fn effective_field(
    limits: &AccountLimits,
    stored: &StoredAccountLimits,
    field: LimitField,
) -> Option<u64> {
    match field {
        LimitField::IngestEventsPerSecond => Some(u64::from(limits.ingest_events_per_second)),
        LimitField::IngestEventBurst => Some(u64::from(limits.ingest_event_burst)),
        LimitField::ReadsPerSecond => Some(u64::from(limits.reads_per_second)),
        LimitField::ReadBurst => Some(u64::from(limits.read_burst)),
        LimitField::MaxConcurrentExports => Some(limits.max_concurrent_exports as u64),
        LimitField::MaxLiveTails => Some(limits.max_live_tails as u64),
        LimitField::EventsPerDay | LimitField::StoredBytes => stored_value(stored, field),
    }
}

/// The account's stored overrides (empty when it has none).
async fn stored_limits_of(
    store: &dyn logbook_core::Store,
    account: &AccountId,
) -> Result<StoredAccountLimits> {
    Ok(store
        .account_limits()
        .stored_account_limits()
        .await
        .context("could not read the stored limits")?
        .into_iter()
        .find(|(stored_account, _)| stored_account == account)
        .map(|(_, limits)| limits)
        .unwrap_or_default())
}

async fn write_stored(
    config: &Config,
    account: &AccountId,
    change: impl FnOnce(&mut StoredAccountLimits),
) -> Result<StoredAccountLimits> {
    let store = open_store(config, CreateDatabase::Never)?;
    let result = async {
        let mut stored = stored_limits_of(store.as_ref(), account).await?;
        change(&mut stored);
        match store
            .account_limits()
            .set_stored_account_limits(account, &stored, SystemClock.now())
            .await
        {
            Ok(()) => Ok(stored),
            Err(StoreError::AccountNotFound(account)) => {
                Err(anyhow!("account {account} does not exist"))
            }
            Err(error) => Err(error).context("could not store the limits"),
        }
    }
    .await;
    store.shutdown().await;
    result
}

async fn set(config: &Config, arguments: &LimitsSetArgs) -> Result<()> {
    let account = parse_account(&arguments.account)?;
    let rate = |value: Option<u32>| value.map(u64::from);
    let given = [
        (
            LimitField::IngestEventsPerSecond,
            rate(arguments.ingest_events_per_second),
        ),
        (
            LimitField::IngestEventBurst,
            rate(arguments.ingest_event_burst),
        ),
        (LimitField::ReadsPerSecond, rate(arguments.reads_per_second)),
        (LimitField::ReadBurst, rate(arguments.read_burst)),
        (
            LimitField::MaxConcurrentExports,
            rate(arguments.max_concurrent_exports),
        ),
        (LimitField::MaxLiveTails, rate(arguments.max_live_tails)),
        (LimitField::EventsPerDay, arguments.events_per_day),
        (LimitField::StoredBytes, arguments.stored_bytes),
    ];
    if given.iter().all(|(_, value)| value.is_none()) {
        return Err(anyhow!(
            "name at least one limit to set, e.g. --reads-per-second 100 (see logbook limits set --help)"
        ));
    }
    write_stored(config, &account, |stored| {
        for (field, value) in given {
            if value.is_some() {
                set_stored_value(stored, field, value);
            }
        }
    })
    .await?;
    eprintln!(
        "Stored. Running servers apply rate limits within {} seconds and quotas at their next commit; `logbook limits show --account {account}` shows the result.",
        logbook_server::limits::STORED_OVERRIDE_REFRESH_INTERVAL.as_secs()
    );
    Ok(())
}

async fn clear(config: &Config, arguments: &LimitsClearArgs) -> Result<()> {
    let account = parse_account(&arguments.account)?;
    let fields: Vec<LimitField> = if arguments.fields.is_empty() {
        ALL_FIELDS.to_vec()
    } else {
        arguments.fields.clone()
    };
    write_stored(config, &account, |stored| {
        for field in fields {
            set_stored_value(stored, field, None);
        }
    })
    .await?;
    eprintln!("Cleared. Running servers fall back to the configuration within seconds.");
    Ok(())
}

async fn show(config: &Config, account: &AccountId, json: bool) -> Result<()> {
    let store = open_store(config, CreateDatabase::Never)?;
    let found = async {
        let accounts = store
            .list_accounts()
            .await
            .context("could not list accounts")?;
        if !accounts.iter().any(|record| &record.account == account) {
            return Err(anyhow!("account {account} does not exist"));
        }
        stored_limits_of(store.as_ref(), account).await
    }
    .await;
    store.shutdown().await;
    let stored = found?;

    // The same computation a server makes: configuration first, the stored overrides on top.
    let mut server_settings = ServerSettings::default();
    config.limits.apply_to(&mut server_settings)?;
    let limiter = Limiter::new(&server_settings.limits);
    if !stored.is_empty() {
        limiter.apply_stored_overrides(&[(account.clone(), stored.clone())]);
    }
    let effective = limiter.limits_of(account);
    let configured = config
        .limits
        .accounts
        .get(account.as_str())
        .cloned()
        .unwrap_or_default();

    let rows: Vec<(&'static str, Option<u64>, String)> = ALL_FIELDS
        .iter()
        .map(|&field| {
            let source = if stored_value(&stored, field).is_some() {
                "database (logbook limits set)"
            } else if is_volume_quota(field) {
                "off (quota not set)"
            } else if configured_field(&configured, field) {
                "configuration file [limits.accounts]"
            } else {
                "default [limits]"
            };
            (
                field_name(field),
                effective_field(&effective, &stored, field),
                source.to_owned(),
            )
        })
        .collect();
    print_limits(account, &rows, json)
}

/// The limits as `show` prints them, from the database or from the server alike.
fn print_limits(
    account: &AccountId,
    rows: &[(&'static str, Option<u64>, String)],
    json: bool,
) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    if json {
        let object: serde_json::Map<String, serde_json::Value> = rows
            .iter()
            .map(|(name, value, source)| {
                (
                    (*name).to_owned(),
                    serde_json::json!({"value": value, "source": source}),
                )
            })
            .collect();
        serde_json::to_writer_pretty(
            &mut stdout,
            &serde_json::json!({"account": account, "limits": object}),
        )?;
        writeln!(stdout)?;
    } else {
        let table: Vec<Vec<String>> = rows
            .iter()
            .map(|(name, value, source)| {
                let value = value.map_or_else(|| "off".to_owned(), |value| value.to_string());
                vec![(*name).to_owned(), value, (*source).to_owned()]
            })
            .collect();
        write_table(&mut stdout, &["LIMIT", "VALUE", "FROM"], &table)?;
    }
    Ok(())
}
