//! Retraced's publisher API with `@retracedhq/retraced`, Retraced's own Node client.

use logbook_core::api_key::KeyOwner;
use serde_json::{Value, json};

use crate::harness::{Clients, RecordingProxy, step};
use crate::support::{TestServer, json_of};

async fn stored_event(server: &TestServer, read_key: &str, id: &Value) -> Value {
    let id = id
        .as_str()
        .unwrap_or_else(|| panic!("an event id, not {id}"));
    let response = server.get(read_key, &format!("/api/v1/events/{id}")).await;
    assert_eq!(response.status(), 200, "reading event {id}");
    json_of(response).await
}

async fn events_matching(server: &TestServer, read_key: &str, query: &str) -> Vec<Value> {
    let page = server
        .list_events(read_key, &[("q", query), ("limit", "100")])
        .await;
    page["events"].as_array().expect("events").clone()
}

fn body_of(exchange: &crate::harness::Exchange) -> Value {
    serde_json::from_slice(&exchange.response_body).expect("a JSON answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retraceds_own_client_stores_every_field_retries_once_and_is_refused_as_retraced_refuses() {
    let Some(clients) = Clients::installed("retraced", false, true) else {
        return;
    };
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let globex = server.test_account("globex").await;
    let platform_key = server.create_key(KeyOwner::Platform, "ingest").await;
    let proxy = RecordingProxy::start(&server.base_url).await;
    proxy.lose_next_answer("/event", Some("ext-retry-1"));

    let lines = clients
        .run(
            "retraced.cjs",
            &[
                ("RETRACED_ENDPOINT", proxy.base_url.clone()),
                ("RETRACED_API_KEY", platform_key),
                ("RETRACED_ACME_API_KEY", acme.ingest_key.clone()),
                ("RETRACED_PROJECT_ID", "proj-billing".to_owned()),
            ],
        )
        .await;

    // One event, every field: the client itself checked Retraced's hash of it (it throws when
    // the server's hash differs), so `ok` also says the hash is Retraced's.
    let single = step(&lines, "single");
    assert_eq!(single["ok"], true, "{single}");
    let stored = stored_event(&server, &acme.read_key, &single["value"]).await;
    assert_eq!(stored["action"], "document.update");
    assert_eq!(stored["message"], "Alice updated Q3 plan");
    assert_eq!(stored["created_at"], "2024-06-01T09:12:00Z");
    assert_eq!(
        stored["actor"],
        json!({"id": "alice@acme.com", "name": "Alice"})
    );
    assert_eq!(
        stored["targets"],
        json!([{"type": "document", "id": "doc-1", "name": "Q3 plan"}])
    );
    assert_eq!(stored["ip"], "203.0.113.9");
    assert_eq!(stored["outcome"], "success");
    assert_eq!(stored["key"], "ext-single-1");
    assert_eq!(
        stored["metadata"],
        json!({
            "reason": "typo fix", "a:b=c;d%": "x:y=z;w%",
            "retraced": {
                "project_id": "proj-billing", "crud": "u", "component": "billing-api",
                "version": "v1.2.3", "group_name": "Acme Inc",
                "actor_href": "https://app.example/alice", "actor_fields": {"role": "admin"},
                "target_href": "https://app.example/doc-1", "target_fields": {"folder": "finance"},
                "metadata": {"ticket": "T-42"},
            }
        })
    );

    // Bulk: each event goes to its group's account; hostile text is stored byte for byte.
    let bulk = step(&lines, "bulk");
    assert_eq!(bulk["ok"], true, "{bulk}");
    let failed_login = stored_event(&server, &acme.read_key, &bulk["value"][0]).await;
    assert_eq!(failed_login["outcome"], "failure");
    assert_eq!(failed_login["ip"], "198.51.100.7");
    let anonymous_view = stored_event(&server, &globex.read_key, &bulk["value"][1]).await;
    assert_eq!(
        anonymous_view["message"],
        "Someone viewed the <b>report</b> \u{202E}gnp.exe"
    );
    assert!(anonymous_view.get("actor").is_none_or(Value::is_null));
    assert_eq!(anonymous_view["metadata"]["retraced"]["is_anonymous"], true);
    let other_account = server
        .get(
            &acme.read_key,
            &format!("/api/v1/events/{}", bulk["value"][1].as_str().unwrap()),
        )
        .await;
    assert_eq!(other_account.status(), 404, "globex's event is not acme's");

    // The first attempt was stored but its answer lost; the retry with the same external_id
    // answered the same event, and one event is stored.
    let first = step(&lines, "retry_first");
    assert_eq!(first["ok"], false, "{first}");
    assert!(first["error"].as_str().unwrap().contains("503"), "{first}");
    let second = step(&lines, "retry_second");
    assert_eq!(second["ok"], true, "{second}");
    let sent = events_matching(&server, &acme.read_key, "action:invoice.send").await;
    assert_eq!(sent.len(), 1, "a retry stores one event: {sent:?}");
    assert_eq!(sent[0]["id"], second["value"]);
    assert_eq!(sent[0]["key"], "ext-retry-1");

    // Refusals: Retraced's status and error body, and nothing of them stored anywhere.
    let exchanges = proxy.exchanges();
    assert_eq!(exchanges.len(), 7, "{exchanges:?}");
    let invalid_ip = step(&lines, "invalid_ip");
    assert_eq!(invalid_ip["ok"], false);
    assert!(invalid_ip["error"].as_str().unwrap().contains("400"));
    let answer = body_of(&exchanges[4]);
    assert_eq!(exchanges[4].status, 400);
    assert_eq!(answer["status"], 400);
    assert_eq!(answer["type"], "Error");
    assert_eq!(answer["invalid"][0]["violations"][0]["field"], "/source_ip");

    let invalid_bulk = step(&lines, "invalid_bulk");
    assert_eq!(invalid_bulk["ok"], false);
    let answer = body_of(&exchanges[5]);
    assert_eq!(exchanges[5].status, 400);
    assert_eq!(answer["invalid"][0]["index"], 1);
    assert_eq!(answer["invalid"][0]["violations"][0]["field"], "/crud");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("no events were logged")
    );

    let foreign = step(&lines, "foreign_account");
    assert!(
        foreign["error"].as_str().unwrap().contains("403"),
        "{foreign}"
    );
    assert_eq!(body_of(&exchanges[6])["status"], 403);

    for read_key in [&acme.read_key, &globex.read_key] {
        let leaked = events_matching(&server, read_key, "\"must not be stored\"").await;
        assert!(leaked.is_empty(), "refused events were stored: {leaked:?}");
    }
    assert_eq!(
        events_matching(&server, &acme.read_key, "").await.len(),
        3,
        "acme holds the single event, the failed login and the retried event"
    );
}
