//! Password hashing with Argon2id (m = 19 MiB, t = 2, p = 1, OWASP's baseline) on the blocking
//! pool, with a semaphore bounding how many hashes run at once so a burst of sign-ins cannot
//! exhaust memory or CPU. Verifying against an unknown user hashes against a fixed dummy hash, so
//! "no such user" and "wrong password" take comparable time.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

/// Shortest password accepted when one is set.
pub const MIN_PASSWORD_CHARACTERS: usize = 10;
/// Longest password accepted (hashing cost does not depend on it much, but bodies stay small).
pub const MAX_PASSWORD_BYTES: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error("the password hasher is shut down")]
    Closed,
}

pub struct PasswordHasher {
    permits: Semaphore,
    dummy_hash: String,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("constant Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes `password` now, on this thread (for the CLI and for start-up).
pub fn hash_password_blocking(password: &str) -> Result<String, PasswordError> {
    let salt_bytes: [u8; 16] = rand::Rng::random(&mut rand::rng());
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|error| PasswordError::Hashing(error.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| PasswordError::Hashing(error.to_string()))
}

/// Whether a new password is acceptable; the message says what to change.
pub fn check_new_password(password: &str) -> Result<(), &'static str> {
    if password.chars().count() < MIN_PASSWORD_CHARACTERS {
        return Err("a password needs at least 10 characters");
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err("a password holds at most 1024 bytes");
    }
    Ok(())
}

impl PasswordHasher {
    pub fn new(max_concurrent_hashes: usize) -> Self {
        Self {
            permits: Semaphore::new(max_concurrent_hashes.max(1)),
            dummy_hash: hash_password_blocking("logbook dummy password for unknown users")
                .expect("hashing a constant password works"),
        }
    }

    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| PasswordError::Closed)?;
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || hash_password_blocking(&password))
            .await
            .map_err(|error| PasswordError::Hashing(error.to_string()))?
    }

    /// Whether `password` matches `stored_hash`; with no stored hash (unknown user) the password
    /// is checked against the dummy hash and the answer is always false.
    pub async fn verify(&self, password: &str, stored_hash: Option<&str>) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let known_user = stored_hash.is_some();
        let hash = stored_hash.unwrap_or(&self.dummy_hash).to_owned();
        let password = password.to_owned();
        let matched = tokio::task::spawn_blocking(move || {
            let Ok(parsed) = PasswordHash::new(&hash) else {
                return false;
            };
            argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .await
        .unwrap_or(false);
        matched && known_user
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_and_no_other() {
        let hasher = PasswordHasher::new(2);
        let hash = hasher.hash("correct horse battery").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(hasher.verify("correct horse battery", Some(&hash)).await);
        assert!(!hasher.verify("wrong horse battery", Some(&hash)).await);
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies_even_with_the_dummy_password() {
        let hasher = PasswordHasher::new(1);
        assert!(
            !hasher
                .verify("logbook dummy password for unknown users", None)
                .await
        );
    }

    #[test]
    fn short_passwords_are_refused() {
        assert!(check_new_password("short").is_err());
        assert!(check_new_password("long enough password").is_ok());
    }
}
