//! `logbook send`: one event from flags, or NDJSON from a file or stdin in batches, through
//! `logbook_client`.
//!
//! Retries never duplicate: every event without an idempotency `key` is given a fresh UUID key
//! before its first attempt (`PreparedEvent`), and the client's retries send the very same bytes,
//! so the server answers a repeated event with the original (`duplicate: true`). Timeouts,
//! connection errors, 429 and 5xx are retried with exponential backoff; a 413 splits the batch in
//! halves. Lines are sent in file order, one batch at a time, so the stored order follows the file.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use logbook_client::{Client, ErrorDetail, EventResult, PreparedEvent, RetryPolicy};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::cli::SendArgs;
use crate::client::{ApiKeySecret, describe_detail, logbook_client};
use crate::config::Config;
use crate::output::inert;

/// A batch body stays below the server's default 4 MiB limit with room for the wrapper.
const MAX_BATCH_BODY_BYTES: usize = 4 * 1024 * 1024 - 4096;

pub async fn run(config: &Config, arguments: &SendArgs) -> Result<()> {
    let key = ApiKeySecret::from_environment()?;
    if arguments.action.is_some() {
        let client = send_client(config, &key, arguments.max_attempts, ProgressBar::hidden())?;
        let sender = Sender {
            client: &client,
            max_attempts: arguments.max_attempts,
            progress: ProgressBar::hidden(),
        };
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
        let client = send_client(config, &key, arguments.max_attempts, progress.clone())?;
        let sender = Sender {
            client: &client,
            max_attempts: arguments.max_attempts,
            progress,
        };
        sender.send_lines(tokio::io::stdin(), batch_size).await?
    } else {
        let file = tokio::fs::File::open(input)
            .await
            .with_context(|| format!("could not open {}", input.display()))?;
        let length = file.metadata().await.ok().map(|metadata| metadata.len());
        let progress = new_progress_bar(length);
        let client = send_client(config, &key, arguments.max_attempts, progress.clone())?;
        let sender = Sender {
            client: &client,
            max_attempts: arguments.max_attempts,
            progress,
        };
        sender.send_lines(file, batch_size).await?
    };
    tally.report(arguments.json)
}

/// The client for sending: `max_attempts` attempts per batch, and a line on stderr (above the
/// progress bar) before each wait between them.
fn send_client(
    config: &Config,
    key: &ApiKeySecret,
    max_attempts: u32,
    progress: ProgressBar,
) -> Result<Client> {
    logbook_client(config, key, |builder| {
        builder
            .retry_policy(RetryPolicy {
                max_attempts: max_attempts.max(1),
                ..RetryPolicy::default()
            })
            .on_retry(move |notice| {
                let reason = notice.error.to_string();
                progress.suspend(|| {
                    eprintln!(
                        "attempt {} of {} failed ({}); retrying in {:.1}s",
                        notice.attempt,
                        notice.max_attempts,
                        inert(&reason),
                        notice.wait.as_secs_f64()
                    );
                });
            })
    })
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

/// One event ready to go (with a `key` added if it had none) and where it came from, for error
/// reports.
struct PendingEvent {
    line_number: usize,
    event: PreparedEvent,
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
    client: &'client Client,
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
                Ok(Some(event)) => {
                    let length = event.json().len();
                    let batch_is_full = batch.len() >= batch_size
                        || batch_bytes + length + 1 > MAX_BATCH_BODY_BYTES;
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
                    batch_bytes += length + 1;
                    batch.push(PendingEvent { line_number, event });
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
                EventResult::Accepted(receipt) => {
                    tally.accepted += 1;
                    tally.duplicates += usize::from(receipt.duplicate);
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
            .suspend(|| eprintln!("line {}: {}", rejected.line, describe_detail(&detail)));
    }

    /// Sends `events` and returns one result per event, in order (the client splits a batch the
    /// server finds too large and retries transient failures with the same keys).
    async fn deliver(&self, events: &[PendingEvent]) -> Result<Vec<EventResult>> {
        let prepared: Vec<PreparedEvent> =
            events.iter().map(|pending| pending.event.clone()).collect();
        match self.client.send_prepared(&prepared).await {
            Ok(results) => Ok(results),
            Err(error) if error.is_retryable() => Err(anyhow::Error::new(error)
                .context(format!("gave up after {} attempts", self.max_attempts))),
            Err(error) => Err(error.into()),
        }
    }
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

/// Checks that a line is a JSON object and gives it an idempotency key if it has none. Blank lines
/// are skipped (`Ok(None)`). The line's own bytes are kept: re-encoding could hide what the server
/// checks, such as a duplicate field.
fn prepare_line(line: &[u8]) -> Result<Option<PreparedEvent>, String> {
    let text = std::str::from_utf8(line).map_err(|_| "the line is not valid UTF-8".to_owned())?;
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if !text.starts_with('{') {
        return Err("each line must be one JSON object".to_owned());
    }
    PreparedEvent::from_json_object(text)
        .map(Some)
        .map_err(|error| error.to_string())
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
    let key = arguments
        .key
        .clone()
        .unwrap_or_else(logbook_client::fresh_idempotency_key);
    event.insert("key".to_owned(), serde_json::Value::String(key));
    let pending = PendingEvent {
        line_number: 1,
        event: PreparedEvent::from_json_object(&serde_json::Value::Object(event).to_string())?,
    };

    let result = sender
        .deliver(std::slice::from_ref(&pending))
        .await?
        .pop()
        .context("the server answered no result")?;
    let mut stdout = std::io::stdout().lock();
    match result {
        EventResult::Accepted(logbook_client::Receipt {
            id,
            seq,
            received_at,
            duplicate,
            ..
        }) => {
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
            Err(anyhow!("{}", describe_detail(&error)))
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
    fn lines_without_a_key_get_one_and_lines_with_one_are_sent_byte_for_byte() {
        let prepared = prepare_line(b"{\"action\":\"a.b\",\"message\":\"m\"}\r\n")
            .unwrap()
            .unwrap();
        let value: serde_json::Value = serde_json::from_str(prepared.json()).unwrap();
        assert_eq!(value["key"].as_str().unwrap().len(), 36);
        let line = br#"{"key":"k-1","action":"a.b","message":"m","message":"twice"}"#;
        assert_eq!(prepare_line(line).unwrap().unwrap().json().as_bytes(), line);
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
}
