//! "Needs attention" on the page: the short list of the attention worker's findings above the
//! Activity Logs table (`attention.html`, included by `activity.html`), the whole list at
//! `/attention`, and "This was me" (`POST /attention/{finding_id}/dismiss`), which records who
//! dismissed a finding and when, and writes a `logbook.attention.dismiss` event into the
//! account's log.
//!
//! Who sees and dismisses what follows who reads what: a member sees (and may dismiss) only the
//! findings about themselves, since they read only their own events; viewers see every finding
//! and dismiss their own; owners and admins dismiss any.

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use logbook_core::attention::{Dismissal, FindingKind, FindingRecord};
use logbook_core::event::{Outcome, Target};
use serde::Deserialize;

use crate::state::AppState;
use crate::web::activity::url_component;
use crate::web::audit::{self, AuditEvent};
use crate::web::reader::Reader;
use crate::web::render::{Chrome, WebError, page, utc_text, visible};
use crate::web::session::{SignedIn, check_form};

/// The audit action of a dismissal.
pub const ATTENTION_DISMISS: &str = "logbook.attention.dismiss";

/// Findings shown above the table; the rest are one click away at `/attention`.
pub const SHORT_LIST_LENGTH: u32 = 5;
/// The most findings `/attention` shows.
const FULL_LIST_LENGTH: u32 = 200;

pub struct AttentionItem {
    pub finding_id: i64,
    pub kind_label: &'static str,
    pub title: String,
    pub first_at: String,
    pub evidence_href: String,
    pub may_dismiss: bool,
    /// "Dismissed by X at T" once someone said "this was me".
    pub dismissed: Option<String>,
}

/// The findings a page shows, newest first.
pub struct AttentionList {
    pub items: Vec<AttentionItem>,
    /// Set when there are more open findings than the short list shows.
    pub more: bool,
    /// The page a dismissal returns to: the one the list is on.
    pub return_to: &'static str,
}

fn kind_label(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::FailedLoginBurst => "Failed logins",
        FindingKind::SensitiveChangeAfterNewIpLogin => "New address, then a change",
        FindingKind::UnusualHour => "Unusual hour",
        FindingKind::DeletionBurst => "Many deletions",
        FindingKind::ImpossibleTravel => "Impossible travel",
        FindingKind::SensitiveChangeAfterNewCountryLogin => "New country, then a change",
    }
}

/// Whether `signed_in` may dismiss `record`: owners and admins any, others only their own.
fn may_dismiss(signed_in: &SignedIn, record: &FindingRecord) -> bool {
    // A sensitive change right after a login from a new address or country, and logins too far
    // apart for one person, are what a stolen account looks like; the person it is about could
    // be the intruder, so only owners and admins clear them.
    let subject_may_dismiss = !matches!(
        record.finding.kind,
        FindingKind::SensitiveChangeAfterNewIpLogin
            | FindingKind::SensitiveChangeAfterNewCountryLogin
            | FindingKind::ImpossibleTravel
    );
    signed_in.user.role.manages_account()
        || (subject_may_dismiss
            && record.finding.subject.actor() == Some(signed_in.user.email.as_str()))
}

fn item_of(reader: &Reader, record: &FindingRecord) -> AttentionItem {
    AttentionItem {
        finding_id: record.finding_id,
        kind_label: kind_label(record.finding.kind),
        title: visible(&record.finding.title).into_owned(),
        first_at: utc_text(record.finding.first_at),
        evidence_href: format!(
            "{}/?q={}",
            reader.base_path(),
            url_component(&record.finding.evidence_query)
        ),
        // The embedded view is read-only: its people see findings, they do not dismiss them.
        may_dismiss: record.dismissal.is_none()
            && reader
                .signed_in()
                .is_some_and(|signed_in| may_dismiss(signed_in, record)),
        dismissed: record.dismissal.as_ref().map(|dismissal| {
            format!(
                "Dismissed by {} at {}",
                visible(&dismissal.dismissed_by),
                utc_text(dismissal.dismissed_at)
            )
        }),
    }
}

/// The findings `reader` may see, newest first (none when its scope cannot be tied to them).
async fn findings_for(
    state: &AppState,
    reader: &Reader,
    include_dismissed: bool,
    limit: u32,
) -> Result<Vec<FindingRecord>, WebError> {
    let Some(filter) = reader.finding_filter(include_dismissed, limit) else {
        return Ok(Vec::new());
    };
    Ok(state
        .store()
        .attention()
        .list_findings(&reader.account, &filter)
        .await?)
}

