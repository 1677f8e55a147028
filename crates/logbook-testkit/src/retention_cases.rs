//! Conformance cases for retention and legal hold (issue 18): settings, holds, and a pruned
//! prefix that leaves every proof of the rest of the log working, on every backend alike.

use std::sync::Arc;

use logbook_core::checkpoint::CheckpointSigner;
use logbook_core::merkle;
use logbook_core::retention::{
    LegalHold, PruneOutcome, PruneSigning, PruneStatement, prune_prefix,
};
use logbook_core::store::AppendOutcome;
use logbook_core::{AccountId, Store, StoreError};
use time::macros::datetime;

use crate::builders::EventBuilder;

fn account(name: &str) -> AccountId {
    AccountId::parse(name).expect("a valid test account")
}

/// Appends `count` events to `name` in uneven batches; returns their leaf hashes in seq order.
async fn append_events(store: &Arc<dyn Store>, name: &str, count: usize) -> Vec<merkle::Hash> {
    let mut leaf_hashes = Vec::new();
    let mut remaining = count;
    let mut batch = 1;
    while remaining > 0 {
        let size = batch.min(remaining);
        let events = (0..size)
            .map(|number| {
                EventBuilder::new(name)
                    .message(&format!("event {} of {name}", leaf_hashes.len() + number))
                    .target(
                        "server",
                        &format!("srv-{}", (leaf_hashes.len() + number) % 3),
                    )
                    .build()
            })
            .collect();
        for outcome in store.append_events(events).await.expect("stored") {
            match outcome {
                AppendOutcome::Stored(receipt) => {
                    leaf_hashes.push(receipt.leaf.expect("a receipt with its leaf").leaf_hash)
                }
                other => panic!("expected a stored event, got {other:?}"),
            }
        }
        remaining -= size;
        batch = batch * 2 + 1;
    }
    leaf_hashes
}

fn signer() -> CheckpointSigner {
    CheckpointSigner::generate([3; 32], "logbook.test").expect("a key")
}

/// Prunes `account` below `below_seq` in batches of `batch_size`, signed as instance
/// `logbook.test` under a one-day policy at a fixed time: how a test prunes when what it checks is
/// what is left.
pub async fn prune_below(
    store: &dyn Store,
    account: &AccountId,
    below_seq: u64,
    batch_size: u32,
) -> Result<PruneOutcome, StoreError> {
    let signer = signer();
    prune_prefix(
        store,
        account,
        below_seq,
        PruneSigning {
            signer: &signer,
            instance_name: "logbook.test",
        },
        "retention of 1 days",
        datetime!(2026-12-06 10:00 UTC),
        batch_size,
    )
    .await
}

/// Stores 40 events of `acme`, each with two targets (`srv-<n % 3>` and `user-<n>`), and 1 of
/// `globex` with target `srv-0`, then prunes `acme` below seq 25: what a store's own test then
/// checks of the target index left behind (only the kept events' own, both of each).
pub async fn prune_forty_events_with_two_targets_each_below_25(store: &dyn Store) {
    let events = (0..40)
        .map(|number| {
            EventBuilder::new("acme")
                .message(&format!("event {number}"))
                .target("server", &format!("srv-{}", number % 3))
                .target("user", &format!("user-{number}"))
                .build()
        })
        .chain(std::iter::once(
            EventBuilder::new("globex")
                .target("server", "srv-0")
                .build(),
        ))
        .collect();
    store.append_events(events).await.expect("stored");
    prune_below(store, &account("acme"), 25, 10)
        .await
        .expect("pruned");
}

