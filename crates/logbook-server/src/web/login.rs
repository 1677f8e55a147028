//! Signing in and out: `/login` (email and password, and the account when the email belongs to
//! several), the second step for people with two-factor sign-in, `/logout`, and accepting an
//! invitation. Every outcome is an audit event in the account's log.
//!
//! An unknown email and a wrong password get the same answer after the same work (a hash against
//! a dummy hash). Failures are throttled per email and per IP (`throttle`).

use askama::Template;
use axum::Form;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use logbook_core::event::Outcome;
use logbook_core::people::{NewUser, SessionRecord, UserRecord, hash_token, normalize_email};
use serde::Deserialize;

use crate::state::AppState;
use crate::web::audit::{self, AuditEvent};
use crate::web::password::check_new_password;
use crate::web::render::{Chrome, WebError, html, page};
use crate::web::session::{
    Client, SignedIn, check_form, check_same_origin, clearing_cookie, csrf_token_for,
    new_session_id, presented_session_id, session_cookie,
};

/// How long the step between a correct password and a correct second factor may take.
const SECOND_STEP_TIMEOUT: time::Duration = time::Duration::minutes(5);
const SIGN_IN_FAILED: &str = "Email or password is incorrect.";

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub chrome: Chrome,
    pub email: String,
    pub error: Option<String>,
    pub accounts: Vec<String>,
    /// Nobody can sign in yet: the page says how to get the setup link.
    pub first_run: bool,
    /// "Sign in with <provider>" buttons (`single_sign_on`).
    pub single_sign_on: Vec<crate::web::single_sign_on::SignInButton>,
}

#[derive(Template)]
#[template(path = "second_factor.html")]
pub struct SecondFactorPage {
    pub chrome: Chrome,
    pub csrf_token: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "invitation.html")]
pub struct InvitationPage {
    pub chrome: Chrome,
    pub token: String,
    pub error: Option<String>,
}

fn login_page(
    state: &AppState,
    email: &str,
    error: Option<String>,
    accounts: Vec<String>,
) -> LoginPage {
    LoginPage {
        chrome: Chrome::new(state, "Sign in", None, "login"),
        email: email.to_owned(),
        error,
        accounts,
        first_run: false,
        single_sign_on: Vec::new(),
    }
}

/// `GET /login`.
pub async fn get(State(state): State<AppState>) -> Result<Response, WebError> {
    let mut login = login_page(&state, "", None, Vec::new());
    login.first_run = !state.store().people().any_user_exists().await?;
    login.single_sign_on = crate::web::single_sign_on::sign_in_buttons(&state).await?;
    Ok(page(&login))
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    account: String,
}

