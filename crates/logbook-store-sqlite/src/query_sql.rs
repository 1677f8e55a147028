//! Compiles a `Query` into ONE SQL statement with bound parameters (user values are never part of
//! the SQL text), newest first with keyset pagination, on indexes that all lead with the account.
//!
//! Free text goes through FTS5, whose terms are per account (`encoding::full_text_document`).
//! Every term is quoted (`"tok"`, a phrase `"a b c"`), so user text can never be FTS syntax. The
//! plan is chosen from how many of the account's documents the rarest phrase is in: a rare term
//! looks the index up first (`event_row IN (SELECT rowid ... MATCH ?)`), a common term walks the
//! account's newest-first index and checks each row in Rust (`logbook_message_has(body, ?)`),
//! which stops after one page. A place (`country:`, `asn:`, `city:`) is planned the same way on
//! its place terms (`events_place_terms` for events located before migration 0020, tokens of
//! `events_fts` since: three per event, then its location's one since migration 0021, found
//! through `account_locations`): a rare one is looked up there first, a common one is tested on
//! the column of each row the newest-first walk reads. A target (`target:`) is always looked up:
//! its tokens in `events_fts` since migration 0025, its rows of `event_targets` before. A positive
//! action (`action:`), actor (`actor:`) or address (`ip:`, a block being FTS5 prefix queries) is
//! looked up in its tokens (since migrations 0026, 0028 and 0029) and its rows of
//! `event_action_rows`, `event_actor_rows` or `event_ip_rows` (before) when it is rare, or when
//! nothing else leads the page and it is the rarest of them; a common one beside a clause
//! that leads, and a negated one, is tested on the column of each row read
//! (`plan_field_lookups`). A page planned index first is read from windows of the account's
//! newest arrivals when they provably hold it (`arrival_window`).

use std::collections::{HashMap, HashSet};

use logbook_core::StoreError;
use logbook_core::cursor::CursorPosition;
use logbook_core::query::{Condition, Query, TextPattern, text_tokens};
use logbook_core::timeline::TimeBucket;
use logbook_store_sql::action_terms::action_match_expression;
use logbook_store_sql::actor_terms::actor_match_expression;
use logbook_store_sql::ip_terms::ip_match_expression;
use logbook_store_sql::place_terms::{any_full_text_place_token, any_term, condition_terms};
use logbook_store_sql::target_terms::target_match_expression;
use logbook_store_sql::{
    BucketCountRequest, CompiledQuery, Dialect, PageRequest, SelectedColumns, SqlBuilder, SqlValue,
    TextTerms, TokenizedField, tokenized_field_values_condition,
};
use rusqlite::{Connection, OptionalExtension, params};

use crate::encoding::{SEQ_BITS, event_row_of, full_text_phrase};
use crate::errors::database_error;

/// A token in at least this many documents is "common": walking the account's newest-first index
/// finds a page of matches sooner than collecting every match from the full-text index.
pub(crate) const COMMON_TERM_DOCUMENTS: i64 = 2_000;

/// The events a page is planned for: the page the Activity Logs page and the API read by default.
const ROWS_OF_A_PAGE: i64 = 50;

/// The columns every event read selects, in the order `row_to_event` reads them.
/// The location object is the row's own (events located before migration 0020, or by the
/// backfill) or its interned one; an unlocated event (most of a log without IP databases) reads
/// no other table.
pub(crate) const EVENT_COLUMNS: &str = "event_row & 1099511627775, created_at, body, new_ip, new_network, \
     CASE WHEN location_row IS NULL THEN location \
     ELSE (SELECT json FROM locations WHERE locations.location_row = events.location_row) END, \
     new_country";

/// The SQL function that checks an event's message in Rust: `logbook_message_has(body, phrases)`
/// is 1 when the message (read from the JSON `body`) holds every phrase of `phrases`, one phrase
/// per line, its tokens separated by spaces, with the very tokenization of
/// `logbook_core::query::text_tokens`. The common-term plan calls it on each row it walks, which
/// costs microseconds where a correlated FTS5 lookup per row costs a millisecond.
pub(crate) const MESSAGE_HAS_FUNCTION: &str = "logbook_message_has";

/// The SQL function that confirms a candidate the full-text index found:
/// `logbook_index_match_holds(body, phrases)` is `logbook_message_has(body, phrases)`, except
/// that it answers 1 at once where the index cannot have been wrong. FTS5 folds case by its own
/// tables, which merge a few tokens `text_tokens` keeps apart (`ſtop` and `stop`, the Kelvin sign
/// and `k`), always a character beyond ASCII turned into an ASCII one; when the phrases and the
/// whole stored body are ASCII, with no `\u` escape that could spell such a character, every token
/// was indexed exactly as `text_tokens` made it, so the index's match is the exact one and the
/// JSON need not be read (issue 14: this check had made a rare word's query ~10 % slower).
pub(crate) const INDEX_MATCH_HOLDS_FUNCTION: &str = "logbook_index_match_holds";

/// A statement's phrases, parsed once per statement, and whether every one of them is ASCII.
struct CheckedPhrases {
    phrases: Vec<Vec<String>>,
    all_ascii: bool,
}

/// Registers `MESSAGE_HAS_FUNCTION` and `INDEX_MATCH_HOLDS_FUNCTION` on a reader connection.
pub(crate) fn register_functions(connection: &Connection) -> rusqlite::Result<()> {
    register_phrase_check(connection, MESSAGE_HAS_FUNCTION, false)?;
    register_phrase_check(connection, INDEX_MATCH_HOLDS_FUNCTION, true)
}

