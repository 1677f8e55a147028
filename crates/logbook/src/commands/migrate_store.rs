//! `logbook migrate-store --from sqlite://... --to postgres://...`: moves a Logbook that outgrew
//! one machine onto PostgreSQL without losing its history. It copies accounts, API keys (their
//! stored hashes, scopes and revocations), users with their passwords, two-factor secrets and
//! unused recovery codes, active sessions, pending invitations, the accounts' sign-in settings, and
//! every event with its `seq`, `id` and body
//! unchanged, then compares the event count of every account on both sides.
//!
//! Re-running continues where a copy stopped: what already exists is skipped, and each account's
//! events are copied in `seq` order from the destination's `next_seq` on (the destination checks
//! that each batch continues exactly there, so a copy can never fork a log).

use std::collections::{BTreeMap, HashSet};

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use logbook_core::people::NewUser;
use logbook_core::{AccountId, Clock, Store, StoreError};

use crate::cli::MigrateStoreArgs;
use crate::commands::{CreateDatabase, open_postgres, open_store};
use crate::config::{Config, DatabaseLocation, parse_database_url};

/// Events read from the source and written to the destination in one transaction.
const EVENTS_PER_BATCH: u32 = 5_000;

pub async fn run(config: &Config, arguments: &MigrateStoreArgs) -> Result<()> {
    let DatabaseLocation::Postgres(destination_url) = parse_database_url(&arguments.to)? else {
        bail!(
            "--to must be a postgres:// URL (migrate-store moves an embedded database to PostgreSQL)"
        );
    };
    let source_location = parse_database_url(&arguments.from)?;
    if matches!(source_location, DatabaseLocation::Postgres(_)) {
        bail!("--from must be a sqlite:// URL; to copy between PostgreSQL databases use pg_dump");
    }
    let mut source_config = config.clone();
    source_config.database = Some(arguments.from.clone());
    let source = open_store(&source_config, CreateDatabase::Never)?;
    let destination = open_postgres(config, &destination_url.0)?;

    let result = copy_everything(source.as_ref(), &destination).await;
    source.shutdown().await;
    destination.shutdown().await;
    result
}

async fn copy_everything(
    source: &dyn Store,
    destination: &logbook_store_postgres::PostgresStore,
) -> Result<()> {
    let accounts = source
        .list_accounts()
        .await
        .context("could not list the source's accounts")?;
    for record in &accounts {
        match destination
            .create_account(&record.account, record.created_at)
            .await
        {
            Ok(_) | Err(StoreError::AccountAlreadyExists(_)) => {}
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("could not copy account {}", record.account));
            }
        }
        // What an operator set on the account (display name, ingest switch) goes along; setting
        // it again on a second run changes nothing.
        let settings = source
            .accounts()
            .account_settings(&record.account)
            .await
            .with_context(|| {
                format!("could not read the settings of account {}", record.account)
            })?;
        if let Some(settings) = settings {
            let copied = destination.accounts();
            copied
                .set_display_name(&record.account, settings.display_name.as_deref())
                .await
                .with_context(|| {
                    format!("could not copy the display name of {}", record.account)
                })?;
            copied
                .set_ingest_enabled(&record.account, settings.ingest_enabled)
                .await
                .with_context(|| {
                    format!("could not copy the ingest switch of {}", record.account)
                })?;
        }
    }
    eprintln!("Accounts: {} copied or already there.", accounts.len());

    let existing_keys: HashSet<logbook_core::ids::ApiKeyId> = destination
        .list_api_keys(None)
        .await?
        .into_iter()
        .map(|key| key.key_id)
        .collect();
    let mut copied_keys = 0;
    for key in source.list_api_keys(None).await? {
        if existing_keys.contains(&key.key_id) {
            continue;
        }
        let hash = source
            .api_key_hash(&key.key_id)
            .await?
            .with_context(|| format!("key {} disappeared from the source", key.key_id))?;
        if destination.import_api_key(&key, &hash).await? {
            copied_keys += 1;
        }
    }
    eprintln!("API keys: {copied_keys} copied.");

    let (copied_users, copied_invitations) = copy_people(source, destination, &accounts).await?;
    eprintln!("Users: {copied_users} copied; pending invitations: {copied_invitations} copied.");

    copy_events(source, destination, &accounts).await?;
    compare_counts(source, destination).await
}

