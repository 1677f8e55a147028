//! `GET /api/v1/events` and `GET /api/v1/events/{id}`: order, pages, cursors, the query language.

use serde_json::{Value, json};

use crate::support::{TestAccount, TestServer, error_code, event, json_of};

/// Stores events created one minute apart, oldest first, with messages "Event 0", "Event 1", ...
async fn store_events_a_minute_apart(server: &TestServer, account: &TestAccount, count: usize) {
    let events: Vec<Value> = (0..count)
        .map(|index| {
            event(
                &format!("Event {index}"),
                json!({"created_at": format!("2024-06-01T12:{index:02}:00Z"), "action": if index % 2 == 0 { "server.reboot" } else { "user.login" }}),
            )
        })
        .collect();
    let response = server
        .post_events(&account.ingest_key, &json!({ "events": events }))
        .await;
    assert_eq!(response.status(), 200);
}

fn messages(page: &Value) -> Vec<String> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["message"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn events_come_back_newest_first_with_every_field_and_their_seq() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    store_events_a_minute_apart(&server, &acme, 3).await;
    let page = server.list_events(&acme.read_key, &[]).await;
    assert_eq!(messages(&page), ["Event 2", "Event 1", "Event 0"]);
    let newest = &page["events"][0];
    assert_eq!(newest["seq"], 2);
    assert_eq!(newest["account"], "acme");
    assert_eq!(newest["actor"]["id"], "alice@acme.com");
    assert_eq!(newest["ip"], "203.0.113.9");
    assert!(page["next_cursor"].is_null());
}

#[tokio::test]
async fn limit_bounds_the_page_and_the_cursor_continues_it_to_the_end() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    store_events_a_minute_apart(&server, &acme, 5).await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let mut parameters = vec![("limit", "2")];
        if let Some(cursor) = cursor.as_deref() {
            parameters.push(("cursor", cursor));
        }
        let page = server.list_events(&acme.read_key, &parameters).await;
        assert!(page["events"].as_array().unwrap().len() <= 2);
        seen.extend(messages(&page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["Event 4", "Event 3", "Event 2", "Event 1", "Event 0"]
    );
}

#[tokio::test]
async fn a_limit_outside_1_to_1000_is_refused_with_400() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    for limit in ["0", "1001", "ten", "-1"] {
        let response = server
            .get(&acme.read_key, &format!("/api/v1/events?limit={limit}"))
            .await;
        assert_eq!(response.status(), 400, "limit {limit}");
        let body = json_of(response).await;
        assert_eq!(body["error"]["field"], "limit");
    }
    let page = server
        .list_events(&acme.read_key, &[("limit", "1000")])
        .await;
    assert!(page["events"].is_array());
}

#[tokio::test]
async fn a_cursor_from_another_account_is_refused_with_400_and_reveals_nothing() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let globex = server.test_account("globex").await;
    store_events_a_minute_apart(&server, &acme, 3).await;
    let acme_page = server.list_events(&acme.read_key, &[("limit", "1")]).await;
    let acme_cursor = acme_page["next_cursor"].as_str().expect("a next cursor");

    let foreign = server
        .get(
            &globex.read_key,
            &format!("/api/v1/events?cursor={acme_cursor}"),
        )
        .await;
    assert_eq!(foreign.status(), 400);
    let foreign = json_of(foreign).await;
    let garbage = json_of(
        server
            .get(&globex.read_key, "/api/v1/events?cursor=garbage")
            .await,
    )
    .await;
    assert_eq!(foreign["error"]["field"], "cursor");
    assert_eq!(
        foreign, garbage,
        "a foreign cursor and garbage get the same answer"
    );
}

#[tokio::test]
async fn a_bad_query_answers_400_with_the_position_and_the_term() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let response = server
        .client
        .get(server.url("/api/v1/events"))
        .bearer_auth(&acme.read_key)
        .query(&[("q", "action:server.* colour:red")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body = json_of(response).await;
    assert_eq!(error_code(&body), "invalid_query");
    assert_eq!(body["error"]["field"], "q");
    assert_eq!(body["error"]["position"], 16);
    assert!(body["error"]["term"].as_str().unwrap().contains("colour"));
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("position 16")
    );
}

#[tokio::test]
async fn a_query_filters_the_events() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    store_events_a_minute_apart(&server, &acme, 4).await;
    let page = server
        .list_events(&acme.read_key, &[("q", "action:server.*")])
        .await;
    assert_eq!(messages(&page), ["Event 2", "Event 0"]);
    let page = server
        .list_events(&acme.read_key, &[("q", "-action:server.reboot")])
        .await;
    assert_eq!(messages(&page), ["Event 3", "Event 1"]);
}

#[tokio::test]
async fn an_event_is_readable_by_id_but_another_accounts_id_is_not_found() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let globex = server.test_account("globex").await;
    let answer = json_of(
        server
            .post_events(&acme.ingest_key, &event("Rebooted server web-1", json!({})))
            .await,
    )
    .await;
    let id = answer["results"][0]["id"].as_str().unwrap();

    let own = server
        .get(&acme.read_key, &format!("/api/v1/events/{id}"))
        .await;
    assert_eq!(own.status(), 200);
    let own = json_of(own).await;
    assert_eq!(own["id"], id);
    assert_eq!(own["seq"], 0);

    let foreign = server
        .get(&globex.read_key, &format!("/api/v1/events/{id}"))
        .await;
    assert_eq!(foreign.status(), 404);
    let foreign = json_of(foreign).await;
    let missing = json_of(
        server
            .get(
                &globex.read_key,
                "/api/v1/events/0190a5b2-0000-7000-8000-000000000001",
            )
            .await,
    )
    .await;
    assert_eq!(error_code(&foreign), "not_found");
    assert_eq!(
        foreign, missing,
        "another account's id is answered like a missing one"
    );
}
