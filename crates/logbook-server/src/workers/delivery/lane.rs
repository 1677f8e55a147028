//! One destination's lane: a long-lived task per connection (`syslog_connections` or
//! `webhook_connections` of them), each claiming its destination's due deliveries lowest `seq`
//! first, sending them in that order through its own `Transport`, and recording what the receiver
//! acknowledged. Lanes share nothing but the store, so a slow or unreachable receiver only ever
//! holds up its own deliveries.
//!
//! Two kinds of failure are kept apart. A receiver that answers but does not acknowledge (HTTP
//! non-2xx, RELP non-200, a webhook that timed out after the request went out) fails that
//! delivery: it is retried on its own schedule (`RetrySchedule`, 1 s doubling to 1 h minus up to
//! half at random) and goes to the dead letters after `max_attempts`. A receiver that cannot be
//! reached, or a connection that breaks before it confirmed (refused, reset, TLS failure, a
//! syslog collector that does not close cleanly), counts no attempt: the deliveries go back
//! unsent and the connection waits on the same schedule before it tries again, so an outage
//! builds a backlog and never dead letters.

use std::collections::HashMap;
use std::sync::Arc;

use logbook_core::alerting::{DeliveryRecord, DestinationKind, DestinationRecord};
use logbook_core::{Clock, Store};
use rand::Rng;
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::DeliverySettings;
use super::sender::{self, Outgoing, SendError};
use super::transport::{BatchOutcome, Transport};
use crate::state::ShutdownSignal;

/// A running lane, held by the worker.
pub struct LaneHandle {
    wake: Arc<Notify>,
    stop: ShutdownSignal,
    tasks: Vec<JoinHandle<()>>,
    destination: DestinationRecord,
}

impl LaneHandle {
    /// Starts the lane's connections.
    pub fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        settings: Arc<DeliverySettings>,
        destination: DestinationRecord,
    ) -> Self {
        let wake = Arc::new(Notify::new());
        let stop = ShutdownSignal::default();
        let connections = match destination.kind {
            DestinationKind::Webhook { .. } => settings.webhook_connections,
            _ => settings.syslog_connections,
        }
        .max(1);
        let tasks = (0..connections)
            .map(|_| {
                tokio::spawn(
                    Connection {
                        store: store.clone(),
                        clock: clock.clone(),
                        settings: settings.clone(),
                        destination: destination.clone(),
                        wake: wake.clone(),
                        stop: stop.clone(),
                    }
                    .run(),
                )
            })
            .collect();
        Self {
            wake,
            stop,
            tasks,
            destination,
        }
    }

    /// New deliveries were queued: every idle connection looks now.
    pub fn wake(&self) {
        self.wake.notify_waiters();
    }

    /// Stops every connection; each gives back the deliveries it had claimed and not recorded.
    pub async fn stop(self) {
        self.stop.begin();
        for task in self.tasks {
            let _ = task.await;
        }
        // A deleted destination's series would otherwise keep their last values.
        let labels = labels(&self.destination);
        metrics::gauge!(crate::metrics::DELIVERY_BACKLOG, &labels).set(0.0);
        metrics::gauge!(crate::metrics::DELIVERY_OLDEST_PENDING_AGE, &labels).set(0.0);
        metrics::gauge!(crate::metrics::DELIVERY_DEAD_LETTERS, &labels).set(0.0);
    }
}

