//! Header fields of RFC 3261 §7.3 and §20: names and compact forms (§7.3.3), comma-separated
//! lists (§7.3.1), parameters, and the typed values of Via (§20.42), From / To / Contact (§20.10,
//! §20.20, §20.39) and P-Asserted-Identity (RFC 3325 §9.1) as [`NameAddr`], CSeq (§20.16) and
//! Warning (§20.43).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::message::Method;
use crate::uri::{parse_hostport, write_hostport};
use crate::{Error, MAX_CSEQ, MAX_LIST_ITEMS, cut};

/// Via (RFC 3261 §20.42).
pub const VIA: &str = "Via";
/// From (RFC 3261 §20.20).
pub const FROM: &str = "From";
/// To (RFC 3261 §20.39).
pub const TO: &str = "To";
/// Call-ID (RFC 3261 §20.8).
pub const CALL_ID: &str = "Call-ID";
/// CSeq (RFC 3261 §20.16).
pub const CSEQ: &str = "CSeq";
/// Contact (RFC 3261 §20.10).
pub const CONTACT: &str = "Contact";
/// Max-Forwards (RFC 3261 §20.22).
pub const MAX_FORWARDS: &str = "Max-Forwards";
/// Content-Type (RFC 3261 §20.15).
pub const CONTENT_TYPE: &str = "Content-Type";
/// Content-Length (RFC 3261 §20.14).
pub const CONTENT_LENGTH: &str = "Content-Length";
/// P-Asserted-Identity (RFC 3325 §9.1).
pub const P_ASSERTED_IDENTITY: &str = "P-Asserted-Identity";
/// P-Preferred-Identity (RFC 3325 §9.2).
pub const P_PREFERRED_IDENTITY: &str = "P-Preferred-Identity";
/// Warning (RFC 3261 §20.43).
pub const WARNING: &str = "Warning";
/// Allow (RFC 3261 §20.5).
pub const ALLOW: &str = "Allow";
/// Accept (RFC 3261 §20.1).
pub const ACCEPT: &str = "Accept";
/// Record-Route (RFC 3261 §20.30).
pub const RECORD_ROUTE: &str = "Record-Route";
/// Route (RFC 3261 §20.34).
pub const ROUTE: &str = "Route";
/// User-Agent (RFC 3261 §20.41).
pub const USER_AGENT: &str = "User-Agent";
/// Server (RFC 3261 §20.35).
pub const SERVER: &str = "Server";

/// Compact forms (RFC 3261 §7.3.3 and the IANA SIP header field registry): letter → full name.
pub const COMPACT_FORMS: [(char, &str); 19] = [
    ('a', "Accept-Contact"),
    ('b', "Referred-By"),
    ('c', CONTENT_TYPE),
    ('d', "Request-Disposition"),
    ('e', "Content-Encoding"),
    ('f', FROM),
    ('i', CALL_ID),
    ('j', "Reject-Contact"),
    ('k', "Supported"),
    ('l', CONTENT_LENGTH),
    ('m', CONTACT),
    ('o', "Event"),
    ('r', "Refer-To"),
    ('s', "Subject"),
    ('t', TO),
    ('u', "Allow-Events"),
    ('v', VIA),
    ('x', "Session-Expires"),
    ('y', "Identity"),
];

/// Header names written in their canonical spelling whatever case they arrive in.
const KNOWN_NAMES: [&str; 36] = [
    VIA,
    FROM,
    TO,
    CALL_ID,
    CSEQ,
    CONTACT,
    MAX_FORWARDS,
    CONTENT_TYPE,
    CONTENT_LENGTH,
    "Content-Encoding",
    P_ASSERTED_IDENTITY,
    P_PREFERRED_IDENTITY,
    WARNING,
    ALLOW,
    ACCEPT,
    RECORD_ROUTE,
    ROUTE,
    USER_AGENT,
    SERVER,
    "Supported",
    "Require",
    "Unsupported",
    "Proxy-Require",
    "Expires",
    "Subject",
    "Reason",
    "Event",
    "Allow-Events",
    "WWW-Authenticate",
    "Authorization",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Retry-After",
    "Refer-To",
    "Referred-By",
    "Session-Expires",
];

