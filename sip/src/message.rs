//! SIP messages (RFC 3261 §7): start line, header fields, body; parsing a datagram (§7.5,
//! §18.3), writing one, and the header copies of a response (§8.2.6.2).

use std::fmt;

use crate::header::{
    self, CSeq, NameAddr, Via, Warning, canonical_name, is_list_header, is_token, same_name, split_list,
};
use crate::{Error, MAX_HEADER_LEN, MAX_HEADERS, MAX_LIST_ITEMS, MAX_MESSAGE_LEN, SIP_VERSION, cut};

/// A request method (RFC 3261 §7.1, §27.4; case-sensitive).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    /// INVITE (RFC 3261 §13).
    Invite,
    /// ACK (RFC 3261 §13.2.2.4, §17.1.1.3).
    Ack,
    /// BYE (RFC 3261 §15).
    Bye,
    /// CANCEL (RFC 3261 §9).
    Cancel,
    /// OPTIONS (RFC 3261 §11).
    Options,
    /// REGISTER (RFC 3261 §10).
    Register,
    /// Any other token; never the spelling of a variant above ([`Method::new`] sees to that).
    Extension(String),
}

impl Method {
    /// The method named `token`: a variant for the methods above, [`Method::Extension`] for other
    /// tokens, an error for anything else.
    pub fn new(token: &str) -> Result<Self, Error> {
        Ok(match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            t if is_token(t) => Method::Extension(t.to_owned()),
            t => return Err(Error::StartLine(format!("method `{}` is not a token", cut(t)))),
        })
    }

    /// The method's name.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Extension(t) => t,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// Request-Line (RFC 3261 §7.1).
    Request {
        /// The method.
        method: Method,
        /// The Request-URI, as written.
        uri: String,
    },
    /// Status-Line (RFC 3261 §7.2).
    Response {
        /// Status code, 100..=699.
        code: u16,
        /// Reason phrase (may be empty).
        reason: String,
    },
}

/// One header line: canonical name, value without surrounding blanks, folded lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name ([`header::canonical_name`]).
    pub name: String,
    /// The value.
    pub value: String,
}

/// A SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Request-Line or Status-Line.
    pub start: StartLine,
    headers: Vec<Header>,
    /// The body (as many bytes as Content-Length announced).
    pub body: Vec<u8>,
}

/// The reason phrase RFC 3261 §21 gives a status code ("" for codes it does not list).
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        _ => "",
    }
}

fn has_control(s: &str) -> bool {
    s.chars().any(|c| c.is_control() && c != '\t')
}

fn parse_start_line(line: &str) -> Result<StartLine, Error> {
    let bad = |why: &str| Error::StartLine(format!("{why}: `{}`", cut(line)));
    if has_control(line) {
        return Err(Error::Control("the start line"));
    }
    if let Some(rest) = line.strip_prefix(SIP_VERSION).and_then(|r| r.strip_prefix(' ')) {
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("status code is not three digits"));
        }
        let code: u16 = code.parse().map_err(|_| bad("status code is not three digits"))?;
        if !(100..=699).contains(&code) {
            return Err(bad("status code outside 100..=699"));
        }
        return Ok(StartLine::Response { code, reason: reason.to_owned() });
    }
    let mut parts = line.split(' ');
    let (Some(method), Some(uri), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not `Method SP Request-URI SP SIP/2.0`"));
    };
    if version != SIP_VERSION {
        return Err(bad("version is not SIP/2.0"));
    }
    let method = Method::new(method)?;
    if !header::is_absolute_uri(uri) {
        return Err(bad("Request-URI is not an absolute URI"));
    }
    Ok(StartLine::Request { method, uri: uri.to_owned() })
}

/// Header lines of the header section (after the start line): unfolded, checked, named.
fn parse_header_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Result<Vec<Header>, Error> {
    let mut headers: Vec<Header> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            // A continuation line (RFC 3261 §7.3.1): joined with one blank.
            let last = headers
                .last_mut()
                .ok_or_else(|| Error::HeaderLine("a continuation line before any header".into()))?;
            let more = line.trim();
            if !more.is_empty() {
                if !last.value.is_empty() {
                    last.value.push(' ');
                }
                last.value.push_str(more);
            }
            if last.name.len() + last.value.len() + 2 > MAX_HEADER_LEN {
                return Err(Error::HeaderTooLong);
            }
            continue;
        }
        if line.len() > MAX_HEADER_LEN {
            return Err(Error::HeaderTooLong);
        }
        let (name, value) =
            line.split_once(':').ok_or_else(|| Error::HeaderLine(format!("no colon in `{}`", cut(line))))?;
        let name = name.trim_end_matches([' ', '\t']);
        if !is_token(name) {
            return Err(Error::HeaderLine(format!("bad header name `{}`", cut(name))));
        }
        // One line more than MAX_HEADERS for Content-Length, which the message does not keep.
        if headers.len() > MAX_HEADERS {
            return Err(Error::TooManyHeaders);
        }
        let name = canonical_name(name);
        let value = value.trim();
        if name.len() + value.len() + 2 > MAX_HEADER_LEN {
            return Err(Error::HeaderTooLong);
        }
        headers.push(Header { name: name.to_owned(), value: value.to_owned() });
    }
    for h in &headers {
        if has_control(&h.value) {
            return Err(Error::Control("a header value"));
        }
    }
    Ok(headers)
}

