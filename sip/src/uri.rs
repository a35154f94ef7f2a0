//! SIP and SIPS URIs (RFC 3261 §19.1, §25.1): scheme, user info, host, port, parameters and
//! headers, enough to address a UA and to compare identities.

use std::fmt;
use std::net::IpAddr;

use crate::header::{Param, parse_params, write_params};
use crate::{Error, cut};

/// `sip` or `sips`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// `sip:` (RFC 3261 §19.1.1).
    Sip,
    /// `sips:` (RFC 3261 §19.1.2).
    Sips,
}

/// A SIP or SIPS URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// The scheme.
    pub scheme: Scheme,
    /// User info before `@` (user and, rarely, `:password`), as written.
    pub user: Option<String>,
    /// Host name, IPv4 address or IPv6 address (without brackets).
    pub host: String,
    /// Port, if given.
    pub port: Option<u16>,
    /// URI parameters (`;transport=udp`, `;lr`, …).
    pub params: Vec<Param>,
    /// The header part after `?`, as written.
    pub headers: Option<String>,
}

fn uri_err(uri: &str, reason: &'static str) -> Error {
    Error::Uri { uri: cut(uri), reason }
}

/// True for a character of a host name (RFC 3261 §25.1 hostname: alphanum, `-`, `.`).
fn is_hostname_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '.'
}

/// Parses `host[:port]` (IPv6 in brackets). Returns (host without brackets, port).
pub(crate) fn parse_hostport(s: &str) -> Result<(String, Option<u16>), &'static str> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or("IPv6 reference without `]`")?;
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("bad IPv6 address");
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("junk after the IPv6 reference")?),
        };
        (v6.to_owned(), port)
    } else {
        let (h, p) = match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        if h.is_empty() || !h.chars().all(is_hostname_char) {
            return Err("bad host");
        }
        if h.starts_with(['-', '.']) || h.ends_with('-') || h.contains("..") {
            return Err("bad host");
        }
        (h.to_owned(), p)
    };
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err("bad port");
            }
            Some(p.parse::<u16>().map_err(|_| "bad port")?)
        }
    };
    Ok((host, port))
}

/// Writes a host (IPv6 in brackets) and port.
pub(crate) fn write_hostport(f: &mut impl fmt::Write, host: &str, port: Option<u16>) -> fmt::Result {
    if host.contains(':') {
        write!(f, "[{host}]")?;
    } else {
        f.write_str(host)?;
    }
    if let Some(p) = port {
        write!(f, ":{p}")?;
    }
    Ok(())
}

/// True for a character allowed unescaped in the user info or a parameter of a URI (RFC 3261
/// §25.1 unreserved / user-unreserved / param-unreserved, `%` escapes, `:` of a password).
fn is_uri_text_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()%&=+$,;?/:[]".contains(c)
}