/// Header fields whose value may be a comma-separated list (RFC 3261 §7.3.1), so that several
/// values may share one line.
const LIST_NAMES: [&str; 20] = [
    VIA,
    CONTACT,
    ROUTE,
    RECORD_ROUTE,
    P_ASSERTED_IDENTITY,
    P_PREFERRED_IDENTITY,
    ALLOW,
    ACCEPT,
    WARNING,
    "Supported",
    "Require",
    "Unsupported",
    "Proxy-Require",
    "Reason",
    "Allow-Events",
    "Content-Encoding",
    "Accept-Encoding",
    "Accept-Language",
    "Path",
    "Service-Route",
];

/// True for a `token` character (RFC 3261 §25.1).
pub fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-.!%*_+`'~".contains(c)
}

/// True if `s` is a non-empty token.
pub fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_token_char)
}

/// The canonical spelling of a header name: compact forms expanded, known names in their usual
/// case, others as given.
pub fn canonical_name(name: &str) -> &str {
    let mut chars = name.chars();
    if let (Some(c), None) = (chars.next(), chars.next())
        && let Some((_, full)) = COMPACT_FORMS.iter().find(|(k, _)| k.eq_ignore_ascii_case(&c))
    {
        return full;
    }
    KNOWN_NAMES.iter().find(|k| k.eq_ignore_ascii_case(name)).copied().unwrap_or(name)
}

/// True if two header names denote the same field (case-insensitive, compact forms expanded).
pub fn same_name(a: &str, b: &str) -> bool {
    canonical_name(a).eq_ignore_ascii_case(canonical_name(b))
}

/// True if the field's values may be comma-separated lists.
pub fn is_list_header(name: &str) -> bool {
    LIST_NAMES.iter().any(|n| same_name(n, name))
}

/// Splits a header value at the commas that separate list values: not inside a quoted string or
/// angle brackets. Values are trimmed; an empty value, an unclosed quote or bracket, or more than
/// [`MAX_LIST_ITEMS`] values are refused.
pub fn split_list(value: &str) -> Result<Vec<&str>, &'static str> {
    let mut out = Vec::new();
    let (mut in_quote, mut escaped, mut in_angle) = (false, false, false);
    let mut start = 0;
    for (i, c) in value.char_indices() {
        if in_quote {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_quote = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_quote = true,
            '<' if in_angle => return Err("`<` inside angle brackets"),
            '<' => in_angle = true,
            '>' if !in_angle => return Err("`>` without `<`"),
            '>' => in_angle = false,
            ',' if !in_angle => {
                out.push(value.get(start..i).unwrap_or_default().trim());
                start = i + 1;
                if out.len() >= MAX_LIST_ITEMS {
                    return Err("too many values");
                }
            }
            _ => {}
        }
    }
    if in_quote {
        return Err("unclosed quoted string");
    }
    if in_angle {
        return Err("unclosed `<`");
    }
    out.push(value.get(start..).unwrap_or_default().trim());
    if out.iter().any(|v| v.is_empty()) {
        return Err("empty value in a list");
    }
    Ok(out)
}

/// Reads a quoted string at the start of `s` (RFC 3261 §25.1 quoted-string): the unescaped text
/// and what follows the closing quote.
pub fn parse_quoted(s: &str) -> Result<(String, &str), &'static str> {
    let rest = s.strip_prefix('"').ok_or("no opening quote")?;
    let mut out = String::new();
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        if c.is_control() && c != '\t' {
            return Err("control character in a quoted string");
        }
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return Ok((out, rest.get(i + 1..).unwrap_or_default()));
        } else {
            out.push(c);
        }
    }
    Err("unclosed quoted string")
}

/// Writes `s` as a quoted string (escaping `"` and `\`).
pub fn write_quoted(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        if c == '"' || c == '\\' {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char('"')
}

/// A parameter `;name` or `;name=value` (of a header value or a URI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The name, as written.
    pub name: String,
    /// The value as written (a quoted value keeps its quotes); `None` without `=`.
    pub value: Option<String>,
}

impl Param {
    /// A parameter with a value.
    pub fn new(name: &str, value: &str) -> Self {
        Param { name: name.to_owned(), value: Some(value.to_owned()) }
    }

    /// A parameter without value (`;lr`).
    pub fn flag(name: &str) -> Self {
        Param { name: name.to_owned(), value: None }
    }
}