impl Message {
    /// A request with no header fields and no body.
    pub fn new_request(method: Method, uri: &str) -> Self {
        Message {
            start: StartLine::Request { method, uri: uri.to_owned() },
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A response with no header fields and no body.
    pub fn new_response(code: u16, reason: &str) -> Self {
        Message {
            start: StartLine::Response { code, reason: reason.to_owned() },
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A response to `request` (RFC 3261 §8.2.6.2): its Via values in order, From, To, Call-ID and
    /// CSeq copied; add the To tag with [`Message::set_to_tag`].
    pub fn response_to(request: &Message, code: u16, reason: &str) -> Self {
        let mut r = Message::new_response(code, reason);
        for h in &request.headers {
            let copied = [header::VIA, header::FROM, header::TO, header::CALL_ID, header::CSEQ];
            if copied.iter().any(|n| same_name(n, &h.name)) {
                r.headers.push(h.clone());
            }
        }
        r
    }

    /// Parses one datagram (RFC 3261 §7, §18.3): leading CRLFs skipped, CRLF line ends, folded
    /// lines joined, compact names expanded; the body is Content-Length bytes (the rest of the
    /// datagram without one; bytes beyond it are discarded). The message must carry valid Via,
    /// From, To, Call-ID and CSeq fields (CSeq naming the request's method) and, if present, a
    /// valid Max-Forwards.
    pub fn parse(datagram: &[u8]) -> Result<Self, Error> {
        let m = Self::parse_syntax(datagram)?;
        m.check_mandatory()?;
        Ok(m)
    }

    /// [`Message::parse`] without the checks of the mandatory fields: what a server can still
    /// answer with `400` when [`Message::parse`] refuses the message.
    pub fn parse_syntax(datagram: &[u8]) -> Result<Self, Error> {
        if datagram.len() > MAX_MESSAGE_LEN {
            return Err(Error::TooLarge(datagram.len()));
        }
        let mut data = datagram;
        while let Some(rest) = data.strip_prefix(b"\r\n") {
            data = rest;
        }
        if data.is_empty() {
            return Err(Error::Empty);
        }
        let head_end = data.windows(4).position(|w| w == b"\r\n\r\n").ok_or(Error::NoHeaderEnd)?;
        let head =
            std::str::from_utf8(data.get(..head_end).unwrap_or_default()).map_err(|_| Error::NotUtf8)?;
        let rest = data.get(head_end + 4..).unwrap_or_default();
        let mut lines = head.split("\r\n");
        if lines.clone().any(|l| l.contains(['\r', '\n'])) {
            return Err(Error::BareLineEnd);
        }
        let start = parse_start_line(lines.next().unwrap_or_default())?;
        let mut headers = parse_header_lines(lines)?;
        let mut lengths = headers.iter().filter(|h| h.name == header::CONTENT_LENGTH);
        let length = match (lengths.next(), lengths.next()) {
            (None, _) => None,
            (Some(_), Some(_)) => return Err(Error::ContentLength("more than one".into())),
            (Some(h), None) => {
                let v = h.value.as_str();
                if v.is_empty() || v.len() > 9 || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Error::ContentLength(format!("`{}` is not a number", cut(v))));
                }
                Some(v.parse::<usize>().map_err(|_| Error::ContentLength(cut(v)))?)
            }
        };
        headers.retain(|h| h.name != header::CONTENT_LENGTH);
        if headers.len() > MAX_HEADERS {
            return Err(Error::TooManyHeaders);
        }
        let body = match length {
            Some(n) => rest.get(..n).ok_or(Error::BodyShort { declared: n, available: rest.len() })?.to_vec(),
            None => rest.to_vec(),
        };
        Ok(Message { start, headers, body })
    }

    /// Checks the mandatory fields (see [`Message::parse`]).
    pub fn check_mandatory(&self) -> Result<(), Error> {
        let vias = self.vias()?;
        if vias.is_empty() {
            return Err(Error::MissingHeader(header::VIA));
        }
        self.single(header::FROM).and_then(|v| NameAddr::parse_named(header::FROM, v))?;
        self.single(header::TO).and_then(|v| NameAddr::parse_named(header::TO, v))?;
        let call_id = self.single(header::CALL_ID)?;
        if call_id.is_empty() || call_id.contains(char::is_whitespace) {
            return Err(Error::BadHeader {
                name: header::CALL_ID,
                value: cut(call_id),
                reason: "empty or holds blanks",
            });
        }
        let cseq = self.cseq()?;
        if let StartLine::Request { method, .. } = &self.start
            && *method != cseq.method
        {
            return Err(Error::CSeqMethod { cseq: cseq.method.to_string(), method: method.to_string() });
        }
        self.max_forwards()?;
        Ok(())
    }

    /// The bytes of the message: start line, header fields in order, `Content-Length` of the body,
    /// empty line, body. Refused: a malformed start line, a header name that is not a token, a
    /// value with a CR, LF or other control character, a `Content-Length` field (it is written
    /// from the body), more than [`MAX_HEADERS`] fields (Content-Length aside), more than
    /// [`MAX_MESSAGE_LEN`] bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let build = |what: &str, reason| Error::Build { what: cut(what), reason };
        let mut out = String::new();
        match &self.start {
            StartLine::Request { method, uri } => {
                if !is_token(method.as_str()) {
                    return Err(build(method.as_str(), "method is not a token"));
                }
                if !header::is_absolute_uri(uri) {
                    return Err(build(uri, "Request-URI is not an absolute URI"));
                }
                out.push_str(&format!("{method} {uri} {SIP_VERSION}\r\n"));
            }
            StartLine::Response { code, reason } => {
                if !(100..=699).contains(code) {
                    return Err(build(&code.to_string(), "status code outside 100..=699"));
                }
                if has_control(reason) {
                    return Err(build(reason, "control character in the reason phrase"));
                }
                out.push_str(&format!("{SIP_VERSION} {code} {reason}\r\n"));
            }
        }
        if self.headers.len() > MAX_HEADERS {
            return Err(Error::TooManyHeaders);
        }
        for h in &self.headers {
            if !is_token(&h.name) {
                return Err(build(&h.name, "header name is not a token"));
            }
            if same_name(&h.name, header::CONTENT_LENGTH) {
                return Err(build(&h.name, "Content-Length is written from the body"));
            }
            if has_control(&h.value) || h.value.trim() != h.value {
                return Err(build(&h.name, "control character or surrounding blanks in the value"));
            }
            if h.name.len() + h.value.len() + 2 > MAX_HEADER_LEN {
                return Err(Error::HeaderTooLong);
            }
            out.push_str(&format!("{}: {}\r\n", h.name, h.value));
        }
        out.push_str(&format!("{}: {}\r\n\r\n", header::CONTENT_LENGTH, self.body.len()));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        if bytes.len() > MAX_MESSAGE_LEN {
            return Err(Error::TooLarge(bytes.len()));
        }
        Ok(bytes)
    }

    // --------------------------------------------------------------------------------------------
    // Start line

    /// True for a request.
    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The request's method.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The Request-URI.
    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The response's status code.
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// The response's reason phrase.
    pub fn reason(&self) -> Option<&str> {
        match &self.start {
            StartLine::Response { reason, .. } => Some(reason),
            StartLine::Request { .. } => None,
        }
    }

    // --------------------------------------------------------------------------------------------
    // Header fields

    /// Every header line in order.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The value of the first line of field `name` (any spelling or compact form).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|h| same_name(&h.name, name)).map(|h| h.value.as_str())
    }

