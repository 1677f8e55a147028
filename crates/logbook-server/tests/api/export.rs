//! `GET /api/v1/events/export`: NDJSON and CSV, streamed.

use serde_json::{Value, json};

use crate::support::{TestServer, event};

#[tokio::test]
async fn ndjson_export_streams_every_matching_event_newest_first() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let events: Vec<Value> = (0..600)
        .map(|index| {
            event(
                &format!("Event {index}"),
                json!({"action": if index % 3 == 0 { "dns.record.update" } else { "user.login" }}),
            )
        })
        .collect();
    assert_eq!(
        server
            .post_events(&acme.ingest_key, &json!({ "events": events }))
            .await
            .status(),
        200
    );

    let response = server
        .get(
            &acme.read_key,
            "/api/v1/events/export?format=ndjson&q=action:dns.*",
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"logbook-acme-"),
        "{disposition}"
    );
    assert!(disposition.ends_with(".ndjson\""), "{disposition}");
    let text = response.text().await.unwrap();
    let exported: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("one event per line"))
        .collect();
    assert_eq!(exported.len(), 200);
    assert!(
        exported
            .iter()
            .all(|event| event["action"] == "dns.record.update")
    );
    let seqs: Vec<u64> = exported
        .iter()
        .map(|event| event["seq"].as_u64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|pair| pair[0] > pair[1]),
        "newest first"
    );
}

#[tokio::test]
async fn csv_export_has_a_header_row_and_defuses_formulas() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let batch = json!({"events": [
        event("=SUM(A1)", json!({"key": "-leading-dash", "metadata": {"ticket": "OPS-1"}})),
        event("Said \"hello\", then\nleft", json!({"targets": [{"type": "server", "id": "web-1"}]})),
    ]});
    assert_eq!(
        server.post_events(&acme.ingest_key, &batch).await.status(),
        200
    );

    let response = server
        .get(&acme.read_key, "/api/v1/events/export?format=csv")
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"logbook-acme-")
            && disposition.ends_with(".csv\"")
    );
    let text = response.text().await.unwrap();
    assert!(text.contains("\r\n"), "RFC 4180 lines end with CRLF");

    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        header.join(","),
        "seq,id,created_at,received_at,account,action,message,actor_id,actor_name,actor_type,ip,user_agent,outcome,targets,changes,metadata,key,new_ip,new_network,country_code,country_name,region,city,latitude,longitude,accuracy_radius_km,asn,organization,new_country"
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|row| row.unwrap()).collect();
    assert_eq!(rows.len(), 2);
    let newest = &rows[0];
    assert_eq!(&newest[0], "1");
    assert_eq!(&newest[6], "Said \"hello\", then\nleft");
    let targets: Value = serde_json::from_str(&newest[13]).unwrap();
    assert_eq!(targets[0]["id"], "web-1");
    let oldest = &rows[1];
    assert_eq!(&oldest[6], "'=SUM(A1)");
    assert_eq!(&oldest[16], "'-leading-dash");
    assert_eq!(&oldest[4], "acme");
    assert_eq!(&oldest[9], "user");
    let metadata: Value = serde_json::from_str(&oldest[15]).unwrap();
    assert_eq!(metadata["ticket"], "OPS-1");
}

#[tokio::test]
async fn an_unknown_export_format_is_refused_with_400() {
    let server = TestServer::start().await;
    let acme = server.test_account("acme").await;
    let response = server
        .get(&acme.read_key, "/api/v1/events/export?format=xlsx")
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["field"], "format");
}
