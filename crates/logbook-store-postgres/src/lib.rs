//! Logbook's multi-node store on PostgreSQL: any number of stateless `logbook serve` nodes share
//! one database. It owns the schema and its migrations (`migrations/`, applied under an advisory
//! lock), one writer task per process with group commit and binary COPY (`writer`), query
//! compilation to SQL (`query_sql`), full text over Logbook's own tokens (`encoding`), and
//! row-level security as a second isolation layer: every read of events runs in a read-only
//! transaction that `SET LOCAL`s the account it reads for.
//!
//! # Several nodes
//!
//! - Any number of stateless `logbook serve` nodes share one PostgreSQL database. Each node has its
//!   own writer task doing the same group commit as SQLite; across nodes, the writer locks the
//!   touched account rows (`FOR UPDATE`, in account order) before reading `next_seq` and checking
//!   idempotency keys, so `seq` stays dense and a key is stored once even when two nodes ingest for
//!   one account at the same moment. Events go in with binary COPY (through staging tables when the
//!   role is subject to row-level security, which refuses COPY).
//! - Row-level security is a second isolation layer: every read runs in a read-only transaction
//!   that sets `logbook.account_row`, as a `logbook_rls` role the policies apply to, so a query that
//!   forgot the account filter returns nothing of another account.
//! - Plans are pinned (`plan_cache_mode = force_custom_plan`, no sequential scans for reads); text
//!   search uses a `tsvector` built from `text_tokens`, rare terms through GIN, common ones by walking
//!   the newest-first index.
//! - What nodes share is in the database: sessions (a logout on one node ends the session on every
//!   node), keys (each node caches an active key for at most 1 s, so a revocation takes effect within
//!   that time), checkpoints; live tails poll the database. The checkpoint signing key is a file every
//!   node must be given (`[checkpoints] signing_key_file`).

mod actor_history;
mod encoding;
mod errors;
mod import;
mod migrations;
mod query_budget;
mod query_sql;
mod retention;
pub mod scratch_database;
mod shared_sql;
mod startup_check;

/// A message's `tsvector` in binary form, exactly as the writer stores it (for baselines that
/// load the same rows by other means).
pub use encoding::MessageTokens;
mod tree;
mod volume_quota;
mod writer;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use deadpool_postgres::{Hook, HookError, Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use futures::stream::BoxStream;
use logbook_core::api_key::ApiKeyRecord;
use logbook_core::cursor::CursorPosition;
use logbook_core::event::{EventRow, NewEvent};
use logbook_core::ids::{ApiKeyId, EventId};
use logbook_core::query::Query;
use logbook_core::store::{AccountRecord, AppendOutcome, EventPage, EventQuery, NewApiKey};
use logbook_core::timeline::{BucketCount, TimeBucket};
use logbook_core::{AccountId, Store, StoreError};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row};

pub use migrations::schema_sql;

use crate::encoding::{micros_to_time, unix_micros_of};
use crate::errors::{database_error, pool_error};
use crate::migrations::ROW_SECURITY_ROLE;
use crate::query_sql::{CompiledQuery, EVENT_COLUMNS, PIN_NEWEST_FIRST_WALK, compile_page_query};
use crate::writer::{AppendRequest, PreparedEvent, Writer};
use logbook_store_sql::export::{EXPORT_PAGE_SIZE, page_from_rows};

/// Prepared statements cached per connection before the cache is emptied: query shapes vary with
/// the query text, so an unbounded cache would grow with every new combination of qualifiers.
const MAX_CACHED_STATEMENTS: usize = 512;

#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// Connections for reads, accounts and keys (the writer has its own).
    pub pool_size: usize,
    /// The most events one group commit takes before it starts committing.
    pub max_events_per_commit: usize,
    /// A page query running longer than this is cancelled by PostgreSQL (`statement_timeout`)
    /// and fails as unavailable; `None` means no limit.
    pub query_time_budget: Option<std::time::Duration>,
    /// Where each event's address is (`logbook_core::location`), asked while events are prepared,
    /// off the writer. `NoIpLocator` (the default) locates nothing.
    pub ip_locator: logbook_core::location::SharedIpLocator,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: 8,
            max_events_per_commit: 20_000,
            query_time_budget: Some(std::time::Duration::from_secs(10)),
            ip_locator: std::sync::Arc::new(logbook_core::location::NoIpLocator),
        }
    }
}

/// The PostgreSQL `Store`. Cheap to share behind an `Arc<dyn Store>`.
pub struct PostgresStore {
    inner: Arc<StoreInner>,
    /// Limits, people, alerting, attention and known networks, in the SQL both stores share.
    shared: logbook_store_sql::SharedStore<shared_sql::PostgresDatabase>,
}

