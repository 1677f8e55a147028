//! The Activity Logs page (`/`): the account's events newest first, 50 a page, one line each,
//! searched with the query language and narrowed by quick filters and by clicking a value
//! (`web::narrowing`), both of which write the same query text; one event's
//! details (`/events/{id}`); export of the current filter (`/events/export`); live updates as
//! server-sent events (`/events/live`).
//!
//! The same handlers serve the embedded view under `/view/{token}/` (`web::viewer`): they take a
//! `Reader`, which says whose account it is, what may be seen and where links point.
//!
//! A `member` sees only the events they performed: the server adds `actor:<their email>` to every
//! query it runs for them, whatever the page sent; a viewer session's scope is added the same way
//! (`ReadScope::restrict`).

use askama::Template;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use logbook_core::cursor;
use logbook_core::event::{Outcome, StoredEvent};
use logbook_core::ids::EventId;
use logbook_core::query::{self, Clause, Condition, TextPattern};
use logbook_core::store::EventQuery;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::reading::export::{ExportFormat, export_response};
use crate::reading::tail::tail_response;
use crate::reading::{ReadScope, parse_query_parameter, resolve_known_networks_for_live_view};
use crate::state::AppState;
use crate::web::audit::{self, AuditEvent};
use crate::web::event_view::millisecond_utc_text;
use crate::web::narrowing::{NarrowTerm, narrowed_query, relative_time_text};
use crate::web::reader::Reader;
use crate::web::render::{Chrome, WebError, html, page, utc_text, visible};
use crate::web::viewer::framed;

pub const PAGE_SIZE: u32 = 50;
/// Previous pages remembered in the URL for "Previous".
const MAX_TRAIL: usize = 100;

