//! `logbook geoip backfill`: gives events stored before an IP database was configured the place
//! and network the configured databases give their address now (README, "Where each address
//! is"). Events located at ingest are never looked up again, and nothing else of an event
//! changes: its leaf still verifies and its `new_ip`/`new_country` flags stay what they were.
//!
//! Each account is read in batches of `--batch-size` events (`LocationStore::locate_stored_events`)
//! from the position its last committed batch saved, so an interrupted backfill, run again,
//! continues where it stopped.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use logbook_core::location::SharedIpLocator;
use logbook_server::ip_databases::IpDatabases;

use crate::cli::GeoIpCommand;
use crate::commands::{CreateDatabase, open_store};
use crate::config::Config;

pub async fn run(config: &Config, command: GeoIpCommand) -> Result<()> {
    match command {
        GeoIpCommand::Backfill {
            batch_size,
            from_start,
        } => backfill(config, batch_size, from_start).await,
    }
}

async fn backfill(config: &Config, batch_size: u32, from_start: bool) -> Result<()> {
    if batch_size == 0 {
        return Err(anyhow!("--batch-size must be at least 1"));
    }
    let settings = config.geoip.settings(&config.data_dir)?.ok_or_else(|| {
        anyhow!(
            "no IP database is configured: set [geoip] city_database or asn_database (or LOGBOOK_GEOIP_CITY_DATABASE, LOGBOOK_GEOIP_ASN_DATABASE) first"
        )
    })?;
    let databases = IpDatabases::open(&settings)
        .context("could not open the IP databases")?
        .ok_or_else(|| anyhow!("the configured IP databases could not be opened"))?;
    let locator: SharedIpLocator = Arc::new(databases);
    let store = open_store(config, CreateDatabase::Never)?;
    let outcome = backfill_every_account(&*store, locator, batch_size, from_start).await;
    store.shutdown().await;
    outcome
}

async fn backfill_every_account(
    store: &dyn logbook_core::Store,
    locator: SharedIpLocator,
    batch_size: u32,
    from_start: bool,
) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    let (mut examined, mut located) = (0_u64, 0_u64);
    let accounts = store
        .list_accounts()
        .await
        .context("could not list the accounts")?;
    for record in &accounts {
        let (mut account_examined, mut account_located) = (0_u64, 0_u64);
        let mut first = true;
        loop {
            let batch = store
                .locations()
                .locate_stored_events(
                    &record.account,
                    batch_size,
                    locator.clone(),
                    from_start && first,
                )
                .await
                .with_context(|| format!("could not locate the events of {}", record.account))?;
            first = false;
            account_examined += batch.events_examined;
            account_located += batch.events_located;
            if batch.done {
                break;
            }
        }
        if account_examined > 0 {
            writeln!(
                stdout,
                "{}: located {account_located} of {account_examined} events read",
                record.account
            )?;
        }
        examined += account_examined;
        located += account_located;
    }
    writeln!(
        stdout,
        "Located {located} events ({examined} read in {} accounts).",
        accounts.len()
    )?;
    Ok(())
}
