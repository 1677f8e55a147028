//! The checkpointer: a background task that signs a checkpoint (C2SP `tlog-checkpoint`, see
//! `logbook_core::checkpoint`) for every account whose tree grew since its newest checkpoint, at
//! most once per `CheckpointSigning::interval`, and stores it. `logbook_server::serve` starts it
//! and runs one last round after the final commits, so a clean stop leaves every event covered.
//!
//! It signs the tree head the writer committed (`LogTree::tree_heads_without_checkpoint`), never
//! a root it computed itself. Several nodes on one PostgreSQL may sign the same head at once;
//! the store keeps the first of equal tree sizes, and every node holds the same key.

use std::sync::Arc;
use std::time::Duration;

use logbook_core::checkpoint::{CheckpointSigner, checkpoint_origin};
use logbook_core::store::StoredCheckpoint;
use logbook_core::{Clock, Store, StoreError};

use crate::state::ShutdownSignal;

/// What the checkpointer signs with and how often.
pub struct CheckpointSigning {
    pub signer: CheckpointSigner,
    /// The first part of every checkpoint origin (`<instance_name>/<account>`).
    pub instance_name: String,
    /// The shortest time between two checkpoint rounds.
    pub interval: Duration,
}

impl std::fmt::Debug for CheckpointSigning {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CheckpointSigning")
            .field("instance_name", &self.instance_name)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// Signs and stores one checkpoint per account whose tree grew; returns how many were stored.
pub async fn sign_new_checkpoints(
    store: &dyn Store,
    signing: &CheckpointSigning,
    clock: &dyn Clock,
) -> Result<usize, StoreError> {
    let Some(tree) = store.log_tree() else {
        return Ok(0);
    };
    let heads = tree.tree_heads_without_checkpoint().await?;
    let signed_at = clock.now();
    for head in &heads {
        let origin = checkpoint_origin(&signing.instance_name, &head.account);
        let signed = signing
            .signer
            .sign(&origin, head.tree_size, &head.root_hash)
            .map_err(|error| StoreError::Database {
                context: "signing a checkpoint",
                message: error.to_string(),
            })?;
        tree.store_checkpoint(&StoredCheckpoint {
            account: head.account.clone(),
            tree_size: head.tree_size,
            root_hash: head.root_hash,
            signed_at,
            text: signed.text,
        })
        .await?;
    }
    if !heads.is_empty() {
        metrics::counter!("logbook_checkpoints_signed_total").increment(heads.len() as u64);
    }
    Ok(heads.len())
}

/// Runs checkpoint rounds every `interval` until `shutdown` is raised.
pub async fn run(
    store: Arc<dyn Store>,
    signing: Arc<CheckpointSigning>,
    clock: Arc<dyn Clock>,
    shutdown: ShutdownSignal,
) {
    let mut ticker = tokio::time::interval(signing.interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => {
                if let Err(error) = sign_new_checkpoints(store.as_ref(), &signing, clock.as_ref()).await {
                    tracing::warn!(%error, "checkpoint round failed; retrying at the next interval");
                }
            }
        }
    }
}