fn register_phrase_check(
    connection: &Connection,
    name: &str,
    trust_the_index_on_ascii: bool,
) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    connection.create_scalar_function(
        name,
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        move |context| {
            // The phrases are the same for every row of a statement: parse them once.
            let checked = context.get_or_create_aux(
                1,
                |value| -> Result<CheckedPhrases, rusqlite::Error> {
                    let text = value
                        .as_str()
                        .map_err(|error| rusqlite::Error::UserFunctionError(error.into()))?;
                    Ok(CheckedPhrases {
                        phrases: text
                            .split('\n')
                            .map(|phrase| phrase.split(' ').map(str::to_owned).collect())
                            .collect(),
                        all_ascii: text.is_ascii(),
                    })
                },
            )?;
            let body = context
                .get_raw(0)
                .as_str()
                .map_err(|error| rusqlite::Error::UserFunctionError(error.into()))?;
            if trust_the_index_on_ascii && checked.all_ascii && is_plain_ascii_json(body) {
                return Ok(true);
            }
            Ok(message_has_phrases(body, &checked.phrases))
        },
    )
}

/// Whether JSON text is ASCII and spells no character beyond it through a `\u` escape.
fn is_plain_ascii_json(body: &str) -> bool {
    body.is_ascii() && !body.as_bytes().windows(2).any(|pair| pair == b"\\u")
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

/// How a full-text condition finds its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextPlan {
    IndexFirst,
    CheckEachRow,
}

/// SQLite's side of the shared walk: `?N` placeholders, 0/1 booleans, `event_row` as the key
/// (within an account it grows with `seq`, and every index ends with it), and the message terms
/// through FTS5 or `logbook_message_has`, as planned for this query.
struct SqliteDialect {
    account_row: i64,
    positive_plan: Option<TextPlan>,
    negated_plans: Vec<TextPlan>,
    /// How each positive place clause finds its rows, by its FTS5 expression
    /// (`place_terms::any_term`); a clause not looked up here tests each row.
    place_lookups: HashMap<String, PlaceLookup>,
    /// When set, only events at or above this `event_row` (the account's newest arrivals,
    /// `arrival_window`) are read, and the positive full-text lookups ask FTS5 for those rows
    /// only.
    lowest_event_row: Option<i64>,
    /// Per tokenized field (actions since migration 0026, actors since 0028), the account's last
    /// event whose value is a row of the field's table of earlier events (`event_action_rows`,
    /// `event_actor_rows`), if it has any: a window of arrivals above it reads no such row.
    last_event_with_field_rows: HashMap<TokenizedField, i64>,
    /// The positive `action:` and `actor:` clauses looked up in their tokens and rows, by their
    /// FTS5 expression (`field_match_expression`); any other is tested on the column of each row
    /// read (`plan_field_lookups`).
    field_lookups: HashSet<String>,
}

/// How one positive `country:`, `asn:` or `city:` clause finds its rows, decided with the
/// database at hand: its plan, and the `events_fts` expression naming the tokens of both
/// spellings (migration 0020's three terms, and migration 0021's token of each of the account's
/// locations holding the value).
struct PlaceLookup {
    plan: TextPlan,
    full_text_expression: String,
}

impl Dialect for SqliteDialect {
    fn placeholder_prefix(&self) -> char {
        '?'
    }

