//! The IM CN subsystem a protected IMS call needs (TS 23.228 §5.2, §5.4 with TS 33.328 §7.1–§7.3):
//! a registrar and a session-routing proxy over UDP on loopback, with the P-CSCF (IMS ALG) of SDES
//! e2ae media protection and its IMS Access Gateway ([`crate::ims_agw`]).
//!
//! The P-CSCF and S-CSCF roles are collapsed into one node, and the originating and terminating
//! P-CSCF (IMS ALG) are the same node too: one core serves both UEs of a call.
//!
//! * **Registration** (TS 33.328 §7.1): REGISTER from a provisioned IMPU binds its Contact; an
//!   "e2ae-security supported by UE" indication (`Security-Client`) is stored with the binding;
//!   the 200 carries "e2ae-security supported by network" (`Security-Server`) when the network's
//!   policy prefers e2ae. `Expires: 0` removes the binding. A refused REGISTER changes nothing.
//! * **Routing**: requests from registered users go to the Contact bound to the Request-URI's
//!   address of record, or, inside a dialog, to the Request-URI's loopback address; the core adds
//!   its Via, asserts the caller's identity (P-Asserted-Identity, RFC 3325) and counts down
//!   Max-Forwards. Responses follow the Via chain back. UEs send every request to the core.
//! * **e2e** (TS 33.328 §7.2.2, §7.3.2): an offer without "e2ae-security requested" passes with
//!   its crypto attributes untouched (any e2ae indication some other party inserted is removed,
//!   §5.4.1), and media flows UE to UE.
//! * **e2ae** (§7.2.1, §7.3.1): an offer with "requested" from a UE registered with e2ae support
//!   (and a callee registered with it too) loses the caller's crypto attributes; the ALG keeps the
//!   one it picked (the caller's key towards the gateway), points c=/m= at the gateway's port for
//!   the callee and inserts a crypto attribute with a fresh key of its own and "applied". The
//!   callee's answer is handled the same way towards the caller, and the gateway gets both legs'
//!   keys. Offers the ALG cannot accept are answered 488 with a Warning; nothing is stored.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sip::sdes::{CryptoAttribute, InlineKey, KEY_SALT_LEN, SdesError, SdesSuite, ims_e2ae};
use sip::sdp::{Attribute, Connection, SessionDescription};
use sip::{Message, Method, SipUri, Via, Warning};
use srtp::{CryptoSuite, MasterKey};
use zeroize::Zeroizing;

use crate::ims_agw::{AccessLeg, AgwSessionStats, ImsAgw, LegKey};
use crate::peer_thread::PeerThread;

/// The core's Warning agent and Server header.
pub const SERVER: &str = "keysim-ims";
/// Registration lifetime granted when the REGISTER asks for none (RFC 3261 §10.3 step 7).
pub const DEFAULT_EXPIRES: u32 = 3600;
/// The To tag of the core's own error answers.
const CORE_TAG: &str = "ims";
/// Max-Forwards put on requests that carry none.
pub const DEFAULT_MAX_FORWARDS: u8 = 70;

/// How the core is set up.
#[derive(Debug, Clone)]
pub struct ImsCoreConfig {
    /// Loopback address of the SIP socket and the gateway's relay ports.
    pub bind: IpAddr,
    /// SIP port; 0: chosen by the system.
    pub port: u16,
    /// The IMPUs that may register (the subscribers of the HSS).
    pub users: Vec<String>,
    /// Network policy: prefer e2ae protection for registrations (TS 33.328 §7.1). The P-CSCF
    /// (IMS ALG) and the IMS-AGW always exist here.
    pub prefer_e2ae: bool,
}

impl ImsCoreConfig {
    /// A core on 127.0.0.1 (ephemeral port) for `users`, preferring e2ae.
    pub fn new(users: &[&str]) -> Self {
        ImsCoreConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            users: users.iter().map(|u| (*u).to_owned()).collect(),
            prefer_e2ae: true,
        }
    }
}

/// A registration as the core stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// The address of record.
    pub impu: String,
    /// The Contact URI.
    pub contact: String,
    /// Where requests for the user go.
    pub contact_addr: SocketAddr,
    /// "e2ae-security supported by UE" was in the REGISTER.
    pub e2ae_supported: bool,
    /// Granted lifetime in seconds.
    pub expires: u32,
    registered_at: Instant,
}

