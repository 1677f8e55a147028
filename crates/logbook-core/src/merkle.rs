//! The Merkle tree of an account's log (RFC 6962 §2.1 / RFC 9162 §2.1): hashing, the compact
//! right edge a writer keeps to append leaves, proofs built from stored subtree hashes, and the
//! RFC 9162 proof verifiers.
//!
//! # Node storage plan
//!
//! A node is named by `NodeId { level, index }`: the perfect subtree of `2^level` leaves starting
//! at leaf `index << level` (level 0 are the leaf hashes). Those hashes never change once all
//! their leaves exist, so a store persists each one when it is completed, in the transaction that
//! appends its last leaf: `CompactRange::append` reports exactly those nodes (one per trailing
//! one-bit of the new size, plus the leaf), about two per event on average.
//!
//! Every node of an RFC 6962 proof is either a perfect subtree or a right-edge subtree
//! `MTH(D[start:size])`, and a right-edge subtree is the right fold of the perfect subtrees of the
//! binary decomposition of `size - start`. So any proof for any past tree size is answered from
//! stored perfect nodes with O(log n) lookups (O(log² n) in the worst case for consistency
//! proofs), which `inclusion_proof_node_ids` / `consistency_proof_node_ids` list up front so a
//! store can fetch them in one query and answer through the `NodeSource` trait.
//!
//! The writer does not read nodes back: it keeps the account's `CompactRange` (the O(log n)
//! perfect subtrees on the right edge, serialisable with `to_bytes`) and gets each root from it.
//!
//! # The verifiable log, end to end
//!
//! Each account's events, in `seq` order, are the leaves of an RFC 6962 / RFC 9162 Merkle tree. The
//! domain logic lives in `logbook-core` (`leaf`, `merkle`, `checkpoint`, `export_verification`),
//! free of I/O; the stores and the server call it.
//!
//! - **Leaf encoding** (`leaf`). The leaf is the RFC 8785 (JCS) canonical JSON of the event as
//!   stored and returned (`StoredEvent`, with `seq`), minus derived fields: `new_ip` is computed by a
//!   detector after the commit, so it is not what was recorded. `leaf_hash = SHA-256(0x00 || leaf)`.
//!   `NewEvent::canonical_leaf_parts` runs at ingest, off the writer, and splits the canonical text
//!   where `"seq"` sorts (always after `received_at`); the writer only calls
//!   `LeafParts::leaf_hash(seq)`, which hashes the pieces without allocating. Verifiers canonicalize
//!   the raw stored or exported JSON object (`leaf_bytes_from_json_object`), so a field added by hand
//!   is caught. Objects and strings are written by hand (the JCS crate re-parses every key to sort
//!   it); numbers use `serde_json_canonicalizer`, which also serves as the test oracle.
//! - **Node storage plan** (`merkle`). Node `(level, index)` is the perfect subtree of `2^level`
//!   leaves from leaf `index << level`. Perfect subtree hashes never change, so the store keeps
//!   those an append completes (`CompactRange::append` reports them: the leaf plus one per trailing
//!   one-bit, two per event on average) in the same transaction as the events: the leaf hash in the
//!   event's own row, and only nodes of level `LOWEST_STORED_NODE_LEVEL` (4) and above as rows of
//!   their own (migration 0009, for issue 5's 15 % budget: about 1/8 of a node row per event instead
//!   of two); a lower node is recomputed from its at most 8 leaf hashes when a proof asks. The writer
//!   keeps each account's `CompactRange` (O(log n) right-edge hashes, `to_bytes`/`from_bytes`) and
//!   reads no nodes. Any proof for any past size needs O(log n) stored nodes (a right-edge subtree is
//!   the fold of its perfect parts); `inclusion_proof_node_ids` / `consistency_proof_node_ids` list
//!   them so a store fetches them in one query, then `inclusion_proof` / `consistency_proof` build the
//!   proof through the `NodeSource` trait (implemented for `HashMap<NodeId, Hash>`).
//! - **Checkpoint format** (`checkpoint`). C2SP `tlog-checkpoint` in a C2SP `signed-note`, Ed25519:
//!   `<instance>/<account>\n<size>\n<base64 root>\n\n— <key name> <base64(key ID || signature)>\n`.
//!   The public key prints as `<name>+<key ID hex>+<base64(0x01 || key)>`, the private key file as
//!   `PRIVATE+KEY+<name>+<key ID hex>+<base64(0x01 || seed)>` (Go's `sumdb/note` formats; a test
//!   reproduces Go's published example byte for byte).
//! - **Export trailer** (`export_verification`). Each NDJSON event line carries `leaf_hash` (hex) and
//!   `inclusion_proof` against the checkpoint the export was cut at; the last line is
//!   `{"checkpoint":..,"selection":..,"seq_runs":[[start,count],..]}`. A checkpoint alone cannot show
//!   that a filtered export lost, gained or reordered lines, so `selection` is a second signed note
//!   (same key) over the origin, tree size, event count and SHA-256 of the exported seqs in line
//!   order; `seq_runs` spells that list out, which lets the verifier name the first wrong line.
//!   Ingest refuses integers beyond ±(2^53 − 1) in `metadata`/`changes` (I-JSON), since JCS would
//!   commit to their nearest double rather than the stored digits.
//! - **Stores** (`logbook-store-*/src/tree.rs`, migrations `0003_tree.sql`, `0009`). Column
//!   `events.leaf_hash`, tables `tree_nodes` (`account, level >= 4, index -> hash`), `tree_state`
//!   (each account's `CompactRange::to_bytes`) and `checkpoints`, all written with the events'
//!   transaction except checkpoints. SQLite's writer
//!   loads an account's state once per group (like its next `seq`, read inside the transaction), calls
//!   `tree::append_leaf` per event and `save_account_tree` per account before the commit. PostgreSQL's
//!   writer reads `tree_state` after locking the accounts `FOR UPDATE` (several nodes append to one
//!   account, so no node may cache it) and writes every node of the group in one `unnest` insert; the
//!   tree tables have the same row-level security policies as `events`. The receipt's `leaf_hash`
//!   and `tree_size` come from the writer; a duplicate's from its event row's `leaf_hash`.
//! - **Checkpointer** (`logbook-server/src/workers/checkpointer.rs`). A task started by `serve` signs, every
//!   `[checkpoints] interval_milliseconds`, the committed head of each account that grew
//!   (`LogTree::tree_heads_without_checkpoint`), and once more after the final commits on shutdown.
//!   Equal sizes signed by two nodes keep the first (`ON CONFLICT DO NOTHING`). The Ed25519 key is a
//!   file outside the database, created 0600 on first start; PostgreSQL nodes share one copy.
//! - **Proofs over HTTP** (`logbook_server::reading::proofs`, served by `api::v1::checkpoints` and
//!   the event view): the handler lists the O(log n) node ids
//!   (`*_proof_node_ids` plus the root's perfect parts), fetches them in one store call and builds
//!   the proof; work per request is logarithmic in the account's size. Verifiable exports
//!   (`GET /api/v1/events/export/verifiable`, opt-in because each line costs a proof) batch the
//!   node ids of 256 lines per store call and are cut against a checkpoint signed at request time.
//! - **Verification** (`logbook_core::log_verification`, `logbook verify`): one implementation over
//!   the `Store`/`LogTree` traits checks every backend. A changed or swapped event is named by its
//!   stored leaf, a deleted one by the `seq` gap, an inserted one by being outside the tree, and a
//!   tree recomputed over edits by the signed checkpoints (or by a saved checkpoint and a
//!   consistency proof when the checkpoints were deleted too).

