//! The tamper suite on PostgreSQL: a log of 12 events with a signed checkpoint, then the tables
//! are edited directly (as a database administrator could) and `verify_store` — what
//! `logbook verify --database` runs — must name the exact account and `seq` of each edit. Without
//! a reachable PostgreSQL a local run prints `SKIPPED (...)` and passes; under CI it fails.

use logbook_core::checkpoint::{CheckpointSigner, checkpoint_origin};
use logbook_core::log_verification::{LogVerificationError, verify_store};
use logbook_core::merkle::CompactRange;
use logbook_core::store::{AppendOutcome, LogTree, StoredCheckpoint};
use logbook_core::{AccountId, Store};
use logbook_store_postgres::scratch_database::ScratchDatabase;
use logbook_store_postgres::{PostgresOptions, PostgresStore};
use logbook_testkit::builders::{EventBuilder, RECEIVED_AT};
use tokio_postgres::NoTls;

const EVENT_COUNT: i64 = 12;

struct Log {
    database: ScratchDatabase,
    signer: CheckpointSigner,
    tables: tokio_postgres::Client,
    acme_row: i64,
}

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

async fn checkpointed_log() -> Option<Log> {
    let database = ScratchDatabase::create().await?;
    let signer = CheckpointSigner::generate([9; 32], "tamper.test").expect("a signer");
    let store = open(&database.url).await;
    for account in ["acme", "globex"] {
        let events = (0..EVENT_COUNT)
            .map(|number| {
                EventBuilder::new(account)
                    .message(&format!("Event number {number}"))
                    .build()
            })
            .collect();
        let outcomes = store.append_events(events).await.expect("appends");
        assert!(
            outcomes
                .iter()
                .all(|outcome| matches!(outcome, AppendOutcome::Stored(_)))
        );
        let account = AccountId::parse(account).unwrap();
        let head = store.tree_head(&account).await.expect("tree head");
        let signed = signer
            .sign(
                &checkpoint_origin("tamper.test", &account),
                head.tree_size,
                &head.root_hash,
            )
            .expect("signs");
        store
            .store_checkpoint(&StoredCheckpoint {
                account,
                tree_size: head.tree_size,
                root_hash: head.root_hash,
                signed_at: RECEIVED_AT,
                text: signed.text,
            })
            .await
            .expect("stores the checkpoint");
    }
    store.shutdown().await;
    let (tables, connection) = tokio_postgres::connect(&database.url, NoTls)
        .await
        .expect("a direct connection");
    tokio::spawn(connection);
    tables
        .batch_execute("SET logbook.all_accounts = 'on'")
        .await
        .unwrap();
    let acme_row = tables
        .query_one("SELECT account_row FROM accounts WHERE name = 'acme'", &[])
        .await
        .unwrap()
        .get(0);
    Some(Log {
        database,
        signer,
        tables,
        acme_row,
    })
}

async fn assert_caught_at(log: &Log, expected_seq: u64) {
    let store = open(&log.database.url).await;
    let outcome = verify_store(&store, &log.signer.verifier()).await;
    store.shutdown().await;
    match outcome {
        Err(LogVerificationError::Event { account, seq, .. }) => {
            assert_eq!((account.as_str(), seq), ("acme", expected_seq));
        }
        other => panic!("expected a mismatch at acme seq {expected_seq}, got {other:?}"),
    }
}

#[tokio::test]
async fn an_untouched_log_verifies_with_its_counts() {
    let Some(log) = checkpointed_log().await else {
        return;
    };
    let store = open(&log.database.url).await;
    let verified = verify_store(&store, &log.signer.verifier())
        .await
        .expect("verifies");
    store.shutdown().await;
    assert_eq!(
        (verified.accounts, verified.events, verified.checkpoints),
        (2, 2 * EVENT_COUNT as u64, 2)
    );
}

#[tokio::test]
async fn a_changed_message_is_caught_at_its_seq() {
    let Some(log) = checkpointed_log().await else {
        return;
    };
    let changed = log
        .tables
        .execute(
            "UPDATE events SET body = replace(body, 'Event number 5', 'Event number 6') WHERE account_row = $1 AND seq = 5",
            &[&log.acme_row],
        )
        .await
        .unwrap();
    assert_eq!(changed, 1);
    assert_caught_at(&log, 5).await;
}

#[tokio::test]
async fn a_deleted_row_is_caught_at_its_seq() {
    let Some(log) = checkpointed_log().await else {
        return;
    };
    log.tables
        .execute(
            "DELETE FROM events WHERE account_row = $1 AND seq = 3",
            &[&log.acme_row],
        )
        .await
        .unwrap();
    assert_caught_at(&log, 3).await;
}

#[tokio::test]
async fn an_inserted_row_is_caught_at_its_seq() {
    let Some(log) = checkpointed_log().await else {
        return;
    };
    log.tables
        .execute(
            "INSERT INTO events (account_row, seq, created_at, id, action, actor_id, ip, outcome, new_ip, message_tokens, body) \
             SELECT account_row, $2, created_at, 'forged', action, actor_id, ip, outcome, new_ip, message_tokens, replace(body, 'Event number 2', 'Forged event') \
             FROM events WHERE account_row = $1 AND seq = 2",
            &[&log.acme_row, &EVENT_COUNT],
        )
        .await
        .unwrap();
    assert_caught_at(&log, EVENT_COUNT as u64).await;
}

