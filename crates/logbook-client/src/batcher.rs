//! The background batcher: events submitted from anywhere in a service are sent in batches
//! bounded in size (events and bytes) and time, by one task, with the client's retries.
//!
//! Memory is bounded: the queue holds at most `queue_capacity` events and the task one batch
//! besides, so at most `queue_capacity + max_batch_events` events are held at once. When the queue
//! is full, `submit` waits (backpressure) and `try_submit` says so, instead of growing.

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::Client;
use crate::error::Error;
use crate::event::{Event, EventResult, PreparedEvent, Receipt};

/// The batcher's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatcherSettings {
    /// A batch is sent when it holds this many events (the server takes at most 1000).
    pub max_batch_events: usize,
    /// ... or would grow past this many bytes of JSON (the server takes 4 MiB by default).
    pub max_batch_bytes: usize,
    /// ... or its first event has waited this long.
    pub max_delay: Duration,
    /// Events waiting for a batch; `submit` waits when it is full.
    pub queue_capacity: usize,
}

impl Default for BatcherSettings {
    fn default() -> Self {
        Self {
            max_batch_events: 500,
            max_batch_bytes: 4 * 1024 * 1024 - 4096,
            max_delay: Duration::from_secs(1),
            queue_capacity: 10_000,
        }
    }
}

struct Submission {
    event: PreparedEvent,
    reply: oneshot::Sender<Result<Receipt, Error>>,
}

/// An event in the batcher; `receipt` says what became of it.
#[derive(Debug)]
pub struct SubmittedEvent {
    reply: oneshot::Receiver<Result<Receipt, Error>>,
}

impl SubmittedEvent {
    /// Waits until the event's batch was answered: its receipt (`duplicate` when a retry found it
    /// stored already), `Error::InvalidEvent` when the server refused it, or the batch's error
    /// once its retries were spent. Dropping a `SubmittedEvent` does not cancel the event.
    pub async fn receipt(self) -> Result<Receipt, Error> {
        self.reply.await.unwrap_or_else(|_| {
            Err(Error::Usage(
                "the batcher stopped before answering".to_owned(),
            ))
        })
    }
}

/// Sends submitted events in the background. Made by `Client::batcher`.
#[derive(Debug)]
pub struct Batcher {
    sender: mpsc::Sender<Submission>,
    worker: JoinHandle<()>,
}

impl Client {
    /// Starts a background batcher that sends through this client (on the current Tokio
    /// runtime).
    pub fn batcher(&self, settings: BatcherSettings) -> Batcher {
        let (sender, receiver) = mpsc::channel(settings.queue_capacity.max(1));
        let worker = tokio::spawn(run_batches(self.clone(), settings, receiver));
        Batcher { sender, worker }
    }
}

impl Batcher {
    /// Queues `event` (with a fresh idempotency key if it has none), waiting while the queue is
    /// full.
    pub async fn submit(&self, event: Event) -> Result<SubmittedEvent, Error> {
        let (submission, submitted) = Self::submission(&event)?;
        self.sender
            .send(submission)
            .await
            .map_err(|_| Error::Usage("the batcher is closed".to_owned()))?;
        Ok(submitted)
    }

    /// Queues `event` if there is room now; `Err(Error::Usage)` when the queue is full.
    pub fn try_submit(&self, event: Event) -> Result<SubmittedEvent, Error> {
        let (submission, submitted) = Self::submission(&event)?;
        self.sender
            .try_send(submission)
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => {
                    Error::Usage("the batcher's queue is full".to_owned())
                }
                mpsc::error::TrySendError::Closed(_) => {
                    Error::Usage("the batcher is closed".to_owned())
                }
            })?;
        Ok(submitted)
    }

    fn submission(event: &Event) -> Result<(Submission, SubmittedEvent), Error> {
        let (reply, receiver) = oneshot::channel();
        Ok((
            Submission {
                event: PreparedEvent::from_event(event)?,
                reply,
            },
            SubmittedEvent { reply: receiver },
        ))
    }

    /// Sends everything queued and stops.
    pub async fn close(self) -> Result<(), Error> {
        drop(self.sender);
        self.worker
            .await
            .map_err(|error| Error::Usage(format!("the batcher's task failed: {error}")))
    }
}

async fn run_batches(
    client: Client,
    settings: BatcherSettings,
    mut receiver: mpsc::Receiver<Submission>,
) {
    let max_events = settings.max_batch_events.max(1);
    // An event that would have made the previous batch too large starts the next one.
    let mut carried_over: Option<Submission> = None;
    loop {
        let first = match carried_over.take() {
            Some(submission) => submission,
            None => match receiver.recv().await {
                Some(submission) => submission,
                None => return,
            },
        };
        let deadline = tokio::time::Instant::now() + settings.max_delay;
        let mut batch_bytes = first.event.json().len() + 1;
        let mut batch = vec![first];
        while batch.len() < max_events {
            tokio::select! {
                next = receiver.recv() => match next {
                    Some(submission) => {
                        let length = submission.event.json().len() + 1;
                        if batch_bytes + length > settings.max_batch_bytes {
                            carried_over = Some(submission);
                            break;
                        }
                        batch_bytes += length;
                        batch.push(submission);
                    }
                    None => break,
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        send_batch(&client, batch).await;
    }
}

async fn send_batch(client: &Client, batch: Vec<Submission>) {
    let (events, replies): (Vec<PreparedEvent>, Vec<_>) = batch
        .into_iter()
        .map(|submission| (submission.event, submission.reply))
        .unzip();
    match client.send_prepared(&events).await {
        Ok(results) => {
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(match result {
                    EventResult::Accepted(receipt) => Ok(receipt),
                    EventResult::Rejected { error } => Err(Error::InvalidEvent(error)),
                });
            }
        }
        Err(error) => {
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
            }
        }
    }
}
