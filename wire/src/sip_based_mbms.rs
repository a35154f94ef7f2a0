//! The documents of SIP-based MBMS security (TS 26.237 §10.4.2, Annex I): the UE's SIP body
//! (Annex I.1: B-TID, with the TS 26.346 request it carries), the SCF's HTTP body to the BM-SC
//! (Annex I.2: UE IP address, MUK, MUK lifetime, B-TID, NAF FQDN, with the same request), and
//! the `authorize` body of the earlier variant (TS 26.237 CR §10.2.3).
//!
//! Both Annex I schemas end their sequence with `xs:any namespace="##other"`; the TS 26.346
//! request (`mbmsRegister`, `mbmsDeregister` or `mbmsMskRequest`, in its own namespace) sits
//! there, so one XML document carries the procedure and its security data:
//!
//! ```text
//! <mbmsAuthorizedSecurityRegister xmlns="urn:3GPP:metadata:2005:MBMS:bootstrappingTransactionIdentifier">
//!   <btid>…</btid>
//!   <mbmsRegister xmlns="urn:3GPP:metadata:2005:MBMS:mbmsRegister"><serviceId>…</serviceId></mbmsRegister>
//! </mbmsAuthorizedSecurityRegister>
//! ```
//!
//! The answers are the TS 26.346 documents of the HTTP procedures ([`crate::mbms_key_management::RegisterResponse`],
//! [`crate::mbms_key_management::MskResponse`]), relayed unchanged from the BM-SC through the SCF into the SIP 200 OK.
//!
//! Parsing is total and bounded like [`crate::mbms_key_management`]: a value or an [`Error`], never
//! a panic. Elements of other namespaces that are not a known request are skipped (the schemas'
//! `processContents="lax"`); anything else unexpected is refused.

use std::fmt::Write as _;
use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mikey::mbms::Muk;
use mikey::mbms::profile::MUK_LEN;
use quick_xml::escape::escape;

use crate::Error;
use crate::error::cut;
use crate::mbms_key_management::{
    CONTENT_TYPE_MSK_RESPONSE, CONTENT_TYPE_REGISTER_RESPONSE, DeregisterRequest, ELEMENT_DEREGISTER,
    ELEMENT_KEY_ID, ELEMENT_MSK_REQUEST, ELEMENT_REGISTER, ELEMENT_SERVICE_ID, KEY_MANAGEMENT_PATH,
    MAX_ITEMS, MAX_XML_LEN, MskKeyId, MskRequest, NS_DEREGISTER, NS_MSK_REQUEST, NS_REGISTER,
    REQUEST_TYPE_PARAM, RegisterRequest, check_service_id,
};
use crate::xml::XML_DECLARATION;

// ------------------------------------------------------------------------------------------------
// Request types, headers, MIME types, names and open values (TS 26.237 §10.4.2, Annex I, CR §10.2)

/// The SCF's SIP domain of keysim when nothing else names it: Request-URI `sip:scf@<it>` (test
/// PLMN 001/01, TS 23.003 §15.5 public-service subdomain).
pub const DEFAULT_SCF_DOMAIN: &str = "scf.mnc001.mcc001.pub.3gppnetwork.org";
/// The SCF's FQDN as the NAF of SIP-based MBMS services when nothing else names it: NAF_Id = it ‖
/// MBMS Ua protocol identifier, and the IDi of the BM-SC's MSK messages (TS 26.237 §10.4.2).
pub const DEFAULT_SCF_NAF_FQDN: &str = "scf-bmsc.mnc001.mcc001.pub.3gppnetwork.org";

/// `requesttype` of the SCF's registration of a UE at the BM-SC (TS 26.237 §10.4.2.1).
pub const REQUEST_TYPE_SIP_BASED_REGISTER: &str = "sip-based-register";
/// `requesttype` of the SCF's deregistration of a UE (TS 26.237 §10.4.2.1A).
pub const REQUEST_TYPE_SIP_BASED_DEREGISTER: &str = "sip-based-deregister";
/// `requesttype` of the SCF's basic MSK request for a UE (TS 26.237 §10.4.2.2).
pub const REQUEST_TYPE_SIP_BASED_MSK_REQUEST: &str = "sip-based-msk-request";
/// `requesttype` of the SCF's authorization notification of the earlier variant (TS 26.237 CR
/// §10.2.3), after which the UE registers over HTTP itself.
pub const REQUEST_TYPE_AUTHORIZE: &str = "authorize";
/// HTTP header of the SCF's requests naming the UE's asserted identities (TS 26.237 §10.4.2.1,
/// CR §10.2.3: the IMPU of P-Asserted-Identity); several are comma-separated.
pub const ASSERTED_IDENTITY_HEADER: &str = "X-3GPP-Asserted-Identity";
/// HTTP header of the UE's own requests in the `authorize` variant naming its IMPU (TS 26.237 CR
/// §10.2.1).
pub const INTENDED_IDENTITY_HEADER: &str = "X-3GPP-Intended-Identity";
/// Content-Type of the `authorize` request (TS 26.237 CR §10.2.3; its schema is FFS there).
pub const CONTENT_TYPE_AUTHORIZE: &str = "application/mbms-authorize+xml";
/// Content-Type of the SCF's `sip-based-*` requests: the Annex I.2 document (TS 26.237
/// §10.4.2.1 says only "the MIME type of the payloads"). UNCONFIRMED.
pub const CONTENT_TYPE_NAF_KEY_INFO: &str = "application/mbms-naf-key-info+xml";
/// Content-Type of the SIP (re-)INVITE body: the Annex I.1 document (TS 26.237 §10.4.2.1 names
/// no MIME type). UNCONFIRMED.
pub const CONTENT_TYPE_SIP_SECURITY: &str = "application/mbms-btid+xml";

/// Namespace of the Annex I.1 document (B-TID in the SIP body), TS 26.237 Annex I.1.
pub const NS_BTID: &str = "urn:3GPP:metadata:2005:MBMS:bootstrappingTransactionIdentifier";
/// Namespace of the Annex I.2 document (NAF key information to the BM-SC), TS 26.237 Annex I.2.
pub const NS_NAF_KEY_INFO: &str = "urn:3GPP:metadata:2005:MBMS:nafKeyInfo";
/// Root element of both Annex I documents (TS 26.237 Annex I.1, I.2).
pub const ELEMENT_AUTHORIZED_SECURITY_REGISTER: &str = "mbmsAuthorizedSecurityRegister";
/// The B-TID element (TS 26.237 Annex I.1, I.2).
pub const ELEMENT_BTID: &str = "btid";
/// The UE's IP address (TS 26.237 Annex I.2).
pub const ELEMENT_UE_IP_ADDRESS: &str = "ueIPaddress";
/// The MUK (TS 26.237 Annex I.2).
pub const ELEMENT_MUK: &str = "muk";
/// The MUK lifetime (TS 26.237 Annex I.2 spells it `mukLifeTime ` with a stray blank).
pub const ELEMENT_MUK_LIFETIME: &str = "mukLifeTime";
/// The NAF FQDN (TS 26.237 Annex I.2).
pub const ELEMENT_NAF_FQDN: &str = "nafFqdn";
/// The MUK is written as base64 of its 32 octets (Annex I.2 types it `xs:anyURI`). UNCONFIRMED.
pub const MUK_IS_BASE64: bool = true;
/// The NAF FQDN is written as base64 of its octets: the TS 26.237 Annex I.2 schema (namespace
/// `urn:3GPP:metadata:2005:MBMS:nafKeyInfo`) types `nafFqdn` `xs:base64Binary`.
pub const NAF_FQDN_IS_BASE64: bool = true;
/// Format of the MUK lifetime: the key expiry of the Zn answer, UTC `YYYY-MM-DDThh:mm:ssZ`
/// (Annex I.2 types it `xs:anyURI`). UNCONFIRMED.
pub const MUK_LIFETIME_FORMAT: &str = "YYYY-MM-DDThh:mm:ssZ";
/// Namespace of the `authorize` body (TS 26.237 CR §10.2.3: schema FFS). UNCONFIRMED.
pub const NS_AUTHORIZE: &str = "urn:3GPP:metadata:2005:MBMS:mbmsAuthorize";
/// Root element of the `authorize` body (schema FFS). UNCONFIRMED.
pub const ELEMENT_AUTHORIZE: &str = "mbmsAuthorize";
/// Longest B-TID (TS 33.220 §4.5.2: base64(RAND)@BSF_servers_domain_name; TS 29.109 caps it at
/// 255 octets).
pub const MAX_BTID_LEN: usize = 255;
/// Longest FQDN (RFC 1035 §2.3.4).
pub const MAX_FQDN_LEN: usize = 255;

