//! An injected fsync failure, for real: `logbook serve` runs with a tiny LD_PRELOAD library
//! (`fsync_fault/fsync_fault.c`, built here with `cc`) that makes every fsync and fdatasync fail
//! with EIO once a trigger file exists. After the fault the ingest in flight gets no 2xx, later
//! ingests are refused with 503, `/readyz` is red and says why, the log says why, reads keep
//! working, and after a restart without the fault every acknowledged event is there.
//!
//! Needs `cc` (and Linux's LD_PRELOAD); without a compiler a local run says SKIPPED and checks
//! nothing, while under CI (`CI` set) that is a failure.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ACCOUNT: &str = "fsyncfault";
const ACKNOWLEDGED_BEFORE_THE_FAULT: usize = 20;

/// A running `logbook serve`, killed and reaped when dropped.
struct ServerGuard {
    child: Child,
    base_url: String,
}

impl ServerGuard {
    fn start(data_directory: &Path, log_path: &Path, fault: Option<(&Path, &Path)>) -> Self {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .expect("server log file opens");
        let mut command = Command::new(env!("CARGO_BIN_EXE_logbook"));
        command
            .args(["serve", "--data-dir"])
            .arg(data_directory)
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        if let Some((library, trigger)) = fault {
            command
                .env("LD_PRELOAD", library)
                .env("LOGBOOK_TEST_FSYNC_FAULT_TRIGGER", trigger);
        }
        let mut child = command.spawn().expect("logbook serve starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let base_url = lines.by_ref().find_map(|line| {
            let line = line.ok()?;
            line.split("listening on ")
                .nth(1)
                .map(|address| address.trim().trim_end_matches('/').to_owned())
        });
        let Some(base_url) = base_url else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(log_path).unwrap_or_default();
            panic!("logbook serve exited without printing its address; its log:\n{log}");
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, base_url }
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_cli(arguments: &[&str], data_directory: &Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_logbook"))
        .args(arguments)
        .arg("--data-dir")
        .arg(data_directory)
        .output()
        .expect("the logbook binary runs");
    assert!(
        output.status.success(),
        "logbook {arguments:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("CLI output is UTF-8")
}

/// Builds the fault library into `directory`, or `None` (after saying so) without a compiler.
fn build_fault_library(directory: &Path) -> Option<PathBuf> {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fsync_fault/fsync_fault.c");
    let library = directory.join("libfsync_fault.so");
    let built = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&library)
        .arg(&source)
        .status();
    match built {
        Ok(status) if status.success() => Some(library),
        other => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must be able to build the fsync fault library with cc: {other:?}"
            );
            eprintln!("SKIPPED (the fsync fault test needs cc to build its LD_PRELOAD library)");
            None
        }
    }
}

fn event(key: &str) -> Value {
    json!({
        "action": "server.reboot",
        "message": format!("Rebooted server for {key}"),
        "key": key,
    })
}

