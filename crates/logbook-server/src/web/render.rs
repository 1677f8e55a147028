//! Rendering helpers shared by the pages: the common page frame (`Chrome`), the HTML answer with
//! its security headers, the error pages (`WebError`), and `visible`, which makes control,
//! bidi and zero-width characters of event text visible instead of letting the browser obey them.

use std::borrow::Cow;

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use logbook_core::StoreError;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::error::{ApiError, ErrorChain};
use crate::state::AppState;
use crate::web::assets;
use crate::web::session::SignedIn;

/// The page policy: scripts and styles only from Logbook itself, no inline code, no framing.
pub const PAGE_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Event text as it should be shown: every character a browser would act on invisibly (controls,
/// bidi overrides, zero-width characters) replaced by a visible escape such as `\u{202E}`. The
/// template engine then escapes HTML, so markup stays text.
pub fn visible(text: &str) -> Cow<'_, str> {
    logbook_core::terminal_text::escape_for_terminal(text)
}

pub fn utc_text(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// How the footer's help link is written.
pub struct Support {
    pub href: String,
    pub text: String,
}

/// What every page shows around its content.
pub struct Chrome {
    pub title: String,
    pub user_email: Option<String>,
    pub account: Option<String>,
    pub manages_account: bool,
    pub csrf_token: String,
    pub stylesheet_url: &'static str,
    pub script_url: &'static str,
    pub icon_url: &'static str,
    pub support: Option<Support>,
    pub current: &'static str,
    /// The prefix of the page's own links: empty, or `/view/{token}` in the embedded view.
    pub base_path: String,
    /// Set in the embedded view: the platform's look, and no Logbook navigation.
    pub embedded: Option<EmbeddedChrome>,
}

/// What the embedded view shows around its content instead of Logbook's own header.
pub struct EmbeddedChrome {
    /// The platform's product name, or "Activity Logs".
    pub product_name: String,
    pub logo_url: Option<String>,
    /// `light`, `dark` or `auto` (the `data-theme` of the page).
    pub theme: &'static str,
    /// The stylesheet with the platform's accent colour, when it set one.
    pub look_stylesheet_url: Option<String>,
    /// Who the view is for, as the platform named them.
    pub person_label: String,
}

impl EmbeddedChrome {
    pub fn new(
        look: &logbook_core::viewer::EmbedLook,
        person_label: &str,
        base_path: &str,
    ) -> Self {
        Self {
            product_name: look
                .product_name
                .clone()
                .unwrap_or_else(|| "Activity Logs".to_owned()),
            logo_url: look.logo_url.clone(),
            theme: look.theme.unwrap_or_default().as_str(),
            look_stylesheet_url: look
                .accent_colour
                .as_ref()
                .map(|_| format!("{base_path}/look.css")),
            person_label: visible(person_label).into_owned(),
        }
    }
}

impl Chrome {
    pub fn new(
        state: &AppState,
        title: impl Into<String>,
        signed_in: Option<&SignedIn>,
        current: &'static str,
    ) -> Self {
        let support = state
            .settings()
            .support_contact
            .as_deref()
            .and_then(|contact| {
                let contact = contact.trim();
                if contact.starts_with("https://") || contact.starts_with("http://") {
                    Some(Support {
                        href: contact.to_owned(),
                        text: contact.to_owned(),
                    })
                } else if contact.contains('@') && !contact.contains(['<', '>', '"', ' ']) {
                    Some(Support {
                        href: format!("mailto:{contact}"),
                        text: contact.to_owned(),
                    })
                } else {
                    None
                }
            });
        Self {
            title: title.into(),
            user_email: signed_in.map(|signed_in| signed_in.user.email.clone()),
            account: signed_in.map(|signed_in| signed_in.user.account.to_string()),
            manages_account: signed_in
                .is_some_and(|signed_in| signed_in.user.role.manages_account()),
            csrf_token: signed_in
                .map(|signed_in| signed_in.csrf_token.clone())
                .unwrap_or_default(),
            stylesheet_url: assets::stylesheet_url(),
            script_url: assets::script_url(),
            icon_url: assets::icon_url(),
            support,
            current,
            base_path: String::new(),
            embedded: None,
        }
    }
}

/// An HTML answer with the page's headers.
pub fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => {
            let mut response = (status, body).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PAGE_CONTENT_SECURITY_POLICY),
            );
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            response
        }
        Err(error) => {
            tracing::error!(error = %error, "a page could not be rendered");
            crate::error::ApiError::internal(error).into_response()
        }
    }
}

pub fn page(page: &impl Template) -> Response {
    html(StatusCode::OK, page)
}

/// A page that says one thing: an error, or a notice with a link onwards.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage {
    pub chrome: Chrome,
    pub heading: String,
    pub message: String,
    pub hints: Vec<&'static str>,
    pub link_href: &'static str,
    pub link_text: &'static str,
}