fn is_param_value_char(c: char) -> bool {
    is_token_char(c) || "[]:/&+$".contains(c)
}

/// Parses `;name[=value]…` (empty input: no parameters). Blanks around `;` and `=` are allowed.
pub(crate) fn parse_params(s: &str) -> Result<Vec<Param>, &'static str> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        rest = rest.strip_prefix(';').ok_or("parameters must start with `;`")?.trim_start();
        let name_end = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
        let name = rest.get(..name_end).unwrap_or_default();
        if name.is_empty() {
            return Err("empty parameter name");
        }
        rest = rest.get(name_end..).unwrap_or_default().trim_start();
        let value = if let Some(v) = rest.strip_prefix('=') {
            let v = v.trim_start();
            if v.starts_with('"') {
                let (_, after) = parse_quoted(v)?;
                let raw = v.get(..v.len() - after.len()).unwrap_or_default();
                rest = after.trim_start();
                Some(raw.to_owned())
            } else {
                let end = v.find(|c: char| !is_param_value_char(c)).unwrap_or(v.len());
                let raw = v.get(..end).unwrap_or_default();
                if raw.is_empty() {
                    return Err("empty parameter value");
                }
                rest = v.get(end..).unwrap_or_default().trim_start();
                Some(raw.to_owned())
            }
        } else {
            None
        };
        if !rest.is_empty() && !rest.starts_with(';') {
            return Err("junk after a parameter");
        }
        out.push(Param { name: name.to_owned(), value });
        if out.len() > MAX_LIST_ITEMS {
            return Err("too many parameters");
        }
    }
    Ok(out)
}

/// Writes parameters as `;name[=value]`.
pub(crate) fn write_params(f: &mut impl fmt::Write, params: &[Param]) -> fmt::Result {
    for p in params {
        match &p.value {
            Some(v) => write!(f, ";{}={v}", p.name)?,
            None => write!(f, ";{}", p.name)?,
        }
    }
    Ok(())
}

fn find_param<'a>(params: &'a [Param], name: &str) -> Option<&'a Param> {
    params.iter().find(|p| p.name.eq_ignore_ascii_case(name))
}

fn set_param(params: &mut Vec<Param>, name: &str, value: Option<&str>) {
    let value = value.map(str::to_owned);
    match params.iter_mut().find(|p| p.name.eq_ignore_ascii_case(name)) {
        Some(p) => p.value = value,
        None => params.push(Param { name: name.to_owned(), value }),
    }
}

/// True if `uri` looks like an absolute URI: a scheme, a colon, no blank, control character,
/// quote or angle bracket.
pub fn is_absolute_uri(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else { return false };
    let mut sc = scheme.chars();
    sc.next().is_some_and(|c| c.is_ascii_alphabetic())
        && sc.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !rest.is_empty()
        && !rest.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"'))
}

// ------------------------------------------------------------------------------------------------
// Via

/// One Via value (RFC 3261 §20.42): `SIP/2.0/UDP host:port;branch=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport (`UDP`, `TCP`, …), as written.
    pub transport: String,
    /// Host of sent-by (IPv6 without brackets).
    pub host: String,
    /// Port of sent-by.
    pub port: Option<u16>,
    /// Parameters (`branch`, `received`, `rport`, …).
    pub params: Vec<Param>,
}

impl Via {
    /// A Via for `transport` from `host:port` with a branch.
    pub fn new(transport: &str, host: &str, port: Option<u16>, branch: &str) -> Self {
        Via {
            transport: transport.to_owned(),
            host: host.to_owned(),
            port,
            params: vec![Param::new("branch", branch)],
        }
    }

