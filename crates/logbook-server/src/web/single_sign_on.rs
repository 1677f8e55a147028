//! Signing in with an OpenID Connect provider: `GET /login/sso/{account}` starts the
//! authorization code flow, `GET /login/sso/{account}/callback` finishes it.
//!
//! - **Which settings.** An account's own settings in the store (`logbook sso set`, the
//!   management API) win; otherwise the configuration file's `[sso]` section applies to the
//!   accounts it names (`effective_settings`).
//! - **The protocol is the `openidconnect` crate's**: discovery, PKCE (S256), the code exchange
//!   and the ID token checks (signature against the provider's JWKS, issuer, audience, expiry,
//!   nonce). Logbook adds what is its own: `email_verified` must be true, who may come in, and
//!   the audit events.
//! - **Key rotation.** Discovery and the JWKS are cached per provider (`Providers`); a token
//!   signed with a key id the cache does not know refetches the JWKS, at most once per
//!   `JWKS_REFETCH_FLOOR`, so a stream of forged key ids cannot make Logbook hammer the provider.
//! - **`state` is single-use, short-lived and bound to the browser.** The start stores a sign-in
//!   attempt (the hash of `state`, the nonce, the PKCE verifier, the hash of a random value put in
//!   the `logbook_sso` cookie) in the store, so any node can finish it; the callback takes the
//!   attempt (deleting it), so a replayed `state` finds nothing, and refuses it unless the same
//!   browser presents the cookie. The cookie is `SameSite=Lax`: the provider's redirect back is
//!   a cross-site top-level navigation, on which `Strict` cookies are not sent.
//! - **The session cookie** is the same as a password sign-in's (`SameSite=Strict`). Set on the
//!   callback's cross-site answer it would not be sent on a redirect that continues that
//!   navigation, so the callback answers with a small page that moves on to `/` by itself
//!   (`<meta http-equiv="refresh">`, no script) or by its link: a same-site navigation.
//! - **Two-factor.** The provider's own MFA is trusted: SSO replaces the password step, not the
//!   second step, so a person with Logbook's two-factor sign-in turned on (or in an account
//!   that requires it) is still asked for their code, exactly as after a password.
//! - **Every sign-in and every refusal** is an event in the account's log
//!   (`logbook.sso.sign_in`, `logbook.sso.refused` with its `reason`), and the person sees a
//!   page that says what went wrong; no token, secret or provider body is shown or logged.
//!   Refusals count against the sign-in throttle (per account and address, and per address),
//!   so the unauthenticated callback cannot be used to flood an account's log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use logbook_core::AccountId;
use logbook_core::event::Outcome;
use logbook_core::people::{NewUser, Role, UserRecord, hash_token, normalize_email};
use logbook_core::single_sign_on::{SIGN_IN_ATTEMPT_LIFETIME, SignInAttempt, SingleSignOnSettings};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJsonWebKeySet, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IssuerUrl,
    Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, SignatureVerificationError,
    TokenResponse,
};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::state::AppState;
use crate::web::audit::{self, AuditEvent};
use crate::web::login::{self, SecondFactorPage};
use crate::web::render::{Chrome, WebError, html};
use crate::web::session::{
    Client, csrf_token_for, new_session_id, presented_session_id, session_cookie,
};

pub const SIGN_IN: &str = "logbook.sso.sign_in";
pub const REFUSED: &str = "logbook.sso.refused";

/// The cookie that binds a started sign-in to the browser that started it.
const BROWSER_COOKIE: &str = "logbook_sso";
/// A token with an unknown key id refetches the provider's keys at most this often.
const JWKS_REFETCH_FLOOR: time::Duration = time::Duration::seconds(60);
/// Discovery is read again after this long, so a provider's new endpoints are picked up.
const DISCOVERY_LIFETIME: time::Duration = time::Duration::hours(1);
/// What a person created by single sign-on has instead of a password hash: not a PHC string, so
/// no password ever verifies against it.
pub const NO_PASSWORD: &str = "!single-sign-on";

