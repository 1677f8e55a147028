//! What the CLI shows people: Logbook's own logs (tracing on stderr), errors, local times, and
//! tables of events and keys. Every piece of stored text passes through
//! `terminal_text::escape_for_terminal` before it reaches a terminal, so an event's message can
//! never move the cursor, recolour the screen or reorder what is shown (ESC, CR, bidi controls).

use std::borrow::Cow;
use std::io::{IsTerminal, Write};

use anyhow::{Context, Result};
use console::{Alignment, measure_text_width, pad_str};
use logbook_core::terminal_text::escape_for_terminal;
use serde::Deserialize;
use time::{OffsetDateTime, UtcOffset};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the tracing subscriber: text or JSON lines on stderr, filtered by `LOGBOOK_LOG`.
pub fn init_logging(format: LogFormat, default_level: &str) -> Result<()> {
    let filter = match std::env::var("LOGBOOK_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::try_new(&directives)
            .with_context(|| format!("LOGBOOK_LOG is not a valid filter: {directives:?}"))?,
        _ => EnvFilter::new(default_level),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|error| anyhow::anyhow!("could not install the log subscriber: {error}"))
}

/// The error chain as one line, made inert for the terminal (server messages echo user input).
pub fn describe_error(error: &anyhow::Error) -> String {
    escape_for_terminal(&format!("{error:#}")).into_owned()
}

/// Escapes text for the terminal. A thin name for the core function, used everywhere here.
pub fn inert(text: &str) -> Cow<'_, str> {
    escape_for_terminal(text)
}

/// The reader's UTC offset, read once at start-up (see `main`).
#[derive(Debug, Clone, Copy)]
pub struct LocalOffset(UtcOffset);

impl LocalOffset {
    /// Falls back to UTC where the offset cannot be known (for example when other threads exist).
    pub fn capture() -> Self {
        Self(UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC))
    }

    pub fn format(self, at: OffsetDateTime) -> String {
        let local = at.to_offset(self.0);
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            local.year(),
            u8::from(local.month()),
            local.day(),
            local.hour(),
            local.minute(),
            local.second()
        )
    }
}

/// The terminal's width in columns when stdout is a terminal; `None` when output goes to a file
/// or a pipe, where nothing is truncated.
pub fn stdout_terminal_width() -> Option<usize> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    console::Term::stdout()
        .size_checked()
        .map(|(_rows, columns)| usize::from(columns))
}

/// The fields of an event the table shows. Borrowed from the event's JSON where possible.
#[derive(Debug, Deserialize)]
pub struct EventSummary<'event> {
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(borrow, default)]
    pub ip: Option<Cow<'event, str>>,
    #[serde(borrow, default)]
    pub actor: Option<ActorSummary<'event>>,
    #[serde(borrow)]
    pub action: Cow<'event, str>,
    #[serde(borrow)]
    pub message: Cow<'event, str>,
    #[serde(borrow, default)]
    pub outcome: Option<Cow<'event, str>>,
    #[serde(default)]
    pub location: Option<logbook_core::location::Location>,
    #[serde(default)]
    pub new_ip: bool,
    #[serde(default)]
    pub new_network: bool,
    #[serde(default)]
    pub new_country: bool,
}

#[derive(Debug, Deserialize)]
pub struct ActorSummary<'event> {
    #[serde(borrow)]
    pub id: Cow<'event, str>,
}

/// Column widths of the event table. The message takes whatever room the terminal has left.
#[derive(Debug, Clone, Copy)]
pub struct EventTableLayout {
    ip_width: usize,
    actor_width: usize,
    action_width: usize,
    terminal_width: Option<usize>,
}

const TIME_WIDTH: usize = 19;
const MAX_ACTOR_WIDTH: usize = 28;
const MAX_ACTION_WIDTH: usize = 28;
/// Wide enough for any IPv6 address plus the " (new network)" flag, or an address with its
/// place and network; longer cells are cut.
const MAX_IP_WIDTH: usize = 72;
const MIN_MESSAGE_WIDTH: usize = 20;
const COLUMN_GAP: &str = "  ";

/// One row of the table, already made inert and shortened where a column is bounded.
pub struct EventTableRow {
    time: String,
    ip: String,
    actor: String,
    action: String,
    message: String,
}

