//! Compiles a `Query` into ONE SQL statement with bound parameters (user values are never part of
//! the SQL text), newest first with keyset pagination, on indexes that all lead with the account.
//!
//! Free text goes through FTS5, whose terms are per account (`encoding::full_text_document`).
//! Every term is quoted (`"tok"`, a phrase `"a b c"`), so user text can never be FTS syntax. The
//! plan is chosen from how many of the account's documents the rarest phrase is in: a rare term
//! looks the index up first (`event_row IN (SELECT rowid ... MATCH ?)`), a common term walks the
//! account's newest-first index and checks each row in Rust (`logbook_message_has(body, ?)`),
//! which stops after one page.

use ipnet::IpNet;
use logbook_core::StoreError;
use logbook_core::cursor::CursorPosition;
use logbook_core::event::Outcome;
use logbook_core::query::{Clause, Condition, EventFlag, Query, TextPattern, TextSearch};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension};

use logbook_core::query::text_tokens;

use crate::encoding::{
    SEQ_BITS, event_row_of, full_text_phrase, ip_bytes, prefix_upper_bound, unix_micros_of,
};
use crate::errors::database_error;

/// A token in at least this many documents is "common": walking the account's newest-first index
/// finds a page of matches sooner than collecting every match from the full-text index.
pub(crate) const COMMON_TERM_DOCUMENTS: i64 = 2_000;

/// The columns every event read selects, in the order `row_to_event` reads them.
pub(crate) const EVENT_COLUMNS: &str =
    "event_row & 1099511627775, created_at, body, new_ip, new_network";

/// The SQL function that checks an event's message in Rust: `logbook_message_has(body, phrases)`
/// is 1 when the message (read from the JSON `body`) holds every phrase of `phrases`, one phrase
/// per line, its tokens separated by spaces, with the very tokenization of
/// `logbook_core::query::text_tokens`. The common-term plan calls it on each row it walks, which
/// costs microseconds where a correlated FTS5 lookup per row costs a millisecond.
pub(crate) const MESSAGE_HAS_FUNCTION: &str = "logbook_message_has";

/// Registers `MESSAGE_HAS_FUNCTION` on a reader connection.
pub(crate) fn register_functions(connection: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    connection.create_scalar_function(
        MESSAGE_HAS_FUNCTION,
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |context| {
            // The phrases are the same for every row of a statement: parse them once.
            let phrases = context.get_or_create_aux(
                1,
                |value| -> Result<Vec<Vec<String>>, rusqlite::Error> {
                    let text = value
                        .as_str()
                        .map_err(|error| rusqlite::Error::UserFunctionError(error.into()))?;
                    Ok(text
                        .split('\n')
                        .map(|phrase| phrase.split(' ').map(str::to_owned).collect())
                        .collect())
                },
            )?;
            let body = context
                .get_raw(0)
                .as_str()
                .map_err(|error| rusqlite::Error::UserFunctionError(error.into()))?;
            Ok(message_has_phrases(body, &phrases))
        },
    )
}

/// Whether the `message` of the event JSON `body` holds every phrase (consecutive tokens).
fn message_has_phrases(body: &str, phrases: &[Vec<String>]) -> bool {
    #[derive(serde::Deserialize)]
    struct MessageOnly<'body> {
        #[serde(borrow, default)]
        message: std::borrow::Cow<'body, str>,
    }
    let Ok(event) = serde_json::from_str::<MessageOnly<'_>>(body) else {
        return false;
    };
    let message_tokens = text_tokens(&event.message);
    phrases.iter().all(|phrase| {
        !phrase.is_empty()
            && message_tokens
                .windows(phrase.len())
                .any(|window| window == phrase.as_slice())
    })
}

#[derive(Debug)]
pub(crate) struct CompiledQuery {
    pub sql: String,
    pub parameters: Vec<Value>,
}

struct SqlBuilder {
    sql: String,
    parameters: Vec<Value>,
}

impl SqlBuilder {
    /// Binds `value` and returns its placeholder.
    fn bind(&mut self, value: Value) -> String {
        self.parameters.push(value);
        format!("?{}", self.parameters.len())
    }
}

/// How a full-text condition finds its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextPlan {
    IndexFirst,
    CheckEachRow,
}

