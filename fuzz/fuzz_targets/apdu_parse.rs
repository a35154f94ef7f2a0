//! Fuzz target `apdu_parse`: see `keysim_fuzz::apdu_parse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keysim_fuzz::apdu_parse(data));
