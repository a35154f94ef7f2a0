//! The HTTP/XML wire protocols that both the ME (`me`) and the network peers (`network`) speak:
//! the bodies, headers and constants of each exchange, with no I/O, and one [`Error`] for all. The codecs whose values travel
//! in them (`gba`, `mikey`) stay `no_std`; everything here is std.
//!
//! | module | what | specification |
//! |---|---|---|
//! | [`digest`] | HTTP Digest: challenge, credentials, Authentication-Info, request-digest (Ub and Ua) | RFC 2617, TS 24.109 §4–5 |
//! | [`ub`] | Ub: AKAv1-MD5, the AKA nonce, the BootstrappingInfo body, key lifetimes | TS 24.109 §4, Annex C, RFC 3310 |
//! | [`zn`] | Zn: the NAF's request for the keys of a B-TID, the BSF's answer | TS 33.220 §4.5.3, TS 29.109 §4.3 |
//! | [`mbms_key_management`] | BM-SC key management over HTTP: request types, MIME types, XML bodies, Digest conventions | TS 33.246 §6.3.2, TS 26.346 Annex C |
//! | [`kms_http`] | the KMS over HTTP: Request-URI, request types, base64 MIKEY bodies, the KMS's NAF_Id | TS 33.328 Annex A |
//! | [`sip_based_mbms`] | SIP-based MBMS security: the Annex I documents, the SCF's requests and SIP answers | TS 26.237 §10.4.2, Annex I |
#![deny(unsafe_code)]
#![warn(missing_docs)]
// Parsers are total: library code may not unwrap, expect, panic or index unchecked.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod digest;
mod error;
pub mod kms_http;
pub mod mbms_key_management;
pub mod sip_based_mbms;
pub mod ub;
mod xml;
pub mod zn;

pub use error::Error;
