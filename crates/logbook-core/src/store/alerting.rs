//! Alert rules, destinations, cursors and the delivery outbox (`crate::alerting`), reached through
//! `Store::alerting`.

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::account::AccountId;
use crate::alerting::{
    AlertRuleRecord, DeliveryCursor, DeliveryRecord, DestinationRecord, NewAlertRule, NewDelivery,
    NewDestination,
};
use crate::ids::{AlertRuleId, DestinationId};
use crate::store::StoreError;

/// Rules, destinations, cursors and the delivery outbox (reached through `Store::alerting`).
/// Everything that takes an `account` touches only that account's rows.
#[async_trait]
pub trait AlertingStore: Send + Sync {
    async fn create_destination(
        &self,
        destination: NewDestination,
    ) -> Result<DestinationRecord, StoreError>;
    /// The account's destinations with their health, oldest first.
    async fn list_destinations(
        &self,
        account: &AccountId,
    ) -> Result<Vec<DestinationRecord>, StoreError>;
    /// Every destination of every account (for the delivery worker), oldest first.
    async fn list_all_destinations(&self) -> Result<Vec<DestinationRecord>, StoreError>;
    /// Deletes the destination, its pending deliveries and its place in every rule. `false` when
    /// the account has no such destination.
    async fn delete_destination(
        &self,
        account: &AccountId,
        destination_id: &DestinationId,
    ) -> Result<bool, StoreError>;

    /// Fails with `DestinationNotFound` when a named destination is not the account's.
    async fn create_rule(&self, rule: NewAlertRule) -> Result<AlertRuleRecord, StoreError>;
    async fn list_rules(&self, account: &AccountId) -> Result<Vec<AlertRuleRecord>, StoreError>;
    /// `false` when the account has no such rule.
    async fn set_rule_enabled(
        &self,
        account: &AccountId,
        rule_id: &AlertRuleId,
        enabled: bool,
    ) -> Result<bool, StoreError>;
    async fn delete_rule(
        &self,
        account: &AccountId,
        rule_id: &AlertRuleId,
    ) -> Result<bool, StoreError>;

    /// The destination's cursor (`None` when there is no such destination).
    async fn delivery_cursor(
        &self,
        destination_id: &DestinationId,
    ) -> Result<Option<DeliveryCursor>, StoreError>;
    /// In one transaction: moves the destination's cursor from `expected_next_seq` to `cursor`
    /// and inserts `deliveries` (an id already present is kept as it is). Returns `false`, writing
    /// nothing, when the cursor is no longer at `expected_next_seq` (another node moved it).
    async fn advance_cursor(
        &self,
        destination_id: &DestinationId,
        expected_next_seq: u64,
        cursor: &DeliveryCursor,
        deliveries: &[NewDelivery],
    ) -> Result<bool, StoreError>;
    /// Claims up to `limit` deliveries of one destination that are due (not sent, not dead,
    /// `next_attempt_at <= now`, no live claim) until `now + lease`, lowest `seq` first (the
    /// order its lane sends them in). A delivery claimed by one caller is not handed to another
    /// until its lease ends or it is released.
    async fn claim_due_deliveries(
        &self,
        destination_id: &DestinationId,
        now: OffsetDateTime,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;
    /// Marks deliveries sent, in one transaction, and records their destinations' last success.
    async fn mark_delivered(
        &self,
        delivery_ids: &[String],
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// Gives claimed deliveries of `destination_id` back unsent, with no attempt counted (the
    /// destination could not be reached, so they were never refused): they are due again for the
    /// next claim. Records `error`, when given, as the destination's last error.
    async fn release_deliveries(
        &self,
        destination_id: &DestinationId,
        delivery_ids: &[String],
        now: OffsetDateTime,
        error: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Records a failed send: the error on the delivery and the destination, one more attempt,
    /// and either the next attempt time or, with `None`, the dead-letter list.
    async fn mark_failed(
        &self,
        delivery_id: &str,
        now: OffsetDateTime,
        error: &str,
        next_attempt_at: Option<OffsetDateTime>,
    ) -> Result<(), StoreError>;
    /// Records the outcome of a "send test" on the destination's health.
    async fn record_test_result(
        &self,
        account: &AccountId,
        destination_id: &DestinationId,
        now: OffsetDateTime,
        error: Option<&str>,
    ) -> Result<(), StoreError>;
    /// The account's dead deliveries, newest first, at most `limit`.
    async fn list_dead_letters(
        &self,
        account: &AccountId,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;
    /// Puts a dead delivery of the account back in the queue, due now, with its attempts reset.
    /// `false` when the account has no such dead delivery.
    async fn retry_dead_letter(
        &self,
        account: &AccountId,
        delivery_id: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError>;
}