impl SipUri {
    /// Parses a `sip:` or `sips:` URI (scheme case-insensitive).
    pub fn parse(s: &str) -> Result<Self, Error> {
        let (scheme, rest) = s.split_once(':').ok_or_else(|| uri_err(s, "no scheme"))?;
        let scheme = if scheme.eq_ignore_ascii_case("sip") {
            Scheme::Sip
        } else if scheme.eq_ignore_ascii_case("sips") {
            Scheme::Sips
        } else {
            return Err(uri_err(s, "not a sip or sips URI"));
        };
        if rest.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '"')) {
            return Err(uri_err(s, "blank, control character, quote or angle bracket"));
        }
        let (rest, headers) = match rest.split_once('?') {
            Some((r, h)) => (r, Some(h.to_owned())),
            None => (rest, None),
        };
        // The user info ends at the last `@` (URI parameters and the host hold none).
        let (user, hostpart) = match rest.rfind('@') {
            Some(at) => {
                let user = rest.get(..at).unwrap_or_default();
                if user.is_empty() || !user.chars().all(is_uri_text_char) {
                    return Err(uri_err(s, "bad user info"));
                }
                (Some(user.to_owned()), rest.get(at + 1..).unwrap_or_default())
            }
            None => (None, rest),
        };
        let (hostport, params) = match hostpart.find(';') {
            Some(i) => (hostpart.get(..i).unwrap_or_default(), hostpart.get(i..).unwrap_or_default()),
            None => (hostpart, ""),
        };
        let (host, port) = parse_hostport(hostport).map_err(|r| uri_err(s, r))?;
        let params = parse_params(params).map_err(|r| uri_err(s, r))?;
        if let Some(h) = &headers
            && (h.is_empty() || !h.chars().all(is_uri_text_char))
        {
            return Err(uri_err(s, "bad header part"));
        }
        Ok(SipUri { scheme, user, host, port, params, headers })
    }

    /// The host as an IP address, if it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// The value of a URI parameter (`Some(None)` for a parameter without value).
    pub fn param(&self, name: &str) -> Option<Option<&str>> {
        self.params.iter().find(|p| p.name.eq_ignore_ascii_case(name)).map(|p| p.value.as_deref())
    }

    /// `user@host` (or `host`), lowercased host: what identifies the resource, without port or
    /// parameters.
    pub fn address_of_record(&self) -> String {
        match &self.user {
            Some(u) => format!("{u}@{}", self.host.to_ascii_lowercase()),
            None => self.host.to_ascii_lowercase(),
        }
    }
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.scheme {
            Scheme::Sip => "sip:",
            Scheme::Sips => "sips:",
        })?;
        if let Some(u) = &self.user {
            write!(f, "{u}@")?;
        }
        write_hostport(f, &self.host, self.port)?;
        write_params(f, &self.params)?;
        if let Some(h) = &self.headers {
            write!(f, "?{h}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn rfc3261_examples() {
        // RFC 3261 §19.1.3.
        let u = SipUri::parse("sip:alice@atlanta.com").unwrap();
        assert_eq!((u.user.as_deref(), u.host.as_str(), u.port), (Some("alice"), "atlanta.com", None));
        let u = SipUri::parse("sip:alice:secretword@atlanta.com;transport=tcp").unwrap();
        assert_eq!(u.user.as_deref(), Some("alice:secretword"));
        assert_eq!(u.param("transport"), Some(Some("tcp")));
        let u = SipUri::parse("sips:alice@atlanta.com?subject=project%20x&priority=urgent").unwrap();
        assert_eq!(u.scheme, Scheme::Sips);
        assert_eq!(u.headers.as_deref(), Some("subject=project%20x&priority=urgent"));
        let u = SipUri::parse("sip:+1-212-555-1212:1234@gateway.com;user=phone").unwrap();
        assert_eq!(u.param("user"), Some(Some("phone")));
        let u = SipUri::parse("sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com").unwrap();
        assert_eq!((u.user, u.host.as_str()), (None, "atlanta.com"));
        let u = SipUri::parse("sip:alice;day=tuesday@atlanta.com").unwrap();
        assert_eq!((u.user.as_deref(), u.host.as_str()), (Some("alice;day=tuesday"), "atlanta.com"));
        let u = SipUri::parse("sip:scf@[::1]:5060;lr").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.param("lr")), ("::1", Some(5060), Some(None)));
        assert_eq!(u.to_string(), "sip:scf@[::1]:5060;lr");
        assert_eq!(SipUri::parse("sip:ue@127.0.0.1:5070").unwrap().ip(), Some("127.0.0.1".parse().unwrap()));
    }

    #[test]
    fn refuses_bad_uris() {
        for bad in [
            "",
            "alice@atlanta.com",
            "tel:+15550100",
            "sip:",
            "sip:@atlanta.com",
            "sip:alice@",
            "sip:alice@atlanta.com:",
            "sip:alice@atlanta.com:99999",
            "sip:alice@atlanta.com:12a",
            "sip:alice@[::1",
            "sip:alice@[zz]",
            "sip:al ice@atlanta.com",
            "sip:alice@atlanta..com",
            "sip:alice@atlanta.com;=x",
            "sip:alice@atlanta.com?",
            "sip:<alice>@atlanta.com",
        ] {
            assert!(SipUri::parse(bad).is_err(), "{bad}");
        }
    }
}
