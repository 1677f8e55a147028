//! `logbook query "<q>"`: one page (or, with `--all`, every page) of the account's events,
//! newest first, as a table for people or NDJSON for programs (`--json`).

use std::io::{IsTerminal, Write};

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::cli::QueryArgs;
use crate::client::{ApiClient, connection_error, ensure_success, query_parameter};
use crate::config::Config;
use crate::output::{
    EventSummary, EventTableLayout, EventTableRow, LocalOffset, inert, stdout_terminal_width,
};

#[derive(Deserialize)]
struct Page<'body> {
    #[serde(borrow)]
    events: Vec<&'body RawValue>,
    next_cursor: Option<String>,
}

pub async fn run(config: &Config, arguments: &QueryArgs, local_offset: LocalOffset) -> Result<()> {
    let client = ApiClient::from_config(config)?;
    let terminal_width = stdout_terminal_width();
    let stdout_is_terminal = std::io::stdout().is_terminal();
    let limit = arguments.limit.to_string();
    let mut cursor: Option<String> = None;
    let mut shown = 0usize;
    let mut header_written = false;
    loop {
        let mut parameters = query_parameter(&arguments.query);
        parameters.push(("limit", &limit));
        if let Some(cursor) = &cursor {
            parameters.push(("cursor", cursor));
        }
        let response = client
            .get("/api/v1/events")
            .query(&parameters)
            .send()
            .await
            .map_err(|error| connection_error(&client, error))?;
        let body = ensure_success(response)
            .await?
            .bytes()
            .await
            .context("the answer was cut off")?;
        let page: Page<'_> =
            serde_json::from_slice(&body).context("the server's answer is not a page of events")?;

        let mut stdout = std::io::stdout().lock();
        if arguments.json {
            for event in &page.events {
                // JSON escapes control characters already; bidi and other invisible characters
                // are made visible only when a person is looking.
                if stdout_is_terminal {
                    writeln!(stdout, "{}", inert(event.get()))?;
                } else {
                    writeln!(stdout, "{}", event.get())?;
                }
            }
        } else {
            let rows = page
                .events
                .iter()
                .map(|event| {
                    let summary: EventSummary<'_> = serde_json::from_str(event.get())
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
            Some(next) if arguments.all => cursor = Some(next),
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
