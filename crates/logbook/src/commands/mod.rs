//! The commands that run on this machine: the server (`serve`) and the commands that work on the
//! database directly (`account`, `key`, `user`, `backup`, `demo`, `geoip backfill`), plus `config`. Opening the store lives
//! here because it is the one place a backend is picked from the database URL: `sqlite://` (or
//! none) opens the embedded store, `postgres://` connects to PostgreSQL, where any number of
//! nodes share one database.

pub mod account;
pub mod backup;
pub mod checkpoint_key;
pub mod config;
pub mod demo;
pub mod geoip;
pub mod key;
pub mod limits;
pub mod migrate_store;
pub mod retention;
pub mod serve;
pub mod single_sign_on;
pub mod user;
pub mod verify;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use logbook_core::Store;
use logbook_core::location::{NoIpLocator, SharedIpLocator};
use logbook_store_postgres::{PostgresOptions, PostgresStore};
use logbook_store_sqlite::{SqliteOptions, SqliteStore};

use crate::config::{Config, DatabaseLocation, SqliteSynchronous};

/// Whether a command may create a database that does not exist yet. Commands that only read or
/// change what is there refuse, so a mistyped `--data-dir` is an error rather than a new, empty
/// database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateDatabase {
    IfMissing,
    Never,
}

/// Opens the store named by the configuration. It locates no address: only `serve` loads the IP
/// databases (`open_store_locating`).
pub fn open_store(config: &Config, create: CreateDatabase) -> Result<Arc<dyn Store>> {
    open_store_locating(config, create, Arc::new(NoIpLocator))
}

/// Opens the store named by the configuration, giving every event it stores the location
/// `locator` finds for its address.
pub fn open_store_locating(
    config: &Config,
    create: CreateDatabase,
    locator: SharedIpLocator,
) -> Result<Arc<dyn Store>> {
    match config.database_location()? {
        DatabaseLocation::Sqlite(path) => open_sqlite(config, &path, create, locator),
        DatabaseLocation::Postgres(url) => {
            Ok(Arc::new(open_postgres_locating(config, &url.0, locator)?))
        }
    }
}

/// Whether this configuration's database lives in the data directory, which one `serve` at a
/// time may use. PostgreSQL takes no such lock: several nodes on one database are the point.
pub fn database_is_in_data_dir(config: &Config) -> Result<bool> {
    Ok(matches!(
        config.database_location()?,
        DatabaseLocation::Sqlite(_)
    ))
}

/// Connects to PostgreSQL (applying migrations). The commands run on a multi-threaded runtime, so
/// this synchronous entry point may wait for the connection in place. The URL is never part of an
/// error message: it may carry a password.
pub fn open_postgres(config: &Config, url: &str) -> Result<PostgresStore> {
    open_postgres_locating(config, url, Arc::new(NoIpLocator))
}

fn open_postgres_locating(
    config: &Config,
    url: &str,
    ip_locator: SharedIpLocator,
) -> Result<PostgresStore> {
    let options = PostgresOptions {
        ip_locator,
        pool_size: config.postgres.pool_size.max(1),
        // PostgreSQL cancels a page query at the same budget the server answers at.
        query_time_budget: Some(std::time::Duration::from_millis(
            config.limits.query_time_budget_milliseconds,
        )),
        ..PostgresOptions::default()
    };
    tokio::task::block_in_place(|| {
        tokio::runtime::Handle::current().block_on(PostgresStore::connect(url, options))
    })
    .context("could not open the PostgreSQL database")
}

fn open_sqlite(
    config: &Config,
    path: &Path,
    create: CreateDatabase,
    ip_locator: SharedIpLocator,
) -> Result<Arc<dyn Store>> {
    if !path.exists() {
        if create == CreateDatabase::Never {
            bail!(
                "no database at {} (check --data-dir or --database)",
                path.display()
            );
        }
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("could not create directory {}", parent.display()))?;
        }
    }
    let options = SqliteOptions {
        ip_locator,
        synchronous_full: config.sqlite.synchronous == SqliteSynchronous::Full,
        reader_connections: config.sqlite.reader_connections,
        // The store interrupts a page query at the same budget the server answers at.
        query_time_budget: Some(std::time::Duration::from_millis(
            config.limits.query_time_budget_milliseconds,
        )),
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(path, options)
        .with_context(|| format!("could not open the database {}", path.display()))?;
    Ok(Arc::new(store))
}
