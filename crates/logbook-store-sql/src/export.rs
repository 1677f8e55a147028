//! Exports and pages as both stores serve them: a page is read with one row more than asked, which
//! tells whether a next page exists without a second query; an export is a stream of such pages,
//! read at most two ahead of the consumer, each on a connection held only while it is read.

use std::collections::VecDeque;
use std::future::Future;

use futures::stream::BoxStream;
use logbook_core::StoreError;
use logbook_core::cursor::CursorPosition;
use logbook_core::event::EventRow;
use logbook_core::store::EventPage;
use tokio::sync::mpsc;

/// Events per page when exporting: bounded memory, and a connection held only per page.
pub const EXPORT_PAGE_SIZE: u32 = 1_000;

/// The page of `limit` events from rows read with a fetch limit of `limit + 1`.
pub fn page_from_rows(mut events: Vec<EventRow>, limit: u32) -> EventPage {
    let next = if events.len() > limit as usize {
        events.truncate(limit as usize);
        events.last().map(|last| CursorPosition {
            created_at_micros: last.created_at_micros,
            seq: last.seq,
        })
    } else {
        None
    };
    EventPage { events, next }
}

/// Every event of the pages `read_page` returns, from the first (after `None`) to the last (whose
/// `next` is `None`), as one stream. `read_page(after)` reads `EXPORT_PAGE_SIZE` events.
pub fn export_pages<ReadPage, PageFuture>(
    mut read_page: ReadPage,
) -> BoxStream<'static, Result<EventRow, StoreError>>
where
    ReadPage: FnMut(Option<CursorPosition>) -> PageFuture + Send + 'static,
    PageFuture: Future<Output = Result<EventPage, StoreError>> + Send + 'static,
{
    let (page_sender, page_receiver) = mpsc::channel::<Result<Vec<EventRow>, StoreError>>(2);
    let producer = async move {
        let mut after = None;
        loop {
            match read_page(after).await {
                Ok(page) => {
                    after = page.next;
                    let last_page = page.next.is_none();
                    if page_sender.send(Ok(page.events)).await.is_err() || last_page {
                        return;
                    }
                }
                Err(error) => {
                    let _ = page_sender.send(Err(error)).await;
                    return;
                }
            }
        }
    };
    struct ExportState<Producer> {
        producer: Option<Producer>,
        receiver: mpsc::Receiver<Result<Vec<EventRow>, StoreError>>,
        buffered: VecDeque<EventRow>,
    }
    let state = ExportState {
        producer: Some(producer),
        receiver: page_receiver,
        buffered: VecDeque::new(),
    };
    // The producer starts on the first poll, so creating the stream outside a runtime is fine.
    Box::pin(futures::stream::unfold(state, |mut state| async move {
        if let Some(producer) = state.producer.take() {
            tokio::spawn(producer);
        }
        loop {
            if let Some(event) = state.buffered.pop_front() {
                return Some((Ok(event), state));
            }
            match state.receiver.recv().await? {
                Ok(events) => state.buffered = events.into(),
                Err(error) => return Some((Err(error), state)),
            }
        }
    }))
}
