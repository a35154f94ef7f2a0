//! Fuzz target `srtp_unprotect`: see `keysim_fuzz::srtp_unprotect`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keysim_fuzz::srtp_unprotect(data));
