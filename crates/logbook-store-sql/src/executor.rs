//! The seam through which the SQL both stores run unchanged reaches a driver.
//!
//! Shared code is written once as `async` functions over `&dyn SqlExecutor`, with PostgreSQL's
//! `$1, $2, ...` placeholders (SQLite's executor reads them as its numbered `?1, ?2, ...`). A store
//! implements `SqlDatabase`, which says on which connection a piece of work runs and wraps writes
//! in a transaction: on PostgreSQL a pooled connection; on SQLite a read-only reader or the
//! connection for small writes, where the work's futures complete at once (SQLite is synchronous)
//! and are driven on a blocking thread.

use futures::future::BoxFuture;
use logbook_core::StoreError;

use crate::value::{SqlRow, SqlValue};

/// Which database a piece of shared SQL runs on, for the few clauses only one of them has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// ` FOR UPDATE SKIP LOCKED` on PostgreSQL, where several nodes claim rows at once; nothing on
    /// SQLite, whose write transactions are serialized whole (`BEGIN IMMEDIATE`).
    pub fn skip_locked(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }

    /// ` FOR UPDATE` on PostgreSQL, where a row lock serializes writers of several nodes; nothing
    /// on SQLite, which has no row locks and serializes write transactions whole.
    pub fn for_update(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }
}

/// One connection, as shared SQL sees it. `context` says what the store was doing, for errors.
pub trait SqlExecutor: Send + Sync {
    fn backend(&self) -> Backend;

    /// Runs `sql` and returns every row.
    fn query<'a>(
        &'a self,
        context: &'static str,
        sql: &'a str,
        parameters: &'a [SqlValue],
    ) -> BoxFuture<'a, Result<Vec<SqlRow>, StoreError>>;

    /// Runs `sql` and returns how many rows it changed.
    fn execute<'a>(
        &'a self,
        context: &'static str,
        sql: &'a str,
        parameters: &'a [SqlValue],
    ) -> BoxFuture<'a, Result<u64, StoreError>>;
}

impl dyn SqlExecutor + '_ {
    /// The first row `sql` returns, if any.
    pub async fn query_optional(
        &self,
        context: &'static str,
        sql: &str,
        parameters: &[SqlValue],
    ) -> Result<Option<SqlRow>, StoreError> {
        Ok(self
            .query(context, sql, parameters)
            .await?
            .into_iter()
            .next())
    }

    /// The one row `sql` returns; none is a database error.
    pub async fn query_one(
        &self,
        context: &'static str,
        sql: &str,
        parameters: &[SqlValue],
    ) -> Result<SqlRow, StoreError> {
        self.query_optional(context, sql, parameters)
            .await?
            .ok_or_else(|| StoreError::Database {
                context,
                message: "the statement returned no row".into(),
            })
    }
}

/// A piece of shared work on one connection.
pub type Work<T> = Box<
    dyn for<'connection> FnOnce(
            &'connection dyn SqlExecutor,
        ) -> BoxFuture<'connection, Result<T, StoreError>>
        + Send,
>;

/// Where shared work runs. Reads run outside any transaction; writes run in one transaction that
/// commits when the work returns `Ok` and rolls back otherwise.
pub trait SqlDatabase: Send + Sync + 'static {
    fn read<T: Send + 'static>(&self, work: Work<T>) -> BoxFuture<'_, Result<T, StoreError>>;
    /// A read of one account's events (or other rows kept per account under row-level
    /// security): PostgreSQL runs it in a read-only transaction bound to `account_row`, so its
    /// policies admit that account's rows only, even for a role they apply to; SQLite as `read`.
    fn read_account<T: Send + 'static>(
        &self,
        account_row: i64,
        work: Work<T>,
    ) -> BoxFuture<'_, Result<T, StoreError>>;
    fn write<T: Send + 'static>(&self, work: Work<T>) -> BoxFuture<'_, Result<T, StoreError>>;
}

/// `$1`, `$2`, ... outside quoted text rewritten as SQLite's numbered `?1`, `?2`, ..., so one SQL
/// text serves both stores (SQLite would read `$1` as a named parameter, numbered by where it
/// first appears rather than by its digits).
pub fn numbered_question_marks(sql: &str) -> String {
    let mut rewritten = String::with_capacity(sql.len());
    let mut in_quotes = false;
    let mut characters = sql.chars().peekable();
    while let Some(character) = characters.next() {
        if character == '\'' {
            in_quotes = !in_quotes;
        }
        if character == '$' && !in_quotes && characters.peek().is_some_and(char::is_ascii_digit) {
            rewritten.push('?');
        } else {
            rewritten.push(character);
        }
    }
    rewritten
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollar_placeholders_become_numbered_question_marks_outside_quotes() {
        assert_eq!(
            numbered_question_marks("SELECT a FROM t WHERE b = $2 AND c = '$1' AND d = $10"),
            "SELECT a FROM t WHERE b = ?2 AND c = '$1' AND d = ?10"
        );
        assert_eq!(numbered_question_marks("SELECT '$'"), "SELECT '$'");
    }
}
