//! The crate's one error type: why a Digest header (RFC 2617, TS 24.109), an XML body (TS 24.109
//! Annex C, Zn, TS 26.346, TS 26.237 Annex I), a KMS body (TS 33.328 Annex A) or a request line was
//! refused. The text says what was wrong, for the one-line reason of a 4xx answer.

use crate::mbms_key_management::KEY_ID_LEN;

/// Why a header, a body or a request type was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    // Digest headers and the AKA nonce (RFC 7235 §2.1, RFC 2617, RFC 3310)
    /// The header value is no `Digest` challenge or credentials (RFC 7235 §2.1 syntax).
    #[error("malformed Digest header: {0}")]
    Header(String),
    /// A required parameter is absent.
    #[error("Digest parameter `{0}` is missing")]
    MissingParameter(&'static str),
    /// A parameter has a value this side cannot take.
    #[error("Digest parameter `{name}`: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The nonce is no base64 of RAND ‖ AUTN(*) ‖ server data (RFC 3310 §3.2).
    #[error("malformed AKA nonce: {0}")]
    Nonce(String),
    /// A Ub or Zn XML body is malformed or is not the expected document.
    #[error("malformed XML body: {0}")]
    XmlBody(String),
    /// A time is not `YYYY-MM-DDThh:mm:ss` with `Z` or an offset (XML Schema dateTime).
    #[error("malformed time: {0}")]
    Time(String),

    // The KMS bodies (TS 33.328 Annex A.2)
    /// A body is not base64 (the decoder's message).
    #[error("base64: {0}")]
    Base64(String),

    // The documents of TS 26.346 and TS 26.237 Annex I, and the request types
    /// The body is longer than [`MAX_XML_LEN`](crate::mbms_key_management::MAX_XML_LEN).
    #[error("XML body of {len} bytes, at most {max} accepted")]
    TooLarge {
        /// The length seen.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// Not well-formed XML, or a DOCTYPE.
    #[error("malformed XML: {0}")]
    Xml(String),
    /// The root element is not the expected one.
    #[error("root element is <{found}>, expected <{expected}>")]
    Root {
        /// The local name found.
        found: String,
        /// The expected local name.
        expected: &'static str,
    },
    /// An element is in the wrong namespace (or none).
    #[error("<{element}> is in namespace `{found}`, expected `{expected}`")]
    Namespace {
        /// The element's local name.
        element: String,
        /// The namespace found (empty: none).
        found: String,
        /// The expected namespace.
        expected: &'static str,
    },
    /// An element that has no place there.
    #[error("unexpected element <{element}> in <{parent}>")]
    UnexpectedElement {
        /// The element's local name.
        element: String,
        /// Its parent's local name.
        parent: String,
    },
    /// No item at all (a request or status needs at least one).
    #[error("no <{0}> element")]
    NoItems(&'static str),
    /// More items than [`MAX_ITEMS`](crate::mbms_key_management::MAX_ITEMS).
    #[error("more than {max} <{element}> elements")]
    TooManyItems {
        /// The element.
        element: &'static str,
        /// The bound.
        max: usize,
    },
    /// An empty item.
    #[error("empty <{0}>")]
    EmptyItem(&'static str),
    /// A User Service ID that is too long or holds control characters or surrounding blanks.
    #[error("serviceId `{id}`: {reason}")]
    BadServiceId {
        /// The ID (cut to 64 characters).
        id: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// A key ID that is not base64.
    #[error("keyId `{text}` is not base64: {reason}")]
    KeyIdBase64 {
        /// The text (cut to 64 characters).
        text: String,
        /// The decoder's message.
        reason: String,
    },
    /// A key ID of the wrong length.
    #[error("keyId holds {0} octets, expected {KEY_ID_LEN} (Key Domain ID 3 || MSK ID 4)")]
    KeyIdLength(usize),
    /// A status code outside 100..=599 or not a number.
    #[error("status code `{0}` is not an HTTP status code")]
    StatusCode(String),
    /// The query does not name a known request type.
    #[error("request type: {0}")]
    RequestType(String),
    /// An element whose text is not a valid value (B-TID, IP address, MUK, lifetime, FQDN).
    #[error("<{element}>: {reason}")]
    BadValue {
        /// The element's local name.
        element: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// A text cut to 64 characters, for an error message.
pub(crate) fn cut(s: &str) -> String {
    s.chars().take(64).collect()
}
