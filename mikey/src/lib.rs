//! MIKEY (RFC 3830) with the MBMS profile of TS 33.246 §6.3 and the extensions of RFC 4563 and RFC 6043.
//!
//! Messages are parsed without allocating and built into caller buffers, so the card can use the
//! same code as the ME and the BM-SC.
#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![deny(unsafe_code)]