/// `POST /login`.
pub async fn post(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Result<Response, WebError> {
    check_same_origin(&headers, &state)?;
    let Form(form) =
        form.map_err(|_| WebError::BadRequest("The sign-in form was incomplete.".into()))?;
    let now = state.clock().now();
    let email = normalize_email(&form.email).unwrap_or_else(|| form.email.trim().to_lowercase());
    let web = state.web();

    if let Some(wait) = web.throttle.refusal(&email, client.ip, now) {
        let minutes = (wait.whole_seconds() + 59) / 60;
        let message = format!(
            "Too many failed attempts. Try again in {minutes} minute(s), or reset your password with your account's owner."
        );
        return Ok(html(
            StatusCode::TOO_MANY_REQUESTS,
            &login_page(&state, &form.email, Some(message), Vec::new()),
        ));
    }

    let mut candidates = if email.len() <= 254 {
        state.store().people().find_users_by_email(&email).await?
    } else {
        Vec::new()
    };
    let chosen_account = form.account.trim();
    if !chosen_account.is_empty() {
        candidates.retain(|user| user.account.as_str() == chosen_account);
    }

    let mut matched: Vec<UserRecord> = Vec::new();
    if candidates.is_empty() {
        // The same work as for a real user, so timing does not tell whether the email exists.
        web.passwords.verify(&form.password, None).await;
    }
    for user in &candidates {
        if web
            .passwords
            .verify(&form.password, Some(&user.password_hash))
            .await
        {
            matched.push(user.clone());
        }
    }

    let user = match matched.len() {
        0 => {
            web.throttle.record_failure(&email, client.ip, now);
            for user in &candidates {
                audit::record(
                    &state,
                    AuditEvent {
                        account: &user.account,
                        action: audit::LOGIN_FAILED,
                        message: format!("Failed sign-in for {}", audit::truncate(&email, 256)),
                        actor_email: &email,
                        client: &client,
                        outcome: Outcome::Failure,
                        targets: vec![audit::user_target(&email)],
                        metadata: None,
                    },
                )
                .await?;
            }
            return Ok(html(
                StatusCode::UNAUTHORIZED,
                &login_page(&state, &form.email, Some(SIGN_IN_FAILED.into()), Vec::new()),
            ));
        }
        1 => matched.pop().expect("one match"),
        _ => {
            // Only someone who knows the password learns that the email is in several accounts.
            let accounts = matched
                .iter()
                .map(|user| user.account.to_string())
                .collect();
            let message =
                "This email belongs to several accounts. Choose one and enter your password again."
                    .to_owned();
            return Ok(html(
                StatusCode::OK,
                &login_page(&state, &form.email, Some(message), accounts),
            ));
        }
    };
    web.throttle.record_success(&email);
    if let Some(message) =
        crate::web::single_sign_on::password_sign_in_refused(&state, &user).await?
    {
        audit::record(
            &state,
            AuditEvent {
                account: &user.account,
                action: audit::LOGIN_FAILED,
                message: format!(
                    "Password sign-in refused for {email}: the account uses single sign-on"
                ),
                actor_email: &email,
                client: &client,
                outcome: Outcome::Failure,
                targets: vec![audit::user_target(&email)],
                metadata: None,
            },
        )
        .await?;
        let mut refused = login_page(&state, &form.email, Some(message), Vec::new());
        refused.single_sign_on = crate::web::single_sign_on::sign_in_buttons(&state).await?;
        return Ok(html(StatusCode::FORBIDDEN, &refused));
    }

    // Rotation: whatever session the browser had ends now and a new id is issued.
    if let Some(old_id) = presented_session_id(&headers) {
        let old_hash = hash_token(&old_id);
        if let Some((old_session, _)) = state.store().people().find_session(&old_hash).await? {
            state
                .store()
                .people()
                .revoke_session(&old_session.user_id, &old_hash, now)
                .await?;
        }
    }

    if user.totp_secret.is_some() {
        let session_id = start_session(&state, &user, &client, true).await?;
        let second_step = SecondFactorPage {
            chrome: Chrome::new(&state, "Two-factor sign-in", None, "login"),
            csrf_token: csrf_token_for(&session_id),
            error: None,
        };
        let mut response = html(StatusCode::OK, &second_step);
        set_cookie(&mut response, &session_cookie(&state, &session_id));
        return Ok(response);
    }
    finish_sign_in(&state, &user, &client, "password").await
}

pub(crate) async fn start_session(
    state: &AppState,
    user: &UserRecord,
    client: &Client,
    awaiting_second_factor: bool,
) -> Result<String, WebError> {
    let now = state.clock().now();
    let session_id = new_session_id();
    state
        .store()
        .people()
        .create_session(SessionRecord {
            session_hash: hash_token(&session_id),
            user_id: user.user_id.clone(),
            created_at: now,
            last_seen_at: now,
            ip: Some(client.ip),
            user_agent: client.user_agent.clone(),
            awaiting_second_factor,
            revoked_at: None,
        })
        .await?;
    Ok(session_id)
}

pub(crate) async fn finish_sign_in(
    state: &AppState,
    user: &UserRecord,
    client: &Client,
    method: &str,
) -> Result<Response, WebError> {
    let session_id = start_session(state, user, client, false).await?;
    let mut metadata = serde_json::Map::new();
    metadata.insert("method".into(), method.into());
    audit::record(
        state,
        AuditEvent {
            account: &user.account,
            action: audit::LOGIN,
            message: format!("{} signed in", user.email),
            actor_email: &user.email,
            client,
            outcome: Outcome::Success,
            targets: vec![audit::user_target(&user.email)],
            metadata: Some(metadata),
        },
    )
    .await?;
    let mut response = Redirect::to("/").into_response();
    set_cookie(&mut response, &session_cookie(state, &session_id));
    Ok(response)
}

pub(crate) fn set_cookie(response: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

#[derive(Debug, Deserialize)]
pub struct SecondFactorForm {
    csrf_token: String,
    code: String,
}

/// `POST /login/second-factor`: a TOTP code or a recovery code completes the sign-in.
pub async fn post_second_factor(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    form: Result<Form<SecondFactorForm>, FormRejection>,
) -> Result<Response, WebError> {
    check_same_origin(&headers, &state)?;
    let Form(form) = form.map_err(|_| WebError::BadRequest("The form was incomplete.".into()))?;
    let session_id = presented_session_id(&headers).ok_or(WebError::SignInRequired)?;
    let session_hash = hash_token(&session_id);
    let now = state.clock().now();
    let Some((session, user)) = state.store().people().find_session(&session_hash).await? else {
        return Err(WebError::SignInRequired);
    };
    if !session.awaiting_second_factor
        || session.revoked_at.is_some()
        || now - session.created_at > SECOND_STEP_TIMEOUT
    {
        return Err(WebError::SignInRequired);
    }
    let expected = csrf_token_for(&session_id);
    if form.csrf_token.len() != expected.len() || form.csrf_token != expected {
        return Err(WebError::CrossSite);
    }
    if let Some(wait) = state.web().throttle.refusal(&user.email, client.ip, now) {
        let minutes = (wait.whole_seconds() + 59) / 60;
        let retry = SecondFactorPage {
            chrome: Chrome::new(&state, "Two-factor sign-in", None, "login"),
            csrf_token: expected,
            error: Some(format!(
                "Too many failed attempts. Try again in {minutes} minute(s)."
            )),
        };
        return Ok(html(StatusCode::TOO_MANY_REQUESTS, &retry));
    }
    let code = form.code.trim();
    let by_totp = user
        .totp_secret
        .as_deref()
        .is_some_and(|secret| logbook_core::totp::verify(secret, code, now));
    let by_recovery_code = !by_totp
        && code.len() <= 64
        && state
            .store()
            .people()
            .use_recovery_code(&user.user_id, &hash_token(&code.to_lowercase()), now)
            .await?;
    if !(by_totp || by_recovery_code) {
        state
            .web()
            .throttle
            .record_failure(&user.email, client.ip, now);
        audit::record(
            &state,
            AuditEvent {
                account: &user.account,
                action: audit::LOGIN_FAILED,
                message: format!("Failed two-factor sign-in for {}", user.email),
                actor_email: &user.email,
                client: &client,
                outcome: Outcome::Failure,
                targets: vec![audit::user_target(&user.email)],
                metadata: None,
            },
        )
        .await?;
        let retry = SecondFactorPage {
            chrome: Chrome::new(&state, "Two-factor sign-in", None, "login"),
            csrf_token: expected,
            error: Some(
                "That code is not valid. Codes change every 30 seconds; check your device's clock."
                    .into(),
            ),
        };
        return Ok(html(StatusCode::UNAUTHORIZED, &retry));
    }
    state
        .store()
        .people()
        .revoke_session(&user.user_id, &session_hash, now)
        .await?;
    state.web().throttle.record_success(&user.email);
    finish_sign_in(
        &state,
        &user,
        &client,
        if by_totp {
            "password+totp"
        } else {
            "password+recovery_code"
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf_token: String,
}

/// `POST /logout`: the session is revoked in the store, so no node accepts it again.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    let now = state.clock().now();
    state
        .store()
        .people()
        .revoke_session(
            &signed_in.user.user_id,
            &signed_in.session.session_hash,
            now,
        )
        .await?;
    audit::record(
        &state,
        AuditEvent {
            account: &signed_in.user.account,
            action: audit::LOGOUT,
            message: format!("{} signed out", signed_in.user.email),
            actor_email: &signed_in.user.email,
            client: &signed_in.client,
            outcome: Outcome::Success,
            targets: vec![audit::user_target(&signed_in.user.email)],
            metadata: None,
        },
    )
    .await?;
    let mut response = Redirect::to("/login").into_response();
    set_cookie(&mut response, &clearing_cookie(&state));
    Ok(response)
}

/// `GET /invitations/{token}`: the form that sets a password and joins. Nothing is consumed yet.
pub async fn get_invitation(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    page(&InvitationPage {
        chrome: Chrome::new(&state, "Join your team", None, "login"),
        token,
        error: None,
    })
}

#[derive(Debug, Deserialize)]
pub struct InvitationForm {
    password: String,
    password_again: String,
}

/// `POST /invitations/{token}`: consumes the invitation and creates the person's user.
pub async fn post_invitation(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    Path(token): Path<String>,
    Form(form): Form<InvitationForm>,
) -> Result<Response, WebError> {
    check_same_origin(&headers, &state)?;
    let retry = |message: &str| InvitationPage {
        chrome: Chrome::new(&state, "Join your team", None, "login"),
        token: token.clone(),
        error: Some(message.to_owned()),
    };
    if let Err(message) = check_new_password(&form.password) {
        return Ok(html(StatusCode::BAD_REQUEST, &retry(message)));
    }
    if form.password != form.password_again {
        return Ok(html(
            StatusCode::BAD_REQUEST,
            &retry("The two passwords differ."),
        ));
    }
    let now = state.clock().now();
    let password_hash = state.web().passwords.hash(&form.password).await?;
    let invitation = state
        .store()
        .people()
        .take_invitation(&hash_token(&token), now)
        .await?
        .ok_or(WebError::NotFound)?;
    let user = state
        .store()
        .people()
        .create_user(NewUser {
            user_id: new_user_id().into(),
            account: invitation.account.clone(),
            email: invitation.email.clone(),
            role: invitation.role,
            password_hash,
            created_at: now,
        })
        .await
        .map_err(|error| match error {
            logbook_core::StoreError::UserAlreadyExists { .. } => WebError::BadRequest(
                "This email already belongs to a user of the account; sign in instead.".into(),
            ),
            other => WebError::Store(other),
        })?;
    audit::record(
        &state,
        AuditEvent {
            account: &user.account,
            action: audit::MEMBER_JOIN,
            message: format!(
                "{} accepted the invitation of {} as {}",
                user.email, invitation.invited_by, user.role
            ),
            actor_email: &user.email,
            client: &client,
            outcome: Outcome::Success,
            targets: vec![audit::user_target(&user.email)],
            metadata: None,
        },
    )
    .await?;
    finish_sign_in(&state, &user, &client, "invitation").await
}

/// A new public user id: `usr_` and 20 hex characters.
pub fn new_user_id() -> String {
    let bytes: [u8; 10] = rand::Rng::random(&mut rand::rng());
    format!("usr_{}", crate::web::session::hex(&bytes))
}
