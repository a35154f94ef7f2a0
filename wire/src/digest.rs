//! HTTP Digest authentication (RFC 2617 §3, header syntax of RFC 7235 / RFC 7616) as TS 24.109
//! uses it: on Ub (§4, with the AKAv1-MD5 of RFC 3310, see [`crate::ub`]) and on Ua (§5, a shared
//! key from GBA as password: the BM-SC's registration, TS 33.246 §6.3.2.1). The
//! `WWW-Authenticate`, `Authorization` and `Authentication-Info` headers and the request-digest.
//!
//! The digest is RFC 2617 §3.2.2 with MD5. `rspauth` is the same digest with an empty method and,
//! for `auth-int`, the hash of the response body (RFC 2617 §3.2.3).
//!
//! Every parser here is total: any input gives a value or an [`Error`] with a reason, never a
//! panic.

use std::fmt;
use std::fmt::Write as _;

use md5::{Digest as _, Md5};
use subtle::ConstantTimeEq;

use crate::Error;

/// The authentication scheme of RFC 2617 §3 / RFC 7616.
pub const DIGEST_SCHEME: &str = "Digest";

/// A parameter with a value this side cannot take.
pub(crate) fn invalid(name: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidParameter { name, reason: reason.into() }
}

// ------------------------------------------------------------------------------------------------
// auth-param lists (RFC 7235 §2.1, RFC 7230 §3.2.6)

/// One `name=value` of a Digest header; the name lowercased (names are case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Param {
    name: String,
    value: String,
}

fn is_tchar(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

/// A character allowed inside a quoted-string or a quoted-pair: HTAB, SP, VCHAR, obs-text.
fn is_qdchar(c: char) -> bool {
    c == '\t' || !c.is_control()
}

struct Cursor<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
}

impl Cursor<'_> {
    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t')) {
            self.chars.next();
        }
    }

    fn token(&mut self) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek().filter(|c| is_tchar(*c)) {
            out.push(c);
            self.chars.next();
        }
        out
    }

    fn quoted(&mut self, name: &str) -> Result<String, Error> {
        self.chars.next(); // the opening DQUOTE
        let mut out = String::new();
        loop {
            match self.chars.next() {
                None => return Err(Error::Header(format!("unterminated quoted value of `{name}`"))),
                Some('"') => return Ok(out),
                Some('\\') => match self.chars.next() {
                    Some(c) if is_qdchar(c) => out.push(c),
                    _ => return Err(Error::Header(format!("bad escape in the value of `{name}`"))),
                },
                Some(c) if is_qdchar(c) => out.push(c),
                Some(c) => {
                    return Err(Error::Header(format!(
                        "control character {:#04x} in the value of `{name}`",
                        u32::from(c)
                    )));
                }
            }
        }
    }
}

/// Splits `Digest p1=v1, p2="v2", …` into its parameters. Duplicates are an error.
fn parse_digest_params(header: &str) -> Result<Vec<Param>, Error> {
    let mut cur = Cursor { chars: header.chars().peekable() };
    cur.skip_ows();
    let scheme = cur.token();
    if scheme.is_empty() {
        return Err(Error::Header("no authentication scheme".into()));
    }
    if !scheme.eq_ignore_ascii_case(DIGEST_SCHEME) {
        return Err(Error::Header(format!("scheme `{scheme}` is not Digest")));
    }
    if !matches!(cur.peek(), Some(' ' | '\t')) {
        return Err(Error::Header("no parameters after `Digest`".into()));
    }
    let mut params: Vec<Param> = Vec::new();
    loop {
        cur.skip_ows();
        match cur.peek() {
            None => break,
            Some(',') => {
                cur.chars.next();
                continue;
            }
            Some(_) => {}
        }
        let name = cur.token().to_ascii_lowercase();
        if name.is_empty() {
            let c = cur.peek().unwrap_or(' ');
            return Err(Error::Header(format!("expected a parameter name, found {c:?}")));
        }
        cur.skip_ows();
        if cur.chars.next() != Some('=') {
            return Err(Error::Header(format!("parameter `{name}` has no `=value`")));
        }
        cur.skip_ows();
        let value = if cur.peek() == Some('"') {
            cur.quoted(&name)?
        } else {
            let t = cur.token();
            if t.is_empty() {
                return Err(Error::Header(format!("parameter `{name}` has an empty unquoted value")));
            }
            t
        };
        cur.skip_ows();
        match cur.chars.next() {
            None | Some(',') => {}
            Some(c) => return Err(Error::Header(format!("unexpected {c:?} after parameter `{name}`"))),
        }
        if params.iter().any(|p| p.name == name) {
            return Err(Error::Header(format!("parameter `{name}` appears twice")));
        }
        params.push(Param { name, value });
    }
    if params.is_empty() {
        return Err(Error::Header("no parameters after `Digest`".into()));
    }
    Ok(params)
}

