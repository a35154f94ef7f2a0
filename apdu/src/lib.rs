//! Command and response APDUs of ISO/IEC 7816-4 §5 and ETSI TS 102 221 §10, with typed status words.
//!
//! `no_std` and allocation-free: commands borrow the bytes they were parsed from, and are encoded
//! into caller buffers. With the `std` feature, [`tlv::build`] builds BER-TLV through `iso7816-tlv`
//! for the ME and reader side; the card uses the zero-copy reader in [`tlv`].
#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs, clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

mod command;
mod response;
mod status;
pub mod tlv;

pub use command::{Case, Command, EXTENDED_NC_MAX, EXTENDED_NE_MAX, SHORT_NC_MAX, SHORT_NE_MAX};
pub use response::Response;
pub use status::Status;

/// Why an APDU could not be parsed or encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApduError {
    /// Fewer than the four header bytes of a command, or fewer than the two status bytes of a response.
    TooShort,
    /// The body's length matches no case: Lc disagrees with the data present.
    WrongLength,
    /// More than 65535 data bytes.
    DataTooLong,
    /// Ne must lie in 1..=65536.
    InvalidNe,
    /// The output buffer cannot hold the encoding.
    BufferTooSmall,
}

impl ApduError {
    /// The status word a card answers for this malformed command.
    pub const fn status(self) -> Status {
        Status::WrongLength
    }
}

impl core::fmt::Display for ApduError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ApduError::TooShort => "APDU shorter than its header",
            ApduError::WrongLength => "APDU length matches no ISO 7816-4 case (Lc does not fit the data)",
            ApduError::DataTooLong => "APDU data longer than 65535 bytes",
            ApduError::InvalidNe => "Ne must lie in 1..=65536",
            ApduError::BufferTooSmall => "output buffer too small for the APDU",
        })
    }
}

impl core::error::Error for ApduError {}
