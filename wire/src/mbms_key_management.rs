//! MBMS key management over HTTP (TS 33.246 §6.2–§6.3.2, TS 26.346 Annex C, TS 24.109 §5): the
//! request types, MIME types, XML bodies and Digest conventions that the BM-SC and the UE share.
//! The SIP-based variant of TS 26.237, where the SCF registers the UE, is [`crate::sip_based_mbms`];
//! the Digest headers themselves are [`crate::digest`].
//!
//! ```text
//! UE → BM-SC  POST /keymanagement?requesttype=register        application/mbms-register+xml
//!             <mbmsRegister xmlns="urn:3GPP:metadata:2005:MBMS:mbmsRegister">
//!               <serviceId>…</serviceId>…</mbmsRegister>
//! BM-SC → UE  401  WWW-Authenticate: Digest realm="3GPP-bootstrapping@<fqdn>", …
//!                  WWW-Authenticate: Digest realm="3GPP-bootstrapping-uicc@<fqdn>", …
//! UE → BM-SC  the same request with Authorization: Digest username="<B-TID>", … (password base64(MRK))
//! BM-SC → UE  200  Authentication-Info: rspauth=…   application/mbms-register-response+xml
//!             <mbmsRegisterResponse xmlns="urn:3GPP:metadata:2005:MBMS:mbmsRegisterResponse">
//!               <status code="200"><serviceId>…</serviceId></status>…</mbmsRegisterResponse>
//! ```
//!
//! `deregister` has the same shape (root `mbmsDeregister`, same response); `msk-request` carries
//! `keyId` elements, base64 of Key Domain ID (3 octets) ‖ MSK ID (4 octets), and is answered by
//! `mbmsMskResponse` with `status` elements holding `keyId`s.
//!
//! Every value the TS 33.246 / TS 26.346 text available to this project does not confirm is a
//! named constant here, marked UNCONFIRMED with the clause it should come from, so that one line
//! corrects it for both peers.
//!
//! Parsing is total: any input gives a value or an [`Error`] with a reason, never a panic. The
//! root element's local name and namespace are checked (prefixed forms are accepted), as is every
//! child's; sizes are bounded ([`MAX_XML_LEN`], [`MAX_ITEMS`], [`MAX_SERVICE_ID_LEN`]).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use mikey::mbms::profile::{KEY_DOMAIN_ID_LEN, MSK_ID_LEN};
use mikey::mbms::{KeyDomainId, MskId};

use crate::Error;
use crate::error::cut;
use crate::xml::to_document;

// ------------------------------------------------------------------------------------------------
// Request line and HTTP headers

/// Path of the key-management requests: the Request-URI form `/keymanagement?requesttype=<type>`
/// that TS 26.237 §10.4.2.1 uses towards the BM-SC (`sip-based-register`, …) and TS 33.328 Annex A
/// towards the KMS (`ticketrequest`), both in the 3GPP change requests of `shared/seeds`.
pub const KEY_MANAGEMENT_PATH: &str = "/keymanagement";
/// Query parameter naming the procedure: the URI parameter `requesttype` of TS 26.237 §10.4.2.1
/// and TS 33.328 Annex A (see [`KEY_MANAGEMENT_PATH`]).
pub const REQUEST_TYPE_PARAM: &str = "requesttype";
/// `requesttype` of the registration (TS 33.246 §6.3.2.1A). UNCONFIRMED: TS 26.237 §10.4.2.1 names
/// the SCF's variant `sip-based-register`, which suggests `register`; the TS 33.246 text was not
/// read (tech-invite and itecspec hold its table of contents only).
pub const REQUEST_TYPE_REGISTER: &str = "register";
/// `requesttype` of the deregistration (TS 33.246 §6.3.2.1B). UNCONFIRMED, as
/// [`REQUEST_TYPE_REGISTER`] (the SCF's variant is `sip-based-deregister`).
pub const REQUEST_TYPE_DEREGISTER: &str = "deregister";
/// `requesttype` of the basic MSK request (TS 33.246 §6.3.2.2.1). UNCONFIRMED, as
/// [`REQUEST_TYPE_REGISTER`] (the SCF's variant is `sip-based-msk-request`).
pub const REQUEST_TYPE_MSK_REQUEST: &str = "msk-request";

/// Content-Type of a registration: IANA media type `application/mbms-register+xml`, published by
/// TS 26.346 (IANA media-types registry, application/mbms-register+xml, registered 2007-04-27).
pub const CONTENT_TYPE_REGISTER: &str = "application/mbms-register+xml";
/// Content-Type of a deregistration: IANA media type `application/mbms-deregister+xml`, published
/// by TS 26.346 (IANA media-types registry, application/mbms-deregister+xml).
pub const CONTENT_TYPE_DEREGISTER: &str = "application/mbms-deregister+xml";
/// Content-Type of the answer to a registration or deregistration: `application/mbms-register-
/// response+xml`, named by TS 26.237 §10.4.2.1 for the BM-SC's answer ("the same XML document
/// that is used for MBMS (De-)registration in TS 33.246 … specified in TS 26.346"; change request
/// in `shared/seeds`). IANA's registry does not list this subtype (it lists register, deregister,
/// msk and msk-response), so an implementation should accept it without a registry entry.
pub const CONTENT_TYPE_REGISTER_RESPONSE: &str = "application/mbms-register-response+xml";
/// Content-Type of a basic MSK request: IANA media type `application/mbms-msk+xml`, published by
/// TS 26.346, "to identify one or more MSK that the requesting entity desires to receive" (IANA
/// media-types registry, application/mbms-msk+xml). Corrected from `mbms-msk-request+xml`, which
/// no registry knows.
pub const CONTENT_TYPE_MSK_REQUEST: &str = "application/mbms-msk+xml";
/// Content-Type of the answer to an MSK request: IANA media type
/// `application/mbms-msk-response+xml` (TS 26.346 Annex C.12; IANA media-types registry).
pub const CONTENT_TYPE_MSK_RESPONSE: &str = "application/mbms-msk-response+xml";
/// Content-Type of the one-line reason of a 4xx answer to bad input.
pub const CONTENT_TYPE_REASON: &str = "text/plain; charset=utf-8";
/// Header carrying the one-line reason of a 4xx answer to bad input (our own; never sent with the
/// `401` of an authentication failure, so a UE knows to re-bootstrap only then).
pub const REASON_HEADER: &str = "X-Keysim-Reason";

