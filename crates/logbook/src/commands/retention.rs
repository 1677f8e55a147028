//! `logbook retention show|set|clear|hold|release|personal|personal-fields|erase|prune`: how long
//! an account keeps its events and their personal data, its legal hold, erasure of a person's
//! personal data, and a retention round run now (README, "Retention and legal hold" and
//! "Personal data"). Every change writes an event into the account's own log with who asked
//! (`--by`) and, for holds and erasures, why.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow};
use logbook_core::event::{Actor, ActorType};
use logbook_core::retention::{
    ChangedBy, ErasureOutcome, change_personal_data_policy, change_retention_period,
    declare_personal_metadata_fields, erase_person, hold_reason, place_legal_hold,
    release_legal_hold, retention_days,
};
use logbook_core::{AccountId, Clock, SystemClock};
use logbook_server::state::ShutdownSignal;
use logbook_server::workers::checkpointer::CheckpointSigning;
use logbook_server::workers::retention::run_round;
use time::format_description::well_known::Rfc3339;

use crate::cli::RetentionCommand;
use crate::commands::checkpoint_key::load_or_create_signer;
use crate::commands::{CreateDatabase, open_store};
use crate::config::Config;

pub async fn run(config: &Config, command: RetentionCommand) -> Result<()> {
    let store = open_store(config, CreateDatabase::Never)?;
    let outcome = run_on(config, command, store.clone()).await;
    store.shutdown().await;
    outcome
}

fn parse_account(name: &str) -> Result<AccountId> {
    AccountId::parse(name).map_err(|error| anyhow!("invalid account name {name:?}: {error}"))
}

/// The CLI as the actor of the events it writes: `--by` names the person behind it.
fn changed_by(by: &str) -> Result<ChangedBy> {
    let by = by.trim();
    if by.is_empty() || by.len() > 200 || by.chars().any(char::is_control) {
        return Err(anyhow!(
            "--by names who asks (an email or a name), 1 to 200 characters on one line"
        ));
    }
    Ok(ChangedBy {
        actor: Actor {
            id: by.to_owned(),
            name: Some("logbook CLI".into()),
            actor_type: Some(ActorType::User),
        },
        ip: None,
        user_agent: Some(format!("logbook-cli/{}", env!("CARGO_PKG_VERSION"))),
    })
}

fn new_event_id() -> logbook_core::ids::EventId {
    uuid::Uuid::now_v7().to_string().into()
}