struct StoreInner {
    pool: Pool,
    /// The writer's one connection, as the connecting role (not switched to the row-security role).
    writer_pool: Pool,
    /// One connection, as the connecting role, for retention's deletes.
    maintenance_pool: Pool,
    connection_config: tokio_postgres::Config,
    /// `None` once shutdown started: no new writes are accepted.
    writer_inbox: Mutex<Option<mpsc::UnboundedSender<AppendRequest>>>,
    writer_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    account_rows: Arc<AccountRows>,
    /// How long one page query may run (`query_budget`).
    query_time_budget: Option<std::time::Duration>,
    /// Where each event's address is (`PostgresOptions::ip_locator`).
    ip_locator: logbook_core::location::SharedIpLocator,
    /// Set when the start-up check found history that does not match a signed checkpoint
    /// (`startup_check`): every write is refused with this message.
    startup_failure: std::sync::OnceLock<String>,
}

/// Account names and their rows, which never change once created, cached for the process.
#[derive(Default)]
pub(crate) struct AccountRows {
    rows: Mutex<HashMap<AccountId, i64>>,
}

impl AccountRows {
    fn cached(&self, account: &AccountId) -> Option<i64> {
        self.rows
            .lock()
            .expect("account rows lock poisoned")
            .get(account)
            .copied()
    }

    fn remember(&self, account: AccountId, account_row: i64) {
        self.rows
            .lock()
            .expect("account rows lock poisoned")
            .insert(account, account_row);
    }

    /// The row of `account`, or `None` if it does not exist (not cached: it may be created later).
    async fn find(&self, client: &Client, account: &AccountId) -> Result<Option<i64>, StoreError> {
        if let Some(account_row) = self.cached(account) {
            return Ok(Some(account_row));
        }
        let found = client
            .query_opt(
                "SELECT account_row FROM accounts WHERE name = $1",
                &[&account.as_str()],
            )
            .await
            .map_err(database_error("looking up an account"))?
            .map(|row| row.get::<_, i64>(0));
        if let Some(account_row) = found {
            self.remember(account.clone(), account_row);
        }
        Ok(found)
    }

