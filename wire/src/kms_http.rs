//! The KMS over HTTP (TS 33.328 Annex A): the Request-URI, the two request types and the body of
//! the MIKEY-TICKET Ticket Request and Ticket Resolve, shared by the IMS UE, the KMS, and two KMSs
//! talking over Zk.
//!
//! ```text
//! UE → KMS  POST /keymanagement?requesttype=ticketrequest   Content-Type: application/mikey
//!           base64(REQUEST_INIT_PSK)
//! KMS → UE  200 application/mikey base64(REQUEST_RESP | error message)
//! UE → KMS  POST /keymanagement?requesttype=ticketresolve   base64(RESOLVE_INIT_PSK)
//! ```
//!
//! The KMS is a NAF (TS 33.220): the UE authenticates with the NAF key of NAF_Id = KMS FQDN ‖
//! [`KMS_UA_PROTOCOL`] ([`kms_naf_id`]).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use gba::{NafId, UaSecurityProtocolId};

use crate::Error;

/// The Request-URI path (TS 33.328 Annex A.2).
pub const KEY_MANAGEMENT_PATH: &str = "/keymanagement";
/// The query parameter naming the request (TS 33.328 Annex A.2).
pub const REQUEST_TYPE_PARAM: &str = "requesttype";
/// The request type of a Ticket Request (TS 33.328 Annex A.2).
pub const REQUEST_TYPE_TICKET_REQUEST: &str = "ticketrequest";
/// The request type of a Ticket Resolve (TS 33.328 Annex A.2), the only one Zk carries.
pub const REQUEST_TYPE_TICKET_RESOLVE: &str = "ticketresolve";
/// The MIME type of the bodies (RFC 3830 §10, TS 33.328 Annex A.2).
pub const MIKEY_CONTENT_TYPE: &str = "application/mikey";
/// The Ua security protocol identifier of the KMS as a NAF (TS 33.220 Annex H.3:
/// (0x01,0x00,0x00,0x00,0x06), "IMS UE to KMS http based message exchanges").
pub const KMS_UA_PROTOCOL: UaSecurityProtocolId = UaSecurityProtocolId::IMS_UE_KMS_HTTP;

/// The NAF_Id of a KMS: its FQDN ‖ [`KMS_UA_PROTOCOL`].
pub fn kms_naf_id(fqdn: &str) -> Result<NafId, gba::Error> {
    NafId::new(fqdn, KMS_UA_PROTOCOL)
}

/// The procedure a request names (`?requesttype=`, TS 33.328 Annex A.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestType {
    /// Ticket Request: REQUEST_INIT_PSK, answered by REQUEST_RESP (RFC 6043 §4.2.1).
    TicketRequest,
    /// Ticket Resolve: RESOLVE_INIT_PSK, answered by RESOLVE_RESP (RFC 6043 §4.2.3).
    TicketResolve,
}

impl RequestType {
    /// The `requesttype` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            RequestType::TicketRequest => REQUEST_TYPE_TICKET_REQUEST,
            RequestType::TicketResolve => REQUEST_TYPE_TICKET_RESOLVE,
        }
    }

    /// The request type the first `requesttype=` parameter of a URI query names; `None` if there
    /// is none or it names neither.
    pub fn from_query(query: &str) -> Option<Self> {
        let value = query.split('&').find_map(|kv| kv.strip_prefix(REQUEST_TYPE_PARAM)?.strip_prefix('='))?;
        [RequestType::TicketRequest, RequestType::TicketResolve].into_iter().find(|t| t.as_str() == value)
    }

    /// The request target: `/keymanagement?requesttype=<type>`.
    pub fn path_and_query(self) -> String {
        format!("{KEY_MANAGEMENT_PATH}?{REQUEST_TYPE_PARAM}={}", self.as_str())
    }
}

/// The body of a request or an answer: base64 of the MIKEY message (TS 33.328 Annex A.2).
pub fn encode_body(message: &[u8]) -> String {
    BASE64.encode(message)
}

/// The MIKEY message of a body; white space in the base64 text is ignored.
pub fn decode_body(body: &[u8]) -> Result<Vec<u8>, Error> {
    let text: Vec<u8> = body.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
    BASE64.decode(&text).map_err(|e| Error::Base64(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_types_from_queries() {
        assert_eq!(RequestType::from_query("requesttype=ticketrequest"), Some(RequestType::TicketRequest));
        assert_eq!(
            RequestType::from_query("a=b&requesttype=ticketresolve"),
            Some(RequestType::TicketResolve)
        );
        // The first `requesttype` counts.
        assert_eq!(
            RequestType::from_query("requesttype=ticketresolve&requesttype=ticketrequest"),
            Some(RequestType::TicketResolve)
        );
        for bad in ["", "requesttype=", "requesttype=ticketupdate", "requesttypes=ticketrequest", "x"] {
            assert_eq!(RequestType::from_query(bad), None, "{bad}");
        }
        assert_eq!(RequestType::TicketResolve.path_and_query(), "/keymanagement?requesttype=ticketresolve");
    }

    #[test]
    fn bodies_are_base64_with_white_space_ignored() {
        assert_eq!(encode_body(&[1, 11, 0]), "AQsA");
        assert_eq!(decode_body(b"AQsA\r\n").unwrap(), [1, 11, 0]);
        assert_eq!(decode_body(b" AQ sA ").unwrap(), [1, 11, 0]);
        assert!(matches!(decode_body(b"%%%%"), Err(Error::Base64(_))));
        assert!(decode_body(b"%%%%").unwrap_err().to_string().starts_with("base64: "));
    }

    #[test]
    fn the_kms_naf_id_ends_with_its_ua_protocol() {
        let naf = kms_naf_id("kms.example.org").unwrap();
        assert_eq!(naf.as_bytes(), b"kms.example.org\x01\x00\x00\x00\x06");
    }
}
