//! Each account's verifiable log on PostgreSQL (migrations 0003 and 0009): each event's leaf hash
//! in its row (`events.leaf_hash`, written by the event's COPY), the perfect subtree hashes of
//! level `LOWEST_STORED_NODE_LEVEL` and above in `tree_nodes` (a lower node is recomputed from its
//! leaf hashes when a proof asks for it), each account's compact right edge in `tree_state`, and
//! signed `checkpoints`.
//!
//! Several nodes append to one account, so no writer may cache a tree across commits: inside the
//! group's transaction, after the accounts are locked `FOR UPDATE`, the writer reads their
//! `tree_state` (`load_trees`), appends each new event's leaf (`TreeAppends::append_leaf`) and
//! writes every completed node and the new states in two statements (`TreeAppends::write`). The
//! row lock that makes `seq` dense also makes the tree follow `seq` exactly.
//!
//! Reads are bound to their account (`AccountReader`, row-level security applies to the tree
//! tables too); the checkpointer's cross-account query says so with `logbook.all_accounts`.

use std::collections::HashMap;

use async_trait::async_trait;
use logbook_core::merkle::{
    CompactRange, Hash, LOWEST_STORED_NODE_LEVEL, NodeId, perfect_subtree_across_prefix,
    root_from_leaf_hashes,
};
use logbook_core::store::{LogTree, StoredCheckpoint, TreeHead};
use logbook_core::{AccountId, StoreError};
use tokio_postgres::GenericClient;

use crate::errors::{database_error, pool_error};
use crate::{AccountReader, PostgresStore};

fn malformed(error: impl std::fmt::Display) -> StoreError {
    StoreError::Database {
        context: "reading an account tree",
        message: error.to_string(),
    }
}

fn compact_range_of(bytes: &[u8]) -> Result<CompactRange, StoreError> {
    CompactRange::from_bytes(bytes).map_err(malformed)
}

fn hash_of(bytes: &[u8]) -> Result<Hash, StoreError> {
    Hash::try_from(bytes).map_err(|_| malformed("a stored hash is not 32 bytes"))
}

/// The trees of the locked accounts as the last commit left them (empty for new accounts).
pub(crate) async fn load_trees(
    client: &impl GenericClient,
    account_rows: &[i64],
) -> Result<HashMap<i64, CompactRange>, StoreError> {
    let rows = client
        .query(
            "SELECT account_row, compact_range FROM tree_state WHERE account_row = ANY($1)",
            &[&account_rows],
        )
        .await
        .map_err(database_error("reading account trees"))?;
    let mut trees: HashMap<i64, CompactRange> = account_rows
        .iter()
        .map(|account_row| (*account_row, CompactRange::new()))
        .collect();
    for row in rows {
        let bytes: &[u8] = row.get(1);
        trees.insert(row.get(0), compact_range_of(bytes)?);
    }
    Ok(trees)
}

/// The nodes and states one group commit adds, written in two statements at its end. (The leaf
/// hashes themselves go into the event rows, with the events.)
#[derive(Default)]
pub(crate) struct TreeAppends {
    /// Every account appended to, once per leaf (sorted and deduplicated when written).
    grown_accounts: Vec<i64>,
    account_rows: Vec<i64>,
    levels: Vec<i16>,
    node_indexes: Vec<i64>,
    hashes: Vec<Vec<u8>>,
}

impl TreeAppends {
    /// Appends one leaf to `tree` and queues every node it completes at
    /// `LOWEST_STORED_NODE_LEVEL` or above. Returns the tree size after.
    pub(crate) fn append_leaf(
        &mut self,
        account_row: i64,
        tree: &mut CompactRange,
        leaf_hash: Hash,
    ) -> u64 {
        self.grown_accounts.push(account_row);
        tree.append(leaf_hash, |node| {
            if node.id.level < LOWEST_STORED_NODE_LEVEL {
                return;
            }
            self.account_rows.push(account_row);
            self.levels.push(i16::from(node.id.level));
            self.node_indexes.push(node.id.index as i64);
            self.hashes.push(node.hash.to_vec());
        });
        tree.size()
    }