async fn run_on(
    config: &Config,
    command: RetentionCommand,
    store: Arc<dyn logbook_core::Store>,
) -> Result<()> {
    let now = SystemClock.now();
    let mut stdout = std::io::stdout().lock();
    match command {
        RetentionCommand::Show { account, json } => {
            let account = parse_account(&account)?;
            let settings = store.retention().account_retention(&account).await?;
            let default_days = (config.retention.days > 0).then_some(config.retention.days);
            let default_personal_days = (config.retention.personal_data_days > 0)
                .then_some(config.retention.personal_data_days);
            let hold = settings.legal_hold.as_ref().map(|hold| {
                serde_json::json!({
                    "since": hold.since.format(&Rfc3339).unwrap_or_default(),
                    "set_by": hold.set_by,
                    "reason": hold.reason,
                })
            });
            if json {
                let value = serde_json::json!({
                    "account": account.as_str(),
                    "retention_days": settings.retention_days,
                    "instance_default_days": default_days,
                    "legal_hold": hold,
                    "pruned_below_seq": settings.pruned_below_seq,
                    "personal_data_days": settings.personal_data_days,
                    "instance_default_personal_data_days": default_personal_days,
                    "keep_network": settings.keep_network.unwrap_or(config.retention.keep_network),
                    "personal_metadata_fields": settings.personal_metadata_fields,
                    "personal_aged_below_seq": settings.personal_aged_below_seq,
                });
                writeln!(stdout, "{}", serde_json::to_string_pretty(&value)?)?;
            } else {
                let period = match (settings.retention_days, default_days) {
                    (Some(days), _) => format!("{days} days (the account's own)"),
                    (None, Some(days)) => format!("{days} days (the instance default)"),
                    (None, None) => "keep everything".to_owned(),
                };
                writeln!(stdout, "retention: {period}")?;
                match &settings.legal_hold {
                    Some(hold) => writeln!(
                        stdout,
                        "legal hold: since {} by {}: {}",
                        hold.since.format(&Rfc3339).unwrap_or_default(),
                        crate::output::inert(&hold.set_by),
                        crate::output::inert(&hold.reason)
                    )?,
                    None => writeln!(stdout, "legal hold: none")?,
                }
                writeln!(
                    stdout,
                    "pruned: {}",
                    if settings.pruned_below_seq == 0 {
                        "nothing".to_owned()
                    } else {
                        format!("every event below seq {}", settings.pruned_below_seq)
                    }
                )?;
                let keep_network = settings
                    .keep_network
                    .unwrap_or(config.retention.keep_network);
                let personal = match (settings.personal_data_days, default_personal_days) {
                    (Some(days), _) => format!("{days} days (the account's own)"),
                    (None, Some(days)) => format!("{days} days (the instance default)"),
                    (None, None) => "kept as long as the event".to_owned(),
                };
                writeln!(
                    stdout,
                    "personal data: {personal}{}",
                    if keep_network {
                        ", keeping the /24 or /48 of addresses"
                    } else {
                        ""
                    }
                )?;
                writeln!(
                    stdout,
                    "personal metadata fields: {}",
                    if settings.personal_metadata_fields.is_empty() {
                        "none declared".to_owned()
                    } else {
                        crate::output::inert(&settings.personal_metadata_fields.join(", "))
                            .into_owned()
                    }
                )?;
                writeln!(
                    stdout,
                    "aged: {}",
                    if settings.personal_aged_below_seq == 0 {
                        "nothing".to_owned()
                    } else {
                        format!(
                            "personal data removed below seq {}",
                            settings.personal_aged_below_seq
                        )
                    }
                )?;
            }
        }
        RetentionCommand::Personal {
            account,
            days,
            keep_network,
            clear,
            by,
        } => {
            let account = parse_account(&account)?;
            let days = days.map(retention_days).transpose()?;
            let (days, keep_network) = if clear {
                (None, None)
            } else {
                (days, Some(keep_network))
            };
            change_personal_data_policy(
                store.as_ref(),
                &account,
                days,
                keep_network,
                &changed_by(&by)?,
                now,
                new_event_id(),
            )
            .await?;
            match days {
                Some(days) => writeln!(
                    stdout,
                    "{account}'s events keep their personal data {days} days{}",
                    if keep_network == Some(true) {
                        " (then the /24 or /48 of their address)"
                    } else {
                        ""
                    }
                )?,
                None => writeln!(
                    stdout,
                    "{account} follows the instance default for personal data again"
                )?,
            }
        }
        RetentionCommand::PersonalFields {
            account,
            fields,
            by,
        } => {
            let account = parse_account(&account)?;
            let declared = declare_personal_metadata_fields(
                store.as_ref(),
                &account,
                &fields,
                &changed_by(&by)?,
                now,
                new_event_id(),
            )
            .await
            .map_err(|error| anyhow!("{error}"))?;
            writeln!(
                stdout,
                "{account} declares {} personal metadata fields{}",
                declared.len(),
                if declared.is_empty() {
                    String::new()
                } else {
                    format!(": {}", crate::output::inert(&declared.join(", ")))
                }
            )?;
        }
        RetentionCommand::Erase {
            account,
            actor,
            reason,
            by,
        } => {
            let account = parse_account(&account)?;
            let reason = hold_reason(&reason).map_err(|error| anyhow!("--reason: {error}"))?;
            let outcome = erase_person(
                store.as_ref(),
                &account,
                &actor,
                &reason,
                &changed_by(&by)?,
                now,
                new_event_id(),
                config.retention.batch_size,
            )
            .await?;
            let shown_actor = crate::output::inert(&actor);
            match outcome {
                ErasureOutcome::Erased {
                    events_changed,
                    recorded,
                } => writeln!(
                    stdout,
                    "erased the personal data of {shown_actor} from {events_changed} events of {account}{}",
                    if recorded {
                        ""
                    } else {
                        " (the account's daily quota refused the erasure's event; the erasure stands)"
                    }
                )?,
                ErasureOutcome::NothingLeft => writeln!(
                    stdout,
                    "{shown_actor}'s events in {account} hold no personal data any more"
                )?,
                ErasureOutcome::UnknownActor => {
                    return Err(anyhow!(
                        "no event of {account} has actor.id {shown_actor}: nothing was erased"
                    ));
                }
            }
        }
        RetentionCommand::Set { account, days, by } => {
            let account = parse_account(&account)?;
            let days = retention_days(days)?;
            change_retention_period(
                store.as_ref(),
                &account,
                Some(days),
                &changed_by(&by)?,
                now,
                new_event_id(),
            )
            .await?;
            writeln!(stdout, "{account} keeps its events {days} days")?;
        }
        RetentionCommand::Clear { account, by } => {
            let account = parse_account(&account)?;
            change_retention_period(
                store.as_ref(),
                &account,
                None,
                &changed_by(&by)?,
                now,
                new_event_id(),
            )
            .await?;
            writeln!(stdout, "{account} follows the instance default again")?;
        }
        RetentionCommand::Hold {
            account,
            reason,
            by,
        } => {
            let account = parse_account(&account)?;
            let reason = hold_reason(&reason)?;
            let placed = place_legal_hold(
                store.as_ref(),
                &account,
                &reason,
                &changed_by(&by)?,
                now,
                new_event_id(),
            )
            .await?;
            writeln!(
                stdout,
                "{}",
                if placed {
                    format!("{account} is under legal hold: nothing of it is pruned or erased")
                } else {
                    format!("{account} was already under legal hold; the first hold stays")
                }
            )?;
        }
        RetentionCommand::Release {
            account,
            reason,
            by,
        } => {
            let account = parse_account(&account)?;
            let reason = hold_reason(&reason)?;
            let released = release_legal_hold(
                store.as_ref(),
                &account,
                &reason,
                &changed_by(&by)?,
                now,
                new_event_id(),
            )
            .await?;
            writeln!(
                stdout,
                "{}",
                if released {
                    format!("{account}'s legal hold is cleared")
                } else {
                    format!("{account} was not under legal hold")
                }
            )?;
        }
        RetentionCommand::Prune => {
            let signing = CheckpointSigning {
                signer: load_or_create_signer(config)?,
                instance_name: config.checkpoint_instance_name()?,
                interval: Duration::from_secs(1),
            };
            let mut settings = logbook_server::ServerSettings::default();
            config.retention.apply_to(&mut settings)?;
            let deleted = run_round(
                store.as_ref(),
                &signing,
                &SystemClock,
                &settings.retention,
                &ShutdownSignal::default(),
            )
            .await?;
            writeln!(stdout, "removed {deleted} events")?;
        }
    }
    Ok(())
}
