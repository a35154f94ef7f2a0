//! A P-CSCF in front of the SCF (TS 23.228 §4.6, TS 24.229 §5.2.6.3: the IM CN subsystem asserts
//! the UE's identity; TS 26.237 CR §10.2.2), as a stateless SIP proxy over UDP on loopback
//! (RFC 3261 §16.11, RFC 3325 §5).
//!
//! Requests from UEs: the user is a pre-provisioned one whose IMPU is the From URI (or a
//! P-Preferred-Identity it holds), arriving from its configured address if one is set; any
//! P-Asserted-Identity or P-Preferred-Identity the UE sent is removed and one
//! `P-Asserted-Identity: <IMPU>` inserted (RFC 3325 §9.1). Max-Forwards counts down, the P-CSCF
//! adds its Via (a branch derived from the incoming one, so retransmissions and CANCEL map to the
//! same transaction) and, on INVITE, a Record-Route so that the dialog's requests come back
//! through it; its own Route entry is taken off. Everything goes to the next hop (the SCF).
//!
//! Responses from the next hop: the P-CSCF's Via is taken off and the response goes where the
//! next Via says (RFC 3261 §16.7, §18.2.2). An unknown user gets `403`, malformed SIP `400` (or
//! is dropped when it cannot be answered); the proxy keeps serving.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::peer_thread::PeerThread;
use sha2::{Digest, Sha256};
use sip::{Message, Method, SipUri, Via, Warning};

/// The P-CSCF's Warning agent and Server header.
pub const SERVER: &str = "keysim-pcscf";
/// Max-Forwards put on requests that carry none (RFC 3261 §8.1.1.6).
pub const DEFAULT_MAX_FORWARDS: u8 = 70;

/// A user known to the IM CN subsystem (registered and authenticated to IMS beforehand).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcscfUser {
    /// The IMPI.
    pub impi: String,
    /// The IMPUs; the first is asserted unless the request names another one of them.
    pub impus: Vec<String>,
    /// The address the UE sends from; `None`: any.
    pub ue_addr: Option<IpAddr>,
}

/// How a P-CSCF is set up.
#[derive(Debug, Clone)]
pub struct PcscfConfig {
    /// The loopback address of its socket.
    pub bind: IpAddr,
    /// Its port; 0: chosen by the system.
    pub port: u16,
    /// Where requests go (the SCF).
    pub next_hop: SocketAddr,
    /// The users.
    pub users: Vec<PcscfUser>,
}

impl PcscfConfig {
    /// A P-CSCF on 127.0.0.1 (ephemeral port) in front of `next_hop`, with no users yet.
    pub fn new(next_hop: SocketAddr) -> Self {
        PcscfConfig { bind: IpAddr::V4(Ipv4Addr::LOCALHOST), port: 0, next_hop, users: Vec::new() }
    }
}

/// What the P-CSCF has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PcscfStats {
    /// Requests forwarded to the next hop.
    pub requests: u64,
    /// Responses forwarded back.
    pub responses: u64,
    /// Requests answered by the P-CSCF itself with an error.
    pub refused: u64,
    /// Datagrams dropped.
    pub dropped: u64,
}

struct Core {
    addr: SocketAddr,
    next_hop: SocketAddr,
    users: Vec<PcscfUser>,
    stats: Mutex<PcscfStats>,
}

impl Core {
    fn stats(&self) -> MutexGuard<'_, PcscfStats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// True if two identities name the same user (SIP addresses of record, else equal text).
fn same_identity(a: &str, b: &str) -> bool {
    match (SipUri::parse(a), SipUri::parse(b)) {
        (Ok(x), Ok(y)) => x.scheme == y.scheme && x.address_of_record() == y.address_of_record(),
        _ => a == b,
    }
}

/// A running P-CSCF. Dropping it shuts it down too.
pub struct Pcscf {
    addr: SocketAddr,
    core: Arc<Core>,
    server: PeerThread,
}

impl Pcscf {
    /// Binds on loopback and serves on a thread of its own. Refused: a non-loopback bind or next
    /// hop, a user without IMPU.
    pub fn start(config: PcscfConfig) -> std::io::Result<Pcscf> {
        if !config.bind.is_loopback() || !config.next_hop.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the P-CSCF works on loopback only",
            ));
        }
        if config.users.iter().any(|u| u.impus.is_empty()) {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "a user needs an IMPU"));
        }
        let socket = std::net::UdpSocket::bind((config.bind, config.port))?;
        socket.set_nonblocking(true)?;
        let addr = socket.local_addr()?;
        let core = Arc::new(Core {
            addr,
            next_hop: config.next_hop,
            users: config.users,
            stats: Mutex::new(PcscfStats::default()),
        });
        let rx_core = core.clone();
        let server = PeerThread::spawn("P-CSCF", "pcscf", addr, move |stopped| async move {
            let socket = tokio::net::UdpSocket::from_std(socket)?;
            tokio::select! {
                _ = serve(&rx_core, &socket) => {}
                _ = stopped => {}
            }
            Ok(())
        })?;
        tracing::info!(%addr, next_hop = %core.next_hop, "P-CSCF listening");
        Ok(Pcscf { addr, core, server })
    }

    /// The P-CSCF's address (UEs send to it).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Counters.
    pub fn stats(&self) -> PcscfStats {
        *self.core.stats()
    }

    /// Stops serving and waits for the thread.
    pub fn shutdown(mut self) -> std::io::Result<()> {
        self.server.stop()
    }
}