pub async fn retention_periods_and_legal_holds_are_kept_per_account(store: Arc<dyn Store>) {
    let now = datetime!(2026-12-06 10:00 UTC);
    for name in ["acme", "globex"] {
        store.create_account(&account(name), now).await.unwrap();
    }
    let retention = store.retention();
    assert_eq!(
        retention.account_retention(&account("acme")).await.unwrap(),
        Default::default()
    );
    retention
        .set_retention_days(&account("acme"), Some(90), now)
        .await
        .unwrap();
    let hold = LegalHold {
        since: now,
        set_by: "alice@acme.com".into(),
        reason: "case 42".into(),
    };
    assert_eq!(
        retention
            .set_legal_hold(&account("acme"), Some(hold.clone()), now)
            .await
            .unwrap(),
        None
    );
    // A second hold keeps the first.
    let later_hold = LegalHold {
        since: datetime!(2026-12-07 10:00 UTC),
        set_by: "bob@acme.com".into(),
        reason: "another".into(),
    };
    assert_eq!(
        retention
            .set_legal_hold(&account("acme"), Some(later_hold), now)
            .await
            .unwrap(),
        Some(hold.clone())
    );
    let acme = retention.account_retention(&account("acme")).await.unwrap();
    assert_eq!(acme.retention_days, Some(90));
    assert_eq!(acme.legal_hold, Some(hold.clone()));
    assert_eq!(
        retention
            .account_retention(&account("globex"))
            .await
            .unwrap(),
        Default::default(),
        "settings never cross accounts"
    );
    let all = retention.all_account_retention().await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].0, account("acme"));
    assert_eq!(
        retention
            .set_legal_hold(&account("acme"), None, now)
            .await
            .unwrap(),
        Some(hold)
    );
    retention
        .set_retention_days(&account("acme"), None, now)
        .await
        .unwrap();
    assert_eq!(
        retention.account_retention(&account("acme")).await.unwrap(),
        Default::default()
    );
    assert!(matches!(
        retention
            .set_retention_days(&account("missing"), Some(1), now)
            .await,
        Err(StoreError::AccountNotFound(_))
    ));
}

pub async fn a_pruned_prefix_keeps_every_proof_of_the_rest_of_the_log(store: Arc<dyn Store>) {
    let acme = account("acme");
    let leaves = append_events(&store, "acme", 70).await;
    let other_leaves = append_events(&store, "globex", 9).await;
    let signer = signer();
    let signing = PruneSigning {
        signer: &signer,
        instance_name: "logbook.test",
    };
    let now = datetime!(2026-12-06 10:00 UTC);
    let mut pruned_below = 0;
    for below in [21_u64, 21, 48] {
        let outcome = prune_prefix(
            store.as_ref(),
            &acme,
            below,
            signing,
            "retention of 1 days",
            now,
            7,
        )
        .await
        .unwrap();
        assert_eq!(outcome.pruned_below_seq, below);
        assert_eq!(
            outcome.moved,
            below > pruned_below,
            "a prefix only moves up"
        );
        assert_eq!(outcome.deleted_events, below - pruned_below);
        pruned_below = below;
    }
    // The events below the prefix are gone, the rest are there, and nothing of another account.
    let remaining = store.events_since(&acme, 0, 1000).await.unwrap();
    assert_eq!(remaining.first().map(|row| row.seq), Some(48));
    assert_eq!(remaining.len(), 22);
    assert_eq!(
        store
            .events_since(&account("globex"), 0, 1000)
            .await
            .unwrap()
            .len(),
        9
    );
    assert_eq!(store.next_seq(&acme).await.unwrap(), 70);

    // The signed statement says what went, and its root is the removed prefix's.
    let prefix = store
        .retention()
        .pruned_prefix(&acme)
        .await
        .unwrap()
        .unwrap();
    let statement = PruneStatement::verify(&prefix.statement, &signer.verifier()).unwrap();
    assert_eq!(statement.pruned_below_seq, 48);
    assert_eq!(statement.origin, "logbook.test/acme");
    assert_eq!(
        statement.prefix_root,
        merkle::root_from_leaf_hashes(&leaves[..48])
    );

    // Every proof of a remaining event, and every consistency proof between sizes at or after the
    // prefix, still verifies against roots computed from the receipts.
    let tree = store.log_tree().expect("the store keeps a tree");
    let head = tree.tree_head(&acme).await.unwrap();
    assert_eq!(head.tree_size, 70);
    assert_eq!(head.root_hash, merkle::root_from_leaf_hashes(&leaves));
    for tree_size in [48_u64, 49, 63, 64, 65, 70] {
        let root = merkle::root_from_leaf_hashes(&leaves[..tree_size as usize]);
        for index in 48..tree_size {
            let ids = merkle::inclusion_proof_node_ids(index, tree_size).unwrap();
            let nodes = tree.tree_nodes(&acme, &ids).await.unwrap();
            let proof = merkle::inclusion_proof(&nodes, index, tree_size)
                .unwrap_or_else(|error| panic!("seq {index} in {tree_size}: {error}"));
            merkle::verify_inclusion(&leaves[index as usize], index, tree_size, &proof, &root)
                .unwrap_or_else(|error| panic!("seq {index} in {tree_size}: {error}"));
        }
        for old_size in 48..=tree_size {
            let ids = merkle::consistency_proof_node_ids(old_size, tree_size).unwrap();
            let nodes = tree.tree_nodes(&acme, &ids).await.unwrap();
            let proof = merkle::consistency_proof(&nodes, old_size, tree_size)
                .unwrap_or_else(|error| panic!("{old_size} to {tree_size}: {error}"));
            merkle::verify_consistency(
                old_size,
                tree_size,
                &proof,
                &merkle::root_from_leaf_hashes(&leaves[..old_size as usize]),
                &root,
            )
            .unwrap_or_else(|error| panic!("{old_size} to {tree_size}: {error}"));
        }
    }
    // The other account's tree is untouched.
    assert_eq!(
        tree.tree_head(&account("globex")).await.unwrap().root_hash,
        merkle::root_from_leaf_hashes(&other_leaves)
    );
    // Appending after a prune continues the same seq and the same tree.
    let more = append_events(&store, "acme", 3).await;
    let mut all_leaves = leaves.clone();
    all_leaves.extend(more);
    assert_eq!(
        tree.tree_head(&acme).await.unwrap().root_hash,
        merkle::root_from_leaf_hashes(&all_leaves)
    );
}

