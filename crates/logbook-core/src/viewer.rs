//! Viewer sessions: a platform's backend lets one of its customers' people read that customer's
//! Activity Logs inside the platform's own console, without a Logbook account.
//!
//! The backend asks for a session with an admin key and says who the person is as the platform
//! knows them, what they may see (`ViewerScope`), whether they may export, and how long the
//! session may live. Logbook answers a URL that opens it once, within a short time. Opening it
//! turns the one-time ticket into the session itself, whose token then carries every request of
//! the embedded view (see `logbook_server::web::viewer`).
//!
//! How the embedded view looks (`EmbedLook`) and which origins may frame it are settings of the
//! instance and of each account; every value is checked here before it is kept, because each one
//! ends up in a page, a stylesheet or a `Content-Security-Policy` header.

use std::fmt;

use time::OffsetDateTime;

use crate::account::AccountId;
use crate::query::{self, Query};

/// Longest person id, name or email a platform may give (the event model's short-text limit).
pub const MAX_PERSON_TEXT_CHARS: usize = 256;
/// Longest fixed query.
pub const MAX_FIXED_QUERY_BYTES: usize = 2048;
/// Most origins one account (or the instance) may allow to frame the view.
pub const MAX_FRAME_ANCESTORS: usize = 20;
/// Longest product name shown in place of "Logbook".
pub const MAX_PRODUCT_NAME_CHARS: usize = 60;
/// Longest logo URL.
pub const MAX_LOGO_URL_BYTES: usize = 1024;
/// Longest framing origin (ten labels of 63 characters with a scheme and port fit).
pub const MAX_ORIGIN_BYTES: usize = 700;
/// Most dot-separated labels of a framing origin's host name.
pub const MAX_HOST_LABELS: usize = 10;

/// What the person of a viewer session may read of the account's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewerScope {
    /// The whole log.
    WholeLog,
    /// Only the events whose `actor.id` is the person's id, like the `member` role.
    OwnEvents,
    /// The events a fixed query matches; it applies on top of whatever the person types.
    FixedQuery(String),
}

impl ViewerScope {
    /// The scope's stored and wire name: `all`, `own` or `query`.
    pub fn kind(&self) -> &'static str {
        match self {
            ViewerScope::WholeLog => "all",
            ViewerScope::OwnEvents => "own",
            ViewerScope::FixedQuery(_) => "query",
        }
    }

    /// Rebuilds a scope from its kind and fixed query, as the wire and the store carry them.
    pub fn from_parts(kind: &str, fixed_query: Option<&str>) -> Result<Self, ViewerInputError> {
        match (kind, fixed_query) {
            ("all", None) => Ok(ViewerScope::WholeLog),
            ("own", None) => Ok(ViewerScope::OwnEvents),
            ("query", Some(text)) => {
                validate_fixed_query(text)?;
                Ok(ViewerScope::FixedQuery(text.trim().to_owned()))
            }
            ("query", None) => Err(ViewerInputError::new(
                "query",
                "a scope of \"query\" needs the fixed query in \"query\"",
            )),
            ("all" | "own", Some(_)) => Err(ViewerInputError::new(
                "query",
                "a fixed query goes with the scope \"query\" only",
            )),
            _ => Err(ViewerInputError::new(
                "scope",
                "scope must be \"all\", \"own\" or \"query\"",
            )),
        }
    }

    pub fn fixed_query(&self) -> Option<&str> {
        match self {
            ViewerScope::FixedQuery(text) => Some(text),
            _ => None,
        }
    }
}

/// The fixed query of a `query` scope: valid query language, not blank, bounded.
fn validate_fixed_query(text: &str) -> Result<Query, ViewerInputError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ViewerInputError::new(
            "query",
            "the fixed query is empty; use the scope \"all\" for the whole log",
        ));
    }
    if text.len() > MAX_FIXED_QUERY_BYTES {
        return Err(ViewerInputError::new(
            "query",
            format!("the fixed query is longer than {MAX_FIXED_QUERY_BYTES} bytes"),
        ));
    }
    query::parse(text).map_err(|error| {
        ViewerInputError::new(
            "query",
            format!(
                "the fixed query is not valid: {} (at character {})",
                error.message, error.position
            ),
        )
    })
}

