//! The start-up check of each account's newest signed checkpoint on PostgreSQL
//! (`logbook_core::checkpoint_check`): after migrations, each account's stored tree root at its
//! newest checkpoint's size is recomputed and compared. On a mismatch this node refuses every
//! write with the precise message and reports not ready, instead of appending on top of history
//! that no longer matches what was signed. Reads keep working.

use logbook_core::StoreError;
use logbook_core::checkpoint_check::newest_checkpoint_mismatch;

use crate::PostgresStore;

impl PostgresStore {
    /// Runs the check and, on a mismatch, makes this store refuse writes.
    pub(crate) async fn check_newest_checkpoints_at_start_up(&self) -> Result<(), StoreError> {
        if let Some(failure) = newest_checkpoint_mismatch(self).await? {
            tracing::error!(%failure, "the stored tree does not match a signed checkpoint; refusing writes");
            // Set once, at start-up, before the store is handed out.
            let _ = self.inner.startup_failure.set(failure);
        }
        Ok(())
    }

    /// Why this store refuses writes since start-up, if it does.
    pub(crate) fn startup_failure(&self) -> Option<&String> {
        self.inner.startup_failure.get()
    }
}