/// The open findings for the Activity Logs page: at most `SHORT_LIST_LENGTH`, newest first.
pub async fn short_list(state: &AppState, reader: &Reader) -> Result<AttentionList, WebError> {
    let records = findings_for(state, reader, false, SHORT_LIST_LENGTH + 1).await?;
    let more = records.len() > SHORT_LIST_LENGTH as usize;
    Ok(AttentionList {
        items: records
            .iter()
            .take(SHORT_LIST_LENGTH as usize)
            .map(|record| item_of(reader, record))
            .collect(),
        more,
        return_to: "/",
    })
}

#[derive(Template)]
#[template(path = "attention_all.html")]
pub struct AttentionPage {
    pub chrome: Chrome,
    pub attention: AttentionList,
}

/// `GET /attention`: every finding this reader may see, dismissed ones included.
pub async fn get(State(state): State<AppState>, reader: Reader) -> Result<Response, WebError> {
    let records = findings_for(&state, &reader, true, FULL_LIST_LENGTH).await?;
    let attention = AttentionList {
        items: records
            .iter()
            .map(|record| item_of(&reader, record))
            .collect(),
        more: false,
        return_to: "/attention",
    };
    let chrome = reader.chrome(&state, "Needs attention", "activity");
    Ok(crate::web::viewer::framed(
        &reader,
        page(&AttentionPage { chrome, attention }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct DismissForm {
    csrf_token: String,
    /// Where to go back to: the Activity Logs page (default) or `/attention`.
    #[serde(default)]
    return_to: String,
}

/// `POST /attention/{finding_id}/dismiss`: "This was me".
pub async fn dismiss(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Path(finding_id): Path<String>,
    Form(form): Form<DismissForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    let back = if form.return_to == "/attention" {
        "/attention"
    } else {
        "/"
    };
    let finding_id: i64 = finding_id.parse().map_err(|_| WebError::NotFound)?;
    let account = &signed_in.user.account;
    let attention = state.store().attention();
    // Another account's finding, or one a member may not see, does not exist here.
    let record = attention
        .get_finding(account, finding_id)
        .await?
        .filter(|record| {
            signed_in.user.role.reads_whole_log()
                || record.finding.subject.actor() == Some(signed_in.user.email.as_str())
        })
        .ok_or(WebError::NotFound)?;
    if !may_dismiss(&signed_in, &record) {
        return Err(WebError::Forbidden(
            "Only owners and admins dismiss findings about someone else.",
        ));
    }
    if record.dismissal.is_some() {
        // Dismissed already (a second click, or someone else first): nothing new to record.
        return Ok(Redirect::to(back).into_response());
    }
    let dismissal = Dismissal {
        dismissed_by: signed_in.user.email.clone(),
        dismissed_at: state.clock().now(),
    };
    let stored = attention
        .dismiss_finding(account, finding_id, &dismissal)
        .await?
        .ok_or(WebError::NotFound)?;
    // Compared by who, not when: the stored time may come back at the database's precision.
    let dismissed_by_this_click = stored
        .dismissal
        .as_ref()
        .is_some_and(|stored| stored.dismissed_by == dismissal.dismissed_by);
    if !dismissed_by_this_click {
        // Someone else's dismissal landed first and stands; this click records nothing.
        return Ok(Redirect::to(back).into_response());
    }
    let mut metadata = serde_json::Map::new();
    metadata.insert("kind".into(), record.finding.kind.as_str().into());
    metadata.insert(
        "subject".into(),
        serde_json::json!({
            "type": record.finding.subject.kind_name(),
            "id": record.finding.subject.value(),
        }),
    );
    metadata.insert(
        "evidence_query".into(),
        record.finding.evidence_query.clone().into(),
    );
    audit::record(
        &state,
        AuditEvent {
            account,
            action: ATTENTION_DISMISS,
            message: format!(
                "{} dismissed a finding as their own activity: {}",
                signed_in.user.email,
                audit::truncate(&record.finding.title, 1024)
            ),
            actor_email: &signed_in.user.email,
            client: &signed_in.client,
            outcome: Outcome::Success,
            targets: vec![Target {
                target_type: "attention_finding".to_owned(),
                id: finding_id.to_string(),
                name: None,
            }],
            metadata: Some(metadata),
        },
    )
    .await?;
    Ok(Redirect::to(back).into_response())
}
