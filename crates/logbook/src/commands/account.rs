//! `logbook account create NAME` and `logbook account list`, straight on the database, or with
//! `--server URL` over the management API with the `admin` key in `LOGBOOK_KEY`; both print the
//! same.

use std::io::Write;

use anyhow::{Context, Result, anyhow};
use logbook_core::store::AccountRecord;
use logbook_core::{AccountId, Clock, StoreError, SystemClock};

use crate::cli::AccountCommand;
use crate::commands::{CreateDatabase, open_store};
use crate::config::Config;
use crate::output::{rfc3339, write_table};

pub async fn run(config: &Config, command: AccountCommand, over_http: bool) -> Result<()> {
    match command {
        AccountCommand::Create { name } => create(config, &name, over_http).await,
        AccountCommand::List { json } => list(config, json, over_http).await,
    }
}

/// The account as the server created it; `AccountAlreadyExists` when it existed, as the
/// database says.
async fn create_over_http(
    config: &Config,
    account: &AccountId,
) -> Result<Result<AccountRecord, StoreError>> {
    let client = crate::client::manage::admin_client(config)?;
    let (answer, created) = client
        .create_account(account.as_str(), None)
        .await
        .map_err(|error| anyhow!("{error}"))?;
    if !created {
        return Ok(Err(StoreError::AccountAlreadyExists(account.clone())));
    }
    Ok(Ok(crate::client::manage::account_record(&answer)?))
}

async fn create(config: &Config, name: &str, over_http: bool) -> Result<()> {
    let account = AccountId::parse(name)
        .map_err(|error| anyhow!("invalid account name {name:?}: {error}"))?;
    let created = if over_http {
        create_over_http(config, &account).await?
    } else {
        let store = open_store(config, CreateDatabase::IfMissing)?;
        let created = store.create_account(&account, SystemClock.now()).await;
        store.shutdown().await;
        created
    };
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

async fn list(config: &Config, json: bool, over_http: bool) -> Result<()> {
    let accounts = if over_http {
        let client = crate::client::manage::admin_client(config)?;
        client
            .list_accounts()
            .await
            .map_err(|error| anyhow!("{error}"))?
            .iter()
            .map(crate::client::manage::account_record)
            .collect::<Result<Vec<_>>>()?
    } else {
        let store = open_store(config, CreateDatabase::Never)?;
        let accounts = store.list_accounts().await;
        store.shutdown().await;
        accounts.context("could not list accounts")?
    };
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
