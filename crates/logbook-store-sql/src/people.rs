//! `PeopleStore` in the SQL both stores run: users, sessions, recovery codes, invitations and the
//! account's sign-in settings (tables of migration 0002). These tables are read by user, session
//! or token rather than by account (sign-in comes before any account is known). Every node reads
//! sessions from the database, so a session created on one node works on every other, and a
//! logout or password change on one node ends it everywhere.

use std::net::IpAddr;

use async_trait::async_trait;
use logbook_core::ids::UserId;
use logbook_core::people::{InvitationRecord, NewUser, Role, SessionRecord, UserRecord};
use logbook_core::store::PeopleStore;
use logbook_core::{AccountId, StoreError};
use time::OffsetDateTime;

use crate::encoding::unix_micros_of;
use crate::executor::{SqlDatabase, SqlExecutor};
use crate::shared_store::{SharedStore, existing_account_row, stored_account};
use crate::value::{SqlRow, SqlValue};

const USER_COLUMNS: &str =
    "u.user_id, a.name, u.email, u.role, u.password_hash, u.totp_secret, u.created_at";
const USERS_WITH_ACCOUNTS: &str = "users u JOIN accounts a ON a.account_row = u.account_row";
const SESSION_COLUMNS: &str = "s.session_hash, s.user_id, s.created_at, s.last_seen_at, s.ip, s.user_agent, s.awaiting_second_factor, s.revoked_at";

fn stored_role(context: &'static str, text: &str) -> Result<Role, StoreError> {
    Role::parse(text).map_err(|error| StoreError::Database {
        context,
        message: error.to_string(),
    })
}

/// A user from `USER_COLUMNS` starting at column `first`.
fn user_from_row(row: &SqlRow, first: usize) -> Result<UserRecord, StoreError> {
    const READING: &str = "reading users";
    Ok(UserRecord {
        user_id: row.text(first)?.into(),
        account: stored_account(READING, &row.text(first + 1)?)?,
        email: row.text(first + 2)?,
        role: stored_role(READING, &row.text(first + 3)?)?,
        password_hash: row.text(first + 4)?,
        totp_secret: row.optional_bytes(first + 5)?,
        created_at: row.time(first + 6)?,
    })
}

fn session_from_row(row: &SqlRow) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        session_hash: hash_column(row, 0)?,
        user_id: row.text(1)?.into(),
        created_at: row.time(2)?,
        last_seen_at: row.time(3)?,
        ip: row
            .optional_text(4)?
            .and_then(|text| text.parse::<IpAddr>().ok()),
        user_agent: row.optional_text(5)?,
        awaiting_second_factor: row.boolean(6)?,
        revoked_at: row.optional_time(7)?,
    })
}

fn invitation_from_row(
    row: &SqlRow,
    first: usize,
    account: AccountId,
) -> Result<InvitationRecord, StoreError> {
    Ok(InvitationRecord {
        account,
        email: row.text(first)?,
        role: stored_role("reading invitations", &row.text(first + 1)?)?,
        invited_by: row.text(first + 2)?,
        created_at: row.time(first + 3)?,
        expires_at: row.time(first + 4)?,
    })
}

/// A stored SHA-256 (session, token or code hash).
fn hash_column(row: &SqlRow, index: usize) -> Result<[u8; 32], StoreError> {
    let bytes = row.bytes(index)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| StoreError::Database {
        context: "reading a stored hash",
        message: format!("column {index} holds {} bytes, not 32", bytes.len()),
    })
}

async fn select_users(
    sql: &dyn SqlExecutor,
    condition: &str,
    parameter: SqlValue,
) -> Result<Vec<UserRecord>, StoreError> {
    sql.query(
        "reading users",
        &format!(
            "SELECT {USER_COLUMNS} FROM {USERS_WITH_ACCOUNTS} WHERE {condition} ORDER BY a.name, u.email"
        ),
        &[parameter],
    )
    .await?
    .iter()
    .map(|row| user_from_row(row, 0))
    .collect()
}

async fn one_user(
    sql: &dyn SqlExecutor,
    user_id: &UserId,
) -> Result<Option<UserRecord>, StoreError> {
    Ok(select_users(sql, "u.user_id = $1", user_id.into())
        .await?
        .pop())
}

async fn existing_user(sql: &dyn SqlExecutor, user_id: &UserId) -> Result<UserRecord, StoreError> {
    one_user(sql, user_id)
        .await?
        .ok_or_else(|| StoreError::UserNotFound(user_id.clone()))
}