/// Per-item status of the `authorize` variant's HTTP registration: the IMPU is not authorized
/// by the SCF for that service. UNCONFIRMED.
pub const STATUS_NOT_AUTHORIZED: u16 = 403;

/// SIP status of the SCF's answer that makes the UE bootstrap again: an invalid or expired
/// B-TID, or a policy that wants fresh keys (TS 26.237 §10.4.2.1: "an appropriate error
/// message"). UNCONFIRMED.
pub const SIP_STATUS_REBOOTSTRAP: u16 = 403;
/// Warn-code of the Warning header (RFC 3261 §20.43) that marks that answer: 399, miscellaneous.
/// UNCONFIRMED.
pub const SIP_WARN_CODE_REBOOTSTRAP: u16 = 399;
/// Warn-text of that Warning header. UNCONFIRMED.
pub const SIP_WARN_TEXT_REBOOTSTRAP: &str = "GBA bootstrapping required";
/// SIP status of a request whose P-Asserted-Identity is missing or names no subscriber, or
/// asks for services its subscription lacks (TS 26.237 §10.4.2.1: "the procedure is
/// terminated"). UNCONFIRMED.
pub const SIP_STATUS_NOT_AUTHORIZED: u16 = 403;
/// Warn-code of every other SCF error answer (RFC 3261 §20.43: 399, miscellaneous), its text the
/// reason.
pub const SIP_WARN_CODE_REASON: u16 = 399;

/// Deepest element nesting accepted.
const MAX_DEPTH: usize = 8;
/// Most elements in one document.
const MAX_ELEMENTS: usize = 4 * MAX_ITEMS;

// ------------------------------------------------------------------------------------------------
// The SCF's request types

/// The procedure of an SCF → BM-SC request (`?requesttype=`, TS 26.237 §10.4.2, CR §10.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScfRequestType {
    /// Registration on the UE's behalf (§10.4.2.1).
    SipBasedRegister,
    /// Deregistration (§10.4.2.1A).
    SipBasedDeregister,
    /// Basic MSK request (§10.4.2.2).
    SipBasedMskRequest,
    /// Authorization notification of the earlier variant (CR §10.2.3).
    Authorize,
}

impl ScfRequestType {
    /// Every SCF request type.
    pub const ALL: [ScfRequestType; 4] = [
        ScfRequestType::SipBasedRegister,
        ScfRequestType::SipBasedDeregister,
        ScfRequestType::SipBasedMskRequest,
        ScfRequestType::Authorize,
    ];

    /// The `requesttype` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            ScfRequestType::SipBasedRegister => REQUEST_TYPE_SIP_BASED_REGISTER,
            ScfRequestType::SipBasedDeregister => REQUEST_TYPE_SIP_BASED_DEREGISTER,
            ScfRequestType::SipBasedMskRequest => REQUEST_TYPE_SIP_BASED_MSK_REQUEST,
            ScfRequestType::Authorize => REQUEST_TYPE_AUTHORIZE,
        }
    }

    /// The SCF request type a URI query names, if it names exactly one `requesttype` and that is
    /// an SCF type (`None` otherwise: the query is then one of [`RequestType`](crate::mbms_key_management::RequestType)'s, or bad).
    /// Blanks around the value are ignored (§10.4.2.1 writes `requesttype= sip-based-register`).
    pub fn from_query(query: &str) -> Option<Self> {
        let mut values = query.split('&').filter_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (name == REQUEST_TYPE_PARAM).then_some(value)
        });
        let (Some(value), None) = (values.next(), values.next()) else { return None };
        let value = value.trim_matches(|c| c == ' ' || c == '+').replace("%20", "");
        Self::ALL.into_iter().find(|t| t.as_str() == value)
    }

    /// The request target: `/keymanagement?requesttype=<type>`.
    pub fn path_and_query(self) -> String {
        format!("{KEY_MANAGEMENT_PATH}?{REQUEST_TYPE_PARAM}={}", self.as_str())
    }

    /// Content-Type of the request body.
    pub const fn request_content_type(self) -> &'static str {
        match self {
            ScfRequestType::Authorize => CONTENT_TYPE_AUTHORIZE,
            _ => CONTENT_TYPE_NAF_KEY_INFO,
        }
    }

    /// Content-Type of the 200 answer's body (the `authorize` answer is a registration answer,
    /// UNCONFIRMED: the CR calls it an "authorization acknowledgement").
    pub const fn response_content_type(self) -> &'static str {
        match self {
            ScfRequestType::SipBasedMskRequest => CONTENT_TYPE_MSK_RESPONSE,
            _ => CONTENT_TYPE_REGISTER_RESPONSE,
        }
    }
}

impl std::fmt::Display for ScfRequestType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// ------------------------------------------------------------------------------------------------
// A small namespace-aware element tree

/// An element: namespace, local name, text (character data and CDATA, entities resolved),
/// children.
#[derive(Debug, Default)]
struct Element {
    ns: String,
    name: String,
    text: String,
    children: Vec<Element>,
}

