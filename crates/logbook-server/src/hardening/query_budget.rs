//! The query time budget: an answer that took longer than the budget is never sent (see
//! `crate::hardening`).

use std::future::Future;
use std::time::Duration;

use crate::error::ApiError;

/// Runs `query`, answering `query_timeout` when it takes longer than `budget` (also when it
/// finishes, late, without yielding to the timer).
pub async fn within_query_budget<T>(
    budget: Duration,
    query: impl Future<Output = T>,
) -> Result<T, ApiError> {
    let started = std::time::Instant::now();
    match tokio::time::timeout(budget, query).await {
        // A store that reads on the calling thread cannot be interrupted by the timer, so its
        // answer is checked against the budget too: an over-budget answer is never sent, which
        // keeps the rule the same on every backend.
        Ok(answer) if started.elapsed() <= budget => Ok(answer),
        _ => {
            metrics::counter!("logbook_query_timeouts_total").increment(1);
            Err(ApiError::QueryTimeout {
                budget_ms: u64::try_from(budget.as_millis()).unwrap_or(u64::MAX),
            })
        }
    }
}