/// The configuration file's `[sso]` section: one provider for the accounts it names.
#[derive(Debug, Clone)]
pub struct InstanceSingleSignOn {
    pub accounts: Vec<AccountId>,
    pub settings: SingleSignOnSettings,
}

/// The settings that apply to `account`: its own stored ones, else the instance's when it names
/// the account.
pub async fn effective_settings(
    state: &AppState,
    account: &AccountId,
) -> Result<Option<SingleSignOnSettings>, WebError> {
    if let Some(stored) = state
        .store()
        .single_sign_on()
        .single_sign_on_settings(account)
        .await?
    {
        return Ok(Some(stored));
    }
    Ok(state
        .settings()
        .single_sign_on
        .as_ref()
        .filter(|instance| instance.accounts.contains(account))
        .map(|instance| instance.settings.clone()))
}

/// One "Sign in with ..." button of the sign-in page.
pub struct SignInButton {
    pub href: String,
    pub label: String,
}

/// The buttons of the sign-in page: one per account with single sign-on, labelled with the
/// provider's name (and the account's, when two accounts would otherwise look alike).
pub async fn sign_in_buttons(state: &AppState) -> Result<Vec<SignInButton>, WebError> {
    let mut by_account: Vec<(AccountId, String)> = state
        .store()
        .single_sign_on()
        .list_single_sign_on_settings()
        .await?
        .into_iter()
        .map(|(account, settings)| (account, settings.display_name))
        .collect();
    if let Some(instance) = &state.settings().single_sign_on {
        for account in &instance.accounts {
            if !by_account.iter().any(|(known, _)| known == account) {
                by_account.push((account.clone(), instance.settings.display_name.clone()));
            }
        }
    }
    by_account.sort_by(|left, right| left.0.cmp(&right.0));
    let names: Vec<&String> = by_account.iter().map(|(_, name)| name).collect();
    Ok(by_account
        .iter()
        .map(|(account, name)| {
            let shared = names.iter().filter(|other| **other == name).count() > 1;
            SignInButton {
                href: format!("/login/sso/{account}"),
                label: if shared {
                    format!("Sign in with {name} ({account})")
                } else {
                    format!("Sign in with {name}")
                },
            }
        })
        .collect())
}

/// Whether password sign-in is refused for this person's account.
pub async fn password_sign_in_refused(
    state: &AppState,
    user: &UserRecord,
) -> Result<Option<String>, WebError> {
    Ok(effective_settings(state, &user.account)
        .await?
        .filter(|settings| !settings.password_sign_in_allowed)
        .map(|settings| {
            format!(
                "Your account signs in with {} only. Use the \u{201c}Sign in with {}\u{201d} button.",
                settings.display_name, settings.display_name
            )
        }))
}

struct CachedProvider {
    metadata: CoreProviderMetadata,
    discovered_at: OffsetDateTime,
    /// When an unknown key id last made us fetch the keys again.
    keys_refetched_at: Option<OffsetDateTime>,
}

/// Discovery documents and key sets per issuer, shared by every request of this server.
///
/// The issuer of the configuration file's `[sso]` is the operator's and is reached as it is.
/// An account's own issuer is set by the account's admins (API, CLI), so its requests go through
/// the same guard as alert deliveries: no loopback, private, link-local or metadata address,
/// whether named directly or reached through DNS, unless `[delivery]
/// allow_private_destinations` is true. The discovery document names further URLs (keys, token
/// endpoint), and each request to them is checked the same way.
pub struct Providers {
    trusted: reqwest::Client,
    guarded: GuardedProviderClient,
    cache: Mutex<HashMap<String, CachedProvider>>,
}

/// An HTTP client for a provider an account's admins named: every request's host is checked
/// (IP literals here, names by the resolver) before it is sent.
struct GuardedProviderClient {
    client: reqwest::Client,
    allow_private_destinations: bool,
}

/// Why a request to a provider failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderRequestError {
    /// The guard refused the address.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Http(#[from] openidconnect::HttpClientError<reqwest::Error>),
}

