//! The accept loop: a cap on connections served at once, a deadline for request headers, and a
//! graceful stop (see `crate::hardening`).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// How the accept loop protects itself.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

/// Serves `app` on `listener` until `shutdown` completes; then stops accepting, calls
/// `on_shutdown` (which ends long-lived answers such as live tails), and waits for every
/// connection to finish its in-flight requests.
pub async fn serve_connections(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_shutdown: impl FnOnce(),
) -> std::io::Result<()> {
    let connection_permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Dropping `stop_receiver` tells every connection task to finish gracefully; each task holds
    // a clone of `drained_receiver`, so `drained_sender.closed()` completes when all have ended.
    let (stop_sender, stop_receiver) = watch::channel(());
    let (drained_sender, drained_receiver) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = connection_permits.clone().acquire_owned() => {
                permit.expect("the connection semaphore is never closed")
            }
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors or a connection reset before accept: keep serving
                    // the connections already open and try again shortly.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = app
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request.map(Body::new)
            });
        let hyper_service = TowerToHyperService::new(service);
        let stop_sender = stop_sender.clone();
        let drained_receiver = drained_receiver.clone();
        tokio::spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            builder
                .http2()
                .timer(TokioTimer::new())
                .enable_connect_protocol();
            let mut connection =
                pin!(builder.serve_connection_with_upgrades(TokioIo::new(stream), hyper_service));
            let mut stop = pin!(stop_sender.closed());
            // `closed()` may be polled only until it completes once.
            let mut stopping = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(error) = result {
                            tracing::debug!(%error, peer = %PeerForLog(peer), "connection ended with an error");
                        }
                        break;
                    }
                    () = &mut stop, if !stopping => {
                        stopping = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(drained_receiver);
            drop(permit);
        });
    }
    drop(listener);
    on_shutdown();
    drop(stop_receiver);
    drop(drained_receiver);
    drained_sender.closed().await;
    Ok(())
}

/// The peer's address is enough to tell connections apart in a debug line.
struct PeerForLog(SocketAddr);

impl std::fmt::Display for PeerForLog {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.0)
    }
}
