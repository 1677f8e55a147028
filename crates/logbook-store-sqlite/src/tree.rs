//! Each account's verifiable log on SQLite (migrations 0003 and 0009): each event's leaf hash in
//! its row (`events.leaf_hash`), the perfect subtree hashes of level `LOWEST_STORED_NODE_LEVEL`
//! and above in `tree_nodes` (a lower node is recomputed from its leaf hashes when a proof asks
//! for it), the writer's compact right edge in `tree_state`, and signed `checkpoints`.
//!
//! The writer calls `load_account_tree`, `append_leaf` and `save_account_tree` inside the
//! transaction that inserts the events, so a committed event is never outside its account's
//! tree. Everything else (proofs, checkpoints) goes through `LogTree` on the reader connections,
//! and checkpoints are written on the admin connection, never behind a group commit.

use std::collections::HashMap;

use async_trait::async_trait;
use logbook_core::event::EventRow;
use logbook_core::merkle::{
    CompactRange, Hash, LOWEST_STORED_NODE_LEVEL, NodeId, perfect_subtree_across_prefix,
    root_from_leaf_hashes,
};
use logbook_core::store::{LogTree, StoredCheckpoint, TreeHead};
use logbook_core::{AccountId, StoreError};
use rusqlite::{Connection, OptionalExtension, params};

use crate::SqliteStore;
use crate::encoding::{SEQ_BITS, first_event_row_of, micros_to_time, unix_micros_of};
use crate::errors::database_error;

/// The compact range kept for the account's pruned prefix, `None` when nothing was pruned.
pub(crate) fn pruned_prefix_range(
    connection: &Connection,
    account_row: i64,
) -> Result<Option<CompactRange>, StoreError> {
    let bytes: Option<Vec<u8>> = connection
        .prepare_cached("SELECT prefix_range FROM pruned_prefixes WHERE account_row = ?1")
        .map_err(database_error("reading a pruned prefix"))?
        .query_row([account_row], |row| row.get(0))
        .optional()
        .map_err(database_error("reading a pruned prefix"))?;
    bytes
        .map(|bytes| {
            CompactRange::from_bytes(&bytes).map_err(|error| StoreError::Database {
                context: "reading a pruned prefix",
                message: error.to_string(),
            })
        })
        .transpose()
}

/// The account's compact range as the last commit left it (empty for an account without events).
pub(crate) fn load_account_tree(
    connection: &Connection,
    account_row: i64,
) -> Result<CompactRange, rusqlite::Error> {
    let stored: Option<Vec<u8>> = connection
        .prepare_cached("SELECT compact_range FROM tree_state WHERE account_row = ?1")?
        .query_row([account_row], |row| row.get(0))
        .optional()?;
    match stored {
        None => Ok(CompactRange::new()),
        Some(bytes) => CompactRange::from_bytes(&bytes).map_err(|error| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Blob,
                Box::new(error),
            )
        }),
    }
}