impl std::fmt::Debug for Pcscf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pcscf")
            .field("addr", &self.addr)
            .field("next_hop", &self.core.next_hop)
            .finish_non_exhaustive()
    }
}

async fn serve(core: &Core, socket: &tokio::net::UdpSocket) {
    let mut buf = vec![0u8; sip::MAX_MESSAGE_LEN + 1];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let out = on_datagram(core, buf.get(..n).unwrap_or_default(), from);
                for (bytes, to) in out {
                    if !to.ip().is_loopback() {
                        core.stats().dropped += 1;
                        tracing::warn!(%to, "P-CSCF: not sending off loopback");
                        continue;
                    }
                    if let Err(e) = socket.send_to(&bytes, to).await {
                        tracing::warn!(%to, "P-CSCF: datagram not sent: {e}");
                    }
                }
            }
            Err(e) => {
                tracing::debug!("P-CSCF socket: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// What to send for one datagram.
fn on_datagram(core: &Core, bytes: &[u8], from: SocketAddr) -> Vec<(Vec<u8>, SocketAddr)> {
    let msg = match Message::parse(bytes) {
        Ok(m) => m,
        Err(sip::Error::Empty) => return Vec::new(),
        Err(e) => return refuse_malformed(core, bytes, from, &e),
    };
    let out = if msg.is_request() { on_request(core, msg, from) } else { on_response(core, msg) };
    match out {
        Ok(Some((m, to))) => match m.to_bytes() {
            Ok(b) => vec![(b, to)],
            Err(e) => {
                core.stats().dropped += 1;
                tracing::warn!("P-CSCF: message not written: {e}");
                Vec::new()
            }
        },
        Ok(None) => Vec::new(),
        Err(why) => {
            core.stats().dropped += 1;
            tracing::info!(%from, "P-CSCF: dropped: {why}");
            Vec::new()
        }
    }
}

/// A P-CSCF error answer with a Warning.
fn refusal(req: &Message, code: u16, reason: &str) -> Message {
    let mut r = Message::response_to(req, code, sip::message::reason_phrase(code));
    let _ = r.set_to_tag("pcscf");
    let text: String = reason.chars().map(|c| if c.is_control() { ' ' } else { c }).take(200).collect();
    r.push_header(sip::header::WARNING, &Warning::new(399, SERVER, &text).to_string());
    r.push_header(sip::header::SERVER, SERVER);
    r
}

fn refuse_malformed(
    core: &Core,
    bytes: &[u8],
    from: SocketAddr,
    e: &sip::Error,
) -> Vec<(Vec<u8>, SocketAddr)> {
    tracing::info!(%from, "P-CSCF: malformed SIP: {e}");
    let answerable = Message::parse_syntax(bytes)
        .ok()
        .filter(|m| m.is_request() && m.method() != Some(&Method::Ack) && m.top_via().is_ok());
    let Some(mut req) = answerable else {
        core.stats().dropped += 1;
        return Vec::new();
    };
    let _ = req.stamp_received(from);
    let to = req.top_via().ok().and_then(|v| v.response_target()).unwrap_or(from);
    core.stats().refused += 1;
    refusal(&req, 400, &format!("malformed request: {e}"))
        .to_bytes()
        .map(|b| vec![(b, to)])
        .unwrap_or_default()
}

/// The branch of the P-CSCF's Via for a request whose topmost branch is `incoming` (RFC 3261
/// §16.11: the same for a retransmission, and for the CANCEL of an INVITE).
fn branch_for(incoming: &str, addr: SocketAddr) -> String {
    let digest = Sha256::new()
        .chain_update(b"keysim-pcscf")
        .chain_update(addr.to_string())
        .chain_update(incoming)
        .finalize();
    format!("{}{}", sip::BRANCH_MAGIC_COOKIE, hex::encode(digest.get(..12).unwrap_or_default()))
}

type Forward = Result<Option<(Message, SocketAddr)>, String>;

fn on_request(core: &Core, mut req: Message, from: SocketAddr) -> Forward {
    req.stamp_received(from).map_err(|e| e.to_string())?;
    let back = req.top_via().ok().and_then(|v| v.response_target()).unwrap_or(from);
    let is_ack = req.method() == Some(&Method::Ack);
    let refuse = |req: &Message, code, reason: &str| -> Forward {
        core.stats().refused += 1;
        if is_ack { Err(reason.to_owned()) } else { Ok(Some((refusal(req, code, reason), back))) }
    };
    // Loop detection is left to Max-Forwards (RFC 3261 §16.3 step 4 is optional).
    let max_forwards = match req.max_forwards() {
        Ok(m) => m.unwrap_or(DEFAULT_MAX_FORWARDS),
        Err(e) => return refuse(&req, 400, &e.to_string()),
    };
    if max_forwards == 0 {
        return refuse(&req, 483, "Max-Forwards reached 0");
    }
    // The user: the From URI or a P-Preferred-Identity among a pre-provisioned user's IMPUs.
    let from_uri = match req.from() {
        Ok(f) => f.uri,
        Err(e) => return refuse(&req, 400, &e.to_string()),
    };
    let preferred: Vec<String> = match req.header_values(sip::header::P_PREFERRED_IDENTITY) {
        Ok(v) => v
            .into_iter()
            .filter_map(|p| sip::NameAddr::parse_named(sip::header::P_PREFERRED_IDENTITY, p).ok())
            .map(|n| n.uri)
            .collect(),
        Err(e) => return refuse(&req, 400, &e.to_string()),
    };
    let user = core.users.iter().find(|u| {
        u.ue_addr.is_none_or(|a| a == from.ip()) && u.impus.iter().any(|i| same_identity(i, &from_uri))
    });
    let Some(user) = user else {
        return refuse(&req, 403, &format!("{from_uri} is not a registered user here"));
    };
    let asserted = preferred
        .iter()
        .find_map(|p| user.impus.iter().find(|i| same_identity(i, p)))
        .or_else(|| user.impus.iter().find(|i| same_identity(i, &from_uri)))
        .or(user.impus.first())
        .cloned()
        .unwrap_or_default();
    req.remove_header(sip::header::P_ASSERTED_IDENTITY);
    req.remove_header(sip::header::P_PREFERRED_IDENTITY);
    req.push_header(sip::header::P_ASSERTED_IDENTITY, &sip::NameAddr::new(&asserted).to_string());
    req.set_header(sip::header::MAX_FORWARDS, &(max_forwards - 1).to_string());
    // Our own Route entry (loose routing, RFC 3261 §16.4).
    if let Some(first) =
        req.header_values(sip::header::ROUTE).ok().and_then(|v| v.first().map(|s| (*s).to_owned()))
        && sip::NameAddr::parse_named(sip::header::ROUTE, &first)
            .ok()
            .and_then(|n| n.sip_uri().ok())
            .is_some_and(|u| u.ip() == Some(core.addr.ip()) && u.port == Some(core.addr.port()))
    {
        let rest: Vec<String> = req
            .header_values(sip::header::ROUTE)
            .unwrap_or_default()
            .iter()
            .skip(1)
            .map(|s| (*s).to_owned())
            .collect();
        req.remove_header(sip::header::ROUTE);
        if !rest.is_empty() {
            req.push_header(sip::header::ROUTE, &rest.join(", "));
        }
    }
    if req.method() == Some(&Method::Invite)
        && req.to().ok().and_then(|t| t.tag().map(str::to_owned)).is_none()
    {
        req.prepend_header(sip::header::RECORD_ROUTE, &format!("<sip:{};lr>", core.addr));
    }
    let incoming = req.top_via().ok().and_then(|v| v.branch().map(str::to_owned)).unwrap_or_default();
    let via = Via::new(
        "UDP",
        &core.addr.ip().to_string(),
        Some(core.addr.port()),
        &branch_for(&incoming, core.addr),
    );
    req.prepend_header(sip::header::VIA, &via.to_string());
    core.stats().requests += 1;
    tracing::debug!(impi = %user.impi, %asserted, "P-CSCF: request forwarded");
    Ok(Some((req, core.next_hop)))
}

fn on_response(core: &Core, mut resp: Message) -> Forward {
    let top = resp.pop_top_via().map_err(|e| e.to_string())?;
    let ours = top.host.parse::<IpAddr>().ok() == Some(core.addr.ip()) && top.port == Some(core.addr.port());
    if !ours {
        return Err("a response whose topmost Via is not the P-CSCF's".into());
    }
    let to = resp.top_via().map_err(|e| e.to_string())?.response_target().ok_or("no address to answer to")?;
    core.stats().responses += 1;
    Ok(Some((resp, to)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core() -> Core {
        Core {
            addr: "127.0.0.1:5062".parse().unwrap(),
            next_hop: "127.0.0.1:5060".parse().unwrap(),
            users: vec![PcscfUser {
                impi: "u@example.org".into(),
                impus: vec!["sip:u@example.org".into(), "tel:+15550100".into()],
                ue_addr: None,
            }],
            stats: Mutex::new(PcscfStats::default()),
        }
    }

    fn invite(extra: &str) -> Vec<u8> {
        format!(
            "INVITE sip:scf@scf.example.org SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1;rport\r\n\
             From: <sip:u@example.org>;tag=1\r\nTo: <sip:scf@scf.example.org>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\
             {extra}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn asserts_identity_and_adds_via() {
        let c = core();
        let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let out = on_datagram(
            &c,
            &invite("P-Asserted-Identity: <sip:boss@example.org>\r\nMax-Forwards: 5\r\n"),
            from,
        );
        let [(bytes, to)] = out.as_slice() else { panic!("{out:?}") };
        assert_eq!(*to, c.next_hop);
        let m = Message::parse(bytes).unwrap();
        let pai: Vec<String> = m.asserted_identities().unwrap().into_iter().map(|n| n.uri).collect();
        assert_eq!(pai, ["sip:u@example.org"], "the UE's own PAI is replaced");
        assert_eq!(m.max_forwards().unwrap(), Some(4));
        let vias = m.vias().unwrap();
        assert_eq!((vias[0].host.as_str(), vias[0].port), ("127.0.0.1", Some(5062)));
        assert_eq!(vias[0].branch(), Some(branch_for("z9hG4bK1", c.addr).as_str()));
        assert_eq!(vias[1].param("rport"), Some(Some("40000")));
        assert_eq!(m.header("Record-Route"), Some("<sip:127.0.0.1:5062;lr>"));
        // A preferred identity of the same user is asserted instead.
        let out = on_datagram(&c, &invite("P-Preferred-Identity: <tel:+15550100>\r\n"), from);
        let m = Message::parse(&out[0].0).unwrap();
        assert_eq!(m.asserted_identities().unwrap()[0].uri, "tel:+15550100");
        assert!(m.header("P-Preferred-Identity").is_none());
        // The response comes back through the P-CSCF's Via to the UE's rport.
        let mut resp = Message::response_to(&m, 200, "OK");
        resp.set_to_tag("s").unwrap();
        let out = on_datagram(&c, &resp.to_bytes().unwrap(), c.next_hop);
        let [(bytes, to)] = out.as_slice() else { panic!("{out:?}") };
        assert_eq!(*to, from);
        assert_eq!(Message::parse(bytes).unwrap().vias().unwrap().len(), 1);
    }

    #[test]
    fn refuses_unknown_users_and_bad_input() {
        let c = core();
        let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let other = String::from_utf8(invite("")).unwrap().replace("sip:u@example.org", "sip:x@example.org");
        let out = on_datagram(&c, other.as_bytes(), from);
        let m = Message::parse(&out[0].0).unwrap();
        assert_eq!((m.status(), out[0].1), (Some(403), from));
        assert!(m.warnings().unwrap()[0].text.contains("not a registered user"));
        let out = on_datagram(&c, &invite("Max-Forwards: 0\r\n"), from);
        assert_eq!(Message::parse(&out[0].0).unwrap().status(), Some(483));
        let broken = String::from_utf8(invite("")).unwrap().replace("CSeq: 1 INVITE", "CSeq: x");
        let out = on_datagram(&c, broken.as_bytes(), from);
        // The answer copies the broken CSeq (RFC 3261 §8.2.6.2), so only its syntax parses.
        let m = Message::parse_syntax(&out[0].0).unwrap();
        assert_eq!((m.status(), m.header("CSeq")), (Some(400), Some("x")));
        assert!(m.warnings().unwrap()[0].text.contains("CSeq"), "{m}");
        assert!(on_datagram(&c, b"garbage", from).is_empty());
        // A response that did not pass through the P-CSCF.
        let m = Message::parse(&invite("")).unwrap();
        let resp = Message::response_to(&m, 200, "OK");
        assert!(on_datagram(&c, &resp.to_bytes().unwrap(), c.next_hop).is_empty());
        assert_eq!(c.stats().dropped, 2);
    }
}
