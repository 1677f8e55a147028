//! `logbook account|key --server URL`: the management commands over HTTP, with an `admin` key in
//! `LOGBOOK_KEY`. The server's answers are turned back into the records the database mode reads,
//! so both modes print through the same code and their output (and `--json`) is the same.

use anyhow::{Context, Result, anyhow};
use logbook_core::AccountId;
use logbook_core::api_key::{ApiKeyRecord, KeyOwner, Scopes};
use logbook_core::store::AccountRecord;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::client::{ApiKeySecret, logbook_client};
use crate::config::Config;

/// A client of `--server` with the admin key from `LOGBOOK_KEY`.
pub fn admin_client(config: &Config) -> Result<logbook_client::Client> {
    let key = ApiKeySecret::from_environment()?;
    logbook_client(config, &key, |builder| builder)
}

fn text<'answer>(answer: &'answer Value, field: &str) -> Result<&'answer str> {
    answer[field]
        .as_str()
        .ok_or_else(|| anyhow!("the server's answer has no {field}: {answer}"))
}

fn time_of(answer: &Value, field: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(text(answer, field)?, &Rfc3339)
        .with_context(|| format!("the server's {field} is not an RFC 3339 time"))
}

fn optional_time_of(answer: &Value, field: &str) -> Result<Option<OffsetDateTime>> {
    if answer[field].is_null() {
        return Ok(None);
    }
    time_of(answer, field).map(Some)
}

/// An account of the management API as `logbook account list` reads it from the database.
pub fn account_record(answer: &Value) -> Result<AccountRecord> {
    Ok(AccountRecord {
        account: AccountId::parse(text(answer, "account")?)
            .map_err(|error| anyhow!("the server named an invalid account: {error}"))?,
        created_at: time_of(answer, "created_at")?,
        event_count: answer["event_count"]
            .as_u64()
            .ok_or_else(|| anyhow!("the server's answer has no event_count: {answer}"))?,
    })
}

/// A person of the management API as `logbook user list` reads them from the database (without
/// the password hash, which the API never shows).
pub fn user_record(answer: &Value) -> Result<logbook_core::people::UserRecord> {
    Ok(logbook_core::people::UserRecord {
        user_id: text(answer, "user_id")?.into(),
        account: AccountId::parse(text(answer, "account")?)
            .map_err(|error| anyhow!("the server named an invalid account: {error}"))?,
        email: text(answer, "email")?.to_owned(),
        role: logbook_core::people::Role::parse(text(answer, "role")?)?,
        password_hash: String::new(),
        totp_secret: answer["second_factor"]
            .as_bool()
            .unwrap_or(false)
            .then(Vec::new),
        created_at: time_of(answer, "created_at")?,
    })
}

/// The person of `account` with `email`, looked up through the management API.
pub async fn find_person(
    client: &logbook_client::Client,
    account: &str,
    email: &str,
) -> Result<logbook_core::people::UserRecord> {
    for person in client
        .list_people(account)
        .await
        .map_err(|error| anyhow!("{error}"))?
    {
        let user = user_record(&person)?;
        if user.email == email {
            return Ok(user);
        }
    }
    Err(anyhow!("{email} is not a user of account {account}"))
}

/// A key of the management API as `logbook key list` reads it from the database.
pub fn api_key_record(answer: &Value) -> Result<ApiKeyRecord> {
    let scopes: Vec<&str> = answer["scopes"]
        .as_array()
        .map(|scopes| scopes.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    Ok(ApiKeyRecord {
        key_id: text(answer, "key_id")?.into(),
        owner: match answer["account"].as_str() {
            Some(account) => KeyOwner::Account(
                AccountId::parse(account)
                    .map_err(|error| anyhow!("the server named an invalid account: {error}"))?,
            ),
            None => KeyOwner::Platform,
        },
        scopes: Scopes::parse(&scopes.join(","))?,
        display_prefix: text(answer, "prefix")?.to_owned(),
        description: answer["description"].as_str().map(str::to_owned),
        created_at: time_of(answer, "created_at")?,
        revoked_at: optional_time_of(answer, "revoked_at")?,
        last_used_at: optional_time_of(answer, "last_used_at")?,
    })
}