/// Percent-encodes a URL query component.
pub fn url_component(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

pub struct Row {
    pub id: String,
    pub message: String,
    pub ip: String,
    pub ip_is_new: bool,
    /// The address is in a network this actor was not seen in before.
    pub ip_is_new_network: bool,
    /// The address is in a country this actor was not located in before (shown in words beside
    /// the place, like the new-IP mark, even inside a known network: a country is not a network).
    pub country_is_new: bool,
    /// The known network of the IP (issue 6), shown instead of the new-IP highlight.
    pub ip_network_name: String,
    /// Where the address was when the event arrived: "Mumbai, IN · AS9829 BSNL", or empty.
    pub ip_place: String,
    /// Every known part of that place, for the hover and the event view.
    pub ip_place_detail: String,
    /// RFC 3339 in UTC, for `<time datetime>` and the hover.
    pub created_at: String,
    /// "3 min ago", "yesterday 14:02" (UTC; the script rewrites it in the reader's zone).
    pub created_relative: String,
    /// The actor's name, or their id when they have none.
    pub actor: String,
    /// The actor's id, for the hover.
    pub actor_id: String,
    pub action: String,
    pub failed: bool,
    pub narrow_actor: Option<NarrowTerm>,
    pub narrow_ip: Option<NarrowTerm>,
    pub narrow_action: Option<NarrowTerm>,
}

impl Row {
    fn of(event: &StoredEvent, now: OffsetDateTime) -> Self {
        Row {
            id: event.id.to_string(),
            message: visible(&event.message).into_owned(),
            ip: event.ip.map(|ip| ip.to_string()).unwrap_or_default(),
            ip_is_new: event.new_ip,
            ip_is_new_network: event.new_network,
            country_is_new: event.new_country,
            ip_network_name: String::new(),
            ip_place: event
                .location
                .as_ref()
                .and_then(logbook_core::location::Location::summary)
                .map(|place| visible(&place).into_owned())
                .unwrap_or_default(),
            ip_place_detail: event
                .location
                .as_ref()
                .map(|location| visible(&location.detail()).into_owned())
                .unwrap_or_default(),
            created_at: utc_text(event.created_at),
            created_relative: relative_time_text(event.created_at, now),
            actor: event
                .actor
                .as_ref()
                .map(|actor| visible(actor.name.as_deref().unwrap_or(&actor.id)).into_owned())
                .unwrap_or_default(),
            actor_id: event
                .actor
                .as_ref()
                .map(|actor| visible(&actor.id).into_owned())
                .unwrap_or_default(),
            action: visible(&event.action).into_owned(),
            failed: event.outcome == Some(Outcome::Failure),
            narrow_actor: event
                .actor
                .as_ref()
                .map(|actor| NarrowTerm::actor(&actor.id)),
            narrow_ip: event.ip.map(NarrowTerm::ip),
            narrow_action: Some(NarrowTerm::action(&event.action)),
        }
    }
}

pub struct QueryProblem {
    pub message: String,
    /// The query text around the bad term, made visible, for marking the spot under the box.
    pub before: String,
    pub marked: String,
    pub after: String,
    /// Where the bad term is in the search box, in UTF-16 code units (what `setSelectionRange`
    /// counts), so the script can select it.
    pub box_start: usize,
    pub box_end: usize,
}

impl QueryProblem {
    fn of(q: &str, error: &query::QueryError) -> Self {
        let start = floor_char_boundary(q, error.position.min(q.len()));
        let end = floor_char_boundary(q, (start + error.term.len().max(1)).min(q.len()));
        let utf16 = |text: &str| text.encode_utf16().count();
        QueryProblem {
            message: error.message.clone(),
            before: visible(&q[..start]).into_owned(),
            marked: visible(&q[start..end]).into_owned(),
            after: visible(&q[end..]).into_owned(),
            box_start: utf16(&q[..start]),
            box_end: utf16(&q[..end]),
        }
    }
}

fn floor_char_boundary(text: &str, mut index: usize) -> usize {
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[derive(Template)]
#[template(path = "activity.html")]
pub struct ActivityPage {
    pub chrome: Chrome,
    pub q: String,
    pub rows: Vec<Row>,
    pub problem: Option<QueryProblem>,
    pub next_href: Option<String>,
    pub previous_href: Option<String>,
    pub refresh_href: String,
    pub export_csv_href: String,
    pub export_ndjson_href: String,
    pub live_href: Option<String>,
    /// Says what part of the log this reader sees, when it is not all of it.
    pub scope_note: Option<ScopeNote>,
    pub may_export: bool,
    pub filtered: bool,
    /// `?q=...` for the rows' event links, so the event view can narrow and go back to this
    /// search; empty without a search.
    pub event_query_suffix: String,
    /// "Verified through event N, checkpoint at T": the account's newest signed checkpoint.
    pub verified: Option<VerifiedThrough>,
    /// The key that verifies the checkpoints, as `logbook checkpoint-key` prints it.
    pub checkpoint_public_key: Option<String>,
    /// "Needs attention": the newest open findings this person may see.
    pub attention: crate::web::attention::AttentionList,
    /// Events of the search per hour or day, above the table (`web::timeline`).
    pub timeline: Option<crate::web::timeline::Timeline>,
}

/// The account's newest checkpoint as the page states it.
pub struct VerifiedThrough {
    /// The `seq` of the newest event the checkpoint covers.
    pub through_seq: u64,
    pub signed_at: String,
}

/// The newest checkpoint of `account` for the page line (none before the first checkpoint).
async fn verified_through(
    state: &AppState,
    account: &logbook_core::AccountId,
) -> Result<Option<VerifiedThrough>, WebError> {
    let Some(tree) = state.store().log_tree() else {
        return Ok(None);
    };
    Ok(tree
        .latest_checkpoint(account)
        .await?
        .filter(|checkpoint| checkpoint.tree_size > 0)
        .map(|checkpoint| VerifiedThrough {
            through_seq: checkpoint.tree_size - 1,
            signed_at: utc_text(checkpoint.signed_at),
        }))
}

#[derive(Debug, Deserialize, Default)]
pub struct ListParameters {
    #[serde(default)]
    q: String,
    #[serde(default)]
    cursor: String,
    #[serde(default)]
    trail: String,
    // Quick filters: folded into `q` and redirected, so the URL holds only query text.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    person: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    failures: String,
    // A term clicked in a row or the event view (`web::narrowing`): folded into `q` the same way.
    #[serde(default)]
    add: String,
    #[serde(default)]
    exclude: String,
}

/// One `actor:`/`action:` term for a quick filter's value, written by the query language's own
/// printer (so quoting is never done twice, differently): a trailing `*` makes a prefix.
fn quick_filter_term(condition: fn(Vec<TextPattern>) -> Condition, value: &str) -> String {
    let pattern = match value.strip_suffix('*') {
        Some(prefix) if !prefix.is_empty() => TextPattern::Prefix(prefix.to_owned()),
        _ => TextPattern::Exact(value.to_owned()),
    };
    Clause {
        negated: false,
        condition: condition(vec![pattern]),
        span: 0..0,
    }
    .to_string()
}

/// The query text with the quick filters added as terms.
pub fn fold_quick_filters(
    q: &str,
    from: &str,
    to: &str,
    person: &str,
    kind: &str,
    failures_only: bool,
) -> String {
    let mut terms: Vec<String> = Vec::new();
    if !q.trim().is_empty() {
        terms.push(q.trim().to_owned());
    }
    if !from.trim().is_empty() {
        terms.push(format!("created:>={}", from.trim()));
    }
    if !to.trim().is_empty() {
        terms.push(format!("created:<={}", to.trim()));
    }
    if !person.trim().is_empty() {
        terms.push(quick_filter_term(Condition::Actor, person.trim()));
    }
    if !kind.trim().is_empty() {
        terms.push(quick_filter_term(Condition::Action, kind.trim()));
    }
    if failures_only {
        terms.push("outcome:failure".to_owned());
    }
    terms.join(" ")
}

/// `GET /`.
pub async fn list(
    State(state): State<AppState>,
    reader: Reader,
    parameters: Result<Query<ListParameters>, QueryRejection>,
) -> Result<Response, WebError> {
    let base = reader.base_path();
    let parameters = parameters
        .map(|Query(parameters)| parameters)
        .unwrap_or_default();
    let clicked = [(&parameters.add, false), (&parameters.exclude, true)]
        .into_iter()
        .find(|(term, _)| !term.is_empty());
    if let Some((term, exclude)) = clicked {
        let q = narrowed_query(&parameters.q, term, exclude).unwrap_or(parameters.q.clone());
        return Ok(framed(
            &reader,
            Redirect::to(&format!("{base}/?q={}", url_component(&q))).into_response(),
        ));
    }
    let has_quick_filters = [
        &parameters.from,
        &parameters.to,
        &parameters.person,
        &parameters.kind,
        &parameters.failures,
    ]
    .iter()
    .any(|value| !value.trim().is_empty());
    if has_quick_filters {
        let q = fold_quick_filters(
            &parameters.q,
            &parameters.from,
            &parameters.to,
            &parameters.person,
            &parameters.kind,
            !parameters.failures.is_empty(),
        );
        return Ok(framed(
            &reader,
            Redirect::to(&format!("{base}/?q={}", url_component(&q))).into_response(),
        ));
    }
    let account = reader.account.clone();
    let q = parameters.q;
    let q_component = url_component(&q);
    let chrome = reader.chrome(&state, "Activity Logs", "activity");
    let mut activity = ActivityPage {
        chrome,
        q: q.clone(),
        rows: Vec::new(),
        problem: None,
        next_href: None,
        previous_href: None,
        refresh_href: String::new(),
        export_csv_href: format!("{base}/events/export?format=csv&q={q_component}"),
        export_ndjson_href: format!("{base}/events/export?format=ndjson&q={q_component}"),
        live_href: None,
        scope_note: scope_note(&reader),
        may_export: reader.may_export(),
        filtered: !q.trim().is_empty(),
        event_query_suffix: if q.trim().is_empty() {
            String::new()
        } else {
            format!("?q={q_component}")
        },
        verified: verified_through(&state, &account).await?,
        checkpoint_public_key: state
            .checkpoint_signing()
            .map(|signing| signing.signer.verifier().to_key_text()),
        attention: crate::web::attention::short_list(&state, &reader).await?,
        timeline: None,
    };
    activity.refresh_href = if parameters.cursor.is_empty() {
        format!("{base}/?q={q_component}")
    } else {
        format!(
            "{base}/?q={q_component}&cursor={}&trail={}",
            url_component(&parameters.cursor),
            url_component(&parameters.trail)
        )
    };

    let parsed = if q.trim().is_empty() {
        Ok(query::Query::default())
    } else {
        query::parse(&q)
    };
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            activity.problem = Some(QueryProblem::of(&q, &error));
            return Ok(framed(&reader, html(StatusCode::BAD_REQUEST, &activity)));
        }
    };
    let after = if parameters.cursor.is_empty() {
        None
    } else {
        Some(cursor::decode(&account, &parameters.cursor).map_err(|_| {
            WebError::BadRequest(
                "This page link is not valid any more; start again from the first page.".into(),
            )
        })?)
    };
    let first_page = after.is_none();
    let live_from = if first_page {
        Some(state.store().next_seq(&account).await?)
    } else {
        None
    };
    let scoped = reader.scope.restrict(parsed);
    // The timeline is counted beside the page (on another reader connection), so the page waits
    // for the slower of the two rather than both.
    let page_query = EventQuery {
        query: scoped.clone(),
        limit: PAGE_SIZE,
        after,
    };
    let (timeline, page_of_events) = tokio::join!(
        crate::web::timeline::timeline(state.store().as_ref(), &account, &scoped, &q, &base),
        state.store().query_events(&account, &page_query)
    );
    let page_of_events = page_of_events?;
    // The timeline is an aid: a count that fails (its query budget, say) leaves it out rather
    // than failing the page.
    activity.timeline = timeline.unwrap_or_else(|error| {
        tracing::warn!(%error, "the timeline of the Activity Logs page was not counted");
        None
    });
    let known_networks = state
        .store()
        .unfamiliar_ips()
        .known_networks(&account)
        .await?;
    let now = state.clock().now();
    for row in &page_of_events.events {
        let event = row
            .decode()
            .map_err(|error| WebError::Internal(error.to_string()))?;
        let mut shown = Row::of(&event, now);
        if let Some(network) = event
            .ip
            .and_then(|ip| logbook_core::unfamiliar_ip::known_network_of(&known_networks, ip))
        {
            shown.ip_network_name = network.name.to_string();
            shown.ip_is_new = false;
            shown.ip_is_new_network = false;
        }
        activity.rows.push(shown);
    }
    let mut trail: Vec<&str> = parameters
        .trail
        .split(',')
        .filter(|part| !part.is_empty())
        .collect();
    if let Some(next) = page_of_events.next {
        let mut next_trail = trail.clone();
        next_trail.push(if parameters.cursor.is_empty() {
            "start"
        } else {
            &parameters.cursor
        });
        let skip = next_trail.len().saturating_sub(MAX_TRAIL);
        activity.next_href = Some(format!(
            "{base}/?q={q_component}&cursor={}&trail={}",
            url_component(&cursor::encode(&account, next)),
            url_component(&next_trail[skip..].join(","))
        ));
    }
    if !first_page {
        let previous = trail.pop().unwrap_or("start");
        activity.previous_href = Some(if previous == "start" {
            format!("{base}/?q={q_component}")
        } else {
            format!(
                "{base}/?q={q_component}&cursor={}&trail={}",
                url_component(previous),
                url_component(&trail.join(","))
            )
        });
    }
    activity.live_href =
        live_from.map(|seq| format!("{base}/events/live?q={q_component}&from_seq={seq}"));
    Ok(framed(&reader, page(&activity)))
}

