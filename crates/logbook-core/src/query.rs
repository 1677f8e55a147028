//! The query language of PRODUCT.md, shared by the search box, the API, the CLI, exports and the
//! live tail: `actor:alice action:server.* -action:user.login ip:203.0.113.0/24 outcome:failure
//! created:>=2024-06-01 "reboot web-1"`.
//!
//! `parse` turns text into a `Query`; the stores compile a `Query` into their own SQL, and
//! `Query::matches` evaluates it in memory (for the live tail) with the same semantics.
//!
//! # Grammar
//!
//! ```text
//! query     = term *( whitespace term )          ; at most 32 terms, at most 2048 bytes
//! term      = [ "-" ] ( qualified / phrase / word )
//! qualified = qualifier ":" value *( "," value )
//! qualifier = "actor" / "action" / "target" / "ip" / "outcome" / "is" / "created"
//!           / "country" / "asn" / "city"
//! value     = ( bare / quoted ) [ "*" ]          ; "*" only on actor:, action: and target:
//! bare      = 1*( any character but whitespace, '"', ',' and '*' )
//! quoted    = '"' *( any character but '"' and '\' / '\"' / '\\' / '\' other ) '"'
//! phrase    = quoted                             ; searched in the message
//! word      = 1*( any character but whitespace, '"', '*' and ':' )
//! ```
//!
//! - Terms AND together; `-` negates one term. A negated term also matches events that lack
//!   the field (`-actor:alice` keeps events without an actor).
//! - Commas give alternatives, any of which may match: `action:user.login,user.logout`.
//! - A trailing `*` makes a value a prefix: `action:server.*`. Inside quotes `*` is literal.
//! - `actor:` matches the actor's id, `target:` the id of any target, `action:` the action;
//!   all exactly (case-sensitive) or by prefix.
//! - `ip:` takes addresses or CIDR blocks (`ip:203.0.113.0/24,2001:db8::/32`). An address is a
//!   /32 or /128 block, IPv4-mapped IPv6 is IPv4, and host bits of a block are dropped.
//! - `ip:NAME` (`ip:office`) names a known network of the account: every address in its blocks.
//!   Names and addresses go in separate terms. The stores look names up in the account's known
//!   networks; `Query::matches` needs them resolved first (`resolve_known_networks`).
//! - `outcome:success` or `outcome:failure`; `is:new-ip` (first time this actor used this IP),
//!   `is:new-network` (first time this actor used this IP's /24 or /48), `is:new-country` (first
//!   time this actor was located in the country of the event's address).
//! - `country:IN` (two-letter ISO codes, any case), `asn:9829` (or `AS9829`) and
//!   `city:"Mumbai"` (exact, case-sensitive) match the location the IP databases gave the
//!   event's address when it arrived (`crate::location`); an event without one matches none.
//! - `created:` takes one of `>X`, `>=X`, `<X`, `<=X`, `X`, `X..Y`, `X..` or `..Y`, where `X`
//!   and `Y` are dates (`2024-06-01`, a whole UTC day) or RFC 3339 date-times with an offset.
//!   `X..Y` includes both ends (through the end of day `Y` for a date). `>` a date-time means
//!   from one microsecond later (stores keep microseconds); `>` a date, from the next day.
//! - A bare word searches the message for that whole word, case-insensitively; a quoted phrase
//!   for its words next to each other in order. Words are runs of letters and digits (see
//!   `text_tokens`), so `web-1` searches for the phrase `web 1`.
//! - The canonical text of a query (`Display`) is held to the same 2048-byte limit as its input,
//!   so every accepted query can be printed and sent again.
//! - Anything else that looks like `name:value` is an error that suggests quoting it, so a typo
//!   in a qualifier never silently becomes a text search.

use std::fmt;
use std::net::IpAddr;
use std::ops::Range;

use ipnet::IpNet;
use time::format_description::well_known::Rfc3339;
use time::{Date, Duration, Month, OffsetDateTime, UtcOffset};

use crate::event::{Outcome, StoredEvent, unix_micros};
use crate::location::{CountryCode, parse_asn};
use crate::unfamiliar_ip::{KnownNetwork, NetworkName};