impl EventTableRow {
    pub fn from_summary(summary: &EventSummary<'_>, local_offset: LocalOffset) -> Self {
        let mut ip = summary
            .ip
            .as_deref()
            .map(|ip| inert(ip).into_owned())
            .unwrap_or_default();
        // Where the address was: "Mumbai, IN · AS9829 BSNL", names from the database made inert
        // like everything else from outside.
        if let Some(place) = summary
            .location
            .as_ref()
            .and_then(logbook_core::location::Location::summary)
        {
            ip.push_str(" · ");
            ip.push_str(&inert(&place));
        }
        // A new network says more than a new address in a familiar one.
        if summary.new_network {
            ip.push_str(" (new network)");
        } else if summary.new_ip {
            ip.push_str(" (new)");
        }
        // A country the actor was never located in, said in words beside the place.
        if summary.new_country {
            ip.push_str(" (new country)");
        }
        let mut action = inert(&summary.action).into_owned();
        if summary.outcome.as_deref() == Some("failure") {
            action.push_str(" (failed)");
        }
        Self {
            time: local_offset.format(summary.created_at),
            ip,
            actor: summary
                .actor
                .as_ref()
                .map(|actor| inert(&actor.id).into_owned())
                .unwrap_or_default(),
            action,
            message: inert(&summary.message).into_owned(),
        }
    }
}

impl EventTableLayout {
    /// Fixed widths, for rows that arrive one at a time (`tail`).
    pub fn fixed(terminal_width: Option<usize>) -> Self {
        Self {
            ip_width: 15,
            actor_width: 24,
            action_width: 24,
            terminal_width,
        }
    }

    /// Widths that fit these rows (`query`, one page at a time).
    pub fn fitting(rows: &[EventTableRow], terminal_width: Option<usize>) -> Self {
        let widest = |pick: fn(&EventTableRow) -> &str, floor: usize, ceiling: usize| {
            rows.iter()
                .map(|row| measure_text_width(pick(row)))
                .max()
                .unwrap_or(0)
                .clamp(floor, ceiling)
        };
        Self {
            ip_width: widest(|row| &row.ip, 2, MAX_IP_WIDTH),
            actor_width: widest(|row| &row.actor, 5, MAX_ACTOR_WIDTH),
            action_width: widest(|row| &row.action, 6, MAX_ACTION_WIDTH),
            terminal_width,
        }
    }

    fn message_width(&self) -> Option<usize> {
        let used = TIME_WIDTH
            + self.ip_width
            + self.actor_width
            + self.action_width
            + 4 * COLUMN_GAP.len();
        self.terminal_width
            .map(|width| width.saturating_sub(used).max(MIN_MESSAGE_WIDTH))
    }

    pub fn header(&self) -> String {
        self.line("CREATED", "IP", "ACTOR", "ACTION", "MESSAGE")
    }

    pub fn render(&self, row: &EventTableRow) -> String {
        self.line(&row.time, &row.ip, &row.actor, &row.action, &row.message)
    }

    fn line(&self, time: &str, ip: &str, actor: &str, action: &str, message: &str) -> String {
        let message = match self.message_width() {
            Some(width) => console::truncate_str(message, width, "…"),
            None => Cow::Borrowed(message),
        };
        let mut line = String::with_capacity(160);
        for (cell, width) in [
            (time, TIME_WIDTH),
            (ip, self.ip_width),
            (actor, self.actor_width),
            (action, self.action_width),
        ] {
            line.push_str(&pad_str(cell, width, Alignment::Left, Some("…")));
            line.push_str(COLUMN_GAP);
        }
        line.push_str(&message);
        line.truncate(line.trim_end().len());
        line
    }
}