/// Compiles one page of `query` for the account `account_row`, fetching at most `fetch_limit`
/// rows after `after`. `connection` is read for term frequencies.
pub(crate) fn compile_page_query(
    connection: &Connection,
    account_row: i64,
    query: &Query,
    after: Option<CursorPosition>,
    fetch_limit: u32,
) -> Result<CompiledQuery, StoreError> {
    let mut builder = SqlBuilder {
        sql: String::with_capacity(256),
        parameters: Vec::new(),
    };
    let account_placeholder = builder.bind(Value::Integer(account_row));
    builder.sql.push_str("SELECT ");
    builder.sql.push_str(EVENT_COLUMNS);
    builder.sql.push_str(" FROM events WHERE account_row = ");
    builder.sql.push_str(&account_placeholder);

    // All positive text terms become one MATCH expression (FTS5 ANDs its phrases), planned by the
    // rarest token among them.
    let positive_phrases: Vec<Vec<String>> = query
        .clauses
        .iter()
        .filter(|clause| !clause.negated)
        .filter_map(|clause| match &clause.condition {
            Condition::Text(search) => Some(search_tokens(search)),
            _ => None,
        })
        .collect();
    if !positive_phrases.is_empty() {
        builder.sql.push_str(" AND ");
        if positive_phrases.iter().any(Vec::is_empty) {
            // A term without a single letter or digit cannot match any message.
            builder.sql.push('0');
        } else {
            let plan = choose_text_plan(connection, account_row, positive_phrases.iter())?;
            push_text_condition(&mut builder, plan, account_row, &positive_phrases, false);
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
                builder.sql.push_str(" AND ");
                let phrases = std::slice::from_ref(&tokens);
                let plan = choose_text_plan(connection, account_row, phrases.iter())?;
                push_text_condition(&mut builder, plan, account_row, phrases, true);
            }
            continue;
        }
        builder.sql.push_str(" AND ");
        push_clause(&mut builder, clause, &account_placeholder);
    }

    if let Some(position) = after {
        let created_at = builder.bind(Value::Integer(position.created_at_micros));
        let event_row = builder.bind(Value::Integer(event_row_of(
            account_row,
            position.seq.min((1 << SEQ_BITS) - 1),
        )));
        // Written as a range on `created_at` plus a filter on ties, so the index range starts at
        // the cursor instead of SQLite evaluating a row-value comparison on every row. Within the
        // account, `event_row < cursor's event_row` is `seq < cursor's seq`.
        builder.sql.push_str(&format!(
            " AND created_at <= {created_at} AND (created_at < {created_at} OR event_row < {event_row})"
        ));
    }
    let limit = builder.bind(Value::Integer(i64::from(fetch_limit)));
    // Within an account `event_row` grows with `seq` (the single writer inserts in seq order), and
    // every index ends with `event_row`, so this order needs no sort on the account's indexes.
    builder
        .sql
        .push_str(" ORDER BY created_at DESC, event_row DESC LIMIT ");
    builder.sql.push_str(&limit);
    Ok(CompiledQuery {
        sql: builder.sql,
        parameters: builder.parameters,
    })
}

fn search_tokens(search: &TextSearch) -> Vec<String> {
    match search {
        TextSearch::Word(text) | TextSearch::Phrase(text) => text_tokens(text),
    }
}

/// `"a b" "c"`: each group of tokens is one quoted FTS5 phrase of the account's tagged tokens (a
/// word of several tokens, such as `web-1`, is the phrase of its tokens), and FTS5 requires all
/// phrases. User text is never FTS5 syntax.
fn match_expression(account_row: i64, phrases: &[Vec<String>]) -> String {
    let mut expression = String::new();
    for tokens in phrases {
        if !expression.is_empty() {
            expression.push(' ');
        }
        expression.push_str(&full_text_phrase(account_row, tokens));
    }
    expression
}

/// Counts the account's documents of the rarest phrase, but never more than
/// `COMMON_TERM_DOCUMENTS`, so deciding costs at most a few thousand index entries however common
/// a word is. Doclists are per account, so a word common elsewhere costs nothing here.
fn choose_text_plan<'phrase>(
    connection: &Connection,
    account_row: i64,
    phrases: impl Iterator<Item = &'phrase Vec<String>>,
) -> Result<TextPlan, StoreError> {
    let mut statement = connection
        .prepare_cached("SELECT count(*) FROM (SELECT rowid FROM events_fts WHERE events_fts MATCH ?1 LIMIT ?2)")
        .map_err(database_error("preparing the term frequency lookup"))?;
    for phrase in phrases {
        let documents: i64 = statement
            .query_row(
                rusqlite::params![full_text_phrase(account_row, phrase), COMMON_TERM_DOCUMENTS],
                |row| row.get(0),
            )
            .optional()
            .map_err(database_error("reading a term frequency"))?
            .unwrap_or(0);
        if documents < COMMON_TERM_DOCUMENTS {
            return Ok(TextPlan::IndexFirst);
        }
    }
    Ok(TextPlan::CheckEachRow)
}

