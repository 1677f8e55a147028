//! PostgreSQL's side of the SQL both stores run unchanged (`logbook_store_sql::executor`): an
//! executor over one pooled connection (statements prepared once per connection), and where
//! shared work runs: reads on a pooled connection, writes on one inside a transaction. Tables of
//! shared work (people, alerting, attention, limits, known networks, actor history) carry no
//! row-level security; every statement filters by account. Shared reads of `events` run in an
//! `AccountReader` (`read_account`), where the policies apply as to every other read of events.

use deadpool_postgres::{ClientWrapper as Client, Object, Pool};
use futures::future::BoxFuture;
use logbook_core::StoreError;
use logbook_store_sql::executor::{Backend, SqlDatabase, SqlExecutor, Work};
use logbook_store_sql::{SqlRow, SqlValue};
use tokio_postgres::types::{ToSql, Type};

use crate::AccountReader;
use crate::encoding::bound;
use crate::errors::{database_error, pool_error};

pub(crate) struct PostgresExecutor<'connection> {
    client: &'connection Client,
}

impl PostgresExecutor<'_> {
    async fn run_query(
        &self,
        context: &'static str,
        sql: &str,
        parameters: &[SqlValue],
    ) -> Result<Vec<SqlRow>, StoreError> {
        let statement = self
            .client
            .prepare_cached(sql)
            .await
            .map_err(database_error(context))?;
        let bound = bound(parameters);
        let references: Vec<&(dyn ToSql + Sync)> = bound
            .iter()
            .map(|value| value as &(dyn ToSql + Sync))
            .collect();
        let rows = self
            .client
            .query(&statement, &references)
            .await
            .map_err(database_error(context))?;
        rows.iter()
            .map(|row| {
                let columns = (0..row.len())
                    .map(|index| column_value(context, row, index))
                    .collect::<Result<_, _>>()?;
                Ok(SqlRow { columns })
            })
            .collect()
    }

    async fn run_execute(
        &self,
        context: &'static str,
        sql: &str,
        parameters: &[SqlValue],
    ) -> Result<u64, StoreError> {
        let statement = self
            .client
            .prepare_cached(sql)
            .await
            .map_err(database_error(context))?;
        let bound = bound(parameters);
        let references: Vec<&(dyn ToSql + Sync)> = bound
            .iter()
            .map(|value| value as &(dyn ToSql + Sync))
            .collect();
        self.client
            .execute(&statement, &references)
            .await
            .map_err(database_error(context))
    }
}

/// One column as a shared value, by the type PostgreSQL gave it.
fn column_value(
    context: &'static str,
    row: &tokio_postgres::Row,
    index: usize,
) -> Result<SqlValue, StoreError> {
    let read_error = database_error(context);
    let column_type = row.columns()[index].type_().clone();
    let value = match column_type {
        Type::INT2 => row
            .try_get::<_, Option<i16>>(index)
            .map(|value| value.map(|value| SqlValue::Integer(i64::from(value)))),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(index)
            .map(|value| value.map(|value| SqlValue::Integer(i64::from(value)))),
        Type::INT8 => row
            .try_get::<_, Option<i64>>(index)
            .map(|value| value.map(SqlValue::Integer)),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(index)
            .map(|value| value.map(SqlValue::Bool)),
        Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => row
            .try_get::<_, Option<String>>(index)
            .map(|value| value.map(SqlValue::Text)),
        Type::BYTEA => row
            .try_get::<_, Option<Vec<u8>>>(index)
            .map(|value| value.map(SqlValue::Bytes)),
        other => {
            return Err(StoreError::Database {
                context,
                message: format!("column {index} has the unsupported type {other}"),
            });
        }
    };
    Ok(value.map_err(read_error)?.unwrap_or(SqlValue::Null))
}

impl SqlExecutor for PostgresExecutor<'_> {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn query<'a>(
        &'a self,
        context: &'static str,
        sql: &'a str,
        parameters: &'a [SqlValue],
    ) -> BoxFuture<'a, Result<Vec<SqlRow>, StoreError>> {
        Box::pin(self.run_query(context, sql, parameters))
    }

    fn execute<'a>(
        &'a self,
        context: &'static str,
        sql: &'a str,
        parameters: &'a [SqlValue],
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(self.run_execute(context, sql, parameters))
    }
}

/// Where the PostgreSQL store runs shared work: the pool of reading connections.
#[derive(Clone)]
pub(crate) struct PostgresDatabase {
    pub(crate) pool: Pool,
}

impl SqlDatabase for PostgresDatabase {
    fn read<T: Send + 'static>(&self, work: Work<T>) -> BoxFuture<'_, Result<T, StoreError>> {
        Box::pin(async move {
            let client = self
                .pool
                .get()
                .await
                .map_err(pool_error("connecting to PostgreSQL"))?;
            work(&PostgresExecutor { client: &client }).await
        })
    }

    /// In an `AccountReader`: a read-only transaction that `SET LOCAL`s the account, so the
    /// policies of `events` admit its rows (and only its rows) to a role that is not a superuser.
    fn read_account<T: Send + 'static>(
        &self,
        account_row: i64,
        work: Work<T>,
    ) -> BoxFuture<'_, Result<T, StoreError>> {
        Box::pin(async move {
            let reader = AccountReader::begin(&self.pool, account_row).await?;
            // A failed read drops the reader, which throws its connection away mid-transaction.
            let result = work(&PostgresExecutor {
                client: reader.client(),
            })
            .await?;
            reader.finish().await?;
            Ok(result)
        })
    }

    fn write<T: Send + 'static>(&self, work: Work<T>) -> BoxFuture<'_, Result<T, StoreError>> {
        Box::pin(async move {
            let client = self
                .pool
                .get()
                .await
                .map_err(pool_error("connecting to PostgreSQL"))?;
            client
                .batch_execute("BEGIN")
                .await
                .map_err(database_error("starting a write"))?;
            let result = work(&PostgresExecutor { client: &client }).await;
            let finished = match &result {
                Ok(_) => client
                    .batch_execute("COMMIT")
                    .await
                    .map_err(database_error("committing a write")),
                Err(_) => client
                    .batch_execute("ROLLBACK")
                    .await
                    .map_err(database_error("rolling back a write")),
            };
            if let Err(error) = finished {
                // A connection whose transaction did not end cleanly never goes back to the pool.
                drop(Object::take(client));
                return Err(error);
            }
            result
        })
    }
}
