//! A genuinely full disk: the store lives on a small tmpfs mounted for the test, a filler file
//! takes the rest of the space, and ingest must answer 507 with `Retry-After` (never a 2xx for an
//! event that was not committed), reads must keep working, and writes must resume by themselves
//! once the filler is deleted. Mounting needs root (as on CI); elsewhere the test says so and
//! checks nothing, and on CI (`CI` set) a failed mount fails the test.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use logbook_core::Store;
use logbook_server::ServerSettings;
use logbook_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::Value;

use super::{Server, batch};

struct MountedTmpfs {
    path: PathBuf,
    _parent: tempfile::TempDir,
}

impl MountedTmpfs {
    fn mount(size: &str) -> Option<Self> {
        let parent = tempfile::tempdir().expect("temp dir");
        let path = parent.path().join("small-disk");
        std::fs::create_dir(&path).expect("mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .is_ok_and(|status| status.success());
        if !mounted {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must be able to mount a tmpfs (run as root) for the disk-full test"
            );
            eprintln!("skipping the disk-full test: mounting a tmpfs needs root");
            return None;
        }
        Some(Self {
            path,
            _parent: parent,
        })
    }
}

impl Drop for MountedTmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Writes zeros into `path` until the filesystem says it is full.
fn fill_the_disk(path: &Path) {
    let mut filler = std::fs::File::create(path).expect("filler file");
    let chunk = vec![0u8; 64 * 1024];
    loop {
        if filler
            .write_all(&chunk)
            .and_then(|()| filler.sync_all())
            .is_err()
        {
            break;
        }
    }
    // Whatever partial block is left is taken one byte at a time.
    while filler
        .write_all(&[0])
        .and_then(|()| filler.sync_all())
        .is_ok()
    {}
}

async fn acknowledged_ids(response: reqwest::Response) -> Vec<String> {
    let answer: Value = response.json().await.expect("JSON answer");
    answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|result| result["id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_full_disk_answers_507_with_retry_after_reads_keep_working_and_writes_resume() {
    let Some(disk) = MountedTmpfs::mount("24m") else {
        return;
    };
    let store = SqliteStore::open(&disk.path.join("logbook.db"), SqliteOptions::default())
        .expect("open the store on the small disk");
    let store: Arc<dyn Store> = Arc::new(store);
    let server = Server::start_on(
        store,
        ServerSettings {
            // Keep the limits out of the way: this test is about the disk.
            limits: logbook_server::limits::LimitSettings {
                account_defaults: logbook_server::limits::AccountLimits {
                    reads_per_second: 0,
                    ingest_events_per_second: 0,
                    ..Default::default()
                },
                reads_per_second_per_key: 0,
                ingest_events_per_second_per_key: 0,
                ..Default::default()
            },
            ..ServerSettings::default()
        },
    )
    .await;
    let acme = server.account("acme").await;
    let mut acknowledged: Vec<String> = Vec::new();
    let first = server.post(&acme.ingest, &batch(50)).await;
    assert_eq!(first.status(), 200);
    acknowledged.extend(acknowledged_ids(first).await);

    let filler = disk.path.join("filler");
    fill_the_disk(&filler);
    let mut saw_full = false;
    for _ in 0..200 {
        let response = server.post(&acme.ingest, &batch(200)).await;
        match response.status().as_u16() {
            200 => acknowledged.extend(acknowledged_ids(response).await),
            507 => {
                assert_eq!(response.headers()["retry-after"], "5");
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"]["code"], "storage_full");
                saw_full = true;
                break;
            }
            other => panic!(
                "a full disk must answer 507, not {other}: {}",
                response.text().await.unwrap_or_default()
            ),
        }
    }
    assert!(
        saw_full,
        "200 batches of 200 events never filled a 24 MB disk"
    );

    // Reads keep working, and hold exactly what was acknowledged.
    let page: Value = server
        .get(&acme.read, "/api/v1/events?limit=1000&q=login")
        .await
        .json()
        .await
        .unwrap();
    assert!(page["events"].as_array().unwrap().len() <= acknowledged.len().min(1000));
    assert!(!page["events"].as_array().unwrap().is_empty());

    std::fs::remove_file(&filler).expect("remove the filler");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = server.post(&acme.ingest, &batch(10)).await;
        if response.status() == 200 {
            acknowledged.extend(acknowledged_ids(response).await);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes did not resume within 10 s of space returning: {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Every acknowledged event is stored, and nothing else.
    for id in &acknowledged {
        let response = server
            .get(&acme.read, &format!("/api/v1/events/{id}"))
            .await;
        assert_eq!(response.status(), 200, "acknowledged event {id} is missing");
    }
    let mut stored = 0usize;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/v1/events?limit=1000&cursor={cursor}"),
            None => "/api/v1/events?limit=1000".to_owned(),
        };
        let page: Value = server.get(&acme.read, &path).await.json().await.unwrap();
        stored += page["events"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        stored,
        acknowledged.len(),
        "no unacknowledged event was stored"
    );
}
