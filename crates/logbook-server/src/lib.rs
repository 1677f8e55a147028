//! Logbook's HTTP server: one route table (`routes`), handlers per resource and verb
//! (`api::v1::events::post`), API key authentication (`auth`), the one mapping from errors to HTTP
//! answers (`error`), request middleware (`middleware`), health checks, Prometheus metrics, and
//! the web page with its sign-in, sessions and team management (`web`), what the API and the pages
//! share to read the log (`reading`), and every background task (`workers`).
//!
//! The server never picks a storage backend: it is handed an `Arc<dyn Store>` inside `AppState`.

pub mod api;
pub mod auth;
pub mod error;
pub mod hardening;
pub mod health;
pub mod ip_databases;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod reading;
pub mod routes;
pub mod state;
pub mod web;
pub mod workers;

use std::future::Future;

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
    let workers = workers::Workers::start(&state);
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
    // Every request has been answered, so every accepted event is committed.
    workers.finish().await;
    store.shutdown().await;
    tracing::info!("store shut down: every accepted write is committed");
    Ok(())
}
