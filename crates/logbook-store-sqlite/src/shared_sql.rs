//! SQLite's side of the SQL both stores run unchanged (`logbook_store_sql::executor`): an executor
//! over one connection, and where shared work runs. Reads take a read-only connection from the
//! pool; writes take the connection for small writes (accounts, keys, people, alerting), the one
//! that never queues behind a group commit, inside `BEGIN IMMEDIATE`, so a claim or a
//! compare-and-set is atomic without other locking. SQLite answers synchronously, so the work's
//! futures complete as soon as they are polled; they are driven on a blocking thread.

use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use logbook_core::StoreError;
use logbook_store_sql::executor::{
    Backend, SqlDatabase, SqlExecutor, Work, numbered_question_marks,
};
use logbook_store_sql::{SqlRow, SqlValue};
use rusqlite::Connection;
use rusqlite::types::ValueRef;

use crate::StoreInner;
use crate::encoding::bound;
use crate::errors::database_error;

/// One connection, owned for the duration of a piece of work (a `Mutex` makes it shareable
/// across the work's awaits; it is never contended).
pub(crate) struct SqliteExecutor {
    connection: Mutex<Connection>,
}

impl SqliteExecutor {
    pub(crate) fn new(connection: Connection) -> Self {
        Self {
            connection: Mutex::new(connection),
        }
    }

    pub(crate) fn into_connection(self) -> Connection {
        self.connection
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn run_query(
        &self,
        context: &'static str,
        sql: &str,
        parameters: &[SqlValue],
    ) -> Result<Vec<SqlRow>, StoreError> {
        let connection = self.connection.lock().expect("executor lock poisoned");
        let mut statement = connection
            .prepare_cached(&numbered_question_marks(sql))
            .map_err(database_error(context))?;
        let column_count = statement.column_count();
        let mut rows = statement
            .query(rusqlite::params_from_iter(bound(parameters)))
            .map_err(database_error(context))?;
        let mut result = Vec::new();
        while let Some(row) = rows.next().map_err(database_error(context))? {
            let mut columns = Vec::with_capacity(column_count);
            for index in 0..column_count {
                columns.push(match row.get_ref(index).map_err(database_error(context))? {
                    ValueRef::Null => SqlValue::Null,
                    ValueRef::Integer(value) => SqlValue::Integer(value),
                    ValueRef::Text(text) => SqlValue::Text(
                        std::str::from_utf8(text)
                            .map_err(|error| StoreError::Database {
                                context,
                                message: format!("column {index} is not UTF-8: {error}"),
                            })?
                            .to_owned(),
                    ),
                    ValueRef::Blob(bytes) => SqlValue::Bytes(bytes.to_vec()),
                    ValueRef::Real(value) => {
                        return Err(StoreError::Database {
                            context,
                            message: format!("column {index} holds the real {value}"),
                        });
                    }
                });
            }
            result.push(SqlRow { columns });
        }
        Ok(result)
    }

    fn run_execute(
        &self,
        context: &'static str,
        sql: &str,
        parameters: &[SqlValue],
    ) -> Result<u64, StoreError> {
        let connection = self.connection.lock().expect("executor lock poisoned");
        let changed = connection
            .prepare_cached(&numbered_question_marks(sql))
            .map_err(database_error(context))?
            .execute(rusqlite::params_from_iter(bound(parameters)))
            .map_err(database_error(context))?;
        Ok(changed as u64)
    }

    fn run_batch(&self, context: &'static str, sql: &str) -> Result<(), StoreError> {
        self.connection
            .lock()
            .expect("executor lock poisoned")
            .execute_batch(sql)
            .map_err(database_error(context))
    }
}

impl SqlExecutor for SqliteExecutor {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn query<'a>(
        &'a self,
        context: &'static str,
        sql: &'a str,
        parameters: &'a [SqlValue],
    ) -> BoxFuture<'a, Result<Vec<SqlRow>, StoreError>> {
        Box::pin(futures::future::ready(
            self.run_query(context, sql, parameters),
        ))
    }

    fn execute<'a>(
        &'a self,
        context: &'static str,
        sql: &'a str,
        parameters: &'a [SqlValue],
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(futures::future::ready(
            self.run_execute(context, sql, parameters),
        ))
    }
}

/// Where the SQLite store runs shared work.
#[derive(Clone)]
pub(crate) struct SqliteDatabase {
    pub(crate) inner: Arc<StoreInner>,
}

impl SqlDatabase for SqliteDatabase {
    fn read<T: Send + 'static>(&self, work: Work<T>) -> BoxFuture<'_, Result<T, StoreError>> {
        Box::pin(self.inner.read_owned(move |connection| {
            let executor = SqliteExecutor::new(connection);
            let result = futures::executor::block_on(work(&executor));
            (executor.into_connection(), result)
        }))
    }

    /// SQLite has no row-level security: every statement of shared work filters by account.
    fn read_account<T: Send + 'static>(
        &self,
        _account_row: i64,
        work: Work<T>,
    ) -> BoxFuture<'_, Result<T, StoreError>> {
        self.read(work)
    }

    fn write<T: Send + 'static>(&self, work: Work<T>) -> BoxFuture<'_, Result<T, StoreError>> {
        Box::pin(self.inner.administer_owned(move |connection| {
            let executor = SqliteExecutor::new(connection);
            let result = executor
                .run_batch("starting a write", "BEGIN IMMEDIATE")
                .and_then(|()| futures::executor::block_on(work(&executor)));
            let result = match result {
                Ok(value) => executor
                    .run_batch("committing a write", "COMMIT")
                    .map(|()| value),
                Err(error) => {
                    // Nothing of a failed piece of work stays; a rollback that fails leaves the
                    // transaction to SQLite, which rolls it back when the next one begins.
                    let _ = executor.run_batch("rolling back a write", "ROLLBACK");
                    Err(error)
                }
            };
            (executor.into_connection(), result)
        }))
    }
}
