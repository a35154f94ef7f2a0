//! Fuzz target `card_apdus`: see `keysim_fuzz::card_apdus`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keysim_fuzz::card_apdus(data));
