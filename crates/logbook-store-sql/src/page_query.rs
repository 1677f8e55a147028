//! The walk of a parsed `Query` into ONE SQL statement with bound parameters (user values are never
//! part of the SQL text), newest first with keyset pagination, on indexes that all lead with the
//! account. Both stores compile through this walk; what truly differs between them is behind the
//! small `Dialect` trait: placeholders, boolean literals, the column that orders ties, the keyset
//! condition, flags, and how the message is searched (FTS5 or `tsvector`, and which plan the
//! store chose for it after looking at term frequencies).
//!
//! `Query::matches` evaluates the same language in memory; the parity test in `logbook-testkit`
//! holds the stores and it to one meaning.

use logbook_core::cursor::CursorPosition;
use logbook_core::query::{Clause, Condition, EventFlag, Query, TextPattern, TextSearch};
use logbook_core::timeline::TimeBucket;

use crate::encoding::{
    IPV4_MAPPED_FIRST, IPV4_MAPPED_LAST, ip_ranges, outcome_code, prefix_upper_bound,
    unix_micros_of,
};
use crate::value::SqlValue;

/// One page of a query for one account: at most `fetch_limit` events strictly after `after`.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<'query> {
    pub account_row: i64,
    pub query: &'query Query,
    pub after: Option<CursorPosition>,
    pub fetch_limit: u32,
}

/// A statement and its parameters, in placeholder order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledQuery {
    pub sql: String,
    pub parameters: Vec<SqlValue>,
}

/// Builds SQL text and binds parameters with the dialect's placeholders.
pub struct SqlBuilder {
    pub sql: String,
    parameters: Vec<SqlValue>,
    placeholder_prefix: char,
}

impl SqlBuilder {
    pub fn new(placeholder_prefix: char) -> Self {
        Self {
            sql: String::with_capacity(256),
            parameters: Vec::new(),
            placeholder_prefix,
        }
    }

    /// Binds `value` and returns its placeholder (`?3` or `$3`).
    pub fn bind(&mut self, value: SqlValue) -> String {
        self.parameters.push(value);
        format!("{}{}", self.placeholder_prefix, self.parameters.len())
    }

    pub fn push(&mut self, sql: &str) {
        self.sql.push_str(sql);
    }

    pub fn finish(self) -> CompiledQuery {
        CompiledQuery {
            sql: self.sql,
            parameters: self.parameters,
        }
    }
}

/// The message terms of a query, as both stores search them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TextTerms {
    /// Every positive word or phrase as its tokens (`text_tokens`); an event must hold them all.
    pub positive: Vec<Vec<String>>,
    /// A positive term holds no letter or digit, so it matches no message (and the query no event).
    pub positive_matches_nothing: bool,
    /// Each negated word or phrase that has tokens. A negated term without tokens would exclude
    /// nothing (its term matches no message), so it is left out.
    pub negated: Vec<Vec<String>>,
}

impl TextTerms {
    pub fn of(query: &Query) -> Self {
        let mut terms = TextTerms::default();
        for clause in &query.clauses {
            let Condition::Text(search) = &clause.condition else {
                continue;
            };
            let tokens = search_tokens(search);
            match (clause.negated, tokens.is_empty()) {
                (false, true) => terms.positive_matches_nothing = true,
                (false, false) => terms.positive.push(tokens),
                (true, true) => {}
                (true, false) => terms.negated.push(tokens),
            }
        }
        if terms.positive_matches_nothing {
            terms.positive.clear();
        }
        terms
    }
}

fn search_tokens(search: &TextSearch) -> Vec<String> {
    search.tokens()
}

/// A field of the event that the SQLite store indexes as tokens of the event's full-text document
/// rather than with an index on its column (`Dialect::tokenized_field_condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenizedField {
    /// `action:`, tokens since SQLite migration 0026.
    Action,
    /// `actor:`, the actor's id, tokens since SQLite migration 0028.
    Actor,
    /// `ip:` with addresses and blocks, tokens since SQLite migration 0029.
    Ip,
}

impl TokenizedField {
    /// The field of an `action:`, `actor:` or `ip:` (addresses and blocks) condition; `None` for
    /// any other.
    pub fn of(condition: &Condition) -> Option<Self> {
        match condition {
            Condition::Action(_) => Some(Self::Action),
            Condition::Actor(_) => Some(Self::Actor),
            Condition::Ip(_) => Some(Self::Ip),
            _ => None,
        }
    }

