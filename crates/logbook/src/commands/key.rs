//! `logbook key create|list|revoke`, straight on the database, or with `--server URL` over the
//! management API with the `admin` key in `LOGBOOK_KEY` (then every command names `--account`).
//! A key is shown once, when it is created; only its SHA-256 and a short display prefix are
//! stored. Both modes print the same.

use std::io::Write;

use anyhow::{Context, Result, anyhow, bail};
use logbook_core::api_key::{ApiKeyRecord, KeyOwner, PlaintextApiKey, Scopes};
use logbook_core::store::NewApiKey;
use logbook_core::{AccountId, Clock, StoreError, SystemClock};
use rand::Rng;

use crate::cli::{KeyCommand, KeyCreateArgs};
use crate::commands::{CreateDatabase, open_store};
use crate::config::Config;
use crate::output::{rfc3339, write_table};

pub async fn run(config: &Config, command: KeyCommand, over_http: bool) -> Result<()> {
    if over_http {
        return run_over_http(config, command).await;
    }
    match command {
        KeyCommand::Create(arguments) => create(config, &arguments).await,
        KeyCommand::List { account, json } => list(config, account.as_deref(), json).await,
        KeyCommand::Revoke { key_id, .. } => revoke(config, &key_id).await,
    }
}

/// The management API manages one account's keys at a time, so `--account` is required here.
async fn run_over_http(config: &Config, command: KeyCommand) -> Result<()> {
    use crate::client::manage::{admin_client, api_key_record};
    let needs_account = || anyhow!("with --server, name the key's account with --account NAME");
    let client = admin_client(config)?;
    let failed = |error: logbook_client::Error| anyhow!("{error}");
    match command {
        KeyCommand::Create(arguments) => {
            let scopes = Scopes::parse(&arguments.scope)?;
            let account = arguments.account.as_deref().ok_or_else(|| {
                anyhow!("with --server, keys are created for an account: use --account NAME")
            })?;
            let answer = client
                .create_api_key(account, &scopes.names(), arguments.description.as_deref())
                .await
                .map_err(failed)?;
            let record = api_key_record(&answer)?;
            let secret = answer["key"]
                .as_str()
                .ok_or_else(|| anyhow!("the server's answer holds no key"))?;
            print_created(&record, secret, arguments.json)
        }
        KeyCommand::List { account, json } => {
            let account = account.ok_or_else(needs_account)?;
            let keys = client
                .list_api_keys(&account)
                .await
                .map_err(failed)?
                .iter()
                .map(api_key_record)
                .collect::<Result<Vec<_>>>()?;
            print_list(&keys, json)
        }
        KeyCommand::Revoke { key_id, account } => {
            let account = account.ok_or_else(needs_account)?;
            let answer = client
                .revoke_api_key(&account, &key_id)
                .await
                .map_err(failed)?;
            print_revoked(&api_key_record(&answer)?);
            Ok(())
        }
    }
}

/// `key_` followed by 16 base32 characters (80 random bits): a public name, not a secret, so it
/// only has to be unique.
fn new_key_id(random: &mut impl Rng) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut key_id = String::with_capacity(20);
    key_id.push_str("key_");
    key_id.extend((0..16).map(|_| ALPHABET[random.random_range(0..ALPHABET.len())] as char));
    key_id
}

fn parse_account(name: &str) -> Result<AccountId> {
    AccountId::parse(name).map_err(|error| anyhow!("invalid account name {name:?}: {error}"))
}

async fn create(config: &Config, arguments: &KeyCreateArgs) -> Result<()> {
    let scopes = Scopes::parse(&arguments.scope)?;
    let owner = match (&arguments.account, arguments.platform) {
        (Some(name), false) => KeyOwner::Account(parse_account(name)?),
        (None, true) => KeyOwner::Platform,
        _ => bail!("give either --account NAME or --platform"),
    };
    if owner == KeyOwner::Platform && scopes.read {
        // A platform key names the account per event; reading needs a single tenant to read.
        bail!("a platform key can have the ingest and admin scopes, not read");
    }
    let mut random = rand::rng();
    let plaintext = PlaintextApiKey::from_random_bytes(random.random());
    let new_key = NewApiKey {
        key_id: new_key_id(&mut random).into(),
        key_hash: plaintext.hash(),
        owner,
        scopes,
        display_prefix: plaintext.display_prefix(),
        description: arguments.description.clone(),
        created_at: SystemClock.now(),
    };
    let store = open_store(config, CreateDatabase::IfMissing)?;
    let created = store.create_api_key(new_key).await;
    store.shutdown().await;
    let record = match created {
        Ok(record) => record,
        Err(StoreError::AccountNotFound(account)) => {
            bail!(
                "account {account} does not exist (create it with: logbook account create {account})"
            )
        }
        Err(error) => return Err(error).context("could not create the key"),
    };

    print_created(&record, plaintext.expose(), arguments.json)
}