// ------------------------------------------------------------------------------------------------
// HTTP Digest (TS 24.109 §5, TS 33.246 §6.3.2.1, RFC 2617)

/// Realm prefix of the ME-based (GBA_ME) challenge: `3GPP-bootstrapping@<BM-SC FQDN>`
/// (TS 24.109 §5.2.1). UNCONFIRMED for MBMS (TS 33.246 §6.3.2.1).
pub const REALM_PREFIX_ME: &str = "3GPP-bootstrapping@";
/// Realm prefix of the UICC-based (GBA_U) challenge: `3GPP-bootstrapping-uicc@<BM-SC FQDN>`
/// (TS 24.109 §5.2.1). UNCONFIRMED for MBMS (TS 33.246 §6.3.2.1).
pub const REALM_PREFIX_UICC: &str = "3GPP-bootstrapping-uicc@";
/// The Digest password is base64(MRK) (TS 33.222 §5.3 / TS 24.109 §5.2.1 for Ks_(ext)_NAF);
/// TS 33.246 §6.3.2.1 says only "MRK is the password". UNCONFIRMED. When false,
/// [`digest_password`] gives lowercase hex instead.
pub const PASSWORD_IS_BASE64: bool = true;
/// Digest algorithm of the BM-SC's challenge (RFC 2617 §3.2.1).
pub const DIGEST_ALGORITHM: &str = "MD5";
/// Digest qop of the BM-SC's challenge (RFC 2617 §3.2.1; TS 24.109 §5 allows `auth`).
pub const DIGEST_QOP: &str = "auth";

/// The realm of the GBA_ME challenge of `bmsc_fqdn`.
pub fn realm_me(bmsc_fqdn: &str) -> String {
    format!("{REALM_PREFIX_ME}{bmsc_fqdn}")
}

/// The realm of the GBA_U challenge of `bmsc_fqdn`.
pub fn realm_uicc(bmsc_fqdn: &str) -> String {
    format!("{REALM_PREFIX_UICC}{bmsc_fqdn}")
}

/// The HTTP Digest password made of an MRK ([`PASSWORD_IS_BASE64`]). It is key material: drop it
/// as soon as the digest is computed.
pub fn digest_password(mrk: &[u8; 32]) -> String {
    if PASSWORD_IS_BASE64 { BASE64.encode(mrk) } else { mrk.iter().map(|b| format!("{b:02x}")).collect() }
}

// ------------------------------------------------------------------------------------------------
// UDP

/// The UE's UDP port for MIKEY messages from the BM-SC: 2269, the IANA MIKEY port (RFC 3830 §7;
/// TS 33.246 §6.3.2.2 pushes MSK messages point-to-point). BM-SC configuration; this is the
/// default.
pub const DEFAULT_UE_MIKEY_PORT: u16 = 2269;

/// The UDP port of the MBMS bearer's SRTP media a UE listens on when nothing else is configured:
/// 5004, the IANA port of RTP media (RFC 3551 §8, "avt-profile-1"). A real UE learns it from the
/// session description of the User Service Description (TS 26.346 §5.2); keysim has no service
/// announcement, so this is configuration with this default.
pub const DEFAULT_BEARER_MEDIA_PORT: u16 = 5004;

/// The FQDN of keysim's BM-SC when nothing else names it: its NAF_Id (with the MBMS Ua protocol
/// identifier), the IDi of its MIKEY messages, its Digest realms. The public-service subdomain of
/// the test PLMN 001/01 (TS 23.003 §15.5 and §28: `<name>.mnc<MNC>.mcc<MCC>.pub.3gppnetwork.org`).
pub const DEFAULT_BMSC_FQDN: &str = "bmsc.mnc001.mcc001.pub.3gppnetwork.org";

// ------------------------------------------------------------------------------------------------
// XML: namespaces, element names, status codes, key IDs

/// Namespace of `mbmsRegister` (TS 26.346 Annex C). UNCONFIRMED.
pub const NS_REGISTER: &str = "urn:3GPP:metadata:2005:MBMS:mbmsRegister";
/// Namespace of `mbmsDeregister` (TS 26.346 Annex C). UNCONFIRMED.
pub const NS_DEREGISTER: &str = "urn:3GPP:metadata:2005:MBMS:mbmsDeregister";
/// Namespace of `mbmsRegisterResponse` (TS 26.346 Annex C). UNCONFIRMED.
pub const NS_REGISTER_RESPONSE: &str = "urn:3GPP:metadata:2005:MBMS:mbmsRegisterResponse";
/// Namespace of `mbmsMskRequest` (TS 26.346 Annex C). UNCONFIRMED.
pub const NS_MSK_REQUEST: &str = "urn:3GPP:metadata:2005:MBMS:mskRequest";
/// Namespace of the MSK request answer: the XML scheme `urn:3GPP:metadata:2005:MBMS:mskResponse`
/// that TS 26.346 Annex C.12 names for `application/mbms-msk-response+xml` (schema in TS 26.346
/// §11.8).
pub const NS_MSK_RESPONSE: &str = "urn:3GPP:metadata:2005:MBMS:mskResponse";

/// Root element of a registration (TS 26.346 Annex C). UNCONFIRMED.
pub const ELEMENT_REGISTER: &str = "mbmsRegister";
/// Root element of a deregistration (TS 26.346 Annex C). UNCONFIRMED.
pub const ELEMENT_DEREGISTER: &str = "mbmsDeregister";
/// Root element of the (de)registration answer (TS 26.346 Annex C). UNCONFIRMED.
pub const ELEMENT_REGISTER_RESPONSE: &str = "mbmsRegisterResponse";
/// Root element of a basic MSK request (TS 26.346 Annex C). UNCONFIRMED.
pub const ELEMENT_MSK_REQUEST: &str = "mbmsMskRequest";
/// Root element of the MSK request answer (TS 26.346 Annex C). UNCONFIRMED.
pub const ELEMENT_MSK_RESPONSE: &str = "mbmsMskResponse";
/// Element holding one User Service ID (TS 26.346 Annex C). UNCONFIRMED.
pub const ELEMENT_SERVICE_ID: &str = "serviceId";
/// Element holding one key ID, base64 of Key Domain ID ‖ MSK ID (TS 26.346 Annex C). UNCONFIRMED.
pub const ELEMENT_KEY_ID: &str = "keyId";
/// Element grouping the items of one outcome in an answer (TS 26.346 Annex C). UNCONFIRMED.
pub const ELEMENT_STATUS: &str = "status";
/// Attribute of [`ELEMENT_STATUS`] holding the status code (TS 26.346 Annex C). UNCONFIRMED.
pub const ATTRIBUTE_CODE: &str = "code";

