//! The one error type of the ME: card status words of TS 31.102 §7.3 / TS 102 221 §10.2 mapped to
//! typed outcomes, and the same outcomes raised by the ME-based key management (TS 33.246 §6.3).

use std::path::PathBuf;

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the ME. The MBMS variants are raised alike by the card (its
/// status word) and by the ME-based key management, so both paths can be compared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The reader or the transport loop failed.
    #[error("card reader: {0}")]
    Reader(#[from] sim_reader::Error),
    /// The card answered a status word this command does not expect.
    #[error("{command}: the card answered {sw:04X}")]
    CardStatus {
        /// The command.
        command: &'static str,
        /// The status word.
        sw: u16,
    },
    /// The card's response data do not have the layout of TS 31.102 §7.1.2 / TS 102 221.
    #[error("{command}: malformed card response: {reason}")]
    CardResponse {
        /// The command.
        command: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The card has no such application (EF.DIR, TS 102 221 §13.1).
    #[error("the card has no {0} application")]
    NoApplication(&'static str),
    /// A file the ME needs is missing on the card (`6A 82`).
    #[error("{0}: file not found on the card")]
    FileNotFound(&'static str),
    /// PIN1 has not been verified (`69 82`; TS 31.102 §7.1: AUTHENTICATE and most EFs need it).
    #[error("security status not satisfied: verify PIN1 first (69 82)")]
    PinRequired,
    /// Wrong PIN (`63 Cx`).
    #[error("wrong PIN, {tries_left} tries left")]
    WrongPin {
        /// Tries left before the PIN blocks.
        tries_left: u8,
    },
    /// The PIN is blocked (`69 83`).
    #[error("PIN blocked (69 83)")]
    PinBlocked,
    /// AKA or MIKEY MAC verification failed (`98 62`).
    #[error("authentication error, incorrect MAC (98 62)")]
    MacFailure,
    /// The MUK's key lifetime has passed and the message is no solicited pull allowed to use it
    /// (`98 63`).
    #[error("MUK expired: security association expired (98 63)")]
    MukExpired,
    /// The security context or MBMS mode is not supported (`98 64`).
    #[error("security context not supported (98 64)")]
    ContextNotSupported,
    /// Replay or stale message: MIKEY timestamp not above the MUK's counter, or MTK ID not above
    /// the MSK's (`98 65`).
    #[error("key freshness failure: replayed or old MIKEY message (98 65)")]
    KeyFreshness,
    /// No room for another Key Domain / Key Group of MSKs (`98 66`).
    #[error("no memory space for the MSK (98 66)")]
    NoMskSpace,
    /// No room for another MUK (`98 67`).
    #[error("no memory space for the MUK (98 67)")]
    NoMukSpace,
    /// No MUK matches the message's IDi / IDr (`69 85` in MSK Update mode).
    #[error("no MUK for this IDi / IDr (69 85)")]
    NoMuk,
    /// No MSK for the Key Domain ID / MSK ID, or nothing to delete (`6A 88`).
    #[error("referenced key not found (6A 88)")]
    KeyNotFound,
    /// GBA conditions not met: no Ks (no bootstrap), B-TID or lifetime not written (`69 85` in the
    /// GBA context), or no bootstrap in the ME for GBA_ME.
    #[error("{0}: no usable bootstrap (conditions of use not satisfied)")]
    NoBootstrap(&'static str),
    /// The MIKEY message does not parse or breaks the MBMS profile (`6A 80` on the card; the
    /// parser's reason in the ME).
    #[error("malformed MIKEY message{}", reason.map(|r| format!(": {r}")).unwrap_or_default())]
    MalformedMikey {
        /// The parser's reason (ME-based path); `None` when the card refused it.
        reason: Option<mikey::Error>,
    },
    /// Input the ME refuses before anything reaches the card or the store.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A GBA codec refused a value.
    #[error("GBA: {0}")]
    Gba(#[from] gba::Error),
    /// SRTP processing failed.
    #[error("SRTP: {0}")]
    Srtp(#[from] srtp::Error),
    /// The SRTP receiver has no such stream.
    #[error("no MBMS stream {0}")]
    NoStream(u32),
    /// The key store file could not be locked or read, or was refused.
    #[error(transparent)]
    State(#[from] statefile::Error),
    /// Writing the key store failed.
    #[error("key store {path}: {source}")]
    Store {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An HTTP exchange with a network peer failed (connect, I/O, time limit).
    #[error("{peer}: HTTP exchange failed: {reason}")]
    Http {
        /// The peer (BSF, BM-SC).
        peer: &'static str,
        /// What failed.
        reason: String,
    },
    /// A network peer answered an HTTP status the procedure does not expect.
    #[error("{peer} answered HTTP {status}: {reason}")]
    HttpStatus {
        /// The peer.
        peer: &'static str,
        /// The status code.
        status: u16,
        /// The peer's reason (first line of its body) or what the status means here.
        reason: String,
    },
    /// A network peer's answer is malformed (headers, XML, MIKEY out of its place).
    #[error("{peer}: malformed answer: {reason}")]
    MalformedAnswer {
        /// The peer.
        peer: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A network peer did not authenticate itself: AUTN refused by the card, `rspauth` missing or
    /// wrong (RFC 2617 §3.2.3), repeated synchronisation failure.
    #[error("{peer} is not authentic: {reason}")]
    PeerNotAuthentic {
        /// The peer.
        peer: &'static str,
        /// Why.
        reason: &'static str,
    },
    /// The BM-SC answered `401` to credentials made from this B-TID: it does not know the B-TID
    /// (unknown or expired at the BSF) or the keys do not match, so the ME bootstraps again
    /// (TS 33.220 §4.5.3, TS 24.109 §5.3.2).
    #[error("the BM-SC refused B-TID {btid}: bootstrap again")]
    BtidRejected {
        /// The refused B-TID.
        btid: String,
    },
    /// Another user of the card panicked while holding it.
    #[error("the card handle is poisoned")]
    CardPoisoned,
    /// A SIP final answer other than 2xx and other than the re-bootstrap answer (RFC 3261 §21,
    /// TS 26.237 §10.4.2: the procedure is terminated).
    #[error("{peer} answered SIP {status}: {reason}")]
    SipStatus {
        /// Who answered.
        peer: &'static str,
        /// The status code.
        status: u16,
        /// The Warning texts, or the reason phrase.
        reason: String,
    },
    /// No final answer to a SIP request before the transaction timeout (RFC 3261 timers B / F).
    #[error("no final answer to SIP {method} before the transaction timeout")]
    SipTimeout {
        /// The request's method.
        method: String,
    },
}

impl Error {
    /// The MBMS-level outcome of a status word shared by every MBMS mode (TS 31.102 §7.3), or
    /// `None` for words whose meaning depends on the mode.
    pub(crate) fn from_mbms_sw(sw: u16) -> Option<Error> {
        Some(match sw {
            0x9862 => Error::MacFailure,
            0x9863 => Error::MukExpired,
            0x9864 => Error::ContextNotSupported,
            0x9865 => Error::KeyFreshness,
            0x9866 => Error::NoMskSpace,
            0x9867 => Error::NoMukSpace,
            0x6982 => Error::PinRequired,
            0x6A80 => Error::MalformedMikey { reason: None },
            0x6A88 => Error::KeyNotFound,
            _ => return None,
        })
    }

    /// True for the outcomes that mean "the message was refused, nothing changed": MAC, freshness,
    /// expiry, unknown keys, malformed input.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Error::MacFailure
                | Error::MukExpired
                | Error::KeyFreshness
                | Error::NoMuk
                | Error::KeyNotFound
                | Error::MalformedMikey { .. }
        )
    }
}

impl From<mikey::Error> for Error {
    fn from(e: mikey::Error) -> Self {
        match e {
            mikey::Error::MacMismatch => Error::MacFailure,
            other => Error::MalformedMikey { reason: Some(other) },
        }
    }
}