impl<'c> openidconnect::AsyncHttpClient<'c> for GuardedProviderClient {
    type Error = ProviderRequestError;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<openidconnect::HttpResponse, Self::Error>>
                + Send
                + Sync
                + 'c,
        >,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let host = request.uri().host().unwrap_or_default();
            let literal = host.trim_start_matches('[').trim_end_matches(']');
            if let Ok(ip) = literal.parse::<std::net::IpAddr>()
                && !self.allow_private_destinations
                && crate::workers::delivery::sender::is_non_public_address(ip)
            {
                return Err(ProviderRequestError::Refused(format!(
                    "{host} is a loopback, private, link-local or otherwise non-public address \
                     (set [delivery] allow_private_destinations = true to allow it)"
                )));
            }
            openidconnect::AsyncHttpClient::call(&self.client, request)
                .await
                .map_err(ProviderRequestError::Http)
        })
    }
}

impl Providers {
    pub fn new(delivery: &crate::workers::delivery::DeliverySettings) -> Self {
        // No redirects: a provider's endpoints answer directly (following one could lead a
        // request somewhere the issuer never named).
        let trusted = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let guarded = reqwest::Client::builder()
            .dns_resolver(std::sync::Arc::new(
                crate::workers::delivery::transport::GuardedResolver::new(delivery),
            ))
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve the name again on its side, past the guard.
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Self {
            trusted,
            guarded: GuardedProviderClient {
                client: guarded,
                allow_private_destinations: delivery.allow_private_destinations,
            },
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `issuer` is the configuration file's, which is reached without the guard.
    fn is_operators(state: &AppState, issuer: &str) -> bool {
        state
            .settings()
            .single_sign_on
            .as_ref()
            .is_some_and(|instance| instance.settings.issuer == issuer)
    }

    fn cached(&self, issuer: &str, now: OffsetDateTime) -> Option<CoreProviderMetadata> {
        let cache = self
            .cache
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        cache
            .get(issuer)
            .filter(|cached| now - cached.discovered_at < DISCOVERY_LIFETIME)
            .map(|cached| cached.metadata.clone())
    }

    async fn metadata(
        &self,
        state: &AppState,
        issuer: &str,
        now: OffsetDateTime,
    ) -> Result<CoreProviderMetadata, Refusal> {
        if let Some(metadata) = self.cached(issuer, now) {
            return Ok(metadata);
        }
        let issuer_url =
            IssuerUrl::new(issuer.to_owned()).map_err(|_| Refusal::ProviderUnreachable)?;
        let discovered = if Self::is_operators(state, issuer) {
            CoreProviderMetadata::discover_async(issuer_url, &self.trusted)
                .await
                .map_err(|error| error.to_string())
        } else {
            CoreProviderMetadata::discover_async(issuer_url, &self.guarded)
                .await
                .map_err(|error| error.to_string())
        };
        let metadata = discovered.map_err(|error| {
            tracing::warn!(issuer, error = %error, "OpenID provider discovery failed");
            Refusal::ProviderUnreachable
        })?;
        self.cache
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(
                issuer.to_owned(),
                CachedProvider {
                    metadata: metadata.clone(),
                    discovered_at: now,
                    keys_refetched_at: None,
                },
            );
        Ok(metadata)
    }

    /// Fetches the provider's keys again unless an unknown key id already did within
    /// `JWKS_REFETCH_FLOOR`; returns the metadata with the new keys, or `None` when it is too
    /// soon. (The floor counts from the last refetch, not from discovery, so a key published
    /// just after discovery is still picked up by the first token signed with it.)
    async fn refetch_keys(
        &self,
        state: &AppState,
        issuer: &str,
        metadata: &CoreProviderMetadata,
        now: OffsetDateTime,
    ) -> Option<CoreProviderMetadata> {
        {
            let mut cache = self
                .cache
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            let cached = cache.get_mut(issuer)?;
            if cached
                .keys_refetched_at
                .is_some_and(|refetched_at| now - refetched_at < JWKS_REFETCH_FLOOR)
            {
                return None;
            }
            // Claimed before the fetch, so concurrent callbacks do not all refetch.
            cached.keys_refetched_at = Some(now);
        }
        let fetched = if Self::is_operators(state, issuer) {
            CoreJsonWebKeySet::fetch_async(metadata.jwks_uri(), &self.trusted)
                .await
                .map_err(|error| error.to_string())
        } else {
            CoreJsonWebKeySet::fetch_async(metadata.jwks_uri(), &self.guarded)
                .await
                .map_err(|error| error.to_string())
        };
        let keys = fetched
            .inspect_err(|error| tracing::warn!(issuer, error = %error, "fetching the JWKS failed"))
            .ok()?;
        let refreshed = metadata.clone().set_jwks(keys);
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(cached) = cache.get_mut(issuer) {
            cached.metadata = refreshed.clone();
        }
        Some(refreshed)
    }
}

/// Why a sign-in was refused: the `reason` of its event and what the person is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnknownState,
    OtherBrowser,
    ProviderError,
    ProviderUnreachable,
    TokenExchangeFailed,
    BadSignature,
    WrongAudience,
    WrongIssuer,
    ExpiredToken,
    WrongNonce,
    InvalidToken,
    EmailMissing,
    EmailNotVerified,
    NotInvited,
}

impl Refusal {
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::UnknownState => "unknown_or_replayed_state",
            Refusal::OtherBrowser => "other_browser",
            Refusal::ProviderError => "provider_error",
            Refusal::ProviderUnreachable => "provider_unreachable",
            Refusal::TokenExchangeFailed => "token_exchange_failed",
            Refusal::BadSignature => "bad_signature",
            Refusal::WrongAudience => "wrong_audience",
            Refusal::WrongIssuer => "wrong_issuer",
            Refusal::ExpiredToken => "expired_token",
            Refusal::WrongNonce => "wrong_nonce",
            Refusal::InvalidToken => "invalid_token",
            Refusal::EmailMissing => "email_missing",
            Refusal::EmailNotVerified => "email_not_verified",
            Refusal::NotInvited => "not_invited",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refusal::UnknownState => {
                "This sign-in answer was already used, is too old, or was never started here."
            }
            Refusal::OtherBrowser => "This sign-in was started in another browser.",
            Refusal::ProviderError => "Your identity provider did not sign you in.",
            Refusal::ProviderUnreachable => "Logbook could not reach your identity provider.",
            Refusal::TokenExchangeFailed => {
                "Your identity provider did not accept Logbook's request for your sign-in token."
            }
            Refusal::BadSignature => {
                "The sign-in token is not signed with your identity provider's published keys (bad signature)."
            }
            Refusal::WrongAudience => {
                "The sign-in token was issued for another application (wrong audience)."
            }
            Refusal::WrongIssuer => "The sign-in token comes from another identity provider.",
            Refusal::ExpiredToken => "The sign-in token has expired.",
            Refusal::WrongNonce => "The sign-in token belongs to another sign-in (wrong nonce).",
            Refusal::InvalidToken => "The sign-in token is not valid.",
            Refusal::EmailMissing => "Your identity provider did not share your email address.",
            Refusal::EmailNotVerified => {
                "Your identity provider has not verified your email address (email not verified)."
            }
            Refusal::NotInvited => {
                "This account lets only invited people sign in, and you have not been invited."
            }
        }
    }

    fn hint(self) -> &'static str {
        match self {
            Refusal::UnknownState | Refusal::OtherBrowser | Refusal::ExpiredToken => {
                "Start again from the sign-in page."
            }
            Refusal::NotInvited => "Ask an owner or admin of the account to invite you.",
            Refusal::EmailNotVerified | Refusal::EmailMissing => {
                "Verify your email address with your identity provider, then try again."
            }
            _ => "Try again; if it keeps failing, tell an owner of your account or your operator.",
        }
    }
}