async fn revoke_all_sessions(
    sql: &dyn SqlExecutor,
    user_id: &UserId,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    sql.execute(
        "ending sessions",
        "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
        &[user_id.into(), unix_micros_of(now).into()],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl<Database: SqlDatabase> PeopleStore for SharedStore<Database> {
    async fn create_user(&self, user: NewUser) -> Result<UserRecord, StoreError> {
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    const CREATING: &str = "creating a user";
                    let account_row = existing_account_row(sql, CREATING, &user.account).await?;
                    let inserted = sql
                        .execute(
                            CREATING,
                            "INSERT INTO users (user_id, account_row, email, role, password_hash, created_at) \
                             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (account_row, email) DO NOTHING",
                            &[
                                (&user.user_id).into(),
                                account_row.into(),
                                user.email.as_str().into(),
                                user.role.as_str().into(),
                                user.password_hash.as_str().into(),
                                unix_micros_of(user.created_at).into(),
                            ],
                        )
                        .await?;
                    if inserted == 0 {
                        return Err(StoreError::UserAlreadyExists {
                            account: user.account,
                            email: user.email,
                        });
                    }
                    existing_user(sql, &user.user_id).await
                })
            }))
            .await
    }

    async fn list_users(&self, account: &AccountId) -> Result<Vec<UserRecord>, StoreError> {
        let account = account.clone();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(
                    async move { select_users(sql, "a.name = $1", account.as_str().into()).await },
                )
            }))
            .await
    }

    async fn any_user_exists(&self) -> Result<bool, StoreError> {
        self.database
            .read(Box::new(|sql| {
                Box::pin(async move {
                    Ok(sql
                        .query_optional(
                            "looking for any person",
                            "SELECT 1 FROM users LIMIT 1",
                            &[],
                        )
                        .await?
                        .is_some())
                })
            }))
            .await
    }

    async fn find_users_by_email(&self, email: &str) -> Result<Vec<UserRecord>, StoreError> {
        let email = email.to_owned();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move { select_users(sql, "u.email = $1", email.into()).await })
            }))
            .await
    }

    async fn get_user(&self, user_id: &UserId) -> Result<Option<UserRecord>, StoreError> {
        let user_id = user_id.clone();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move { one_user(sql, &user_id).await })
            }))
            .await
    }

    async fn set_user_role(&self, user_id: &UserId, role: Role) -> Result<UserRecord, StoreError> {
        let user_id = user_id.clone();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let updated = sql
                        .execute(
                            "changing a role",
                            "UPDATE users SET role = $2 WHERE user_id = $1",
                            &[(&user_id).into(), role.as_str().into()],
                        )
                        .await?;
                    if updated == 0 {
                        return Err(StoreError::UserNotFound(user_id));
                    }
                    existing_user(sql, &user_id).await
                })
            }))
            .await
    }

    async fn set_password(
        &self,
        user_id: &UserId,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let user_id = user_id.clone();
        let password_hash = password_hash.to_owned();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let updated = sql
                        .execute(
                            "changing a password",
                            "UPDATE users SET password_hash = $2 WHERE user_id = $1",
                            &[(&user_id).into(), password_hash.into()],
                        )
                        .await?;
                    if updated == 0 {
                        return Err(StoreError::UserNotFound(user_id));
                    }
                    revoke_all_sessions(sql, &user_id, now).await
                })
            }))
            .await
    }

    async fn remove_user(&self, user_id: &UserId) -> Result<UserRecord, StoreError> {
        let user_id = user_id.clone();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let user = existing_user(sql, &user_id).await?;
                    // Sessions and recovery codes go with the user (ON DELETE CASCADE).
                    sql.execute(
                        "removing a user",
                        "DELETE FROM users WHERE user_id = $1",
                        &[user_id.into()],
                    )
                    .await?;
                    Ok(user)
                })
            }))
            .await
    }

    async fn set_totp(
        &self,
        user_id: &UserId,
        secret: Option<(Vec<u8>, Vec<[u8; 32]>)>,
    ) -> Result<(), StoreError> {
        const CHANGING: &str = "changing two-factor sign-in";
        let user_id = user_id.clone();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let (secret, codes) = match secret {
                        Some((secret, codes)) => (Some(secret), codes),
                        None => (None, Vec::new()),
                    };
                    let updated = sql
                        .execute(
                            CHANGING,
                            "UPDATE users SET totp_secret = $2 WHERE user_id = $1",
                            &[(&user_id).into(), secret.into()],
                        )
                        .await?;
                    if updated == 0 {
                        return Err(StoreError::UserNotFound(user_id));
                    }
                    sql.execute(
                        CHANGING,
                        "DELETE FROM recovery_codes WHERE user_id = $1",
                        &[(&user_id).into()],
                    )
                    .await?;
                    for code in codes {
                        sql.execute(
                            CHANGING,
                            "INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2) \
                             ON CONFLICT DO NOTHING",
                            &[(&user_id).into(), code.to_vec().into()],
                        )
                        .await?;
                    }
                    Ok(())
                })
            }))
            .await
    }

    async fn use_recovery_code(
        &self,
        user_id: &UserId,
        code_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let user_id = user_id.clone();
        let code_hash = code_hash.to_vec();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let updated = sql
                        .execute(
                            "using a recovery code",
                            "UPDATE recovery_codes SET used_at = $3 \
                             WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
                            &[user_id.into(), code_hash.into(), unix_micros_of(now).into()],
                        )
                        .await?;
                    Ok(updated == 1)
                })
            }))
            .await
    }

    async fn count_unused_recovery_codes(&self, user_id: &UserId) -> Result<u32, StoreError> {
        let user_id = user_id.clone();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    let count = sql
                        .query_one(
                            "counting recovery codes",
                            "SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
                            &[user_id.into()],
                        )
                        .await?
                        .count(0)?;
                    Ok(u32::try_from(count).unwrap_or(u32::MAX))
                })
            }))
            .await
    }

    async fn list_unused_recovery_codes(
        &self,
        user_id: &UserId,
    ) -> Result<Vec<[u8; 32]>, StoreError> {
        let user_id = user_id.clone();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    sql.query(
                        "listing recovery codes",
                        "SELECT code_hash FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL \
                         ORDER BY code_hash",
                        &[user_id.into()],
                    )
                    .await?
                    .iter()
                    .map(|row| hash_column(row, 0))
                    .collect()
                })
            }))
            .await
    }

    async fn create_session(&self, session: SessionRecord) -> Result<(), StoreError> {
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    sql.execute(
                        "starting a session",
                        "INSERT INTO sessions (session_hash, user_id, created_at, last_seen_at, ip, \
                         user_agent, awaiting_second_factor, revoked_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
                        &[
                            session.session_hash.to_vec().into(),
                            session.user_id.into(),
                            unix_micros_of(session.created_at).into(),
                            unix_micros_of(session.last_seen_at).into(),
                            session.ip.map(|ip| ip.to_string()).into(),
                            session.user_agent.into(),
                            session.awaiting_second_factor.into(),
                        ],
                    )
                    .await?;
                    Ok(())
                })
            }))
            .await
    }

    async fn find_session(
        &self,
        session_hash: &[u8; 32],
    ) -> Result<Option<(SessionRecord, UserRecord)>, StoreError> {
        let session_hash = session_hash.to_vec();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    // The session and its user in one statement: every signed-in page asks.
                    let row = sql
                        .query_optional(
                            "reading a session",
                            &format!(
                                "SELECT {SESSION_COLUMNS}, {USER_COLUMNS} FROM sessions s \
                                 JOIN users u ON u.user_id = s.user_id \
                                 JOIN accounts a ON a.account_row = u.account_row \
                                 WHERE s.session_hash = $1"
                            ),
                            &[session_hash.into()],
                        )
                        .await?;
                    row.map(|row| Ok((session_from_row(&row)?, user_from_row(&row, 8)?)))
                        .transpose()
                })
            }))
            .await
    }

    async fn touch_session(
        &self,
        session_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let session_hash = session_hash.to_vec();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    // Never backwards: nodes touch a session in any order.
                    sql.execute(
                        "updating a session",
                        "UPDATE sessions SET last_seen_at = $2 \
                         WHERE session_hash = $1 AND last_seen_at < $2",
                        &[session_hash.into(), unix_micros_of(now).into()],
                    )
                    .await?;
                    Ok(())
                })
            }))
            .await
    }

    async fn revoke_session(
        &self,
        user_id: &UserId,
        session_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let user_id = user_id.clone();
        let session_hash = session_hash.to_vec();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let updated = sql
                        .execute(
                            "ending a session",
                            "UPDATE sessions SET revoked_at = $3 \
                             WHERE session_hash = $1 AND user_id = $2 AND revoked_at IS NULL",
                            &[
                                session_hash.into(),
                                user_id.into(),
                                unix_micros_of(now).into(),
                            ],
                        )
                        .await?;
                    Ok(updated == 1)
                })
            }))
            .await
    }

    async fn list_active_sessions(
        &self,
        user_id: &UserId,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let user_id = user_id.clone();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    sql.query(
                        "listing sessions",
                        &format!(
                            "SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.user_id = $1 \
                             AND s.revoked_at IS NULL AND s.awaiting_second_factor = FALSE \
                             ORDER BY s.last_seen_at DESC"
                        ),
                        &[user_id.into()],
                    )
                    .await?
                    .iter()
                    .map(session_from_row)
                    .collect()
                })
            }))
            .await
    }

    async fn create_invitation(
        &self,
        token_hash: [u8; 32],
        invitation: InvitationRecord,
    ) -> Result<(), StoreError> {
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    const CREATING: &str = "creating an invitation";
                    let account_row =
                        existing_account_row(sql, CREATING, &invitation.account).await?;
                    sql.execute(
                        CREATING,
                        "INSERT INTO invitations (token_hash, account_row, email, role, invited_by, \
                         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        &[
                            token_hash.to_vec().into(),
                            account_row.into(),
                            invitation.email.into(),
                            invitation.role.as_str().into(),
                            invitation.invited_by.into(),
                            unix_micros_of(invitation.created_at).into(),
                            unix_micros_of(invitation.expires_at).into(),
                        ],
                    )
                    .await?;
                    Ok(())
                })
            }))
            .await
    }

    async fn take_invitation(
        &self,
        token_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<Option<InvitationRecord>, StoreError> {
        const ACCEPTING: &str = "accepting an invitation";
        let token_hash = token_hash.to_vec();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    // One statement consumes the invitation, so two nodes accepting it at once
                    // cannot both win.
                    let Some(row) = sql
                        .query_optional(
                            ACCEPTING,
                            "UPDATE invitations SET accepted_at = $2 \
                             WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2 \
                             RETURNING account_row, email, role, invited_by, created_at, expires_at",
                            &[token_hash.into(), unix_micros_of(now).into()],
                        )
                        .await?
                    else {
                        return Ok(None);
                    };
                    let name = sql
                        .query_one(
                            ACCEPTING,
                            "SELECT name FROM accounts WHERE account_row = $1",
                            &[row.integer(0)?.into()],
                        )
                        .await?
                        .text(0)?;
                    invitation_from_row(&row, 1, stored_account(ACCEPTING, &name)?).map(Some)
                })
            }))
            .await
    }

    async fn list_pending_invitations(
        &self,
        account: &AccountId,
        now: OffsetDateTime,
    ) -> Result<Vec<([u8; 32], InvitationRecord)>, StoreError> {
        let account = account.clone();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    sql.query(
                        "listing invitations",
                        "SELECT i.token_hash, i.email, i.role, i.invited_by, i.created_at, i.expires_at \
                         FROM invitations i JOIN accounts a ON a.account_row = i.account_row \
                         WHERE a.name = $1 AND i.accepted_at IS NULL AND i.expires_at > $2 \
                         ORDER BY i.created_at, i.token_hash",
                        &[account.as_str().into(), unix_micros_of(now).into()],
                    )
                    .await?
                    .iter()
                    .map(|row| {
                        Ok((
                            hash_column(row, 0)?,
                            invitation_from_row(row, 1, account.clone())?,
                        ))
                    })
                    .collect()
                })
            }))
            .await
    }

    async fn requires_second_factor(&self, account: &AccountId) -> Result<bool, StoreError> {
        let account = account.clone();
        self.database
            .read(Box::new(move |sql| {
                Box::pin(async move {
                    sql.query_optional(
                        "reading sign-in settings",
                        "SELECT s.requires_second_factor FROM account_sign_in_settings s \
                         JOIN accounts a ON a.account_row = s.account_row WHERE a.name = $1",
                        &[account.as_str().into()],
                    )
                    .await?
                    .map_or(Ok(false), |row| row.boolean(0))
                })
            }))
            .await
    }

    async fn set_requires_second_factor(
        &self,
        account: &AccountId,
        required: bool,
    ) -> Result<(), StoreError> {
        const CHANGING: &str = "changing sign-in settings";
        let account = account.clone();
        self.database
            .write(Box::new(move |sql| {
                Box::pin(async move {
                    let account_row = existing_account_row(sql, CHANGING, &account).await?;
                    sql.execute(
                        CHANGING,
                        "INSERT INTO account_sign_in_settings (account_row, requires_second_factor) \
                         VALUES ($1, $2) ON CONFLICT (account_row) \
                         DO UPDATE SET requires_second_factor = excluded.requires_second_factor",
                        &[account_row.into(), required.into()],
                    )
                    .await?;
                    Ok(())
                })
            }))
            .await
    }
}
