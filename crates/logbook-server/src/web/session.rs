//! Browser sessions and CSRF protection.
//!
//! A session id is 128 random bits (hex) that lives only in the `logbook_session` cookie
//! (`HttpOnly; SameSite=Strict; Path=/`, plus `Secure` when the public URL is https); the store
//! keeps its SHA-256, so a copy of the database signs nobody in. Sessions end after an idle and an
//! absolute timeout, and on sign-out they are revoked in the store, so every node refuses them.
//!
//! Every form that changes something carries a CSRF token derived from the session id (SHA-256
//! of a label and the id), which a cross-site page cannot know, and the server also refuses a
//! request whose `Origin` or `Sec-Fetch-Site` says it came from another site.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use logbook_core::people::{SessionRecord, UserRecord, hash_token};
use rand::Rng;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::state::AppState;
use crate::web::render::WebError;

pub const SESSION_COOKIE: &str = "logbook_session";
/// `last_seen_at` is written at most this often per session, not on every request.
const TOUCH_EVERY: time::Duration = time::Duration::seconds(60);

/// A new random session id: 128 bits as 32 hex characters.
pub fn new_session_id() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    hex(&bytes)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

pub fn parse_hex_32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (index, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(bytes)
}

/// The CSRF token of a session: not the session id, not its stored hash, but derived from the id.
pub fn csrf_token_for(session_id: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(b"logbook csrf v1\0");
    digest.update(session_id.as_bytes());
    hex(&digest.finalize())
}

/// `Set-Cookie` value that stores `session_id`.
pub fn session_cookie(state: &AppState, session_id: &str) -> String {
    let secure = if is_https(state) { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={session_id}; HttpOnly; SameSite=Strict; Path=/{secure}")
}

/// `Set-Cookie` value that removes the session cookie.
pub fn clearing_cookie(state: &AppState) -> String {
    let secure = if is_https(state) { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}")
}

fn is_https(state: &AppState) -> bool {
    state
        .settings()
        .public_url
        .as_deref()
        .is_some_and(|url| url.starts_with("https://"))
}

/// The session id presented in the request's cookies, if it looks like one.
pub fn presented_session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|value| value.len() == 32 && value.bytes().all(|byte| byte.is_ascii_hexdigit()))
}

/// Where a request comes from, for audit events and sessions.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: IpAddr,
    pub user_agent: Option<String>,
}

/// Longest user agent kept (the event model's limit for short text).
const MAX_USER_AGENT_BYTES: usize = 512;

impl FromRequestParts<AppState> for Client {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(address)| address.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok());
        let ip =
            logbook_core::client_ip::client_ip(peer, forwarded, &state.settings().trusted_proxies);
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|text| {
                let mut end = text.len().min(MAX_USER_AGENT_BYTES);
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text[..end].to_owned()
            })
            .filter(|text| !text.is_empty());
        Ok(Client { ip, user_agent })
    }
}

/// A request from a signed-in person whose session is valid now.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: UserRecord,
    pub session: SessionRecord,
    pub csrf_token: String,
    pub client: Client,
}

impl SignedIn {
    /// Whether a form's token is this session's token (compared without early exit).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        presented.len() == self.csrf_token.len()
            && presented
                .bytes()
                .zip(self.csrf_token.bytes())
                .fold(0u8, |difference, (left, right)| difference | (left ^ right))
                == 0
    }
}

/// The valid session of a request, or why there is none.
pub async fn current_session(
    parts: &Parts,
    state: &AppState,
) -> Result<Option<(String, SessionRecord, UserRecord)>, WebError> {
    let Some(session_id) = presented_session_id(&parts.headers) else {
        return Ok(None);
    };
    let session_hash = hash_token(&session_id);
    let Some((session, user)) = state.store().people().find_session(&session_hash).await? else {
        return Ok(None);
    };
    let now = state.clock().now();
    if !session_is_valid(state, &session, now) {
        return Ok(None);
    }
    if now - session.last_seen_at >= TOUCH_EVERY {
        state
            .store()
            .people()
            .touch_session(&session_hash, now)
            .await?;
    }
    Ok(Some((session_id, session, user)))
}

