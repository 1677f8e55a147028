//! The route table: every path Logbook answers, in one place, with the middleware around them.

use axum::Router;
use axum::middleware::from_fn;
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;

use crate::api::v1::events;
use crate::error::ApiError;
use crate::middleware::{panic_response, request_context};
use crate::state::AppState;
use crate::{health, metrics};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/events", post(events::post).get(events::list))
        // Static segments take precedence over `{id}`, so these two never reach `events::get`.
        .route("/api/v1/events/export", get(events::export))
        .route("/api/v1/events/tail", get(events::tail))
        .route("/api/v1/events/{id}", get(events::get))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::get))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            // The first layer is the outermost: the request context sees the 500 that
            // `CatchPanicLayer` makes of a panic and gives it the request id.
            ServiceBuilder::new()
                .layer(from_fn(request_context))
                .layer(CatchPanicLayer::custom(panic_response)),
        )
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