/// Who the person is, as the platform knows them.
#[derive(Clone, PartialEq, Eq)]
pub struct ViewerPerson {
    /// The platform's id of the person; with the `own` scope, the `actor.id` of their events.
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
}

impl fmt::Debug for ViewerPerson {
    // Names and emails are personal data: logs show that they are there, not what they are.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ViewerPerson")
            .field("id", &self.id)
            .field("has_name", &self.name.is_some())
            .field("has_email", &self.email.is_some())
            .finish()
    }
}

impl ViewerPerson {
    /// Checks what a platform sent: an id of 1 to 256 characters, and a name and email that a
    /// page can show as they are (no control, bidi or zero-width characters, no markup).
    pub fn validate(
        id: &str,
        name: Option<&str>,
        email: Option<&str>,
    ) -> Result<Self, ViewerInputError> {
        let id = shown_text("person.id", id)?;
        let name = name
            .map(|name| shown_text("person.name", name))
            .transpose()?;
        let email = email
            .map(|email| {
                let email = shown_text("person.email", email)?;
                // The shape the OpenAPI document states: something, `@`, a domain with a dot.
                let well_formed = email
                    .split_once('@')
                    .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
                    && !email.contains(char::is_whitespace);
                if well_formed {
                    Ok(email)
                } else {
                    Err(ViewerInputError::new(
                        "person.email",
                        "person.email must be an email address such as ana@example.com",
                    ))
                }
            })
            .transpose()?;
        Ok(ViewerPerson { id, name, email })
    }

    /// How the person is named in the view and in its events: name, else email, else id.
    pub fn label(&self) -> &str {
        self.name
            .as_deref()
            .or(self.email.as_deref())
            .unwrap_or(&self.id)
    }
}

/// Text a platform gives about a person, refused when a page or terminal would not show it as
/// it is: controls, bidi overrides and zero-width characters (outside joined emoji and scripts),
/// and angle brackets, which have no place in a name and are the first sign of injected markup.
/// It is kept exactly as sent, so spaces at either end are refused rather than trimmed.
fn shown_text(field: &'static str, text: &str) -> Result<String, ViewerInputError> {
    if text.is_empty() {
        return Err(ViewerInputError::new(field, format!("{field} is empty")));
    }
    if text.chars().count() > MAX_PERSON_TEXT_CHARS {
        return Err(ViewerInputError::new(
            field,
            format!("{field} is longer than {MAX_PERSON_TEXT_CHARS} characters"),
        ));
    }
    if text.starts_with(char::is_whitespace) || text.ends_with(char::is_whitespace) {
        return Err(ViewerInputError::new(
            field,
            format!("{field} starts or ends with a space"),
        ));
    }
    let invisible = crate::terminal_text::escape_for_terminal(text) != text;
    if invisible || text.contains(['<', '>']) {
        return Err(ViewerInputError::new(
            field,
            format!(
                "{field} holds control, bidi, zero-width or markup characters (< >), which are refused"
            ),
        ));
    }
    Ok(text.to_owned())
}

/// A refused value, with the field of the request it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ViewerInputError {
    pub field: &'static str,
    pub message: String,
}

impl ViewerInputError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// A viewer session as asked for, before it is stored. The ticket and the token are kept only
/// as SHA-256 hashes, so a copy of the database opens nothing.
#[derive(Debug, Clone)]
pub struct NewViewerSession {
    pub viewer_session_id: String,
    pub account: AccountId,
    pub person: ViewerPerson,
    pub scope: ViewerScope,
    pub may_export: bool,
    /// The key that asked for it.
    pub created_by: String,
    pub created_at: OffsetDateTime,
    /// The one-time URL works until then.
    pub open_by: OffsetDateTime,
    /// The session ends then, however active.
    pub expires_at: OffsetDateTime,
    pub ticket_hash: [u8; 32],
}