/// What the core has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImsCoreStats {
    /// REGISTERs answered 200.
    pub registrations: u64,
    /// Requests forwarded.
    pub requests: u64,
    /// Responses forwarded.
    pub responses: u64,
    /// Requests answered by the core with an error.
    pub refused: u64,
    /// Datagrams dropped.
    pub dropped: u64,
    /// Offers the ALG rewrote for e2ae.
    pub e2ae_offers: u64,
    /// Answers the ALG rewrote for e2ae.
    pub e2ae_answers: u64,
    /// Offers passed untouched (e2e).
    pub e2e_offers: u64,
}

/// The ALG's state of one e2ae session (keyed by Call-ID).
struct AlgSession {
    caller_tag: u32,
    suite: SdesSuite,
    caller_key: InlineKey,
    to_caller: InlineKey,
    to_callee: InlineKey,
    caller_media: SocketAddr,
    leg_a: SocketAddr,
    offer: Vec<u8>,
    answer: Option<Vec<u8>>,
}

#[derive(Default)]
struct State {
    bindings: HashMap<String, Binding>,
    alg: HashMap<String, AlgSession>,
    stats: ImsCoreStats,
}

struct Core {
    addr: SocketAddr,
    users: Vec<String>,
    prefer_e2ae: bool,
    agw: Arc<ImsAgw>,
    state: Mutex<State>,
}

impl Core {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running IMS core. Dropping it shuts it down too.
pub struct ImsCore {
    addr: SocketAddr,
    core: Arc<Core>,
    server: PeerThread,
}

impl std::fmt::Debug for ImsCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImsCore").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// The address of record of a SIP URI (scheme, user, host), else the text.
fn aor(uri: &str) -> String {
    SipUri::parse(uri).map(|u| u.address_of_record()).unwrap_or_else(|_| uri.to_owned())
}

impl ImsCore {
    /// Binds on loopback and serves on a thread of its own.
    pub fn start(config: ImsCoreConfig) -> std::io::Result<ImsCore> {
        if !config.bind.is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the IMS core works on loopback only",
            ));
        }
        let socket = std::net::UdpSocket::bind((config.bind, config.port))?;
        socket.set_nonblocking(true)?;
        let addr = socket.local_addr()?;
        let core = Arc::new(Core {
            addr,
            users: config.users.iter().map(|u| aor(u)).collect(),
            prefer_e2ae: config.prefer_e2ae,
            agw: Arc::new(ImsAgw::new(config.bind)?),
            state: Mutex::new(State::default()),
        });
        let rx = core.clone();
        let server = PeerThread::spawn("IMS core", "ims-core", addr, move |stopped| async move {
            let socket = tokio::net::UdpSocket::from_std(socket)?;
            tokio::select! {
                _ = serve(&rx, &socket) => {}
                _ = stopped => {}
            }
            Ok(())
        })?;
        tracing::info!(%addr, prefer_e2ae = config.prefer_e2ae, "IMS core (P-CSCF/S-CSCF, ALG) listening");
        Ok(ImsCore { addr, core, server })
    }

    /// The core's SIP address (UEs send every request here).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Counters.
    pub fn stats(&self) -> ImsCoreStats {
        self.core.state().stats
    }

    /// The binding of `impu`, if registered.
    pub fn binding(&self, impu: &str) -> Option<Binding> {
        self.core.state().bindings.get(&aor(impu)).cloned()
    }

    /// The IMS Access Gateway.
    pub fn agw(&self) -> &ImsAgw {
        &self.core.agw
    }

    /// The gateway's counters of the session with this Call-ID.
    pub fn agw_session(&self, call_id: &str) -> Option<AgwSessionStats> {
        self.core.agw.session_stats(call_id)
    }

    /// Stops serving and waits for the thread.
    pub fn shutdown(mut self) -> std::io::Result<()> {
        for id in self.core.agw.session_ids() {
            self.core.agw.release(&id);
        }
        self.server.stop()
    }
}