    /// Parses one Via value.
    pub fn parse(value: &str) -> Result<Self, Error> {
        let bad = |reason| Error::BadHeader { name: VIA, value: cut(value), reason };
        // sent-protocol with optional blanks around the slashes (SLASH = SWS "/" SWS).
        let mut parts = value.trim().splitn(3, '/');
        let (name, version, rest) = match (parts.next(), parts.next(), parts.next()) {
            (Some(n), Some(v), Some(r)) => (n.trim(), v.trim(), r.trim_start()),
            _ => return Err(bad("no SIP/2.0/transport")),
        };
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return Err(bad("protocol is not SIP/2.0"));
        }
        let t_end = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
        let transport = rest.get(..t_end).unwrap_or_default();
        let after = rest.get(t_end..).unwrap_or_default();
        if transport.is_empty() {
            return Err(bad("no transport"));
        }
        if !after.starts_with([' ', '\t']) {
            return Err(bad("no blank before sent-by"));
        }
        let after = after.trim_start();
        let (sent_by, params) = match after.find(';') {
            Some(i) => (after.get(..i).unwrap_or_default().trim(), after.get(i..).unwrap_or_default()),
            None => (after.trim(), ""),
        };
        let (host, port) = parse_hostport(sent_by).map_err(bad)?;
        let params = parse_params(params).map_err(bad)?;
        Ok(Via { transport: transport.to_owned(), host, port, params })
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.param("branch").flatten()
    }

    /// A parameter's value (`Some(None)` without value).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name).map(|p| p.value.as_deref())
    }

    /// Sets (or adds) a parameter.
    pub fn set_param(&mut self, name: &str, value: Option<&str>) {
        set_param(&mut self.params, name, value);
    }

    /// What a server's transport adds to the topmost Via of a request that arrived from
    /// `source` (RFC 3261 §18.2.1: `received` when sent-by is not the source address; RFC 3581
    /// §4: the source port in an empty `rport`).
    pub fn stamp_received(&mut self, source: SocketAddr) {
        if self.host.parse::<IpAddr>().ok() != Some(source.ip()) {
            self.set_param("received", Some(&source.ip().to_string()));
        }
        if self.param("rport") == Some(None) {
            self.set_param("rport", Some(&source.port().to_string()));
        }
    }

    /// Where a response to the request that carried this Via (as the first one) goes over UDP
    /// (RFC 3261 §18.2.2, RFC 3581 §4): the `received` address (else the sent-by host, if it is
    /// an address), and the `rport` port (else the sent-by port, else 5060). `None` when the host
    /// is a name without `received`.
    pub fn response_target(&self) -> Option<SocketAddr> {
        let ip: IpAddr = match self.param("received").flatten() {
            Some(r) => r.parse().ok()?,
            None => self.host.parse().ok()?,
        };
        let port = match self.param("rport").flatten() {
            Some(p) => p.parse().ok()?,
            None => self.port.unwrap_or(DEFAULT_PORT),
        };
        Some(SocketAddr::new(ip, port))
    }
}

/// The default SIP port over UDP and TCP (RFC 3261 §19.1.2).
pub const DEFAULT_PORT: u16 = 5060;

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} ", self.transport)?;
        write_hostport(f, &self.host, self.port)?;
        write_params(f, &self.params)
    }
}

// ------------------------------------------------------------------------------------------------
// name-addr / addr-spec

/// A `name-addr` or `addr-spec` with header parameters: From, To, Contact, Route,
/// P-Asserted-Identity (RFC 3261 §20.10, §20.20, §20.39; RFC 3325 §9.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name (unquoted); `None` when absent or empty.
    pub display: Option<String>,
    /// The URI, as written.
    pub uri: String,
    /// Header parameters (`tag`, `expires`, …).
    pub params: Vec<Param>,
}

impl NameAddr {
    /// `<uri>` without display name or parameters.
    pub fn new(uri: &str) -> Self {
        NameAddr { display: None, uri: uri.to_owned(), params: Vec::new() }
    }