    fn boolean(&self, value: bool) -> &'static str {
        if value { "1" } else { "0" }
    }

    fn event_key_column(&self) -> &'static str {
        "event_row"
    }

    fn flag_is_set(&self, column: &str) -> String {
        format!("{column} = 1")
    }

    fn begin_select(
        &self,
        builder: &mut SqlBuilder,
        account: &str,
        positive_text: &[Vec<String>],
        columns: SelectedColumns,
    ) {
        builder.push("SELECT ");
        builder.push(match columns {
            SelectedColumns::Events => EVENT_COLUMNS,
            SelectedColumns::CreatedAt => "created_at",
        });
        builder.push(" FROM events WHERE account_row = ");
        builder.push(account);
        let lowest_rowid = self.lowest_event_row.map(|lowest_event_row| {
            let lowest = builder.bind(SqlValue::Integer(lowest_event_row));
            builder.push(&format!(" AND event_row >= {lowest}"));
            format!(" AND rowid >= {lowest}")
        });
        let lowest_rowid = lowest_rowid.as_deref().unwrap_or("");
        // All positive text terms become one MATCH expression (FTS5 ANDs its phrases), planned by
        // the rarest token among them.
        if let Some(plan) = self.positive_plan {
            builder.push(" AND ");
            let condition = text_condition(
                builder,
                plan,
                self.account_row,
                positive_text,
                false,
                lowest_rowid,
            );
            builder.push(&condition);
        }
    }

    fn negated_text_condition(
        &self,
        builder: &mut SqlBuilder,
        index: usize,
        tokens: &[String],
    ) -> String {
        text_condition(
            builder,
            self.negated_plans[index],
            self.account_row,
            std::slice::from_ref(&tokens.to_vec()),
            true,
            "",
        )
    }

    fn place_condition(
        &self,
        builder: &mut SqlBuilder,
        place: &Condition,
        column_condition: String,
        negated: bool,
    ) -> String {
        // The event's own columns (located before migration 0020, or by the backfill) or its
        // interned location's: the same condition, its names read in `locations` inside the
        // subquery, which SQLite evaluates once per statement.
        let value_condition = format!(
            "({column_condition} OR location_row IN \
             (SELECT location_row FROM locations WHERE {column_condition}))"
        );
        let terms = condition_terms(self.account_row, place).filter(|terms| !terms.is_empty());
        let (Some(terms), false) = (terms, negated) else {
            return value_condition;
        };
        let expression = any_term(&terms);
        match self.place_lookups.get(&expression) {
            None
            | Some(PlaceLookup {
                plan: TextPlan::CheckEachRow,
                ..
            }) => value_condition,
            Some(PlaceLookup {
                plan: TextPlan::IndexFirst,
                full_text_expression,
            }) => {
                // The indexes' match is exact (migrations 0019 to 0021); the value is tested as
                // well so the condition means the same whichever way SQLite evaluates it. An
                // event's place is in one of the two indexes, by when it was located.
                let tokens = builder.bind(SqlValue::Text(full_text_expression.clone()));
                let expression = builder.bind(SqlValue::Text(expression));
                let lowest_rowid = self
                    .lowest_event_row
                    .map(|lowest_event_row| {
                        let lowest = builder.bind(SqlValue::Integer(lowest_event_row));
                        format!(" AND rowid >= {lowest}")
                    })
                    .unwrap_or_default();
                format!(
                    "(event_row IN (SELECT rowid FROM events_fts WHERE events_fts MATCH {tokens}{lowest_rowid} \
                     UNION ALL SELECT rowid FROM events_place_terms WHERE events_place_terms MATCH {expression}{lowest_rowid}) \
                     AND {value_condition})"
                )
            }
        }
    }

    fn tokenized_field_condition(
        &self,
        builder: &mut SqlBuilder,
        field: TokenizedField,
        condition: &Condition,
        column_condition: String,
        negated: bool,
    ) -> String {
        let expression = field_match_expression(self.account_row, condition);
        if negated || !self.field_lookups.contains(&expression) {
            return column_condition;
        }
        // An event's action (actor, address) is a row of `event_action_rows` (`event_actor_rows`,
        // `event_ip_rows`), stored before migration 0026 (0028, 0029), or a token of its document
        // (since), never both, so the two lists together are exact and disjoint; the column is
        // tested as well, so the condition means the same whichever way SQLite evaluates it. A window of the newest
        // arrivals gathers only its own matches, and reads the rows only when it reaches below
        // the account's last event that has one.
        let expression = builder.bind(SqlValue::Text(expression));
        let tokens_in_window = match self.lowest_event_row {
            Some(lowest_event_row) => {
                let lowest = builder.bind(SqlValue::Integer(lowest_event_row));
                format!(" AND rowid >= {lowest}")
            }
            None => String::new(),
        };
        let last_event_with_rows = self.last_event_with_field_rows.get(&field).copied();
        let rows_reached = match (last_event_with_rows, self.lowest_event_row) {
            (None, _) => false,
            (Some(last), Some(lowest)) => lowest <= last,
            (Some(_), None) => true,
        };
        let earlier_rows = if rows_reached {
            let account = builder.bind(SqlValue::Integer(self.account_row));
            let rows_in_window = match self.lowest_event_row {
                Some(lowest_event_row) => {
                    let lowest = builder.bind(SqlValue::Integer(lowest_event_row));
                    format!(" AND event_row >= {lowest}")
                }
                None => String::new(),
            };
            format!(
                "SELECT event_row FROM {} WHERE account_row = {account} \
                 AND ({column_condition}){rows_in_window} UNION ALL ",
                field_rows_table(field)
            )
        } else {
            String::new()
        };
        format!(
            "({column_condition} AND event_row IN ({earlier_rows}SELECT rowid FROM events_fts \
             WHERE events_fts MATCH {expression}{tokens_in_window}))"
        )
    }

    fn targeted_events(
        &self,
        builder: &mut SqlBuilder,
        patterns: &[TextPattern],
        target_rows: String,
    ) -> String {
        // An event's targets are rows of `event_targets` (stored before migration 0025) or tokens
        // of its document (since), never both, so the two lists together are exact and disjoint.
        // A page read from a window of the newest arrivals gathers only the window's matches.
        let expression = builder.bind(SqlValue::Text(target_match_expression(
            self.account_row,
            patterns,
        )));
        let (rows_in_window, tokens_in_window) = match self.lowest_event_row {
            Some(lowest_event_row) => {
                let lowest = builder.bind(SqlValue::Integer(lowest_event_row));
                (
                    format!(" AND event_row >= {lowest}"),
                    format!(" AND rowid >= {lowest}"),
                )
            }
            None => (String::new(), String::new()),
        };
        format!(
            "{target_rows}{rows_in_window} UNION ALL SELECT rowid FROM events_fts WHERE events_fts MATCH {expression}{tokens_in_window}"
        )
    }

    fn keyset_condition(&self, builder: &mut SqlBuilder, after: CursorPosition) -> String {
        let created_at = builder.bind(SqlValue::Integer(after.created_at_micros));
        let event_row = builder.bind(SqlValue::Integer(event_row_of(
            self.account_row,
            after.seq.min((1 << SEQ_BITS) - 1),
        )));
        // Written as a range on `created_at` plus a filter on ties, so the index range starts at
        // the cursor instead of SQLite evaluating a row-value comparison on every row. Within the
        // account, `event_row < cursor's event_row` is `seq < cursor's seq`.
        format!(
            "created_at <= {created_at} AND (created_at < {created_at} OR event_row < {event_row})"
        )
    }

    fn end_select(&self, builder: &mut SqlBuilder, limit: Option<&str>) {
        // Every index ends with `event_row`, so this order needs no sort on the account's indexes.
        if let Some(limit) = limit {
            builder.push(" ORDER BY created_at DESC, event_row DESC LIMIT ");
            builder.push(limit);
        }
    }
}

/// Compiles one page of `query` for the account `account_row`, fetching at most `fetch_limit`
/// rows after `after`, over the whole account. `connection` is read for term frequencies.
pub(crate) fn compile_page_query(
    connection: &Connection,
    account_row: i64,
    query: &Query,
    after: Option<CursorPosition>,
    fetch_limit: u32,
) -> Result<CompiledQuery, StoreError> {
    Ok(plan_page(connection, account_row, query)?.compile(query, after, fetch_limit, None))
}

