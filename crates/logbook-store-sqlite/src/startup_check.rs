//! The start-up check of the database file: `PRAGMA quick_check` (every page and b-tree is
//! well-formed; indexes are not compared with their tables, which would read the whole file
//! twice). A store that fails it opens for reading only: every write is refused, `/readyz` is red,
//! and the message says what SQLite found, so an operator restores a backup or investigates
//! instead of Logbook writing on top of (or "repairing") damaged history. The same holds when the
//! stored tree no longer matches an account's newest signed checkpoint
//! (`newest_checkpoints_match`).

use logbook_core::checkpoint_check;
use logbook_core::merkle::{self, Hash, LOWEST_STORED_NODE_LEVEL, NodeSource};
use rusqlite::{Connection, params};

use crate::encoding::{SEQ_BITS, first_event_row_of};

/// At most this many of SQLite's problem lines go into the message; the rest are counted.
const MAX_REPORTED_PROBLEMS: usize = 5;

/// `Ok` when the file is intact, otherwise the message that refuses writes.
pub(crate) fn quick_check(
    connection: &Connection,
    database_path: &std::path::Path,
) -> Result<(), String> {
    let problems: Result<Vec<String>, rusqlite::Error> = connection
        .prepare("PRAGMA quick_check")
        .and_then(|mut statement| {
            statement
                .query_map([], |row| row.get::<_, String>(0))?
                .collect()
        });
    let problems = match problems {
        Ok(problems) => problems,
        Err(error) => vec![format!("the check itself failed: {error}")],
    };
    if problems.len() == 1 && problems[0] == "ok" {
        return Ok(());
    }
    let shown: Vec<&str> = problems
        .iter()
        .take(MAX_REPORTED_PROBLEMS)
        .map(String::as_str)
        .collect();
    let more = problems.len().saturating_sub(MAX_REPORTED_PROBLEMS);
    Err(format!(
        "the database {} failed PRAGMA quick_check at start-up ({} problem(s){}: {}); writes are refused until it is restored from a backup; reads still work",
        database_path.display(),
        problems.len(),
        if more > 0 {
            format!(", first {MAX_REPORTED_PROBLEMS} shown")
        } else {
            String::new()
        },
        shown.join("; ")
    ))
}

/// One account's newest checkpoint: account row, account name, tree size, signed root.
type NewestCheckpoint = (i64, String, i64, Vec<u8>);

/// The start-up check of each account's newest signed checkpoint (`logbook_core::checkpoint_check`):
/// recomputes the stored tree's root at the checkpoint's size from `tree_nodes` and the events'
/// leaf hashes, on the writer's connection before the writer starts. `Err` holds the message that
/// refuses writes (the first mismatching account).
pub(crate) fn newest_checkpoints_match(connection: &Connection) -> Result<(), String> {
    let newest: Result<Vec<NewestCheckpoint>, rusqlite::Error> = connection
        .prepare(
            // Driven by the accounts (CROSS JOIN keeps them the outer loop): two seeks in the
            // checkpoints' primary key per account, never a walk over every checkpoint signed.
            "SELECT a.account_row, a.name, c.tree_size, c.root_hash FROM accounts a \
             CROSS JOIN checkpoints c \
             WHERE c.account_row = a.account_row \
             AND c.tree_size = (SELECT max(m.tree_size) FROM checkpoints m WHERE m.account_row = a.account_row)",
        )
        .and_then(|mut statement| {
            statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))?
                .collect()
        });
    let newest = newest.map_err(|error| {
        format!(
            "start-up check: the newest checkpoints could not be read: {error}; writes are refused"
        )
    })?;
    for (account_row, name, tree_size, signed_root) in newest {
        let account = logbook_core::AccountId::parse(&name).map_err(|error| {
            format!("start-up check: stored account name {name:?} is invalid: {error}")
        })?;
        let tree_size = u64::try_from(tree_size).unwrap_or(0);
        let Ok(signed_root) = Hash::try_from(signed_root) else {
            return Err(format!(
                "start-up check: account {account}'s newest checkpoint (tree size {tree_size}) holds a root hash that is not 32 bytes; writes are refused"
            ));
        };
        let source = StoredNodes {
            connection,
            account_row,
        };
        let stored_root = merkle::root_at(&source, tree_size).ok();
        if stored_root.as_ref() != Some(&signed_root) {
            return Err(checkpoint_check::mismatch_message(
                &account,
                tree_size,
                &signed_root,
                stored_root.as_ref(),
            ));
        }
    }
    Ok(())
}

/// One account's perfect subtree hashes as proofs read them: stored at
/// `LOWEST_STORED_NODE_LEVEL` and above, recomputed from the events' leaf hashes below.
struct StoredNodes<'connection> {
    connection: &'connection Connection,
    account_row: i64,
}

impl NodeSource for StoredNodes<'_> {
    fn perfect_subtree_hash(&self, level: u8, index: u64) -> Option<Hash> {
        if level >= LOWEST_STORED_NODE_LEVEL {
            let bytes: Vec<u8> = self
                .connection
                .query_row(
                    "SELECT hash FROM tree_nodes WHERE account_row = ?1 AND level = ?2 AND node_index = ?3",
                    params![self.account_row, level, i64::try_from(index).ok()?],
                    |row| row.get(0),
                )
                .ok()?;
            return Hash::try_from(bytes).ok();
        }
        let leaf_count = 1_i64 << level;
        let start = i64::try_from(index)
            .ok()?
            .checked_mul(leaf_count)
            .filter(|start| *start < (1_i64 << SEQ_BITS))?;
        let first = first_event_row_of(self.account_row);
        let mut statement = self
            .connection
            .prepare_cached(
                "SELECT leaf_hash FROM events WHERE event_row >= ?1 AND event_row < ?2 ORDER BY event_row",
            )
            .ok()?;
        let leaves: Vec<Option<Vec<u8>>> = statement
            .query_map(params![first + start, first + start + leaf_count], |row| {
                row.get(0)
            })
            .ok()?
            .collect::<Result<_, _>>()
            .ok()?;
        // Every leaf must be there and hashed (an event inserted behind the writer's back has no
        // leaf hash), or the node does not exist.
        let leaves: Vec<Hash> = leaves
            .into_iter()
            .map(|bytes| bytes.and_then(|bytes| Hash::try_from(bytes).ok()))
            .collect::<Option<_>>()?;
        (leaves.len() as i64 == leaf_count).then(|| merkle::root_from_leaf_hashes(&leaves))
    }
}
