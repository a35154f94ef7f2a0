//! Fuzz target `srtp_sequence`: see `keysim_fuzz::srtp_sequence`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keysim_fuzz::srtp_sequence(data));