/// A stored viewer session.
#[derive(Debug, Clone)]
pub struct ViewerSessionRecord {
    pub viewer_session_id: String,
    pub account: AccountId,
    pub person: ViewerPerson,
    pub scope: ViewerScope,
    pub may_export: bool,
    pub created_by: String,
    pub created_at: OffsetDateTime,
    pub open_by: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub opened_at: Option<OffsetDateTime>,
}

/// Light, dark, or whatever the person's system prefers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Theme {
    #[default]
    Auto,
    Light,
    Dark,
}

impl Theme {
    pub fn parse(text: &str) -> Result<Self, ViewerInputError> {
        match text {
            "auto" => Ok(Theme::Auto),
            "light" => Ok(Theme::Light),
            "dark" => Ok(Theme::Dark),
            _ => Err(ViewerInputError::new(
                "theme",
                "theme must be \"light\", \"dark\" or \"auto\"",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Theme::Auto => "auto",
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }
}

/// How the embedded view looks and who may frame it: the instance's settings, or an account's.
/// An account's value, where it sets one, wins over the instance's (`EmbedLook::over`), except
/// the framing origins, which add up.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EmbedLook {
    /// Origins (`https://console.example.com`) allowed to put the view in an `<iframe>`.
    pub frame_ancestors: Vec<String>,
    /// Shown in place of "Logbook".
    pub product_name: Option<String>,
    /// `#rrggbb`.
    pub accent_colour: Option<String>,
    pub theme: Option<Theme>,
    /// An https URL of an image.
    pub logo_url: Option<String>,
}

impl EmbedLook {
    /// Checks every value, naming the field of the first that is refused.
    pub fn validate(
        frame_ancestors: &[String],
        product_name: Option<&str>,
        accent_colour: Option<&str>,
        theme: Option<&str>,
        logo_url: Option<&str>,
    ) -> Result<Self, ViewerInputError> {
        if frame_ancestors.len() > MAX_FRAME_ANCESTORS {
            return Err(ViewerInputError::new(
                "frame_ancestors",
                format!("at most {MAX_FRAME_ANCESTORS} origins may frame the view"),
            ));
        }
        let frame_ancestors = frame_ancestors
            .iter()
            .map(|origin| validate_origin(origin))
            .collect::<Result<Vec<_>, _>>()?;
        let product_name = product_name
            .map(|name| {
                let invisible = crate::terminal_text::escape_for_terminal(name) != name;
                if name.is_empty()
                    || name.chars().count() > MAX_PRODUCT_NAME_CHARS
                    || name.starts_with(char::is_whitespace)
                    || name.ends_with(char::is_whitespace)
                    || invisible
                    || name.contains(['<', '>'])
                {
                    Err(ViewerInputError::new(
                        "product_name",
                        format!(
                            "product_name must be 1 to {MAX_PRODUCT_NAME_CHARS} characters, without spaces at either end or control, bidi, zero-width or markup characters"
                        ),
                    ))
                } else {
                    Ok(name.to_owned())
                }
            })
            .transpose()?;
        let accent_colour = accent_colour.map(validate_colour).transpose()?;
        let theme = theme.map(Theme::parse).transpose()?;
        let logo_url = logo_url.map(validate_logo_url).transpose()?;
        Ok(EmbedLook {
            frame_ancestors,
            product_name,
            accent_colour,
            theme,
            logo_url,
        })
    }

    /// This (an account's) look over `instance`'s: each value set here wins; framing origins of
    /// both apply.
    pub fn over(&self, instance: &EmbedLook) -> EmbedLook {
        let mut frame_ancestors = instance.frame_ancestors.clone();
        for origin in &self.frame_ancestors {
            if !frame_ancestors.contains(origin) {
                frame_ancestors.push(origin.clone());
            }
        }
        EmbedLook {
            frame_ancestors,
            product_name: self
                .product_name
                .clone()
                .or_else(|| instance.product_name.clone()),
            accent_colour: self
                .accent_colour
                .clone()
                .or_else(|| instance.accent_colour.clone()),
            theme: self.theme.or(instance.theme),
            logo_url: self.logo_url.clone().or_else(|| instance.logo_url.clone()),
        }
    }

    /// The origin of the logo URL, which the view's `img-src` must allow.
    pub fn logo_origin(&self) -> Option<String> {
        self.logo_url.as_deref().and_then(origin_of)
    }
}

/// `scheme://host[:port]` of an http(s) URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{scheme}://{authority}"))
}

/// A framing origin: `https://host[:port]`, or `http://` for loopback and `localhost` (a
/// platform's development console), optionally with one trailing `/`, kept without it. Nothing else reaches the `frame-ancestors` directive, so a
/// value cannot add a directive or a wildcard.
pub fn validate_origin(text: &str) -> Result<String, ViewerInputError> {
    let refuse = || {
        ViewerInputError::new(
            "frame_ancestors",
            format!(
                "{:?} is not an origin: write https://host or https://host:port (http:// only for localhost and 127.0.0.1), without a path",
                crate::terminal_text::escape_for_terminal(text)
            ),
        )
    };
    if text.len() > MAX_ORIGIN_BYTES {
        return Err(refuse());
    }
    let text = text.strip_suffix('/').unwrap_or(text);
    let (scheme, authority) = text.split_once("://").ok_or_else(refuse)?;
    // `[::1]:8080` keeps its brackets; any other authority splits at its one colon.
    let (host, port) = if let Some(after_bracket) = authority.find(']') {
        let (host, rest) = authority.split_at(after_bracket + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':').ok_or_else(refuse)?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if let Some(port) = port
        && (port.is_empty() || port.len() > 5 || !port.bytes().all(|byte| byte.is_ascii_digit()))
    {
        return Err(refuse());
    }
    let host_is_name = !host.is_empty()
        && host.split('.').count() <= MAX_HOST_LABELS
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        });
    let loopback = host == "localhost" || host == "127.0.0.1" || host == "[::1]";
    let allowed_scheme = scheme == "https" || (scheme == "http" && loopback);
    if !allowed_scheme || !(host_is_name || loopback) {
        return Err(refuse());
    }
    let host = host.to_ascii_lowercase();
    Ok(match port {
        Some(port) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    })
}

