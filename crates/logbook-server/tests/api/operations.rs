//! What operators and browsers rely on: health, metrics, request ids and security headers.

use serde_json::json;

use crate::support::{TestServer, error_code, event, json_of};

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let answers = [
        server
            .client
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap(),
        server
            .client
            .get(server.url("/no/such/page"))
            .send()
            .await
            .unwrap(),
        server
            .client
            .get(server.url("/api/v1/events"))
            .send()
            .await
            .unwrap(),
        server.get(&acme.read_key, "/api/v1/events").await,
    ];
    for response in answers {
        let headers = response.headers();
        assert_eq!(
            headers["x-content-type-options"],
            "nosniff",
            "{}",
            response.url()
        );
        assert_eq!(
            headers["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'"
        );
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["cache-control"], "no-store");
    }
}

#[tokio::test]
async fn an_unknown_path_is_a_404_with_the_standard_error_body() {
    let server = TestServer::start().await;
    let response = server
        .client
        .get(server.url("/no/such/page"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(&json_of(response).await), "not_found");
}

#[tokio::test]
async fn a_request_id_is_generated_or_a_plain_client_id_is_echoed() {
    let server = TestServer::start().await;
    let generated = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    let generated_id = generated.headers()["x-request-id"].to_str().unwrap();
    uuid::Uuid::parse_str(generated_id).expect("a generated request id is a UUID");

    let echoed = server
        .client
        .get(server.url("/healthz"))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.headers()["x-request-id"], "trace-42");

    let hostile = server
        .client
        .get(server.url("/healthz"))
        .header("x-request-id", "a b\"c{}")
        .send()
        .await
        .unwrap();
    assert_ne!(
        hostile.headers()["x-request-id"],
        "a b\"c{}",
        "only plain tokens are kept"
    );
}

#[tokio::test]
async fn healthz_and_readyz_answer_when_the_store_is_ready() {
    let server = TestServer::start().await;
    let health = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");
    let ready = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn readyz_answers_503_once_the_store_stopped_accepting_writes() {
    let server = TestServer::start().await;
    server.store.shutdown().await;
    let ready = server
        .client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(error_code(&json_of(ready).await), "not_ready");
}

#[tokio::test]
async fn ingest_answers_503_with_retry_after_once_the_store_stopped_accepting_writes() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    server.store.shutdown().await;
    let response = server
        .post_events(&acme.ingest_key, &event("Too late", json!({})))
        .await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(error_code(&json_of(response).await), "unavailable");
}

#[tokio::test]
async fn metrics_count_accepted_and_rejected_events_and_request_latency() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let batch =
        json!({"events": [event("Valid", json!({})), event("Invalid", json!({"ip": "x"}))]});
    assert_eq!(
        server.post_events(&acme.ingest_key, &batch).await.status(),
        207
    );
    let response = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for metric in [
        "logbook_events_accepted_total",
        "logbook_events_rejected_total",
        "logbook_ingest_batch_events_bucket",
        "logbook_http_request_seconds_bucket{route=\"/api/v1/events\",status=\"2xx\"",
    ] {
        assert!(text.contains(metric), "{metric} missing from /metrics");
    }
    assert!(!text.contains("Invalid"), "metrics never hold event text");
}

#[tokio::test]
async fn a_wrong_method_is_a_405_with_the_standard_error_body() {
    let server = TestServer::start().await;
    let response = server
        .client
        .delete(server.url("/api/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(error_code(&json_of(response).await), "method_not_allowed");
}
