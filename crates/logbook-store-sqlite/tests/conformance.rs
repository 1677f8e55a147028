//! The store conformance suite from `logbook-testkit`, on a fresh SQLite database per test.

use std::sync::Arc;

use logbook_core::Store;
use logbook_store_sqlite::{SqliteOptions, SqliteStore};

async fn fresh_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(
        &directory.path().join("logbook.db"),
        SqliteOptions {
            ip_locator: logbook_testkit::location_cases::test_ip_locator(),
            ..SqliteOptions::default()
        },
    )
    .expect("the store opens");
    (Arc::new(store), directory)
}

logbook_testkit::store_conformance_tests!(fresh_store);