/// How a page of one query finds the account's rows, decided once from the database at hand and
/// compiled for the whole account or for a window of its newest arrivals (`arrival_window`).
pub(crate) struct PagePlan {
    dialect: SqliteDialect,
    /// The fewest documents any positive index-first lookup (a rare word, a rare place, a target,
    /// an action) found, when there is one: its matches are gathered and sorted by `created_at`, not walked
    /// in order, so a window of recent arrivals bounds what is read. `None` when the page walks an
    /// index in `created_at` order and stops after one page anyway.
    fewest_documents_looked_up: Option<i64>,
    /// The `events_fts` expression of that lookup, whose newest matches size the window
    /// (`arrival_window`); `None` for a place, whose terms may also be in `events_place_terms`
    /// (the window is then estimated from the documents). Matches of a target or an action kept
    /// as rows (events stored before migrations 0025 and 0026) are older than every token, so
    /// the newest matches are tokens whenever there are enough of them.
    fewest_documents_expression: Option<String>,
}

impl PagePlan {
    /// Compiles the page, reading only events at or above `lowest_event_row` when given.
    pub(crate) fn compile(
        &mut self,
        query: &Query,
        after: Option<CursorPosition>,
        fetch_limit: u32,
        lowest_event_row: Option<i64>,
    ) -> CompiledQuery {
        self.dialect.lowest_event_row = lowest_event_row;
        logbook_store_sql::compile_page_query(
            &self.dialect,
            &PageRequest {
                account_row: self.dialect.account_row,
                query,
                after,
                fetch_limit,
            },
        )
    }

    /// See `fewest_documents_looked_up`.
    pub(crate) fn fewest_documents_looked_up(&self) -> Option<i64> {
        self.fewest_documents_looked_up
    }

    /// See `fewest_documents_expression`.
    pub(crate) fn fewest_documents_expression(&self) -> Option<&str> {
        self.fewest_documents_expression.as_deref()
    }

    /// The account the page is of.
    pub(crate) fn account_row(&self) -> i64 {
        self.dialect.account_row
    }
}

/// Plans a page of `query` for the account `account_row`: each term's plan by how many of the
/// account's documents hold it.
pub(crate) fn plan_page(
    connection: &Connection,
    account_row: i64,
    query: &Query,
) -> Result<PagePlan, StoreError> {
    let text = TextTerms::of(query);
    // Each index-first lookup's documents, and its `events_fts` expression when all its matches
    // are there.
    let mut looked_up: Vec<LookedUpDocuments> = Vec::new();
    let positive_plan = if text.positive.is_empty() {
        None
    } else {
        let (plan, documents) = choose_text_plan(connection, account_row, text.positive.iter())?;
        if plan == TextPlan::IndexFirst {
            looked_up.push((
                documents,
                Some(match_expression(account_row, &text.positive)),
            ));
        }
        Some(plan)
    };
    let negated_plans = text
        .negated
        .iter()
        .map(|tokens| {
            choose_text_plan(connection, account_row, std::iter::once(tokens)).map(|(plan, _)| plan)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (place_lookups, place_documents) =
        place_lookups_with_documents(connection, account_row, query, PlacePlans::ByDocuments)?;
    looked_up.extend(
        place_documents
            .into_iter()
            .map(|documents| (documents, None)),
    );
    let another_clause_leads = another_clause_leads(
        query,
        positive_plan == Some(TextPlan::IndexFirst),
        &place_lookups,
    );
    let last_event_with_field_rows = last_events_with_field_rows(connection, account_row, query)?;
    let (field_lookups, field_documents) = plan_field_lookups(
        connection,
        account_row,
        query,
        another_clause_leads,
        &last_event_with_field_rows,
        Some(ROWS_OF_A_PAGE),
    )?;
    looked_up.extend(field_documents);
    looked_up.extend(target_documents(connection, account_row, query)?);
    let fewest = looked_up
        .into_iter()
        .min_by_key(|(documents, _)| *documents);
    Ok(PagePlan {
        dialect: SqliteDialect {
            account_row,
            positive_plan,
            negated_plans,
            place_lookups,
            lowest_event_row: None,
            last_event_with_field_rows,
            field_lookups,
        },
        fewest_documents_looked_up: fewest.as_ref().map(|(documents, _)| *documents),
        fewest_documents_expression: fewest.and_then(|(_, expression)| expression),
    })
}

/// What one index-first lookup found: its documents (counted up to `COMMON_TERM_DOCUMENTS`), and
/// its `events_fts` expression when every match is in `events_fts` (`PagePlan`).
type LookedUpDocuments = (i64, Option<String>);

/// How many documents each positive `target:` clause finds among the target tokens, counted up
/// to `COMMON_TERM_DOCUMENTS`, with the tokens' FTS5 expression. A target's matches are always
/// gathered from its lookups and sorted (`Dialect::targeted_events`), so a page reads them from a
/// window of the newest arrivals (`arrival_window`) as it does for a rare word. Events stored
/// before migration 0025 are not counted: with only those, the count is 0 and the page reads the
/// whole account.
fn target_documents(
    connection: &Connection,
    account_row: i64,
    query: &Query,
) -> Result<Vec<LookedUpDocuments>, StoreError> {
    let mut documents = Vec::new();
    for clause in query.clauses.iter().filter(|clause| !clause.negated) {
        let Condition::Target(patterns) = &clause.condition else {
            continue;
        };
        let expression = target_match_expression(account_row, patterns);
        let (_, found) = plan_by_documents(
            connection,
            "SELECT count(*) FROM (SELECT rowid FROM events_fts WHERE events_fts MATCH ?2 LIMIT ?1)",
            &[&expression],
        )?;
        documents.push((found, Some(expression)));
    }
    Ok(documents)
}

/// What, other than an action, an actor or an address, finds a query's rows by itself, in an
/// order or in a number that bounds what is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leader {
    /// Nothing: the page walks the account newest first.
    Nothing,
    /// Only `created:` ranges, `[start, end)` in microseconds (either side open): the page walks
    /// the range newest first on the account's `created_at` index.
    Range(Option<i64>, Option<i64>),
    /// A target, or a message or place term looked up first.
    Lookup,
}

/// What leads the query's page besides its tokenized fields (`Leader`), given whether its message
/// terms are looked up first (`text_looked_up`) and its places' plans (`place_lookups`).
fn another_clause_leads(
    query: &Query,
    text_looked_up: bool,
    place_lookups: &HashMap<String, PlaceLookup>,
) -> Leader {
    let looked_up = text_looked_up
        || place_lookups
            .values()
            .any(|lookup| lookup.plan == TextPlan::IndexFirst)
        || query
            .clauses
            .iter()
            .any(|clause| !clause.negated && matches!(clause.condition, Condition::Target(_)));
    if looked_up {
        return Leader::Lookup;
    }
    let ranges: Vec<&logbook_core::query::Clause> = query
        .clauses
        .iter()
        .filter(|clause| !clause.negated && matches!(clause.condition, Condition::Created(_)))
        .collect();
    if ranges.is_empty() {
        return Leader::Nothing;
    }
    match logbook_store_sql::day_counts::created_range(ranges) {
        Some((start, end)) => Leader::Range(start, end),
        None => Leader::Lookup,
    }
}

/// The FTS5 expression of a tokenized field's `condition` (`action:`, `actor:`, `ip:`) in the
/// account's documents; empty when the condition has no value (it matches no event).
fn field_match_expression(account_row: i64, condition: &Condition) -> String {
    match condition {
        Condition::Action(patterns) => action_match_expression(account_row, patterns),
        Condition::Actor(patterns) => actor_match_expression(account_row, patterns),
        Condition::Ip(networks) => ip_match_expression(account_row, networks),
        _ => String::new(),
    }
}

/// The table keeping `field` of the events stored before it became a token (migrations 0026, 0028
/// and 0029), keyed `(account_row, value, created_at, event_row)` as the dropped index was.
pub(crate) fn field_rows_table(field: TokenizedField) -> &'static str {
    match field {
        TokenizedField::Action => "event_action_rows",
        TokenizedField::Actor => "event_actor_rows",
        TokenizedField::Ip => "event_ip_rows",
    }
}

