//! What people do on the page becomes events in their account's own log (`logbook.*` actions),
//! with their IP address and browser, appended through the same `Store::append_events` as any
//! producer's events, so they are searchable, exportable and verifiable like the rest.

use logbook_core::event::{Actor, ActorType, Outcome, Target};
use logbook_core::{AccountId, NewEvent};

use crate::state::AppState;
use crate::web::render::WebError;
use crate::web::session::Client;

pub const LOGIN: &str = "logbook.login";
pub const LOGIN_FAILED: &str = "logbook.login_failed";
pub const LOGOUT: &str = "logbook.logout";
pub const SESSION_END: &str = "logbook.session.end";
pub const MEMBER_INVITE: &str = "logbook.member.invite";
pub const MEMBER_JOIN: &str = "logbook.member.join";
pub const MEMBER_ROLE_CHANGE: &str = "logbook.member.role_change";
pub const MEMBER_REMOVE: &str = "logbook.member.remove";
pub const PASSWORD_CHANGE: &str = "logbook.password.change";
pub const SECOND_FACTOR_CHANGE: &str = "logbook.second_factor.change";
pub const API_KEY_CREATE: &str = "logbook.api_key.create";
pub const API_KEY_REVOKE: &str = "logbook.api_key.revoke";
pub const EXPORT: &str = "logbook.export";
pub const LOG_VIEW: &str = "logbook.log.view";

/// One audit event about to be written.
pub struct AuditEvent<'text> {
    pub account: &'text AccountId,
    pub action: &'static str,
    pub message: String,
    /// The person who acted: their email (also what a `member` is filtered by).
    pub actor_email: &'text str,
    pub client: &'text Client,
    pub outcome: Outcome,
    pub targets: Vec<Target>,
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// Appends the event and waits until it is committed: an action that could not be audited is
/// reported as failed rather than left unrecorded.
pub async fn record(state: &AppState, event: AuditEvent<'_>) -> Result<(), WebError> {
    record_with_actor_name(state, event, None).await
}

/// `record`, with a name for the actor beside their id (a viewer session's person, whose id is
/// the platform's and whose name says who that is).
pub async fn record_with_actor_name(
    state: &AppState,
    event: AuditEvent<'_>,
    actor_name: Option<&str>,
) -> Result<(), WebError> {
    let now = state.clock().now();
    let new_event = NewEvent {
        id: uuid::Uuid::now_v7().to_string().into(),
        account: event.account.clone(),
        received_at: now,
        created_at: now,
        created_at_was_sent: false,
        action: event.action.to_owned(),
        message: event.message,
        actor: Some(Actor {
            id: truncate(event.actor_email, 512).to_owned(),
            name: actor_name.map(|name| truncate(name, 512).to_owned()),
            actor_type: Some(ActorType::User),
        }),
        ip: Some(event.client.ip),
        user_agent: event.client.user_agent.clone(),
        outcome: Some(event.outcome),
        targets: event.targets,
        changes: Vec::new(),
        metadata: event.metadata,
        key: None,
        salt: logbook_core::personal_data::EventSalt::random(),
    };
    state.store().append_events(vec![new_event]).await?;
    Ok(())
}

pub fn user_target(email: &str) -> Target {
    Target {
        target_type: "user".to_owned(),
        id: truncate(email, 512).to_owned(),
        name: None,
    }
}

/// The longest prefix of `text` within `max_bytes` that ends on a character boundary.
pub fn truncate(text: &str, max_bytes: usize) -> &str {
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
