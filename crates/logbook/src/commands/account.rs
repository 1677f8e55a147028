//! `logbook account create NAME` and `logbook account list`, straight on the database.

use std::io::Write;

use anyhow::{Context, Result, anyhow};
use logbook_core::{AccountId, Clock, StoreError, SystemClock};

use crate::cli::AccountCommand;
use crate::commands::{CreateDatabase, open_store};
use crate::config::Config;
use crate::output::{rfc3339, write_table};

pub async fn run(config: &Config, command: AccountCommand) -> Result<()> {
    match command {
        AccountCommand::Create { name } => create(config, &name).await,
        AccountCommand::List { json } => list(config, json).await,
    }
}

async fn create(config: &Config, name: &str) -> Result<()> {
    let account = AccountId::parse(name)
        .map_err(|error| anyhow!("invalid account name {name:?}: {error}"))?;
    let store = open_store(config, CreateDatabase::IfMissing)?;
    let created = store.create_account(&account, SystemClock.now()).await;
    store.shutdown().await;
    match created {
        Ok(record) => {
            println!("{}", record.account);
            eprintln!(
                "Created account {}. Next: logbook key create --account {} --scope ingest",
                record.account, record.account
            );
            Ok(())
        }
        Err(StoreError::AccountAlreadyExists(account)) => {
            Err(anyhow!("account {account} already exists"))
        }
        Err(error) => Err(error).context("could not create the account"),
    }
}

async fn list(config: &Config, json: bool) -> Result<()> {
    let store = open_store(config, CreateDatabase::Never)?;
    let accounts = store.list_accounts().await;
    store.shutdown().await;
    let accounts = accounts.context("could not list accounts")?;
    let mut stdout = std::io::stdout().lock();
    if json {
        let rows: Vec<serde_json::Value> = accounts
            .iter()
            .map(|record| {
                serde_json::json!({
                    "account": record.account,
                    "created_at": rfc3339(record.created_at),
                    "event_count": record.event_count,
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut stdout, &rows)?;
        writeln!(stdout)?;
    } else {
        let rows: Vec<Vec<String>> = accounts
            .iter()
            .map(|record| {
                vec![
                    record.account.to_string(),
                    rfc3339(record.created_at),
                    record.event_count.to_string(),
                ]
            })
            .collect();
        write_table(&mut stdout, &["ACCOUNT", "CREATED", "EVENTS"], &rows)?;
    }
    Ok(())
}
