//! The security page (`/security`): change password (asking for the current one; every session
//! ends, and this browser gets a fresh one), two-factor sign-in with TOTP and one-time recovery
//! codes, and the person's active sessions, each of which they can end ("this wasn't me").

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use logbook_core::event::Outcome;
use logbook_core::people::{SessionRecord, hash_token};
use logbook_core::totp;
use rand::Rng;
use serde::Deserialize;

use crate::state::AppState;
use crate::web::audit::{self, AuditEvent};
use crate::web::password::check_new_password;
use crate::web::render::{Chrome, WebError, html, utc_text, visible};
use crate::web::session::{
    SignedIn, check_form, hex, new_session_id, parse_hex_32, session_cookie,
};

const RECOVERY_CODE_COUNT: usize = 10;

pub struct SessionRow {
    pub handle: String,
    pub ip: String,
    pub browser: String,
    pub created_at: String,
    pub last_seen_at: String,
    pub is_current: bool,
}

pub struct Enrollment {
    pub secret_base32: String,
    pub uri: String,
}

#[derive(Template)]
#[template(path = "security.html")]
pub struct SecurityPage {
    pub chrome: Chrome,
    pub notice: Option<String>,
    pub error: Option<String>,
    pub second_factor_on: bool,
    pub second_factor_required: bool,
    pub recovery_codes_left: u32,
    pub enrollment: Option<Enrollment>,
    pub new_recovery_codes: Vec<String>,
    pub sessions: Vec<SessionRow>,
}

fn session_row(session: &SessionRecord, current: &[u8; 32]) -> SessionRow {
    SessionRow {
        handle: hex(&session.session_hash),
        ip: session.ip.map(|ip| ip.to_string()).unwrap_or_default(),
        browser: session
            .user_agent
            .as_deref()
            .map(|agent| visible(agent).into_owned())
            .unwrap_or_else(|| "(unknown)".into()),
        created_at: utc_text(session.created_at),
        last_seen_at: utc_text(session.last_seen_at),
        is_current: &session.session_hash == current,
    }
}

async fn security_page(
    state: &AppState,
    signed_in: &SignedIn,
    notice: Option<String>,
    error: Option<String>,
) -> Result<SecurityPage, WebError> {
    let people = state.store().people();
    let sessions = people
        .list_active_sessions(&signed_in.user.user_id)
        .await?
        .iter()
        .filter(|session| {
            crate::web::session::session_is_valid(state, session, state.clock().now())
        })
        .map(|session| session_row(session, &signed_in.session.session_hash))
        .collect();
    Ok(SecurityPage {
        chrome: Chrome::new(state, "Security", Some(signed_in), "security"),
        notice,
        error,
        second_factor_on: signed_in.user.totp_secret.is_some(),
        second_factor_required: people
            .requires_second_factor(&signed_in.user.account)
            .await?,
        recovery_codes_left: people
            .count_unused_recovery_codes(&signed_in.user.user_id)
            .await?,
        enrollment: None,
        new_recovery_codes: Vec::new(),
        sessions,
    })
}

/// `GET /security`.
pub async fn get(State(state): State<AppState>, signed_in: SignedIn) -> Result<Response, WebError> {
    let security = security_page(&state, &signed_in, None, None).await?;
    Ok(html(StatusCode::OK, &security))
}

async fn audit_simple(
    state: &AppState,
    signed_in: &SignedIn,
    action: &'static str,
    message: String,
) -> Result<(), WebError> {
    audit::record(
        state,
        AuditEvent {
            account: &signed_in.user.account,
            action,
            message,
            actor_email: &signed_in.user.email,
            client: &signed_in.client,
            outcome: Outcome::Success,
            targets: vec![audit::user_target(&signed_in.user.email)],
            metadata: None,
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    csrf_token: String,
    current_password: String,
    new_password: String,
    new_password_again: String,
}

/// `POST /security/password`.
pub async fn change_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Form(form): Form<PasswordForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    let problem = if !state
        .web()
        .passwords
        .verify(&form.current_password, Some(&signed_in.user.password_hash))
        .await
    {
        Some("The current password is not correct.")
    } else if form.new_password != form.new_password_again {
        Some("The two new passwords differ.")
    } else {
        check_new_password(&form.new_password).err()
    };
    if let Some(problem) = problem {
        let security = security_page(&state, &signed_in, None, Some(problem.into())).await?;
        return Ok(html(StatusCode::BAD_REQUEST, &security));
    }
    let now = state.clock().now();
    let password_hash = state.web().passwords.hash(&form.new_password).await?;
    // Every session ends, this one included; this browser continues with a fresh session.
    state
        .store()
        .people()
        .set_password(&signed_in.user.user_id, &password_hash, now)
        .await?;
    let session_id = new_session_id();
    state
        .store()
        .people()
        .create_session(SessionRecord {
            session_hash: hash_token(&session_id),
            user_id: signed_in.user.user_id.clone(),
            created_at: now,
            last_seen_at: now,
            ip: Some(signed_in.client.ip),
            user_agent: signed_in.client.user_agent.clone(),
            awaiting_second_factor: false,
            revoked_at: None,
        })
        .await?;
    audit_simple(
        &state,
        &signed_in,
        audit::PASSWORD_CHANGE,
        format!(
            "{} changed their password; their other sessions ended",
            signed_in.user.email
        ),
    )
    .await?;
    let mut response = Redirect::to("/security").into_response();
    if let Ok(value) = HeaderValue::from_str(&session_cookie(&state, &session_id)) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    Ok(response)
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf_token: String,
}

/// `POST /security/second-factor/start`: a new secret to enter in an authenticator app. Nothing
/// is stored until a code from it is confirmed.
pub async fn start_second_factor(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    let secret: [u8; totp::SECRET_BYTES] = rand::rng().random();
    let mut security = security_page(&state, &signed_in, None, None).await?;
    security.enrollment = Some(Enrollment {
        secret_base32: totp::base32_encode(&secret),
        uri: totp::provisioning_uri(
            &secret,
            &format!("Logbook {}", signed_in.user.account),
            &signed_in.user.email,
        ),
    });
    Ok(html(StatusCode::OK, &security))
}

#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    csrf_token: String,
    secret: String,
    code: String,
}

