//! `logbook verify`: checks the tamper evidence of the log (README, "Verifying the log").
//!
//! - `logbook verify --database URL` recomputes every account's tree from the stored events and
//!   names the first event that no longer matches, exactly (account and `seq`): a changed or
//!   swapped event no longer hashes to its stored leaf, a deleted one leaves a gap, an added one
//!   lies outside the tree, and a tree recomputed over edited events no longer reaches the roots
//!   of the signed checkpoints (each checked with the public key).
//! - `logbook verify FILE.ndjson --public-key KEY` checks a verifiable export offline.
//! - `logbook verify --since-checkpoint FILE` proves the log only grew since a checkpoint saved
//!   earlier, with a consistency proof from `--server` (key in `LOGBOOK_KEY`) or `--database`.
//!
//! Any failure is an error (exit 1) naming what failed; success prints one `ok` line with counts.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use logbook_core::checkpoint::{Checkpoint, CheckpointVerifier};
use logbook_core::export_verification::{self, hex};
use logbook_core::log_verification;
use logbook_core::merkle::{self, Hash, NodeId};
use logbook_core::store::LogTree;
use logbook_core::{AccountId, Store};

use crate::client::{ApiClient, connection_error, ensure_success};
use crate::commands::{CreateDatabase, open_store};
use crate::config::Config;

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A verifiable NDJSON export to check offline (needs --public-key)
    #[arg(value_name = "FILE.ndjson", conflicts_with = "since_checkpoint")]
    pub export: Option<PathBuf>,
    /// The instance's public key (as `logbook checkpoint-key` prints it), or a file holding it
    /// [default for the database checks: the public half of the local signing key]
    #[arg(long, value_name = "KEY")]
    pub public_key: Option<String>,
    /// A checkpoint saved earlier: prove the current log is an extension of it
    #[arg(long, value_name = "FILE")]
    pub since_checkpoint: Option<PathBuf>,
}

pub async fn run(config: &Config, arguments: &VerifyArgs, database_named: bool) -> Result<()> {
    if let Some(path) = &arguments.export {
        let key = arguments
            .public_key
            .as_deref()
            .context("verifying an export needs --public-key (see `logbook checkpoint-key`)")?;
        return verify_export_file(path, &parse_public_key(key)?);
    }
    if let Some(saved) = &arguments.since_checkpoint {
        return if database_named {
            let store = open_store(config, CreateDatabase::Never)?;
            let verifier = verifier_for_database(config, arguments)?;
            let outcome = since_checkpoint_from_database(store.as_ref(), saved, &verifier).await;
            store.shutdown().await;
            outcome
        } else {
            let key = arguments.public_key.as_deref().context(
                "checking against a server needs --public-key (see `logbook checkpoint-key`)",
            )?;
            since_checkpoint_from_server(config, saved, &parse_public_key(key)?).await
        };
    }
    let store = open_store(config, CreateDatabase::Never)?;
    let verifier = verifier_for_database(config, arguments)?;
    let outcome = log_verification::verify_store(store.as_ref(), &verifier).await;
    store.shutdown().await;
    let counts = outcome?;
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "ok: {} accounts, {} events, {} checkpoints verified",
        counts.accounts, counts.events, counts.checkpoints
    )?;
    if counts.pruned_accounts > 0 {
        writeln!(
            stdout,
            "{} accounts start after events removed by retention ({} events in all); each removal's signed statement verified",
            counts.pruned_accounts, counts.pruned_events
        )?;
    }
    write_removed_personal_data(
        &mut stdout,
        counts.events_with_removed_personal_data,
        counts.erased_events_not_verifiable,
    )?;
    Ok(())
}

/// A key given as its text, or as a file that holds it.
fn parse_public_key(key: &str) -> Result<CheckpointVerifier> {
    let text = if Path::new(key).is_file() {
        std::fs::read_to_string(key).with_context(|| format!("could not read {key}"))?
    } else {
        key.to_owned()
    };
    CheckpointVerifier::from_key_text(text.trim())
        .context("--public-key is not a checkpoint public key (see `logbook checkpoint-key`)")
}

fn verifier_for_database(config: &Config, arguments: &VerifyArgs) -> Result<CheckpointVerifier> {
    match &arguments.public_key {
        Some(key) => parse_public_key(key),
        None => {
            let path = config.checkpoint_signing_key_file();
            if !path.exists() {
                bail!(
                    "no signing key at {}: pass --public-key to check the checkpoints",
                    path.display()
                );
            }
            Ok(crate::commands::checkpoint_key::load_or_create_signer(config)?.verifier())
        }
    }
}

fn verify_export_file(path: &Path, verifier: &CheckpointVerifier) -> Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let verified = export_verification::verify_export(std::io::BufReader::new(file), verifier)
        .map_err(|error| anyhow!("{} does not verify: {error}", path.display()))?;
    writeln!(
        std::io::stdout().lock(),
        "ok: {} events of {} verified against its checkpoint at tree size {}",
        verified.event_count,
        verified.origin,
        verified.tree_size
    )?;
    write_removed_personal_data(
        &mut std::io::stdout().lock(),
        verified.events_with_removed_personal_data,
        verified.erased_events_not_verifiable,
    )?;
    Ok(())
}