/// What the page says about the part of the log this reader sees. A sentence holding a viewer
/// session's fixed search (up to 2 KB) is `long`: the page cuts it to one line, the whole of it one
/// click away.
pub struct ScopeNote {
    pub text: String,
    pub long: bool,
}

fn scope_note(reader: &Reader) -> Option<ScopeNote> {
    let sentence = |text: &str| {
        Some(ScopeNote {
            text: text.to_owned(),
            long: false,
        })
    };
    match (&reader.scope, reader.viewer()) {
        (ReadScope::WholeLog, _) => None,
        (ReadScope::OwnEvents { .. }, None) => {
            sentence("As a member you see the events you performed yourself.")
        }
        (ReadScope::OwnEvents { .. }, Some(_)) => {
            sentence("You see the events you performed yourself.")
        }
        (ReadScope::Within(_), Some(viewer)) => Some(ScopeNote {
            text: format!(
                "You see the events matching {}; your search applies within them.",
                visible(viewer.session.scope.fixed_query().unwrap_or_default())
            ),
            long: true,
        }),
        (ReadScope::Within(_), None) => None,
    }
}

pub struct ChangeRow {
    pub field: String,
    /// Each side with what changed inside it marked (`web::event_view::marked_change`).
    pub old: crate::web::event_view::MarkedValue,
    pub new: crate::web::event_view::MarkedValue,
}

