//! `POST /api/v1/events`: per-event results, idempotency, and the request-level refusals.

use std::time::Duration;

use logbook_core::api_key::KeyOwner;
use logbook_server::ServerSettings;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{TestServer, error_code, event, json_of};

#[tokio::test]
async fn a_single_event_is_accepted_with_its_id_seq_and_received_at() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let response = server
        .post_events(
            &acme.ingest_key,
            &event("Rebooted server web-1", json!({"key": "k-1"})),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = json_of(response).await;
    assert_eq!(body["accepted"], 1);
    assert_eq!(body["rejected"], 0);
    let result = &body["results"][0];
    assert_eq!(result["seq"], 0);
    assert_eq!(result["duplicate"], false);
    let id = result["id"].as_str().expect("id");
    assert_eq!(
        uuid::Uuid::parse_str(id).expect("a UUID").get_version_num(),
        7
    );
    let received_at = result["received_at"].as_str().expect("received_at");
    time::OffsetDateTime::parse(received_at, &time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");

    let stored = json_of(
        server
            .get(&acme.read_key, &format!("/api/v1/events/{id}"))
            .await,
    )
    .await;
    assert_eq!(stored["message"], "Rebooted server web-1");
    assert_eq!(stored["key"], "k-1");
    assert_eq!(stored["received_at"], received_at);
}

#[tokio::test]
async fn a_batch_with_invalid_events_answers_207_with_pointers_and_stores_the_valid_ones() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let batch = json!({"events": [
        event("First valid", json!({})),
        event("Bad address", json!({"ip": "not-an-ip"})),
        event("Second valid", json!({})),
        event("Unknown field", json!({"colour": "red"})),
    ]});
    let response = server.post_events(&acme.ingest_key, &batch).await;
    assert_eq!(response.status(), 207);
    let body = json_of(response).await;
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["rejected"], 2);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 4);
    assert_eq!(results[0]["seq"], 0);
    assert_eq!(results[1]["error"]["field"], "/events/1/ip");
    assert_eq!(results[2]["seq"], 1);
    assert!(
        results[3]["error"]["field"]
            .as_str()
            .unwrap()
            .starts_with("/events/3")
    );
    assert!(
        body.get("error").is_none(),
        "a mixed answer has no top-level error"
    );

    let page = server.list_events(&acme.read_key, &[]).await;
    let messages: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 2);
    assert!(messages.contains(&"First valid") && messages.contains(&"Second valid"));
}

#[tokio::test]
async fn a_batch_where_every_event_is_invalid_answers_400_with_a_top_level_error() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let batch = json!({"events": [event("Bad address", json!({"ip": "999.1.1.1"})), json!({"message": "no action"})]});
    let response = server.post_events(&acme.ingest_key, &batch).await;
    assert_eq!(response.status(), 400);
    let body = json_of(response).await;
    assert_eq!(body["accepted"], 0);
    assert_eq!(body["rejected"], 2);
    assert_eq!(body["error"]["field"], "/events/0/ip");
    assert_eq!(body["error"], body["results"][0]["error"]);
}

#[tokio::test]
async fn a_retry_with_the_same_key_returns_the_original_event_as_a_duplicate() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let sent = event("Rebooted server web-1", json!({"key": "retry-1"}));
    let first = json_of(server.post_events(&acme.ingest_key, &sent).await).await;
    let retry_response = server.post_events(&acme.ingest_key, &sent).await;
    assert_eq!(retry_response.status(), 200);
    let retry = json_of(retry_response).await;
    assert_eq!(retry["results"][0]["id"], first["results"][0]["id"]);
    assert_eq!(retry["results"][0]["seq"], first["results"][0]["seq"]);
    assert_eq!(
        retry["results"][0]["received_at"],
        first["results"][0]["received_at"]
    );
    assert_eq!(retry["results"][0]["duplicate"], true);
    assert_eq!(first["results"][0]["duplicate"], false);
    let page = server.list_events(&acme.read_key, &[]).await;
    assert_eq!(
        page["events"].as_array().unwrap().len(),
        1,
        "a retry stores nothing new"
    );
}

