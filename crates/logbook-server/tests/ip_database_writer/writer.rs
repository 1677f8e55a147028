//! Builds MaxMind DB files with the real `mmdb-writer` package (installed by `.ci/run` into
//! `tests/ip_database_writer/venv`), for the test binaries that need IP databases. Included by
//! path from each binary's root.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// This directory, named from any crate of the workspace that includes this file.
fn writer_directory() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../logbook-server/tests/ip_database_writer"
    ))
}

/// The writer's interpreter, or `None` after a loud `SKIPPED` line (a failure under CI).
pub fn writer_python(test: &str) -> Option<PathBuf> {
    let python = writer_directory().join("venv/bin/python");
    if python.exists() {
        return Some(python);
    }
    let reason = format!(
        "{test}: the MaxMind DB writer (tests/ip_database_writer/venv) is not installed; .ci/run installs it"
    );
    if std::env::var("CI").is_ok_and(|value| value == "true") {
        panic!("{reason}");
    }
    eprintln!("SKIPPED ({reason})");
    None
}

/// Writes a database of `records` (`[network, data]` pairs) to `path` with the real writer.
pub fn write_database(python: &Path, path: &Path, database_type: &str, records: &[(&str, Value)]) {
    use std::io::Write;
    let spec = json!({
        "path": path,
        "database_type": database_type,
        "records": records
            .iter()
            .map(|(network, data)| json!({"network": network, "data": data}))
            .collect::<Vec<_>>(),
    });
    let script = writer_directory().join("write_database.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("the writer starts");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(spec.to_string().as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "the writer wrote {path:?}");
}
