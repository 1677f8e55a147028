//! API keys: `lbk_` followed by 28 base32 characters (136 random bits). Only the SHA-256 of a key
//! is stored; the key itself is shown once, when it is created.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::account::AccountId;

pub const KEY_PREFIX: &str = "lbk_";

/// What a key may do. `admin` manages accounts, keys, people and limits over the management API:
/// an account's admin key manages that account only, a platform admin key (no account) every
/// account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Scopes {
    pub ingest: bool,
    pub read: bool,
    #[serde(default)]
    pub admin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope {0:?}: scopes are ingest, read and admin, comma-separated")]
pub struct InvalidScope(pub String);

impl Scopes {
    /// Parses a comma-separated list of `ingest`, `read` and `admin` (at least one).
    pub fn parse(text: &str) -> Result<Self, InvalidScope> {
        let mut scopes = Scopes::default();
        for part in text.split(',').map(str::trim) {
            match part {
                "ingest" => scopes.ingest = true,
                "read" => scopes.read = true,
                "admin" => scopes.admin = true,
                other => return Err(InvalidScope(other.to_owned())),
            }
        }
        Ok(scopes)
    }

    /// The scope names that are set, in the order `parse` documents.
    pub fn names(&self) -> Vec<&'static str> {
        [
            ("ingest", self.ingest),
            ("read", self.read),
            ("admin", self.admin),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }

    pub fn is_empty(&self) -> bool {
        !self.ingest && !self.read && !self.admin
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.names().join(","))
    }
}

/// A plaintext key. Its `Debug` never shows the secret.
pub struct PlaintextApiKey(String);

impl PlaintextApiKey {
    /// Makes a new key from 17 bytes of caller-supplied randomness (the caller owns the RNG so
    /// this crate stays free of I/O).
    pub fn from_random_bytes(random: [u8; 17]) -> Self {
        const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
        let mut text = String::with_capacity(KEY_PREFIX.len() + 27);
        text.push_str(KEY_PREFIX);
        let mut bits: u32 = 0;
        let mut bit_count = 0;
        for byte in random {
            bits = (bits << 8) | u32::from(byte);
            bit_count += 8;
            while bit_count >= 5 {
                bit_count -= 5;
                text.push(ALPHABET[((bits >> bit_count) & 31) as usize] as char);
            }
        }
        if bit_count > 0 {
            text.push(ALPHABET[((bits << (5 - bit_count)) & 31) as usize] as char);
        }
        Self(text)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> [u8; 32] {
        hash_presented_key(&self.0)
    }

    /// The first characters, safe to show in lists so people can tell keys apart.
    pub fn display_prefix(&self) -> String {
        self.0.chars().take(KEY_PREFIX.len() + 6).collect()
    }
}

impl fmt::Debug for PlaintextApiKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("PlaintextApiKey(<redacted>)")
    }
}

pub fn hash_presented_key(presented: &str) -> [u8; 32] {
    Sha256::digest(presented.as_bytes()).into()
}

/// Who a key writes and reads for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOwner {
    Account(AccountId),
    /// A platform key writes for any account; each event names its `account`.
    Platform,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Public identifier (`key_...`), used to list and revoke.
    pub key_id: crate::ids::ApiKeyId,
    pub owner: KeyOwner,
    pub scopes: Scopes,
    pub display_prefix: String,
    pub description: Option<String>,
    pub created_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
    /// The newest use the servers have written (`Store::record_api_key_use`); it lags real use by
    /// up to the server's flush interval. `None`: never used, or not written yet.
    pub last_used_at: Option<OffsetDateTime>,
}

impl ApiKeyRecord {
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_typed_prefix_and_130_bits_of_base32() {
        let key = PlaintextApiKey::from_random_bytes([0xff; 17]);
        assert!(key.expose().starts_with("lbk_"));
        assert_eq!(key.expose().len(), 4 + 28);
        assert_ne!(
            PlaintextApiKey::from_random_bytes([1; 17]).hash(),
            PlaintextApiKey::from_random_bytes([2; 17]).hash()
        );
        assert_eq!(format!("{key:?}"), "PlaintextApiKey(<redacted>)");
    }

    #[test]
    fn scopes_parse_alone_and_comma_separated() {
        assert_eq!(
            Scopes::parse("ingest,read").unwrap(),
            Scopes {
                ingest: true,
                read: true,
                admin: false,
            }
        );
        assert_eq!(Scopes::parse("read").unwrap().to_string(), "read");
        assert_eq!(
            Scopes::parse("admin, ingest").unwrap().to_string(),
            "ingest,admin"
        );
        assert!(Scopes::parse("owner").is_err());
    }
}
