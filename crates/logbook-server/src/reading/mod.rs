//! What the API and the pages share to read an account's log: the `q` parameter, what a reader may
//! see (`ReadScope`), known networks resolved for live views, and the answers both give (exports,
//! live tails, inclusion proofs). Handlers in `api/` and `web/` only authenticate, parse their own
//! parameters and call these.

pub mod export;
pub mod proofs;
pub mod tail;
pub mod verifiable_export;

use logbook_core::AccountId;
use logbook_core::event::StoredEvent;
use logbook_core::people::UserRecord;
use logbook_core::query::{self, Clause, Condition, Query, TextPattern};

use crate::error::ApiError;
use crate::state::AppState;

/// What one reader may see of their account's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadScope {
    /// Every event of the account (owners, admins, viewers, read keys).
    WholeLog,
    /// Only the events this actor performed: a member, whose `actor.id` is their email.
    OwnEvents { actor_id: String },
    /// Only the events a fixed query matches (a viewer session's `query` scope), with its known
    /// network names already resolved to their blocks.
    Within(Query),
}

impl ReadScope {
    /// What a signed-in person may read: members their own events, everyone else the whole log.
    pub fn of_person(user: &UserRecord) -> Self {
        if user.role.reads_whole_log() {
            ReadScope::WholeLog
        } else {
            ReadScope::OwnEvents {
                actor_id: user.email.clone(),
            }
        }
    }

    /// `query` limited to the scope. The scope's condition is one more clause, and clauses AND
    /// together, so nothing typed in the query can widen it.
    pub fn restrict(&self, mut query: Query) -> Query {
        match self {
            ReadScope::WholeLog => {}
            ReadScope::OwnEvents { actor_id } => query.clauses.push(Clause {
                negated: false,
                condition: Condition::Actor(vec![TextPattern::Exact(actor_id.clone())]),
                span: 0..0,
            }),
            // The fixed query's clauses are added as they are: each one must hold, whatever
            // the typed clauses say (a typed negation is one more clause, not a negation of these).
            ReadScope::Within(fixed) => query.clauses.extend(fixed.clauses.iter().cloned()),
        }
        query
    }

    /// Whether one event is inside the scope (for reads by id).
    pub fn may_see(&self, event: &StoredEvent) -> bool {
        match self {
            ReadScope::WholeLog => true,
            ReadScope::OwnEvents { actor_id } => event
                .actor
                .as_ref()
                .is_some_and(|actor| &actor.id == actor_id),
            ReadScope::Within(fixed) => fixed.matches(event),
        }
    }
}

/// The largest whole number a query parameter or header takes (a seq, a tree size): 2^53 - 1,
/// the largest integer every JSON client holds exactly. The OpenAPI document states it as each
/// such parameter's maximum, so the server refuses exactly what the document does.
pub const MAX_WHOLE_NUMBER_PARAMETER: u64 = (1 << 53) - 1;

/// Parses a whole-number parameter within `minimum..=maximum`; absent is `None`, and anything
/// else (an empty value included) is a 400 with `code` that names the parameter.
pub fn whole_number_parameter(
    text: Option<&str>,
    field: &'static str,
    code: &'static str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Option<u64>, ApiError> {
    let Some(text) = text else {
        return Ok(None);
    };
    match text.parse::<u64>() {
        Ok(number) if range.contains(&number) => Ok(Some(number)),
        _ => Err(ApiError::bad_request(
            code,
            format!(
                "{field} must be a whole number from {} to {}",
                range.start(),
                range.end()
            ),
            Some(field),
        )),
    }
}

/// Parses the `q` parameter; absent or blank means "every event".
pub fn parse_query_parameter(text: Option<&str>) -> Result<Query, ApiError> {
    match text {
        None => Ok(Query::default()),
        Some(text) if text.trim().is_empty() => Ok(Query::default()),
        Some(text) => {
            query::parse(text).map_err(|source| ApiError::InvalidQuery { source, field: "q" })
        }
    }
}

/// `filter` with each `ip:NAME` replaced by the account's known network of that name, for the
/// live views, which match events in memory instead of in the store's SQL. Resolved once when
/// the view opens: a network renamed later applies to views opened after it.
pub async fn resolve_known_networks_for_live_view(
    state: &AppState,
    account: &AccountId,
    filter: Query,
) -> Result<Query, ApiError> {
    let names_a_known_network = filter
        .clauses
        .iter()
        .any(|clause| matches!(clause.condition, Condition::KnownNetwork(_)));
    if !names_a_known_network {
        return Ok(filter);
    }
    let known_networks = state
        .store()
        .unfamiliar_ips()
        .known_networks(account)
        .await?;
    Ok(filter.resolve_known_networks(&known_networks))
}

/// The known network names `query` uses (`ip:NAME`) that `account` has no network of. A reader's
/// fixed query that names one would match nothing, or, negated, everything; it is refused
/// rather than read that way.
pub async fn unknown_network_names(
    state: &AppState,
    account: &AccountId,
    query: &Query,
) -> Result<Vec<String>, ApiError> {
    let named: Vec<&logbook_core::unfamiliar_ip::NetworkName> = query
        .clauses
        .iter()
        .filter_map(|clause| match &clause.condition {
            Condition::KnownNetwork(names) => Some(names.iter()),
            _ => None,
        })
        .flatten()
        .collect();
    if named.is_empty() {
        return Ok(Vec::new());
    }
    let known = state
        .store()
        .unfamiliar_ips()
        .known_networks(account)
        .await?;
    Ok(named
        .into_iter()
        .filter(|name| !known.iter().any(|network| &network.name == *name))
        .map(|name| name.as_str().to_owned())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_members_scope_holds_whatever_they_type() {
        let scope = ReadScope::OwnEvents {
            actor_id: "bob@acme.com".into(),
        };
        let typed = query::parse("-actor:bob@acme.com actor:alice@acme.com").unwrap();
        let restricted = scope.restrict(typed);
        assert_eq!(restricted.clauses.len(), 3);
        assert!(matches!(
            &restricted.clauses[2].condition,
            Condition::Actor(patterns) if patterns == &[TextPattern::Exact("bob@acme.com".into())]
        ));
        assert_eq!(
            ReadScope::WholeLog.restrict(Query::default()),
            Query::default()
        );
    }

    #[test]
    fn a_fixed_query_scope_holds_whatever_they_type() {
        let scope = ReadScope::Within(query::parse("target:srv-123").unwrap());
        let typed = query::parse("-target:srv-123 target:srv-999").unwrap();
        let restricted = scope.restrict(typed);
        assert_eq!(restricted.clauses.len(), 3);
        let last = &restricted.clauses[2];
        assert!(!last.negated);
        assert!(matches!(
            &last.condition,
            Condition::Target(patterns) if patterns == &[TextPattern::Exact("srv-123".into())]
        ));
    }
}