    /// The rows of `accounts`, creating the missing ones in their own short transaction (an
    /// account with no events yet is harmless if the group then fails).
    pub(crate) async fn resolve_or_create(
        &self,
        client: &Client,
        accounts: BTreeMap<&AccountId, OffsetDateTime>,
    ) -> Result<HashMap<AccountId, i64>, StoreError> {
        let mut resolved = HashMap::with_capacity(accounts.len());
        let mut missing: Vec<&str> = Vec::new();
        let mut missing_created_at: Vec<i64> = Vec::new();
        for (account, first_seen_at) in accounts {
            match self.cached(account) {
                Some(account_row) => {
                    resolved.insert(account.clone(), account_row);
                }
                None => {
                    missing.push(account.as_str());
                    missing_created_at.push(unix_micros_of(first_seen_at));
                }
            }
        }
        if missing.is_empty() {
            return Ok(resolved);
        }
        // Names in sorted order, so two nodes creating the same accounts never deadlock. An
        // account created by its first event is as old as that event's arrival.
        client
            .execute(
                "INSERT INTO accounts (name, created_at) SELECT name, created_at FROM unnest($1::text[], $2::bigint[]) AS n (name, created_at) \
                 ORDER BY name COLLATE \"C\" ON CONFLICT (name) DO NOTHING",
                &[&missing, &missing_created_at],
            )
            .await
            .map_err(database_error("creating accounts"))?;
        for row in client
            .query(
                "SELECT name, account_row FROM accounts WHERE name = ANY($1)",
                &[&missing],
            )
            .await
            .map_err(database_error("looking up accounts"))?
        {
            let account = parse_stored_account(row.get(0))?;
            let account_row: i64 = row.get(1);
            self.remember(account.clone(), account_row);
            resolved.insert(account, account_row);
        }
        Ok(resolved)
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`), applies
    /// migrations (safe when several nodes start at once) and starts this process's writer.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<PostgresStore, StoreError> {
        let mut connection_config =
            tokio_postgres::Config::from_str(url).map_err(|error| StoreError::Database {
                context: "reading the database URL",
                message: error.to_string(),
            })?;
        // Custom plans for every execution: a generic plan for "the account" cannot know whether
        // it is the one with a million events or one with ten.
        let mut startup_options = connection_config.get_options().unwrap_or("").to_owned();
        startup_options.push_str(" -c plan_cache_mode=force_custom_plan");
        connection_config.options(startup_options.trim());
        if connection_config.get_application_name().is_none() {
            connection_config.application_name("logbook");
        }

        let (mut migration_client, connection) = connection_config
            .connect(NoTls)
            .await
            .map_err(database_error("connecting to PostgreSQL"))?;
        let connection_task = tokio::spawn(connection);
        let schema = migrations::apply_migrations(&mut migration_client).await;
        let schema = match schema {
            Ok(schema) => tree::build_missing_trees(&mut migration_client)
                .await
                .map(|_| schema),
            Err(error) => Err(error),
        };
        drop(migration_client);
        let _ = connection_task.await;
        let schema = schema?;

        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let mut pool_builder = Pool::builder(Manager::from_config(
            connection_config.clone(),
            NoTls,
            manager_config.clone(),
        ))
        .max_size(options.pool_size.max(1));
        if schema.switch_to_row_security_role {
            // A superuser bypasses row-level security even with FORCE; reading sessions become
            // the unprivileged role so the policies hold for them.
            pool_builder = pool_builder.post_create(Hook::async_fn(|client, _| {
                Box::pin(async move {
                    client
                        .batch_execute(&format!("SET ROLE {ROW_SECURITY_ROLE}"))
                        .await
                        .map_err(HookError::Backend)
                })
            }));
        }
        let pool = pool_builder
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|error| StoreError::Database {
                context: "building the connection pool",
                message: error.to_string(),
            })?;
        let writer_pool = Pool::builder(Manager::from_config(
            connection_config.clone(),
            NoTls,
            manager_config,
        ))
        .max_size(1)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .post_create(Hook::async_fn(|client, _| {
            Box::pin(async move {
                client
                    .batch_execute(writer::CREATE_STAGING_TABLES)
                    .await
                    .map_err(HookError::Backend)
            })
        }))
        .build()
        .map_err(|error| StoreError::Database {
            context: "building the writer's connection pool",
            message: error.to_string(),
        })?;
        // Retention's deletes run as the connecting role too (the reading role may not delete
        // events), on a connection of their own so they never wait for the writer's.
        let maintenance_pool = Pool::builder(Manager::from_config(
            connection_config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        ))
        .max_size(1)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|error| StoreError::Database {
            context: "building the maintenance connection pool",
            message: error.to_string(),
        })?;
        // Fail now, not at the first event, if the writer cannot connect.
        drop(
            writer_pool
                .get()
                .await
                .map_err(pool_error("connecting the writer"))?,
        );

        let account_rows = Arc::new(AccountRows::default());
        let (sender, inbox) = mpsc::unbounded_channel();
        let writer = Writer {
            pool: writer_pool.clone(),
            copy_directly: schema.writer_bypasses_row_security,
            inbox,
            account_rows: account_rows.clone(),
            max_events_per_commit: options.max_events_per_commit.max(1),
            known_actor_pairs: actor_history::KnownPairs::default(),
        };
        let writer_task = tokio::spawn(writer.run());
        let store = PostgresStore {
            shared: logbook_store_sql::SharedStore::new(shared_sql::PostgresDatabase {
                pool: pool.clone(),
            }),
            inner: Arc::new(StoreInner {
                pool,
                writer_pool,
                maintenance_pool,
                connection_config,
                writer_inbox: Mutex::new(Some(sender)),
                writer_task: Mutex::new(Some(writer_task)),
                account_rows,
                query_time_budget: options.query_time_budget,
                ip_locator: options.ip_locator.clone(),
                startup_failure: std::sync::OnceLock::new(),
            }),
        };
        store.check_newest_checkpoints_at_start_up().await?;
        Ok(store)
    }

    /// PostgreSQL's plan for `query` on `account` (`EXPLAIN`, one line per plan node), run exactly
    /// as a page read runs, so tests and operators can check which indexes a query uses. With
    /// `execute`, the query also runs (`EXPLAIN (ANALYZE, BUFFERS)`) and the plan shows how many
    /// pages it touched, including those read inside `logbook_message_matches`.
    pub async fn explain_query_plan(
        &self,
        account: &AccountId,
        query: &EventQuery,
        execute: bool,
    ) -> Result<Vec<String>, StoreError> {
        let account_row = self.inner.account_row(account).await?.unwrap_or(-1);
        let reader = AccountReader::begin(&self.inner.pool, account_row).await?;
        let compiled = compile_page_query(
            reader.client(),
            account_row,
            &query.query,
            query.after,
            query.limit + 1,
        )
        .await?;
        let statement = reader
            .client()
            .prepare(&format!(
                "EXPLAIN {}{}",
                if execute { "(ANALYZE, BUFFERS) " } else { "" },
                compiled.sql
            ))
            .await
            .map_err(database_error("explaining a query"))?;
        let lines = run_compiled(reader.client(), &compiled, &statement)
            .await
            .map_err(database_error("explaining a query"))?
            .iter()
            .map(|row| row.get::<_, String>(0))
            .collect();
        reader.finish().await?;
        Ok(lines)
    }

    /// PostgreSQL's plan for the timeline of `query` (`Store::count_events_over_time`), one line
    /// per plan node, run as the timeline runs, so tests can check which index it reads.
    pub async fn explain_timeline_plan(
        &self,
        account: &AccountId,
        query: &Query,
        bucket: TimeBucket,
    ) -> Result<Vec<String>, StoreError> {
        let account_row = self.inner.account_row(account).await?.unwrap_or(-1);
        let reader = AccountReader::begin(&self.inner.pool, account_row).await?;
        let compiled = crate::query_sql::compile_bucket_count_query(account_row, query, bucket);
        let statement = reader
            .client()
            .prepare(&format!("EXPLAIN {}", compiled.sql))
            .await
            .map_err(database_error("explaining a timeline query"))?;
        let lines = run_compiled(reader.client(), &compiled, &statement)
            .await
            .map_err(database_error("explaining a timeline query"))?
            .iter()
            .map(|row| row.get::<_, String>(0))
            .collect();
        reader.finish().await?;
        Ok(lines)
    }

    /// Runs `sql` (which names no account) inside a read transaction of `account`, returning the
    /// first column of each row as text: how tests prove that row-level security alone keeps
    /// other accounts' rows out.
    pub async fn run_read_as_account(
        &self,
        account: &AccountId,
        sql: &str,
    ) -> Result<Vec<String>, StoreError> {
        let account_row = self.inner.account_row(account).await?.unwrap_or(-1);
        let reader = AccountReader::begin(&self.inner.pool, account_row).await?;
        let rows = reader
            .client()
            .query(sql, &[])
            .await
            .map_err(database_error("running a read"))?
            .iter()
            .map(|row| row.get::<_, String>(0))
            .collect();
        reader.finish().await?;
        Ok(rows)
    }

    /// Refreshes PostgreSQL's planner statistics of the event tables (`ANALYZE`), as the
    /// connecting role (reading sessions may have switched to a role that does not own them).
    pub async fn analyze(&self) -> Result<(), StoreError> {
        let client = self
            .inner
            .writer_pool
            .get()
            .await
            .map_err(pool_error("connecting to PostgreSQL"))?;
        client
            .batch_execute("ANALYZE accounts; ANALYZE events; ANALYZE event_targets")
            .await
            .map_err(database_error("analyzing"))
    }
}

/// Runs a compiled page query, pinning the newest-first walk when the query needs it. The settings
/// and the query go out together (pipelined): one round trip.
async fn run_compiled(
    client: &Client,
    compiled: &CompiledQuery,
    statement: &tokio_postgres::Statement,
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let bound = encoding::bound(&compiled.parameters);
    let parameters = parameter_refs(&bound);
    if compiled.walks_newest_first {
        let (_, rows) = futures::try_join!(
            client.batch_execute(PIN_NEWEST_FIRST_WALK),
            client.query(statement, &parameters)
        )?;
        Ok(rows)
    } else {
        client.query(statement, &parameters).await
    }
}

fn parameter_refs<'value>(
    parameters: &'value [encoding::Bound<'value>],
) -> Vec<&'value (dyn ToSql + Sync)> {
    parameters
        .iter()
        .map(|parameter| parameter as &(dyn ToSql + Sync))
        .collect()
}

/// A pooled connection inside a read-only transaction bound to one account (`SET LOCAL
/// logbook.account_row`), so row-level security limits every statement to that account. A read
/// that does not reach `finish` (an error, a cancelled request) throws its connection away rather
/// than return it to the pool inside a transaction.
struct AccountReader {
    client: Option<Object>,
}

impl AccountReader {
    async fn begin(pool: &Pool, account_row: i64) -> Result<Self, StoreError> {
        Self::begin_within_budget(pool, account_row, None).await
    }

    /// `begin`, with every statement of the transaction cancelled by PostgreSQL once it runs
    /// past `budget` (`query_budget`).
    async fn begin_within_budget(
        pool: &Pool,
        account_row: i64,
        budget: Option<std::time::Duration>,
    ) -> Result<Self, StoreError> {
        let reader = Self::connect(pool).await?;
        reader
            .client()
            .batch_execute(&Self::begin_sql(account_row, budget))
            .await
            .map_err(database_error("starting a read"))?;
        Ok(reader)
    }

    /// A reader whose transaction is not started yet: the caller sends `begin_sql` pipelined with
    /// its first statement.
    async fn connect(pool: &Pool) -> Result<Self, StoreError> {
        let client = pool.get().await.map_err(pool_error("starting a read"))?;
        Ok(AccountReader {
            client: Some(client),
        })
    }

    /// Starts the read-only transaction and scopes it to the account. The account row is an
    /// integer from our own table, so formatting it into the SQL is safe. Sequential scans are
    /// off: no read of events should ever need one, and a misestimate must not pick one.
    fn begin_sql(account_row: i64, budget: Option<std::time::Duration>) -> String {
        format!(
            "BEGIN READ ONLY; SET LOCAL logbook.account_row = '{account_row}'; SET LOCAL enable_seqscan = off{}",
            query_budget::set_local_statement_timeout(budget)
        )
    }

    fn client(&self) -> &Object {
        self.client
            .as_ref()
            .expect("the reader holds its client until finished")
    }

    async fn finish(self) -> Result<(), StoreError> {
        let committed = self.client().batch_execute("COMMIT").await;
        self.committed(committed)
    }

    /// Hands the connection back to the pool once the `COMMIT` the caller sent (pipelined with
    /// its last statement) has answered; a failed one throws the connection away.
    fn committed(mut self, commit: Result<(), tokio_postgres::Error>) -> Result<(), StoreError> {
        let client = self.client.take().expect("finished once");
        match commit {
            Ok(()) => {
                if client.statement_cache.size() > MAX_CACHED_STATEMENTS {
                    client.statement_cache.clear();
                }
                Ok(())
            }
            Err(error) => {
                drop(Object::take(client));
                Err(database_error("finishing a read")(error))
            }
        }
    }
}

impl Drop for AccountReader {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            drop(Object::take(client));
        }
    }
}

