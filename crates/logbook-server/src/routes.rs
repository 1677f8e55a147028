//! The route table: every path Logbook answers, in one place, with the middleware around them.

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate};

use crate::api::v1::{checkpoints, events};
use crate::api::{otlp, retraced, workos};
use crate::error::ApiError;
use crate::middleware::{panic_response, request_context};
use crate::state::AppState;
use crate::web::{
    activity, alerts, assets, attention, first_run, keys, login, networks, security,
    single_sign_on, team, viewer,
};
use crate::{health, metrics};

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/v1/events", post(events::post).get(events::list))
        // Static segments take precedence over `{id}`, so these two never reach `events::get`.
        .route("/api/v1/events/export", get(events::export))
        .route(
            "/api/v1/events/export/verifiable",
            get(events::export_verifiable),
        )
        .route("/api/v1/events/tail", get(events::tail))
        .route("/api/v1/events/{id}", get(events::get))
        .route("/api/v1/checkpoints", get(checkpoints::list))
        .route("/api/v1/checkpoints/latest", get(checkpoints::latest))
        .route("/api/v1/proofs/inclusion", get(checkpoints::inclusion))
        .route("/api/v1/proofs/consistency", get(checkpoints::consistency))
        // The management API (accounts, keys, people, limits) lists its routes beside its
        // handlers.
        .merge(crate::api::v1::manage::routes())
        .route(
            "/api/v1/openapi.json",
            get(crate::api::v1::openapi::document),
        )
        // The producer protocols, at the paths their own clients send to, so pointing a client at
        // Logbook is a change of base URL and key.
        .route(
            "/publisher/v1/project/{project_id}/event",
            post(retraced::create_event),
        )
        .route(
            "/publisher/v1/project/{project_id}/event/bulk",
            post(retraced::create_events_bulk),
        )
        .route("/audit_logs/events", post(workos::create_event))
        .route("/v1/logs", post(otlp::export_logs))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::get))
        // The web page: session cookie auth, CSRF-checked forms, no state change on GET.
        .route("/", get(activity::list))
        .route("/events/export", get(activity::export))
        .route("/events/live", get(activity::live))
        .route("/events/{id}", get(activity::get))
        .route("/attention", get(attention::get))
        .route("/attention/{finding_id}/dismiss", post(attention::dismiss))
        .route("/login", get(login::get).post(login::post))
        .route("/login/second-factor", post(login::post_second_factor))
        .route("/login/sso/{account}", get(single_sign_on::start))
        .route(
            "/login/sso/{account}/callback",
            get(single_sign_on::callback),
        )
        .route("/logout", post(login::logout))
        .route("/setup/{token}", get(first_run::get).post(first_run::post))
        .route(
            "/invitations/{token}",
            get(login::get_invitation).post(login::post_invitation),
        )
        .route("/team", get(team::get))
        .route("/team/invite", post(team::invite))
        .route("/team/second-factor", post(team::second_factor_policy))
        .route("/team/legal-hold", post(team::legal_hold))
        .route("/team/erase", post(team::erase_personal_data))
        .route("/team/{user_id}/role", post(team::change_role))
        .route("/team/{user_id}/remove", post(team::remove))
        .route("/keys", get(keys::get).post(keys::create))
        .route("/keys/{key_id}/revoke", post(keys::revoke))
        .route("/networks", get(networks::get).post(networks::save))
        .route("/networks/{name}/delete", post(networks::delete))
        .route("/alerts", get(alerts::get))
        .route("/alerts/rules", post(alerts::create_rule))
        .route("/alerts/rules/{rule_id}/delete", post(alerts::delete_rule))
        .route(
            "/alerts/rules/{rule_id}/{change}",
            post(alerts::set_rule_enabled),
        )
        .route("/alerts/destinations", post(alerts::create_destination))
        .route(
            "/alerts/destinations/{destination_id}/delete",
            post(alerts::delete_destination),
        )
        .route(
            "/alerts/destinations/{destination_id}/test",
            post(alerts::test_destination),
        )
        .route(
            "/alerts/deliveries/{delivery_id}/retry",
            post(alerts::retry_delivery),
        )
        .route("/security", get(security::get))
        .route("/security/password", post(security::change_password))
        .route(
            "/security/second-factor/start",
            post(security::start_second_factor),
        )
        .route(
            "/security/second-factor/confirm",
            post(security::confirm_second_factor),
        )
        .route(
            "/security/second-factor/disable",
            post(security::disable_second_factor),
        )
        .route(
            "/security/sessions/{handle}/end",
            post(security::end_session),
        )
        // The embedded view of viewer sessions: the same read-only handlers, with the session's
        // token in the path (`web::viewer`, `web::reader`).
        .route(
            "/api/v1/viewer-sessions",
            post(crate::api::v1::viewer_sessions::create),
        )
        .route(
            "/api/v1/viewer-sessions/{viewer_session}",
            axum::routing::delete(crate::api::v1::viewer_sessions::end),
        )
        .route("/view/open/{ticket}", get(viewer::open))
        .route("/view/{token}", get(viewer::to_first_page))
        .route("/view/{token}/", get(activity::list))
        .route("/view/{token}/events/export", get(activity::export))
        .route("/view/{token}/events/live", get(activity::live))
        .route("/view/{token}/events/{id}", get(activity::get))
        .route("/view/{token}/attention", get(attention::get))
        .route("/view/{token}/look.css", get(viewer::look_stylesheet))
        .route("/assets/{name}", get(assets::get))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            // The first layer is the outermost: the request context sees the 500 that
            // `CatchPanicLayer` makes of a panic and gives it the request id.
            ServiceBuilder::new()
                .layer(from_fn(request_context))
                .layer(from_fn_with_state(
                    state.clone(),
                    viewer::embedded_view_headers,
                ))
                .layer(CatchPanicLayer::custom(panic_response))
                .layer(
                    CompressionLayer::new()
                        .gzip(true)
                        .compress_when(DefaultPredicate::new().and(is_page_or_asset)),
                ),
        )
        .with_state(state)
}

/// Pages, their stylesheet and script are gzipped for browsers that ask; API answers, exports
/// and live streams are left as they are (their clients stream and count bytes).
fn is_page_or_asset(
    _status: axum::http::StatusCode,
    _version: axum::http::Version,
    headers: &axum::http::HeaderMap,
    _extensions: &axum::http::Extensions,
) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|content_type| {
            [
                "text/html",
                "text/css",
                "text/javascript",
                "application/javascript",
            ]
            .iter()
            .any(|kind| content_type.starts_with(kind))
        })
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