/// Appends one leaf to the account's tree and inserts every perfect subtree it completes at
/// `LOWEST_STORED_NODE_LEVEL` or above (the leaf hash itself goes into the event's row, written
/// by the caller). Returns the tree size after it.
pub(crate) fn append_leaf(
    connection: &Connection,
    account_row: i64,
    tree: &mut CompactRange,
    leaf_hash: Hash,
) -> Result<u64, rusqlite::Error> {
    let mut insert_node = connection.prepare_cached(
        "INSERT INTO tree_nodes (account_row, level, node_index, hash) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut failure = None;
    tree.append(leaf_hash, |node| {
        if failure.is_none()
            && node.id.level >= LOWEST_STORED_NODE_LEVEL
            && let Err(error) = insert_node.execute(params![
                account_row,
                node.id.level,
                node.id.index as i64,
                node.hash.as_slice()
            ])
        {
            failure = Some(error);
        }
    });
    match failure {
        Some(error) => Err(error),
        None => Ok(tree.size()),
    }
}

/// Persists the account's compact range; called once per account per group, after its appends.
pub(crate) fn save_account_tree(
    connection: &Connection,
    account_row: i64,
    tree: &CompactRange,
) -> Result<(), rusqlite::Error> {
    connection
        .prepare_cached(
            "INSERT INTO tree_state (account_row, tree_size, compact_range) VALUES (?1, ?2, ?3) \
             ON CONFLICT (account_row) DO UPDATE SET tree_size = excluded.tree_size, compact_range = excluded.compact_range",
        )?
        .execute(params![account_row, tree.size() as i64, tree.to_bytes()])?;
    Ok(())
}

/// Builds the tree of every account that has events but no tree yet (a database written before
/// migration 0003), from the stored bodies. It runs when the store opens. An account that has a
/// tree is never extended here: an event that appears beyond its tree was not written by the
/// writer, and must stay outside it for `verify` to name it.
pub(crate) fn build_missing_trees(connection: &mut Connection) -> Result<u64, StoreError> {
    let transaction = connection
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(database_error("starting to build account trees"))?;
    let behind: Vec<(i64, i64)> = transaction
        .prepare(
            "SELECT a.account_row, 0 FROM accounts a \
             WHERE NOT EXISTS (SELECT 1 FROM tree_state s WHERE s.account_row = a.account_row) \
             AND EXISTS (SELECT 1 FROM events e WHERE e.event_row >= (a.account_row << 40) \
                         AND e.event_row < ((a.account_row + 1) << 40))",
        )
        .and_then(|mut statement| {
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(database_error("finding accounts without a tree"))?;
    let mut appended = 0;
    for (account_row, tree_size) in behind {
        let mut tree = load_account_tree(&transaction, account_row)
            .map_err(database_error("reading an account tree"))?;
        let mut statement = transaction
            .prepare(
                "SELECT event_row - ?1, body FROM events WHERE event_row >= ?1 + ?2 AND event_row < ?3 ORDER BY event_row",
            )
            .map_err(database_error("reading events to build a tree"))?;
        let first = first_event_row_of(account_row);
        let mut leaf_hashes: Vec<(i64, Hash)> = Vec::new();
        let mut rows = statement
            .query(params![first, tree_size, first + (1_i64 << SEQ_BITS)])
            .map_err(database_error("reading events to build a tree"))?;
        while let Some(row) = rows
            .next()
            .map_err(database_error("reading events to build a tree"))?
        {
            let event = EventRow {
                seq: row
                    .get::<_, i64>(0)
                    .map_err(database_error("reading a seq"))? as u64,
                created_at_micros: 0,
                body_without_seq: row.get(1).map_err(database_error("reading a body"))?,
                location: None,
                new_ip: false,
                new_network: false,
                new_country: false,
            };
            if event.seq != tree.size() {
                return Err(StoreError::Database {
                    context: "building an account tree",
                    message: format!(
                        "account row {account_row} has no event at seq {}",
                        tree.size()
                    ),
                });
            }
            let leaf_hash = event.leaf_hash().map_err(|error| StoreError::Database {
                context: "building an account tree",
                message: error.to_string(),
            })?;
            append_leaf(&transaction, account_row, &mut tree, leaf_hash)
                .map_err(database_error("storing tree nodes"))?;
            leaf_hashes.push((first + event.seq as i64, leaf_hash));
            appended += 1;
        }
        drop(rows);
        // Written after the read is done: SQLite leaves updating a table under a running SELECT
        // of that table undefined.
        let mut store_leaf_hash = transaction
            .prepare_cached("UPDATE events SET leaf_hash = ?2 WHERE event_row = ?1")
            .map_err(database_error("storing a leaf hash"))?;
        for (event_row, leaf_hash) in leaf_hashes {
            store_leaf_hash
                .execute(params![event_row, leaf_hash.as_slice()])
                .map_err(database_error("storing a leaf hash"))?;
        }
        save_account_tree(&transaction, account_row, &tree)
            .map_err(database_error("storing an account tree"))?;
    }
    transaction
        .commit()
        .map_err(database_error("committing account trees"))?;
    Ok(appended)
}

fn hash_of(bytes: Vec<u8>, column: usize) -> rusqlite::Result<Hash> {
    bytes.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Blob,
            "a stored hash is not 32 bytes".into(),
        )
    })
}