use std::collections::HashMap;

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

/// The RFC 6962 domain-separation prefix of an interior node hash.
pub const NODE_HASH_PREFIX: u8 = 0x01;

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// `SHA-256(0x00 || leaf)`.
pub fn hash_leaf(leaf: &[u8]) -> Hash {
    crate::leaf::leaf_hash_of_bytes(leaf)
}

/// `SHA-256(0x01 || left || right)`.
pub fn hash_children(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([NODE_HASH_PREFIX]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// A perfect subtree: `2^level` leaves starting at leaf `index << level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    pub fn new(level: u8, index: u64) -> Self {
        NodeId { level, index }
    }
}

/// The lowest level of interior node the stores keep (`logbook_core::merkle`, "The verifiable log, end to end"). Each
/// leaf hash lives in its event's row, and a node below this level is recomputed from its 2^level
/// leaf hashes when a proof asks for it: a proof reads at most 2^LOWEST_STORED_NODE_LEVEL more
/// leaf hashes, and the writer stores about 2 / 2^LOWEST_STORED_NODE_LEVEL node rows per event
/// instead of two.
pub const LOWEST_STORED_NODE_LEVEL: u8 = 4;

/// A perfect subtree hash created by an append, for the store to persist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredNode {
    pub id: NodeId,
    pub hash: Hash,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    #[error("leaf index {index} is not below tree size {tree_size}")]
    LeafIndexOutOfRange { index: u64, tree_size: u64 },
    #[error("old tree size {old_size} is larger than new tree size {new_size}")]
    OldSizeAboveNewSize { old_size: u64, new_size: u64 },
    #[error("a tree of size 0 has no {what}")]
    EmptyTree { what: &'static str },
    #[error("the node store has no hash for level {} index {}", .0.level, .0.index)]
    MissingNode(NodeId),
    #[error("the proof does not match the root")]
    RootMismatch,
    #[error("the proof has the wrong number of hashes")]
    WrongProofLength,
    #[error("the compact range bytes are malformed")]
    MalformedCompactRange,
}

