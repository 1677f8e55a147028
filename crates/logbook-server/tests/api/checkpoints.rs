//! The verifiable log over HTTP: ingest receipts, signed checkpoints and their history, inclusion
//! and consistency proofs (checked with the core verifiers), 400 on bad ranges, read scope,
//! isolation, and the verifiable NDJSON export checked offline.

use std::io::Cursor;
use std::time::Duration;

use logbook_core::export_verification::verify_export;
use logbook_core::merkle::{self, Hash};
use serde_json::{Value, json};

use crate::support::{TestServer, error_code, event, json_of};

fn hash_of(text: &Value) -> Hash {
    let text = text.as_str().expect("a hex hash");
    let mut hash = [0u8; 32];
    for (index, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[index * 2..index * 2 + 2], 16).expect("hex");
    }
    hash
}

fn hashes_of(list: &Value) -> Vec<Hash> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(hash_of)
        .collect()
}

async fn send(server: &TestServer, key: &str, count: usize, prefix: &str) -> Value {
    let events: Vec<Value> = (0..count)
        .map(|index| event(&format!("{prefix} {index}"), json!({})))
        .collect();
    let response = server.post_events(key, &json!({ "events": events })).await;
    assert_eq!(response.status(), 200);
    json_of(response).await
}

/// Waits until the account's latest checkpoint covers `tree_size` events.
async fn checkpoint_covering(server: &TestServer, key: &str, tree_size: u64) -> Value {
    for _ in 0..250 {
        let response = server.get(key, "/api/v1/checkpoints/latest").await;
        if response.status() == 200 {
            let body = json_of(response).await;
            if body["tree_size"].as_u64() == Some(tree_size) {
                return body;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no checkpoint of {tree_size} events within 5 s");
}

#[tokio::test]
async fn ingest_answers_carry_the_leaf_hash_and_the_tree_size_after_each_event() {
    let server = TestServer::start_with_checkpoints().await;
    let acme = server.test_account("acme").await;
    let answer = send(&server, &acme.ingest_key, 3, "Rebooted").await;
    let results = answer["results"].as_array().expect("results");
    for (index, result) in results.iter().enumerate() {
        assert_eq!(result["seq"], index);
        assert_eq!(result["tree_size"], index + 1);
        assert_eq!(result["leaf_hash"].as_str().map(str::len), Some(64));
    }
    let proof = json_of(
        server
            .get(&acme.read_key, "/api/v1/proofs/inclusion?seq=1&tree_size=3")
            .await,
    )
    .await;
    assert_eq!(proof["leaf_hash"], results[1]["leaf_hash"]);
}

#[tokio::test]
async fn checkpoints_are_signed_for_new_events_and_verify_with_the_public_key() {
    let server = TestServer::start_with_checkpoints().await;
    let acme = server.test_account("acme").await;
    let verifier = server.checkpoint_verifier.clone().unwrap();
    send(&server, &acme.ingest_key, 5, "First").await;
    let first = checkpoint_covering(&server, &acme.read_key, 5).await;
    send(&server, &acme.ingest_key, 4, "Second").await;
    let second = checkpoint_covering(&server, &acme.read_key, 9).await;

    let first_note = verifier
        .parse_and_verify(first["checkpoint"].as_str().unwrap())
        .expect("the first checkpoint verifies");
    let second_note = verifier
        .parse_and_verify(second["checkpoint"].as_str().unwrap())
        .expect("the second checkpoint verifies");
    assert_eq!(second_note.origin, "logbook.test/acme");
    assert_eq!(hash_of(&second["root_hash"]), second_note.root_hash);

    let consistency = json_of(
        server
            .get(&acme.read_key, "/api/v1/proofs/consistency?from=5&to=9")
            .await,
    )
    .await;
    merkle::verify_consistency(
        5,
        9,
        &hashes_of(&consistency["proof"]),
        &first_note.root_hash,
        &second_note.root_hash,
    )
    .expect("the log only grew");

    let history = json_of(server.get(&acme.read_key, "/api/v1/checkpoints").await).await;
    let sizes: Vec<u64> = history["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|checkpoint| checkpoint["tree_size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, vec![9, 5]);
    let older = json_of(
        server
            .get(&acme.read_key, "/api/v1/checkpoints?before=9&limit=1")
            .await,
    )
    .await;
    assert_eq!(older["checkpoints"][0]["tree_size"], 5);
}

#[tokio::test]
async fn every_inclusion_proof_leads_to_the_checkpoint_root() {
    let server = TestServer::start_with_checkpoints().await;
    let acme = server.test_account("acme").await;
    send(&server, &acme.ingest_key, 13, "Event").await;
    let checkpoint = checkpoint_covering(&server, &acme.read_key, 13).await;
    let root = hash_of(&checkpoint["root_hash"]);
    for seq in 0..13 {
        let proof = json_of(
            server
                .get(
                    &acme.read_key,
                    &format!("/api/v1/proofs/inclusion?seq={seq}&tree_size=13"),
                )
                .await,
        )
        .await;
        merkle::verify_inclusion(
            &hash_of(&proof["leaf_hash"]),
            seq,
            13,
            &hashes_of(&proof["proof"]),
            &root,
        )
        .unwrap_or_else(|error| panic!("seq {seq}: {error}"));
    }
}

#[tokio::test]
async fn malformed_proof_parameters_are_bad_requests() {
    let server = TestServer::start_with_checkpoints().await;
    let acme = server.test_account("acme").await;
    send(&server, &acme.ingest_key, 4, "Event").await;
    for (path, field) in [
        ("/api/v1/proofs/inclusion?seq=-1", "seq"),
        ("/api/v1/proofs/inclusion?seq=", "seq"),
        ("/api/v1/proofs/inclusion", "seq"),
        ("/api/v1/proofs/inclusion?seq=0&tree_size=0", "tree_size"),
        ("/api/v1/proofs/inclusion?seq=9007199254740992", "seq"),
        ("/api/v1/proofs/consistency?from=0&to=4", "from"),
        ("/api/v1/proofs/consistency?to=4", "from"),
        ("/api/v1/checkpoints?limit=0", "limit"),
        ("/api/v1/checkpoints?limit=1001", "limit"),
    ] {
        let response = server.get(&acme.read_key, path).await;
        assert_eq!(response.status(), 400, "{path}");
        let body = json_of(response).await;
        assert_eq!(body["error"]["field"], field, "{path}: {body}");
    }
}

#[tokio::test]
async fn proofs_that_the_tree_does_not_hold_are_not_found_and_name_the_parameter() {
    let server = TestServer::start_with_checkpoints().await;
    let acme = server.test_account("acme").await;
    send(&server, &acme.ingest_key, 4, "Event").await;
    for (path, field) in [
        ("/api/v1/proofs/inclusion?seq=4&tree_size=4", "seq"),
        ("/api/v1/proofs/inclusion?seq=4", "seq"),
        ("/api/v1/proofs/inclusion?seq=0&tree_size=5", "tree_size"),
        ("/api/v1/proofs/consistency?from=3&to=2", "from"),
        ("/api/v1/proofs/consistency?from=2&to=5", "to"),
    ] {
        let response = server.get(&acme.read_key, path).await;
        assert_eq!(response.status(), 404, "{path}");
        let body = json_of(response).await;
        assert_eq!(error_code(&body), "invalid_range", "{path}: {body}");
        assert_eq!(body["error"]["field"], field, "{path}: {body}");
    }
}

#[tokio::test]
async fn proofs_need_a_read_key_and_never_reach_another_account() {
    let server = TestServer::start_with_checkpoints().await;
    let acme = server.test_account("acme").await;
    let globex = server.test_account("globex").await;
    send(&server, &acme.ingest_key, 6, "Acme").await;
    let response = server
        .get(&acme.ingest_key, "/api/v1/proofs/inclusion?seq=0")
        .await;
    assert_eq!(response.status(), 403);
    // Globex has no events: acme's tree size is no business of its keys.
    let response = server
        .get(
            &globex.read_key,
            "/api/v1/proofs/inclusion?seq=0&tree_size=6",
        )
        .await;
    assert_eq!(response.status(), 404);
    let response = server
        .get(&globex.read_key, "/api/v1/checkpoints/latest")
        .await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn a_verifiable_export_verifies_offline_and_an_edited_line_is_named() {
    let server = TestServer::start_with_checkpoints().await;
    let acme = server.test_account("acme").await;
    send(&server, &acme.ingest_key, 300, "Exported").await;
    let response = server
        .get(&acme.read_key, "/api/v1/events/export/verifiable")
        .await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let verifier = server.checkpoint_verifier.clone().unwrap();
    let verified = verify_export(Cursor::new(text.as_bytes()), &verifier).expect("verifies");
    assert_eq!((verified.event_count, verified.tree_size), (300, 300));

    let edited = text.replacen("Exported 7\"", "Exported 8\"", 1);
    assert_ne!(edited, text);
    let error = verify_export(Cursor::new(edited.as_bytes()), &verifier).unwrap_err();
    // Newest first: "Exported 7" is seq 7, line 300 - 7.
    assert_eq!(error.line, 293);

    // The flag of the earlier API is refused, not ignored: a plain export would not verify.
    let flagged = server
        .get(
            &acme.read_key,
            "/api/v1/events/export?format=ndjson&verifiable=true",
        )
        .await;
    assert_eq!(flagged.status(), 400);
}

#[tokio::test]
async fn a_verifiable_export_of_an_account_without_events_is_a_conflict() {
    let server = TestServer::start_with_checkpoints().await;
    let globex = server.test_account("globex").await;
    let response = server
        .get(&globex.read_key, "/api/v1/events/export/verifiable")
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(error_code(&json_of(response).await), "nothing_to_verify");
}
