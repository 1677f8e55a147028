//! `logbook serve`: takes the data directory's lock, opens the store, listens, prints
//! `listening on http://ADDR` once connections are accepted, and on SIGTERM or Ctrl-C shuts down
//! gracefully (in-flight requests finish, the store commits what it accepted) and exits 0.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fs4::fs_std::FileExt;
use logbook_core::SystemClock;
use logbook_server::workers::checkpointer::CheckpointSigning;
use logbook_server::{AppState, ServerSettings};

use crate::commands::checkpoint_key::load_or_create_signer;
use crate::commands::{CreateDatabase, database_is_in_data_dir, open_store_locating};
use crate::config::Config;
use logbook_core::location::{NoIpLocator, SharedIpLocator};
use logbook_server::ip_databases::IpDatabases;

pub async fn run(config: &Config) -> Result<()> {
    let data_dir = &config.data_dir;
    // Settings are checked before anything is opened, so a bad value stops start-up cleanly.
    let mut settings = ServerSettings {
        ingest_limits: config.ingest.to_limits()?,
        ..ServerSettings::default()
    };
    config.web.apply_to(&mut settings)?;
    config.limits.apply_to(&mut settings)?;
    config.retention.apply_to(&mut settings)?;
    config.embed.apply_to(&mut settings)?;
    config.geoip.apply_to(&mut settings)?;
    if let Some(sso) = &config.sso {
        sso.apply_to(&mut settings)?;
    }
    config
        .delivery
        .apply_to(&mut settings, &config.checkpoint_instance_name()?)?;
    // Signals are caught from the start, so one sent during start-up still means a clean stop.
    let shutdown = shutdown_requested()?;
    // Held until this function returns; the operating system also drops it if the process dies.
    // Only the embedded database needs it: PostgreSQL nodes share their database by design.
    let _lock = if database_is_in_data_dir(config)? {
        std::fs::create_dir_all(data_dir).with_context(|| {
            format!("could not create the data directory {}", data_dir.display())
        })?;
        Some(DataDirLock::acquire(data_dir)?)
    } else {
        None
    };

    // The IP databases are loaded before the store opens, so a bad file stops start-up before
    // anything is written, and every event the store takes is located through them.
    let ip_databases = match config.geoip.settings(data_dir)? {
        Some(settings) => IpDatabases::open(&settings)?.map(Arc::new),
        None => None,
    };
    let locator: SharedIpLocator = match &ip_databases {
        Some(databases) => databases.clone(),
        None => Arc::new(NoIpLocator),
    };
    let store = open_store_locating(config, CreateDatabase::IfMissing, locator)?;
    tracing::info!(backend = store.backend_name(), data_dir = %data_dir.display(), "store opened");
    let signer = match load_or_create_signer(config) {
        Ok(signer) => signer,
        Err(error) => {
            store.shutdown().await;
            return Err(error);
        }
    };
    let checkpoint_signing = CheckpointSigning {
        signer,
        instance_name: config.checkpoint_instance_name()?,
        interval: Duration::from_millis(config.checkpoints.interval_milliseconds),
    };
    let mut state = AppState::new(store.clone(), Arc::new(SystemClock), settings)
        .with_checkpoint_signing(checkpoint_signing);
    if let Some(databases) = ip_databases {
        state = state.with_ip_databases(databases);
    }

    let listener = match tokio::net::TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(error) => {
            store.shutdown().await;
            return Err(error).with_context(|| format!("could not listen on {}", config.listen));
        }
    };
    let address = listener
        .local_addr()
        .context("could not read the listening address")?;
    tracing::info!(%address, "listening");
    // Tests and scripts that ask for port 0 learn the port from this one line.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on http://{address}")?;
    // The first run: nobody can sign in yet, so say how (README, "A first session").
    match state.first_run_setup_token().await {
        Ok(Some(token)) => writeln!(
            stdout,
            "nobody can sign in yet: open http://{address}/setup/{token} within 30 minutes to create the first owner (the link works once; `logbook user add` works too)"
        )?,
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "could not check whether anyone can sign in"),
    }
    stdout.flush()?;
    drop(stdout);

    logbook_server::serve(listener, state, shutdown)
        .await
        .context("the server stopped with an error")?;
    tracing::info!("stopped");
    Ok(())
}

/// Installs the SIGTERM (how service managers stop a process) and SIGINT (Ctrl-C) handlers now,
/// before the listening line is printed, so a signal sent as soon as the server is announced is
/// never lost; the returned future completes when either arrives.
fn shutdown_requested() -> Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("could not listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("could not listen for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
            _ = interrupt.recv() => tracing::info!("interrupt received"),
        }
    })
}

/// An exclusive advisory lock on `<data-dir>/logbook.lock`, so two servers never share one data
/// directory. The DB commands do not take it: SQLite arbitrates their access itself.
struct DataDirLock {
    file: File,
    path: PathBuf,
}

impl DataDirLock {
    fn acquire(data_dir: &Path) -> Result<Self> {
        let path = data_dir.join("logbook.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("could not open the lock file {}", path.display()))?;
        let locked = FileExt::try_lock_exclusive(&file)
            .with_context(|| format!("could not lock {}", path.display()))?;
        if !locked {
            bail!(
                "another logbook is already serving data directory {}",
                data_dir.display()
            );
        }
        Ok(Self { file, path })
    }
}

impl Drop for DataDirLock {
    fn drop(&mut self) {
        if let Err(error) = FileExt::unlock(&self.file) {
            tracing::warn!(%error, path = %self.path.display(), "could not release the data directory lock");
        }
    }
}