    /// The event's column holding the field, as the tables keyed by its value name it too.
    pub fn column(self) -> &'static str {
        match self {
            Self::Action => "action",
            Self::Actor => "actor_id",
            Self::Ip => "ip",
        }
    }
}

/// The exact test, on the columns in scope, of a tokenized field's `condition` (an `action:`,
/// `actor:` or `ip:` one): its values bound in `builder`, the alternatives joined with `OR`, and
/// `0` when there are none. For the SQL a store writes by hand on the field's values (SQLite's
/// rows of events stored before a field became tokens, its day counts per value).
pub fn tokenized_field_values_condition(builder: &mut SqlBuilder, condition: &Condition) -> String {
    let alternatives = match condition {
        Condition::Action(patterns) => pattern_alternatives(builder, "action", patterns),
        Condition::Actor(patterns) => pattern_alternatives(builder, "actor_id", patterns),
        Condition::Ip(networks) => network_alternatives(builder, networks),
        _ => Vec::new(),
    };
    if alternatives.is_empty() {
        return "0".to_owned();
    }
    alternatives.join(" OR ")
}

/// What differs between the SQL of the two stores. A store makes one per compilation, carrying
/// any plan it chose for the message terms.
pub trait Dialect {
    /// `?` (SQLite, `?NNN` is numbered) or `$` (PostgreSQL).
    fn placeholder_prefix(&self) -> char;
    /// `1`/`0` on SQLite, `TRUE`/`FALSE` on PostgreSQL.
    fn boolean(&self, value: bool) -> &'static str;
    /// The column that identifies an event inside its account and breaks `created_at` ties
    /// (`event_row` on SQLite, whose order within an account is `seq` order; `seq` on PostgreSQL).
    fn event_key_column(&self) -> &'static str;
    /// The condition that a flag column (`new_ip`, `new_network`, `new_country`) is set, in the form the store's
    /// indexes expect.
    fn flag_is_set(&self, column: &str) -> String;
    /// Pushes `SELECT <columns> FROM events WHERE account_row = <account>`, plus the
    /// condition that the message holds every phrase of `positive_text` when there are any.
    fn begin_select(
        &self,
        builder: &mut SqlBuilder,
        account: &str,
        positive_text: &[Vec<String>],
        columns: SelectedColumns,
    );
    /// The condition that the message does NOT hold the phrase `tokens` (the `index`th negated
    /// term of `TextTerms::negated`).
    fn negated_text_condition(
        &self,
        builder: &mut SqlBuilder,
        index: usize,
        tokens: &[String],
    ) -> String;
    /// The condition that an event comes strictly after `after` in newest-first order.
    fn keyset_condition(&self, builder: &mut SqlBuilder, after: CursorPosition) -> String;
    /// The condition that an event is in one of the places of a `country:`, `asn:` or `city:`
    /// clause, given `column_condition`, the exact test of the event's own column; the walk
    /// negates it for a negated clause (`negated`), which can only be tested, never looked up. A
    /// store that keeps the place elsewhere than the event's row (SQLite's interned locations)
    /// tests it there too, and one that keeps place terms in an index of its own adds how a
    /// positive clause finds its candidates there; by default the column's condition stands alone
    /// (PostgreSQL indexes the columns themselves).
    fn place_condition(
        &self,
        _builder: &mut SqlBuilder,
        _place: &Condition,
        column_condition: String,
        _negated: bool,
    ) -> String {
        column_condition
    }
    /// The condition that an event's action, actor id or address (`field`) meets `condition`
    /// (its `action:`, `actor:` or `ip:` clause), given `column_condition`, the exact test of the
    /// event's own column; the walk negates it for a negated clause (`negated`), which is only
    /// ever tested on the rows read. A store that indexes the field elsewhere than on the column
    /// (SQLite's action tokens since migration 0026, its actor tokens since 0028, its address
    /// tokens since 0029) adds how a positive clause finds its candidates there; by default the
    /// column's condition stands alone (PostgreSQL indexes the columns).
    fn tokenized_field_condition(
        &self,
        _builder: &mut SqlBuilder,
        _field: TokenizedField,
        _condition: &Condition,
        column_condition: String,
        _negated: bool,
    ) -> String {
        column_condition
    }
    /// The SQL of the keys of the account's events holding a target that one of `patterns`
    /// matches, given `target_rows`, the keys `event_targets` holds for them. A store that keeps
    /// some events' targets elsewhere (SQLite's target tokens, migration 0025) adds those; by
    /// default the table's rows are all there is.
    fn targeted_events(
        &self,
        _builder: &mut SqlBuilder,
        _patterns: &[TextPattern],
        target_rows: String,
    ) -> String {
        target_rows
    }
    /// Pushes `ORDER BY created_at DESC, <key> DESC LIMIT <limit>` when there is a limit (a page),
    /// nothing more without one (the rows to count), and closes whatever `begin_select` opened.
    fn end_select(&self, builder: &mut SqlBuilder, limit: Option<&str>);
}

