//! Conformance cases for the per-account stored-volume quotas (issue 7): events per UTC day and
//! bytes stored, enforced by each store's writer in the events' transaction.

use std::sync::Arc;

use logbook_core::store::{AppendOutcome, StoredAccountLimits};
use logbook_core::volume_quota::VolumeQuotaField;
use logbook_core::{AccountId, Store, StoreError};
use time::Duration;

use crate::builders::{EventBuilder, RECEIVED_AT};

fn account(name: &str) -> AccountId {
    AccountId::parse(name).expect("a valid test account name")
}

async fn set_quota(store: &Arc<dyn Store>, name: &str, quota: StoredAccountLimits) {
    store
        .account_limits()
        .set_stored_account_limits(&account(name), &quota, RECEIVED_AT)
        .await
        .expect("storing a quota");
}

/// Accounts `acme`, with a quota of `events_per_day`, and `globex`, without one, whose events must
/// never be refused for acme's.
async fn acme_with_daily_quota_beside_globex(store: &Arc<dyn Store>, events_per_day: u64) {
    for name in ["acme", "globex"] {
        store
            .create_account(&account(name), RECEIVED_AT)
            .await
            .unwrap();
    }
    set_quota(
        store,
        "acme",
        StoredAccountLimits {
            events_per_day: Some(events_per_day),
            ..StoredAccountLimits::default()
        },
    )
    .await;
}

async fn stored_count(store: &Arc<dyn Store>, name: &str) -> u64 {
    let tree = store.log_tree().expect("the store keeps a tree");
    tree.tree_head(&account(name))
        .await
        .expect("reading the tree head")
        .tree_size
}

fn batch(name: &str, size: usize, day_offset: i64, label: &str) -> Vec<logbook_core::NewEvent> {
    (0..size)
        .map(|number| {
            EventBuilder::new(name)
                .received_at(RECEIVED_AT + Duration::days(day_offset))
                .message(&format!("{label} {number}"))
                .build()
        })
        .collect()
}

fn assert_refused_by(result: Result<Vec<AppendOutcome>, StoreError>, expected: VolumeQuotaField) {
    match result {
        Err(StoreError::VolumeQuotaExceeded { field, .. }) => assert_eq!(field, expected),
        other => panic!("expected a {} refusal, got {other:?}", expected.name()),
    }
}

pub async fn events_per_day_quota_refuses_a_whole_batch_over_it_and_allows_the_next_day(
    store: Arc<dyn Store>,
) {
    acme_with_daily_quota_beside_globex(&store, 5).await;

    // Under the quota: stored. Exactly up to it: stored.
    store
        .append_events(batch("acme", 3, 0, "first"))
        .await
        .unwrap();
    store
        .append_events(batch("acme", 2, 0, "second"))
        .await
        .unwrap();
    assert_eq!(stored_count(&store, "acme").await, 5);

    // One more event the same UTC day: refused, with the time until the next UTC midnight
    // (RECEIVED_AT is noon), and nothing stored.
    match store.append_events(batch("acme", 1, 0, "over")).await {
        Err(StoreError::VolumeQuotaExceeded {
            field: VolumeQuotaField::EventsPerDay,
            limit: 5,
            retry_after_seconds: Some(43_200),
            ..
        }) => {}
        other => panic!("expected an events_per_day refusal, got {other:?}"),
    }
    assert_eq!(stored_count(&store, "acme").await, 5);

    // Another account is not affected by acme's quota.
    store
        .append_events(batch("globex", 20, 0, "globex"))
        .await
        .unwrap();
    assert_eq!(stored_count(&store, "globex").await, 20);

    // The next UTC day (by received_at) counts from zero; a batch larger than what is left of
    // the quota is refused whole, not cut.
    store
        .append_events(batch("acme", 4, 1, "tomorrow"))
        .await
        .unwrap();
    assert_refused_by(
        store.append_events(batch("acme", 2, 1, "too many")).await,
        VolumeQuotaField::EventsPerDay,
    );
    assert_eq!(stored_count(&store, "acme").await, 9);
    store
        .append_events(batch("acme", 1, 1, "last"))
        .await
        .unwrap();
    assert_eq!(stored_count(&store, "acme").await, 10);

    // A retry of a stored keyed event adds nothing, so it still gets its receipt at the quota.
    set_quota(
        &store,
        "globex",
        StoredAccountLimits {
            events_per_day: Some(21),
            ..StoredAccountLimits::default()
        },
    )
    .await;
    let keyed = EventBuilder::new("globex").key("retried").build();
    let first = store.append_events(vec![keyed.clone()]).await.unwrap();
    assert!(matches!(first[0], AppendOutcome::Stored(_)));
    let retried = store.append_events(vec![keyed]).await.unwrap();
    assert!(matches!(retried[0], AppendOutcome::Duplicate(_)));

    // Clearing the quota lifts it at the next commit.
    set_quota(&store, "acme", StoredAccountLimits::default()).await;
    store
        .append_events(batch("acme", 3, 1, "cleared"))
        .await
        .unwrap();
    assert_eq!(stored_count(&store, "acme").await, 13);
}

