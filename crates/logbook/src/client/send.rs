//! `logbook send`: one event from flags, or NDJSON from a file or stdin in batches.
//!
//! Retries never duplicate: every event without an idempotency `key` is given a fresh UUID key
//! before its first attempt, and a retry sends the very same bytes, so the server answers a
//! repeated event with the original (`duplicate: true`). Timeouts, connection errors, 429 and 5xx
//! are retried with exponential backoff; a 413 splits the batch in halves. Lines are sent in file
//! order, one batch at a time, so the stored order follows the file.

use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::cli::SendArgs;
use crate::client::{ApiClient, ErrorDetail, ServerError};
use crate::config::Config;
use crate::output::inert;

/// How long one request may take before it counts as timed out (and is retried).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const LONGEST_BACKOFF: Duration = Duration::from_secs(15);
/// A batch body stays below the server's default 4 MiB limit with room for the wrapper.
const MAX_BATCH_BODY_BYTES: usize = 4 * 1024 * 1024 - 4096;

pub async fn run(config: &Config, arguments: &SendArgs) -> Result<()> {
    let client = ApiClient::from_config(config)?;
    let sender = Sender {
        client: &client,
        max_attempts: arguments.max_attempts,
        progress: ProgressBar::hidden(),
    };
    if arguments.action.is_some() {
        return send_one(&sender, arguments).await;
    }
    let Some(input) = arguments.file.as_deref().or(arguments.input.as_deref()) else {
        bail!(
            "nothing to send: give --action and --message for one event, or --file FILE (or '-' for stdin) for NDJSON"
        );
    };
    let batch_size = usize::try_from(arguments.batch_size).unwrap_or(500);
    let tally = if input == Path::new("-") {
        let progress = new_progress_bar(None);
        let sender = Sender { progress, ..sender };
        sender.send_lines(tokio::io::stdin(), batch_size).await?
    } else {
        let file = tokio::fs::File::open(input)
            .await
            .with_context(|| format!("could not open {}", input.display()))?;
        let length = file.metadata().await.ok().map(|metadata| metadata.len());
        let sender = Sender {
            progress: new_progress_bar(length),
            ..sender
        };
        sender.send_lines(file, batch_size).await?
    };
    tally.report(arguments.json)
}

/// A bar of bytes read for a file, a spinner of events for stdin; drawn on stderr only when it is
/// a terminal (indicatif hides it otherwise), so piped output stays clean.
fn new_progress_bar(length: Option<u64>) -> ProgressBar {
    let progress = ProgressBar::with_draw_target(length, ProgressDrawTarget::stderr());
    let style = match length {
        Some(_) => ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg} ({elapsed})"),
        None => ProgressStyle::with_template("{spinner} {msg} ({elapsed})"),
    };
    if let Ok(style) = style {
        progress.set_style(style);
    }
    progress
}

/// One event ready to go: its JSON text (with a `key` added if it had none) and where it came
/// from, for error reports.
struct PendingEvent {
    line_number: usize,
    json: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum EventResult {
    Rejected {
        error: ErrorDetail,
    },
    Receipt {
        id: String,
        seq: u64,
        received_at: String,
        #[serde(default)]
        duplicate: bool,
    },
}

#[derive(Debug, Deserialize)]
struct IngestAnswer {
    results: Vec<EventResult>,
}

/// What the server said about a batch.
enum Delivery {
    Answered(Vec<EventResult>),
    TooLarge(ServerError),
}

#[derive(Debug, Default, Serialize)]
struct Tally {
    /// Events the server holds now: newly stored plus duplicates of events stored before.
    accepted: usize,
    /// Of the accepted, how many had been stored before (same idempotency key and content).
    duplicates: usize,
    rejected: usize,
    errors: Vec<RejectedLine>,
}

#[derive(Debug, Serialize)]
struct RejectedLine {
    line: usize,
    code: String,
    message: String,
    field: Option<String>,
}

struct Sender<'client> {
    client: &'client ApiClient,
    max_attempts: u32,
    progress: ProgressBar,
}