#[derive(Template)]
#[template(path = "single_sign_on_continue.html")]
struct ContinuePage {
    chrome: Chrome,
}

fn browser_cookie(state: &AppState, account: &AccountId, value: &str, max_age: i64) -> String {
    let secure = if state
        .settings()
        .public_url
        .as_deref()
        .is_some_and(|url| url.starts_with("https://"))
    {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{BROWSER_COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/login/sso/{account}; Max-Age={max_age}{secure}"
    )
}

fn presented_browser_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == BROWSER_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|value| value.len() == 32 && value.bytes().all(|byte| byte.is_ascii_hexdigit()))
}

fn redirect_url(state: &AppState, headers: &HeaderMap, account: &AccountId) -> String {
    // The public URL when configured; otherwise the Host the browser used (a local trial).
    let base = state.settings().public_url.clone().unwrap_or_else(|| {
        let host = headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("127.0.0.1");
        format!("http://{host}")
    });
    format!(
        "{}/login/sso/{account}/callback",
        base.trim_end_matches('/')
    )
}

fn parse_account(account: &str) -> Result<AccountId, WebError> {
    AccountId::parse(account).map_err(|_| WebError::NotFound)
}

/// `GET /login/sso/{account}`: sends the browser to the provider.
pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    Path(account): Path<String>,
) -> Result<Response, WebError> {
    let account = parse_account(&account)?;
    let Some(settings) = effective_settings(&state, &account).await? else {
        return Err(WebError::NotFound);
    };
    let now = state.clock().now();
    let metadata = match state
        .web()
        .single_sign_on
        .metadata(&state, &settings.issuer, now)
        .await
    {
        Ok(metadata) => metadata,
        Err(refusal) => return refuse(&state, &account, &settings, &client, refusal, None).await,
    };
    let redirect = redirect_url(&state, &headers, &account);
    let oidc_client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(settings.client_id.clone()),
        Some(ClientSecret::new(
            settings.client_secret.expose().to_owned(),
        )),
    )
    .set_redirect_uri(
        RedirectUrl::new(redirect).map_err(|error| WebError::Internal(error.to_string()))?,
    );
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize_url, csrf_state, nonce) = oidc_client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser_value = new_session_id();
    state
        .store()
        .single_sign_on()
        .create_sign_in_attempt(SignInAttempt {
            state_hash: hash_token(csrf_state.secret()),
            browser_hash: hash_token(&browser_value),
            account: account.clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            created_at: now,
            expires_at: now + SIGN_IN_ATTEMPT_LIFETIME,
        })
        .await?;
    let mut response = Redirect::to(authorize_url.as_str()).into_response();
    login::set_cookie(
        &mut response,
        &browser_cookie(
            &state,
            &account,
            &browser_value,
            SIGN_IN_ATTEMPT_LIFETIME.whole_seconds(),
        ),
    );
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct CallbackQuery {
    state: Option<String>,
    code: Option<String>,
    error: Option<String>,
}