fn find<'p>(params: &'p [Param], name: &str) -> Option<&'p str> {
    params.iter().find(|p| p.name == name).map(|p| p.value.as_str())
}

fn required<'p>(params: &'p [Param], name: &'static str) -> Result<&'p str, Error> {
    find(params, name).ok_or(Error::MissingParameter(name))
}

/// Builds `Digest p1="v1", p2=v2, …`.
struct HeaderBuilder {
    out: String,
    first: bool,
}

impl HeaderBuilder {
    fn new() -> Self {
        HeaderBuilder { out: String::from(DIGEST_SCHEME), first: true }
    }

    fn sep(&mut self) {
        self.out.push_str(if self.first { " " } else { ", " });
        self.first = false;
    }

    /// `name="value"` with `"` and `\` escaped (RFC 7230 §3.2.6 quoted-pair).
    fn quoted(&mut self, name: &'static str, value: &str) -> Result<&mut Self, Error> {
        if let Some(c) = value.chars().find(|c| !is_qdchar(*c)) {
            return Err(invalid(name, format!("control character {:#04x} cannot be sent", u32::from(c))));
        }
        self.sep();
        self.out.push_str(name);
        self.out.push_str("=\"");
        for c in value.chars() {
            if c == '"' || c == '\\' {
                self.out.push('\\');
            }
            self.out.push(c);
        }
        self.out.push('"');
        Ok(self)
    }

    /// `name=token`.
    fn token(&mut self, name: &'static str, value: &str) -> Result<&mut Self, Error> {
        if value.is_empty() || !value.chars().all(is_tchar) {
            return Err(invalid(name, format!("`{value}` is no token")));
        }
        self.sep();
        self.out.push_str(name);
        self.out.push('=');
        self.out.push_str(value);
        Ok(self)
    }

    fn finish(&mut self) -> String {
        std::mem::take(&mut self.out)
    }
}

// ------------------------------------------------------------------------------------------------
// Digest headers

/// The quality of protection of RFC 2617 §3.2.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Qop {
    /// `auth`: the request line only.
    Auth,
    /// `auth-int`: the request line and H(entity-body). TS 24.109 §4.3 uses this one.
    AuthInt,
}

impl Qop {
    /// The token on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }

    /// A qop token (case-insensitive); `None` if unknown.
    pub fn from_token(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("auth") {
            Some(Qop::Auth)
        } else if s.eq_ignore_ascii_case("auth-int") {
            Some(Qop::AuthInt)
        } else {
            None
        }
    }
}

/// `nc` as 8 lowercase hex digits (RFC 2617 §3.2.2).
pub fn format_nc(nc: u32) -> String {
    format!("{nc:08x}")
}

fn parse_nc(s: &str) -> Result<u32, Error> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("nc", format!("`{s}` is not 8 hex digits")));
    }
    u32::from_str_radix(s, 16).map_err(|e| invalid("nc", e.to_string()))
}

/// A `WWW-Authenticate: Digest …` challenge (RFC 2617 §3.2.1, RFC 3310 §3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    /// realm.
    pub realm: String,
    /// nonce; for AKA the base64 of [`AkaNonce`](crate::ub::AkaNonce).
    pub nonce: String,
    /// algorithm, e.g. [`ALGORITHM_AKAV1_MD5`](crate::ub::ALGORITHM_AKAV1_MD5); `None` means MD5.
    pub algorithm: Option<String>,
    /// The qop values offered (unknown ones are dropped when parsing); empty: no qop.
    pub qop: Vec<Qop>,
    /// opaque, returned unchanged by the client.
    pub opaque: Option<String>,
    /// stale=true: the nonce was stale, the credentials were right.
    pub stale: bool,
}

