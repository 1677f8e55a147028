//! The Alerts page (`/alerts`): alert rules (a saved query, optionally "more than N in M
//! minutes", sent to chosen destinations; enable, disable, delete), destinations (HTTPS webhook,
//! syslog over TCP, syslog over TLS with an optional private CA, or RELP, optionally streaming
//! the whole log; send test; health and backlog; dead letters with retry). Owners and admins only; every change is an audit event in the account's log.
//!
//! A webhook's signing secret is shown once, on creation. A receiver's answer (kept as the last
//! error) is shown only as escaped text.

use logbook_core::ids::{AlertRuleId, DestinationId};
use std::time::Duration;

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use logbook_core::alerting::{
    self, AlertRuleRecord, DeliveryReason, DestinationKind, NewAlertRule, NewDestination,
    SigningSecret, Threshold,
};
use logbook_core::event::{Outcome, Target};
use rand::Rng;
use serde::Deserialize;

use crate::state::AppState;
use crate::web::audit::{self, AuditEvent};
use crate::web::render::{Chrome, WebError, utc_text, visible};
use crate::web::session::{SignedIn, check_form};
use crate::workers::delivery::sender::{self, Outgoing};

/// Dead letters listed on the page.
const DEAD_LETTERS_SHOWN: u32 = 50;

pub const RULE_CREATE: &str = "logbook.alert_rule.create";
pub const RULE_ENABLE: &str = "logbook.alert_rule.enable";
pub const RULE_DISABLE: &str = "logbook.alert_rule.disable";
pub const RULE_DELETE: &str = "logbook.alert_rule.delete";
pub const DESTINATION_CREATE: &str = "logbook.destination.create";
pub const DESTINATION_DELETE: &str = "logbook.destination.delete";
pub const DESTINATION_TEST: &str = "logbook.destination.test";
pub const DELIVERY_RETRY: &str = "logbook.delivery.retry";

pub struct RuleRow {
    pub rule_id: String,
    pub name: String,
    pub query_text: String,
    pub threshold: Option<String>,
    pub destinations: String,
    pub enabled: bool,
}

pub struct DestinationRow {
    pub destination_id: String,
    pub name: String,
    pub kind: &'static str,
    pub address: String,
    /// Whether the destination trusts CA certificates of its own (syslog over TLS).
    pub trusts_private_ca: bool,
    pub streams_whole_log: bool,
    pub last_success_at: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub pending_count: u64,
    pub dead_letter_count: u64,
    /// When the oldest pending delivery was queued.
    pub oldest_pending_at: Option<String>,
}

pub struct DeadLetterRow {
    pub delivery_id: String,
    pub destination_name: String,
    pub event_seq: u64,
    pub rule_name: String,
    pub attempts: u32,
    pub dead_at: String,
    pub last_error: String,
}

#[derive(Template)]
#[template(path = "alerts.html")]
pub struct AlertsPage {
    pub chrome: Chrome,
    pub rules: Vec<RuleRow>,
    pub destinations: Vec<DestinationRow>,
    pub dead_letters: Vec<DeadLetterRow>,
    /// What went wrong with the last form, shown above the forms.
    pub problem: Option<String>,
    /// The result of the last action ("Test delivery sent", ...).
    pub notice: Option<String>,
    /// A new webhook's signing secret, shown once.
    pub new_secret: Option<String>,
}

fn require_manager(signed_in: &SignedIn) -> Result<(), WebError> {
    if signed_in.user.role.manages_account() {
        Ok(())
    } else {
        Err(WebError::Forbidden(
            "Only owners and admins manage alerts and destinations.",
        ))
    }
}

fn threshold_text(threshold: Threshold) -> String {
    let seconds = threshold.window.as_secs();
    if seconds.is_multiple_of(60) {
        format!("more than {} in {} min", threshold.count, seconds / 60)
    } else {
        format!("more than {} in {} s", threshold.count, seconds)
    }
}

