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
use ipnet::IpNet;
use logbook_core::StoreError;
use logbook_core::cursor::CursorPosition;
use logbook_core::query::{
    Clause, Condition, EventFlag, Query, TextPattern, TextSearch, text_tokens,
};

use crate::encoding::{SqlValue, ip_bytes, prefix_upper_bound, tsquery_text, unix_micros_of};
use crate::errors::database_error;
use crate::writer::outcome_code;

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
pub(crate) const EVENT_COLUMNS: &str = "seq, created_at, body, new_ip, new_network";

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

struct SqlBuilder {
    sql: String,
    parameters: Vec<SqlValue>,
}

impl SqlBuilder {
    /// Binds `value` and returns its placeholder.
    fn bind(&mut self, value: SqlValue) -> String {
        self.parameters.push(value);
        format!("${}", self.parameters.len())
    }
}

/// How a positive full-text condition finds its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextPlan {
    IndexFirst,
    CheckEachRow,
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
    let positive_phrases: Vec<Vec<String>> = query
        .clauses
        .iter()
        .filter(|clause| !clause.negated)
        .filter_map(|clause| match &clause.condition {
            Condition::Text(search) => Some(search_tokens(search)),
            _ => None,
        })
        .collect();
    let text_plan = if positive_phrases.is_empty() || positive_phrases.iter().any(Vec::is_empty) {
        None
    } else {
        Some(
            choose_text_plan(
                client,
                account_row,
                &tsquery_text(&positive_phrases),
                fetch_limit,
            )
            .await?,
        )
    };

    let mut builder = SqlBuilder {
        sql: String::with_capacity(256),
        parameters: Vec::new(),
    };
    let account_placeholder = builder.bind(SqlValue::Integer(account_row));
    if text_plan == Some(TextPlan::IndexFirst) {
        // The matching seqs come first (GIN, through `logbook_message_matches`); each is looked up
        // by primary key and checked against the other conditions. OFFSET 0 keeps the lookup a
        // parameterized subquery, so the plan cannot turn into a walk of the whole account.
        let placeholder = builder.bind(SqlValue::Text(tsquery_text(&positive_phrases)));
        builder.sql.push_str(&format!(
            "SELECT e.seq, e.created_at, e.body, e.new_ip, e.new_network FROM logbook_message_matches({placeholder}::text::tsquery, {MAX_TEXT_MATCHES}) AS m \
             CROSS JOIN LATERAL (SELECT {EVENT_COLUMNS} FROM events WHERE account_row = {account_placeholder} AND seq = m.seq"
        ));
    } else {
        builder.sql.push_str("SELECT ");
        builder.sql.push_str(EVENT_COLUMNS);
        builder.sql.push_str(" FROM events WHERE account_row = ");
        builder.sql.push_str(&account_placeholder);
        if !positive_phrases.is_empty() {
            match text_plan {
                Some(_) => {
                    let placeholder = builder.bind(SqlValue::Text(tsquery_text(&positive_phrases)));
                    builder.sql.push_str(&format!(
                        " AND ts_match_vq(message_tokens, {placeholder}::text::tsquery)"
                    ));
                }
                // A term without a single letter or digit cannot match any message.
                None => builder.sql.push_str(" AND false"),
            }
        }
    }

    for clause in &query.clauses {
        if let Condition::Text(search) = &clause.condition {
            if clause.negated {
                let tokens = search_tokens(search);
                if tokens.is_empty() {
                    // The negation of a term that matches nothing keeps every event.
                    continue;
                }
                let placeholder =
                    builder.bind(SqlValue::Text(tsquery_text(std::slice::from_ref(&tokens))));
                builder.sql.push_str(&format!(
                    " AND NOT ts_match_vq(message_tokens, {placeholder}::text::tsquery)"
                ));
            }
            continue;
        }
        builder.sql.push_str(" AND ");
        push_clause(&mut builder, clause, &account_placeholder);
    }

    if let Some(position) = after {
        let created_at = builder.bind(SqlValue::Integer(position.created_at_micros));
        let seq = builder.bind(SqlValue::Integer(
            i64::try_from(position.seq).unwrap_or(i64::MAX),
        ));
        // A row comparison is one index range in PostgreSQL: the scan starts at the cursor.
        builder
            .sql
            .push_str(&format!(" AND (created_at, seq) < ({created_at}, {seq})"));
    }
    let limit = builder.bind(SqlValue::Integer(i64::from(fetch_limit)));
    if text_plan == Some(TextPlan::IndexFirst) {
        builder
            .sql
            .push_str(" OFFSET 0) AS e ORDER BY e.created_at DESC, e.seq DESC LIMIT ");
    } else {
        builder
            .sql
            .push_str(" ORDER BY created_at DESC, seq DESC LIMIT ");
    }
    builder.sql.push_str(&limit);
    let has_selective_condition = text_plan == Some(TextPlan::IndexFirst)
        || query.clauses.iter().any(|clause| {
            !clause.negated
                && matches!(
                    clause.condition,
                    Condition::Actor(_)
                        | Condition::Action(_)
                        | Condition::Ip(_)
                        | Condition::Target(_)
                )
        });
    Ok(CompiledQuery {
        sql: builder.sql,
        parameters: builder.parameters,
        walks_newest_first: !has_selective_condition,
    })
}

