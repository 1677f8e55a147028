//! The delivery worker: a background task `serve` starts (like the checkpointer) that follows each
//! destination's account log by `seq` (`Store::events_since`), evaluates the account's alert rules
//! in memory (`logbook_core::alerting::deliveries_for_event`) and writes the resulting deliveries
//! to the outbox in the same store transaction that moves the destination's cursor. Sending is
//! each destination's own lane (`lane`): a long-lived task with a few connections of its own
//! (`transport`), so a slow or unreachable receiver never delays another destination.
//!
//! It never hooks the writer, so ingest never waits for a receiver. Several nodes may run it on
//! one PostgreSQL: the cursor moves by compare-and-set and due deliveries are claimed with a
//! lease, so a delivery is sent by one node at a time; a crash between sending and recording the
//! success re-sends it with the same delivery id (at-least-once).
//!
//! # Design
//!
//! - **Code**: rules, thresholds, cursors, the retry schedule and delivery ids in
//!   `logbook_core::alerting`; the webhook body, its signature and the RFC 5424 line in
//!   `logbook_core::delivery_format` (both pure); `AlertingStore` written once in `logbook-store-sql/src/alerting.rs`
//!   (migrations 0006, 0011); in this module the worker (`mod.rs`), one lane per
//!   destination (`lane.rs`), the transports (`transport.rs`: webhook, syslog over TCP/TLS, RELP),
//!   Logbook's own RELP client (`relp.rs`) and TLS trust (`tls.rs`); the page in `web/alerts.rs`.
//! - **Lanes.** Each destination has its own long-lived tasks (one per connection), which claim
//!   its due deliveries lowest `seq` first, so a slow receiver delays only itself. "Delivered" is the
//!   receiver's acknowledgement: a 2xx, a RELP `rsp 200`, or for TCP/TLS syslog (no acknowledgement
//!   in the protocol) the collector's clean close after Logbook closed a batch's connection.
//!   Refusals count attempts (dead letters after `max_attempts`); an unreachable receiver counts
//!   none, its deliveries go back unsent and the lane backs off.
//! - **Never in the write path.** The worker follows each destination's account with
//!   `events_since` from a cursor stored on the destination; ingest never waits for a receiver. Rules
//!   run in memory with the same `Query::matches` as the live tail.
//! - **At-least-once.** The deliveries an event produces are inserted (the outbox, `ON CONFLICT DO
//!   NOTHING` on a delivery id derived from destination, rule and `seq`) in the transaction that
//!   moves the cursor, as a compare-and-set from the position read, so a crash re-reads at most one
//!   batch and two nodes never both queue it. Sending comes after; due deliveries are claimed with a
//!   lease (`claimed_until`; PostgreSQL `FOR UPDATE SKIP LOCKED`), so one node sends each, and a
//!   node that dies mid-send leaves the claim to expire and the delivery to be re-sent with the same
//!   id. Threshold windows are stored beside the cursor (at most N + 1 timestamps per rule), so a
//!   restart neither forgets nor double-counts a burst.
//! - **SSRF.** The guard runs at send time on what DNS answers then and pins the connection to the
//!   checked address (`reqwest`'s `resolve_to_addrs`, no redirects); a name with any non-public
//!   answer is refused whole. Destination tables carry no row-level security (the worker reads every
//!   account, like people); every page query filters by account.

pub mod lane;
pub mod relp;
pub mod sender;
pub mod tls;
pub mod transport;

use logbook_core::ids::DestinationId;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use logbook_core::alerting::{
    AlertRuleRecord, CompiledRule, DestinationRecord, RetrySchedule, deliveries_for_event,
};
use logbook_core::unfamiliar_ip::KnownNetwork;
use logbook_core::{AccountId, Clock, Store, StoreError};

use crate::state::ShutdownSignal;