/// MTH of a list of leaf hashes (RFC 6962 §2.1), by appending them to a compact range.
pub fn root_from_leaf_hashes(leaf_hashes: &[Hash]) -> Hash {
    let mut range = CompactRange::new();
    for leaf_hash in leaf_hashes {
        range.append(*leaf_hash, |_| {});
    }
    range.root()
}

/// The right edge of a tree: one perfect subtree hash per one-bit of `size`, largest first.
/// This is all a writer needs to append leaves and compute roots.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CompactRange {
    size: u64,
    right_edge: Vec<Hash>,
}

impl CompactRange {
    pub fn new() -> Self {
        CompactRange::default()
    }

    /// The number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash and reports every perfect subtree this completes: the leaf itself at
    /// level 0, then each merged parent. The store persists them in the same transaction.
    pub fn append(&mut self, leaf_hash: Hash, mut on_new_node: impl FnMut(StoredNode)) {
        let mut index = self.size;
        let mut hash = leaf_hash;
        let mut level = 0u8;
        on_new_node(StoredNode {
            id: NodeId::new(0, index),
            hash,
        });
        // Each trailing one-bit of the old size is a finished left sibling that merges with the
        // new subtree.
        while index & 1 == 1 {
            let left = self
                .right_edge
                .pop()
                .expect("one right-edge hash per one-bit of size");
            hash = hash_children(&left, &hash);
            index >>= 1;
            level += 1;
            on_new_node(StoredNode {
                id: NodeId::new(level, index),
                hash,
            });
        }
        self.right_edge.push(hash);
        self.size += 1;
    }

    /// The root hash of the tree of `size` leaves (the empty root for size 0).
    pub fn root(&self) -> Hash {
        let mut hashes = self.right_edge.iter().rev();
        let Some(mut root) = hashes.next().copied() else {
            return empty_root();
        };
        for left in hashes {
            root = hash_children(left, &root);
        }
        root
    }

