//! `PeopleStore` on PostgreSQL: users, sessions, recovery codes, invitations and the account's
//! sign-in settings (tables of migration 0002), on the shared pool. Every node reads sessions from
//! the database, so a session created on one node works on every other, and a logout or password
//! change on one node ends it everywhere.

use std::net::IpAddr;

use async_trait::async_trait;
use logbook_core::people::{
    InvitationRecord, NewUser, PeopleStore, Role, SessionRecord, UserRecord,
};
use logbook_core::{AccountId, StoreError};
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::encoding::{micros_to_time, unix_micros_of};
use crate::errors::database_error;
use crate::{PostgresStore, parse_stored_account};

const USER_COLUMNS: &str =
    "u.user_id, a.name, u.email, u.role, u.password_hash, u.totp_secret, u.created_at";

fn user_from_row(row: &Row) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        user_id: row.get(0),
        account: parse_stored_account(row.get(1))?,
        email: row.get(2),
        role: Role::parse(row.get(3)).map_err(|error| StoreError::Database {
            context: "reading users",
            message: error.to_string(),
        })?,
        password_hash: row.get(4),
        totp_secret: row.get(5),
        created_at: micros_to_time(row.get(6)),
    })
}

async fn select_users(
    client: &tokio_postgres::Client,
    filter: &str,
    parameter: &(dyn ToSql + Sync),
) -> Result<Vec<UserRecord>, StoreError> {
    client
        .query(
            &format!(
                "SELECT {USER_COLUMNS} FROM users u JOIN accounts a ON a.account_row = u.account_row WHERE {filter} ORDER BY a.name, u.email"
            ),
            &[parameter],
        )
        .await
        .map_err(database_error("reading users"))?
        .iter()
        .map(user_from_row)
        .collect()
}

async fn one_user(
    client: &tokio_postgres::Client,
    user_id: &str,
) -> Result<Option<UserRecord>, StoreError> {
    Ok(select_users(client, "u.user_id = $1", &user_id)
        .await?
        .pop())
}

const SESSION_COLUMNS: &str = "s.session_hash, s.user_id, s.created_at, s.last_seen_at, s.ip, s.user_agent, s.awaiting_second_factor, s.revoked_at";

fn session_from_row(row: &Row) -> SessionRecord {
    let hash: Vec<u8> = row.get(0);
    let ip: Option<String> = row.get(4);
    SessionRecord {
        session_hash: hash.try_into().unwrap_or([0; 32]),
        user_id: row.get(1),
        created_at: micros_to_time(row.get(2)),
        last_seen_at: micros_to_time(row.get(3)),
        ip: ip.and_then(|text| text.parse::<IpAddr>().ok()),
        user_agent: row.get(5),
        awaiting_second_factor: row.get(6),
        revoked_at: row.get::<_, Option<i64>>(7).map(micros_to_time),
    }
}

#[async_trait]
impl PeopleStore for PostgresStore {
    async fn create_user(&self, user: NewUser) -> Result<UserRecord, StoreError> {
        let client = self.inner.connection().await?;
        let account_row = self
            .inner
            .account_rows
            .find(&client, &user.account)
            .await?
            .ok_or_else(|| StoreError::AccountNotFound(user.account.clone()))?;
        let inserted = client
            .execute(
                "INSERT INTO users (user_id, account_row, email, role, password_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (account_row, email) DO NOTHING",
                &[
                    &user.user_id,
                    &account_row,
                    &user.email,
                    &user.role.as_str(),
                    &user.password_hash,
                    &unix_micros_of(user.created_at),
                ],
            )
            .await
            .map_err(database_error("creating a user"))?;
        if inserted == 0 {
            return Err(StoreError::UserAlreadyExists {
                account: user.account,
                email: user.email,
            });
        }
        one_user(&client, &user.user_id)
            .await?
            .ok_or(StoreError::UserNotFound(user.user_id))
    }

    async fn list_users(&self, account: &AccountId) -> Result<Vec<UserRecord>, StoreError> {
        let client = self.inner.connection().await?;
        select_users(&client, "a.name = $1", &account.as_str()).await
    }

