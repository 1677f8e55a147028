//! Users, sessions, recovery codes, invitations and sign-in settings (`crate::people`), reached
//! through `Store::people`.

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::account::AccountId;
use crate::ids::UserId;
use crate::people::{InvitationRecord, NewUser, Role, SessionRecord, UserRecord};
use crate::store::StoreError;

#[async_trait]
pub trait PeopleStore: Send + Sync {
    /// Errors: `AccountNotFound`, `UserAlreadyExists` (same email in the same account).
    async fn create_user(&self, user: NewUser) -> Result<UserRecord, StoreError>;
    /// Whether any person of any account can sign in (first run: nobody yet).
    async fn any_user_exists(&self) -> Result<bool, StoreError>;
    /// The account's users, by email.
    async fn list_users(&self, account: &AccountId) -> Result<Vec<UserRecord>, StoreError>;
    /// Every user with this (normalized) email, across accounts, by account name.
    async fn find_users_by_email(&self, email: &str) -> Result<Vec<UserRecord>, StoreError>;
    async fn get_user(&self, user_id: &UserId) -> Result<Option<UserRecord>, StoreError>;
    /// Errors: `UserNotFound`.
    async fn set_user_role(&self, user_id: &UserId, role: Role) -> Result<UserRecord, StoreError>;
    /// Replaces the password and revokes every session of the user in the same transaction.
    async fn set_password(
        &self,
        user_id: &UserId,
        password_hash: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Removes the user, their sessions and recovery codes. Errors: `UserNotFound`.
    async fn remove_user(&self, user_id: &UserId) -> Result<UserRecord, StoreError>;
    /// Turns two-factor sign-in on (with its secret and hashed recovery codes) or off (`None`,
    /// which also drops the recovery codes).
    async fn set_totp(
        &self,
        user_id: &UserId,
        secret: Option<(Vec<u8>, Vec<[u8; 32]>)>,
    ) -> Result<(), StoreError>;
    /// Marks one unused recovery code as used; false when it is unknown or used already.
    async fn use_recovery_code(
        &self,
        user_id: &UserId,
        code_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    async fn count_unused_recovery_codes(&self, user_id: &UserId) -> Result<u32, StoreError>;
    /// The hashes of the user's unused recovery codes, in byte order (for `migrate-store`, which
    /// copies them: the codes themselves exist only with the user).
    async fn list_unused_recovery_codes(
        &self,
        user_id: &UserId,
    ) -> Result<Vec<[u8; 32]>, StoreError>;

    async fn create_session(&self, session: SessionRecord) -> Result<(), StoreError>;
    /// The session (revoked or not: the caller checks) with its user.
    async fn find_session(
        &self,
        session_hash: &[u8; 32],
    ) -> Result<Option<(SessionRecord, UserRecord)>, StoreError>;
    async fn touch_session(
        &self,
        session_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Revokes one session of the user (a user can end only their own).
    async fn revoke_session(
        &self,
        user_id: &UserId,
        session_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
    /// The user's sessions that are not revoked, newest activity first.
    async fn list_active_sessions(
        &self,
        user_id: &UserId,
    ) -> Result<Vec<SessionRecord>, StoreError>;

    async fn create_invitation(
        &self,
        token_hash: [u8; 32],
        invitation: InvitationRecord,
    ) -> Result<(), StoreError>;
    /// Consumes the invitation: it answers once, and only before it expires.
    async fn take_invitation(
        &self,
        token_hash: &[u8; 32],
        now: OffsetDateTime,
    ) -> Result<Option<InvitationRecord>, StoreError>;

    /// The account's invitations that are neither accepted nor expired at `now`, with their token
    /// hashes, oldest first (for `migrate-store`, so a sent invitation link keeps working).
    async fn list_pending_invitations(
        &self,
        account: &AccountId,
        now: OffsetDateTime,
    ) -> Result<Vec<([u8; 32], InvitationRecord)>, StoreError>;

    async fn requires_second_factor(&self, account: &AccountId) -> Result<bool, StoreError>;
    async fn set_requires_second_factor(
        &self,
        account: &AccountId,
        required: bool,
    ) -> Result<(), StoreError>;
}
