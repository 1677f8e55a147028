//! Stored-volume quotas over HTTP: over `events_per_day` is a 429 with `Retry-After` until the
//! next UTC midnight; over `stored_bytes` is a 403 without one; both say `quota_exceeded`, name
//! the quota in `field`, and store nothing of the request.

use logbook_core::store::StoredAccountLimits;
use logbook_core::volume_quota::seconds_until_next_utc_day;
use logbook_core::{AccountId, Clock, SystemClock};
use logbook_server::ServerSettings;
use serde_json::Value;

use super::{Server, batch};

async fn set_quota(server: &Server, account: &AccountId, quota: StoredAccountLimits) {
    server
        .store
        .account_limits()
        .set_stored_account_limits(account, &quota, SystemClock.now())
        .await
        .unwrap();
}

async fn stored_events(server: &Server, read_key: &str) -> usize {
    let page: Value = server
        .get(read_key, "/api/v1/events?limit=100")
        .await
        .json()
        .await
        .expect("a JSON page");
    page["events"].as_array().expect("events").len()
}

#[tokio::test]
async fn a_batch_over_the_daily_quota_gets_429_until_utc_midnight_and_stores_nothing() {
    let server = Server::start(ServerSettings::default()).await;
    let acme = server.account("acme").await;
    let globex = server.account("globex").await;
    set_quota(
        &server,
        &acme.account,
        StoredAccountLimits {
            events_per_day: Some(5),
            ..StoredAccountLimits::default()
        },
    )
    .await;

    assert_eq!(server.post(&acme.ingest, &batch(4)).await.status(), 200);
    let refused = server.post(&acme.ingest, &batch(2)).await;
    let expected_retry_after = seconds_until_next_utc_day(SystemClock.now());
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in whole seconds");
    assert!(
        retry_after.abs_diff(expected_retry_after) <= 5,
        "Retry-After {retry_after} s, expected about {expected_retry_after} s (next UTC midnight)"
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert_eq!(body["error"]["field"], "events_per_day");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("at most 5 events per UTC day") && message.contains("none of its events"),
        "{message}"
    );
    assert_eq!(stored_events(&server, &acme.read).await, 4);

    // One more still fits; another account is not affected.
    assert_eq!(server.post(&acme.ingest, &batch(1)).await.status(), 200);
    assert_eq!(server.post(&globex.ingest, &batch(10)).await.status(), 200);
    assert_eq!(stored_events(&server, &acme.read).await, 5);
    assert_eq!(stored_events(&server, &globex.read).await, 10);
}

#[tokio::test]
async fn a_batch_over_the_stored_bytes_quota_gets_403_without_retry_after() {
    let server = Server::start(ServerSettings::default()).await;
    let acme = server.account("acme").await;
    assert_eq!(server.post(&acme.ingest, &batch(3)).await.status(), 200);
    set_quota(
        &server,
        &acme.account,
        StoredAccountLimits {
            stored_bytes: Some(100),
            ..StoredAccountLimits::default()
        },
    )
    .await;
    let refused = server.post(&acme.ingest, &batch(1)).await;
    assert_eq!(refused.status(), 403);
    assert!(!refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert_eq!(body["error"]["field"], "stored_bytes");
    assert_eq!(stored_events(&server, &acme.read).await, 3);
}
