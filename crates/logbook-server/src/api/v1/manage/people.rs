//! `/api/v1/accounts/{account}/people`: add a person with a password or invite them with a
//! one-time link, list, change a role, remove, and force a password reset (which ends every
//! session of theirs).
//!
//! A person removed earlier answers 409 `user_removed` to a role change, a removal or a reset
//! (the account's own log says they were removed), so a caller that raced another knows what
//! happened; an id that never was a person of the account answers 404.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use logbook_core::AccountId;
use logbook_core::StoreError;
use logbook_core::ids::UserId;
use logbook_core::people::{
    InvitationRecord, NewUser, Role, UserRecord, hash_token, normalize_email,
};
use logbook_core::store::EventQuery;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{
    AccountItemPath, AccountPath, AdminKey, Change, json_body, key_label, record_change, rfc3339,
    target,
};
use crate::error::ApiError;
use crate::state::AppState;
use crate::web::password::check_new_password;

pub const MEMBER_ADD: &str = "logbook.member.add";
pub const MEMBER_INVITE: &str = "logbook.member.invite";
pub const MEMBER_ROLE_CHANGE: &str = "logbook.member.role_change";
pub const MEMBER_REMOVE: &str = "logbook.member.remove";
pub const PASSWORD_RESET: &str = "logbook.password.reset";

/// How long an invitation link works, as on the Team page.
const INVITATION_LIFETIME: time::Duration = time::Duration::days(7);

/// `POST /api/v1/accounts/{account}/people`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddPerson {
    #[schema(
        max_length = 254,
        pattern = "^[^\\s@\\x00-\\x1f\\x7f-\\x9f]+@[^\\s@\\x00-\\x1f\\x7f-\\x9f]+$",
        example = "alice@acme.com"
    )]
    pub email: String,
    /// `owner`, `admin`, `viewer` or `member`.
    #[schema(value_type = super::RoleName)]
    pub role: String,
    /// With a password (at least 10 characters) the person is added and can sign in at once;
    /// without one they are invited, and the answer holds their one-time link.
    #[serde(default)]
    #[schema(min_length = 10, max_length = 256)]
    pub password: Option<String>,
}

/// `PATCH /api/v1/accounts/{account}/people/{user_id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRole {
    #[schema(value_type = super::RoleName)]
    pub role: String,
}

