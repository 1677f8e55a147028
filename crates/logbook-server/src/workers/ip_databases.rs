//! Reloads an IP database whose file was replaced (`crate::ip_databases`): every
//! `reload_interval` it compares each file's identity with the one in use, on a blocking thread
//! (a reload copies and verifies a whole file). Ingest never waits for it: lookups keep using the
//! database in use until the new one is swapped in.

use std::sync::Arc;

use crate::ip_databases::IpDatabases;
use crate::state::ShutdownSignal;

pub async fn run(databases: Arc<IpDatabases>, shutdown: ShutdownSignal) {
    let interval = databases.reload_interval();
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let databases = databases.clone();
        if let Err(error) = tokio::task::spawn_blocking(move || databases.reload_changed()).await {
            tracing::warn!(%error, "checking the IP databases failed");
        }
    }
}