impl StoreInner {
    async fn connection(&self) -> Result<Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(pool_error("connecting to PostgreSQL"))
    }

    async fn account_row(&self, account: &AccountId) -> Result<Option<i64>, StoreError> {
        if let Some(account_row) = self.account_rows.cached(account) {
            return Ok(Some(account_row));
        }
        let client = self.connection().await?;
        self.account_rows.find(&client, account).await
    }

    /// One page of `query` (at most `limit` events after `after`).
    async fn read_page(
        &self,
        account: &AccountId,
        query: &Query,
        limit: u32,
        after: Option<CursorPosition>,
    ) -> Result<EventPage, StoreError> {
        let Some(account_row) = self.account_row(account).await? else {
            return Ok(EventPage {
                events: Vec::new(),
                next: None,
            });
        };
        let budget = self.query_time_budget;
        let reader = AccountReader::connect(&self.pool).await?;
        let client = reader.client();
        // A page is one round trip once the connection has the statement prepared: the
        // transaction's start goes out with the compilation (which sends nothing unless a text
        // term needs its frequency sampled), and the COMMIT with the page query. Futures polled
        // together are sent in the order they are first polled, so the statements run in order.
        let begin_sql = AccountReader::begin_sql(account_row, budget);
        let begin = async {
            client
                .batch_execute(&begin_sql)
                .await
                .map_err(database_error("starting a read"))
        };
        // One more than asked tells whether a next page exists without a second query.
        let compile = async {
            compile_page_query(client, account_row, query, after, limit + 1)
                .await
                .map_err(|error| query_budget::restate_cancellation(error, budget))
        };
        let ((), compiled) = futures::try_join!(begin, compile)?;
        let statement = client
            .prepare_cached(&compiled.sql)
            .await
            .map_err(query_budget::budget_error("preparing a query", budget))?;
        let run = async {
            run_compiled(client, &compiled, &statement)
                .await
                .map_err(query_budget::budget_error("running a query", budget))
        };
        let (rows, commit) =
            futures::try_join!(run, async { Ok(client.batch_execute("COMMIT").await) })?;
        reader.committed(commit)?;
        Ok(page_from_rows(
            rows.iter().map(row_to_event).collect(),
            limit,
        ))
    }

    /// The timeline of `query`: one `GROUP BY` statement in the account's read-only transaction
    /// (row-level security and the query budget as for a page).
    async fn count_over_time(
        &self,
        account: &AccountId,
        query: &Query,
        bucket: TimeBucket,
    ) -> Result<Vec<BucketCount>, StoreError> {
        let Some(account_row) = self.account_row(account).await? else {
            return Ok(Vec::new());
        };
        let budget = self.query_time_budget;
        let reader = AccountReader::connect(&self.pool).await?;
        let client = reader.client();
        client
            .batch_execute(&AccountReader::begin_sql(account_row, budget))
            .await
            .map_err(database_error("starting a read"))?;
        let compiled = crate::query_sql::compile_bucket_count_query(account_row, query, bucket);
        let statement =
            client
                .prepare_cached(&compiled.sql)
                .await
                .map_err(query_budget::budget_error(
                    "preparing a timeline query",
                    budget,
                ))?;
        let run =
            async {
                run_compiled(client, &compiled, &statement).await.map_err(
                    query_budget::budget_error("running a timeline query", budget),
                )
            };
        let (rows, commit) =
            futures::try_join!(run, async { Ok(client.batch_execute("COMMIT").await) })?;
        reader.committed(commit)?;
        Ok(rows
            .iter()
            .map(|row| BucketCount {
                start_micros: row.get(0),
                events: row.get::<_, i64>(1).max(0) as u64,
            })
            .collect())
    }
}

