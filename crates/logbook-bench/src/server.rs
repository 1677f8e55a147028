//! Starting a real Logbook server in-process for the benchmark: a SQLite store in a temporary
//! directory, every account and the two keys created through the store API, and the HTTP server
//! on an ephemeral loopback port.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use logbook_core::api_key::{KeyOwner, PlaintextApiKey, Scopes};
use logbook_core::store::NewApiKey;
use logbook_core::{AccountId, Clock, Store, SystemClock};
use logbook_server::{AppState, ServerSettings};
use logbook_store_sqlite::{SqliteOptions, SqliteStore};
use rand::Rng;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::workload::Workload;

pub struct RunningServer {
    pub base_url: String,
    /// A platform key with the `ingest` scope: writes for every account.
    pub ingest_key: String,
    /// A `read` key of the largest account.
    pub read_key: String,
    /// The store the server runs on, to see how far its background workers have read.
    pub store: Arc<dyn Store>,
    database_path: PathBuf,
    stop: oneshot::Sender<()>,
    serving: JoinHandle<std::io::Result<()>>,
    // Removed (with the database) when the server is dropped.
    _data_directory: tempfile::TempDir,
}

pub(crate) async fn create_key(
    store: &dyn Store,
    owner: KeyOwner,
    scopes: Scopes,
    clock: &dyn Clock,
) -> anyhow::Result<String> {
    let plaintext = PlaintextApiKey::from_random_bytes(rand::rng().random());
    store
        .create_api_key(NewApiKey {
            key_id: format!("key_bench{:016x}", rand::rng().random::<u64>()).into(),
            key_hash: plaintext.hash(),
            owner,
            scopes,
            display_prefix: plaintext.display_prefix(),
            description: Some("logbook-bench".into()),
            created_at: clock.now(),
        })
        .await
        .context("creating an API key")?;
    Ok(plaintext.expose().to_owned())
}

pub async fn start(
    workload: &Workload,
    largest_account: &AccountId,
) -> anyhow::Result<RunningServer> {
    let clock = Arc::new(SystemClock);
    let data_directory = tempfile::tempdir().context("creating the server's data directory")?;
    let database_path = data_directory.path().join("logbook.db");
    let store = SqliteStore::open(&database_path, SqliteOptions::default())
        .context("opening the SQLite store")?;
    let store: Arc<dyn Store> = Arc::new(store);
    for account in workload.accounts() {
        store
            .create_account(account, clock.now())
            .await
            .context("creating an account")?;
    }
    let ingest_key = create_key(
        &*store,
        KeyOwner::Platform,
        Scopes {
            ingest: true,
            read: false,
            admin: false,
        },
        &*clock,
    )
    .await?;
    let read_key = create_key(
        &*store,
        KeyOwner::Account(largest_account.clone()),
        Scopes {
            ingest: false,
            read: true,
            admin: false,
        },
        &*clock,
    )
    .await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback port")?;
    let address = listener.local_addr()?;
    let state = AppState::new(store.clone(), clock, throughput_run_settings());
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(logbook_server::serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Ok(RunningServer {
        base_url: format!("http://{address}"),
        ingest_key,
        read_key,
        store,
        database_path,
        stop,
        serving,
        _data_directory: data_directory,
    })
}

impl RunningServer {
    /// Graceful shutdown (the server drains and the store commits what it accepted), then the
    /// bytes on disk: database plus WAL after a full checkpoint, as an operator would measure
    /// them. Measuring after shutdown means no reader of the server holds the WAL open.
    pub async fn stop_and_measure_bytes_on_disk(self) -> anyhow::Result<u64> {
        let _ = self.stop.send(());
        self.serving
            .await
            .context("the server task panicked")?
            .context("serving")?;
        let connection = rusqlite::Connection::open(&self.database_path)
            .context("opening the store's database")?;
        connection.busy_timeout(std::time::Duration::from_secs(30))?;
        let busy: i64 = connection
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))
            .context("checkpointing the store's database")?;
        anyhow::ensure!(
            busy == 0,
            "the checkpoint after shutdown could not complete"
        );
        print_pages_per_btree(&connection)?;
        let mut wal_path = self.database_path.clone().into_os_string();
        wal_path.push("-wal");
        let database_bytes = std::fs::metadata(&self.database_path)?.len();
        let wal_bytes = std::fs::metadata(&wal_path)
            .map(|metadata| metadata.len())
            .unwrap_or(0);
        drop(connection);
        Ok(database_bytes + wal_bytes)
    }
}

/// Waits until the server's attention worker has read every stored event (or `limit` passes) and
/// returns how long that took. The worker follows the log behind ingest, and after a bulk load it
/// still has the backlog to read; timing queries while it does would measure that catch-up (a
/// one-off after a load that outran it) instead of the steady state, where it keeps pace.
pub(crate) async fn wait_for_attention_worker(
    store: &dyn Store,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let mut behind = 0_u64;
        for account in store.list_accounts().await? {
            let read = store
                .attention()
                .attention_progress(&account.account)
                .await?
                .map_or(0, |progress| progress.next_seq);
            behind += account.event_count.saturating_sub(read);
        }
        if behind == 0 {
            return Ok(started.elapsed());
        }
        if started.elapsed() > limit {
            anyhow::bail!(
                "the attention worker is still {behind} events behind after {:.0}s",
                limit.as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The server settings of a throughput run, on either backend. The run measures the server, not
/// its fair-use policy: one read key sends every timed query back to back, so the per-account and
/// per-key read limits are off (the `--noisy-neighbour` mode measures them).
pub fn throughput_run_settings() -> ServerSettings {
    let mut settings = ServerSettings::default();
    settings.limits.account_defaults.reads_per_second = 0;
    settings.limits.reads_per_second_per_key = 0;
    settings
}

/// Pages of each table and index after the run, largest first, with how full their pages are
/// (`dbstat`): where the bytes on disk are, and which B-trees are filled by scattered inserts
/// (pages about 2/3 full after splits) rather than appends (nearly full).
fn print_pages_per_btree(connection: &rusqlite::Connection) -> anyhow::Result<()> {
    let mut statement = connection.prepare(
        "SELECT name, count(*), sum(pgsize), 1.0 - sum(unused) * 1.0 / sum(pgsize) FROM dbstat \
         GROUP BY name ORDER BY count(*) DESC LIMIT 16",
    )?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, i64>(2)?,
            row.get::<_, f64>(3)?,
        ))
    })?;
    println!("pages per table and index after the run (dbstat):");
    for row in rows {
        let (name, pages, bytes, fill) = row?;
        println!(
            "  {name:<36} {pages:>9} pages {:>8.1} MB, {:.0} % full",
            bytes as f64 / 1e6,
            fill * 100.0
        );
    }
    Ok(())
}
