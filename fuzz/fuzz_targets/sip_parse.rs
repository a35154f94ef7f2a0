//! Fuzz target `sip_parse`: see `sip::fuzz::sip_parse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sip::fuzz::sip_parse(data));
