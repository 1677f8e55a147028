//! The pruner: every `interval`, for each account with a retention period (its own, or the
//! instance default) and no legal hold, removes the prefix of its log received before the period
//! (`logbook_core::retention`). The prefix's compact range and a statement signed with the
//! checkpoint key are kept first; the events then go `batch_size` at a time with a pause between
//! batches, so the writer and readers only ever wait for one short batch. Each pruning that moved
//! the prefix writes a `logbook.retention.prune` event into the account's own log. In the same
//! round, accounts with a personal-data period lose the personal fields of their older events
//! (`logbook_core::personal_data`), paced the same way, and get a `logbook.personal_data.age`
//! event.
//!
//! Several nodes may run it on one PostgreSQL: recording a prefix only moves it forward, and each
//! delete batch runs under the account's row lock.

use std::sync::Arc;
use std::time::Duration;

use logbook_core::event::{Actor, ActorType, NewEvent, Outcome};
use logbook_core::retention::{
    AccountRetention, AgingOutcome, PERSONAL_DATA_AGE_ACTION, PersonalDataPolicy, PruneSigning,
    age_personal_data, prune_point, record_prefix, retention_policy_text,
};
use logbook_core::{AccountId, Clock, Store, StoreError};

use crate::state::ShutdownSignal;
use crate::workers::checkpointer::CheckpointSigning;

/// How retention runs on this node.
#[derive(Debug, Clone)]
pub struct RetentionSettings {
    /// The period of accounts without their own (`None`: keep everything).
    pub default_retention_days: Option<u32>,
    pub interval: Duration,
    /// Events one delete transaction removes.
    pub batch_size: u32,
    /// The pause between two delete batches.
    pub pause_between_batches: Duration,
    /// The personal-data period of accounts without their own (`None`: keep personal data as
    /// long as the event).
    pub default_personal_data_days: Option<u32>,
    /// Whether aging keeps the /24 or /48 of a removed address, for accounts that do not say.
    pub default_keep_network: bool,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            default_retention_days: None,
            interval: Duration::from_secs(60),
            // Measured with `logbook-bench --pruner` (BENCHMARKS.md, "Smaller batches"): what
            // pruning adds to the slowest requests is the time they overlap a batch, on the
            // writer's thread and the cores, so short batches matter more than the pause. With
            // 100 events a batch and a pause of 15 ms (or four times a slower batch,
            // `pause_after_batch`) ingest and query latency stay near what they are with the
            // pruner idle, while it removes some 1,000 to 2,000 events a second beside 5,000
            // arriving (500 a batch: 3,000 to 5,000, with the slowest requests up to 80 % slower).
            batch_size: 100,
            pause_between_batches: Duration::from_millis(15),
            default_personal_data_days: None,
            default_keep_network: false,
        }
    }
}

/// How many times a delete batch's own duration the pruner waits after it, at least.
const PAUSE_PER_BATCH_DURATION: u32 = 4;

/// The pause after a delete batch that took `batch_took`: the configured pause, or four times the
/// batch if that is longer. A batch's duration includes its wait for the writer and the cores, so
/// on a loaded machine the pruner slows down instead of taking a larger share of them; it never
/// holds the writer more than a fifth of the time (measured with `logbook-bench --pruner`,
/// BENCHMARKS.md: what pruning adds to the latency tails is waiting for a core).
fn pause_after_batch(configured: Duration, batch_took: Duration) -> Duration {
    configured.max(batch_took * PAUSE_PER_BATCH_DURATION)
}

/// The action of the event a pruning writes into the account's log.
pub const PRUNE_ACTION: &str = "logbook.retention.prune";

