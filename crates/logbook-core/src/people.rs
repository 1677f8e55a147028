//! The people of an account and how they sign in: users with a role, browser sessions, one-time
//! recovery codes, invitations and the account's sign-in settings, plus `PeopleStore`, the part of
//! the `Store` that keeps them (reached through `Store::people`).
//!
//! Secrets never reach a store in the clear: session ids, invitation tokens and recovery codes are
//! stored as their SHA-256, passwords as Argon2id PHC strings made by the server.

use std::fmt;
use std::net::IpAddr;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::account::AccountId;

/// What a person may do in their account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Manages members, keys and settings, including who else is an owner.
    Owner,
    /// Manages members (except owners), keys and settings.
    Admin,
    /// Reads the whole account log.
    Viewer,
    /// Reads only the events they performed themselves (`actor.id` equals their email).
    Member,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: roles are owner, admin, viewer and member")]
pub struct InvalidRole(pub String);

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Viewer, Role::Member];

    pub fn parse(text: &str) -> Result<Self, InvalidRole> {
        match text {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            "member" => Ok(Role::Member),
            other => Err(InvalidRole(other.to_owned())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Viewer => "viewer",
            Role::Member => "member",
        }
    }

    /// Owners and admins manage members, keys and settings.
    pub fn manages_account(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    /// Everyone but members reads every event of the account.
    pub fn reads_whole_log(self) -> bool {
        !matches!(self, Role::Member)
    }

    /// Whether a person of this role may give `role` to someone or take it away: only owners
    /// touch owners, so an admin cannot promote themselves or demote the owner.
    pub fn may_assign(self, role: Role) -> bool {
        match self {
            Role::Owner => true,
            Role::Admin => role != Role::Owner,
            Role::Viewer | Role::Member => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// Normalizes an email address for storage and lookup: trimmed and lowercased. Returns `None`
/// when the text cannot be an address (no `@`, spaces, controls, longer than 254 bytes).
pub fn normalize_email(text: &str) -> Option<String> {
    let trimmed = text.trim();
    let (local, domain) = trimmed.split_once('@')?;
    let plausible = !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        // Characters, not bytes: the limit the API's document can state (JSON Schema counts
        // characters).
        && trimmed.chars().count() <= 254
        && !trimmed
            .chars()
            .any(|character| character.is_whitespace() || character.is_control());
    plausible.then(|| trimmed.to_lowercase())
}

/// SHA-256 of a secret token (session id, invitation token, recovery code): what the store keeps.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Public identifier (`usr_...`), used in URLs and sessions.
    pub user_id: crate::ids::UserId,
    pub account: AccountId,
    /// Normalized (see `normalize_email`); also the `actor.id` of the person's own events.
    pub email: String,
    pub role: Role,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// The TOTP secret once two-factor sign-in is turned on.
    pub totp_secret: Option<Vec<u8>>,
    pub created_at: OffsetDateTime,
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("UserRecord")
            .field("user_id", &self.user_id)
            .field("account", &self.account)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("totp_enabled", &self.totp_secret.is_some())
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct NewUser {
    pub user_id: crate::ids::UserId,
    pub account: AccountId,
    pub email: String,
    pub role: Role,
    pub password_hash: String,
    pub created_at: OffsetDateTime,
}

/// A browser session. The session id itself lives only in the person's cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub session_hash: [u8; 32],
    pub user_id: crate::ids::UserId,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    /// Set for the short-lived session between a correct password and a correct second factor:
    /// it may only complete the sign-in.
    pub awaiting_second_factor: bool,
    pub revoked_at: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvitationRecord {
    pub account: AccountId,
    pub email: String,
    pub role: Role,
    pub invited_by: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_and_print_the_four_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Ok(role));
        }
        assert!(Role::parse("root").is_err());
    }

    #[test]
    fn only_owners_may_assign_the_owner_role() {
        assert!(Role::Owner.may_assign(Role::Owner));
        assert!(!Role::Admin.may_assign(Role::Owner));
        assert!(Role::Admin.may_assign(Role::Viewer));
        assert!(!Role::Viewer.may_assign(Role::Member));
    }

    #[test]
    fn emails_are_trimmed_and_lowercased_and_implausible_ones_rejected() {
        assert_eq!(
            normalize_email(" Alice@Example.COM ").as_deref(),
            Some("alice@example.com")
        );
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "a b@example.com",
            "a@b@c",
            "a\u{1b}@x.y",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn debug_of_a_user_never_shows_the_password_hash_or_totp_secret() {
        let user = UserRecord {
            user_id: "usr_1".into(),
            account: AccountId::parse("acme").unwrap(),
            email: "a@b.c".into(),
            role: Role::Owner,
            password_hash: "$argon2id$secret".into(),
            totp_secret: Some(vec![1, 2, 3]),
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        let text = format!("{user:?}");
        assert!(!text.contains("argon2"));
        assert!(!text.contains("[1, 2, 3]"));
    }
}