    /// Parses one value of `name` (the header's name, for the error).
    pub fn parse_named(name: &'static str, value: &str) -> Result<Self, Error> {
        let bad = |reason| Error::BadHeader { name, value: cut(value), reason };
        let s = value.trim();
        let (display, rest) = if s.starts_with('"') {
            let (d, rest) = parse_quoted(s).map_err(bad)?;
            let rest = rest.trim_start();
            if !rest.starts_with('<') {
                return Err(bad("no `<` after the display name"));
            }
            (Some(d), rest)
        } else if let Some(i) = s.find('<') {
            let d = s.get(..i).unwrap_or_default().trim();
            if !d.chars().all(|c| is_token_char(c) || c == ' ' || c == '\t') {
                return Err(bad("display name neither quoted nor tokens"));
            }
            (Some(d.to_owned()), s.get(i..).unwrap_or_default())
        } else {
            (None, s)
        };
        let (uri, params) = if let Some(inner) = rest.strip_prefix('<') {
            let (uri, after) = inner.split_once('>').ok_or_else(|| bad("no `>`"))?;
            (uri, after)
        } else {
            // addr-spec: the URI cannot carry `;` parameters, `?` headers or commas here.
            let end = rest.find(';').unwrap_or(rest.len());
            let uri = rest.get(..end).unwrap_or_default().trim();
            if uri.contains([',', '?']) {
                return Err(bad("a URI with `,` or `?` needs angle brackets"));
            }
            (uri, rest.get(end..).unwrap_or_default())
        };
        if !is_absolute_uri(uri) {
            return Err(bad("no valid URI"));
        }
        let params = parse_params(params).map_err(bad)?;
        let display = display.filter(|d| !d.is_empty());
        Ok(NameAddr { display, uri: uri.to_owned(), params })
    }

    /// The tag parameter (From, To).
    pub fn tag(&self) -> Option<&str> {
        self.param("tag").flatten()
    }

    /// A parameter's value (`Some(None)` without value).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        find_param(&self.params, name).map(|p| p.value.as_deref())
    }

    /// Sets (or adds) a parameter.
    pub fn set_param(&mut self, name: &str, value: Option<&str>) {
        set_param(&mut self.params, name, value);
    }

    /// The URI as a SIP URI, if it is one.
    pub fn sip_uri(&self) -> Result<crate::SipUri, Error> {
        crate::SipUri::parse(&self.uri)
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = self.display.as_deref().filter(|d| !d.is_empty()) {
            write_quoted(f, d)?;
            f.write_char(' ')?;
        }
        write!(f, "<{}>", self.uri)?;
        write_params(f, &self.params)
    }
}

use std::fmt::Write as _;

// ------------------------------------------------------------------------------------------------
// CSeq

/// CSeq (RFC 3261 §20.16): sequence number and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number, at most [`MAX_CSEQ`].
    pub seq: u32,
    /// The method.
    pub method: Method,
}

impl CSeq {
    /// Parses a CSeq value.
    pub fn parse(value: &str) -> Result<Self, Error> {
        let bad = |reason| Error::BadHeader { name: CSEQ, value: cut(value), reason };
        let mut parts = value.split_whitespace();
        let (Some(seq), Some(method), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("not `number method`"));
        };
        if seq.len() > 10 || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("sequence number is not a number"));
        }
        let seq =
            seq.parse::<u64>().ok().filter(|s| *s <= u64::from(MAX_CSEQ)).ok_or(bad("above 2**31 - 1"))?;
        let method = Method::new(method).map_err(|_| bad("bad method"))?;
        Ok(CSeq { seq: seq as u32, method })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

// ------------------------------------------------------------------------------------------------
// Warning

/// One Warning value (RFC 3261 §20.43): `399 host "text"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Three-digit warn-code.
    pub code: u16,
    /// warn-agent: `host[:port]` or a pseudonym token.
    pub agent: String,
    /// warn-text (unquoted).
    pub text: String,
}

impl Warning {
    /// A warning.
    pub fn new(code: u16, agent: &str, text: &str) -> Self {
        Warning { code, agent: agent.to_owned(), text: text.to_owned() }
    }

