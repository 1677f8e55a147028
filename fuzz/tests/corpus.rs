//! Replays every saved input (the seed corpus and every crash the fuzzers found, under
//! `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`) through its target's invariants, so
//! a fixed crash stays fixed without a fuzzer installed.

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut replayed = 0;
    for folder in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(folder).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            let input = std::fs::read(&path).expect("a saved input");
            check(&input);
            replayed += 1;
        }
    }
    assert!(replayed > 0, "no saved inputs for {target}");
}

#[test]
fn saved_ingest_bodies_keep_their_invariants() {
    replay("ingest_body", logbook_fuzz::ingest_body);
}

#[test]
fn saved_queries_keep_their_invariants() {
    replay("query_parser", logbook_fuzz::query_parser);
}

#[test]
fn saved_export_inputs_keep_their_invariants() {
    replay("export_writers", logbook_fuzz::export_writers);
}

#[test]
fn saved_client_ip_inputs_keep_their_invariants() {
    replay("client_ip", logbook_fuzz::client_ip);
}

#[test]
fn saved_inclusion_proof_inputs_keep_their_invariants() {
    replay("inclusion_proof", logbook_fuzz::inclusion_proof);
}
