//! Fuzz target `export_writers`: the invariants live in `logbook_fuzz::export_writers` so saved inputs replay as tests.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| logbook_fuzz::export_writers(input));
