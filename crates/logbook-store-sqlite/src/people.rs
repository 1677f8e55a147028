//! `PeopleStore` on SQLite: users, sessions, recovery codes, invitations and the account's
//! sign-in settings (tables of migration 0002). Writes go through the admin connection, like
//! accounts and keys, so they never queue behind a group commit; reads use the reader pool.

use std::net::IpAddr;

use async_trait::async_trait;
use logbook_core::people::{
    InvitationRecord, NewUser, PeopleStore, Role, SessionRecord, UserRecord,
};
use logbook_core::{AccountId, StoreError};
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;

use crate::encoding::{micros_to_time, unix_micros_of};
use crate::errors::database_error;
use crate::{SqliteStore, account_row, parse_stored_account};

const USER_COLUMNS: &str =
    "u.user_id, a.name, u.email, u.role, u.password_hash, u.totp_secret, u.created_at";

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<UserRow> {
    Ok(UserRow {
        user_id: row.get(0)?,
        account: row.get(1)?,
        email: row.get(2)?,
        role: row.get(3)?,
        password_hash: row.get(4)?,
        totp_secret: row.get(5)?,
        created_at: row.get(6)?,
    })
}

struct UserRow {
    user_id: String,
    account: String,
    email: String,
    role: String,
    password_hash: String,
    totp_secret: Option<Vec<u8>>,
    created_at: i64,
}

impl UserRow {
    fn into_record(self) -> Result<UserRecord, StoreError> {
        Ok(UserRecord {
            user_id: self.user_id,
            account: parse_stored_account(&self.account)?,
            email: self.email,
            role: Role::parse(&self.role).map_err(|error| StoreError::Database {
                context: "reading users",
                message: error.to_string(),
            })?,
            password_hash: self.password_hash,
            totp_secret: self.totp_secret,
            created_at: micros_to_time(self.created_at),
        })
    }
}