pub fn session_is_valid(state: &AppState, session: &SessionRecord, now: OffsetDateTime) -> bool {
    let settings = state.settings();
    let idle =
        time::Duration::try_from(settings.session_idle_timeout).unwrap_or(time::Duration::MAX);
    let absolute =
        time::Duration::try_from(settings.session_absolute_timeout).unwrap_or(time::Duration::MAX);
    session.revoked_at.is_none()
        && now - session.last_seen_at < idle
        && now - session.created_at < absolute
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let client = Client::from_request_parts(parts, state).await?;
        match current_session(parts, state).await? {
            Some((session_id, session, user)) if !session.awaiting_second_factor => {
                // When the account requires two-factor sign-in, someone without it may only
                // reach the security page (to set it up) and sign out.
                let path = parts.uri.path();
                let exempt = path.starts_with("/security") || path == "/logout";
                if !exempt
                    && user.totp_secret.is_none()
                    && state
                        .store()
                        .people()
                        .requires_second_factor(&user.account)
                        .await?
                {
                    return Err(WebError::SecondFactorSetupRequired);
                }
                Ok(SignedIn {
                    csrf_token: csrf_token_for(&session_id),
                    user,
                    session,
                    client,
                })
            }
            _ => Err(WebError::SignInRequired),
        }
    }
}

/// Refuses a state-changing request that a browser says came from another site.
pub fn check_same_origin(headers: &HeaderMap, state: &AppState) -> Result<(), WebError> {
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok());
    if let Some(site) = fetch_site
        && !matches!(site, "same-origin" | "none")
    {
        return Err(WebError::CrossSite);
    }
    if let Some(origin) = headers
        .get(header::ORIGIN)
        .and_then(|value| value.to_str().ok())
    {
        // Pages are served with `Referrer-Policy: no-referrer`, under which browsers send
        // `Origin: null` even for a same-origin form; the browser's own `Sec-Fetch-Site`, which a
        // page cannot forge, then says where the form came from.
        if origin == "null" && fetch_site == Some("same-origin") {
            return Ok(());
        }
        let host = headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok());
        let same_as_public = state
            .settings()
            .public_url
            .as_deref()
            .is_some_and(|public| public.trim_end_matches('/') == origin);
        let same_as_host = host.is_some_and(|host| {
            origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"))
                == Some(host)
        });
        if !(same_as_public || same_as_host) {
            return Err(WebError::CrossSite);
        }
    }
    Ok(())
}

/// The full check for a form posted by a signed-in person: same origin and the session's token.
pub fn check_form(
    headers: &HeaderMap,
    state: &AppState,
    signed_in: &SignedIn,
    token: &str,
) -> Result<(), WebError> {
    check_same_origin(headers, state)?;
    if !signed_in.csrf_matches(token) {
        return Err(WebError::CrossSite);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_are_128_random_bits_in_hex() {
        let first = new_session_id();
        assert_eq!(first.len(), 32);
        assert_ne!(first, new_session_id());
    }

    #[test]
    fn the_csrf_token_is_neither_the_id_nor_its_stored_hash() {
        let id = new_session_id();
        let token = csrf_token_for(&id);
        assert_ne!(token, id);
        assert_ne!(token, hex(&hash_token(&id)));
        assert_eq!(token, csrf_token_for(&id));
    }

    #[test]
    fn the_session_cookie_is_found_among_others_and_garbage_is_ignored() {
        let id = new_session_id();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            format!("a=b; {SESSION_COOKIE}={id}; c=d").parse().unwrap(),
        );
        assert_eq!(presented_session_id(&headers), Some(id));
        headers.insert(
            header::COOKIE,
            format!("{SESSION_COOKIE}=<script>").parse().unwrap(),
        );
        assert_eq!(presented_session_id(&headers), None);
    }

    #[test]
    fn hex_of_32_bytes_round_trips() {
        let bytes = hash_token("x");
        assert_eq!(parse_hex_32(&hex(&bytes)), Some(bytes));
        assert_eq!(parse_hex_32("zz"), None);
    }
}