impl DigestChallenge {
    /// Parses a `WWW-Authenticate` value holding one Digest challenge.
    pub fn parse(header: &str) -> Result<Self, Error> {
        let params = parse_digest_params(header)?;
        let qop = match find(&params, "qop") {
            None => Vec::new(),
            Some(list) => {
                let offered: Vec<Qop> =
                    list.split(',').filter_map(|t| Qop::from_token(t.trim_matches([' ', '\t']))).collect();
                if offered.is_empty() {
                    return Err(invalid("qop", format!("`{list}` offers neither auth nor auth-int")));
                }
                offered
            }
        };
        let stale = match find(&params, "stale") {
            None => false,
            Some(s) if s.eq_ignore_ascii_case("true") => true,
            Some(s) if s.eq_ignore_ascii_case("false") => false,
            Some(s) => return Err(invalid("stale", format!("`{s}` is neither true nor false"))),
        };
        Ok(DigestChallenge {
            realm: required(&params, "realm")?.to_owned(),
            nonce: required(&params, "nonce")?.to_owned(),
            algorithm: find(&params, "algorithm").map(str::to_owned),
            qop,
            opaque: find(&params, "opaque").map(str::to_owned),
            stale,
        })
    }

    /// The header value.
    pub fn to_header_value(&self) -> Result<String, Error> {
        let mut b = HeaderBuilder::new();
        b.quoted("realm", &self.realm)?.quoted("nonce", &self.nonce)?;
        if let Some(a) = &self.algorithm {
            b.token("algorithm", a)?;
        }
        if !self.qop.is_empty() {
            let list: Vec<&str> = self.qop.iter().map(|q| q.as_str()).collect();
            b.quoted("qop", &list.join(","))?;
        }
        if let Some(o) = &self.opaque {
            b.quoted("opaque", o)?;
        }
        if self.stale {
            b.token("stale", "true")?;
        }
        Ok(b.finish())
    }

    /// The qop a client picks: `auth-int` if offered, else `auth`, else none.
    pub fn preferred_qop(&self) -> Option<Qop> {
        if self.qop.contains(&Qop::AuthInt) {
            Some(Qop::AuthInt)
        } else if self.qop.contains(&Qop::Auth) {
            Some(Qop::Auth)
        } else {
            None
        }
    }
}

/// An `Authorization: Digest …` value (RFC 2617 §3.2.2, RFC 3310 §3.3–3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestAuthorization {
    /// username: the IMPI on Ub.
    pub username: String,
    /// realm.
    pub realm: String,
    /// nonce; empty in the first request of a bootstrapping (TS 24.109 §4.3).
    pub nonce: String,
    /// digest-uri, the request target.
    pub uri: String,
    /// request-digest (32 hex digits); empty in the first request.
    pub response: String,
    /// algorithm.
    pub algorithm: Option<String>,
    /// qop; when present `nc` and `cnonce` are too.
    pub qop: Option<Qop>,
    /// nonce-count.
    pub nc: Option<u32>,
    /// cnonce.
    pub cnonce: Option<String>,
    /// opaque, as received in the challenge.
    pub opaque: Option<String>,
    /// auts: base64 of AUTS after a synchronisation failure (RFC 3310 §3.4).
    pub auts: Option<String>,
}

impl DigestAuthorization {
    /// The first request of a bootstrapping: `username="IMPI", realm, nonce="", uri, response=""`
    /// (TS 24.109 §4.3).
    pub fn initial(impi: &str, realm: &str, uri: &str) -> Self {
        DigestAuthorization {
            username: impi.to_owned(),
            realm: realm.to_owned(),
            nonce: String::new(),
            uri: uri.to_owned(),
            response: String::new(),
            algorithm: None,
            qop: None,
            nc: None,
            cnonce: None,
            opaque: None,
            auts: None,
        }
    }