fn checkpoint_of(
    account: &AccountId,
    row: &rusqlite::Row<'_>,
) -> rusqlite::Result<StoredCheckpoint> {
    Ok(StoredCheckpoint {
        account: account.clone(),
        tree_size: row.get::<_, i64>(0)? as u64,
        root_hash: hash_of(row.get(1)?, 1)?,
        signed_at: micros_to_time(row.get(2)?),
        text: row.get(3)?,
    })
}

fn tree_head_of(
    account: AccountId,
    compact_range: Option<Vec<u8>>,
) -> Result<TreeHead, StoreError> {
    let tree = match compact_range {
        None => CompactRange::new(),
        Some(bytes) => CompactRange::from_bytes(&bytes).map_err(|error| StoreError::Database {
            context: "reading an account tree",
            message: error.to_string(),
        })?,
    };
    Ok(TreeHead {
        account,
        tree_size: tree.size(),
        root_hash: tree.root(),
    })
}

const CHECKPOINT_COLUMNS: &str = "tree_size, root_hash, signed_at, note";

#[async_trait]
impl LogTree for SqliteStore {
    async fn tree_head(&self, account: &AccountId) -> Result<TreeHead, StoreError> {
        let account = account.clone();
        self.inner
            .read(move |connection| {
                let stored: Option<Vec<u8>> = connection
                    .prepare_cached(
                        "SELECT s.compact_range FROM tree_state s JOIN accounts a ON a.account_row = s.account_row WHERE a.name = ?1",
                    )
                    .and_then(|mut statement| {
                        statement
                            .query_row([account.as_str()], |row| row.get(0))
                            .optional()
                    })
                    .map_err(database_error("reading a tree head"))?;
                tree_head_of(account, stored)
            })
            .await
    }

    async fn tree_nodes(
        &self,
        account: &AccountId,
        node_ids: &[NodeId],
    ) -> Result<HashMap<NodeId, Hash>, StoreError> {
        let account = account.clone();
        let node_ids = node_ids.to_vec();
        self.inner
            .read(move |connection| {
                let mut nodes = HashMap::with_capacity(node_ids.len());
                let Some(account_row) = crate::account_row(connection, &account)? else {
                    return Ok(nodes);
                };
                // A proof needs O(log n) nodes: a stored one is a primary-key lookup, a lower one
                // one short range of at most 2^LOWEST_STORED_NODE_LEVEL event rows.
                let mut stored_node = connection
                    .prepare_cached(
                        "SELECT hash FROM tree_nodes WHERE account_row = ?1 AND level = ?2 AND node_index = ?3",
                    )
                    .map_err(database_error("reading tree nodes"))?;
                let mut leaf_hashes = connection
                    .prepare_cached(
                        "SELECT leaf_hash FROM events WHERE event_row >= ?1 AND event_row < ?2 ORDER BY event_row",
                    )
                    .map_err(database_error("reading leaf hashes"))?;
                let first = first_event_row_of(account_row);
                // Below a pruned prefix the events are gone; its compact range stands for them.
                let prefix = pruned_prefix_range(connection, account_row)?;
                let pruned_below = prefix.as_ref().map_or(0, CompactRange::size);
                let mut read_leaves = |from: i64, to: i64| -> Result<Option<Vec<Hash>>, StoreError> {
                    let leaves: Vec<Option<Vec<u8>>> = leaf_hashes
                        .query_map(params![first + from, first + to], |row| row.get(0))
                        .and_then(|rows| rows.collect())
                        .map_err(database_error("reading leaf hashes"))?;
                    // A node exists only when every one of its leaves is in the tree (an event
                    // inserted behind the writer's back has no leaf hash).
                    let leaves: Option<Vec<Hash>> = leaves
                        .into_iter()
                        .map(|bytes| bytes.and_then(|bytes| Hash::try_from(bytes).ok()))
                        .collect();
                    Ok(leaves.filter(|leaves| leaves.len() as i64 == to - from))
                };
                for id in node_ids {
                    let leaf_count = 1_i64 << id.level;
                    let Some(start) = (id.index as i64)
                        .checked_mul(leaf_count)
                        .filter(|start| *start < (1_i64 << SEQ_BITS))
                    else {
                        continue;
                    };
                    let end = start + leaf_count;
                    let straddles_prefix = (start as u64) < pruned_below;
                    if id.level >= LOWEST_STORED_NODE_LEVEL
                        && !(straddles_prefix && end as u64 <= pruned_below)
                    {
                        let bytes: Option<Vec<u8>> = stored_node
                            .query_row(params![account_row, id.level, id.index as i64], |row| {
                                row.get(0)
                            })
                            .optional()
                            .map_err(database_error("reading tree nodes"))?;
                        if let Some(hash) = bytes.and_then(|bytes| Hash::try_from(bytes).ok()) {
                            nodes.insert(id, hash);
                        }
                        continue;
                    }
                    if let (true, Some(prefix)) = (straddles_prefix, &prefix) {
                        let from = (pruned_below as i64).min(end);
                        let later = if from < end {
                            read_leaves(from, end)?
                        } else {
                            Some(Vec::new())
                        };
                        if let Some(later) = later
                            && let Ok(hash) = perfect_subtree_across_prefix(id, prefix, &later)
                        {
                            nodes.insert(id, hash);
                        }
                        continue;
                    }
                    if let Some(leaves) = read_leaves(start, end)? {
                        nodes.insert(id, root_from_leaf_hashes(&leaves));
                    }
                }
                Ok(nodes)
            })
            .await
    }

