//! The embedded view: the Activity Logs page of one account for the person of a viewer session
//! (`logbook_core::viewer`), inside the platform's own console.
//!
//! - `GET /view/open/{ticket}` opens a session once, within `open_within` of its making: it
//!   writes `logbook.log.view` into the account's log and redirects to `/view/{token}/`.
//! - Under `/view/{token}/` the page's own handlers (`activity`, `attention`) serve a read-only
//!   view through a `Reader` of the session: search, details with proofs, export (when the
//!   session allows it), live updates, and the findings the scope allows. Nothing there changes
//!   anything, so there are no forms to protect and no cookies.
//!
//! The session is carried by its token in the path, not by a cookie: a page framed by another
//! site gets no first-party cookies in Chromium (third-party cookies are blocked or partitioned),
//! and a `SameSite=None` cookie would also ride along on every cross-site request. The token is
//! 128 random bits, kept in the store only as its SHA-256; every answer under `/view/` is sent
//! with `Referrer-Policy: no-referrer` and `Cache-Control: no-store`, and the session ends at its
//! `expires_at` however it is used.
//!
//! Framing: answers under `/view/` may be framed by the origins of the instance's `[embed]`
//! settings and the account's own (CSP `frame-ancestors`); every other page keeps
//! `frame-ancestors 'none'`.

use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use logbook_core::AccountId;
use logbook_core::event::Outcome;
use logbook_core::ids::ApiKeyId;
use logbook_core::people::hash_token;
use logbook_core::viewer::EmbedLook;

use crate::state::AppState;
use crate::web::audit::{self, AuditEvent};
use crate::web::reader::{Reader, VIEW_PREFIX, looks_like_token};
use crate::web::render::{PAGE_CONTENT_SECURITY_POLICY, WebError};
use crate::web::session::{Client, new_session_id};

/// The instance's settings of the embedded view (`[embed]`).
#[derive(Debug, Clone)]
pub struct EmbedSettings {
    /// The instance's look and framing origins; each account's own go over them.
    pub look: EmbedLook,
    /// How long a viewer-session URL may wait before it is opened.
    pub open_within: Duration,
    /// A session's life when the request does not say.
    pub default_session_lifetime: Duration,
    /// The longest life a request may ask for.
    pub max_session_lifetime: Duration,
    /// Sessions one key may make per minute (a platform key makes them for every account).
    pub sessions_per_minute_per_key: u32,
    /// Sessions made per minute for one account, whichever key asks.
    pub sessions_per_minute_per_account: u32,
}

impl Default for EmbedSettings {
    fn default() -> Self {
        Self {
            look: EmbedLook::default(),
            open_within: Duration::from_secs(60),
            default_session_lifetime: Duration::from_secs(60 * 60),
            max_session_lifetime: Duration::from_secs(12 * 60 * 60),
            sessions_per_minute_per_key: 600,
            sessions_per_minute_per_account: 60,
        }
    }
}

/// Token buckets for making viewer sessions, per key and per account.
pub struct ViewerSessionThrottle {
    by_key: Option<DefaultKeyedRateLimiter<ApiKeyId>>,
    by_account: Option<DefaultKeyedRateLimiter<AccountId>>,
    clock: DefaultClock,
}

/// Buckets remembered before idle ones are dropped.
const MAX_TRACKED_BUCKETS: usize = 100_000;

