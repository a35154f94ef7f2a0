//! Errors of SRTP/SRTCP processing (RFC 3711 §3.3, §3.4, §9.2) and of context set-up.

/// Everything that can go wrong while protecting or unprotecting a packet, or while setting up a
/// context. A failed call never changes the stored state of the context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The packet is shorter than its fixed header, its CSRC list, its header extension, or the
    /// SRTP/SRTCP trailer (MKI, tag, E||SRTCP index) need.
    #[error("packet too short: {len} bytes, at least {needed} needed")]
    TooShort {
        /// Bytes the packet has.
        len: usize,
        /// Bytes the headers and trailer need.
        needed: usize,
    },
    /// The RTP/RTCP version field is not 2.
    #[error("RTP/RTCP version {0}, expected 2")]
    BadVersion(u8),
    /// The padding count of an unprotected RTP packet is 0 or longer than the payload.
    #[error("bad RTP padding")]
    BadPadding,
    /// The caller's buffer has no room for the MKI, the authentication tag (and for SRTCP the
    /// E||SRTCP index word).
    #[error("buffer too small: {needed} bytes needed, {capacity} available")]
    BufferTooSmall {
        /// Bytes the protected packet needs.
        needed: usize,
        /// Bytes the buffer has.
        capacity: usize,
    },
    /// The authentication tag does not verify (RFC 3711 §3.3 step 5).
    #[error("authentication failure")]
    AuthFailure,
    /// The packet index lies behind the replay window (RFC 3711 §3.3.2).
    #[error("replay: packet index too old for the replay window")]
    ReplayOld,
    /// The packet index was already accepted (RFC 3711 §3.3.2), or, on the sending side, the
    /// same index was protected twice.
    #[error("replay: packet index already seen")]
    ReplayDuplicate,
    /// The MKI in the packet names no master key of this context (RFC 3711 §3.1; in MBMS the MKI
    /// carries the MTK ID, TS 33.246).
    #[error("unknown MKI")]
    UnknownMki,
    /// The context has no master key to protect with.
    #[error("no active master key")]
    NoMasterKey,
    /// The master key has protected or accepted the maximum number of packets (2^48 SRTP,
    /// 2^31 SRTCP, RFC 3711 §9.2), or the SRTCP index space is used up: re-key.
    #[error("key usage limit reached: re-key with a new master key")]
    KeyUsageLimit,
    /// The E flag of an SRTCP packet does not match the policy (encryption on or off).
    #[error("SRTCP E flag does not match the policy")]
    EncryptionFlagMismatch,
    /// A policy value is out of range.
    #[error("invalid policy: {0}")]
    InvalidPolicy(&'static str),
    /// A master key or master salt has the wrong length.
    #[error("invalid {what} length {got}, expected {expected}")]
    InvalidKeyLength {
        /// "master key" or "master salt".
        what: &'static str,
        /// Length given.
        got: usize,
        /// Length the crypto suite needs.
        expected: usize,
    },
    /// A master key's MKI length differs from the policy's MKI length.
    #[error("MKI length {got}, the policy says {expected}")]
    MkiLength {
        /// Length given.
        got: usize,
        /// Length in the policy.
        expected: usize,
    },
    /// A master key with this MKI is already in the context.
    #[error("a master key with this MKI is already present")]
    DuplicateMki,
}

/// Result with this crate's [`Error`].
pub type Result<T> = core::result::Result<T, Error>;
