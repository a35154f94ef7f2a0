//! SDP session descriptions (RFC 8866, formerly RFC 4566, §5): parse the text of an
//! `application/sdp` body into a [`SessionDescription`] and build it back.
//!
//! The lines a SIP offer/answer exchange needs are typed: `v=`, `o=`, `s=`, `c=`, `t=` (with its
//! `r=` lines) and `m=`; the other session-level lines (`i=`, `u=`, `e=`, `p=`, `b=`, `z=`, `k=`)
//! are kept as text in their place. Attributes (`a=`) are kept in order, at session level and per
//! media description, as [`Attribute`] name / value pairs. [`SessionDescription::to_string`]
//! writes the lines in the order of RFC 8866 §5 with CRLF line ends; parsing accepts CRLF or LF.
//!
//! Parsing is total and bounded ([`MAX_SDP_LEN`], [`MAX_SDP_LINES`]): every input gives a
//! description or an [`SdpError`], never a panic.

use std::fmt;
use std::net::IpAddr;

/// Largest SDP body parsed.
pub const MAX_SDP_LEN: usize = 16 * 1024;
/// Most lines in one SDP body.
pub const MAX_SDP_LINES: usize = 256;
/// The only protocol version (RFC 8866 §5.1).
pub const SDP_VERSION: u32 = 0;
/// The content type of SDP bodies (RFC 8866 §8.1).
pub const CONTENT_TYPE_SDP: &str = "application/sdp";

/// Why text is not an SDP session description, or cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// More than [`MAX_SDP_LEN`] bytes or [`MAX_SDP_LINES`] lines.
    #[error("SDP body too large")]
    TooLarge,
    /// Not UTF-8 text.
    #[error("SDP body is not UTF-8")]
    NotUtf8,
    /// A line that is not `<type>=<value>`.
    #[error("SDP line {line}: not <type>=<value>")]
    LineSyntax {
        /// 1-based line number.
        line: usize,
    },
    /// A control character inside a value.
    #[error("SDP line {line}: control character")]
    Control {
        /// 1-based line number.
        line: usize,
    },
    /// A type letter this parser does not know (RFC 8866 §5: the description is ignored).
    #[error("SDP line {line}: unknown type `{letter}`")]
    UnknownType {
        /// 1-based line number.
        line: usize,
        /// The letter.
        letter: char,
    },
    /// A line in a place RFC 8866 §5 does not allow (e.g. `o=` after `s=`, `t=` inside media).
    #[error("SDP line {line}: `{letter}=` not allowed here")]
    Misplaced {
        /// 1-based line number.
        line: usize,
        /// The letter.
        letter: char,
    },
    /// A mandatory line is missing.
    #[error("SDP: no `{0}=` line")]
    Missing(char),
    /// A malformed field value.
    #[error("SDP `{letter}=` line `{value}`: {reason}")]
    BadValue {
        /// The line's type letter.
        letter: char,
        /// The value (cut to 64 characters).
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
}

fn bad(letter: char, value: &str, reason: &'static str) -> SdpError {
    SdpError::BadValue { letter, value: crate::cut(value), reason }
}

/// The `o=` line (RFC 8866 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The user name (`-` when none).
    pub username: String,
    /// The session ID (digits).
    pub session_id: String,
    /// The session version (digits; a new offer increments it).
    pub session_version: String,
    /// The network type (`IN`).
    pub nettype: String,
    /// The address type (`IP4` / `IP6`).
    pub addrtype: String,
    /// The originator's address.
    pub address: String,
}

/// A `c=` line (RFC 8866 §5.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The network type (`IN`).
    pub nettype: String,
    /// The address type (`IP4` / `IP6`).
    pub addrtype: String,
    /// The connection address (for multicast with `/ttl[/count]`).
    pub address: String,
}

impl Connection {
    /// `IN IP4 <ip>` or `IN IP6 <ip>` for a unicast address.
    pub fn new(ip: IpAddr) -> Self {
        let addrtype = if ip.is_ipv4() { "IP4" } else { "IP6" };
        Connection { nettype: "IN".into(), addrtype: addrtype.into(), address: ip.to_string() }
    }

    /// The unicast IP address, if the address is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.address.parse().ok()
    }
}

/// A `t=` line with the `r=` lines that follow it (RFC 8866 §5.9, §5.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// Start time (NTP seconds, `0`: unbounded).
    pub start: u64,
    /// Stop time (NTP seconds, `0`: unbounded).
    pub stop: u64,
    /// The `r=` values, as text.
    pub repeats: Vec<String>,
}

