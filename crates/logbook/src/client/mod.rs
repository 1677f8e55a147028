//! The HTTP client commands (`send`, `query`, `tail`, `export`), which talk to `--server` through
//! the `logbook-client` crate (`logbook_client`), with the API key from `LOGBOOK_KEY`; the
//! server's error body shows as `error: <code>: <message> (field <field>)`. `ApiClient` is the
//! plain HTTP connection `verify --since-checkpoint` uses for the checkpoint and proof endpoints,
//! which the client crate does not cover.
//!
//! The key comes only from the environment, never from a flag, so it stays out of shell history
//! and of the process list that any local user can read.

pub mod export;
pub mod manage;
pub mod query;
pub mod send;
pub mod tail;

use std::fmt;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::Deserialize;

use crate::config::Config;
use crate::output::inert;

pub const KEY_VARIABLE: &str = "LOGBOOK_KEY";

/// An API key as presented to the server. Its `Debug` never shows it.
pub struct ApiKeySecret(String);

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("ApiKeySecret(<redacted>)")
    }
}

impl ApiKeySecret {
    pub fn from_environment() -> Result<Self> {
        match std::env::var(KEY_VARIABLE) {
            Ok(key) if !key.trim().is_empty() => Ok(Self(key.trim().to_owned())),
            _ => bail!(
                "{KEY_VARIABLE} is not set: export the API key in {KEY_VARIABLE} (it is never taken as a flag, so it stays out of shell history)"
            ),
        }
    }
}

/// A `logbook_client::Client` for `--server` with the key from `LOGBOOK_KEY`, sending as
/// `logbook-cli/<version>`.
pub fn logbook_client(
    config: &Config,
    key: &ApiKeySecret,
    configure: impl FnOnce(logbook_client::ClientBuilder) -> logbook_client::ClientBuilder,
) -> Result<logbook_client::Client> {
    let builder = logbook_client::Client::builder(config.server.trim_end_matches('/'), &key.0)
        .user_agent(concat!("logbook-cli/", env!("CARGO_PKG_VERSION")));
    configure(builder)
        .build()
        .with_context(|| format!("--server {:?} is not a URL", config.server))
}

/// A server's error detail as the terminal shows it: every part made inert.
pub fn describe_detail(detail: &logbook_client::ErrorDetail) -> String {
    ErrorDetail {
        code: detail.code.clone(),
        message: detail.message.clone(),
        field: detail.field.clone(),
    }
    .to_string()
}

/// A connection to one Logbook server with one key.
#[derive(Debug)]
pub struct ApiClient {
    http: reqwest::Client,
    /// The server URL without a trailing slash, so paths can be appended (a server behind a
    /// reverse proxy may live under a path prefix).
    base_url: String,
    key: ApiKeySecret,
}

impl ApiClient {
    pub fn from_config(config: &Config) -> Result<Self> {
        let key = ApiKeySecret::from_environment()?;
        let base_url = config.server.trim_end_matches('/').to_owned();
        reqwest::Url::parse(&base_url)
            .with_context(|| format!("--server {base_url:?} is not a URL"))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("logbook-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("could not build the HTTP client")?;
        Ok(Self {
            http,
            base_url,
            key,
        })
    }

    pub fn server(&self) -> &str {
        &self.base_url
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.http
            .get(format!("{}{path}", self.base_url))
            .bearer_auth(&self.key.0)
    }
}

/// The stable error body of every Logbook answer: `{"error":{"code","message","field"}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub field: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

impl fmt::Display for ErrorDetail {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The message may echo request text (a query term); it is made inert when printed.
        write!(formatter, "{}: {}", inert(&self.code), inert(&self.message))?;
        if let Some(field) = self.field.as_deref().filter(|field| !field.is_empty()) {
            write!(formatter, " (field {})", inert(field))?;
        }
        Ok(())
    }
}

/// An answer from the server that was not a success.
#[derive(Debug)]
pub struct ServerError {
    pub status: StatusCode,
    pub detail: Option<ErrorDetail>,
}

impl fmt::Display for ServerError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.detail {
            Some(detail) => detail.fmt(formatter),
            None => write!(formatter, "the server answered {}", self.status),
        }
    }
}

impl std::error::Error for ServerError {}

impl ServerError {
    /// Reads a failed answer's body for the standard error object.
    pub async fn from_response(response: Response) -> Self {
        let status = response.status();
        let detail = match response.bytes().await {
            Ok(body) => serde_json::from_slice::<ErrorBody>(&body)
                .ok()
                .map(|body| body.error),
            Err(_) => None,
        };
        Self { status, detail }
    }
}

/// Turns a failed answer into an error; passes a successful one through.
pub async fn ensure_success(response: Response) -> Result<Response> {
    if response.status().is_success() {
        Ok(response)
    } else {
        Err(ServerError::from_response(response).await.into())
    }
}

/// A connection failure with the server named, so "connection refused" says where.
pub fn connection_error(client: &ApiClient, error: reqwest::Error) -> anyhow::Error {
    anyhow::Error::new(error).context(format!(
        "could not reach the Logbook server at {}",
        client.server()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_read_as_code_message_and_field() {
        let detail = ErrorDetail {
            code: "invalid_field".into(),
            message: "ip is not an address".into(),
            field: Some("/events/0/ip".into()),
        };
        assert_eq!(
            detail.to_string(),
            "invalid_field: ip is not an address (field /events/0/ip)"
        );
        let without_field = ErrorDetail {
            field: None,
            ..detail
        };
        assert_eq!(
            without_field.to_string(),
            "invalid_field: ip is not an address"
        );
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        assert_eq!(
            format!("{:?}", ApiKeySecret("lbk_secret".into())),
            "ApiKeySecret(<redacted>)"
        );
    }
}
