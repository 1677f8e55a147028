//! Logbook's HTTP server: one route table (`routes`), handlers per resource and verb
//! (`api::v1::events::post`), API key authentication (`auth`), the one mapping from errors to HTTP
//! answers (`error`), request middleware (`middleware`), health checks, Prometheus metrics, and
//! the web page with its sign-in, sessions and team management (`web`).
//!
//! The server never picks a storage backend: it is handed an `Arc<dyn Store>` inside `AppState`.

pub mod api;
pub mod attention_worker;
pub mod auth;
pub mod checkpointer;
pub mod delivery;
pub mod error;
pub mod hardening;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod reading;
pub mod routes;
pub mod state;
pub mod web;

use std::future::Future;
use std::sync::Arc;

pub use error::ApiError;
pub use routes::router;
pub use state::{AppState, ServerSettings};

/// Serves `state` on `listener` until `shutdown` completes, then shuts down gracefully: it stops
/// accepting connections, ends live tails, lets in-flight requests (and the commits they wait
/// for) finish, and finally waits for the store to commit everything it accepted.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let store = state.store().clone();
    let shutdown_signal = state.shutdown_signal();
    let clock = state.clock().clone();
    let checkpoint_signing = state.checkpoint_signing().cloned();
    let checkpointer = checkpoint_signing.clone().map(|signing| {
        tokio::spawn(checkpointer::run(
            store.clone(),
            signing,
            clock.clone(),
            shutdown_signal.clone(),
        ))
    });
    let attention_worker = tokio::spawn(attention_worker::run(
        store.clone(),
        Arc::new(state.settings().attention.clone()),
        clock.clone(),
        shutdown_signal.clone(),
    ));
    let delivery_worker = tokio::spawn(delivery::run(
        store.clone(),
        clock.clone(),
        Arc::new(state.settings().delivery.clone()),
        shutdown_signal.clone(),
    ));
    let key_usage = state.api_key_cache().usage().clone();
    let key_usage_flusher = tokio::spawn(auth::run_key_usage_flusher(
        store.clone(),
        key_usage.clone(),
        shutdown_signal.clone(),
    ));
    // Per-account limit overrides set with `logbook limits set` reach this server within seconds.
    let limit_refresher = tokio::spawn(limits::run_stored_override_refresher(state.clone()));
    let connection_limits = hardening::ConnectionLimits {
        max_connections: state.settings().max_connections,
        header_read_timeout: state.settings().header_read_timeout,
    };
    let app = router(state);
    hardening::serve_connections(listener, app, connection_limits, shutdown, move || {
        tracing::info!("shutdown requested: finishing in-flight requests");
        // Live tails would otherwise keep their connections open forever and stall the drain.
        shutdown_signal.begin();
    })
    .await?;
    if let (Some(task), Some(signing)) = (checkpointer, checkpoint_signing) {
        // Every request has been answered, so every accepted event is committed: one last round
        // signs the final heads while the store is still open.
        let _ = task.await;
        if let Err(error) =
            checkpointer::sign_new_checkpoints(store.as_ref(), &signing, clock.as_ref()).await
        {
            tracing::warn!(%error, "the final checkpoint round failed");
        }
    }
    // The worker's next round would start after the store closed; what it has not read yet is
    // read from its saved cursor by the next start.
    let _ = attention_worker.await;
    // The worker stops at the shutdown signal; what it had not sent is in the outbox (or after
    // its cursor) and the next start sends it.
    let _ = delivery_worker.await;
    // Every request has been answered, so no key is used any more: write each last use not yet
    // written, whatever the interval, while the store is still open.
    let _ = key_usage_flusher.await;
    let _ = limit_refresher.await;
    key_usage.flush(store.as_ref(), true).await;
    store.shutdown().await;
    tracing::info!("store shut down: every accepted write is committed");
    Ok(())
}