/// Reads a whole document into an element tree: size, depth and element count bounded, no
/// DOCTYPE, one root, no text outside it, every prefix declared.
fn parse_tree(xml: &str) -> Result<Element, Error> {
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;

    if xml.len() > MAX_XML_LEN {
        return Err(Error::TooLarge { len: xml.len(), max: MAX_XML_LEN });
    }
    let mut reader = quick_xml::NsReader::from_str(xml);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let (ns, event) = reader.read_resolved_event().map_err(|e| Error::Xml(e.to_string()))?;
        let (start, empty) = match &event {
            Event::Start(s) => (s, false),
            Event::Empty(s) => (s, true),
            Event::End(_) => {
                let done = stack.pop().ok_or_else(|| Error::Xml("end tag without start".into()))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
                continue;
            }
            Event::Text(t) => {
                let text = t.xml10_content();
                match stack.last_mut() {
                    Some(e) => e.text.push_str(&text),
                    None if !text.trim().is_empty() => {
                        return Err(Error::Xml("text outside the root element".into()));
                    }
                    None => {}
                }
                continue;
            }
            Event::CData(t) => {
                let e =
                    stack.last_mut().ok_or_else(|| Error::Xml("CDATA outside the root element".into()))?;
                e.text.push_str(&t.xml10_content());
                continue;
            }
            Event::GeneralRef(r) => {
                let c = if let Some(c) = r.resolve_char_ref().map_err(|e| Error::Xml(e.to_string()))? {
                    c
                } else {
                    match r.xml10_content().as_ref() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => return Err(Error::Xml(format!("unknown entity `&{};`", cut(other)))),
                    }
                };
                let e = stack
                    .last_mut()
                    .ok_or_else(|| Error::Xml("reference outside the root element".into()))?;
                e.text.push(c);
                continue;
            }
            Event::DocType(_) => return Err(Error::Xml("DOCTYPE is not accepted".into())),
            Event::Eof => break,
            _ => continue,
        };
        if root.is_some() {
            return Err(Error::Xml("more than one root element".into()));
        }
        count += 1;
        if count > MAX_ELEMENTS || stack.len() >= MAX_DEPTH {
            return Err(Error::Xml(format!("more than {MAX_ELEMENTS} elements or {MAX_DEPTH} levels")));
        }
        let ns = match ns {
            ResolveResult::Bound(n) => n.as_ref().to_owned(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(p) => {
                return Err(Error::Xml(format!("undeclared namespace prefix `{p}`")));
            }
        };
        let element = Element { ns, name: start.local_name().as_ref().to_owned(), ..Element::default() };
        if empty {
            match stack.last_mut() {
                Some(parent) => parent.children.push(element),
                None => root = Some(element),
            }
        } else {
            stack.push(element);
        }
    }
    if !stack.is_empty() {
        return Err(Error::Xml("document ends inside an element".into()));
    }
    root.ok_or_else(|| Error::Xml("no root element".into()))
}

fn expect_root(e: &Element, name: &'static str, ns: &'static str) -> Result<(), Error> {
    if e.name != name {
        return Err(Error::Root { found: cut(&e.name), expected: name });
    }
    expect_ns(e, ns)
}

fn expect_ns(e: &Element, ns: &'static str) -> Result<(), Error> {
    if e.ns != ns {
        return Err(Error::Namespace { element: cut(&e.name), found: cut(&e.ns), expected: ns });
    }
    Ok(())
}

/// A leaf's text: no child elements.
fn leaf_text<'a>(e: &'a Element, parent: &str) -> Result<&'a str, Error> {
    if let Some(c) = e.children.first() {
        return Err(Error::UnexpectedElement { element: cut(&c.name), parent: cut(parent) });
    }
    Ok(e.text.as_str())
}

fn bad_value(element: &'static str, reason: impl Into<String>) -> Error {
    Error::BadValue { element, reason: reason.into() }
}

fn write_leaf(out: &mut String, indent: &str, name: &str, text: &str) {
    let _ = writeln!(out, "{indent}<{name}>{}</{name}>", escape(text));
}

// ------------------------------------------------------------------------------------------------
// Values

/// Checks a B-TID: 1..=[`MAX_BTID_LEN`] octets of visible ASCII (TS 33.220 §4.5.2: base64 of
/// RAND, `@`, the BSF's domain name).
pub fn check_btid(btid: &str) -> Result<(), Error> {
    if btid.is_empty() {
        return Err(Error::EmptyItem(ELEMENT_BTID));
    }
    if btid.len() > MAX_BTID_LEN {
        return Err(bad_value(ELEMENT_BTID, format!("longer than {MAX_BTID_LEN} octets")));
    }
    if !btid.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad_value(ELEMENT_BTID, "not visible ASCII"));
    }
    Ok(())
}

/// Checks an FQDN: 1..=[`MAX_FQDN_LEN`] octets of letters, digits, `-` and `.` (RFC 1035 §2.3.1),
/// no empty label.
pub fn check_fqdn(fqdn: &str) -> Result<(), Error> {
    let ok = !fqdn.is_empty()
        && fqdn.len() <= MAX_FQDN_LEN
        && fqdn.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if ok { Ok(()) } else { Err(bad_value(ELEMENT_NAF_FQDN, format!("`{}` is not an FQDN", cut(fqdn)))) }
}

/// Checks a MUK lifetime: UTC `YYYY-MM-DDThh:mm:ssZ` ([`MUK_LIFETIME_FORMAT`]).
pub fn check_muk_lifetime(text: &str) -> Result<(), Error> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let ok = b.len() == 20
        && digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10)
        && b.get(10) == Some(&b'T')
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16)
        && b.get(16) == Some(&b':')
        && digits(17..19)
        && b.get(19) == Some(&b'Z');
    if ok {
        Ok(())
    } else {
        Err(bad_value(ELEMENT_MUK_LIFETIME, format!("`{}` is not UTC YYYY-MM-DDThh:mm:ssZ", cut(text))))
    }
}

// ------------------------------------------------------------------------------------------------
// The TS 26.346 request inside the Annex I documents

/// The procedure a SIP (re-)INVITE asks for: the TS 26.346 request document it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipProcedure {
    /// Registration (TS 26.237 §10.4.2.1; §10.4.2.3 MUK update: the same with a new B-TID).
    Register(RegisterRequest),
    /// Deregistration (§10.4.2.1A).
    Deregister(DeregisterRequest),
    /// Basic MSK request (§10.4.2.2).
    MskRequest(MskRequest),
}

impl SipProcedure {
    /// The SCF → BM-SC request type of this procedure.
    pub const fn scf_request_type(&self) -> ScfRequestType {
        match self {
            SipProcedure::Register(_) => ScfRequestType::SipBasedRegister,
            SipProcedure::Deregister(_) => ScfRequestType::SipBasedDeregister,
            SipProcedure::MskRequest(_) => ScfRequestType::SipBasedMskRequest,
        }
    }

