//! `logbook sso show|set|clear --account NAME`: one account's own single sign-on with an OpenID
//! Connect provider, kept in the database (`single_sign_on_settings`) so every node uses it at
//! once; it wins over the configuration file's `[sso]` for that account. With `--server` the
//! same commands go through the management API (`/api/v1/accounts/{account}/sso`). The checks
//! and the answer's shape are the API's own (`logbook_server::api::v1::manage::single_sign_on`),
//! so both ways refuse and print the same. The client secret is read from standard input only
//! and never printed.

use std::io::{BufRead, Write};

use anyhow::{Context, Result, anyhow};
use logbook_core::{AccountId, Clock, SystemClock};
use logbook_server::api::v1::manage::single_sign_on::{
    SetSingleSignOn, SingleSignOnAnswer, answer_from, settings_of,
};
use logbook_server::error::ApiError;

use crate::cli::{SsoCommand, SsoSetArgs};
use crate::commands::{CreateDatabase, open_store};
use crate::config::Config;

pub async fn run(config: &Config, command: SsoCommand, over_http: bool) -> Result<()> {
    if over_http {
        return run_over_http(config, command).await;
    }
    match command {
        SsoCommand::Show { account, json } => {
            let account = parse_account(&account)?;
            let store = open_store(config, CreateDatabase::Never)?;
            let stored = store
                .single_sign_on()
                .single_sign_on_settings(&account)
                .await;
            store.shutdown().await;
            let stored = stored.context("could not read the single sign-on settings")?;
            let answer = answer_from(
                &account,
                stored,
                configured_for(config, &account)?,
                config.web.public_url.as_deref(),
            );
            print_answer(&serde_json::to_value(&answer)?, json)
        }
        SsoCommand::Set(arguments) => {
            let account = parse_account(&arguments.account)?;
            let request = request_of(&arguments)?;
            let store = open_store(config, CreateDatabase::Never)?;
            let result = async {
                let stored_secret = store
                    .single_sign_on()
                    .single_sign_on_settings(&account)
                    .await?
                    .map(|stored| stored.client_secret);
                let settings = settings_of(request, stored_secret).map_err(refusal)?;
                store
                    .single_sign_on()
                    .set_single_sign_on_settings(&account, Some(&settings), SystemClock.now())
                    .await?;
                Ok::<_, anyhow::Error>(())
            }
            .await;
            store.shutdown().await;
            result?;
            eprintln!(
                "Stored. Register {} as the redirect URI with the provider; `logbook sso show --account {account}` shows the settings.",
                redirect_uri(config, &account)
            );
            Ok(())
        }
        SsoCommand::Clear { account } => {
            let account = parse_account(&account)?;
            let store = open_store(config, CreateDatabase::Never)?;
            let result = store
                .single_sign_on()
                .set_single_sign_on_settings(&account, None, SystemClock.now())
                .await;
            store.shutdown().await;
            result.context("could not clear the single sign-on settings")?;
            eprintln!("Cleared.");
            Ok(())
        }
    }
}

async fn run_over_http(config: &Config, command: SsoCommand) -> Result<()> {
    let client = crate::client::manage::admin_client(config)?;
    let failed = |error: logbook_client::Error| anyhow!("{error}");
    match command {
        SsoCommand::Show { account, json } => {
            let account = parse_account(&account)?;
            let answer = client
                .single_sign_on(account.as_str())
                .await
                .map_err(failed)?;
            print_answer(&answer, json)
        }
        SsoCommand::Set(arguments) => {
            let account = parse_account(&arguments.account)?;
            let request = request_of(&arguments)?;
            let answer = client
                .set_single_sign_on(account.as_str(), serde_json::to_value(&request)?)
                .await
                .map_err(failed)?;
            eprintln!(
                "Stored. Register {} as the redirect URI with the provider.",
                answer["redirect_uri"].as_str().unwrap_or_default()
            );
            Ok(())
        }
        SsoCommand::Clear { account } => {
            let account = parse_account(&account)?;
            client
                .clear_single_sign_on(account.as_str())
                .await
                .map_err(failed)?;
            eprintln!("Cleared.");
            Ok(())
        }
    }
}

fn parse_account(name: &str) -> Result<AccountId> {
    AccountId::parse(name).map_err(|error| anyhow!("account {name:?}: {error}"))
}

fn refusal(error: ApiError) -> anyhow::Error {
    anyhow!("{error}")
}

fn redirect_uri(config: &Config, account: &AccountId) -> String {
    let answer: SingleSignOnAnswer =
        answer_from(account, None, None, config.web.public_url.as_deref());
    answer.redirect_uri
}

/// The configuration file's `[sso]`, when it names `account`.
fn configured_for(
    config: &Config,
    account: &AccountId,
) -> Result<Option<logbook_core::single_sign_on::SingleSignOnSettings>> {
    let Some(sso) = &config.sso else {
        return Ok(None);
    };
    let mut server = logbook_server::ServerSettings::default();
    sso.apply_to(&mut server)?;
    Ok(server
        .single_sign_on
        .filter(|instance| instance.accounts.contains(account))
        .map(|instance| instance.settings))
}

fn request_of(arguments: &SsoSetArgs) -> Result<SetSingleSignOn> {
    let client_secret = if arguments.client_secret_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("could not read the client secret from standard input")?;
        let secret = line.trim_end_matches(['\r', '\n']).to_owned();
        if secret.is_empty() {
            return Err(anyhow!("standard input held no client secret"));
        }
        Some(secret)
    } else {
        None
    };
    Ok(SetSingleSignOn {
        display_name: arguments.display_name.clone(),
        issuer: arguments.issuer.clone(),
        client_id: arguments.client_id.clone(),
        client_secret,
        default_role: Some(arguments.default_role.clone()),
        invited_only: arguments.invited_only,
        password_sign_in_allowed: !arguments.no_password_sign_in,
    })
}

fn print_answer(answer: &serde_json::Value, json: bool) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut stdout, answer)?;
        writeln!(stdout)?;
        return Ok(());
    }
    let text = |value: &serde_json::Value| match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    writeln!(stdout, "account       {}", text(&answer["account"]))?;
    writeln!(stdout, "source        {}", text(&answer["source"]))?;
    writeln!(stdout, "redirect_uri  {}", text(&answer["redirect_uri"]))?;
    if let Some(settings) = answer["settings"].as_object() {
        for field in [
            "display_name",
            "issuer",
            "client_id",
            "client_secret_set",
            "default_role",
            "invited_only",
            "password_sign_in_allowed",
        ] {
            let value = settings.get(field).map(text).unwrap_or_default();
            // Provider names and URLs are shown inert on a terminal, like event text.
            writeln!(
                stdout,
                "{field:<13} {}",
                logbook_core::terminal_text::escape_for_terminal(&value)
            )?;
        }
    }
    Ok(())
}