#[tokio::test]
async fn the_same_key_with_different_content_is_rejected_as_reused() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let original = event("Rebooted server web-1", json!({"key": "reused"}));
    assert_eq!(
        server
            .post_events(&acme.ingest_key, &original)
            .await
            .status(),
        200
    );

    let single = server
        .post_events(
            &acme.ingest_key,
            &event("Rebooted server web-2", json!({"key": "reused"})),
        )
        .await;
    // The request was well formed; the account's state refused it.
    assert_eq!(single.status(), 409);
    let single = json_of(single).await;
    assert_eq!(error_code(&single), "idempotency_key_reused");
    assert_eq!(single["error"]["field"], "/key");

    // With a malformed event beside it, nothing stored is the client's mistake: 400.
    let both_refused = json!({"events": [
        event("Rebooted server web-2", json!({"key": "reused"})),
        event("Bad address", json!({"ip": "not an address"})),
    ]});
    let both_refused = server.post_events(&acme.ingest_key, &both_refused).await;
    assert_eq!(both_refused.status(), 400);

    let batch = json!({"events": [
        event("Fresh", json!({"key": "fresh"})),
        event("Rebooted server web-3", json!({"key": "reused"})),
    ]});
    let batch = server.post_events(&acme.ingest_key, &batch).await;
    assert_eq!(batch.status(), 207);
    let batch = json_of(batch).await;
    assert_eq!(
        batch["results"][1]["error"]["code"],
        "idempotency_key_reused"
    );
    assert_eq!(batch["results"][1]["error"]["field"], "/events/1/key");
}

#[tokio::test]
async fn a_reused_key_in_a_batch_spelled_with_an_escaped_events_key_points_into_the_batch() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let original = event("Rebooted server web-1", json!({"key": "reused"}));
    assert_eq!(
        server
            .post_events(&acme.ingest_key, &original)
            .await
            .status(),
        200
    );
    // The same JSON as {"events":[...]}, written with leading whitespace and the key spelled
    // with an escape: the answer must point where the parser found the event.
    let fresh = event("Fresh", json!({"key": "fresh-escaped"}));
    let reused = event("Rebooted server web-4", json!({"key": "reused"}));
    let body = format!(" \n{{ \"\\u0065vents\": [{fresh}, {reused}] }}");
    let response = server
        .client
        .post(server.url("/api/v1/events"))
        .bearer_auth(&acme.ingest_key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST /api/v1/events");
    assert_eq!(response.status(), 207);
    let answer = json_of(response).await;
    assert_eq!(answer["results"][0]["duplicate"], false);
    assert_eq!(
        answer["results"][1]["error"]["code"],
        "idempotency_key_reused"
    );
    assert_eq!(answer["results"][1]["error"]["field"], "/events/1/key");
}

#[tokio::test]
async fn a_platform_key_writes_events_to_the_accounts_they_name() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let globex = server.test_account("globex").await;
    let platform_key = server.create_key(KeyOwner::Platform, "ingest").await;
    let batch = json!({"events": [
        event("For acme", json!({"account": "acme"})),
        event("For globex", json!({"account": "globex"})),
        event("For nobody", json!({})),
    ]});
    let response = server.post_events(&platform_key, &batch).await;
    assert_eq!(response.status(), 207);
    let body = json_of(response).await;
    assert_eq!(body["results"][0]["seq"], 0);
    assert_eq!(body["results"][1]["seq"], 0);
    assert!(
        body["results"][2]["error"]["field"]
            .as_str()
            .unwrap()
            .starts_with("/events/2")
    );

    let acme_page = server.list_events(&acme.read_key, &[]).await;
    assert_eq!(acme_page["events"][0]["message"], "For acme");
    assert_eq!(acme_page["events"].as_array().unwrap().len(), 1);
    let globex_page = server.list_events(&globex.read_key, &[]).await;
    assert_eq!(globex_page["events"][0]["message"], "For globex");
    assert_eq!(globex_page["events"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused_with_400_invalid_json() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let response = server
        .client
        .post(server.url("/api/v1/events"))
        .bearer_auth(&acme.ingest_key)
        .header("content-type", "application/json; charset=utf-8")
        .body("{\"action\": \"server.reboot\", ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(&json_of(response).await), "invalid_json");
}

#[tokio::test]
async fn a_body_not_declared_as_json_is_refused_with_415() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    for content_type in [Some("text/plain"), Some("application/jsonx"), None] {
        let mut request = server
            .client
            .post(server.url("/api/v1/events"))
            .bearer_auth(&acme.ingest_key)
            .body(event("Rebooted server web-1", json!({})).to_string());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 415, "content type {content_type:?}");
        assert_eq!(
            error_code(&json_of(response).await),
            "unsupported_media_type"
        );
    }
}

