//! `logbook limits show|set|clear --account NAME`: one account's own limits, kept in the database
//! (`account_limits`) so every node applies them; each server rereads them every few seconds.
//! Field by field, a stored value wins over the configuration file's `[limits.accounts.NAME]`,
//! which wins over the `[limits]` defaults.

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

pub async fn run(config: &Config, command: LimitsCommand) -> Result<()> {
    match command {
        LimitsCommand::Show { account, json } => {
            show(config, &parse_account(&account)?, json).await
        }
        LimitsCommand::Set(arguments) => set(config, &arguments).await,
        LimitsCommand::Clear(arguments) => clear(config, &arguments).await,
    }
}

fn parse_account(name: &str) -> Result<AccountId> {
    AccountId::parse(name).map_err(|error| anyhow!("invalid account name {name:?}: {error}"))
}

const ALL_FIELDS: [LimitField; 6] = [
    LimitField::IngestEventsPerSecond,
    LimitField::IngestEventBurst,
    LimitField::ReadsPerSecond,
    LimitField::ReadBurst,
    LimitField::MaxConcurrentExports,
    LimitField::MaxLiveTails,
];

fn field_name(field: LimitField) -> &'static str {
    match field {
        LimitField::IngestEventsPerSecond => "ingest_events_per_second",
        LimitField::IngestEventBurst => "ingest_event_burst",
        LimitField::ReadsPerSecond => "reads_per_second",
        LimitField::ReadBurst => "read_burst",
        LimitField::MaxConcurrentExports => "max_concurrent_exports",
        LimitField::MaxLiveTails => "max_live_tails",
    }
}

fn stored_field(stored: &mut StoredAccountLimits, field: LimitField) -> &mut Option<u32> {
    match field {
        LimitField::IngestEventsPerSecond => &mut stored.ingest_events_per_second,
        LimitField::IngestEventBurst => &mut stored.ingest_event_burst,
        LimitField::ReadsPerSecond => &mut stored.reads_per_second,
        LimitField::ReadBurst => &mut stored.read_burst,
        LimitField::MaxConcurrentExports => &mut stored.max_concurrent_exports,
        LimitField::MaxLiveTails => &mut stored.max_live_tails,
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
    }
}

fn effective_field(limits: &AccountLimits, field: LimitField) -> u64 {
    match field {
        LimitField::IngestEventsPerSecond => u64::from(limits.ingest_events_per_second),
        LimitField::IngestEventBurst => u64::from(limits.ingest_event_burst),
        LimitField::ReadsPerSecond => u64::from(limits.reads_per_second),
        LimitField::ReadBurst => u64::from(limits.read_burst),
        LimitField::MaxConcurrentExports => limits.max_concurrent_exports as u64,
        LimitField::MaxLiveTails => limits.max_live_tails as u64,
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
    let given = [
        (
            LimitField::IngestEventsPerSecond,
            arguments.ingest_events_per_second,
        ),
        (LimitField::IngestEventBurst, arguments.ingest_event_burst),
        (LimitField::ReadsPerSecond, arguments.reads_per_second),
        (LimitField::ReadBurst, arguments.read_burst),
        (
            LimitField::MaxConcurrentExports,
            arguments.max_concurrent_exports,
        ),
        (LimitField::MaxLiveTails, arguments.max_live_tails),
    ];
    if given.iter().all(|(_, value)| value.is_none()) {
        return Err(anyhow!(
            "name at least one limit to set, e.g. --reads-per-second 100 (see logbook limits set --help)"
        ));
    }
    write_stored(config, &account, |stored| {
        for (field, value) in given {
            if value.is_some() {
                *stored_field(stored, field) = value;
            }
        }
    })
    .await?;
    eprintln!(
        "Stored. Running servers apply it within {} seconds; `logbook limits show --account {account}` shows the result.",
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
            *stored_field(stored, field) = None;
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
    let mut stored = found?;

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

    let rows: Vec<(&'static str, u64, &'static str)> = ALL_FIELDS
        .iter()
        .map(|&field| {
            let source = if stored_field(&mut stored, field).is_some() {
                "database (logbook limits set)"
            } else if configured_field(&configured, field) {
                "configuration file [limits.accounts]"
            } else {
                "default [limits]"
            };
            (
                field_name(field),
                effective_field(&effective, field),
                source,
            )
        })
        .collect();
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
                vec![(*name).to_owned(), value.to_string(), (*source).to_owned()]
            })
            .collect();
        write_table(&mut stdout, &["LIMIT", "VALUE", "FROM"], &table)?;
    }
    Ok(())
}