/// An `a=` line (RFC 8866 §5.13): `name` or `name:value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// The attribute name (a token).
    pub name: String,
    /// The value after the first colon; `None` for a property attribute.
    pub value: Option<String>,
}

impl Attribute {
    /// A value attribute.
    pub fn new(name: &str, value: &str) -> Self {
        Attribute { name: name.into(), value: Some(value.into()) }
    }

    /// A property attribute (no value).
    pub fn flag(name: &str) -> Self {
        Attribute { name: name.into(), value: None }
    }

    /// An attribute from its line text without `a=` (`crypto:1 ...`, `sendrecv`).
    pub fn parse(text: &str) -> Result<Self, SdpError> {
        let (name, value) = match text.split_once(':') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (text, None),
        };
        if !crate::header::is_token(name) {
            return Err(bad('a', text, "attribute name is not a token"));
        }
        if text.chars().any(|c| c.is_control()) {
            return Err(bad('a', text, "control character"));
        }
        Ok(Attribute { name: name.into(), value })
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}:{v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// An `m=` line and the lines of its media description (RFC 8866 §5.14).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaDescription {
    /// The media type (`audio`, `video`, …).
    pub media: String,
    /// The transport port (0: the stream is rejected or disabled).
    pub port: u16,
    /// The number of ports (`<port>/<count>`), if given.
    pub port_count: Option<u16>,
    /// The transport protocol (`RTP/AVP`, `RTP/SAVP`, …).
    pub proto: String,
    /// The media formats (RTP payload types).
    pub formats: Vec<String>,
    /// The `i=` line.
    pub title: Option<String>,
    /// The `c=` line of this media.
    pub connection: Option<Connection>,
    /// The `b=` lines.
    pub bandwidths: Vec<String>,
    /// The `k=` line (obsolete, kept as text).
    pub key: Option<String>,
    /// The `a=` lines, in order.
    pub attributes: Vec<Attribute>,
}

impl MediaDescription {
    /// An `m=` line with no other lines.
    pub fn new(media: &str, port: u16, proto: &str, formats: &[&str]) -> Self {
        MediaDescription {
            media: media.into(),
            port,
            port_count: None,
            proto: proto.into(),
            formats: formats.iter().map(|f| (*f).to_owned()).collect(),
            title: None,
            connection: None,
            bandwidths: Vec::new(),
            key: None,
            attributes: Vec::new(),
        }
    }

    /// The attributes called `name`, in order.
    pub fn attributes_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Attribute> + 'a {
        self.attributes.iter().filter(move |a| a.name == name)
    }

    /// Removes every attribute called `name`; how many were removed.
    pub fn remove_attributes(&mut self, name: &str) -> usize {
        let before = self.attributes.len();
        self.attributes.retain(|a| a.name != name);
        before - self.attributes.len()
    }
}

/// A whole SDP session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    /// `o=`.
    pub origin: Origin,
    /// `s=`.
    pub session_name: String,
    /// `i=`.
    pub info: Option<String>,
    /// `u=`.
    pub uri: Option<String>,
    /// `e=` lines.
    pub emails: Vec<String>,
    /// `p=` lines.
    pub phones: Vec<String>,
    /// The session-level `c=` line.
    pub connection: Option<Connection>,
    /// Session-level `b=` lines.
    pub bandwidths: Vec<String>,
    /// `t=` lines (at least one) with their `r=` lines.
    pub timing: Vec<Timing>,
    /// `z=`.
    pub zone: Option<String>,
    /// Session-level `k=`.
    pub key: Option<String>,
    /// Session-level `a=` lines, in order.
    pub attributes: Vec<Attribute>,
    /// The media descriptions, in order.
    pub media: Vec<MediaDescription>,
}

impl SessionDescription {
    /// A minimal description: `o=- <id> <version> IN IP4|IP6 <ip>`, `s=-`, a session-level
    /// `c=` with `ip`, `t=0 0`, no media yet.
    pub fn new(session_id: u64, session_version: u64, ip: IpAddr) -> Self {
        let c = Connection::new(ip);
        SessionDescription {
            origin: Origin {
                username: "-".into(),
                session_id: session_id.to_string(),
                session_version: session_version.to_string(),
                nettype: c.nettype.clone(),
                addrtype: c.addrtype.clone(),
                address: c.address.clone(),
            },
            session_name: "-".into(),
            info: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: Some(c),
            bandwidths: Vec::new(),
            timing: vec![Timing { start: 0, stop: 0, repeats: Vec::new() }],
            zone: None,
            key: None,
            attributes: Vec::new(),
            media: Vec::new(),
        }
    }