/// What the walk selects of each matching event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectedColumns {
    /// Everything a page shows (the store's event columns).
    Events,
    /// Only `created_at`, for counting (the timeline): no body is read unless a message term
    /// needs it checked.
    CreatedAt,
}

/// The timeline of `query` for one account: matching events counted per `bucket`.
#[derive(Debug, Clone, Copy)]
pub struct BucketCountRequest<'query> {
    pub account_row: i64,
    pub query: &'query Query,
    pub bucket: TimeBucket,
}

/// Compiles one page of `request.query`.
pub fn compile_page_query(dialect: &dyn Dialect, request: &PageRequest<'_>) -> CompiledQuery {
    let mut builder = SqlBuilder::new(dialect.placeholder_prefix());
    push_matching_events(
        dialect,
        &mut builder,
        request.account_row,
        request.query,
        request.after,
        SelectedColumns::Events,
    );
    let limit = builder.bind(SqlValue::Integer(i64::from(request.fetch_limit)));
    dialect.end_select(&mut builder, Some(&limit));
    builder.finish()
}

/// Compiles the timeline of `request.query`: `(bucket start, events)` rows, oldest bucket first,
/// empty buckets absent. The matching events are exactly those of the page query (the same walk
/// of the same clauses), selecting only `created_at`; the bucket is integer arithmetic on the
/// stored microseconds, which both stores keep as a 64-bit integer, so nothing here differs
/// between them. The remainder is made non-negative so an instant before 1970 floors like
/// `TimeBucket::start_micros_of`.
pub fn compile_bucket_count_query(
    dialect: &dyn Dialect,
    request: &BucketCountRequest<'_>,
) -> CompiledQuery {
    let mut builder = SqlBuilder::new(dialect.placeholder_prefix());
    let width = builder.bind(SqlValue::Integer(request.bucket.width_micros()));
    builder.push(&format!(
        "SELECT matching.created_at - (((matching.created_at % {width}) + {width}) % {width}) AS bucket_start, \
         count(*) AS events FROM ("
    ));
    push_matching_events(
        dialect,
        &mut builder,
        request.account_row,
        request.query,
        None,
        SelectedColumns::CreatedAt,
    );
    dialect.end_select(&mut builder, None);
    builder.push(") AS matching GROUP BY 1 ORDER BY 1");
    builder.finish()
}

/// Compiles the `created_at` of every event of the account that matches `query`, as one
/// `SELECT` a store can wrap (the first and last instant, a count within a range) without
/// `GROUP BY`: exactly the rows `compile_bucket_count_query` counts.
pub fn compile_matching_created_at(
    dialect: &dyn Dialect,
    account_row: i64,
    query: &Query,
) -> CompiledQuery {
    let mut builder = SqlBuilder::new(dialect.placeholder_prefix());
    push_matching_events(
        dialect,
        &mut builder,
        account_row,
        query,
        None,
        SelectedColumns::CreatedAt,
    );
    dialect.end_select(&mut builder, None);
    builder.finish()
}

