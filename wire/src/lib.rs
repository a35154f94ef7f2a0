//! The HTTP/XML wire protocols that both the ME (`me`) and the network peers (`network`) speak:
//! the bodies, headers and constants of each exchange, with no I/O. The codecs whose values travel
//! in them (`gba`, `mikey`) stay `no_std`; everything here is std.
//!
//! | module | what | specification |
//! |---|---|---|
//! | [`ub`] | Ub: HTTP Digest AKA, the AKA nonce, BootstrappingInfo; Zn between NAF and BSF; the Digest of Ua | TS 24.109 §4–5, RFC 3310, RFC 2617, TS 33.220 §4.5.3 |
//! | [`mbms_http`] | BM-SC key management: request types, MIME types, XML bodies, Digest conventions | TS 33.246 §6.3.2, TS 26.346 Annex C |
//! | [`mbms_http::sip_based`] | SIP-based MBMS security: the Annex I documents and the SCF's requests | TS 26.237 §10.4.2, Annex I |
#![deny(unsafe_code)]
#![warn(missing_docs)]
// Parsers are total: library code may not unwrap, expect, panic or index unchecked.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]

pub mod mbms_http;
pub mod ub;
