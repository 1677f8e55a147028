//! Narrowing the Activity Logs by clicking what a row or the event view shows (issue 21, item 2),
//! and the short relative times of the table.
//!
//! A clickable actor, IP, action or target is a submit button of one small form that holds the
//! current query: its value is one query term written by the query language's own printer
//! (`Clause`'s `Display`), so a hostile value stays one quoted, inert term. The list handler folds
//! `add=` or `exclude=` into `q` and redirects, so the address bar only ever holds query text.
//! This needs no script and keeps the page small: the query is written once, not in 300 links.

use std::net::IpAddr;

use ipnet::IpNet;
use logbook_core::query::{self, Clause, Condition, TextPattern};
use time::{Duration, OffsetDateTime};

use crate::web::render::visible;

/// One value a person can click to narrow the list to it.
pub struct NarrowTerm {
    /// The query term, as the query language prints it (`actor:"Alice Smith"`); the button's value.
    pub term: String,
    /// The same term with controls, bidi and zero-width characters made visible, for hovers.
    pub shown: String,
}

impl NarrowTerm {
    fn of(condition: Condition) -> Self {
        let term = Clause {
            negated: false,
            condition,
            span: 0..0,
        }
        .to_string();
        let shown = visible(&term).into_owned();
        Self { term, shown }
    }

    pub fn actor(id: &str) -> Self {
        Self::of(Condition::Actor(vec![TextPattern::Exact(id.to_owned())]))
    }

    pub fn action(action: &str) -> Self {
        Self::of(Condition::Action(vec![TextPattern::Exact(
            action.to_owned(),
        )]))
    }

    pub fn target(id: &str) -> Self {
        Self::of(Condition::Target(vec![TextPattern::Exact(id.to_owned())]))
    }

    pub fn ip(ip: IpAddr) -> Self {
        Self::of(Condition::Ip(vec![IpNet::from(ip)]))
    }
}