impl Sender<'_> {
    async fn send_lines(&self, input: impl AsyncRead + Unpin, batch_size: usize) -> Result<Tally> {
        let mut reader = BufReader::new(input);
        let mut tally = Tally::default();
        let mut batch: Vec<PendingEvent> = Vec::with_capacity(batch_size);
        // Lines rejected here, before sending, wait for the batch around them so every rejection
        // is reported in line order.
        let mut local_rejections: Vec<RejectedLine> = Vec::new();
        let mut batch_bytes = 0usize;
        let mut line = Vec::new();
        let mut line_number = 0usize;
        let mut sent = 0usize;
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .await
                .context("could not read the input")?;
            if read == 0 {
                break;
            }
            line_number += 1;
            self.progress.inc(read as u64);
            match prepare_line(&line) {
                Ok(None) => continue,
                Ok(Some(json)) => {
                    let batch_is_full = batch.len() >= batch_size
                        || batch_bytes + json.len() + 1 > MAX_BATCH_BODY_BYTES;
                    if !batch.is_empty() && batch_is_full {
                        sent += batch.len();
                        self.send_batch(
                            std::mem::take(&mut batch),
                            std::mem::take(&mut local_rejections),
                            &mut tally,
                        )
                        .await?;
                        batch_bytes = 0;
                        self.progress.set_message(format!("{sent} events sent"));
                    }
                    batch_bytes += json.len() + 1;
                    batch.push(PendingEvent { line_number, json });
                }
                Err(message) => local_rejections.push(RejectedLine {
                    line: line_number,
                    code: "invalid_json".to_owned(),
                    message,
                    field: None,
                }),
            }
        }
        sent += batch.len();
        if !batch.is_empty() || !local_rejections.is_empty() {
            self.send_batch(batch, local_rejections, &mut tally).await?;
        }
        self.progress.finish_and_clear();
        if sent == 0 && tally.rejected == 0 {
            bail!("the input holds no events");
        }
        Ok(tally)
    }

    async fn send_batch(
        &self,
        batch: Vec<PendingEvent>,
        mut rejections: Vec<RejectedLine>,
        tally: &mut Tally,
    ) -> Result<()> {
        let results = if batch.is_empty() {
            Vec::new()
        } else {
            self.deliver(&batch).await?
        };
        for (event, result) in batch.iter().zip(results) {
            match result {
                EventResult::Receipt { duplicate, .. } => {
                    tally.accepted += 1;
                    tally.duplicates += usize::from(duplicate);
                }
                EventResult::Rejected { error } => rejections.push(RejectedLine {
                    line: event.line_number,
                    field: error.field.as_deref().map(pointer_within_event),
                    code: error.code,
                    message: error.message,
                }),
            }
        }
        rejections.sort_by_key(|rejected| rejected.line);
        for rejected in rejections {
            self.report_rejection(&rejected);
            tally.rejected += 1;
            tally.errors.push(rejected);
        }
        Ok(())
    }

    fn report_rejection(&self, rejected: &RejectedLine) {
        let detail = ErrorDetail {
            code: rejected.code.clone(),
            message: rejected.message.clone(),
            field: rejected.field.clone(),
        };
        self.progress
            .suspend(|| eprintln!("line {}: {detail}", rejected.line));
    }

    /// Sends `events` and returns one result per event, in order, splitting on 413.
    async fn deliver(&self, events: &[PendingEvent]) -> Result<Vec<EventResult>> {
        let mut results = Vec::with_capacity(events.len());
        let mut parts: VecDeque<&[PendingEvent]> = VecDeque::from([events]);
        while let Some(part) = parts.pop_front() {
            match self.post_with_retries(part).await? {
                Delivery::Answered(answered) => results.extend(answered),
                Delivery::TooLarge(_) if part.len() > 1 => {
                    let (first, second) = part.split_at(part.len() / 2);
                    parts.push_front(second);
                    parts.push_front(first);
                }
                Delivery::TooLarge(error) => results.push(EventResult::Rejected {
                    error: error.detail.unwrap_or_else(|| ErrorDetail {
                        code: "too_large".to_owned(),
                        message:
                            "this event alone is larger than the server accepts in one request"
                                .to_owned(),
                        field: None,
                    }),
                }),
            }
        }
        Ok(results)
    }

    async fn post_with_retries(&self, events: &[PendingEvent]) -> Result<Delivery> {
        let body = batch_body(events);
        let mut last_error = anyhow!("no attempt was made");
        for attempt in 1..=self.max_attempts {
            let mut retry_after = None;
            let response = self
                .client
                .post("/api/v1/events")
                .header(CONTENT_TYPE, "application/json")
                .timeout(REQUEST_TIMEOUT)
                .body(body.clone())
                .send()
                .await;
            match response {
                Ok(response) if response.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    return Ok(Delivery::TooLarge(
                        ServerError::from_response(response).await,
                    ));
                }
                Ok(response) if ServerError::is_retryable_status(response.status()) => {
                    retry_after = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|value| value.to_str().ok())
                        .and_then(|text| text.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    last_error = ServerError::from_response(response).await.into();
                }
                Ok(response) => {
                    let status = response.status();
                    match response.bytes().await {
                        Ok(answer_body) => {
                            // 200, 207 and a 400 whose events were all rejected carry one result per
                            // event; any other answer is about the request as a whole.
                            if let Ok(answer) = serde_json::from_slice::<IngestAnswer>(&answer_body)
                                && answer.results.len() == events.len()
                            {
                                return Ok(Delivery::Answered(answer.results));
                            }
                            let detail = serde_json::from_slice::<serde_json::Value>(&answer_body)
                                .ok()
                                .and_then(|value| {
                                    serde_json::from_value::<ErrorDetail>(
                                        value.get("error")?.clone(),
                                    )
                                    .ok()
                                });
                            return Err(ServerError { status, detail }.into());
                        }
                        // The answer was cut off: the events may or may not be stored, and the same
                        // keys make a retry safe either way.
                        Err(error) => {
                            last_error = anyhow::Error::new(error).context("the answer was cut off")
                        }
                    }
                }
                Err(error) if error.is_builder() => {
                    return Err(error).context("could not build the request");
                }
                Err(error) => {
                    last_error = anyhow::Error::new(error)
                        .context(format!("could not reach {}", self.client.server()))
                }
            }
            if attempt < self.max_attempts {
                let wait = retry_after
                    .unwrap_or_else(|| backoff(attempt))
                    .min(Duration::from_secs(60));
                let reason = format!("{last_error:#}");
                self.progress.suspend(|| {
                    eprintln!(
                        "attempt {attempt} of {} failed ({}); retrying in {:.1}s",
                        self.max_attempts,
                        inert(&reason),
                        wait.as_secs_f64()
                    );
                });
                tokio::time::sleep(wait).await;
            }
        }
        Err(last_error.context(format!("gave up after {} attempts", self.max_attempts)))
    }
}

