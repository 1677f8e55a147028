//! Fuzz target `ingest_body`: the invariants live in `logbook_fuzz::ingest_body` so saved inputs replay as tests.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| logbook_fuzz::ingest_body(input));