fn labels(destination: &DestinationRecord) -> [(&'static str, String); 2] {
    [
        ("destination", destination.destination_id.to_string()),
        ("account", destination.account.as_str().to_owned()),
    ]
}

/// Publishes the destination's pending deliveries, the age of the oldest and its dead letters.
pub fn publish_backlog(destination: &DestinationRecord, now: OffsetDateTime) {
    let labels = labels(destination);
    metrics::gauge!(crate::metrics::DELIVERY_BACKLOG, &labels)
        .set(destination.pending_count as f64);
    metrics::gauge!(crate::metrics::DELIVERY_DEAD_LETTERS, &labels)
        .set(destination.dead_letter_count as f64);
    let age = destination
        .oldest_pending_at
        .map(|queued_at| (now - queued_at).as_seconds_f64().max(0.0))
        .unwrap_or(0.0);
    metrics::gauge!(crate::metrics::DELIVERY_OLDEST_PENDING_AGE, &labels).set(age);
}

/// One connection of a lane.
struct Connection {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    settings: Arc<DeliverySettings>,
    destination: DestinationRecord,
    wake: Arc<Notify>,
    stop: ShutdownSignal,
}

impl Connection {
    async fn run(self) {
        let batch_size = match self.destination.kind {
            DestinationKind::Webhook { .. } => self.settings.webhook_batch_size,
            _ => self.settings.syslog_batch_size,
        }
        .max(1);
        let mut transport: Option<Transport> = None;
        let mut unreachable_in_a_row: u32 = 0;
        // The earliest retry this connection scheduled: it wakes then rather than at the next
        // poll, so retries keep the documented schedule.
        let mut earliest_retry: Option<OffsetDateTime> = None;
        let stopped = self.stop.wait();
        tokio::pin!(stopped);
        loop {
            let notified = self.wake.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let claimed = match self
                .store
                .alerting()
                .claim_due_deliveries(
                    &self.destination.destination_id,
                    self.clock.now(),
                    self.settings.claim_lease,
                    batch_size,
                )
                .await
            {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(%error, destination_id = %self.destination.destination_id, "could not claim deliveries");
                    tokio::select! {
                        _ = &mut stopped => break,
                        _ = tokio::time::sleep(self.settings.poll_interval) => continue,
                    }
                }
            };
            if claimed.is_empty() {
                let now = self.clock.now();
                let mut wait = self.settings.poll_interval;
                if let Some(retry_at) = earliest_retry {
                    if retry_at <= now {
                        earliest_retry = None;
                    } else {
                        wait = wait.min((retry_at - now).unsigned_abs());
                    }
                }
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = &mut notified => {}
                    _ = tokio::time::sleep(wait) => {}
                }
                continue;
            }
            let ids: Vec<String> = claimed
                .iter()
                .map(|record| record.delivery.delivery_id.clone())
                .collect();
            let now = self.clock.now();
            let mut unencodable = Vec::new();
            let mut prepared = Vec::with_capacity(claimed.len());
            for record in &claimed {
                match sender::prepare(
                    &self.destination.kind,
                    &Outgoing::of_delivery(&record.delivery, now),
                    &self.settings,
                ) {
                    Ok(item) => prepared.push(item),
                    Err(error) => unencodable.push((record.delivery.delivery_id.clone(), error)),
                }
            }
            if transport.is_none() {
                match Transport::for_destination(&self.destination, &self.settings) {
                    Ok(created) => transport = Some(created),
                    Err(error) => {
                        // Configured so that nothing can be sent (a refused literal address, a
                        // CA that does not parse): the deliveries wait, the page shows why.
                        self.record(
                            &claimed,
                            BatchOutcome {
                                unsent: ids,
                                unreachable: Some(error),
                                ..BatchOutcome::default()
                            },
                            &mut earliest_retry,
                        )
                        .await;
                        unreachable_in_a_row += 1;
                        if self.pause(unreachable_in_a_row, &mut stopped).await {
                            break;
                        }
                        continue;
                    }
                }
            }
            let Some(active) = transport.as_mut() else {
                continue;
            };
            let mut outcome = tokio::select! {
                _ = &mut stopped => {
                    // Whatever was under way may arrive (and be sent again: at-least-once).
                    if let Err(error) = self
                        .store
                        .alerting()
                        .release_deliveries(&self.destination.destination_id, &ids, self.clock.now(), None)
                        .await
                    {
                        tracing::warn!(%error, "could not give back claimed deliveries at shutdown; their lease will expire");
                    }
                    break;
                }
                outcome = active.send_batch(prepared) => outcome,
            };
            outcome.refused.extend(unencodable);
            let unreachable = outcome.unreachable.is_some() && outcome.delivered.is_empty();
            if outcome.unreachable.is_some() && !matches!(active, Transport::Webhook(_)) {
                // A broken session is not reused.
                transport = None;
            }
            self.record(&claimed, outcome, &mut earliest_retry).await;
            if unreachable {
                unreachable_in_a_row += 1;
                if self.pause(unreachable_in_a_row, &mut stopped).await {
                    break;
                }
            } else {
                unreachable_in_a_row = 0;
            }
        }
        if let Some(transport) = transport {
            transport.close().await;
        }
    }

    /// Waits out the connection's backoff after its `failures`-th unreachable round in a row;
    /// `true` when the lane was stopped meanwhile.
    async fn pause(
        &self,
        failures: u32,
        stopped: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    ) -> bool {
        let jitter = rand::rng().random::<f64>();
        let wait = self.settings.retry.wait_after(failures, jitter);
        tokio::select! {
            _ = stopped.as_mut() => true,
            _ = tokio::time::sleep(wait) => false,
        }
    }

    /// Writes a batch's outcome to the store and the metrics.
    async fn record(
        &self,
        claimed: &[DeliveryRecord],
        outcome: BatchOutcome,
        earliest_retry: &mut Option<OffsetDateTime>,
    ) {
        let alerting = self.store.alerting();
        let labels = labels(&self.destination);
        let now = self.clock.now();
        if !outcome.delivered.is_empty() {
            match alerting.mark_delivered(&outcome.delivered, now).await {
                Ok(()) => metrics::counter!(crate::metrics::DELIVERIES_SENT, &labels)
                    .increment(outcome.delivered.len() as u64),
                Err(error) => {
                    tracing::warn!(%error, "could not record deliveries as sent; they will be sent again")
                }
            }
        }
        let attempts: HashMap<&str, u32> = claimed
            .iter()
            .map(|record| (record.delivery.delivery_id.as_str(), record.attempts))
            .collect();
        for (delivery_id, error) in &outcome.refused {
            let failed_attempts = attempts
                .get(delivery_id.as_str())
                .copied()
                .unwrap_or_default()
                .saturating_add(1);
            let jitter = rand::rng().random::<f64>();
            let next_attempt_at = self
                .settings
                .retry
                .backoff_after(failed_attempts, jitter)
                .map(|wait| now + wait);
            // The receiver's answer is kept for the page, never logged.
            tracing::warn!(
                %delivery_id,
                destination_id = %self.destination.destination_id,
                failed_attempts,
                dead = next_attempt_at.is_none(),
                "delivery refused by the receiver"
            );
            if let Err(store_error) = alerting
                .mark_failed(delivery_id, now, &error.to_string(), next_attempt_at)
                .await
            {
                tracing::warn!(error = %store_error, "could not record a failed delivery");
                continue;
            }
            metrics::counter!(
                crate::metrics::DELIVERY_FAILURES,
                &with_reason(&labels, "refused")
            )
            .increment(1);
            match next_attempt_at {
                Some(at) => {
                    *earliest_retry = Some(earliest_retry.map_or(at, |earlier| earlier.min(at)));
                }
                None => metrics::counter!(crate::metrics::DELIVERIES_DEAD_LETTERED, &labels)
                    .increment(1),
            }
        }
        if !outcome.unsent.is_empty() {
            let error_text = outcome.unreachable.as_ref().map(SendError::to_string);
            if let Some(error_text) = &error_text {
                tracing::warn!(
                    destination_id = %self.destination.destination_id,
                    error = %error_text,
                    "the receiver could not be reached or did not confirm; retrying later"
                );
                metrics::counter!(
                    crate::metrics::DELIVERY_FAILURES,
                    &with_reason(&labels, "unreachable")
                )
                .increment(1);
            }
            if let Err(error) = alerting
                .release_deliveries(
                    &self.destination.destination_id,
                    &outcome.unsent,
                    now,
                    error_text.as_deref(),
                )
                .await
            {
                tracing::warn!(%error, "could not give back unsent deliveries; their lease will expire");
            }
        }
    }
}

fn with_reason(
    labels: &[(&'static str, String); 2],
    reason: &'static str,
) -> [(&'static str, String); 3] {
    [
        labels[0].clone(),
        labels[1].clone(),
        ("reason", reason.to_owned()),
    ]
}