/// Runs rounds until `shutdown` is raised. A round that fails is logged and retried next round.
pub async fn run(
    store: Arc<dyn Store>,
    signing: Arc<CheckpointSigning>,
    clock: Arc<dyn Clock>,
    settings: Arc<RetentionSettings>,
    shutdown: ShutdownSignal,
) {
    let mut ticker = tokio::time::interval(settings.interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = ticker.tick() => {
                if let Err(error) = run_round(store.as_ref(), &signing, clock.as_ref(), &settings, &shutdown).await {
                    tracing::warn!(%error, "a retention round failed; the next round retries");
                }
            }
        }
    }
}

/// One pass over every account. Public so tests and `logbook retention prune` run exactly what
/// the server runs.
pub async fn run_round(
    store: &dyn Store,
    signing: &CheckpointSigning,
    clock: &dyn Clock,
    settings: &RetentionSettings,
    shutdown: &ShutdownSignal,
) -> Result<u64, StoreError> {
    let mut deleted = 0;
    for (account, retention) in store.retention().all_account_retention().await? {
        if shutdown.is_raised() {
            break;
        }
        deleted += prune_account(
            store, signing, clock, settings, &account, &retention, shutdown,
        )
        .await?;
        age_account(store, clock, settings, &account, &retention, shutdown).await?;
    }
    Ok(deleted)
}

/// Removes the personal fields of the account's events older than its personal-data period,
/// batch by batch with the same pauses as pruning, and writes `logbook.personal_data.age` when
/// something changed.
async fn age_account(
    store: &dyn Store,
    clock: &dyn Clock,
    settings: &RetentionSettings,
    account: &AccountId,
    retention: &AccountRetention,
    shutdown: &ShutdownSignal,
) -> Result<(), StoreError> {
    let Some(policy) = PersonalDataPolicy::of_account(
        retention,
        settings.default_personal_data_days,
        settings.default_keep_network,
    ) else {
        return Ok(());
    };
    if retention.legal_hold.is_some() {
        return Ok(());
    }
    let now = clock.now();
    let outcome = match age_personal_data(store, account, &policy, now, settings.batch_size, || {
        let pause = settings.pause_between_batches;
        let stop = shutdown.is_raised();
        async move {
            if !stop {
                tokio::time::sleep(pause).await;
            }
        }
    })
    .await
    {
        Ok(outcome) => outcome,
        // A hold set since the settings were read: what was done stays, the rest waits.
        Err(StoreError::LegalHold(_)) => return Ok(()),
        Err(error) => return Err(error),
    };
    if outcome.events_changed > 0 {
        metrics::counter!(crate::metrics::EVENTS_AGED).increment(outcome.events_changed);
        tracing::info!(%account, aged_below_seq = outcome.aged_below_seq, events = outcome.events_changed, "personal data aged");
        store
            .append_events(vec![age_event(account, &policy, outcome, now)])
            .await?;
    }
    Ok(())
}

/// `logbook.personal_data.age` in the account's own log: which fields went from how many events.
fn age_event(
    account: &AccountId,
    policy: &PersonalDataPolicy,
    outcome: AgingOutcome,
    now: time::OffsetDateTime,
) -> NewEvent {
    let mut metadata = serde_json::Map::new();
    metadata.insert("aged_below_seq".into(), outcome.aged_below_seq.into());
    metadata.insert("events_changed".into(), outcome.events_changed.into());
    metadata.insert("personal_data_days".into(), policy.days.into());
    metadata.insert("keep_network".into(), policy.keep_network.into());
    retention_event(
        account,
        PERSONAL_DATA_AGE_ACTION,
        format!(
            "Removed the personal data of {} events older than {} days, below seq {}",
            outcome.events_changed, policy.days, outcome.aged_below_seq
        ),
        metadata,
        now,
    )
}

