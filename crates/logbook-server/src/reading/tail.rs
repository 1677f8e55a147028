//! Live tails as Server-Sent Events, for the API (`GET /api/v1/events/tail`) and the page's live
//! updates. Each matching event is sent as `event: event`, `id: <seq>`, `data: <event JSON>`.
//!
//! The tail polls the store (`events_since`) rather than holding a subscription, so it works the
//! same on every backend and on every node; at most one poll's worth of events is buffered.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use logbook_core::event::StoredEvent;
use logbook_core::query::Query as EventFilter;
use logbook_core::{AccountId, Store};

use crate::error::ErrorChain;
use crate::state::AppState;

/// The SSE answer that follows `account`'s events matching `filter` from `next_seq` on; shared
/// with the web page's live updates, which authenticate by session instead of key. The stream
/// ends at shutdown, and when `reader_ends` completes (a viewer session that ended or was
/// revoked while it was open).
pub(crate) fn tail_response(
    state: &AppState,
    account: AccountId,
    filter: EventFilter,
    next_seq: u64,
    reader_ends: Option<futures::future::BoxFuture<'static, ()>>,
) -> Response {
    let settings = state.settings();
    let open_tail = match state.limiter().open_tail(&account) {
        Ok(slot) => slot,
        Err(refusal) => return refusal.into_response(),
    };
    let poller = TailPoller {
        _open_tail: open_tail,
        store: state.store().clone(),
        account,
        filter,
        next_seq,
        batch_size: settings.tail_batch_size,
        poll_interval: settings.tail_poll_interval,
        pending: VecDeque::new(),
        wait_before_next_poll: false,
        finished: false,
    };
    let events = futures::stream::unfold(poller, |mut poller| async move {
        let event = poller.next_event().await?;
        Some((Ok::<Event, Infallible>(event), poller))
    })
    .take_until(state.shutdown_signal().wait())
    .take_until(reader_ends.unwrap_or_else(|| Box::pin(futures::future::pending())));

    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(settings.tail_keep_alive_interval))
        .into_response();
    // Reverse proxies such as nginx would otherwise buffer the stream and delay every event.
    response.headers_mut().insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    response
}

struct TailPoller {
    /// This tail's place among the account's open tails, freed when the stream is dropped.
    _open_tail: crate::limits::OpenSlot,
    store: Arc<dyn Store>,
    account: AccountId,
    filter: EventFilter,
    next_seq: u64,
    batch_size: u32,
    poll_interval: Duration,
    pending: VecDeque<Event>,
    /// Set after a poll that returned less than a full batch: the tail has caught up.
    wait_before_next_poll: bool,
    finished: bool,
}

impl TailPoller {
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.finished {
                return None;
            }
            if self.wait_before_next_poll {
                tokio::time::sleep(self.poll_interval).await;
            }
            if let Err(event) = self.poll().await {
                self.finished = true;
                return Some(event);
            }
        }
    }

    /// Fetches the next batch into `pending`; a store failure becomes an `error` event that ends
    /// the tail (the client reconnects with `Last-Event-ID`).
    async fn poll(&mut self) -> Result<(), Event> {
        let rows = match self
            .store
            .events_since(&self.account, self.next_seq, self.batch_size)
            .await
        {
            Ok(rows) => rows,
            Err(error) => {
                tracing::warn!(error = %ErrorChain(&error), "live tail stopped: the store could not be read");
                return Err(Event::default()
                    .event("error")
                    .data(r#"{"error":{"code":"unavailable","message":"events could not be read; reconnect to resume","field":null}}"#));
            }
        };
        self.wait_before_next_poll = rows.len() < self.batch_size as usize;
        for row in rows {
            self.next_seq = row.seq + 1;
            let json = row.to_json();
            if !self.filter.is_empty() {
                match serde_json::from_str::<StoredEvent>(&json) {
                    Ok(event) if self.filter.matches(&event) => {}
                    Ok(_) => continue,
                    Err(error) => {
                        tracing::error!(seq = row.seq, error = %error, "a stored event could not be decoded; skipped");
                        continue;
                    }
                }
            }
            self.pending.push_back(
                Event::default()
                    .event("event")
                    .id(row.seq.to_string())
                    .data(json),
            );
        }
        Ok(())
    }
}