    /// Parses an `Authorization` value. `qop` requires `nc` and `cnonce` and the other way round;
    /// `response` is empty or 32 hex digits.
    pub fn parse(header: &str) -> Result<Self, Error> {
        let params = parse_digest_params(header)?;
        let qop = match find(&params, "qop") {
            None => None,
            Some(q) => Some(Qop::from_token(q).ok_or_else(|| invalid("qop", format!("unknown qop `{q}`")))?),
        };
        let nc = find(&params, "nc").map(parse_nc).transpose()?;
        let cnonce = find(&params, "cnonce").map(str::to_owned);
        match (qop.is_some(), nc.is_some(), cnonce.is_some()) {
            (true, true, true) | (false, false, false) => {}
            (true, false, _) => return Err(Error::MissingParameter("nc")),
            (true, _, false) => return Err(Error::MissingParameter("cnonce")),
            (false, _, _) => return Err(Error::MissingParameter("qop")),
        }
        let response = required(&params, "response")?;
        if !response.is_empty() && (response.len() != 32 || !response.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(invalid("response", "not 32 hex digits"));
        }
        Ok(DigestAuthorization {
            username: required(&params, "username")?.to_owned(),
            realm: required(&params, "realm")?.to_owned(),
            nonce: required(&params, "nonce")?.to_owned(),
            uri: required(&params, "uri")?.to_owned(),
            response: response.to_ascii_lowercase(),
            algorithm: find(&params, "algorithm").map(str::to_owned),
            qop,
            nc,
            cnonce,
            opaque: find(&params, "opaque").map(str::to_owned),
            auts: find(&params, "auts").map(str::to_owned),
        })
    }

    /// The header value.
    pub fn to_header_value(&self) -> Result<String, Error> {
        let mut b = HeaderBuilder::new();
        b.quoted("username", &self.username)?
            .quoted("realm", &self.realm)?
            .quoted("nonce", &self.nonce)?
            .quoted("uri", &self.uri)?;
        if let (Some(q), Some(nc), Some(cnonce)) = (self.qop, self.nc, &self.cnonce) {
            b.token("qop", q.as_str())?.token("nc", &format_nc(nc))?.quoted("cnonce", cnonce)?;
        } else if self.qop.is_some() || self.nc.is_some() || self.cnonce.is_some() {
            return Err(invalid("qop", "qop, nc and cnonce go together"));
        }
        b.quoted("response", &self.response)?;
        if let Some(o) = &self.opaque {
            b.quoted("opaque", o)?;
        }
        if let Some(a) = &self.algorithm {
            b.token("algorithm", a)?;
        }
        if let Some(a) = &self.auts {
            b.quoted("auts", a)?;
        }
        Ok(b.finish())
    }

    /// The answer to `challenge` (RFC 2617 §3.2.2): the challenge's realm, nonce, opaque and
    /// algorithm, its preferred qop ([`DigestChallenge::preferred_qop`]), and the response
    /// computed with `password` (on Ub: the raw RES octets, RFC 3310 §3.3).
    pub fn answer(
        challenge: &DigestChallenge,
        username: &str,
        password: &[u8],
        request: &DigestRequest<'_>,
        cnonce: &str,
        nc: u32,
    ) -> Self {
        let qop = challenge.preferred_qop();
        let input = DigestInput {
            username,
            realm: &challenge.realm,
            password,
            method: request.method,
            uri: request.uri,
            nonce: &challenge.nonce,
            qop,
            nc,
            cnonce,
            entity_body: request.entity_body,
        };
        DigestAuthorization {
            username: username.to_owned(),
            realm: challenge.realm.clone(),
            nonce: challenge.nonce.clone(),
            uri: request.uri.to_owned(),
            response: digest_response(&input),
            algorithm: challenge.algorithm.clone(),
            qop,
            nc: qop.map(|_| nc),
            cnonce: qop.map(|_| cnonce.to_owned()),
            opaque: challenge.opaque.clone(),
            auts: None,
        }
    }

