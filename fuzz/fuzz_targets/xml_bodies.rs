//! Fuzz target `xml_bodies`: see `keysim_fuzz::xml_bodies`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keysim_fuzz::xml_bodies(data));