/// `POST /api/v1/accounts/{account}/people/{user_id}/password-reset`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPassword {
    /// The new password; without one the password is replaced by an unknown one, so the person
    /// cannot sign in until an admin sets a new password.
    #[serde(default)]
    #[schema(min_length = 10, max_length = 256)]
    pub password: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PersonAnswer {
    pub user_id: String,
    pub account: String,
    pub email: String,
    #[schema(value_type = String)]
    pub role: &'static str,
    pub second_factor: bool,
    pub created_at: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvitationAnswer {
    pub email: String,
    #[schema(value_type = String)]
    pub role: &'static str,
    /// The one-time link to send the person; shown only here.
    pub invitation_url: String,
    pub expires_at: String,
}

/// What adding someone answers: the person (added with a password) or the invitation.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum PersonOrInvitation {
    Person(PersonAnswer),
    Invitation(InvitationAnswer),
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PeopleList {
    pub people: Vec<PersonAnswer>,
}

fn person_answer(user: &UserRecord) -> PersonAnswer {
    PersonAnswer {
        user_id: user.user_id.to_string(),
        account: user.account.to_string(),
        email: user.email.clone(),
        role: user.role.as_str(),
        second_factor: user.totp_secret.is_some(),
        created_at: rfc3339(user.created_at),
    }
}

/// The longest password the API takes, in characters: within the page's 1024 bytes in any
/// script, and what the OpenAPI document says.
const MAX_API_PASSWORD_CHARS: usize = 256;

fn check_api_password(password: &str) -> Result<(), ApiError> {
    check_new_password(password)
        .map_err(|message| ApiError::bad_request("weak_password", message, Some("/password")))?;
    if password.chars().count() > MAX_API_PASSWORD_CHARS {
        return Err(ApiError::bad_request(
            "invalid_password",
            format!("a password holds at most {MAX_API_PASSWORD_CHARS} characters"),
            Some("/password"),
        ));
    }
    Ok(())
}

fn parse_role(text: &str) -> Result<Role, ApiError> {
    Role::parse(text)
        .map_err(|error| ApiError::bad_request("invalid_role", error.to_string(), Some("/role")))
}

fn random_hex(bytes: usize) -> String {
    let mut random = rand::rng();
    (0..bytes)
        .map(|_| format!("{:02x}", random.random::<u8>()))
        .collect()
}

fn person_target(user_id: &UserId, email: &str) -> logbook_core::event::Target {
    target("user", user_id.as_str(), Some(email))
}

/// The person `user_id` of `account`: 404 when they never were one, 409 `user_removed` when the
/// account's log records their removal.
async fn person_of_account(
    state: &AppState,
    account: &AccountId,
    user_id: &str,
) -> Result<UserRecord, ApiError> {
    let user_id = UserId::from(user_id);
    if let Some(user) = state.store().people().get_user(&user_id).await?
        && &user.account == account
    {
        return Ok(user);
    }
    Err(gone_or_never_there(state, account, &user_id).await)
}

/// What to answer for a person who is not (or no longer) in the account.
async fn gone_or_never_there(state: &AppState, account: &AccountId, user_id: &UserId) -> ApiError {
    // Only ids that look like ours are looked up, so no query text comes from elsewhere.
    let well_formed = user_id.as_str().len() <= 64
        && user_id
            .as_str()
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
    if !well_formed {
        return ApiError::NotFound;
    }
    let Ok(query) = logbook_core::query::parse(&format!(
        "action:{MEMBER_REMOVE} target:{}",
        user_id.as_str()
    )) else {
        return ApiError::NotFound;
    };
    let removed = state
        .store()
        .query_events(
            account,
            &EventQuery {
                query,
                limit: 1,
                after: None,
            },
        )
        .await;
    match removed {
        Ok(page) if !page.events.is_empty() => ApiError::Conflict {
            code: "user_removed",
            message: format!(
                "user {user_id} was removed from account {account}; nothing was changed"
            ),
            field: None,
        },
        Ok(_) => ApiError::NotFound,
        Err(error) => error.into(),
    }
}

/// `POST /api/v1/accounts/{account}/people`: 201 with the person (with a password) or with the
/// invitation and its one-time link (without one). 409 `user_exists` when the email is already a
/// person of the account.
#[utoipa::path(
    post,
    path = "/api/v1/accounts/{account}/people",
    operation_id = "add_person",
    tag = "management",
    params(("account" = String, Path, description = "The account name", example = "acme")),
    request_body = AddPerson,
    security(("admin_key" = [])),
    responses(
        (status = 201, description = "Added (with a password): the person; invited (without): the invitation and its one-time link", body = PersonOrInvitation),
        (status = 400, description = "Bad input; field is the JSON pointer of the offending member; nothing changed", body = crate::api::v1::openapi::ErrorDocument),
        (status = 413, description = "Body larger than 64 KiB", body = crate::api::v1::openapi::ErrorDocument),
        (status = 415, description = "Content-Type is not application/json", body = crate::api::v1::openapi::ErrorDocument),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 404, description = "No such account, or one this key may not manage (never told apart)", body = crate::api::v1::openapi::ErrorDocument),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 409, description = "Already a person of the account; nothing changed", body = crate::api::v1::openapi::ErrorDocument)
    )
)]
pub async fn add(
    State(state): State<AppState>,
    admin: AdminKey,
    AccountPath(name): AccountPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let account = admin.managed_account(&state, &name).await?.account;
    let request: AddPerson = json_body(&state, &headers, body).await?;
    // Spaces around the address are refused, not trimmed, as the document's pattern says.
    let as_sent = (request.email.trim() == request.email).then_some(request.email.as_str());
    let email = as_sent.and_then(normalize_email).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_email",
            "email must be an email address",
            Some("/email"),
        )
    })?;
    let role = parse_role(&request.role)?;
    let now = state.clock().now();
    let Some(password) = request.password else {
        if state
            .store()
            .people()
            .list_users(&account)
            .await?
            .iter()
            .any(|user| user.email == email)
        {
            return Err(user_exists(&account, &email));
        }
        let token = random_hex(32);
        let expires_at = now + INVITATION_LIFETIME;
        state
            .store()
            .people()
            .create_invitation(
                hash_token(&token),
                InvitationRecord {
                    account: account.clone(),
                    email: email.clone(),
                    role,
                    invited_by: admin.key.key_id.to_string(),
                    created_at: now,
                    expires_at,
                },
            )
            .await?;
        record_change(
            &state,
            &admin,
            Change {
                account: &account,
                action: MEMBER_INVITE,
                message: format!("{} invited {email} as {role}", key_label(&admin)),
                targets: vec![target("user", &email, None)],
                metadata: None,
            },
        )
        .await?;
        let base = state.settings().public_url.clone().unwrap_or_default();
        let answer = InvitationAnswer {
            email,
            role: role.as_str(),
            invitation_url: format!("{}/invitations/{token}", base.trim_end_matches('/')),
            expires_at: rfc3339(expires_at),
        };
        return Ok((
            StatusCode::CREATED,
            Json(PersonOrInvitation::Invitation(answer)),
        )
            .into_response());
    };
    check_api_password(&password)?;
    let password_hash = state
        .web()
        .passwords
        .hash(&password)
        .await
        .map_err(ApiError::internal)?;
    let created = state
        .store()
        .people()
        .create_user(NewUser {
            user_id: format!("usr_{}", random_hex(10)).into(),
            account: account.clone(),
            email: email.clone(),
            role,
            password_hash,
            created_at: now,
        })
        .await;
    let user = match created {
        Ok(user) => user,
        Err(StoreError::UserAlreadyExists { .. }) => return Err(user_exists(&account, &email)),
        Err(StoreError::AccountNotFound(_)) => return Err(ApiError::NotFound),
        Err(error) => return Err(error.into()),
    };
    record_change(
        &state,
        &admin,
        Change {
            account: &account,
            action: MEMBER_ADD,
            message: format!("{} added {email} as {role}", key_label(&admin)),
            targets: vec![person_target(&user.user_id, &email)],
            metadata: None,
        },
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(PersonOrInvitation::Person(person_answer(&user))),
    )
        .into_response())
}

