//! OTLP/HTTP logs with OpenTelemetry's own SDKs: Python (protobuf, gzip) and JavaScript (JSON).

use logbook_core::api_key::KeyOwner;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use prost::Message;
use serde_json::{Value, json};

use crate::harness::{Clients, RecordingProxy};
use crate::support::TestServer;

async fn events_matching(server: &TestServer, read_key: &str, query: &str) -> Vec<Value> {
    let page = server
        .list_events(read_key, &[("q", query), ("limit", "100")])
        .await;
    page["events"].as_array().expect("events").clone()
}

/// The environment OpenTelemetry's SDKs read, as the README gives it.
fn otlp_environment(proxy: &RecordingProxy, key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", proxy.base_url.clone()),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            format!("Authorization=Bearer%20{key}"),
        ),
        ("OTEL_BLRP_SCHEDULE_DELAY", "100".to_owned()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_otlp_exporter_stores_each_record_once_and_hears_which_were_rejected() {
    let Some(clients) = Clients::installed("otlp protobuf", true, false) else {
        return;
    };
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let platform_key = server.create_key(KeyOwner::Platform, "ingest").await;
    let proxy = RecordingProxy::start(&server.base_url).await;
    proxy.lose_next_answer("/v1/logs", None);

    clients
        .run("otlp_protobuf.py", &otlp_environment(&proxy, &platform_key))
        .await;

    let reboots = events_matching(&server, &acme.read_key, "action:server.reboot").await;
    assert_eq!(
        reboots.len(),
        1,
        "the exporter's retry stored one event: {reboots:?}"
    );
    let event = &reboots[0];
    assert_eq!(event["message"], "Alice rebooted web-1");
    assert_eq!(event["created_at"], "2024-06-01T09:12:00.123456789Z");
    assert_eq!(
        event["actor"],
        json!({"id": "alice@acme.com", "name": "Alice", "type": "user"})
    );
    assert_eq!(event["ip"], "203.0.113.9");
    assert_eq!(event["user_agent"], "curl/8.5.0");
    assert_eq!(event["outcome"], "success");
    assert_eq!(
        event["targets"],
        json!([{"type": "server", "id": "web-1", "name": "Web 1"}])
    );
    let metadata = &event["metadata"];
    assert_eq!(
        metadata["attributes"],
        json!({"http.route": "/servers/{id}/reboot", "retry.count": 2})
    );
    assert_eq!(metadata["resource"]["service.name"], "billing");
    assert!(metadata["resource"].get("logbook.account").is_none());
    assert_eq!(
        metadata["scope"],
        json!({"name": "audit", "version": "1.0"})
    );
    assert_eq!(metadata["severity_text"], "INFO");
    assert_eq!(metadata["severity_number"], 9);
    assert!(event["key"].as_str().unwrap().starts_with("otlp-"));

    let deletes = events_matching(&server, &acme.read_key, "action:server.delete").await;
    assert_eq!(deletes.len(), 1);
    assert_eq!(deletes[0]["actor"]["id"], "alice@acme.com");
    assert_eq!(deletes[0]["outcome"], "failure");
    assert!(
        events_matching(&server, &acme.read_key, "\"must not be stored\"")
            .await
            .is_empty()
    );
    assert_eq!(events_matching(&server, &acme.read_key, "").await.len(), 2);

    // What the exporter sent and heard: gzip protobuf; a retry after the lost answer; then a
    // partial success naming the two rejected records.
    let exchanges = proxy.exchanges();
    assert_eq!(exchanges.len(), 3, "{exchanges:?}");
    for exchange in &exchanges {
        assert_eq!(
            exchange.request_headers["content-type"],
            "application/x-protobuf"
        );
        assert_eq!(exchange.request_headers["content-encoding"], "gzip");
    }
    assert!(exchanges[0].answer_lost);
    assert_eq!(exchanges[0].request_body, exchanges[1].request_body);
    assert_eq!(exchanges[1].status, 200);
    let full_success = ExportLogsServiceResponse::decode(&exchanges[1].response_body[..]).unwrap();
    assert!(full_success.partial_success.is_none());
    assert_eq!(exchanges[2].status, 200);
    assert_eq!(
        exchanges[2].response_content_type.as_deref(),
        Some("application/x-protobuf")
    );
    let partial = ExportLogsServiceResponse::decode(&exchanges[2].response_body[..])
        .unwrap()
        .partial_success
        .expect("a partial success");
    assert_eq!(partial.rejected_log_records, 2);
    assert!(
        partial.error_message.contains("event_name"),
        "{}",
        partial.error_message
    );
    assert!(
        partial.error_message.contains("attribute client.address"),
        "{}",
        partial.error_message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_otlp_exporter_sends_json_that_lands_in_the_keys_account() {
    let Some(clients) = Clients::installed("otlp json", false, true) else {
        return;
    };
    let server = TestServer::start().await;
    let globex = server.test_account("globex").await;
    let proxy = RecordingProxy::start(&server.base_url).await;

    clients
        .run(
            "otlp_json.cjs",
            &otlp_environment(&proxy, &globex.ingest_key),
        )
        .await;

    let changes = events_matching(&server, &globex.read_key, "action:firewall.rule.update").await;
    assert_eq!(changes.len(), 1, "{changes:?}");
    let event = &changes[0];
    assert_eq!(event["message"], "Bob opened port 22 on fw-1");
    assert_eq!(event["created_at"], "2024-06-01T09:15:00Z");
    assert_eq!(
        event["actor"],
        json!({"id": "bob@globex.com", "type": "user"})
    );
    assert_eq!(event["ip"], "2001:db8::7");
    assert_eq!(
        event["targets"],
        json!([{"type": "firewall", "id": "fw-1"}])
    );
    assert_eq!(event["key"], "fw-change-1");
    assert_eq!(event["metadata"]["attributes"], json!({"rule.port": 22}));
    assert_eq!(event["metadata"]["resource"]["service.name"], "console");
    assert_eq!(
        event["metadata"]["scope"],
        json!({"name": "audit", "version": "2.0"})
    );

    let exchanges = proxy.exchanges();
    assert_eq!(exchanges.len(), 2, "{exchanges:?}");
    for exchange in &exchanges {
        assert_eq!(exchange.request_headers["content-type"], "application/json");
        assert_eq!(exchange.status, 200);
        assert_eq!(
            exchange.response_content_type.as_deref(),
            Some("application/json")
        );
    }
    // The SDK exports each record on its own, in no promised order: one answer is a full
    // success, the other names the record whose body is no string.
    let answers: Vec<Value> = exchanges
        .iter()
        .map(|exchange| serde_json::from_slice(&exchange.response_body).unwrap())
        .collect();
    let partial = answers
        .iter()
        .find(|answer| !answer["partialSuccess"].is_null())
        .unwrap_or_else(|| panic!("no partial success in {answers:?}"));
    let rejected = &partial["partialSuccess"]["rejectedLogRecords"];
    assert!(rejected == 1 || rejected == "1", "{partial}");
    assert!(
        partial["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("body"),
        "{partial}"
    );
}

#[tokio::test]
async fn refused_otlp_requests_answer_a_google_rpc_status_in_the_requests_encoding() {
    let server = TestServer::start().await;
    let unauthenticated = server
        .client
        .post(server.url("/v1/logs"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    assert_eq!(
        unauthenticated.headers()["content-type"],
        "application/json"
    );
    let body: Value = unauthenticated.json().await.unwrap();
    assert_eq!(body["code"], 16);

    let acme = server.test_account("acme").await;
    let garbage = server
        .client
        .post(server.url("/v1/logs"))
        .bearer_auth(&acme.ingest_key)
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff])
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 400);
    assert_eq!(garbage.headers()["content-type"], "application/x-protobuf");
    #[derive(Clone, PartialEq, prost::Message)]
    struct Status {
        #[prost(int32, tag = "1")]
        code: i32,
        #[prost(string, tag = "2")]
        message: String,
    }
    let status = Status::decode(&garbage.bytes().await.unwrap()[..]).unwrap();
    assert_eq!(status.code, 3, "INVALID_ARGUMENT");
    assert!(
        status.message.contains("ExportLogsServiceRequest"),
        "{}",
        status.message
    );
}