pub async fn stored_bytes_quota_counts_every_stored_event_and_refuses_the_batch_that_would_pass_it(
    store: Arc<dyn Store>,
) {
    // Events stored before any quota is set count too.
    store
        .append_events(batch("acme", 4, 0, "before"))
        .await
        .unwrap();
    let one_event_bytes =
        logbook_core::NewEvent::body_without_seq(&batch("acme", 1, 0, "before")[0]).len() as u64;
    set_quota(
        &store,
        "acme",
        StoredAccountLimits {
            // Room for about two more events of the same size, not three.
            stored_bytes: Some(one_event_bytes * 6 + one_event_bytes / 2),
            ..StoredAccountLimits::default()
        },
    )
    .await;
    assert_refused_by(
        store.append_events(batch("acme", 3, 0, "before")).await,
        VolumeQuotaField::StoredBytes,
    );
    assert_eq!(stored_count(&store, "acme").await, 4);
    store
        .append_events(batch("acme", 2, 0, "before"))
        .await
        .unwrap();
    assert_eq!(stored_count(&store, "acme").await, 6);
    // A new day does not free bytes.
    assert_refused_by(
        store.append_events(batch("acme", 1, 1, "before")).await,
        VolumeQuotaField::StoredBytes,
    );
    assert_eq!(stored_count(&store, "acme").await, 6);
}

pub async fn concurrent_batches_never_take_an_account_past_its_daily_quota(store: Arc<dyn Store>) {
    acme_with_daily_quota_beside_globex(&store, 10).await;
    // Sixteen batches of two at once, many of them in the same group commit: exactly five fit.
    let mut tasks = Vec::new();
    for number in 0..16 {
        let store = store.clone();
        let name = if number % 2 == 0 { "acme" } else { "globex" };
        let batch = batch(name, 2, 0, &format!("concurrent {number}"));
        let batch = if name == "acme" {
            [batch.clone(), batch_more(name, number)].concat()
        } else {
            batch
        };
        tasks.push(tokio::spawn(async move {
            (name, store.append_events(batch).await)
        }));
    }
    let mut acme_accepted = 0;
    let mut acme_refused = 0;
    for task in tasks {
        let (name, result) = task.await.unwrap();
        match (name, result) {
            ("acme", Ok(outcomes)) => {
                assert_eq!(outcomes.len(), 3);
                acme_accepted += 1;
            }
            ("acme", Err(StoreError::VolumeQuotaExceeded { .. })) => acme_refused += 1,
            ("globex", Ok(_)) => {}
            (name, other) => panic!("unexpected answer for {name}: {other:?}"),
        }
    }
    // Batches of three against a quota of ten: three fit (nine events), the other five are
    // refused whole; no partial batch is ever stored.
    assert_eq!((acme_accepted, acme_refused), (3, 5));
    assert_eq!(stored_count(&store, "acme").await, 9);
    assert_eq!(stored_count(&store, "globex").await, 16);
}

fn batch_more(name: &str, number: usize) -> Vec<logbook_core::NewEvent> {
    batch(name, 1, 0, &format!("concurrent extra {number}"))
}
