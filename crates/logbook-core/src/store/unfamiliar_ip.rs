//! Known networks and where each actor was seen (`crate::unfamiliar_ip`), reached through
//! `Store::unfamiliar_ips`.

use async_trait::async_trait;

use crate::account::AccountId;
use crate::store::StoreError;
use crate::unfamiliar_ip::{ActorAddress, KnownNetwork, NetworkName};

/// The part of the `Store` that keeps known networks and answers "where else was this actor seen".
/// The actor history itself is written by each store's writer (see the module documentation).
#[async_trait]
pub trait UnfamiliarIpStore: Send + Sync {
    /// The account's known networks, by name.
    async fn known_networks(&self, account: &AccountId) -> Result<Vec<KnownNetwork>, StoreError>;
    /// Creates or replaces the network named `network.name`; returns the one it replaced.
    async fn save_known_network(
        &self,
        account: &AccountId,
        network: &KnownNetwork,
    ) -> Result<Option<KnownNetwork>, StoreError>;
    /// Deletes the named network; returns it, or `None` when there was none.
    async fn delete_known_network(
        &self,
        account: &AccountId,
        name: &NetworkName,
    ) -> Result<Option<KnownNetwork>, StoreError>;
    /// The addresses `actor_id` was seen from in the account, in the order of
    /// `merge_actor_addresses`, at most `limit`.
    async fn actor_addresses(
        &self,
        account: &AccountId,
        actor_id: &str,
        limit: u32,
    ) -> Result<Vec<ActorAddress>, StoreError>;
}