    /// Parses an SDP body.
    pub fn parse(bytes: &[u8]) -> Result<Self, SdpError> {
        if bytes.len() > MAX_SDP_LEN {
            return Err(SdpError::TooLarge);
        }
        let text = std::str::from_utf8(bytes).map_err(|_| SdpError::NotUtf8)?;
        let mut lines = Vec::new();
        for (i, raw) in text.split('\n').enumerate() {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.is_empty() {
                // Only a trailing line end (or trailing empty lines) may be empty.
                continue;
            }
            if lines.len() >= MAX_SDP_LINES {
                return Err(SdpError::TooLarge);
            }
            let mut chars = line.chars();
            let (Some(letter), Some('=')) = (chars.next(), chars.next()) else {
                return Err(SdpError::LineSyntax { line: i + 1 });
            };
            let value = chars.as_str();
            if value.chars().any(|c| c.is_control()) {
                return Err(SdpError::Control { line: i + 1 });
            }
            lines.push((i + 1, letter, value));
        }
        Self::from_lines(&lines)
    }

    fn from_lines(lines: &[(usize, char, &str)]) -> Result<Self, SdpError> {
        let mut it = lines.iter().copied().peekable();
        match it.next() {
            Some((_, 'v', "0")) => {}
            Some((_, 'v', v)) => return Err(bad('v', v, "only version 0")),
            Some((line, letter, _)) => return Err(SdpError::Misplaced { line, letter }),
            None => return Err(SdpError::Missing('v')),
        }
        let origin = match it.next() {
            Some((_, 'o', v)) => parse_origin(v)?,
            Some((line, letter, _)) => return Err(SdpError::Misplaced { line, letter }),
            None => return Err(SdpError::Missing('o')),
        };
        let session_name = match it.next() {
            Some((_, 's', v)) if !v.is_empty() => v.to_owned(),
            Some((_, 's', v)) => return Err(bad('s', v, "empty session name")),
            Some((line, letter, _)) => return Err(SdpError::Misplaced { line, letter }),
            None => return Err(SdpError::Missing('s')),
        };
        let mut sd = SessionDescription {
            origin,
            session_name,
            info: None,
            uri: None,
            emails: Vec::new(),
            phones: Vec::new(),
            connection: None,
            bandwidths: Vec::new(),
            timing: Vec::new(),
            zone: None,
            key: None,
            attributes: Vec::new(),
            media: Vec::new(),
        };
        // Session-level lines in the order of RFC 8866 §5: each letter's rank may not go down.
        const ORDER: &str = "-iuepcbtrzka";
        let mut rank = 0usize;
        let mut prev = 's';
        while let Some(&(line, letter, value)) = it.peek() {
            if letter == 'm' {
                break;
            }
            it.next();
            let Some(r) = ORDER.find(letter) else {
                return Err(match letter {
                    'v' | 'o' | 's' => SdpError::Misplaced { line, letter },
                    _ => SdpError::UnknownType { line, letter },
                });
            };
            // `e=`, `p=`, `b=`, `t=`, `r=` and `a=` may repeat; `t=` may follow an `r=`.
            let in_order = r > rank
                || (r == rank && "epbtra".contains(letter))
                || (letter == 't' && "tr".contains(prev));
            if !in_order {
                return Err(SdpError::Misplaced { line, letter });
            }
            prev = letter;
            rank = r;
            let once = |slot: &mut Option<String>| -> Result<(), SdpError> {
                if slot.is_some() {
                    return Err(SdpError::Misplaced { line, letter });
                }
                *slot = Some(value.to_owned());
                Ok(())
            };
            match letter {
                'i' => once(&mut sd.info)?,
                'u' => once(&mut sd.uri)?,
                'e' => sd.emails.push(value.to_owned()),
                'p' => sd.phones.push(value.to_owned()),
                'c' => sd.connection = Some(parse_connection(value)?),
                'b' => sd.bandwidths.push(value.to_owned()),
                't' => sd.timing.push(parse_timing(value)?),
                'r' => match sd.timing.last_mut() {
                    Some(t) => t.repeats.push(value.to_owned()),
                    None => return Err(SdpError::Misplaced { line, letter }),
                },
                'z' => once(&mut sd.zone)?,
                'k' => once(&mut sd.key)?,
                _ => sd.attributes.push(parse_attribute(value)?),
            }
        }
        if sd.timing.is_empty() {
            return Err(SdpError::Missing('t'));
        }
        while let Some((_, 'm', value)) = it.next() {
            let mut m = parse_media(value)?;
            const MEDIA_ORDER: &str = "-icbka";
            let mut rank = 0usize;
            while let Some(&(line, letter, value)) = it.peek() {
                if letter == 'm' {
                    break;
                }
                it.next();
                let Some(r) = MEDIA_ORDER.find(letter) else {
                    return Err(if ORDER.contains(letter) || "vos".contains(letter) {
                        SdpError::Misplaced { line, letter }
                    } else {
                        SdpError::UnknownType { line, letter }
                    });
                };
                if r < rank || (r == rank && !"ba".contains(letter)) {
                    return Err(SdpError::Misplaced { line, letter });
                }
                rank = r;
                match letter {
                    'i' => m.title = Some(value.to_owned()),
                    'c' => m.connection = Some(parse_connection(value)?),
                    'b' => m.bandwidths.push(value.to_owned()),
                    'k' => m.key = Some(value.to_owned()),
                    _ => m.attributes.push(parse_attribute(value)?),
                }
            }
            sd.media.push(m);
        }
        if let Some((line, letter, _)) = it.next() {
            return Err(SdpError::Misplaced { line, letter });
        }
        Ok(sd)
    }

