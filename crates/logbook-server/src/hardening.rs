//! Defences against hostile or broken clients that the route handlers should not each repeat:
//!
//! - `serve_connections`: the accept loop. It caps the connections served at once (further ones
//!   wait in the kernel's listen queue, costing this process nothing), closes a connection whose
//!   request headers do not arrive within `header_read_timeout` (a client trickling a byte a
//!   second cannot hold a connection open), and shuts down gracefully.
//! - `decode_content_encoding`: gzip request bodies, inflated never past the body size limit, so
//!   a 10 KB body that would inflate to gigabytes is refused (413) after at most the limit's worth
//!   of memory.
//! - `within_query_budget`: a query that runs past its time budget is answered `query_timeout`
//!   instead of tying up the request. The stores also interrupt the statement itself (SQLite's
//!   progress handler, PostgreSQL's `statement_timeout`) where they support it.

use std::future::Future;
use std::io::Read;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, header};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::error::ApiError;

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

/// Inflates a `Content-Encoding: gzip` body (no encoding and `identity` pass through), refusing
/// with 413 a body that inflates past `limit` bytes and with 400 any other encoding.
pub fn decode_content_encoding(
    headers: &HeaderMap,
    body: Bytes,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let Some(encoding) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(body);
    };
    let encoding = encoding.to_str().unwrap_or_default().trim();
    if encoding.is_empty() || encoding.eq_ignore_ascii_case("identity") {
        return Ok(body);
    }
    if !encoding.eq_ignore_ascii_case("gzip") && !encoding.eq_ignore_ascii_case("x-gzip") {
        return Err(ApiError::bad_request(
            "unsupported_content_encoding",
            "Content-Encoding must be gzip or identity",
            Some("Content-Encoding"),
        ));
    }
    inflate_gzip_within_limit(&body, limit).map(Bytes::from)
}

/// Inflates `compressed`, reading at most one byte past `limit` so memory stays bounded however
/// much the input claims to hold.
pub fn inflate_gzip_within_limit(compressed: &[u8], limit: usize) -> Result<Vec<u8>, ApiError> {
    let decoder = flate2::read::MultiGzDecoder::new(compressed);
    let mut inflated = Vec::with_capacity(compressed.len().saturating_mul(4).min(limit));
    let read = decoder
        .take(limit as u64 + 1)
        .read_to_end(&mut inflated)
        .map_err(|error| {
            ApiError::bad_request(
                "invalid_gzip",
                format!("the gzip body could not be inflated: {error}"),
                None,
            )
        })?;
    if read > limit {
        return Err(ApiError::PayloadTooLarge {
            code: "body_too_large",
            message: format!("request body inflates to more than {limit} bytes"),
        });
    }
    Ok(inflated)
}

/// Runs `query`, answering `query_timeout` when it takes longer than `budget` (also when it
/// finishes, late, without yielding to the timer).
pub async fn within_query_budget<T>(
    budget: Duration,
    query: impl Future<Output = T>,
) -> Result<T, ApiError> {
    let started = std::time::Instant::now();
    match tokio::time::timeout(budget, query).await {
        // A store that reads on the calling thread cannot be interrupted by the timer, so its
        // answer is checked against the budget too: an over-budget answer is never sent, which
        // keeps the rule the same on every backend.
        Ok(answer) if started.elapsed() <= budget => Ok(answer),
        _ => {
            metrics::counter!("logbook_query_timeouts_total").increment(1);
            Err(ApiError::QueryTimeout {
                budget_ms: u64::try_from(budget.as_millis()).unwrap_or(u64::MAX),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn a_gzip_body_within_the_limit_inflates_to_its_content() {
        let body = br#"{"action":"user.login"}"#;
        assert_eq!(inflate_gzip_within_limit(&gzip(body), 1024).unwrap(), body);
    }

    #[test]
    fn a_body_inflating_past_the_limit_is_refused_after_at_most_the_limit() {
        let bomb = gzip(&vec![b' '; 8 * 1024 * 1024]);
        assert!(bomb.len() < 16 * 1024, "a bomb is small: {}", bomb.len());
        let error = inflate_gzip_within_limit(&bomb, 1024 * 1024).unwrap_err();
        assert_eq!(error.code(), "body_too_large");
    }

    #[test]
    fn garbage_that_claims_to_be_gzip_is_a_bad_request() {
        let error = inflate_gzip_within_limit(b"not gzip at all", 1024).unwrap_err();
        assert_eq!(error.code(), "invalid_gzip");
    }
}
