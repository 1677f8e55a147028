//! How both writers answer a group commit (issue 17). A writer stores a group's events account by
//! account, each account's in the order they arrived (so in the order of the account's seq, which
//! is what makes the stores' indexes and FTS5 cheap to enter), while every request is answered with
//! its own events' outcomes in the order it sent them. `GroupAnswers` holds a slot per event,
//! filled in the writer's order and handed back in the requests' order.

use logbook_core::StoreError;
use logbook_core::store::AppendOutcome;

/// The answers of one group commit.
pub struct GroupAnswers {
    requests: Vec<Result<Vec<Option<AppendOutcome>>, StoreError>>,
}

impl GroupAnswers {
    /// `requests` gives, for each request of the group in order, its number of events and the
    /// refusal that answers it whole (a volume quota) if there is one.
    pub fn new(requests: impl IntoIterator<Item = (usize, Option<StoreError>)>) -> Self {
        Self {
            requests: requests
                .into_iter()
                .map(|(event_count, refusal)| match refusal {
                    Some(refusal) => Err(refusal),
                    None => Ok((0..event_count).map(|_| None).collect()),
                })
                .collect(),
        }
    }

    /// The outcome of event `event` of request `request`.
    pub fn answer(&mut self, request: usize, event: usize, outcome: AppendOutcome) {
        if let Ok(outcomes) = &mut self.requests[request] {
            outcomes[event] = Some(outcome);
        }
    }

    /// Every request's answer, in the order of the group. Every event of an accepted request
    /// must have been answered.
    pub fn into_replies(self) -> Vec<Result<Vec<AppendOutcome>, StoreError>> {
        self.requests
            .into_iter()
            .map(|answer| {
                answer.map(|outcomes| {
                    outcomes
                        .into_iter()
                        .map(|outcome| outcome.expect("every accepted event has an outcome"))
                        .collect()
                })
            })
            .collect()
    }
}
