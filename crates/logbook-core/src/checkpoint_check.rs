//! The start-up check of each account's newest signed checkpoint: the root of the stored tree at
//! the checkpoint's size must be the root the checkpoint signed. A mismatch means the stored
//! history was changed after it was signed (or the tree storage is damaged); a store that finds
//! one refuses writes with the precise message below instead of appending on top of it or
//! "repairing" it, and `/readyz` says so. Reads keep working, so the damage can be investigated
//! (`logbook verify`).
//!
//! Bounded: one checkpoint per account, O(log n) stored nodes each.

use std::collections::HashMap;

use crate::account::AccountId;
use crate::export_verification::hex;
use crate::merkle::{self, Hash, NodeId};
use crate::store::{Store, StoreError};

/// The perfect subtrees whose right fold is the root of a tree of `tree_size` leaves, largest
/// first: what a store reads to recompute that root.
pub fn root_node_ids(tree_size: u64) -> Vec<NodeId> {
    let mut ids = Vec::with_capacity(tree_size.count_ones() as usize);
    let mut position = 0u64;
    while position < tree_size {
        let level = 63 - (tree_size - position).leading_zeros() as u8;
        ids.push(NodeId::new(level, position >> level));
        position += 1 << level;
    }
    ids
}

/// The message that refuses writes: which account, which tree size, and both roots.
pub fn mismatch_message(
    account: &AccountId,
    tree_size: u64,
    signed_root: &Hash,
    stored_root: Option<&Hash>,
) -> String {
    let found = match stored_root {
        Some(root) => format!("the stored tree's root is {}", hex(root)),
        None => "the stored tree is missing nodes needed to compute its root".to_owned(),
    };
    format!(
        "start-up check: account {account}'s newest signed checkpoint is at tree size {tree_size} with root {}, but {found}; the stored history no longer matches what was signed, so writes are refused (reads still work; run `logbook verify` and restore from a backup)",
        hex(signed_root)
    )
}

/// Checks every account's newest checkpoint through the store's `LogTree`: `Ok(None)` when all
/// match (or the store keeps no tree), `Ok(Some(message))` for the first mismatch.
pub async fn newest_checkpoint_mismatch(store: &dyn Store) -> Result<Option<String>, StoreError> {
    let Some(tree) = store.log_tree() else {
        return Ok(None);
    };
    for account in store.list_accounts().await? {
        let account = account.account;
        let Some(checkpoint) = tree.latest_checkpoint(&account).await? else {
            continue;
        };
        let ids = root_node_ids(checkpoint.tree_size);
        let nodes: HashMap<NodeId, Hash> = tree.tree_nodes(&account, &ids).await?;
        let stored_root = merkle::root_at(&nodes, checkpoint.tree_size).ok();
        if stored_root.as_ref() != Some(&checkpoint.root_hash) {
            return Ok(Some(mismatch_message(
                &account,
                checkpoint.tree_size,
                &checkpoint.root_hash,
                stored_root.as_ref(),
            )));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_node_ids_fold_to_the_root_of_the_whole_tree() {
        let leaves: Vec<Hash> = (0u8..13).map(|index| merkle::hash_leaf(&[index])).collect();
        for size in 0..=leaves.len() as u64 {
            let mut tree = merkle::MemoryTree::new();
            for leaf in &leaves[..size as usize] {
                tree.append(*leaf);
            }
            let ids = root_node_ids(size);
            assert_eq!(ids.len(), size.count_ones() as usize);
            let nodes: HashMap<NodeId, Hash> = ids
                .iter()
                .map(|id| {
                    let start = (id.index << id.level) as usize;
                    let end = start + (1usize << id.level);
                    (*id, merkle::root_from_leaf_hashes(&leaves[start..end]))
                })
                .collect();
            assert_eq!(
                merkle::root_at(&nodes, size).unwrap(),
                tree.root(),
                "size {size}"
            );
        }
    }
}
