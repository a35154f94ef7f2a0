//! The crate's error type: bad input to a GBA or AKA codec (TS 33.220, TS 33.102).

use core::fmt;

/// Malformed or out-of-range input. Protocol outcomes (MAC failure, synchronisation failure,
/// stale SQN) are not errors: they are [`crate::AkaFailure`] and [`crate::SqnReject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// A byte string has the wrong length for a fixed-size field.
    WrongLength {
        /// The length the field requires.
        expected: usize,
        /// The length that was given.
        actual: usize,
    },
    /// A KDF parameter is longer than 65535 octets (TS 33.220 Annex B.1: Li is two octets).
    KdfParameterTooLong,
    /// A NAF_Id is shorter than its 5-octet Ua security protocol identifier plus one FQDN octet,
    /// or longer than [`crate::naf_id::NAF_ID_MAX_LEN`].
    NafIdLength,
    /// The FQDN part of a NAF_Id is empty or contains a byte outside printable ASCII.
    InvalidFqdn,
    /// The BSF domain of a B-TID is empty, too long, or contains '@', a space or a non-printable byte.
    InvalidBsfDomain,
    /// A B-TID is not `base64(RAND) "@" domain` (TS 33.220 §4.5.2).
    MalformedBTid,
    /// A SQN value does not fit in 48 bits, or a SEQ does not fit beside its IND.
    SqnOutOfRange,
    /// A stored SQN array does not decode (wrong size or a SEQ value out of range).
    InvalidSqnState,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::WrongLength { expected, actual } => {
                write!(f, "wrong length: expected {expected} octets, got {actual}")
            }
            Error::KdfParameterTooLong => f.write_str("KDF parameter longer than 65535 octets"),
            Error::NafIdLength => f.write_str("NAF_Id length out of range"),
            Error::InvalidFqdn => f.write_str("invalid NAF FQDN"),
            Error::InvalidBsfDomain => f.write_str("invalid BSF domain name"),
            Error::MalformedBTid => f.write_str("malformed B-TID"),
            Error::SqnOutOfRange => f.write_str("SQN out of range"),
            Error::InvalidSqnState => f.write_str("invalid stored SQN array"),
        }
    }
}

impl core::error::Error for Error {}
