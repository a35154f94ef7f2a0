//! A UICC (ETSI TS 102 221) carrying a USIM (TS 31.102) and an ISIM (TS 31.103), driven only over APDUs.
//!
//! `no_std`, heap-free and panic-free on any input. Persistent state lives behind the [`Nvm`]
//! trait; every multi-field write goes through a transaction, so a power cut leaves the old or
//! the new state.
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs, clippy::unwrap_used, clippy::expect_used)]

pub mod nvm;
pub mod profile;

mod card;

pub use card::{ATR, RESPONSE_MAX, Transport, Uicc};
pub use nvm::{Nvm, NvmError, RamNvm};
pub use profile::Personalization;