#[tokio::test]
async fn two_swapped_rows_are_caught_at_the_first() {
    let Some(log) = checkpointed_log().await else {
        return;
    };
    log.tables
        .execute(
            "UPDATE events e SET body = o.body FROM events o \
             WHERE e.account_row = $1 AND o.account_row = $1 \
             AND ((e.seq = 4 AND o.seq = 8) OR (e.seq = 8 AND o.seq = 4))",
            &[&log.acme_row],
        )
        .await
        .unwrap();
    assert_caught_at(&log, 4).await;
}

#[tokio::test]
async fn a_truncated_tail_with_a_recomputed_tree_is_caught_against_the_checkpoint() {
    let Some(log) = checkpointed_log().await else {
        return;
    };
    let kept: i64 = 9;
    let tables = &log.tables;
    tables
        .execute(
            "DELETE FROM events WHERE account_row = $1 AND seq >= $2",
            &[&log.acme_row, &kept],
        )
        .await
        .unwrap();
    // Rebuild the tree over what is left, as a careful forger would.
    tables
        .execute(
            "DELETE FROM tree_nodes WHERE account_row = $1",
            &[&log.acme_row],
        )
        .await
        .unwrap();
    let rows = tables
        .query(
            "SELECT seq, body FROM events WHERE account_row = $1 ORDER BY seq",
            &[&log.acme_row],
        )
        .await
        .unwrap();
    let mut tree = CompactRange::new();
    let mut nodes = Vec::new();
    for row in rows {
        let event = logbook_core::EventRow {
            seq: row.get::<_, i64>(0) as u64,
            created_at_micros: 0,
            body_without_seq: row.get(1),
            location: None,
            new_ip: false,
            new_network: false,
            new_country: false,
        };
        tree.append(event.leaf_hash().unwrap(), |node| nodes.push(node));
    }
    for node in nodes {
        tables
            .execute(
                "INSERT INTO tree_nodes (account_row, level, node_index, hash) VALUES ($1, $2, $3, $4)",
                &[
                    &log.acme_row,
                    &i16::from(node.id.level),
                    &(node.id.index as i64),
                    &node.hash.as_slice(),
                ],
            )
            .await
            .unwrap();
    }
    tables
        .execute(
            "UPDATE tree_state SET tree_size = $2, compact_range = $3 WHERE account_row = $1",
            &[&log.acme_row, &kept, &tree.to_bytes()],
        )
        .await
        .unwrap();
    tables
        .execute(
            "UPDATE accounts SET next_seq = $2 WHERE account_row = $1",
            &[&log.acme_row, &kept],
        )
        .await
        .unwrap();
    assert_caught_at(&log, kept as u64).await;
}

/// Acme's events below `below` removed by retention, with a statement signed by the log's key.
async fn prune_acme(log: &Log, below: u64) {
    use logbook_core::retention::{PruneSigning, prune_prefix};
    let store = open(&log.database.url).await;
    let outcome = prune_prefix(
        &store,
        &AccountId::parse("acme").unwrap(),
        below,
        PruneSigning {
            signer: &log.signer,
            instance_name: "tamper.test",
        },
        "retention of 30 days",
        RECEIVED_AT,
        5,
    )
    .await
    .expect("prunes");
    assert_eq!(outcome.deleted_events, below);
    store.shutdown().await;
}

#[tokio::test]
async fn a_pruned_log_verifies_and_edits_after_its_prefix_or_to_its_statement_are_caught() {
    let Some(log) = checkpointed_log().await else {
        return;
    };
    prune_acme(&log, 5).await;
    let store = open(&log.database.url).await;
    let verified = verify_store(&store, &log.signer.verifier())
        .await
        .expect("a pruned log verifies");
    store.shutdown().await;
    assert_eq!((verified.pruned_accounts, verified.pruned_events), (1, 5));

    // An event after the prefix deleted by hand is still caught at its seq.
    log.tables
        .execute(
            "DELETE FROM events WHERE account_row = $1 AND seq = 8",
            &[&log.acme_row],
        )
        .await
        .unwrap();
    assert_caught_at(&log, 8).await;

    // A statement edited to cover more than was pruned no longer verifies.
    let Some(log) = checkpointed_log().await else {
        return;
    };
    prune_acme(&log, 5).await;
    log.tables
        .execute(
            "UPDATE pruned_prefixes SET statement = replace(statement, E'\\n5\\n', E'\\n7\\n'), \
             pruned_below_seq = 7 WHERE account_row = $1",
            &[&log.acme_row],
        )
        .await
        .unwrap();
    log.tables
        .execute(
            "DELETE FROM events WHERE account_row = $1 AND seq < 7",
            &[&log.acme_row],
        )
        .await
        .unwrap();
    assert_caught_at(&log, 0).await;
}
