//! The store conformance suite from `logbook-testkit`, on a fresh PostgreSQL database per test
//! (`ScratchDatabase`). Without a reachable PostgreSQL a local run prints `SKIPPED (...)` and the
//! test binary stops with success; under CI it fails.

use std::sync::Arc;

use logbook_core::Store;
use logbook_store_postgres::scratch_database::ScratchDatabase;
use logbook_store_postgres::{PostgresOptions, PostgresStore};

async fn fresh_store() -> (Arc<dyn Store>, ScratchDatabase) {
    let Some(database) = ScratchDatabase::create().await else {
        // The conformance macro has no way to skip one case, and without PostgreSQL every case
        // would skip alike: end the whole test binary successfully after the SKIPPED line.
        std::process::exit(0);
    };
    let store = PostgresStore::connect(
        &database.url,
        PostgresOptions {
            pool_size: 4,
            ip_locator: logbook_testkit::location_cases::test_ip_locator(),
            ..PostgresOptions::default()
        },
    )
    .await
    .expect("the store connects");
    (Arc::new(store), database)
}

logbook_testkit::store_conformance_tests!(fresh_store);
