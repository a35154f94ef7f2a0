//! Fuzz target `profile_toml`: see `keysim_fuzz::profile_toml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keysim_fuzz::profile_toml(data));