fn select_users(
    connection: &Connection,
    filter: &str,
    parameter: &str,
) -> Result<Vec<UserRecord>, StoreError> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users u JOIN accounts a ON a.account_row = u.account_row WHERE {filter} ORDER BY a.name, u.email"
    );
    let mut statement = connection
        .prepare_cached(&sql)
        .map_err(database_error("reading users"))?;
    let rows = statement
        .query_map([parameter], user_from_row)
        .map_err(database_error("reading users"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(database_error("reading users"))?;
    rows.into_iter().map(UserRow::into_record).collect()
}

fn one_user(connection: &Connection, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
    Ok(select_users(connection, "u.user_id = ?1", user_id)?.pop())
}

const SESSION_COLUMNS: &str = "s.session_hash, s.user_id, s.created_at, s.last_seen_at, s.ip, s.user_agent, s.awaiting_second_factor, s.revoked_at";

fn session_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRecord> {
    let hash: Vec<u8> = row.get(0)?;
    let ip: Option<String> = row.get(4)?;
    Ok(SessionRecord {
        session_hash: hash.try_into().unwrap_or([0; 32]),
        user_id: row.get(1)?,
        created_at: micros_to_time(row.get(2)?),
        last_seen_at: micros_to_time(row.get(3)?),
        ip: ip.and_then(|text| text.parse::<IpAddr>().ok()),
        user_agent: row.get(5)?,
        awaiting_second_factor: row.get(6)?,
        revoked_at: row.get::<_, Option<i64>>(7)?.map(micros_to_time),
    })
}

fn revoke_all_sessions(
    connection: &Connection,
    user_id: &str,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    connection
        .execute(
            "UPDATE sessions SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
            params![user_id, unix_micros_of(now)],
        )
        .map_err(database_error("ending sessions"))?;
    Ok(())
}

#[async_trait]
impl PeopleStore for SqliteStore {
    async fn create_user(&self, user: NewUser) -> Result<UserRecord, StoreError> {
        self.inner
            .administer(move |connection| {
                let account_row = account_row(connection, &user.account)?
                    .ok_or_else(|| StoreError::AccountNotFound(user.account.clone()))?;
                let inserted = connection
                    .execute(
                        "INSERT INTO users (user_id, account_row, email, role, password_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                         ON CONFLICT (account_row, email) DO NOTHING",
                        params![
                            user.user_id,
                            account_row,
                            user.email,
                            user.role.as_str(),
                            user.password_hash,
                            unix_micros_of(user.created_at)
                        ],
                    )
                    .map_err(database_error("creating a user"))?;
                if inserted == 0 {
                    return Err(StoreError::UserAlreadyExists { account: user.account, email: user.email });
                }
                one_user(connection, &user.user_id)?.ok_or(StoreError::UserNotFound(user.user_id))
            })
            .await
    }

    async fn list_users(&self, account: &AccountId) -> Result<Vec<UserRecord>, StoreError> {
        let account = account.clone();
        self.inner
            .read(move |connection| select_users(connection, "a.name = ?1", account.as_str()))
            .await
    }

    async fn find_users_by_email(&self, email: &str) -> Result<Vec<UserRecord>, StoreError> {
        let email = email.to_owned();
        self.inner
            .read(move |connection| select_users(connection, "u.email = ?1", &email))
            .await
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
        let user_id = user_id.to_owned();
        self.inner
            .read(move |connection| one_user(connection, &user_id))
            .await
    }

    async fn set_user_role(&self, user_id: &str, role: Role) -> Result<UserRecord, StoreError> {
        let user_id = user_id.to_owned();
        self.inner
            .administer(move |connection| {
                let updated = connection
                    .execute(
                        "UPDATE users SET role = ?2 WHERE user_id = ?1",
                        params![user_id, role.as_str()],
                    )
                    .map_err(database_error("changing a role"))?;
                if updated == 0 {
                    return Err(StoreError::UserNotFound(user_id));
                }
                one_user(connection, &user_id)?.ok_or(StoreError::UserNotFound(user_id))
            })
            .await
    }

    async fn set_password(
        &self,
        user_id: &str,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let user_id = user_id.to_owned();
        let password_hash = password_hash.to_owned();
        self.inner
            .administer(move |connection| {
                let transaction = connection
                    .transaction()
                    .map_err(database_error("changing a password"))?;
                let updated = transaction
                    .execute(
                        "UPDATE users SET password_hash = ?2 WHERE user_id = ?1",
                        params![user_id, password_hash],
                    )
                    .map_err(database_error("changing a password"))?;
                if updated == 0 {
                    return Err(StoreError::UserNotFound(user_id));
                }
                revoke_all_sessions(&transaction, &user_id, now)?;
                transaction
                    .commit()
                    .map_err(database_error("changing a password"))
            })
            .await
    }

    async fn remove_user(&self, user_id: &str) -> Result<UserRecord, StoreError> {
        let user_id = user_id.to_owned();
        self.inner
            .administer(move |connection| {
                let user = one_user(connection, &user_id)?
                    .ok_or_else(|| StoreError::UserNotFound(user_id.clone()))?;
                // Sessions and recovery codes go with the user (ON DELETE CASCADE).
                connection
                    .execute("DELETE FROM users WHERE user_id = ?1", [&user_id])
                    .map_err(database_error("removing a user"))?;
                Ok(user)
            })
            .await
    }

    async fn set_totp(
        &self,
        user_id: &str,
        secret: Option<(Vec<u8>, Vec<[u8; 32]>)>,
    ) -> Result<(), StoreError> {
        let user_id = user_id.to_owned();
        self.inner
            .administer(move |connection| {
                let transaction = connection.transaction().map_err(database_error("changing two-factor sign-in"))?;
                let (secret, codes) = match secret {
                    Some((secret, codes)) => (Some(secret), codes),
                    None => (None, Vec::new()),
                };
                let updated = transaction
                    .execute("UPDATE users SET totp_secret = ?2 WHERE user_id = ?1", params![user_id, secret])
                    .map_err(database_error("changing two-factor sign-in"))?;
                if updated == 0 {
                    return Err(StoreError::UserNotFound(user_id));
                }
                transaction
                    .execute("DELETE FROM recovery_codes WHERE user_id = ?1", [&user_id])
                    .map_err(database_error("replacing recovery codes"))?;
                for code_hash in codes {
                    transaction
                        .execute(
                            "INSERT OR IGNORE INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)",
                            params![user_id, code_hash.as_slice()],
                        )
                        .map_err(database_error("replacing recovery codes"))?;
                }
                transaction.commit().map_err(database_error("changing two-factor sign-in"))
            })
            .await
    }

    async fn use_recovery_code(
        &self,
        user_id: &str,
        code_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let user_id = user_id.to_owned();
        let code_hash = code_hash.to_vec();
        self.inner
            .administer(move |connection| {
                let updated = connection
                    .execute(
                        "UPDATE recovery_codes SET used_at = ?3 WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
                        params![user_id, code_hash, unix_micros_of(now)],
                    )
                    .map_err(database_error("using a recovery code"))?;
                Ok(updated == 1)
            })
            .await
    }

    async fn count_unused_recovery_codes(&self, user_id: &str) -> Result<u32, StoreError> {
        let user_id = user_id.to_owned();
        self.inner
            .read(move |connection| {
                connection
                    .query_row(
                        "SELECT count(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
                        [&user_id],
                        |row| row.get::<_, u32>(0),
                    )
                    .map_err(database_error("counting recovery codes"))
            })
            .await
    }

    async fn list_unused_recovery_codes(&self, user_id: &str) -> Result<Vec<[u8; 32]>, StoreError> {
        let user_id = user_id.to_owned();
        self.inner
            .read(move |connection| {
                let mut statement = connection
                    .prepare_cached(
                        "SELECT code_hash FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL ORDER BY code_hash",
                    )
                    .map_err(database_error("listing recovery codes"))?;
                let hashes = statement
                    .query_map([&user_id], |row| row.get::<_, Vec<u8>>(0))
                    .map_err(database_error("listing recovery codes"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(database_error("listing recovery codes"))?;
                Ok(hashes
                    .into_iter()
                    .filter_map(|hash| <[u8; 32]>::try_from(hash.as_slice()).ok())
                    .collect())
            })
            .await
    }

    async fn create_session(&self, session: SessionRecord) -> Result<(), StoreError> {
        self.inner
            .administer(move |connection| {
                connection
                    .execute(
                        "INSERT INTO sessions (session_hash, user_id, created_at, last_seen_at, ip, user_agent, awaiting_second_factor, revoked_at) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)",
                        params![
                            session.session_hash.as_slice(),
                            session.user_id,
                            unix_micros_of(session.created_at),
                            unix_micros_of(session.last_seen_at),
                            session.ip.map(|ip| ip.to_string()),
                            session.user_agent,
                            session.awaiting_second_factor,
                        ],
                    )
                    .map_err(database_error("starting a session"))?;
                Ok(())
            })
            .await
    }

    async fn find_session(
        &self,
        session_hash: &[u8; 32],
    ) -> Result<Option<(SessionRecord, UserRecord)>, StoreError> {
        let session_hash = session_hash.to_vec();
        self.inner
            .read(move |connection| {
                let session = connection
                    .prepare_cached(&format!(
                        "SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.session_hash = ?1"
                    ))
                    .map_err(database_error("reading a session"))?
                    .query_row([session_hash], session_from_row)
                    .optional()
                    .map_err(database_error("reading a session"))?;
                let Some(session) = session else {
                    return Ok(None);
                };
                Ok(one_user(connection, &session.user_id)?.map(|user| (session, user)))
            })
            .await
    }

    async fn touch_session(
        &self,
        session_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let session_hash = session_hash.to_vec();
        self.inner
            .administer(move |connection| {
                connection
                    .execute(
                        "UPDATE sessions SET last_seen_at = max(last_seen_at, ?2) WHERE session_hash = ?1",
                        params![session_hash, unix_micros_of(now)],
                    )
                    .map_err(database_error("updating a session"))?;
                Ok(())
            })
            .await
    }

    async fn revoke_session(
        &self,
        user_id: &str,
        session_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let user_id = user_id.to_owned();
        let session_hash = session_hash.to_vec();
        self.inner
            .administer(move |connection| {
                let updated = connection
                    .execute(
                        "UPDATE sessions SET revoked_at = ?3 WHERE session_hash = ?1 AND user_id = ?2 AND revoked_at IS NULL",
                        params![session_hash, user_id, unix_micros_of(now)],
                    )
                    .map_err(database_error("ending a session"))?;
                Ok(updated == 1)
            })
            .await
    }

    async fn list_active_sessions(&self, user_id: &str) -> Result<Vec<SessionRecord>, StoreError> {
        let user_id = user_id.to_owned();
        self.inner
            .read(move |connection| {
                connection
                    .prepare_cached(&format!(
                        "SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.user_id = ?1 AND s.revoked_at IS NULL AND s.awaiting_second_factor = 0 ORDER BY s.last_seen_at DESC"
                    ))
                    .map_err(database_error("listing sessions"))?
                    .query_map([user_id], session_from_row)
                    .map_err(database_error("listing sessions"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(database_error("listing sessions"))
            })
            .await
    }

    async fn create_invitation(
        &self,
        token_hash: [u8; 32],
        invitation: InvitationRecord,
    ) -> Result<(), StoreError> {
        self.inner
            .administer(move |connection| {
                let account_row = account_row(connection, &invitation.account)?
                    .ok_or_else(|| StoreError::AccountNotFound(invitation.account.clone()))?;
                connection
                    .execute(
                        "INSERT INTO invitations (token_hash, account_row, email, role, invited_by, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![
                            token_hash.as_slice(),
                            account_row,
                            invitation.email,
                            invitation.role.as_str(),
                            invitation.invited_by,
                            unix_micros_of(invitation.created_at),
                            unix_micros_of(invitation.expires_at),
                        ],
                    )
                    .map_err(database_error("creating an invitation"))?;
                Ok(())
            })
            .await
    }

    async fn take_invitation(
        &self,
        token_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<Option<InvitationRecord>, StoreError> {
        let token_hash = token_hash.to_vec();
        self.inner
            .administer(move |connection| {
                let transaction = connection.transaction().map_err(database_error("accepting an invitation"))?;
                let row = transaction
                    .query_row(
                        "SELECT a.name, i.email, i.role, i.invited_by, i.created_at, i.expires_at FROM invitations i \
                         JOIN accounts a ON a.account_row = i.account_row \
                         WHERE i.token_hash = ?1 AND i.accepted_at IS NULL AND i.expires_at > ?2",
                        params![token_hash, unix_micros_of(now)],
                        |row| {
                            Ok((
                                row.get::<_, String>(0)?,
                                row.get::<_, String>(1)?,
                                row.get::<_, String>(2)?,
                                row.get::<_, String>(3)?,
                                row.get::<_, i64>(4)?,
                                row.get::<_, i64>(5)?,
                            ))
                        },
                    )
                    .optional()
                    .map_err(database_error("accepting an invitation"))?;
                let Some((account, email, role, invited_by, created_at, expires_at)) = row else {
                    return Ok(None);
                };
                transaction
                    .execute(
                        "UPDATE invitations SET accepted_at = ?2 WHERE token_hash = ?1",
                        params![token_hash, unix_micros_of(now)],
                    )
                    .map_err(database_error("accepting an invitation"))?;
                transaction.commit().map_err(database_error("accepting an invitation"))?;
                Ok(Some(InvitationRecord {
                    account: parse_stored_account(&account)?,
                    email,
                    role: Role::parse(&role).unwrap_or(Role::Member),
                    invited_by,
                    created_at: micros_to_time(created_at),
                    expires_at: micros_to_time(expires_at),
                }))
            })
            .await
    }

    async fn list_pending_invitations(
        &self,
        account: &AccountId,
        now: OffsetDateTime,
    ) -> Result<Vec<([u8; 32], InvitationRecord)>, StoreError> {
        let account = account.clone();
        self.inner
            .read(move |connection| {
                let mut statement = connection
                    .prepare_cached(
                        "SELECT i.token_hash, i.email, i.role, i.invited_by, i.created_at, i.expires_at FROM invitations i \
                         JOIN accounts a ON a.account_row = i.account_row \
                         WHERE a.name = ?1 AND i.accepted_at IS NULL AND i.expires_at > ?2 \
                         ORDER BY i.created_at, i.token_hash",
                    )
                    .map_err(database_error("listing invitations"))?;
                let rows = statement
                    .query_map(params![account.as_str(), unix_micros_of(now)], |row| {
                        Ok((
                            row.get::<_, Vec<u8>>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, i64>(4)?,
                            row.get::<_, i64>(5)?,
                        ))
                    })
                    .map_err(database_error("listing invitations"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(database_error("listing invitations"))?;
                Ok(rows
                    .into_iter()
                    .filter_map(|(token_hash, email, role, invited_by, created_at, expires_at)| {
                        let token_hash = <[u8; 32]>::try_from(token_hash.as_slice()).ok()?;
                        Some((
                            token_hash,
                            InvitationRecord {
                                account: account.clone(),
                                email,
                                role: Role::parse(&role).unwrap_or(Role::Member),
                                invited_by,
                                created_at: micros_to_time(created_at),
                                expires_at: micros_to_time(expires_at),
                            },
                        ))
                    })
                    .collect())
            })
            .await
    }

    async fn requires_second_factor(&self, account: &AccountId) -> Result<bool, StoreError> {
        let account = account.clone();
        self.inner
            .read(move |connection| {
                connection
                    .query_row(
                        "SELECT s.requires_second_factor FROM account_sign_in_settings s JOIN accounts a ON a.account_row = s.account_row WHERE a.name = ?1",
                        [account.as_str()],
                        |row| row.get::<_, bool>(0),
                    )
                    .optional()
                    .map(Option::unwrap_or_default)
                    .map_err(database_error("reading sign-in settings"))
            })
            .await
    }

    async fn set_requires_second_factor(
        &self,
        account: &AccountId,
        required: bool,
    ) -> Result<(), StoreError> {
        let account = account.clone();
        self.inner
            .administer(move |connection| {
                let account_row = account_row(connection, &account)?.ok_or_else(|| StoreError::AccountNotFound(account.clone()))?;
                connection
                    .execute(
                        "INSERT INTO account_sign_in_settings (account_row, requires_second_factor) VALUES (?1, ?2) \
                         ON CONFLICT (account_row) DO UPDATE SET requires_second_factor = excluded.requires_second_factor",
                        params![account_row, required],
                    )
                    .map_err(database_error("changing sign-in settings"))?;
                Ok(())
            })
            .await
    }
}
