//! The team page (`/team`): the account's people and their roles; owners and admins invite (a
//! one-time link), change roles and remove people, and owners require two-factor sign-in.
//! Removing someone ends their sessions; every change is an audit event.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use logbook_core::event::Outcome;
use logbook_core::ids::UserId;
use logbook_core::people::{InvitationRecord, Role, UserRecord, hash_token, normalize_email};
use serde::Deserialize;

use crate::state::AppState;
use crate::web::audit::{self, AuditEvent};
use crate::web::render::{Chrome, WebError, page, utc_text};
use crate::web::session::{SignedIn, check_form, new_session_id};

/// How long an invitation link works.
const INVITATION_LIFETIME: time::Duration = time::Duration::days(7);

pub struct MemberRow {
    pub user_id: String,
    pub email: String,
    pub role: &'static str,
    pub second_factor: bool,
    pub created_at: String,
    pub is_me: bool,
    pub editable: bool,
}

#[derive(Template)]
#[template(path = "team.html")]
pub struct TeamPage {
    pub chrome: Chrome,
    pub members: Vec<MemberRow>,
    pub roles: Vec<&'static str>,
    pub invitation_link: Option<String>,
    pub requires_second_factor: bool,
    pub is_owner: bool,
    /// "90 days (this account's own)", "keep everything", ...
    pub retention_text: String,
    /// Every event below this seq was removed by retention (0: none).
    pub pruned_below_seq: u64,
    /// "since 2026-12-06 10:00 UTC by counsel@acme.example: case 17", when held.
    pub legal_hold_text: Option<String>,
    /// "30 days (this account's own), keeping the /24 or /48 of addresses", ...
    pub personal_data_text: String,
    /// The metadata members declared personal, or "none".
    pub personal_metadata_fields_text: String,
}

async fn team_page(
    state: &AppState,
    signed_in: &SignedIn,
    invitation_link: Option<String>,
) -> Result<Response, WebError> {
    let me = &signed_in.user;
    let users = state.store().people().list_users(&me.account).await?;
    let members = users
        .iter()
        .map(|user| MemberRow {
            user_id: user.user_id.to_string(),
            email: crate::web::render::visible(&user.email).into_owned(),
            role: user.role.as_str(),
            second_factor: user.totp_secret.is_some(),
            created_at: utc_text(user.created_at),
            is_me: user.user_id == me.user_id,
            editable: me.role.manages_account()
                && me.role.may_assign(user.role)
                && user.user_id != me.user_id,
        })
        .collect();
    let retention = state
        .store()
        .retention()
        .account_retention(&me.account)
        .await?;
    let roles = Role::ALL
        .iter()
        .filter(|role| me.role.may_assign(**role))
        .map(|role| role.as_str())
        .collect();
    Ok(page(&TeamPage {
        chrome: Chrome::new(state, "Team", Some(signed_in), "team"),
        members,
        roles,
        invitation_link,
        requires_second_factor: state
            .store()
            .people()
            .requires_second_factor(&me.account)
            .await?,
        is_owner: me.role == Role::Owner,
        retention_text: match (
            retention.retention_days,
            state.settings().retention.default_retention_days,
        ) {
            (Some(days), _) => {
                format!("{days} days after an event is received (this account's own period)")
            }
            (None, Some(days)) => {
                format!("{days} days after an event is received (the instance default)")
            }
            (None, None) => "every event is kept".to_owned(),
        },
        pruned_below_seq: retention.pruned_below_seq,
        personal_data_text: {
            let settings = &state.settings().retention;
            let keep_network = retention
                .keep_network
                .unwrap_or(settings.default_keep_network);
            let period = match (
                retention.personal_data_days,
                settings.default_personal_data_days,
            ) {
                (Some(days), _) => format!("for {days} days (this account's own period)"),
                (None, Some(days)) => format!("for {days} days (the instance default)"),
                (None, None) => "as long as the event".to_owned(),
            };
            if keep_network
                && (retention.personal_data_days.is_some()
                    || settings.default_personal_data_days.is_some())
            {
                format!("{period}, then only the /24 or /48 of the address")
            } else {
                period
            }
        },
        personal_metadata_fields_text: if retention.personal_metadata_fields.is_empty() {
            "none".to_owned()
        } else {
            crate::web::render::visible(&retention.personal_metadata_fields.join(", ")).into_owned()
        },
        legal_hold_text: retention.legal_hold.map(|hold| {
            format!(
                "since {} by {}: {}",
                utc_text(hold.since),
                crate::web::render::visible(&hold.set_by),
                crate::web::render::visible(&hold.reason)
            )
        }),
    }))
}

/// `GET /team`.
pub async fn get(State(state): State<AppState>, signed_in: SignedIn) -> Result<Response, WebError> {
    team_page(&state, &signed_in, None).await
}

fn require_manager(signed_in: &SignedIn) -> Result<(), WebError> {
    if signed_in.user.role.manages_account() {
        Ok(())
    } else {
        Err(WebError::Forbidden(
            "Only owners and admins manage the team.",
        ))
    }
}