fn user_exists(account: &AccountId, email: &str) -> ApiError {
    ApiError::Conflict {
        code: "user_exists",
        message: format!("{email} is already a person of account {account}; nothing was changed"),
        field: Some("/email".to_owned()),
    }
}

/// `GET /api/v1/accounts/{account}/people`: by email.
#[utoipa::path(
    get,
    path = "/api/v1/accounts/{account}/people",
    operation_id = "list_people",
    tag = "management",
    params(("account" = String, Path, description = "The account name", example = "acme")),
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The account's people by email", body = PeopleList),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 404, description = "No such account, or one this key may not manage (never told apart)", body = crate::api::v1::openapi::ErrorDocument),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))
    )
)]
pub async fn list(
    State(state): State<AppState>,
    admin: AdminKey,
    AccountPath(name): AccountPath,
) -> Result<Json<PeopleList>, ApiError> {
    let account = admin.managed_account(&state, &name).await?.account;
    let users = state.store().people().list_users(&account).await?;
    Ok(Json(PeopleList {
        people: users.iter().map(person_answer).collect(),
    }))
}

/// `PATCH /api/v1/accounts/{account}/people/{user_id}`: changes the role.
#[utoipa::path(
    patch,
    path = "/api/v1/accounts/{account}/people/{user_id}",
    operation_id = "change_role",
    tag = "management",
    params(("account" = String, Path, description = "The account name", example = "acme"), ("user_id" = String, Path, description = "The person (usr_...)")),
    request_body = ChangeRole,
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The person with the new role", body = PersonAnswer),
        (status = 400, description = "Bad input; field is the JSON pointer of the offending member; nothing changed", body = crate::api::v1::openapi::ErrorDocument),
        (status = 413, description = "Body larger than 64 KiB", body = crate::api::v1::openapi::ErrorDocument),
        (status = 415, description = "Content-Type is not application/json", body = crate::api::v1::openapi::ErrorDocument),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 404, description = "No such account, or one this key may not manage (never told apart)", body = crate::api::v1::openapi::ErrorDocument),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 409, description = "The person was removed; nothing changed", body = crate::api::v1::openapi::ErrorDocument)
    )
)]
pub async fn change_role(
    State(state): State<AppState>,
    admin: AdminKey,
    AccountItemPath(name, user_id): AccountItemPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<PersonAnswer>, ApiError> {
    let account = admin.managed_account(&state, &name).await?.account;
    let request: ChangeRole = json_body(&state, &headers, body).await?;
    let role = parse_role(&request.role)?;
    let person = person_of_account(&state, &account, &user_id).await?;
    if person.role == role {
        return Ok(Json(person_answer(&person)));
    }
    let changed = match state
        .store()
        .people()
        .set_user_role(&person.user_id, role)
        .await
    {
        Ok(changed) => changed,
        // Removed between the lookup and the change: the race the 409 is for.
        Err(StoreError::UserNotFound(_)) => {
            return Err(gone_or_never_there(&state, &account, &person.user_id).await);
        }
        Err(error) => return Err(error.into()),
    };
    record_change(
        &state,
        &admin,
        Change {
            account: &account,
            action: MEMBER_ROLE_CHANGE,
            message: format!(
                "{} changed the role of {} from {} to {role}",
                key_label(&admin),
                person.email,
                person.role
            ),
            targets: vec![person_target(&person.user_id, &person.email)],
            metadata: None,
        },
    )
    .await?;
    Ok(Json(person_answer(&changed)))
}

/// `DELETE /api/v1/accounts/{account}/people/{user_id}`: removes the person with their sessions.
#[utoipa::path(
    delete,
    path = "/api/v1/accounts/{account}/people/{user_id}",
    operation_id = "remove_person",
    tag = "management",
    params(("account" = String, Path, description = "The account name", example = "acme"), ("user_id" = String, Path, description = "The person (usr_...)")),
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The person, removed with their sessions", body = PersonAnswer),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 404, description = "No such account, or one this key may not manage (never told apart)", body = crate::api::v1::openapi::ErrorDocument),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 409, description = "The person was removed already", body = crate::api::v1::openapi::ErrorDocument)
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    admin: AdminKey,
    AccountItemPath(name, user_id): AccountItemPath,
) -> Result<Json<PersonAnswer>, ApiError> {
    let account = admin.managed_account(&state, &name).await?.account;
    let person = person_of_account(&state, &account, &user_id).await?;
    let removed = match state.store().people().remove_user(&person.user_id).await {
        Ok(removed) => removed,
        Err(StoreError::UserNotFound(_)) => {
            return Err(gone_or_never_there(&state, &account, &person.user_id).await);
        }
        Err(error) => return Err(error.into()),
    };
    record_change(
        &state,
        &admin,
        Change {
            account: &account,
            action: MEMBER_REMOVE,
            message: format!(
                "{} removed {} ({})",
                key_label(&admin),
                removed.email,
                removed.role
            ),
            targets: vec![person_target(&removed.user_id, &removed.email)],
            metadata: None,
        },
    )
    .await?;
    Ok(Json(person_answer(&removed)))
}

