//! Two nodes ingesting into one account at once never take it past its daily quota: each node's
//! writer counts under the account's row lock, in the events' transaction.

use std::sync::Arc;

use logbook_core::store::StoredAccountLimits;
use logbook_core::{AccountId, Store, StoreError};
use logbook_store_postgres::scratch_database::ScratchDatabase;
use logbook_store_postgres::{PostgresOptions, PostgresStore};
use logbook_testkit::EventBuilder;
use logbook_testkit::builders::RECEIVED_AT;

async fn connect(database: &ScratchDatabase) -> PostgresStore {
    PostgresStore::connect(
        &database.url,
        PostgresOptions {
            pool_size: 4,
            ..PostgresOptions::default()
        },
    )
    .await
    .expect("the store connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_at_once_never_store_more_than_the_daily_quota() {
    let Some(database) = ScratchDatabase::create().await else {
        return;
    };
    let nodes = [
        Arc::new(connect(&database).await),
        Arc::new(connect(&database).await),
    ];
    let acme = AccountId::parse("acme").unwrap();
    nodes[0].create_account(&acme, RECEIVED_AT).await.unwrap();
    nodes[0]
        .account_limits()
        .set_stored_account_limits(
            &acme,
            &StoredAccountLimits {
                events_per_day: Some(100),
                ..StoredAccountLimits::default()
            },
            RECEIVED_AT,
        )
        .await
        .unwrap();
    let mut appenders = Vec::new();
    for appender in 0..8 {
        let node = nodes[appender % 2].clone();
        appenders.push(tokio::spawn(async move {
            let mut stored = 0_u64;
            for round in 0..10 {
                // Batches of 3 against a quota of 100: 33 batches fit, the 34th would overshoot.
                let events = (0..3)
                    .map(|number| {
                        EventBuilder::new("acme")
                            .message(&format!("appender {appender} round {round} event {number}"))
                            .build()
                    })
                    .collect();
                match node.append_events(events).await {
                    Ok(outcomes) => stored += outcomes.len() as u64,
                    Err(StoreError::VolumeQuotaExceeded { .. }) => {}
                    Err(other) => panic!("unexpected error: {other}"),
                }
            }
            stored
        }));
    }
    let mut acknowledged = 0;
    for appender in appenders {
        acknowledged += appender.await.unwrap();
    }
    assert_eq!(
        acknowledged, 99,
        "33 whole batches of 3, and no part of a 34th"
    );
    assert_eq!(nodes[1].next_seq(&acme).await.unwrap(), 99);
}