/// `GET /login/sso/{account}/callback`: checks the provider's answer and signs the person in.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    Path(account): Path<String>,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, WebError> {
    let account = parse_account(&account)?;
    let Some(settings) = effective_settings(&state, &account).await? else {
        return Err(WebError::NotFound);
    };
    // Refusals are throttled like failed passwords (and share their per-address budget), so
    // nobody can fill an account's log with refusal events from one address.
    if let Some(wait) = state.web().throttle.refusal(
        &throttle_key(&account, &client),
        client.ip,
        state.clock().now(),
    ) {
        let minutes = (wait.whole_seconds() + 59) / 60;
        return Err(WebError::TooManyRequests {
            message: format!(
                "Too many refused sign-ins from your address. Try again in {minutes} minute(s)."
            ),
            retry_after_seconds: u64::try_from(wait.whole_seconds()).unwrap_or(60),
        });
    }
    // Taken first, whatever follows: a `state` is spent by the first answer that names it. A
    // store that cannot answer is an error page, not a refusal.
    let attempt = match query.state.as_deref().filter(|text| text.len() <= 512) {
        Some(csrf_state) => {
            state
                .store()
                .single_sign_on()
                .take_sign_in_attempt(&hash_token(csrf_state), state.clock().now())
                .await?
        }
        None => None,
    };
    match verified_email(&state, &headers, &account, &settings, attempt, query).await {
        Ok(email) => sign_in(&state, &headers, &client, &account, &settings, email).await,
        Err((refusal, email)) => {
            refuse(
                &state,
                &account,
                &settings,
                &client,
                refusal,
                email.as_deref(),
            )
            .await
        }
    }
}

type Refused = (Refusal, Option<String>);

