//! The time budget of a query: SQLite's progress handler interrupts a statement that runs past
//! it, so a pathological query frees its reader connection instead of running on after the
//! server has already answered `query_timeout`.

use std::time::{Duration, Instant};

use logbook_core::StoreError;
use rusqlite::Connection;

/// SQLite virtual-machine instructions between two looks at the clock: a few microseconds of
/// work, so the check costs nothing measurable and an interrupt comes promptly.
const INSTRUCTIONS_BETWEEN_CHECKS: i32 = 1000;

/// Runs `work` on `connection`, interrupting it once `budget` has passed (no budget: no limit).
pub(crate) fn within_budget<T>(
    connection: &Connection,
    budget: Option<Duration>,
    work: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let Some(budget) = budget else {
        return work(connection);
    };
    let deadline = Instant::now() + budget;
    connection.progress_handler(
        INSTRUCTIONS_BETWEEN_CHECKS,
        Some(move || Instant::now() >= deadline),
    );
    let result = work(connection);
    connection.progress_handler(INSTRUCTIONS_BETWEEN_CHECKS, None::<fn() -> bool>);
    match result {
        Err(_interrupted) if Instant::now() >= deadline => Err(StoreError::Unavailable(format!(
            "the query ran past its time budget of {} ms and was stopped",
            budget.as_millis()
        ))),
        other => other,
    }
}
