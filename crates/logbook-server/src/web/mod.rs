//! The web page: sign-in (`login`), browser sessions and CSRF protection (`session`), the
//! Activity Logs page with its details, export and live updates (`activity`) and
//! narrowing it by clicking a value (`narrowing`), team, API key and
//! security pages (`team`, `keys`, `security`), single sign-on with an OpenID provider
//! (`single_sign_on`), alert rules and destinations (`alerts`), audit events of what people do
//! here (`audit`), and the one stylesheet and one ES module embedded in the binary (`assets`),
//! plus the event view's in-browser check of its proof and checkpoint (`browser_verification`,
//! `assets/verify.js`). The embedded view of viewer sessions (`viewer`) serves the same Activity
//! Logs handlers to a `Reader` (`reader`) that is either a signed-in person or the person of a
//! viewer session.
//!
//! Pages are rendered on the server by askama (auto-escaping) so the first page of events needs
//! no script; every page is served with a strict Content-Security-Policy that allows no inline
//! script or style.

pub mod activity;
pub mod alerts;
pub mod assets;
pub mod attention;
pub mod audit;
pub mod browser_verification;
pub mod event_view;
pub mod first_run;
pub mod keys;
pub mod login;
pub mod narrowing;
pub mod networks;
pub mod password;
pub mod reader;
pub mod render;
pub mod security;
pub mod session;
pub mod single_sign_on;
pub mod team;
pub mod throttle;
pub mod timeline;
pub mod viewer;

use crate::state::ServerSettings;

/// What the web pages share beyond the store: the password hasher, the sign-in throttle and the
/// throttle of test deliveries.
pub struct WebServices {
    pub passwords: password::PasswordHasher,
    pub throttle: throttle::LoginThrottle,
    pub first_run: first_run::FirstRunSetup,
    pub test_sends: throttle::TestSendThrottle,
    pub viewer_sessions: viewer::ViewerSessionThrottle,
    /// OpenID providers' discovery documents and keys (`single_sign_on`).
    pub single_sign_on: single_sign_on::Providers,
}

impl WebServices {
    pub fn new(settings: &ServerSettings) -> Self {
        Self {
            passwords: password::PasswordHasher::new(settings.max_concurrent_password_hashes),
            throttle: throttle::LoginThrottle::default(),
            first_run: first_run::FirstRunSetup::default(),
            test_sends: throttle::TestSendThrottle::default(),
            viewer_sessions: viewer::ViewerSessionThrottle::new(&settings.embed),
            single_sign_on: single_sign_on::Providers::new(&settings.delivery),
        }
    }
}
