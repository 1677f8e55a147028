//! Verifying a whole store's tamper evidence (`logbook verify --database`), through the `Store`
//! and `LogTree` traits so every backend is checked by the same code.
//!
//! For each account, its events are read in `seq` order and their leaf hashes recomputed from the
//! stored rows; the first event that does not fit is named exactly:
//! - a changed (or swapped) event no longer hashes to the leaf stored when it was committed;
//! - a deleted event leaves a gap in `seq`;
//! - an event added outside Logbook lies beyond the tree (no stored leaf);
//! - events edited *and* a tree recomputed over them no longer reach the root of a signed
//!   checkpoint taken before the edit, and events cut off the tail leave a checkpoint larger than
//!   the log. Every checkpoint's signature is checked with the public key;
//! - an event whose personal fields were removed still verifies field by field (leaf version 2);
//!   one stored before that version is counted as "erased, content not verifiable" and the tree
//!   is checked through the leaf stored for it;
//! - a log whose first events were removed by retention starts from the compact range kept for
//!   them, accepted only with a prune statement signed by the same key that names that range's
//!   root (`crate::retention`); a prefix removed any other way is a missing event.
//!
//! Reads are bounded: `EVENTS_PER_READ` events and their stored leaves at a time.

use crate::AccountId;
use crate::checkpoint::CheckpointVerifier;
use crate::leaf::EventLeaf;
use crate::merkle::{CompactRange, NodeId};
use crate::retention::{PruneStatement, PrunedPrefix};
use crate::store::{LogTree, Store, StoreError, StoredCheckpoint};

const EVENTS_PER_READ: u32 = 1000;
const CHECKPOINTS_PER_READ: u32 = 1000;

/// What a successful verification covered.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LogVerified {
    pub accounts: u64,
    pub events: u64,
    pub checkpoints: u64,
    /// Accounts whose log starts after a prefix removed by retention, with a statement that
    /// verified.
    pub pruned_accounts: u64,
    /// Events removed by retention, summed over those accounts (each prefix's size).
    pub pruned_events: u64,
    /// Events whose personal fields were removed (by age or erasure) and whose remaining content
    /// still verifies against their leaf (leaf version 2, `crate::personal_data`).
    pub events_with_removed_personal_data: u64,
    /// Events stored before leaf version 2 whose personal fields were removed: the tree still
    /// verifies through the leaf stored for them, but their content cannot be checked.
    pub erased_events_not_verifiable: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LogVerificationError {
    #[error("this store keeps no verifiable log")]
    NoTree,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The first event of `account` that does not match the log, and why.
    #[error("account {account}, seq {seq}: {reason}")]
    Event {
        account: AccountId,
        seq: u64,
        reason: String,
    },
    /// A checkpoint that does not verify or does not match the events before it.
    #[error("account {account}: the checkpoint at tree size {tree_size} {reason}")]
    Checkpoint {
        account: AccountId,
        tree_size: u64,
        reason: String,
    },
}

fn event_error(account: &AccountId, seq: u64, reason: impl Into<String>) -> LogVerificationError {
    LogVerificationError::Event {
        account: account.clone(),
        seq,
        reason: reason.into(),
    }
}

/// Every checkpoint of `account`, smallest tree first.
pub async fn all_checkpoints(
    tree: &dyn LogTree,
    account: &AccountId,
) -> Result<Vec<StoredCheckpoint>, StoreError> {
    let mut checkpoints = Vec::new();
    let mut before = None;
    loop {
        let page = tree
            .checkpoints(account, before, CHECKPOINTS_PER_READ)
            .await?;
        let full = page.len() == CHECKPOINTS_PER_READ as usize;
        before = page.last().map(|checkpoint| checkpoint.tree_size);
        checkpoints.extend(page);
        if !full {
            break;
        }
    }
    checkpoints.reverse();
    Ok(checkpoints)
}

fn check_signature(
    account: &AccountId,
    stored: &StoredCheckpoint,
    verifier: &CheckpointVerifier,
) -> Result<(), LogVerificationError> {
    let fail = |reason: String| LogVerificationError::Checkpoint {
        account: account.clone(),
        tree_size: stored.tree_size,
        reason,
    };
    let checkpoint = verifier
        .parse_and_verify(&stored.text)
        .map_err(|error| fail(format!("does not verify: {error}")))?;
    if checkpoint.account() != Some(account.as_str())
        || checkpoint.tree_size != stored.tree_size
        || checkpoint.root_hash != stored.root_hash
    {
        return Err(fail("signs another account, size or root".into()));
    }
    Ok(())
}

/// Verifies every account of `store` (module docs).
pub async fn verify_store(
    store: &dyn Store,
    verifier: &CheckpointVerifier,
) -> Result<LogVerified, LogVerificationError> {
    let tree = store.log_tree().ok_or(LogVerificationError::NoTree)?;
    let mut verified = LogVerified::default();
    for account_record in store.list_accounts().await? {
        let account = account_record.account;
        let counts = verify_account(store, tree, &account, verifier).await?;
        verified.accounts += 1;
        verified.events += counts.events;
        verified.checkpoints += counts.checkpoints;
        verified.pruned_accounts += counts.pruned_accounts;
        verified.pruned_events += counts.pruned_events;
        verified.events_with_removed_personal_data += counts.events_with_removed_personal_data;
        verified.erased_events_not_verifiable += counts.erased_events_not_verifiable;
    }
    Ok(verified)
}