/// The table naming, per account, the last event whose `field` is a row of `field_rows_table`.
fn field_rows_marker_table(field: TokenizedField) -> &'static str {
    match field {
        TokenizedField::Action => "events_with_action_rows",
        TokenizedField::Actor => "events_with_actor_rows",
        TokenizedField::Ip => "events_with_ip_rows",
    }
}

/// Which positive `action:`, `actor:` and `ip:` clauses are looked up in their tokens (and rows),
/// with the documents each found among them (counted up to `COMMON_TERM_DOCUMENTS`) and its FTS5
/// expression. Since migrations 0026, 0028 and 0029 no index of `events` holds actions, actors or
/// addresses, so a clause is looked up when it is rare (its few matches are gathered and sorted); when none is
/// rare and nothing else leads (`another_clause_leads`), the one with the fewest documents is,
/// and the page is read from the blocks holding its newest matches (`arrival_window`). A common
/// clause beside one that leads is tested on its column for each row that clause's walk or lookup
/// reads, which stops after one page, where looking it up would gather every match:
/// `action:user.login created:2024-06-01` walks that day's events, `actor:alice
/// action:user.login` looks up the rarer of the two, and so does `actor:alice ip:203.0.113.9`.
/// Beside a `created:` range alone, the day counts per value say whether the walk would find a
/// page (`rows_wanted`, or every match for a count) within fewer events than the value has in
/// all; when not, the value with the fewest events is looked up instead
/// (`range_walk_and_matches`). An account with events stored before the field's migration
/// (`last_event_with_field_rows`) counts the value's rows of those too.
fn plan_field_lookups(
    connection: &Connection,
    account_row: i64,
    query: &Query,
    another_clause_leads: Leader,
    last_event_with_field_rows: &HashMap<TokenizedField, i64>,
    rows_wanted: Option<i64>,
) -> Result<(HashSet<String>, Vec<LookedUpDocuments>), StoreError> {
    // Each positive clause's expression, documents, field and condition.
    let mut counted: Vec<(String, i64, TokenizedField, &Condition)> = Vec::new();
    for clause in query.clauses.iter().filter(|clause| !clause.negated) {
        let Some(field) = TokenizedField::of(&clause.condition) else {
            continue;
        };
        let expression = field_match_expression(account_row, &clause.condition);
        if expression.is_empty() {
            // No value (an `ip:` of no block, which the parser never makes): its column's
            // condition is false and nothing is looked up.
            continue;
        }
        let (plan, mut found) = plan_by_documents(
            connection,
            "SELECT count(*) FROM (SELECT rowid FROM events_fts WHERE events_fts MATCH ?2 LIMIT ?1)",
            &[&expression],
        )?;
        if plan == TextPlan::IndexFirst && last_event_with_field_rows.contains_key(&field) {
            // Events stored before the field's migration hold it as rows: a database upgraded
            // with a long history would otherwise call every value rare until a page's worth of
            // new events had it (and a count of 0 reads no window at all).
            let mut builder = SqlBuilder::new('?');
            let account = builder.bind(SqlValue::Integer(account_row));
            let limit = builder.bind(SqlValue::Integer(COMMON_TERM_DOCUMENTS - found));
            let rows_condition = tokenized_field_values_condition(&mut builder, &clause.condition);
            let count = builder.finish();
            let rows: i64 = connection
                .prepare_cached(&format!(
                    "SELECT count(*) FROM (SELECT 1 FROM {} \
                     WHERE account_row = {account} AND ({rows_condition}) LIMIT {limit})",
                    field_rows_table(field)
                ))
                .map_err(database_error(
                    "preparing the count of a value's earlier rows",
                ))?
                .query_row(
                    rusqlite::params_from_iter(crate::encoding::bound(&count.parameters)),
                    |row| row.get(0),
                )
                .map_err(database_error("counting a value's earlier rows"))?;
            found += rows;
        }
        // Rare when, rows of earlier events included, it is in fewer than
        // `COMMON_TERM_DOCUMENTS` documents.
        counted.push((expression, found, field, &clause.condition));
    }
    let mut lookups = HashSet::new();
    let mut documents = Vec::new();
    for (expression, found, _, _) in &counted {
        if *found < COMMON_TERM_DOCUMENTS {
            documents.push((*found, Some(expression.clone())));
            lookups.insert(expression.clone());
        }
    }
    // Counts stop at `COMMON_TERM_DOCUMENTS`, so two common clauses tie: an actor is then looked
    // up before an address and an address before an action, since a person's share of an
    // account is nearly always smaller than a common action's (and a reader who sees only their
    // own events asks `actor:` with every search), and an address is most often one person's or
    // a few people's.
    let tie_order = |field: TokenizedField| match field {
        TokenizedField::Actor => 0,
        TokenizedField::Ip => 1,
        TokenizedField::Action => 2,
    };
    if !lookups.is_empty() {
        return Ok((lookups, documents));
    }
    match another_clause_leads {
        Leader::Nothing => {
            if let Some((expression, found, _, _)) = counted
                .iter()
                .min_by_key(|(_, found, field, _)| (*found, tie_order(*field)))
            {
                documents.push((*found, Some(expression.clone())));
                lookups.insert(expression.clone());
            }
        }
        Leader::Range(start, end) => {
            // A walk of the range finds a common value's page as soon as its newest days hold
            // one; a value the range's newest days lack (an address gone quiet, an action
            // nobody took lately) would have the walk read the range's every event. The day
            // counts say which: the value is looked up when it has fewer events in the whole
            // account than the walk would read.
            let mut cheapest: Option<(i64, &String)> = None;
            for (expression, _, field, condition) in &counted {
                let (walked, matching) = range_walk_and_matches(
                    connection,
                    account_row,
                    *field,
                    condition,
                    (start, end),
                    rows_wanted,
                )?;
                if matching < walked && cheapest.is_none_or(|(fewest, _)| matching < fewest) {
                    cheapest = Some((matching, expression));
                }
            }
            if let Some((matching, expression)) = cheapest {
                documents.push((matching, Some(expression.clone())));
                lookups.insert(expression.clone());
            }
        }
        Leader::Lookup => {}
    }
    Ok((lookups, documents))
}

