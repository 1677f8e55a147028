//! `logbook tail [q]`: follows `GET /api/v1/events/tail` (Server-Sent Events) through
//! `logbook_client`'s tail stream and prints each event as it arrives. When the connection drops
//! the stream reconnects with `Last-Event-ID`, so no event is skipped or shown twice, and each
//! reconnection is told on stderr; answers that will not change on retry (a bad key, a bad query)
//! end the command.

use std::io::{IsTerminal, Write};

use anyhow::{Context, Result};
use futures::StreamExt;
use logbook_client::TailItem;

use crate::cli::TailArgs;
use crate::client::{ApiKeySecret, logbook_client};
use crate::config::Config;
use crate::output::{
    EventSummary, EventTableLayout, EventTableRow, LocalOffset, inert, stdout_terminal_width,
};

pub async fn run(config: &Config, arguments: &TailArgs, local_offset: LocalOffset) -> Result<()> {
    let key = ApiKeySecret::from_environment()?;
    let client = logbook_client(config, &key, |builder| builder)?;
    let layout = EventTableLayout::fixed(stdout_terminal_width());
    let stdout_is_terminal = std::io::stdout().is_terminal();
    if !arguments.json {
        writeln!(std::io::stdout().lock(), "{}", layout.header())?;
    }
    let mut items = Box::pin(client.tail(arguments.query.clone()));
    while let Some(item) = items.next().await {
        match item? {
            TailItem::Event(event) => {
                let mut stdout = std::io::stdout().lock();
                if arguments.json {
                    if stdout_is_terminal {
                        writeln!(stdout, "{}", inert(event.json()))?;
                    } else {
                        writeln!(stdout, "{}", event.json())?;
                    }
                } else {
                    let summary: EventSummary<'_> = serde_json::from_str(event.json())
                        .context("an event from the server is malformed")?;
                    writeln!(
                        stdout,
                        "{}",
                        layout.render(&EventTableRow::from_summary(&summary, local_offset))
                    )?;
                }
                stdout.flush()?;
            }
            TailItem::Reconnecting { error: None, delay } => eprintln!(
                "(the server closed the stream; reconnecting in {:.1}s)",
                delay.as_secs_f64()
            ),
            TailItem::Reconnecting {
                error: Some(error),
                delay,
            } => eprintln!(
                "({}; reconnecting in {:.1}s)",
                inert(&error.to_string()),
                delay.as_secs_f64()
            ),
        }
    }
    Ok(())
}