async fn serve(core: &Core, socket: &tokio::net::UdpSocket) {
    let mut buf = vec![0u8; sip::MAX_MESSAGE_LEN + 1];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                for (bytes, to) in on_datagram(core, buf.get(..n).unwrap_or_default(), from) {
                    if !to.ip().is_loopback() {
                        core.state().stats.dropped += 1;
                        continue;
                    }
                    if let Err(e) = socket.send_to(&bytes, to).await {
                        tracing::warn!(%to, "IMS core: datagram not sent: {e}");
                    }
                }
            }
            Err(e) => {
                tracing::debug!("IMS core socket: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

type Out = Vec<(Vec<u8>, SocketAddr)>;

fn on_datagram(core: &Core, bytes: &[u8], from: SocketAddr) -> Out {
    let msg = match Message::parse(bytes) {
        Ok(m) => m,
        Err(e) => {
            if !matches!(e, sip::Error::Empty) {
                tracing::info!(%from, "IMS core: malformed SIP dropped: {e}");
                core.state().stats.dropped += 1;
            }
            return Vec::new();
        }
    };
    let out = if msg.is_request() { on_request(core, msg, from) } else { on_response(core, msg) };
    match out {
        Ok(Some((m, to))) => match m.to_bytes() {
            Ok(b) => vec![(b, to)],
            Err(e) => {
                tracing::warn!("IMS core: message not written: {e}");
                core.state().stats.dropped += 1;
                Vec::new()
            }
        },
        Ok(None) => Vec::new(),
        Err(why) => {
            tracing::info!(%from, "IMS core: dropped: {why}");
            core.state().stats.dropped += 1;
            Vec::new()
        }
    }
}

type Forward = Result<Option<(Message, SocketAddr)>, String>;

fn refusal(req: &Message, code: u16, reason: &str) -> Message {
    let mut r = Message::response_to(req, code, sip::message::reason_phrase(code));
    let _ = r.set_to_tag(CORE_TAG);
    let text: String = reason.chars().map(|c| if c.is_control() { ' ' } else { c }).take(200).collect();
    r.push_header(sip::header::WARNING, &Warning::new(399, SERVER, &text).to_string());
    r.push_header(sip::header::SERVER, SERVER);
    r
}

fn branch_for(incoming: &str, addr: SocketAddr) -> String {
    let digest = Sha256::new()
        .chain_update(b"keysim-ims")
        .chain_update(addr.to_string())
        .chain_update(incoming)
        .finalize();
    format!("{}{}", sip::BRANCH_MAGIC_COOKIE, hex::encode(digest.get(..12).unwrap_or_default()))
}

fn loopback_addr(uri: &str) -> Option<SocketAddr> {
    let u = SipUri::parse(uri).ok()?;
    let ip = u.ip()?;
    ip.is_loopback().then(|| SocketAddr::new(ip, u.port.unwrap_or(sip::DEFAULT_PORT)))
}

fn on_request(core: &Core, mut req: Message, from: SocketAddr) -> Forward {
    req.stamp_received(from).map_err(|e| e.to_string())?;
    let back = req.top_via().ok().and_then(|v| v.response_target()).unwrap_or(from);
    let is_ack = req.method() == Some(&Method::Ack);
    let refuse = |req: &Message, code, reason: &str| -> Forward {
        core.state().stats.refused += 1;
        tracing::info!(code, reason, "IMS core: request refused");
        if is_ack { Err(reason.to_owned()) } else { Ok(Some((refusal(req, code, reason), back))) }
    };
    if req.method() == Some(&Method::Register) {
        return match register(core, &req) {
            Ok(ok) => Ok(Some((ok, back))),
            Err((code, why)) => refuse(&req, code, &why),
        };
    }
    let max_forwards = match req.max_forwards() {
        Ok(m) => m.unwrap_or(DEFAULT_MAX_FORWARDS),
        Err(e) => return refuse(&req, 400, &e.to_string()),
    };
    if max_forwards == 0 {
        return refuse(&req, 483, "Max-Forwards reached 0");
    }
    let from_uri = match req.from() {
        Ok(f) => f.uri,
        Err(e) => return refuse(&req, 400, &e.to_string()),
    };
    let Some(uri) = req.request_uri().map(str::to_owned) else { return Err("no Request-URI".into()) };
    let to_tag = req.to().ok().and_then(|t| t.tag().map(str::to_owned));
    if is_ack && to_tag.as_deref() == Some(CORE_TAG) {
        // The ACK of the core's own error answer ends here (RFC 3261 §17.2.1).
        return Ok(None);
    }
    let initial = to_tag.is_none();
    // The target: a registered user's Contact, or (in a dialog) a loopback Request-URI.
    let target = {
        let st = core.state();
        if initial && !st.bindings.contains_key(&aor(&from_uri)) {
            drop(st);
            return refuse(&req, 403, &format!("{from_uri} is not registered"));
        }
        st.bindings
            .get(&aor(&uri))
            .map(|b| b.contact_addr)
            .or_else(|| if initial { None } else { loopback_addr(&uri) })
    };
    let Some(target) = target else {
        return refuse(&req, 404, &format!("{uri} is not registered"));
    };
    if req.method() == Some(&Method::Invite) && initial && !req.body.is_empty() {
        match alg_offer(core, &req, &from_uri, &uri) {
            Ok(Some(body)) => {
                let ct = req.content_type().unwrap_or(sip::sdp::CONTENT_TYPE_SDP).to_owned();
                req.set_body(&ct, body);
            }
            Ok(None) => {}
            Err(why) => return refuse(&req, 488, &why),
        }
        req.remove_header(sip::header::P_ASSERTED_IDENTITY);
        req.remove_header(sip::header::P_PREFERRED_IDENTITY);
        req.push_header(sip::header::P_ASSERTED_IDENTITY, &sip::NameAddr::new(&from_uri).to_string());
    }
    if req.method() == Some(&Method::Bye)
        && let Ok(call_id) = req.call_id()
    {
        let call_id = call_id.to_owned();
        core.state().alg.remove(&call_id);
        core.agw.release(&call_id);
    }
    req.set_header(sip::header::MAX_FORWARDS, &(max_forwards - 1).to_string());
    let incoming = req.top_via().ok().and_then(|v| v.branch().map(str::to_owned)).unwrap_or_default();
    let via = Via::new(
        "UDP",
        &core.addr.ip().to_string(),
        Some(core.addr.port()),
        &branch_for(&incoming, core.addr),
    );
    req.prepend_header(sip::header::VIA, &via.to_string());
    core.state().stats.requests += 1;
    Ok(Some((req, target)))
}

fn on_response(core: &Core, mut resp: Message) -> Forward {
    let top = resp.pop_top_via().map_err(|e| e.to_string())?;
    let ours = top.host.parse::<IpAddr>().ok() == Some(core.addr.ip()) && top.port == Some(core.addr.port());
    if !ours {
        return Err("a response whose topmost Via is not the core's".into());
    }
    let to = resp.top_via().map_err(|e| e.to_string())?.response_target().ok_or("no address to answer to")?;
    let is_invite = resp.cseq().is_ok_and(|c| c.method == Method::Invite);
    let is_invite_2xx = is_invite && resp.status().is_some_and(|s| (200..300).contains(&s));
    if is_invite
        && resp.status().is_some_and(|s| s >= 300)
        && let Ok(call_id) = resp.call_id().map(str::to_owned)
        && core.state().alg.remove(&call_id).is_some()
    {
        // The session failed: the ALG forgets it and the gateway frees its ports.
        core.agw.release(&call_id);
    }
    if is_invite_2xx && let Ok(call_id) = resp.call_id().map(str::to_owned) {
        let has_alg = core.state().alg.contains_key(&call_id);
        if has_alg {
            match alg_answer(core, &call_id, &resp.body) {
                Ok(body) => {
                    let ct = resp.content_type().unwrap_or(sip::sdp::CONTENT_TYPE_SDP).to_owned();
                    resp.set_body(&ct, body);
                }
                Err(why) => {
                    tracing::warn!(%call_id, "IMS ALG: answer refused: {why}");
                    core.state().alg.remove(&call_id);
                    core.agw.release(&call_id);
                    let mut r = Message::new_response(500, sip::message::reason_phrase(500));
                    for h in resp.headers() {
                        if !sip::header::same_name(&h.name, "Content-Type") {
                            r.push_header(&h.name, &h.value);
                        }
                    }
                    r.push_header(sip::header::WARNING, &Warning::new(399, SERVER, &why).to_string());
                    core.state().stats.refused += 1;
                    return Ok(Some((r, to)));
                }
            }
        }
    }
    core.state().stats.responses += 1;
    Ok(Some((resp, to)))
}

/// REGISTER (TS 33.328 §7.1): the 200 to send, or (status, reason). Nothing is stored on error.
fn register(core: &Core, req: &Message) -> Result<Message, (u16, String)> {
    let to = req.to().map_err(|e| (400, e.to_string()))?;
    let impu = aor(&to.uri);
    if !core.users.contains(&impu) {
        return Err((403, format!("{} is not a subscriber here", to.uri)));
    }
    let contacts = req.contacts().map_err(|e| (400, e.to_string()))?;
    let expires_header = match req.header("Expires") {
        Some(v) => {
            Some(v.trim().parse::<u32>().map_err(|_| (400, format!("Expires `{v}` is not a number")))?)
        }
        None => None,
    };
    let e2ae_supported = req.header_lines(ims_e2ae::SECURITY_CLIENT).any(ims_e2ae::header_indicates_mediasec);
    let mut ok = Message::response_to(req, 200, "OK");
    let _ = ok.set_to_tag("reg");
    let mut st = core.state();
    if contacts.is_empty() {
        // A query: the current binding only (RFC 3261 §10.3 step 6).
        if let Some(b) = st.bindings.get(&impu) {
            ok.push_header("Contact", &format!("<{}>;expires={}", b.contact, b.expires));
        }
        return Ok(ok);
    }
    let [contact] = contacts.as_slice() else {
        return Err((400, "one Contact per registration".into()));
    };
    let expires = contact
        .param("expires")
        .flatten()
        .and_then(|e| e.parse::<u32>().ok())
        .or(expires_header)
        .unwrap_or(DEFAULT_EXPIRES)
        .min(DEFAULT_EXPIRES);
    if expires == 0 {
        st.bindings.remove(&impu);
        ok.push_header("Expires", "0");
        return Ok(ok);
    }
    let contact_addr = loopback_addr(&contact.uri)
        .ok_or_else(|| (400, format!("Contact {} is not a loopback address", contact.uri)))?;
    st.bindings.insert(
        impu.clone(),
        Binding {
            impu: impu.clone(),
            contact: contact.uri.clone(),
            contact_addr,
            e2ae_supported,
            expires,
            registered_at: Instant::now(),
        },
    );
    st.stats.registrations += 1;
    drop(st);
    ok.push_header("Contact", &format!("<{}>;expires={expires}", contact.uri));
    ok.push_header("Expires", &expires.to_string());
    if core.prefer_e2ae {
        ok.push_header(ims_e2ae::SECURITY_SERVER, ims_e2ae::HEADER_VALUE);
    }
    tracing::info!(%impu, %contact_addr, e2ae_supported, "IMS core: registered");
    Ok(ok)
}

fn binding_valid(b: &Binding) -> bool {
    b.registered_at.elapsed() < Duration::from_secs(u64::from(b.expires))
}

fn fresh_key() -> Result<InlineKey, String> {
    use std::io::Read as _;
    let mut ks = Zeroizing::new([0u8; KEY_SALT_LEN]);
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(ks.as_mut_slice()))
        .map_err(|e| format!("no random source: {e}"))?;
    InlineKey::new(ks.as_slice(), None, None).map_err(|e| e.to_string())
}

fn srtp_suite(s: SdesSuite) -> CryptoSuite {
    match s {
        SdesSuite::AesCm128HmacSha1_80 => CryptoSuite::Aes128CmHmacSha1_80,
        SdesSuite::AesCm128HmacSha1_32 => CryptoSuite::Aes128CmHmacSha1_32,
    }
}

fn leg_key(suite: SdesSuite, k: &InlineKey) -> Result<LegKey, String> {
    let mki = k.mki.map(|m| m.to_bytes()).unwrap_or_default();
    let master = MasterKey::from_key_and_salt(k.key_salt(), &mki).map_err(|e| e.to_string())?;
    Ok(LegKey { suite: srtp_suite(suite), master, kdr: 0 })
}

/// Replaces the audio stream's address, port and SDES attributes: `crypto` and the e2ae
/// indication lines go, `crypto_line` and "applied" come in their place.
fn rewrite(sd: &mut SessionDescription, relay: SocketAddr, crypto_line: &str) -> Result<(), String> {
    sd.connection = Some(Connection::new(relay.ip()));
    let m = sd.first_media_mut("audio").ok_or("no audio stream")?;
    m.connection = None;
    m.port = relay.port();
    let at = m.attributes.iter().position(|a| a.name == sip::sdes::CRYPTO || a.name == ims_e2ae::ATTRIBUTE);
    m.attributes.retain(|a| a.name != sip::sdes::CRYPTO && a.name != ims_e2ae::ATTRIBUTE);
    let at = at.unwrap_or(m.attributes.len()).min(m.attributes.len());
    let new = [
        Attribute::parse(crypto_line).map_err(|e| e.to_string())?,
        Attribute::new(ims_e2ae::ATTRIBUTE, ims_e2ae::APPLIED),
    ];
    for (i, a) in new.into_iter().enumerate() {
        m.attributes.insert(at + i, a);
    }
    Ok(())
}

/// The ALG on an initial INVITE's offer: `Some(new body)` when it rewrites it, `None` to pass
/// it untouched, `Err` for a 488.
fn alg_offer(core: &Core, req: &Message, caller: &str, callee: &str) -> Result<Option<Vec<u8>>, String> {
    let call_id = req.call_id().map_err(|e| e.to_string())?.to_owned();
    if let Some(s) = core.state().alg.get(&call_id) {
        return Ok(Some(s.offer.clone()));
    }
    let mut sd = SessionDescription::parse(&req.body).map_err(|e| format!("SDP offer: {e}"))?;
    let requested = sd
        .media
        .iter()
        .flat_map(|m| m.attributes.iter())
        .chain(sd.attributes.iter())
        .any(|a| a.name == ims_e2ae::ATTRIBUTE && a.value.as_deref() == Some(ims_e2ae::REQUESTED));
    if !requested {
        core.state().stats.e2e_offers += 1;
        // An indication some other party inserted is removed (TS 33.328 §5.4.1).
        let mut removed = sd.attributes.iter().filter(|a| a.name == ims_e2ae::ATTRIBUTE).count();
        sd.attributes.retain(|a| a.name != ims_e2ae::ATTRIBUTE);
        for m in &mut sd.media {
            removed += m.remove_attributes(ims_e2ae::ATTRIBUTE);
        }
        if removed == 0 {
            return Ok(None);
        }
        return sd.to_text().map(|t| Some(t.into_bytes())).map_err(|e| e.to_string());
    }
    let (caller_ok, callee_ok) = {
        let st = core.state();
        let ok = |u: &str| st.bindings.get(&aor(u)).is_some_and(|b| b.e2ae_supported && binding_valid(b));
        (ok(caller), ok(callee))
    };
    if !core.prefer_e2ae || !caller_ok {
        return Err("e2ae-security requested, but not supported for this registration".into());
    }
    if !callee_ok {
        return Err("e2ae-security requested, but the terminating UE did not register e2ae support".into());
    }
    let audio = sd.first_media("audio").ok_or("SDP offer without an audio stream")?;
    let caller_media = sd.media_address(audio).ok_or("SDP offer without a unicast audio address")?;
    let mut chosen = None;
    let mut seen = 0;
    for a in audio.attributes_named(sip::sdes::CRYPTO) {
        seen += 1;
        match CryptoAttribute::parse(a.value.as_deref().unwrap_or_default()) {
            Ok(c) if c.keys.len() == 1 && c.unsupported_params().is_empty() && c.kdr() == 0 => {
                if chosen.is_none() {
                    chosen = Some(c);
                }
            }
            Ok(_) | Err(SdesError::UnknownSuite(_)) => {}
            Err(e) => return Err(format!("malformed crypto attribute: {e}")),
        }
    }
    if seen == 0 {
        return Err("SDES offer without crypto attribute".into());
    }
    let chosen = chosen.ok_or("no crypto attribute the IMS ALG supports")?;
    let caller_key = chosen.keys.into_iter().next().ok_or("no key")?;
    let (to_caller, to_callee) = (fresh_key()?, fresh_key()?);
    let (leg_a, leg_b) = core.agw.allocate(&call_id).map_err(|e| format!("IMS-AGW: {e}"))?;
    let line =
        CryptoAttribute::new(1, chosen.suite, to_callee.clone()).to_line().map_err(|e| e.to_string())?;
    let rewritten = rewrite(&mut sd, leg_b, &line).and_then(|()| sd.to_text().map_err(|e| e.to_string()));
    let offer = match rewritten {
        Ok(t) => t.into_bytes(),
        Err(e) => {
            core.agw.release(&call_id);
            return Err(e);
        }
    };
    let mut st = core.state();
    st.stats.e2ae_offers += 1;
    st.alg.insert(
        call_id.clone(),
        AlgSession {
            caller_tag: chosen.tag,
            suite: chosen.suite,
            caller_key,
            to_caller,
            to_callee,
            caller_media,
            leg_a,
            offer: offer.clone(),
            answer: None,
        },
    );
    tracing::info!(%call_id, %leg_a, %leg_b, suite = %chosen.suite, "IMS ALG: e2ae offer rewritten");
    Ok(Some(offer))
}

/// The ALG on the 2xx answer of an e2ae session: the rewritten body; the gateway activated.
fn alg_answer(core: &Core, call_id: &str, body: &[u8]) -> Result<Vec<u8>, String> {
    let (suite, caller_tag, leg_a, caller_media, to_caller, to_callee, caller_key, done) = {
        let st = core.state();
        let s = st.alg.get(call_id).ok_or("no ALG session")?;
        (
            s.suite,
            s.caller_tag,
            s.leg_a,
            s.caller_media,
            s.to_caller.clone(),
            s.to_callee.clone(),
            s.caller_key.clone(),
            s.answer.clone(),
        )
    };
    if let Some(done) = done {
        return Ok(done);
    }
    let mut sd = SessionDescription::parse(body).map_err(|e| format!("SDP answer: {e}"))?;
    let audio = sd.first_media("audio").ok_or("SDP answer without an audio stream")?;
    let callee_media = sd.media_address(audio).ok_or("SDP answer without a unicast audio address")?;
    let crypto: Vec<&Attribute> = audio.attributes_named(sip::sdes::CRYPTO).collect();
    let [a] = crypto.as_slice() else {
        return Err(format!("the answer has {} crypto attributes, not one", crypto.len()));
    };
    let c =
        CryptoAttribute::parse(a.value.as_deref().unwrap_or_default()).map_err(|e| format!("answer: {e}"))?;
    if c.tag != 1 || c.suite != suite || c.keys.len() != 1 || c.kdr() != 0 {
        return Err("the answer does not match the offered crypto attribute".into());
    }
    let callee_key = c.keys.first().ok_or("no key")?;
    let leg_a_keys = AccessLeg {
        ue_media: caller_media,
        from_ue: leg_key(suite, &caller_key)?,
        to_ue: leg_key(suite, &to_caller)?,
    };
    let leg_b_keys = AccessLeg {
        ue_media: callee_media,
        from_ue: leg_key(suite, callee_key)?,
        to_ue: leg_key(suite, &to_callee)?,
    };
    let line = CryptoAttribute::new(caller_tag, suite, to_caller).to_line().map_err(|e| e.to_string())?;
    rewrite(&mut sd, leg_a, &line)?;
    let text = sd.to_text().map_err(|e| e.to_string())?.into_bytes();
    core.agw.activate(call_id, leg_a_keys, leg_b_keys).map_err(|e| e.to_string())?;
    let mut st = core.state();
    st.stats.e2ae_answers += 1;
    if let Some(s) = st.alg.get_mut(call_id) {
        s.answer = Some(text.clone());
    }
    tracing::info!(%call_id, %callee_media, "IMS ALG: e2ae answer rewritten, IMS-AGW relaying");
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "sip:alice@ims.example.org";
    const B: &str = "sip:bob@ims.example.org";

    fn core(prefer_e2ae: bool) -> Core {
        Core {
            addr: "127.0.0.1:5070".parse().unwrap(),
            users: vec![aor(A), aor(B)],
            prefer_e2ae,
            agw: Arc::new(ImsAgw::new(IpAddr::V4(Ipv4Addr::LOCALHOST)).unwrap()),
            state: Mutex::new(State::default()),
        }
    }

    fn register(impu: &str, port: u16, extra: &str) -> Vec<u8> {
        format!(
            "REGISTER sip:ims.example.org SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKr{port};rport\r\n\
             From: <{impu}>;tag=1\r\nTo: <{impu}>\r\nCall-ID: r{port}\r\nCSeq: 1 REGISTER\r\n\
             {extra}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn answer(out: &Out) -> Message {
        let [(bytes, _)] = out.as_slice() else { panic!("{out:?}") };
        Message::parse(bytes).unwrap()
    }

    #[test]
    fn registration_stores_the_indication_and_answers_the_network_one() {
        let c = core(true);
        let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let contact = "Contact: <sip:alice@127.0.0.1:40000>\r\n";
        let ok = answer(&on_datagram(
            &c,
            &register(A, 40000, &format!("{contact}Security-Client: sdes-srtp;mediasec\r\n")),
            from,
        ));
        assert_eq!(ok.status(), Some(200));
        assert_eq!(ok.header("Security-Server"), Some(ims_e2ae::HEADER_VALUE));
        let b = c.state().bindings.get(&aor(A)).cloned().unwrap();
        assert!(b.e2ae_supported);
        assert_eq!(b.contact_addr, from);
        // Without the UE's indication the binding says so; a network without the e2ae policy
        // sends no Security-Server.
        let _ = on_datagram(&c, &register(B, 40002, "Contact: <sip:bob@127.0.0.1:40002>\r\n"), from);
        assert!(!c.state().bindings.get(&aor(B)).unwrap().e2ae_supported);
        let c2 = core(false);
        let ok = answer(&on_datagram(&c2, &register(A, 40000, contact), from));
        assert_eq!((ok.status(), ok.header("Security-Server")), (Some(200), None));
        // Expires 0 removes the binding.
        let _ =
            on_datagram(&c, &register(A, 40000, "Contact: <sip:alice@127.0.0.1:40000>;expires=0\r\n"), from);
        assert!(!c.state().bindings.contains_key(&aor(A)));
    }

    #[test]
    fn bad_registrations_change_nothing() {
        let c = core(true);
        let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let good = "Contact: <sip:alice@127.0.0.1:40000>\r\nSecurity-Client: sdes-srtp;mediasec\r\n";
        assert_eq!(answer(&on_datagram(&c, &register(A, 40000, good), from)).status(), Some(200));
        let before = c.state().bindings.get(&aor(A)).cloned();
        for (impu, extra, code) in [
            ("sip:mallory@ims.example.org", good, 403),
            (A, "Contact: <sip:alice@192.0.2.1:5060>\r\n", 400),
            (A, "Contact: <sip:a@127.0.0.1:1>, <sip:a@127.0.0.1:2>\r\n", 400),
            (A, "Contact: <sip:alice@127.0.0.1:1>\r\nExpires: soon\r\n", 400),
        ] {
            let r = answer(&on_datagram(&c, &register(impu, 40000, extra), from));
            assert_eq!(r.status(), Some(code), "{extra}");
        }
        assert_eq!(c.state().bindings.get(&aor(A)).cloned(), before);
        assert_eq!(c.state().bindings.len(), 1);
        assert_eq!(c.state().stats.refused, 4);
    }

    #[test]
    fn unregistered_parties_are_refused() {
        let c = core(true);
        let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let invite = |to: &str| {
            format!(
                "INVITE {to} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKi1;rport\r\n\
                 From: <{A}>;tag=1\r\nTo: <{to}>\r\nCall-ID: i1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes()
        };
        assert_eq!(answer(&on_datagram(&c, &invite(B), from)).status(), Some(403));
        let _ = on_datagram(&c, &register(A, 40000, "Contact: <sip:alice@127.0.0.1:40000>\r\n"), from);
        assert_eq!(answer(&on_datagram(&c, &invite(B), from)).status(), Some(404));
        assert!(on_datagram(&c, b"garbage", from).is_empty());
    }
}
