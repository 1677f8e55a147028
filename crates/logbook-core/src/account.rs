//! The tenant identifier. Every stored row belongs to exactly one account, and the account of a
//! request always comes from the authenticated principal.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A validated account name: `[a-z0-9][a-z0-9._-]{0,62}`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AccountId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "account must match [a-z0-9][a-z0-9._-]{{0,62}} (1 to 63 characters: lowercase letters, digits, '.', '_', '-', starting with a letter or digit)"
)]
pub struct InvalidAccountId;

impl AccountId {
    pub fn parse(text: &str) -> Result<Self, InvalidAccountId> {
        if Self::is_valid(text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidAccountId)
        }
    }

    pub fn is_valid(text: &str) -> bool {
        let bytes = text.as_bytes();
        if bytes.is_empty() || bytes.len() > 63 {
            return false;
        }
        let first_is_alphanumeric = bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit();
        first_is_alphanumeric
            && bytes[1..].iter().all(|byte| {
                byte.is_ascii_lowercase()
                    || byte.is_ascii_digit()
                    || matches!(byte, b'.' | b'_' | b'-')
            })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "AccountId({})", self.0)
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        AccountId::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// What an operator sets per account besides its name, which never changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSettings {
    pub account: AccountId,
    /// A name for people (`Acme Corporation`); `None` shows the account name.
    pub display_name: Option<String>,
    /// Whether the account takes events. A disabled account's ingest is refused (403
    /// `account_ingest_disabled`); everything else, reads included, keeps working.
    pub ingest_enabled: bool,
    pub created_at: time::OffsetDateTime,
}

/// The longest display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 200;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("display_name must be 1 to 200 characters, not only spaces, without control characters")]
pub struct InvalidDisplayName;

/// A display name as kept: trimmed, 1 to `MAX_DISPLAY_NAME_CHARS` characters, no control
/// characters (they would reach terminals and pages).
pub fn validate_display_name(text: &str) -> Result<String, InvalidDisplayName> {
    let trimmed = text.trim();
    // Length and characters are checked on the text as sent (a line break at the end is a
    // control character too, not whitespace to trim away), as the API's document states them.
    if trimmed.is_empty()
        || text.chars().count() > MAX_DISPLAY_NAME_CHARS
        || text.chars().any(char::is_control)
    {
        return Err(InvalidDisplayName);
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_are_trimmed_and_bounded_and_controls_are_refused() {
        assert_eq!(validate_display_name("  Acme Corp ").unwrap(), "Acme Corp");
        assert_eq!(
            validate_display_name("Ünïcødé 株式会社").unwrap(),
            "Ünïcødé 株式会社"
        );
        for bad in ["", "   ", "a\u{7}b", "line\nbreak", &"x".repeat(201)] {
            assert!(validate_display_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn account_names_follow_the_event_model_pattern() {
        for good in ["acme", "a", "0", "acme-corp.eu_1", &"a".repeat(63)] {
            assert!(AccountId::parse(good).is_ok(), "{good} should be accepted");
        }
        for bad in [
            "",
            "Acme",
            "-acme",
            ".acme",
            "ac me",
            "acme/x",
            &"a".repeat(64),
            "é",
        ] {
            assert!(AccountId::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
