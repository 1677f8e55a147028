//! Each distinct location stored once (`locations`, migration 0020): the writer gives a located
//! event the row of its location instead of the object and the place columns, about 300 bytes
//! fewer per event, since every event from one network carries the same location.
//!
//! The rows the writer has used are remembered two ways. The IP databases hand out one shared
//! `LocationColumns` per address (`IpLocator::located_columns`), so an event from a known address
//! is answered by the answer's address in memory, without reading the object: the object was made
//! on another thread, and reading its 300 bytes cost the writer about 1 µs per event in cache
//! misses (the `location_row` phase, BENCHMARKS.md). A new address of a known location is answered
//! by its object. An object seen for the first time is looked up in (or added to) the table inside
//! the group's transaction, and remembered only once that transaction commits, so a failed commit
//! never leaves a row in memory that is not in the database.
//!
//! Since migration 0021 a located event's full-text document holds one place token, its
//! location's row, and a place query reads which of those locations an account uses from
//! `account_locations`. The writer adds an (account, location) pair there with its first event,
//! and remembers the pairs the same way: added in the group, known once it commits.

use std::collections::HashMap;
use std::sync::Arc;

use logbook_core::location::LocationColumns;
use rusqlite::{OptionalExtension, Transaction, params};

/// How many answers, and objects, the writer remembers before starting over; forgetting only
/// costs one indexed lookup per object.
const LOCATIONS_REMEMBERED: usize = 65_536;

/// How many (account, location) pairs the writer remembers before starting over; forgetting only
/// costs one `INSERT OR IGNORE` per pair met again.
const ACCOUNT_LOCATIONS_REMEMBERED: usize = 262_144;

/// An answer's address in memory. The map keyed by it holds the answer itself beside its row, so
/// the address cannot be reused by another answer while it is a key.
type AnswerAddress = usize;

pub(crate) struct InternedLocations {
    by_answer: HashMap<AnswerAddress, (Arc<LocationColumns>, i64)>,
    by_object: HashMap<String, i64>,
    /// Objects whose rows the group being written found or added, not yet committed.
    pending: HashMap<String, i64>,
    /// (account, location) pairs known to be in `account_locations`.
    account_locations: hashbrown::HashSet<(i64, i64)>,
    /// Pairs the group being written added, not yet committed.
    pending_account_locations: hashbrown::HashSet<(i64, i64)>,
}

impl InternedLocations {
    pub(crate) fn new() -> Self {
        Self {
            by_answer: HashMap::new(),
            by_object: HashMap::new(),
            pending: HashMap::new(),
            account_locations: hashbrown::HashSet::new(),
            pending_account_locations: hashbrown::HashSet::new(),
        }
    }

    /// Starts a group: rows first used by a group whose commit failed are forgotten.
    pub(crate) fn begin_group(&mut self) {
        self.pending.clear();
        self.pending_account_locations.clear();
    }

    /// The group committed: its rows are known from now on.
    pub(crate) fn committed(&mut self) {
        if self.by_answer.len() > LOCATIONS_REMEMBERED {
            self.by_answer.clear();
        }
        if self.by_object.len() + self.pending.len() > LOCATIONS_REMEMBERED {
            self.by_object.clear();
        }
        self.by_object.extend(self.pending.drain());
        if self.account_locations.len() + self.pending_account_locations.len()
            > ACCOUNT_LOCATIONS_REMEMBERED
        {
            self.account_locations.clear();
        }
        self.account_locations
            .extend(self.pending_account_locations.drain());
    }

    /// Records in `account_locations` that an event of `account_row` is located at
    /// `location_row`, the first time the pair is met.
    pub(crate) fn record_account_location(
        &mut self,
        transaction: &Transaction<'_>,
        account_row: i64,
        location_row: i64,
    ) -> rusqlite::Result<()> {
        let pair = (account_row, location_row);
        if self.account_locations.contains(&pair) {
            return Ok(());
        }
        if !self.pending_account_locations.insert(pair) {
            return Ok(());
        }
        // A single-row insert that ignores a conflict needs no statement savepoint, so it does not
        // make FTS5 write the group's terms early (see `uncommitted_row_of`).
        transaction
            .prepare_cached(
                "INSERT OR IGNORE INTO account_locations (account_row, location_row) VALUES (?1, ?2)",
            )?
            .execute(params![account_row, location_row])?;
        Ok(())
    }

    /// The row of `location`, adding it to `locations` the first time.
    pub(crate) fn row_of(
        &mut self,
        transaction: &Transaction<'_>,
        location: &Arc<LocationColumns>,
    ) -> rusqlite::Result<i64> {
        let address = Arc::as_ptr(location) as AnswerAddress;
        if let Some((_, row)) = self.by_answer.get(&address) {
            return Ok(*row);
        }
        let json = location.json.as_str();
        let Some(row) = self.by_object.get(json).copied() else {
            return self.uncommitted_row_of(transaction, location);
        };
        // Only an answer someone else holds too (the IP databases' memory of answers) comes
        // again; one made for this event alone would only fill the map.
        if Arc::strong_count(location) > 1 {
            self.by_answer.insert(address, (location.clone(), row));
        }
        Ok(row)
    }

