//! Start-up integrity check: a database file whose pages were damaged while Logbook was stopped
//! opens for reading only. Every write is refused with a message naming `quick_check`, and the
//! store reports not ready, instead of writing on top of damaged history.

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use logbook_core::{Store, StoreError};
use logbook_store_sqlite::{SqliteOptions, SqliteStore};
use logbook_testkit::builders::EventBuilder;

fn events(count: usize) -> Vec<logbook_core::NewEvent> {
    (0..count)
        .map(|index| {
            EventBuilder::new("acme")
                .action("user.login")
                .message(&format!("login number {index} {}", "padding ".repeat(40)))
                .build()
        })
        .collect()
}

#[tokio::test]
async fn an_intact_database_opens_ready_and_accepts_writes() {
    let directory = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        &directory.path().join("logbook.db"),
        SqliteOptions::default(),
    )
    .unwrap();
    store.append_events(events(10)).await.unwrap();
    store.check_ready().await.unwrap();
    store.shutdown().await;
    let reopened = SqliteStore::open(
        &directory.path().join("logbook.db"),
        SqliteOptions::default(),
    )
    .unwrap();
    reopened.check_ready().await.unwrap();
    reopened.append_events(events(1)).await.unwrap();
    reopened.shutdown().await;
}

#[tokio::test]
async fn a_damaged_database_refuses_writes_and_is_not_ready_with_a_precise_message() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("logbook.db");
    {
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&path, SqliteOptions::default()).unwrap());
        store.append_events(events(2000)).await.unwrap();
        store.shutdown().await;
    }
    // Fold the WAL into the main file so the damage below is what the next open reads.
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut header = [0u8; 100];
    file.read_exact(&mut header).unwrap();
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        size => u64::from(size),
    };
    let page_count = file.metadata().unwrap().len() / page_size;
    assert!(page_count > 20, "the database has {page_count} pages");
    // Scribble over the b-tree headers of pages in the middle of the file (page 1 stays intact,
    // so SQLite still opens the file and the check itself has to find the damage).
    for page in (page_count / 2)..(page_count / 2 + 4) {
        file.seek(SeekFrom::Start(page * page_size)).unwrap();
        file.write_all(&[0xA5; 64]).unwrap();
    }
    file.sync_all().unwrap();
    drop(file);

    let store = SqliteStore::open(&path, SqliteOptions::default())
        .expect("a damaged database still opens, for reading");
    match store.append_events(events(1)).await {
        Err(StoreError::Unavailable(message)) => {
            assert!(message.contains("quick_check"), "{message}");
            assert!(message.contains("restored from a backup"), "{message}");
        }
        other => panic!("a damaged database must refuse writes, got {other:?}"),
    }
    match store.check_ready().await {
        Err(error) => assert!(error.to_string().contains("quick_check"), "{error}"),
        Ok(()) => panic!("a damaged database must not report ready"),
    }
    store.shutdown().await;
}