pub struct TargetRow {
    pub target_type: String,
    pub id: String,
    pub name: String,
    pub narrow: NarrowTerm,
}

/// One line of the event view: a label, the value made visible, and the term that narrows the
/// list to it when the value can be clicked.
pub struct EventField {
    pub label: &'static str,
    pub value: String,
    pub narrow: Option<NarrowTerm>,
}

#[derive(Template)]
#[template(path = "event.html")]
pub struct EventPage {
    pub chrome: Chrome,
    pub row: Row,
    pub fields: Vec<EventField>,
    /// The list the person came from (`?q=` of the row they opened), for "back" and for narrowing.
    pub q: String,
    pub back_href: String,
    pub changes: Vec<ChangeRow>,
    pub targets: Vec<TargetRow>,
    pub metadata: Option<String>,
    pub permalink: String,
    pub looks_unfamiliar: bool,
    pub inclusion: Option<InclusionView>,
    /// What the browser checks the inclusion proof and checkpoint with ("Verified in your browser").
    pub browser_verification: Option<crate::web::browser_verification::BrowserVerificationView>,
    /// The event address's known network and where else its actor was seen (issue 6).
    pub unfamiliar_ip: crate::web::networks::UnfamiliarIpView,
    /// "2024-06-01 10:00:00.123 UTC" (the script adds the reader's local time, to the millisecond).
    pub created_utc_ms: String,
    /// The actor's other events within an hour (`web::event_view::related_events`).
    pub related: Vec<crate::web::event_view::RelatedEvent>,
    /// The list of every related event.
    pub related_href: Option<String>,
    /// The event exactly as `GET /api/v1/events/{id}` returns it, for the copy button.
    pub event_json: String,
}