    /// The [`DigestInput`] of this header for a given password, method and body.
    pub fn digest_input<'a>(
        &'a self,
        password: &'a [u8],
        method: &'a str,
        entity_body: &'a [u8],
    ) -> DigestInput<'a> {
        DigestInput {
            username: &self.username,
            realm: &self.realm,
            password,
            method,
            uri: &self.uri,
            nonce: &self.nonce,
            qop: self.qop,
            nc: self.nc.unwrap_or(0),
            cnonce: self.cnonce.as_deref().unwrap_or(""),
            entity_body,
        }
    }

    /// The server's check (RFC 2617 §3.2.2): recomputes the response with `password` (on Ub the
    /// XRES octets, or the empty password with `auts`) and compares in constant time.
    pub fn verify(&self, password: &[u8], method: &str, entity_body: &[u8]) -> bool {
        let expected = digest_response(&self.digest_input(password, method, entity_body));
        bool::from(expected.as_bytes().ct_eq(self.response.as_bytes()))
    }
}

/// The parts of the HTTP request that enter the digest.
#[derive(Debug, Clone, Copy)]
pub struct DigestRequest<'a> {
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// The digest-uri (the request target).
    pub uri: &'a str,
    /// The request body (H(entity-body) enters A2 with `auth-int`).
    pub entity_body: &'a [u8],
}

/// An `Authentication-Info` value (RFC 2617 §3.2.3); on Ub it comes with the 200 OK.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthenticationInfo {
    /// qop of the request.
    pub qop: Option<Qop>,
    /// rspauth: the server's digest (see [`rspauth`]).
    pub rspauth: Option<String>,
    /// cnonce of the request.
    pub cnonce: Option<String>,
    /// nc of the request.
    pub nc: Option<u32>,
    /// nextnonce.
    pub nextnonce: Option<String>,
}

impl AuthenticationInfo {
    /// Parses an `Authentication-Info` value (a bare auth-param list, no scheme).
    pub fn parse(header: &str) -> Result<Self, Error> {
        // The same list syntax as after "Digest ".
        let params = parse_digest_params(&format!("{DIGEST_SCHEME} {header}"))?;
        let qop = match find(&params, "qop") {
            None => None,
            Some(q) => Some(Qop::from_token(q).ok_or_else(|| invalid("qop", format!("unknown qop `{q}`")))?),
        };
        let rspauth = find(&params, "rspauth").map(str::to_owned);
        if let Some(r) = &rspauth
            && (r.len() != 32 || !r.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(invalid("rspauth", "not 32 hex digits"));
        }
        Ok(AuthenticationInfo {
            qop,
            rspauth: rspauth.map(|r| r.to_ascii_lowercase()),
            cnonce: find(&params, "cnonce").map(str::to_owned),
            nc: find(&params, "nc").map(parse_nc).transpose()?,
            nextnonce: find(&params, "nextnonce").map(str::to_owned),
        })
    }

    /// The header value (without a scheme). Empty fields are left out; with none set there is no
    /// value to send (an empty parameter list does not parse), which is an error.
    pub fn to_header_value(&self) -> Result<String, Error> {
        if *self == AuthenticationInfo::default() {
            return Err(Error::Header("an Authentication-Info without any parameter".into()));
        }
        let mut b = HeaderBuilder::new();
        if let Some(q) = self.qop {
            b.token("qop", q.as_str())?;
        }
        if let Some(r) = &self.rspauth {
            b.quoted("rspauth", r)?;
        }
        if let Some(c) = &self.cnonce {
            b.quoted("cnonce", c)?;
        }
        if let Some(nc) = self.nc {
            b.token("nc", &format_nc(nc))?;
        }
        if let Some(n) = &self.nextnonce {
            b.quoted("nextnonce", n)?;
        }
        let full = b.finish();
        Ok(full.strip_prefix(DIGEST_SCHEME).unwrap_or(&full).trim_start().to_owned())
    }
}

// ------------------------------------------------------------------------------------------------
// The digest computation (RFC 2617 §3.2.2, RFC 3310 §3.3)

