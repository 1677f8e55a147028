//! `logbook query "<q>"`: one page (or, with `--all`, every page) of the account's events,
//! newest first, as a table for people or NDJSON for programs (`--json`), read through
//! `logbook_client`'s page stream.

use std::io::{IsTerminal, Write};

use anyhow::{Context, Result};
use futures::StreamExt;

use crate::cli::QueryArgs;
use crate::client::{ApiKeySecret, logbook_client};
use crate::config::Config;
use crate::output::{
    EventSummary, EventTableLayout, EventTableRow, LocalOffset, inert, stdout_terminal_width,
};

pub async fn run(config: &Config, arguments: &QueryArgs, local_offset: LocalOffset) -> Result<()> {
    let key = ApiKeySecret::from_environment()?;
    let client = logbook_client(config, &key, |builder| builder)?;
    let terminal_width = stdout_terminal_width();
    let stdout_is_terminal = std::io::stdout().is_terminal();
    let mut pages = Box::pin(client.query_pages(arguments.query.clone(), arguments.limit));
    let mut shown = 0usize;
    let mut header_written = false;
    while let Some(page) = pages.next().await {
        let page = page?;
        let mut stdout = std::io::stdout().lock();
        if arguments.json {
            for event in &page.events {
                // JSON escapes control characters already; bidi and other invisible characters
                // are made visible only when a person is looking.
                if stdout_is_terminal {
                    writeln!(stdout, "{}", inert(event.json()))?;
                } else {
                    writeln!(stdout, "{}", event.json())?;
                }
            }
        } else {
            let rows = page
                .events
                .iter()
                .map(|event| {
                    let summary: EventSummary<'_> = serde_json::from_str(event.json())
                        .context("an event in the answer is malformed")?;
                    Ok(EventTableRow::from_summary(&summary, local_offset))
                })
                .collect::<Result<Vec<_>>>()?;
            let layout = EventTableLayout::fitting(&rows, terminal_width);
            if !header_written && !rows.is_empty() {
                writeln!(stdout, "{}", layout.header())?;
                header_written = true;
            }
            for row in &rows {
                writeln!(stdout, "{}", layout.render(row))?;
            }
        }
        stdout.flush()?;
        shown += page.events.len();

        match page.next_cursor {
            // The stream asks for the next page when it is polled again.
            Some(_) if arguments.all => {}
            Some(_) => {
                eprintln!("({shown} shown; more match: add --all, or raise --limit)");
                break;
            }
            None => break,
        }
    }
    if shown == 0 && !arguments.json {
        eprintln!("No events match.");
    }
    Ok(())
}
