//! `logbook backup DEST`: a consistent copy of the live database, safe while `serve` runs.

use anyhow::{Context, Result, bail};

use crate::cli::BackupArgs;
use crate::commands::{CreateDatabase, open_store};
use crate::config::Config;

pub async fn run(config: &Config, arguments: &BackupArgs) -> Result<()> {
    let destination = &arguments.destination;
    if destination.exists() {
        bail!(
            "{} already exists; a backup never overwrites a file",
            destination.display()
        );
    }
    if let Some(parent) = destination
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        && !parent.is_dir()
    {
        bail!("directory {} does not exist", parent.display());
    }
    let store = open_store(config, CreateDatabase::Never)?;
    let result = store.backup(destination).await;
    store.shutdown().await;
    result.with_context(|| {
        format!(
            "could not back up the database to {}",
            destination.display()
        )
    })?;
    let size = std::fs::metadata(destination)
        .map(|metadata| metadata.len())
        .unwrap_or(0);
    println!("{}", destination.display());
    if store.backend_name() == "postgres" {
        // PostgreSQL's backup is pg_dump's custom format, restored with pg_restore.
        eprintln!(
            "Wrote a consistent pg_dump of the database to {} ({size} bytes). Restore it into an empty database with pg_restore --dbname=URL {}",
            destination.display(),
            destination.display()
        );
        return Ok(());
    }
    eprintln!(
        "Wrote a consistent copy of the database to {} ({size} bytes). Read it with --database sqlite://{}",
        destination.display(),
        destination.display()
    );
    Ok(())
}