/// Longest query text accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 2048;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    pub clauses: Vec<Clause>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    pub negated: bool,
    pub condition: Condition,
    /// Byte range of this clause in the query text, for error messages.
    pub span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `actor:` matches the actor's id, any of the alternatives.
    Actor(Vec<TextPattern>),
    /// `action:` matches the action, any of the alternatives.
    Action(Vec<TextPattern>),
    /// `ip:` an address (a /32 or /128 network) or a CIDR block, any of the alternatives.
    Ip(Vec<IpNet>),
    /// `ip:NAME`: any address in the blocks of the account's known networks of these names.
    KnownNetwork(Vec<NetworkName>),
    Outcome(Vec<Outcome>),
    /// `target:` matches the id of any of the event's targets.
    Target(Vec<TextPattern>),
    /// `created:` a half-open or closed range of `created_at`.
    Created(TimeRange),
    /// `is:new-ip`, `is:new-network`, `is:new-country`.
    Is(Vec<EventFlag>),
    /// `country:` the country code of the event's location, any of the alternatives.
    Country(Vec<CountryCode>),
    /// `asn:` the autonomous system number of the event's location.
    Asn(Vec<u32>),
    /// `city:` the city of the event's location, exactly.
    City(Vec<String>),
    /// A bare word or a quoted phrase searched in the message.
    Text(TextSearch),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextPattern {
    Exact(String),
    /// `server.*`: the value starts with this prefix.
    Prefix(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFlag {
    NewIp,
    NewNetwork,
    NewCountry,
}

/// `start <= created_at < end` with either side optional, after the parser resolved `>`, `>=`,
/// `<`, `<=`, `a..b` and whole dates (a date means the whole UTC day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start_inclusive: Option<OffsetDateTime>,
    pub end_exclusive: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextSearch {
    /// One word; matched as a whole token of the message, case-insensitively.
    Word(String),
    /// A quoted phrase; its words must appear next to each other in this order.
    Phrase(String),
}

/// A query that cannot be parsed: where, which term, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at position {position}: {term:?}")]
pub struct QueryError {
    /// Byte offset of the offending term in the query text.
    pub position: usize,
    pub term: String,
    pub message: String,
}

impl Query {
    pub fn is_empty(&self) -> bool {
        self.clauses.is_empty()
    }
}

/// Most terms one query may hold.
pub const MAX_QUERY_CLAUSES: usize = 32;

impl Query {
    /// The query with every `ip:NAME` replaced by the blocks of the account's known networks of
    /// that name (a name the account does not have matches no address), for `matches`, which
    /// cannot look names up itself. The stores resolve names on their own.
    pub fn resolve_known_networks(&self, networks: &[KnownNetwork]) -> Query {
        let clauses = self
            .clauses
            .iter()
            .map(|clause| match &clause.condition {
                Condition::KnownNetwork(names) => Clause {
                    negated: clause.negated,
                    condition: Condition::Ip(
                        networks
                            .iter()
                            .filter(|network| names.contains(&network.name))
                            .flat_map(|network| network.blocks.iter().copied())
                            .collect(),
                    ),
                    span: clause.span.clone(),
                },
                _ => clause.clone(),
            })
            .collect();
        Query { clauses }
    }

    /// Whether `event` satisfies every clause, with the semantics the stores implement. An
    /// unresolved `ip:NAME` (see `resolve_known_networks`) matches no event.
    pub fn matches(&self, event: &StoredEvent) -> bool {
        self.clauses
            .iter()
            .all(|clause| clause.condition.matches(event) != clause.negated)
    }
}

impl Condition {
    fn matches(&self, event: &StoredEvent) -> bool {
        match self {
            Condition::Actor(patterns) => event
                .actor
                .as_ref()
                .is_some_and(|actor| patterns.iter().any(|pattern| pattern.matches(&actor.id))),
            Condition::Action(patterns) => patterns
                .iter()
                .any(|pattern| pattern.matches(&event.action)),
            Condition::Target(patterns) => event
                .targets
                .iter()
                .any(|target| patterns.iter().any(|pattern| pattern.matches(&target.id))),
            Condition::Ip(networks) => event.ip.is_some_and(|ip| {
                let ip = ip.to_canonical();
                networks.iter().any(|network| network.contains(&ip))
            }),
            Condition::KnownNetwork(_) => false,
            Condition::Outcome(outcomes) => event
                .outcome
                .is_some_and(|outcome| outcomes.contains(&outcome)),
            Condition::Created(range) => range.contains_micros(unix_micros(event.created_at)),
            Condition::Is(flags) => flags.iter().any(|flag| match flag {
                EventFlag::NewIp => event.new_ip,
                EventFlag::NewNetwork => event.new_network,
                EventFlag::NewCountry => event.new_country,
            }),
            Condition::Text(search) => search.matches(&event.message),
            Condition::Country(codes) => event
                .location
                .as_ref()
                .and_then(|location| location.country_code.as_deref())
                .is_some_and(|code| codes.iter().any(|wanted| wanted.as_str() == code)),
            Condition::Asn(numbers) => event
                .location
                .as_ref()
                .and_then(|location| location.asn)
                .is_some_and(|asn| numbers.contains(&asn)),
            Condition::City(cities) => event
                .location
                .as_ref()
                .and_then(|location| location.city.as_deref())
                .is_some_and(|city| cities.iter().any(|wanted| wanted == city)),
        }
    }
}

impl TextPattern {
    pub fn matches(&self, value: &str) -> bool {
        match self {
            TextPattern::Exact(expected) => value == expected,
            TextPattern::Prefix(prefix) => value.starts_with(prefix.as_str()),
        }
    }
}

impl TimeRange {
    /// The start as microseconds since the Unix epoch, the unit the stores index.
    pub fn start_micros(&self) -> Option<i64> {
        self.start_inclusive.map(unix_micros)
    }

    /// The exclusive end as microseconds since the Unix epoch.
    pub fn end_micros(&self) -> Option<i64> {
        self.end_exclusive.map(unix_micros)
    }

    /// Whether an event created at `created_at_micros` falls in the range. Comparisons happen in
    /// microseconds, as in the stores, so both agree on every event.
    pub fn contains_micros(&self, created_at_micros: i64) -> bool {
        self.start_micros()
            .is_none_or(|start| created_at_micros >= start)
            && self.end_micros().is_none_or(|end| created_at_micros < end)
    }
}

impl TextSearch {
    /// The search's tokens, in order; the message must hold them next to each other.
    pub fn tokens(&self) -> Vec<String> {
        match self {
            TextSearch::Word(text) | TextSearch::Phrase(text) => text_tokens(text),
        }
    }

    pub fn matches(&self, message: &str) -> bool {
        let wanted = self.tokens();
        if wanted.is_empty() {
            // A term without a letter or digit has nothing to search for: it matches no message
            // (so its negation keeps every event), as in both stores.
            return false;
        }
        let message_tokens = text_tokens(message);
        message_tokens
            .windows(wanted.len())
            .any(|window| window == wanted.as_slice())
    }
}

/// Splits text into lowercase search tokens: maximal runs of letters and digits, everything
/// else separating them, like SQLite FTS5's `unicode61` tokenizer (without diacritic removal).
/// Both the in-memory matcher and the stores use this, so a word means the same everywhere.
pub fn text_tokens(text: &str) -> Vec<String> {
    text.split(|character: char| !character.is_alphanumeric())
        .filter(|token| !token.is_empty())
        .map(str::to_lowercase)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Parsing.

/// Parses query text; see the module documentation for the grammar.
pub fn parse(text: &str) -> Result<Query, QueryError> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(QueryError {
            position: 0,
            term: String::new(),
            message: format!("the query is longer than {MAX_QUERY_BYTES} bytes"),
        });
    }
    let mut clauses = Vec::new();
    let mut cursor = 0;
    loop {
        let rest = &text[cursor..];
        let Some(skipped) = rest.find(|character: char| !character.is_whitespace()) else {
            break;
        };
        let term_start = cursor + skipped;
        let term_end = find_term_end(text, term_start)?;
        if clauses.len() == MAX_QUERY_CLAUSES {
            return Err(error_at(
                text,
                term_start..term_end,
                format!("a query holds at most {MAX_QUERY_CLAUSES} terms"),
            ));
        }
        clauses.push(parse_term(text, term_start..term_end)?);
        cursor = term_end;
    }
    let query = Query { clauses };
    // Printing may be longer than the input (escapes, whole days written as instants), and a
    // query whose canonical text is over the limit would be refused when sent again.
    let canonical_length = query.to_string().len();
    if canonical_length > MAX_QUERY_BYTES {
        return Err(QueryError {
            position: 0,
            term: String::new(),
            message: format!(
                "the query is longer than {MAX_QUERY_BYTES} bytes once written out in full ({canonical_length} bytes)"
            ),
        });
    }
    Ok(query)
}

fn error_at(text: &str, span: Range<usize>, message: impl Into<String>) -> QueryError {
    QueryError {
        position: span.start,
        term: text[span].to_owned(),
        message: message.into(),
    }
}

/// A term ends at the first whitespace outside quotes.
fn find_term_end(text: &str, term_start: usize) -> Result<usize, QueryError> {
    let mut open_quote_at = None;
    let mut characters = text[term_start..].char_indices();
    while let Some((offset, character)) = characters.next() {
        let position = term_start + offset;
        match (open_quote_at, character) {
            (None, '"') => open_quote_at = Some(position),
            (None, other) if other.is_whitespace() => return Ok(position),
            (Some(_), '\\') => {
                characters.next();
            }
            (Some(_), '"') => open_quote_at = None,
            _ => {}
        }
    }
    match open_quote_at {
        Some(quote_position) => Err(error_at(
            text,
            quote_position..text.len(),
            "this quote is never closed",
        )),
        None => Ok(text.len()),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qualifier {
    Actor,
    Action,
    Target,
    Ip,
    Outcome,
    Is,
    Created,
    Country,
    Asn,
    City,
}

impl Qualifier {
    fn from_name(name: &str) -> Option<Self> {
        const NAMES: [(&str, Qualifier); 10] = [
            ("actor", Qualifier::Actor),
            ("action", Qualifier::Action),
            ("target", Qualifier::Target),
            ("ip", Qualifier::Ip),
            ("outcome", Qualifier::Outcome),
            ("is", Qualifier::Is),
            ("created", Qualifier::Created),
            ("country", Qualifier::Country),
            ("asn", Qualifier::Asn),
            ("city", Qualifier::City),
        ];
        NAMES
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(name))
            .map(|(_, qualifier)| *qualifier)
    }
}

fn parse_term(text: &str, span: Range<usize>) -> Result<Clause, QueryError> {
    let term = &text[span.clone()];
    let (negated, body_start) = match term.strip_prefix('-') {
        Some("") => {
            return Err(error_at(
                text,
                span,
                "a lone '-' negates nothing; attach it to a term, as in -action:user.login",
            ));
        }
        Some(_) => (true, span.start + 1),
        None => (false, span.start),
    };
    let body_span = body_start..span.end;
    let body = &text[body_span.clone()];
    let condition = if body.starts_with('"') {
        let (phrase, after_quote) = read_quoted(text, body_span.start);
        if after_quote != body_span.end {
            let message = if text[after_quote..body_span.end].starts_with('*') {
                "'*' works only at the end of an actor:, action: or target: value"
            } else {
                "unexpected text after the closing quote; separate terms with spaces"
            };
            return Err(error_at(text, after_quote..body_span.end, message));
        }
        if text_tokens(&phrase).is_empty() {
            return Err(error_at(
                text,
                body_span,
                "this phrase holds no letters or digits to search for",
            ));
        }
        Condition::Text(TextSearch::Phrase(phrase))
    } else {
        let quote_at = body.find('"').unwrap_or(body.len());
        match body[..quote_at].find(':') {
            Some(colon_at) => parse_qualified(text, body_span.start, colon_at, body_span.end)?,
            None => parse_word(text, body_span)?,
        }
    };
    Ok(Clause {
        negated,
        condition,
        span,
    })
}

fn parse_word(text: &str, span: Range<usize>) -> Result<Condition, QueryError> {
    let word = &text[span.clone()];
    if let Some(star_at) = word.find('*') {
        return Err(error_at(
            text,
            span.start + star_at..span.end,
            "'*' works only at the end of an actor:, action: or target: value",
        ));
    }
    if let Some(quote_at) = word.find('"') {
        return Err(error_at(
            text,
            span.start + quote_at..span.end,
            "a quote may only start a term or a value",
        ));
    }
    if text_tokens(word).is_empty() {
        return Err(error_at(
            text,
            span,
            "this word holds no letters or digits to search for",
        ));
    }
    Ok(Condition::Text(TextSearch::Word(word.to_owned())))
}

fn parse_qualified(
    text: &str,
    body_start: usize,
    colon_at: usize,
    body_end: usize,
) -> Result<Condition, QueryError> {
    let name = &text[body_start..body_start + colon_at];
    let term = &text[body_start..body_end];
    let Some(qualifier) = Qualifier::from_name(name) else {
        return Err(error_at(
            text,
            body_start..body_end,
            format!(
                "unknown qualifier {name:?} (known: actor, action, target, ip, outcome, is, created, country, asn, city); \
                 to search for the text itself, put it in quotes: \"{}\"",
                term.replace('\\', "\\\\").replace('"', "\\\"")
            ),
        ));
    };
    let value_start = body_start + colon_at + 1;
    if value_start == body_end {
        return Err(error_at(
            text,
            body_start..body_end,
            format!("{name}: needs a value"),
        ));
    }
    if qualifier == Qualifier::Created {
        return parse_created(text, value_start..body_end).map(Condition::Created);
    }
    let values = read_values(text, value_start..body_end)?;
    let wildcards_allowed = matches!(
        qualifier,
        Qualifier::Actor | Qualifier::Action | Qualifier::Target
    );
    if let Some(starred) = values
        .iter()
        .find(|value| value.prefix && !wildcards_allowed)
    {
        return Err(error_at(
            text,
            starred.span.clone(),
            "'*' works only at the end of an actor:, action: or target: value",
        ));
    }
    Ok(match qualifier {
        Qualifier::Actor => {
            Condition::Actor(values.into_iter().map(QueryValue::into_pattern).collect())
        }
        Qualifier::Action => {
            Condition::Action(values.into_iter().map(QueryValue::into_pattern).collect())
        }
        Qualifier::Target => {
            Condition::Target(values.into_iter().map(QueryValue::into_pattern).collect())
        }
        Qualifier::Ip => parse_ip_values(text, &values)?,
        Qualifier::Outcome => Condition::Outcome(
            values
                .iter()
                .map(|value| match value.text.as_str() {
                    "success" => Ok(Outcome::Success),
                    "failure" => Ok(Outcome::Failure),
                    _ => Err(error_at(
                        text,
                        value.span.clone(),
                        "outcome: is success or failure",
                    )),
                })
                .collect::<Result<_, _>>()?,
        ),
        Qualifier::Is => Condition::Is(
            values
                .iter()
                .map(|value| match value.text.as_str() {
                    "new-ip" => Ok(EventFlag::NewIp),
                    "new-network" => Ok(EventFlag::NewNetwork),
                    "new-country" => Ok(EventFlag::NewCountry),
                    _ => Err(error_at(
                        text,
                        value.span.clone(),
                        "is: takes new-ip, new-network or new-country",
                    )),
                })
                .collect::<Result<_, _>>()?,
        ),
        Qualifier::Country => Condition::Country(
            values
                .iter()
                .map(|value| {
                    CountryCode::parse(&value.text)
                        .map_err(|error| error_at(text, value.span.clone(), error.to_string()))
                })
                .collect::<Result<_, _>>()?,
        ),
        Qualifier::Asn => Condition::Asn(
            values
                .iter()
                .map(|value| {
                    parse_asn(&value.text)
                        .map_err(|error| error_at(text, value.span.clone(), error.to_string()))
                })
                .collect::<Result<_, _>>()?,
        ),
        Qualifier::City => Condition::City(values.into_iter().map(|value| value.text).collect()),
        Qualifier::Created => unreachable!("created: is parsed above"),
    })
}

/// `ip:` values: addresses and CIDR blocks, or names of known networks, not both in one term.
fn parse_ip_values(text: &str, values: &[QueryValue]) -> Result<Condition, QueryError> {
    let mut networks = Vec::new();
    let mut names = Vec::new();
    let mut first_name_span = None;
    for value in values {
        if let Some(network) = parse_network(&value.text) {
            networks.push(network);
        } else if let Ok(name) = NetworkName::parse(&value.text) {
            first_name_span.get_or_insert(value.span.clone());
            names.push(name);
        } else {
            return Err(error_at(
                text,
                value.span.clone(),
                "not an IP address, CIDR block or known network name (e.g. 203.0.113.9, 203.0.113.0/24, 2001:db8::/32, office)",
            ));
        }
    }
    match (networks.is_empty(), names.is_empty()) {
        (_, true) => Ok(Condition::Ip(networks)),
        (true, false) => Ok(Condition::KnownNetwork(names)),
        (false, false) => Err(error_at(
            text,
            first_name_span.expect("a name was read"),
            "put network names and addresses in separate ip: terms",
        )),
    }
}

/// One comma-separated value of a qualifier, unquoted.
struct QueryValue {
    text: String,
    prefix: bool,
    span: Range<usize>,
}

impl QueryValue {
    fn into_pattern(self) -> TextPattern {
        if self.prefix {
            TextPattern::Prefix(self.text)
        } else {
            TextPattern::Exact(self.text)
        }
    }
}

fn read_values(text: &str, span: Range<usize>) -> Result<Vec<QueryValue>, QueryError> {
    let mut values = Vec::new();
    let mut cursor = span.start;
    loop {
        let value_start = cursor;
        let (value_text, mut value_end) = if text[cursor..span.end].starts_with('"') {
            read_quoted(text, cursor)
        } else {
            let length = text[cursor..span.end]
                .find([',', '"', '*'])
                .unwrap_or(span.end - cursor);
            (text[cursor..cursor + length].to_owned(), cursor + length)
        };
        let prefix = text[value_end..span.end].starts_with('*');
        if prefix {
            value_end += 1;
        }
        let next = text[value_end..span.end].chars().next();
        match next {
            None | Some(',') => {}
            Some('*') => {
                return Err(error_at(
                    text,
                    value_start..span.end,
                    "'*' works only once, at the end of a value",
                ));
            }
            Some('"') => {
                return Err(error_at(
                    text,
                    value_start..span.end,
                    "a quote may only start a value",
                ));
            }
            Some(_) if prefix => {
                return Err(error_at(
                    text,
                    value_start..span.end,
                    "'*' works only at the end of a value",
                ));
            }
            Some(_) => {
                return Err(error_at(
                    text,
                    value_start..span.end,
                    "unexpected text after the closing quote",
                ));
            }
        }
        if value_text.is_empty() {
            return Err(error_at(
                text,
                value_start..value_end.max(value_start + 1).min(span.end),
                "empty value",
            ));
        }
        values.push(QueryValue {
            text: value_text,
            prefix,
            span: value_start..value_end,
        });
        if next.is_none() {
            return Ok(values);
        }
        cursor = value_end + 1;
        if cursor == span.end {
            return Err(error_at(text, value_end..span.end, "empty value after ','"));
        }
    }
}

/// Reads a quoted string starting at the `"` at `quote_at` (the caller checked it is closed).
/// Returns the unescaped text and the position just after the closing quote.
fn read_quoted(text: &str, quote_at: usize) -> (String, usize) {
    let mut unquoted = String::new();
    let mut characters = text[quote_at + 1..].char_indices();
    while let Some((offset, character)) = characters.next() {
        match character {
            '"' => return (unquoted, quote_at + 1 + offset + 1),
            '\\' => match characters.next() {
                Some((_, escaped @ ('"' | '\\'))) => unquoted.push(escaped),
                Some((_, other)) => {
                    unquoted.push('\\');
                    unquoted.push(other);
                }
                None => unquoted.push('\\'),
            },
            other => unquoted.push(other),
        }
    }
    (unquoted, text.len())
}

/// An address (as a /32 or /128) or a CIDR block, canonical: IPv4-mapped IPv6 becomes IPv4 and
/// host bits are dropped. Addresses go through std's strict parser (no zone ids, no octal-looking
/// leading zeros), as at ingest.
pub(crate) fn parse_network(value: &str) -> Option<IpNet> {
    let (address_text, prefix_text) = match value.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (value, None),
    };
    let address: IpAddr = address_text.parse().ok()?;
    let max_prefix = if address.is_ipv4() { 32 } else { 128 };
    let prefix_len = match prefix_text {
        None => max_prefix,
        Some(prefix)
            if !prefix.is_empty()
                && prefix.len() <= 3
                && prefix.bytes().all(|byte| byte.is_ascii_digit()) =>
        {
            prefix
                .parse::<u8>()
                .ok()
                .filter(|prefix_len| *prefix_len <= max_prefix)?
        }
        Some(_) => return None,
    };
    Some(canonical_network(address, prefix_len))
}

fn canonical_network(address: IpAddr, prefix_len: u8) -> IpNet {
    let mapped_v4 = match address {
        IpAddr::V6(v6) if prefix_len >= 96 => v6.to_ipv4_mapped(),
        _ => None,
    };
    if let Some(v4) = mapped_v4 {
        return IpNet::new(IpAddr::V4(v4), prefix_len - 96)
            .expect("a mapped prefix fits IPv4")
            .trunc();
    }
    IpNet::new(address, prefix_len)
        .expect("the prefix length was checked")
        .trunc()
}

/// One end of a `created:` value.
#[derive(Clone, Copy)]
enum TimePoint {
    /// A whole UTC day, given by its first instant.
    Day(OffsetDateTime),
    Instant(OffsetDateTime),
}

impl TimePoint {
    fn first_instant(self) -> OffsetDateTime {
        match self {
            TimePoint::Day(start) | TimePoint::Instant(start) => start,
        }
    }

    /// The first instant after this point (the next day, or one microsecond later).
    fn after(self) -> Option<OffsetDateTime> {
        match self {
            TimePoint::Day(start) => start.checked_add(Duration::DAY),
            TimePoint::Instant(instant) => instant.checked_add(Duration::MICROSECOND),
        }
    }
}

fn parse_created(text: &str, span: Range<usize>) -> Result<TimeRange, QueryError> {
    let value = &text[span.clone()];
    let out_of_range = || error_at(text, span.clone(), "this date is out of range");
    let point_at = |offset: usize, point_text: &str| {
        parse_time_point(point_text).ok_or_else(|| {
            error_at(
                text,
                span.start + offset..span.start + offset + point_text.len(),
                "not a date (2024-06-01) or an RFC 3339 date-time with an offset (2024-06-01T12:00:00Z)",
            )
        })
    };
    type Resolve = fn(TimePoint) -> Option<TimeRange>;
    let comparisons: [(&str, Resolve); 4] = [
        (">=", |point| {
            Some(TimeRange {
                start_inclusive: Some(point.first_instant()),
                end_exclusive: None,
            })
        }),
        ("<=", |point| {
            Some(TimeRange {
                start_inclusive: None,
                end_exclusive: Some(point.after()?),
            })
        }),
        (">", |point| {
            Some(TimeRange {
                start_inclusive: Some(point.after()?),
                end_exclusive: None,
            })
        }),
        ("<", |point| {
            Some(TimeRange {
                start_inclusive: None,
                end_exclusive: Some(point.first_instant()),
            })
        }),
    ];
    for (operator, resolve) in comparisons {
        if let Some(point_text) = value.strip_prefix(operator) {
            let point = point_at(operator.len(), point_text)?;
            return resolve(point).ok_or_else(out_of_range);
        }
    }
    if let Some((start_text, end_text)) = value.split_once("..") {
        if start_text.is_empty() && end_text.is_empty() {
            return Err(error_at(
                text,
                span,
                "a range needs at least one end, as in 2024-06-01..2024-06-30",
            ));
        }
        let start = if start_text.is_empty() {
            None
        } else {
            Some(point_at(0, start_text)?.first_instant())
        };
        let end = if end_text.is_empty() {
            None
        } else {
            Some(
                point_at(start_text.len() + 2, end_text)?
                    .after()
                    .ok_or_else(out_of_range)?,
            )
        };
        if start.zip(end).is_some_and(|(start, end)| end <= start) {
            return Err(error_at(text, span, "this range ends before it starts"));
        }
        return Ok(TimeRange {
            start_inclusive: start,
            end_exclusive: end,
        });
    }
    let point = point_at(0, value)?;
    Ok(TimeRange {
        start_inclusive: Some(point.first_instant()),
        end_exclusive: Some(point.after().ok_or_else(out_of_range)?),
    })
}

fn parse_time_point(point_text: &str) -> Option<TimePoint> {
    let bytes = point_text.as_bytes();
    let is_date = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(index, byte)| index == 4 || index == 7 || byte.is_ascii_digit());
    if is_date {
        let year: i32 = point_text[0..4].parse().ok()?;
        let month: u8 = point_text[5..7].parse().ok()?;
        let day: u8 = point_text[8..10].parse().ok()?;
        let date = Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()?;
        return Some(TimePoint::Day(date.midnight().assume_utc()));
    }
    let instant = OffsetDateTime::parse(point_text, &Rfc3339).ok()?;
    Some(TimePoint::Instant(instant.to_offset(UtcOffset::UTC)))
}

