//! Fuzz target `mikey_verify`: see `keysim_fuzz::mikey_verify`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keysim_fuzz::mikey_verify(data));
