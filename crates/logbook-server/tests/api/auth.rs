//! Who may call what: 401 for no, bad or revoked keys; 403 for the wrong scope or account.

use std::time::Duration;

use logbook_core::api_key::KeyOwner;
use logbook_server::ServerSettings;
use serde_json::json;

use crate::support::{TestServer, error_code, event, json_of};

#[tokio::test]
async fn a_request_without_a_key_is_refused_with_401_and_a_bearer_challenge() {
    let server = TestServer::start().await;
    let response = server
        .client
        .post(server.url("/api/v1/events"))
        .json(&event("Rebooted server web-1", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(error_code(&json_of(response).await), "unauthenticated");
}

#[tokio::test]
async fn a_garbage_or_unknown_key_is_refused_with_401() {
    let server = TestServer::start().await;
    for garbage in ["nonsense", "lbk_aaaaaaaaaaaaaaaaaaaaaaaaaaaa"] {
        let response = server
            .post_events(garbage, &event("Rebooted server web-1", json!({})))
            .await;
        assert_eq!(response.status(), 401, "key {garbage:?}");
        assert_eq!(error_code(&json_of(response).await), "unauthenticated");
    }
    // A key sent any other way than the Authorization header is ignored.
    let acme = server.test_account("acme").await;
    let response = server
        .client
        .post(server.url("/api/v1/events"))
        .header("x-api-key", &acme.ingest_key)
        .json(&event("Rebooted server web-1", json!({})))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

async fn revoke_every_ingest_key(server: &TestServer, account: &logbook_core::AccountId) {
    let keys = server.store.list_api_keys(Some(account)).await.unwrap();
    for key in keys.iter().filter(|key| key.scopes.ingest) {
        server
            .store
            .revoke_api_key(
                &key.key_id,
                logbook_core::Clock::now(&logbook_core::SystemClock),
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_revoked_key_is_refused_with_401() {
    let settings = ServerSettings {
        api_key_cache_ttl: Duration::ZERO,
        ..ServerSettings::default()
    };
    let server = TestServer::start_with(settings).await;
    let acme = server.test_account("acme").await;
    let accepted = server
        .post_events(&acme.ingest_key, &event("Before revocation", json!({})))
        .await;
    assert_eq!(accepted.status(), 200);

    revoke_every_ingest_key(&server, &acme.account).await;
    let refused = server
        .post_events(&acme.ingest_key, &event("After revocation", json!({})))
        .await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn a_revoked_key_stops_working_once_the_key_cache_expires() {
    let settings = ServerSettings {
        api_key_cache_ttl: Duration::from_millis(300),
        ..ServerSettings::default()
    };
    let server = TestServer::start_with(settings).await;
    let acme = server.test_account("acme").await;
    assert_eq!(
        server
            .post_events(&acme.ingest_key, &event("Cached", json!({})))
            .await
            .status(),
        200
    );
    revoke_every_ingest_key(&server, &acme.account).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let refused = server
        .post_events(&acme.ingest_key, &event("After expiry", json!({})))
        .await;
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
async fn a_read_key_cannot_post_events() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let response = server
        .post_events(&acme.read_key, &event("Rebooted server web-1", json!({})))
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(error_code(&json_of(response).await), "forbidden");
}

#[tokio::test]
async fn an_ingest_key_cannot_read_events() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    for path in [
        "/api/v1/events",
        "/api/v1/events/export",
        "/api/v1/events/tail",
    ] {
        let response = server.get(&acme.ingest_key, path).await;
        assert_eq!(response.status(), 403, "{path}");
        assert_eq!(error_code(&json_of(response).await), "forbidden");
    }
}

#[tokio::test]
async fn an_account_key_cannot_write_for_another_account_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let globex = server.test_account("globex").await;
    let batch = json!({"events": [
        event("For acme", json!({})),
        event("Smuggled into globex", json!({"account": "globex"})),
    ]});
    let response = server.post_events(&acme.ingest_key, &batch).await;
    assert_eq!(response.status(), 403);
    let body = json_of(response).await;
    assert_eq!(error_code(&body), "forbidden");
    assert_eq!(body["error"]["field"], "/events/1/account");

    let acme_events = server.list_events(&acme.read_key, &[]).await;
    assert_eq!(
        acme_events["events"].as_array().unwrap().len(),
        0,
        "a refused request stores nothing"
    );
    let globex_events = server.list_events(&globex.read_key, &[]).await;
    assert_eq!(globex_events["events"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn a_platform_key_cannot_read_events() {
    let server = TestServer::start().await;
    let platform_key = server.create_key(KeyOwner::Platform, "ingest,read").await;
    let response = server.get(&platform_key, "/api/v1/events").await;
    assert_eq!(response.status(), 403);
}