/// How deliveries are made and paced. `Default` holds the documented defaults.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Allow destinations on loopback, private and link-local addresses, and plain `http://`
    /// webhooks (tests and on-premises receivers). Off by default: SSRF.
    pub allow_private_destinations: bool,
    /// How often the worker looks for new events and due deliveries.
    pub poll_interval: Duration,
    pub retry: RetrySchedule,
    /// How long a claimed delivery is reserved for the node sending it.
    pub claim_lease: Duration,
    pub connect_timeout: Duration,
    /// One send: a webhook request and its answer, a syslog batch and the collector's close, a
    /// RELP window's answers.
    pub send_timeout: Duration,
    /// Events read per destination per store call.
    pub events_per_batch: u32,
    /// Deliveries a syslog or RELP connection takes per claim (a syslog batch is confirmed by
    /// one close, so this is also how many a failed connection sends again).
    pub syslog_batch_size: u32,
    /// Deliveries a webhook connection takes per claim (sent one after another).
    pub webhook_batch_size: u32,
    /// Connections (each in `seq` order) per webhook destination.
    pub webhook_connections: usize,
    /// Connections per syslog, syslog-over-TLS or RELP destination.
    pub syslog_connections: usize,
    /// RELP messages sent before their answers are awaited.
    pub relp_window: usize,
    /// HOSTNAME of syslog messages (the instance name by default).
    pub syslog_hostname: String,
    /// APP-NAME of syslog messages.
    pub syslog_app_name: String,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            allow_private_destinations: false,
            poll_interval: Duration::from_millis(500),
            retry: RetrySchedule::default(),
            claim_lease: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            send_timeout: Duration::from_secs(10),
            events_per_batch: 500,
            syslog_batch_size: 500,
            webhook_batch_size: 20,
            webhook_connections: 4,
            syslog_connections: 1,
            relp_window: 128,
            syslog_hostname: "logbook".to_owned(),
            syslog_app_name: "logbook".to_owned(),
        }
    }
}

/// Reads new events for every destination and queues their deliveries; returns the ids of the
/// destinations that got new ones.
pub async fn queue_new_deliveries(
    store: &dyn Store,
    clock: &dyn Clock,
    settings: &DeliverySettings,
    destinations: &[DestinationRecord],
) -> Result<Vec<DestinationId>, StoreError> {
    let alerting = store.alerting();
    let mut rules_by_account: HashMap<AccountId, (Vec<AlertRuleRecord>, Vec<KnownNetwork>)> =
        HashMap::new();
    let mut with_new_deliveries = Vec::new();
    for destination in destinations {
        if !rules_by_account.contains_key(&destination.account) {
            let rules = alerting.list_rules(&destination.account).await?;
            // A rule's `ip:NAME` means the account's known network of that name, which the
            // in-memory matcher cannot look up itself.
            let known_networks = store
                .unfamiliar_ips()
                .known_networks(&destination.account)
                .await?;
            rules_by_account.insert(destination.account.clone(), (rules, known_networks));
        }
        let (account_rules, known_networks) = &rules_by_account[&destination.account];
        let rules: Vec<CompiledRule> = account_rules
            .iter()
            .filter(|rule| {
                rule.enabled
                    && rule.destination_ids.contains(&destination.destination_id)
            })
            .filter_map(|rule| {
                let compiled = CompiledRule::compile(rule.clone());
                if compiled.is_none() {
                    tracing::warn!(rule_id = %rule.rule_id, "a stored rule's query no longer parses; skipping it");
                }
                compiled.map(|mut rule| {
                    rule.query = rule.query.resolve_known_networks(known_networks);
                    rule
                })
            })
            .collect();
        // Even when no rule can match, the cursor moves on, so a rule added later starts from
        // then rather than replaying what happened before it existed.
        if follow_destination(store, clock, settings, destination, &rules).await? > 0 {
            with_new_deliveries.push(destination.destination_id.clone());
        }
    }
    Ok(with_new_deliveries)
}