/// The table of the account's events per day and value of `field` (`event_day_action_counts`,
/// `event_day_actor_counts`, `event_day_ip_counts`; migrations 0026, 0028 and 0029).
pub(crate) fn field_day_counts_table(field: TokenizedField) -> &'static str {
    match field {
        TokenizedField::Action => "event_day_action_counts",
        TokenizedField::Actor => "event_day_actor_counts",
        TokenizedField::Ip => "event_day_ip_counts",
    }
}

/// From the day counts: how many of the account's events a newest-first walk of `[start, end)`
/// reads before it has `rows_wanted` events matching `condition` (whole days of the range, and
/// the share of the day that completes the page as if its matches were spread evenly; the
/// range's every event when it never has them, or when `rows_wanted` is `None`: a count reads
/// them all), and how many of the account's events match `condition` in all.
fn range_walk_and_matches(
    connection: &Connection,
    account_row: i64,
    field: TokenizedField,
    condition: &Condition,
    (start, end): (Option<i64>, Option<i64>),
    rows_wanted: Option<i64>,
) -> Result<(i64, i64), StoreError> {
    const READING: &str = "estimating a walk of a created: range from the day counts";
    let mut builder = SqlBuilder::new('?');
    let account = builder.bind(SqlValue::Integer(account_row));
    let values = tokenized_field_values_condition(&mut builder, condition);
    let counted = builder.finish();
    let day = TimeBucket::Day.width_micros();
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT days.day_start, days.events, \
             (SELECT coalesce(sum(counts.events), 0) FROM {} AS counts \
              WHERE counts.day_start = days.day_start AND counts.account_row = days.account_row \
              AND ({values})) \
             FROM event_day_counts AS days WHERE days.account_row = {account} \
             ORDER BY days.day_start DESC",
            field_day_counts_table(field)
        ))
        .map_err(database_error(READING))?;
    let mut rows = statement
        .query(rusqlite::params_from_iter(crate::encoding::bound(
            &counted.parameters,
        )))
        .map_err(database_error(READING))?;
    let (mut walked, mut matching_in_walk, mut matching) = (0_i64, 0_i64, 0_i64);
    while let Some(row) = rows.next().map_err(database_error(READING))? {
        let day_start: i64 = row.get(0).map_err(database_error(READING))?;
        let day_events: i64 = row.get(1).map_err(database_error(READING))?;
        let day_matching: i64 = row.get(2).map_err(database_error(READING))?;
        matching += day_matching;
        let in_range = start.is_none_or(|start| day_start + day > start)
            && end.is_none_or(|end| day_start < end);
        if !in_range {
            continue;
        }
        match rows_wanted {
            // The page was found on a newer day.
            Some(wanted) if matching_in_walk >= wanted => {}
            // It is found on this one: after about its share of the day's events.
            Some(wanted) if matching_in_walk + day_matching >= wanted => {
                walked += day_events * (wanted - matching_in_walk) / day_matching;
                matching_in_walk = wanted;
            }
            _ => {
                walked += day_events;
                matching_in_walk += day_matching;
            }
        }
    }
    Ok((walked, matching))
}

