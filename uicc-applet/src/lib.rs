//! A UICC (ETSI TS 102 221) carrying a USIM (TS 31.102) and an ISIM (TS 31.103), driven only over APDUs.
//!
//! `no_std`, heap-free and panic-free on any input. Persistent state lives behind the [`Nvm`]
//! trait, at the offsets of [`layout`]; every multi-field write goes through a journal
//! transaction, so a power cut leaves the old or the new state.
//!
//! ```
//! use uicc_applet::{Personalization, RamNvm, Uicc, NVM_SIZE};
//!
//! let profile = Personalization {
//!     iccid: "8988211000000430010",
//!     imsi: "001010123456789",
//!     k: [0x46; 16],
//!     opc: [0xCD; 16],
//!     sqn: [0; 6],
//!     amf: [0x80, 0x00],
//!     impi: "001010123456789@ims.mnc001.mcc001.3gppnetwork.org",
//!     impu: &["sip:001010123456789@ims.mnc001.mcc001.3gppnetwork.org"],
//!     home_domain: "ims.mnc001.mcc001.3gppnetwork.org",
//!     pin1: "1234",
//!     adm1: *b"12345678",
//!     puk1: "12345678",
//! };
//! let mut nvm = RamNvm::<NVM_SIZE>::new();
//! Uicc::personalize(&mut nvm, &profile).unwrap();
//! let mut card = Uicc::power_on(nvm);
//! let mut response = [0u8; uicc_applet::RESPONSE_MAX];
//! // SELECT EF.ICCID (no FCP), READ BINARY 10 bytes.
//! assert_eq!(card.process(&[0x00, 0xA4, 0x00, 0x0C, 0x02, 0x2F, 0xE2], &mut response), 2);
//! let n = card.process(&[0x00, 0xB0, 0x00, 0x00, 0x0A], &mut response);
//! assert_eq!(&response[..n], &[0x98, 0x88, 0x12, 0x01, 0x00, 0x00, 0x40, 0x03, 0x10, 0xF0, 0x90, 0x00]);
//! ```
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs, clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

pub mod fs;
pub mod layout;
pub mod nvm;
pub mod open_values;
pub mod profile;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

mod card;
mod command;
mod ef;
mod error;
mod journal;
mod keystore;
mod personalize;
mod time;

#[cfg(test)]
mod tests;

pub use card::{ATR, RESPONSE_MAX, Transport, Uicc};
pub use command::pin::{ADM1_MAX_TRIES, PIN1_MAX_TRIES, PUK1_MAX_TRIES};
pub use fs::{ISIM_AID, USIM_AID};
pub use layout::{LAYOUT_VERSION, NVM_SIZE};

/// Whether `nvm` holds a personalized card image of this NVM layout ([`LAYOUT_VERSION`]): what a
/// host checks before it runs a card on an NVM image it kept.
pub fn is_personalized<N: Nvm>(nvm: &N) -> bool {
    personalize::is_formatted(nvm)
}
pub use nvm::{Nvm, NvmError, RamNvm};
pub use profile::{Personalization, ProfileError};