/// An accent colour: `#rgb` or `#rrggbb`, kept as lowercase `#rrggbb`.
pub fn validate_colour(text: &str) -> Result<String, ViewerInputError> {
    let refuse = || {
        ViewerInputError::new(
            "accent_colour",
            "accent_colour must be a colour written #rrggbb or #rgb",
        )
    };
    let digits = text.strip_prefix('#').ok_or_else(refuse)?;
    if !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(refuse());
    }
    let digits = digits.to_ascii_lowercase();
    match digits.len() {
        6 => Ok(format!("#{digits}")),
        3 => Ok(format!(
            "#{}",
            digits
                .chars()
                .flat_map(|digit| [digit, digit])
                .collect::<String>()
        )),
        _ => Err(refuse()),
    }
}

/// A logo: an https URL without quotes, spaces, backslashes or controls (it goes in an `src`
/// attribute and its origin in `img-src`).
pub fn validate_logo_url(text: &str) -> Result<String, ViewerInputError> {
    let refuse = || {
        ViewerInputError::new(
            "logo_url",
            "logo_url must be an https:// URL of an image, without spaces or quotes",
        )
    };
    if text.len() > MAX_LOGO_URL_BYTES
        || text.chars().any(|character| {
            character.is_whitespace()
                || character.is_control()
                || matches!(character, '"' | '\'' | '\\' | '<' | '>' | ';' | ',')
        })
    {
        return Err(refuse());
    }
    let rest = text.strip_prefix("https://").ok_or_else(refuse)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(refuse());
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_is_all_own_or_a_valid_fixed_query() {
        assert_eq!(
            ViewerScope::from_parts("all", None),
            Ok(ViewerScope::WholeLog)
        );
        assert_eq!(
            ViewerScope::from_parts("query", Some(" target:srv-123 ")),
            Ok(ViewerScope::FixedQuery("target:srv-123".into()))
        );
        assert_eq!(
            ViewerScope::from_parts("query", Some("created:>=tomorrowish"))
                .unwrap_err()
                .field,
            "query"
        );
        assert_eq!(
            ViewerScope::from_parts("everything", None)
                .unwrap_err()
                .field,
            "scope"
        );
        assert_eq!(
            ViewerScope::from_parts("own", Some("x")).unwrap_err().field,
            "query"
        );
    }

    #[test]
    fn hostile_or_overlong_person_text_is_refused_with_its_field() {
        assert!(ViewerPerson::validate("u-1", Some("Ana Lima"), Some("ana@acme.com")).is_ok());
        assert!(ViewerPerson::validate("u-1", Some("Zoë 👩‍💻"), None).is_ok());
        for (name, why) in [
            ("<script>alert(1)</script>", "markup"),
            ("Ana\u{202e}moc.evil", "bidi override"),
            ("Ana\u{1b}[31m", "terminal escape"),
            ("a\u{200b}b", "zero-width space"),
        ] {
            let error = ViewerPerson::validate("u-1", Some(name), None).expect_err(why);
            assert_eq!(error.field, "person.name", "{why}");
        }
        let long = "x".repeat(MAX_PERSON_TEXT_CHARS + 1);
        assert_eq!(
            ViewerPerson::validate(&long, None, None).unwrap_err().field,
            "person.id"
        );
        assert_eq!(
            ViewerPerson::validate("u", None, Some("not an email"))
                .unwrap_err()
                .field,
            "person.email"
        );
    }

    #[test]
    fn only_plain_origins_may_frame_the_view() {
        assert_eq!(
            validate_origin("https://Console.Example.com/").unwrap(),
            "https://console.example.com"
        );
        assert_eq!(
            validate_origin("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        for hostile in [
            "*",
            "https://*.example.com",
            "http://example.com",
            "https://example.com; script-src *",
            "https://example.com/path",
            "javascript:alert(1)",
            "https://exa mple.com",
            "'self'",
            "https://example.com:99999x",
        ] {
            assert!(validate_origin(hostile).is_err(), "{hostile}");
        }
    }

    #[test]
    fn a_colour_is_a_colour_and_a_logo_is_an_https_url() {
        assert_eq!(validate_colour("#0A7").unwrap(), "#00aa77");
        assert_eq!(validate_colour("#1f6feb").unwrap(), "#1f6feb");
        for hostile in [
            "red",
            "#12345",
            "#1234567",
            "#12g",
            "#fff;}body{x:y",
            "url(x)",
        ] {
            assert!(validate_colour(hostile).is_err(), "{hostile}");
        }
        assert!(validate_logo_url("https://cdn.example.com/logo.svg").is_ok());
        for hostile in [
            "http://cdn.example.com/logo.svg",
            "javascript:alert(1)",
            "https://x.com/a\" onerror=\"alert(1)",
            "data:image/svg+xml,<svg onload=alert(1)>",
            "https://user@x.com/logo.png",
        ] {
            assert!(validate_logo_url(hostile).is_err(), "{hostile}");
        }
    }

    #[test]
    fn an_accounts_look_wins_over_the_instances_and_framing_origins_add_up() {
        let instance = EmbedLook {
            frame_ancestors: vec!["https://a.example".into()],
            product_name: Some("Cloud".into()),
            accent_colour: Some("#111111".into()),
            theme: Some(Theme::Dark),
            logo_url: None,
        };
        let account = EmbedLook {
            frame_ancestors: vec!["https://b.example".into(), "https://a.example".into()],
            accent_colour: Some("#222222".into()),
            ..EmbedLook::default()
        };
        let look = account.over(&instance);
        assert_eq!(
            look.frame_ancestors,
            vec![
                "https://a.example".to_owned(),
                "https://b.example".to_owned()
            ]
        );
        assert_eq!(look.product_name.as_deref(), Some("Cloud"));
        assert_eq!(look.accent_colour.as_deref(), Some("#222222"));
        assert_eq!(look.theme, Some(Theme::Dark));
    }
}