/// Exponential backoff with jitter, so many producers that failed together do not retry together.
fn backoff(attempt: u32) -> Duration {
    let exponential = FIRST_BACKOFF
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(LONGEST_BACKOFF);
    let jitter = rand::rng().random_range(0.75..1.25);
    exponential.mul_f64(jitter)
}

/// `{"events":[...]}` from the prepared lines, built once and reused by every retry.
fn batch_body(events: &[PendingEvent]) -> Bytes {
    let length = events
        .iter()
        .map(|event| event.json.len() + 1)
        .sum::<usize>()
        + 16;
    let mut body = Vec::with_capacity(length);
    body.extend_from_slice(b"{\"events\":[");
    for (index, event) in events.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(event.json.as_bytes());
    }
    body.extend_from_slice(b"]}");
    Bytes::from(body)
}

/// Turns `/events/3/ip` into `/ip`: the pointer inside the line, which is what the reader of a
/// line-numbered report needs.
fn pointer_within_event(field: &str) -> String {
    let Some(rest) = field.strip_prefix("/events/") else {
        return field.to_owned();
    };
    match rest.find('/') {
        Some(slash) => rest[slash..].to_owned(),
        None => String::new(),
    }
}

#[derive(Deserialize)]
struct KeyProbe<'line> {
    #[serde(borrow, default)]
    key: Option<&'line RawValue>,
}

/// Checks that a line is a JSON object and gives it an idempotency key if it has none. Blank lines
/// are skipped (`Ok(None)`). The line's own bytes are kept: re-encoding could hide what the server
/// checks, such as a duplicate field.
fn prepare_line(line: &[u8]) -> Result<Option<String>, String> {
    let text = std::str::from_utf8(line).map_err(|_| "the line is not valid UTF-8".to_owned())?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if !text.starts_with('{') {
        return Err("each line must be one JSON object".to_owned());
    }
    let probe: KeyProbe<'_> = serde_json::from_str(text)
        .map_err(|error| format!("the line is not valid JSON: {error}"))?;
    if probe.key.is_some() {
        return Ok(Some(text.to_owned()));
    }
    Ok(Some(with_fresh_key(text)))
}

/// Splices `"key":"<uuid>"` in as the object's first field.
fn with_fresh_key(object_text: &str) -> String {
    let key = fresh_idempotency_key();
    let rest = &object_text[1..];
    let mut json = String::with_capacity(object_text.len() + 48);
    json.push_str("{\"key\":\"");
    json.push_str(&key);
    json.push('"');
    if !rest.trim_start().starts_with('}') {
        json.push(',');
    }
    json.push_str(rest);
    json
}

/// A random (version 4) UUID: unique without reading the clock.
fn fresh_idempotency_key() -> String {
    uuid::Builder::from_random_bytes(rand::rng().random())
        .into_uuid()
        .to_string()
}