/// The page, with `status` (400 when re-shown with a problem).
async fn alerts_page(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    problem: Option<String>,
    notice: Option<String>,
    new_secret: Option<String>,
) -> Result<Response, WebError> {
    let account = &signed_in.user.account;
    let alerting = state.store().alerting();
    let destinations = alerting.list_destinations(account).await?;
    let rules = alerting.list_rules(account).await?;
    let dead = alerting
        .list_dead_letters(account, DEAD_LETTERS_SHOWN)
        .await?;
    let destination_name = |destination_id: &DestinationId| {
        destinations
            .iter()
            .find(|destination| &destination.destination_id == destination_id)
            .map(|destination| visible(&destination.name).into_owned())
            .unwrap_or_else(|| destination_id.to_string())
    };
    let rule_rows = rules
        .iter()
        .map(|rule: &AlertRuleRecord| RuleRow {
            rule_id: rule.rule_id.to_string(),
            name: visible(&rule.name).into_owned(),
            query_text: visible(&rule.query_text).into_owned(),
            threshold: rule.threshold.map(threshold_text),
            destinations: rule
                .destination_ids
                .iter()
                .map(&destination_name)
                .collect::<Vec<_>>()
                .join(", "),
            enabled: rule.enabled,
        })
        .collect();
    let dead_letters = dead
        .iter()
        .map(|record| DeadLetterRow {
            delivery_id: record.delivery.delivery_id.clone(),
            destination_name: destination_name(&record.delivery.destination_id),
            event_seq: record.delivery.event_seq,
            rule_name: match &record.delivery.reason {
                DeliveryReason::WholeLog => "whole log".to_owned(),
                DeliveryReason::Rule { rule_name, .. } => visible(rule_name).into_owned(),
            },
            attempts: record.attempts,
            dead_at: record.dead_at.map(utc_text).unwrap_or_default(),
            last_error: visible(record.last_error.as_deref().unwrap_or_default()).into_owned(),
        })
        .collect();
    let destination_rows = destinations
        .iter()
        .map(|destination| DestinationRow {
            destination_id: destination.destination_id.to_string(),
            name: visible(&destination.name).into_owned(),
            kind: destination.kind.description(),
            address: visible(&destination.kind.address()).into_owned(),
            trusts_private_ca: destination.kind.trusted_ca_pem().is_some(),
            streams_whole_log: destination.streams_whole_log,
            last_success_at: destination.last_success_at.map(utc_text),
            last_error: destination
                .last_error
                .as_deref()
                .map(|text| visible(text).into_owned()),
            last_error_at: destination.last_error_at.map(utc_text),
            pending_count: destination.pending_count,
            dead_letter_count: destination.dead_letter_count,
            oldest_pending_at: destination.oldest_pending_at.map(utc_text),
        })
        .collect();
    let page = AlertsPage {
        chrome: Chrome::new(state, "Alerts", Some(signed_in), "alerts"),
        rules: rule_rows,
        destinations: destination_rows,
        dead_letters,
        problem,
        notice,
        new_secret,
    };
    // Through the one rendering path, which sets the page's content security policy.
    Ok(crate::web::render::html(status, &page))
}

async fn with_problem(
    state: &AppState,
    signed_in: &SignedIn,
    problem: String,
) -> Result<Response, WebError> {
    alerts_page(
        state,
        signed_in,
        StatusCode::BAD_REQUEST,
        Some(problem),
        None,
        None,
    )
    .await
}

/// `GET /alerts`.
pub async fn get(State(state): State<AppState>, signed_in: SignedIn) -> Result<Response, WebError> {
    require_manager(&signed_in)?;
    alerts_page(&state, &signed_in, StatusCode::OK, None, None, None).await
}

/// A public id: `prefix` and 16 base32 characters.
fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut random = rand::rng();
    let mut id = String::from(prefix);
    id.extend((0..16).map(|_| ALPHABET[random.random_range(0..ALPHABET.len())] as char));
    id
}

