//! Fuzz target `vpcd_frames`: see `keysim_fuzz::vpcd_frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keysim_fuzz::vpcd_frames(data));