impl ViewerSessionThrottle {
    pub fn new(settings: &EmbedSettings) -> Self {
        let quota = |count: u32| NonZeroU32::new(count).map(Quota::per_minute);
        Self {
            by_key: quota(settings.sessions_per_minute_per_key).map(RateLimiter::keyed),
            by_account: quota(settings.sessions_per_minute_per_account).map(RateLimiter::keyed),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one session from the key's and the account's buckets, or says which refused and
    /// how many seconds to wait.
    pub fn take(&self, key: &ApiKeyId, account: &AccountId) -> Result<(), (&'static str, u64)> {
        let wait = |not_until: governor::NotUntil<_>| {
            not_until
                .wait_time_from(self.clock.now())
                .as_secs_f64()
                .ceil()
                .max(1.0) as u64
        };
        if let Some(limiter) = &self.by_key {
            if limiter.len() > MAX_TRACKED_BUCKETS {
                limiter.retain_recent();
            }
            limiter
                .check_key(key)
                .map_err(|not_until| ("key", wait(not_until)))?;
        }
        if let Some(limiter) = &self.by_account {
            if limiter.len() > MAX_TRACKED_BUCKETS {
                limiter.retain_recent();
            }
            limiter
                .check_key(account)
                .map_err(|not_until| ("account", wait(not_until)))?;
        }
        Ok(())
    }
}

/// The framing an answer of the embedded view allows, put on the response by its handler and
/// written into its headers by `embedded_view_headers`.
#[derive(Debug, Clone)]
struct Framing {
    frame_ancestors: Vec<String>,
    logo_origin: Option<String>,
}

/// Marks `response` as an answer of `reader`'s embedded view (no change for a signed-in person).
pub fn framed(reader: &Reader, mut response: Response) -> Response {
    if let Some(viewer) = reader.viewer() {
        response.extensions_mut().insert(Framing {
            frame_ancestors: viewer.look.frame_ancestors.clone(),
            logo_origin: viewer.look.logo_origin(),
        });
    }
    response
}

/// The page policy with `frame-ancestors` and `img-src` for the embedded view.
fn embedded_view_policy(framing: &Framing) -> String {
    let ancestors = if framing.frame_ancestors.is_empty() {
        "'none'".to_owned()
    } else {
        framing.frame_ancestors.join(" ")
    };
    let mut policy = PAGE_CONTENT_SECURITY_POLICY.replace(
        "frame-ancestors 'none'",
        &format!("frame-ancestors {ancestors}"),
    );
    if let Some(origin) = &framing.logo_origin {
        policy = policy.replace(
            "img-src 'self' data:",
            &format!("img-src 'self' data: {origin}"),
        );
    }
    policy
}

/// Middleware: every answer under `/view/` (pages, error pages, exports, live updates) gets the
/// embedded view's headers. A page's framing origins are the session's account's when its
/// handler said so (`framed`), and the instance's otherwise (a link that opens nothing still
/// shows its error page inside the platform's frame); answers without a page policy (redirects,
/// exports, JSON errors) keep the strict default `request_context` gives them.
pub async fn embedded_view_headers(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let under_view = request.uri().path().starts_with(VIEW_PREFIX);
    let mut response = next.run(request).await;
    if !under_view {
        return response;
    }
    let framing = response
        .extensions_mut()
        .remove::<Framing>()
        .unwrap_or_else(|| Framing {
            frame_ancestors: state.settings().embed.look.frame_ancestors.clone(),
            logo_origin: None,
        });
    let headers = response.headers_mut();
    if headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        match HeaderValue::from_str(&embedded_view_policy(&framing)) {
            Ok(policy) => {
                headers.insert(header::CONTENT_SECURITY_POLICY, policy);
                // `frame-ancestors` says who may frame; `X-Frame-Options` cannot list origins.
                headers.remove(header::X_FRAME_OPTIONS);
            }
            Err(error) => {
                tracing::error!(%error, "the embedded view's policy is not a header value");
            }
        }
    }
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /view/open/{ticket}`: opens the viewer session once and sends the person into it.
pub async fn open(
    State(state): State<AppState>,
    client: Client,
    Path(ticket): Path<String>,
) -> Result<Response, WebError> {
    if !looks_like_token(&ticket) {
        return Err(WebError::ViewerSessionInvalid);
    }
    let token = new_session_id();
    let now = state.clock().now();
    let session = state
        .store()
        .viewer_sessions()
        .open_viewer_session(
            &hash_token(&ticket),
            &hash_token(&token),
            now,
            client.ip,
            client.user_agent.as_deref(),
        )
        .await?
        .ok_or(WebError::ViewerSessionInvalid)?;
    if now >= session.expires_at {
        return Err(WebError::ViewerSessionEnded);
    }
    let mut metadata = serde_json::Map::new();
    metadata.insert(
        "viewer_session".into(),
        session.viewer_session_id.clone().into(),
    );
    metadata.insert("scope".into(), session.scope.kind().into());
    if let Some(fixed_query) = session.scope.fixed_query() {
        metadata.insert("query".into(), fixed_query.into());
    }
    metadata.insert("may_export".into(), session.may_export.into());
    metadata.insert("created_by".into(), session.created_by.clone().into());
    if let Some(email) = &session.person.email {
        metadata.insert("email".into(), email.clone().into());
    }
    metadata.insert(
        "expires_at".into(),
        crate::web::render::utc_text(session.expires_at).into(),
    );
    audit::record_with_actor_name(
        &state,
        AuditEvent {
            account: &session.account,
            action: audit::LOG_VIEW,
            message: format!(
                "{} opened the Activity Logs ({} view)",
                session.person.label(),
                match session.scope.kind() {
                    "all" => "whole log",
                    "own" => "own events",
                    _ => "fixed query",
                }
            ),
            actor_email: &session.person.id,
            client: &client,
            outcome: Outcome::Success,
            targets: vec![viewer_session_target(&session.viewer_session_id)],
            metadata: Some(metadata),
        },
        Some(session.person.label()),
    )
    .await?;
    // A redirect carries no page policy; the page it leads to does (browsers check framing on
    // the final answer).
    Ok(Redirect::to(&format!("{VIEW_PREFIX}{token}/")).into_response())
}

/// The target that marks an event as done through a viewer session (its actor is the platform's
/// person, whose id may look like anyone's).
pub fn viewer_session_target(viewer_session_id: &str) -> logbook_core::event::Target {
    logbook_core::event::Target {
        target_type: "viewer_session".to_owned(),
        id: viewer_session_id.to_owned(),
        name: None,
    }
}

/// Completes when the viewer session of `token` ends (its `expires_at`) or is ended early
/// (`DELETE /api/v1/viewer-sessions/{id}`): a live stream opened in the view stops then.
pub fn session_ends(
    state: &AppState,
    token: &str,
    expires_at: time::OffsetDateTime,
) -> futures::future::BoxFuture<'static, ()> {
    /// How often an open stream asks the store whether its session was ended early.
    const RECHECK_EVERY: time::Duration = time::Duration::seconds(5);
    let state = state.clone();
    let token_hash = hash_token(token);
    Box::pin(async move {
        let mut expires_at = expires_at;
        loop {
            let remaining = expires_at - state.clock().now();
            if remaining <= time::Duration::ZERO {
                return;
            }
            let wait = remaining.min(RECHECK_EVERY);
            tokio::time::sleep(std::time::Duration::try_from(wait).unwrap_or_default()).await;
            match state
                .store()
                .viewer_sessions()
                .find_viewer_session(&token_hash)
                .await
            {
                Ok(Some(session)) => expires_at = session.expires_at,
                Ok(None) => return,
                // The store is unreachable: keep the stream to its known end, and ask again.
                Err(error) => {
                    tracing::warn!(%error, "could not recheck a viewer session of an open live stream");
                }
            }
        }
    })
}

/// `GET /view/{token}`: the view's first page is `/view/{token}/`.
pub async fn to_first_page(Path(token): Path<String>) -> Result<Response, WebError> {
    if !looks_like_token(&token) {
        return Err(WebError::ViewerSessionInvalid);
    }
    Ok(Redirect::to(&format!("{VIEW_PREFIX}{token}/")).into_response())
}

/// `GET /view/{token}/look.css`: the platform's accent colour as a stylesheet (pages allow no
/// inline style). The colour was checked to be `#rrggbb` when it was set.
pub async fn look_stylesheet(reader: Reader) -> Result<Response, WebError> {
    let Some(viewer) = reader.viewer() else {
        return Err(WebError::NotFound);
    };
    let body = match &viewer.look.accent_colour {
        Some(colour) => format!(":root {{ --accent: {colour}; --focus: {colour}; }}\n"),
        None => String::new(),
    };
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    Ok(framed(&reader, response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_policy_lists_the_allowed_origins_and_nothing_else_changes() {
        let framing = Framing {
            frame_ancestors: vec![
                "https://console.acme.com".into(),
                "http://127.0.0.1:9000".into(),
            ],
            logo_origin: Some("https://cdn.acme.com".into()),
        };
        let policy = embedded_view_policy(&framing);
        assert!(
            policy.contains("frame-ancestors https://console.acme.com http://127.0.0.1:9000;"),
            "{policy}"
        );
        assert!(policy.contains("img-src 'self' data: https://cdn.acme.com;"));
        assert!(policy.contains("script-src 'self';"));
        let closed = embedded_view_policy(&Framing {
            frame_ancestors: Vec::new(),
            logo_origin: None,
        });
        assert_eq!(closed, PAGE_CONTENT_SECURITY_POLICY);
    }

    #[test]
    fn a_key_and_an_account_each_have_their_bucket() {
        let throttle = ViewerSessionThrottle::new(&EmbedSettings {
            sessions_per_minute_per_key: 100,
            sessions_per_minute_per_account: 2,
            ..EmbedSettings::default()
        });
        let key = ApiKeyId::new("key_a");
        let acme = AccountId::parse("acme").unwrap();
        throttle.take(&key, &acme).unwrap();
        throttle.take(&key, &acme).unwrap();
        let (which, wait) = throttle.take(&key, &acme).unwrap_err();
        assert_eq!(which, "account");
        assert!((1..=60).contains(&wait), "{wait}");
        throttle
            .take(&key, &AccountId::parse("globex").unwrap())
            .expect("another account has its own bucket");
    }
}