    /// The SDP text with CRLF line ends; refused when a value cannot be written back as the
    /// same description (empty or with control characters, a name that is no token, an empty
    /// `t=` list).
    pub fn to_text(&self) -> Result<String, SdpError> {
        self.check()?;
        Ok(self.to_string())
    }

    fn check(&self) -> Result<(), SdpError> {
        let text_ok = |letter: char, v: &str, may_be_empty: bool| -> Result<(), SdpError> {
            if v.chars().any(|c| c.is_control()) {
                return Err(bad(letter, v, "control character"));
            }
            if !may_be_empty && v.is_empty() {
                return Err(bad(letter, v, "empty value"));
            }
            Ok(())
        };
        let o = &self.origin;
        for f in [&o.username, &o.session_id, &o.session_version, &o.nettype, &o.addrtype, &o.address] {
            if f.is_empty() || f.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(bad('o', f, "empty field or white space in a field"));
            }
        }
        text_ok('s', &self.session_name, false)?;
        for v in self.info.iter().chain(&self.uri).chain(&self.emails).chain(&self.phones) {
            text_ok('i', v, false)?;
        }
        for v in self.bandwidths.iter().chain(&self.zone).chain(&self.key) {
            text_ok('b', v, false)?;
        }
        if self.timing.is_empty() {
            return Err(SdpError::Missing('t'));
        }
        for t in &self.timing {
            for r in &t.repeats {
                text_ok('r', r, false)?;
            }
        }
        let check_c = |c: &Connection| -> Result<(), SdpError> {
            for f in [&c.nettype, &c.addrtype, &c.address] {
                if f.is_empty() || f.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(bad('c', f, "empty field or white space in a field"));
                }
            }
            Ok(())
        };
        let check_a = |a: &Attribute| -> Result<(), SdpError> {
            if !crate::header::is_token(&a.name) {
                return Err(bad('a', &a.name, "attribute name is not a token"));
            }
            text_ok('a', a.value.as_deref().unwrap_or_default(), true)
        };
        if let Some(c) = &self.connection {
            check_c(c)?;
        }
        for a in &self.attributes {
            check_a(a)?;
        }
        for m in &self.media {
            let tokens = std::iter::once(&m.media).chain(std::iter::once(&m.proto)).chain(&m.formats);
            for f in tokens {
                if f.is_empty() || f.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return Err(bad('m', f, "empty field or white space in a field"));
                }
            }
            if m.media.contains('/') || m.formats.is_empty() {
                return Err(bad('m', &m.media, "media type with `/`, or no format"));
            }
            for v in m.title.iter().chain(&m.bandwidths).chain(&m.key) {
                text_ok('i', v, false)?;
            }
            if let Some(c) = &m.connection {
                check_c(c)?;
            }
            for a in &m.attributes {
                check_a(a)?;
            }
        }
        Ok(())
    }

    /// The session-level attributes called `name`, in order.
    pub fn attributes_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Attribute> + 'a {
        self.attributes.iter().filter(move |a| a.name == name)
    }

    /// The first media description of type `media` (e.g. `audio`), if any.
    pub fn first_media(&self, media: &str) -> Option<&MediaDescription> {
        self.media.iter().find(|m| m.media == media)
    }

    /// The first media description of type `media`, mutable.
    pub fn first_media_mut(&mut self, media: &str) -> Option<&mut MediaDescription> {
        self.media.iter_mut().find(|m| m.media == media)
    }

    /// Where the media of `m` goes: its own `c=` address, else the session's, with its port.
    pub fn media_address(&self, m: &MediaDescription) -> Option<std::net::SocketAddr> {
        let c = m.connection.as_ref().or(self.connection.as_ref())?;
        Some(std::net::SocketAddr::new(c.ip()?, m.port))
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.origin;
        write!(f, "v={SDP_VERSION}\r\n")?;
        write!(
            f,
            "o={} {} {} {} {} {}\r\n",
            o.username, o.session_id, o.session_version, o.nettype, o.addrtype, o.address
        )?;
        write!(f, "s={}\r\n", self.session_name)?;
        if let Some(i) = &self.info {
            write!(f, "i={i}\r\n")?;
        }
        if let Some(u) = &self.uri {
            write!(f, "u={u}\r\n")?;
        }
        for e in &self.emails {
            write!(f, "e={e}\r\n")?;
        }
        for p in &self.phones {
            write!(f, "p={p}\r\n")?;
        }
        if let Some(c) = &self.connection {
            write!(f, "c={c}\r\n")?;
        }
        for b in &self.bandwidths {
            write!(f, "b={b}\r\n")?;
        }
        for t in &self.timing {
            write!(f, "t={} {}\r\n", t.start, t.stop)?;
            for r in &t.repeats {
                write!(f, "r={r}\r\n")?;
            }
        }
        if let Some(z) = &self.zone {
            write!(f, "z={z}\r\n")?;
        }
        if let Some(k) = &self.key {
            write!(f, "k={k}\r\n")?;
        }
        for a in &self.attributes {
            write!(f, "a={a}\r\n")?;
        }
        for m in &self.media {
            write!(f, "m={} {}", m.media, m.port)?;
            if let Some(n) = m.port_count {
                write!(f, "/{n}")?;
            }
            write!(f, " {}", m.proto)?;
            for fmt_ in &m.formats {
                write!(f, " {fmt_}")?;
            }
            f.write_str("\r\n")?;
            if let Some(i) = &m.title {
                write!(f, "i={i}\r\n")?;
            }
            if let Some(c) = &m.connection {
                write!(f, "c={c}\r\n")?;
            }
            for b in &m.bandwidths {
                write!(f, "b={b}\r\n")?;
            }
            if let Some(k) = &m.key {
                write!(f, "k={k}\r\n")?;
            }
            for a in &m.attributes {
                write!(f, "a={a}\r\n")?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.nettype, self.addrtype, self.address)
    }
}

