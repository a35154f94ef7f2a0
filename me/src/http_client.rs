//! The ME's HTTP/1.1 transport for Ub (TS 24.109 §4) and the BM-SC key management requests
//! (TS 33.246 §6.2–§6.3, TS 24.109 §5): one blocking `ureq` agent, loopback peers only, no proxy,
//! no redirects, HTTP error statuses returned as answers (the procedures read 401 themselves).

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, LazyBuffers, NextTimeout, Transport,
};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Largest answer body the ME reads.
pub const MAX_BODY_LEN: u64 = 1 << 20;
/// Time limit of one HTTP exchange.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP answer as the procedures see it.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: u16,
    /// Every header as (lowercase name, value); values that are not visible ASCII are dropped.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    /// Every value of header `name` (case-insensitive).
    pub fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().filter(move |(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// The single value of header `name`; `Err` names what is wrong when it appears more than once.
    pub fn single(&self, name: &str) -> core::result::Result<Option<&str>, String> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() {
            return Err(format!("more than one {name} header"));
        }
        Ok(first)
    }

    /// The media type of `Content-Type`, without parameters, lowercased.
    pub fn media_type(&self) -> Option<String> {
        self.all("content-type").next().map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
    }

    /// The body as text (`Err` when it is not UTF-8).
    pub fn text(&self) -> core::result::Result<&str, String> {
        std::str::from_utf8(&self.body).map_err(|_| "the body is not UTF-8".to_owned())
    }

    /// The first line of the body, for logs and error reasons.
    pub fn reason(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let line = text.lines().next().unwrap_or("").trim();
        line.chars().take(200).collect()
    }
}

/// A blocking HTTP client bound to one loopback peer.
pub(crate) struct HttpClient {
    agent: ureq::Agent,
    base: String,
    addr: SocketAddr,
    peer: &'static str,
}

impl core::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HttpClient").field("peer", &self.peer).field("addr", &self.addr).finish()
    }
}

impl HttpClient {
    /// A client of `url` (`http://host:port[/...]`, host resolving to loopback only).
    pub fn new(peer: &'static str, url: &str, timeout: Duration) -> Result<Self> {
        Self::with_source(peer, url, timeout, None)
    }

    /// A client of `url` whose connections leave from the loopback address `source` (its own
    /// address for each UE of one host: the BM-SC pushes MSKs to the request's source address);
    /// `None`: the system's choice.
    pub fn with_source(
        peer: &'static str,
        url: &str,
        timeout: Duration,
        source: Option<IpAddr>,
    ) -> Result<Self> {
        if let Some(ip) = source
            && !ip.is_loopback()
        {
            return Err(Error::InvalidInput(format!("{peer} client: source address {ip} is not loopback")));
        }
        let uri: ureq::http::Uri =
            url.parse().map_err(|e| Error::InvalidInput(format!("{peer} URL '{url}': {e}")))?;
        if uri.scheme_str() != Some("http") {
            return Err(Error::InvalidInput(format!("{peer} URL '{url}': only http:// on loopback")));
        }
        let host = uri.host().ok_or_else(|| Error::InvalidInput(format!("{peer} URL '{url}': no host")))?;
        let port = uri.port_u16().unwrap_or(80);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| Error::InvalidInput(format!("{peer} URL '{url}': {e}")))?
            .collect();
        let addr = match addrs.first() {
            Some(a) if addrs.iter().all(|a| a.ip().is_loopback()) => *a,
            _ => {
                return Err(Error::InvalidInput(format!(
                    "{peer} URL '{url}': the ME talks to loopback peers only"
                )));
            }
        };
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .max_redirects(0)
            .timeout_global(Some(timeout))
            .build();
        let agent = match source {
            None => config.into(),
            Some(source) => {
                ureq::Agent::with_parts(config, BoundConnector { source }, DefaultResolver::default())
            }
        };
        let base = format!("http://{}", uri.authority().map(|a| a.as_str()).unwrap_or(host));
        Ok(HttpClient { agent, base, addr, peer })
    }

    /// The peer's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends `method path` with `headers` and `body` (POST only when a body is given).
    pub fn exchange(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, &[u8])>,
    ) -> Result<Answer> {
        let url = format!("{}{}", self.base, path);
        let peer = self.peer;
        let fail = |e: ureq::Error| Error::Http { peer, reason: e.to_string() };
        let mut response = match (method, body) {
            ("GET", None) => {
                let mut req = self.agent.get(&url);
                for (n, v) in headers {
                    req = req.header(*n, *v);
                }
                req.call().map_err(fail)?
            }
            ("POST", Some((content_type, data))) => {
                let mut req = self.agent.post(&url).header("Content-Type", content_type);
                for (n, v) in headers {
                    req = req.header(*n, *v);
                }
                req.send(data).map_err(fail)?
            }
            _ => return Err(Error::InvalidInput(format!("{method} with this body is not used here"))),
        };
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(n, v)| v.to_str().ok().map(|v| (n.as_str().to_ascii_lowercase(), v.to_owned())))
            .collect();
        let body = response.body_mut().with_config().limit(MAX_BODY_LEN).read_to_vec().map_err(fail)?;
        tracing::debug!(peer, method, path, status, len = body.len(), "HTTP exchange");
        Ok(Answer { status, headers, body })
    }
}