/// Per-item status: success (TS 26.346 Annex C status codes follow HTTP). UNCONFIRMED.
pub const STATUS_OK: u16 = 200;
/// Per-item status: not registered for that service / Key Group (MSK request). UNCONFIRMED.
pub const STATUS_NOT_REGISTERED: u16 = 403;
/// Per-item status: unknown User Service ID or unknown key. UNCONFIRMED.
pub const STATUS_UNKNOWN: u16 = 404;

/// The low two octets of an MSK ID that ask, in a basic MSK request, for "the current MSK of
/// that Key Group" (TS 33.246 §6.3.2.2.2). UNCONFIRMED.
pub const MSK_ID_ANY_IN_GROUP_LOW: u16 = 0x0000;
/// Octets of a key ID: Key Domain ID ‖ MSK ID (TS 33.246 §6.3.2.2.2, TS 31.102 §4.2.80).
pub const KEY_ID_LEN: usize = KEY_DOMAIN_ID_LEN + MSK_ID_LEN;

/// Largest XML body parsed (bytes).
pub const MAX_XML_LEN: usize = 16 * 1024;
/// Most items in one body: service IDs or key IDs in total, and status elements.
pub const MAX_ITEMS: usize = 64;
/// Longest User Service ID (bytes).
pub const MAX_SERVICE_ID_LEN: usize = 256;

// ------------------------------------------------------------------------------------------------
// Request type

/// The procedure named by `?requesttype=` (TS 33.246 §6.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestType {
    /// MBMS registration (TS 33.246 §6.3.2.1).
    Register,
    /// MBMS deregistration (TS 33.246 §6.3.2.2).
    Deregister,
    /// Basic MSK request (TS 33.246 §6.3.2.2.2).
    MskRequest,
}

impl RequestType {
    /// Every request type.
    pub const ALL: [RequestType; 3] =
        [RequestType::Register, RequestType::Deregister, RequestType::MskRequest];

    /// The `requesttype` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            RequestType::Register => REQUEST_TYPE_REGISTER,
            RequestType::Deregister => REQUEST_TYPE_DEREGISTER,
            RequestType::MskRequest => REQUEST_TYPE_MSK_REQUEST,
        }
    }

    /// Reads the request type from a URI query (`requesttype=register`, other parameters
    /// ignored). Missing, repeated or unknown → [`Error::RequestType`].
    pub fn from_query(query: &str) -> Result<Self, Error> {
        let mut found: Option<&str> = None;
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if name == REQUEST_TYPE_PARAM {
                if found.is_some() {
                    return Err(Error::RequestType(format!("`{REQUEST_TYPE_PARAM}` given twice")));
                }
                found = Some(value);
            }
        }
        let value =
            found.ok_or_else(|| Error::RequestType(format!("no `{REQUEST_TYPE_PARAM}` in the query")))?;
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == value)
            .ok_or_else(|| Error::RequestType(format!("unknown `{REQUEST_TYPE_PARAM}={}`", cut(value))))
    }

    /// The request target: `/keymanagement?requesttype=<type>`.
    pub fn path_and_query(self) -> String {
        format!("{KEY_MANAGEMENT_PATH}?{REQUEST_TYPE_PARAM}={}", self.as_str())
    }

    /// Content-Type of the request body.
    pub const fn request_content_type(self) -> &'static str {
        match self {
            RequestType::Register => CONTENT_TYPE_REGISTER,
            RequestType::Deregister => CONTENT_TYPE_DEREGISTER,
            RequestType::MskRequest => CONTENT_TYPE_MSK_REQUEST,
        }
    }

    /// Content-Type of the 200 answer's body.
    pub const fn response_content_type(self) -> &'static str {
        match self {
            RequestType::Register | RequestType::Deregister => CONTENT_TYPE_REGISTER_RESPONSE,
            RequestType::MskRequest => CONTENT_TYPE_MSK_RESPONSE,
        }
    }
}

impl fmt::Display for RequestType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// True if a Content-Type header value names `expected` (parameters such as `charset` ignored,
/// media type compared case-insensitively, RFC 9110 §8.3.1).
pub fn content_type_matches(header: &str, expected: &str) -> bool {
    header.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case(expected))
}

// ------------------------------------------------------------------------------------------------
// Key IDs

/// A key ID of a basic MSK request / answer: Key Domain ID ‖ MSK ID (TS 33.246 §6.3.2.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MskKeyId {
    /// Key Domain ID (MCC ‖ MNC).
    pub key_domain_id: KeyDomainId,
    /// MSK ID; low two octets [`MSK_ID_ANY_IN_GROUP_LOW`] = "the current MSK of the Key Group".
    pub msk_id: MskId,
}

impl MskKeyId {
    /// The key ID asking for the current MSK of `key_group`.
    pub const fn any_in_group(key_domain_id: KeyDomainId, key_group: u16) -> Self {
        MskKeyId { key_domain_id, msk_id: MskId(((key_group as u32) << 16) | MSK_ID_ANY_IN_GROUP_LOW as u32) }
    }

    /// True if this asks for the current MSK of its Key Group.
    pub const fn is_any_in_group(&self) -> bool {
        (self.msk_id.0 & 0xFFFF) as u16 == MSK_ID_ANY_IN_GROUP_LOW
    }

    /// The 7 octets.
    pub fn to_bytes(&self) -> [u8; KEY_ID_LEN] {
        let mut out = [0u8; KEY_ID_LEN];
        let (kd, msk) = out.split_at_mut(KEY_DOMAIN_ID_LEN);
        kd.copy_from_slice(&self.key_domain_id.0);
        msk.copy_from_slice(&self.msk_id.to_bytes());
        out
    }

