//! The page's one stylesheet and one ES module, plus the event view's verification module
//! (`verify.js`, see `web::browser_verification`) and the icon every page names (without one,
//! browsers ask for `/favicon.ico` and log its 404 as a console error), embedded in the binary and served under names
//! that carry a hash of their content, so browsers cache them for good (`immutable`) and a new
//! release's files have new names.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::web::render::WebError;

const STYLESHEET: &str = include_str!("assets/app.css");
const SCRIPT: &str = include_str!("assets/app.js");
/// The event view's in-browser check of its inclusion proof and checkpoint
/// (`web::browser_verification`), loaded only by that page.
const VERIFICATION_SCRIPT: &str = include_str!("assets/verify.js");
const ICON: &str = include_str!("assets/icon.svg");

struct Asset {
    url: String,
    body: &'static str,
    content_type: &'static str,
}

fn hashed(name: &str, extension: &str, body: &'static str, content_type: &'static str) -> Asset {
    let digest = Sha256::digest(body.as_bytes());
    let short: String = digest[..6]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Asset {
        url: format!("/assets/{name}-{short}.{extension}"),
        body,
        content_type,
    }
}

fn assets() -> &'static [Asset; 4] {
    static ASSETS: OnceLock<[Asset; 4]> = OnceLock::new();
    ASSETS.get_or_init(|| {
        [
            hashed("app", "css", STYLESHEET, "text/css; charset=utf-8"),
            hashed("app", "js", SCRIPT, "text/javascript; charset=utf-8"),
            hashed(
                "verify",
                "js",
                VERIFICATION_SCRIPT,
                "text/javascript; charset=utf-8",
            ),
            hashed("icon", "svg", ICON, "image/svg+xml"),
        ]
    })
}

pub fn stylesheet_url() -> &'static str {
    &assets()[0].url
}

pub fn script_url() -> &'static str {
    &assets()[1].url
}

pub fn verification_script_url() -> &'static str {
    &assets()[2].url
}

pub fn icon_url() -> &'static str {
    &assets()[3].url
}

/// `GET /assets/{name}`.
pub async fn get(Path(name): Path<String>) -> Result<Response, WebError> {
    let path = format!("/assets/{name}");
    let asset = assets()
        .iter()
        .find(|asset| asset.url == path)
        .ok_or(WebError::NotFound)?;
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    Ok(response)
}