fn new_recovery_code() -> String {
    let bytes: [u8; 5] = rand::rng().random();
    let text = hex(&bytes);
    format!("{}-{}", &text[..5], &text[5..])
}

/// `POST /security/second-factor/confirm`: turns TOTP on once a code from the app matches, and
/// shows the recovery codes once.
pub async fn confirm_second_factor(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    let secret = totp::base32_decode(&form.secret)
        .filter(|secret| secret.len() >= 16)
        .ok_or_else(|| WebError::BadRequest("The secret is not valid; start again.".into()))?;
    let now = state.clock().now();
    if !totp::verify(&secret, &form.code, now) {
        let mut security = security_page(
            &state,
            &signed_in,
            None,
            Some(
                "That code does not match. Check the device's clock and try the next code.".into(),
            ),
        )
        .await?;
        security.enrollment = Some(Enrollment {
            uri: totp::provisioning_uri(
                &secret,
                &format!("Logbook {}", signed_in.user.account),
                &signed_in.user.email,
            ),
            secret_base32: totp::base32_encode(&secret),
        });
        return Ok(html(StatusCode::BAD_REQUEST, &security));
    }
    let codes: Vec<String> = (0..RECOVERY_CODE_COUNT)
        .map(|_| new_recovery_code())
        .collect();
    let hashes = codes.iter().map(|code| hash_token(code)).collect();
    state
        .store()
        .people()
        .set_totp(&signed_in.user.user_id, Some((secret, hashes)))
        .await?;
    audit_simple(
        &state,
        &signed_in,
        audit::SECOND_FACTOR_CHANGE,
        format!("{} turned on two-factor sign-in", signed_in.user.email),
    )
    .await?;
    let mut refreshed = signed_in.clone();
    refreshed.user.totp_secret = Some(Vec::new());
    let mut security = security_page(&state, &refreshed, Some("Two-factor sign-in is on. Keep these recovery codes somewhere safe: each works once, and they are shown only now.".into()), None).await?;
    security.new_recovery_codes = codes;
    Ok(html(StatusCode::OK, &security))
}

#[derive(Debug, Deserialize)]
pub struct DisableForm {
    csrf_token: String,
    current_password: String,
}

/// `POST /security/second-factor/disable` (asks for the password; refused when the account
/// requires two-factor sign-in).
pub async fn disable_second_factor(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Form(form): Form<DisableForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    if state
        .store()
        .people()
        .requires_second_factor(&signed_in.user.account)
        .await?
    {
        return Err(WebError::Forbidden(
            "Your account requires two-factor sign-in.",
        ));
    }
    if !state
        .web()
        .passwords
        .verify(&form.current_password, Some(&signed_in.user.password_hash))
        .await
    {
        let security = security_page(
            &state,
            &signed_in,
            None,
            Some("The current password is not correct.".into()),
        )
        .await?;
        return Ok(html(StatusCode::BAD_REQUEST, &security));
    }
    state
        .store()
        .people()
        .set_totp(&signed_in.user.user_id, None)
        .await?;
    audit_simple(
        &state,
        &signed_in,
        audit::SECOND_FACTOR_CHANGE,
        format!("{} turned off two-factor sign-in", signed_in.user.email),
    )
    .await?;
    Ok(Redirect::to("/security").into_response())
}

/// `POST /security/sessions/{handle}/end`: ends one of the person's own sessions.
pub async fn end_session(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Path(handle): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    let session_hash = parse_hex_32(&handle).ok_or(WebError::NotFound)?;
    let ended = state
        .store()
        .people()
        .revoke_session(&signed_in.user.user_id, &session_hash, state.clock().now())
        .await?;
    if !ended {
        return Err(WebError::NotFound);
    }
    audit_simple(
        &state,
        &signed_in,
        audit::SESSION_END,
        format!("{} ended a session", signed_in.user.email),
    )
    .await?;
    let target = if session_hash == signed_in.session.session_hash {
        "/login"
    } else {
        "/security"
    };
    Ok(Redirect::to(target).into_response())
}
