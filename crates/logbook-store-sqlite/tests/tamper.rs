//! The tamper suite on SQLite: a log of 12 events with a signed checkpoint, then the database file
//! is edited directly (as someone with access to the disk would) and `verify_store` — what
//! `logbook verify --database` runs — must name the exact account and `seq` of each edit.

use std::path::{Path, PathBuf};

use logbook_core::checkpoint::{CheckpointSigner, checkpoint_origin};
use logbook_core::export_verification::{ConsistencyCheckError, verify_consistency};
use logbook_core::log_verification::{LogVerificationError, verify_store};
use logbook_core::merkle::{self, CompactRange};
use logbook_core::store::{AppendOutcome, LogTree, StoredCheckpoint};
use logbook_core::{AccountId, Store};
use logbook_store_sqlite::{SqliteOptions, SqliteStore};
use logbook_testkit::builders::{EventBuilder, RECEIVED_AT};

const EVENT_COUNT: u64 = 12;
/// `event_row = account_row << 40 | seq`: the store's rowid layout.
const SEQ_BITS: u32 = 40;

struct Log {
    _directory: tempfile::TempDir,
    path: PathBuf,
    signer: CheckpointSigner,
}

fn open(path: &Path) -> SqliteStore {
    SqliteStore::open(path, SqliteOptions::default()).expect("the store opens")
}

async fn sign_checkpoint(store: &SqliteStore, signer: &CheckpointSigner, account: &AccountId) {
    let head = store.tree_head(account).await.expect("tree head");
    let signed = signer
        .sign(
            &checkpoint_origin("tamper.test", account),
            head.tree_size,
            &head.root_hash,
        )
        .expect("signs");
    store
        .store_checkpoint(&StoredCheckpoint {
            account: account.clone(),
            tree_size: head.tree_size,
            root_hash: head.root_hash,
            signed_at: RECEIVED_AT,
            text: signed.text,
        })
        .await
        .expect("stores the checkpoint");
}

/// Two accounts of `EVENT_COUNT` events each, checkpointed, store closed.
async fn checkpointed_log() -> Log {
    let directory = tempfile::tempdir().expect("temp dir");
    let path = directory.path().join("logbook.db");
    let signer = CheckpointSigner::generate([7; 32], "tamper.test").expect("a signer");
    let store = open(&path);
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
        sign_checkpoint(&store, &signer, &AccountId::parse(account).unwrap()).await;
    }
    store.shutdown().await;
    Log {
        _directory: directory,
        path,
        signer,
    }
}

fn acme_row(connection: &rusqlite::Connection) -> i64 {
    connection
        .query_row(
            "SELECT account_row FROM accounts WHERE name = 'acme'",
            [],
            |row| row.get(0),
        )
        .unwrap()
}

fn event_row(account_row: i64, seq: u64) -> i64 {
    (account_row << SEQ_BITS) | seq as i64
}

async fn verification_of(log: &Log) -> Result<u64, LogVerificationError> {
    let store = open(&log.path);
    let outcome = verify_store(&store, &log.signer.verifier()).await;
    store.shutdown().await;
    outcome.map(|verified| verified.events)
}

fn assert_caught_at(outcome: Result<u64, LogVerificationError>, expected_seq: u64) {
    match outcome {
        Err(LogVerificationError::Event { account, seq, .. }) => {
            assert_eq!((account.as_str(), seq), ("acme", expected_seq));
        }
        other => panic!("expected a mismatch at acme seq {expected_seq}, got {other:?}"),
    }
}

#[tokio::test]
async fn an_untouched_log_verifies_with_its_counts() {
    let log = checkpointed_log().await;
    let store = open(&log.path);
    let verified = verify_store(&store, &log.signer.verifier())
        .await
        .expect("verifies");
    store.shutdown().await;
    assert_eq!(
        (verified.accounts, verified.events, verified.checkpoints),
        (2, 2 * EVENT_COUNT, 2)
    );
}

