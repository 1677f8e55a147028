//! The start-up check of each account's newest signed checkpoint on SQLite: after the database
//! file is edited so that the stored tree no longer has the root a checkpoint signed, opening the
//! store refuses every write with a message naming the account, the tree size and both roots,
//! reports not ready with it, and still serves reads. An untouched file opens for writing.

use std::path::Path;

use logbook_core::checkpoint::{CheckpointSigner, checkpoint_origin};
use logbook_core::export_verification::hex;
use logbook_core::query::Query;
use logbook_core::store::{EventQuery, LogTree, StoredCheckpoint};
use logbook_core::{AccountId, Store, StoreError};
use logbook_store_sqlite::{SqliteOptions, SqliteStore};
use logbook_testkit::builders::{EventBuilder, RECEIVED_AT};

const EVENT_COUNT: u64 = 12;
/// `event_row = account_row << 40 | seq`: the store's rowid layout.
const SEQ_BITS: u32 = 40;

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, SqliteOptions::default()).expect("the store opens")
}

fn acme() -> AccountId {
    AccountId::parse("acme").unwrap()
}

/// `EVENT_COUNT` events of acme with a signed checkpoint of them; returns the signed root.
async fn checkpointed(path: &Path) -> [u8; 32] {
    let signer = CheckpointSigner::generate([5; 32], "startup.test").expect("a signer");
    let store = open(path);
    let events = (0..EVENT_COUNT)
        .map(|number| {
            EventBuilder::new("acme")
                .message(&format!("Event number {number}"))
                .build()
        })
        .collect();
    store.append_events(events).await.expect("appends");
    let head = store.tree_head(&acme()).await.unwrap();
    let signed = signer
        .sign(
            &checkpoint_origin("startup.test", &acme()),
            head.tree_size,
            &head.root_hash,
        )
        .unwrap();
    store
        .store_checkpoint(&StoredCheckpoint {
            account: acme(),
            tree_size: head.tree_size,
            root_hash: head.root_hash,
            signed_at: RECEIVED_AT,
            text: signed.text,
        })
        .await
        .unwrap();
    store.shutdown().await;
    head.root_hash
}

#[tokio::test]
async fn an_untouched_database_with_checkpoints_opens_for_writing() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("logbook.db");
    checkpointed(&path).await;
    let store = open(&path);
    store.check_ready().await.expect("ready");
    store
        .append_events(vec![EventBuilder::new("acme").build()])
        .await
        .expect("writes are accepted");
    store.shutdown().await;
}

#[tokio::test]
async fn a_stored_tree_that_no_longer_matches_the_newest_checkpoint_refuses_writes_precisely() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("logbook.db");
    let signed_root = checkpointed(&path).await;

    // Someone with access to the file replaces one event's leaf hash (as rewriting an event and
    // its hash would), leaving everything else alone.
    let connection = rusqlite::Connection::open(&path).unwrap();
    let account_row: i64 = connection
        .query_row(
            "SELECT account_row FROM accounts WHERE name = 'acme'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    let changed = connection
        .execute(
            "UPDATE events SET leaf_hash = zeroblob(32) WHERE event_row = ?1",
            [(account_row << SEQ_BITS) | 3],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(connection);

    let store = open(&path);
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
        message.contains(&hex(&signed_root)),
        "the signed root: {message}"
    );
    assert!(
        message.contains("stored tree's root is"),
        "the found root: {message}"
    );
    // A write to another account is refused as well: the file as a whole is suspect.
    assert!(
        store
            .append_events(vec![EventBuilder::new("globex").build()])
            .await
            .is_err()
    );
    match store.check_ready().await {
        Err(StoreError::Unavailable(ready_message)) => assert_eq!(ready_message, message),
        other => panic!("expected not ready, got {other:?}"),
    }
    // Reads keep working, so the damage can be looked at.
    let page = store
        .query_events(
            &acme(),
            &EventQuery {
                query: Query::default(),
                limit: 100,
                after: None,
            },
        )
        .await
        .expect("reads work");
    assert_eq!(page.events.len() as u64, EVENT_COUNT);
    store.shutdown().await;
}
