//! Locating events stored before an IP database was configured (`crate::location`), reached
//! through `Store::locations`.

use async_trait::async_trait;

use crate::account::AccountId;
use crate::location::{LocationBackfillBatch, SharedIpLocator};
use crate::store::StoreError;

/// The part of the `Store` that gives stored events the location they lack. New events are
/// located by each store while it prepares them; this is only for those stored before.
#[async_trait]
pub trait LocationStore: Send + Sync {
    /// One bounded batch of `logbook geoip backfill` for one account: reads at most `max_events`
    /// events from where the account's last batch stopped (a position the store keeps, in `seq`
    /// order, saved in the same transaction as the locations), and gives each one that has an
    /// `ip` and no location what `locator` says. An event that already has a location is never
    /// looked up again, and nothing else of an event changes: not its body, its leaf or its
    /// flags. Starting over from the first event (`from_start`) only re-reads: located events
    /// stay as they are.
    async fn locate_stored_events(
        &self,
        account: &AccountId,
        max_events: u32,
        locator: SharedIpLocator,
        from_start: bool,
    ) -> Result<LocationBackfillBatch, StoreError>;
}