    /// Parses one Warning value.
    pub fn parse(value: &str) -> Result<Self, Error> {
        let bad = |reason| Error::BadHeader { name: WARNING, value: cut(value), reason };
        let s = value.trim();
        let (code, rest) = s.split_once(' ').ok_or(bad("no warn-code"))?;
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("warn-code is not three digits"));
        }
        let code = code.parse::<u16>().map_err(|_| bad("warn-code is not three digits"))?;
        let (agent, text) = rest.trim_start().split_once(' ').ok_or(bad("no warn-text"))?;
        let agent_ok = parse_hostport(agent).is_ok() || is_token(agent);
        if !agent_ok {
            return Err(bad("bad warn-agent"));
        }
        let (text, after) = parse_quoted(text.trim_start()).map_err(bad)?;
        if !after.trim().is_empty() {
            return Err(bad("junk after warn-text"));
        }
        Ok(Warning { code, agent: agent.to_owned(), text })
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03} {} ", self.code, self.agent)?;
        write_quoted(f, &self.text)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn names_and_compact_forms() {
        assert_eq!(canonical_name("v"), "Via");
        assert_eq!(canonical_name("I"), "Call-ID");
        assert_eq!(canonical_name("call-id"), "Call-ID");
        assert_eq!(canonical_name("p-asserted-identity"), "P-Asserted-Identity");
        assert_eq!(canonical_name("X-Custom"), "X-Custom");
        assert_eq!(canonical_name("z"), "z");
        assert!(same_name("m", "CONTACT"));
        assert!(same_name("l", "content-length"));
        assert!(is_list_header("v") && is_list_header("p-asserted-identity") && !is_list_header("From"));
    }

    #[test]
    fn lists_split_outside_quotes_and_brackets() {
        assert_eq!(
            split_list("\"Doe, John\" <sip:j@x.org>, <sip:a@b;x=1,2>, tel:+1").unwrap(),
            ["\"Doe, John\" <sip:j@x.org>", "<sip:a@b;x=1,2>", "tel:+1"]
        );
        assert_eq!(split_list("a").unwrap(), ["a"]);
        for bad in ["a,,b", ",a", "a,", "\"x", "<sip:a", "a>", "<<a>>"] {
            assert!(split_list(bad).is_err(), "{bad}");
        }
        assert!(split_list(&"a,".repeat(MAX_LIST_ITEMS)).is_err());
    }

    #[test]
    fn via_values() {
        // RFC 3261 §20.42 examples.
        let v = Via::parse("SIP/2.0/UDP erlang.bell-telephone.com:5060;branch=z9hG4bK87asdks7").unwrap();
        assert_eq!(
            (v.transport.as_str(), v.host.as_str(), v.port),
            ("UDP", "erlang.bell-telephone.com", Some(5060))
        );
        assert_eq!(v.branch(), Some("z9hG4bK87asdks7"));
        let v = Via::parse("SIP/2.0/UDP 192.0.2.1:5060 ;received=192.0.2.207;branch=z9hG4bK77asjd").unwrap();
        assert_eq!(v.param("received"), Some(Some("192.0.2.207")));
        let v = Via::parse("SIP / 2.0 / UDP first.example.com: 4000;ttl=16").unwrap_err();
        assert!(matches!(v, Error::BadHeader { .. }), "a blank inside sent-by");
        let v = Via::parse(
            "SIP / 2.0 / UDP first.example.com:4000;ttl=16 ;maddr=224.2.0.1 ;branch=z9hG4bKa7c6a8dlze.1",
        )
        .unwrap();
        assert_eq!(v.param("maddr"), Some(Some("224.2.0.1")));
        let v = Via::parse("SIP/2.0/UDP [::1]:5060;rport;branch=z9hG4bK1").unwrap();
        assert_eq!((v.host.as_str(), v.param("rport")), ("::1", Some(None)));
        assert_eq!(v.to_string(), "SIP/2.0/UDP [::1]:5060;rport;branch=z9hG4bK1");
        for bad in [
            "",
            "SIP/2.0/UDP",
            "SIP/3.0/UDP host",
            "HTTP/2.0/UDP host",
            "SIP/2.0/ host",
            "SIP/2.0/UDPhost",
            "SIP/2.0/UDP host;",
            "SIP/2.0/UDP host;branch=",
            "SIP/2.0/UDP host:70000",
            "SIP/2.0/UDP ho st",
        ] {
            assert!(Via::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn via_transport_rules() {
        let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let mut v = Via::parse("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1").unwrap();
        v.stamp_received(from);
        assert_eq!(
            (v.param("received"), v.response_target()),
            (None, Some("127.0.0.1:5070".parse().unwrap()))
        );
        let mut v = Via::parse("SIP/2.0/UDP ue.example.org;branch=z9hG4bK1;rport").unwrap();
        assert_eq!(v.response_target(), None);
        v.stamp_received(from);
        assert_eq!(
            v.to_string(),
            "SIP/2.0/UDP ue.example.org;branch=z9hG4bK1;rport=40000;received=127.0.0.1"
        );
        assert_eq!(v.response_target(), Some(from));
        let v = Via::parse("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1").unwrap();
        assert_eq!(v.response_target(), Some("192.0.2.1:5060".parse().unwrap()));
    }

    #[test]
    fn name_addr_values() {
        // RFC 3261 §20.20, §20.39, §20.10 examples.
        let f = NameAddr::parse_named(FROM, "\"A. G. Bell\" <sip:agb@bell-telephone.com> ;tag=a48s").unwrap();
        assert_eq!(f.display.as_deref(), Some("A. G. Bell"));
        assert_eq!((f.uri.as_str(), f.tag()), ("sip:agb@bell-telephone.com", Some("a48s")));
        let f = NameAddr::parse_named(FROM, "sip:+12125551212@server.phone2net.com;tag=887s").unwrap();
        assert_eq!(
            (f.display.as_deref(), f.uri.as_str(), f.tag()),
            (None, "sip:+12125551212@server.phone2net.com", Some("887s"))
        );
        let f = NameAddr::parse_named(FROM, "Anonymous <sip:c8oqz84zk7z@privacy.org>;tag=hyh8").unwrap();
        assert_eq!(f.display.as_deref(), Some("Anonymous"));
        let t = NameAddr::parse_named(TO, "The Operator <sip:operator@cs.columbia.edu>;tag=287447").unwrap();
        assert_eq!(t.display.as_deref(), Some("The Operator"));
        let c = NameAddr::parse_named(CONTACT, "<sip:ue@127.0.0.1:5070;transport=udp>;expires=60").unwrap();
        assert_eq!(
            (c.uri.as_str(), c.param("expires")),
            ("sip:ue@127.0.0.1:5070;transport=udp", Some(Some("60")))
        );
        let p = NameAddr::parse_named(P_ASSERTED_IDENTITY, "tel:+15550100").unwrap();
        assert_eq!(p.uri, "tel:+15550100");
        let q = NameAddr::parse_named(FROM, "\"a \\\"q\\\" \\\\ b\" <sip:x@y>").unwrap();
        assert_eq!(q.display.as_deref(), Some("a \"q\" \\ b"));
        assert_eq!(NameAddr::parse_named(FROM, &q.to_string()).unwrap(), q);
        for bad in [
            "",
            "<>",
            "<sip:a@b",
            "sip:a@b?x=1",
            "\"x\" sip:a@b",
            "\"x <sip:a@b>",
            "a@b",
            "<sip:a b@c>",
            "x;y <sip:a@b>",
        ] {
            assert!(NameAddr::parse_named(FROM, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cseq_and_warning_values() {
        assert_eq!(CSeq::parse("4711 INVITE").unwrap(), CSeq { seq: 4711, method: Method::Invite });
        assert_eq!(CSeq::parse(" 1\tACK ").unwrap().method, Method::Ack);
        assert_eq!(CSeq::parse("2147483647 BYE").unwrap().seq, MAX_CSEQ);
        for bad in ["", "INVITE", "1", "x INVITE", "2147483648 BYE", "1 INVITE x", "-1 BYE", "1 IN/VITE"] {
            assert!(CSeq::parse(bad).is_err(), "{bad}");
        }
        // RFC 3261 §20.43 examples.
        let w = Warning::parse("307 isi.edu \"Session parameter 'foo' not understood\"").unwrap();
        assert_eq!(
            (w.code, w.agent.as_str(), w.text.as_str()),
            (307, "isi.edu", "Session parameter 'foo' not understood")
        );
        let w = Warning::parse("301 isi.edu \"Incompatible network address type 'E.164'\"").unwrap();
        assert_eq!(w.code, 301);
        assert_eq!(Warning::parse(&w.to_string()).unwrap(), w);
        for bad in
            ["", "399", "399 host", "39 host \"x\"", "399 host x", "399 host \"x\" y", "399 ho<st \"x\""]
        {
            assert!(Warning::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn params() {
        assert_eq!(parse_params("").unwrap(), vec![]);
        assert_eq!(
            parse_params(" ; a = 1 ;b; c=\"x;y\"").unwrap(),
            vec![Param::new("a", "1"), Param::flag("b"), Param::new("c", "\"x;y\"")]
        );
        for bad in [";", "a", ";a=", ";=1", ";a=1 b", ";a=\"x"] {
            assert!(parse_params(bad).is_err(), "{bad}");
        }
    }
}
