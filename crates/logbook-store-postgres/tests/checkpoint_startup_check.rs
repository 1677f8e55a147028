//! The start-up check of each account's newest signed checkpoint on PostgreSQL: after the tables
//! are edited so that the stored tree no longer has the root a checkpoint signed, a node that
//! connects refuses every write with a message naming the account, the tree size and both roots,
//! and reports not ready with it. Without PostgreSQL a local run prints SKIPPED.

use logbook_core::checkpoint::{CheckpointSigner, checkpoint_origin};
use logbook_core::export_verification::hex;
use logbook_core::store::{LogTree, StoredCheckpoint};
use logbook_core::{AccountId, Store, StoreError};
use logbook_store_postgres::scratch_database::ScratchDatabase;
use logbook_store_postgres::{PostgresOptions, PostgresStore};
use logbook_testkit::builders::{EventBuilder, RECEIVED_AT};
use tokio_postgres::NoTls;

const EVENT_COUNT: u64 = 12;

async fn open(url: &str) -> PostgresStore {
    PostgresStore::connect(
        url,
        PostgresOptions {
            pool_size: 2,
            ..PostgresOptions::default()
        },
    )
    .await
    .expect("the store connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_tree_that_no_longer_matches_the_newest_checkpoint_refuses_writes_precisely() {
    let Some(database) = ScratchDatabase::create().await else {
        return;
    };
    let acme = AccountId::parse("acme").unwrap();
    let signer = CheckpointSigner::generate([5; 32], "startup.test").expect("a signer");
    let store = open(&database.url).await;
    let events = (0..EVENT_COUNT)
        .map(|number| {
            EventBuilder::new("acme")
                .message(&format!("Event number {number}"))
                .build()
        })
        .collect();
    store.append_events(events).await.expect("appends");
    let head = store.tree_head(&acme).await.unwrap();
    let signed = signer
        .sign(
            &checkpoint_origin("startup.test", &acme),
            head.tree_size,
            &head.root_hash,
        )
        .unwrap();
    store
        .store_checkpoint(&StoredCheckpoint {
            account: acme.clone(),
            tree_size: head.tree_size,
            root_hash: head.root_hash,
            signed_at: RECEIVED_AT,
            text: signed.text,
        })
        .await
        .unwrap();
    store.shutdown().await;

    // An untouched database: a second node connects and writes.
    let untouched = open(&database.url).await;
    untouched.check_ready().await.expect("ready");
    untouched.shutdown().await;

    // A database administrator replaces one event's leaf hash.
    let (tables, connection) = tokio_postgres::connect(&database.url, NoTls)
        .await
        .expect("a direct connection");
    tokio::spawn(connection);
    tables
        .batch_execute("SET logbook.all_accounts = 'on'")
        .await
        .unwrap();
    let changed = tables
        .execute(
            "UPDATE events SET leaf_hash = decode(repeat('00', 32), 'hex') \
             WHERE account_row = (SELECT account_row FROM accounts WHERE name = 'acme') AND seq = 3",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);

    let store = open(&database.url).await;
    let refusal = store
        .append_events(vec![EventBuilder::new("acme").build()])
        .await;
    let Err(StoreError::Unavailable(message)) = refusal else {
        panic!("expected writes to be refused, got {refusal:?}");
    };
    assert!(message.contains("account acme"), "{message}");
    assert!(
        message.contains(&format!("tree size {EVENT_COUNT}")),
        "{message}"
    );
    assert!(
        message.contains(&hex(&head.root_hash)),
        "the signed root: {message}"
    );
    assert!(
        message.contains("stored tree's root is"),
        "the found root: {message}"
    );
    match store.check_ready().await {
        Err(StoreError::Unavailable(ready_message)) => assert_eq!(ready_message, message),
        other => panic!("expected not ready, got {other:?}"),
    }
    // Reads keep working.
    assert!(
        store
            .get_event(&acme, &"no-such-event".into())
            .await
            .unwrap()
            .is_none()
    );
    store.shutdown().await;
}