/// Per field with a positive clause in `query`, the account's last event whose value is a row of
/// `field_rows_table` (migrations 0026, 0028 and 0029), when it has one; read only for such a clause,
/// the one reader of it.
fn last_events_with_field_rows(
    connection: &Connection,
    account_row: i64,
    query: &Query,
) -> Result<HashMap<TokenizedField, i64>, StoreError> {
    let mut last_events = HashMap::new();
    for clause in query.clauses.iter().filter(|clause| !clause.negated) {
        let Some(field) = TokenizedField::of(&clause.condition) else {
            continue;
        };
        if last_events.contains_key(&field) {
            continue;
        }
        let last_event: Option<i64> = connection
            .prepare_cached(&format!(
                "SELECT last_event_row FROM {} WHERE account_row = ?1",
                field_rows_marker_table(field)
            ))
            .map_err(database_error(
                "preparing the lookup of an account's earlier rows",
            ))?
            .query_row([account_row], |row| row.get(0))
            .optional()
            .map_err(database_error("reading an account's earlier rows"))?;
        if let Some(last_event) = last_event {
            last_events.insert(field, last_event);
        }
    }
    Ok(last_events)
}

/// The `created_at` of the account's events matching `query`, for a query without message terms,
/// positive actions or positive actors (the timeline's range counts, `count_over_time`). A negated
/// action or actor here is tested on its column, which is exact whatever the plan.
pub(crate) fn compile_matching_created_at(account_row: i64, query: &Query) -> CompiledQuery {
    let dialect = SqliteDialect {
        account_row,
        positive_plan: None,
        negated_plans: Vec::new(),
        place_lookups: HashMap::new(),
        lowest_event_row: None,
        last_event_with_field_rows: HashMap::new(),
        field_lookups: HashSet::new(),
    };
    logbook_store_sql::compile_matching_created_at(&dialect, account_row, query)
}

/// Compiles the timeline of `query` for the account `account_row` (see
/// `logbook_store_sql::compile_bucket_count_query`). Every message and place term is looked up
/// through the full-text indexes first: a count needs every match, so walking the account and
/// checking each body (the common-term plan of a page, which stops after one page) would read
/// every body. `connection` is read for the account's locations.
pub(crate) fn compile_bucket_count_query(
    connection: &Connection,
    account_row: i64,
    query: &Query,
    bucket: TimeBucket,
) -> Result<CompiledQuery, StoreError> {
    let text = TextTerms::of(query);
    let place_lookups = place_lookups(connection, account_row, query, PlacePlans::IndexFirst)?;
    let another_clause_leads =
        another_clause_leads(query, !text.positive.is_empty(), &place_lookups);
    let last_event_with_field_rows = last_events_with_field_rows(connection, account_row, query)?;
    let field_lookups = plan_field_lookups(
        connection,
        account_row,
        query,
        another_clause_leads,
        &last_event_with_field_rows,
        None,
    )?
    .0;
    let dialect = SqliteDialect {
        account_row,
        positive_plan: (!text.positive.is_empty()).then_some(TextPlan::IndexFirst),
        negated_plans: vec![TextPlan::IndexFirst; text.negated.len()],
        place_lookups,
        lowest_event_row: None,
        last_event_with_field_rows,
        field_lookups,
    };
    Ok(logbook_store_sql::compile_bucket_count_query(
        &dialect,
        &BucketCountRequest {
            account_row,
            query,
            bucket,
        },
    ))
}

/// How `place_lookups` plans a clause: by counting its documents (a page, which stops after one
/// page when it walks), or always through the indexes (a count, which needs every match).
#[derive(Clone, Copy)]
enum PlacePlans {
    ByDocuments,
    IndexFirst,
}

/// The most location tokens one place clause's full-text lookup names. An account whose events
/// were located at more locations holding the value tests each row instead: FTS5 reads one
/// doclist per token.
const MOST_LOCATION_TOKENS: usize = 500;

/// How each positive place clause of `query` finds the account's rows (`PlaceLookup`), by its
/// `place_terms::any_term` expression.
fn place_lookups(
    connection: &Connection,
    account_row: i64,
    query: &Query,
    plans: PlacePlans,
) -> Result<HashMap<String, PlaceLookup>, StoreError> {
    Ok(place_lookups_with_documents(connection, account_row, query, plans)?.0)
}

/// `place_lookups`, with the documents each clause planned index-first by counting found.
fn place_lookups_with_documents(
    connection: &Connection,
    account_row: i64,
    query: &Query,
    plans: PlacePlans,
) -> Result<(HashMap<String, PlaceLookup>, Vec<i64>), StoreError> {
    let mut lookups = HashMap::new();
    let mut looked_up_documents = Vec::new();
    for clause in query.clauses.iter().filter(|clause| !clause.negated) {
        let Some(terms) = condition_terms(account_row, &clause.condition) else {
            continue;
        };
        if terms.is_empty() {
            continue;
        }
        let location_rows = account_location_rows(connection, account_row, &clause.condition)?;
        let full_text_expression = any_full_text_place_token(account_row, &terms, &location_rows);
        let expression = any_term(&terms);
        let plan = match plans {
            _ if location_rows.len() > MOST_LOCATION_TOKENS => TextPlan::CheckEachRow,
            PlacePlans::IndexFirst => TextPlan::IndexFirst,
            // Documents in both indexes; each count stops at the threshold, so deciding stays
            // cheap.
            PlacePlans::ByDocuments => {
                let (plan, documents) = plan_by_documents(
                    connection,
                    "SELECT (SELECT count(*) FROM (SELECT rowid FROM events_place_terms WHERE events_place_terms MATCH ?2 LIMIT ?1)) \
                     + (SELECT count(*) FROM (SELECT rowid FROM events_fts WHERE events_fts MATCH ?3 LIMIT ?1))",
                    &[&expression, &full_text_expression],
                )?;
                if plan == TextPlan::IndexFirst {
                    looked_up_documents.push(documents);
                }
                plan
            }
        };
        lookups.insert(
            expression,
            PlaceLookup {
                plan,
                full_text_expression,
            },
        );
    }
    Ok((lookups, looked_up_documents))
}