fn target(target_type: &str, id: &str, name: &str) -> Target {
    Target {
        target_type: target_type.to_owned(),
        id: id.to_owned(),
        name: Some(audit::truncate(name, 200).to_owned()),
    }
}

async fn record(
    state: &AppState,
    signed_in: &SignedIn,
    action: &'static str,
    message: String,
    outcome: Outcome,
    targets: Vec<Target>,
) -> Result<(), WebError> {
    audit::record(
        state,
        AuditEvent {
            account: &signed_in.user.account,
            action,
            message,
            actor_email: &signed_in.user.email,
            client: &signed_in.client,
            outcome,
            targets,
            metadata: None,
        },
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct DestinationForm {
    csrf_token: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    address: String,
    /// PEM CA certificates a syslog-over-TLS collector may be signed by.
    #[serde(default)]
    trusted_ca_pem: String,
    #[serde(default)]
    streams_whole_log: String,
}

/// Most destinations one account may have.
pub const MAX_DESTINATIONS_PER_ACCOUNT: usize = 20;

/// `POST /alerts/destinations`: creates a destination; a webhook's secret is shown once.
pub async fn create_destination(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Form(form): Form<DestinationForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    require_manager(&signed_in)?;
    let name = match alerting::validate_name("name", &form.name) {
        Ok(name) => name,
        Err(error) => return with_problem(&state, &signed_in, error.to_string()).await,
    };
    let kind = match form.kind.as_str() {
        "webhook" => DestinationKind::webhook(&form.url),
        "syslog" => DestinationKind::syslog(&form.address),
        "syslog_tls" => {
            DestinationKind::syslog_tls(&form.address, &form.trusted_ca_pem).and_then(|kind| {
                // Core checks the text's shape; whether it holds usable certificates takes X.509.
                match kind
                    .trusted_ca_pem()
                    .map(crate::workers::delivery::tls::parse_trusted_ca_pem)
                {
                    Some(Err(message)) => Err(alerting::AlertingInputError {
                        field: "trusted_ca_pem",
                        message,
                    }),
                    _ => Ok(kind),
                }
            })
        }
        "relp" => DestinationKind::relp(&form.address),
        _ => Err(alerting::AlertingInputError {
            field: "kind",
            message: "choose a webhook, syslog over TCP, syslog over TLS or RELP".to_owned(),
        }),
    };
    let kind = match kind {
        Ok(kind) => kind,
        Err(error) => return with_problem(&state, &signed_in, error.to_string()).await,
    };
    let account = &signed_in.user.account;
    // Each destination is followed by the worker and can multiply every event into a request to
    // a third party, so one account's administrators cannot make an unbounded fan-out.
    let existing_destinations = state.store().alerting().list_destinations(account).await?;
    if existing_destinations.len() >= MAX_DESTINATIONS_PER_ACCOUNT {
        return with_problem(
            &state,
            &signed_in,
            format!(
                "name: an account has at most {MAX_DESTINATIONS_PER_ACCOUNT} destinations; delete one first"
            ),
        )
        .await;
    }
    let secret = SigningSecret::from_random_bytes(rand::rng().random());
    let start_seq = state.store().next_seq(account).await?;
    let destination = state
        .store()
        .alerting()
        .create_destination(NewDestination {
            destination_id: new_id("dst_").into(),
            account: account.clone(),
            name,
            kind,
            secret: secret.clone(),
            streams_whole_log: !form.streams_whole_log.is_empty(),
            start_seq,
            created_at: state.clock().now(),
        })
        .await?;
    record(
        &state,
        &signed_in,
        DESTINATION_CREATE,
        format!(
            "{} created {} destination {}{}",
            signed_in.user.email,
            destination.kind.description(),
            destination.name,
            if destination.streams_whole_log {
                " streaming the whole log"
            } else {
                ""
            }
        ),
        Outcome::Success,
        vec![target(
            "destination",
            destination.destination_id.as_str(),
            &destination.name,
        )],
    )
    .await?;
    let new_secret = matches!(destination.kind, DestinationKind::Webhook { .. }).then(|| secret.0);
    alerts_page(
        &state,
        &signed_in,
        StatusCode::OK,
        None,
        Some(format!(
            "Destination {} created.",
            visible(&destination.name)
        )),
        new_secret,
    )
    .await
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    csrf_token: String,
}

async fn own_destination(
    state: &AppState,
    signed_in: &SignedIn,
    destination_id: &DestinationId,
) -> Result<logbook_core::alerting::DestinationRecord, WebError> {
    state
        .store()
        .alerting()
        .list_destinations(&signed_in.user.account)
        .await?
        .into_iter()
        .find(|destination| &destination.destination_id == destination_id)
        .ok_or(WebError::NotFound)
}

/// `POST /alerts/destinations/{destination_id}/delete`.
pub async fn delete_destination(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Path(destination_id): Path<DestinationId>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    require_manager(&signed_in)?;
    let destination = own_destination(&state, &signed_in, &destination_id).await?;
    if !state
        .store()
        .alerting()
        .delete_destination(&signed_in.user.account, &destination_id)
        .await?
    {
        return Err(WebError::NotFound);
    }
    record(
        &state,
        &signed_in,
        DESTINATION_DELETE,
        format!(
            "{} deleted destination {}",
            signed_in.user.email, destination.name
        ),
        Outcome::Success,
        vec![target(
            "destination",
            destination_id.as_str(),
            &destination.name,
        )],
    )
    .await?;
    Ok(Redirect::to("/alerts").into_response())
}

/// `POST /alerts/destinations/{destination_id}/test`: sends a clearly marked test message now
/// (through the same SSRF guard as every delivery) and shows the result. Test sends are limited
/// per account (`TestSendThrottle`): past the limit the answer is 429 with `Retry-After` and
/// nothing is sent.
pub async fn test_destination(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Path(destination_id): Path<DestinationId>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    require_manager(&signed_in)?;
    let destination = own_destination(&state, &signed_in, &destination_id).await?;
    if let Err(retry_after_seconds) = state.web().test_sends.take(&signed_in.user.account) {
        return Err(WebError::TooManyRequests {
            message: format!(
                "This account sent {} test deliveries recently; the next one can go in {retry_after_seconds} s.",
                crate::web::throttle::TEST_SENDS_BURST
            ),
            retry_after_seconds,
        });
    }
    let now = state.clock().now();
    let delivery_id = new_id("test_");
    let result = sender::send(
        &destination,
        &Outgoing {
            delivery_id: &delivery_id,
            account: &signed_in.user.account,
            event_seq: 0,
            event_json: "{}",
            reason: &DeliveryReason::WholeLog,
            test: true,
            now,
        },
        &state.settings().delivery,
    )
    .await;
    let error_text = result.as_ref().err().map(ToString::to_string);
    state
        .store()
        .alerting()
        .record_test_result(
            &signed_in.user.account,
            &destination_id,
            now,
            error_text.as_deref(),
        )
        .await?;
    record(
        &state,
        &signed_in,
        DESTINATION_TEST,
        format!(
            "{} sent a test delivery to destination {}",
            signed_in.user.email, destination.name
        ),
        if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        vec![target(
            "destination",
            destination_id.as_str(),
            &destination.name,
        )],
    )
    .await?;
    match error_text {
        None => {
            alerts_page(
                &state,
                &signed_in,
                StatusCode::OK,
                None,
                Some(format!(
                    "Test delivery to {} succeeded.",
                    visible(&destination.name)
                )),
                None,
            )
            .await
        }
        Some(error) => {
            alerts_page(
                &state,
                &signed_in,
                StatusCode::OK,
                Some(format!(
                    "Test delivery to {} failed: {}",
                    visible(&destination.name),
                    visible(&error)
                )),
                None,
                None,
            )
            .await
        }
    }
}

#[derive(Debug)]
pub struct RuleForm {
    csrf_token: String,
    name: String,
    query: String,
    threshold_count: String,
    threshold_window_minutes: String,
    /// One per checked destination (a repeated field).
    destination_id: Vec<String>,
}

/// `POST /alerts/rules`: saves a query as a rule.
pub async fn create_rule(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    RuleFormBody(form): RuleFormBody,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    require_manager(&signed_in)?;
    let name = match alerting::validate_name("name", &form.name) {
        Ok(name) => name,
        Err(error) => return with_problem(&state, &signed_in, error.to_string()).await,
    };
    if let Err(error) = alerting::parse_rule_query(&form.query) {
        return with_problem(
            &state,
            &signed_in,
            format!(
                "query: {} at position {}: {}",
                error.message,
                error.position,
                visible(&error.term)
            ),
        )
        .await;
    }
    let threshold = match (
        form.threshold_count.trim(),
        form.threshold_window_minutes.trim(),
    ) {
        ("", "") => None,
        (count, minutes) => {
            let count: Option<u32> = count.parse().ok();
            let minutes: Option<u64> = minutes.parse().ok();
            let parsed = match (count, minutes) {
                (Some(count), Some(minutes)) => {
                    Threshold::new(count, Duration::from_secs(minutes.saturating_mul(60)))
                        .map_err(|error| error.to_string())
                }
                (None, _) => Err("threshold_count: give a whole number of events".to_owned()),
                (_, None) => {
                    Err("threshold_window_minutes: give a whole number of minutes".to_owned())
                }
            };
            match parsed {
                Ok(threshold) => Some(threshold),
                Err(problem) => return with_problem(&state, &signed_in, problem).await,
            }
        }
    };
    // A repeated id would only repeat work inside the writer's transaction.
    let mut destination_ids = form.destination_id.clone();
    destination_ids.sort_unstable();
    destination_ids.dedup();
    if destination_ids.len() > MAX_DESTINATIONS_PER_ACCOUNT {
        return with_problem(
            &state,
            &signed_in,
            format!(
                "destination_id: a rule names at most {MAX_DESTINATIONS_PER_ACCOUNT} destinations"
            ),
        )
        .await;
    }
    if destination_ids.is_empty() {
        return with_problem(
            &state,
            &signed_in,
            "destination_id: choose at least one destination".to_owned(),
        )
        .await;
    }
    let created = state
        .store()
        .alerting()
        .create_rule(NewAlertRule {
            rule_id: new_id("rul_").into(),
            account: signed_in.user.account.clone(),
            name,
            query_text: form.query.trim().to_owned(),
            threshold,
            destination_ids: destination_ids
                .into_iter()
                .map(DestinationId::from)
                .collect(),
            created_at: state.clock().now(),
        })
        .await;
    let rule = match created {
        Ok(rule) => rule,
        Err(logbook_core::StoreError::DestinationNotFound(_)) => {
            return with_problem(
                &state,
                &signed_in,
                "destination_id: that destination does not exist".to_owned(),
            )
            .await;
        }
        Err(error) => return Err(error.into()),
    };
    record(
        &state,
        &signed_in,
        RULE_CREATE,
        format!(
            "{} created alert rule {} ({}{})",
            signed_in.user.email,
            rule.name,
            rule.query_text,
            rule.threshold
                .map(|threshold| format!(", {}", threshold_text(threshold)))
                .unwrap_or_default()
        ),
        Outcome::Success,
        vec![target("alert_rule", rule.rule_id.as_str(), &rule.name)],
    )
    .await?;
    Ok(Redirect::to("/alerts").into_response())
}

/// The rule form, parsed with its repeated `destination_id` fields kept (axum's `Form` would
/// keep only one of them).
pub struct RuleFormBody(RuleForm);

impl<S: Send + Sync> axum::extract::FromRequest<S> for RuleFormBody {
    type Rejection = WebError;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let unreadable = || WebError::BadRequest("The form could not be read.".into());
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|_| unreadable())?;
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(&bytes).map_err(|_| unreadable())?;
        let mut form = RuleForm {
            csrf_token: String::new(),
            name: String::new(),
            query: String::new(),
            threshold_count: String::new(),
            threshold_window_minutes: String::new(),
            destination_id: Vec::new(),
        };
        for (key, value) in pairs {
            match key.as_str() {
                "csrf_token" => form.csrf_token = value,
                "name" => form.name = value,
                "query" => form.query = value,
                "threshold_count" => form.threshold_count = value,
                "threshold_window_minutes" => form.threshold_window_minutes = value,
                "destination_id" if !value.is_empty() => form.destination_id.push(value),
                _ => {}
            }
        }
        Ok(RuleFormBody(form))
    }
}