/// `POST /api/v1/accounts/{account}/people/{user_id}/password-reset`: replaces the password and
/// ends every session of the person, in one store transaction.
#[utoipa::path(
    post,
    path = "/api/v1/accounts/{account}/people/{user_id}/password-reset",
    operation_id = "reset_password",
    tag = "management",
    params(("account" = String, Path, description = "The account name", example = "acme"), ("user_id" = String, Path, description = "The person (usr_...)")),
    request_body = Option<ResetPassword>,
    security(("admin_key" = [])),
    responses(
        (status = 200, description = "The password is replaced and every session of theirs ended", body = PersonAnswer),
        (status = 400, description = "Bad input; field is the JSON pointer of the offending member; nothing changed", body = crate::api::v1::openapi::ErrorDocument),
        (status = 413, description = "Body larger than 64 KiB", body = crate::api::v1::openapi::ErrorDocument),
        (status = 415, description = "Content-Type is not application/json", body = crate::api::v1::openapi::ErrorDocument),
        (status = 401, description = "No key, or a key that is unknown or revoked", body = crate::api::v1::openapi::ErrorDocument),
        (status = 403, description = "The key lacks the scope this operation needs", body = crate::api::v1::openapi::ErrorDocument),
        (status = 404, description = "No such account, or one this key may not manage (never told apart)", body = crate::api::v1::openapi::ErrorDocument),
        (status = 500, description = "Internal error; the body names the request id", body = crate::api::v1::openapi::ErrorDocument),
        (status = 503, description = "The store is unavailable", body = crate::api::v1::openapi::ErrorDocument, headers(("Retry-After" = u64, description = "Seconds to wait before trying again"))),
        (status = 409, description = "The person was removed; nothing changed", body = crate::api::v1::openapi::ErrorDocument)
    )
)]
pub async fn reset_password(
    State(state): State<AppState>,
    admin: AdminKey,
    AccountItemPath(name, user_id): AccountItemPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<PersonAnswer>, ApiError> {
    let account = admin.managed_account(&state, &name).await?.account;
    let has_body = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .is_some_and(|length| length != "0")
        || headers.contains_key(axum::http::header::TRANSFER_ENCODING);
    // No body, or `null`, asks for the unknown password.
    let request: ResetPassword = if has_body {
        json_body::<Option<ResetPassword>>(&state, &headers, body)
            .await?
            .unwrap_or_default()
    } else {
        ResetPassword::default()
    };
    let person = person_of_account(&state, &account, &user_id).await?;
    let (password, chosen) = match request.password {
        Some(password) => {
            check_api_password(&password)?;
            (password, true)
        }
        // 256 random bits nobody is told: the person cannot sign in until a new one is set.
        None => (random_hex(32), false),
    };
    let password_hash = state
        .web()
        .passwords
        .hash(&password)
        .await
        .map_err(ApiError::internal)?;
    match state
        .store()
        .people()
        .set_password(&person.user_id, &password_hash, state.clock().now())
        .await
    {
        Ok(()) => {}
        Err(StoreError::UserNotFound(_)) => {
            return Err(gone_or_never_there(&state, &account, &person.user_id).await);
        }
        Err(error) => return Err(error.into()),
    }
    record_change(
        &state,
        &admin,
        Change {
            account: &account,
            action: PASSWORD_RESET,
            message: format!(
                "{} reset the password of {}{}; their sessions ended",
                key_label(&admin),
                person.email,
                if chosen {
                    ""
                } else {
                    " (locked until a new one is set)"
                }
            ),
            targets: vec![person_target(&person.user_id, &person.email)],
            metadata: None,
        },
    )
    .await?;
    Ok(Json(person_answer(&person)))
}
