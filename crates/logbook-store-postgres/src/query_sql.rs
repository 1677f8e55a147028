//! Compiles a `Query` into ONE SQL statement with bound parameters (user values are never part of
//! the SQL text), newest first with keyset pagination, on indexes that all lead with the account:
//! the same compilation as the SQLite store, adapted to PostgreSQL.
//!
//! Plan shapes are pinned rather than left to estimates (every connection also runs with
//! `plan_cache_mode = force_custom_plan`, and reads with `enable_seqscan = off`):
//! - Free text is a `tsquery` over Logbook's own tokens (see `encoding`). A term that is rare in
//!   the account (too few matches among its newest `RECENT_SAMPLE` events for a walk of
//!   `WALK_ROWS_PER_PAGE` rows to fill a page) is found
//!   through the GIN index by `logbook_message_matches` (see migration 0001 for why a function),
//!   and each match is then
//!   looked up by primary key in a `LATERAL (... OFFSET 0)` subquery, a shape PostgreSQL cannot
//!   turn into a walk of the whole account. A common term walks the account's newest-first index
//!   and checks each row with `ts_match_vq(...)`.
//! - Every other filter keeps `account_row = $1` and its own `(account_row, column, created_at,
//!   seq)` index.

use deadpool_postgres::ClientWrapper as Client;
use logbook_core::StoreError;
use logbook_core::cursor::CursorPosition;
use logbook_core::query::Query;
use logbook_core::timeline::TimeBucket;
use logbook_store_sql::{
    BucketCountRequest, Dialect, PageRequest, SelectedColumns, SqlBuilder, SqlValue, TextTerms,
};

use crate::encoding::tsquery_text;
use crate::errors::database_error;

/// How many of the account's newest events the text planner samples to tell a common term (walk
/// the newest-first index, checking each row) from a rare one (look it up through GIN). Each
/// sampled row is a heap page read, which on an account whose rows share pages with other
/// accounts is most of the cost of a rare-word search, so the sample is small and its count is
/// scaled to `WALK_ROWS_PER_PAGE`.
pub(crate) const RECENT_SAMPLE: i64 = 500;

/// The rows a walk may read for one page before the GIN lookup is the cheaper plan: a term is
/// common when its share of the sample would give a page within that many rows.
const WALK_ROWS_PER_PAGE: i64 = 2_000;

/// The most matches an index-first text lookup collects: only a bound on work, since a term is
/// looked up through GIN only when it is rare in the account.
const MAX_TEXT_MATCHES: i64 = 1_000_000;

/// The columns every event read selects, in the order `row_to_event` reads them.
pub(crate) const EVENT_COLUMNS: &str =
    "seq, created_at, body, new_ip, new_network, location, new_country";

#[derive(Debug)]
pub(crate) struct CompiledQuery {
    pub sql: String,
    pub parameters: Vec<SqlValue>,
    /// No condition can pick a few rows through its own index, so the right plan walks the
    /// account's newest-first index and stops after one page; the reader then forbids sorts and
    /// bitmap scans for this statement, whatever the estimates say.
    pub walks_newest_first: bool,
}

/// Planner settings that leave an ordered walk of `(account_row, created_at, seq)` as the only
/// way to answer a `walks_newest_first` query without a huge cost penalty.
pub(crate) const PIN_NEWEST_FIRST_WALK: &str =
    "SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off";
const UNPIN_NEWEST_FIRST_WALK: &str =
    "SET LOCAL enable_sort = on; SET LOCAL enable_bitmapscan = on";

/// How a positive full-text condition finds its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextPlan {
    IndexFirst,
    CheckEachRow,
}

/// PostgreSQL's side of the shared walk: `$N` placeholders, real booleans, `seq` as the key, a row
/// comparison as the keyset condition, and the message terms as a `tsquery` over
/// `message_tokens`, either checked on each row or (a rare term) looked up through GIN first.
struct PostgresDialect {
    positive_plan: Option<TextPlan>,
}

impl Dialect for PostgresDialect {
    fn placeholder_prefix(&self) -> char {
        '$'
    }