fn row_to_event(row: &Row) -> EventRow {
    EventRow {
        seq: row.get::<_, i64>(0) as u64,
        created_at_micros: row.get(1),
        body_without_seq: row.get(2),
        new_ip: row.get(3),
        new_network: row.get(4),
        location: row.get(5),
        new_country: row.get(6),
    }
}

fn parse_stored_account(name: &str) -> Result<AccountId, StoreError> {
    AccountId::parse(name).map_err(|_| StoreError::Database {
        context: "reading accounts",
        message: format!("stored account name {name:?} is not valid"),
    })
}

#[async_trait]
impl Store for PostgresStore {
    fn backend_name(&self) -> &'static str {
        "postgres"
    }

    fn log_tree(&self) -> Option<&dyn logbook_core::store::LogTree> {
        Some(self)
    }

    fn people(&self) -> &dyn logbook_core::store::PeopleStore {
        &self.shared
    }

    fn account_limits(&self) -> &dyn logbook_core::store::AccountLimitStore {
        &self.shared
    }

    fn unfamiliar_ips(&self) -> &dyn logbook_core::store::UnfamiliarIpStore {
        &self.shared
    }

    fn locations(&self) -> &dyn logbook_core::store::LocationStore {
        self
    }

    fn single_sign_on(&self) -> &dyn logbook_core::store::SingleSignOnStore {
        &self.shared
    }

    fn alerting(&self) -> &dyn logbook_core::store::AlertingStore {
        &self.shared
    }

    fn retention(&self) -> &dyn logbook_core::store::RetentionStore {
        self
    }

    fn attention(&self) -> &dyn logbook_core::store::AttentionStore {
        &self.shared
    }

    fn accounts(&self) -> &dyn logbook_core::store::AccountSettingsStore {
        &self.shared
    }

    fn viewer_sessions(&self) -> &dyn logbook_core::store::ViewerSessionStore {
        &self.shared
    }

    async fn create_account(
        &self,
        account: &AccountId,
        now: OffsetDateTime,
    ) -> Result<AccountRecord, StoreError> {
        let client = self.inner.connection().await?;
        let created_at = unix_micros_of(now);
        let inserted = client
            .query_opt(
                "INSERT INTO accounts (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING account_row",
                &[&account.as_str(), &created_at],
            )
            .await
            .map_err(database_error("creating an account"))?;
        let Some(row) = inserted else {
            return Err(StoreError::AccountAlreadyExists(account.clone()));
        };
        self.inner
            .account_rows
            .remember(account.clone(), row.get(0));
        Ok(AccountRecord {
            account: account.clone(),
            created_at: micros_to_time(created_at),
            event_count: 0,
        })
    }

    async fn list_accounts(&self) -> Result<Vec<AccountRecord>, StoreError> {
        let client = self.inner.connection().await?;
        // `seq` is dense from 0, so `next_seq` is the event count.
        client
            .query(
                "SELECT name, created_at, next_seq FROM accounts ORDER BY name",
                &[],
            )
            .await
            .map_err(database_error("listing accounts"))?
            .iter()
            .map(|row| {
                Ok(AccountRecord {
                    account: parse_stored_account(row.get(0))?,
                    created_at: micros_to_time(row.get(1)),
                    event_count: row.get::<_, i64>(2) as u64,
                })
            })
            .collect()
    }

    async fn create_api_key(&self, key: NewApiKey) -> Result<ApiKeyRecord, StoreError> {
        self.shared.create_api_key(key).await
    }

    async fn list_api_keys(
        &self,
        account: Option<&AccountId>,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.shared.list_api_keys(account).await
    }

    async fn revoke_api_key(
        &self,
        key_id: &ApiKeyId,
        now: OffsetDateTime,
    ) -> Result<ApiKeyRecord, StoreError> {
        self.shared.revoke_api_key(key_id, now).await
    }

    async fn record_api_key_use(
        &self,
        uses: &[(ApiKeyId, OffsetDateTime)],
    ) -> Result<(), StoreError> {
        self.shared.record_api_key_use(uses).await
    }

    async fn api_key_hash(&self, key_id: &ApiKeyId) -> Result<Option<[u8; 32]>, StoreError> {
        self.shared.api_key_hash(key_id).await
    }

    async fn find_api_key_by_hash(
        &self,
        key_hash: &[u8; 32],
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.shared.find_api_key_by_hash(key_hash).await
    }

    async fn append_events(&self, events: Vec<NewEvent>) -> Result<Vec<AppendOutcome>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(failure) = self.startup_failure() {
            return Err(StoreError::Unavailable(failure.clone()));
        }
        // Bodies, fingerprints, tokens and column values are computed here, on the caller's task,
        // so the single writer does nothing but SQL.
        // The IP databases are asked here too, so the writer only stores each location.
        let locator = self.inner.ip_locator.as_ref();
        let events: Vec<PreparedEvent> = events
            .into_iter()
            .map(|event| PreparedEvent::new(event, locator))
            .collect();
        let (reply, answer) = oneshot::channel();
        {
            let inbox = self
                .inner
                .writer_inbox
                .lock()
                .expect("writer inbox lock poisoned");
            let Some(inbox) = inbox.as_ref() else {
                return Err(StoreError::Unavailable("the store is shutting down".into()));
            };
            inbox
                .send(AppendRequest { events, reply })
                .map_err(|_| StoreError::Unavailable("the writer has stopped".into()))?;
        }
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the writer stopped before answering".into()))?
    }

    async fn query_events(
        &self,
        account: &AccountId,
        query: &EventQuery,
    ) -> Result<EventPage, StoreError> {
        let limit = query.limit.clamp(1, 1000);
        self.inner
            .read_page(account, &query.query, limit, query.after)
            .await
    }

    async fn count_events_over_time(
        &self,
        account: &AccountId,
        query: &Query,
        bucket: TimeBucket,
    ) -> Result<Vec<BucketCount>, StoreError> {
        // A whole log or a `created:` range: per day, one row per day with events.
        if let Some(counts) = self
            .shared
            .count_over_time_by_days(account, query, bucket)
            .await?
        {
            return Ok(counts);
        }
        self.inner.count_over_time(account, query, bucket).await
    }

    async fn get_event(
        &self,
        account: &AccountId,
        event_id: &EventId,
    ) -> Result<Option<EventRow>, StoreError> {
        let Some(account_row) = self.inner.account_row(account).await? else {
            return Ok(None);
        };
        let reader = AccountReader::begin(&self.inner.pool, account_row).await?;
        let statement = reader
            .client()
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE account_row = $1 AND id = $2"
            ))
            .await
            .map_err(database_error("reading an event"))?;
        let row = reader
            .client()
            .query_opt(&statement, &[&account_row, &event_id.as_str()])
            .await
            .map_err(database_error("reading an event"))?;
        reader.finish().await?;
        Ok(row.as_ref().map(row_to_event))
    }

    fn export_events(
        &self,
        account: &AccountId,
        query: Query,
    ) -> BoxStream<'static, Result<EventRow, StoreError>> {
        let inner = self.inner.clone();
        let account = account.clone();
        logbook_store_sql::export::export_pages(move |after| {
            let inner = inner.clone();
            let account = account.clone();
            let query = query.clone();
            async move {
                inner
                    .read_page(&account, &query, EXPORT_PAGE_SIZE, after)
                    .await
            }
        })
    }

    async fn next_seq(&self, account: &AccountId) -> Result<u64, StoreError> {
        let client = self.inner.connection().await?;
        let next: Option<i64> = client
            .query_opt(
                "SELECT next_seq FROM accounts WHERE name = $1",
                &[&account.as_str()],
            )
            .await
            .map_err(database_error("reading the next seq"))?
            .map(|row| row.get(0));
        Ok(next.unwrap_or(0) as u64)
    }

    async fn events_since(
        &self,
        account: &AccountId,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<EventRow>, StoreError> {
        let Some(account_row) = self.inner.account_row(account).await? else {
            return Ok(Vec::new());
        };
        let reader = AccountReader::begin(&self.inner.pool, account_row).await?;
        let statement = reader
            .client()
            .prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE account_row = $1 AND seq >= $2 ORDER BY seq LIMIT $3"
            ))
            .await
            .map_err(database_error("reading new events"))?;
        let rows = reader
            .client()
            .query(
                &statement,
                &[
                    &account_row,
                    &i64::try_from(from_seq).unwrap_or(i64::MAX),
                    &i64::from(limit),
                ],
            )
            .await
            .map_err(database_error("reading new events"))?;
        reader.finish().await?;
        Ok(rows.iter().map(row_to_event).collect())
    }

    /// Runs `pg_dump` (custom format) against the live database: PostgreSQL's own consistent
    /// snapshot. Needs the PostgreSQL client tools and a role that may read every row.
    async fn backup(&self, destination: &Path) -> Result<(), StoreError> {
        if destination.exists() {
            return Err(StoreError::Database {
                context: "backing up",
                message: format!(
                    "{} already exists; choose a new file",
                    destination.display()
                ),
            });
        }
        let config = &self.inner.connection_config;
        let mut command = tokio::process::Command::new("pg_dump");
        command
            .arg("--format=custom")
            .arg("--no-owner")
            .arg("--file")
            .arg(destination);
        if let Some(user) = config.get_user() {
            command.arg("--username").arg(user);
        }
        if let Some(database) = config.get_dbname() {
            command.arg("--dbname").arg(database);
        }
        if let Some(tokio_postgres::config::Host::Tcp(host)) = config.get_hosts().first() {
            command.arg("--host").arg(host);
        }
        if let Some(port) = config.get_ports().first() {
            command.arg("--port").arg(port.to_string());
        }
        if let Some(password) = config.get_password() {
            // The password goes through the environment, never the command line (visible in ps).
            command.env("PGPASSWORD", String::from_utf8_lossy(password).into_owned());
        }
        let output = command
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|error| StoreError::Database {
                context: "backing up",
                message: format!(
                    "could not run pg_dump ({error}); install the PostgreSQL client tools or back up with your own pg_dump"
                ),
            })?;
        if !output.status.success() {
            let _ = std::fs::remove_file(destination);
            return Err(StoreError::Database {
                context: "backing up",
                message: format!(
                    "pg_dump failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            });
        }
        Ok(())
    }

    async fn check_ready(&self) -> Result<(), StoreError> {
        let writer_running = self
            .inner
            .writer_inbox
            .lock()
            .expect("writer inbox lock poisoned")
            .as_ref()
            .is_some_and(|inbox| !inbox.is_closed());
        if !writer_running {
            return Err(StoreError::Unavailable("the store is shutting down".into()));
        }
        if let Some(failure) = self.startup_failure() {
            return Err(StoreError::Unavailable(failure.clone()));
        }
        let client = self.inner.connection().await?;
        client
            .batch_execute("SELECT 1")
            .await
            .map_err(database_error("checking readiness"))
    }

    async fn shutdown(&self) {
        // Dropping the sender lets the writer finish everything already queued, then stop.
        drop(
            self.inner
                .writer_inbox
                .lock()
                .expect("writer inbox lock poisoned")
                .take(),
        );
        let writer_task = self
            .inner
            .writer_task
            .lock()
            .expect("writer task lock poisoned")
            .take();
        if let Some(writer_task) = writer_task
            && writer_task.await.is_err()
        {
            tracing::error!("the PostgreSQL writer task ended abnormally");
        }
    }
}

/// `logbook geoip backfill`'s batches, in the shared SQL (`logbook_store_sql`).
#[async_trait::async_trait]
impl logbook_core::store::LocationStore for PostgresStore {
    async fn locate_stored_events(
        &self,
        account: &AccountId,
        max_events: u32,
        locator: logbook_core::location::SharedIpLocator,
        from_start: bool,
    ) -> Result<logbook_core::location::LocationBackfillBatch, StoreError> {
        self.shared
            .locate_stored_events(
                account,
                max_events,
                locator,
                from_start,
                logbook_store_sql::personal_data::EventKeys {
                    column: "seq",
                    key_of_first_event: |_| 0,
                },
            )
            .await
    }
}
