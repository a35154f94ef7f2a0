//! Fuzz target `sdp_parse`: see `sip::fuzz::sdp_parse` (SDP of RFC 8866 with the SDES and
//! key-mgmt attributes).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sip::fuzz::sdp_parse(data));
