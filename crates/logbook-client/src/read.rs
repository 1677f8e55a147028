//! Reading: the account's events page by page (`query_pages`, `query`), a streamed export
//! (`export`), and the live tail (`tail`), each a `Stream`.

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use reqwest::header::ACCEPT;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{Error, ErrorDetail};
use crate::event::StoredEvent;
use crate::{Client, ensure_success};

/// One page of a query: events newest first, and the cursor of the next page if more match.
#[derive(Debug, Clone)]
pub struct EventPage {
    pub events: Vec<StoredEvent>,
    pub next_cursor: Option<String>,
}

#[derive(Deserialize)]
struct WirePage {
    events: Vec<Box<RawValue>>,
    next_cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Ndjson,
    Csv,
}

impl ExportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Ndjson => "ndjson",
            ExportFormat::Csv => "csv",
        }
    }
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// A query in Logbook's query language; empty for every event.
    pub query: String,
    pub format: ExportFormat,
    /// NDJSON lines with inclusion proofs and a signed trailer (`logbook verify` checks them).
    pub verifiable: bool,
}

/// What the live tail yields: an event, or word that the stream will reconnect (it does so on
/// its own, resuming after the last event it yielded).
#[derive(Debug)]
pub enum TailItem {
    Event(StoredEvent),
    Reconnecting {
        /// Why the stream ended; `None` when the server closed it.
        error: Option<Error>,
        delay: Duration,
    },
}

const FIRST_RECONNECT_DELAY: Duration = Duration::from_millis(500);
const LONGEST_RECONNECT_DELAY: Duration = Duration::from_secs(30);

fn query_parameter(query: &str) -> Vec<(&'static str, String)> {
    if query.trim().is_empty() {
        Vec::new()
    } else {
        vec![("q", query.to_owned())]
    }
}