    fn boolean(&self, value: bool) -> &'static str {
        if value { "TRUE" } else { "FALSE" }
    }

    fn event_key_column(&self) -> &'static str {
        "seq"
    }

    fn flag_is_set(&self, column: &str) -> String {
        column.to_owned()
    }

    fn begin_select(
        &self,
        builder: &mut SqlBuilder,
        account: &str,
        positive_text: &[Vec<String>],
        columns: SelectedColumns,
    ) {
        let inner_columns = match columns {
            SelectedColumns::Events => EVENT_COLUMNS,
            SelectedColumns::CreatedAt => "created_at",
        };
        // The index-first plan selects the same columns from its `e` subquery.
        let outer_columns = inner_columns
            .split(", ")
            .map(|column| format!("e.{column}"))
            .collect::<Vec<_>>()
            .join(", ");
        match self.positive_plan {
            Some(TextPlan::IndexFirst) => {
                // The matching seqs come first (GIN, through `logbook_message_matches`); each is
                // looked up by primary key and checked against the other conditions. OFFSET 0
                // keeps the lookup a parameterized subquery, so the plan cannot turn into a walk
                // of the whole account.
                let placeholder = builder.bind(SqlValue::Text(tsquery_text(positive_text)));
                builder.push(&format!(
                    "SELECT {outer_columns} FROM logbook_message_matches({placeholder}::text::tsquery, {MAX_TEXT_MATCHES}) AS m \
                     CROSS JOIN LATERAL (SELECT {inner_columns} FROM events WHERE account_row = {account} AND seq = m.seq"
                ));
            }
            Some(TextPlan::CheckEachRow) => {
                builder.push(&format!(
                    "SELECT {inner_columns} FROM events WHERE account_row = {account}"
                ));
                let placeholder = builder.bind(SqlValue::Text(tsquery_text(positive_text)));
                builder.push(&format!(
                    " AND ts_match_vq(message_tokens, {placeholder}::text::tsquery)"
                ));
            }
            None => {
                builder.push(&format!(
                    "SELECT {inner_columns} FROM events WHERE account_row = {account}"
                ));
            }
        }
    }

    fn negated_text_condition(
        &self,
        builder: &mut SqlBuilder,
        _index: usize,
        tokens: &[String],
    ) -> String {
        let placeholder = builder.bind(SqlValue::Text(tsquery_text(std::slice::from_ref(
            &tokens.to_vec(),
        ))));
        format!("NOT ts_match_vq(message_tokens, {placeholder}::text::tsquery)")
    }

    fn keyset_condition(&self, builder: &mut SqlBuilder, after: CursorPosition) -> String {
        let created_at = builder.bind(SqlValue::Integer(after.created_at_micros));
        let seq = builder.bind(SqlValue::Integer(
            i64::try_from(after.seq).unwrap_or(i64::MAX),
        ));
        // A row comparison is one index range in PostgreSQL: the scan starts at the cursor.
        format!("(created_at, seq) < ({created_at}, {seq})")
    }

    fn end_select(&self, builder: &mut SqlBuilder, limit: Option<&str>) {
        let index_first = self.positive_plan == Some(TextPlan::IndexFirst);
        match (index_first, limit) {
            (true, Some(limit)) => {
                builder.push(" OFFSET 0) AS e ORDER BY e.created_at DESC, e.seq DESC LIMIT ");
                builder.push(limit);
            }
            (true, None) => builder.push(" OFFSET 0) AS e"),
            (false, Some(limit)) => {
                builder.push(" ORDER BY created_at DESC, seq DESC LIMIT ");
                builder.push(limit);
            }
            (false, None) => {}
        }
    }
}

