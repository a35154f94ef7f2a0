//! Fuzz target `ub_headers`: see `keysim_fuzz::ub_headers`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keysim_fuzz::ub_headers(data));
