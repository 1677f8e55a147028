//! The query time budget on PostgreSQL: a page query past it is cancelled by the server itself
//! (`SET LOCAL statement_timeout` in the read's transaction) and fails as unavailable, naming the
//! budget, exactly like the SQLite store; the connection it used is not handed out again inside
//! the aborted transaction, and without a budget the same query completes. Without PostgreSQL a
//! local run prints SKIPPED.

use std::time::Duration;

use logbook_core::query::parse;
use logbook_core::store::EventQuery;
use logbook_core::{AccountId, Store, StoreError};
use logbook_store_postgres::scratch_database::ScratchDatabase;
use logbook_store_postgres::{PostgresOptions, PostgresStore};
use logbook_testkit::EventBuilder;

/// Enough events that reading every one of them takes far longer than a millisecond.
const EVENT_COUNT: usize = 20_000;

async fn store_with_events(database: &ScratchDatabase, budget: Option<Duration>) -> PostgresStore {
    let store = PostgresStore::connect(
        &database.url,
        PostgresOptions {
            pool_size: 1,
            query_time_budget: budget,
            ..PostgresOptions::default()
        },
    )
    .await
    .expect("the store connects");
    if store.list_accounts().await.unwrap().is_empty() {
        for chunk in (0..EVENT_COUNT).collect::<Vec<_>>().chunks(5_000) {
            let events = chunk
                .iter()
                .map(|index| {
                    EventBuilder::new("acme")
                        .action("user.login")
                        .message(&format!("login {index} from the office"))
                        .build()
                })
                .collect();
            store.append_events(events).await.unwrap();
        }
    }
    store
}

fn scanning_query() -> EventQuery {
    EventQuery {
        // Words every event holds, and a negation none passes: the page query reads every event.
        query: parse("login office -action:user.login").unwrap(),
        limit: 50,
        after: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_query_past_its_budget_is_cancelled_by_postgres_and_fails_as_unavailable() {
    let Some(database) = ScratchDatabase::create().await else {
        return;
    };
    let account = AccountId::parse("acme").unwrap();
    let unlimited = store_with_events(&database, None).await;
    let page = unlimited
        .query_events(&account, &scanning_query())
        .await
        .unwrap();
    assert!(page.events.is_empty(), "no event passes the negation");
    unlimited.shutdown().await;

    let budgeted = store_with_events(&database, Some(Duration::from_millis(1))).await;
    match budgeted.query_events(&account, &scanning_query()).await {
        Err(StoreError::Unavailable(message)) => {
            assert!(message.contains("time budget of 1 ms"), "{message}");
        }
        other => panic!("expected PostgreSQL to cancel the query, got {other:?}"),
    }
    // The pool's only connection was in the aborted transaction; the next read (one without a
    // budget, so it cannot be cancelled itself) must still get a working connection.
    assert_eq!(
        budgeted
            .get_event(&account, &"no-such-event".into())
            .await
            .unwrap(),
        None
    );
    budgeted.shutdown().await;
}