    /// From exactly [`KEY_ID_LEN`] octets.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let raw: &[u8; KEY_ID_LEN] = bytes.try_into().map_err(|_| Error::KeyIdLength(bytes.len()))?;
        let (kd, msk) =
            raw.split_first_chunk::<KEY_DOMAIN_ID_LEN>().ok_or(Error::KeyIdLength(bytes.len()))?;
        let msk: [u8; MSK_ID_LEN] = msk.try_into().map_err(|_| Error::KeyIdLength(bytes.len()))?;
        Ok(MskKeyId { key_domain_id: KeyDomainId(*kd), msk_id: MskId(u32::from_be_bytes(msk)) })
    }

    /// The text of a `keyId` element: base64 of the 7 octets.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.to_bytes())
    }

    /// From the text of a `keyId` element (surrounding blanks ignored).
    pub fn from_base64(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::EmptyItem(ELEMENT_KEY_ID));
        }
        let raw =
            BASE64.decode(text).map_err(|e| Error::KeyIdBase64 { text: cut(text), reason: e.to_string() })?;
        Self::from_bytes(&raw)
    }
}

// ------------------------------------------------------------------------------------------------
// The documents

/// A registration: the User Service IDs to register to (TS 33.246 §6.3.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterRequest {
    /// User Service IDs, 1..=[`MAX_ITEMS`].
    pub service_ids: Vec<String>,
}

/// A deregistration: the User Service IDs to leave (TS 33.246 §6.3.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeregisterRequest {
    /// User Service IDs, 1..=[`MAX_ITEMS`].
    pub service_ids: Vec<String>,
}

/// The outcome for a group of User Service IDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceStatus {
    /// Status code ([`STATUS_OK`], [`STATUS_UNKNOWN`], …).
    pub code: u16,
    /// The services it applies to, at least one.
    pub service_ids: Vec<String>,
}

/// The answer to a registration or deregistration (TS 33.246 §6.3.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterResponse {
    /// One entry per outcome, at least one.
    pub statuses: Vec<ServiceStatus>,
}

/// A basic MSK request (TS 33.246 §6.3.2.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MskRequest {
    /// The keys asked for, 1..=[`MAX_ITEMS`].
    pub key_ids: Vec<MskKeyId>,
}

/// The outcome for a group of key IDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    /// Status code ([`STATUS_OK`], [`STATUS_NOT_REGISTERED`], [`STATUS_UNKNOWN`]).
    pub code: u16,
    /// The keys it applies to, at least one.
    pub key_ids: Vec<MskKeyId>,
}

/// The answer to a basic MSK request (TS 33.246 §6.3.2.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MskResponse {
    /// One entry per outcome, at least one.
    pub statuses: Vec<KeyStatus>,
}

// The serde shapes. Element names are matched by local name (prefixes are dropped by the
// deserializer); the namespaces are checked by `check_structure` before.