    /// Content-Type of the answer document relayed in the SIP 200 OK.
    pub const fn response_content_type(&self) -> &'static str {
        self.scf_request_type().response_content_type()
    }

    /// The User Service IDs of a registration or deregistration (empty for an MSK request).
    pub fn service_ids(&self) -> &[String] {
        match self {
            SipProcedure::Register(r) => &r.service_ids,
            SipProcedure::Deregister(r) => &r.service_ids,
            SipProcedure::MskRequest(_) => &[],
        }
    }

    /// The same procedure for a subset of its items (`keep` sees each service ID, or each key
    /// ID's base64 text); `None` when nothing is kept.
    pub fn retain(
        &self,
        mut keep_service: impl FnMut(&str) -> bool,
        mut keep_key: impl FnMut(&MskKeyId) -> bool,
    ) -> Option<Self> {
        let p = match self {
            SipProcedure::Register(r) => SipProcedure::Register(RegisterRequest {
                service_ids: r.service_ids.iter().filter(|s| keep_service(s)).cloned().collect(),
            }),
            SipProcedure::Deregister(r) => SipProcedure::Deregister(DeregisterRequest {
                service_ids: r.service_ids.iter().filter(|s| keep_service(s)).cloned().collect(),
            }),
            SipProcedure::MskRequest(r) => SipProcedure::MskRequest(MskRequest {
                key_ids: r.key_ids.iter().filter(|k| keep_key(k)).copied().collect(),
            }),
        };
        let empty = match &p {
            SipProcedure::Register(r) => r.service_ids.is_empty(),
            SipProcedure::Deregister(r) => r.service_ids.is_empty(),
            SipProcedure::MskRequest(r) => r.key_ids.is_empty(),
        };
        (!empty).then_some(p)
    }

    /// Parses a bare TS 26.346 request document (the body of the `authorize` variant's INVITE).
    pub fn from_xml(xml: &str) -> Result<Self, Error> {
        let root = parse_tree(xml)?;
        Self::from_element(&root)?
            .ok_or_else(|| Error::Root { found: cut(&root.name), expected: ELEMENT_REGISTER })
    }

    /// The bare TS 26.346 request document.
    pub fn to_xml(&self) -> String {
        let mut out = String::from(XML_DECLARATION);
        self.write(&mut out, "");
        out
    }

    /// The procedure an element is, if it is one (`None` for an element of another kind).
    fn from_element(e: &Element) -> Result<Option<Self>, Error> {
        let (ns, item) = match e.name.as_str() {
            ELEMENT_REGISTER => (NS_REGISTER, ELEMENT_SERVICE_ID),
            ELEMENT_DEREGISTER => (NS_DEREGISTER, ELEMENT_SERVICE_ID),
            ELEMENT_MSK_REQUEST => (NS_MSK_REQUEST, ELEMENT_KEY_ID),
            _ => return Ok(None),
        };
        if e.ns != ns {
            return Ok(None);
        }
        if !e.text.trim().is_empty() {
            return Err(Error::Xml(format!("text in <{}>", e.name)));
        }
        if e.children.len() > MAX_ITEMS {
            return Err(Error::TooManyItems { element: item, max: MAX_ITEMS });
        }
        let mut texts = Vec::with_capacity(e.children.len());
        for c in &e.children {
            if c.name != item {
                return Err(Error::UnexpectedElement { element: cut(&c.name), parent: cut(&e.name) });
            }
            expect_ns(c, ns)?;
            texts.push(leaf_text(c, item)?);
        }
        if texts.is_empty() {
            return Err(Error::NoItems(item));
        }
        Ok(Some(match e.name.as_str() {
            ELEMENT_MSK_REQUEST => SipProcedure::MskRequest(MskRequest {
                key_ids: texts.iter().map(|t| MskKeyId::from_base64(t)).collect::<Result<_, _>>()?,
            }),
            name => {
                for t in &texts {
                    check_service_id(t)?;
                }
                let service_ids = texts.iter().map(|t| (*t).to_owned()).collect();
                if name == ELEMENT_REGISTER {
                    SipProcedure::Register(RegisterRequest { service_ids })
                } else {
                    SipProcedure::Deregister(DeregisterRequest { service_ids })
                }
            }
        }))
    }

    fn write(&self, out: &mut String, indent: &str) {
        let (name, ns, item, texts): (&str, &str, &str, Vec<String>) = match self {
            SipProcedure::Register(r) => {
                (ELEMENT_REGISTER, NS_REGISTER, ELEMENT_SERVICE_ID, r.service_ids.clone())
            }
            SipProcedure::Deregister(r) => {
                (ELEMENT_DEREGISTER, NS_DEREGISTER, ELEMENT_SERVICE_ID, r.service_ids.clone())
            }
            SipProcedure::MskRequest(r) => (
                ELEMENT_MSK_REQUEST,
                NS_MSK_REQUEST,
                ELEMENT_KEY_ID,
                r.key_ids.iter().map(MskKeyId::to_base64).collect(),
            ),
        };
        let _ = writeln!(out, "{indent}<{name} xmlns=\"{ns}\">");
        let inner = format!("{indent}  ");
        for t in &texts {
            write_leaf(out, &inner, item, t);
        }
        let _ = writeln!(out, "{indent}</{name}>");
    }
}

/// The one procedure among the other-namespace children after the schema's own elements.
fn procedure_of(others: &[&Element]) -> Result<SipProcedure, Error> {
    let mut found = None;
    for e in others {
        if let Some(p) = SipProcedure::from_element(e)? {
            if found.is_some() {
                return Err(Error::Xml("more than one request document".into()));
            }
            found = Some(p);
        }
    }
    found.ok_or(Error::NoItems("mbmsRegister, mbmsDeregister or mbmsMskRequest"))
}

// ------------------------------------------------------------------------------------------------
// Annex I.1: the SIP body

/// The body of the UE's SIP (re-)INVITE (TS 26.237 §10.4.2.1, Annex I.1): its B-TID and the
/// request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipSecurityRequest {
    /// The B-TID of the UE's current bootstrapping.
    pub btid: String,
    /// What the UE asks for.
    pub procedure: SipProcedure,
}

impl SipSecurityRequest {
    /// The XML document ([`CONTENT_TYPE_SIP_SECURITY`]).
    pub fn to_xml(&self) -> String {
        let mut out = String::from(XML_DECLARATION);
        let _ = writeln!(out, "<{ELEMENT_AUTHORIZED_SECURITY_REGISTER} xmlns=\"{NS_BTID}\">");
        write_leaf(&mut out, "  ", ELEMENT_BTID, &self.btid);
        self.procedure.write(&mut out, "  ");
        let _ = writeln!(out, "</{ELEMENT_AUTHORIZED_SECURITY_REGISTER}>");
        out
    }

    /// Parses the XML document: exactly one `btid` (Annex I.1 allows more; which one would count
    /// is not said), then exactly one request document.
    pub fn from_xml(xml: &str) -> Result<Self, Error> {
        let root = parse_tree(xml)?;
        expect_root(&root, ELEMENT_AUTHORIZED_SECURITY_REGISTER, NS_BTID)?;
        let mut btids = Vec::new();
        let mut others = Vec::new();
        for c in &root.children {
            if c.ns == NS_BTID {
                if c.name != ELEMENT_BTID || !others.is_empty() {
                    return Err(Error::UnexpectedElement { element: cut(&c.name), parent: cut(&root.name) });
                }
                btids.push(leaf_text(c, ELEMENT_BTID)?.trim());
            } else {
                others.push(c);
            }
        }
        let btid = match btids.as_slice() {
            [] => return Err(Error::NoItems(ELEMENT_BTID)),
            [one] => *one,
            _ => return Err(bad_value(ELEMENT_BTID, "more than one")),
        };
        check_btid(btid)?;
        Ok(SipSecurityRequest { btid: btid.to_owned(), procedure: procedure_of(&others)? })
    }
}

// ------------------------------------------------------------------------------------------------
// Annex I.2: the SCF's body to the BM-SC

/// The UE's NAF keys as the SCF hands them to the BM-SC (TS 26.237 Annex I.2): they identify
/// the MUK in MIKEY MSK messages (IDi = NAF FQDN, IDr = B-TID).
#[derive(Debug)]
pub struct NafKeys {
    /// The MUK (Ks_int_NAF, or the ME-based MUK from Ks_NAF).
    pub muk: Muk,
    /// Its lifetime, UTC `YYYY-MM-DDThh:mm:ssZ`.
    pub muk_lifetime: String,
    /// The B-TID of the bootstrapping it comes from.
    pub btid: String,
    /// The NAF (SCF) FQDN of its NAF_Id.
    pub naf_fqdn: String,
}

/// The body of the SCF's `sip-based-*` request (TS 26.237 §10.4.2, Annex I.2).
#[derive(Debug)]
pub struct NafKeyInfo {
    /// The UE's IP addresses (from the SIP request; MSK messages go there).
    pub ue_ip_addresses: Vec<IpAddr>,
    /// The NAF keys: always with a registration; with a deregistration or MSK request only when
    /// the SCF fetched new keys (§10.4.2.1A, §10.4.2.2).
    pub keys: Option<NafKeys>,
    /// The request.
    pub procedure: SipProcedure,
}

