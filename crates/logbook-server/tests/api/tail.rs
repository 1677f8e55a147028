//! `GET /api/v1/events/tail`: Server-Sent Events of new events.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};

use crate::support::{TestServer, event};

/// Reads SSE frames from `response` until `wanted` `event: event` frames arrived; returns their
/// `(id, data)`.
async fn read_event_frames(response: reqwest::Response, wanted: usize) -> Vec<(String, Value)> {
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut frames = Vec::new();
    let reading = async {
        while frames.len() < wanted {
            let chunk = body
                .next()
                .await
                .expect("the tail stays open")
                .expect("readable chunk");
            buffer.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                let mut name = None;
                let mut id = None;
                let mut data = None;
                for line in frame.lines() {
                    if let Some(value) = line.strip_prefix("event: ") {
                        name = Some(value.to_owned());
                    } else if let Some(value) = line.strip_prefix("id: ") {
                        id = Some(value.to_owned());
                    } else if let Some(value) = line.strip_prefix("data: ") {
                        data = Some(serde_json::from_str::<Value>(value).unwrap());
                    }
                }
                if name.as_deref() == Some("event") {
                    frames.push((id.expect("an id"), data.expect("data")));
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), reading)
        .await
        .expect("events arrive within 10 s");
    frames
}

#[tokio::test]
async fn a_live_tail_receives_matching_events_ingested_after_it_connected() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let before = event("Before the tail", json!({}));
    assert_eq!(
        server.post_events(&acme.ingest_key, &before).await.status(),
        200
    );

    let response = server
        .get(&acme.read_key, "/api/v1/events/tail?q=action:server.*")
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );

    let batch = json!({"events": [
        event("A login", json!({"action": "user.login"})),
        event("After the tail", json!({})),
    ]});
    assert_eq!(
        server.post_events(&acme.ingest_key, &batch).await.status(),
        200
    );
    let frames = read_event_frames(response, 1).await;
    assert_eq!(frames[0].0, "2");
    assert_eq!(frames[0].1["message"], "After the tail");
    assert_eq!(frames[0].1["seq"], 2);
}

#[tokio::test]
async fn a_live_tail_resumes_after_the_last_event_id() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let events: Vec<Value> = (0..3)
        .map(|index| event(&format!("Event {index}"), json!({})))
        .collect();
    assert_eq!(
        server
            .post_events(&acme.ingest_key, &json!({ "events": events }))
            .await
            .status(),
        200
    );

    let response = server
        .client
        .get(server.url("/api/v1/events/tail?from_seq=0"))
        .bearer_auth(&acme.read_key)
        .header("last-event-id", "0")
        .send()
        .await
        .unwrap();
    let frames = read_event_frames(response, 2).await;
    let messages: Vec<&str> = frames
        .iter()
        .map(|(_, data)| data["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages, ["Event 1", "Event 2"]);
}

#[tokio::test]
async fn a_live_tail_refuses_a_resume_position_that_is_not_a_seq_and_names_it() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    for (path, last_event_id, field) in [
        ("/api/v1/events/tail?from_seq=", None, "from_seq"),
        ("/api/v1/events/tail?from_seq=-1", None, "from_seq"),
        ("/api/v1/events/tail", Some("null"), "Last-Event-ID"),
        (
            "/api/v1/events/tail",
            Some("9007199254740992"),
            "Last-Event-ID",
        ),
    ] {
        let mut request = server
            .client
            .get(server.url(path))
            .bearer_auth(&acme.read_key);
        if let Some(last_event_id) = last_event_id {
            request = request.header("last-event-id", last_event_id);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 400, "{path} {last_event_id:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["field"], field, "{path}: {body}");
    }
}

#[tokio::test]
async fn shutting_down_ends_live_tails_and_serve_returns() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let response = server.get(&acme.read_key, "/api/v1/events/tail").await;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    server.stop().await.expect("serve returns cleanly");
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = body.next().await {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the tail's stream ends when the server stops"
    );
}

#[tokio::test]
async fn a_live_tail_filtered_by_a_known_network_name_receives_only_events_from_that_network() {
    use logbook_core::unfamiliar_ip::{KnownNetwork, NetworkName, parse_network_blocks};

    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let office = KnownNetwork {
        name: NetworkName::parse("office").unwrap(),
        blocks: parse_network_blocks("198.51.100.0/24").unwrap(),
        updated_at: time::OffsetDateTime::UNIX_EPOCH,
    };
    server
        .store
        .unfamiliar_ips()
        .save_known_network(&acme.account, &office)
        .await
        .unwrap();

    let response = server
        .get(&acme.read_key, "/api/v1/events/tail?q=ip:office")
        .await;
    assert_eq!(response.status(), 200);
    let batch = json!({"events": [
        event("From home", json!({"ip": "203.0.113.9"})),
        event("From the office", json!({"ip": "198.51.100.20"})),
    ]});
    assert_eq!(
        server.post_events(&acme.ingest_key, &batch).await.status(),
        200
    );
    let frames = read_event_frames(response, 1).await;
    assert_eq!(frames[0].1["message"], "From the office");
}