    /// The values of every line of field `name`, in order (lists not split).
    pub fn header_lines<'a>(&'a self, name: &'a str) -> impl DoubleEndedIterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |h| same_name(&h.name, name)).map(|h| h.value.as_str())
    }

    /// Every value of field `name`: the lines in order, list fields ([`header::is_list_header`])
    /// split at their commas. At most [`MAX_LIST_ITEMS`] values.
    pub fn header_values<'a>(&'a self, name: &str) -> Result<Vec<&'a str>, Error> {
        let list = is_list_header(name);
        let mut out = Vec::new();
        for h in self.headers.iter().filter(|h| same_name(&h.name, name)) {
            if list {
                let values = split_list(&h.value).map_err(|reason| Error::BadHeader {
                    name: static_name(name),
                    value: cut(&h.value),
                    reason,
                })?;
                out.extend(values);
            } else {
                out.push(h.value.as_str());
            }
            if out.len() > MAX_LIST_ITEMS {
                return Err(Error::TooManyValues(canonical_name(name).to_owned()));
            }
        }
        Ok(out)
    }

    /// The only line of a field that may appear once.
    fn single(&self, name: &'static str) -> Result<&str, Error> {
        let mut lines = self.header_lines(name);
        match (lines.next(), lines.next()) {
            (None, _) => Err(Error::MissingHeader(name)),
            (Some(_), Some(_)) => Err(Error::RepeatedHeader(name)),
            (Some(v), None) => Ok(v),
        }
    }

    /// Appends a header line (name canonicalized, value trimmed).
    pub fn push_header(&mut self, name: &str, value: &str) {
        self.headers.push(Header { name: canonical_name(name).to_owned(), value: value.trim().to_owned() });
    }

    /// Inserts a header line before every other (a proxy's Via, RFC 3261 §16.6 step 8).
    pub fn prepend_header(&mut self, name: &str, value: &str) {
        self.headers
            .insert(0, Header { name: canonical_name(name).to_owned(), value: value.trim().to_owned() });
    }

    /// Removes every line of field `name`; returns how many.
    pub fn remove_header(&mut self, name: &str) -> usize {
        let before = self.headers.len();
        self.headers.retain(|h| !same_name(&h.name, name));
        before - self.headers.len()
    }

    /// Replaces every line of field `name` by one line with `value` (where the first one was, or
    /// at the end).
    pub fn set_header(&mut self, name: &str, value: &str) {
        let at = self.headers.iter().position(|h| same_name(&h.name, name));
        self.remove_header(name);
        let h = Header { name: canonical_name(name).to_owned(), value: value.trim().to_owned() };
        match at {
            Some(i) if i <= self.headers.len() => self.headers.insert(i, h),
            _ => self.headers.push(h),
        }
    }

    /// Sets the body and its Content-Type (RFC 3261 §20.15).
    pub fn set_body(&mut self, content_type: &str, body: Vec<u8>) {
        self.set_header(header::CONTENT_TYPE, content_type);
        self.body = body;
    }

    /// The Via values, topmost first.
    pub fn vias(&self) -> Result<Vec<Via>, Error> {
        self.header_values(header::VIA)?.into_iter().map(Via::parse).collect()
    }

    /// The topmost Via value.
    pub fn top_via(&self) -> Result<Via, Error> {
        let first = self.header(header::VIA).ok_or(Error::MissingHeader(header::VIA))?;
        let value = split_list(first)
            .map_err(|reason| Error::BadHeader { name: header::VIA, value: cut(first), reason })?
            .into_iter()
            .next()
            .ok_or(Error::MissingHeader(header::VIA))?;
        Via::parse(value)
    }

    /// Removes the topmost Via value (a proxy forwarding a response, RFC 3261 §16.7 step 3):
    /// the value removed.
    pub fn pop_top_via(&mut self) -> Result<Via, Error> {
        let i = self
            .headers
            .iter()
            .position(|h| same_name(&h.name, header::VIA))
            .ok_or(Error::MissingHeader(header::VIA))?;
        let line = self.headers.get(i).map(|h| h.value.clone()).unwrap_or_default();
        let values = split_list(&line).map_err(|reason| Error::BadHeader {
            name: header::VIA,
            value: cut(&line),
            reason,
        })?;
        let top = Via::parse(values.first().copied().unwrap_or_default())?;
        let rest: Vec<&str> = values.into_iter().skip(1).collect();
        if rest.is_empty() {
            self.headers.remove(i);
        } else if let Some(h) = self.headers.get_mut(i) {
            h.value = rest.join(", ");
        }
        Ok(top)
    }

    /// Stamps the topmost Via of a request received from `source` (RFC 3261 §18.2.1, RFC 3581
    /// §4; see [`Via::stamp_received`]).
    pub fn stamp_received(&mut self, source: std::net::SocketAddr) -> Result<(), Error> {
        let mut top = self.pop_top_via()?;
        top.stamp_received(source);
        self.prepend_header(header::VIA, &top.to_string());
        Ok(())
    }

    /// From.
    pub fn from(&self) -> Result<NameAddr, Error> {
        NameAddr::parse_named(header::FROM, self.single(header::FROM)?)
    }

    /// To.
    pub fn to(&self) -> Result<NameAddr, Error> {
        NameAddr::parse_named(header::TO, self.single(header::TO)?)
    }

    /// Adds `;tag=` to To if it has none (a UAS's response, RFC 3261 §8.2.6.2).
    pub fn set_to_tag(&mut self, tag: &str) -> Result<(), Error> {
        let mut to = self.to()?;
        if to.tag().is_none() {
            if !is_token(tag) {
                return Err(Error::Build { what: cut(tag), reason: "a tag is a token" });
            }
            to.set_param("tag", Some(tag));
            self.set_header(header::TO, &to.to_string());
        }
        Ok(())
    }

    /// Call-ID.
    pub fn call_id(&self) -> Result<&str, Error> {
        self.single(header::CALL_ID)
    }

    /// CSeq.
    pub fn cseq(&self) -> Result<CSeq, Error> {
        CSeq::parse(self.single(header::CSEQ)?)
    }

    /// Max-Forwards (RFC 3261 §20.22), if present.
    pub fn max_forwards(&self) -> Result<Option<u8>, Error> {
        let mut lines = self.header_lines(header::MAX_FORWARDS);
        match (lines.next(), lines.next()) {
            (None, _) => Ok(None),
            (Some(_), Some(_)) => Err(Error::RepeatedHeader(header::MAX_FORWARDS)),
            (Some(v), None) => {
                let ok = !v.is_empty() && v.len() <= 3 && v.bytes().all(|b| b.is_ascii_digit());
                v.parse::<u8>().ok().filter(|_| ok).map(Some).ok_or_else(|| Error::BadHeader {
                    name: header::MAX_FORWARDS,
                    value: cut(v),
                    reason: "not a number up to 255",
                })
            }
        }
    }

    /// The Contact values.
    pub fn contacts(&self) -> Result<Vec<NameAddr>, Error> {
        self.header_values(header::CONTACT)?
            .into_iter()
            .map(|v| NameAddr::parse_named(header::CONTACT, v))
            .collect()
    }

    /// The P-Asserted-Identity values (RFC 3325 §9.1).
    pub fn asserted_identities(&self) -> Result<Vec<NameAddr>, Error> {
        self.header_values(header::P_ASSERTED_IDENTITY)?
            .into_iter()
            .map(|v| NameAddr::parse_named(header::P_ASSERTED_IDENTITY, v))
            .collect()
    }

    /// The Warning values.
    pub fn warnings(&self) -> Result<Vec<Warning>, Error> {
        self.header_values(header::WARNING)?.into_iter().map(Warning::parse).collect()
    }

    /// The Content-Type value.
    pub fn content_type(&self) -> Option<&str> {
        self.header(header::CONTENT_TYPE)
    }
}

