//! WorkOS's audit log events API with the `workos` Python SDK.

use logbook_core::api_key::KeyOwner;
use serde_json::{Value, json};

use crate::harness::{Clients, RecordingProxy, step};
use crate::support::TestServer;

async fn events_matching(server: &TestServer, read_key: &str, query: &str) -> Vec<Value> {
    let page = server
        .list_events(read_key, &[("q", query), ("limit", "100")])
        .await;
    page["events"].as_array().expect("events").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workos_sdk_stores_every_field_honours_its_idempotency_key_and_reads_workos_errors() {
    let Some(clients) = Clients::installed("workos", true, false) else {
        return;
    };
    let server = TestServer::start().await;
    // WorkOS organization ids are case-insensitive ULIDs; their account is the lowercase id.
    let organization = server.test_account("org_01ehwnce74x7jsdv0x3sz3kjny").await;
    let acme = server.test_account("acme").await;
    let globex = server.test_account("globex").await;
    let platform_key = server.create_key(KeyOwner::Platform, "ingest").await;
    let proxy = RecordingProxy::start(&server.base_url).await;
    proxy.lose_next_answer("/audit_logs/events", Some("workos-retry"));

    let lines = clients
        .run(
            "workos_client.py",
            &[
                ("WORKOS_BASE_URL", proxy.base_url.clone()),
                ("WORKOS_API_KEY", platform_key),
                ("WORKOS_ACME_API_KEY", acme.ingest_key.clone()),
            ],
        )
        .await;

    let created = step(&lines, "create");
    assert_eq!(created["ok"], true, "{created}");
    assert_eq!(created["value"], true, "WorkOS's answer: success");
    let replayed = step(&lines, "replayed");
    assert_eq!(replayed["ok"], true, "{replayed}");
    let signed_in = events_matching(&server, &organization.read_key, "action:user.signed_in").await;
    assert_eq!(
        signed_in.len(),
        1,
        "a replayed Idempotency-Key stores one event"
    );
    let event = &signed_in[0];
    assert_eq!(
        event["message"],
        "user.signed_in by Jon Smith on team Core, document doc_9"
    );
    assert_eq!(event["created_at"], "2024-06-01T09:12:00.336Z");
    assert_eq!(
        event["actor"],
        json!({"id": "user_01GBNJC3MX9ZZJW1FSTF4C5938", "name": "Jon Smith", "type": "user"})
    );
    assert_eq!(
        event["targets"],
        json!([
            {"type": "team", "id": "team_01GBNJD4MKHVKJGEWK42JNMBGS", "name": "Core"},
            {"type": "document", "id": "doc_9"},
        ])
    );
    assert_eq!(event["ip"], "203.0.113.9");
    assert_eq!(event["user_agent"], "Chrome/104.0.0.0");
    assert_eq!(event["key"], "idem-create-1");
    assert_eq!(
        event["metadata"],
        json!({
            "plan": "pro", "seats": 4, "trial": false,
            "workos": {"version": 2, "actor_metadata": {"role": "admin"}, "target_metadata": [null, {"pages": 3}]},
        })
    );

    // The SDK retried on its own after the lost answer, with the key it generated: one event.
    let retried = step(&lines, "retried");
    assert_eq!(retried["ok"], true, "{retried}");
    let exchanges = proxy.exchanges();
    let attempts: Vec<_> = exchanges
        .iter()
        .filter(|exchange| {
            let body = String::from_utf8_lossy(&exchange.request_body);
            body.contains("workos-retry") && body.contains("\"organization_id\":\"acme\"")
        })
        .collect();
    assert_eq!(attempts.len(), 2, "the SDK sent the event twice");
    assert!(attempts[0].answer_lost && !attempts[1].answer_lost);
    let generated_key = attempts[0].request_headers["idempotency-key"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        attempts[1].request_headers["idempotency-key"],
        generated_key.as_str()
    );
    let invited = events_matching(&server, &acme.read_key, "action:team.member_invited").await;
    assert_eq!(invited.len(), 1, "{invited:?}");
    assert_eq!(invited[0]["key"], generated_key.as_str());
    assert_eq!(invited[0]["actor"], json!({"id": "svc-provisioner"}));
    assert_eq!(
        invited[0]["metadata"],
        json!({"marker": "workos-retry", "workos": {"actor_type": "service", "location": "Paris, FR"}})
    );
    assert!(invited[0].get("ip").is_none_or(Value::is_null));

    // Refusals in WorkOS's error shape, read by the SDK's own error classes.
    let invalid = step(&lines, "invalid_action");
    assert_eq!(invalid["ok"], false);
    assert_eq!(invalid["error_class"], "BadRequestError", "{invalid}");
    assert_eq!(invalid["status"], 400);
    assert_eq!(invalid["code"], "invalid_audit_log");
    assert_eq!(invalid["message"], "Invalid Audit Log event");
    assert_eq!(invalid["errors"][0]["instancePath"], "/event/action");
    let foreign = step(&lines, "foreign_organization");
    assert_eq!(foreign["status"], 403, "{foreign}");
    assert_eq!(foreign["code"], "forbidden");

    assert!(
        events_matching(&server, &acme.read_key, "action:user.signed_in")
            .await
            .is_empty()
    );
    assert!(
        events_matching(&server, &globex.read_key, "")
            .await
            .is_empty()
    );
}