/// Compiles one page of `query` for the account `account_row`, fetching at most `fetch_limit`
/// rows after `after`. `client` (inside the read's transaction) is asked for term frequencies.
pub(crate) async fn compile_page_query(
    client: &Client,
    account_row: i64,
    query: &Query,
    after: Option<CursorPosition>,
    fetch_limit: u32,
) -> Result<CompiledQuery, StoreError> {
    // All positive text terms become one tsquery, planned by the rarest token among them.
    let text = TextTerms::of(query);
    let positive_plan = if text.positive.is_empty() {
        None
    } else {
        Some(
            choose_text_plan(
                client,
                account_row,
                &tsquery_text(&text.positive),
                fetch_limit,
            )
            .await?,
        )
    };
    let compiled = logbook_store_sql::compile_page_query(
        &PostgresDialect { positive_plan },
        &PageRequest {
            account_row,
            query,
            after,
            fetch_limit,
        },
    );
    let has_selective_condition = positive_plan == Some(TextPlan::IndexFirst)
        || logbook_store_sql::page_query::has_selective_condition(query);
    Ok(CompiledQuery {
        sql: compiled.sql,
        parameters: compiled.parameters,
        walks_newest_first: !has_selective_condition,
    })
}

/// Compiles the timeline of `query` for the account `account_row` (see
/// `logbook_store_sql::compile_bucket_count_query`). A positive message term is looked up through
/// GIN first: a count needs every match, so the walk-and-check plan of a common term's page, which
/// stops after one page, would read the whole account here.
///
/// The plan is left to PostgreSQL: once autovacuum has marked an account's pages all-visible (it
/// does so for insert-only tables), the whole log's count is an index-only scan of
/// `(account_row, created_at, seq)`; before that, any plan reads the account's heap pages, and
/// pinning a walk (`PIN_NEWEST_FIRST_WALK`) only trades a bitmap scan for an index scan.
pub(crate) fn compile_bucket_count_query(
    account_row: i64,
    query: &Query,
    bucket: TimeBucket,
) -> CompiledQuery {
    let text = TextTerms::of(query);
    let compiled = logbook_store_sql::compile_bucket_count_query(
        &PostgresDialect {
            positive_plan: (!text.positive.is_empty()).then_some(TextPlan::IndexFirst),
        },
        &BucketCountRequest {
            account_row,
            query,
            bucket,
        },
    );
    CompiledQuery {
        sql: compiled.sql,
        parameters: compiled.parameters,
        walks_newest_first: false,
    }
}

/// Decides from the account's newest `RECENT_SAMPLE` events (an ordered walk of its newest-first
/// index, so it costs the same for every term): when the term is frequent enough among them that a
/// walk of `WALK_ROWS_PER_PAGE` rows would fill the page, walking and checking each row finds the
/// page at once; otherwise the term is rare in this account and
/// the GIN lookup finds its few matches without reading the account. Counting matches through GIN
/// instead would read a common word's whole posting list, across every account.
async fn choose_text_plan(
    client: &Client,
    account_row: i64,
    expression: &str,
    fetch_limit: u32,
) -> Result<TextPlan, StoreError> {
    let statement = client
        .prepare_cached(
            "SELECT count(*) FROM (SELECT message_tokens FROM events WHERE account_row = $1 \
             ORDER BY created_at DESC, seq DESC LIMIT $2) AS recent \
             WHERE ts_match_vq(recent.message_tokens, $3::text::tsquery)",
        )
        .await
        .map_err(database_error("preparing the term frequency sample"))?;
    // The sample is pinned to the ordered walk; the settings are restored before the page query,
    // whose GIN lookup needs bitmap scans. All three go out together.
    let parameters: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
        [&account_row, &RECENT_SAMPLE, &expression];
    let (_, sample, _) = futures::try_join!(
        client.batch_execute(PIN_NEWEST_FIRST_WALK),
        client.query_one(&statement, &parameters),
        client.batch_execute(UNPIN_NEWEST_FIRST_WALK),
    )
    .map_err(database_error("sampling a term frequency"))?;
    let matches: i64 = sample.get(0);
    // matches / RECENT_SAMPLE >= fetch_limit / WALK_ROWS_PER_PAGE, in integers.
    Ok(
        if matches * WALK_ROWS_PER_PAGE >= i64::from(fetch_limit) * RECENT_SAMPLE {
            TextPlan::CheckEachRow
        } else {
            TextPlan::IndexFirst
        },
    )
}