fn fields<const N: usize>(letter: char, value: &str) -> Result<[&str; N], SdpError> {
    let parts: Vec<&str> = value.split(' ').collect();
    let array: [&str; N] = parts.try_into().map_err(|_| bad(letter, value, "wrong number of fields"))?;
    if array.iter().any(|p| p.is_empty()) {
        return Err(bad(letter, value, "empty field (double space)"));
    }
    Ok(array)
}

fn parse_origin(value: &str) -> Result<Origin, SdpError> {
    let [username, session_id, session_version, nettype, addrtype, address] = fields::<6>('o', value)?;
    if !session_id.bytes().all(|b| b.is_ascii_digit()) || !session_version.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad('o', value, "session ID and version are digits"));
    }
    Ok(Origin {
        username: username.into(),
        session_id: session_id.into(),
        session_version: session_version.into(),
        nettype: nettype.into(),
        addrtype: addrtype.into(),
        address: address.into(),
    })
}

fn parse_connection(value: &str) -> Result<Connection, SdpError> {
    let [nettype, addrtype, address] = fields::<3>('c', value)?;
    Ok(Connection { nettype: nettype.into(), addrtype: addrtype.into(), address: address.into() })
}

fn parse_timing(value: &str) -> Result<Timing, SdpError> {
    let [start, stop] = fields::<2>('t', value)?;
    let num = |s: &str| -> Result<u64, SdpError> {
        if !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
            return Err(bad('t', value, "times are decimal numbers"));
        }
        s.parse().map_err(|_| bad('t', value, "time out of range"))
    };
    Ok(Timing { start: num(start)?, stop: num(stop)?, repeats: Vec::new() })
}