// ---------------------------------------------------------------------------------------------
// Canonical text.

impl fmt::Display for Query {
    /// Canonical text: parsing it gives back an equal query (apart from spans).
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, clause) in self.clauses.iter().enumerate() {
            if index > 0 {
                formatter.write_str(" ")?;
            }
            write!(formatter, "{clause}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Clause {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negated {
            formatter.write_str("-")?;
        }
        match &self.condition {
            Condition::Actor(patterns) => write_patterns(formatter, "actor", patterns),
            Condition::Action(patterns) => write_patterns(formatter, "action", patterns),
            Condition::Target(patterns) => write_patterns(formatter, "target", patterns),
            Condition::Ip(networks) => {
                formatter.write_str("ip:")?;
                for (index, network) in networks.iter().enumerate() {
                    if index > 0 {
                        formatter.write_str(",")?;
                    }
                    if network.prefix_len() == network.max_prefix_len() {
                        write!(formatter, "{}", network.addr())?;
                    } else {
                        write!(formatter, "{network}")?;
                    }
                }
                Ok(())
            }
            Condition::KnownNetwork(names) => {
                formatter.write_str("ip:")?;
                let names: Vec<&str> = names.iter().map(NetworkName::as_str).collect();
                formatter.write_str(&names.join(","))
            }
            Condition::Outcome(outcomes) => {
                formatter.write_str("outcome:")?;
                let names: Vec<&str> = outcomes.iter().map(|outcome| outcome.as_str()).collect();
                formatter.write_str(&names.join(","))
            }
            Condition::Is(flags) => {
                formatter.write_str("is:")?;
                let names: Vec<&str> = flags
                    .iter()
                    .map(|flag| match flag {
                        EventFlag::NewIp => "new-ip",
                        EventFlag::NewNetwork => "new-network",
                        EventFlag::NewCountry => "new-country",
                    })
                    .collect();
                formatter.write_str(&names.join(","))
            }
            Condition::Created(range) => write_time_range(formatter, range),
            Condition::Country(codes) => {
                formatter.write_str("country:")?;
                let codes: Vec<&str> = codes.iter().map(CountryCode::as_str).collect();
                formatter.write_str(&codes.join(","))
            }
            Condition::Asn(numbers) => {
                formatter.write_str("asn:")?;
                let numbers: Vec<String> = numbers.iter().map(u32::to_string).collect();
                formatter.write_str(&numbers.join(","))
            }
            Condition::City(cities) => {
                let patterns: Vec<TextPattern> =
                    cities.iter().cloned().map(TextPattern::Exact).collect();
                write_patterns(formatter, "city", &patterns)
            }
            Condition::Text(TextSearch::Word(word)) => formatter.write_str(word),
            Condition::Text(TextSearch::Phrase(phrase)) => write_quoted(formatter, phrase),
        }
    }
}