/// The locations the account's events have been located at since migration 0021
/// (`account_locations`) that hold a value of the `country:`, `asn:` or `city:` `condition`.
fn account_location_rows(
    connection: &Connection,
    account_row: i64,
    condition: &Condition,
) -> Result<Vec<i64>, StoreError> {
    let (column, values) = match condition {
        Condition::Country(codes) => (
            "country_code",
            serde_json::json!(codes.iter().map(|code| code.as_str()).collect::<Vec<_>>()),
        ),
        Condition::Asn(numbers) => ("asn", serde_json::json!(numbers)),
        Condition::City(cities) => ("city", serde_json::json!(cities)),
        _ => return Ok(Vec::new()),
    };
    connection
        .prepare_cached(&format!(
            "SELECT account_locations.location_row FROM account_locations \
             JOIN locations ON locations.location_row = account_locations.location_row \
             WHERE account_locations.account_row = ?1 \
             AND locations.{column} IN (SELECT value FROM json_each(?2))"
        ))
        .map_err(database_error(
            "preparing the lookup of an account's locations",
        ))?
        .query_map(params![account_row, values.to_string()], |row| row.get(0))
        .and_then(|rows| rows.collect())
        .map_err(database_error("reading an account's locations"))
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
/// a word is. Doclists are per account, so a word common elsewhere costs nothing here. Answers the
/// plan and, index first, the rare phrase's documents.
fn choose_text_plan<'phrase>(
    connection: &Connection,
    account_row: i64,
    phrases: impl Iterator<Item = &'phrase Vec<String>>,
) -> Result<(TextPlan, i64), StoreError> {
    for phrase in phrases {
        let (plan, documents) = plan_by_documents(
            connection,
            "SELECT count(*) FROM (SELECT rowid FROM events_fts WHERE events_fts MATCH ?2 LIMIT ?1)",
            &[&full_text_phrase(account_row, phrase)],
        )?;
        if plan == TextPlan::IndexFirst {
            return Ok((plan, documents));
        }
    }
    Ok((TextPlan::CheckEachRow, COMMON_TERM_DOCUMENTS))
}

/// Index first when `count_sql` (a count of FTS5 documents matching `?2`, and `?3` when given
/// two expressions, at most `?1` of each) finds fewer than `COMMON_TERM_DOCUMENTS`; otherwise the
/// newest-first walk, checking each row. Answers the plan and the documents counted.
fn plan_by_documents(
    connection: &Connection,
    count_sql: &str,
    expressions: &[&str],
) -> Result<(TextPlan, i64), StoreError> {
    let mut parameters: Vec<&dyn rusqlite::ToSql> = vec![&COMMON_TERM_DOCUMENTS];
    parameters.extend(
        expressions
            .iter()
            .map(|expression| expression as &dyn rusqlite::ToSql),
    );
    let documents: i64 = connection
        .prepare_cached(count_sql)
        .map_err(database_error("preparing the term frequency lookup"))?
        .query_row(parameters.as_slice(), |row| row.get(0))
        .optional()
        .map_err(database_error("reading a term frequency"))?
        .unwrap_or(0);
    let plan = if documents < COMMON_TERM_DOCUMENTS {
        TextPlan::IndexFirst
    } else {
        TextPlan::CheckEachRow
    };
    Ok((plan, documents))
}

/// `lowest_rowid` (` AND rowid >= ?N`, or empty) narrows an index-first lookup to a window of
/// the account's newest arrivals.
fn text_condition(
    builder: &mut SqlBuilder,
    plan: TextPlan,
    account_row: i64,
    phrases: &[Vec<String>],
    negated: bool,
    lowest_rowid: &str,
) -> String {
    let not = if negated { "NOT " } else { "" };
    let encoded_phrases = phrases
        .iter()
        .map(|tokens| tokens.join(" "))
        .collect::<Vec<_>>()
        .join("\n");
    match plan {
        TextPlan::IndexFirst => {
            // FTS5's tokenizer folds case by its own tables, which merge a few tokens that
            // `text_tokens` keeps apart (`ſtop` and `stop`, the Kelvin sign and `k`), so the index
            // finds a superset of the matches; each candidate is confirmed in Rust as well
            // (`INDEX_MATCH_HOLDS_FUNCTION`, which reads the message only where the index could
            // have been wrong).
            let expression = builder.bind(SqlValue::Text(match_expression(account_row, phrases)));
            let checked = builder.bind(SqlValue::Text(encoded_phrases));
            format!(
                "{not}(event_row IN (SELECT rowid FROM events_fts WHERE events_fts MATCH {expression}{lowest_rowid}) \
                 AND {INDEX_MATCH_HOLDS_FUNCTION}(body, {checked}))"
            )
        }
        TextPlan::CheckEachRow => {
            let placeholder = builder.bind(SqlValue::Text(encoded_phrases));
            format!("{not}{MESSAGE_HAS_FUNCTION}(body, {placeholder})")
        }
    }
}