/// `q` with `term` added (or, with `exclude`, added negated), or `None` when `term` is not exactly
/// one term of the query language. A term on the same condition already in `q`, included or
/// excluded, is replaced, as is any `created:` term by a `created:` term, so clicking "exclude" after "include" flips it instead of asking for
/// both. A `q` that does not parse keeps its text and gets the term after it (the page then shows
/// the parse error with the term in place).
pub fn narrowed_query(q: &str, term: &str, exclude: bool) -> Option<String> {
    let mut term_query = query::parse(term).ok()?;
    if term_query.clauses.len() != 1 {
        return None;
    }
    let mut clause = term_query.clauses.remove(0);
    clause.negated = exclude;
    if q.trim().is_empty() {
        return Some(clause.to_string());
    }
    match query::parse(q) {
        Ok(mut current) => {
            // A `created:` range (a timeline bar) replaces the search's range instead of adding a
            // second one beside it.
            let replaces = |existing: &Clause| {
                existing.condition == clause.condition
                    || (matches!(existing.condition, Condition::Created(_))
                        && matches!(clause.condition, Condition::Created(_)))
            };
            current.clauses.retain(|existing| !replaces(existing));
            current.clauses.push(clause);
            Some(current.to_string())
        }
        Err(_) => Some(format!("{} {clause}", q.trim())),
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// A short time for the table, relative to `now`, both read in UTC ("just now", "3 min ago",
/// "today 14:02", "yesterday 14:02", "Tue 14:02", "Jun 1, 09:12", "Jun 1, 2024"). The page's
/// script writes the same words in the reader's own time zone (`relativeTime` in app.js).
pub fn relative_time_text(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    let now = now.to_offset(time::UtcOffset::UTC);
    let ago = now - at;
    let clock = format!("{:02}:{:02}", at.hour(), at.minute());
    let month = MONTHS[usize::from(u8::from(at.month())) - 1];
    if ago >= Duration::ZERO && ago < Duration::minutes(1) {
        return "just now".to_owned();
    }
    if ago >= Duration::ZERO && ago < Duration::hours(1) {
        return format!("{} min ago", ago.whole_minutes());
    }
    let days_back = (now.date() - at.date()).whole_days();
    match days_back {
        0 => format!("today {clock}"),
        1 => format!("yesterday {clock}"),
        2..=6 => format!(
            "{} {clock}",
            WEEKDAYS[usize::from(at.weekday().number_days_from_monday())]
        ),
        _ if at.year() == now.year() => format!("{month} {}, {clock}", at.day()),
        _ => format!("{month} {}, {}", at.day(), at.year()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_clicked_value_becomes_one_quoted_term_of_the_query_language() {
        assert_eq!(
            NarrowTerm::actor("alice@acme.example").term,
            "actor:alice@acme.example"
        );
        assert_eq!(
            NarrowTerm::actor("Alice Smith").term,
            "actor:\"Alice Smith\""
        );
        assert_eq!(
            NarrowTerm::ip("2001:db8::1".parse().unwrap()).term,
            "ip:2001:db8::1"
        );
        assert_eq!(NarrowTerm::target("fw_1").term, "target:fw_1");
        // A hostile value stays one exact term: quotes escaped, `*` not a prefix, no extra clause.
        let hostile = "x\" -actor:y outcome:failure *";
        let term = NarrowTerm::action(hostile);
        let parsed = query::parse(&term.term).unwrap();
        assert_eq!(parsed.clauses.len(), 1);
        assert_eq!(
            parsed.clauses[0].condition,
            Condition::Action(vec![TextPattern::Exact(hostile.to_owned())])
        );
        assert_eq!(
            NarrowTerm::actor("invoice\u{202E}fdp").shown,
            "actor:invoice\\u{202E}fdp"
        );
    }

    #[test]
    fn narrowing_adds_the_term_and_replaces_one_on_the_same_value() {
        assert_eq!(
            narrowed_query("", "actor:alice", false).unwrap(),
            "actor:alice"
        );
        assert_eq!(
            narrowed_query("reboot", "actor:alice", false).unwrap(),
            "reboot actor:alice"
        );
        assert_eq!(
            narrowed_query("reboot actor:alice", "actor:alice", true).unwrap(),
            "reboot -actor:alice"
        );
        assert_eq!(
            narrowed_query("reboot -actor:alice", "actor:alice", true).unwrap(),
            "reboot -actor:alice"
        );
        assert_eq!(
            narrowed_query("actor:bob", "actor:alice", false).unwrap(),
            "actor:bob actor:alice"
        );
        assert_eq!(
            narrowed_query("\"unclosed", "ip:192.0.2.1", false).unwrap(),
            "\"unclosed ip:192.0.2.1"
        );
        assert_eq!(narrowed_query("", "actor:a actor:b", false), None);
        assert_eq!(narrowed_query("", "", false), None);
        assert_eq!(narrowed_query("", "\"unclosed", false), None);
    }

    #[test]
    fn a_created_range_replaces_the_searchs_range_instead_of_adding_a_second() {
        assert_eq!(
            narrowed_query(
                "reboot created:>=2024-06-01T00:00:00Z",
                "created:2024-06-02T10:00:00Z..2024-06-02T10:59:59.999999Z",
                false
            )
            .unwrap(),
            "reboot created:2024-06-02T10:00:00Z..2024-06-02T10:59:59.999999Z"
        );
    }

    #[test]
    fn relative_times_read_like_a_person_would_say_them() {
        let now = datetime!(2026-12-06 10:30:00 UTC);
        let cases = [
            (datetime!(2026-12-06 10:29:40 UTC), "just now"),
            (datetime!(2026-12-06 10:27:00 UTC), "3 min ago"),
            (datetime!(2026-12-06 08:05:00 UTC), "today 08:05"),
            (datetime!(2026-12-05 14:02:00 UTC), "yesterday 14:02"),
            (datetime!(2026-12-01 09:00:00 UTC), "Tue 09:00"),
            (datetime!(2026-06-01 09:12:00 UTC), "Jun 1, 09:12"),
            (datetime!(2024-06-01 09:12:00 UTC), "Jun 1, 2024"),
            (datetime!(2026-12-06 11:00:00 UTC), "today 11:00"),
        ];
        for (at, expected) in cases {
            assert_eq!(relative_time_text(at, now), expected, "{at}");
        }
    }
}
