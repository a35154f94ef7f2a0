//! A minimal HTTP/1.1 client for the peers' own calls between each other (RFC 9112: one request per
//! connection, `Connection: close`), blocking and async, loopback only.
//!
//! The servers run on axum; this side only needs to send one request and read one response, so it
//! writes the request by hand and reads until the server closes (bodies framed by Content-Length,
//! chunked coding, or the close itself).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Largest response accepted (headers and body).
pub const MAX_RESPONSE_LEN: usize = 1 << 20;
/// How long a request may take before it is abandoned.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the servers (BSF, BM-SC, KMS, admin API) wait for a request's start line and header
/// fields, counted from the moment they start reading them; then the connection is closed. Every
/// client of this project writes a whole request in one go on loopback, so anything near this
/// bound is a stalled or hostile client holding a connection; it matches [`DEFAULT_TIMEOUT`],
/// what the clients here give a whole exchange. No 3GPP or IETF text fixes a value (RFC 9112 §9.5
/// leaves idle and incomplete connections to the server; hyper's default is 30 s).
pub const SERVER_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the servers wait for the whole body of a request once its header fields are in; a
/// request whose body is not complete by then is answered `408 Request Timeout` and its connection
/// closed, and the handler sees a failed body, so it changes nothing. The same reasoning and value
/// as [`SERVER_HEADER_READ_TIMEOUT`] (bodies here are a few KiB on loopback).
pub const SERVER_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A received response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header fields in order; names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body, dechunked.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The peer is not on loopback: the simulator talks to 127.0.0.1 / ::1 only.
    #[error("{0} is not a loopback address")]
    NotLoopback(SocketAddr),
    /// Connect, write or read failed (or timed out).
    #[error("HTTP I/O with {addr}: {source}")]
    Io {
        /// The peer.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The response does not parse.
    #[error("malformed HTTP response: {0}")]
    Malformed(String),
}

/// The bytes of a request with a body and `Connection: close`.
pub fn build_request(method: &str, addr: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, HttpError> {
    let bad = |why: &str| HttpError::Malformed(format!("chunked body: {why}"));
    let mut out = Vec::new();
    loop {
        let line_end = find_crlf(b).ok_or_else(|| bad("no chunk size line"))?;
        let line =
            std::str::from_utf8(b.get(..line_end).unwrap_or_default()).map_err(|_| bad("size not ASCII"))?;
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("size not hex"))?;
        b = b.get(line_end + 2..).unwrap_or_default();
        if size == 0 {
            return Ok(out);
        }
        let chunk = b.get(..size).ok_or_else(|| bad("chunk shorter than its size"))?;
        out.extend_from_slice(chunk);
        if b.get(size..size + 2) != Some(b"\r\n".as_slice()) {
            return Err(bad("no CRLF after a chunk"));
        }
        b = b.get(size + 2..).unwrap_or_default();
    }
}

/// Parses a complete response (everything up to the close).
pub fn parse_response(raw: &[u8]) -> Result<HttpResponse, HttpError> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| HttpError::Malformed("no end of header section".into()))?;
    let head = std::str::from_utf8(raw.get(..head_end).unwrap_or_default())
        .map_err(|_| HttpError::Malformed("header section is not UTF-8".into()))?;
    let rest = raw.get(head_end + 4..).unwrap_or_default();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed(format!("status line `{status_line}`")));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..=999).contains(s))
        .ok_or_else(|| HttpError::Malformed(format!("status line `{status_line}`")))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) =
            line.split_once(':').ok_or_else(|| HttpError::Malformed(format!("header line `{line}`")))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let mut response = HttpResponse { status, headers, body: Vec::new() };
    response.body = if response.header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        dechunk(rest)?
    } else if let Some(len) = response.header("content-length") {
        let len: usize = len.parse().map_err(|_| HttpError::Malformed(format!("Content-Length `{len}`")))?;
        rest.get(..len)
            .ok_or_else(|| HttpError::Malformed("body shorter than Content-Length".into()))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(response)
}

fn check_loopback(addr: SocketAddr) -> Result<(), HttpError> {
    if addr.ip().is_loopback() { Ok(()) } else { Err(HttpError::NotLoopback(addr)) }
}

/// Sends one request and reads the response, blocking (at most `timeout` per socket operation).
pub fn request_blocking(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<HttpResponse, HttpError> {
    check_loopback(addr)?;
    let io = |source| HttpError::Io { addr, source };
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    stream.write_all(&build_request(method, addr, path, content_type, body)).map_err(io)?;
    let mut raw = Vec::new();
    stream.take(MAX_RESPONSE_LEN as u64 + 1).read_to_end(&mut raw).map_err(io)?;
    if raw.len() > MAX_RESPONSE_LEN {
        return Err(HttpError::Malformed(format!("response longer than {MAX_RESPONSE_LEN} bytes")));
    }
    parse_response(&raw)
}

/// Sends one request and reads the response on the current tokio runtime (the whole exchange
/// within `timeout`).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<HttpResponse, HttpError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    check_loopback(addr)?;
    let io = |source| HttpError::Io { addr, source };
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.write_all(&build_request(method, addr, path, content_type, body)).await?;
        let mut raw = Vec::new();
        stream.take(MAX_RESPONSE_LEN as u64 + 1).read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| io(std::io::Error::new(std::io::ErrorKind::TimedOut, "HTTP exchange timed out")))?
        .map_err(io)?;
    if raw.len() > MAX_RESPONSE_LEN {
        return Err(HttpError::Malformed(format!("response longer than {MAX_RESPONSE_LEN} bytes")));
    }
    parse_response(&raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_and_chunked() {
        let r =
            parse_response(b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nX-A: b\r\n\r\nabcdef").unwrap();
        assert_eq!((r.status, r.body.as_slice(), r.header("x-a")), (404, b"abc".as_slice(), Some("b")));
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"abcde");
        let r = parse_response(b"HTTP/1.0 200 OK\r\n\r\nuntil close").unwrap();
        assert_eq!(r.body, b"until close");
    }

    #[test]
    fn refuses_malformed_responses() {
        for raw in [
            &b""[..],
            b"HTTP/1.1 200 OK\r\n",
            b"SMTP 220 hi\r\n\r\n",
            b"HTTP/1.1 abc OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nbroken\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        ] {
            assert!(parse_response(raw).is_err(), "{:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn only_loopback() {
        let addr: SocketAddr = "192.0.2.1:80".parse().unwrap();
        let e = request_blocking(addr, "GET", "/", "text/plain", b"", DEFAULT_TIMEOUT).unwrap_err();
        assert!(matches!(e, HttpError::NotLoopback(_)));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let _ = parse_response(&raw);
            let mut framed = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            framed.extend_from_slice(&raw);
            let _ = parse_response(&framed);
        }
    }
}