#[tokio::test]
async fn a_batch_with_too_many_events_is_refused_whole_as_a_bad_request_naming_the_batch() {
    let mut settings = ServerSettings::default();
    settings.ingest_limits.max_events_per_request = 3;
    let server = TestServer::start_with(settings).await;
    let acme = server.test_account("acme").await;
    let events: Vec<Value> = (0..4)
        .map(|index| event(&format!("Event {index}"), json!({})))
        .collect();
    let response = server
        .post_events(&acme.ingest_key, &json!({ "events": events }))
        .await;
    assert_eq!(response.status(), 400);
    let answer = json_of(response).await;
    assert_eq!(error_code(&answer), "too_many_events");
    assert_eq!(answer["error"]["field"], "/events");
    let page = server.list_events(&acme.read_key, &[]).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 0);
}

/// Sends raw request bytes and returns everything the server answers until it closes or a full
/// head arrived, with the server given `pause` between writes of `chunks`.
async fn raw_exchange(
    server: &TestServer,
    head: String,
    chunks: Vec<Vec<u8>>,
    pause: Duration,
) -> String {
    let stream = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer_answered = answered.clone();
    let writer_task = tokio::spawn(async move {
        if writer.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for chunk in chunks {
            // The writer stops once an answer arrived, as a real client would.
            if writer_answered.load(std::sync::atomic::Ordering::SeqCst)
                || writer.write_all(&chunk).await.is_err()
            {
                return;
            }
            tokio::time::sleep(pause).await;
        }
        // Keep the connection open for the reader; the server closes it.
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let read_everything = async {
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(count) => {
                    answered.store(true, std::sync::atomic::Ordering::SeqCst);
                    answer.extend_from_slice(&buffer[..count]);
                    if answer.windows(4).any(|window| window == b"\r\n\r\n")
                        && answer.ends_with(b"}")
                    {
                        break;
                    }
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read_everything)
        .await
        .expect("the server answers");
    writer_task.abort();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_body_declared_larger_than_the_limit_is_refused_before_it_is_read() {
    let mut settings = ServerSettings::default();
    settings.ingest_limits.max_body_bytes = 1024;
    let server = TestServer::start_with(settings).await;
    let acme = server.test_account("acme").await;
    // The body is announced but never sent: only an answer given without reading it can arrive.
    let head = format!(
        "POST /api/v1/events HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: 1025\r\n\r\n",
        acme.ingest_key
    );
    let answer = raw_exchange(&server, head, Vec::new(), Duration::ZERO).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "answer was {answer:?}");
    assert!(
        answer.contains("\"body_too_large\""),
        "answer was {answer:?}"
    );
}

#[tokio::test]
async fn a_streamed_body_larger_than_the_limit_is_refused_with_413_without_reading_it_all() {
    let mut settings = ServerSettings::default();
    settings.ingest_limits.max_body_bytes = 4096;
    let server = TestServer::start_with(settings).await;
    let acme = server.test_account("acme").await;
    let head = format!(
        "POST /api/v1/events HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        acme.ingest_key
    );
    // 1 KiB chunks of a JSON string, far more of them than the limit allows; the body never ends.
    let mut chunks = vec![b"6\r\n{\"a\":\"\r\n".to_vec()];
    for _ in 0..64 {
        let mut chunk = b"400\r\n".to_vec();
        chunk.extend(std::iter::repeat_n(b'x', 1024));
        chunk.extend_from_slice(b"\r\n");
        chunks.push(chunk);
    }
    let answer = raw_exchange(&server, head, chunks, Duration::from_millis(5)).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "answer was {answer:?}");
    assert!(
        answer.contains("\"body_too_large\""),
        "answer was {answer:?}"
    );
    let page = server.list_events(&acme.read_key, &[]).await;
    assert_eq!(page["events"].as_array().unwrap().len(), 0);
}
