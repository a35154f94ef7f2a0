//! Fuzz target `mikey_ticket`: see `keysim_fuzz::mikey_ticket` (MIKEY-TICKET of RFC 6043).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| keysim_fuzz::mikey_ticket(data));
