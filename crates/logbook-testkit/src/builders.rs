//! Builders for test data: `EventBuilder` for validated `NewEvent`s, and short constructors for
//! `Query` ASTs.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use logbook_core::AccountId;
use logbook_core::event::{Actor, ActorType, NewEvent, Outcome, Target};
use logbook_core::query::{Clause, Condition, Query, TextPattern};
use time::OffsetDateTime;
use time::macros::datetime;

/// Every built event gets a distinct canonical UUID, like ingest assigns.
static NEXT_EVENT_NUMBER: AtomicU64 = AtomicU64::new(1);

/// When test events were received unless a test says otherwise.
pub const RECEIVED_AT: OffsetDateTime = datetime!(2024-06-01 12:00:00 UTC);

#[derive(Debug, Clone)]
pub struct EventBuilder {
    event: NewEvent,
}

impl EventBuilder {
    pub fn new(account: &str) -> Self {
        let number = NEXT_EVENT_NUMBER.fetch_add(1, Ordering::Relaxed);
        Self {
            event: NewEvent {
                id: format!("01900000-0000-7000-8000-{number:012x}").into(),
                account: AccountId::parse(account).expect("a valid test account name"),
                received_at: RECEIVED_AT,
                created_at: RECEIVED_AT,
                created_at_was_sent: false,
                action: "user.login".into(),
                message: "User logged in".into(),
                actor: None,
                ip: None,
                user_agent: None,
                outcome: None,
                targets: Vec::new(),
                changes: Vec::new(),
                metadata: None,
                key: None,
                salt: logbook_core::personal_data::EventSalt::random(),
            },
        }
    }

    pub fn id(mut self, id: &str) -> Self {
        self.event.id = id.into();
        self
    }

    pub fn action(mut self, action: &str) -> Self {
        self.event.action = action.into();
        self
    }

    pub fn message(mut self, message: &str) -> Self {
        self.event.message = message.into();
        self
    }

    pub fn actor(mut self, actor_id: &str) -> Self {
        self.event.actor = Some(Actor {
            id: actor_id.into(),
            name: None,
            actor_type: Some(ActorType::User),
        });
        self
    }

    /// The actor's display name (after `actor`).
    pub fn actor_name(mut self, name: &str) -> Self {
        if let Some(actor) = self.event.actor.as_mut() {
            actor.name = Some(name.into());
        }
        self
    }

    pub fn ip(mut self, ip: &str) -> Self {
        self.event.ip = Some(ip.parse::<IpAddr>().expect("a valid test IP"));
        self
    }

    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.event.outcome = Some(outcome);
        self
    }

    pub fn target(mut self, target_type: &str, target_id: &str) -> Self {
        self.event.targets.push(Target {
            target_type: target_type.into(),
            id: target_id.into(),
            name: None,
        });
        self
    }

    pub fn created_at(mut self, created_at: OffsetDateTime) -> Self {
        self.event.created_at = created_at;
        self.event.created_at_was_sent = true;
        self
    }

    pub fn received_at(mut self, received_at: OffsetDateTime) -> Self {
        self.event.received_at = received_at;
        if !self.event.created_at_was_sent {
            self.event.created_at = received_at;
        }
        self
    }

    pub fn key(mut self, key: &str) -> Self {
        self.event.key = Some(key.into());
        self
    }

    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.event.metadata = metadata.as_object().cloned();
        self
    }

    pub fn user_agent(mut self, user_agent: &str) -> Self {
        self.event.user_agent = Some(user_agent.into());
        self
    }

    pub fn build(self) -> NewEvent {
        self.event
    }
}

pub fn query(clauses: Vec<Clause>) -> Query {
    Query { clauses }
}

pub fn clause(condition: Condition) -> Clause {
    Clause {
        negated: false,
        condition,
        span: 0..0,
    }
}

pub fn negated(condition: Condition) -> Clause {
    Clause {
        negated: true,
        condition,
        span: 0..0,
    }
}

/// `"server.*,user.login"` as the query language reads it: comma alternatives, `*` a prefix.
pub fn patterns(text: &str) -> Vec<TextPattern> {
    text.split(',')
        .map(|part| match part.strip_suffix('*') {
            Some(prefix) => TextPattern::Prefix(prefix.to_owned()),
            None => TextPattern::Exact(part.to_owned()),
        })
        .collect()
}

/// The seqs of the first page (at most `limit` events, newest first) of the query `text` in the
/// account `account_name`: what store-specific tests compare with the events they expect.
pub async fn first_page_seqs(
    store: &dyn logbook_core::Store,
    account_name: &str,
    text: &str,
    limit: u32,
) -> Vec<u64> {
    store
        .query_events(
            &AccountId::parse(account_name).expect("a valid account name"),
            &logbook_core::store::EventQuery {
                query: logbook_core::query::parse(text).expect("a valid query"),
                limit,
                after: None,
            },
        )
        .await
        .expect("the page")
        .events
        .iter()
        .map(|row| row.seq)
        .collect()
}
