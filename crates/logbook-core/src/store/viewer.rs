//! Viewer sessions and the embedded view's look per account (`crate::viewer`), reached through
//! `Store::viewer_sessions`.

use std::net::IpAddr;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::account::AccountId;
use crate::store::StoreError;
use crate::viewer::{EmbedLook, NewViewerSession, ViewerSessionRecord};

#[async_trait]
pub trait ViewerSessionStore: Send + Sync {
    /// Stores a session that is not open yet; sessions that ended before `forget_ended_before`
    /// are forgotten on the way. Errors: `AccountNotFound`.
    async fn create_viewer_session(
        &self,
        session: NewViewerSession,
        forget_ended_before: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Opens the session whose one-time ticket hashes to `ticket_hash`, if it was never opened
    /// and `now` is before its `open_by`: from then on it is found by `session_hash`. Exactly one
    /// of several concurrent openings succeeds; every other, and any later one, gets `None`.
    async fn open_viewer_session(
        &self,
        ticket_hash: &[u8; 32],
        session_hash: &[u8; 32],
        now: OffsetDateTime,
        ip: IpAddr,
        user_agent: Option<&str>,
    ) -> Result<Option<ViewerSessionRecord>, StoreError>;

    /// The opened session whose token hashes to `session_hash` (ended ones too: the caller
    /// checks `expires_at`).
    async fn find_viewer_session(
        &self,
        session_hash: &[u8; 32],
    ) -> Result<Option<ViewerSessionRecord>, StoreError>;

    /// The session with this id, opened or not (ended ones too, until they are forgotten).
    async fn viewer_session_by_id(
        &self,
        viewer_session_id: &str,
    ) -> Result<Option<ViewerSessionRecord>, StoreError>;

    /// Ends the session at `now`: its URL no longer opens and its token no longer reads (a
    /// session that already ended keeps its earlier end). Returns whether the session exists.
    async fn end_viewer_session(
        &self,
        viewer_session_id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// The account's own look of the embedded view (`None`: it has set nothing).
    async fn embed_look(&self, account: &AccountId) -> Result<Option<EmbedLook>, StoreError>;

    /// Replaces the account's look; `None` removes it. Errors: `AccountNotFound`.
    async fn set_embed_look(
        &self,
        account: &AccountId,
        look: Option<EmbedLook>,
    ) -> Result<(), StoreError>;
}