/// Pushes the `SELECT ... WHERE` of the events of one account that match `query` (and come after
/// `after`), leaving the statement open for `Dialect::end_select`.
fn push_matching_events(
    dialect: &dyn Dialect,
    builder: &mut SqlBuilder,
    account_row: i64,
    query: &Query,
    after: Option<CursorPosition>,
    columns: SelectedColumns,
) {
    let account = builder.bind(SqlValue::Integer(account_row));
    let text = TextTerms::of(query);
    dialect.begin_select(builder, &account, &text.positive, columns);
    if text.positive_matches_nothing {
        builder.push(" AND ");
        builder.push(dialect.boolean(false));
    }
    for (index, tokens) in text.negated.iter().enumerate() {
        builder.push(" AND ");
        let condition = dialect.negated_text_condition(builder, index, tokens);
        builder.push(&condition);
    }
    for clause in &query.clauses {
        if matches!(clause.condition, Condition::Text(_)) {
            continue;
        }
        builder.push(" AND ");
        push_clause(dialect, builder, clause, &account);
    }
    if let Some(after) = after {
        builder.push(" AND ");
        let condition = dialect.keyset_condition(builder, after);
        builder.push(&condition);
    }
}

fn push_clause(dialect: &dyn Dialect, builder: &mut SqlBuilder, clause: &Clause, account: &str) {
    let mut condition = condition_sql(dialect, builder, &clause.condition, account);
    if matches!(
        clause.condition,
        Condition::Country(_) | Condition::Asn(_) | Condition::City(_)
    ) {
        condition = dialect.place_condition(builder, &clause.condition, condition, clause.negated);
    }
    if let Some(field) = TokenizedField::of(&clause.condition) {
        condition = dialect.tokenized_field_condition(
            builder,
            field,
            &clause.condition,
            condition,
            clause.negated,
        );
    }
    if clause.negated {
        // A negated condition keeps events where the field is absent (NULL), which plain NOT would
        // drop: `-actor:alice` includes events without an actor.
        builder.push(&format!("(({condition}) IS NOT {})", dialect.boolean(true)));
    } else {
        builder.push(&format!("({condition})"));
    }
}

fn condition_sql(
    dialect: &dyn Dialect,
    builder: &mut SqlBuilder,
    condition: &Condition,
    account: &str,
) -> String {
    match condition {
        Condition::Actor(patterns) => patterns_sql(dialect, builder, "actor_id", patterns),
        Condition::Action(patterns) => patterns_sql(dialect, builder, "action", patterns),
        Condition::Target(patterns) => {
            let target_condition = patterns_sql(dialect, builder, "target_id", patterns);
            let key = dialect.event_key_column();
            let target_rows = format!(
                "SELECT {key} FROM event_targets WHERE account_row = {account} AND ({target_condition})"
            );
            let targeted_events = dialect.targeted_events(builder, patterns, target_rows);
            format!("{key} IN ({targeted_events})")
        }
        Condition::Ip(networks) => alternatives(dialect, network_alternatives(builder, networks)),
        Condition::Outcome(outcomes) => {
            let placeholders: Vec<String> = outcomes
                .iter()
                .map(|outcome| builder.bind(SqlValue::Integer(outcome_code(*outcome))))
                .collect();
            if placeholders.is_empty() {
                dialect.boolean(false).to_owned()
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
                dialect.boolean(true).to_owned()
            } else {
                parts.join(" AND ")
            }
        }
        Condition::Is(flags) => alternatives(
            dialect,
            flags
                .iter()
                .map(|flag| match flag {
                    EventFlag::NewIp => dialect.flag_is_set("new_ip"),
                    EventFlag::NewNetwork => dialect.flag_is_set("new_network"),
                    EventFlag::NewCountry => dialect.flag_is_set("new_country"),
                })
                .collect(),
        ),
        // Any address in a block of the account's known networks of these names (migration 0005),
        // of the block's own family: an IPv6 block never holds an IPv4 address, even one that is
        // stored inside it as IPv4-mapped IPv6.
        Condition::KnownNetwork(names) => {
            if names.is_empty() {
                return dialect.boolean(false).to_owned();
            }
            let names: Vec<String> = names
                .iter()
                .map(|name| builder.bind(SqlValue::Text(name.as_str().to_owned())))
                .collect();
            let mapped_first = builder.bind(SqlValue::Bytes(IPV4_MAPPED_FIRST.to_vec()));
            let mapped_last = builder.bind(SqlValue::Bytes(IPV4_MAPPED_LAST.to_vec()));
            format!(
                "EXISTS (SELECT 1 FROM known_network_blocks b WHERE b.account_row = {account} \
                 AND b.name IN ({}) AND ip >= b.first_ip AND ip <= b.last_ip \
                 AND (ip >= {mapped_first} AND ip <= {mapped_last}) = (b.first_ip >= {mapped_first} AND b.first_ip <= {mapped_last}))",
                names.join(", ")
            )
        }
        // The location columns of migration 0017, the exact test; how a rare value is found
        // without walking the account is the store's (`Dialect::place_condition`).
        Condition::Country(codes) => values_in(
            dialect,
            builder,
            "country_code",
            codes
                .iter()
                .map(|code| SqlValue::Text(code.as_str().to_owned()))
                .collect(),
        ),
        Condition::Asn(numbers) => values_in(
            dialect,
            builder,
            "asn",
            numbers
                .iter()
                .map(|number| SqlValue::Integer(i64::from(*number)))
                .collect(),
        ),
        Condition::City(cities) => values_in(
            dialect,
            builder,
            "city",
            cities
                .iter()
                .map(|city| SqlValue::Text(city.clone()))
                .collect(),
        ),
        // Message terms are compiled apart (the store plans them).
        Condition::Text(_) => dialect.boolean(true).to_owned(),
    }
}