    async fn find_users_by_email(&self, email: &str) -> Result<Vec<UserRecord>, StoreError> {
        let client = self.inner.connection().await?;
        select_users(&client, "u.email = $1", &email).await
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>, StoreError> {
        let client = self.inner.connection().await?;
        one_user(&client, user_id).await
    }

    async fn set_user_role(&self, user_id: &str, role: Role) -> Result<UserRecord, StoreError> {
        let client = self.inner.connection().await?;
        let updated = client
            .execute(
                "UPDATE users SET role = $2 WHERE user_id = $1",
                &[&user_id, &role.as_str()],
            )
            .await
            .map_err(database_error("changing a role"))?;
        if updated == 0 {
            return Err(StoreError::UserNotFound(user_id.to_owned()));
        }
        one_user(&client, user_id)
            .await?
            .ok_or_else(|| StoreError::UserNotFound(user_id.to_owned()))
    }

    async fn set_password(
        &self,
        user_id: &str,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut client = self.inner.connection().await?;
        let transaction = client
            .transaction()
            .await
            .map_err(database_error("changing a password"))?;
        let updated = transaction
            .execute(
                "UPDATE users SET password_hash = $2 WHERE user_id = $1",
                &[&user_id, &password_hash],
            )
            .await
            .map_err(database_error("changing a password"))?;
        if updated == 0 {
            return Err(StoreError::UserNotFound(user_id.to_owned()));
        }
        transaction
            .execute(
                "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL",
                &[&user_id, &unix_micros_of(now)],
            )
            .await
            .map_err(database_error("ending sessions"))?;
        transaction
            .commit()
            .await
            .map_err(database_error("changing a password"))
    }

    async fn remove_user(&self, user_id: &str) -> Result<UserRecord, StoreError> {
        let client = self.inner.connection().await?;
        let user = one_user(&client, user_id)
            .await?
            .ok_or_else(|| StoreError::UserNotFound(user_id.to_owned()))?;
        // Sessions and recovery codes go with the user (ON DELETE CASCADE).
        client
            .execute("DELETE FROM users WHERE user_id = $1", &[&user_id])
            .await
            .map_err(database_error("removing a user"))?;
        Ok(user)
    }

    async fn set_totp(
        &self,
        user_id: &str,
        secret: Option<(Vec<u8>, Vec<[u8; 32]>)>,
    ) -> Result<(), StoreError> {
        let mut client = self.inner.connection().await?;
        let transaction = client
            .transaction()
            .await
            .map_err(database_error("changing two-factor sign-in"))?;
        let (secret, codes) = match secret {
            Some((secret, codes)) => (Some(secret), codes),
            None => (None, Vec::new()),
        };
        let updated = transaction
            .execute(
                "UPDATE users SET totp_secret = $2 WHERE user_id = $1",
                &[&user_id, &secret],
            )
            .await
            .map_err(database_error("changing two-factor sign-in"))?;
        if updated == 0 {
            return Err(StoreError::UserNotFound(user_id.to_owned()));
        }
        transaction
            .execute("DELETE FROM recovery_codes WHERE user_id = $1", &[&user_id])
            .await
            .map_err(database_error("replacing recovery codes"))?;
        let code_hashes: Vec<&[u8]> = codes.iter().map(|code| code.as_slice()).collect();
        transaction
            .execute(
                "INSERT INTO recovery_codes (user_id, code_hash) SELECT $1, code FROM unnest($2::bytea[]) AS c (code) \
                 ON CONFLICT DO NOTHING",
                &[&user_id, &code_hashes],
            )
            .await
            .map_err(database_error("replacing recovery codes"))?;
        transaction
            .commit()
            .await
            .map_err(database_error("changing two-factor sign-in"))
    }

    async fn use_recovery_code(
        &self,
        user_id: &str,
        code_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let client = self.inner.connection().await?;
        let updated = client
            .execute(
                "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
                &[&user_id, &code_hash.as_slice(), &unix_micros_of(now)],
            )
            .await
            .map_err(database_error("using a recovery code"))?;
        Ok(updated == 1)
    }

    async fn count_unused_recovery_codes(&self, user_id: &str) -> Result<u32, StoreError> {
        let client = self.inner.connection().await?;
        let count: i64 = client
            .query_one(
                "SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
                &[&user_id],
            )
            .await
            .map_err(database_error("counting recovery codes"))?
            .get(0);
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    async fn list_unused_recovery_codes(&self, user_id: &str) -> Result<Vec<[u8; 32]>, StoreError> {
        let client = self.inner.connection().await?;
        let rows = client
            .query(
                "SELECT code_hash FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL ORDER BY code_hash",
                &[&user_id],
            )
            .await
            .map_err(database_error("listing recovery codes"))?;
        Ok(rows
            .iter()
            .filter_map(|row| <[u8; 32]>::try_from(row.get::<_, &[u8]>(0)).ok())
            .collect())
    }

    async fn create_session(&self, session: SessionRecord) -> Result<(), StoreError> {
        let client = self.inner.connection().await?;
        client
            .execute(
                "INSERT INTO sessions (session_hash, user_id, created_at, last_seen_at, ip, user_agent, awaiting_second_factor, revoked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
                &[
                    &session.session_hash.as_slice(),
                    &session.user_id,
                    &unix_micros_of(session.created_at),
                    &unix_micros_of(session.last_seen_at),
                    &session.ip.map(|ip| ip.to_string()),
                    &session.user_agent,
                    &session.awaiting_second_factor,
                ],
            )
            .await
            .map_err(database_error("starting a session"))?;
        Ok(())
    }

    async fn find_session(
        &self,
        session_hash: &[u8; 32],
    ) -> Result<Option<(SessionRecord, UserRecord)>, StoreError> {
        let client = self.inner.connection().await?;
        let session = client
            .query_opt(
                &format!("SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.session_hash = $1"),
                &[&session_hash.as_slice()],
            )
            .await
            .map_err(database_error("reading a session"))?
            .as_ref()
            .map(session_from_row);
        let Some(session) = session else {
            return Ok(None);
        };
        Ok(one_user(&client, &session.user_id)
            .await?
            .map(|user| (session, user)))
    }

    async fn touch_session(
        &self,
        session_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let client = self.inner.connection().await?;
        client
            .execute(
                "UPDATE sessions SET last_seen_at = greatest(last_seen_at, $2) WHERE session_hash = $1",
                &[&session_hash.as_slice(), &unix_micros_of(now)],
            )
            .await
            .map_err(database_error("updating a session"))?;
        Ok(())
    }

    async fn revoke_session(
        &self,
        user_id: &str,
        session_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let client = self.inner.connection().await?;
        let updated = client
            .execute(
                "UPDATE sessions SET revoked_at = $3 WHERE session_hash = $1 AND user_id = $2 AND revoked_at IS NULL",
                &[&session_hash.as_slice(), &user_id, &unix_micros_of(now)],
            )
            .await
            .map_err(database_error("ending a session"))?;
        Ok(updated == 1)
    }

    async fn list_active_sessions(&self, user_id: &str) -> Result<Vec<SessionRecord>, StoreError> {
        let client = self.inner.connection().await?;
        Ok(client
            .query(
                &format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.user_id = $1 AND s.revoked_at IS NULL \
                     AND NOT s.awaiting_second_factor ORDER BY s.last_seen_at DESC"
                ),
                &[&user_id],
            )
            .await
            .map_err(database_error("listing sessions"))?
            .iter()
            .map(session_from_row)
            .collect())
    }

    async fn create_invitation(
        &self,
        token_hash: [u8; 32],
        invitation: InvitationRecord,
    ) -> Result<(), StoreError> {
        let client = self.inner.connection().await?;
        let account_row = self
            .inner
            .account_rows
            .find(&client, &invitation.account)
            .await?
            .ok_or_else(|| StoreError::AccountNotFound(invitation.account.clone()))?;
        client
            .execute(
                "INSERT INTO invitations (token_hash, account_row, email, role, invited_by, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &token_hash.as_slice(),
                    &account_row,
                    &invitation.email,
                    &invitation.role.as_str(),
                    &invitation.invited_by,
                    &unix_micros_of(invitation.created_at),
                    &unix_micros_of(invitation.expires_at),
                ],
            )
            .await
            .map_err(database_error("creating an invitation"))?;
        Ok(())
    }

