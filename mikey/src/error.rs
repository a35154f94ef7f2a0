//! The crate's one error type (RFC 3830 §5.1.2 lists the error conditions a receiver reports).

use core::fmt;

use crate::payload::PayloadType;

/// Everything that can go wrong while parsing, building, protecting or verifying a MIKEY message.
///
/// The enum is small and `Copy`, so the card can map it to a status word at the APDU edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input ended in the middle of a field.
    Truncated,
    /// Bytes follow the payload whose next-payload field is "last payload" (0).
    TrailingBytes,
    /// HDR version is not 1 (RFC 3830 §6.1).
    UnsupportedVersion(u8),
    /// A payload type this crate cannot frame (its length cannot be known), or a value that is not
    /// a payload type at all.
    UnsupportedPayload(u8),
    /// A payload type that may not appear where it was found (e.g. a Key data sub-payload at the top
    /// level, or a payload the MBMS profile does not allow).
    UnexpectedPayload(PayloadType),
    /// A payload the message needs is absent.
    MissingPayload(PayloadType),
    /// A payload that may appear only once appears twice.
    DuplicatePayload(PayloadType),
    /// CS ID map type not known (RFC 3830 Table 6.1.d, RFC 4563 Table 3, RFC 6043 Table 6.4).
    UnsupportedCsIdMap(u8),
    /// PRF function not known (RFC 3830 Table 6.1.c, RFC 6043 Table 6.3).
    UnsupportedPrf(u8),
    /// KEMAC encryption algorithm not known or not implemented (RFC 3830 Table 6.2.a).
    UnsupportedEncrAlg(u8),
    /// MAC algorithm not known (RFC 3830 Table 6.2.b).
    UnsupportedMacAlg(u8),
    /// Timestamp type not known (RFC 3830 Table 6.6).
    UnsupportedTimestampType(u8),
    /// Key data type not known (RFC 3830 Table 6.13.a).
    UnsupportedKeyDataType(u8),
    /// Key validity type not known (RFC 3830 Table 6.13.b).
    UnsupportedKeyValidity(u8),
    /// A length field disagrees with the data it announces (SP parameters, Key ID sub-payloads,
    /// Key data sub-payloads inside a KEMAC, a General Extension).
    LengthMismatch,
    /// A value is too long for its length field (or for a fixed buffer of this crate).
    FieldTooLong,
    /// The caller's output buffer is too small.
    BufferTooSmall,
    /// The message already ends with a KEMAC or V payload; nothing may follow it.
    PayloadAfterMac,
    /// The MAC (KEMAC or V payload) does not verify.
    MacMismatch,
    /// HDR data type is not the one this operation expects.
    WrongDataType(u8),
    /// A key, salt, identifier or RAND has a length the profile does not allow.
    BadLength,
    /// The MBMS profile refuses this message (e.g. NULL protection, an SP payload next to the
    /// empty CS ID map, MSK ID 0 with a key, a key message without a key).
    ProfileViolation(ProfileViolation),
}

/// Why the MBMS profile (TS 33.246) refused a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProfileViolation {
    /// KEMAC encryption or MAC is NULL; MBMS key delivery is always protected.
    NullProtection,
    /// An SP payload together with the empty CS ID map, which RFC 4563 §5 forbids.
    PolicyWithEmptyMap,
    /// The Key ID information extension is missing a Key ID the message needs.
    MissingKeyId,
    /// A Key ID sub-payload has the wrong length for its type.
    BadKeyIdLength,
    /// MSK ID 0 (solicited pull, TS 33.246 §6.3.2.2.4) but the KEMAC carries key data, or a
    /// non-zero MSK ID with no key data.
    SolicitedPullMismatch,
    /// More than one Key data sub-payload, or one of the wrong type.
    BadKeyData,
    /// RAND shorter than 128 bits (RFC 3830 §4.1.1).
    RandTooShort,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("MIKEY message truncated"),
            Error::TrailingBytes => f.write_str("bytes after the last MIKEY payload"),
            Error::UnsupportedVersion(v) => write!(f, "unsupported MIKEY version {v}"),
            Error::UnsupportedPayload(t) => write!(f, "unsupported MIKEY payload type {t}"),
            Error::UnexpectedPayload(t) => write!(f, "unexpected MIKEY payload {t:?}"),
            Error::MissingPayload(t) => write!(f, "missing MIKEY payload {t:?}"),
            Error::DuplicatePayload(t) => write!(f, "duplicate MIKEY payload {t:?}"),
            Error::UnsupportedCsIdMap(t) => write!(f, "unsupported CS ID map type {t}"),
            Error::UnsupportedPrf(t) => write!(f, "unsupported PRF function {t}"),
            Error::UnsupportedEncrAlg(t) => write!(f, "unsupported KEMAC encryption algorithm {t}"),
            Error::UnsupportedMacAlg(t) => write!(f, "unsupported MAC algorithm {t}"),
            Error::UnsupportedTimestampType(t) => write!(f, "unsupported timestamp type {t}"),
            Error::UnsupportedKeyDataType(t) => write!(f, "unsupported key data type {t}"),
            Error::UnsupportedKeyValidity(t) => write!(f, "unsupported key validity type {t}"),
            Error::LengthMismatch => f.write_str("length field disagrees with its data"),
            Error::FieldTooLong => f.write_str("value too long for its length field"),
            Error::BufferTooSmall => f.write_str("output buffer too small"),
            Error::PayloadAfterMac => f.write_str("payload after the MAC-carrying payload"),
            Error::MacMismatch => f.write_str("MAC verification failed"),
            Error::WrongDataType(t) => write!(f, "unexpected MIKEY data type {t}"),
            Error::BadLength => f.write_str("key, salt, identifier or RAND of a wrong length"),
            Error::ProfileViolation(v) => write!(f, "MBMS profile violation: {v:?}"),
        }
    }
}

impl core::error::Error for Error {}

impl From<ProfileViolation> for Error {
    fn from(v: ProfileViolation) -> Self {
        Error::ProfileViolation(v)
    }
}
