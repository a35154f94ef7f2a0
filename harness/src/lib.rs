//! Harness libraries that drive the whole system: the differential validation of the two MBMS
//! key-management paths of TS 33.246 §6.1 ([`differential`]) and the set-up both paths share
//! ([`paths`]).
//!
//! The binary only parses arguments and prints; what runs lives here, with its tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod differential;
pub mod paths;

/// The one error type of the harness.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ME (either path) failed where the harness expected it to work.
    #[error(transparent)]
    Me(#[from] me::Error),
    /// The card reader failed.
    #[error(transparent)]
    Reader(#[from] sim_reader::Error),
    /// The simulated BM-SC could not build a message.
    #[error("BM-SC: {0}")]
    Bmsc(String),
    /// Anything else, said in words.
    #[error("{0}")]
    Other(String),
}

impl From<network::bmsc_stream::StreamError> for Error {
    fn from(e: network::bmsc_stream::StreamError) -> Self {
        Error::Bmsc(format!("{e:?}"))
    }
}

/// Result with the harness's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