fn parse_attribute(value: &str) -> Result<Attribute, SdpError> {
    Attribute::parse(value)
}

fn parse_media(value: &str) -> Result<MediaDescription, SdpError> {
    let parts: Vec<&str> = value.split(' ').collect();
    let [media, port, proto, formats @ ..] = parts.as_slice() else {
        return Err(bad('m', value, "fewer than four fields"));
    };
    if formats.is_empty() || parts.iter().any(|p| p.is_empty()) || media.contains('/') {
        return Err(bad('m', value, "empty field or no format"));
    }
    let number = |s: &str| -> Result<u16, SdpError> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0')) {
            return Err(bad('m', value, "port is a decimal number"));
        }
        s.parse().map_err(|_| bad('m', value, "port out of range"))
    };
    let (port, port_count) = match port.split_once('/') {
        Some((p, n)) => (number(p)?, Some(number(n)?)),
        None => (number(port)?, None),
    };
    let mut m = MediaDescription::new(media, port, proto, formats);
    m.port_count = port_count;
    Ok(m)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The offer of RFC 4568 §4 (key-salt and session parameters as printed there).
    const RFC4568_OFFER: &str = "v=0\r\n\
        o=sam 2890844526 2890842807 IN IP4 10.47.16.5\r\n\
        s=SRTP Discussion\r\n\
        i=A discussion of Secure RTP\r\n\
        u=http://www.example.com/seminars/srtp.pdf\r\n\
        e=marge@example.com (Marge Simpson)\r\n\
        c=IN IP4 168.2.17.12\r\n\
        t=2873397496 2873404696\r\n\
        m=audio 49170 RTP/SAVP 0\r\n\
        a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4 FEC_ORDER=FEC_SRTP\r\n";

    #[test]
    fn parses_the_rfc4568_offer() {
        let sd = SessionDescription::parse(RFC4568_OFFER.as_bytes()).unwrap();
        assert_eq!(sd.origin.username, "sam");
        assert_eq!(sd.origin.session_id, "2890844526");
        assert_eq!(sd.session_name, "SRTP Discussion");
        assert_eq!(sd.emails, ["marge@example.com (Marge Simpson)"]);
        assert_eq!(sd.connection.as_ref().unwrap().ip(), Some("168.2.17.12".parse().unwrap()));
        assert_eq!(sd.timing[0].start, 2873397496);
        let m = sd.first_media("audio").unwrap();
        assert_eq!(
            (m.port, m.proto.as_str(), m.formats.as_slice()),
            (49170, "RTP/SAVP", &["0".to_owned()][..])
        );
        assert_eq!(sd.media_address(m), Some("168.2.17.12:49170".parse().unwrap()));
        let a: Vec<_> = m.attributes_named("crypto").collect();
        assert_eq!(a.len(), 1);
        assert!(a[0].value.as_deref().unwrap().starts_with("1 AES_CM_128_HMAC_SHA1_80 inline:WVNf"));
        // Written back with the same lines (CRLF), byte for byte.
        assert_eq!(sd.to_text().unwrap(), RFC4568_OFFER);
        // LF line ends parse to the same description.
        let lf = RFC4568_OFFER.replace("\r\n", "\n");
        assert_eq!(SessionDescription::parse(lf.as_bytes()).unwrap(), sd);
    }

    #[test]
    fn refuses_malformed_descriptions() {
        type Check = fn(&SdpError) -> bool;
        let cases: [(&str, Check); 8] = [
            ("", |e| matches!(e, SdpError::Missing('v'))),
            ("v=1\r\n", |e| matches!(e, SdpError::BadValue { letter: 'v', .. })),
            ("v=0\r\ns=x\r\n", |e| matches!(e, SdpError::Misplaced { letter: 's', .. })),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=x\r\n", |e| matches!(e, SdpError::Missing('t'))),
            ("v=0\r\no=- x 1 IN IP4 1.2.3.4\r\ns=x\r\nt=0 0\r\n", |e| matches!(e, SdpError::BadValue { .. })),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=x\r\nt=0 0\r\nm=audio 99999 RTP/AVP 0\r\n", |e| {
                matches!(e, SdpError::BadValue { letter: 'm', .. })
            }),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=x\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\nt=0 0\r\n", |e| {
                matches!(e, SdpError::Misplaced { letter: 't', .. })
            }),
            ("v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=x\r\nt=0 0\r\nx=1\r\n", |e| {
                matches!(e, SdpError::UnknownType { letter: 'x', .. })
            }),
        ];
        for (text, check) in cases {
            let e = SessionDescription::parse(text.as_bytes()).unwrap_err();
            assert!(check(&e), "{text:?}: {e:?}");
        }
        assert_eq!(SessionDescription::parse(&[0xff, b'\n']), Err(SdpError::NotUtf8));
        assert_eq!(SessionDescription::parse(&vec![b'a'; MAX_SDP_LEN + 1]), Err(SdpError::TooLarge));
    }

    fn token() -> impl Strategy<Value = String> {
        "[A-Za-z0-9][A-Za-z0-9._-]{0,11}"
    }
    fn text() -> impl Strategy<Value = String> {
        "[ -~]{1,20}".prop_filter("not only spaces at the ends", |s| !s.is_empty())
    }
    fn connection() -> impl Strategy<Value = Connection> {
        (any::<[u8; 4]>()).prop_map(|b| Connection::new(IpAddr::from(b)))
    }
    fn attribute() -> impl Strategy<Value = Attribute> {
        (token(), proptest::option::of("[ -~]{0,30}")).prop_map(|(name, value)| Attribute { name, value })
    }
    fn media() -> impl Strategy<Value = MediaDescription> {
        (
            token(),
            any::<u16>(),
            proptest::option::of(1u16..8),
            "[A-Z]{3}(/[A-Z]{3,4})?",
            proptest::collection::vec("[0-9]{1,3}", 1..4),
            proptest::option::of(text()),
            proptest::option::of(connection()),
            proptest::collection::vec("AS:[0-9]{1,5}", 0..2),
            proptest::collection::vec(attribute(), 0..5),
        )
            .prop_map(
                |(media, port, port_count, proto, formats, title, connection, bandwidths, attributes)| {
                    MediaDescription {
                        media,
                        port,
                        port_count,
                        proto,
                        formats,
                        title,
                        connection,
                        bandwidths,
                        key: None,
                        attributes,
                    }
                },
            )
    }
    fn description() -> impl Strategy<Value = SessionDescription> {
        (
            (token(), any::<u64>(), any::<u64>(), connection()),
            text(),
            (proptest::option::of(text()), proptest::collection::vec(text(), 0..2)),
            proptest::option::of(connection()),
            proptest::collection::vec(
                (any::<u32>(), any::<u32>(), proptest::collection::vec(text(), 0..2)),
                1..3,
            ),
            proptest::collection::vec(attribute(), 0..4),
            proptest::collection::vec(media(), 0..3),
        )
            .prop_map(
                |(
                    (user, id, ver, oc),
                    session_name,
                    (info, emails),
                    connection,
                    times,
                    attributes,
                    media,
                )| {
                    let mut sd = SessionDescription::new(id, ver, oc.ip().unwrap());
                    sd.origin.username = user;
                    sd.session_name = session_name;
                    sd.info = info;
                    sd.emails = emails;
                    sd.connection = connection;
                    sd.timing = times
                        .into_iter()
                        .map(|(s, e, repeats)| Timing { start: s.into(), stop: e.into(), repeats })
                        .collect();
                    sd.attributes = attributes;
                    sd.media = media;
                    sd
                },
            )
    }

    proptest! {
        #[test]
        fn parse_of_build_is_identity(sd in description()) {
            let text = sd.to_text().unwrap();
            prop_assert_eq!(SessionDescription::parse(text.as_bytes()).unwrap(), sd);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = SessionDescription::parse(&bytes);
        }

        #[test]
        fn parse_never_panics_on_sdp_like_text(
            lines in proptest::collection::vec("[vosictmabkrzeup]=[ -~]{0,30}", 0..20),
        ) {
            let text = lines.join("\r\n");
            if let Ok(sd) = SessionDescription::parse(text.as_bytes())
                && let Ok(again) = sd.to_text()
            {
                prop_assert_eq!(SessionDescription::parse(again.as_bytes()).unwrap(), sd);
            }
        }
    }
}