/// `POST /alerts/rules/{rule_id}/enable` and `/disable`.
pub async fn set_rule_enabled(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Path((rule_id, change)): Path<(AlertRuleId, String)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    require_manager(&signed_in)?;
    let enabled = match change.as_str() {
        "enable" => true,
        "disable" => false,
        _ => return Err(WebError::NotFound),
    };
    let rule = own_rule(&state, &signed_in, &rule_id).await?;
    state
        .store()
        .alerting()
        .set_rule_enabled(&signed_in.user.account, &rule_id, enabled)
        .await?;
    record(
        &state,
        &signed_in,
        if enabled { RULE_ENABLE } else { RULE_DISABLE },
        format!(
            "{} {} alert rule {}",
            signed_in.user.email,
            if enabled { "enabled" } else { "disabled" },
            rule.name
        ),
        Outcome::Success,
        vec![target("alert_rule", rule_id.as_str(), &rule.name)],
    )
    .await?;
    Ok(Redirect::to("/alerts").into_response())
}

async fn own_rule(
    state: &AppState,
    signed_in: &SignedIn,
    rule_id: &AlertRuleId,
) -> Result<AlertRuleRecord, WebError> {
    state
        .store()
        .alerting()
        .list_rules(&signed_in.user.account)
        .await?
        .into_iter()
        .find(|rule| &rule.rule_id == rule_id)
        .ok_or(WebError::NotFound)
}