/// Everything the request-digest depends on.
#[derive(Clone, Copy)]
pub struct DigestInput<'a> {
    /// username.
    pub username: &'a str,
    /// realm.
    pub realm: &'a str,
    /// The password octets: RES (or XRES on the server) for AKAv1-MD5, empty after AUTS.
    pub password: &'a [u8],
    /// The HTTP method; empty for `rspauth`.
    pub method: &'a str,
    /// digest-uri.
    pub uri: &'a str,
    /// nonce.
    pub nonce: &'a str,
    /// qop; `None` is the RFC 2069 form.
    pub qop: Option<Qop>,
    /// nonce-count (ignored without qop).
    pub nc: u32,
    /// cnonce (ignored without qop).
    pub cnonce: &'a str,
    /// The entity body (only with `auth-int`).
    pub entity_body: &'a [u8],
}

impl fmt::Debug for DigestInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DigestInput")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .field("method", &self.method)
            .field("uri", &self.uri)
            .field("qop", &self.qop)
            .finish_non_exhaustive()
    }
}

fn to_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// H(data) = lowercase hex of MD5 over the concatenated parts (RFC 2617 §3.2.1).
fn md5_hex(parts: &[&[u8]]) -> String {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    to_hex(&h.finalize())
}

/// The request-digest of RFC 2617 §3.2.2.1, 32 lowercase hex digits:
///
/// ```text
/// HA1 = H(username ":" realm ":" password)
/// HA2 = H(method ":" uri)                      (qop = auth, or none)
///     = H(method ":" uri ":" H(entity-body))   (qop = auth-int)
/// response = H(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" HA2)   (with qop)
///          = H(HA1 ":" nonce ":" HA2)                             (without)
/// ```
pub fn digest_response(i: &DigestInput<'_>) -> String {
    let ha1 = md5_hex(&[i.username.as_bytes(), b":", i.realm.as_bytes(), b":", i.password]);
    let ha2 = match i.qop {
        Some(Qop::AuthInt) => {
            let body = md5_hex(&[i.entity_body]);
            md5_hex(&[i.method.as_bytes(), b":", i.uri.as_bytes(), b":", body.as_bytes()])
        }
        _ => md5_hex(&[i.method.as_bytes(), b":", i.uri.as_bytes()]),
    };
    match i.qop {
        Some(q) => {
            let nc = format_nc(i.nc);
            md5_hex(&[
                ha1.as_bytes(),
                b":",
                i.nonce.as_bytes(),
                b":",
                nc.as_bytes(),
                b":",
                i.cnonce.as_bytes(),
                b":",
                q.as_str().as_bytes(),
                b":",
                ha2.as_bytes(),
            ])
        }
        None => md5_hex(&[ha1.as_bytes(), b":", i.nonce.as_bytes(), b":", ha2.as_bytes()]),
    }
}

/// rspauth of `Authentication-Info` (RFC 2617 §3.2.3): the request-digest with an empty method
/// and, for `auth-int`, the response body as entity body. `request` is the input of the
/// request's digest (same username, realm, password, uri, nonce, nc, cnonce, qop).
pub fn rspauth(request: &DigestInput<'_>, response_body: &[u8]) -> String {
    digest_response(&DigestInput { method: "", entity_body: response_body, ..*request })
}

