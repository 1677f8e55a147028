//! Retention through the server: the pruner's round removes what an account's period no longer
//! keeps, writes `logbook.retention.prune` into its log, and every proof the API serves for the
//! rest still verifies; a held account keeps everything.

use logbook_core::retention::{LegalHold, PruneStatement};
use logbook_core::{Clock, ManualClock, SystemClock};
use logbook_server::state::ShutdownSignal;
use logbook_server::workers::checkpointer::CheckpointSigning;
use logbook_server::workers::retention::{RetentionSettings, run_round};
use serde_json::{Value, json};

use super::support::{TestServer, event};

fn signing() -> CheckpointSigning {
    CheckpointSigning {
        signer: logbook_core::checkpoint::CheckpointSigner::generate([42; 32], "logbook.test")
            .unwrap(),
        instance_name: "logbook.test".into(),
        interval: std::time::Duration::from_millis(20),
    }
}

async fn ingest(server: &TestServer, key: &str, count: usize, label: &str) {
    let events: Vec<Value> = (0..count)
        .map(|number| event(&format!("{label} {number}"), json!({})))
        .collect();
    let answer = server.post_events(key, &json!({ "events": events })).await;
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn the_pruner_removes_what_the_period_no_longer_keeps_and_the_rest_still_proves() {
    let server = TestServer::start_with_checkpoints().await;
    let acme = server.test_account("acme").await;
    let held = server.test_account("held").await;
    ingest(&server, &acme.ingest_key, 30, "old").await;
    ingest(&server, &held.ingest_key, 5, "old").await;
    let now = SystemClock.now();
    server
        .store
        .retention()
        .set_legal_hold(
            &held.account,
            Some(LegalHold {
                since: now,
                set_by: "counsel@held.example".into(),
                reason: "litigation".into(),
            }),
            now,
        )
        .await
        .unwrap();
    // Two days later, with a one-day period for every account.
    let later = ManualClock::new(now + time::Duration::days(2));
    let settings = RetentionSettings {
        default_retention_days: Some(1),
        batch_size: 7,
        ..RetentionSettings::default()
    };
    let signing = signing();
    ingest(&server, &acme.ingest_key, 3, "new").await;
    let deleted = run_round(
        server.store.as_ref(),
        &signing,
        &later as &dyn Clock,
        &settings,
        &ShutdownSignal::default(),
    )
    .await
    .unwrap();
    // Everything received before the cutoff goes, but the newest event is always kept: all 33
    // events were received "two days ago" from the manual clock's point of view.
    assert_eq!(deleted, 32);
    let page = server
        .list_events(&acme.read_key, &[("limit", "100")])
        .await;
    let events = page["events"].as_array().unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|event| event["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, vec!["logbook.retention.prune", "server.reboot"]);
    assert_eq!(events[1]["seq"], 32);
    assert_eq!(events[0]["metadata"]["pruned_below_seq"], 32);
    assert_eq!(
        server
            .list_events(&held.read_key, &[("limit", "100")])
            .await["events"]
            .as_array()
            .unwrap()
            .len(),
        5,
        "a held account keeps everything"
    );
    // The statement verifies with the checkpoint key; proofs of what is left still verify.
    let prefix = server
        .store
        .retention()
        .pruned_prefix(&acme.account)
        .await
        .unwrap()
        .unwrap();
    let statement = PruneStatement::verify(&prefix.statement, &signing.signer.verifier()).unwrap();
    assert_eq!(statement.pruned_below_seq, 32);
    assert_eq!(statement.policy, "retention of 1 days");
    let proof: Value = server
        .get(&acme.read_key, "/api/v1/proofs/inclusion?seq=33")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(proof["tree_size"], 34);
    let leaf: [u8; 32] = hex(proof["leaf_hash"].as_str().unwrap());
    let root: [u8; 32] = hex(proof["root_hash"].as_str().unwrap());
    let path: Vec<[u8; 32]> = proof["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hash| hex(hash.as_str().unwrap()))
        .collect();
    logbook_core::merkle::verify_inclusion(&leaf, 33, 34, &path, &root).unwrap();
    // The next round removes the event that was kept only for being the newest (the prune event
    // came after it); then nothing older than the period is left and rounds change nothing.
    let shutdown = ShutdownSignal::default();
    let round = || {
        run_round(
            server.store.as_ref(),
            &signing,
            &later as &dyn Clock,
            &settings,
            &shutdown,
        )
    };
    assert_eq!(round().await.unwrap(), 1);
    assert_eq!(round().await.unwrap(), 0);
}

fn hex(text: &str) -> [u8; 32] {
    let bytes: Vec<u8> = (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}

#[tokio::test]
async fn aging_removes_personal_data_from_old_events_and_reads_and_verifiable_exports_mark_it() {
    let server = TestServer::start_with_checkpoints().await;
    let acme = server.test_account("acme").await;
    let old: Vec<Value> = (0..4)
        .map(|number| {
            event(
                &format!("old {number}"),
                json!({
                    "actor": {"id": "alice@acme.com", "name": "Alice Liddell", "type": "user"},
                    "user_agent": "Mozilla/5.0",
                    "metadata": {"email": "alice@acme.com", "plan": "pro"},
                }),
            )
        })
        .collect();
    assert_eq!(
        server
            .post_events(&acme.ingest_key, &json!({ "events": old }))
            .await
            .status(),
        200
    );
    server
        .store
        .retention()
        .set_personal_metadata_fields(&acme.account, vec!["email".into()], SystemClock.now())
        .await
        .unwrap();
    // Two days later, with a one-day personal-data period that keeps networks.
    let later = ManualClock::new(SystemClock.now() + time::Duration::days(2));
    let settings = RetentionSettings {
        default_personal_data_days: Some(1),
        default_keep_network: true,
        batch_size: 3,
        ..RetentionSettings::default()
    };
    ingest(&server, &acme.ingest_key, 1, "new").await;
    let deleted = run_round(
        server.store.as_ref(),
        &signing(),
        &later as &dyn Clock,
        &settings,
        &ShutdownSignal::default(),
    )
    .await
    .unwrap();
    assert_eq!(deleted, 0, "aging removes no event");
    let page = server
        .list_events(&acme.read_key, &[("limit", "100")])
        .await;
    let events = page["events"].as_array().unwrap();
    assert_eq!(events[0]["action"], "logbook.personal_data.age");
    assert_eq!(events[0]["metadata"]["events_changed"], 4);
    // The newest event (seq 4) keeps everything: aging, like pruning, stops before it.
    assert_eq!(events[1]["seq"], 4);
    assert_eq!(events[1]["ip"], "203.0.113.9");
    for aged in &events[2..] {
        assert_eq!(aged["ip"], Value::Null, "{aged}");
        assert_eq!(aged["ip_network"], "203.0.113.0/24");
        assert_eq!(aged["user_agent"], Value::Null);
        assert_eq!(aged["actor"]["name"], Value::Null);
        assert_eq!(aged["actor"]["id"], "alice@acme.com");
        assert_eq!(aged["metadata"]["email"], Value::Null);
        assert_eq!(aged["metadata"]["plan"], "pro");
        assert_eq!(
            aged["removed"],
            json!(["actor.name", "ip", "metadata.email", "user_agent"])
        );
        assert!(!aged.to_string().contains("Alice Liddell"));
    }
    // A verifiable export of the aged log verifies, and says how many lines had fields removed.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let export = server
        .get(&acme.read_key, "/api/v1/events/export/verifiable")
        .await;
    assert_eq!(export.status(), 200);
    let text = export.text().await.unwrap();
    let verified = logbook_core::export_verification::verify_export(
        std::io::Cursor::new(text.as_bytes()),
        server.checkpoint_verifier.as_ref().unwrap(),
    )
    .unwrap();
    assert_eq!(verified.events_with_removed_personal_data, 4);
    assert_eq!(verified.erased_events_not_verifiable, 0);
    // An edited remaining field of an aged line is caught.
    let edited = text.replacen("\"plan\":\"pro\"", "\"plan\":\"free\"", 1);
    assert_ne!(edited, text);
    assert!(
        logbook_core::export_verification::verify_export(
            std::io::Cursor::new(edited.as_bytes()),
            server.checkpoint_verifier.as_ref().unwrap(),
        )
        .is_err()
    );
}
