//! The start-up check of the database file: `PRAGMA quick_check` (every page and b-tree is
//! well-formed; indexes are not compared with their tables, which would read the whole file
//! twice). A store that fails it opens for reading only: every write is refused, `/readyz` is red,
//! and the message says what SQLite found, so an operator restores a backup or investigates
//! instead of Logbook writing on top of (or "repairing") damaged history.

use rusqlite::Connection;

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
