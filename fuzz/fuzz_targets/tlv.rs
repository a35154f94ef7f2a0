//! Fuzz target `tlv`: see `keysim_fuzz::tlv`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keysim_fuzz::tlv(data));