/// An event the retention worker writes into an account's own log, as the Logbook system.
fn retention_event(
    account: &AccountId,
    action: &str,
    message: String,
    metadata: serde_json::Map<String, serde_json::Value>,
    now: time::OffsetDateTime,
) -> NewEvent {
    NewEvent {
        id: uuid::Uuid::now_v7().to_string().into(),
        account: account.clone(),
        received_at: now,
        created_at: now,
        created_at_was_sent: false,
        action: action.to_owned(),
        message,
        actor: Some(Actor {
            id: "logbook".into(),
            name: Some("Logbook retention".into()),
            actor_type: Some(ActorType::System),
        }),
        ip: None,
        user_agent: None,
        outcome: Some(Outcome::Success),
        targets: Vec::new(),
        changes: Vec::new(),
        metadata: Some(metadata),
        key: None,
        salt: logbook_core::personal_data::EventSalt::random(),
    }
}

async fn prune_account(
    store: &dyn Store,
    signing: &CheckpointSigning,
    clock: &dyn Clock,
    settings: &RetentionSettings,
    account: &AccountId,
    retention: &AccountRetention,
    shutdown: &ShutdownSignal,
) -> Result<u64, StoreError> {
    let Some(days) = retention.retention_days.or(settings.default_retention_days) else {
        return Ok(0);
    };
    if retention.legal_hold.is_some() {
        return Ok(0);
    }
    let now = clock.now();
    let cutoff = now - time::Duration::days(i64::from(days));
    let below = prune_point(store, account, cutoff).await?;
    let policy = retention_policy_text(days);
    let moved = match record_prefix(
        store,
        account,
        below,
        PruneSigning {
            signer: &signing.signer,
            instance_name: &signing.instance_name,
        },
        &policy,
        now,
    )
    .await
    {
        Ok(moved) => moved,
        // A hold set since the settings were read: nothing is pruned, as it should be.
        Err(StoreError::LegalHold(_)) => return Ok(0),
        Err(error) => return Err(error),
    };
    let mut deleted = 0;
    loop {
        let batch_started = std::time::Instant::now();
        let batch = match store
            .retention()
            .delete_pruned_events(account, settings.batch_size)
            .await
        {
            Ok(batch) => batch,
            Err(StoreError::LegalHold(_)) => break,
            Err(error) => return Err(error),
        };
        deleted += batch;
        metrics::counter!(crate::metrics::EVENTS_PRUNED).increment(batch);
        if batch < u64::from(settings.batch_size) || shutdown.is_raised() {
            break;
        }
        tokio::time::sleep(pause_after_batch(
            settings.pause_between_batches,
            batch_started.elapsed(),
        ))
        .await;
    }
    if moved {
        tracing::info!(%account, pruned_below_seq = below, "pruned by retention");
        store
            .append_events(vec![prune_event(account, below, &policy, cutoff, now)])
            .await?;
    }
    Ok(deleted)
}

/// `logbook.retention.prune` in the account's own log: what went, under which policy.
fn prune_event(
    account: &AccountId,
    pruned_below_seq: u64,
    policy: &str,
    cutoff: time::OffsetDateTime,
    now: time::OffsetDateTime,
) -> NewEvent {
    let cutoff_text = cutoff
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let mut metadata = serde_json::Map::new();
    metadata.insert("pruned_below_seq".into(), pruned_below_seq.into());
    metadata.insert("policy".into(), policy.into());
    metadata.insert("received_before".into(), cutoff_text.clone().into());
    retention_event(
        account,
        PRUNE_ACTION,
        format!(
            "Removed the events below seq {pruned_below_seq}, received before {cutoff_text} ({policy})"
        ),
        metadata,
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_after_a_batch_is_the_configured_one_or_four_times_a_slow_batch() {
        let configured = Duration::from_millis(50);
        assert_eq!(
            pause_after_batch(configured, Duration::from_millis(10)),
            configured
        );
        assert_eq!(
            pause_after_batch(configured, Duration::from_millis(30)),
            Duration::from_millis(120)
        );
        assert_eq!(
            pause_after_batch(Duration::ZERO, Duration::from_millis(5)),
            Duration::from_millis(20)
        );
    }
}