    /// Inserts the queued nodes and the new state of every tree in `trees` that grew.
    pub(crate) async fn write(
        self,
        client: &impl GenericClient,
        trees: &HashMap<i64, CompactRange>,
    ) -> Result<(), StoreError> {
        if self.grown_accounts.is_empty() {
            return Ok(());
        }
        if !self.account_rows.is_empty() {
            client
                .execute(
                    "INSERT INTO tree_nodes (account_row, level, node_index, hash) \
                     SELECT * FROM unnest($1::bigint[], $2::smallint[], $3::bigint[], $4::bytea[])",
                    &[
                        &self.account_rows,
                        &self.levels,
                        &self.node_indexes,
                        &self.hashes,
                    ],
                )
                .await
                .map_err(database_error("storing tree nodes"))?;
        }
        let mut grown: Vec<i64> = self.grown_accounts;
        grown.sort_unstable();
        grown.dedup();
        let sizes: Vec<i64> = grown
            .iter()
            .map(|account_row| trees[account_row].size() as i64)
            .collect();
        let ranges: Vec<Vec<u8>> = grown
            .iter()
            .map(|account_row| trees[account_row].to_bytes())
            .collect();
        client
            .execute(
                "INSERT INTO tree_state (account_row, tree_size, compact_range) \
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[]) \
                 ON CONFLICT (account_row) DO UPDATE SET tree_size = excluded.tree_size, compact_range = excluded.compact_range",
                &[&grown, &sizes, &ranges],
            )
            .await
            .map_err(database_error("storing account trees"))?;
        Ok(())
    }
}

/// The advisory lock held while building missing trees ("lbtree" in ASCII), so two nodes
/// starting at once do not both build one.
const TREE_BUILD_LOCK_KEY: i64 = 0x6c62_7472_6565;

/// Builds the tree of every account that has events but no tree yet (events copied by
/// `migrate-store`, or a database from before migration 0003), from the stored bodies. It runs
/// when a node connects. An account that already has a tree is never extended here: an event
/// beyond its tree was not written by a writer and must stay outside it for `verify` to name it.
pub(crate) async fn build_missing_trees(
    client: &mut tokio_postgres::Client,
) -> Result<u64, StoreError> {
    let transaction = client
        .transaction()
        .await
        .map_err(database_error("starting to build account trees"))?;
    transaction
        .batch_execute(&format!(
            "SET LOCAL logbook.all_accounts = 'on'; SELECT pg_advisory_xact_lock({TREE_BUILD_LOCK_KEY})"
        ))
        .await
        .map_err(database_error("starting to build account trees"))?;
    let accounts: Vec<i64> = transaction
        .query(
            "SELECT a.account_row FROM accounts a WHERE a.next_seq > 0 \
             AND NOT EXISTS (SELECT 1 FROM tree_state s WHERE s.account_row = a.account_row)",
            &[],
        )
        .await
        .map_err(database_error("finding accounts without a tree"))?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut appended = 0;
    for account_row in accounts {
        let mut trees = HashMap::from([(account_row, CompactRange::new())]);
        let mut appends = TreeAppends::default();
        let mut leaf_seqs: Vec<i64> = Vec::new();
        let mut leaf_hashes: Vec<Vec<u8>> = Vec::new();
        let rows = transaction
            .query(
                "SELECT seq, body FROM events WHERE account_row = $1 ORDER BY seq",
                &[&account_row],
            )
            .await
            .map_err(database_error("reading events to build a tree"))?;
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
            let tree = trees.get_mut(&account_row).expect("inserted above");
            if event.seq != tree.size() {
                return Err(StoreError::Database {
                    context: "building an account tree",
                    message: format!(
                        "account row {account_row} has no event at seq {}",
                        tree.size()
                    ),
                });
            }
            let leaf_hash = event.leaf_hash().map_err(malformed)?;
            appends.append_leaf(account_row, tree, leaf_hash);
            leaf_seqs.push(event.seq as i64);
            leaf_hashes.push(leaf_hash.to_vec());
            appended += 1;
        }
        transaction
            .execute(
                "UPDATE events SET leaf_hash = l.leaf_hash FROM unnest($2::bigint[], $3::bytea[]) AS l (seq, leaf_hash) \
                 WHERE events.account_row = $1 AND events.seq = l.seq",
                &[&account_row, &leaf_seqs, &leaf_hashes],
            )
            .await
            .map_err(database_error("storing leaf hashes"))?;
        appends.write(&transaction, &trees).await?;
    }
    transaction
        .commit()
        .await
        .map_err(database_error("committing account trees"))?;
    Ok(appended)
}

fn tree_head_of(account: AccountId, compact_range: Option<&[u8]>) -> Result<TreeHead, StoreError> {
    let tree = match compact_range {
        None => CompactRange::new(),
        Some(bytes) => compact_range_of(bytes)?,
    };
    Ok(TreeHead {
        account,
        tree_size: tree.size(),
        root_hash: tree.root(),
    })
}

fn checkpoint_of(
    account: &AccountId,
    row: &tokio_postgres::Row,
) -> Result<StoredCheckpoint, StoreError> {
    Ok(StoredCheckpoint {
        account: account.clone(),
        tree_size: row.get::<_, i64>(0) as u64,
        root_hash: hash_of(row.get::<_, &[u8]>(1))?,
        signed_at: time::OffsetDateTime::from_unix_timestamp_nanos(
            i128::from(row.get::<_, i64>(2)) * 1_000,
        )
        .map_err(malformed)?,
        text: row.get(3),
    })
}

