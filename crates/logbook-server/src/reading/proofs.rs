//! Proofs of the verifiable log, shared by the API (`api::v1::checkpoints`) and the event view:
//! each is built from O(log n) stored subtree hashes fetched in one store call
//! (`logbook_core::merkle`), so it costs logarithmic work whatever the log's size.

use logbook_core::export_verification::hex;
use logbook_core::merkle::{self, MerkleError};
use logbook_core::store::LogTree;
use serde_json::{Value, json};

use crate::error::ApiError;

/// A proof that does not exist in the account's tree as it stands (a `seq` not below the tree
/// size, `from` above `to`, an empty tree) is a 404 naming the parameter: whether it exists
/// depends on how many events the account has, not on the request's form, which is checked
/// first (a malformed number is a 400).
pub(crate) fn invalid_range(error: MerkleError, field: &'static str) -> ApiError {
    match error {
        MerkleError::LeafIndexOutOfRange { .. }
        | MerkleError::OldSizeAboveNewSize { .. }
        | MerkleError::EmptyTree { .. } => ApiError::UnknownReference {
            code: "invalid_range",
            message: error.to_string(),
            field,
        },
        other => ApiError::internal(other),
    }
}

/// The inclusion proof answer, shared with the event detail page.
pub async fn inclusion_proof(
    tree: &dyn LogTree,
    account: &logbook_core::AccountId,
    seq: u64,
    tree_size: Option<u64>,
) -> Result<Value, ApiError> {
    let head = tree.tree_head(account).await?;
    let tree_size = tree_size.unwrap_or(head.tree_size);
    check_within_head(tree_size, head.tree_size, "tree_size")?;
    let mut node_ids = merkle::inclusion_proof_node_ids(seq, tree_size)
        .map_err(|error| invalid_range(error, "seq"))?;
    node_ids.push(merkle::NodeId::new(0, seq));
    node_ids.extend(root_node_ids(tree_size));
    let nodes = tree.tree_nodes(account, &node_ids).await?;
    let proof = merkle::inclusion_proof(&nodes, seq, tree_size).map_err(ApiError::internal)?;
    let leaf_hash = nodes
        .get(&merkle::NodeId::new(0, seq))
        .copied()
        .ok_or_else(|| ApiError::internal(MerkleError::MissingNode(merkle::NodeId::new(0, seq))))?;
    let root_hash = merkle::root_at(&nodes, tree_size).map_err(ApiError::internal)?;
    Ok(json!({
        "seq": seq,
        "tree_size": tree_size,
        "leaf_hash": hex(&leaf_hash),
        "root_hash": hex(&root_hash),
        "proof": proof.iter().map(|hash| hex(hash)).collect::<Vec<_>>(),
    }))
}

pub(crate) fn check_within_head(
    size: u64,
    head_size: u64,
    field: &'static str,
) -> Result<(), ApiError> {
    if size > head_size {
        return Err(ApiError::UnknownReference {
            code: "invalid_range",
            message: format!("{field} {size} is beyond the account's tree of {head_size} events"),
            field,
        });
    }
    Ok(())
}

/// The perfect subtrees whose fold is the root of a tree of `size` leaves (one per one-bit).
pub(crate) fn root_node_ids(size: u64) -> impl Iterator<Item = merkle::NodeId> {
    let mut start = 0u64;
    (0..64u8).rev().filter_map(move |level| {
        if size & (1 << level) == 0 {
            return None;
        }
        let id = merkle::NodeId::new(level, start >> level);
        start += 1 << level;
        Some(id)
    })
}
