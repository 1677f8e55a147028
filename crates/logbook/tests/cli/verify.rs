//! `logbook checkpoint-key` and `logbook verify`: the key file, a verifiable export checked
//! offline (and an edited line named), growth since a saved checkpoint through the server and
//! through the database, and the whole-database check.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use super::*;

fn public_key(workspace: &Workspace) -> String {
    let output = succeed(&mut workspace.on_data(&["checkpoint-key"]));
    stdout_of(&output).trim().to_owned()
}

/// The latest checkpoint of the key's account once it covers `tree_size` events.
fn checkpoint_covering(server: &ServerGuard, read_key: &str, tree_size: u64) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        for _ in 0..300 {
            let response = client
                .get(format!("{}/api/v1/checkpoints/latest", server.base_url))
                .bearer_auth(read_key)
                .send()
                .await
                .expect("GET the latest checkpoint");
            if response.status() == 200 {
                let body: Value = response.json().await.unwrap();
                if body["tree_size"].as_u64() == Some(tree_size) {
                    return body["checkpoint"].as_str().unwrap().to_owned();
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no checkpoint of {tree_size} events within 6 s");
    })
}

fn send_events(workspace: &Workspace, server: &ServerGuard, key: &str, messages: &[&str]) {
    for message in messages {
        succeed(&mut workspace.client(
            server,
            key,
            &["send", "--action", "server.reboot", "--message", message],
        ));
    }
}

#[test]
fn checkpoint_key_creates_a_private_key_file_and_prints_the_same_public_key_each_time() {
    let workspace = Workspace::new();
    let first = public_key(&workspace);
    // name+keyid+base64, and base64 itself may hold '+'.
    let parts: Vec<&str> = first.splitn(3, '+').collect();
    assert_eq!(parts.len(), 3, "{first}");
    assert_eq!(parts[1].len(), 8);
    let key_file = workspace.data_dir().join("checkpoint-signing.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        !std::fs::read_to_string(&key_file)
            .unwrap()
            .contains(parts[2]),
        "the key file holds the private key, not the public one"
    );
    assert_eq!(public_key(&workspace), first);
}

#[test]
fn verify_checks_exports_growth_since_a_saved_checkpoint_and_the_whole_database() {
    let workspace = Workspace::new();
    workspace.create_account("acme");
    let ingest_key = workspace.create_key("acme", "ingest");
    let read_key = workspace.create_key("acme", "read");
    let server = workspace.start_server();
    let key = public_key(&workspace);

    send_events(&workspace, &server, &ingest_key, &["One", "Two", "Three"]);
    let saved = workspace.path().join("saved.checkpoint");
    std::fs::write(&saved, checkpoint_covering(&server, &read_key, 3)).unwrap();

    let export = workspace.path().join("export.ndjson");
    succeed(&mut workspace.client(
        &server,
        &read_key,
        &[
            "export",
            "--verifiable",
            "--output",
            export.to_str().unwrap(),
        ],
    ));
    let mut verify_export = workspace.logbook();
    verify_export.args(["verify", export.to_str().unwrap(), "--public-key", &key]);
    let verified = succeed(&mut verify_export);
    assert!(
        stdout_of(&verified).starts_with("ok: 3 events"),
        "{}",
        stdout_of(&verified)
    );

    let text = std::fs::read_to_string(&export).unwrap();
    let edited = workspace.path().join("edited.ndjson");
    std::fs::write(&edited, text.replacen("\"Two\"", "\"Deux\"", 1)).unwrap();
    let failed = workspace
        .logbook()
        .args(["verify", edited.to_str().unwrap(), "--public-key", &key])
        .output()
        .unwrap();
    assert!(!failed.status.success());
    assert!(
        stderr_of(&failed).contains("line 2"),
        "{}",
        stderr_of(&failed)
    );

    send_events(&workspace, &server, &ingest_key, &["Four", "Five"]);
    checkpoint_covering(&server, &read_key, 5);
    let grew = succeed(&mut workspace.client(
        &server,
        &read_key,
        &[
            "verify",
            "--since-checkpoint",
            saved.to_str().unwrap(),
            "--public-key",
            &key,
        ],
    ));
    assert!(
        stdout_of(&grew).contains("grew from 3 to 5 events"),
        "{}",
        stdout_of(&grew)
    );
    let (status, _) = server.terminate();
    assert!(status.success());

    let from_database =
        succeed(&mut workspace.on_data(&["verify", "--since-checkpoint", saved.to_str().unwrap()]));
    assert!(stdout_of(&from_database).contains("grew from 3 to"));
    let whole = succeed(&mut workspace.on_data(&["verify"]));
    assert!(
        stdout_of(&whole).starts_with("ok: 1 accounts, "),
        "{}",
        stdout_of(&whole)
    );
}