/// `POST /alerts/rules/{rule_id}/delete`.
pub async fn delete_rule(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Path(rule_id): Path<AlertRuleId>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    require_manager(&signed_in)?;
    let rule = own_rule(&state, &signed_in, &rule_id).await?;
    state
        .store()
        .alerting()
        .delete_rule(&signed_in.user.account, &rule_id)
        .await?;
    record(
        &state,
        &signed_in,
        RULE_DELETE,
        format!("{} deleted alert rule {}", signed_in.user.email, rule.name),
        Outcome::Success,
        vec![target("alert_rule", rule_id.as_str(), &rule.name)],
    )
    .await?;
    Ok(Redirect::to("/alerts").into_response())
}

/// `POST /alerts/deliveries/{delivery_id}/retry`: puts a dead letter back in the queue.
pub async fn retry_delivery(
    State(state): State<AppState>,
    headers: HeaderMap,
    signed_in: SignedIn,
    Path(delivery_id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, WebError> {
    check_form(&headers, &state, &signed_in, &form.csrf_token)?;
    require_manager(&signed_in)?;
    if !state
        .store()
        .alerting()
        .retry_dead_letter(&signed_in.user.account, &delivery_id, state.clock().now())
        .await?
    {
        return Err(WebError::NotFound);
    }
    record(
        &state,
        &signed_in,
        DELIVERY_RETRY,
        format!(
            "{} retried dead delivery {}",
            signed_in.user.email, delivery_id
        ),
        Outcome::Success,
        vec![Target {
            target_type: "delivery".to_owned(),
            id: delivery_id,
            name: None,
        }],
    )
    .await?;
    Ok(Redirect::to("/alerts").into_response())
}
