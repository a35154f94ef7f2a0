//! Fuzz target `http_response`: see `keysim_fuzz::http_response`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keysim_fuzz::http_response(data));