/// Exact values become one `IN` list (an index lookup per value); prefixes become index ranges.
fn patterns_sql(
    dialect: &dyn Dialect,
    builder: &mut SqlBuilder,
    column: &str,
    patterns: &[TextPattern],
) -> String {
    let parts = pattern_alternatives(builder, column, patterns);
    alternatives(dialect, parts)
}

/// The conditions, on the `ip` column in scope, that an address lies in one of `networks`: one
/// equality or range per range of stored addresses (`encoding::ip_ranges`), values bound in
/// `builder`.
fn network_alternatives(builder: &mut SqlBuilder, networks: &[ipnet::IpNet]) -> Vec<String> {
    let mut parts = Vec::new();
    for network in networks {
        for (first, last) in ip_ranges(network) {
            parts.push(if first == last {
                format!("ip = {}", builder.bind(SqlValue::Bytes(first.to_vec())))
            } else {
                let first = builder.bind(SqlValue::Bytes(first.to_vec()));
                let last = builder.bind(SqlValue::Bytes(last.to_vec()));
                format!("(ip >= {first} AND ip <= {last})")
            });
        }
    }
    parts
}

/// The conditions, any of which `column` must meet to match one of `patterns`: one `IN` list of
/// the exact values (an index lookup per value) and one range per prefix, their values bound in
/// `builder`. Empty when there are no patterns. For the walk, and for a store's own SQL on a
/// column (`tokenized_field_values_condition`).
fn pattern_alternatives(
    builder: &mut SqlBuilder,
    column: &str,
    patterns: &[TextPattern],
) -> Vec<String> {
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
    parts
}

/// `column IN (...)` of exact values, one index lookup each.
fn values_in(
    dialect: &dyn Dialect,
    builder: &mut SqlBuilder,
    column: &str,
    values: Vec<SqlValue>,
) -> String {
    let placeholders: Vec<String> = values
        .into_iter()
        .map(|value| builder.bind(value))
        .collect();
    match placeholders.len() {
        0 => dialect.boolean(false).to_owned(),
        1 => format!("{column} = {}", placeholders[0]),
        _ => format!("{column} IN ({})", placeholders.join(", ")),
    }
}

/// Any of `parts`, always parenthesized so it composes with the conditions around it.
fn alternatives(dialect: &dyn Dialect, parts: Vec<String>) -> String {
    match parts.len() {
        0 => dialect.boolean(false).to_owned(),
        1 => parts.into_iter().next().expect("one part"),
        _ => format!("({})", parts.join(" OR ")),
    }
}

/// Whether some positive condition can pick a few rows through its own index (actor, action, ip,
/// target, network or city), so the plan need not walk the account's newest-first index. A
/// country is left out: most of an account's events often come from one.
pub fn has_selective_condition(query: &Query) -> bool {
    query.clauses.iter().any(|clause| {
        !clause.negated
            && matches!(
                clause.condition,
                Condition::Actor(_)
                    | Condition::Action(_)
                    | Condition::Ip(_)
                    | Condition::Target(_)
                    | Condition::Asn(_)
                    | Condition::City(_)
            )
    })
}
