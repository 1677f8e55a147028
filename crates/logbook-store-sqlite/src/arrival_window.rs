//! Pages of rare terms read from the account's newest arrivals first (migration 0023).
//!
//! A rare word or place is looked up in FTS5 first, which yields its matches in `event_row`
//! (arrival) order; the page wants `created_at` order, so SQLite read and sorted every match of
//! the account, and the page's cost grew with the account (issue 17, item 4). Events arrive nearly
//! in time order, so the page is almost always among the newest arrivals. The reader asks for the
//! page among the arrivals at or above one block of 1,024 (`ARRIVAL_BLOCK_BITS`), sized so the
//! term's matches there should fill it, and keeps it only when it is provably the page of the
//! whole account: its last row is no older than `arrival_bounds.newest_created_at` of the block
//! below, the newest `created_at` of every event that arrived before the window. An event below
//! the window with the same `created_at` has a lower `event_row`, so it sorts after the last row
//! too. Otherwise (too few matches in the window, or an event below it dated later than the page,
//! such as one sent with a `created_at` in the future, or other clauses rarer among the term's
//! matches than the window needs) the window grows eightfold until it holds the page or reaches
//! the account's oldest kept event, then the whole account is read as before: the answer is
//! always exact, and only its cost depends on the data. The first window is the blocks holding
//! the term's newest matches, twice the page's worth (`blocks_holding_newest_matches`), or, when
//! the term's matches are not all in `events_fts`, an estimate from its share of the account.
//! A bound below the window that lies ahead of the present (an event dated in the future) cannot
//! be met by a page of present events, so such an account's pages skip the windows.
//!
//! The writer keeps the bounds (`ArrivalBounds`) in the transaction that stores the events.

use std::collections::HashMap;

use logbook_core::StoreError;
use logbook_core::clock::{Clock, SystemClock};
use logbook_core::cursor::CursorPosition;
use logbook_core::event::EventRow;
use logbook_core::query::Query;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::encoding::first_event_row_of;
use crate::errors::database_error;
use crate::query_sql::PagePlan;

/// A block is 2^10 = 1,024 consecutive seqs of one account.
const ARRIVAL_BLOCK_BITS: u32 = 10;

/// How many times more arrivals than the estimate the first window reads, so a term a little
/// rarer among the newest events than in the whole account still fills it.
const WINDOW_MARGIN: i64 = 2;

/// How much the window grows when it does not hold the page.
const WINDOW_GROWTH: i64 = 8;

/// How a page was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageRead {
    /// The page walked an index in `created_at` order: no term was looked up first.
    InOrder,
    /// A window of the newest arrivals held the page.
    Window,
    /// Every match of the account was read and sorted.
    WholeAccount,
}

impl PageRead {
    /// Counts a rare term's page in `logbook_rare_term_pages_total` by how it was read
    /// (`read="window"` or `"whole_account"`): operators see how often the windows serve, and a
    /// test that they do. Called on the async side: a metric recorded on the readers' blocking
    /// threads, which come and go, cost about 2 ms at the 99th percentile of a rare word's page
    /// (BENCHMARKS.md), apparently each new thread's first use of the recorder.
    pub(crate) fn record(self) {
        let read = match self {
            PageRead::InOrder => return,
            PageRead::Window => "window",
            PageRead::WholeAccount => "whole_account",
        };
        metrics::counter!("logbook_rare_term_pages_total", "read" => read).increment(1);
    }
}

/// The block of `seq`.
fn arrival_block_of(seq: u64) -> i64 {
    (seq >> ARRIVAL_BLOCK_BITS) as i64
}

/// The newest `created_at` of each account's arrivals so far, carried across the group's events
/// and written once per account and block before the commit.
#[derive(Default)]
pub(crate) struct ArrivalBounds {
    /// Per account: the block of its latest event in this group and the newest `created_at` of
    /// every event of the account up to it.
    current: HashMap<i64, (i64, i64)>,
    /// Blocks the group has finished (a later event of the account went to the next block).
    finished: Vec<(i64, i64, i64)>,
}

