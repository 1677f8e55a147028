//! Every background task `serve` runs beside the requests, started and stopped in one place, all
//! stopped by the one `ShutdownSignal` of the state:
//!
//! - `checkpointer`: signs each grown account's tree head every interval;
//! - `attention`: reads every account's new events for "Needs attention";
//! - `delivery`: follows each destination's cursor and sends through one lane per destination;
//! - the key-use flusher (`auth::run_key_usage_flusher`): writes each API key's last use;
//! - the limit refresher (`limits::run_stored_override_refresher`): rereads per-account limits;
//! - `retention`: removes what each account's retention period no longer keeps;
//! - `ip_databases`: reloads an IP database whose file was replaced.
//!
//! None of them is on the write path: ingest never waits for one of them.

pub mod attention;
pub mod checkpointer;
pub mod delivery;
pub mod ip_databases;
pub mod retention;

use std::sync::Arc;

use tokio::task::JoinHandle;

use crate::auth;
use crate::limits;
use crate::state::AppState;

/// The running background tasks of one server.
pub struct Workers {
    state: AppState,
    checkpointer: Option<JoinHandle<()>>,
    attention: JoinHandle<()>,
    delivery: JoinHandle<()>,
    key_usage_flusher: JoinHandle<()>,
    limit_refresher: JoinHandle<()>,
    pruner: Option<JoinHandle<()>>,
    ip_database_reloader: Option<JoinHandle<()>>,
}

impl Workers {
    /// Starts every background task on the current runtime.
    pub fn start(state: &AppState) -> Self {
        let store = state.store().clone();
        let clock = state.clock().clone();
        let shutdown = state.shutdown_signal();
        // Retention signs its statements with the checkpoint key, so it runs where that key is.
        let pruner = state.checkpoint_signing().cloned().map(|signing| {
            tokio::spawn(retention::run(
                store.clone(),
                signing,
                clock.clone(),
                Arc::new(state.settings().retention.clone()),
                shutdown.clone(),
            ))
        });
        let checkpointer = state.checkpoint_signing().cloned().map(|signing| {
            tokio::spawn(checkpointer::run(
                store.clone(),
                signing,
                clock.clone(),
                shutdown.clone(),
            ))
        });
        let attention = tokio::spawn(attention::run(
            store.clone(),
            Arc::new(state.settings().attention.clone()),
            clock.clone(),
            shutdown.clone(),
        ));
        let delivery = tokio::spawn(delivery::run(
            store.clone(),
            clock,
            Arc::new(state.settings().delivery.clone()),
            shutdown.clone(),
        ));
        let key_usage_flusher = tokio::spawn(auth::run_key_usage_flusher(
            store,
            state.api_key_cache().usage().clone(),
            shutdown,
        ));
        // Per-account limit overrides set with `logbook limits set` reach this server within
        // seconds.
        let limit_refresher = tokio::spawn(limits::run_stored_override_refresher(state.clone()));
        let ip_database_reloader = state
            .ip_databases()
            .cloned()
            .map(|databases| tokio::spawn(ip_databases::run(databases, state.shutdown_signal())));
        Workers {
            ip_database_reloader,
            state: state.clone(),
            checkpointer,
            attention,
            delivery,
            key_usage_flusher,
            limit_refresher,
            pruner,
        }
    }

    /// Waits for every task to stop (the shutdown signal must have been raised) and does what
    /// each leaves for the very end, while the store is still open: one last checkpoint round over
    /// the final heads, and every key use not written yet. Call it after the last request was
    /// answered, so every accepted event is committed.
    pub async fn finish(self) {
        let store = self.state.store();
        if let (Some(task), Some(signing)) = (self.checkpointer, self.state.checkpoint_signing()) {
            let _ = task.await;
            if let Err(error) = checkpointer::sign_new_checkpoints(
                store.as_ref(),
                signing,
                self.state.clock().as_ref(),
            )
            .await
            {
                tracing::warn!(%error, "the final checkpoint round failed");
            }
        }
        // The attention worker's next round would start after the store closed; what it has not
        // read yet is read from its saved cursor by the next start.
        let _ = self.attention.await;
        // The delivery worker stops at the signal; what it had not sent is in the outbox (or
        // after its cursor) and the next start sends it.
        let _ = self.delivery.await;
        let _ = self.key_usage_flusher.await;
        let _ = self.limit_refresher.await;
        if let Some(pruner) = self.pruner {
            let _ = pruner.await;
        }
        if let Some(reloader) = self.ip_database_reloader {
            let _ = reloader.await;
        }
        // No key is used any more: write each last use not yet written, whatever the interval.
        self.state
            .api_key_cache()
            .usage()
            .flush(store.as_ref(), true)
            .await;
    }
}
