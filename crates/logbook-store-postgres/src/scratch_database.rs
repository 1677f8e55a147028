//! Throw-away databases for tests that need a real PostgreSQL (this crate's conformance run, the
//! binary's multi-node tests, the benchmark harness): `ScratchDatabase::create` makes a fresh
//! database `logbook_test_<random>` on the server named by `LOGBOOK_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and drops it again (best effort) when dropped.
//!
//! When that server cannot be reached, a local run prints one loud `SKIPPED (...)` line and gets
//! `None`; under CI (`CI=true`) a missing PostgreSQL is a failure, never a skip.

use std::hash::{BuildHasher, Hasher};

use tokio_postgres::NoTls;

/// The server tests use when `LOGBOOK_TEST_POSTGRES_URL` is not set.
pub const DEFAULT_TEST_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A fresh, empty database, dropped when this value is dropped.
#[derive(Debug)]
pub struct ScratchDatabase {
    /// The URL of the fresh database.
    pub url: String,
    /// The database name (`logbook_test_<random>`).
    pub name: String,
    server_url: String,
}

/// The server URL tests use.
pub fn test_server_url() -> String {
    std::env::var("LOGBOOK_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_POSTGRES_URL.to_owned())
}

/// `url` with its database name replaced by `database` (query parameters kept).
pub fn url_with_database(url: &str, database: &str) -> String {
    let (base, parameters) = match url.split_once('?') {
        Some((base, parameters)) => (base, Some(parameters)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |index| index + 3);
    let authority_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |index| after_scheme + index);
    let mut rewritten = format!("{}/{database}", &base[..authority_end]);
    if let Some(parameters) = parameters {
        rewritten.push('?');
        rewritten.push_str(parameters);
    }
    rewritten
}

/// The server URL without its password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl ScratchDatabase {
    /// Creates a fresh database, or returns `None` after printing `SKIPPED (...)` when PostgreSQL
    /// is unreachable outside CI. Panics under CI when it is unreachable, and on any other error.
    pub async fn create() -> Option<ScratchDatabase> {
        let server_url = test_server_url();
        let client = match tokio_postgres::connect(&server_url, NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                client
            }
            Err(error) => {
                let message = format!(
                    "PostgreSQL not reachable at {}: set LOGBOOK_TEST_POSTGRES_URL ({error})",
                    redacted(&server_url)
                );
                if std::env::var("CI").is_ok_and(|value| value == "true") {
                    panic!("{message}; under CI PostgreSQL is required");
                }
                eprintln!("SKIPPED ({message})");
                return None;
            }
        };
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let name = format!("logbook_test_{random:016x}");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|error| panic!("could not create database {name}: {error}"));
        Some(ScratchDatabase {
            url: url_with_database(&server_url, &name),
            name,
            server_url,
        })
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let server_url = self.server_url.clone();
        let name = self.name.clone();
        // Dropping may happen inside or outside a runtime; a thread of its own with a small
        // runtime works in both. Failure only leaves a database behind.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async move {
                let (client, connection) =
                    tokio_postgres::connect(&server_url, NoTls).await.ok()?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop scratch database {}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_of_a_url_is_replaced_and_parameters_kept() {
        assert_eq!(
            url_with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            url_with_database("postgres://u:p@db/app?sslmode=disable", "x"),
            "postgres://u:p@db/x?sslmode=disable"
        );
        assert_eq!(url_with_database("postgres://db", "x"), "postgres://db/x");
    }

    #[test]
    fn messages_never_show_the_password() {
        assert_eq!(
            redacted("postgres://user:secret@db/app"),
            "postgres://user:***@db/app"
        );
    }
}