async fn post(
    client: &reqwest::Client,
    base_url: &str,
    api_key: &str,
    body: &Value,
) -> reqwest::Response {
    client
        .post(format!("{base_url}/api/v1/events"))
        .bearer_auth(api_key)
        .json(body)
        .send()
        .await
        .expect("the server answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_stops_acknowledgements_turns_readyz_red_and_loses_nothing_acknowledged() {
    let temporary = tempfile::tempdir().expect("temp dir");
    let Some(library) = build_fault_library(temporary.path()) else {
        return;
    };
    let data_directory = temporary.path().join("data");
    let log_path = temporary.path().join("server.log");
    let trigger = temporary.path().join("fail-fsync-now");
    run_cli(&["account", "create", ACCOUNT], &data_directory);
    let key_output = run_cli(
        &[
            "key",
            "create",
            "--account",
            ACCOUNT,
            "--scope",
            "ingest,read",
        ],
        &data_directory,
    );
    let api_key = key_output
        .lines()
        .next()
        .expect("the key")
        .trim()
        .to_owned();
    // Why the store is not ready is told only to someone who runs Logbook: an admin key.
    let admin_key = run_cli(
        &["key", "create", "--platform", "--scope", "admin"],
        &data_directory,
    )
    .lines()
    .next()
    .expect("the admin key")
    .trim()
    .to_owned();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();

    let server = ServerGuard::start(&data_directory, &log_path, Some((&library, &trigger)));
    let base_url = server.base_url.clone();
    let mut acknowledged_ids = Vec::new();
    for number in 0..ACKNOWLEDGED_BEFORE_THE_FAULT {
        let response = post(
            &client,
            &base_url,
            &api_key,
            &event(&format!("before-{number}")),
        )
        .await;
        assert_eq!(
            response.status(),
            200,
            "before the fault every ingest is acknowledged"
        );
        let answer: Value = response.json().await.unwrap();
        acknowledged_ids.push(answer["results"][0]["id"].as_str().unwrap().to_owned());
    }
    let ready = client
        .get(format!("{base_url}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    std::fs::write(&trigger, b"on").unwrap();
    let in_flight = post(&client, &base_url, &api_key, &event("during-the-fault")).await;
    assert!(
        !in_flight.status().is_success(),
        "an ingest whose commit could not be fsynced must not be acknowledged, got {}",
        in_flight.status()
    );
    assert_eq!(in_flight.status(), 503);

    // Removing the fault does not bring writes back: after a failed fsync the file's state is
    // unknown, and retrying the fsync could acknowledge what never reached the disk.
    std::fs::remove_file(&trigger).unwrap();
    for number in 0..3 {
        let later = post(
            &client,
            &base_url,
            &api_key,
            &event(&format!("after-{number}")),
        )
        .await;
        assert_eq!(later.status(), 503, "every later ingest is refused");
        assert!(later.headers().contains_key("retry-after"));
        let answer: Value = later.json().await.unwrap();
        assert_eq!(answer["error"]["code"], "unavailable", "{answer}");
    }

    let not_ready = client
        .get(format!("{base_url}/readyz"))
        .bearer_auth(&admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(not_ready.status(), 503);
    let not_ready: Value = not_ready.json().await.unwrap();
    let reason = not_ready["error"]["message"].as_str().unwrap_or_default();
    assert!(
        reason.contains("I/O error"),
        "readyz says why to an admin key: {not_ready}"
    );
    let to_anyone = client
        .get(format!("{base_url}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(to_anyone.status(), 503);
    let to_anyone: Value = to_anyone.json().await.unwrap();
    assert_eq!(
        to_anyone["error"]["message"], "sqlite is not ready",
        "anyone else learns only that it is not ready"
    );

    let page = client
        .get(format!("{base_url}/api/v1/events?limit=100"))
        .bearer_auth(&api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200, "reads keep working after the fault");
    let page: Value = page.json().await.unwrap();
    let listed: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|event| event["id"].as_str())
        .collect();
    for id in &acknowledged_ids {
        assert!(
            listed.contains(&id.as_str()),
            "acknowledged event {id} is readable"
        );
    }

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("group commit failed") && log.contains("I/O error"),
        "the log says why writes stopped:\n{log}"
    );
    drop(server);

    // A restart without the fault: everything acknowledged is there and writes work again.
    let restarted = ServerGuard::start(&data_directory, &log_path, None);
    let base_url = restarted.base_url.clone();
    let started = Instant::now();
    loop {
        let ready = client
            .get(format!("{base_url}/readyz"))
            .send()
            .await
            .unwrap();
        if ready.status() == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the restarted server becomes ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for id in &acknowledged_ids {
        let found = client
            .get(format!("{base_url}/api/v1/events/{id}"))
            .bearer_auth(&api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            found.status(),
            200,
            "acknowledged event {id} survived the fault"
        );
    }
    let resumed = post(&client, &base_url, &api_key, &event("after-the-restart")).await;
    assert_eq!(resumed.status(), 200);
    drop(restarted);
    let verified = run_cli(&["verify"], &data_directory);
    assert!(
        verified.starts_with("ok: "),
        "logbook verify after the fault: {verified}"
    );
}