/// The throttle's "email" for single sign-on refusals: the account and the address together,
/// so one address's refusals never lock out anyone else.
fn throttle_key(account: &AccountId, client: &Client) -> String {
    format!("single sign-on to {account} from {}", client.ip)
}

/// Everything between the provider's answer and a verified email address.
async fn verified_email(
    state: &AppState,
    headers: &HeaderMap,
    account: &AccountId,
    settings: &SingleSignOnSettings,
    attempt: Option<SignInAttempt>,
    query: CallbackQuery,
) -> Result<String, Refused> {
    let now = state.clock().now();
    let attempt = attempt
        .filter(|attempt| &attempt.account == account)
        .ok_or((Refusal::UnknownState, None))?;
    let same_browser = presented_browser_value(headers)
        .is_some_and(|value| hash_token(&value) == attempt.browser_hash);
    if !same_browser {
        return Err((Refusal::OtherBrowser, None));
    }
    if query.error.is_some() {
        return Err((Refusal::ProviderError, None));
    }
    let code = query.code.ok_or((Refusal::ProviderError, None))?;

    let providers = &state.web().single_sign_on;
    let metadata = providers
        .metadata(state, &settings.issuer, now)
        .await
        .map_err(|refusal| (refusal, None))?;
    let oidc_client = |metadata: CoreProviderMetadata| {
        CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(settings.client_id.clone()),
            Some(ClientSecret::new(
                settings.client_secret.expose().to_owned(),
            )),
        )
        .set_redirect_uri(
            RedirectUrl::new(redirect_url(state, headers, account))
                .expect("the redirect URL was accepted when the sign-in started"),
        )
    };
    let exchange_client = oidc_client(metadata.clone());
    let token_request = exchange_client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|_| (Refusal::TokenExchangeFailed, None))?
        .set_pkce_verifier(PkceCodeVerifier::new(attempt.pkce_verifier.clone()));
    let exchanged = if Providers::is_operators(state, &settings.issuer) {
        token_request
            .request_async(&providers.trusted)
            .await
            .map_err(|error| error.to_string())
    } else {
        token_request
            .request_async(&providers.guarded)
            .await
            .map_err(|error| error.to_string())
    };
    let tokens = exchanged.map_err(|error| {
        tracing::warn!(issuer = %settings.issuer, error = %error, "the code exchange failed");
        (Refusal::TokenExchangeFailed, None)
    })?;
    let id_token = tokens
        .id_token()
        .ok_or((Refusal::InvalidToken, None))?
        .clone();
    let nonce = Nonce::new(attempt.nonce.clone());
    let check = |metadata: CoreProviderMetadata| {
        let verifier_client = oidc_client(metadata);
        let chrono_now = chrono::DateTime::from_timestamp(now.unix_timestamp(), now.nanosecond())
            .unwrap_or_default();
        let verifier = verifier_client
            .id_token_verifier()
            .set_time_fn(move || chrono_now);
        id_token.claims(&verifier, &nonce).map(|claims| {
            (
                claims.email().map(|email| email.to_string()),
                claims.email_verified(),
            )
        })
    };
    let checked = match check(metadata.clone()) {
        Err(ClaimsVerificationError::SignatureVerification(
            SignatureVerificationError::NoMatchingKey,
        )) => match providers
            .refetch_keys(state, &settings.issuer, &metadata, now)
            .await
        {
            Some(refreshed) => check(refreshed),
            None => Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )),
        },
        other => other,
    };
    let (email, email_verified) = checked.map_err(|error| (refusal_of(&error), None))?;
    let email = email
        .and_then(|email| normalize_email(&email))
        .ok_or((Refusal::EmailMissing, None))?;
    if email_verified != Some(true) {
        return Err((Refusal::EmailNotVerified, Some(email)));
    }
    Ok(email)
}

fn refusal_of(error: &ClaimsVerificationError) -> Refusal {
    match error {
        ClaimsVerificationError::Expired(_) => Refusal::ExpiredToken,
        ClaimsVerificationError::InvalidAudience(_) => Refusal::WrongAudience,
        ClaimsVerificationError::InvalidIssuer(_) => Refusal::WrongIssuer,
        ClaimsVerificationError::InvalidNonce(_) => Refusal::WrongNonce,
        ClaimsVerificationError::SignatureVerification(_) => Refusal::BadSignature,
        _ => Refusal::InvalidToken,
    }
}

