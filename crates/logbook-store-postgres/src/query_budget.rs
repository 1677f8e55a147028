//! The time budget of a query on PostgreSQL: the page read's transaction sets
//! `statement_timeout` locally, so PostgreSQL itself cancels a statement that runs past the
//! budget (freeing its backend and its pooled connection) instead of running on after the server
//! has already answered `query_timeout`. A cancelled statement fails with SQLSTATE 57014, which
//! becomes the same `StoreError` the SQLite store returns for its budget.

use std::time::Duration;

use logbook_core::StoreError;
use tokio_postgres::error::SqlState;

use crate::errors::to_store_error;

/// The statement that scopes the budget to the current transaction (`SET LOCAL`), or nothing
/// without a budget. The value is our own integer, so formatting it into the SQL is safe.
pub(crate) fn set_local_statement_timeout(budget: Option<Duration>) -> String {
    match budget {
        // PostgreSQL reads 0 as "no timeout": a sub-millisecond budget is 1 ms.
        Some(budget) => format!(
            "; SET LOCAL statement_timeout = {}",
            budget.as_millis().clamp(1, i32::MAX as u128)
        ),
        None => String::new(),
    }
}

/// Converts an error of a statement that ran under `budget`: a cancellation by
/// `statement_timeout` says that the budget stopped it; anything else converts as usual.
pub(crate) fn budget_error(
    context: &'static str,
    budget: Option<Duration>,
) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |error| match (budget, error.code()) {
        (Some(budget), Some(code)) if *code == SqlState::QUERY_CANCELED => {
            StoreError::Unavailable(format!(
                "the query ran past its time budget of {} ms and was stopped",
                budget.as_millis()
            ))
        }
        _ => to_store_error(context, &error),
    }
}

/// The same for an error already converted by the query compiler, whose statements (term
/// frequency samples) run under the budget too: `to_store_error` ends a database message with its
/// SQLSTATE in parentheses, and 57014 is a cancellation.
pub(crate) fn restate_cancellation(error: StoreError, budget: Option<Duration>) -> StoreError {
    match (budget, &error) {
        (Some(budget), StoreError::Database { message, .. })
            if message.ends_with(&format!("({})", SqlState::QUERY_CANCELED.code())) =>
        {
            StoreError::Unavailable(format!(
                "the query ran past its time budget of {} ms and was stopped",
                budget.as_millis()
            ))
        }
        _ => error,
    }
}
