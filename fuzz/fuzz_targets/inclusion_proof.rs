//! Fuzz target `inclusion_proof`: the invariants live in `logbook_fuzz::inclusion_proof` so saved inputs replay as tests.
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| logbook_fuzz::inclusion_proof(input));
