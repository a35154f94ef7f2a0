//! Fuzz target `mikey_parse`: see `keysim_fuzz::mikey_parse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keysim_fuzz::mikey_parse(data));
