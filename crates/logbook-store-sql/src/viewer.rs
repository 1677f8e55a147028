//! `ViewerSessionStore` in the SQL both stores run (tables of migration 0015). A session is
//! found by the hash of its one-time ticket until it is opened, and by the hash of its token
//! afterwards; opening is one conditional `UPDATE`, so a ticket opens at most once across nodes.

use std::net::IpAddr;

use async_trait::async_trait;
use logbook_core::store::ViewerSessionStore;
use logbook_core::viewer::{
    EmbedLook, NewViewerSession, Theme, ViewerPerson, ViewerScope, ViewerSessionRecord,
};
use logbook_core::{AccountId, StoreError};
use time::OffsetDateTime;

use crate::encoding::unix_micros_of;
use crate::executor::{SqlDatabase, SqlExecutor};
use crate::shared_store::{SharedStore, account_row, existing_account_row, stored_account};
use crate::value::{SqlRow, SqlValue};

const SESSION_COLUMNS: &str = "v.viewer_session_id, a.name, v.person_id, v.person_name, v.person_email, \
     v.scope, v.fixed_query, v.may_export, v.created_by, v.created_at, v.open_by, v.expires_at, v.opened_at";

fn stored_problem(context: &'static str, message: String) -> StoreError {
    StoreError::Database { context, message }
}

fn session_from_row(
    context: &'static str,
    row: &SqlRow,
) -> Result<ViewerSessionRecord, StoreError> {
    let scope = ViewerScope::from_parts(&row.text(5)?, row.optional_text(6)?.as_deref())
        .map_err(|error| stored_problem(context, format!("stored viewer scope: {error}")))?;
    Ok(ViewerSessionRecord {
        viewer_session_id: row.text(0)?,
        account: stored_account(context, &row.text(1)?)?,
        // Stored values were checked when the session was made; they are not checked twice.
        person: ViewerPerson {
            id: row.text(2)?,
            name: row.optional_text(3)?,
            email: row.optional_text(4)?,
        },
        scope,
        may_export: row.boolean(7)?,
        created_by: row.text(8)?,
        created_at: row.time(9)?,
        open_by: row.time(10)?,
        expires_at: row.time(11)?,
        opened_at: row.optional_time(12)?,
    })
}

/// The session whose `column` (`session_hash` or `viewer_session_id`) is `value`, with its
/// account's name.
async fn one_session(
    sql: &dyn SqlExecutor,
    context: &'static str,
    column: &'static str,
    value: SqlValue,
) -> Result<Option<ViewerSessionRecord>, StoreError> {
    sql.query_optional(
        context,
        &format!(
            "SELECT {SESSION_COLUMNS} FROM viewer_sessions v \
             JOIN accounts a ON a.account_row = v.account_row WHERE v.{column} = $1"
        ),
        &[value],
    )
    .await?
    .map(|row| session_from_row(context, &row))
    .transpose()
}

fn look_from_row(context: &'static str, row: &SqlRow) -> Result<EmbedLook, StoreError> {
    let frame_ancestors: Vec<String> = serde_json::from_str(&row.text(0)?)
        .map_err(|error| stored_problem(context, format!("stored frame ancestors: {error}")))?;
    let theme = row
        .optional_text(3)?
        .map(|text| Theme::parse(&text))
        .transpose()
        .map_err(|error| stored_problem(context, format!("stored theme: {error}")))?;
    Ok(EmbedLook {
        frame_ancestors,
        product_name: row.optional_text(1)?,
        accent_colour: row.optional_text(2)?,
        theme,
        logo_url: row.optional_text(4)?,
    })
}