/// A plain table for accounts and keys: left-aligned columns separated by two spaces.
pub fn write_table(out: &mut impl Write, headers: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|header| measure_text_width(header))
        .collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(measure_text_width(cell));
        }
    }
    let mut write_row = |cells: &mut dyn Iterator<Item = &str>| -> Result<()> {
        let mut line = String::new();
        for (cell, width) in cells.zip(&widths) {
            line.push_str(&pad_str(&inert(cell), *width, Alignment::Left, None));
            line.push_str(COLUMN_GAP);
        }
        writeln!(out, "{}", line.trim_end())?;
        Ok(())
    };
    write_row(&mut headers.iter().copied())?;
    for row in rows {
        write_row(&mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

/// RFC 3339 in UTC, for tables of keys and accounts where exactness beats local time.
pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.to_string())
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn hostile_message_text_is_shown_escaped_in_the_event_table() {
        let json = r#"{"created_at":"2024-06-01T12:00:00Z","action":"user.login","message":"evil \u001b[31mred\u202e reversed\r","actor":{"id":"alice"}}"#;
        let summary: EventSummary<'_> = serde_json::from_str(json).unwrap();
        let row = EventTableRow::from_summary(&summary, LocalOffset(UtcOffset::UTC));
        let line = EventTableLayout::fixed(Some(200)).render(&row);
        assert!(!line.contains('\u{1b}'), "{line:?}");
        assert!(!line.contains('\u{202e}'), "{line:?}");
        assert!(!line.contains('\r'), "{line:?}");
        assert!(line.starts_with("2024-06-01 12:00:00"), "{line:?}");
    }

    #[test]
    fn long_messages_are_cut_to_the_terminal_width() {
        let json = format!(
            r#"{{"created_at":"2024-06-01T12:00:00Z","ip":"203.0.113.9","action":"server.reboot","message":"{}","new_ip":true,"outcome":"failure"}}"#,
            "x".repeat(500)
        );
        let summary: EventSummary<'_> = serde_json::from_str(&json).unwrap();
        let row = EventTableRow::from_summary(&summary, LocalOffset(UtcOffset::UTC));
        let layout = EventTableLayout::fitting(std::slice::from_ref(&row), Some(120));
        let line = layout.render(&row);
        assert_eq!(measure_text_width(&line), 120, "{line}");
        assert!(line.ends_with('…'));
        assert!(
            line.contains("203.0.113.9 (new)") && line.contains("server.reboot (failed)"),
            "{line}"
        );
        let unbounded = EventTableLayout::fitting(std::slice::from_ref(&row), None).render(&row);
        assert!(unbounded.ends_with(&"x".repeat(500)));
    }

    #[test]
    fn a_new_network_is_named_rather_than_just_a_new_address() {
        let json = r#"{"created_at":"2024-06-01T12:00:00Z","ip":"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff","action":"user.login","message":"m","new_ip":true,"new_network":true}"#;
        let summary: EventSummary<'_> = serde_json::from_str(json).unwrap();
        let row = EventTableRow::from_summary(&summary, LocalOffset(UtcOffset::UTC));
        let line = EventTableLayout::fitting(std::slice::from_ref(&row), None).render(&row);
        assert!(
            line.contains("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff (new network)"),
            "{line}"
        );
    }

    #[test]
    fn an_address_shows_its_place_and_network_with_hostile_names_inert() {
        let json = r#"{"created_at":"2024-06-01T12:00:00Z","ip":"203.0.113.9","action":"user.login","message":"m","location":{"country_code":"IN","city":"Mumbai\u001b[31m","asn":9829,"organization":"BSNL"},"new_ip":true}"#;
        let summary: EventSummary<'_> = serde_json::from_str(json).unwrap();
        let row = EventTableRow::from_summary(&summary, LocalOffset(UtcOffset::UTC));
        let line = EventTableLayout::fitting(std::slice::from_ref(&row), None).render(&row);
        assert!(line.contains("203.0.113.9 · Mumbai"), "{line}");
        assert!(line.contains(", IN · AS9829 BSNL (new)"), "{line}");
        assert!(!line.contains('\u{1b}'), "{line:?}");
    }

    #[test]
    fn a_new_country_is_named_beside_the_place() {
        let json = r#"{"created_at":"2024-06-01T12:00:00Z","ip":"198.51.100.7","action":"user.login","message":"m","location":{"country_code":"SG"},"new_ip":true,"new_country":true}"#;
        let summary: EventSummary<'_> = serde_json::from_str(json).unwrap();
        let row = EventTableRow::from_summary(&summary, LocalOffset(UtcOffset::UTC));
        let line = EventTableLayout::fitting(std::slice::from_ref(&row), None).render(&row);
        assert!(
            line.contains("198.51.100.7 · SG (new) (new country)"),
            "{line}"
        );
    }

    #[test]
    fn local_times_are_shown_in_the_captured_offset() {
        let offset = LocalOffset(UtcOffset::from_hms(2, 0, 0).unwrap());
        assert_eq!(
            offset.format(datetime!(2024-06-01 23:30:00 UTC)),
            "2024-06-02 01:30:00"
        );
    }
}