#[derive(Serialize, Deserialize)]
struct ServiceIdsXml {
    #[serde(rename = "@xmlns", default, skip_serializing_if = "Option::is_none")]
    xmlns: Option<String>,
    #[serde(rename = "serviceId", default)]
    service_id: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct ServiceStatusXml {
    #[serde(rename = "@code")]
    code: String,
    #[serde(rename = "serviceId", default)]
    service_id: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct RegisterResponseXml {
    #[serde(rename = "@xmlns", default, skip_serializing_if = "Option::is_none")]
    xmlns: Option<String>,
    #[serde(rename = "status", default)]
    status: Vec<ServiceStatusXml>,
}

#[derive(Serialize, Deserialize)]
struct KeyIdsXml {
    #[serde(rename = "@xmlns", default, skip_serializing_if = "Option::is_none")]
    xmlns: Option<String>,
    #[serde(rename = "keyId", default)]
    key_id: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct KeyStatusXml {
    #[serde(rename = "@code")]
    code: String,
    #[serde(rename = "keyId", default)]
    key_id: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct MskResponseXml {
    #[serde(rename = "@xmlns", default, skip_serializing_if = "Option::is_none")]
    xmlns: Option<String>,
    #[serde(rename = "status", default)]
    status: Vec<KeyStatusXml>,
}

/// The shape of a document: its root, its namespace, and what may sit below.
struct Shape {
    root: &'static str,
    namespace: &'static str,
    /// The item element (`serviceId` or `keyId`).
    item: &'static str,
    /// Whether items sit in `status` elements.
    in_status: bool,
}

/// Walks the document once: size bound, well-formedness, no DOCTYPE, the root's and every
/// element's local name and namespace, nesting, item counts.
fn check_structure(xml: &str, shape: &Shape) -> Result<(), Error> {
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;

    if xml.len() > MAX_XML_LEN {
        return Err(Error::TooLarge { len: xml.len(), max: MAX_XML_LEN });
    }
    let mut reader = quick_xml::NsReader::from_str(xml);
    reader.config_mut().check_end_names = true;
    // Local names of the open elements.
    let mut stack: Vec<String> = Vec::new();
    let mut seen_root = false;
    let (mut items, mut statuses) = (0usize, 0usize);
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|e| Error::Xml(e.to_string()))?;
        let (start, empty) = match &event {
            Event::Start(s) => (s, false),
            Event::Empty(s) => (s, true),
            Event::End(_) => {
                stack.pop();
                continue;
            }
            Event::DocType(_) => return Err(Error::Xml("DOCTYPE is not accepted".into())),
            Event::Eof => break,
            Event::Text(t) => {
                if stack.is_empty() && !t.xml10_content().trim().is_empty() {
                    return Err(Error::Xml("text outside the root element".into()));
                }
                continue;
            }
            _ => continue,
        };
        let name = start.local_name().as_ref().to_owned();
        let found_ns = match ns {
            ResolveResult::Bound(n) => n.as_ref().to_owned(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(p) => {
                return Err(Error::Xml(format!("undeclared namespace prefix `{}`", p)));
            }
        };
        match stack.len() {
            0 => {
                if seen_root {
                    return Err(Error::Xml("more than one root element".into()));
                }
                seen_root = true;
                if name != shape.root {
                    return Err(Error::Root { found: name, expected: shape.root });
                }
            }
            1 if shape.in_status && name == ELEMENT_STATUS => {
                statuses += 1;
                if statuses > MAX_ITEMS {
                    return Err(Error::TooManyItems { element: ELEMENT_STATUS, max: MAX_ITEMS });
                }
            }
            depth if name == shape.item && depth == if shape.in_status { 2 } else { 1 } => {
                items += 1;
                if items > MAX_ITEMS {
                    return Err(Error::TooManyItems { element: shape.item, max: MAX_ITEMS });
                }
            }
            _ => {
                let parent = stack.last().cloned().unwrap_or_default();
                return Err(Error::UnexpectedElement { element: name, parent });
            }
        }
        if found_ns != shape.namespace {
            return Err(Error::Namespace { element: name, found: found_ns, expected: shape.namespace });
        }
        if !empty {
            stack.push(name);
        }
    }
    if !seen_root {
        return Err(Error::Xml("no root element".into()));
    }
    if !stack.is_empty() {
        return Err(Error::Xml("document ends inside an element".into()));
    }
    Ok(())
}

fn deserialize<T: for<'de> Deserialize<'de>>(xml: &str, shape: &Shape) -> Result<T, Error> {
    check_structure(xml, shape)?;
    quick_xml::de::from_str(xml).map_err(|e| Error::Xml(e.to_string()))
}

/// Checks a User Service ID: 1..=[`MAX_SERVICE_ID_LEN`] bytes, no control characters, no blanks
/// at either end.
pub fn check_service_id(id: &str) -> Result<(), Error> {
    let bad = |reason| Error::BadServiceId { id: cut(id), reason };
    if id.trim().is_empty() {
        return Err(Error::EmptyItem(ELEMENT_SERVICE_ID));
    }
    if id.len() > MAX_SERVICE_ID_LEN {
        return Err(bad("longer than 256 bytes"));
    }
    if id.chars().any(char::is_control) {
        return Err(bad("holds control characters"));
    }
    if id.starts_with(char::is_whitespace) || id.ends_with(char::is_whitespace) {
        return Err(bad("starts or ends with a blank"));
    }
    Ok(())
}

fn service_ids(raw: Vec<String>) -> Result<Vec<String>, Error> {
    if raw.is_empty() {
        return Err(Error::NoItems(ELEMENT_SERVICE_ID));
    }
    for id in &raw {
        check_service_id(id)?;
    }
    Ok(raw)
}

fn key_ids(raw: &[String]) -> Result<Vec<MskKeyId>, Error> {
    if raw.is_empty() {
        return Err(Error::NoItems(ELEMENT_KEY_ID));
    }
    raw.iter().map(|t| MskKeyId::from_base64(t)).collect()
}

fn status_code(text: &str) -> Result<u16, Error> {
    text.trim()
        .parse::<u16>()
        .ok()
        .filter(|c| (100..=599).contains(c))
        .ok_or_else(|| Error::StatusCode(cut(text)))
}

const SHAPE_REGISTER: Shape =
    Shape { root: ELEMENT_REGISTER, namespace: NS_REGISTER, item: ELEMENT_SERVICE_ID, in_status: false };
const SHAPE_DEREGISTER: Shape =
    Shape { root: ELEMENT_DEREGISTER, namespace: NS_DEREGISTER, item: ELEMENT_SERVICE_ID, in_status: false };
const SHAPE_REGISTER_RESPONSE: Shape = Shape {
    root: ELEMENT_REGISTER_RESPONSE,
    namespace: NS_REGISTER_RESPONSE,
    item: ELEMENT_SERVICE_ID,
    in_status: true,
};
const SHAPE_MSK_REQUEST: Shape =
    Shape { root: ELEMENT_MSK_REQUEST, namespace: NS_MSK_REQUEST, item: ELEMENT_KEY_ID, in_status: false };
const SHAPE_MSK_RESPONSE: Shape =
    Shape { root: ELEMENT_MSK_RESPONSE, namespace: NS_MSK_RESPONSE, item: ELEMENT_KEY_ID, in_status: true };

impl RegisterRequest {
    /// The XML document.
    pub fn to_xml(&self) -> String {
        to_document(
            Some(ELEMENT_REGISTER),
            &ServiceIdsXml { xmlns: Some(NS_REGISTER.into()), service_id: self.service_ids.clone() },
        )
    }

    /// Parses the XML document.
    pub fn from_xml(xml: &str) -> Result<Self, Error> {
        let x: ServiceIdsXml = deserialize(xml, &SHAPE_REGISTER)?;
        Ok(RegisterRequest { service_ids: service_ids(x.service_id)? })
    }
}

impl DeregisterRequest {
    /// The XML document.
    pub fn to_xml(&self) -> String {
        to_document(
            Some(ELEMENT_DEREGISTER),
            &ServiceIdsXml { xmlns: Some(NS_DEREGISTER.into()), service_id: self.service_ids.clone() },
        )
    }

    /// Parses the XML document.
    pub fn from_xml(xml: &str) -> Result<Self, Error> {
        let x: ServiceIdsXml = deserialize(xml, &SHAPE_DEREGISTER)?;
        Ok(DeregisterRequest { service_ids: service_ids(x.service_id)? })
    }
}

impl RegisterResponse {
    /// The XML document.
    pub fn to_xml(&self) -> String {
        let status = self
            .statuses
            .iter()
            .map(|s| ServiceStatusXml { code: s.code.to_string(), service_id: s.service_ids.clone() })
            .collect();
        to_document(
            Some(ELEMENT_REGISTER_RESPONSE),
            &RegisterResponseXml { xmlns: Some(NS_REGISTER_RESPONSE.into()), status },
        )
    }

    /// Parses the XML document.
    pub fn from_xml(xml: &str) -> Result<Self, Error> {
        let x: RegisterResponseXml = deserialize(xml, &SHAPE_REGISTER_RESPONSE)?;
        if x.status.is_empty() {
            return Err(Error::NoItems(ELEMENT_STATUS));
        }
        let statuses = x
            .status
            .into_iter()
            .map(|s| {
                Ok(ServiceStatus { code: status_code(&s.code)?, service_ids: service_ids(s.service_id)? })
            })
            .collect::<Result<_, Error>>()?;
        Ok(RegisterResponse { statuses })
    }

    /// The code given to `service_id`, if it is listed.
    pub fn code_of(&self, service_id: &str) -> Option<u16> {
        self.statuses.iter().find(|s| s.service_ids.iter().any(|i| i == service_id)).map(|s| s.code)
    }
}

impl MskRequest {
    /// The XML document.
    pub fn to_xml(&self) -> String {
        to_document(
            Some(ELEMENT_MSK_REQUEST),
            &KeyIdsXml {
                xmlns: Some(NS_MSK_REQUEST.into()),
                key_id: self.key_ids.iter().map(MskKeyId::to_base64).collect(),
            },
        )
    }

    /// Parses the XML document.
    pub fn from_xml(xml: &str) -> Result<Self, Error> {
        let x: KeyIdsXml = deserialize(xml, &SHAPE_MSK_REQUEST)?;
        Ok(MskRequest { key_ids: key_ids(&x.key_id)? })
    }
}

impl MskResponse {
    /// The XML document.
    pub fn to_xml(&self) -> String {
        let status = self
            .statuses
            .iter()
            .map(|s| KeyStatusXml {
                code: s.code.to_string(),
                key_id: s.key_ids.iter().map(MskKeyId::to_base64).collect(),
            })
            .collect();
        to_document(
            Some(ELEMENT_MSK_RESPONSE),
            &MskResponseXml { xmlns: Some(NS_MSK_RESPONSE.into()), status },
        )
    }

    /// Parses the XML document.
    pub fn from_xml(xml: &str) -> Result<Self, Error> {
        let x: MskResponseXml = deserialize(xml, &SHAPE_MSK_RESPONSE)?;
        if x.status.is_empty() {
            return Err(Error::NoItems(ELEMENT_STATUS));
        }
        let statuses = x
            .status
            .into_iter()
            .map(|s| Ok(KeyStatus { code: status_code(&s.code)?, key_ids: key_ids(&s.key_id)? }))
            .collect::<Result<_, Error>>()?;
        Ok(MskResponse { statuses })
    }

    /// The code given to `key_id`, if it is listed.
    pub fn code_of(&self, key_id: &MskKeyId) -> Option<u16> {
        self.statuses.iter().find(|s| s.key_ids.contains(key_id)).map(|s| s.code)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn kid(kd: [u8; 3], msk: u32) -> MskKeyId {
        MskKeyId { key_domain_id: KeyDomainId(kd), msk_id: MskId(msk) }
    }

    #[test]
    fn request_types() {
        assert_eq!(RequestType::from_query("requesttype=register"), Ok(RequestType::Register));
        assert_eq!(RequestType::from_query("x=1&requesttype=msk-request"), Ok(RequestType::MskRequest));
        assert_eq!(RequestType::from_query("requesttype=deregister&y"), Ok(RequestType::Deregister));
        for bad in
            ["", "requesttype=", "requesttype=Register", "requesttype=register&requesttype=register", "a=b"]
        {
            assert!(matches!(RequestType::from_query(bad), Err(Error::RequestType(_))), "{bad}");
        }
        for t in RequestType::ALL {
            let pq = t.path_and_query();
            let (path, query) = pq.split_once('?').unwrap();
            assert_eq!(path, KEY_MANAGEMENT_PATH);
            assert_eq!(RequestType::from_query(query), Ok(t));
        }
        assert_eq!(RequestType::MskRequest.path_and_query(), "/keymanagement?requesttype=msk-request");
        assert!(content_type_matches("Application/MBMS-Register+XML; charset=utf-8", CONTENT_TYPE_REGISTER));
        assert!(!content_type_matches("application/xml", CONTENT_TYPE_REGISTER));
    }

    #[test]
    fn realms_and_password() {
        assert_eq!(realm_me("bmsc.example.org"), "3GPP-bootstrapping@bmsc.example.org");
        assert_eq!(realm_uicc("bmsc.example.org"), "3GPP-bootstrapping-uicc@bmsc.example.org");
        // RFC 4648 §10 test vectors extended: 32 zero octets is 43 'A's and one '='.
        assert_eq!(digest_password(&[0; 32]), format!("{}=", "A".repeat(43)));
        assert_eq!(digest_password(&[0xff; 32]), format!("{}8=", "/".repeat(42)));
    }

    #[test]
    fn key_ids_encode() {
        let k = kid([0x00, 0xF1, 0x10], 0x0001_0002);
        assert_eq!(k.to_bytes(), [0x00, 0xF1, 0x10, 0x00, 0x01, 0x00, 0x02]);
        // base64 of 00 F1 10 00 01 00 02 by RFC 4648 §4 (24-bit groups): APEQ AAEA Ag==.
        assert_eq!(k.to_base64(), "APEQAAEAAg==");
        assert_eq!(MskKeyId::from_base64(" APEQAAEAAg==\n"), Ok(k));
        let any = MskKeyId::any_in_group(KeyDomainId([0, 0xF1, 0x10]), 7);
        assert!(any.is_any_in_group());
        assert_eq!(any.msk_id, MskId(0x0007_0000));
        assert!(!k.is_any_in_group());
        assert_eq!(MskKeyId::from_base64("AAAA"), Err(Error::KeyIdLength(3)));
        assert!(matches!(MskKeyId::from_base64("!!"), Err(Error::KeyIdBase64 { .. })));
        assert_eq!(MskKeyId::from_base64("  "), Err(Error::EmptyItem(ELEMENT_KEY_ID)));
    }

    #[test]
    fn documents_look_as_the_contract_says() {
        let r = RegisterRequest { service_ids: vec!["urn:svc:a".into(), "b&<c>".into()] };
        let xml = r.to_xml();
        assert!(xml.contains("<mbmsRegister xmlns=\"urn:3GPP:metadata:2005:MBMS:mbmsRegister\">"), "{xml}");
        assert!(xml.contains("<serviceId>urn:svc:a</serviceId>"), "{xml}");
        // The serde field names are the constants.
        assert!(xml.contains(&format!("<{ELEMENT_SERVICE_ID}>")), "{xml}");
        assert!(xml.contains("<serviceId>b&amp;&lt;c&gt;</serviceId>"), "{xml}");
        assert_eq!(RegisterRequest::from_xml(&xml), Ok(r));
        let resp = RegisterResponse {
            statuses: vec![
                ServiceStatus { code: 200, service_ids: vec!["a".into()] },
                ServiceStatus { code: 404, service_ids: vec!["x".into(), "y".into()] },
            ],
        };
        let xml = resp.to_xml();
        assert!(xml.contains("<status code=\"404\">"), "{xml}");
        assert!(xml.contains(&format!("<{ELEMENT_STATUS} {ATTRIBUTE_CODE}=\"404\">")), "{xml}");
        assert_eq!(RegisterResponse::from_xml(&xml).unwrap().code_of("y"), Some(404));
        let m = MskResponse { statuses: vec![KeyStatus { code: 403, key_ids: vec![kid([1, 2, 3], 5)] }] };
        let xml = m.to_xml();
        assert!(xml.contains("<mbmsMskResponse xmlns=\"urn:3GPP:metadata:2005:MBMS:mskResponse\">"), "{xml}");
        assert!(xml.contains(&format!("<{ELEMENT_KEY_ID}>")), "{xml}");
        assert_eq!(MskResponse::from_xml(&xml).unwrap().code_of(&kid([1, 2, 3], 5)), Some(403));
    }

    #[test]
    fn accepts_prefixed_forms_and_entities() {
        let xml = "<m:mbmsRegister xmlns:m=\"urn:3GPP:metadata:2005:MBMS:mbmsRegister\">\
                   <m:serviceId>a&amp;b</m:serviceId><m:serviceId><![CDATA[c<d]]></m:serviceId></m:mbmsRegister>";
        assert_eq!(
            RegisterRequest::from_xml(xml),
            Ok(RegisterRequest { service_ids: vec!["a&b".into(), "c<d".into()] })
        );
    }

    #[test]
    fn rejects_bad_documents() {
        let ns = NS_REGISTER;
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "no root"),
            ("<mbmsRegister".into(), "malformed"),
            (format!("<mbmsDeregister xmlns=\"{ns}\"><serviceId>a</serviceId></mbmsDeregister>"), "root"),
            ("<mbmsRegister><serviceId>a</serviceId></mbmsRegister>".into(), "namespace"),
            ("<mbmsRegister xmlns=\"urn:else\"><serviceId>a</serviceId></mbmsRegister>".into(), "namespace"),
            (
                format!(
                    "<mbmsRegister xmlns=\"{ns}\"><serviceId xmlns=\"urn:x\">a</serviceId></mbmsRegister>"
                ),
                "namespace",
            ),
            (format!("<mbmsRegister xmlns=\"{ns}\"></mbmsRegister>"), "no <serviceId>"),
            (format!("<mbmsRegister xmlns=\"{ns}\"/>"), "no <serviceId>"),
            (format!("<mbmsRegister xmlns=\"{ns}\"><serviceId/></mbmsRegister>"), "empty"),
            (format!("<mbmsRegister xmlns=\"{ns}\"><serviceId>  </serviceId></mbmsRegister>"), "empty"),
            (format!("<mbmsRegister xmlns=\"{ns}\"><other>a</other></mbmsRegister>"), "unexpected"),
            (
                format!("<mbmsRegister xmlns=\"{ns}\"><serviceId><b>a</b></serviceId></mbmsRegister>"),
                "unexpected",
            ),
            (format!("<mbmsRegister xmlns=\"{ns}\"><serviceId>a&#1;</serviceId></mbmsRegister>"), "control"),
            (
                format!(
                    "<mbmsRegister xmlns=\"{ns}\"><serviceId>{}</serviceId></mbmsRegister>",
                    "a".repeat(257)
                ),
                "256",
            ),
            (
                format!(
                    "<mbmsRegister xmlns=\"{ns}\">{}</mbmsRegister>",
                    "<serviceId>a</serviceId>".repeat(65)
                ),
                "more than 64",
            ),
            (format!("<!DOCTYPE x><mbmsRegister xmlns=\"{ns}\"/>"), "DOCTYPE"),
            (format!("<mbmsRegister xmlns=\"{ns}\"><serviceId>a</serviceId></mbmsRegister><x/>"), "root"),
            (format!("<p:mbmsRegister xmlns=\"{ns}\"/>"), "prefix"),
            (format!("<mbmsRegister xmlns=\"{ns}\">{}</mbmsRegister>", " ".repeat(MAX_XML_LEN)), "bytes"),
        ];
        for (xml, what) in cases {
            let e = RegisterRequest::from_xml(&xml).unwrap_err().to_string();
            assert!(e.contains(what), "{xml:.80}: `{e}` lacks `{what}`");
        }
        let kns = NS_MSK_REQUEST;
        for (body, what) in [
            ("<keyId>AAAA</keyId>", "3 octets"),
            ("<keyId>not base64!</keyId>", "not base64"),
            ("<keyId></keyId>", "empty"),
            ("", "no <keyId>"),
        ] {
            let xml = format!("<mbmsMskRequest xmlns=\"{kns}\">{body}</mbmsMskRequest>");
            let e = MskRequest::from_xml(&xml).unwrap_err().to_string();
            assert!(e.contains(what), "{xml}: `{e}` lacks `{what}`");
        }
        let rns = NS_REGISTER_RESPONSE;
        for (body, what) in [
            ("<status code=\"abc\"><serviceId>a</serviceId></status>", "status code"),
            ("<status code=\"99\"><serviceId>a</serviceId></status>", "status code"),
            ("<status code=\"200\"></status>", "no <serviceId>"),
            ("<serviceId>a</serviceId>", "unexpected"),
            ("", "no <status>"),
        ] {
            let xml = format!("<mbmsRegisterResponse xmlns=\"{rns}\">{body}</mbmsRegisterResponse>");
            let e = RegisterResponse::from_xml(&xml).unwrap_err().to_string();
            assert!(e.contains(what), "{xml}: `{e}` lacks `{what}`");
        }
    }

    /// Python's xml.etree (an independent, namespace-aware parser) reads our documents.
    #[test]
    fn python_etree_reads_our_xml() {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        const SCRIPT: &str = r#"
import sys, xml.etree.ElementTree as ET
ns, item = sys.argv[1], sys.argv[2]
root = ET.fromstring(sys.stdin.buffer.read())
out = [root.tag]
for st in root.findall('{%s}status' % ns):
    out.append('status ' + st.get('code'))
for e in root.iter('{%s}%s' % (ns, item)):
    out.append(e.text)
print('\n'.join(out))
"#;
        let run = |xml: &str, ns: &str, item: &str| -> Vec<String> {
            let mut child = Command::new("python3")
                .args(["-c", SCRIPT, ns, item])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .expect("python3 runs");
            child.stdin.take().unwrap().write_all(xml.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "python3 failed on {xml}");
            String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect()
        };
        let reg = RegisterRequest { service_ids: vec!["urn:svc:1".into(), "a&b<c>\"é".into()] };
        assert_eq!(
            run(&reg.to_xml(), NS_REGISTER, "serviceId"),
            [format!("{{{NS_REGISTER}}}mbmsRegister"), "urn:svc:1".into(), "a&b<c>\"é".into()]
        );
        let dereg = DeregisterRequest { service_ids: vec!["x".into()] };
        assert_eq!(
            run(&dereg.to_xml(), NS_DEREGISTER, "serviceId"),
            [format!("{{{NS_DEREGISTER}}}mbmsDeregister"), "x".into()]
        );
        let resp = RegisterResponse {
            statuses: vec![
                ServiceStatus { code: 200, service_ids: vec!["a".into()] },
                ServiceStatus { code: 404, service_ids: vec!["b".into()] },
            ],
        };
        assert_eq!(
            run(&resp.to_xml(), NS_REGISTER_RESPONSE, "serviceId"),
            [
                format!("{{{NS_REGISTER_RESPONSE}}}mbmsRegisterResponse"),
                "status 200".into(),
                "status 404".into(),
                "a".into(),
                "b".into()
            ]
        );
        let k = kid([0x00, 0xF1, 0x10], 0x0001_0002);
        let req = MskRequest { key_ids: vec![k] };
        assert_eq!(
            run(&req.to_xml(), NS_MSK_REQUEST, "keyId"),
            [format!("{{{NS_MSK_REQUEST}}}mbmsMskRequest"), "APEQAAEAAg==".into()]
        );
        let mresp = MskResponse { statuses: vec![KeyStatus { code: 200, key_ids: vec![k] }] };
        assert_eq!(
            run(&mresp.to_xml(), NS_MSK_RESPONSE, "keyId"),
            [format!("{{{NS_MSK_RESPONSE}}}mbmsMskResponse"), "status 200".into(), "APEQAAEAAg==".into()]
        );
    }

    fn service_id() -> impl Strategy<Value = String> {
        // Printable, no blanks at the ends; includes the XML special characters and non-ASCII.
        "[!-~é€][ -~é€]{0,40}[!-~é€]|[!-~]".prop_map(|s| s)
    }

    fn key_id() -> impl Strategy<Value = MskKeyId> {
        (any::<[u8; 3]>(), any::<u32>()).prop_map(|(kd, m)| kid(kd, m))
    }

    fn code() -> impl Strategy<Value = u16> {
        100u16..=599
    }

    proptest! {
        #[test]
        fn register_round_trips(ids in proptest::collection::vec(service_id(), 1..=MAX_ITEMS)) {
            let r = RegisterRequest { service_ids: ids.clone() };
            prop_assert_eq!(RegisterRequest::from_xml(&r.to_xml()), Ok(r));
            let d = DeregisterRequest { service_ids: ids };
            prop_assert_eq!(DeregisterRequest::from_xml(&d.to_xml()), Ok(d));
        }

        #[test]
        fn register_response_round_trips(
            statuses in proptest::collection::vec(
                (code(), proptest::collection::vec(service_id(), 1..4)), 1..8)
        ) {
            let r = RegisterResponse {
                statuses: statuses.into_iter().map(|(code, service_ids)| ServiceStatus { code, service_ids }).collect(),
            };
            prop_assert_eq!(RegisterResponse::from_xml(&r.to_xml()), Ok(r));
        }

        #[test]
        fn msk_documents_round_trip(
            ids in proptest::collection::vec(key_id(), 1..=MAX_ITEMS),
            statuses in proptest::collection::vec((code(), proptest::collection::vec(key_id(), 1..4)), 1..8)
        ) {
            let r = MskRequest { key_ids: ids };
            prop_assert_eq!(MskRequest::from_xml(&r.to_xml()), Ok(r));
            let s = MskResponse {
                statuses: statuses.into_iter().map(|(code, key_ids)| KeyStatus { code, key_ids }).collect(),
            };
            prop_assert_eq!(MskResponse::from_xml(&s.to_xml()), Ok(s));
        }

        #[test]
        fn parsers_never_panic(s in ".{0,400}") {
            let _ = RegisterRequest::from_xml(&s);
            let _ = DeregisterRequest::from_xml(&s);
            let _ = RegisterResponse::from_xml(&s);
            let _ = MskRequest::from_xml(&s);
            let _ = MskResponse::from_xml(&s);
            let _ = RequestType::from_query(&s);
        }

        #[test]
        fn parsers_never_panic_on_near_documents(
            root in prop::sample::select(vec![ELEMENT_REGISTER, ELEMENT_MSK_REQUEST, ELEMENT_REGISTER_RESPONSE, ELEMENT_MSK_RESPONSE]),
            ns in prop::sample::select(vec![NS_REGISTER, NS_MSK_REQUEST, NS_REGISTER_RESPONSE, NS_MSK_RESPONSE, ""]),
            inner in "(<status code=\"[0-9a-z]{0,4}\">|</status>|<serviceId>|</serviceId>|<keyId>|</keyId>|[A-Za-z0-9+/=&;<>]{0,12}){0,12}"
        ) {
            let xml = format!("<{root} xmlns=\"{ns}\">{inner}</{root}>");
            let _ = RegisterRequest::from_xml(&xml);
            let _ = RegisterResponse::from_xml(&xml);
            let _ = MskRequest::from_xml(&xml);
            let _ = MskResponse::from_xml(&xml);
        }
    }
}
