//! The `logbook` binary: parses the command line and hands each subcommand to its module.
//! Exit codes: 0 success, 1 an error (printed as `error: ...` on stderr), 2 a usage error (clap).

mod cli;
mod client;
mod commands;
mod config;
mod output;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;

use crate::cli::{Cli, Command};
use crate::config::{Config, FlagOverrides};
use crate::output::LocalOffset;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The local UTC offset can only be read soundly while the process has one thread, so it is
    // captured before the runtime starts its workers.
    let local_offset = LocalOffset::capture();
    match run(cli, local_offset) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", output::describe_error(&error));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli, local_offset: LocalOffset) -> Result<()> {
    let flags = FlagOverrides {
        data_dir: cli.global.data_dir.clone(),
        database: cli.global.database.clone(),
        listen: match &cli.command {
            Command::Serve(serve) => serve.listen,
            _ => None,
        },
        log_format: cli.global.log_format,
        server: cli.global.server.clone(),
    };
    // `verify --since-checkpoint` asks the database when one is named, else the server.
    let database_named = cli.global.database.is_some() || cli.global.data_dir.is_some();
    // `account`, `key`, `user` and `limits` use the management API when `--server` is on the
    // command line.
    let over_http = cli.global.server.is_some();
    let environment = |name: &str| std::env::var(name).ok();
    let config = Config::load(cli.global.config.as_deref(), &environment, &flags)?;

    // The server logs what it does at `info`; the one-shot commands stay quiet unless warned.
    let default_log_level = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    output::init_logging(config.log_format, default_log_level)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve(_) => commands::serve::run(&config).await,
            Command::Account(command) => commands::account::run(&config, command, over_http).await,
            Command::Key(command) => commands::key::run(&config, command, over_http).await,
            Command::Limits(command) => commands::limits::run(&config, command, over_http).await,
            Command::Sso(command) => {
                commands::single_sign_on::run(&config, command, over_http).await
            }
            Command::Retention(command) => commands::retention::run(&config, command).await,
            Command::Geoip(command) => commands::geoip::run(&config, command).await,
            Command::User(command) => commands::user::run(&config, command, over_http).await,
            Command::Backup(arguments) => commands::backup::run(&config, &arguments).await,
            Command::MigrateStore(arguments) => {
                commands::migrate_store::run(&config, &arguments).await
            }
            Command::Demo(arguments) => commands::demo::run(&config, &arguments).await,
            Command::Send(arguments) => client::send::run(&config, &arguments).await,
            Command::Query(arguments) => {
                client::query::run(&config, &arguments, local_offset).await
            }
            Command::Tail(arguments) => client::tail::run(&config, &arguments, local_offset).await,
            Command::Export(arguments) => client::export::run(&config, &arguments).await,
            Command::Config(command) => commands::config::run(&config, &command),
            Command::CheckpointKey => commands::checkpoint_key::run(&config),
            Command::Verify(arguments) => {
                commands::verify::run(&config, &arguments, database_named).await
            }
        }
    })
}