/// Users (password hashes, two-factor secrets and unused recovery codes, all as stored hashes),
/// their active sessions, pending invitations, and each account's sign-in settings. Returns how
/// many users and invitations were copied.
async fn copy_people(
    source: &dyn Store,
    destination: &logbook_store_postgres::PostgresStore,
    accounts: &[logbook_core::store::AccountRecord],
) -> Result<(usize, usize)> {
    let source_people = source.people();
    let destination_people = destination.people();
    let mut copied = 0;
    let mut copied_invitations = 0;
    // Invitations that expired during the copy are not worth copying; ones still pending are,
    // so a link already sent keeps working after the move.
    let now = logbook_core::SystemClock.now();
    for record in accounts {
        for user in source_people.list_users(&record.account).await? {
            if destination_people.get_user(&user.user_id).await?.is_none() {
                destination_people
                    .create_user(NewUser {
                        user_id: user.user_id.clone(),
                        account: user.account.clone(),
                        email: user.email.clone(),
                        role: user.role,
                        password_hash: user.password_hash.clone(),
                        created_at: user.created_at,
                    })
                    .await
                    .with_context(|| format!("could not copy a user of {}", record.account))?;
                if let Some(secret) = user.totp_secret.clone() {
                    // The same transaction sets the secret and the unused recovery codes, so a
                    // user never exists on the destination with a second factor but no codes.
                    let recovery_codes = source_people
                        .list_unused_recovery_codes(&user.user_id)
                        .await?;
                    destination_people
                        .set_totp(&user.user_id, Some((secret, recovery_codes)))
                        .await?;
                }
                copied += 1;
            }
            for session in source_people.list_active_sessions(&user.user_id).await? {
                if destination_people
                    .find_session(&session.session_hash)
                    .await?
                    .is_none()
                {
                    destination_people.create_session(session).await?;
                }
            }
        }
        let already_invited: HashSet<[u8; 32]> = destination_people
            .list_pending_invitations(&record.account, now)
            .await?
            .into_iter()
            .map(|(token_hash, _)| token_hash)
            .collect();
        for (token_hash, invitation) in source_people
            .list_pending_invitations(&record.account, now)
            .await?
        {
            if !already_invited.contains(&token_hash) {
                destination_people
                    .create_invitation(token_hash, invitation)
                    .await
                    .with_context(|| {
                        format!("could not copy an invitation of {}", record.account)
                    })?;
                copied_invitations += 1;
            }
        }
        if source_people
            .requires_second_factor(&record.account)
            .await?
        {
            destination_people
                .set_requires_second_factor(&record.account, true)
                .await?;
        }
    }
    Ok((copied, copied_invitations))
}

async fn copy_events(
    source: &dyn Store,
    destination: &logbook_store_postgres::PostgresStore,
    accounts: &[logbook_core::store::AccountRecord],
) -> Result<()> {
    let mut already_there = BTreeMap::new();
    let mut remaining = 0_u64;
    for record in accounts {
        let next_seq = destination.next_seq(&record.account).await?;
        if next_seq > record.event_count {
            bail!(
                "account {} has {next_seq} events in the destination but only {} in the source: this is not a copy of that database",
                record.account,
                record.event_count
            );
        }
        remaining += record.event_count - next_seq;
        already_there.insert(record.account.clone(), next_seq);
    }
    let progress = ProgressBar::new(remaining);
    progress.set_style(
        ProgressStyle::with_template(
            "{spinner} events {bar:40} {human_pos}/{human_len} ({per_sec}, {eta} left) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    for record in accounts {
        let mut next_seq = already_there[&record.account];
        progress.set_message(record.account.as_str().to_owned());
        while next_seq < record.event_count {
            let rows = source
                .events_since(&record.account, next_seq, EVENTS_PER_BATCH)
                .await
                .with_context(|| format!("could not read events of {}", record.account))?;
            let Some(last) = rows.last() else {
                break;
            };
            let last_seq = last.seq;
            let erased_leaf_hashes = erased_leaf_hashes(source, &record.account, &rows).await?;
            destination
                .import_events(&record.account, &rows, &erased_leaf_hashes)
                .await
                .with_context(|| format!("could not copy events of {}", record.account))?;
            progress.inc(rows.len() as u64);
            next_seq = last_seq + 1;
        }
    }
    progress.finish_with_message("done");
    Ok(())
}

/// The leaf hashes the source's tree keeps for the events of `rows` that were erased before leaf
/// version 2 (their content no longer proves them; README, "Personal data").
async fn erased_leaf_hashes(
    source: &dyn Store,
    account: &AccountId,
    rows: &[logbook_core::EventRow],
) -> Result<std::collections::HashMap<u64, logbook_core::merkle::Hash>> {
    let erased: Vec<logbook_core::merkle::NodeId> = rows
        .iter()
        .filter(|row| {
            matches!(
                row.leaf(),
                Ok(logbook_core::leaf::EventLeaf::ErasedBeforeVersion2 { .. })
            )
        })
        .map(|row| logbook_core::merkle::NodeId::new(0, row.seq))
        .collect();
    if erased.is_empty() {
        return Ok(Default::default());
    }
    let tree = source.log_tree().ok_or_else(|| {
        anyhow!("the source keeps no tree, so its erased events cannot be copied")
    })?;
    let nodes = tree
        .tree_nodes(account, &erased)
        .await
        .with_context(|| format!("could not read the stored leaves of {account}"))?;
    Ok(erased
        .iter()
        .filter_map(|node| nodes.get(node).map(|hash| (node.index, *hash)))
        .collect())
}

/// Prints each account's event count on both sides and fails if any differ.
async fn compare_counts(
    source: &dyn Store,
    destination: &logbook_store_postgres::PostgresStore,
) -> Result<()> {
    let destination_counts: BTreeMap<String, u64> = destination
        .list_accounts()
        .await?
        .into_iter()
        .map(|record| (record.account.as_str().to_owned(), record.event_count))
        .collect();
    let mut mismatches = Vec::new();
    println!("{:<32} {:>12} {:>12}", "ACCOUNT", "SOURCE", "DESTINATION");
    for record in source.list_accounts().await? {
        let copied = destination_counts
            .get(record.account.as_str())
            .copied()
            .unwrap_or(0);
        println!(
            "{:<32} {:>12} {:>12}",
            record.account.as_str(),
            record.event_count,
            copied
        );
        if copied != record.event_count {
            mismatches.push(record.account.as_str().to_owned());
        }
    }
    if !mismatches.is_empty() {
        bail!(
            "event counts differ for {}; run migrate-store again to continue the copy",
            mismatches.join(", ")
        );
    }
    eprintln!("Every account has the same number of events in both databases.");
    Ok(())
}