#[tokio::test]
async fn a_changed_message_is_caught_at_its_seq() {
    let log = checkpointed_log().await;
    let connection = rusqlite::Connection::open(&log.path).unwrap();
    let account_row = acme_row(&connection);
    let changed = connection
        .execute(
            "UPDATE events SET body = replace(body, 'Event number 5', 'Event number 6') WHERE event_row = ?1",
            [event_row(account_row, 5)],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(connection);
    assert_caught_at(verification_of(&log).await, 5);
}

#[tokio::test]
async fn a_deleted_row_is_caught_at_its_seq() {
    let log = checkpointed_log().await;
    let connection = rusqlite::Connection::open(&log.path).unwrap();
    let account_row = acme_row(&connection);
    connection
        .execute(
            "DELETE FROM events WHERE event_row = ?1",
            [event_row(account_row, 3)],
        )
        .unwrap();
    drop(connection);
    assert_caught_at(verification_of(&log).await, 3);
}

#[tokio::test]
async fn an_inserted_row_is_caught_at_its_seq() {
    let log = checkpointed_log().await;
    let connection = rusqlite::Connection::open(&log.path).unwrap();
    let account_row = acme_row(&connection);
    connection
        .execute(
            "INSERT INTO events (event_row, account_row, created_at, id, action, actor_id, ip, outcome, new_ip, idempotency_key, fingerprint, body) \
             SELECT ?2, account_row, created_at, 'forged', action, actor_id, ip, outcome, new_ip, NULL, NULL, replace(body, 'Event number 2', 'Forged event') \
             FROM events WHERE event_row = ?1",
            [event_row(account_row, 2), event_row(account_row, EVENT_COUNT)],
        )
        .unwrap();
    drop(connection);
    assert_caught_at(verification_of(&log).await, EVENT_COUNT);
}

#[tokio::test]
async fn two_swapped_rows_are_caught_at_the_first() {
    let log = checkpointed_log().await;
    let connection = rusqlite::Connection::open(&log.path).unwrap();
    let account_row = acme_row(&connection);
    connection
        .execute_batch(&format!(
            "UPDATE events SET body = CASE event_row WHEN {four} THEN (SELECT body FROM events WHERE event_row = {eight}) \
                                                   ELSE (SELECT body FROM events WHERE event_row = {four}) END \
             WHERE event_row IN ({four}, {eight})",
            four = event_row(account_row, 4),
            eight = event_row(account_row, 8),
        ))
        .unwrap();
    drop(connection);
    assert_caught_at(verification_of(&log).await, 4);
}

/// Deletes acme's events from `kept` on and rebuilds its tree over the rest, as a careful forger
/// would.
fn truncate_and_recompute(path: &Path, kept: u64) {
    let connection = rusqlite::Connection::open(path).unwrap();
    let account_row = acme_row(&connection);
    connection
        .execute(
            "DELETE FROM events WHERE event_row >= ?1 AND event_row < ?2",
            [event_row(account_row, kept), event_row(account_row + 1, 0)],
        )
        .unwrap();
    connection
        .execute(
            "DELETE FROM tree_nodes WHERE account_row = ?1",
            [account_row],
        )
        .unwrap();
    let bodies: Vec<String> = connection
        .prepare(
            "SELECT body FROM events WHERE event_row >= ?1 AND event_row < ?2 ORDER BY event_row",
        )
        .unwrap()
        .query_map(
            [event_row(account_row, 0), event_row(account_row, kept)],
            |row| row.get(0),
        )
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut tree = CompactRange::new();
    for (seq, body) in bodies.into_iter().enumerate() {
        let row = logbook_core::EventRow {
            seq: seq as u64,
            created_at_micros: 0,
            body_without_seq: body,
            location: None,
            new_ip: false,
            new_network: false,
            new_country: false,
        };
        tree.append(row.leaf_hash().unwrap(), |node| {
            connection
                .execute(
                    "INSERT INTO tree_nodes (account_row, level, node_index, hash) VALUES (?1, ?2, ?3, ?4)",
                    rusqlite::params![account_row, node.id.level, node.id.index as i64, node.hash.as_slice()],
                )
                .unwrap();
        });
    }
    connection
        .execute(
            "UPDATE tree_state SET tree_size = ?2, compact_range = ?3 WHERE account_row = ?1",
            rusqlite::params![account_row, kept as i64, tree.to_bytes()],
        )
        .unwrap();
}

#[tokio::test]
async fn a_truncated_tail_with_a_recomputed_tree_is_caught_against_the_checkpoint() {
    let log = checkpointed_log().await;
    truncate_and_recompute(&log.path, 9);
    assert_caught_at(verification_of(&log).await, 9);
}

#[tokio::test]
async fn a_truncated_and_regrown_log_fails_the_consistency_check_against_a_saved_checkpoint() {
    let log = checkpointed_log().await;
    let acme = AccountId::parse("acme").unwrap();
    let store = open(&log.path);
    let saved = store
        .latest_checkpoint(&acme)
        .await
        .unwrap()
        .expect("a checkpoint");
    store.shutdown().await;

    // The forger also deletes every checkpoint, then lets new events grow the log past its old
    // size, so the database is consistent with itself again.
    truncate_and_recompute(&log.path, 9);
    rusqlite::Connection::open(&log.path)
        .unwrap()
        .execute("DELETE FROM checkpoints", [])
        .unwrap();
    let store = open(&log.path);
    let regrown = (0..5)
        .map(|number| {
            EventBuilder::new("acme")
                .message(&format!("Later {number}"))
                .build()
        })
        .collect();
    store.append_events(regrown).await.expect("appends");
    sign_checkpoint(&store, &log.signer, &acme).await;
    let current = store
        .latest_checkpoint(&acme)
        .await
        .unwrap()
        .expect("a checkpoint");
    assert_eq!(current.tree_size, 14);
    let proof_nodes = store
        .tree_nodes(
            &acme,
            &merkle::consistency_proof_node_ids(saved.tree_size, current.tree_size).unwrap(),
        )
        .await
        .unwrap();
    let proof =
        merkle::consistency_proof(&proof_nodes, saved.tree_size, current.tree_size).unwrap();
    let verified_alone = verify_store(&store, &log.signer.verifier()).await;
    store.shutdown().await;
    assert!(verified_alone.is_ok(), "{verified_alone:?}");
    let check = verify_consistency(&saved.text, &current.text, &proof, &log.signer.verifier());
    assert!(
        matches!(check, Err(ConsistencyCheckError::NotConsistent(_))),
        "{check:?}"
    );
}

/// Acme's events below `below` removed by retention, with a statement signed by the log's key;
/// store closed.
async fn prune_acme(log: &Log, below: u64) {
    use logbook_core::retention::{PruneSigning, prune_prefix};
    let store = open(&log.path);
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
    // A checkpoint of the grown log after the prune.
    store
        .append_events(vec![
            EventBuilder::new("acme").message("after the prune").build(),
        ])
        .await
        .expect("appends");
    sign_checkpoint(&store, &log.signer, &AccountId::parse("acme").unwrap()).await;
    store.shutdown().await;
}

#[tokio::test]
async fn a_log_pruned_by_retention_verifies_and_says_how_much_was_removed() {
    let log = checkpointed_log().await;
    prune_acme(&log, 7).await;
    let store = open(&log.path);
    let verified = verify_store(&store, &log.signer.verifier())
        .await
        .expect("a pruned log verifies");
    store.shutdown().await;
    assert_eq!(
        (
            verified.events,
            verified.pruned_accounts,
            verified.pruned_events
        ),
        (2 * EVENT_COUNT + 1 - 7, 1, 7)
    );
}

#[tokio::test]
async fn an_event_removed_or_edited_after_the_pruned_prefix_is_still_caught_at_its_seq() {
    let log = checkpointed_log().await;
    prune_acme(&log, 7).await;
    let connection = rusqlite::Connection::open(&log.path).unwrap();
    let account_row = acme_row(&connection);
    connection
        .execute(
            "DELETE FROM events WHERE event_row = ?1",
            [event_row(account_row, 9)],
        )
        .unwrap();
    drop(connection);
    assert_caught_at(verification_of(&log).await, 9);

    let log = checkpointed_log().await;
    prune_acme(&log, 7).await;
    let connection = rusqlite::Connection::open(&log.path).unwrap();
    let account_row = acme_row(&connection);
    connection
        .execute(
            "UPDATE events SET body = replace(body, 'Event number 7', 'Event number 1') WHERE event_row = ?1",
            [event_row(account_row, 7)],
        )
        .unwrap();
    drop(connection);
    assert_caught_at(verification_of(&log).await, 7);
}

#[tokio::test]
async fn a_prefix_removed_without_a_signed_statement_is_a_missing_event() {
    // Events deleted by hand, no statement at all.
    let log = checkpointed_log().await;
    let connection = rusqlite::Connection::open(&log.path).unwrap();
    let account_row = acme_row(&connection);
    connection
        .execute(
            "DELETE FROM events WHERE event_row >= ?1 AND event_row < ?2",
            [event_row(account_row, 0), event_row(account_row, 4)],
        )
        .unwrap();
    drop(connection);
    assert_caught_at(verification_of(&log).await, 0);

    // A real prune, then its statement forged to cover more than was pruned.
    let log = checkpointed_log().await;
    prune_acme(&log, 4).await;
    let connection = rusqlite::Connection::open(&log.path).unwrap();
    let account_row = acme_row(&connection);
    connection
        .execute(
            "UPDATE pruned_prefixes SET statement = replace(statement, char(10) || '4' || char(10), char(10) || '6' || char(10)), \
             pruned_below_seq = 6 WHERE account_row = ?1",
            [account_row],
        )
        .unwrap();
    connection
        .execute(
            "DELETE FROM events WHERE event_row >= ?1 AND event_row < ?2",
            [event_row(account_row, 4), event_row(account_row, 6)],
        )
        .unwrap();
    drop(connection);
    assert_caught_at(verification_of(&log).await, 0);

    // The statement row removed after a real prune: the log starts at seq 4 with nothing to
    // vouch for what is missing.
    let log = checkpointed_log().await;
    prune_acme(&log, 4).await;
    let connection = rusqlite::Connection::open(&log.path).unwrap();
    connection
        .execute("DELETE FROM pruned_prefixes", [])
        .unwrap();
    drop(connection);
    assert_caught_at(verification_of(&log).await, 0);
}
