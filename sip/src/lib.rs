//! SIP messages (RFC 3261 §7, §8.2.6, §18.3, §20, §25): parse a datagram into a [`Message`], build one
//! back into bytes, and read the header fields a UA or a proxy needs.
//!
//! * [`Message`] — a request or a response: start line, header fields in order, body. Parsing is
//!   strict and total: every input gives a message or an [`Error`] naming what is wrong, never a
//!   panic, and sizes are bounded ([`MAX_MESSAGE_LEN`], [`MAX_HEADERS`], [`MAX_HEADER_LEN`],
//!   [`MAX_LIST_ITEMS`]). A parsed message has the fields RFC 3261 §8.1.1 makes mandatory for
//!   routing a response (Via, From, To, Call-ID, CSeq) in valid form.
//! * [`header`] — the typed values: [`Via`], [`NameAddr`] (From, To, Contact, P-Asserted-Identity),
//!   [`CSeq`], [`Warning`], comma-separated lists ([`header::split_list`]) and compact forms.
//! * [`uri`] — SIP and SIPS URIs ([`SipUri`]).
//! * [`sdp`] — SDP session descriptions (RFC 8866) of offers and answers; [`sdes`] — the RFC 4568
//!   `a=crypto` and RFC 4567 `a=key-mgmt` attributes and the e2ae indications of TS 33.328.
//!
//! Header names are stored in their canonical spelling (compact forms expanded, RFC 3261 §7.3.3),
//! and `Content-Length` is framing only: a parsed message keeps the body it announced, and
//! [`Message::to_bytes`] writes the length of the body it holds.
#![deny(unsafe_code)]
#![warn(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

/// The fuzz targets' bodies (behind the `fuzz` feature: they assert, so they are no library API).
#[cfg(feature = "fuzz")]
pub mod fuzz;
pub mod header;
pub mod message;
pub mod sdes;
pub mod sdp;
pub mod uri;

pub use header::{CSeq, DEFAULT_PORT, NameAddr, Param, Via, Warning};
pub use message::{Header, Message, Method, StartLine};
pub use uri::SipUri;

/// The protocol version of every start line (RFC 3261 §7.1).
pub const SIP_VERSION: &str = "SIP/2.0";
/// The prefix of branch parameters of RFC 3261 transactions (§8.1.1.7).
pub const BRANCH_MAGIC_COOKIE: &str = "z9hG4bK";
/// Largest message parsed or built: the largest UDP payload over IPv4 (65535 − 8 − 20).
pub const MAX_MESSAGE_LEN: usize = 65_507;
/// Most header lines in one message.
pub const MAX_HEADERS: usize = 128;
/// Longest header line (after unfolding), name included.
pub const MAX_HEADER_LEN: usize = 8 * 1024;
/// Most values in one comma-separated header list, and most Via values in a message.
pub const MAX_LIST_ITEMS: usize = 64;
/// Largest CSeq sequence number (RFC 3261 §8.1.1.5: less than 2**31).
pub const MAX_CSEQ: u32 = (1 << 31) - 1;

/// Why bytes are not a SIP message, or why a message cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// More than [`MAX_MESSAGE_LEN`] bytes.
    #[error("message of {0} bytes, at most {MAX_MESSAGE_LEN} accepted")]
    TooLarge(usize),
    /// Nothing but line ends (a keep-alive, RFC 5626 §3.5.1).
    #[error("empty message")]
    Empty,
    /// No empty line ends the header section.
    #[error("no empty line after the header fields")]
    NoHeaderEnd,
    /// The start line and header fields are not UTF-8.
    #[error("header section is not UTF-8")]
    NotUtf8,
    /// A CR or LF that is not part of a CRLF line end.
    #[error("bare CR or LF in the header section")]
    BareLineEnd,
    /// A control character in the start line or a header value.
    #[error("control character in {0}")]
    Control(&'static str),
    /// A malformed Request-Line or Status-Line.
    #[error("start line: {0}")]
    StartLine(String),
    /// A malformed header line (no colon, bad name, a continuation with nothing to continue).
    #[error("header line: {0}")]
    HeaderLine(String),
    /// More than [`MAX_HEADERS`] header lines.
    #[error("more than {MAX_HEADERS} header fields")]
    TooManyHeaders,
    /// A header line longer than [`MAX_HEADER_LEN`].
    #[error("header field longer than {MAX_HEADER_LEN} bytes")]
    HeaderTooLong,
    /// A comma-separated list with more than [`MAX_LIST_ITEMS`] values.
    #[error("more than {MAX_LIST_ITEMS} values in one {0} list")]
    TooManyValues(String),
    /// A malformed Content-Length, or more than one.
    #[error("Content-Length: {0}")]
    ContentLength(String),
    /// Content-Length says more bytes than the datagram holds (RFC 3261 §18.3: discard).
    #[error("Content-Length {declared} but only {available} bytes of body")]
    BodyShort {
        /// The announced length.
        declared: usize,
        /// The bytes present.
        available: usize,
    },
    /// A mandatory header field is missing (RFC 3261 §8.1.1).
    #[error("no {0} header field")]
    MissingHeader(&'static str),
    /// A header field that may appear once appears more often.
    #[error("more than one {0} header field")]
    RepeatedHeader(&'static str),
    /// A header value that does not parse as its type.
    #[error("{name} header field `{value}`: {reason}")]
    BadHeader {
        /// The field's name.
        name: &'static str,
        /// The value (cut to 64 characters).
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The CSeq method is not the request's method (RFC 3261 §8.1.1.5).
    #[error("CSeq method {cseq} is not the request method {method}")]
    CSeqMethod {
        /// The CSeq method.
        cseq: String,
        /// The request method.
        method: String,
    },
    /// A malformed SIP URI.
    #[error("URI `{uri}`: {reason}")]
    Uri {
        /// The URI (cut to 64 characters).
        uri: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A value that cannot be written (building).
    #[error("cannot write {what}: {reason}")]
    Build {
        /// What was being written.
        what: String,
        /// Why not.
        reason: &'static str,
    },
}

/// At most 64 characters of `s`, for error messages.
pub(crate) fn cut(s: &str) -> String {
    s.chars().take(64).collect()
}