#[async_trait]
impl LogTree for PostgresStore {
    async fn tree_head(&self, account: &AccountId) -> Result<TreeHead, StoreError> {
        let Some(account_row) = self.inner.account_row(account).await? else {
            return tree_head_of(account.clone(), None);
        };
        let reader = AccountReader::begin(&self.inner.pool, account_row).await?;
        let row = reader
            .client()
            .query_opt(
                "SELECT compact_range FROM tree_state WHERE account_row = $1",
                &[&account_row],
            )
            .await
            .map_err(database_error("reading a tree head"))?;
        reader.finish().await?;
        tree_head_of(
            account.clone(),
            row.as_ref().map(|row| row.get::<_, &[u8]>(0)),
        )
    }

    async fn tree_nodes(
        &self,
        account: &AccountId,
        node_ids: &[NodeId],
    ) -> Result<HashMap<NodeId, Hash>, StoreError> {
        let mut nodes = HashMap::with_capacity(node_ids.len());
        let Some(account_row) = self.inner.account_row(account).await? else {
            return Ok(nodes);
        };
        let (stored_ids, recomputed_ids): (Vec<NodeId>, Vec<NodeId>) = node_ids
            .iter()
            .partition(|id| id.level >= LOWEST_STORED_NODE_LEVEL);
        let levels: Vec<i16> = stored_ids.iter().map(|id| i16::from(id.level)).collect();
        let indexes: Vec<i64> = stored_ids.iter().map(|id| id.index as i64).collect();
        // Every leaf of every node below the stored levels (at most 2^LOWEST_STORED_NODE_LEVEL
        // per node); a seq past i64 cannot exist, so such a node simply has no leaves.
        let leaf_seqs: Vec<i64> = recomputed_ids
            .iter()
            .flat_map(|id| {
                let leaf_count = 1_u64 << id.level;
                let start = id.index.saturating_mul(leaf_count);
                (start..start.saturating_add(leaf_count)).filter_map(|seq| i64::try_from(seq).ok())
            })
            .collect();
        let reader = AccountReader::begin(&self.inner.pool, account_row).await?;
        // Every node of a proof in two statements: a join of primary-key lookups for the stored
        // ones and one read of the leaf hashes the lower ones are recomputed from.
        let stored_parameters: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&account_row, &levels, &indexes];
        let leaf_parameters: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
            [&account_row, &leaf_seqs];
        let stored_rows = reader.client().query(
            "SELECT n.level, n.node_index, n.hash FROM unnest($2::smallint[], $3::bigint[]) AS wanted (level, node_index) \
             JOIN tree_nodes n ON n.account_row = $1 AND n.level = wanted.level AND n.node_index = wanted.node_index",
            &stored_parameters,
        );
        let leaf_rows = reader.client().query(
            "SELECT seq, leaf_hash FROM events WHERE account_row = $1 AND seq = ANY($2) AND leaf_hash IS NOT NULL",
            &leaf_parameters,
        );
        // Below a pruned prefix the events are gone; its compact range stands for them.
        let prefix_parameters: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&account_row];
        let prefix_rows = reader.client().query(
            "SELECT prefix_range FROM pruned_prefixes WHERE account_row = $1",
            &prefix_parameters,
        );
        let (stored_rows, leaf_rows, prefix_rows) =
            futures::try_join!(stored_rows, leaf_rows, prefix_rows)
                .map_err(database_error("reading tree nodes"))?;
        reader.finish().await?;
        for row in stored_rows {
            let id = NodeId::new(row.get::<_, i16>(0) as u8, row.get::<_, i64>(1) as u64);
            nodes.insert(id, hash_of(row.get::<_, &[u8]>(2))?);
        }
        let mut leaves: HashMap<u64, Hash> = HashMap::with_capacity(leaf_rows.len());
        for row in leaf_rows {
            leaves.insert(
                row.get::<_, i64>(0) as u64,
                hash_of(row.get::<_, &[u8]>(1))?,
            );
        }
        let prefix = prefix_rows
            .first()
            .map(|row| {
                CompactRange::from_bytes(row.get::<_, &[u8]>(0)).map_err(|error| {
                    StoreError::Database {
                        context: "reading a pruned prefix",
                        message: error.to_string(),
                    }
                })
            })
            .transpose()?;
        let pruned_below = prefix.as_ref().map_or(0, CompactRange::size);
        for id in recomputed_ids {
            let leaf_count = 1_u64 << id.level;
            let Some(start) = id.index.checked_mul(leaf_count) else {
                continue;
            };
            if let (true, Some(prefix)) = (start < pruned_below, &prefix) {
                let later: Option<Vec<Hash>> = (pruned_below..start.saturating_add(leaf_count))
                    .map(|seq| leaves.get(&seq).copied())
                    .collect();
                if let Some(later) = later
                    && let Ok(hash) = perfect_subtree_across_prefix(id, prefix, &later)
                {
                    nodes.insert(id, hash);
                }
                continue;
            }
            // A node exists only when every one of its leaves is in the tree (an event inserted
            // behind the writers' backs has no leaf hash).
            let node_leaves: Option<Vec<Hash>> = (start..start.saturating_add(leaf_count))
                .map(|seq| leaves.get(&seq).copied())
                .collect();
            if let Some(node_leaves) = node_leaves {
                nodes.insert(id, root_from_leaf_hashes(&node_leaves));
            }
        }
        // A stored node wholly inside the pruned prefix was deleted with it.
        if let Some(prefix) = &prefix {
            for id in &stored_ids {
                let end = (id.index + 1)
                    .checked_shl(u32::from(id.level))
                    .unwrap_or(u64::MAX);
                if end <= pruned_below
                    && let Ok(hash) = perfect_subtree_across_prefix(*id, prefix, &[])
                {
                    nodes.insert(*id, hash);
                }
            }
        }
        Ok(nodes)
    }

    async fn tree_heads_without_checkpoint(&self) -> Result<Vec<TreeHead>, StoreError> {
        let mut client = self
            .inner
            .pool
            .get()
            .await
            .map_err(pool_error("connecting to PostgreSQL"))?;
        let transaction = client
            .transaction()
            .await
            .map_err(database_error("finding trees without a checkpoint"))?;
        transaction
            .batch_execute("SET LOCAL logbook.all_accounts = 'on'")
            .await
            .map_err(database_error("finding trees without a checkpoint"))?;
        let rows = transaction
            .query(
                "SELECT a.name, s.compact_range FROM tree_state s JOIN accounts a ON a.account_row = s.account_row \
                 WHERE s.tree_size > coalesce((SELECT max(c.tree_size) FROM checkpoints c WHERE c.account_row = s.account_row), 0)",
                &[],
            )
            .await
            .map_err(database_error("finding trees without a checkpoint"))?;
        transaction
            .commit()
            .await
            .map_err(database_error("finding trees without a checkpoint"))?;
        rows.iter()
            .map(|row| {
                let account = AccountId::parse(row.get::<_, &str>(0)).map_err(malformed)?;
                tree_head_of(account, Some(row.get::<_, &[u8]>(1)))
            })
            .collect()
    }

    async fn store_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError> {
        let account_row = self
            .inner
            .account_row(&checkpoint.account)
            .await?
            .ok_or_else(|| StoreError::AccountNotFound(checkpoint.account.clone()))?;
        let mut client = self
            .inner
            .pool
            .get()
            .await
            .map_err(pool_error("connecting to PostgreSQL"))?;
        let transaction = client
            .transaction()
            .await
            .map_err(database_error("storing a checkpoint"))?;
        transaction
            .batch_execute(&format!("SET LOCAL logbook.account_row = '{account_row}'"))
            .await
            .map_err(database_error("storing a checkpoint"))?;
        transaction
            .execute(
                "INSERT INTO checkpoints (account_row, tree_size, root_hash, signed_at, note) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (account_row, tree_size) DO NOTHING",
                &[
                    &account_row,
                    &(checkpoint.tree_size as i64),
                    &checkpoint.root_hash.as_slice(),
                    &logbook_core::event::unix_micros(checkpoint.signed_at),
                    &checkpoint.text,
                ],
            )
            .await
            .map_err(database_error("storing a checkpoint"))?;
        transaction
            .commit()
            .await
            .map_err(database_error("storing a checkpoint"))
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
        let Some(account_row) = self.inner.account_row(account).await? else {
            return Ok(Vec::new());
        };
        let before = before_tree_size.map_or(i64::MAX, |size| size.min(i64::MAX as u64) as i64);
        let reader = AccountReader::begin(&self.inner.pool, account_row).await?;
        let rows = reader
            .client()
            .query(
                "SELECT tree_size, root_hash, signed_at, note FROM checkpoints \
                 WHERE account_row = $1 AND tree_size < $2 ORDER BY tree_size DESC LIMIT $3",
                &[&account_row, &before, &i64::from(limit)],
            )
            .await
            .map_err(database_error("reading checkpoints"))?;
        reader.finish().await?;
        rows.iter().map(|row| checkpoint_of(account, row)).collect()
    }
}
