//! `logbook user add|list|remove|reset-password`, straight on the database: the people who sign
//! in to the web page. Passwords come from a prompt (never echoed) or `--password-stdin`, and
//! only their Argon2id hash is stored. Removing a user or resetting a password ends their
//! sessions.

use std::io::{BufRead, Write};

use anyhow::{Context, Result, anyhow, bail};
use logbook_core::people::{NewUser, Role, UserRecord, normalize_email};
use logbook_core::{AccountId, Clock, StoreError, SystemClock};
use logbook_server::web::password::{check_new_password, hash_password_blocking};

use crate::cli::UserCommand;
use crate::commands::{CreateDatabase, open_store};
use crate::config::Config;
use crate::output::{rfc3339, write_table};

pub async fn run(config: &Config, command: UserCommand, over_http: bool) -> Result<()> {
    if over_http {
        return run_over_http(config, command).await;
    }
    match command {
        UserCommand::Add {
            account,
            email,
            role,
            password_stdin,
        } => add(config, &account, &email, &role, password_stdin).await,
        UserCommand::List { account, json } => list(config, &account, json).await,
        UserCommand::Remove { account, email } => remove(config, &account, &email).await,
        UserCommand::ResetPassword {
            account,
            email,
            password_stdin,
        } => reset_password(config, &account, &email, password_stdin).await,
    }
}

/// The same commands through the management API (`--server`, admin key in `LOGBOOK_KEY`).
async fn run_over_http(config: &Config, command: UserCommand) -> Result<()> {
    use crate::client::manage::{admin_client, find_person, user_record};
    let client = admin_client(config)?;
    let failed = |error: logbook_client::Error| anyhow!("{error}");
    match command {
        UserCommand::Add {
            account,
            email,
            role,
            password_stdin,
        } => {
            let account = parse_account(&account)?;
            let email = parse_email(&email)?;
            let role = Role::parse(&role)?;
            let password = read_new_password(password_stdin)?;
            let answer = client
                .add_person(account.as_str(), &email, role.as_str(), Some(&password))
                .await
                .map_err(failed)?;
            let user = user_record(&answer)?;
            println!(
                "added {} to {} as {} ({})",
                user.email, user.account, user.role, user.user_id
            );
            Ok(())
        }
        UserCommand::List { account, json } => {
            let account = parse_account(&account)?;
            let users = client
                .list_people(account.as_str())
                .await
                .map_err(failed)?
                .iter()
                .map(user_record)
                .collect::<Result<Vec<_>>>()?;
            print_users(&users, json)
        }
        UserCommand::Remove { account, email } => {
            let account = parse_account(&account)?;
            let email = parse_email(&email)?;
            let user = find_person(&client, account.as_str(), &email).await?;
            client
                .remove_person(account.as_str(), user.user_id.as_str())
                .await
                .map_err(failed)?;
            println!(
                "removed {} from {}; their sessions ended",
                user.email, user.account
            );
            Ok(())
        }
        UserCommand::ResetPassword {
            account,
            email,
            password_stdin,
        } => {
            let account = parse_account(&account)?;
            let email = parse_email(&email)?;
            let password = read_new_password(password_stdin)?;
            let user = find_person(&client, account.as_str(), &email).await?;
            client
                .reset_password(account.as_str(), user.user_id.as_str(), Some(&password))
                .await
                .map_err(failed)?;
            println!(
                "reset the password of {} in {}; their sessions ended",
                user.email, user.account
            );
            Ok(())
        }
    }
}

fn parse_account(name: &str) -> Result<AccountId> {
    AccountId::parse(name).map_err(|error| anyhow!("invalid account name {name:?}: {error}"))
}

fn parse_email(text: &str) -> Result<String> {
    normalize_email(text).ok_or_else(|| anyhow!("{text:?} is not an email address"))
}

/// Reads the new password: one line of stdin, or a prompt asked twice on the terminal.
fn read_new_password(from_stdin: bool) -> Result<String> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("could not read the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        let first = rpassword::prompt_password("New password: ")
            .context("could not read the password (use --password-stdin without a terminal)")?;
        let second = rpassword::prompt_password("New password again: ")
            .context("could not read the password")?;
        if first != second {
            bail!("the two passwords differ");
        }
        first
    };
    check_new_password(&password).map_err(|message| anyhow!("{message}"))?;
    Ok(password)
}