/// The account's user with this id, or 404 (another account's users do not exist here).
async fn member_of_account(
    state: &AppState,
    signed_in: &SignedIn,
    user_id: &UserId,
) -> Result<UserRecord, WebError> {
    match state.store().people().get_user(user_id).await? {
        Some(user) if user.account == signed_in.user.account => Ok(user),
        _ => Err(WebError::NotFound),
    }
}

#[derive(Debug, Deserialize)]
pub struct InviteForm {
    csrf_token: String,
    email: String,
    role: String,
}

/// `POST /team/invite`: makes a one-time link, shown once.
pub async fn invite(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Form(form): Form<InviteForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    require_manager(&signed_in)?;
    let email = normalize_email(&form.email)
        .ok_or_else(|| WebError::BadRequest("Enter a valid email address.".into()))?;
    let role = Role::parse(&form.role).map_err(|error| WebError::BadRequest(error.to_string()))?;
    if !signed_in.user.role.may_assign(role) {
        return Err(WebError::Forbidden("Only owners may invite owners."));
    }
    let now = state.clock().now();
    let token = format!("{}{}", new_session_id(), new_session_id());
    state
        .store()
        .people()
        .create_invitation(
            hash_token(&token),
            InvitationRecord {
                account: signed_in.user.account.clone(),
                email: email.clone(),
                role,
                invited_by: signed_in.user.email.clone(),
                created_at: now,
                expires_at: now + INVITATION_LIFETIME,
            },
        )
        .await?;
    audit::record(
        &state,
        AuditEvent {
            account: &signed_in.user.account,
            action: audit::MEMBER_INVITE,
            message: format!("{} invited {} as {}", signed_in.user.email, email, role),
            actor_email: &signed_in.user.email,
            client: &signed_in.client,
            outcome: Outcome::Success,
            targets: vec![audit::user_target(&email)],
            metadata: None,
        },
    )
    .await?;
    let base = state.settings().public_url.clone().unwrap_or_default();
    team_page(
        &state,
        &signed_in,
        Some(format!(
            "{}/invitations/{token}",
            base.trim_end_matches('/')
        )),
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct RoleForm {
    csrf_token: String,
    role: String,
}

/// `POST /team/{user_id}/role`.
pub async fn change_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Path(user_id): Path<UserId>,
    Form(form): Form<RoleForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    require_manager(&signed_in)?;
    let member = member_of_account(&state, &signed_in, &user_id).await?;
    let role = Role::parse(&form.role).map_err(|error| WebError::BadRequest(error.to_string()))?;
    if member.user_id == signed_in.user.user_id {
        return Err(WebError::Forbidden(
            "You cannot change your own role; ask another owner.",
        ));
    }
    if !signed_in.user.role.may_assign(role) || !signed_in.user.role.may_assign(member.role) {
        return Err(WebError::Forbidden("Only owners change who is an owner."));
    }
    state
        .store()
        .people()
        .set_user_role(&member.user_id, role)
        .await?;
    audit::record(
        &state,
        AuditEvent {
            account: &signed_in.user.account,
            action: audit::MEMBER_ROLE_CHANGE,
            message: format!(
                "{} changed the role of {} from {} to {}",
                signed_in.user.email, member.email, member.role, role
            ),
            actor_email: &signed_in.user.email,
            client: &signed_in.client,
            outcome: Outcome::Success,
            targets: vec![audit::user_target(&member.email)],
            metadata: None,
        },
    )
    .await?;
    Ok(Redirect::to("/team").into_response())
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf_token: String,
}

/// `POST /team/{user_id}/remove`: the person and all their sessions are gone.
pub async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Path(user_id): Path<UserId>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    require_manager(&signed_in)?;
    let member = member_of_account(&state, &signed_in, &user_id).await?;
    if member.user_id == signed_in.user.user_id {
        return Err(WebError::Forbidden(
            "You cannot remove yourself; ask another owner.",
        ));
    }
    if !signed_in.user.role.may_assign(member.role) {
        return Err(WebError::Forbidden("Only owners remove owners."));
    }
    state.store().people().remove_user(&member.user_id).await?;
    audit::record(
        &state,
        AuditEvent {
            account: &signed_in.user.account,
            action: audit::MEMBER_REMOVE,
            message: format!(
                "{} removed {} ({})",
                signed_in.user.email, member.email, member.role
            ),
            actor_email: &signed_in.user.email,
            client: &signed_in.client,
            outcome: Outcome::Success,
            targets: vec![audit::user_target(&member.email)],
            metadata: None,
        },
    )
    .await?;
    Ok(Redirect::to("/team").into_response())
}

#[derive(Debug, Deserialize)]
pub struct LegalHoldForm {
    csrf_token: String,
    #[serde(default)]
    reason: String,
    /// `place` or `clear`.
    #[serde(default)]
    change: String,
}

