//! Fuzz target `sdes_parse`: see `sip::fuzz::sdes_parse` (`a=crypto` of RFC 4568, `a=key-mgmt` of
//! RFC 4567).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sip::fuzz::sdes_parse(data));
