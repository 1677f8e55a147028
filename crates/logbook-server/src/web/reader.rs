//! Who reads the Activity Logs page: a signed-in person (their session cookie), or the person of
//! a viewer session in the embedded view (the token in the `/view/{token}/` path). The page's
//! handlers (`activity`, `attention`) take a `Reader` and ask it for the account, what may be
//! seen (`ReadScope`), where links point, whether exports are allowed and how the page looks,
//! so the standalone page and the embedded view are one code path.
//!
//! The account always comes from the authenticated principal (the person's user record, or the
//! stored viewer session), never from the request.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use logbook_core::AccountId;
use logbook_core::attention::FindingFilter;
use logbook_core::people::hash_token;
use logbook_core::viewer::{EmbedLook, ViewerScope, ViewerSessionRecord};

use crate::reading::{ReadScope, resolve_known_networks_for_live_view};
use crate::state::AppState;
use crate::web::render::{Chrome, EmbeddedChrome, WebError};
use crate::web::session::{Client, SignedIn};

/// The path prefix of the embedded view.
pub const VIEW_PREFIX: &str = "/view/";

/// A request to read an account's log, and who makes it.
pub struct Reader {
    pub account: AccountId,
    pub scope: ReadScope,
    pub client: Client,
    pub kind: ReaderKind,
}

pub enum ReaderKind {
    /// Signed in with a Logbook account.
    Person(Box<SignedIn>),
    /// The person of a viewer session, in the embedded view.
    Viewer(Box<ViewerReader>),
}

pub struct ViewerReader {
    /// The session token as it appears in the path (never stored; the store keeps its hash).
    pub token: String,
    pub session: ViewerSessionRecord,
    /// The instance's look with the account's over it.
    pub look: EmbedLook,
}

impl Reader {
    /// The prefix of every link of the page: empty for the standalone page, `/view/{token}` in
    /// the embedded view, so each link keeps the person inside their session.
    pub fn base_path(&self) -> String {
        match &self.kind {
            ReaderKind::Person(_) => String::new(),
            ReaderKind::Viewer(viewer) => format!("/view/{}", viewer.token),
        }
    }

    pub fn may_export(&self) -> bool {
        match &self.kind {
            ReaderKind::Person(_) => true,
            ReaderKind::Viewer(viewer) => viewer.session.may_export,
        }
    }

    pub fn signed_in(&self) -> Option<&SignedIn> {
        match &self.kind {
            ReaderKind::Person(signed_in) => Some(signed_in),
            ReaderKind::Viewer(_) => None,
        }
    }

    pub fn viewer(&self) -> Option<&ViewerReader> {
        match &self.kind {
            ReaderKind::Person(_) => None,
            ReaderKind::Viewer(viewer) => Some(viewer),
        }
    }

    /// The `actor.id` of the events this reader's actions write: a person's email, or the
    /// platform's id of a viewer.
    pub fn actor_id(&self) -> &str {
        match &self.kind {
            ReaderKind::Person(signed_in) => &signed_in.user.email,
            ReaderKind::Viewer(viewer) => &viewer.session.person.id,
        }
    }

    /// How the reader is named in messages.
    pub fn label(&self) -> &str {
        match &self.kind {
            ReaderKind::Person(signed_in) => &signed_in.user.email,
            ReaderKind::Viewer(viewer) => viewer.session.person.label(),
        }
    }

    /// Whether the page's event view may show where else an event's actor was seen: not under a
    /// fixed query, whose reader must not learn of events outside it.
    pub fn may_see_actor_history(&self) -> bool {
        !matches!(self.scope, ReadScope::Within(_))
    }

    /// Which "Needs attention" findings this reader may list, or `None` for none. Findings are
    /// about actors, so a reader limited to their own events sees the ones about themselves and
    /// a reader limited by a fixed query sees none (a finding cannot be tied to the query).
    pub fn finding_filter(&self, include_dismissed: bool, limit: u32) -> Option<FindingFilter> {
        let about_actor = match &self.scope {
            ReadScope::WholeLog => None,
            ReadScope::OwnEvents { actor_id } => Some(actor_id.clone()),
            ReadScope::Within(_) => return None,
        };
        Some(FindingFilter {
            about_actor,
            include_dismissed,
            limit,
        })
    }