impl Client {
    /// The events matching `query`, `page_size` at a time (at most 1000), newest first, one
    /// `EventPage` per request. The stream ends after the last page or at the first error.
    pub fn query_pages(
        &self,
        query: impl Into<String>,
        page_size: u32,
    ) -> impl Stream<Item = Result<EventPage, Error>> + Send + 'static {
        let client = self.clone();
        let query = query.into();
        let limit = page_size.to_string();
        // State: the cursor of the next page, or `None` once the last page has been read.
        futures::stream::try_unfold(Some(None::<String>), move |state| {
            let client = client.clone();
            let query = query.clone();
            let limit = limit.clone();
            async move {
                let Some(cursor) = state else {
                    return Ok(None);
                };
                let mut parameters = query_parameter(&query);
                parameters.push(("limit", limit));
                if let Some(cursor) = cursor {
                    parameters.push(("cursor", cursor));
                }
                let response = client
                    .get("/api/v1/events")
                    .query(&parameters)
                    .send()
                    .await
                    .map_err(|error| client.transport_error(error))?;
                let body = ensure_success(&client, response)
                    .await?
                    .bytes()
                    .await
                    .map_err(|error| client.transport_error(error))?;
                let page: WirePage = serde_json::from_slice(&body).map_err(|error| {
                    Error::UnexpectedAnswer(format!("the answer is not a page of events: {error}"))
                })?;
                let next_state = page.next_cursor.clone().map(Some);
                Ok(Some((
                    EventPage {
                        events: page.events.into_iter().map(StoredEvent::from_raw).collect(),
                        next_cursor: page.next_cursor,
                    },
                    next_state,
                )))
            }
        })
    }

    /// Every event matching `query`, newest first, fetched `page_size` at a time.
    pub fn query(
        &self,
        query: impl Into<String>,
        page_size: u32,
    ) -> impl Stream<Item = Result<StoredEvent, Error>> + Send + 'static {
        self.query_pages(query, page_size)
            .map_ok(|page| futures::stream::iter(page.events.into_iter().map(Ok)))
            .try_flatten()
    }

    /// Starts an export and returns its body as it arrives, chunk by chunk (NDJSON lines or CSV
    /// rows; chunks do not follow line boundaries), so memory stays flat however large it is.
    /// A refused export (bad query, too many at once) is an error before any chunk.
    pub async fn export(
        &self,
        request: &ExportRequest,
    ) -> Result<impl Stream<Item = Result<Bytes, Error>> + Send + 'static, Error> {
        let mut parameters = query_parameter(&request.query);
        // The verifiable export is its own operation, NDJSON only.
        let path = if request.verifiable {
            "/api/v1/events/export/verifiable"
        } else {
            parameters.push(("format", request.format.as_str().to_owned()));
            "/api/v1/events/export"
        };
        let response = self
            .get(path)
            .query(&parameters)
            .send()
            .await
            .map_err(|error| self.transport_error(error))?;
        let response = ensure_success(self, response).await?;
        let client = self.clone();
        Ok(response
            .bytes_stream()
            .map(move |chunk| chunk.map_err(|error| client.transport_error(error))))
    }

    /// Follows new events matching `query` as they are stored, forever. When the connection
    /// drops or the server ends it, the stream says so (`TailItem::Reconnecting`), waits (0.5 s
    /// doubling to 30 s while it keeps failing) and reconnects with `Last-Event-ID`, so no event
    /// is skipped or yielded twice. An answer that will not change on retry (a bad key or query)
    /// ends the stream with that error.
    pub fn tail(
        &self,
        query: impl Into<String>,
    ) -> impl Stream<Item = Result<TailItem, Error>> + Send + 'static {
        struct TailState {
            client: Client,
            query: String,
            last_event_id: Option<String>,
            failures: u32,
            connection: Option<futures::stream::BoxStream<'static, Result<Bytes, reqwest::Error>>>,
            parser: SseParser,
            pending: std::collections::VecDeque<TailItem>,
            finished: bool,
        }
        let state = TailState {
            client: self.clone(),
            query: query.into(),
            last_event_id: None,
            failures: 0,
            connection: None,
            parser: SseParser::default(),
            pending: std::collections::VecDeque::new(),
            finished: false,
        };
        futures::stream::unfold(state, |mut state| async move {
            loop {
                if let Some(item) = state.pending.pop_front() {
                    return Some((Ok(item), state));
                }
                if state.finished {
                    return None;
                }
                let ended: Option<Error> = match state.connection.as_mut() {
                    Some(connection) => match connection.next().await {
                        Some(Ok(chunk)) => {
                            for event in state.parser.push(&chunk) {
                                match event.event_type.as_deref() {
                                    None | Some("event") | Some("message") => {
                                        match StoredEvent::from_json(&event.data) {
                                            Ok(stored) => {
                                                if event.id.is_some() {
                                                    state.last_event_id.clone_from(&event.id);
                                                }
                                                state.pending.push_back(TailItem::Event(stored));
                                            }
                                            Err(error) => {
                                                state.finished = true;
                                                return Some((Err(error), state));
                                            }
                                        }
                                    }
                                    Some("error") => {
                                        let detail =
                                            serde_json::from_str::<serde_json::Value>(&event.data)
                                                .ok()
                                                .and_then(|value| {
                                                    serde_json::from_value::<ErrorDetail>(
                                                        value.get("error")?.clone(),
                                                    )
                                                    .ok()
                                                });
                                        state.connection = None;
                                        state.pending.push_back(reconnecting(
                                            &mut state.failures,
                                            Some(Error::Unavailable {
                                                status: reqwest::StatusCode::SERVICE_UNAVAILABLE,
                                                detail,
                                                retry_after: None,
                                            }),
                                        ));
                                        break;
                                    }
                                    Some(_) => {}
                                }
                            }
                            continue;
                        }
                        Some(Err(error)) => Some(state.client.transport_error(error)),
                        None => None,
                    },
                    None => {
                        let mut request = state
                            .client
                            .get("/api/v1/events/tail")
                            .query(&query_parameter(&state.query))
                            .header(ACCEPT, "text/event-stream");
                        if let Some(id) = &state.last_event_id {
                            request = request.header("Last-Event-ID", id.as_str());
                        }
                        match request.send().await {
                            Ok(response) if response.status().is_success() => {
                                state.failures = 0;
                                state.parser = SseParser::default();
                                state.connection = Some(response.bytes_stream().boxed());
                                continue;
                            }
                            Ok(response) => match ensure_success(&state.client, response).await {
                                Err(error) if error.is_retryable() => Some(error),
                                Err(error) => {
                                    state.finished = true;
                                    return Some((Err(error), state));
                                }
                                Ok(_) => unreachable!("a failed status is never a success"),
                            },
                            Err(error) => Some(state.client.transport_error(error)),
                        }
                    }
                };
                // The connection ended (cleanly when `ended` is `None`): say so; the `then`
                // below waits the delay before the next poll reconnects.
                state.connection = None;
                let item = reconnecting(&mut state.failures, ended);
                return Some((Ok(item), state));
            }
        })
        .then(|item| async move {
            if let Ok(TailItem::Reconnecting { delay, .. }) = &item {
                tokio::time::sleep(*delay).await;
            }
            item
        })
    }
}

/// A `Reconnecting` item, counting one more failure toward the next delay.
fn reconnecting(failures: &mut u32, error: Option<Error>) -> TailItem {
    *failures += 1;
    let delay = FIRST_RECONNECT_DELAY
        .saturating_mul(2u32.saturating_pow((*failures).min(8) - 1))
        .min(LONGEST_RECONNECT_DELAY);
    TailItem::Reconnecting { error, delay }
}

/// One dispatched Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    pub(crate) event_type: Option<String>,
    pub(crate) id: Option<String>,
    pub(crate) data: String,
}

/// An incremental parser of the `text/event-stream` format: fed bytes as they arrive, it yields
/// each event when its blank line arrives. Comments (keep-alives) are skipped.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    buffer: Vec<u8>,
    event_type: Option<String>,
    id: Option<String>,
    data: Option<String>,
}

impl SseParser {
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
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

    #[test]
    fn reconnect_delays_double_and_are_capped() {
        let mut failures = 0;
        let delays: Vec<Duration> = (0..10)
            .map(|_| match reconnecting(&mut failures, None) {
                TailItem::Reconnecting { delay, .. } => delay,
                TailItem::Event(_) => unreachable!(),
            })
            .collect();
        assert_eq!(delays[0], Duration::from_millis(500));
        assert_eq!(delays[1], Duration::from_secs(1));
        assert_eq!(delays[9], LONGEST_RECONNECT_DELAY);
    }
}
