//! Fuzz target `query_parser`: the invariants live in `logbook_fuzz::query_parser` so saved inputs replay as tests.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| logbook_fuzz::query_parser(input));