/// A `'static` name for errors about field `name`.
fn static_name(name: &str) -> &'static str {
    const NAMES: [&str; 9] = [
        header::VIA,
        header::CONTACT,
        header::P_ASSERTED_IDENTITY,
        header::P_PREFERRED_IDENTITY,
        header::WARNING,
        header::ROUTE,
        header::RECORD_ROUTE,
        header::ALLOW,
        header::ACCEPT,
    ];
    NAMES.iter().find(|n| same_name(n, name)).copied().unwrap_or("list")
}

impl fmt::Display for Message {
    /// The start line and header fields (for logs; the body is left out).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.start {
            StartLine::Request { method, uri } => write!(f, "{method} {uri}")?,
            StartLine::Response { code, reason } => write!(f, "{code} {reason}")?,
        }
        for h in &self.headers {
            write!(f, " | {}: {}", h.name, h.value)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 3665 §2.1 (F1), the INVITE of a basic session, with a body.
    const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/TCP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n\
Max-Forwards: 70\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@client.atlanta.example.com;transport=tcp>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 151\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 client.atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

    #[test]
    fn parses_rfc3665_invite() {
        let m = Message::parse(INVITE).unwrap();
        assert_eq!(m.method(), Some(&Method::Invite));
        assert_eq!(m.request_uri(), Some("sip:bob@biloxi.example.com"));
        assert_eq!(m.body.len(), 151);
        assert!(m.body.starts_with(b"v=0\r\n") && m.body.ends_with(b"PCMU/8000\r\n"));
        assert_eq!(m.top_via().unwrap().branch(), Some("z9hG4bK74bf9"));
        assert_eq!(m.from().unwrap().tag(), Some("9fxced76sl"));
        assert_eq!(m.to().unwrap().tag(), None);
        assert_eq!(m.call_id().unwrap(), "3848276298220188511@atlanta.example.com");
        assert_eq!(m.cseq().unwrap(), CSeq { seq: 1, method: Method::Invite });
        assert_eq!(m.max_forwards().unwrap(), Some(70));
        assert_eq!(m.contacts().unwrap()[0].uri, "sip:alice@client.atlanta.example.com;transport=tcp");
        assert_eq!(m.content_type(), Some("application/sdp"));
        assert_eq!(m.header("content-length"), None, "framing only");
        let again = Message::parse(&m.to_bytes().unwrap()).unwrap();
        assert_eq!(again, m);
    }

    /// RFC 4475 §3.1.1.1 ("wsinv") in spirit: compact forms, folding, odd spacing, several Via
    /// lines and list values; every field is still found.
    #[test]
    fn compact_forms_folding_and_lists() {
        let raw = b"\r\n\r\nOPTIONS sip:scf@127.0.0.1 SIP/2.0\r\n\
v: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1, SIP/2.0/UDP 127.0.0.1:5080 ;branch=z9hG4bK2\r\n\
VIA  :  SIP/2.0/UDP\r\n 127.0.0.1:5090;branch=z9hG4bK3\r\n\
f: <sip:ue@ims.example.org>;tag=1\r\n\
t: sip:scf@ims.example.org\r\n\
i: abc@127.0.0.1\r\n\
CSEQ: 7 OPTIONS\r\n\
m: <sip:ue@127.0.0.1:5070>, \"Second, X\" <sip:ue2@127.0.0.1>\r\n\
l: 0\r\n\r\n";
        let m = Message::parse(raw).unwrap();
        let vias = m.vias().unwrap();
        assert_eq!(
            vias.iter().map(|v| v.branch().unwrap()).collect::<Vec<_>>(),
            ["z9hG4bK1", "z9hG4bK2", "z9hG4bK3"]
        );
        assert_eq!(m.headers()[0].name, "Via");
        assert_eq!(m.header_lines("Via").count(), 2);
        assert_eq!(m.contacts().unwrap()[1].display.as_deref(), Some("Second, X"));
        assert_eq!(m.cseq().unwrap().seq, 7);
        assert_eq!(m.call_id().unwrap(), "abc@127.0.0.1");
        let mut m2 = m.clone();
        assert_eq!(m2.pop_top_via().unwrap().branch(), Some("z9hG4bK1"));
        assert_eq!(m2.top_via().unwrap().branch(), Some("z9hG4bK2"));
        assert_eq!(m2.pop_top_via().unwrap().branch(), Some("z9hG4bK2"));
        assert_eq!(m2.pop_top_via().unwrap().branch(), Some("z9hG4bK3"));
        assert!(m2.pop_top_via().is_err());
    }

    #[test]
    fn udp_body_rules() {
        let head = "MESSAGE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:c@d>;tag=1\r\n\
To: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 MESSAGE\r\n";
        // No Content-Length over UDP: the rest of the datagram (RFC 3261 §18.3).
        let m = Message::parse(format!("{head}\r\nhello").as_bytes()).unwrap();
        assert_eq!(m.body, b"hello");
        // Bytes beyond Content-Length are discarded.
        let m = Message::parse(format!("{head}Content-Length: 2\r\n\r\nhello").as_bytes()).unwrap();
        assert_eq!(m.body, b"he");
        let e = Message::parse(format!("{head}Content-Length: 9\r\n\r\nhello").as_bytes()).unwrap_err();
        assert_eq!(e, Error::BodyShort { declared: 9, available: 5 });
        let e = Message::parse(format!("{head}l: 1\r\nContent-Length: 1\r\n\r\nh").as_bytes()).unwrap_err();
        assert!(matches!(e, Error::ContentLength(_)));
    }

    #[test]
    fn refuses_malformed_messages() {
        let ok = "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:c@d>;tag=1\r\n\
To: <sip:a@b>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n";
        assert!(Message::parse(ok.as_bytes()).is_ok());
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "empty"),
            ("\r\n\r\n".into(), "empty"),
            (ok.replace("\r\n\r\n", "\r\n"), "no empty line"),
            (ok.replace("SIP/2.0\r\n", "SIP/3.0\r\n"), "version"),
            (ok.replace("INVITE sip", "INVITE  sip"), "start line"),
            (ok.replace("sip:a@b SIP", "a@b SIP"), "absolute URI"),
            (ok.replace("INVITE sip", "INV<ITE sip"), "token"),
            (ok.replace("Call-ID: x\r\n", "Call-ID x\r\n"), "no colon"),
            (ok.replace("Call-ID: x\r\n", "Call ID: x\r\n"), "header name"),
            (ok.replace("Call-ID: x\r\n", ""), "Call-ID"),
            (ok.replace("Call-ID: x\r\n", "Call-ID: x\r\ni: y\r\n"), "more than one Call-ID"),
            (ok.replace("CSeq: 1 INVITE", "CSeq: 1 BYE"), "CSeq method"),
            (ok.replace("CSeq: 1 INVITE", "CSeq: one INVITE"), "CSeq"),
            (ok.replace("Via: SIP/2.0/UDP h;branch=z9hG4bKx\r\n", ""), "no Via"),
            (ok.replace("Via: SIP/2.0/UDP h", "Via: SIP/2.0/UDP h h"), "Via"),
            (ok.replace("From: <sip:c@d>", "From: <c@d>"), "From"),
            (ok.replace("To: <sip:a@b>", "To: <sip:a@b"), "To"),
            (ok.replace("Call-ID: x", "Call-ID: x\u{1}"), "control"),
            (ok.replace("Call-ID: x", "Call-ID: x\ny: z"), "bare"),
            (ok.replace("CSeq", "Max-Forwards: 256\r\nCSeq"), "Max-Forwards"),
            (format!(" {ok}"), "start line"),
            (ok.replace("Via:", " Via:"), "continuation"),
            ("SIP/2.0 099 Odd\r\n\r\n".into(), "100..=699"),
            ("SIP/2.0 2000 OK\r\n\r\n".into(), "three digits"),
        ];
        for (raw, what) in cases {
            let e = Message::parse(raw.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(what), "{raw:?}: `{e}` lacks `{what}`");
        }
        let mut long = ok.replace("\r\n\r\n", "\r\n");
        long.push_str(&format!("X-Long: {}\r\n\r\n", "a".repeat(MAX_HEADER_LEN)));
        assert_eq!(Message::parse(long.as_bytes()).unwrap_err(), Error::HeaderTooLong);
        let mut many = ok.replace("\r\n\r\n", "\r\n");
        many.push_str(&"X-A: b\r\n".repeat(MAX_HEADERS));
        many.push_str("\r\n");
        assert_eq!(Message::parse(many.as_bytes()).unwrap_err(), Error::TooManyHeaders);
        // At the bound, with no Content-Length: written back with one, it still parses (a case
        // the fuzzer found).
        let mut full = ok.replace("\r\n\r\n", "\r\n");
        full.push_str(&"X-A: b\r\n".repeat(MAX_HEADERS - 5));
        full.push_str("\r\n");
        let m = Message::parse(full.as_bytes()).unwrap();
        assert_eq!(m.headers().len(), MAX_HEADERS);
        assert_eq!(Message::parse(&m.to_bytes().unwrap()).unwrap(), m);
        assert_eq!(
            Message::parse(&vec![b'a'; MAX_MESSAGE_LEN + 1]).unwrap_err(),
            Error::TooLarge(MAX_MESSAGE_LEN + 1)
        );
        assert_eq!(Message::parse(&[0xFF, 0xFE, b'\r', b'\n', b'\r', b'\n']).unwrap_err(), Error::NotUtf8);
    }

    #[test]
    fn responses_copy_the_transaction_fields() {
        let req = Message::parse(INVITE).unwrap();
        let mut r = Message::response_to(&req, 200, reason_phrase(200));
        r.set_to_tag("8321234356").unwrap();
        r.push_header("Contact", "<sip:bob@192.0.2.4>");
        assert_eq!(r.status(), Some(200));
        assert_eq!(r.header("Via"), req.header("Via"));
        assert_eq!(r.header("From"), req.header("From"));
        assert_eq!(r.call_id().unwrap(), req.call_id().unwrap());
        assert_eq!(r.cseq().unwrap(), req.cseq().unwrap());
        assert_eq!(r.to().unwrap().tag(), Some("8321234356"));
        assert_eq!(r.to().unwrap().uri, "sip:bob@biloxi.example.com");
        r.set_to_tag("other").unwrap();
        assert_eq!(r.to().unwrap().tag(), Some("8321234356"), "an existing tag stays");
        assert!(r.set_to_tag("bad tag").is_ok(), "no change, so no error");
        let bytes = r.to_bytes().unwrap();
        assert!(bytes.starts_with(b"SIP/2.0 200 OK\r\nVia: SIP/2.0/TCP client.atlanta.example.com:5060;"));
        assert_eq!(Message::parse(&bytes).unwrap(), r);
    }

    #[test]
    fn build_refuses_what_would_not_parse_back() {
        let mut m = Message::new_request(Method::Invite, "sip:a@b");
        m.push_header("X-Bad", "a\r\nInjected: yes");
        assert!(m.to_bytes().is_err());
        let mut m = Message::new_request(Method::Invite, "sip:a@b");
        m.push_header("Content-Length", "3");
        assert!(m.to_bytes().is_err());
        let mut m = Message::new_request(Method::Invite, "not a uri");
        m.push_header("X", "y");
        assert!(m.to_bytes().is_err());
        assert!(Message::new_response(700, "x").to_bytes().is_err());
        assert!(Message::new_response(200, "a\rb").to_bytes().is_err());
        let mut m = Message::new_response(200, "OK");
        m.body = vec![0; MAX_MESSAGE_LEN];
        assert!(matches!(m.to_bytes(), Err(Error::TooLarge(_))));
    }

    // --------------------------------------------------------------------------------------------
    // Properties

    fn token() -> impl Strategy<Value = String> {
        "[A-Za-z0-9][A-Za-z0-9.!%*_+`'~-]{0,11}"
    }

    fn host() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z]([a-z0-9-]{0,6}[a-z0-9])?(\\.[a-z]([a-z0-9-]{0,6}[a-z0-9])?){0,3}",
            any::<[u8; 4]>().prop_map(|o| std::net::Ipv4Addr::from(o).to_string()),
            any::<[u16; 8]>().prop_map(|o| std::net::Ipv6Addr::from(o).to_string()),
        ]
    }

    fn sip_uri() -> impl Strategy<Value = String> {
        (proptest::option::of("[a-z0-9+._-]{1,12}"), host(), proptest::option::of(1u16..)).prop_map(
            |(u, h, p)| {
                let mut s = String::from("sip:");
                if let Some(u) = u {
                    s.push_str(&u);
                    s.push('@');
                }
                crate::uri::write_hostport(&mut s, &h, p).unwrap();
                s
            },
        )
    }

    fn params() -> impl Strategy<Value = Vec<header::Param>> {
        proptest::collection::vec(
            (token(), proptest::option::of(prop_oneof!["[A-Za-z0-9.-]{1,10}", "\"[ a-z,;<>]{0,8}\""])),
            0..3,
        )
        .prop_map(|v| v.into_iter().map(|(name, value)| header::Param { name, value }).collect())
    }

    fn name_addr() -> impl Strategy<Value = NameAddr> {
        (proptest::option::of("[ -~é]{1,16}"), sip_uri(), params()).prop_map(|(display, uri, params)| {
            NameAddr { display: display.filter(|d| !d.is_empty()), uri, params }
        })
    }

    fn via() -> impl Strategy<Value = Via> {
        (
            prop_oneof![Just("UDP"), Just("TCP"), Just("TLS")],
            host(),
            proptest::option::of(any::<u16>()),
            params(),
        )
            .prop_map(|(t, host, port, params)| Via { transport: t.into(), host, port, params })
    }

    fn method() -> impl Strategy<Value = Method> {
        prop_oneof![
            Just(Method::Invite),
            Just(Method::Ack),
            Just(Method::Bye),
            Just(Method::Cancel),
            Just(Method::Options),
            "[A-Z]{1,10}".prop_map(|t| Method::new(&t).unwrap()),
        ]
    }

    prop_compose! {
        fn message()(
            request in any::<bool>(),
            method in method(),
            uri in sip_uri(),
            code in 100u16..=699,
            reason in "[ -~é]{0,20}",
            vias in proptest::collection::vec(via(), 1..4),
            from in name_addr(),
            to in name_addr(),
            call_id in "[A-Za-z0-9@.-]{1,20}",
            seq in 0..=crate::MAX_CSEQ,
            contacts in proptest::collection::vec(name_addr(), 0..3),
            extra in proptest::collection::vec(("X-[A-Za-z]{1,8}", "[!-~]([ -~]{0,30}[!-~])?"), 0..4),
            body in proptest::collection::vec(any::<u8>(), 0..64),
        ) -> Message {
            let mut m = if request {
                Message::new_request(method.clone(), &uri)
            } else {
                Message::new_response(code, reason.trim())
            };
            for v in vias {
                m.push_header("v", &v.to_string());
            }
            m.push_header("From", &from.to_string());
            m.push_header("t", &to.to_string());
            m.push_header("i", &call_id);
            m.push_header("CSeq", &format!("{seq} {method}"));
            for c in contacts {
                m.push_header("Contact", &c.to_string());
            }
            for (n, v) in extra {
                m.push_header(&n, &v);
            }
            if !body.is_empty() {
                m.set_body("application/octet-stream", body);
            }
            m
        }
    }

    proptest! {
        #[test]
        fn parse_build_round_trips(m in message()) {
            let bytes = m.to_bytes().unwrap();
            prop_assert_eq!(Message::parse(&bytes).unwrap(), m);
        }

        #[test]
        fn typed_values_round_trip(n in name_addr(), v in via()) {
            prop_assert_eq!(NameAddr::parse_named(header::FROM, &n.to_string()).unwrap(), n);
            prop_assert_eq!(Via::parse(&v.to_string()).unwrap(), v);
        }

        #[test]
        fn parse_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Message::parse(&raw);
        }

        #[test]
        fn parse_never_panics_on_mutated_messages(
            m in message(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
        ) {
            let mut bytes = m.to_bytes().unwrap();
            for (at, byte, op) in edits {
                let i = at.index(bytes.len().max(1));
                match op {
                    0 if i < bytes.len() => bytes[i] = byte,
                    1 => bytes.insert(i.min(bytes.len()), b":;<>\",\r\n \\"[usize::from(byte) % 10]),
                    _ if i < bytes.len() => { bytes.remove(i); }
                    _ => {}
                }
            }
            crate::fuzz::sip_parse(&bytes);
        }
    }
}