async fn follow_destination(
    store: &dyn Store,
    clock: &dyn Clock,
    settings: &DeliverySettings,
    destination: &DestinationRecord,
    rules: &[CompiledRule],
) -> Result<usize, StoreError> {
    let alerting = store.alerting();
    let Some(mut cursor) = alerting
        .delivery_cursor(&destination.destination_id)
        .await?
    else {
        return Ok(0);
    };
    let mut queued = 0;
    loop {
        let rows = store
            .events_since(
                &destination.account,
                cursor.next_seq,
                settings.events_per_batch,
            )
            .await?;
        if rows.is_empty() {
            return Ok(queued);
        }
        let read_from = cursor.next_seq;
        let mut advanced = cursor.clone();
        let mut deliveries = Vec::new();
        let now = clock.now();
        for row in &rows {
            advanced.next_seq = row.seq + 1;
            let event = match row.decode() {
                Ok(event) => event,
                Err(error) => {
                    // Every stored body decodes (ingest wrote it); a failure is a bug, and
                    // stopping here would stall the destination forever.
                    tracing::error!(%error, seq = row.seq, "a stored event does not decode; skipping it for delivery");
                    continue;
                }
            };
            deliveries.extend(deliveries_for_event(
                destination,
                rules,
                &mut advanced,
                &event,
                &row.to_json(),
                now,
            ));
        }
        if !alerting
            .advance_cursor(
                &destination.destination_id,
                read_from,
                &advanced,
                &deliveries,
            )
            .await?
        {
            // Another node moved this cursor first; it queued these events.
            return Ok(queued);
        }
        queued += deliveries.len();
        cursor = advanced;
        if rows.len() < settings.events_per_batch as usize {
            return Ok(queued);
        }
    }
}

/// Runs until `shutdown` is raised: every `poll_interval` it lists the destinations, starts a
/// lane for each new one and stops the lanes of deleted ones, queues what new events produce
/// (waking the lanes that got work), and publishes each destination's backlog. On shutdown every
/// lane gives back what it had claimed and not finished, so the next start sends it at once.
pub async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: Arc<DeliverySettings>,
    shutdown: ShutdownSignal,
) {
    let mut lanes: HashMap<DestinationId, lane::LaneHandle> = HashMap::new();
    let mut ticker = tokio::time::interval(settings.poll_interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => {
                let round = follow_round(&store, &clock, &settings, &mut lanes);
                tokio::select! {
                    _ = &mut stop => break,
                    result = round => {
                        if let Err(error) = result {
                            tracing::warn!(%error, "delivery round failed; retrying at the next interval");
                        }
                    }
                }
            }
        }
    }
    for (_, lane) in lanes.drain() {
        lane.stop().await;
    }
}

/// One round of `run`.
async fn follow_round(
    store: &Arc<dyn Store>,
    clock: &Arc<dyn Clock>,
    settings: &Arc<DeliverySettings>,
    lanes: &mut HashMap<DestinationId, lane::LaneHandle>,
) -> Result<(), StoreError> {
    let destinations = store.alerting().list_all_destinations().await?;
    let current: std::collections::HashSet<&str> = destinations
        .iter()
        .map(|destination| destination.destination_id.as_str())
        .collect();
    let deleted: Vec<DestinationId> = lanes
        .keys()
        .filter(|destination_id| !current.contains(destination_id.as_str()))
        .cloned()
        .collect();
    for destination_id in deleted {
        if let Some(lane) = lanes.remove(&destination_id) {
            lane.stop().await;
        }
    }
    for destination in &destinations {
        lanes
            .entry(destination.destination_id.clone())
            .or_insert_with(|| {
                lane::LaneHandle::start(
                    store.clone(),
                    clock.clone(),
                    settings.clone(),
                    destination.clone(),
                )
            });
    }
    let now = clock.now();
    for destination in &destinations {
        lane::publish_backlog(destination, now);
    }
    for destination_id in
        queue_new_deliveries(store.as_ref(), clock.as_ref(), settings, &destinations).await?
    {
        if let Some(lane) = lanes.get(&destination_id) {
            lane.wake();
        }
    }
    Ok(())
}