/// Why a page could not be answered normally.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("sign-in required")]
    SignInRequired,
    /// The account requires two-factor sign-in and this person has not set it up yet.
    #[error("two-factor sign-in must be set up first")]
    SecondFactorSetupRequired,
    /// A state-changing request from another site, or without this session's CSRF token.
    #[error("cross-site request refused")]
    CrossSite,
    /// Nothing here, or nothing this person may see: the two are never told apart.
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    BadRequest(String),
    /// Too many of one kind of request for now; `retry_after_seconds` goes in `Retry-After`.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_seconds: u64,
    },
    #[error("store error")]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
    /// An embedded-view link that is not (or no longer) a viewer session: used, tampered with,
    /// or never issued. Never told apart, so a guess learns nothing.
    #[error("viewer session not valid")]
    ViewerSessionInvalid,
    /// A viewer session past its end.
    #[error("viewer session ended")]
    ViewerSessionEnded,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let mut retry_after = None;
        let mut link: Option<(&'static str, &'static str)> = Some(("/", "Activity Logs"));
        let (status, heading, message, hints): (StatusCode, &str, String, Vec<&'static str>) =
            match self {
                WebError::SignInRequired => return Redirect::to("/login").into_response(),
                WebError::SecondFactorSetupRequired => {
                    return Redirect::to("/security").into_response();
                }
                WebError::CrossSite => (
                    StatusCode::FORBIDDEN,
                    "This form expired",
                    "The form was sent from another site or from a page that is no longer valid."
                        .into(),
                    vec!["Go back, reload the page and send the form again."],
                ),
                WebError::NotFound => (
                    StatusCode::NOT_FOUND,
                    "Not found",
                    "There is nothing here, or it belongs to another account.".into(),
                    vec!["Check the link, or start again from the Activity Logs."],
                ),
                WebError::Forbidden(message) => (
                    StatusCode::FORBIDDEN,
                    "Not allowed",
                    message.into(),
                    vec!["Ask an owner or admin of your account."],
                ),
                WebError::BadRequest(message) => (
                    StatusCode::BAD_REQUEST,
                    "That did not work",
                    message,
                    vec!["Go back and correct the form."],
                ),
                WebError::TooManyRequests {
                    message,
                    retry_after_seconds,
                } => {
                    retry_after = Some(retry_after_seconds);
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        "Not so fast",
                        message,
                        vec!["Wait a little, then go back and try again."],
                    )
                }
                // Store errors take their status and meaning from the one mapping the API uses
                // (`ApiError::from`), so a page and an API call refuse the same thing the same
                // way (a quota is a 429 or 403 with its reason, not a 500).
                WebError::Store(error) => match ApiError::from(error) {
                    ApiError::Internal(cause) => {
                        tracing::error!(error = %ErrorChain(cause.as_ref()), "a page failed on a store error");
                        (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "Something went wrong",
                            "Logbook could not answer this page.".into(),
                            vec!["Reload the page.", "If it persists, contact your operator."],
                        )
                    }
                    api_error @ (ApiError::StorageFull | ApiError::Unavailable) => (
                        api_error.status(),
                        "Logbook is unavailable",
                        "Logbook cannot read or write its database right now.".into(),
                        vec![
                            "Wait a moment and reload.",
                            "If it persists, contact your operator.",
                        ],
                    ),
                    api_error => (
                        api_error.status(),
                        "That did not work",
                        api_error.to_string(),
                        vec!["Go back and try again later, or ask your operator."],
                    ),
                },
                WebError::ViewerSessionInvalid => {
                    link = None;
                    (
                        StatusCode::NOT_FOUND,
                        "This link does not open anything",
                        "This Activity Logs link was already used, has expired, or is not complete."
                            .into(),
                        vec![
                            "Open Activity Logs again from your console: each link opens once, shortly after it is made.",
                        ],
                    )
                }
                WebError::ViewerSessionEnded => {
                    link = None;
                    (
                        StatusCode::GONE,
                        "This view has ended",
                        "Your Activity Logs session has reached the end of its time.".into(),
                        vec!["Open Activity Logs again from your console to continue."],
                    )
                }
                WebError::Internal(cause) => {
                    tracing::error!(error = %cause, "a page failed");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Something went wrong",
                        "Logbook could not answer this page.".into(),
                        vec!["Reload the page.", "If it persists, contact your operator."],
                    )
                }
            };
        let page = MessagePage {
            chrome: Chrome {
                title: heading.to_owned(),
                user_email: None,
                account: None,
                manages_account: false,
                csrf_token: String::new(),
                stylesheet_url: assets::stylesheet_url(),
                script_url: assets::script_url(),
                icon_url: assets::icon_url(),
                support: None,
                current: "",
                base_path: String::new(),
                embedded: None,
            },
            heading: heading.to_owned(),
            message,
            hints,
            link_href: link.map_or("", |(href, _)| href),
            link_text: link.map_or("", |(_, text)| text),
        };
        let mut response = html(status, &page);
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

impl From<crate::web::password::PasswordError> for WebError {
    fn from(error: crate::web::password::PasswordError) -> Self {
        WebError::Internal(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_bidi_and_zero_width_characters_become_visible() {
        assert_eq!(
            visible("a\u{202e}b\u{200b}c\r\n\u{1b}[31m"),
            "a\\u{202E}b\\u{200B}c\\r\\n\\e[31m"
        );
        assert_eq!(
            visible("<script>{{7*7}}</script>"),
            "<script>{{7*7}}</script>"
        );
    }
}