/// The compact range kept for `account`'s pruned prefix, once its statement verified with the
/// checkpoint key and its root is the kept range's.
fn verified_prefix(
    account: &AccountId,
    prefix: &PrunedPrefix,
    verifier: &CheckpointVerifier,
) -> Result<CompactRange, LogVerificationError> {
    let fail = |reason: String| LogVerificationError::Event {
        account: account.clone(),
        seq: 0,
        reason,
    };
    let statement = PruneStatement::verify(&prefix.statement, verifier).map_err(|error| {
        fail(format!(
            "the events before this account's log were removed, and the statement that says so does not verify: {error}"
        ))
    })?;
    if !statement
        .origin
        .ends_with(&format!("/{}", account.as_str()))
    {
        return Err(fail(
            "the statement about the removed events is about another account's log".into(),
        ));
    }
    let range = CompactRange::from_bytes(&prefix.prefix_range).map_err(|error| {
        fail(format!(
            "the kept tree of the removed events is unreadable: {error}"
        ))
    })?;
    if range.size() != statement.pruned_below_seq || range.root() != statement.prefix_root {
        return Err(fail(format!(
            "the kept tree of the removed events (size {}) is not the one the signed statement names (events below seq {})",
            range.size(),
            statement.pruned_below_seq
        )));
    }
    Ok(range)
}

/// Verifies one account (module docs).
pub async fn verify_account(
    store: &dyn Store,
    tree: &dyn LogTree,
    account: &AccountId,
    verifier: &CheckpointVerifier,
) -> Result<LogVerified, LogVerificationError> {
    let mut verified = LogVerified {
        accounts: 1,
        ..LogVerified::default()
    };
    let checkpoints = all_checkpoints(tree, account).await?;
    for stored in &checkpoints {
        check_signature(account, stored, verifier)?;
    }
    let head = tree.tree_head(account).await?;
    // A log that starts after a prefix removed by retention starts from that prefix's kept
    // compact range, which its signed statement vouches for; checkpoints of smaller trees can no
    // longer be recomputed and are only checked for their signature.
    let mut recomputed = CompactRange::new();
    if let Some(prefix) = store.retention().pruned_prefix(account).await? {
        recomputed = verified_prefix(account, &prefix, verifier)?;
        verified.pruned_accounts = 1;
        verified.pruned_events = recomputed.size();
    }
    let pruned_below = recomputed.size();
    let mut pending_checkpoints = checkpoints
        .iter()
        .filter(|checkpoint| checkpoint.tree_size >= pruned_below)
        .peekable();
    while let Some(checkpoint) =
        pending_checkpoints.next_if(|checkpoint| checkpoint.tree_size == recomputed.size())
    {
        if recomputed.root() != checkpoint.root_hash {
            return Err(LogVerificationError::Checkpoint {
                account: account.clone(),
                tree_size: checkpoint.tree_size,
                reason: "is not the root of the pruned prefix its statement vouches for".into(),
            });
        }
        verified.checkpoints += 1;
    }
    loop {
        let events = store
            .events_since(account, recomputed.size(), EVENTS_PER_READ)
            .await?;
        if events.is_empty() {
            break;
        }
        let leaf_ids: Vec<NodeId> = events
            .iter()
            .filter(|event| event.seq < head.tree_size)
            .map(|event| NodeId::new(0, event.seq))
            .collect();
        let stored_leaves = tree.tree_nodes(account, &leaf_ids).await?;
        for event in &events {
            let seq = recomputed.size();
            if event.seq != seq {
                return Err(event_error(
                    account,
                    seq,
                    format!(
                        "the event is missing (the next stored event is seq {})",
                        event.seq
                    ),
                ));
            }
            let leaf = event.leaf().map_err(|error| {
                event_error(
                    account,
                    seq,
                    format!("the stored event cannot be read: {error}"),
                )
            })?;
            let Some(stored_leaf) = stored_leaves.get(&NodeId::new(0, seq)).copied() else {
                return Err(event_error(
                    account,
                    seq,
                    "the event is not in the account's tree (it was added outside Logbook)",
                ));
            };
            let leaf_hash = match leaf {
                EventLeaf::Verifiable { leaf_hash, .. } if leaf_hash != stored_leaf => {
                    return Err(event_error(
                        account,
                        seq,
                        "the event's content no longer matches the leaf hash committed for it",
                    ));
                }
                EventLeaf::Verifiable {
                    leaf_hash,
                    removed_fields,
                } => {
                    if removed_fields > 0 {
                        verified.events_with_removed_personal_data += 1;
                    }
                    leaf_hash
                }
                EventLeaf::ErasedBeforeVersion2 { .. } => {
                    verified.erased_events_not_verifiable += 1;
                    stored_leaf
                }
            };
            recomputed.append(leaf_hash, |_| {});
            verified.events += 1;
            while let Some(checkpoint) =
                pending_checkpoints.next_if(|checkpoint| checkpoint.tree_size == recomputed.size())
            {
                if recomputed.root() != checkpoint.root_hash {
                    return Err(LogVerificationError::Checkpoint {
                        account: account.clone(),
                        tree_size: checkpoint.tree_size,
                        reason: "is not the root of the stored events: an event before it was changed, removed or inserted and the tree recomputed".into(),
                    });
                }
                verified.checkpoints += 1;
            }
        }
    }
    if let Some(checkpoint) = pending_checkpoints.next() {
        return Err(event_error(
            account,
            recomputed.size(),
            format!(
                "the event is missing: the log holds {} events but was checkpointed at tree size {}",
                recomputed.size(),
                checkpoint.tree_size
            ),
        ));
    }
    if head.tree_size != recomputed.size() || head.root_hash != recomputed.root() {
        return Err(event_error(
            account,
            recomputed.size().min(head.tree_size),
            format!(
                "the account's tree (size {}) does not match its {} stored events",
                head.tree_size,
                recomputed.size()
            ),
        ));
    }
    Ok(verified)
}