fn write_patterns(
    formatter: &mut fmt::Formatter<'_>,
    name: &str,
    patterns: &[TextPattern],
) -> fmt::Result {
    write!(formatter, "{name}:")?;
    for (index, pattern) in patterns.iter().enumerate() {
        if index > 0 {
            formatter.write_str(",")?;
        }
        let (value, prefix) = match pattern {
            TextPattern::Exact(value) => (value, false),
            TextPattern::Prefix(value) => (value, true),
        };
        let needs_quotes = value.is_empty()
            || value.contains(|character: char| {
                character.is_whitespace() || matches!(character, '"' | ',' | '*')
            });
        if needs_quotes {
            write_quoted(formatter, value)?;
        } else {
            formatter.write_str(value)?;
        }
        if prefix {
            formatter.write_str("*")?;
        }
    }
    Ok(())
}

fn write_quoted(formatter: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    formatter.write_str("\"")?;
    for character in text.chars() {
        if matches!(character, '"' | '\\') {
            formatter.write_str("\\")?;
        }
        write!(formatter, "{character}")?;
    }
    formatter.write_str("\"")
}

fn write_time_range(formatter: &mut fmt::Formatter<'_>, range: &TimeRange) -> fmt::Result {
    let format_instant = |instant: OffsetDateTime| {
        instant
            .to_offset(UtcOffset::UTC)
            .format(&Rfc3339)
            .map_err(|_| fmt::Error)
    };
    formatter.write_str("created:")?;
    match (range.start_inclusive, range.end_exclusive) {
        (Some(start), None) => write!(formatter, ">={}", format_instant(start)?),
        (None, Some(end)) => write!(formatter, "<{}", format_instant(end)?),
        (Some(start), Some(end)) => {
            // `a..b` includes b, so the inclusive end is one microsecond before the exclusive one.
            let inclusive_end = end.checked_sub(Duration::MICROSECOND).ok_or(fmt::Error)?;
            write!(
                formatter,
                "{}..{}",
                format_instant(start)?,
                format_instant(inclusive_end)?
            )
        }
        (None, None) => formatter.write_str(".."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::AccountId;
    use crate::event::{Actor, Target};
    use proptest::prelude::*;
    use time::macros::datetime;

    fn conditions(text: &str) -> Vec<(bool, Condition)> {
        parse(text)
            .unwrap()
            .clauses
            .into_iter()
            .map(|clause| (clause.negated, clause.condition))
            .collect()
    }

    fn only_condition(text: &str) -> Condition {
        let mut parsed = conditions(text);
        assert_eq!(parsed.len(), 1, "{text}");
        parsed.remove(0).1
    }

    fn parse_error(text: &str) -> QueryError {
        parse(text).expect_err(text)
    }

    fn exact(value: &str) -> TextPattern {
        TextPattern::Exact(value.to_owned())
    }

    fn prefix(value: &str) -> TextPattern {
        TextPattern::Prefix(value.to_owned())
    }

    fn network(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    fn range(start: Option<OffsetDateTime>, end: Option<OffsetDateTime>) -> Condition {
        Condition::Created(TimeRange {
            start_inclusive: start,
            end_exclusive: end,
        })
    }

    fn without_spans(mut query: Query) -> Query {
        for clause in &mut query.clauses {
            clause.span = 0..0;
        }
        query
    }

    #[test]
    fn the_product_example_parses_into_one_clause_per_term() {
        let query = parse(
            "actor:alice@acme.com action:server.* -action:user.login ip:203.0.113.0/24 outcome:failure \
             created:>=2024-06-01 created:<2024-07-01 is:new-ip \"reboot web-1\"",
        )
        .unwrap();
        let parsed: Vec<_> = query
            .clauses
            .iter()
            .map(|clause| (clause.negated, clause.condition.clone()))
            .collect();
        assert_eq!(
            parsed,
            vec![
                (false, Condition::Actor(vec![exact("alice@acme.com")])),
                (false, Condition::Action(vec![prefix("server.")])),
                (true, Condition::Action(vec![exact("user.login")])),
                (false, Condition::Ip(vec![network("203.0.113.0/24")])),
                (false, Condition::Outcome(vec![Outcome::Failure])),
                (false, range(Some(datetime!(2024-06-01 0:00 UTC)), None)),
                (false, range(None, Some(datetime!(2024-07-01 0:00 UTC)))),
                (false, Condition::Is(vec![EventFlag::NewIp])),
                (
                    false,
                    Condition::Text(TextSearch::Phrase("reboot web-1".into()))
                ),
            ]
        );
        assert_eq!(query.clauses[2].span, 37..55);
    }

    #[test]
    fn an_empty_or_blank_query_has_no_clauses() {
        assert!(parse("").unwrap().is_empty());
        assert!(parse(" \t\n ").unwrap().is_empty());
    }

    #[test]
    fn quoted_values_may_hold_spaces_commas_and_escaped_quotes() {
        assert_eq!(
            only_condition(r#"actor:"Alice Smith""#),
            Condition::Actor(vec![exact("Alice Smith")])
        );
        assert_eq!(
            only_condition(r#"actor:"a,b",c,"say \"hi\" \\ \x""#),
            Condition::Actor(vec![exact("a,b"), exact("c"), exact(r#"say "hi" \ \x"#)])
        );
        assert_eq!(
            only_condition(r#"target:"web *"*"#),
            Condition::Target(vec![prefix("web *")])
        );
    }

    #[test]
    fn commas_give_alternatives() {
        assert_eq!(
            only_condition("action:user.login,user.logout"),
            Condition::Action(vec![exact("user.login"), exact("user.logout")])
        );
        assert_eq!(
            only_condition("outcome:success,failure"),
            Condition::Outcome(vec![Outcome::Success, Outcome::Failure])
        );
    }

    #[test]
    fn a_trailing_star_is_a_prefix_and_any_other_star_is_an_error() {
        assert_eq!(
            only_condition("target:web-*,db-1"),
            Condition::Target(vec![prefix("web-"), exact("db-1")])
        );
        for bad in [
            "action:ser*ver",
            "action:*server",
            "action:server**",
            "reboot*",
            "ip:10.*",
            "\"phrase\"*",
            "outcome:succ*",
        ] {
            assert!(parse_error(bad).message.contains('*'), "{bad}");
        }
        assert_eq!(parse_error("x action:a.b*c").position, 2 + "action:".len());
    }

    #[test]
    fn qualifier_names_ignore_case() {
        assert_eq!(
            only_condition("Actor:alice"),
            Condition::Actor(vec![exact("alice")])
        );
    }

    #[test]
    fn ip_takes_addresses_and_cidr_blocks_canonically() {
        assert_eq!(
            only_condition(
                "ip:203.0.113.9,2001:db8::1,::ffff:198.51.100.7,10.1.2.3/8,2001:db8:ffff::/32,::ffff:192.0.2.1/120"
            ),
            Condition::Ip(vec![
                network("203.0.113.9/32"),
                network("2001:db8::1/128"),
                network("198.51.100.7/32"),
                network("10.0.0.0/8"),
                network("2001:db8::/32"),
                network("192.0.2.0/24"),
            ])
        );
    }

    #[test]
    fn a_bad_ip_or_cidr_points_at_the_bad_alternative() {
        for bad in [
            "ip:300.1.1.1",
            "ip:10.0.0.0/33",
            "ip:2001:db8::/129",
            "ip:fe80::1%eth0",
            "ip:010.0.0.1",
            "ip:1.2.3.4/",
            "ip:1.2.3.4/+8",
            "ip:Host",
            "ip:host.example",
        ] {
            parse_error(bad);
        }
        let error = parse_error("ip:10.0.0.1,nope");
        assert_eq!((error.position, error.term.as_str()), (12, "nope"));
    }

    #[test]
    fn outcome_and_is_take_only_their_known_values() {
        assert_eq!(parse_error("outcome:ok").term, "ok");
        assert_eq!(parse_error("is:new").term, "new");
        assert_eq!(
            only_condition("-is:new-ip"),
            Condition::Is(vec![EventFlag::NewIp])
        );
    }

    #[test]
    fn created_comparisons_resolve_dates_as_whole_utc_days() {
        let june_1 = datetime!(2024-06-01 0:00 UTC);
        let june_2 = datetime!(2024-06-02 0:00 UTC);
        assert_eq!(
            only_condition("created:>=2024-06-01"),
            range(Some(june_1), None)
        );
        assert_eq!(
            only_condition("created:>2024-06-01"),
            range(Some(june_2), None)
        );
        assert_eq!(
            only_condition("created:<2024-06-01"),
            range(None, Some(june_1))
        );
        assert_eq!(
            only_condition("created:<=2024-06-01"),
            range(None, Some(june_2))
        );
        assert_eq!(
            only_condition("created:2024-06-01"),
            range(Some(june_1), Some(june_2))
        );
        assert_eq!(
            only_condition("created:2024-06-01..2024-06-30"),
            range(Some(june_1), Some(datetime!(2024-07-01 0:00 UTC)))
        );
        assert_eq!(
            only_condition("created:2024-06-01.."),
            range(Some(june_1), None)
        );
        assert_eq!(
            only_condition("created:..2024-06-01"),
            range(None, Some(june_2))
        );
    }

    #[test]
    fn created_comparisons_with_date_times_work_to_the_microsecond() {
        let instant = datetime!(2024-06-01 10:00 UTC);
        let micro = Duration::MICROSECOND;
        assert_eq!(
            only_condition("created:>2024-06-01T12:00:00+02:00"),
            range(Some(instant + micro), None)
        );
        assert_eq!(
            only_condition("created:>=2024-06-01T10:00:00Z"),
            range(Some(instant), None)
        );
        assert_eq!(
            only_condition("created:<2024-06-01T10:00:00Z"),
            range(None, Some(instant))
        );
        assert_eq!(
            only_condition("created:<=2024-06-01T10:00:00Z"),
            range(None, Some(instant + micro))
        );
        assert_eq!(
            only_condition("created:2024-06-01T10:00:00Z..2024-06-01T11:00:00.5Z"),
            range(
                Some(instant),
                Some(datetime!(2024-06-01 11:00:00.500001 UTC))
            )
        );
        assert_eq!(
            only_condition("created:2024-06-01..2024-06-01T11:00:00Z"),
            range(
                Some(datetime!(2024-06-01 0:00 UTC)),
                Some(datetime!(2024-06-01 11:00:00.000001 UTC))
            )
        );
    }

    #[test]
    fn a_bad_date_is_an_error_pointing_at_it() {
        for bad in [
            "created:2024-13-01",
            "created:2024-02-30",
            "created:>=yesterday",
            "created:2024-06-01T10:00:00",
            "created:..",
            "created:2024-06-02..2024-06-01",
            "created:>=",
            "created:2024-6-1",
        ] {
            parse_error(bad);
        }
        let error = parse_error("created:2024-06-01..2024-06-99");
        assert_eq!((error.position, error.term.as_str()), (20, "2024-06-99"));
    }

    #[test]
    fn bare_words_and_quoted_phrases_search_the_message() {
        assert_eq!(
            conditions("reboot \"web 1\" -failed"),
            vec![
                (false, Condition::Text(TextSearch::Word("reboot".into()))),
                (false, Condition::Text(TextSearch::Phrase("web 1".into()))),
                (true, Condition::Text(TextSearch::Word("failed".into()))),
            ]
        );
    }

    #[test]
    fn an_unknown_qualifier_is_an_error_suggesting_quotes() {
        let error = parse_error("reboot foo:bar");
        assert_eq!((error.position, error.term.as_str()), (7, "foo:bar"));
        assert!(error.message.contains("\"foo:bar\""), "{}", error.message);
        assert_eq!(
            only_condition("\"foo:bar\""),
            Condition::Text(TextSearch::Phrase("foo:bar".into()))
        );
        parse_error("https://example.com");
    }

    #[test]
    fn an_empty_value_is_an_error() {
        for bad in [
            "actor:",
            "actor:a,",
            "actor:,a",
            "action:a,,b",
            "actor:\"\"",
            "action:*",
            "-ip:",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_unterminated_quote_is_an_error_at_the_quote() {
        let error = parse_error("reboot \"web 1");
        assert_eq!((error.position, error.term.as_str()), (7, "\"web 1"));
        parse_error("actor:\"alice");
        parse_error("\"escaped end\\\"");
    }

    #[test]
    fn a_lone_minus_is_an_error() {
        let error = parse_error("reboot - web");
        assert_eq!((error.position, error.term.as_str()), (7, "-"));
    }

    #[test]
    fn text_without_letters_or_digits_is_an_error() {
        parse_error("...");
        parse_error("\"--\"");
    }

    #[test]
    fn text_after_a_closing_quote_is_an_error() {
        parse_error("\"a\"b");
        parse_error("actor:\"a\"b");
        parse_error("word\"quoted\"");
    }

    #[test]
    fn a_query_beyond_the_size_or_clause_limits_is_an_error() {
        assert!(parse(&"a".repeat(MAX_QUERY_BYTES)).is_ok());
        assert!(
            parse(&"a".repeat(MAX_QUERY_BYTES + 1))
                .unwrap_err()
                .message
                .contains("longer")
        );
        let at_limit = vec!["word"; MAX_QUERY_CLAUSES].join(" ");
        assert_eq!(parse(&at_limit).unwrap().clauses.len(), MAX_QUERY_CLAUSES);
        let error = parse_error(&format!("{at_limit} extra"));
        assert_eq!(
            (error.position, error.term.as_str()),
            (at_limit.len() + 1, "extra")
        );
    }

    #[test]
    fn text_tokens_are_lowercase_runs_of_letters_and_digits() {
        assert_eq!(
            text_tokens("Rebooted server WEB-1 (Café, 東京)!"),
            vec!["rebooted", "server", "web", "1", "café", "東京"]
        );
        assert!(text_tokens(" -- ").is_empty());
    }

    fn sample_event() -> StoredEvent {
        StoredEvent {
            seq: 7,
            id: "e-7".into(),
            account: AccountId::parse("acme").unwrap(),
            created_at: datetime!(2024-06-15 08:30:00 UTC),
            received_at: datetime!(2024-06-15 08:30:01 UTC),
            action: "server.reboot".into(),
            message: "Rebooted server web-1 after the Kernel update".into(),
            actor: Some(Actor {
                id: "alice@acme.com".into(),
                name: Some("Alice".into()),
                actor_type: None,
            }),
            ip: Some("203.0.113.9".parse().unwrap()),
            user_agent: None,
            outcome: Some(Outcome::Success),
            targets: vec![
                Target {
                    target_type: "server".into(),
                    id: "web-1".into(),
                    name: None,
                },
                Target {
                    target_type: "project".into(),
                    id: "prod".into(),
                    name: None,
                },
            ],
            changes: vec![],
            metadata: None,
            key: None,
            ip_network: None,
            leaf_version: None,
            salt: None,
            salts: None,
            removed: Vec::new(),
            removed_commitments: None,
            location: Some(crate::location::Location {
                country_code: Some("IN".into()),
                city: Some("Mumbai".into()),
                asn: Some(9829),
                ..Default::default()
            }),
            new_ip: true,
            new_network: false,
            new_country: true,
        }
    }

    fn matches(text: &str) -> bool {
        parse(text).unwrap().matches(&sample_event())
    }

    #[test]
    fn qualifiers_match_their_fields_exactly_or_by_prefix() {
        for matching in [
            "actor:alice@acme.com",
            "actor:alice*",
            "action:server.*",
            "action:user.login,server.reboot",
            "target:prod",
            "target:web-*",
            "ip:203.0.113.0/24",
            "ip:::ffff:203.0.113.9",
            "outcome:success",
            "is:new-ip",
            "is:new-country",
            "is:new-network,new-country",
        ] {
            assert!(matches(matching), "{matching}");
        }
        for missing in [
            "actor:alice",
            "actor:Alice@acme.com",
            "action:server",
            "target:web",
            "ip:198.51.100.0/24",
            "outcome:failure",
            "-is:new-ip",
            "is:new-network",
            "-is:new-country",
        ] {
            assert!(!matches(missing), "{missing}");
        }
        assert!(matches("is:new-network,new-ip"));
        assert!(matches("-is:new-network"));
    }

    #[test]
    fn location_terms_match_the_events_country_asn_and_city() {
        for matching in [
            "country:IN",
            "country:in",
            "country:SG,IN",
            "asn:9829",
            "asn:AS9829,13335",
            "city:Mumbai",
            r#"city:"Mumbai",Pune"#,
            "-country:SG",
        ] {
            assert!(matches(matching), "{matching}");
        }
        for missing in ["country:SG", "asn:13335", "city:mumbai", "-city:Mumbai"] {
            assert!(!matches(missing), "{missing}");
        }
        let mut unlocated = sample_event();
        unlocated.location = None;
        assert!(!parse("country:IN").unwrap().matches(&unlocated));
        assert!(parse("-asn:9829").unwrap().matches(&unlocated));
        assert_eq!(
            parse("country:in,SG asn:AS9829 city:\"New York\"")
                .unwrap()
                .to_string(),
            "country:IN,SG asn:9829 city:\"New York\""
        );
    }

    #[test]
    fn a_malformed_country_or_asn_is_an_error_at_the_value() {
        let error = parse("action:user.login country:IN,IND").unwrap_err();
        assert_eq!((error.position, error.term.as_str()), (29, "IND"));
        assert!(error.message.contains("two-letter"), "{}", error.message);
        let error = parse("asn:98x29").unwrap_err();
        assert_eq!((error.position, error.term.as_str()), (4, "98x29"));
        assert!(error.message.contains("ASN"), "{}", error.message);
        assert_eq!(parse_error("asn:4294967296").term, "4294967296");
        assert_eq!(parse_error("country:I*").term, "I*");
    }

    #[test]
    fn ip_takes_known_network_names_in_their_own_terms() {
        assert_eq!(
            only_condition("ip:office,home-vpn"),
            Condition::KnownNetwork(vec![
                NetworkName::parse("office").unwrap(),
                NetworkName::parse("home-vpn").unwrap()
            ])
        );
        assert_eq!(
            parse("ip:office,10.0.0.0/8").unwrap_err().message,
            "put network names and addresses in separate ip: terms"
        );
        assert!(
            parse_error("ip:Office")
                .message
                .contains("known network name")
        );
        assert_eq!(parse("-ip:office").unwrap().to_string(), "-ip:office");
    }

    #[test]
    fn known_network_names_match_once_resolved_and_never_before() {
        let office = KnownNetwork {
            name: NetworkName::parse("office").unwrap(),
            blocks: vec!["203.0.113.0/24".parse().unwrap()],
            updated_at: OffsetDateTime::UNIX_EPOCH,
        };
        let vpn = KnownNetwork {
            name: NetworkName::parse("vpn").unwrap(),
            blocks: vec!["10.8.0.0/16".parse().unwrap()],
            updated_at: OffsetDateTime::UNIX_EPOCH,
        };
        let networks = [office, vpn];
        let event = sample_event();
        let query = parse("ip:office").unwrap();
        assert!(!query.matches(&event));
        assert!(query.resolve_known_networks(&networks).matches(&event));
        let vpn_only = parse("ip:vpn").unwrap().resolve_known_networks(&networks);
        assert!(!vpn_only.matches(&event));
        let unknown = parse("-ip:lab").unwrap().resolve_known_networks(&networks);
        assert!(unknown.matches(&event));
    }

    #[test]
    fn a_query_whose_canonical_text_is_over_the_limit_is_refused_up_front() {
        // A backslash before an ordinary character is kept as is but prints escaped (`\\q`), so
        // this query fits the limit and its canonical text does not.
        let text = format!("\"{}\"", r"\q".repeat(1000));
        assert!(text.len() <= MAX_QUERY_BYTES, "{}", text.len());
        let error = parse(&text).unwrap_err();
        assert!(error.message.contains("written out in full"), "{error}");
    }

    #[test]
    fn created_ranges_match_in_microseconds() {
        assert!(matches("created:2024-06-15"));
        assert!(matches(
            "created:>=2024-06-15T08:30:00Z created:<=2024-06-15T08:30:00Z"
        ));
        assert!(!matches("created:>2024-06-15T08:30:00Z"));
        assert!(!matches("created:<2024-06-15T08:30:00Z"));
        assert!(!matches("created:2024-06-16.."));
    }

    #[test]
    fn text_matches_whole_words_case_insensitively_and_phrases_in_order() {
        for matching in [
            "rebooted",
            "KERNEL",
            "web-1",
            "\"server web 1\"",
            "\"kernel update\"",
            "web",
            "1",
        ] {
            assert!(matches(matching), "{matching}");
        }
        for missing in [
            "reboot",
            "kern",
            "\"update kernel\"",
            "\"server 1\"",
            "web-2",
        ] {
            assert!(!matches(missing), "{missing}");
        }
    }

    #[test]
    fn negation_keeps_events_without_the_field() {
        let mut event = sample_event();
        event.actor = None;
        event.ip = None;
        assert!(
            parse("-actor:alice@acme.com -ip:203.0.113.9 -outcome:failure")
                .unwrap()
                .matches(&event)
        );
        assert!(!parse("actor:alice@acme.com").unwrap().matches(&event));
    }

    #[test]
    fn all_clauses_must_match() {
        assert!(matches("actor:alice* rebooted -outcome:failure"));
        assert!(!matches("actor:alice* rebooted outcome:failure"));
        assert!(matches(""));
    }

    #[test]
    fn display_prints_canonical_text() {
        let query = parse(r#"Actor:"Alice Smith",bob -action:server.*  ip:::ffff:10.0.0.1,10.9.9.9/8 created:2024-06-01..2024-06-30 "say \"hi\"" web-1"#).unwrap();
        assert_eq!(
            query.to_string(),
            r#"actor:"Alice Smith",bob -action:server.* ip:10.0.0.1,10.0.0.0/8 created:2024-06-01T00:00:00Z..2024-06-30T23:59:59.999999Z "say \"hi\"" web-1"#
        );
    }

    fn pattern_text() -> impl Strategy<Value = String> {
        prop_oneof!["[a-z0-9@._-]{1,12}", "[a-zA-Z0-9 ,*\"\\\\:é-]{1,12}",]
    }

    fn text_pattern() -> impl Strategy<Value = TextPattern> {
        (pattern_text(), any::<bool>()).prop_map(|(text, is_prefix)| {
            if is_prefix {
                TextPattern::Prefix(text)
            } else {
                TextPattern::Exact(text)
            }
        })
    }

    fn ip_network() -> impl Strategy<Value = IpNet> {
        prop_oneof![
            (any::<std::net::Ipv4Addr>(), 0u8..=32).prop_map(|(address, prefix_len)| {
                canonical_network(IpAddr::V4(address), prefix_len)
            }),
            (any::<std::net::Ipv6Addr>(), 0u8..=128).prop_map(|(address, prefix_len)| {
                canonical_network(IpAddr::V6(address), prefix_len)
            }),
        ]
    }

    fn micros_instant() -> impl Strategy<Value = OffsetDateTime> {
        (0i64..253_402_300_000_000_000).prop_map(|micros| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000).unwrap()
        })
    }

    fn time_range() -> impl Strategy<Value = TimeRange> {
        (micros_instant(), micros_instant(), 0u8..3).prop_map(|(first, second, shape)| {
            let (start, end) = if first < second {
                (first, second)
            } else if first > second {
                (second, first)
            } else {
                (first, first + Duration::MICROSECOND)
            };
            match shape {
                0 => TimeRange {
                    start_inclusive: Some(start),
                    end_exclusive: None,
                },
                1 => TimeRange {
                    start_inclusive: None,
                    end_exclusive: Some(end),
                },
                _ => TimeRange {
                    start_inclusive: Some(start),
                    end_exclusive: Some(end),
                },
            }
        })
    }

    fn condition() -> impl Strategy<Value = Condition> {
        prop_oneof![
            proptest::collection::vec(text_pattern(), 1..4).prop_map(Condition::Actor),
            proptest::collection::vec(text_pattern(), 1..4).prop_map(Condition::Action),
            proptest::collection::vec(text_pattern(), 1..4).prop_map(Condition::Target),
            proptest::collection::vec(ip_network(), 1..4).prop_map(Condition::Ip),
            proptest::collection::vec(
                prop_oneof![Just(Outcome::Success), Just(Outcome::Failure)],
                1..3
            )
            .prop_map(Condition::Outcome),
            Just(Condition::Is(vec![EventFlag::NewIp])),
            Just(Condition::Is(vec![EventFlag::NewNetwork, EventFlag::NewIp])),
            Just(Condition::Is(vec![EventFlag::NewCountry])),
            proptest::collection::vec("[a-z][a-z0-9_-]{0,10}", 1..3).prop_map(|names| {
                Condition::KnownNetwork(
                    names
                        .iter()
                        .map(|name| NetworkName::parse(name).unwrap())
                        .collect(),
                )
            }),
            time_range().prop_map(Condition::Created),
            proptest::collection::vec("[A-Z]{2}", 1..3).prop_map(|codes| {
                Condition::Country(
                    codes
                        .iter()
                        .map(|code| CountryCode::parse(code).unwrap())
                        .collect(),
                )
            }),
            proptest::collection::vec(any::<u32>(), 1..3).prop_map(Condition::Asn),
            proptest::collection::vec(pattern_text(), 1..3).prop_map(Condition::City),
            "[a-zA-Z0-9é][a-zA-Z0-9é._@-]{0,12}"
                .prop_map(|word| Condition::Text(TextSearch::Word(word))),
            "[a-z0-9][a-zA-Z0-9 ,*\"\\\\:é-]{0,16}"
                .prop_map(|phrase| Condition::Text(TextSearch::Phrase(phrase))),
        ]
    }

    fn query() -> impl Strategy<Value = Query> {
        proptest::collection::vec((any::<bool>(), condition()), 0..8).prop_map(|clauses| Query {
            clauses: clauses
                .into_iter()
                .map(|(negated, condition)| Clause {
                    negated,
                    condition,
                    span: 0..0,
                })
                .collect(),
        })
    }

    proptest! {
        #[test]
        fn canonical_text_parses_back_to_the_same_query(query in query()) {
            let text = query.to_string();
            let reparsed = parse(&text).map_err(|error| TestCaseError::fail(format!("{text:?}: {error}")))?;
            prop_assert_eq!(without_spans(reparsed), query);
        }

        #[test]
        fn spans_cover_each_term_of_the_text(query in query()) {
            let text = query.to_string();
            let reparsed = parse(&text).unwrap();
            for (clause, original) in reparsed.clauses.iter().zip(&query.clauses) {
                let reparsed_clause = parse(&text[clause.span.clone()]).unwrap();
                prop_assert_eq!(&reparsed_clause.clauses[0].condition, &original.condition);
            }
        }

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            if let Ok(query) = parse(&text) {
                let _ = query.matches(&sample_event());
                let _ = query.to_string();
            }
        }

        #[test]
        fn query_like_text_never_panics(text in "[-a-z:*\",.<>=/ 0-9TZ+\\\\]{0,40}") {
            if let Ok(query) = parse(&text) {
                let _ = query.matches(&sample_event());
                prop_assert!(parse(&query.to_string()).is_ok(), "{}", query);
            }
        }

        #[test]
        fn a_word_matches_any_message_that_holds_it(before in "[a-z ]{0,20}", word in "[a-zA-Z0-9]{1,10}", after in "[a-z ]{0,20}") {
            let mut event = sample_event();
            event.message = format!("{before} {word}, {after}");
            prop_assert!(parse(&word).unwrap().matches(&event));
        }
    }
}
