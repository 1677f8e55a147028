//! What wraps every request: its request id (`x-request-id`, taken from the client when it is a
//! plain token, otherwise generated, and echoed in the answer), a tracing span with the method,
//! the route template and the request id (never the query string, headers or body), the latency
//! histogram, the security headers, and the request id in the body of 500 answers (panics
//! included, which `CatchPanicLayer` turns into a 500 inside this middleware).

use std::any::Any;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Response, StatusCode, header};
use axum::middleware::Next;
use axum::response::IntoResponse;
use tracing::Instrument;

use crate::error::{InternalErrorMarker, internal_error_response};

pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, available to handlers as an extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Longest client-supplied request id that is kept as is.
const MAX_CLIENT_REQUEST_ID_BYTES: usize = 64;

/// Keeps a client's request id only when it is a short plain token, so ids from the outside can
/// neither inject text into logs nor grow them without bound.
fn client_request_id(request: &Request) -> Option<String> {
    let value = request.headers().get(&REQUEST_ID_HEADER)?.to_str().ok()?;
    let is_plain_token = !value.is_empty()
        && value.len() <= MAX_CLIENT_REQUEST_ID_BYTES
        && value
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'));
    is_plain_token.then(|| value.to_owned())
}

pub async fn request_context(mut request: Request, next: Next) -> Response<Body> {
    let started = Instant::now();
    let request_id =
        client_request_id(&request).unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let route: &str = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
        .unwrap_or("unmatched");
    // Route templates are few and fixed, so an owned copy per request is a small allocation and
    // keeps the metric label set bounded (unmatched paths all share one label).
    let route = route.to_owned();
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        route = %route,
        request_id = %request_id,
    );
    request
        .extensions_mut()
        .insert(RequestId(request_id.clone()));

    let mut response = async {
        let mut response = next.run(request).await;
        if response.extensions().get::<InternalErrorMarker>().is_some() {
            response = internal_error_response(&request_id);
        }
        let status = response.status();
        if status.is_server_error() {
            tracing::warn!(
                status = status.as_u16(),
                "request answered with a server error"
            );
        } else {
            tracing::debug!(
                status = status.as_u16(),
                elapsed_us = started.elapsed().as_micros() as u64,
                "request answered"
            );
        }
        response
    }
    .instrument(span)
    .await;

    metrics::histogram!(
        "logbook_http_request_seconds",
        "route" => route,
        "status" => status_class(response.status()),
    )
    .record(started.elapsed().as_secs_f64());

    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert(REQUEST_ID_HEADER.clone(), value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Web pages set their own (still strict) policy; everything else gets the strictest one.
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Every answer is per key and per moment (events, health, metrics): none may be cached.
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// What `CatchPanicLayer` answers for a panicking handler: a 500 marked so `request_context`
/// writes the standard body with the request id. The panic message goes to the log only.
pub fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = detail, "request handler panicked");
    let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
    response.extensions_mut().insert(InternalErrorMarker);
    response
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::routing::get;
    use tower::{ServiceBuilder, ServiceExt};
    use tower_http::catch_panic::CatchPanicLayer;

    use super::*;
    use crate::error::ApiError;

    fn wrapped(router: Router) -> Router {
        router.layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(request_context))
                .layer(CatchPanicLayer::custom(panic_response)),
        )
    }

    async fn answer_of(router: Router, path: &str) -> (StatusCode, String, serde_json::Value) {
        let request = Request::builder().uri(path).body(Body::empty()).unwrap();
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let request_id = response.headers()[&REQUEST_ID_HEADER]
            .to_str()
            .unwrap()
            .to_owned();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, request_id, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_with_the_request_id_and_not_the_panic_text() {
        async fn panics() -> &'static str {
            panic!("secret detail from deep inside")
        }
        let router = wrapped(Router::new().route("/boom", get(panics)));
        let (status, request_id, body) = answer_of(router, "/boom").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["code"], "internal_error");
        assert_eq!(body["error"]["request_id"], request_id.as_str());
        assert!(!body.to_string().contains("secret detail"));
    }

    #[tokio::test]
    async fn an_internal_error_answers_500_without_its_cause() {
        async fn fails() -> ApiError {
            ApiError::internal(std::io::Error::other("disk /var/secret/db is corrupt"))
        }
        let router = wrapped(Router::new().route("/fails", get(fails)));
        let (status, request_id, body) = answer_of(router, "/fails").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["request_id"], request_id.as_str());
        assert!(!body.to_string().contains("secret"));
    }
}