/// TCP connections from a given source address: ureq's own connector cannot bind one. Each UE of
/// a host gets its own loopback address this way.
#[derive(Debug)]
struct BoundConnector {
    source: IpAddr,
}

impl Connector for BoundConnector {
    type Out = BoundTransport;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> core::result::Result<Option<BoundTransport>, ureq::Error> {
        let _ = chained;
        let mut last = None;
        for addr in details.addrs.iter() {
            match connect_from(self.source, *addr, details.timeout.not_zero().map(|t| *t)) {
                Ok(stream) => {
                    let config = details.config;
                    let buffers = LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size());
                    return Ok(Some(BoundTransport { stream, buffers }));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(ureq::Error::Io(last.unwrap_or_else(|| std::io::Error::other("no address to connect to"))))
    }
}

fn connect_from(source: IpAddr, to: SocketAddr, timeout: Option<Duration>) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(to), Type::STREAM, Some(Protocol::TCP))?;
    socket.bind(&SocketAddr::new(source, 0).into())?;
    match timeout {
        Some(t) => socket.connect_timeout(&to.into(), t)?,
        None => socket.connect(&to.into())?,
    }
    socket.set_tcp_nodelay(true)?;
    Ok(socket.into())
}

/// A plain TCP transport over a bound stream (what ureq's own TCP transport does, minus the
/// connection-level shutdown hooks the ME does not use).
#[derive(Debug)]
struct BoundTransport {
    stream: TcpStream,
    buffers: LazyBuffers,
}

fn timed_out(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}

impl Transport for BoundTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(
        &mut self,
        amount: usize,
        timeout: NextTimeout,
    ) -> core::result::Result<(), ureq::Error> {
        let timeout = timeout.for_write();
        self.stream.set_write_timeout(timeout.not_zero().map(|t| *t))?;
        let output = self.buffers.output().get(..amount).unwrap_or_default();
        match self.stream.write_all(output) {
            Ok(()) => Ok(()),
            Err(e) if timed_out(&e) => Err(ureq::Error::Timeout(timeout.reason)),
            Err(e) => Err(e.into()),
        }
    }

    fn await_input(&mut self, timeout: NextTimeout) -> core::result::Result<bool, ureq::Error> {
        let timeout = timeout.for_read();
        self.stream.set_read_timeout(timeout.not_zero().map(|t| *t))?;
        let input = self.buffers.input_append_buf();
        let n = loop {
            match self.stream.read(input) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if timed_out(&e) => return Err(ureq::Error::Timeout(timeout.reason)),
                Err(e) => return Err(e.into()),
            }
        };
        self.buffers.input_appended(n);
        Ok(n > 0)
    }

    fn is_open(&mut self) -> bool {
        // Pooled connections are probed: readable data or an error now means the peer closed it.
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let mut probe = [0u8; 1];
        let open =
            matches!(self.stream.peek(&mut probe), Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock);
        open && self.stream.set_nonblocking(false).is_ok()
    }
}

/// A fresh client nonce (RFC 2617 §3.2.2 cnonce): 16 octets from SHA-256 over the process's
/// hash-map keys (seeded by the operating system), the time, the process id and a counter, in hex.
pub(crate) fn fresh_cnonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = Sha256::new();
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.update(hasher.finish().to_be_bytes());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    h.update(now.as_nanos().to_be_bytes());
    h.update(std::process::id().to_be_bytes());
    hex::encode(&h.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_urls() {
        assert!(HttpClient::new("BSF", "http://127.0.0.1:8080/", DEFAULT_HTTP_TIMEOUT).is_ok());
        assert!(HttpClient::new("BSF", "http://[::1]:8080", DEFAULT_HTTP_TIMEOUT).is_ok());
        assert!(HttpClient::new("BSF", "http://localhost:1/", DEFAULT_HTTP_TIMEOUT).is_ok());
        for bad in ["https://127.0.0.1/", "http://192.0.2.1/", "ftp://127.0.0.1/", "not a url", ""] {
            assert!(
                matches!(HttpClient::new("BSF", bad, DEFAULT_HTTP_TIMEOUT), Err(Error::InvalidInput(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn cnonces_differ() {
        let a = fresh_cnonce();
        let b = fresh_cnonce();
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