    async fn tree_heads_without_checkpoint(&self) -> Result<Vec<TreeHead>, StoreError> {
        self.inner
            .read(|connection| {
                let rows: Vec<(String, Vec<u8>)> = connection
                    .prepare_cached(
                        "SELECT a.name, s.compact_range FROM tree_state s JOIN accounts a ON a.account_row = s.account_row \
                         WHERE s.tree_size > coalesce((SELECT max(c.tree_size) FROM checkpoints c WHERE c.account_row = s.account_row), 0)",
                    )
                    .and_then(|mut statement| {
                        statement
                            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                            .collect()
                    })
                    .map_err(database_error("finding trees without a checkpoint"))?;
                rows.into_iter()
                    .map(|(name, bytes)| {
                        let account =
                            AccountId::parse(&name).map_err(|error| StoreError::Database {
                                context: "reading an account name",
                                message: error.to_string(),
                            })?;
                        tree_head_of(account, Some(bytes))
                    })
                    .collect()
            })
            .await
    }

    async fn store_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError> {
        let checkpoint = checkpoint.clone();
        self.inner
            .administer(move |connection| {
                let account_row = crate::account_row(connection, &checkpoint.account)?
                    .ok_or_else(|| StoreError::AccountNotFound(checkpoint.account.clone()))?;
                connection
                    .prepare_cached(
                        "INSERT INTO checkpoints (account_row, tree_size, root_hash, signed_at, note) VALUES (?1, ?2, ?3, ?4, ?5) \
                         ON CONFLICT (account_row, tree_size) DO NOTHING",
                    )
                    .and_then(|mut statement| {
                        statement.execute(params![
                            account_row,
                            checkpoint.tree_size as i64,
                            checkpoint.root_hash.as_slice(),
                            unix_micros_of(checkpoint.signed_at),
                            checkpoint.text,
                        ])
                    })
                    .map_err(database_error("storing a checkpoint"))?;
                Ok(())
            })
            .await
    }

    async fn latest_checkpoint(
        &self,
        account: &AccountId,
    ) -> Result<Option<StoredCheckpoint>, StoreError> {
        Ok(self.checkpoints(account, None, 1).await?.into_iter().next())
    }

    async fn checkpoints(
        &self,
        account: &AccountId,
        before_tree_size: Option<u64>,
        limit: u32,
    ) -> Result<Vec<StoredCheckpoint>, StoreError> {
        let account = account.clone();
        let before = before_tree_size.map_or(i64::MAX, |size| size.min(i64::MAX as u64) as i64);
        self.inner
            .read(move |connection| {
                let Some(account_row) = crate::account_row(connection, &account)? else {
                    return Ok(Vec::new());
                };
                connection
                    .prepare_cached(&format!(
                        "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE account_row = ?1 AND tree_size < ?2 \
                         ORDER BY tree_size DESC LIMIT ?3"
                    ))
                    .and_then(|mut statement| {
                        statement
                            .query_map(params![account_row, before, limit], |row| {
                                checkpoint_of(&account, row)
                            })?
                            .collect()
                    })
                    .map_err(database_error("reading checkpoints"))
            })
            .await
    }
}
