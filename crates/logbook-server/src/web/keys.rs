//! The API keys page (`/keys`): the account's keys (never their secrets), creating one with its
//! scopes (the key is shown once), when each was last used, and revoking. Owners and admins
//! only; each change is an audit event.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use logbook_core::api_key::{KeyOwner, PlaintextApiKey, Scopes};
use logbook_core::event::{Outcome, Target};
use logbook_core::ids::ApiKeyId;
use logbook_core::store::NewApiKey;
use rand::Rng;
use serde::Deserialize;

use crate::state::AppState;
use crate::web::audit::{self, AuditEvent};
use crate::web::render::{Chrome, WebError, page, utc_text, visible};
use crate::web::session::{SignedIn, check_form};

pub struct KeyRow {
    pub key_id: String,
    pub display_prefix: String,
    pub scopes: String,
    pub description: String,
    pub created_at: String,
    /// The newest of the store's `last_used_at` and this node's use not yet written there.
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

#[derive(Template)]
#[template(path = "keys.html")]
pub struct KeysPage {
    pub chrome: Chrome,
    pub keys: Vec<KeyRow>,
    pub new_key: Option<String>,
}

fn require_manager(signed_in: &SignedIn) -> Result<(), WebError> {
    if signed_in.user.role.manages_account() {
        Ok(())
    } else {
        Err(WebError::Forbidden(
            "Only owners and admins manage API keys.",
        ))
    }
}

async fn keys_page(
    state: &AppState,
    signed_in: &SignedIn,
    new_key: Option<String>,
) -> Result<Response, WebError> {
    let key_usage = state.api_key_cache().usage();
    let keys = state
        .store()
        .list_api_keys(Some(&signed_in.user.account))
        .await?
        .into_iter()
        .map(|key| KeyRow {
            last_used_at: key
                .last_used_at
                .max(key_usage.last_use_of(&key.key_id))
                .map(utc_text),
            key_id: key.key_id.into_string(),
            display_prefix: key.display_prefix,
            scopes: key.scopes.to_string(),
            description: key
                .description
                .as_deref()
                .map(|text| visible(text).into_owned())
                .unwrap_or_default(),
            created_at: utc_text(key.created_at),
            revoked_at: key.revoked_at.map(utc_text),
        })
        .collect();
    Ok(page(&KeysPage {
        chrome: Chrome::new(state, "API keys", Some(signed_in), "keys"),
        keys,
        new_key,
    }))
}

/// `GET /keys`.
pub async fn get(State(state): State<AppState>, signed_in: SignedIn) -> Result<Response, WebError> {
    require_manager(&signed_in)?;
    keys_page(&state, &signed_in, None).await
}

#[derive(Debug, Deserialize)]
pub struct CreateForm {
    csrf_token: String,
    #[serde(default)]
    ingest: String,
    #[serde(default)]
    read: String,
    #[serde(default)]
    description: String,
}

/// A new key and its public id (`key_` and 16 base32 characters), as `logbook key create` makes.
fn new_key() -> (PlaintextApiKey, String) {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut random = rand::rng();
    let plaintext = PlaintextApiKey::from_random_bytes(random.random());
    let mut key_id = String::from("key_");
    key_id.extend((0..16).map(|_| ALPHABET[random.random_range(0..ALPHABET.len())] as char));
    (plaintext, key_id)
}

fn key_target(key_id: &ApiKeyId) -> Target {
    Target {
        target_type: "api_key".into(),
        id: key_id.to_string(),
        name: None,
    }
}

/// `POST /keys`: creates a key and shows it once.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Form(form): Form<CreateForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    require_manager(&signed_in)?;
    let scopes = Scopes {
        ingest: !form.ingest.is_empty(),
        read: !form.read.is_empty(),
        admin: false,
    };
    if !scopes.ingest && !scopes.read {
        return Err(WebError::BadRequest(
            "Choose at least one scope: ingest or read.".into(),
        ));
    }
    let description = form.description.trim();
    if description.len() > 200 {
        return Err(WebError::BadRequest(
            "A description holds at most 200 bytes.".into(),
        ));
    }
    let (plaintext, key_id) = new_key();
    let record = state
        .store()
        .create_api_key(NewApiKey {
            key_id: key_id.into(),
            key_hash: plaintext.hash(),
            owner: KeyOwner::Account(signed_in.user.account.clone()),
            scopes,
            display_prefix: plaintext.display_prefix(),
            description: (!description.is_empty()).then(|| description.to_owned()),
            created_at: state.clock().now(),
        })
        .await?;
    audit::record(
        &state,
        AuditEvent {
            account: &signed_in.user.account,
            action: audit::API_KEY_CREATE,
            message: format!(
                "{} created API key {} ({})",
                signed_in.user.email, record.display_prefix, record.scopes
            ),
            actor_email: &signed_in.user.email,
            client: &signed_in.client,
            outcome: Outcome::Success,
            targets: vec![key_target(&record.key_id)],
            metadata: None,
        },
    )
    .await?;
    keys_page(&state, &signed_in, Some(plaintext.expose().to_owned())).await
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf_token: String,
}

/// `POST /keys/{key_id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Path(key_id): Path<ApiKeyId>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    require_manager(&signed_in)?;
    // Only a key of this account may be revoked from here; any other key id is "not found".
    let keys = state
        .store()
        .list_api_keys(Some(&signed_in.user.account))
        .await?;
    let key = keys
        .into_iter()
        .find(|key| key.key_id == key_id)
        .ok_or(WebError::NotFound)?;
    state
        .store()
        .revoke_api_key(&key.key_id, state.clock().now())
        .await?;
    audit::record(
        &state,
        AuditEvent {
            account: &signed_in.user.account,
            action: audit::API_KEY_REVOKE,
            message: format!(
                "{} revoked API key {}",
                signed_in.user.email, key.display_prefix
            ),
            actor_email: &signed_in.user.email,
            client: &signed_in.client,
            outcome: Outcome::Success,
            targets: vec![key_target(&key.key_id)],
            metadata: None,
        },
    )
    .await?;
    Ok(Redirect::to("/keys").into_response())
}
