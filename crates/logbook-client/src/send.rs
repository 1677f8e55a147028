//! Sending a batch: one `POST /api/v1/events`, retried with capped, jittered exponential backoff
//! on transient failures (connection errors, timeouts, 429, 5xx, a cut-off answer), always with
//! the same bytes and so the same idempotency keys; a 413 or a `too_many_events` 400 splits the
//! batch in halves.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;

use crate::error::{Error, ErrorDetail};
use crate::event::{Event, EventResult, PreparedEvent};
use crate::{Client, retry_after_of};

/// How often and how patiently a send is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles per attempt.
    pub first_backoff: Duration,
    /// No wait grows beyond this (before jitter).
    pub longest_backoff: Duration,
    /// A server's `Retry-After` is obeyed up to this long.
    pub longest_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            first_backoff: Duration::from_millis(250),
            longest_backoff: Duration::from_secs(15),
            longest_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt `attempt` (1-based): exponential, capped, with ±25 % jitter
    /// so producers that failed together do not retry together.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exponential = self
            .first_backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.longest_backoff);
        exponential.mul_f64(rand::rng().random_range(0.75..1.25))
    }
}

/// Told to the client's retry observer before each wait.
#[derive(Debug)]
pub struct RetryNotice<'error> {
    /// The attempt that failed (1-based).
    pub attempt: u32,
    pub max_attempts: u32,
    pub error: &'error Error,
    pub wait: Duration,
}

#[derive(Deserialize)]
struct IngestAnswer {
    results: Vec<EventResult>,
}

enum Delivery {
    Answered(Vec<EventResult>),
    TooLarge(Error),
}

impl Client {
    /// Sends `events` now and returns one result per event, in order. Events without a key get
    /// a fresh one first, so the retries this makes (and any the caller makes with the same
    /// `PreparedEvent`s) never store an event twice.
    pub async fn send(&self, events: &[Event]) -> Result<Vec<EventResult>, Error> {
        let prepared = events
            .iter()
            .map(PreparedEvent::from_event)
            .collect::<Result<Vec<_>, _>>()?;
        self.send_prepared(&prepared).await
    }

    /// `send` for events already prepared (their keys fixed), e.g. lines of an NDJSON file.
    /// A batch the server finds too large (413, or more events than a request may hold) is split
    /// in halves until it fits; an event too large on its own gets a `too_large` rejection.
    pub async fn send_prepared(&self, events: &[PreparedEvent]) -> Result<Vec<EventResult>, Error> {
        let mut results = Vec::with_capacity(events.len());
        let mut parts: VecDeque<&[PreparedEvent]> = VecDeque::from([events]);
        while let Some(part) = parts.pop_front() {
            if part.is_empty() {
                continue;
            }
            match self.post_with_retries(part).await? {
                Delivery::Answered(answered) => results.extend(answered),
                Delivery::TooLarge(_) if part.len() > 1 => {
                    let (first, second) = part.split_at(part.len() / 2);
                    parts.push_front(second);
                    parts.push_front(first);
                }
                Delivery::TooLarge(error) => results.push(EventResult::Rejected {
                    error: error.detail().cloned().unwrap_or_else(|| ErrorDetail {
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

    async fn post_with_retries(&self, events: &[PreparedEvent]) -> Result<Delivery, Error> {
        let body = batch_body(events);
        let retry = self.inner.retry;
        let max_attempts = retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            let error = match self.post_once(body.clone(), events.len()).await {
                Ok(delivery) => return Ok(delivery),
                Err(error) if !error.is_retryable() || attempt >= max_attempts => {
                    return Err(error);
                }
                Err(error) => error,
            };
            let wait = match &error {
                Error::Unavailable {
                    retry_after: Some(retry_after),
                    ..
                } => (*retry_after).min(retry.longest_retry_after),
                _ => retry.backoff(attempt),
            };
            if let Some(observer) = &self.inner.retry_observer {
                observer(&RetryNotice {
                    attempt,
                    max_attempts,
                    error: &error,
                    wait,
                });
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn post_once(&self, body: Bytes, event_count: usize) -> Result<Delivery, Error> {
        let response = self
            .post("/api/v1/events")
            .header(CONTENT_TYPE, "application/json")
            .timeout(self.inner.request_timeout)
            .body(body)
            .send()
            .await
            .map_err(|error| self.transport_error(error))?;
        let status = response.status();
        let retry_after = retry_after_of(&response);
        // A cut-off answer leaves the events stored or not; the same keys make a retry safe.
        let answer = response
            .bytes()
            .await
            .map_err(|error| self.transport_error(error))?;
        // Over the byte limit (413) or over the count of events a request may hold (400
        // `too_many_events`): either way, halves of the batch fit.
        let over_the_event_count = status == StatusCode::BAD_REQUEST
            && ErrorDetail::from_body(&answer)
                .is_some_and(|detail| detail.code == "too_many_events");
        if status == StatusCode::PAYLOAD_TOO_LARGE || over_the_event_count {
            return Ok(Delivery::TooLarge(Error::from_answer(
                status, &answer, None,
            )));
        }
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(Error::from_answer(status, &answer, retry_after));
        }
        // 200, 207 and a 400 whose events were all rejected carry one result per event; any
        // other answer is about the request as a whole.
        if let Ok(parsed) = serde_json::from_slice::<IngestAnswer>(&answer)
            && parsed.results.len() == event_count
        {
            return Ok(Delivery::Answered(parsed.results));
        }
        if status.is_success() {
            return Err(Error::UnexpectedAnswer(format!(
                "a {status} answer without one result per event"
            )));
        }
        Err(Error::from_answer(status, &answer, retry_after))
    }
}

/// `{"events":[...]}` from the prepared events, built once and reused by every retry.
fn batch_body(events: &[PreparedEvent]) -> Bytes {
    let length = events
        .iter()
        .map(|event| event.json().len() + 1)
        .sum::<usize>()
        + 16;
    let mut body = Vec::with_capacity(length);
    body.extend_from_slice(b"{\"events\":[");
    for (index, event) in events.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(event.json().as_bytes());
    }
    body.extend_from_slice(b"]}");
    Bytes::from(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let policy = RetryPolicy::default();
        assert!(policy.backoff(1) < Duration::from_millis(400));
        assert!(policy.backoff(4) > Duration::from_millis(1400));
        assert!(policy.backoff(40) <= policy.longest_backoff.mul_f64(1.25));
        let waits: std::collections::HashSet<Duration> =
            (0..20).map(|_| policy.backoff(3)).collect();
        assert!(waits.len() > 1, "jitter spreads the waits");
    }

    #[test]
    fn batch_bodies_wrap_the_events_in_an_events_array() {
        let events = [
            PreparedEvent::from_json_object("{\"key\":\"a\"}").unwrap(),
            PreparedEvent::from_json_object("{\"key\":\"b\"}").unwrap(),
        ];
        assert_eq!(
            &batch_body(&events)[..],
            b"{\"events\":[{\"key\":\"a\"},{\"key\":\"b\"}]}"
        );
    }
}