fn search_tokens(search: &TextSearch) -> Vec<String> {
    match search {
        TextSearch::Word(text) | TextSearch::Phrase(text) => text_tokens(text),
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

fn push_clause(builder: &mut SqlBuilder, clause: &Clause, account_placeholder: &str) {
    let condition = condition_sql(builder, &clause.condition, account_placeholder);
    if clause.negated {
        // A negated condition keeps events where the field is absent (NULL), which plain NOT would
        // drop: `-actor:alice` includes events without an actor.
        builder
            .sql
            .push_str(&format!("(({condition}) IS NOT TRUE)"));
    } else {
        builder.sql.push_str(&format!("({condition})"));
    }
}

fn condition_sql(
    builder: &mut SqlBuilder,
    condition: &Condition,
    account_placeholder: &str,
) -> String {
    match condition {
        Condition::Actor(patterns) => patterns_sql(builder, "actor_id", patterns),
        Condition::Action(patterns) => patterns_sql(builder, "action", patterns),
        Condition::Target(patterns) => {
            let target_condition = patterns_sql(builder, "target_id", patterns);
            format!(
                "seq IN (SELECT seq FROM event_targets WHERE account_row = {account_placeholder} AND ({target_condition}))"
            )
        }
        Condition::Ip(networks) => alternatives(
            networks
                .iter()
                .map(|network| ip_network_sql(builder, network)),
        ),
        Condition::Outcome(outcomes) => {
            let placeholders: Vec<String> = outcomes
                .iter()
                .map(|outcome| builder.bind(SqlValue::Integer(outcome_code(*outcome))))
                .collect();
            if placeholders.is_empty() {
                "false".to_owned()
            } else {
                format!("outcome IN ({})", placeholders.join(", "))
            }
        }
        Condition::Created(range) => {
            let mut parts = Vec::new();
            if let Some(start) = range.start_inclusive {
                parts.push(format!(
                    "created_at >= {}",
                    builder.bind(SqlValue::Integer(unix_micros_of(start)))
                ));
            }
            if let Some(end) = range.end_exclusive {
                parts.push(format!(
                    "created_at < {}",
                    builder.bind(SqlValue::Integer(unix_micros_of(end)))
                ));
            }
            if parts.is_empty() {
                "true".to_owned()
            } else {
                parts.join(" AND ")
            }
        }
        Condition::Is(flags) => alternatives(flags.iter().map(|flag| match flag {
            EventFlag::NewIp => "new_ip".to_owned(),
            EventFlag::NewNetwork => "new_network".to_owned(),
        })),
        // Any address in a block of the account's known networks of these names (migration 0005).
        Condition::KnownNetwork(names) => {
            let names: Vec<String> = names
                .iter()
                .map(|name| builder.bind(SqlValue::Text(name.as_str().to_owned())))
                .collect();
            if names.is_empty() {
                "false".to_owned()
            } else {
                format!(
                    "EXISTS (SELECT 1 FROM known_network_blocks b WHERE b.account_row = {account_placeholder} \
                     AND b.name IN ({}) AND ip >= b.first_ip AND ip <= b.last_ip)",
                    names.join(", ")
                )
            }
        }
        // Text is compiled separately (it needs the term frequencies).
        Condition::Text(_) => "true".to_owned(),
    }
}

/// Exact values become one `IN` list (an index lookup per value); prefixes become index ranges.
fn patterns_sql(builder: &mut SqlBuilder, column: &str, patterns: &[TextPattern]) -> String {
    let mut parts = Vec::new();
    let exact: Vec<String> = patterns
        .iter()
        .filter_map(|pattern| match pattern {
            TextPattern::Exact(value) => Some(builder.bind(SqlValue::Text(value.clone()))),
            TextPattern::Prefix(_) => None,
        })
        .collect();
    match exact.len() {
        0 => {}
        1 => parts.push(format!("{column} = {}", exact[0])),
        _ => parts.push(format!("{column} IN ({})", exact.join(", "))),
    }
    for pattern in patterns {
        if let TextPattern::Prefix(prefix) = pattern {
            let lower = builder.bind(SqlValue::Text(prefix.clone()));
            match prefix_upper_bound(prefix) {
                Some(upper) => {
                    let upper = builder.bind(SqlValue::Text(upper));
                    parts.push(format!("({column} >= {lower} AND {column} < {upper})"));
                }
                None => parts.push(format!("{column} >= {lower}")),
            }
        }
    }
    alternatives(parts.into_iter())
}

fn ip_network_sql(builder: &mut SqlBuilder, network: &IpNet) -> String {
    let first = ip_bytes(network.network());
    let last = ip_bytes(network.broadcast());
    if first == last {
        format!("ip = {}", builder.bind(SqlValue::Bytes(first.to_vec())))
    } else {
        let first = builder.bind(SqlValue::Bytes(first.to_vec()));
        let last = builder.bind(SqlValue::Bytes(last.to_vec()));
        format!("(ip >= {first} AND ip <= {last})")
    }
}

fn alternatives(parts: impl Iterator<Item = String>) -> String {
    let parts: Vec<String> = parts.collect();
    match parts.len() {
        0 => "false".to_owned(),
        1 => parts.into_iter().next().expect("one part"),
        _ => format!("({})", parts.join(" OR ")),
    }
}
