//! The management API (`/api/v1/accounts/...`), for a client whose key has the `admin` scope:
//! accounts, their API keys, their people and their limits.
//!
//! Answers are the server's JSON objects as they come (`serde_json::Value`): the management
//! answers are documented in the server's OpenAPI document (`GET /api/v1/openapi.json`), and
//! keeping them as JSON loses nothing when the server adds a field.

use reqwest::Method;
use serde_json::{Value, json};

use crate::{Client, Error, ensure_success};

/// Percent-encodes one path segment (an account name, a key or person id), so whatever the
/// caller passes stays inside its segment. `.` and `..` are dot segments to URL parsers however
/// they are encoded, and name nothing here, so they become `%2E_`, which names nothing either.
fn segment(text: &str) -> String {
    if text == "." || text == ".." {
        return "%2E_".to_owned();
    }
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

impl Client {
    async fn admin_call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, Error> {
        self.admin_call_with_status(method, path, body)
            .await
            .map(|(answer, _)| answer)
    }

    async fn admin_call_with_status(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(Value, reqwest::StatusCode), Error> {
        let request = self
            .inner
            .http
            .request(method, format!("{}{path}", self.inner.base_url))
            .bearer_auth(&self.inner.key.0)
            .timeout(self.inner.request_timeout);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        let response = request
            .send()
            .await
            .map_err(|error| self.transport_error(error))?;
        let response = ensure_success(self, response).await?;
        let status = response.status();
        let answer = response
            .json()
            .await
            .map_err(|error| self.transport_error(error))?;
        Ok((answer, status))
    }

    /// Creates an account, or answers the existing one of that name (and display name); the
    /// flag says whether this call created it.
    pub async fn create_account(
        &self,
        name: &str,
        display_name: Option<&str>,
    ) -> Result<(Value, bool), Error> {
        let mut body = json!({ "name": name });
        if let Some(display_name) = display_name {
            body["display_name"] = json!(display_name);
        }
        let (answer, status) = self
            .admin_call_with_status(Method::POST, "/api/v1/accounts", Some(body))
            .await?;
        Ok((answer, status == reqwest::StatusCode::CREATED))
    }

    /// Every account the key manages, by name, following `next_cursor` to the end.
    pub async fn list_accounts(&self) -> Result<Vec<Value>, Error> {
        let mut accounts = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(cursor) => format!("/api/v1/accounts?limit=200&cursor={}", segment(cursor)),
                None => "/api/v1/accounts?limit=200".to_owned(),
            };
            let page = self.admin_call(Method::GET, &path, None).await?;
            if let Some(items) = page["accounts"].as_array() {
                accounts.extend(items.iter().cloned());
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(accounts),
            }
        }
    }

    /// Changes an account: `{"display_name": ...}` and/or `{"ingest_enabled": ...}`.
    pub async fn update_account(&self, account: &str, change: Value) -> Result<Value, Error> {
        self.admin_call(
            Method::PATCH,
            &format!("/api/v1/accounts/{}", segment(account)),
            Some(change),
        )
        .await
    }

    /// Creates an API key of the account; the answer's `key` is its secret, shown only there.
    pub async fn create_api_key(
        &self,
        account: &str,
        scopes: &[&str],
        description: Option<&str>,
    ) -> Result<Value, Error> {
        self.admin_call(
            Method::POST,
            &format!("/api/v1/accounts/{}/keys", segment(account)),
            Some(json!({ "scopes": scopes, "description": description })),
        )
        .await
    }

    /// The account's API keys, never their secrets.
    pub async fn list_api_keys(&self, account: &str) -> Result<Vec<Value>, Error> {
        let answer = self
            .admin_call(
                Method::GET,
                &format!("/api/v1/accounts/{}/keys", segment(account)),
                None,
            )
            .await?;
        Ok(answer["keys"].as_array().cloned().unwrap_or_default())
    }

    pub async fn revoke_api_key(&self, account: &str, key_id: &str) -> Result<Value, Error> {
        self.admin_call(
            Method::POST,
            &format!(
                "/api/v1/accounts/{}/keys/{}/revoke",
                segment(account),
                segment(key_id)
            ),
            None,
        )
        .await
    }

    /// Adds a person (with a password) or invites them (without one).
    pub async fn add_person(
        &self,
        account: &str,
        email: &str,
        role: &str,
        password: Option<&str>,
    ) -> Result<Value, Error> {
        let mut body = json!({ "email": email, "role": role });
        if let Some(password) = password {
            body["password"] = json!(password);
        }
        self.admin_call(
            Method::POST,
            &format!("/api/v1/accounts/{}/people", segment(account)),
            Some(body),
        )
        .await
    }

    pub async fn list_people(&self, account: &str) -> Result<Vec<Value>, Error> {
        let answer = self
            .admin_call(
                Method::GET,
                &format!("/api/v1/accounts/{}/people", segment(account)),
                None,
            )
            .await?;
        Ok(answer["people"].as_array().cloned().unwrap_or_default())
    }

    pub async fn remove_person(&self, account: &str, user_id: &str) -> Result<Value, Error> {
        self.admin_call(
            Method::DELETE,
            &format!(
                "/api/v1/accounts/{}/people/{}",
                segment(account),
                segment(user_id)
            ),
            None,
        )
        .await
    }

    /// Replaces the person's password (with `password`, or an unknown one) and ends their
    /// sessions.
    pub async fn reset_password(
        &self,
        account: &str,
        user_id: &str,
        password: Option<&str>,
    ) -> Result<Value, Error> {
        self.admin_call(
            Method::POST,
            &format!(
                "/api/v1/accounts/{}/people/{}/password-reset",
                segment(account),
                segment(user_id)
            ),
            Some(json!({ "password": password })),
        )
        .await
    }

    /// Every limit of the account with its value and source.
    pub async fn account_limits(&self, account: &str) -> Result<Value, Error> {
        self.admin_call(
            Method::GET,
            &format!("/api/v1/accounts/{}/limits", segment(account)),
            None,
        )
        .await
    }

    /// Removes every stored limit override of the account.
    pub async fn clear_account_limits(&self, account: &str) -> Result<Value, Error> {
        self.admin_call(
            Method::POST,
            &format!("/api/v1/accounts/{}/limits/clear", segment(account)),
            None,
        )
        .await
    }

    /// The account's single sign-on (never its client secret).
    pub async fn single_sign_on(&self, account: &str) -> Result<Value, Error> {
        self.admin_call(
            Method::GET,
            &format!("/api/v1/accounts/{}/sso", segment(account)),
            None,
        )
        .await
    }

    /// Stores the account's single sign-on; a body without `client_secret` keeps the stored one.
    pub async fn set_single_sign_on(&self, account: &str, settings: Value) -> Result<Value, Error> {
        self.admin_call(
            Method::PUT,
            &format!("/api/v1/accounts/{}/sso", segment(account)),
            Some(settings),
        )
        .await
    }

    /// Removes the account's own single sign-on settings.
    pub async fn clear_single_sign_on(&self, account: &str) -> Result<Value, Error> {
        self.admin_call(
            Method::POST,
            &format!("/api/v1/accounts/{}/sso/clear", segment(account)),
            None,
        )
        .await
    }

    /// Stores limits: a number sets a field, `null` clears it, a field left out keeps its value.
    pub async fn set_account_limits(&self, account: &str, limits: Value) -> Result<Value, Error> {
        self.admin_call(
            Method::PUT,
            &format!("/api/v1/accounts/{}/limits", segment(account)),
            Some(limits),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::segment;

    #[test]
    fn a_path_segment_cannot_escape_its_place() {
        assert_eq!(segment("acme-corp.eu_1"), "acme-corp.eu_1");
        assert_eq!(segment("../keys?x=1#y"), "..%2Fkeys%3Fx%3D1%23y");
        assert_eq!(segment(".."), "%2E_");
    }
}
