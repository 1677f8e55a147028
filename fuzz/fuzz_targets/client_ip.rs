//! Fuzz target `client_ip`: the invariants live in `logbook_fuzz::client_ip` so saved inputs replay as tests.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| logbook_fuzz::client_ip(input));