    /// 8 bytes of big-endian size, then the right-edge hashes largest subtree first.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 32 * self.right_edge.len());
        out.extend_from_slice(&self.size.to_be_bytes());
        for hash in &self.right_edge {
            out.extend_from_slice(hash);
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MerkleError> {
        let (size_bytes, hashes) = bytes
            .split_first_chunk::<8>()
            .ok_or(MerkleError::MalformedCompactRange)?;
        let size = u64::from_be_bytes(*size_bytes);
        if hashes.len() != 32 * size.count_ones() as usize {
            return Err(MerkleError::MalformedCompactRange);
        }
        let right_edge = hashes
            .chunks_exact(32)
            .map(|chunk| chunk.try_into().expect("chunks are 32 bytes"))
            .collect();
        Ok(CompactRange { size, right_edge })
    }

    /// The perfect subtrees of the first `size` leaves with their ids, largest first. When the
    /// leaves of a prefix are removed (retention), these are the only nodes of it that any proof
    /// of a later leaf, or of consistency from a later size, still needs.
    pub fn perfect_subtrees(&self) -> Vec<(NodeId, Hash)> {
        perfect_decomposition(0, self.size)
            .zip(self.right_edge.iter().copied())
            .collect()
    }

    /// The compact range of the first `size` leaves, read from stored perfect nodes.
    pub fn from_node_source(source: &impl NodeSource, size: u64) -> Result<Self, MerkleError> {
        let mut right_edge = Vec::with_capacity(size.count_ones() as usize);
        for id in perfect_decomposition(0, size) {
            right_edge.push(
                source
                    .perfect_subtree_hash(id.level, id.index)
                    .ok_or(MerkleError::MissingNode(id))?,
            );
        }
        Ok(CompactRange { size, right_edge })
    }
}

/// The perfect subtrees of the first `size` leaves, largest first: what a compact range of that
/// size holds, and what a store reads to rebuild one (`CompactRange::from_node_source`).
pub fn compact_range_node_ids(size: u64) -> Vec<NodeId> {
    perfect_decomposition(0, size).collect()
}

/// The hash of the perfect subtree `id` of a log whose first `prefix.size()` leaves were
/// removed: its part inside the removed prefix is made of `prefix`'s perfect subtrees (a node
/// wholly inside the prefix must be one of them), and `later_leaves` are the hashes of its
/// remaining leaves, in order, from the first one after the prefix.
pub fn perfect_subtree_across_prefix(
    id: NodeId,
    prefix: &CompactRange,
    later_leaves: &[Hash],
) -> Result<Hash, MerkleError> {
    let start = id.index << id.level;
    let end = start + (1u64 << id.level);
    let pruned_below = prefix.size();
    let prefix_nodes = prefix.perfect_subtrees();
    if end <= pruned_below {
        return prefix_nodes
            .iter()
            .find(|(node, _)| *node == id)
            .map(|(_, hash)| *hash)
            .ok_or(MerkleError::MissingNode(id));
    }
    let first_later_leaf = start.max(pruned_below);
    if later_leaves.len() as u64 != end - first_later_leaf {
        return Err(MerkleError::MissingNode(id));
    }
    // The prefix nodes inside [start, pruned_below) are that range's perfect decomposition,
    // largest first; appending the later leaves one by one merges equal levels as a compact
    // range does, until one node of `id`'s level is left.
    let mut stack: Vec<(u8, Hash)> = prefix_nodes
        .iter()
        .filter(|(node, _)| {
            let node_start = node.index << node.level;
            node_start >= start && node_start < end
        })
        .map(|(node, hash)| (node.level, *hash))
        .collect();
    for leaf in later_leaves {
        let mut level = 0u8;
        let mut hash = *leaf;
        while let Some((top_level, top_hash)) = stack.last().copied() {
            if top_level != level {
                break;
            }
            stack.pop();
            hash = hash_children(&top_hash, &hash);
            level += 1;
        }
        stack.push((level, hash));
    }
    match stack.as_slice() {
        [(level, hash)] if *level == id.level => Ok(*hash),
        _ => Err(MerkleError::MissingNode(id)),
    }
}

/// Where proofs read perfect subtree hashes from (a store's node table, or memory).
pub trait NodeSource {
    fn perfect_subtree_hash(&self, level: u8, index: u64) -> Option<Hash>;
}

impl NodeSource for HashMap<NodeId, Hash> {
    fn perfect_subtree_hash(&self, level: u8, index: u64) -> Option<Hash> {
        self.get(&NodeId::new(level, index)).copied()
    }
}

/// The perfect subtrees whose right fold is `MTH(D[start:end])`, largest first. `start` must be
/// a multiple of a power of two at least `end - start`, which holds for every proof node.
fn perfect_decomposition(start: u64, end: u64) -> impl Iterator<Item = NodeId> {
    let mut position = start;
    std::iter::from_fn(move || {
        if position >= end {
            return None;
        }
        let remaining = end - position;
        let level = 63 - remaining.leading_zeros() as u8;
        let id = NodeId::new(level, position >> level);
        position += 1 << level;
        Some(id)
    })
}

/// One node of a proof as a range of leaves `[start, end)`.
#[derive(Debug, Clone, Copy)]
struct LeafRange {
    start: u64,
    end: u64,
}

fn largest_power_of_two_below(n: u64) -> u64 {
    debug_assert!(n > 1);
    1 << (63 - (n - 1).leading_zeros())
}

/// The ranges of RFC 6962 PATH(index, D[0:size]), leaf side first.
fn inclusion_ranges(index: u64, tree_size: u64) -> Result<Vec<LeafRange>, MerkleError> {
    if index >= tree_size {
        return Err(MerkleError::LeafIndexOutOfRange { index, tree_size });
    }
    let mut ranges = Vec::with_capacity(64);
    let (mut start, mut end) = (0, tree_size);
    while end - start > 1 {
        let split = start + largest_power_of_two_below(end - start);
        if index < split {
            ranges.push(LeafRange { start: split, end });
            end = split;
        } else {
            ranges.push(LeafRange { start, end: split });
            start = split;
        }
    }
    ranges.reverse();
    Ok(ranges)
}

/// The ranges of RFC 6962 PROOF(old_size, D[0:new_size]), leaf side first.
fn consistency_ranges(old_size: u64, new_size: u64) -> Result<Vec<LeafRange>, MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::OldSizeAboveNewSize { old_size, new_size });
    }
    if old_size == 0 {
        return Err(MerkleError::EmptyTree {
            what: "consistency proof",
        });
    }
    let mut ranges = Vec::with_capacity(64);
    let (mut start, mut end, mut m) = (0, new_size, old_size);
    let mut whole_old_tree_known = true;
    // SUBPROOF(m, D[start:end], b), unrolled.
    while m != end - start {
        let k = largest_power_of_two_below(end - start);
        if m <= k {
            ranges.push(LeafRange {
                start: start + k,
                end,
            });
            end = start + k;
        } else {
            ranges.push(LeafRange {
                start,
                end: start + k,
            });
            start += k;
            m -= k;
            whole_old_tree_known = false;
        }
    }
    if !whole_old_tree_known {
        ranges.push(LeafRange { start, end });
    }
    ranges.reverse();
    Ok(ranges)
}

fn node_ids_of(ranges: &[LeafRange]) -> Vec<NodeId> {
    ranges
        .iter()
        .flat_map(|range| perfect_decomposition(range.start, range.end))
        .collect()
}

fn hashes_of(source: &impl NodeSource, ranges: &[LeafRange]) -> Result<Vec<Hash>, MerkleError> {
    ranges
        .iter()
        .map(|range| {
            let mut hashes = Vec::with_capacity(8);
            for id in perfect_decomposition(range.start, range.end) {
                hashes.push(
                    source
                        .perfect_subtree_hash(id.level, id.index)
                        .ok_or(MerkleError::MissingNode(id))?,
                );
            }
            let mut folded = hashes.pop().expect("a proof range is never empty");
            while let Some(left) = hashes.pop() {
                folded = hash_children(&left, &folded);
            }
            Ok(folded)
        })
        .collect()
}