#[async_trait]
impl<Database: SqlDatabase> ViewerSessionStore for SharedStore<Database> {
    async fn create_viewer_session(
        &self,
        session: NewViewerSession,
        forget_ended_before: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    const CREATING: &str = "creating a viewer session";
                    let account_row = existing_account_row(sql, CREATING, &session.account).await?;
                    sql.execute(
                        CREATING,
                        "DELETE FROM viewer_sessions WHERE expires_at < $1",
                        &[unix_micros_of(forget_ended_before).into()],
                    )
                    .await?;
                    sql.execute(
                        CREATING,
                        "INSERT INTO viewer_sessions (viewer_session_id, ticket_hash, account_row, \
                         person_id, person_name, person_email, scope, fixed_query, may_export, \
                         created_by, created_at, open_by, expires_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                        &[
                            session.viewer_session_id.as_str().into(),
                            session.ticket_hash.to_vec().into(),
                            account_row.into(),
                            session.person.id.as_str().into(),
                            session.person.name.clone().into(),
                            session.person.email.clone().into(),
                            session.scope.kind().into(),
                            session.scope.fixed_query().map(str::to_owned).into(),
                            session.may_export.into(),
                            session.created_by.as_str().into(),
                            unix_micros_of(session.created_at).into(),
                            unix_micros_of(session.open_by).into(),
                            unix_micros_of(session.expires_at).into(),
                        ],
                    )
                    .await?;
                    Ok(())
                })
            }))
            .await
    }

    async fn open_viewer_session(
        &self,
        ticket_hash: &[u8; 32],
        session_hash: &[u8; 32],
        now: OffsetDateTime,
        ip: IpAddr,
        user_agent: Option<&str>,
    ) -> Result<Option<ViewerSessionRecord>, StoreError> {
        let ticket_hash = ticket_hash.to_vec();
        let session_hash = session_hash.to_vec();
        let user_agent = user_agent.map(str::to_owned);
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    const OPENING: &str = "opening a viewer session";
                    // One statement takes the ticket, so two nodes opening it at once cannot
                    // both win.
                    let opened = sql
                        .execute(
                            OPENING,
                            "UPDATE viewer_sessions SET session_hash = $2, opened_at = $3, \
                             opened_ip = $4, opened_user_agent = $5 \
                             WHERE ticket_hash = $1 AND opened_at IS NULL AND open_by > $3",
                            &[
                                ticket_hash.into(),
                                session_hash.clone().into(),
                                unix_micros_of(now).into(),
                                ip.to_string().into(),
                                user_agent.into(),
                            ],
                        )
                        .await?;
                    if opened == 0 {
                        return Ok(None);
                    }
                    one_session(sql, OPENING, "session_hash", session_hash.into()).await
                })
            }))
            .await
    }

    async fn find_viewer_session(
        &self,
        session_hash: &[u8; 32],
    ) -> Result<Option<ViewerSessionRecord>, StoreError> {
        let session_hash = session_hash.to_vec();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    const READING: &str = "reading a viewer session";
                    one_session(sql, READING, "session_hash", session_hash.into()).await
                })
            }))
            .await
    }

    async fn viewer_session_by_id(
        &self,
        viewer_session_id: &str,
    ) -> Result<Option<ViewerSessionRecord>, StoreError> {
        let viewer_session_id = viewer_session_id.to_owned();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    const READING: &str = "reading a viewer session";
                    one_session(sql, READING, "viewer_session_id", viewer_session_id.into()).await
                })
            }))
            .await
    }

    async fn end_viewer_session(
        &self,
        viewer_session_id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let viewer_session_id = viewer_session_id.to_owned();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    const ENDING: &str = "ending a viewer session";
                    let now = unix_micros_of(now);
                    let found = sql
                        .execute(
                            ENDING,
                            "UPDATE viewer_sessions SET \
                             expires_at = CASE WHEN expires_at > $2 THEN $2 ELSE expires_at END, \
                             open_by = CASE WHEN open_by > $2 THEN $2 ELSE open_by END \
                             WHERE viewer_session_id = $1",
                            &[viewer_session_id.into(), now.into()],
                        )
                        .await?;
                    Ok(found > 0)
                })
            }))
            .await
    }

    async fn embed_look(&self, account: &AccountId) -> Result<Option<EmbedLook>, StoreError> {
        let account = account.clone();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    const READING: &str = "reading an account's embedded view settings";
                    let Some(account_row) = account_row(sql, READING, &account).await? else {
                        return Ok(None);
                    };
                    sql.query_optional(
                        READING,
                        "SELECT frame_ancestors, product_name, accent_colour, theme, logo_url \
                         FROM embed_looks WHERE account_row = $1",
                        &[account_row.into()],
                    )
                    .await?
                    .map(|row| look_from_row(READING, &row))
                    .transpose()
                })
            }))
            .await
    }

    async fn set_embed_look(
        &self,
        account: &AccountId,
        look: Option<EmbedLook>,
    ) -> Result<(), StoreError> {
        let account = account.clone();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    const SETTING: &str = "setting an account's embedded view settings";
                    let account_row = existing_account_row(sql, SETTING, &account).await?;
                    sql.execute(
                        SETTING,
                        "DELETE FROM embed_looks WHERE account_row = $1",
                        &[account_row.into()],
                    )
                    .await?;
                    if let Some(look) = look {
                        let frame_ancestors = serde_json::to_string(&look.frame_ancestors)
                            .map_err(|error| stored_problem(SETTING, error.to_string()))?;
                        sql.execute(
                            SETTING,
                            "INSERT INTO embed_looks (account_row, frame_ancestors, product_name, \
                             accent_colour, theme, logo_url) VALUES ($1, $2, $3, $4, $5, $6)",
                            &[
                                account_row.into(),
                                frame_ancestors.into(),
                                look.product_name.into(),
                                look.accent_colour.into(),
                                look.theme.map(Theme::as_str).into(),
                                look.logo_url.into(),
                            ],
                        )
                        .await?;
                    }
                    Ok(())
                })
            }))
            .await
    }
}