fn new_user_id() -> String {
    let bytes: [u8; 10] = rand::Rng::random(&mut rand::rng());
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("usr_{hex}")
}

async fn find_user(
    store: &dyn logbook_core::Store,
    account: &AccountId,
    email: &str,
) -> Result<UserRecord> {
    store
        .people()
        .list_users(account)
        .await?
        .into_iter()
        .find(|user| user.email == email)
        .ok_or_else(|| anyhow!("{email} is not a user of account {account}"))
}

async fn add(
    config: &Config,
    account: &str,
    email: &str,
    role: &str,
    password_stdin: bool,
) -> Result<()> {
    let account = parse_account(account)?;
    let email = parse_email(email)?;
    let role = Role::parse(role)?;
    let password = read_new_password(password_stdin)?;
    let password_hash =
        tokio::task::spawn_blocking(move || hash_password_blocking(&password)).await??;
    let store = open_store(config, CreateDatabase::Never)?;
    let created = store
        .people()
        .create_user(NewUser {
            user_id: new_user_id().into(),
            account: account.clone(),
            email: email.clone(),
            role,
            password_hash,
            created_at: SystemClock.now(),
        })
        .await;
    store.shutdown().await;
    match created {
        Ok(user) => {
            println!(
                "added {} to {} as {} ({})",
                user.email, user.account, user.role, user.user_id
            );
            Ok(())
        }
        Err(StoreError::AccountNotFound(account)) => {
            bail!(
                "account {account} does not exist (create it with: logbook account create {account})"
            )
        }
        Err(StoreError::UserAlreadyExists { account, email }) => {
            bail!("{email} is already a user of account {account}")
        }
        Err(error) => Err(error).context("could not add the user"),
    }
}

async fn list(config: &Config, account: &str, json: bool) -> Result<()> {
    let account = parse_account(account)?;
    let store = open_store(config, CreateDatabase::Never)?;
    let users = store.people().list_users(&account).await;
    store.shutdown().await;
    let users = users.context("could not list users")?;
    print_users(&users, json)
}

fn print_users(users: &[UserRecord], json: bool) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    if json {
        let values: Vec<serde_json::Value> = users
            .iter()
            .map(|user| {
                serde_json::json!({
                    "user_id": user.user_id,
                    "account": user.account.as_str(),
                    "email": user.email,
                    "role": user.role.as_str(),
                    "two_factor": user.totp_secret.is_some(),
                    "created_at": rfc3339(user.created_at),
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut stdout, &values)?;
        writeln!(stdout)?;
        return Ok(());
    }
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|user| {
            vec![
                user.email.clone(),
                user.role.to_string(),
                if user.totp_secret.is_some() {
                    "on".into()
                } else {
                    "off".into()
                },
                rfc3339(user.created_at),
                user.user_id.to_string(),
            ]
        })
        .collect();
    write_table(
        &mut stdout,
        &["EMAIL", "ROLE", "2FA", "CREATED", "ID"],
        &rows,
    )?;
    Ok(())
}

async fn remove(config: &Config, account: &str, email: &str) -> Result<()> {
    let account = parse_account(account)?;
    let email = parse_email(email)?;
    let store = open_store(config, CreateDatabase::Never)?;
    let result = async {
        let user = find_user(store.as_ref(), &account, &email).await?;
        store.people().remove_user(&user.user_id).await?;
        anyhow::Ok(user)
    }
    .await;
    store.shutdown().await;
    let user = result?;
    println!(
        "removed {} from {}; their sessions ended",
        user.email, user.account
    );
    Ok(())
}

async fn reset_password(
    config: &Config,
    account: &str,
    email: &str,
    password_stdin: bool,
) -> Result<()> {
    let account = parse_account(account)?;
    let email = parse_email(email)?;
    let password = read_new_password(password_stdin)?;
    let password_hash =
        tokio::task::spawn_blocking(move || hash_password_blocking(&password)).await??;
    let store = open_store(config, CreateDatabase::Never)?;
    let result = async {
        let user = find_user(store.as_ref(), &account, &email).await?;
        store
            .people()
            .set_password(&user.user_id, &password_hash, SystemClock.now())
            .await?;
        anyhow::Ok(user)
    }
    .await;
    store.shutdown().await;
    let user = result?;
    println!(
        "reset the password of {} in {}; their sessions ended",
        user.email, user.account
    );
    Ok(())
}