    /// The page frame for this reader.
    pub fn chrome(&self, state: &AppState, title: &str, current: &'static str) -> Chrome {
        match &self.kind {
            ReaderKind::Person(signed_in) => Chrome::new(state, title, Some(signed_in), current),
            ReaderKind::Viewer(viewer) => {
                let mut chrome = Chrome::new(state, title, None, current);
                chrome.base_path = self.base_path();
                chrome.embedded = Some(EmbeddedChrome::new(
                    &viewer.look,
                    viewer.session.person.label(),
                    &self.base_path(),
                ));
                chrome
            }
        }
    }
}

/// The token of a `/view/{token}/...` path, if the path is one.
pub fn view_token_of_path(path: &str) -> Option<&str> {
    let rest = path.strip_prefix(VIEW_PREFIX)?;
    let token = rest.split('/').next()?;
    Some(token)
}

/// A session token: 128 random bits as 32 lowercase hex characters.
pub fn looks_like_token(text: &str) -> bool {
    text.len() == 32
        && text
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

/// The open, unexpired viewer session of `token`, with its look, or why there is none.
pub async fn viewer_session(state: &AppState, token: &str) -> Result<ViewerReader, WebError> {
    if !looks_like_token(token) {
        return Err(WebError::ViewerSessionInvalid);
    }
    let session = state
        .store()
        .viewer_sessions()
        .find_viewer_session(&hash_token(token))
        .await?
        .ok_or(WebError::ViewerSessionInvalid)?;
    if state.clock().now() >= session.expires_at {
        return Err(WebError::ViewerSessionEnded);
    }
    let account_look = state
        .store()
        .viewer_sessions()
        .embed_look(&session.account)
        .await?
        .unwrap_or_default();
    Ok(ViewerReader {
        token: token.to_owned(),
        look: account_look.over(&state.settings().embed.look),
        session,
    })
}

impl FromRequestParts<AppState> for Reader {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let path = parts.uri.path().to_owned();
        let Some(token) = view_token_of_path(&path) else {
            let signed_in = SignedIn::from_request_parts(parts, state).await?;
            return Ok(Reader {
                account: signed_in.user.account.clone(),
                scope: ReadScope::of_person(&signed_in.user),
                client: signed_in.client.clone(),
                kind: ReaderKind::Person(Box::new(signed_in)),
            });
        };
        let client = Client::from_request_parts(parts, state).await?;
        let viewer = viewer_session(state, token).await?;
        let account = viewer.session.account.clone();
        let scope = match &viewer.session.scope {
            ViewerScope::WholeLog => ReadScope::WholeLog,
            ViewerScope::OwnEvents => ReadScope::OwnEvents {
                actor_id: viewer.session.person.id.clone(),
            },
            ViewerScope::FixedQuery(text) => {
                // Checked when the session was made; a stored query that no longer parses (a
                // language change) is refused rather than read some other way.
                let fixed =
                    logbook_core::query::parse(text).map_err(|_| WebError::ViewerSessionInvalid)?;
                // A known network the fixed query names was renamed or deleted since the session
                // was made: `ip:NAME` would match nothing and `-ip:NAME` everything, so the view
                // ends instead of widening (a new session for the query is refused until the
                // network exists again).
                let missing = crate::reading::unknown_network_names(state, &account, &fixed)
                    .await
                    .map_err(|error| WebError::Internal(error.to_string()))?;
                if !missing.is_empty() {
                    return Err(WebError::ViewerSessionEnded);
                }
                // Known network names resolve once per request, so the store's SQL and the
                // in-memory matching of live updates and single events read the same blocks.
                let fixed = resolve_known_networks_for_live_view(state, &account, fixed)
                    .await
                    .map_err(|error| WebError::Internal(error.to_string()))?;
                ReadScope::Within(fixed)
            }
        };
        Ok(Reader {
            account,
            scope,
            client,
            kind: ReaderKind::Viewer(Box::new(viewer)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_the_first_segment_after_view() {
        assert_eq!(
            view_token_of_path("/view/0123456789abcdef0123456789abcdef/events/x"),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(view_token_of_path("/events/x"), None);
        assert!(looks_like_token("0123456789abcdef0123456789abcdef"));
        assert!(!looks_like_token("0123456789ABCDEF0123456789abcdef"));
        assert!(!looks_like_token("open"));
    }
}