async fn sign_in(
    state: &AppState,
    headers: &HeaderMap,
    client: &Client,
    account: &AccountId,
    settings: &SingleSignOnSettings,
    email: String,
) -> Result<Response, WebError> {
    let now = state.clock().now();
    let people = state.store().people();
    let existing = people
        .find_users_by_email(&email)
        .await?
        .into_iter()
        .find(|user| &user.account == account);
    let (user, created) = match existing {
        Some(user) => (user, false),
        None => {
            let invitation = people
                .list_pending_invitations(account, now)
                .await?
                .into_iter()
                .map(|(_, invitation)| invitation)
                .find(|invitation| invitation.email == email);
            let role = match (invitation, settings.invited_only) {
                (Some(invitation), _) => invitation.role,
                (None, false) => settings.default_role,
                (None, true) => {
                    return refuse(
                        state,
                        account,
                        settings,
                        client,
                        Refusal::NotInvited,
                        Some(&email),
                    )
                    .await;
                }
            };
            (create_user(state, account, &email, role, now).await?, true)
        }
    };
    state
        .web()
        .throttle
        .record_success(&throttle_key(account, client));
    let mut metadata = serde_json::Map::new();
    metadata.insert("provider".into(), settings.display_name.clone().into());
    metadata.insert("issuer".into(), settings.issuer.clone().into());
    metadata.insert("created".into(), created.into());
    if created {
        metadata.insert("role".into(), user.role.as_str().into());
    }
    audit::record(
        state,
        AuditEvent {
            account,
            action: SIGN_IN,
            message: format!(
                "{} signed in with {}",
                user.email,
                audit::truncate(&settings.display_name, 64)
            ),
            actor_email: &user.email,
            client,
            outcome: Outcome::Success,
            targets: vec![audit::user_target(&user.email)],
            metadata: Some(metadata),
        },
    )
    .await?;
    if created {
        audit::record(
            state,
            AuditEvent {
                account,
                action: audit::MEMBER_JOIN,
                message: format!("{} joined as {} by single sign-on", user.email, user.role),
                actor_email: &user.email,
                client,
                outcome: Outcome::Success,
                targets: vec![audit::user_target(&user.email)],
                metadata: None,
            },
        )
        .await?;
    }

    // Whatever session the browser had ends now, as with a password.
    if let Some(old_id) = presented_session_id(headers) {
        let old_hash = hash_token(&old_id);
        if let Some((old_session, _)) = people.find_session(&old_hash).await? {
            people
                .revoke_session(&old_session.user_id, &old_hash, now)
                .await?;
        }
    }
    let mut response = if user.totp_secret.is_some() {
        let session_id = login::start_session(state, &user, client, true).await?;
        let second_step = SecondFactorPage {
            chrome: Chrome::new(state, "Two-factor sign-in", None, "login"),
            csrf_token: csrf_token_for(&session_id),
            error: None,
        };
        let mut response = html(StatusCode::OK, &second_step);
        login::set_cookie(&mut response, &session_cookie(state, &session_id));
        response
    } else {
        let finished = login::finish_sign_in(state, &user, client, "single_sign_on").await?;
        let mut response = html(
            StatusCode::OK,
            &ContinuePage {
                chrome: Chrome::new(state, "Signed in", None, "login"),
            },
        );
        for cookie in finished.headers().get_all(header::SET_COOKIE) {
            response
                .headers_mut()
                .append(header::SET_COOKIE, cookie.clone());
        }
        response
    };
    login::set_cookie(&mut response, &browser_cookie(state, account, "", 0));
    Ok(response)
}