/// `POST /team/legal-hold`: owners place or clear the account's legal hold, with a reason; each
/// is an event with who and why.
pub async fn legal_hold(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Form(form): Form<LegalHoldForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    if signed_in.user.role != Role::Owner {
        return Err(WebError::Forbidden(
            "Only owners place or clear a legal hold.",
        ));
    }
    let reason = logbook_core::retention::hold_reason(&form.reason)
        .map_err(|error| WebError::BadRequest(error.to_string()))?;
    let changed_by = logbook_core::retention::ChangedBy {
        actor: logbook_core::event::Actor {
            id: signed_in.user.email.clone(),
            name: None,
            actor_type: Some(logbook_core::event::ActorType::User),
        },
        ip: Some(signed_in.client.ip),
        user_agent: signed_in.client.user_agent.clone(),
    };
    let now = state.clock().now();
    let event_id = uuid::Uuid::now_v7().to_string().into();
    match form.change.as_str() {
        "place" => {
            logbook_core::retention::place_legal_hold(
                state.store().as_ref(),
                &signed_in.user.account,
                &reason,
                &changed_by,
                now,
                event_id,
            )
            .await?;
        }
        "clear" => {
            logbook_core::retention::release_legal_hold(
                state.store().as_ref(),
                &signed_in.user.account,
                &reason,
                &changed_by,
                now,
                event_id,
            )
            .await?;
        }
        _ => return Err(WebError::BadRequest("change: place or clear".into())),
    }
    Ok(Redirect::to("/team").into_response())
}

#[derive(Debug, Deserialize)]
pub struct ErasureForm {
    csrf_token: String,
    #[serde(default)]
    actor_id: String,
    #[serde(default)]
    reason: String,
}

/// `POST /team/erase`: owners erase one person's personal data from every event whose actor id
/// is theirs (README, "Personal data"); the erasure is an event with who asked, why and how many
/// events it touched.
pub async fn erase_personal_data(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Form(form): Form<ErasureForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    if signed_in.user.role != Role::Owner {
        return Err(WebError::Forbidden(
            "Only owners erase a person's personal data.",
        ));
    }
    let actor_id = form.actor_id.trim();
    if actor_id.is_empty() || actor_id.len() > 512 {
        return Err(WebError::BadRequest(
            "actor_id: the person's actor id, as their events carry it".into(),
        ));
    }
    let reason = logbook_core::retention::hold_reason(&form.reason)
        .map_err(|error| WebError::BadRequest(format!("reason: {error}")))?;
    let changed_by = logbook_core::retention::ChangedBy {
        actor: logbook_core::event::Actor {
            id: signed_in.user.email.clone(),
            name: None,
            actor_type: Some(logbook_core::event::ActorType::User),
        },
        ip: Some(signed_in.client.ip),
        user_agent: signed_in.client.user_agent.clone(),
    };
    let outcome = logbook_core::retention::erase_person(
        state.store().as_ref(),
        &signed_in.user.account,
        actor_id,
        &reason,
        &changed_by,
        state.clock().now(),
        uuid::Uuid::now_v7().to_string().into(),
        state.settings().retention.batch_size,
    )
    .await?;
    let shown = crate::web::render::visible(actor_id).into_owned();
    let message = match outcome {
        logbook_core::retention::ErasureOutcome::Erased { events_changed, .. } => format!(
            "The personal data of {shown} was removed from {events_changed} events. The events stay, and still verify; the erasure is in the log."
        ),
        logbook_core::retention::ErasureOutcome::NothingLeft => {
            format!("The events of {shown} hold no personal data any more.")
        }
        logbook_core::retention::ErasureOutcome::UnknownActor => {
            return Err(WebError::BadRequest(format!(
                "No event of this account has the actor id {shown}: nothing was erased."
            )));
        }
    };
    Ok(page(&crate::web::render::MessagePage {
        chrome: Chrome::new(&state, "Personal data erased", Some(&signed_in), "team"),
        heading: "Personal data erased".to_owned(),
        message,
        hints: Vec::new(),
        link_href: "/team",
        link_text: "Team",
    }))
}

#[derive(Debug, Deserialize)]
pub struct SecondFactorPolicyForm {
    csrf_token: String,
    #[serde(default)]
    required: String,
}

/// `POST /team/second-factor`: owners require (or stop requiring) two-factor sign-in.
pub async fn second_factor_policy(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Form(form): Form<SecondFactorPolicyForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    if signed_in.user.role != Role::Owner {
        return Err(WebError::Forbidden(
            "Only owners change sign-in requirements.",
        ));
    }
    let required = form.required == "yes";
    state
        .store()
        .people()
        .set_requires_second_factor(&signed_in.user.account, required)
        .await?;
    audit::record(
        &state,
        AuditEvent {
            account: &signed_in.user.account,
            action: audit::SECOND_FACTOR_CHANGE,
            message: format!(
                "{} {} two-factor sign-in for the account",
                signed_in.user.email,
                if required {
                    "required"
                } else {
                    "stopped requiring"
                }
            ),
            actor_email: &signed_in.user.email,
            client: &signed_in.client,
            outcome: Outcome::Success,
            targets: Vec::new(),
            metadata: None,
        },
    )
    .await?;
    Ok(Redirect::to("/team").into_response())
}