pub async fn pruning_a_prefix_while_batches_are_appended_fails_no_append(store: Arc<dyn Store>) {
    let acme = account("acme");
    append_events(&store, "acme", 1500).await;
    // Batches of appends to both accounts run the whole time the prefix is deleted, ten events a
    // batch, so the store's writer and its deletes take turns hundreds of times.
    let appending = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut appended = 0_usize;
            for round in 0..150 {
                let name = if round % 2 == 0 { "acme" } else { "globex" };
                let events = (0..10)
                    .map(|number| {
                        EventBuilder::new(name)
                            .message(&format!("appended while pruning {round}.{number}"))
                            .build()
                    })
                    .collect();
                let outcomes = store
                    .append_events(events)
                    .await
                    .expect("an append while pruning is stored");
                appended += outcomes.len();
            }
            appended
        })
    };
    let outcome = prune_below(store.as_ref(), &acme, 1400, 20)
        .await
        .expect("the prefix is pruned while appends run");
    assert_eq!(outcome.deleted_events, 1400);
    assert_eq!(appending.await.unwrap(), 1500);
    let remaining = store.events_since(&acme, 0, 10_000).await.unwrap();
    assert_eq!(remaining.first().map(|row| row.seq), Some(1400));
    assert_eq!(
        remaining.len(),
        100 + 750,
        "what was kept and every appended event"
    );
    let seqs: Vec<u64> = remaining.iter().map(|row| row.seq).collect();
    assert_eq!(
        seqs,
        (1400..2250).collect::<Vec<u64>>(),
        "seq stays dense above the prefix"
    );
}

pub async fn a_held_account_is_never_pruned(store: Arc<dyn Store>) {
    let acme = account("acme");
    append_events(&store, "acme", 10).await;
    let now = datetime!(2026-12-06 10:00 UTC);
    store
        .retention()
        .set_legal_hold(
            &acme,
            Some(LegalHold {
                since: now,
                set_by: "alice@acme.com".into(),
                reason: "case 42".into(),
            }),
            now,
        )
        .await
        .unwrap();
    let signer = signer();
    let refused = prune_prefix(
        store.as_ref(),
        &acme,
        5,
        PruneSigning {
            signer: &signer,
            instance_name: "logbook.test",
        },
        "retention of 1 days",
        now,
        100,
    )
    .await;
    assert!(
        matches!(refused, Err(StoreError::LegalHold(_))),
        "{refused:?}"
    );
    assert!(matches!(
        store.retention().delete_pruned_events(&acme, 100).await,
        Err(StoreError::LegalHold(_))
    ));
    assert_eq!(store.events_since(&acme, 0, 100).await.unwrap().len(), 10);
    assert_eq!(store.retention().pruned_prefix(&acme).await.unwrap(), None);
}