    /// The row of an object not known as committed: found or added in this group's transaction.
    fn uncommitted_row_of(
        &mut self,
        transaction: &Transaction<'_>,
        location: &LocationColumns,
    ) -> rusqlite::Result<i64> {
        let json = location.json.as_str();
        if let Some(row) = self.pending.get(json) {
            return Ok(*row);
        }
        let stored: Option<i64> = transaction
            .prepare_cached("SELECT location_row FROM locations WHERE json = ?1")?
            .query_row([json], |row| row.get(0))
            .optional()?;
        let row = match stored {
            Some(row) => row,
            // A plain insert and `last_insert_rowid`, not `INSERT ... RETURNING`: SQLite runs
            // a RETURNING clause as a trigger, a statement with a trigger runs in a statement
            // savepoint, and a savepoint makes FTS5 write the terms it holds in memory as a new
            // segment. Each new location in the middle of a group then cost about 65 µs instead
            // of 12 (BENCHMARKS.md, issue 19's item 7).
            None => {
                transaction
                    .prepare_cached(
                        "INSERT INTO locations (json, country_code, asn, city) VALUES (?1, ?2, ?3, ?4)",
                    )?
                    .execute(params![
                        json,
                        location.country_code,
                        location.asn,
                        location.city
                    ])?;
                transaction.last_insert_rowid()
            }
        };
        self.pending.insert(json.to_owned(), row);
        Ok(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn location(city: &str) -> Arc<LocationColumns> {
        Arc::new(LocationColumns {
            country_code: Some("IN".into()),
            asn: Some(9829),
            city: Some(city.into()),
            json: format!(r#"{{"country_code":"IN","city":"{city}"}}"#),
        })
    }

    fn connection() -> Connection {
        let connection = Connection::open_in_memory().unwrap();
        connection
            .execute_batch(
                "CREATE TABLE locations (location_row INTEGER PRIMARY KEY, json TEXT NOT NULL UNIQUE, \
                 country_code TEXT, asn INTEGER, city TEXT); \
                 CREATE TABLE account_locations (account_row INTEGER NOT NULL, \
                 location_row INTEGER NOT NULL, PRIMARY KEY (account_row, location_row)) WITHOUT ROWID;",
            )
            .unwrap();
        connection
    }

    #[test]
    fn a_location_is_stored_once_whichever_answer_carries_it() {
        let mut connection = connection();
        let mut interned = InternedLocations::new();
        let mumbai = location("Mumbai");
        // The IP databases' memory of answers holds a second reference.
        let remembered = mumbai.clone();
        let transaction = connection.transaction().unwrap();
        interned.begin_group();
        let first = interned.row_of(&transaction, &mumbai).unwrap();
        assert_eq!(
            interned.row_of(&transaction, &location("Mumbai")).unwrap(),
            first
        );
        let pune = interned.row_of(&transaction, &location("Pune")).unwrap();
        assert_ne!(pune, first);
        transaction.commit().unwrap();
        interned.committed();
        let transaction = connection.transaction().unwrap();
        interned.begin_group();
        assert_eq!(interned.row_of(&transaction, &remembered).unwrap(), first);
        assert_eq!(
            interned.row_of(&transaction, &location("Mumbai")).unwrap(),
            first
        );
        let stored: i64 = transaction
            .query_row("SELECT count(*) FROM locations", [], |row| row.get(0))
            .unwrap();
        assert_eq!(stored, 2);
    }

    #[test]
    fn each_account_location_pair_is_recorded_once_and_again_after_a_failed_commit() {
        let mut connection = connection();
        let mut interned = InternedLocations::new();
        let pairs = |connection: &Connection| -> Vec<(i64, i64)> {
            connection
                .prepare("SELECT account_row, location_row FROM account_locations ORDER BY 1, 2")
                .unwrap()
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        {
            let transaction = connection.transaction().unwrap();
            interned.begin_group();
            interned
                .record_account_location(&transaction, 1, 7)
                .unwrap();
            // Dropped without a commit: rolled back, and `committed` is never called.
        }
        assert_eq!(pairs(&connection), Vec::<(i64, i64)>::new());
        let transaction = connection.transaction().unwrap();
        interned.begin_group();
        for (account_row, location_row) in [(1, 7), (1, 7), (2, 7), (1, 8)] {
            interned
                .record_account_location(&transaction, account_row, location_row)
                .unwrap();
        }
        transaction.commit().unwrap();
        interned.committed();
        let transaction = connection.transaction().unwrap();
        interned.begin_group();
        interned
            .record_account_location(&transaction, 2, 7)
            .unwrap();
        transaction.commit().unwrap();
        interned.committed();
        assert_eq!(pairs(&connection), vec![(1, 7), (1, 8), (2, 7)]);
    }

    #[test]
    fn a_row_added_by_a_group_whose_commit_failed_is_added_again() {
        let mut connection = connection();
        let mut interned = InternedLocations::new();
        let mumbai = location("Mumbai");
        {
            let transaction = connection.transaction().unwrap();
            interned.begin_group();
            interned.row_of(&transaction, &mumbai).unwrap();
            // Dropped without a commit: rolled back, and `committed` is never called.
        }
        let transaction = connection.transaction().unwrap();
        interned.begin_group();
        let row = interned.row_of(&transaction, &mumbai).unwrap();
        let json: String = transaction
            .query_row(
                "SELECT json FROM locations WHERE location_row = ?1",
                [row],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(json, mumbai.json);
    }
}