/// What verification says about events whose personal data was removed (README, "Personal data").
fn write_removed_personal_data(
    out: &mut impl Write,
    verified_with_removed_fields: u64,
    erased_not_verifiable: u64,
) -> Result<()> {
    if verified_with_removed_fields > 0 {
        writeln!(
            out,
            "{verified_with_removed_fields} events had personal fields removed (aging or erasure); what remains of each verified, the rest is reported as removed"
        )?;
    }
    if erased_not_verifiable > 0 {
        writeln!(
            out,
            "{erased_not_verifiable} events stored before leaf version 2 were erased, content not verifiable; the tree still verified through their stored leaves"
        )?;
    }
    Ok(())
}

fn log_tree(store: &dyn Store) -> Result<&dyn LogTree> {
    store
        .log_tree()
        .ok_or_else(|| anyhow!("this database keeps no verifiable log"))
}

fn read_saved_checkpoint(
    path: &Path,
    verifier: &CheckpointVerifier,
) -> Result<(String, Checkpoint)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read {}", path.display()))?;
    let checkpoint = verifier.parse_and_verify(&text).map_err(|error| {
        anyhow!(
            "the saved checkpoint {} does not verify: {error}",
            path.display()
        )
    })?;
    Ok((text, checkpoint))
}

fn report_consistency(
    old_text: &str,
    new_text: &str,
    proof: &[Hash],
    verifier: &CheckpointVerifier,
) -> Result<()> {
    let old = verifier.parse_and_verify(old_text)?;
    let new = verifier
        .parse_and_verify(new_text)
        .map_err(|error| anyhow!("the current checkpoint does not verify: {error}"))?;
    if new.tree_size < old.tree_size {
        bail!(
            "the log of {} shrank from {} to {} events: events from seq {} are missing",
            old.origin,
            old.tree_size,
            new.tree_size,
            new.tree_size
        );
    }
    let verified = export_verification::verify_consistency(old_text, new_text, proof, verifier)
        .map_err(|error| anyhow!("{error}"))?;
    writeln!(
        std::io::stdout().lock(),
        "ok: {} grew from {} to {} events; the saved checkpoint is part of the current log",
        verified.new.origin,
        verified.old.tree_size,
        verified.new.tree_size
    )?;
    Ok(())
}

async fn since_checkpoint_from_database(
    store: &dyn Store,
    saved: &Path,
    verifier: &CheckpointVerifier,
) -> Result<()> {
    let (old_text, old) = read_saved_checkpoint(saved, verifier)?;
    let account = old
        .account()
        .and_then(|name| AccountId::parse(name).ok())
        .context("the saved checkpoint does not name an account")?;
    let tree = log_tree(store)?;
    let latest = tree
        .latest_checkpoint(&account)
        .await?
        .with_context(|| format!("account {account} has no checkpoint in this database"))?;
    if let Some(prefix) = store.retention().pruned_prefix(&account).await? {
        let pruned_below = logbook_core::merkle::CompactRange::from_bytes(&prefix.prefix_range)
            .map(|range| range.size())
            .unwrap_or(0);
        if old.tree_size < pruned_below {
            anyhow::bail!(
                "the saved checkpoint (tree size {}) is older than what retention removed from account {account} (every event below seq {pruned_below}); a checkpoint saved after that removal can be checked",
                old.tree_size
            );
        }
    }
    let proof = if latest.tree_size >= old.tree_size {
        let ids = merkle::consistency_proof_node_ids(old.tree_size, latest.tree_size)?;
        let nodes: HashMap<NodeId, Hash> = tree.tree_nodes(&account, &ids).await?;
        merkle::consistency_proof(&nodes, old.tree_size, latest.tree_size)?
    } else {
        Vec::new()
    };
    report_consistency(&old_text, &latest.text, &proof, verifier)
}

async fn since_checkpoint_from_server(
    config: &Config,
    saved: &Path,
    verifier: &CheckpointVerifier,
) -> Result<()> {
    let (old_text, old) = read_saved_checkpoint(saved, verifier)?;
    let client = ApiClient::from_config(config)?;
    let latest: serde_json::Value = ensure_success(
        client
            .get("/api/v1/checkpoints/latest")
            .send()
            .await
            .map_err(|error| connection_error(&client, error))?,
    )
    .await?
    .json()
    .await
    .context("the server's checkpoint answer is not JSON")?;
    let new_text = latest["checkpoint"]
        .as_str()
        .context("the server's answer holds no checkpoint")?
        .to_owned();
    let new = verifier
        .parse_and_verify(&new_text)
        .map_err(|error| anyhow!("the server's checkpoint does not verify: {error}"))?;
    let proof = if new.tree_size >= old.tree_size {
        let answer: serde_json::Value = ensure_success(
            client
                .get("/api/v1/proofs/consistency")
                .query(&[("from", old.tree_size), ("to", new.tree_size)])
                .send()
                .await
                .map_err(|error| connection_error(&client, error))?,
        )
        .await?
        .json()
        .await
        .context("the server's proof answer is not JSON")?;
        answer["proof"]
            .as_array()
            .context("the server's answer holds no proof")?
            .iter()
            .map(|hash| {
                hash.as_str()
                    .and_then(parse_hex_hash)
                    .context("the server's proof holds a malformed hash")
            })
            .collect::<Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    report_consistency(&old_text, &new_text, &proof, verifier)
}

fn parse_hex_hash(text: &str) -> Option<Hash> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut hash = [0u8; 32];
    for (index, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).ok()?;
    }
    // Only the lowercase form the server writes is accepted, so one hash has one spelling.
    (hex(&hash) == text).then_some(hash)
}
