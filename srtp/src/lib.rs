//! SRTP and SRTCP (RFC 3711): AES-CM-128 with HMAC-SHA1-80/32, key derivation, index estimation,
//! replay protection and MKI-based master key lookup (the MKI names the MTK in MBMS, TS 33.246).
//!
//! Packets agree byte for byte with libsrtp: the RFC 3711 Appendix B vectors and libsrtp's
//! `srtp_validate` packets are unit tests, and `tests/libsrtp.rs` exchanges packets with libsrtp
//! (through PyPI `pylibsrtp`) in both directions.
//!
//! ```
//! use srtp::{CryptoSuite, MasterKey, Policy, SrtpContext};
//! let key = MasterKey::new([0x2b; 16], [0x17; 14], [0x00, 0x01]);
//! let policy = Policy::new(CryptoSuite::Aes128CmHmacSha1_80).with_mki_len(2);
//! let mut tx = SrtpContext::new(policy.clone(), [key.clone()])?;
//! let mut rx = SrtpContext::new(policy, [key])?;
//! let rtp = [0x80, 96, 0x12, 0x34, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4];
//! let mut packet = rtp.to_vec();
//! tx.protect_rtp_vec(&mut packet)?;
//! assert_eq!(packet.len(), rtp.len() + 2 + 10);
//! rx.unprotect_rtp_vec(&mut packet)?;
//! assert_eq!(packet, rtp);
//! # Ok::<(), srtp::Error>(())
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs, clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod aes_cm;
mod context;
mod error;
pub mod kdf;
mod key;
pub mod policy;
mod replay;
pub mod rtp;
pub mod transform;

pub use context::{Direction, SrtpContext};
pub use error::{Error, Result};
pub use key::MasterKey;
pub use policy::{CryptoSuite, Policy};
pub use replay::estimate_index;
