//! Each distinct location stored once (`locations`, migration 0020): the writer gives a located
//! event the row of its location instead of the object and the place columns, about 300 bytes
//! fewer per event, since every event from one network carries the same location.
//!
//! The rows the writer has used are remembered, so a located event costs one hash lookup; an
//! object seen for the first time is looked up in (or added to) the table inside the group's
//! transaction, and remembered only once that transaction commits, so a failed commit never leaves
//! a row in memory that is not in the database.

use std::collections::HashMap;

use logbook_core::location::LocationColumns;
use rusqlite::{OptionalExtension, Transaction, params};

/// How many objects the writer remembers before starting over; a real IP database gives a
/// deployment far fewer distinct objects than this (a city and network each), and forgetting
/// only costs one indexed lookup per object.
const LOCATIONS_REMEMBERED: usize = 65_536;

pub(crate) struct InternedLocations {
    committed: HashMap<String, i64>,
    /// Rows first used by the group being written, not yet committed.
    pending: HashMap<String, i64>,
}

impl InternedLocations {
    pub(crate) fn new() -> Self {
        Self {
            committed: HashMap::new(),
            pending: HashMap::new(),
        }
    }

    /// Starts a group: rows first used by a group whose commit failed are forgotten.
    pub(crate) fn begin_group(&mut self) {
        self.pending.clear();
    }

    /// The group committed: its rows are known from now on.
    pub(crate) fn committed(&mut self) {
        if self.committed.len() + self.pending.len() > LOCATIONS_REMEMBERED {
            self.committed.clear();
        }
        self.committed.extend(self.pending.drain());
    }

    /// The row of `location`, adding it to `locations` the first time.
    pub(crate) fn row_of(
        &mut self,
        transaction: &Transaction<'_>,
        location: &LocationColumns,
    ) -> rusqlite::Result<i64> {
        let json = location.json.as_str();
        if let Some(row) = self.committed.get(json).or_else(|| self.pending.get(json)) {
            return Ok(*row);
        }
        let stored: Option<i64> = transaction
            .prepare_cached("SELECT location_row FROM locations WHERE json = ?1")?
            .query_row([json], |row| row.get(0))
            .optional()?;
        let row = match stored {
            Some(row) => row,
            None => transaction
                .prepare_cached(
                    "INSERT INTO locations (json, country_code, asn, city) VALUES (?1, ?2, ?3, ?4) \
                     RETURNING location_row",
                )?
                .query_row(
                    params![json, location.country_code, location.asn, location.city],
                    |row| row.get(0),
                )?,
        };
        self.pending.insert(json.to_owned(), row);
        Ok(row)
    }
}
