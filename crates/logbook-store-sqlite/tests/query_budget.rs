//! The query time budget inside the SQLite store: a page query that runs past it is interrupted by
//! SQLite's progress handler and fails as unavailable, naming the budget; without a budget the
//! same query completes.

use std::time::Duration;

use logbook_core::query::parse;
use logbook_core::store::EventQuery;
use logbook_core::{AccountId, Store, StoreError};
use logbook_store_sqlite::{SqliteOptions, SqliteStore};
use logbook_testkit::builders::EventBuilder;

async fn store_with_events(budget: Option<Duration>) -> (tempfile::TempDir, SqliteStore) {
    let directory = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        &directory.path().join("logbook.db"),
        SqliteOptions {
            query_time_budget: budget,
            ..SqliteOptions::default()
        },
    )
    .unwrap();
    let events = (0..3000)
        .map(|index| {
            EventBuilder::new("acme")
                .action("user.login")
                .message(&format!("login {index} from the office"))
                .build()
        })
        .collect();
    store.append_events(events).await.unwrap();
    (directory, store)
}

fn scanning_query() -> EventQuery {
    EventQuery {
        // Words every event holds, and a negation none passes: the page query reads every event.
        query: parse("login office -action:user.login").unwrap(),
        limit: 50,
        after: None,
    }
}

#[tokio::test]
async fn a_page_query_past_its_budget_is_interrupted_and_fails_as_unavailable() {
    let (_directory, store) = store_with_events(Some(Duration::from_nanos(1))).await;
    let account = AccountId::parse("acme").unwrap();
    match store.query_events(&account, &scanning_query()).await {
        Err(StoreError::Unavailable(message)) => {
            assert!(message.contains("time budget"), "{message}");
        }
        other => panic!("expected the query to be stopped, got {other:?}"),
    }
    store.shutdown().await;
}

#[tokio::test]
async fn without_a_budget_the_same_query_completes() {
    let (_directory, store) = store_with_events(None).await;
    let account = AccountId::parse("acme").unwrap();
    let page = store
        .query_events(&account, &scanning_query())
        .await
        .unwrap();
    assert!(page.events.is_empty());
    store.shutdown().await;
}
