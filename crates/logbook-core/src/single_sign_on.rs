//! Single sign-on with an OpenID Connect provider: what an account (or the whole instance, from
//! the configuration file) says about it (`SingleSignOnSettings`), the validation rules of those
//! settings, and the one-time sign-in attempt (`SignInAttempt`) that ties a provider's answer to
//! the browser that started the sign-in. The protocol itself lives in the server
//! (`logbook_server::web::single_sign_on`); the store keeps these records
//! (`crate::store::SingleSignOnStore`).

use std::fmt;

use time::OffsetDateTime;

use crate::account::AccountId;
use crate::people::Role;

/// Longest provider name shown on the sign-in button.
pub const MAX_DISPLAY_NAME_CHARACTERS: usize = 64;
/// Longest issuer URL, client id and client secret accepted.
pub const MAX_SETTING_CHARACTERS: usize = 2048;
/// How long a started sign-in may take at the provider before its answer is refused.
pub const SIGN_IN_ATTEMPT_LIFETIME: time::Duration = time::Duration::minutes(10);

/// A client secret: never printed, never logged, never returned by the API.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("ClientSecret(<redacted>)")
    }
}

/// How an account's people may sign in with a provider, and what happens to someone new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingleSignOnSettings {
    /// Shown on the sign-in page: "Sign in with <display_name>".
    pub display_name: String,
    /// The provider's issuer URL; discovery reads `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: ClientSecret,
    /// The role of a person created by their first sign-in.
    pub default_role: Role,
    /// Only people who are already users of the account (or were invited) may sign in; nobody
    /// is created by signing in.
    pub invited_only: bool,
    /// Whether the account's people may still sign in with a password.
    pub password_sign_in_allowed: bool,
}

/// A setting that cannot be accepted, with the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SettingError {
    pub field: &'static str,
    pub message: String,
}

fn refuse(field: &'static str, message: impl Into<String>) -> SettingError {
    SettingError {
        field,
        message: message.into(),
    }
}

impl SingleSignOnSettings {
    /// Checks every field; the first problem is returned with its field name.
    pub fn validate(&self) -> Result<(), SettingError> {
        // Kept exactly as given (the API's document states this shape), so spaces at either end
        // are refused rather than trimmed.
        let name = self.display_name.as_str();
        if name.trim().is_empty() {
            return Err(refuse("display_name", "a provider name is required"));
        }
        if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
            return Err(refuse("display_name", "no spaces at either end"));
        }
        if name.chars().count() > MAX_DISPLAY_NAME_CHARACTERS {
            return Err(refuse(
                "display_name",
                format!("at most {MAX_DISPLAY_NAME_CHARACTERS} characters"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(refuse("display_name", "control characters are not allowed"));
        }
        check_issuer(&self.issuer).map_err(|message| refuse("issuer", message))?;
        check_plain_text("client_id", &self.client_id)?;
        check_plain_text("client_secret", self.client_secret.expose())?;
        Ok(())
    }
}

fn check_plain_text(field: &'static str, text: &str) -> Result<(), SettingError> {
    if text.is_empty() {
        return Err(refuse(field, "required"));
    }
    if text.chars().count() > MAX_SETTING_CHARACTERS {
        return Err(refuse(
            field,
            format!("at most {MAX_SETTING_CHARACTERS} characters"),
        ));
    }
    if text.chars().any(|character| character.is_control()) {
        return Err(refuse(field, "control characters are not allowed"));
    }
    Ok(())
}

/// An issuer must be an `https://` URL without query or fragment; plain `http://` is accepted
/// only for a loopback host (a provider on the same machine: tests and local trials), because
/// the provider's keys and tokens would otherwise cross the network unprotected.
pub fn check_issuer(issuer: &str) -> Result<(), String> {
    if issuer.is_empty() {
        return Err("an issuer URL is required".into());
    }
    if issuer.chars().count() > MAX_SETTING_CHARACTERS {
        return Err(format!("at most {MAX_SETTING_CHARACTERS} characters"));
    }
    if issuer.contains(['?', '#']) || issuer.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("an issuer URL has no query, fragment or spaces".into());
    }
    let (scheme, rest) = issuer
        .split_once("://")
        .ok_or_else(|| "an issuer is a URL such as https://accounts.google.com".to_owned())?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err("the issuer URL needs a host (and no user name)".into());
    }
    match scheme {
        "https" => Ok(()),
        "http" if is_loopback_authority(authority) => Ok(()),
        "http" => Err(
            "the issuer must use https (plain http only for a provider on 127.0.0.1 or localhost)"
                .into(),
        ),
        _ => Err("the issuer must be an https:// URL".into()),
    }
}

