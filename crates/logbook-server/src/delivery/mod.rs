//! The delivery worker: a background task `serve` starts (like the checkpointer) that follows each
//! destination's account log by `seq` (`Store::events_since`), evaluates the account's alert rules
//! in memory (`logbook_core::alerting::deliveries_for_event`), writes the resulting deliveries to
//! the outbox in the same store transaction that moves the destination's cursor, and then sends
//! what is due (`sender`), with retries, backoff and a dead-letter list.
//!
//! It never hooks the writer, so ingest never waits for a receiver. Several nodes may run it on
//! one PostgreSQL: the cursor moves by compare-and-set and due deliveries are claimed with a
//! lease, so a delivery is sent by one node at a time; a crash between sending and recording the
//! success re-sends it with the same delivery id (at-least-once).

pub mod sender;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use logbook_core::alerting::{
    AlertRuleRecord, CompiledRule, DeliveryRecord, DestinationRecord, RetrySchedule,
    deliveries_for_event,
};
use logbook_core::unfamiliar_ip::KnownNetwork;
use logbook_core::{AccountId, Clock, Store, StoreError};
use rand::Rng;

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
    /// The whole send (connect, write, answer).
    pub send_timeout: Duration,
    /// Events read per destination per store call.
    pub events_per_batch: u32,
    /// Deliveries claimed per round.
    pub deliveries_per_round: u32,
    /// HOSTNAME of syslog messages.
    pub syslog_hostname: String,
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
            deliveries_per_round: 100,
            syslog_hostname: "-".to_owned(),
        }
    }
}

/// Reads new events for every destination and queues their deliveries; returns how many
/// deliveries were queued.
pub async fn queue_new_deliveries(
    store: &dyn Store,
    clock: &dyn Clock,
    settings: &DeliverySettings,
    destinations: &[DestinationRecord],
) -> Result<usize, StoreError> {
    let alerting = store.alerting();
    let mut rules_by_account: HashMap<AccountId, (Vec<AlertRuleRecord>, Vec<KnownNetwork>)> =
        HashMap::new();
    let mut queued = 0;
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
        queued += follow_destination(store, clock, settings, destination, &rules).await?;
    }
    Ok(queued)
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

/// Claims due deliveries and sends them; returns `(sent, failed)`.
pub async fn send_due_deliveries(
    store: &dyn Store,
    clock: &dyn Clock,
    settings: &DeliverySettings,
    destinations: &[DestinationRecord],
) -> Result<(usize, usize), StoreError> {
    let alerting = store.alerting();
    let claimed = alerting
        .claim_due_deliveries(
            clock.now(),
            settings.claim_lease,
            settings.deliveries_per_round,
        )
        .await?;
    let by_id: HashMap<&str, &DestinationRecord> = destinations
        .iter()
        .map(|destination| (destination.destination_id.as_str(), destination))
        .collect();
    let sends = claimed.iter().map(|record| async {
        let destination = by_id.get(record.delivery.destination_id.as_str()).copied();
        send_one(store, clock, settings, destination, record).await
    });
    let outcomes = futures::future::join_all(sends).await;
    let mut sent = 0;
    let mut failed = 0;
    for outcome in outcomes {
        match outcome? {
            true => sent += 1,
            false => failed += 1,
        }
    }
    Ok((sent, failed))
}

async fn send_one(
    store: &dyn Store,
    clock: &dyn Clock,
    settings: &DeliverySettings,
    destination: Option<&DestinationRecord>,
    record: &DeliveryRecord,
) -> Result<bool, StoreError> {
    let alerting = store.alerting();
    let delivery = &record.delivery;
    let result = match destination {
        Some(destination) => {
            sender::send(
                destination,
                &sender::Outgoing::of_delivery(delivery, clock.now()),
                settings,
            )
            .await
        }
        // Listed before the destination was created on another node: try next round.
        None => Err(sender::SendError::Transport(
            "the destination is not known to this node yet".to_owned(),
        )),
    };
    let now = clock.now();
    match result {
        Ok(()) => {
            alerting.mark_delivered(&delivery.delivery_id, now).await?;
            metrics::counter!("logbook_deliveries_sent_total").increment(1);
            Ok(true)
        }
        Err(error) => {
            let failed_attempts = record.attempts.saturating_add(1);
            let jitter = rand::rng().random::<f64>();
            let next_attempt_at = settings
                .retry
                .backoff_after(failed_attempts, jitter)
                .map(|wait| now + wait);
            // The receiver's answer is kept for the page, never logged.
            tracing::warn!(
                delivery_id = %delivery.delivery_id,
                destination_id = %delivery.destination_id,
                failed_attempts,
                dead = next_attempt_at.is_none(),
                "delivery failed"
            );
            alerting
                .mark_failed(
                    &delivery.delivery_id,
                    now,
                    &error.to_string(),
                    next_attempt_at,
                )
                .await?;
            metrics::counter!("logbook_deliveries_failed_total").increment(1);
            Ok(false)
        }
    }
}

/// One round: queue what new events produce, then send what is due.
pub async fn run_round(
    store: &dyn Store,
    clock: &dyn Clock,
    settings: &DeliverySettings,
) -> Result<(), StoreError> {
    let destinations = store.alerting().list_all_destinations().await?;
    if destinations.is_empty() {
        return Ok(());
    }
    queue_new_deliveries(store, clock, settings, &destinations).await?;
    send_due_deliveries(store, clock, settings, &destinations).await?;
    Ok(())
}

/// Runs rounds every `poll_interval` until `shutdown` is raised. A round in progress when the
/// server stops is abandoned: whatever it had not recorded is in the outbox, or still after the
/// cursor, and the next start sends it.
pub async fn run(
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: Arc<DeliverySettings>,
    shutdown: ShutdownSignal,
) {
    let mut ticker = tokio::time::interval(settings.poll_interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => {
                let round = run_round(store.as_ref(), clock.as_ref(), &settings);
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
}
