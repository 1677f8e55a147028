//! `logbook tail [q]`: follows `GET /api/v1/events/tail` (Server-Sent Events) and prints each
//! event as it arrives. When the connection drops it reconnects with `Last-Event-ID`, so no
//! event is skipped or shown twice; answers that will not change on retry (a bad key, a bad
//! query) end the command.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{Context, Result};
use futures::StreamExt;
use reqwest::header::ACCEPT;

use crate::cli::TailArgs;
use crate::client::{ApiClient, ErrorDetail, ServerError, query_parameter};
use crate::config::Config;
use crate::output::{
    EventSummary, EventTableLayout, EventTableRow, LocalOffset, inert, stdout_terminal_width,
};

const LONGEST_RECONNECT_DELAY: Duration = Duration::from_secs(30);

pub async fn run(config: &Config, arguments: &TailArgs, local_offset: LocalOffset) -> Result<()> {
    let client = ApiClient::from_config(config)?;
    let layout = EventTableLayout::fixed(stdout_terminal_width());
    let stdout_is_terminal = std::io::stdout().is_terminal();
    if !arguments.json {
        writeln!(std::io::stdout().lock(), "{}", layout.header())?;
    }
    let mut printer = |event: &SseEvent| -> Result<()> {
        let mut stdout = std::io::stdout().lock();
        if arguments.json {
            if stdout_is_terminal {
                writeln!(stdout, "{}", inert(&event.data))?;
            } else {
                writeln!(stdout, "{}", event.data)?;
            }
        } else {
            let summary: EventSummary<'_> = serde_json::from_str(&event.data)
                .context("an event from the server is malformed")?;
            writeln!(
                stdout,
                "{}",
                layout.render(&EventTableRow::from_summary(&summary, local_offset))
            )?;
        }
        stdout.flush()?;
        Ok(())
    };

    let mut last_event_id: Option<String> = None;
    let mut failures = 0u32;
    loop {
        let mut request = client
            .get("/api/v1/events/tail")
            .query(&query_parameter(&arguments.query))
            .header(ACCEPT, "text/event-stream");
        if let Some(id) = &last_event_id {
            request = request.header("Last-Event-ID", id.as_str());
        }
        let outcome: Result<()> =
            match request.send().await {
                Ok(response) if response.status().is_success() => {
                    failures = 0;
                    follow(response, &mut last_event_id, &mut printer).await
                }
                Ok(response) if ServerError::is_retryable_status(response.status()) => {
                    Err(ServerError::from_response(response).await.into())
                }
                // 4xx: the key, scope or query is wrong, and trying again will not fix it.
                Ok(response) => return Err(ServerError::from_response(response).await.into()),
                Err(error) => Err(anyhow::Error::new(error)
                    .context(format!("could not reach {}", client.server()))),
            };
        failures += 1;
        let delay = Duration::from_millis(500)
            .saturating_mul(2u32.saturating_pow(failures.min(8) - 1))
            .min(LONGEST_RECONNECT_DELAY);
        match outcome {
            Ok(()) => eprintln!(
                "(the server closed the stream; reconnecting in {:.1}s)",
                delay.as_secs_f64()
            ),
            Err(error) => eprintln!(
                "({}; reconnecting in {:.1}s)",
                inert(&format!("{error:#}")),
                delay.as_secs_f64()
            ),
        }
        tokio::time::sleep(delay).await;
    }
}

/// Reads one connection's events until it ends.
async fn follow(
    response: reqwest::Response,
    last_event_id: &mut Option<String>,
    printer: &mut impl FnMut(&SseEvent) -> Result<()>,
) -> Result<()> {
    let mut parser = SseParser::default();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.context("the stream was cut off")?;
        for event in parser.push(&chunk) {
            match event.event_type.as_deref() {
                None | Some("event") | Some("message") => {
                    printer(&event)?;
                    if event.id.is_some() {
                        last_event_id.clone_from(&event.id);
                    }
                }
                Some("error") => {
                    let detail = serde_json::from_str::<serde_json::Value>(&event.data)
                        .ok()
                        .and_then(|value| {
                            serde_json::from_value::<ErrorDetail>(value.get("error")?.clone()).ok()
                        });
                    let status = reqwest::StatusCode::SERVICE_UNAVAILABLE;
                    return Err(ServerError { status, detail }.into());
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// One dispatched Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event_type: Option<String>,
    pub id: Option<String>,
    pub data: String,
}

/// An incremental parser of the `text/event-stream` format: fed bytes as they arrive, it yields
/// each event when its blank line arrives. Comments (keep-alives) are skipped.
#[derive(Debug, Default)]
pub struct SseParser {
    buffer: Vec<u8>,
    event_type: Option<String>,
    id: Option<String>,
    data: Option<String>,
}

impl SseParser {
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut consumed = 0;
        while let Some(offset) = self.buffer[consumed..]
            .iter()
            .position(|byte| *byte == b'\n')
        {
            let line_end = consumed + offset;
            let mut line = &self.buffer[consumed..line_end];
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            let line = String::from_utf8_lossy(line).into_owned();
            consumed = line_end + 1;
            if let Some(event) = self.take_line(&line) {
                events.push(event);
            }
        }
        self.buffer.drain(..consumed);
        events
    }

    fn take_line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let data = self.data.take()?;
            return Some(SseEvent {
                event_type: self.event_type.take(),
                id: self.id.clone(),
                data,
            });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "event" => self.event_type = Some(value.to_owned()),
            "id" => self.id = Some(value.to_owned()),
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_are_put_back_together() {
        let mut parser = SseParser::default();
        assert!(
            parser
                .push(b": keep-alive\n\nevent: event\nid: 4")
                .is_empty()
        );
        let events = parser.push(
            b"1\r\ndata: {\"seq\":41}\n\nevent: event\nid: 42\ndata: {\"seq\":\ndata: 42}\n\n",
        );
        assert_eq!(
            events,
            vec![
                SseEvent {
                    event_type: Some("event".into()),
                    id: Some("41".into()),
                    data: "{\"seq\":41}".into()
                },
                SseEvent {
                    event_type: Some("event".into()),
                    id: Some("42".into()),
                    data: "{\"seq\":\n42}".into()
                },
            ]
        );
    }
}