/// The event's inclusion proof against the account's newest checkpoint, for the detail view.
pub struct InclusionView {
    pub seq: u64,
    pub tree_size: u64,
    pub leaf_hash: String,
    pub root_hash: String,
    pub proof: Vec<String>,
    pub checkpoint: String,
    /// When the checkpoint was signed (RFC 3339, UTC).
    pub signed_at: String,
}

async fn inclusion_view(
    state: &AppState,
    account: &logbook_core::AccountId,
    seq: u64,
) -> Result<Option<InclusionView>, WebError> {
    let Some(tree) = state.store().log_tree() else {
        return Ok(None);
    };
    let Some(checkpoint) = tree.latest_checkpoint(account).await? else {
        return Ok(None);
    };
    if seq >= checkpoint.tree_size {
        // Committed after the newest checkpoint: its proof appears once the next one is signed.
        return Ok(None);
    }
    let answer =
        crate::reading::proofs::inclusion_proof(tree, account, seq, Some(checkpoint.tree_size))
            .await
            .map_err(|error| WebError::Internal(error.to_string()))?;
    let text = |name: &str| answer[name].as_str().unwrap_or_default().to_owned();
    Ok(Some(InclusionView {
        seq,
        tree_size: checkpoint.tree_size,
        leaf_hash: text("leaf_hash"),
        root_hash: text("root_hash"),
        proof: answer["proof"]
            .as_array()
            .map(|hashes| {
                hashes
                    .iter()
                    .filter_map(|hash| hash.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        checkpoint: checkpoint.text,
        signed_at: utc_text(checkpoint.signed_at),
    }))
}

fn json_text(value: Option<&serde_json::Value>) -> String {
    match value {
        None => "(none)".to_owned(),
        Some(value) => visible_pretty_json(value),
    }
}

/// Pretty JSON with its layout kept: the only raw line breaks are the ones pretty-printing adds
/// (serde_json escapes controls inside strings), so each line is made visible on its own and the
/// bidi and zero-width characters a string may hold still show as escapes.
fn visible_pretty_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(value)
        .unwrap_or_default()
        .split('\n')
        .map(visible)
        .collect::<Vec<_>>()
        .join("\n")
}

/// `GET /events/{id}`: every field of one event of the person's account (404 for any other).
pub async fn get(
    State(state): State<AppState>,
    reader: Reader,
    Path(path): Path<EventPath>,
    came_from: Result<Query<EventParameters>, QueryRejection>,
) -> Result<Response, WebError> {
    let q = came_from
        .map(|Query(parameters)| parameters.q)
        .unwrap_or_default();
    let event_id = path.id;
    if event_id.as_str().len() > 64 {
        return Err(WebError::NotFound);
    }
    let row = state
        .store()
        .get_event(&reader.account, &event_id)
        .await?
        .ok_or(WebError::NotFound)?;
    let event = row
        .decode()
        .map_err(|error| WebError::Internal(error.to_string()))?;
    if !reader.scope.may_see(&event) {
        return Err(WebError::NotFound);
    }
    let actor = event.actor.as_ref();
    // A personal field removed by aging or erasure says so instead of looking empty.
    let removed_or_empty = |name: &str| {
        if event.removed.iter().any(|removed| removed == name) {
            "removed (personal data)".to_owned()
        } else {
            String::new()
        }
    };
    let fields = vec![
        ("Message", visible(&event.message).into_owned()),
        ("Action", visible(&event.action).into_owned()),
        ("Created at", millisecond_utc_text(event.created_at)),
        ("Received at", millisecond_utc_text(event.received_at)),
        (
            "Actor id",
            actor
                .map(|actor| visible(&actor.id).into_owned())
                .unwrap_or_default(),
        ),
        (
            "Actor name",
            actor
                .and_then(|actor| actor.name.as_deref())
                .map(|name| visible(name).into_owned())
                .unwrap_or_else(|| removed_or_empty("actor.name")),
        ),
        (
            "Actor type",
            actor
                .and_then(|actor| actor.actor_type)
                .map(|actor_type| {
                    serde_json::to_value(actor_type)
                        .ok()
                        .and_then(|value| value.as_str().map(str::to_owned))
                        .unwrap_or_default()
                })
                .unwrap_or_default(),
        ),
        (
            "IP address",
            match (event.ip, event.ip_network.as_deref()) {
                (Some(ip), _) => ip.to_string(),
                (None, Some(network)) => format!(
                    "removed (personal data); its network {} is kept",
                    visible(network)
                ),
                (None, None) => removed_or_empty("ip"),
            },
        ),
        (
            "New IP for this actor",
            if event.new_ip {
                "yes".into()
            } else {
                "no".into()
            },
        ),
        (
            "New network for this actor",
            if event.new_network {
                "yes".into()
            } else {
                "no".into()
            },
        ),
        (
            "New country for this actor",
            if event.new_country {
                "yes".into()
            } else {
                "no".into()
            },
        ),
        (
            "User agent",
            event
                .user_agent
                .as_deref()
                .map(|agent| visible(agent).into_owned())
                .unwrap_or_else(|| removed_or_empty("user_agent")),
        ),
        (
            "Personal data removed",
            event
                .removed
                .iter()
                .map(|name| visible(name).into_owned())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        (
            "Outcome",
            event
                .outcome
                .map(|outcome| outcome.as_str().to_owned())
                .unwrap_or_default(),
        ),
        (
            "Idempotency key",
            event
                .key
                .as_deref()
                .map(|key| visible(key).into_owned())
                .unwrap_or_default(),
        ),
        ("Sequence number", event.seq.to_string()),
        ("Event id", visible(event.id.as_str()).into_owned()),
        ("Account", event.account.to_string()),
    ];
    let fields = fields
        .into_iter()
        .map(|(label, value)| {
            let narrow = match label {
                "Actor id" => actor.map(|actor| NarrowTerm::actor(&actor.id)),
                "Action" => Some(NarrowTerm::action(&event.action)),
                "IP address" => event.ip.map(NarrowTerm::ip),
                _ => None,
            };
            EventField {
                label,
                value,
                narrow,
            }
        })
        .collect();
    let changes = event
        .changes
        .iter()
        .map(|change| {
            let (old, new) = crate::web::event_view::marked_change(
                &json_text(change.old.as_ref()),
                &json_text(change.new.as_ref()),
            );
            ChangeRow {
                field: visible(&change.field).into_owned(),
                old,
                new,
            }
        })
        .collect();
    let targets = event
        .targets
        .iter()
        .map(|target| TargetRow {
            target_type: visible(&target.target_type).into_owned(),
            id: visible(&target.id).into_owned(),
            name: target
                .name
                .as_deref()
                .map(|name| visible(name).into_owned())
                .unwrap_or_default(),
            narrow: NarrowTerm::target(&target.id),
        })
        .collect();
    let metadata = event.metadata.as_ref().map(visible_pretty_json);
    let mut unfamiliar_ip = crate::web::networks::unfamiliar_ip_view(
        &state,
        &reader.account,
        actor.map(|actor| actor.id.as_str()),
        event.ip,
    )
    .await?;
    if !reader.may_see_actor_history() {
        unfamiliar_ip.seen_elsewhere.clear();
    }
    // An address of a known network is not unfamiliar, however new it is for this actor.
    let looks_unfamiliar = (event.new_ip && unfamiliar_ip.network_name.is_empty())
        || event.outcome == Some(Outcome::Failure);
    let inclusion = inclusion_view(&state, &reader.account, event.seq).await?;
    let browser_verification = inclusion.as_ref().map(|inclusion| {
        crate::web::browser_verification::BrowserVerificationView::new(
            &row,
            inclusion,
            state
                .checkpoint_signing()
                .map(|signing| signing.signer.verifier().to_key_text()),
        )
    });
    let now = state.clock().now();
    let (related, related_href) = crate::web::event_view::related_events(
        state.store().as_ref(),
        &reader.account,
        &reader.scope,
        &event,
        &reader.base_path(),
        now,
    )
    .await?;
    let mut api_json = Vec::with_capacity(row.body_without_seq.len() + 32);
    row.write_json(&mut api_json);
    let details = EventPage {
        created_utc_ms: millisecond_utc_text(event.created_at),
        related,
        related_href,
        event_json: crate::web::event_view::json_with_invisible_characters_escaped(
            &String::from_utf8_lossy(&api_json),
        ),
        chrome: reader.chrome(&state, "Event details", "activity"),
        permalink: format!(
            "{}/events/{}",
            reader.base_path(),
            url_component(event.id.as_str())
        ),
        row: Row::of(&event, now),
        fields,
        back_href: if q.trim().is_empty() {
            format!("{}/", reader.base_path())
        } else {
            format!("{}/?q={}", reader.base_path(), url_component(&q))
        },
        q,
        changes,
        targets,
        metadata,
        looks_unfamiliar,
        inclusion,
        browser_verification,
        unfamiliar_ip,
    };
    Ok(framed(&reader, page(&details)))
}

/// The `{id}` of `/events/{id}` (the embedded view's path also holds its token, which the
/// `Reader` reads).
#[derive(Debug, Deserialize)]
pub struct EventPath {
    id: EventId,
}

/// `?q=` of an event link: the search of the list it was opened from.
#[derive(Debug, Deserialize, Default)]
pub struct EventParameters {
    #[serde(default)]
    q: String,
}

#[derive(Debug, Deserialize)]
pub struct ExportParameters {
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    q: String,
}

/// `GET /events/export?format=csv|ndjson&q=`: the current filter as a file; recorded as
/// `logbook.export` before the first byte is sent.
pub async fn export(
    State(state): State<AppState>,
    reader: Reader,
    Query(parameters): Query<ExportParameters>,
) -> Result<Response, ApiError> {
    if !reader.may_export() {
        return Err(ApiError::forbidden("this view does not include exports"));
    }
    let format = ExportFormat::parse(parameters.format.as_deref())?;
    let filter = parse_query_parameter(Some(&parameters.q))?;
    let mut metadata = serde_json::Map::new();
    metadata.insert("format".into(), format.name().into());
    metadata.insert("query".into(), audit::truncate(&parameters.q, 2048).into());
    if let Some(viewer) = reader.viewer() {
        metadata.insert(
            "viewer_session".into(),
            viewer.session.viewer_session_id.clone().into(),
        );
    }
    audit::record_with_actor_name(
        &state,
        AuditEvent {
            account: &reader.account,
            action: audit::EXPORT,
            message: format!("{} exported events as {}", reader.label(), format.name()),
            actor_email: reader.actor_id(),
            client: &reader.client,
            outcome: Outcome::Success,
            targets: reader
                .viewer()
                .map(|viewer| {
                    vec![crate::web::viewer::viewer_session_target(
                        &viewer.session.viewer_session_id,
                    )]
                })
                .unwrap_or_default(),
            metadata: Some(metadata),
        },
        reader.viewer().map(|viewer| viewer.session.person.label()),
    )
    .await
    .map_err(|error| match error {
        WebError::Store(store_error) => ApiError::from(store_error),
        other => ApiError::internal(other),
    })?;
    let response = export_response(
        &state,
        &reader.account,
        format,
        reader.scope.restrict(filter),
    )?;
    Ok(framed(&reader, response))
}

#[derive(Debug, Deserialize)]
pub struct LiveParameters {
    #[serde(default)]
    q: String,
    from_seq: Option<u64>,
}

/// `GET /events/live?q=&from_seq=`: new matching events as server-sent events.
pub async fn live(
    State(state): State<AppState>,
    reader: Reader,
    Query(parameters): Query<LiveParameters>,
) -> Result<Response, ApiError> {
    let account = reader.account.clone();
    let filter = resolve_known_networks_for_live_view(
        &state,
        &account,
        parse_query_parameter(Some(&parameters.q))?,
    )
    .await?;
    let from_seq = match parameters.from_seq {
        Some(seq) => seq,
        None => state.store().next_seq(&account).await?,
    };
    let reader_ends = reader.viewer().map(|viewer| {
        crate::web::viewer::session_ends(&state, &viewer.token, viewer.session.expires_at)
    });
    Ok(tail_response(
        &state,
        account,
        reader.scope.restrict(filter),
        from_seq,
        reader_ends,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_filters_become_query_terms_after_the_typed_text() {
        let q = fold_quick_filters(
            "reboot",
            "2024-06-01",
            "2024-06-30",
            "alice@acme.com",
            "server.*",
            true,
        );
        assert_eq!(
            q,
            "reboot created:>=2024-06-01 created:<=2024-06-30 actor:alice@acme.com action:server.* outcome:failure"
        );
        assert!(query::parse(&q).is_ok());
        assert_eq!(
            fold_quick_filters("", "", "", "Alice Smith", "", false),
            "actor:\"Alice Smith\""
        );
    }

    #[test]
    fn url_components_are_percent_encoded() {
        assert_eq!(url_component("actor:a b&c=d"), "actor%3Aa%20b%26c%3Dd");
    }
}