impl ArrivalBounds {
    /// Records a stored event of `account_row`.
    pub(crate) fn record(
        &mut self,
        transaction: &Transaction<'_>,
        account_row: i64,
        seq: u64,
        created_at_micros: i64,
    ) -> Result<(), rusqlite::Error> {
        let block = arrival_block_of(seq);
        let (current_block, newest) = match self.current.get(&account_row) {
            Some(&current) => current,
            None => {
                // The account's bound so far: its highest block's.
                let stored: Option<i64> = transaction
                    .prepare_cached(
                        "SELECT newest_created_at FROM arrival_bounds WHERE account_row = ?1 \
                         ORDER BY arrival_block DESC LIMIT 1",
                    )?
                    .query_row([account_row], |row| row.get(0))
                    .optional()?;
                (block, stored.unwrap_or(i64::MIN))
            }
        };
        if current_block != block {
            self.finished.push((account_row, current_block, newest));
        }
        self.current
            .insert(account_row, (block, newest.max(created_at_micros)));
        Ok(())
    }

    /// Writes every block the group touched. A block already stored keeps the newer bound.
    pub(crate) fn write(&self, transaction: &Transaction<'_>) -> Result<(), rusqlite::Error> {
        let mut upsert = transaction.prepare_cached(
            "INSERT INTO arrival_bounds (account_row, arrival_block, newest_created_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (account_row, arrival_block) DO UPDATE SET \
             newest_created_at = max(newest_created_at, excluded.newest_created_at)",
        )?;
        let current = self
            .current
            .iter()
            .map(|(&account_row, &(block, newest))| (account_row, block, newest));
        for (account_row, block, newest) in self.finished.iter().copied().chain(current) {
            upsert.execute(params![account_row, block, newest])?;
        }
        Ok(())
    }
}

/// How many blocks, from `top_block` down, hold the `matches` newest matches of the `events_fts`
/// expression `expression` among the arrivals up to the end of `top_block`; `None` when there are
/// fewer. FTS5 reads a doclist backwards from a rowid, so this costs about `matches` entries
/// however many the term has: a window sized this way holds the page of a term as common as
/// `action:user.login` in a block or two, where an estimate from the term's share of the whole
/// account (all a count capped at `COMMON_TERM_DOCUMENTS` can give) reads a twentieth of it.
fn blocks_holding_newest_matches(
    connection: &Connection,
    expression: &str,
    first_event_row: i64,
    top_block: i64,
    matches: i64,
) -> Result<Option<i64>, StoreError> {
    let above_top = first_event_row + ((top_block + 1) << ARRIVAL_BLOCK_BITS);
    let oldest_of_newest: Option<i64> = connection
        .prepare_cached(
            "SELECT rowid FROM events_fts WHERE events_fts MATCH ?1 AND rowid < ?2 \
             ORDER BY rowid DESC LIMIT 1 OFFSET ?3",
        )
        .map_err(database_error(
            "preparing the lookup of a term's newest matches",
        ))?
        .query_row(
            params![expression, above_top, (matches - 1).max(0)],
            |row| row.get(0),
        )
        .optional()
        .map_err(database_error("reading a term's newest matches"))?;
    Ok(oldest_of_newest
        .map(|event_row| top_block + 1 - ((event_row - first_event_row) >> ARRIVAL_BLOCK_BITS)))
}