/// Checks a received rspauth in constant time.
pub fn verify_rspauth(request: &DigestInput<'_>, response_body: &[u8], received: &str) -> bool {
    let expected = rspauth(request, response_body);
    bool::from(expected.as_bytes().ct_eq(received.to_ascii_lowercase().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::ub::ALGORITHM_AKAV1_MD5;

    /// Found by the `ub_headers` fuzz target: a value of unknown parameters only parsed to an
    /// empty `AuthenticationInfo`, whose header value was the empty string, which does not parse.
    /// Writing an empty one is now refused; what is written always parses back.
    #[test]
    fn an_authentication_info_without_parameters_is_not_written() {
        let info = AuthenticationInfo::parse("examjM0=uTl.3gppnetw&pnetwork.oMD5").unwrap();
        assert_eq!(info, AuthenticationInfo::default());
        assert!(info.to_header_value().is_err());
        assert!(AuthenticationInfo::parse("").is_err());
        let some = AuthenticationInfo { nextnonce: Some("abc".into()), ..AuthenticationInfo::default() };
        assert_eq!(AuthenticationInfo::parse(&some.to_header_value().unwrap()).unwrap(), some);
    }

    /// RFC 2617 §3.5 (the published example, confirmed in the RFC errata): Mufasa / "Circle Of
    /// Life", qop=auth, response 6629fae49393a05397450978507c4ef1.
    #[test]
    fn rfc_2617_example() {
        let header = r#"Digest username="Mufasa",
                 realm="testrealm@host.com",
                 nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
                 uri="/dir/index.html",
                 qop=auth,
                 nc=00000001,
                 cnonce="0a4f113b",
                 response="6629fae49393a05397450978507c4ef1",
                 opaque="5ccc069c403ebaf9f0171e9517f40e41""#
            .replace('\n', " ");
        let a = DigestAuthorization::parse(&header).unwrap();
        assert_eq!(a.username, "Mufasa");
        assert_eq!(a.qop, Some(Qop::Auth));
        assert_eq!(a.nc, Some(1));
        assert!(a.verify(b"Circle Of Life", "GET", b""));
        assert!(!a.verify(b"Circle of Life", "GET", b""));
        assert_eq!(digest_response(&a.digest_input(b"Circle Of Life", "GET", b"")), a.response);

        let ch = DigestChallenge::parse(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        assert_eq!(ch.qop, vec![Qop::Auth, Qop::AuthInt]);
        assert_eq!(ch.preferred_qop(), Some(Qop::AuthInt));
        // The same answer through the client API with qop forced to auth.
        let ch_auth = DigestChallenge { qop: vec![Qop::Auth], ..ch };
        let req = DigestRequest { method: "GET", uri: "/dir/index.html", entity_body: b"" };
        let ans = DigestAuthorization::answer(&ch_auth, "Mufasa", b"Circle Of Life", &req, "0a4f113b", 1);
        assert_eq!(ans.response, "6629fae49393a05397450978507c4ef1");
    }

    /// RFC 1321 appendix A.5 test suite: MD5("") and MD5("abc").
    #[test]
    fn md5_rfc_1321() {
        assert_eq!(md5_hex(&[b""]), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(&[b"a", b"bc"]), "900150983cd24fb0d6963f7d28e17f72");
    }

    /// auth-int and the binary RES password, recomputed by Python's hashlib at test time.
    #[test]
    fn auth_int_with_binary_password_matches_python() {
        let res = [0xa5, 0x42, 0x11, 0xd5, 0xe3, 0xba, 0x50, 0xbf];
        let body = b"<x>\x00\xff</x>";
        let input = DigestInput {
            username: "user@ims.example",
            realm: "bsf.example.org",
            password: &res,
            method: "GET",
            uri: "/",
            nonce: "I1U8vpY3qJ0hiuZNrke/NVXzKLQ1d7m5jH8/DXI/skQ=",
            qop: Some(Qop::AuthInt),
            nc: 1,
            cnonce: "0a4f113b",
            entity_body: body,
        };
        let script = "import hashlib,sys\n\
            h=lambda b: hashlib.md5(b).hexdigest().encode()\n\
            a=sys.argv\n\
            ha1=h(a[1].encode()+b':'+a[2].encode()+b':'+bytes.fromhex(a[3]))\n\
            ha2=h(b'GET:/:'+h(bytes.fromhex(a[4])))\n\
            print(h(ha1+b':'+a[5].encode()+b':00000001:0a4f113b:auth-int:'+ha2).decode())\n\
            print(h(ha1+b':'+a[5].encode()+b':00000001:0a4f113b:auth-int:'+h(b':/:'+h(bytes.fromhex(a[4])))).decode())";
        let out = std::process::Command::new("python3")
            .args(["-c", script, input.username, input.realm, &to_hex(&res), &to_hex(body), input.nonce])
            .output();
        match out {
            Ok(o) if o.status.success() => {
                let text = String::from_utf8(o.stdout).unwrap();
                let mut lines = text.lines();
                assert_eq!(lines.next().unwrap(), digest_response(&input));
                assert_eq!(lines.next().unwrap(), rspauth(&input, body));
            }
            _ if std::env::var_os("KEYSIM_REQUIRE_ORACLES").is_some() => {
                panic!("python3 is required (KEYSIM_REQUIRE_ORACLES is set)")
            }
            _ => eprintln!("python3 not available: skipping the hashlib cross-check"),
        }
    }

    #[test]
    fn malformed_headers_are_refused_with_a_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "no authentication scheme"),
            ("Basic dXNlcjpwYXNz", "not Digest"),
            ("Digest", "no parameters"),
            ("Digest ", "no parameters"),
            ("Digest username", "no `=value`"),
            ("Digest username=\"abc", "unterminated"),
            ("Digest username=\"a\\", "bad escape"),
            ("Digest username=\"a\u{1}b\"", "control character"),
            ("Digest username=", "empty unquoted value"),
            ("Digest username=\"a\" realm=\"b\"", "unexpected 'r'"),
            ("Digest username=\"a\", username=\"b\"", "appears twice"),
            ("Digest =x", "expected a parameter name"),
        ];
        for (header, why) in cases {
            let e = DigestAuthorization::parse(header).unwrap_err().to_string();
            assert!(e.contains(why), "{header:?}: {e}");
        }
        let base = "Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"/\"";
        let e = DigestAuthorization::parse(base).unwrap_err();
        assert_eq!(e, Error::MissingParameter("response"));
        let e = DigestAuthorization::parse(&format!("{base}, response=\"xyz\"")).unwrap_err();
        assert!(matches!(e, Error::InvalidParameter { name: "response", .. }));
        let e = DigestAuthorization::parse(&format!("{base}, response=\"\", qop=auth")).unwrap_err();
        assert_eq!(e, Error::MissingParameter("nc"));
        let e = DigestAuthorization::parse(&format!("{base}, response=\"\", qop=auth, nc=1, cnonce=\"c\""))
            .unwrap_err();
        assert!(matches!(e, Error::InvalidParameter { name: "nc", .. }));
        let e = DigestAuthorization::parse(&format!("{base}, response=\"\", qop=bogus")).unwrap_err();
        assert!(matches!(e, Error::InvalidParameter { name: "qop", .. }));
        // Case-insensitive scheme and names, odd spacing and empty list elements are fine.
        let ok = DigestAuthorization::parse(
            "digest  USERNAME = \"u\" ,, realm=r,nonce=\"\",uri=\"/\",response=\"\" ,",
        )
        .unwrap();
        assert_eq!((ok.username.as_str(), ok.realm.as_str()), ("u", "r"));
        // Builders refuse what cannot travel in a header.
        let mut a = DigestAuthorization::initial("a\r\nb", "r", "/");
        assert!(a.to_header_value().is_err());
        a.username = "ok".into();
        a.algorithm = Some("not a token".into());
        assert!(a.to_header_value().is_err());
    }

    proptest::proptest! {
        #[test]
        fn digest_headers_round_trip(
            username in "[ -~]{0,40}", realm in "[ -~\\t]{0,40}", nonce in "[ -~]{0,60}", uri in "[!-~]{1,30}",
            cnonce in "[ -~]{0,20}", nc in proptest::prelude::any::<u32>(), qop_int in proptest::prelude::any::<bool>(),
            with_qop in proptest::prelude::any::<bool>(), auts in proptest::option::of("[A-Za-z0-9+/=]{0,24}"),
            password in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..16)) {
            let ch = DigestChallenge {
                realm: realm.clone(), nonce: nonce.clone(), algorithm: Some(ALGORITHM_AKAV1_MD5.into()),
                qop: if with_qop { vec![if qop_int { Qop::AuthInt } else { Qop::Auth }] } else { vec![] },
                opaque: Some(cnonce.clone()), stale: qop_int,
            };
            proptest::prop_assert_eq!(DigestChallenge::parse(&ch.to_header_value().unwrap()).unwrap(), ch.clone());
            let req = DigestRequest { method: "GET", uri: &uri, entity_body: &password };
            let mut a = DigestAuthorization::answer(&ch, &username, &password, &req, &cnonce, nc);
            a.auts = auts;
            let back = DigestAuthorization::parse(&a.to_header_value().unwrap()).unwrap();
            proptest::prop_assert!(back.verify(&password, "GET", &password));
            proptest::prop_assert_eq!(back, a);
        }
    }
}