/// The stored nodes an inclusion proof reads, so a store can fetch them in one query.
pub fn inclusion_proof_node_ids(index: u64, tree_size: u64) -> Result<Vec<NodeId>, MerkleError> {
    Ok(node_ids_of(&inclusion_ranges(index, tree_size)?))
}

/// The stored nodes a consistency proof reads, so a store can fetch them in one query.
pub fn consistency_proof_node_ids(
    old_size: u64,
    new_size: u64,
) -> Result<Vec<NodeId>, MerkleError> {
    Ok(node_ids_of(&consistency_ranges(old_size, new_size)?))
}

/// The inclusion proof of leaf `index` in the tree of `tree_size` leaves (RFC 6962 §2.1.1).
pub fn inclusion_proof(
    source: &impl NodeSource,
    index: u64,
    tree_size: u64,
) -> Result<Vec<Hash>, MerkleError> {
    hashes_of(source, &inclusion_ranges(index, tree_size)?)
}

/// The consistency proof between tree sizes `old_size <= new_size` (RFC 6962 §2.1.2). Empty when
/// the sizes are equal. An old size of 0 is refused: nothing was committed to yet.
pub fn consistency_proof(
    source: &impl NodeSource,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, MerkleError> {
    hashes_of(source, &consistency_ranges(old_size, new_size)?)
}

/// The root of the tree of `tree_size` leaves from stored nodes (checkpoint history, `verify`).
pub fn root_at(source: &impl NodeSource, tree_size: u64) -> Result<Hash, MerkleError> {
    Ok(CompactRange::from_node_source(source, tree_size)?.root())
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    if index >= tree_size {
        return Err(MerkleError::LeafIndexOutOfRange { index, tree_size });
    }
    let (mut fnode, mut snode) = (index, tree_size - 1);
    let mut computed = *leaf_hash;
    for sibling in proof {
        if snode == 0 {
            return Err(MerkleError::WrongProofLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            computed = hash_children(sibling, &computed);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            computed = hash_children(&computed, sibling);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(MerkleError::WrongProofLength);
    }
    if computed != *root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// Verifies a consistency proof (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    proof: &[Hash],
    old_root: &Hash,
    new_root: &Hash,
) -> Result<(), MerkleError> {
    if old_size > new_size {
        return Err(MerkleError::OldSizeAboveNewSize { old_size, new_size });
    }
    if old_size == 0 {
        return Err(MerkleError::EmptyTree {
            what: "consistency proof",
        });
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(MerkleError::WrongProofLength);
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(MerkleError::RootMismatch)
        };
    }
    if proof.is_empty() {
        return Err(MerkleError::WrongProofLength);
    }
    // When the old tree is a perfect subtree, its root is the implicit first proof element.
    let old_is_perfect = old_size.is_power_of_two();
    let mut path = proof.iter();
    let first = if old_is_perfect {
        old_root
    } else {
        path.next().expect("checked non-empty")
    };
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut old_computed, mut new_computed) = (*first, *first);
    for node in path {
        if snode == 0 {
            return Err(MerkleError::WrongProofLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            old_computed = hash_children(node, &old_computed);
            new_computed = hash_children(node, &new_computed);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            new_computed = hash_children(&new_computed, node);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(MerkleError::WrongProofLength);
    }
    if old_computed != *old_root || new_computed != *new_root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// All perfect nodes of a tree, kept in memory: what a store's node table holds, for tests and
/// for `verify` runs that rebuild a tree from events.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    range: CompactRange,
    nodes: HashMap<NodeId, Hash>,
}

impl MemoryTree {
    pub fn new() -> Self {
        MemoryTree::default()
    }

    pub fn append(&mut self, leaf_hash: Hash) {
        let nodes = &mut self.nodes;
        self.range.append(leaf_hash, |node| {
            nodes.insert(node.id, node.hash);
        });
    }

    pub fn size(&self) -> u64 {
        self.range.size()
    }

    pub fn root(&self) -> Hash {
        self.range.root()
    }
}

impl NodeSource for MemoryTree {
    fn perfect_subtree_hash(&self, level: u8, index: u64) -> Option<Hash> {
        self.nodes.perfect_subtree_hash(level, index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf_hashes(count: u64) -> Vec<Hash> {
        (0..count)
            .map(|seq| hash_leaf(format!("event {seq}").as_bytes()))
            .collect()
    }

    #[test]
    fn every_node_a_later_proof_needs_is_rebuilt_from_the_pruned_prefixs_compact_range() {
        let leaves = leaf_hashes(70);
        for pruned_below in [1_u64, 5, 16, 21, 32, 63] {
            let mut prefix = CompactRange::new();
            for leaf in &leaves[..pruned_below as usize] {
                prefix.append(*leaf, |_| {});
            }
            // A node source that knows only the prefix's compact range and the later leaves.
            let source = |id: NodeId| -> Result<Hash, MerkleError> {
                let start = (id.index << id.level).max(pruned_below);
                let end = ((id.index + 1) << id.level).min(leaves.len() as u64);
                let later = if start < end {
                    &leaves[start as usize..end as usize]
                } else {
                    &[][..]
                };
                perfect_subtree_across_prefix(id, &prefix, later)
            };
            for tree_size in pruned_below..=leaves.len() as u64 {
                for seq in pruned_below..tree_size {
                    let mut nodes = HashMap::new();
                    for id in inclusion_proof_node_ids(seq, tree_size).unwrap() {
                        nodes.insert(id, source(id).unwrap());
                    }
                    for id in perfect_decomposition(0, tree_size) {
                        nodes.insert(id, source(id).unwrap());
                    }
                    nodes.insert(NodeId::new(0, seq), leaves[seq as usize]);
                    let proof = inclusion_proof(&nodes, seq, tree_size).unwrap();
                    let root = root_at(&nodes, tree_size).unwrap();
                    assert_eq!(root, root_from_leaf_hashes(&leaves[..tree_size as usize]));
                    assert!(
                        verify_inclusion(&leaves[seq as usize], seq, tree_size, &proof, &root)
                            .is_ok(),
                        "leaf {seq} of {tree_size} after pruning below {pruned_below}"
                    );
                }
                // Consistency from every retained size (a checkpoint taken after the prefix).
                for old_size in pruned_below.max(1)..=tree_size {
                    let mut nodes = HashMap::new();
                    for id in consistency_proof_node_ids(old_size, tree_size)
                        .unwrap()
                        .into_iter()
                        .chain(perfect_decomposition(0, old_size))
                        .chain(perfect_decomposition(0, tree_size))
                    {
                        nodes.insert(id, source(id).unwrap());
                    }
                    let proof = consistency_proof(&nodes, old_size, tree_size).unwrap();
                    let old_root = root_from_leaf_hashes(&leaves[..old_size as usize]);
                    let new_root = root_from_leaf_hashes(&leaves[..tree_size as usize]);
                    assert!(
                        verify_consistency(old_size, tree_size, &proof, &old_root, &new_root)
                            .is_ok(),
                        "{old_size} to {tree_size} after pruning below {pruned_below}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_node_wholly_inside_the_prefix_is_known_only_if_it_is_one_of_its_perfect_subtrees() {
        let leaves = leaf_hashes(21);
        let mut prefix = CompactRange::new();
        for leaf in &leaves {
            prefix.append(*leaf, |_| {});
        }
        assert_eq!(
            perfect_subtree_across_prefix(NodeId::new(4, 0), &prefix, &[]).unwrap(),
            root_from_leaf_hashes(&leaves[..16])
        );
        assert!(perfect_subtree_across_prefix(NodeId::new(2, 0), &prefix, &[]).is_err());
    }
    use proptest::prelude::*;
    use sha2::Sha256 as Sha256Hasher;

    fn hash_from_hex(text: &str) -> Hash {
        let bytes: Vec<u8> = (0..text.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
            .collect();
        bytes.try_into().unwrap()
    }

    /// The leaves of the Certificate Transparency reference test tree (RFC 6962 test data used by
    /// the CT C++/Go code bases and transparency-dev/merkle).
    fn reference_leaves() -> Vec<Vec<u8>> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|text| {
            (0..text.len())
                .step_by(2)
                .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
                .collect()
        })
        .collect()
    }

    const REFERENCE_ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn reference_tree(size: usize) -> MemoryTree {
        let mut tree = MemoryTree::new();
        for leaf in &reference_leaves()[..size] {
            tree.append(hash_leaf(leaf));
        }
        tree
    }

    fn hashes(texts: &[&str]) -> Vec<Hash> {
        texts.iter().map(|text| hash_from_hex(text)).collect()
    }

    #[test]
    fn roots_of_the_reference_tree_match_the_published_values_for_every_size() {
        let leaf_hashes: Vec<Hash> = reference_leaves()
            .iter()
            .map(|leaf| hash_leaf(leaf))
            .collect();
        for size in 0..=8 {
            let expected = hash_from_hex(REFERENCE_ROOTS[size]);
            assert_eq!(
                root_from_leaf_hashes(&leaf_hashes[..size]),
                expected,
                "size {size}"
            );
            assert_eq!(reference_tree(size).root(), expected, "size {size}");
            assert_eq!(
                root_at(&reference_tree(8), size as u64).unwrap(),
                expected,
                "size {size} from stored nodes"
            );
        }
    }

    #[test]
    fn inclusion_proofs_of_the_reference_tree_match_the_published_values() {
        let tree = reference_tree(8);
        let cases: [(u64, u64, Vec<Hash>); 4] = [
            (0, 1, vec![]),
            (2, 3, hashes(&[REFERENCE_ROOTS[2]])),
            (
                0,
                8,
                hashes(&[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ]),
            ),
            (
                5,
                8,
                hashes(&[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ]),
            ),
        ];
        let leaves = reference_leaves();
        for (index, size, expected) in cases {
            let proof = inclusion_proof(&tree, index, size).unwrap();
            assert_eq!(proof, expected, "leaf {index} of {size}");
            let root = hash_from_hex(REFERENCE_ROOTS[size as usize]);
            verify_inclusion(
                &hash_leaf(&leaves[index as usize]),
                index,
                size,
                &proof,
                &root,
            )
            .unwrap();
        }
    }

    #[test]
    fn consistency_proofs_of_the_reference_tree_match_the_published_values() {
        let tree = reference_tree(8);
        let cases: [(u64, u64, Vec<Hash>); 4] = [
            (1, 1, vec![]),
            (
                1,
                8,
                hashes(&[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ]),
            ),
            (
                6,
                8,
                hashes(&[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ]),
            ),
            (
                2,
                5,
                hashes(&[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ]),
            ),
        ];
        for (old_size, new_size, expected) in cases {
            let proof = consistency_proof(&tree, old_size, new_size).unwrap();
            assert_eq!(proof, expected, "{old_size} -> {new_size}");
            let old_root = hash_from_hex(REFERENCE_ROOTS[old_size as usize]);
            let new_root = hash_from_hex(REFERENCE_ROOTS[new_size as usize]);
            verify_consistency(old_size, new_size, &proof, &old_root, &new_root).unwrap();
        }
    }

    #[test]
    fn invalid_ranges_are_errors_not_panics() {
        let tree = reference_tree(8);
        assert_eq!(
            inclusion_proof(&tree, 8, 8),
            Err(MerkleError::LeafIndexOutOfRange {
                index: 8,
                tree_size: 8
            })
        );
        assert!(matches!(
            inclusion_proof(&tree, 0, 0),
            Err(MerkleError::LeafIndexOutOfRange { .. })
        ));
        assert_eq!(
            consistency_proof(&tree, 5, 4),
            Err(MerkleError::OldSizeAboveNewSize {
                old_size: 5,
                new_size: 4
            })
        );
        assert!(matches!(
            consistency_proof(&tree, 0, 4),
            Err(MerkleError::EmptyTree { .. })
        ));
        assert_eq!(
            inclusion_proof(&tree, 3, 9),
            Err(MerkleError::MissingNode(NodeId::new(0, 8)))
        );
        let root = tree.root();
        assert!(verify_inclusion(&root, 9, 8, &[], &root).is_err());
        assert!(verify_consistency(4, 3, &[], &root, &root).is_err());
        assert!(verify_consistency(0, 3, &[], &root, &root).is_err());
        assert!(verify_consistency(3, 3, &[root], &root, &root).is_err());
    }

    #[test]
    fn appending_leaf_i_reports_exactly_the_perfect_subtrees_it_completes() {
        let mut range = CompactRange::new();
        let mut reported = Vec::new();
        for leaf in 0u8..8 {
            range.append(hash_leaf(&[leaf]), |node| reported.push(node.id));
        }
        let ids = |pairs: &[(u8, u64)]| {
            pairs
                .iter()
                .map(|&(level, index)| NodeId::new(level, index))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            reported,
            ids(&[
                (0, 0),
                (0, 1),
                (1, 0),
                (0, 2),
                (0, 3),
                (1, 1),
                (2, 0),
                (0, 4),
                (0, 5),
                (1, 2),
                (0, 6),
                (0, 7),
                (1, 3),
                (2, 1),
                (3, 0)
            ])
        );
    }

    #[test]
    fn a_compact_range_round_trips_through_bytes_and_rejects_malformed_bytes() {
        let tree = reference_tree(7);
        let mut range = CompactRange::new();
        for leaf in &reference_leaves()[..7] {
            range.append(hash_leaf(leaf), |_| {});
        }
        let bytes = range.to_bytes();
        assert_eq!(bytes.len(), 8 + 3 * 32);
        let restored = CompactRange::from_bytes(&bytes).unwrap();
        assert_eq!(restored, range);
        assert_eq!(CompactRange::from_node_source(&tree, 7).unwrap(), range);
        assert_eq!(
            CompactRange::from_bytes(&bytes[..bytes.len() - 1]),
            Err(MerkleError::MalformedCompactRange)
        );
        assert_eq!(
            CompactRange::from_bytes(&[0; 7]),
            Err(MerkleError::MalformedCompactRange)
        );
        assert_eq!(
            CompactRange::from_bytes(&0u64.to_be_bytes())
                .unwrap()
                .root(),
            empty_root()
        );
    }

    fn random_tree(size: u64) -> (MemoryTree, Vec<Hash>, Vec<Hash>) {
        let mut tree = MemoryTree::new();
        let mut leaf_hashes = Vec::new();
        let mut roots = vec![empty_root()];
        for leaf in 0..size {
            let leaf_hash = hash_leaf(&leaf.to_le_bytes());
            tree.append(leaf_hash);
            leaf_hashes.push(leaf_hash);
            roots.push(tree.root());
        }
        (tree, leaf_hashes, roots)
    }

    #[test]
    fn proofs_and_roots_agree_with_the_ct_merkle_crate() {
        for size in 1u64..=70 {
            let mut reference =
                ct_merkle::mem_backed_tree::MemoryBackedTree::<Sha256Hasher, Vec<u8>>::new();
            let (tree, _, roots) = random_tree(size);
            for leaf in 0..size {
                reference.push(leaf.to_le_bytes().to_vec());
            }
            assert_eq!(
                reference.root().as_bytes().as_slice(),
                roots[size as usize].as_slice()
            );
            for index in 0..size {
                let ours: Vec<u8> = inclusion_proof(&tree, index, size).unwrap().concat();
                assert_eq!(
                    ours,
                    reference.prove_inclusion(index as usize).as_bytes(),
                    "leaf {index} of {size}"
                );
            }
            for old_size in 1..size {
                let ours = consistency_proof(&tree, old_size, size).unwrap();
                let theirs = reference.prove_consistency((size - old_size) as usize);
                let theirs_decoded: Vec<Hash> = theirs
                    .as_bytes()
                    .chunks_exact(32)
                    .map(|chunk| chunk.try_into().unwrap())
                    .collect();
                verify_consistency(
                    old_size,
                    size,
                    &theirs_decoded,
                    &roots[old_size as usize],
                    &roots[size as usize],
                )
                .unwrap_or_else(|error| panic!("their proof {old_size} -> {size}: {error}"));
                let ours_for_them =
                    ct_merkle::ConsistencyProof::<Sha256Hasher>::try_from_bytes(ours.concat())
                        .unwrap();
                let old_root = ct_merkle::RootHash::<Sha256Hasher>::new(
                    roots[old_size as usize].into(),
                    old_size,
                );
                reference
                    .root()
                    .verify_consistency(&old_root, &ours_for_them)
                    .unwrap();
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn every_generated_proof_verifies_and_every_bit_flip_is_rejected(
            size in 1u64..300,
            index_seed in any::<u64>(),
            old_seed in any::<u64>(),
            flip_seed in any::<u64>(),
        ) {
            let (tree, leaf_hashes, roots) = random_tree(size);
            let index = index_seed % size;
            let root = roots[size as usize];
            let proof = inclusion_proof(&tree, index, size).unwrap();
            prop_assert_eq!(inclusion_proof_node_ids(index, size).unwrap().len() >= proof.len(), true);
            prop_assert!(verify_inclusion(&leaf_hashes[index as usize], index, size, &proof, &root).is_ok());
            if !proof.is_empty() {
                let bit = (flip_seed % (proof.len() as u64 * 256)) as usize;
                let mut mutated = proof.clone();
                mutated[bit / 256][(bit % 256) / 8] ^= 1 << (bit % 8);
                prop_assert!(verify_inclusion(&leaf_hashes[index as usize], index, size, &mutated, &root).is_err());
                let mut shorter = proof.clone();
                shorter.pop();
                prop_assert!(verify_inclusion(&leaf_hashes[index as usize], index, size, &shorter, &root).is_err());
            }
            let mut mutated_root = root;
            mutated_root[(flip_seed % 32) as usize] ^= 1 << (flip_seed % 8);
            prop_assert!(verify_inclusion(&leaf_hashes[index as usize], index, size, &proof, &mutated_root).is_err());


            let old_size = 1 + old_seed % size;
            let old_root = roots[old_size as usize];
            let consistency = consistency_proof(&tree, old_size, size).unwrap();
            prop_assert!(verify_consistency(old_size, size, &consistency, &old_root, &root).is_ok());
            prop_assert!(verify_consistency(old_size, size, &consistency, &old_root, &mutated_root).is_err());
            prop_assert!(verify_consistency(old_size, size, &consistency, &mutated_root, &root).is_err());
            if !consistency.is_empty() {
                let bit = (flip_seed % (consistency.len() as u64 * 256)) as usize;
                let mut mutated = consistency.clone();
                mutated[bit / 256][(bit % 256) / 8] ^= 1 << (bit % 8);
                prop_assert!(verify_consistency(old_size, size, &mutated, &old_root, &root).is_err());
                let mut extended = consistency.clone();
                extended.push(root);
                prop_assert!(verify_consistency(old_size, size, &extended, &old_root, &root).is_err());
            }
        }
    }
}