async fn create_user(
    state: &AppState,
    account: &AccountId,
    email: &str,
    role: Role,
    now: OffsetDateTime,
) -> Result<UserRecord, WebError> {
    let created = state
        .store()
        .people()
        .create_user(NewUser {
            user_id: login::new_user_id().into(),
            account: account.clone(),
            email: email.to_owned(),
            role,
            password_hash: NO_PASSWORD.to_owned(),
            created_at: now,
        })
        .await;
    match created {
        Ok(user) => Ok(user),
        // Two first sign-ins of one person at once: the other one created the user.
        Err(logbook_core::StoreError::UserAlreadyExists { .. }) => state
            .store()
            .people()
            .find_users_by_email(email)
            .await?
            .into_iter()
            .find(|user| &user.account == account)
            .ok_or(WebError::Internal(
                "a user vanished while being created".into(),
            )),
        Err(error) => Err(error.into()),
    }
}

/// Records the refusal in the account's log and tells the person what went wrong.
async fn refuse(
    state: &AppState,
    account: &AccountId,
    settings: &SingleSignOnSettings,
    client: &Client,
    refusal: Refusal,
    email: Option<&str>,
) -> Result<Response, WebError> {
    state.web().throttle.record_failure(
        &throttle_key(account, client),
        client.ip,
        state.clock().now(),
    );
    let mut metadata = serde_json::Map::new();
    metadata.insert("reason".into(), refusal.reason().into());
    metadata.insert("provider".into(), settings.display_name.clone().into());
    metadata.insert("issuer".into(), settings.issuer.clone().into());
    // Only an address the provider vouched for (a verified token) names the person; a refused
    // token's claims are not believed.
    let actor = email.unwrap_or("unknown");
    audit::record(
        state,
        AuditEvent {
            account,
            action: REFUSED,
            message: format!(
                "Single sign-on refused ({}): {}",
                refusal.reason(),
                refusal.message()
            ),
            actor_email: actor,
            client,
            outcome: Outcome::Failure,
            targets: email.map(audit::user_target).into_iter().collect(),
            metadata: Some(metadata),
        },
    )
    .await?;
    let page = crate::web::render::MessagePage {
        chrome: Chrome::new(state, "Sign-in refused", None, "login"),
        heading: "Sign-in refused".into(),
        message: refusal.message().into(),
        hints: vec![refusal.hint()],
        link_href: "/login",
        link_text: "Back to sign in",
    };
    let status = match refusal {
        Refusal::ProviderUnreachable => StatusCode::BAD_GATEWAY,
        Refusal::NotInvited => StatusCode::FORBIDDEN,
        _ => StatusCode::UNAUTHORIZED,
    };
    let mut response = html(status, &page);
    login::set_cookie(&mut response, &browser_cookie(state, account, "", 0));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_a_distinct_reason_and_a_message() {
        let all = [
            Refusal::UnknownState,
            Refusal::OtherBrowser,
            Refusal::ProviderError,
            Refusal::ProviderUnreachable,
            Refusal::TokenExchangeFailed,
            Refusal::BadSignature,
            Refusal::WrongAudience,
            Refusal::WrongIssuer,
            Refusal::ExpiredToken,
            Refusal::WrongNonce,
            Refusal::InvalidToken,
            Refusal::EmailMissing,
            Refusal::EmailNotVerified,
            Refusal::NotInvited,
        ];
        let reasons: std::collections::HashSet<_> = all.iter().map(|r| r.reason()).collect();
        assert_eq!(reasons.len(), all.len());
        assert!(all.iter().all(|refusal| !refusal.message().is_empty()));
    }

    #[test]
    fn the_browser_cookie_is_found_and_garbage_is_ignored() {
        let mut headers = HeaderMap::new();
        let value = new_session_id();
        headers.insert(
            header::COOKIE,
            format!("a=b; {BROWSER_COOKIE}={value}").parse().unwrap(),
        );
        assert_eq!(presented_browser_value(&headers), Some(value));
        headers.insert(
            header::COOKIE,
            format!("{BROWSER_COOKIE}=x;").parse().unwrap(),
        );
        assert_eq!(presented_browser_value(&headers), None);
    }

    #[test]
    fn no_password_verifies_against_the_single_sign_on_placeholder() {
        assert!(argon2::password_hash::PasswordHash::new(NO_PASSWORD).is_err());
    }
}
