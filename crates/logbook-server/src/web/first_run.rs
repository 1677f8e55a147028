//! The first run: while no person of any account can sign in, `serve` prints a one-time setup
//! link (`/setup/<token>`, valid `SETUP_LINK_LIFETIME`, single use) that creates the first owner
//! and signs them in; the sign-in page says how to get one. Without it, the README's first command
//! ends at a sign-in form nobody can pass.
//!
//! The link lives in this node's memory, never in the database: it is printed to whoever started
//! the process, a restart prints a new one, and with several nodes it opens on the node that
//! printed it (`logbook user add` works anywhere). Only its SHA-256 is kept, so a memory dump of a
//! used or expired link is worthless, and it is refused as soon as anyone can sign in.

use std::sync::Mutex;

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use logbook_core::AccountId;
use logbook_core::event::Outcome;
use logbook_core::people::{NewUser, Role, hash_token, normalize_email};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::state::AppState;
use crate::web::audit::{self, AuditEvent};
use crate::web::password::check_new_password;
use crate::web::render::{Chrome, WebError, html, page};
use crate::web::session::{Client, check_same_origin};

/// How long a printed setup link works.
pub const SETUP_LINK_LIFETIME: time::Duration = time::Duration::minutes(30);

struct PendingSetup {
    token_hash: [u8; 32],
    expires_at: OffsetDateTime,
}

/// This node's setup link, if it printed one that is not used yet.
#[derive(Default)]
pub struct FirstRunSetup {
    pending: Mutex<Option<PendingSetup>>,
}

impl FirstRunSetup {
    /// Whether `token` is the pending link and it has not expired at `now`.
    fn is_valid(&self, token: &str, now: OffsetDateTime) -> bool {
        let pending = self.pending.lock().expect("setup lock poisoned");
        pending.as_ref().is_some_and(|pending| {
            pending.token_hash == hash_token(token) && now < pending.expires_at
        })
    }

    /// Takes the link if `token` is it and still valid: it answers once.
    fn take(&self, token: &str, now: OffsetDateTime) -> bool {
        let mut pending = self.pending.lock().expect("setup lock poisoned");
        let valid = pending.as_ref().is_some_and(|pending| {
            pending.token_hash == hash_token(token) && now < pending.expires_at
        });
        if valid {
            *pending = None;
        }
        valid
    }
}

impl AppState {
    /// When nobody can sign in yet, makes a new setup link (replacing any earlier one) and returns
    /// its token for `serve` to print; `None` once a person exists.
    pub async fn first_run_setup_token(&self) -> Result<Option<String>, logbook_core::StoreError> {
        if self.store().people().any_user_exists().await? {
            return Ok(None);
        }
        let bytes: [u8; 32] = rand::Rng::random(&mut rand::rng());
        let token = crate::web::session::hex(&bytes);
        *self
            .web()
            .first_run
            .pending
            .lock()
            .expect("setup lock poisoned") = Some(PendingSetup {
            token_hash: hash_token(&token),
            expires_at: self.clock().now() + SETUP_LINK_LIFETIME,
        });
        Ok(Some(token))
    }
}

#[derive(Template)]
#[template(path = "setup.html")]
pub struct SetupPage {
    pub chrome: Chrome,
    pub token: String,
    pub account: String,
    pub email: String,
    pub error: Option<String>,
}

/// What a used, expired or unknown link answers: the same page, so a guess learns nothing.
fn link_not_valid() -> WebError {
    WebError::BadRequest(
        "This setup link is used, expired or unknown. Restart `logbook serve` for a new one, or create a person with `logbook user add`.".into(),
    )
}

/// `GET /setup/{token}`.
pub async fn get(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    if !state.web().first_run.is_valid(&token, state.clock().now())
        || state.store().people().any_user_exists().await?
    {
        return Err(link_not_valid());
    }
    // One account already there (made with the CLI, say) is the obvious one to own.
    let accounts = state.store().list_accounts().await?;
    let account = match accounts.as_slice() {
        [only] => only.account.to_string(),
        _ => String::new(),
    };
    Ok(page(&SetupPage {
        chrome: Chrome::new(&state, "Set up Logbook", None, "login"),
        token,
        account,
        email: String::new(),
        error: None,
    }))
}

#[derive(Debug, Deserialize)]
pub struct SetupForm {
    #[serde(default)]
    account: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_again: String,
}

/// `POST /setup/{token}`: creates the account (if new) and its first owner, uses up the link and
/// signs the owner in.
pub async fn post(
    State(state): State<AppState>,
    headers: HeaderMap,
    client: Client,
    Path(token): Path<String>,
    Form(form): Form<SetupForm>,
) -> Result<Response, WebError> {
    check_same_origin(&headers, &state)?;
    let now = state.clock().now();
    if !state.web().first_run.is_valid(&token, now)
        || state.store().people().any_user_exists().await?
    {
        return Err(link_not_valid());
    }
    let retry = |message: String| {
        html(
            StatusCode::BAD_REQUEST,
            &SetupPage {
                chrome: Chrome::new(&state, "Set up Logbook", None, "login"),
                token: token.clone(),
                account: form.account.clone(),
                email: form.email.clone(),
                error: Some(message),
            },
        )
    };
    let account = match AccountId::parse(form.account.trim()) {
        Ok(account) => account,
        Err(error) => return Ok(retry(format!("Account: {error}"))),
    };
    let Some(email) = normalize_email(&form.email) else {
        return Ok(retry("Email: an address like you@example.com.".into()));
    };
    if let Err(message) = check_new_password(&form.password) {
        return Ok(retry(message.to_owned()));
    }
    if form.password != form.password_again {
        return Ok(retry("The two passwords differ.".into()));
    }
    let password_hash = state.web().passwords.hash(&form.password).await?;
    // Taken only now, after every check, so a typo does not burn the link; two submissions at
    // once get it once.
    if !state.web().first_run.take(&token, now) {
        return Err(link_not_valid());
    }
    match state.store().create_account(&account, now).await {
        Ok(_) | Err(logbook_core::StoreError::AccountAlreadyExists(_)) => {}
        Err(error) => return Err(error.into()),
    }
    let user = state
        .store()
        .people()
        .create_user(NewUser {
            user_id: crate::web::login::new_user_id().into(),
            account: account.clone(),
            email,
            role: Role::Owner,
            password_hash,
            created_at: now,
        })
        .await?;
    audit::record(
        &state,
        AuditEvent {
            account: &user.account,
            action: audit::MEMBER_JOIN,
            message: format!("{} set up Logbook as the first owner", user.email),
            actor_email: &user.email,
            client: &client,
            outcome: Outcome::Success,
            targets: vec![audit::user_target(&user.email)],
            metadata: None,
        },
    )
    .await?;
    crate::web::login::finish_sign_in(&state, &user, &client, "setup link").await
}