async fn send_one(sender: &Sender<'_>, arguments: &SendArgs) -> Result<()> {
    let mut event = serde_json::Map::new();
    let mut put = |name: &str, value: Option<&String>| {
        if let Some(value) = value {
            event.insert(name.to_owned(), serde_json::Value::String(value.clone()));
        }
    };
    put("account", arguments.account.as_ref());
    put("action", arguments.action.as_ref());
    put("message", arguments.message.as_ref());
    put("ip", arguments.ip.as_ref());
    put("created_at", arguments.created_at.as_ref());
    put("outcome", arguments.outcome.as_ref());
    if let Some(actor) = &arguments.actor {
        event.insert("actor".to_owned(), serde_json::json!({ "id": actor }));
    }
    let key = arguments.key.clone().unwrap_or_else(fresh_idempotency_key);
    event.insert("key".to_owned(), serde_json::Value::String(key));
    let pending = PendingEvent {
        line_number: 1,
        json: serde_json::Value::Object(event).to_string(),
    };

    let result = sender
        .deliver(std::slice::from_ref(&pending))
        .await?
        .pop()
        .context("the server answered no result")?;
    let mut stdout = std::io::stdout().lock();
    match result {
        EventResult::Receipt {
            id,
            seq,
            received_at,
            duplicate,
        } => {
            if arguments.json {
                serde_json::to_writer(
                    &mut stdout,
                    &serde_json::json!({"id": id, "seq": seq, "received_at": received_at, "duplicate": duplicate}),
                )?;
                writeln!(stdout)?;
            } else {
                writeln!(stdout, "{}", inert(&id))?;
                if duplicate {
                    eprintln!("Already stored (same key and content) as seq {seq}.");
                } else {
                    eprintln!("Stored as seq {seq}.");
                }
            }
            Ok(())
        }
        EventResult::Rejected { mut error } => {
            error.field = error.field.as_deref().map(pointer_within_event);
            Err(anyhow!("{error}"))
        }
    }
}

impl Tally {
    fn report(&self, json: bool) -> Result<()> {
        if json {
            let mut stdout = std::io::stdout().lock();
            serde_json::to_writer(&mut stdout, self)?;
            writeln!(stdout)?;
        } else {
            eprintln!(
                "{} accepted ({} of them duplicates of events already stored), {} rejected",
                self.accepted, self.duplicates, self.rejected
            );
        }
        if self.rejected > 0 {
            bail!(
                "{} of {} events were rejected (see the lines above)",
                self.rejected,
                self.accepted + self.rejected
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_without_a_key_get_a_fresh_one_before_they_are_sent() {
        let prepared = prepare_line(b"{\"action\":\"a.b\",\"message\":\"m\"}\r\n")
            .unwrap()
            .unwrap();
        let value: serde_json::Value = serde_json::from_str(&prepared).unwrap();
        assert_eq!(value["key"].as_str().unwrap().len(), 36);
        assert_eq!(value["action"], "a.b");
        let again = prepare_line(b"{\"action\":\"a.b\",\"message\":\"m\"}")
            .unwrap()
            .unwrap();
        assert_ne!(prepared, again, "each event gets its own key");
        assert_eq!(
            prepare_line(b"{}").unwrap().unwrap().len(),
            "{\"key\":\"\"}".len() + 36
        );
    }

    #[test]
    fn events_with_a_key_are_sent_byte_for_byte() {
        let line = br#"{"key":"k-1","action":"a.b","message":"m","message":"twice"}"#;
        assert_eq!(prepare_line(line).unwrap().unwrap().as_bytes(), line);
    }

    #[test]
    fn blank_lines_are_skipped_and_bad_lines_are_explained() {
        assert_eq!(prepare_line(b"   \n").unwrap(), None);
        assert!(prepare_line(b"[1,2]").unwrap_err().contains("JSON object"));
        assert!(
            prepare_line(b"{\"action\":")
                .unwrap_err()
                .contains("not valid JSON")
        );
        assert!(
            prepare_line(b"{\"a\":\"\xff\"}")
                .unwrap_err()
                .contains("UTF-8")
        );
    }

    #[test]
    fn batch_pointers_become_pointers_within_the_line() {
        assert_eq!(pointer_within_event("/events/12/ip"), "/ip");
        assert_eq!(pointer_within_event("/events/0/actor/id"), "/actor/id");
        assert_eq!(pointer_within_event("/ip"), "/ip");
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        assert!(backoff(1) < Duration::from_millis(400));
        assert!(backoff(4) > Duration::from_millis(1400));
        assert!(backoff(40) <= LONGEST_BACKOFF.mul_f64(1.25));
    }

    #[test]
    fn batch_bodies_wrap_the_lines_in_an_events_array() {
        let events = [
            PendingEvent {
                line_number: 1,
                json: "{\"a\":1}".into(),
            },
            PendingEvent {
                line_number: 2,
                json: "{\"b\":2}".into(),
            },
        ];
        assert_eq!(
            &batch_body(&events)[..],
            b"{\"events\":[{\"a\":1},{\"b\":2}]}"
        );
    }
}