/// Reads one page of `plan`: from windows of the newest arrivals when its matches are gathered and
/// sorted (a rare term looked up first), else over the whole account. `fetch_limit` rows at most,
/// and how they were read.
pub(crate) fn read_page_rows(
    connection: &Connection,
    plan: &mut PagePlan,
    query: &Query,
    after: Option<CursorPosition>,
    fetch_limit: u32,
    read_rows: impl Fn(
        &Connection,
        &logbook_store_sql::CompiledQuery,
    ) -> Result<Vec<EventRow>, StoreError>,
) -> Result<(Vec<EventRow>, PageRead), StoreError> {
    const READING: &str = "reading the arrival bounds";
    if let Some(documents) = plan
        .fewest_documents_looked_up()
        .filter(|&documents| documents > 0)
    {
        let account_row = plan.account_row();
        let newest_block: Option<i64> = connection
            .prepare_cached(
                "SELECT arrival_block FROM arrival_bounds WHERE account_row = ?1 \
                 ORDER BY arrival_block DESC LIMIT 1",
            )
            .map_err(database_error(READING))?
            .query_row([account_row], |row| row.get(0))
            .optional()
            .map_err(database_error(READING))?;
        if let Some(newest_block) = newest_block {
            let now_micros = logbook_core::event::unix_micros(SystemClock.now());
            // After a cursor, the page continues below the cursor's own arrival.
            let top_block = after.map_or(newest_block, |after| {
                newest_block.min(arrival_block_of(after.seq))
            });
            // Retention may have deleted the account's oldest events: they are neither counted
            // in `documents` nor worth a window, which ends where the kept events start.
            let pruned_below: i64 = connection
                .prepare_cached(
                    "SELECT pruned_below_seq FROM pruned_prefixes WHERE account_row = ?1",
                )
                .map_err(database_error(READING))?
                .query_row([account_row], |row| row.get(0))
                .optional()
                .map_err(database_error(READING))?
                .unwrap_or(0);
            let first_kept_block = pruned_below >> ARRIVAL_BLOCK_BITS;
            // The arrivals expected to hold the page: the term is in `documents` of the account's
            // kept events (at most `newest_block + 1` blocks of seqs, less the pruned ones).
            let account_events = (((newest_block + 1) << ARRIVAL_BLOCK_BITS) - pruned_below).max(1);
            let estimated_window_blocks = {
                let window_events = (i64::from(fetch_limit).saturating_mul(account_events)
                    / documents)
                    .saturating_mul(WINDOW_MARGIN);
                (window_events >> ARRIVAL_BLOCK_BITS) + 1
            };
            let newest_matches_blocks = match plan.fewest_documents_expression() {
                Some(expression) => blocks_holding_newest_matches(
                    connection,
                    expression,
                    first_event_row_of(account_row),
                    top_block,
                    i64::from(fetch_limit).saturating_mul(WINDOW_MARGIN),
                )?,
                None => None,
            };
            let mut window_blocks = newest_matches_blocks.unwrap_or(estimated_window_blocks);
            loop {
                let lowest_block = top_block + 1 - window_blocks;
                if lowest_block <= first_kept_block {
                    break;
                }
                let bound_below: Option<i64> = connection
                    .prepare_cached(
                        "SELECT newest_created_at FROM arrival_bounds \
                         WHERE account_row = ?1 AND arrival_block < ?2 \
                         ORDER BY arrival_block DESC LIMIT 1",
                    )
                    .map_err(database_error(READING))?
                    .query_row(params![account_row, lowest_block], |row| row.get(0))
                    .optional()
                    .map_err(database_error(READING))?;
                // An event below the window dated ahead of now: no page of events dated up to
                // now can be proved complete against it, so the whole account is read at once
                // rather than after windows that cannot hold the page.
                if bound_below.is_some_and(|bound| bound > now_micros) {
                    break;
                }
                let lowest_event_row =
                    first_event_row_of(account_row) + (lowest_block << ARRIVAL_BLOCK_BITS);
                let compiled = plan.compile(query, after, fetch_limit, Some(lowest_event_row));
                let rows = read_rows(connection, &compiled)?;
                let holds_the_page = rows.len() == fetch_limit as usize
                    && rows.last().is_some_and(|last| {
                        bound_below.is_none_or(|bound| last.created_at_micros >= bound)
                    });
                if holds_the_page {
                    return Ok((rows, PageRead::Window));
                }
                window_blocks = window_blocks.saturating_mul(WINDOW_GROWTH);
            }
        }
    }
    let compiled = plan.compile(query, after, fetch_limit, None);
    let read = if plan.fewest_documents_looked_up().is_some() {
        PageRead::WholeAccount
    } else {
        PageRead::InOrder
    };
    Ok((read_rows(connection, &compiled)?, read))
}