fn push_text_condition(
    builder: &mut SqlBuilder,
    plan: TextPlan,
    account_row: i64,
    phrases: &[Vec<String>],
    negated: bool,
) {
    let sql = match plan {
        TextPlan::IndexFirst => {
            let placeholder = builder.bind(Value::Text(match_expression(account_row, phrases)));
            let not = if negated { "NOT " } else { "" };
            format!(
                "event_row {not}IN (SELECT rowid FROM events_fts WHERE events_fts MATCH {placeholder})"
            )
        }
        TextPlan::CheckEachRow => {
            let encoded = phrases
                .iter()
                .map(|tokens| tokens.join(" "))
                .collect::<Vec<_>>()
                .join("\n");
            let placeholder = builder.bind(Value::Text(encoded));
            let not = if negated { "NOT " } else { "" };
            format!("{not}{MESSAGE_HAS_FUNCTION}(body, {placeholder})")
        }
    };
    builder.sql.push_str(&sql);
}

fn push_clause(builder: &mut SqlBuilder, clause: &Clause, account_placeholder: &str) {
    let condition = condition_sql(builder, &clause.condition, account_placeholder);
    if clause.negated {
        // A negated condition keeps events where the field is absent (NULL), which plain NOT would
        // drop: `-actor:alice` includes events without an actor.
        builder.sql.push_str(&format!("(({condition}) IS NOT 1)"));
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
                "event_row IN (SELECT event_row FROM event_targets WHERE account_row = {account_placeholder} AND ({target_condition}))"
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
                .map(|outcome| builder.bind(Value::Integer(outcome_code(*outcome))))
                .collect();
            if placeholders.is_empty() {
                "0".to_owned()
            } else {
                format!("outcome IN ({})", placeholders.join(", "))
            }
        }
        Condition::Created(range) => {
            let mut parts = Vec::new();
            if let Some(start) = range.start_inclusive {
                parts.push(format!(
                    "created_at >= {}",
                    builder.bind(Value::Integer(unix_micros_of(start)))
                ));
            }
            if let Some(end) = range.end_exclusive {
                parts.push(format!(
                    "created_at < {}",
                    builder.bind(Value::Integer(unix_micros_of(end)))
                ));
            }
            if parts.is_empty() {
                "1".to_owned()
            } else {
                parts.join(" AND ")
            }
        }
        Condition::Is(flags) => alternatives(flags.iter().map(|flag| match flag {
            EventFlag::NewIp => "new_ip = 1".to_owned(),
            EventFlag::NewNetwork => "new_network = 1".to_owned(),
        })),
        // Any address in a block of the account's known networks of these names (migration 0005).
        Condition::KnownNetwork(names) => {
            let names: Vec<String> = names
                .iter()
                .map(|name| builder.bind(Value::Text(name.as_str().to_owned())))
                .collect();
            if names.is_empty() {
                "0".to_owned()
            } else {
                format!(
                    "EXISTS (SELECT 1 FROM known_network_blocks b WHERE b.account_row = {account_placeholder} \
                     AND b.name IN ({}) AND ip >= b.first_ip AND ip <= b.last_ip)",
                    names.join(", ")
                )
            }
        }
        // Text is compiled separately (it needs the term frequencies).
        Condition::Text(_) => "1".to_owned(),
    }
}

/// Exact values become one `IN` list (an index lookup per value); prefixes become index ranges.
fn patterns_sql(builder: &mut SqlBuilder, column: &str, patterns: &[TextPattern]) -> String {
    let mut parts = Vec::new();
    let exact: Vec<String> = patterns
        .iter()
        .filter_map(|pattern| match pattern {
            TextPattern::Exact(value) => Some(builder.bind(Value::Text(value.clone()))),
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
            let lower = builder.bind(Value::Text(prefix.clone()));
            match prefix_upper_bound(prefix) {
                Some(upper) => {
                    let upper = builder.bind(Value::Text(upper));
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
        format!("ip = {}", builder.bind(Value::Blob(first.to_vec())))
    } else {
        let first = builder.bind(Value::Blob(first.to_vec()));
        let last = builder.bind(Value::Blob(last.to_vec()));
        format!("(ip >= {first} AND ip <= {last})")
    }
}

fn alternatives(parts: impl Iterator<Item = String>) -> String {
    let parts: Vec<String> = parts.collect();
    match parts.len() {
        0 => "0".to_owned(),
        1 => parts.into_iter().next().expect("one part"),
        _ => parts.join(" OR "),
    }
}

pub(crate) fn outcome_code(outcome: Outcome) -> i64 {
    match outcome {
        Outcome::Success => 0,
        Outcome::Failure => 1,
    }
}
