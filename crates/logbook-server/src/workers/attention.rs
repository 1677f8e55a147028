//! The attention worker: a background task, started by `serve`, that follows every account's log
//! in `seq` order with `Store::events_since`, feeds each event to the "Needs attention" detectors
//! (`logbook_core::attention`), and stores what they find.
//!
//! Its cursor and the detectors' state are saved per account with the findings they led to, in
//! one transaction (`AttentionStore::save_attention_progress`), so a restart resumes exactly
//! where the last save left off: events read but not saved are read again, and the episodes they
//! hold are named by their place in the log, so they are stored once. Several nodes on one
//! PostgreSQL each run a worker; the save is a compare-and-set on the cursor, so of two workers
//! that read the same events one saves and the other starts again from what was saved.
//!
//! # Design
//!
//! - **Detectors** (`logbook_core::attention`): pure, fed one account's events in `seq` order;
//!   all state (burst windows, pending new-address logins, per-actor active-hour bitmaps and active
//!   day counts) is one serializable `AttentionState`. An episode is named by account, kind, subject
//!   and its first `seq`, which depend only on the log.
//! - **Worker** (this module): every 2 s, for each account whose event
//!   count moved, reads `events_since` its saved cursor (1000 at a time) and calls
//!   `save_attention_progress`, which stores the cursor, the state and the findings in one
//!   transaction and only if the cursor is still where the worker read it (compare-and-set), so a
//!   crash re-reads at most one batch and two nodes never both save. Findings are unique by their
//!   episode name (`ON CONFLICT DO NOTHING`). Tables of migration 0007; no row-level security on
//!   them (like people), every query filters by account.
//! - The state grows with one hour record per actor ever seen (about 60 bytes of JSON each) and is
//!   rewritten per batch; an account with very many actors would want per-actor rows instead.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use logbook_core::attention::{AttentionProgress, AttentionSettings, AttentionState};
use logbook_core::{AccountId, Clock, Store, StoreError};

use crate::state::ShutdownSignal;

/// How often the worker looks for new events and how much it reads at once.
#[derive(Debug, Clone)]
pub struct AttentionWorkerSettings {
    /// The shortest time between two rounds over every account.
    pub interval: Duration,
    /// Events read (and held in memory) per account per step.
    pub batch_size: u32,
    pub detectors: AttentionSettings,
}

impl Default for AttentionWorkerSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(2),
            batch_size: 1000,
            detectors: AttentionSettings::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AttentionWorkerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    State(#[from] logbook_core::attention::InvalidAttentionState),
    #[error("event {seq} cannot be decoded: {source}")]
    Event {
        seq: u64,
        #[source]
        source: serde_json::Error,
    },
}

/// What the worker remembers between rounds: the cursor it last saved or saw for each account, so
/// an account with no new events costs nothing but its line in `list_accounts`.
#[derive(Default)]
pub struct AttentionWorker {
    known_next_seq: HashMap<AccountId, u64>,
}

impl AttentionWorker {
    /// Reads every account up to its newest event; returns how many findings were stored.
    pub async fn catch_up_every_account(
        &mut self,
        store: &dyn Store,
        settings: &AttentionWorkerSettings,
        clock: &dyn Clock,
    ) -> Result<usize, StoreError> {
        let mut findings_stored = 0;
        let accounts = store.list_accounts().await?;
        // The lag: events stored but not yet examined, over every account, as the round starts.
        let behind = |known: &HashMap<AccountId, u64>| -> u64 {
            accounts
                .iter()
                .map(|account| {
                    let examined = known.get(&account.account).copied().unwrap_or(0);
                    account.event_count.saturating_sub(examined)
                })
                .sum()
        };
        metrics::gauge!(crate::metrics::ATTENTION_LAG).set(behind(&self.known_next_seq) as f64);
        for account in &accounts {
            if self.known_next_seq.get(&account.account) == Some(&account.event_count) {
                continue;
            }
            match catch_up_account(store, &account.account, settings, clock).await {
                Ok((next_seq, found)) => {
                    self.known_next_seq
                        .insert(account.account.clone(), next_seq);
                    findings_stored += found;
                }
                Err(error) => {
                    // One account's trouble (a state this version cannot read) must not stop the
                    // others; it is retried next round.
                    tracing::warn!(account = %account.account, %error, "attention worker could not read an account");
                }
            }
        }
        // What this round could not read (an account in trouble) is still behind.
        metrics::gauge!(crate::metrics::ATTENTION_LAG).set(behind(&self.known_next_seq) as f64);
        if findings_stored > 0 {
            metrics::counter!("logbook_attention_findings_total").increment(findings_stored as u64);
        }
        Ok(findings_stored)
    }
}

/// Reads one account from its saved cursor to its newest event, saving after each batch.
/// Returns the cursor reached and how many findings were found (and offered to the store).
pub async fn catch_up_account(
    store: &dyn Store,
    account: &AccountId,
    settings: &AttentionWorkerSettings,
    clock: &dyn Clock,
) -> Result<(u64, usize), AttentionWorkerError> {
    let attention = store.attention();
    let batch_size = settings.batch_size.max(1);
    let mut findings_found = 0;
    loop {
        let saved = attention.attention_progress(account).await?;
        let (expected_next_seq, mut state) = match &saved {
            None => (None, AttentionState::default()),
            Some(progress) => (
                Some(progress.next_seq),
                AttentionState::from_bytes(&progress.state)?,
            ),
        };
        let from_seq = expected_next_seq.unwrap_or(0);
        let rows = store.events_since(account, from_seq, batch_size).await?;
        let Some(last_row) = rows.last() else {
            return Ok((from_seq, findings_found));
        };
        let next_seq = last_row.seq + 1;
        let mut findings = Vec::new();
        for row in &rows {
            let event = row.decode().map_err(|source| AttentionWorkerError::Event {
                seq: row.seq,
                source,
            })?;
            findings.extend(state.observe(&settings.detectors, &event));
        }
        let progress = AttentionProgress {
            next_seq,
            state: state.to_bytes(),
        };
        let saved_here = attention
            .save_attention_progress(
                account,
                expected_next_seq,
                &progress,
                &findings,
                clock.now(),
            )
            .await?;
        if saved_here {
            findings_found += findings.len();
        } else {
            // Another node saved this account first: what it saved is where to go on from.
            tracing::debug!(account = %account, "another attention worker read this account first");
            continue;
        }
        if rows.len() < batch_size as usize {
            return Ok((next_seq, findings_found));
        }
    }
}

/// Runs rounds every `settings.interval` until `shutdown` is raised.
pub async fn run(
    store: Arc<dyn Store>,
    settings: Arc<AttentionWorkerSettings>,
    clock: Arc<dyn Clock>,
    shutdown: ShutdownSignal,
) {
    let mut worker = AttentionWorker::default();
    let mut ticker = tokio::time::interval(settings.interval.max(Duration::from_millis(10)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => {
                if let Err(error) = worker
                    .catch_up_every_account(store.as_ref(), &settings, clock.as_ref())
                    .await
                {
                    tracing::warn!(%error, "attention round failed; retrying at the next interval");
                }
            }
        }
    }
}