fn muk_text(muk: &Muk) -> String {
    if MUK_IS_BASE64 {
        BASE64.encode(muk.as_bytes())
    } else {
        muk.as_bytes().iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn muk_from_text(text: &str) -> Result<Muk, Error> {
    use zeroize::Zeroize as _;
    let t = text.trim();
    // Room for a few octets more than a MUK, so that a wrong length is reported as such.
    let mut buf = [0u8; 2 * MUK_LEN];
    let n = if MUK_IS_BASE64 {
        BASE64.decode_slice(t, &mut buf).map_err(|e| bad_value(ELEMENT_MUK, format!("not base64: {e}")))?
    } else {
        let mut n = 0;
        for pair in t.as_bytes().chunks(2) {
            let byte = std::str::from_utf8(pair)
                .ok()
                .filter(|p| p.len() == 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            let slot = buf.get_mut(n);
            match (byte, slot) {
                (Some(b), Some(s)) => *s = b,
                _ => return Err(bad_value(ELEMENT_MUK, "not hex of at most 64 octets")),
            }
            n += 1;
        }
        n
    };
    let muk = Muk::from_slice(buf.get(..n).unwrap_or_default())
        .map_err(|_| bad_value(ELEMENT_MUK, format!("{n} octets, expected {MUK_LEN}")));
    buf.zeroize();
    muk
}

fn fqdn_text(fqdn: &str) -> String {
    if NAF_FQDN_IS_BASE64 { BASE64.encode(fqdn.as_bytes()) } else { fqdn.to_owned() }
}

fn fqdn_from_text(text: &str) -> Result<String, Error> {
    let fqdn = if NAF_FQDN_IS_BASE64 {
        let raw = BASE64
            .decode(text.trim())
            .map_err(|e| bad_value(ELEMENT_NAF_FQDN, format!("not base64: {e}")))?;
        String::from_utf8(raw).map_err(|_| bad_value(ELEMENT_NAF_FQDN, "not UTF-8"))?
    } else {
        text.trim().to_owned()
    };
    check_fqdn(&fqdn)?;
    Ok(fqdn)
}

fn ip_from_text(text: &str) -> Result<IpAddr, Error> {
    text.trim()
        .parse()
        .map_err(|_| bad_value(ELEMENT_UE_IP_ADDRESS, format!("`{}` is not an IP address", cut(text))))
}

impl NafKeyInfo {
    /// The XML document ([`CONTENT_TYPE_NAF_KEY_INFO`]), elements in the order of the
    /// Annex I.2 sequence. It holds the MUK: drop it once sent.
    pub fn to_xml(&self) -> String {
        let mut out = String::from(XML_DECLARATION);
        let _ = writeln!(out, "<{ELEMENT_AUTHORIZED_SECURITY_REGISTER} xmlns=\"{NS_NAF_KEY_INFO}\">");
        for ip in &self.ue_ip_addresses {
            write_leaf(&mut out, "  ", ELEMENT_UE_IP_ADDRESS, &ip.to_string());
        }
        if let Some(k) = &self.keys {
            write_leaf(&mut out, "  ", ELEMENT_MUK, &muk_text(&k.muk));
            write_leaf(&mut out, "  ", ELEMENT_MUK_LIFETIME, &k.muk_lifetime);
            write_leaf(&mut out, "  ", ELEMENT_BTID, &k.btid);
            write_leaf(&mut out, "  ", ELEMENT_NAF_FQDN, &fqdn_text(&k.naf_fqdn));
        }
        self.procedure.write(&mut out, "  ");
        let _ = writeln!(out, "</{ELEMENT_AUTHORIZED_SECURITY_REGISTER}>");
        out
    }

    /// Parses the XML document: `ueIPaddress`* then, all or none, one each of `muk`,
    /// `mukLifeTime`, `btid`, `nafFqdn` (in that order), then exactly one request document.
    pub fn from_xml(xml: &str) -> Result<Self, Error> {
        const ORDER: [&str; 5] =
            [ELEMENT_UE_IP_ADDRESS, ELEMENT_MUK, ELEMENT_MUK_LIFETIME, ELEMENT_BTID, ELEMENT_NAF_FQDN];
        let root = parse_tree(xml)?;
        expect_root(&root, ELEMENT_AUTHORIZED_SECURITY_REGISTER, NS_NAF_KEY_INFO)?;
        let mut ue_ip_addresses = Vec::new();
        let mut key_texts: [Option<&str>; 4] = [None; 4];
        let mut others = Vec::new();
        let mut last: Option<usize> = None;
        for c in &root.children {
            if c.ns != NS_NAF_KEY_INFO {
                others.push(c);
                continue;
            }
            let unexpected = || Error::UnexpectedElement { element: cut(&c.name), parent: cut(&root.name) };
            let pos = ORDER.iter().position(|n| *n == c.name).ok_or_else(unexpected)?;
            // The schema's sequence: ueIPaddress may repeat, the others come once each, in order.
            let in_order = match last {
                None => true,
                Some(l) => pos > l || (pos == 0 && l == 0),
            };
            if !in_order || !others.is_empty() {
                return Err(unexpected());
            }
            last = Some(pos);
            let text = leaf_text(c, &root.name)?;
            match pos.checked_sub(1).and_then(|i| key_texts.get_mut(i)) {
                None => {
                    if ue_ip_addresses.len() >= MAX_ITEMS {
                        return Err(Error::TooManyItems { element: ELEMENT_UE_IP_ADDRESS, max: MAX_ITEMS });
                    }
                    ue_ip_addresses.push(ip_from_text(text)?);
                }
                Some(slot) => *slot = Some(text),
            }
        }
        let keys = match key_texts {
            [None, None, None, None] => None,
            [Some(muk), Some(lifetime), Some(btid), Some(fqdn)] => {
                let (lifetime, btid) = (lifetime.trim(), btid.trim());
                check_muk_lifetime(lifetime)?;
                check_btid(btid)?;
                Some(NafKeys {
                    muk: muk_from_text(muk)?,
                    muk_lifetime: lifetime.to_owned(),
                    btid: btid.to_owned(),
                    naf_fqdn: fqdn_from_text(fqdn)?,
                })
            }
            _ => return Err(Error::NoItems("muk, mukLifeTime, btid and nafFqdn together")),
        };
        Ok(NafKeyInfo { ue_ip_addresses, keys, procedure: procedure_of(&others)? })
    }
}

// ------------------------------------------------------------------------------------------------
// The `authorize` variant

/// The SCF's authorization notification of the earlier variant (TS 26.237 CR §10.2.3): the
/// authorized User Service IDs and the UE's IP address (from the SIP Contact); the IMPU travels
/// in [`ASSERTED_IDENTITY_HEADER`]. Schema FFS in the CR: the shape here is UNCONFIRMED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeRequest {
    /// The UE's IP address.
    pub ue_ip_address: IpAddr,
    /// The authorized User Service IDs, 1..=[`MAX_ITEMS`].
    pub service_ids: Vec<String>,
}

impl AuthorizeRequest {
    /// The XML document ([`CONTENT_TYPE_AUTHORIZE`]).
    pub fn to_xml(&self) -> String {
        let mut out = String::from(XML_DECLARATION);
        let _ = writeln!(out, "<{ELEMENT_AUTHORIZE} xmlns=\"{NS_AUTHORIZE}\">");
        write_leaf(&mut out, "  ", ELEMENT_UE_IP_ADDRESS, &self.ue_ip_address.to_string());
        for s in &self.service_ids {
            write_leaf(&mut out, "  ", ELEMENT_SERVICE_ID, s);
        }
        let _ = writeln!(out, "</{ELEMENT_AUTHORIZE}>");
        out
    }

    /// Parses the XML document: one `ueIPaddress`, then 1..=[`MAX_ITEMS`] `serviceId`.
    pub fn from_xml(xml: &str) -> Result<Self, Error> {
        let root = parse_tree(xml)?;
        expect_root(&root, ELEMENT_AUTHORIZE, NS_AUTHORIZE)?;
        let mut ip = None;
        let mut service_ids = Vec::new();
        for c in &root.children {
            expect_ns(c, NS_AUTHORIZE)?;
            let unexpected = || Error::UnexpectedElement { element: cut(&c.name), parent: cut(&root.name) };
            match c.name.as_str() {
                ELEMENT_UE_IP_ADDRESS if ip.is_none() && service_ids.is_empty() => {
                    ip = Some(ip_from_text(leaf_text(c, &root.name)?)?);
                }
                ELEMENT_SERVICE_ID if ip.is_some() => {
                    let id = leaf_text(c, &root.name)?;
                    check_service_id(id)?;
                    if service_ids.len() >= MAX_ITEMS {
                        return Err(Error::TooManyItems { element: ELEMENT_SERVICE_ID, max: MAX_ITEMS });
                    }
                    service_ids.push(id.to_owned());
                }
                _ => return Err(unexpected()),
            }
        }
        let ue_ip_address = ip.ok_or(Error::NoItems(ELEMENT_UE_IP_ADDRESS))?;
        if service_ids.is_empty() {
            return Err(Error::NoItems(ELEMENT_SERVICE_ID));
        }
        Ok(AuthorizeRequest { ue_ip_address, service_ids })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use mikey::mbms::{KeyDomainId, MskId};
    use proptest::prelude::*;

    fn register(ids: &[&str]) -> SipProcedure {
        SipProcedure::Register(RegisterRequest { service_ids: ids.iter().map(|s| s.to_string()).collect() })
    }

    const BTID: &str = "U+HpCWR0GrC6aXWXcLbn5Q==@bsf.mnc001.mcc001.pub.3gppnetwork.org";

    #[test]
    fn request_types() {
        assert_eq!(
            ScfRequestType::from_query("requesttype=sip-based-register"),
            Some(ScfRequestType::SipBasedRegister)
        );
        assert_eq!(
            ScfRequestType::from_query("requesttype= sip-based-deregister"),
            Some(ScfRequestType::SipBasedDeregister)
        );
        assert_eq!(
            ScfRequestType::from_query("a=1&requesttype=%20sip-based-msk-request"),
            Some(ScfRequestType::SipBasedMskRequest)
        );
        assert_eq!(ScfRequestType::from_query("requesttype=authorize"), Some(ScfRequestType::Authorize));
        for other in
            ["", "requesttype=register", "requesttype=authorize&requesttype=authorize", "x=authorize"]
        {
            assert_eq!(ScfRequestType::from_query(other), None, "{other}");
        }
        for t in ScfRequestType::ALL {
            let pq = t.path_and_query();
            assert_eq!(ScfRequestType::from_query(pq.split_once('?').unwrap().1), Some(t));
        }
        assert_eq!(ScfRequestType::SipBasedMskRequest.response_content_type(), CONTENT_TYPE_MSK_RESPONSE);
        assert_eq!(ScfRequestType::Authorize.request_content_type(), "application/mbms-authorize+xml");
    }

    #[test]
    fn sip_body_looks_as_annex_i1_says() {
        let r = SipSecurityRequest { btid: BTID.into(), procedure: register(&["urn:svc:a", "b&<c>"]) };
        let xml = r.to_xml();
        assert!(xml.contains(
            "<mbmsAuthorizedSecurityRegister xmlns=\"urn:3GPP:metadata:2005:MBMS:bootstrappingTransactionIdentifier\">"
        ), "{xml}");
        assert!(xml.contains(&format!("<btid>{BTID}</btid>")), "{xml}");
        assert!(xml.contains("<mbmsRegister xmlns=\"urn:3GPP:metadata:2005:MBMS:mbmsRegister\">"), "{xml}");
        assert!(xml.contains("<serviceId>b&amp;&lt;c&gt;</serviceId>"), "{xml}");
        assert_eq!(SipSecurityRequest::from_xml(&xml), Ok(r));
        // Prefixes declared on the root, an extension element of another namespace, CDATA.
        let xml = format!(
            "<b:mbmsAuthorizedSecurityRegister xmlns:b=\"{NS_BTID}\" xmlns:k=\"{NS_MSK_REQUEST}\" foo=\"x\">\
             <b:btid> {BTID} </b:btid><ext xmlns=\"urn:other\"><deep/></ext>\
             <k:mbmsMskRequest><k:keyId><![CDATA[APEQAAEAAA==]]></k:keyId></k:mbmsMskRequest>\
             </b:mbmsAuthorizedSecurityRegister>"
        );
        let r = SipSecurityRequest::from_xml(&xml).unwrap();
        assert_eq!(r.btid, BTID);
        assert_eq!(
            r.procedure,
            SipProcedure::MskRequest(MskRequest {
                key_ids: vec![MskKeyId {
                    key_domain_id: KeyDomainId([0, 0xF1, 0x10]),
                    msk_id: MskId(0x0001_0000)
                }]
            })
        );
    }

    #[test]
    fn rejects_bad_sip_bodies() {
        let reg = format!("<mbmsRegister xmlns=\"{NS_REGISTER}\"><serviceId>a</serviceId></mbmsRegister>");
        let doc = |inner: &str| {
            format!(
                "<mbmsAuthorizedSecurityRegister xmlns=\"{NS_BTID}\">{inner}</mbmsAuthorizedSecurityRegister>"
            )
        };
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "no root"),
            ("<x".into(), "malformed"),
            (doc(&reg), "no <btid>"),
            (doc(&format!("<btid>{BTID}</btid>")), "no <mbmsRegister"),
            (doc(&format!("<btid>{BTID}</btid><btid>x@y</btid>{reg}")), "more than one"),
            (doc(&format!("{reg}<btid>{BTID}</btid>")), "unexpected"),
            (doc(&format!("<btid></btid>{reg}")), "empty"),
            (doc(&format!("<btid>a b</btid>{reg}")), "visible ASCII"),
            (doc(&format!("<btid>{}</btid>{reg}", "a".repeat(256))), "255"),
            (doc(&format!("<btid><x/></btid>{reg}")), "unexpected"),
            (doc(&format!("<btid>{BTID}</btid><other/>{reg}")), "unexpected"),
            (doc(&format!("<btid>{BTID}</btid>{reg}{reg}")), "more than one request"),
            (doc(&format!("<btid>{BTID}</btid><mbmsRegister xmlns=\"{NS_REGISTER}\"/>")), "no <serviceId>"),
            (
                doc(&format!(
                    "<btid>{BTID}</btid><mbmsRegister xmlns=\"{NS_REGISTER}\"><keyId>AA==</keyId></mbmsRegister>"
                )),
                "unexpected",
            ),
            (
                doc(&format!(
                    "<btid>{BTID}</btid><mbmsMskRequest xmlns=\"{NS_MSK_REQUEST}\"><keyId>AAAA</keyId></mbmsMskRequest>"
                )),
                "3 octets",
            ),
            (
                doc(&format!(
                    "<btid>{BTID}</btid><mbmsRegister xmlns=\"{NS_REGISTER}\"><serviceId>a&#1;</serviceId></mbmsRegister>"
                )),
                "control",
            ),
            (doc(&format!("<btid>{BTID}&unknown;</btid>{reg}")), "entity"),
            (
                format!(
                    "<mbmsAuthorizedSecurityRegister xmlns=\"urn:x\"><btid>{BTID}</btid>{reg}</mbmsAuthorizedSecurityRegister>"
                ),
                "namespace",
            ),
            (format!("<!DOCTYPE x>{}", doc(&format!("<btid>{BTID}</btid>{reg}"))), "DOCTYPE"),
            (format!("{}<x/>", doc(&format!("<btid>{BTID}</btid>{reg}"))), "root"),
            (doc(&format!("<btid>{BTID}</btid>{}{reg}", "<a>".repeat(9) + &"</a>".repeat(9))), "levels"),
            (doc(&" ".repeat(MAX_XML_LEN)), "bytes"),
        ];
        for (xml, what) in cases {
            let e = SipSecurityRequest::from_xml(&xml).unwrap_err().to_string();
            assert!(e.contains(what), "{xml:.120}: `{e}` lacks `{what}`");
        }
    }

    fn keys() -> NafKeys {
        NafKeys {
            muk: Muk::new([0x4D; 32]),
            muk_lifetime: "2026-11-24T13:00:00Z".into(),
            btid: BTID.into(),
            naf_fqdn: "scf1.example.org".into(),
        }
    }

    #[test]
    fn naf_key_info_looks_as_annex_i2_says() {
        let info = NafKeyInfo {
            ue_ip_addresses: vec!["127.0.0.1".parse().unwrap()],
            keys: Some(keys()),
            procedure: register(&["urn:svc:a"]),
        };
        let xml = info.to_xml();
        assert!(xml.contains("xmlns=\"urn:3GPP:metadata:2005:MBMS:nafKeyInfo\""), "{xml}");
        assert!(xml.contains("<ueIPaddress>127.0.0.1</ueIPaddress>"), "{xml}");
        // base64 of 32 octets 0x4D (RFC 4648 §4): "TU1N" per 3 octets, then "TU0=".
        assert!(xml.contains(&format!("<muk>{}TU0=</muk>", "TU1N".repeat(10))), "{xml}");
        assert!(xml.contains("<mukLifeTime>2026-11-24T13:00:00Z</mukLifeTime>"), "{xml}");
        // base64("scf1.example.org") by RFC 4648 §4.
        assert!(xml.contains("<nafFqdn>c2NmMS5leGFtcGxlLm9yZw==</nafFqdn>"), "{xml}");
        let muk_at = xml.find("<muk>").unwrap();
        assert!(xml.find("<ueIPaddress>").unwrap() < muk_at && muk_at < xml.find("<btid>").unwrap());
        let back = NafKeyInfo::from_xml(&xml).unwrap();
        assert_eq!(back.ue_ip_addresses, info.ue_ip_addresses);
        assert_eq!(back.procedure, info.procedure);
        let k = back.keys.unwrap();
        assert_eq!(
            (k.muk.as_bytes(), k.muk_lifetime.as_str(), k.btid.as_str(), k.naf_fqdn.as_str()),
            (&[0x4D; 32], "2026-11-24T13:00:00Z", BTID, "scf1.example.org")
        );
        let bare = NafKeyInfo { ue_ip_addresses: vec![], keys: None, procedure: register(&["x"]) };
        let back = NafKeyInfo::from_xml(&bare.to_xml()).unwrap();
        assert!(back.keys.is_none() && back.ue_ip_addresses.is_empty());
    }

    #[test]
    fn rejects_bad_naf_key_info() {
        let ns = NS_NAF_KEY_INFO;
        let reg = format!("<mbmsRegister xmlns=\"{NS_REGISTER}\"><serviceId>a</serviceId></mbmsRegister>");
        let muk = BASE64.encode([1u8; 32]);
        let fq = BASE64.encode("scf.example.org");
        let good = format!(
            "<muk>{muk}</muk><mukLifeTime>2026-01-01T00:00:00Z</mukLifeTime><btid>{BTID}</btid><nafFqdn>{fq}</nafFqdn>"
        );
        let doc = |inner: &str| {
            format!("<mbmsAuthorizedSecurityRegister xmlns=\"{ns}\">{inner}</mbmsAuthorizedSecurityRegister>")
        };
        assert!(NafKeyInfo::from_xml(&doc(&format!("{good}{reg}"))).is_ok());
        let cases: Vec<(String, &str)> = vec![
            (doc(&format!("<muk>{muk}</muk>{reg}")), "together"),
            (
                doc(&format!(
                    "<muk>AAAA</muk><mukLifeTime>2026-01-01T00:00:00Z</mukLifeTime><btid>{BTID}</btid><nafFqdn>{fq}</nafFqdn>{reg}"
                )),
                "3 octets",
            ),
            (
                doc(&format!(
                    "<muk>!!</muk><mukLifeTime>2026-01-01T00:00:00Z</mukLifeTime><btid>{BTID}</btid><nafFqdn>{fq}</nafFqdn>{reg}"
                )),
                "base64",
            ),
            (
                doc(&good.replace("2026-01-01T00:00:00Z", "tomorrow"))
                    .replace("</nafFqdn>", &format!("</nafFqdn>{reg}")),
                "UTC",
            ),
            (
                doc(&good.replace(&fq, &BASE64.encode("bad fqdn")))
                    .replace("</nafFqdn>", &format!("</nafFqdn>{reg}")),
                "FQDN",
            ),
            (doc(&format!("<ueIPaddress>300.1.1.1</ueIPaddress>{good}{reg}")), "IP address"),
            (doc(&format!("{good}<ueIPaddress>127.0.0.1</ueIPaddress>{reg}")), "unexpected"),
            (doc(&format!("{good}<muk>{muk}</muk>{reg}")), "unexpected"),
            (doc(&format!("{reg}{good}")), "unexpected"),
            (doc(&good), "no <mbmsRegister"),
            (doc(&format!("<other>x</other>{good}{reg}")), "unexpected"),
        ];
        for (xml, what) in cases {
            let e = NafKeyInfo::from_xml(&xml).unwrap_err().to_string();
            assert!(e.contains(what), "{xml:.160}: `{e}` lacks `{what}`");
        }
    }

    #[test]
    fn authorize_documents() {
        let a =
            AuthorizeRequest { ue_ip_address: "::1".parse().unwrap(), service_ids: vec!["urn:svc:a".into()] };
        let xml = a.to_xml();
        assert!(xml.contains("<mbmsAuthorize xmlns=\"urn:3GPP:metadata:2005:MBMS:mbmsAuthorize\">"), "{xml}");
        assert_eq!(AuthorizeRequest::from_xml(&xml), Ok(a));
        let ns = NS_AUTHORIZE;
        for (inner, what) in [
            ("<serviceId>a</serviceId>", "unexpected"),
            ("<ueIPaddress>::1</ueIPaddress>", "no <serviceId>"),
            ("<ueIPaddress>x</ueIPaddress><serviceId>a</serviceId>", "IP address"),
            (
                "<ueIPaddress>::1</ueIPaddress><ueIPaddress>::1</ueIPaddress><serviceId>a</serviceId>",
                "unexpected",
            ),
            ("", "no <ueIPaddress>"),
        ] {
            let xml = format!("<mbmsAuthorize xmlns=\"{ns}\">{inner}</mbmsAuthorize>");
            let e = AuthorizeRequest::from_xml(&xml).unwrap_err().to_string();
            assert!(e.contains(what), "{xml}: `{e}` lacks `{what}`");
        }
        assert_eq!(SipProcedure::from_xml(&register(&["a"]).to_xml()), Ok(register(&["a"])));
    }

    #[test]
    fn retain_keeps_a_subset() {
        let p = register(&["a", "b", "c"]);
        assert_eq!(p.retain(|s| s != "b", |_| true), Some(register(&["a", "c"])));
        assert_eq!(p.retain(|_| false, |_| true), None);
    }

    /// Python's xml.etree (an independent, namespace-aware parser) reads our Annex I documents.
    #[test]
    fn python_etree_reads_annex_i_documents() {
        use std::io::Write as _;
        use std::process::{Command, Stdio};
        const SCRIPT: &str = r#"
import sys, base64, xml.etree.ElementTree as ET
root = ET.fromstring(sys.stdin.buffer.read())
out = [root.tag]
for e in root:
    t = (e.text or '').strip()
    if e.tag.endswith('}nafFqdn'):
        t = base64.b64decode(t).decode()
    if e.tag.endswith('}muk'):
        t = base64.b64decode(t).hex()
    out.append(e.tag + '=' + t)
    for i in e:
        out.append('  ' + i.tag + '=' + (i.text or ''))
print('\n'.join(out))
"#;
        let run = |xml: &str| -> Option<String> {
            let child = Command::new("python3")
                .args(["-c", SCRIPT])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn();
            let mut child = match child {
                Ok(c) => c,
                Err(e) if std::env::var_os("KEYSIM_REQUIRE_ORACLES").is_none() => {
                    eprintln!("python3 not available ({e}): skipping the Python cross-check");
                    return None;
                }
                Err(e) => panic!("python3 is required: {e}"),
            };
            child.stdin.take().unwrap().write_all(xml.as_bytes()).unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "python3 failed on {xml}");
            Some(String::from_utf8(out.stdout).unwrap())
        };
        let r = SipSecurityRequest { btid: BTID.into(), procedure: register(&["urn:svc:1", "a&b"]) };
        if let Some(out) = run(&r.to_xml()) {
            let expected = format!(
                "{{{NS_BTID}}}mbmsAuthorizedSecurityRegister\n{{{NS_BTID}}}btid={BTID}\n\
                 {{{NS_REGISTER}}}mbmsRegister=\n  {{{NS_REGISTER}}}serviceId=urn:svc:1\n  {{{NS_REGISTER}}}serviceId=a&b\n"
            );
            assert_eq!(out, expected);
        }
        let info = NafKeyInfo {
            ue_ip_addresses: vec!["127.0.0.1".parse().unwrap()],
            keys: Some(keys()),
            procedure: register(&["x"]),
        };
        if let Some(out) = run(&info.to_xml()) {
            let n = NS_NAF_KEY_INFO;
            let expected = format!(
                "{{{n}}}mbmsAuthorizedSecurityRegister\n{{{n}}}ueIPaddress=127.0.0.1\n{{{n}}}muk={}\n\
                 {{{n}}}mukLifeTime=2026-11-24T13:00:00Z\n{{{n}}}btid={BTID}\n{{{n}}}nafFqdn=scf1.example.org\n\
                 {{{NS_REGISTER}}}mbmsRegister=\n  {{{NS_REGISTER}}}serviceId=x\n",
                "4d".repeat(32)
            );
            assert_eq!(out, expected);
        }
    }

    fn service_id() -> impl Strategy<Value = String> {
        "[!-~é€][ -~é€]{0,30}[!-~é€]|[!-~]"
    }

    fn procedure() -> impl Strategy<Value = SipProcedure> {
        prop_oneof![
            proptest::collection::vec(service_id(), 1..8)
                .prop_map(|service_ids| SipProcedure::Register(RegisterRequest { service_ids })),
            proptest::collection::vec(service_id(), 1..8)
                .prop_map(|service_ids| SipProcedure::Deregister(DeregisterRequest { service_ids })),
            proptest::collection::vec((any::<[u8; 3]>(), any::<u32>()), 1..8).prop_map(|v| {
                SipProcedure::MskRequest(MskRequest {
                    key_ids: v
                        .into_iter()
                        .map(|(kd, m)| MskKeyId { key_domain_id: KeyDomainId(kd), msk_id: MskId(m) })
                        .collect(),
                })
            }),
        ]
    }

    proptest! {
        #[test]
        fn sip_body_round_trips(btid in "[!-~]{1,80}", procedure in procedure()) {
            let r = SipSecurityRequest { btid, procedure };
            prop_assert_eq!(SipSecurityRequest::from_xml(&r.to_xml()), Ok(r));
        }

        #[test]
        fn naf_key_info_round_trips(
            ips in proptest::collection::vec(any::<std::net::IpAddr>(), 0..3),
            muk in any::<[u8; 32]>(),
            btid in "[!-~]{1,80}",
            fqdn in "[a-z0-9]{1,10}(\\.[a-z0-9-]{1,10}){0,3}",
            with_keys in any::<bool>(),
            procedure in procedure(),
        ) {
            let keys = with_keys.then(|| NafKeys { muk: Muk::new(muk), muk_lifetime: "2030-12-31T23:59:59Z".into(), btid: btid.clone(), naf_fqdn: fqdn.clone() });
            let info = NafKeyInfo { ue_ip_addresses: ips.clone(), keys, procedure: procedure.clone() };
            let back = NafKeyInfo::from_xml(&info.to_xml()).unwrap();
            prop_assert_eq!(back.ue_ip_addresses, ips);
            prop_assert_eq!(back.procedure, procedure);
            match back.keys {
                Some(k) => {
                    prop_assert!(with_keys);
                    prop_assert_eq!((k.muk.as_bytes(), k.btid, k.naf_fqdn), (&muk, btid, fqdn));
                }
                None => prop_assert!(!with_keys),
            }
        }

        #[test]
        fn parsers_never_panic(s in ".{0,300}") {
            let _ = SipSecurityRequest::from_xml(&s);
            let _ = NafKeyInfo::from_xml(&s);
            let _ = AuthorizeRequest::from_xml(&s);
            let _ = SipProcedure::from_xml(&s);
            let _ = ScfRequestType::from_query(&s);
        }

        #[test]
        fn parsers_never_panic_on_near_documents(
            root in prop::sample::select(vec![NS_BTID, NS_NAF_KEY_INFO, NS_AUTHORIZE, "urn:x"]),
            inner in "(<btid>|</btid>|<muk>|</muk>|<nafFqdn>|</nafFqdn>|<ueIPaddress>|</ueIPaddress>|<mukLifeTime>|</mukLifeTime>|<mbmsRegister xmlns=\"urn:3GPP:metadata:2005:MBMS:mbmsRegister\">|</mbmsRegister>|<serviceId>|</serviceId>|&amp;|&#0;|&#x10FFFF;|[A-Za-z0-9+/=:.@-]{0,12}){0,14}"
        ) {
            let xml = format!("<mbmsAuthorizedSecurityRegister xmlns=\"{root}\">{inner}</mbmsAuthorizedSecurityRegister>");
            let _ = SipSecurityRequest::from_xml(&xml);
            let _ = NafKeyInfo::from_xml(&xml);
            let xml = format!("<mbmsAuthorize xmlns=\"{root}\">{inner}</mbmsAuthorize>");
            let _ = AuthorizeRequest::from_xml(&xml);
        }
    }
}
