//! What the event view adds to an event's fields (issue 21, item 4): times to the millisecond with
//! their zone, a before/after diff that marks what changed inside each value, and the actor's
//! other events within an hour of this one.
//!
//! The diff keeps the common beginning and end of the two values and marks the middle: a changed
//! word inside a long value is marked alone, without a diff library, and the marked parts are
//! `<del>`/`<ins>` elements, so they read as changed without colour too.

use logbook_core::event::StoredEvent;
use logbook_core::query::{Clause, Condition, Query, TextPattern, TimeRange};
use logbook_core::store::EventQuery;
use logbook_core::{AccountId, Store, StoreError};
use time::{Duration, OffsetDateTime};

use crate::reading::ReadScope;
use crate::web::activity::url_component;
use crate::web::narrowing::relative_time_text;
use crate::web::render::visible;

/// How far before and after the event the related events are looked for.
pub const RELATED_WINDOW: Duration = Duration::hours(1);
/// The most related events listed; the list links to the whole search.
pub const RELATED_LIMIT: u32 = 10;

/// `2024-06-01 10:00:00.123 UTC`: the stored microseconds cut to milliseconds, the zone named.
pub fn millisecond_utc_text(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02}.{:03} UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// `json` with every character that could mislead a reader
/// (`logbook_core::terminal_text::must_be_escaped`: controls, bidi controls, zero-width
/// characters, line and paragraph separators) written as a JSON `\u` escape of four hex digits:
/// the same JSON value, which the page can carry for the copy button without such characters in
/// its HTML. Compact JSON holds none of them outside strings (and its strings already escape the
/// C0 controls), so every one escaped here is inside a string.
pub fn json_with_invisible_characters_escaped(json: &str) -> String {
    let mut escaped = String::with_capacity(json.len());
    for character in json.chars() {
        if logbook_core::terminal_text::must_be_escaped(character) {
            escaped.push_str(&format!("\\u{:04x}", u32::from(character)));
        } else {
            escaped.push(character);
        }
    }
    escaped
}

/// One side of a changed value: the part both sides share at the start, what changed, and the
/// part they share at the end.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MarkedValue {
    pub before: String,
    pub changed: String,
    pub after: String,
}

/// `old` and `new` with the text between their common beginning and common end marked. The two
/// ends never overlap, so a value that only grew has an empty changed part on the old side.
pub fn marked_change(old: &str, new: &str) -> (MarkedValue, MarkedValue) {
    let old_chars: Vec<char> = old.chars().collect();
    let new_chars: Vec<char> = new.chars().collect();
    let shortest = old_chars.len().min(new_chars.len());
    let prefix = old_chars
        .iter()
        .zip(&new_chars)
        .take_while(|(a, b)| a == b)
        .count();
    let suffix = old_chars
        .iter()
        .rev()
        .zip(new_chars.iter().rev())
        .take(shortest - prefix)
        .take_while(|(a, b)| a == b)
        .count();
    let side = |chars: &[char]| MarkedValue {
        before: chars[..prefix].iter().collect(),
        changed: chars[prefix..chars.len() - suffix].iter().collect(),
        after: chars[chars.len() - suffix..].iter().collect(),
    };
    (side(&old_chars), side(&new_chars))
}

/// One of the actor's other events near this one.
pub struct RelatedEvent {
    pub href: String,
    pub created_at: String,
    pub created_relative: String,
    pub action: String,
    pub message: String,
    pub is_later: bool,
}

/// The actor's events within `RELATED_WINDOW` of `event`, newest first, this event left out, as
/// this reader may see them; and the search that lists all of them. Nothing for an event without
/// an actor.
pub async fn related_events(
    store: &dyn Store,
    account: &AccountId,
    scope: &ReadScope,
    event: &StoredEvent,
    base: &str,
    now: OffsetDateTime,
) -> Result<(Vec<RelatedEvent>, Option<String>), StoreError> {
    let Some(actor) = event.actor.as_ref() else {
        return Ok((Vec::new(), None));
    };
    let clause = |condition| Clause {
        negated: false,
        condition,
        span: 0..0,
    };
    let mut query = Query::default();
    query
        .clauses
        .push(clause(Condition::Actor(vec![TextPattern::Exact(
            actor.id.clone(),
        )])));
    query.clauses.push(clause(Condition::Created(TimeRange {
        start_inclusive: Some(event.created_at - RELATED_WINDOW),
        end_exclusive: Some(event.created_at + RELATED_WINDOW),
    })));
    let search = query.to_string();
    let page = store
        .query_events(
            account,
            &EventQuery {
                query: scope.restrict(query),
                limit: RELATED_LIMIT + 1,
                after: None,
            },
        )
        .await?;
    let mut related = Vec::new();
    for row in &page.events {
        let Ok(other) = row.decode() else { continue };
        if other.id == event.id {
            continue;
        }
        related.push(RelatedEvent {
            href: format!(
                "{base}/events/{}?q={}",
                url_component(other.id.as_str()),
                url_component(&search)
            ),
            created_at: crate::web::render::utc_text(other.created_at),
            created_relative: relative_time_text(other.created_at, now),
            action: visible(&other.action).into_owned(),
            message: visible(&other.message).into_owned(),
            is_later: (other.created_at, other.seq) > (event.created_at, event.seq),
        });
    }
    related.truncate(RELATED_LIMIT as usize);
    let list_href = format!("{base}/?q={}", url_component(&search));
    Ok((related, Some(list_href)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn copied_json_is_the_same_value_with_misleading_characters_escaped() {
        let json =
            "{\"message\":\"invoice\u{202e}fdp.exe zero\u{200b}width \u{1f469}\u{200d}\u{1f4bb}\"}";
        let escaped = json_with_invisible_characters_escaped(json);
        assert_eq!(
            escaped,
            "{\"message\":\"invoice\\u202efdp.exe zero\\u200bwidth \u{1f469}\\u200d\u{1f4bb}\"}"
        );
        let parsed = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
        assert_eq!(parsed(&escaped), parsed(json));
    }

    #[test]
    fn times_show_milliseconds_and_name_the_zone() {
        assert_eq!(
            millisecond_utc_text(datetime!(2024-06-01 12:00:00.123456 +02:00)),
            "2024-06-01 10:00:00.123 UTC"
        );
    }

    #[test]
    fn only_the_part_that_changed_inside_a_value_is_marked() {
        let (old, new) = marked_change("\"t2.micro\"", "\"t2.large\"");
        assert_eq!(
            (
                old.before.as_str(),
                old.changed.as_str(),
                old.after.as_str()
            ),
            ("\"t2.", "micro", "\"")
        );
        assert_eq!(new.changed, "large");
        // A value that grew: nothing removed, the addition marked.
        let (old, new) = marked_change("abc", "abXc");
        assert_eq!((old.changed.as_str(), new.changed.as_str()), ("", "X"));
        assert_eq!((new.before.as_str(), new.after.as_str()), ("ab", "c"));
        // Repeated characters never count twice (the ends do not overlap).
        let (old, new) = marked_change("aa", "aaa");
        assert_eq!(
            (
                old.before.len() + old.changed.len() + old.after.len(),
                new.changed.as_str()
            ),
            (2, "a")
        );
        let (old, new) = marked_change("same", "same");
        assert_eq!((old.changed.as_str(), new.changed.as_str()), ("", ""));
    }
}