    async fn take_invitation(
        &self,
        token_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<Option<InvitationRecord>, StoreError> {
        let client = self.inner.connection().await?;
        // One statement consumes the invitation, so two nodes accepting it at once cannot both win.
        let row = client
            .query_opt(
                "UPDATE invitations i SET accepted_at = $2 FROM accounts a \
                 WHERE a.account_row = i.account_row AND i.token_hash = $1 AND i.accepted_at IS NULL AND i.expires_at > $2 \
                 RETURNING a.name, i.email, i.role, i.invited_by, i.created_at, i.expires_at",
                &[&token_hash.as_slice(), &unix_micros_of(now)],
            )
            .await
            .map_err(database_error("accepting an invitation"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(InvitationRecord {
            account: parse_stored_account(row.get(0))?,
            email: row.get(1),
            role: Role::parse(row.get(2)).unwrap_or(Role::Member),
            invited_by: row.get(3),
            created_at: micros_to_time(row.get(4)),
            expires_at: micros_to_time(row.get(5)),
        }))
    }

    async fn list_pending_invitations(
        &self,
        account: &AccountId,
        now: OffsetDateTime,
    ) -> Result<Vec<([u8; 32], InvitationRecord)>, StoreError> {
        let client = self.inner.connection().await?;
        let rows = client
            .query(
                "SELECT i.token_hash, i.email, i.role, i.invited_by, i.created_at, i.expires_at FROM invitations i \
                 JOIN accounts a ON a.account_row = i.account_row \
                 WHERE a.name = $1 AND i.accepted_at IS NULL AND i.expires_at > $2 \
                 ORDER BY i.created_at, i.token_hash",
                &[&account.as_str(), &unix_micros_of(now)],
            )
            .await
            .map_err(database_error("listing invitations"))?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                let token_hash = <[u8; 32]>::try_from(row.get::<_, &[u8]>(0)).ok()?;
                Some((
                    token_hash,
                    InvitationRecord {
                        account: account.clone(),
                        email: row.get(1),
                        role: Role::parse(row.get(2)).unwrap_or(Role::Member),
                        invited_by: row.get(3),
                        created_at: micros_to_time(row.get(4)),
                        expires_at: micros_to_time(row.get(5)),
                    },
                ))
            })
            .collect())
    }

    async fn requires_second_factor(&self, account: &AccountId) -> Result<bool, StoreError> {
        let client = self.inner.connection().await?;
        Ok(client
            .query_opt(
                "SELECT s.requires_second_factor FROM account_sign_in_settings s \
                 JOIN accounts a ON a.account_row = s.account_row WHERE a.name = $1",
                &[&account.as_str()],
            )
            .await
            .map_err(database_error("reading sign-in settings"))?
            .is_some_and(|row| row.get::<_, bool>(0)))
    }

    async fn set_requires_second_factor(
        &self,
        account: &AccountId,
        required: bool,
    ) -> Result<(), StoreError> {
        let client = self.inner.connection().await?;
        let account_row = self
            .inner
            .account_rows
            .find(&client, account)
            .await?
            .ok_or_else(|| StoreError::AccountNotFound(account.clone()))?;
        client
            .execute(
                "INSERT INTO account_sign_in_settings (account_row, requires_second_factor) VALUES ($1, $2) \
                 ON CONFLICT (account_row) DO UPDATE SET requires_second_factor = excluded.requires_second_factor",
                &[&account_row, &required],
            )
            .await
            .map_err(database_error("changing sign-in settings"))?;
        Ok(())
    }
}