fn print_created(record: &ApiKeyRecord, secret: &str, json: bool) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    if json {
        let mut object = key_json(record);
        object["key"] = serde_json::Value::String(secret.to_owned());
        serde_json::to_writer_pretty(&mut stdout, &object)?;
        writeln!(stdout)?;
    } else {
        // The key alone on stdout, so `KEY=$(logbook key create ...)` captures exactly it.
        writeln!(stdout, "{secret}")?;
        eprintln!(
            "Created {} key {} for {}. This is the only time the key is shown: store it now.",
            record.scopes,
            record.key_id,
            owner_label(&record.owner)
        );
    }
    Ok(())
}

async fn list(config: &Config, account: Option<&str>, json: bool) -> Result<()> {
    let account = account.map(parse_account).transpose()?;
    let store = open_store(config, CreateDatabase::Never)?;
    let keys = store.list_api_keys(account.as_ref()).await;
    store.shutdown().await;
    let keys = match keys {
        Ok(keys) => keys,
        Err(StoreError::AccountNotFound(account)) => bail!("account {account} does not exist"),
        Err(error) => return Err(error).context("could not list keys"),
    };
    print_list(&keys, json)
}

fn print_list(keys: &[ApiKeyRecord], json: bool) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    if json {
        let rows: Vec<serde_json::Value> = keys.iter().map(key_json).collect();
        serde_json::to_writer_pretty(&mut stdout, &rows)?;
        writeln!(stdout)?;
    } else {
        let rows: Vec<Vec<String>> = keys
            .iter()
            .map(|key| {
                vec![
                    key.key_id.to_string(),
                    owner_label(&key.owner),
                    key.scopes.to_string(),
                    format!("{}…", key.display_prefix),
                    rfc3339(key.created_at),
                    key.last_used_at
                        .map(rfc3339)
                        .unwrap_or_else(|| "never".to_owned()),
                    key.revoked_at
                        .map(rfc3339)
                        .unwrap_or_else(|| "-".to_owned()),
                    key.description.clone().unwrap_or_default(),
                ]
            })
            .collect();
        write_table(
            &mut stdout,
            &[
                "KEY ID",
                "OWNER",
                "SCOPES",
                "PREFIX",
                "CREATED",
                "LAST USED",
                "REVOKED",
                "DESCRIPTION",
            ],
            &rows,
        )?;
    }
    Ok(())
}

async fn revoke(config: &Config, key_id: &str) -> Result<()> {
    let store = open_store(config, CreateDatabase::Never)?;
    let revoked = store
        .revoke_api_key(&key_id.into(), SystemClock.now())
        .await;
    store.shutdown().await;
    match revoked {
        Ok(record) => {
            print_revoked(&record);
            Ok(())
        }
        Err(StoreError::ApiKeyNotFound(_)) => bail!("no key with id {key_id:?}"),
        Err(error) => Err(error).context("could not revoke the key"),
    }
}

fn print_revoked(record: &ApiKeyRecord) {
    println!("{}", record.key_id);
    eprintln!(
        "Revoked key {} of {}: it is refused from now on.",
        record.key_id,
        owner_label(&record.owner)
    );
}

fn owner_label(owner: &KeyOwner) -> String {
    match owner {
        KeyOwner::Account(account) => format!("account {account}"),
        KeyOwner::Platform => "the platform (any account)".to_owned(),
    }
}

/// A key as JSON, never with its secret: id, owner, scopes, prefix, dates (`last_used_at` as the
/// servers last wrote it, at most a minute behind).
fn key_json(key: &ApiKeyRecord) -> serde_json::Value {
    let (owner_type, account) = match &key.owner {
        KeyOwner::Account(account) => ("account", Some(account.as_str())),
        KeyOwner::Platform => ("platform", None),
    };
    let scopes = key.scopes.names();
    serde_json::json!({
        "key_id": key.key_id,
        "owner": owner_type,
        "account": account,
        "scopes": scopes,
        "prefix": key.display_prefix,
        "description": key.description,
        "created_at": rfc3339(key.created_at),
        "last_used_at": key.last_used_at.map(rfc3339),
        "revoked_at": key.revoked_at.map(rfc3339),
        "active": key.is_active(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_are_distinct_and_typed() {
        let mut random = rand::rng();
        let first = new_key_id(&mut random);
        assert!(first.starts_with("key_") && first.len() == 20, "{first}");
        assert_ne!(first, new_key_id(&mut random));
    }
}