/// `localhost`, `127.0.0.1` or `[::1]`, optionally with a port of 1 to 5 digits: the only hosts a
/// plain `http://` issuer may name.
fn is_loopback_authority(authority: &str) -> bool {
    let (host, port) = if let Some(after_host) = authority.strip_prefix("[::1]") {
        ("[::1]", after_host)
    } else {
        match authority.find(':') {
            Some(colon) => authority.split_at(colon),
            None => (authority, ""),
        }
    };
    let port_is_fine = match port.strip_prefix(':') {
        None => port.is_empty(),
        Some(digits) => {
            (1..=5).contains(&digits.len()) && digits.bytes().all(|byte| byte.is_ascii_digit())
        }
    };
    matches!(host, "localhost" | "127.0.0.1" | "[::1]") && port_is_fine
}

/// A sign-in started at a provider and not finished yet. The `state` sent to the provider and
/// the random value in the browser's cookie are kept only as SHA-256 hashes; the attempt is
/// taken (deleted) by the first answer that names it, so a `state` works once.
#[derive(Clone, PartialEq, Eq)]
pub struct SignInAttempt {
    pub state_hash: [u8; 32],
    /// SHA-256 of the random value in the browser's short-lived cookie.
    pub browser_hash: [u8; 32],
    pub account: AccountId,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier the code exchange must present.
    pub pkce_verifier: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl fmt::Debug for SignInAttempt {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SignInAttempt")
            .field("account", &self.account)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SingleSignOnSettings {
        SingleSignOnSettings {
            display_name: "Okta".into(),
            issuer: "https://example.okta.com".into(),
            client_id: "0oa1".into(),
            client_secret: ClientSecret::new("s3cret"),
            default_role: Role::Viewer,
            invited_only: false,
            password_sign_in_allowed: true,
        }
    }

    #[test]
    fn an_https_issuer_and_a_loopback_http_issuer_are_accepted() {
        for issuer in [
            "https://accounts.google.com",
            "https://login.microsoftonline.com/tenant-id/v2.0",
            "http://127.0.0.1:4000",
            "http://localhost:4000/",
            "http://[::1]:4000",
        ] {
            assert_eq!(check_issuer(issuer), Ok(()), "{issuer}");
        }
    }

    #[test]
    fn plain_http_to_another_host_and_other_schemes_are_refused() {
        for issuer in [
            "",
            "http://idp.example.com",
            "http://127.0.0.1.example.com",
            "http://127.0.0.2:4000",
            "http://localhost:abc",
            "ftp://idp.example.com",
            "accounts.google.com",
            "https://",
            "https://user@idp.example.com",
            "https://idp.example.com/?x=1",
            "https://idp.example.com/#x",
        ] {
            assert!(check_issuer(issuer).is_err(), "{issuer}");
        }
    }

    #[test]
    fn each_bad_field_is_named_in_the_refusal() {
        let mut bad = settings();
        bad.display_name = "  ".into();
        assert_eq!(bad.validate().unwrap_err().field, "display_name");
        let mut bad = settings();
        bad.display_name = "x".repeat(65);
        assert_eq!(bad.validate().unwrap_err().field, "display_name");
        let mut bad = settings();
        bad.display_name = " Okta".into();
        assert_eq!(bad.validate().unwrap_err().field, "display_name");
        let mut bad = settings();
        bad.issuer = "http://idp.example.com".into();
        assert_eq!(bad.validate().unwrap_err().field, "issuer");
        let mut bad = settings();
        bad.client_id = String::new();
        assert_eq!(bad.validate().unwrap_err().field, "client_id");
        let mut bad = settings();
        bad.client_secret = ClientSecret::new("a\nb");
        assert_eq!(bad.validate().unwrap_err().field, "client_secret");
        assert_eq!(settings().validate(), Ok(()));
    }

    #[test]
    fn debug_of_settings_never_shows_the_client_secret() {
        let text = format!("{:?}", settings());
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("redacted"));
    }
}
