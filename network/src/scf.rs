//! The SCF of IMS-based MBMS User Services acting as the NAF (TS 26.237 §10.4.2, Annex I), and
//! the earlier `authorize` variant (TS 26.237 CR §10.2): SIP over UDP on loopback in, HTTP to the
//! BM-SCs and Zn to the BSF out.
//!
//! - A UE's INVITE (through the P-CSCF, [`crate::pcscf`]) carries the Annex I.1 document
//!   ([`SipSecurityRequest`]: B-TID and a TS 26.346 request); re-INVITEs in the dialog carry
//!   deregistrations, MSK requests, or a registration with a new B-TID (MUK update, §10.4.2.3);
//!   ACK confirms, BYE ends the dialog. INVITE server transactions answer `100 Trying`, absorb
//!   retransmissions, and repeat the final answer until the ACK (RFC 3261 §13.3.1.4, §17.2.1).
//! - The UE's identity is the P-Asserted-Identity that a trusted proxy inserted
//!   ([`ScfConfig::trusted_proxies`]); the subscription data ([`ScfSubscriber`]) says which
//!   User Services it may use. The UE's address is the host of its Contact.
//! - Each User Service names its BM-SC and the SCF FQDN that goes with that BM-SC
//!   ([`ScfService`]): one FQDN per BM-SC, so each BM-SC gets its own MUK. When the SCF holds no
//!   keys for the UE's B-TID and that FQDN, it asks the BSF over Zn with NAF_Id = FQDN ‖
//!   01 00 00 00 01 and derives the MUK (GBA_U: Ks_int_NAF; GBA_ME: the ME-based MUK of
//!   [`gba::mbms_keys`] from Ks_NAF).
//! - Then it posts `sip-based-register|-deregister|-msk-request` to each BM-SC concerned, with
//!   [`wire::sip_based_mbms::ASSERTED_IDENTITY_HEADER`] and the Annex I.2 document ([`NafKeyInfo`]), from
//!   [`ScfConfig::http_source`] (the address the BM-SC trusts), and relays the status documents,
//!   merged, in the SIP 200 OK.
//! - An unknown or expired B-TID, or keys older than [`ScfConfig::fresh_keys_after`], or a UE
//!   marked with [`Scf::require_rebootstrap`]: [`wire::sip_based_mbms::SIP_STATUS_REBOOTSTRAP`] with the
//!   Warning [`wire::sip_based_mbms::SIP_WARN_TEXT_REBOOTSTRAP`], and the UE bootstraps again.
//! - Bad input gets a 4xx with a Warning (code [`wire::sip_based_mbms::SIP_WARN_CODE_REASON`]) naming the
//!   reason, registers nothing, and the SCF keeps serving: malformed SIP `400` (if the request can
//!   still be answered; otherwise it is dropped and counted), no trusted P-Asserted-Identity or no
//!   subscription `403`, unknown User Service or key `404`, wrong Content-Type `415`, garbled body
//!   `400`, unknown dialog `481`.
//!
//! In the `authorize` variant ([`ScfMode::Authorize`]) a registration INVITE makes the SCF post
//! `?requesttype=authorize` instead (no Zn, no keys); the UE then registers over HTTP itself.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gba::keys::KsNaf;
use gba::{NafId, UaSecurityProtocolId, mbms_keys};
use mikey::mbms::{KeyDomainId, Muk};
use sip::{Message, Method, SipUri, Warning};
use wire::mbms_key_management::{self, KeyStatus, MskKeyId, MskResponse, RegisterResponse, ServiceStatus};
use wire::sip_based_mbms::{
    self, AuthorizeRequest, NafKeyInfo, NafKeys, ScfRequestType, SipProcedure, SipSecurityRequest,
};
use wire::ub;
use wire::zn::{NafKeyMaterial, ZnRequest};
use zeroize::Zeroizing;

use crate::bsf::{ZnError, zn_query_async};
use crate::http::{self, HttpResponse};
use crate::peer_thread::PeerThread;
use crate::rand_source::RandSource;

/// Where the SCF's requests to the BM-SCs come from by default: a loopback address of its own,
/// so that a BM-SC can tell them from the UEs' (on Linux all of 127.0.0.0/8 is the loopback
/// interface).
pub const DEFAULT_HTTP_SOURCE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// User part of the SCF's SIP URI.
pub const SCF_USER: &str = "scf";
/// The methods the SCF answers (RFC 3261 §20.5).
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS";
/// RFC 3261 T1, the round-trip estimate of retransmissions (§17.1.1.1).
pub const T1: Duration = Duration::from_millis(500);
/// RFC 3261 T2, the longest retransmission interval (§17.1.2.2).
pub const T2: Duration = Duration::from_secs(4);
/// How long a server transaction is kept (64·T1, RFC 3261 §17.2.1 Timer H).
pub const TRANSACTION_LIFETIME: Duration = Duration::from_secs(32);
/// Server transactions kept; the oldest is forgotten beyond this.
pub const MAX_TRANSACTIONS: usize = 1024;
/// Dialogs kept; the oldest is forgotten beyond this.
pub const MAX_DIALOGS: usize = 1024;
/// UEs whose NAF keys are kept; the oldest is forgotten beyond this.
pub const MAX_UES: usize = 4096;
/// The `Server` header of the SCF's answers.
pub const SERVER: &str = "keysim-scf";

// ------------------------------------------------------------------------------------------------
// Configuration

/// One MBMS User Service as the SCF knows it from its service protection description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScfService {
    /// The User Service ID.
    pub service_id: String,
    /// The NAF FQDN of its service protection description: the SCF's FQDN for its BM-SC.
    pub naf_fqdn: String,
    /// Its BM-SC's HTTP address.
    pub bmsc: SocketAddr,
    /// Key Domain of its MSKs (routes MSK requests).
    pub key_domain_id: KeyDomainId,
    /// Key Group of its MSKs (routes MSK requests).
    pub key_group: u16,
}

impl ScfService {
    /// A service of Key Domain 00 F1 10 (MCC 001 MNC 01) carried by the BM-SC at `bmsc`.
    pub fn new(service_id: &str, naf_fqdn: &str, bmsc: SocketAddr, key_group: u16) -> Self {
        ScfService {
            service_id: service_id.to_owned(),
            naf_fqdn: naf_fqdn.to_owned(),
            bmsc,
            key_domain_id: KeyDomainId([0x00, 0xF1, 0x10]),
            key_group,
        }
    }
}

/// Subscription data: which User Services an IMPU may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScfSubscriber {
    /// The IMPU (as P-Asserted-Identity carries it: `sip:…` or `tel:…`).
    pub impu: String,
    /// The User Service IDs of the subscription.
    pub services: Vec<String>,
}

/// Which procedure set the SCF runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScfMode {
    /// SIP-based MBMS security with the SCF as NAF (TS 26.237 §10.4.2).
    SipBased,
    /// The earlier variant: the SCF authorizes, the UE registers over HTTP (TS 26.237 CR §10.2).
    Authorize,
}

/// How an SCF is set up.
#[derive(Debug, Clone)]
pub struct ScfConfig {
    /// The loopback address of the SIP socket.
    pub bind: IpAddr,
    /// SIP port; 0: chosen by the system.
    pub sip_port: u16,
    /// The SCF's SIP domain: Request-URIs name it (or the bound address).
    pub domain: String,
    /// The User Services.
    pub services: Vec<ScfService>,
    /// The subscription data.
    pub subscribers: Vec<ScfSubscriber>,
    /// The BSF's Zn address.
    pub bsf_zn: SocketAddr,
    /// Source address of the requests to the BM-SCs (their [`crate::bmsc::BmscConfig::trusted_scfs`]).
    pub http_source: IpAddr,
    /// Sources whose P-Asserted-Identity is believed (the P-CSCF); empty: every source's.
    pub trusted_proxies: Vec<SocketAddr>,
    /// The procedure set.
    pub mode: ScfMode,
    /// Policy: keys from a bootstrapping older than this make the UE bootstrap again.
    pub fresh_keys_after: Option<Duration>,
    /// Seed of the tag generator; `None` seeds from the process's randomness.
    pub seed: Option<[u8; 32]>,
}

impl ScfConfig {
    /// An SCF of `domain` on 127.0.0.1 (ephemeral port) asking the BSF at `bsf_zn`, SIP-based, no
    /// services or subscribers yet, PAI believed from every source.
    pub fn new(domain: &str, bsf_zn: SocketAddr) -> Self {
        ScfConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            sip_port: 0,
            domain: domain.to_owned(),
            services: Vec::new(),
            subscribers: Vec::new(),
            bsf_zn,
            http_source: DEFAULT_HTTP_SOURCE,
            trusted_proxies: Vec::new(),
            mode: ScfMode::SipBased,
            fresh_keys_after: None,
            seed: None,
        }
    }
}

/// What the SCF has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScfStats {
    /// Initial INVITEs (new transactions).
    pub invites: u64,
    /// re-INVITEs (new transactions).
    pub reinvites: u64,
    /// ACKs.
    pub acks: u64,
    /// BYEs that ended a dialog.
    pub byes: u64,
    /// 200 answers to INVITEs.
    pub invite_ok: u64,
    /// 4xx / 5xx answers (any method).
    pub error_responses: u64,
    /// Answers asking the UE to bootstrap again.
    pub rebootstrap_responses: u64,
    /// Retransmitted requests absorbed, and final answers repeated.
    pub retransmissions: u64,
    /// Zn queries sent.
    pub zn_queries: u64,
    /// Zn queries refused or failed.
    pub zn_failures: u64,
    /// Requests to BM-SCs.
    pub bmsc_requests: u64,
    /// Requests to BM-SCs that failed or were refused.
    pub bmsc_failures: u64,
    /// Datagrams dropped (not SIP, unanswerable, responses).
    pub dropped: u64,
}

// ------------------------------------------------------------------------------------------------
// State

/// An INVITE (or other) server transaction.
struct Transaction {
    call_id: String,
    cseq: u32,
    method: Method,
    /// The last answer sent, for retransmissions of the request.
    last: Option<Vec<u8>>,
    acked: bool,
    created: Instant,
}

/// A dialog created by a 200 to an INVITE.
struct Dialog {
    identity: String,
    ue_ip: IpAddr,
    remote_cseq: u32,
    /// A re-INVITE is being answered (another one gets 491, RFC 3261 §14.2).
    busy: bool,
    created: Instant,
}

/// Dialog ID (RFC 3261 §12): Call-ID, local tag (ours, To), remote tag (From).
type DialogId = (String, String, String);

/// The NAF keys of one NAF FQDN for a UE's B-TID.
struct NafKeyEntry {
    muk: Muk,
    /// Key expiry, Unix seconds, and its UTC text (the MUK lifetime).
    expires: u64,
    lifetime: String,
    /// When the bootstrapping ran, Unix seconds.
    bootstrapped: u64,
}

/// What the SCF keeps of a UE: its B-TID and the keys per NAF FQDN.
struct UeKeys {
    btid: String,
    keys: HashMap<String, NafKeyEntry>,
    serial: u64,
}

struct State {
    transactions: HashMap<String, Transaction>,
    dialogs: HashMap<DialogId, Dialog>,
    ues: HashMap<String, UeKeys>,
    /// IMPU → the B-TID that must not be used any more.
    rebootstrap: HashMap<String, String>,
    trusted_proxies: Vec<SocketAddr>,
    rand: RandSource,
    serial: u64,
    stats: ScfStats,
}

struct Core {
    domain: String,
    addr: SocketAddr,
    services: Vec<ScfService>,
    subscribers: Vec<ScfSubscriber>,
    bsf_zn: SocketAddr,
    http_source: IpAddr,
    mode: ScfMode,
    fresh_keys_after: Option<Duration>,
    state: Mutex<State>,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn invalid_input(why: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, why.into())
}

impl Core {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every change is a few inserts / removes under one lock; a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn service(&self, id: &str) -> Option<&ScfService> {
        self.services.iter().find(|s| s.service_id == id)
    }

    fn service_of_key(&self, k: &MskKeyId) -> Option<&ScfService> {
        self.services
            .iter()
            .find(|s| s.key_domain_id == k.key_domain_id && s.key_group == k.msk_id.key_group())
    }

    fn subscriber(&self, identities: &[String]) -> Option<&ScfSubscriber> {
        identities.iter().find_map(|i| self.subscribers.iter().find(|s| same_identity(&s.impu, i)))
    }
}

/// True if two identities name the same user: equal SIP addresses of record (host compared
/// without case), else equal text.
fn same_identity(a: &str, b: &str) -> bool {
    match (SipUri::parse(a), SipUri::parse(b)) {
        (Ok(x), Ok(y)) => x.scheme == y.scheme && x.address_of_record() == y.address_of_record(),
        _ => a == b,
    }
}

/// Why a request is refused: SIP status, Warning text, and whether it is the re-bootstrap answer.
#[derive(Debug)]
struct Refusal {
    code: u16,
    reason: String,
    rebootstrap: bool,
}

impl Refusal {
    fn new(code: u16, reason: impl Into<String>) -> Self {
        Refusal { code, reason: reason.into(), rebootstrap: false }
    }

    fn rebootstrap(reason: impl Into<String>) -> Self {
        Refusal { code: sip_based_mbms::SIP_STATUS_REBOOTSTRAP, reason: reason.into(), rebootstrap: true }
    }
}

/// A visible one-line text for a Warning.
fn warning_text(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).take(200).collect()
}

// ------------------------------------------------------------------------------------------------
// The running server

/// A running SCF. Dropping it shuts it down too; [`Scf::shutdown`] reports how that went.
pub struct Scf {
    addr: SocketAddr,
    core: Arc<Core>,
    server: PeerThread,
}

impl Scf {
    /// Binds the SIP socket on loopback and serves on a thread of its own. Refused: a
    /// non-loopback bind, BSF, BM-SC or HTTP source address; no services; a bad NAF FQDN or User
    /// Service ID; two services with one ID or one Key Domain and Key Group; one BM-SC with two
    /// NAF FQDNs or one NAF FQDN for two BM-SCs (TS 26.237 §10.4.2.1); a subscription to an
    /// unknown service.
    pub fn start(config: ScfConfig) -> std::io::Result<Scf> {
        let loopback = [config.bind, config.bsf_zn.ip(), config.http_source];
        if loopback.iter().any(|a| !a.is_loopback()) {
            return Err(invalid_input("the SCF, the BSF and the SCF's HTTP source must be on loopback"));
        }
        if config.services.is_empty() {
            return Err(invalid_input("an SCF needs at least one User Service"));
        }
        for (i, s) in config.services.iter().enumerate() {
            mbms_key_management::check_service_id(&s.service_id).map_err(|e| invalid_input(e.to_string()))?;
            NafId::new(&s.naf_fqdn, UaSecurityProtocolId::MBMS)
                .map_err(|e| invalid_input(format!("NAF FQDN `{}`: {e}", s.naf_fqdn)))?;
            sip_based_mbms::check_fqdn(&s.naf_fqdn).map_err(|e| invalid_input(e.to_string()))?;
            if !s.bmsc.ip().is_loopback() {
                return Err(invalid_input(format!("BM-SC {} is not on loopback", s.bmsc)));
            }
            for o in config.services.iter().take(i) {
                if o.service_id == s.service_id
                    || (o.key_domain_id == s.key_domain_id && o.key_group == s.key_group)
                {
                    return Err(invalid_input(format!(
                        "service `{}` repeats another's ID or Key Group",
                        s.service_id
                    )));
                }
                if (o.bmsc == s.bmsc) != (o.naf_fqdn == s.naf_fqdn) {
                    return Err(invalid_input(format!(
                        "services `{}` and `{}`: one NAF FQDN per BM-SC and one BM-SC per NAF FQDN",
                        o.service_id, s.service_id
                    )));
                }
            }
        }
        for sub in &config.subscribers {
            if let Some(unknown) =
                sub.services.iter().find(|id| !config.services.iter().any(|s| &&s.service_id == id))
            {
                return Err(invalid_input(format!("subscriber {}: unknown service `{unknown}`", sub.impu)));
            }
        }
        let socket = std::net::UdpSocket::bind((config.bind, config.sip_port))?;
        socket.set_nonblocking(true)?;
        let addr = socket.local_addr()?;
        let core = Arc::new(Core {
            domain: config.domain,
            addr,
            services: config.services,
            subscribers: config.subscribers,
            bsf_zn: config.bsf_zn,
            http_source: config.http_source,
            mode: config.mode,
            fresh_keys_after: config.fresh_keys_after,
            state: Mutex::new(State {
                transactions: HashMap::new(),
                dialogs: HashMap::new(),
                ues: HashMap::new(),
                rebootstrap: HashMap::new(),
                trusted_proxies: config.trusted_proxies,
                rand: RandSource::new(config.seed),
                serial: 0,
                stats: ScfStats::default(),
            }),
        });
        let rx_core = core.clone();
        let server = PeerThread::spawn("SCF", "scf", addr, move |stopped| async move {
            let socket = Arc::new(tokio::net::UdpSocket::from_std(socket)?);
            tokio::select! {
                _ = serve(rx_core, socket) => {}
                _ = stopped => {}
            }
            Ok(())
        })?;
        tracing::info!(%addr, domain = %core.domain, "SCF listening");
        Ok(Scf { addr, core, server })
    }

    /// The SIP address (UDP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The SCF's SIP URI for Request-URIs: `sip:scf@<domain>`.
    pub fn uri(&self) -> String {
        format!("sip:{SCF_USER}@{}", self.core.domain)
    }

    /// Believes P-Asserted-Identity from `proxy` too (the P-CSCF, once it runs).
    pub fn trust_proxy(&self, proxy: SocketAddr) {
        let mut st = self.core.lock();
        if !st.trusted_proxies.contains(&proxy) {
            st.trusted_proxies.push(proxy);
        }
    }

    /// Counters.
    pub fn stats(&self) -> ScfStats {
        self.core.lock().stats
    }

    /// How many dialogs are open.
    pub fn dialog_count(&self) -> usize {
        self.core.lock().dialogs.len()
    }

    /// The B-TID the SCF holds keys for, for `impu`.
    pub fn btid_of(&self, impu: &str) -> Option<String> {
        self.core.lock().ues.get(impu).map(|u| u.btid.clone())
    }

    /// Policy: the UE of `impu` must bootstrap again: its next request with the B-TID held now
    /// gets the re-bootstrap answer. `false` if no B-TID is held for it.
    pub fn require_rebootstrap(&self, impu: &str) -> bool {
        let mut st = self.core.lock();
        let Some(btid) = st.ues.remove(impu).map(|u| u.btid) else { return false };
        st.rebootstrap.insert(impu.to_owned(), btid);
        true
    }

    /// Stops serving and waits for the thread.
    pub fn shutdown(mut self) -> std::io::Result<()> {
        self.server.stop()
    }
}

impl std::fmt::Debug for Scf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scf")
            .field("addr", &self.addr)
            .field("domain", &self.core.domain)
            .finish_non_exhaustive()
    }
}

async fn serve(core: Arc<Core>, socket: Arc<tokio::net::UdpSocket>) {
    let mut buf = vec![0u8; sip::MAX_MESSAGE_LEN + 1];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let bytes = buf.get(..n).unwrap_or_default().to_vec();
                tokio::spawn(on_datagram(core.clone(), socket.clone(), bytes, from));
            }
            Err(e) => {
                tracing::debug!("SCF socket: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn send(core: &Core, socket: &tokio::net::UdpSocket, m: &Message, to: SocketAddr) -> Option<Vec<u8>> {
    if !to.ip().is_loopback() {
        tracing::warn!(%to, "SCF: not sending off loopback");
        return None;
    }
    match m.to_bytes() {
        Ok(bytes) => {
            if let Err(e) = socket.send_to(&bytes, to).await {
                tracing::warn!(%to, "SCF: datagram not sent: {e}");
            }
            if let Some(code) = m.status().filter(|c| *c >= 400) {
                core.lock().stats.error_responses += 1;
                tracing::info!(%to, code, "SCF: error answer");
            }
            Some(bytes)
        }
        Err(e) => {
            tracing::warn!("SCF: answer not written: {e}");
            None
        }
    }
}

/// An answer to `req`: the transaction's fields, a To tag, the Warning of a refusal.
fn answer(core: &Core, req: &Message, code: u16, to_tag: Option<&str>, refusal: Option<&Refusal>) -> Message {
    let mut r = Message::response_to(req, code, sip::message::reason_phrase(code));
    if let Some(tag) = to_tag.filter(|_| code > 100) {
        let _ = r.set_to_tag(tag);
    }
    if let Some(f) = refusal {
        if f.rebootstrap {
            let w = Warning::new(
                sip_based_mbms::SIP_WARN_CODE_REBOOTSTRAP,
                &core.domain,
                sip_based_mbms::SIP_WARN_TEXT_REBOOTSTRAP,
            );
            r.push_header(sip::header::WARNING, &w.to_string());
        }
        let w = Warning::new(sip_based_mbms::SIP_WARN_CODE_REASON, &core.domain, &warning_text(&f.reason));
        r.push_header(sip::header::WARNING, &w.to_string());
    }
    r.push_header(sip::header::SERVER, SERVER);
    r
}

async fn on_datagram(core: Arc<Core>, socket: Arc<tokio::net::UdpSocket>, bytes: Vec<u8>, from: SocketAddr) {
    let mut req = match Message::parse(&bytes) {
        Ok(m) if m.is_request() => m,
        Ok(_) => {
            core.lock().stats.dropped += 1;
            tracing::debug!(%from, "SCF: a response, dropped");
            return;
        }
        Err(sip::Error::Empty) => return,
        Err(e) => return on_malformed(&core, &socket, &bytes, from, &e).await,
    };
    if req.stamp_received(from).is_err() {
        core.lock().stats.dropped += 1;
        return;
    }
    let target = req.top_via().ok().and_then(|v| v.response_target()).unwrap_or(from);
    let method = req.method().cloned().unwrap_or(Method::Ack);
    if method == Method::Ack {
        return on_ack(&core, &req);
    }
    if let Err(f) = check_request_uri(&core, &req) {
        let r = answer(&core, &req, f.code, Some("x"), Some(&f));
        send(&core, &socket, &r, target).await;
        return;
    }
    if req.max_forwards().ok().flatten() == Some(0) {
        let f = Refusal::new(483, "Max-Forwards reached 0");
        send(&core, &socket, &answer(&core, &req, 483, Some("x"), Some(&f)), target).await;
        return;
    }
    match method {
        Method::Invite => on_invite(core, socket, req, from, target).await,
        Method::Bye => {
            let r = on_bye(&core, &req);
            send(&core, &socket, &r, target).await;
        }
        Method::Cancel => {
            let known = req
                .top_via()
                .ok()
                .and_then(|v| v.branch().map(str::to_owned))
                .is_some_and(|b| core.lock().transactions.contains_key(&format!("{b}|INVITE")));
            let code = if known { 200 } else { 481 };
            let f = Refusal::new(481, "no such INVITE transaction");
            let r = answer(&core, &req, code, Some("x"), (!known).then_some(&f));
            send(&core, &socket, &r, target).await;
        }
        Method::Options => {
            let mut r = answer(&core, &req, 200, Some("x"), None);
            r.push_header(sip::header::ALLOW, ALLOW);
            r.push_header(sip::header::ACCEPT, sip_based_mbms::CONTENT_TYPE_SIP_SECURITY);
            send(&core, &socket, &r, target).await;
        }
        other => {
            let f = Refusal::new(405, format!("{other} is not served here"));
            let mut r = answer(&core, &req, 405, Some("x"), Some(&f));
            r.push_header(sip::header::ALLOW, ALLOW);
            send(&core, &socket, &r, target).await;
        }
    }
}

/// A datagram that does not parse: `400` with the reason if it is a request that can still be
/// answered (RFC 3261 §16.3 / §8.2), dropped otherwise.
async fn on_malformed(
    core: &Core,
    socket: &tokio::net::UdpSocket,
    bytes: &[u8],
    from: SocketAddr,
    e: &sip::Error,
) {
    tracing::info!(%from, "SCF: malformed SIP: {e}");
    let answerable = Message::parse_syntax(bytes).ok().filter(|m| {
        m.is_request()
            && m.method() != Some(&Method::Ack)
            && m.top_via().is_ok()
            && m.header(sip::header::CALL_ID).is_some()
            && m.header(sip::header::FROM).is_some()
    });
    let Some(mut req) = answerable else {
        core.lock().stats.dropped += 1;
        return;
    };
    let _ = req.stamp_received(from);
    let target = req.top_via().ok().and_then(|v| v.response_target()).unwrap_or(from);
    let f = Refusal::new(400, format!("malformed request: {e}"));
    send(core, socket, &answer(core, &req, 400, None, Some(&f)), target).await;
}

/// The Request-URI must be a SIP URI of the SCF's domain or address (`404` / `416`).
fn check_request_uri(core: &Core, req: &Message) -> Result<(), Refusal> {
    let uri = req.request_uri().unwrap_or_default();
    let u =
        SipUri::parse(uri).map_err(|_| Refusal::new(416, format!("Request-URI `{uri}` is not a SIP URI")))?;
    let ours = u.host.eq_ignore_ascii_case(&core.domain)
        || (u.ip() == Some(core.addr.ip()) && u.port.is_none_or(|p| p == core.addr.port()));
    if ours { Ok(()) } else { Err(Refusal::new(404, format!("{uri} is not served here"))) }
}

fn on_ack(core: &Core, req: &Message) {
    let (Ok(call_id), Ok(cseq)) = (req.call_id(), req.cseq()) else { return };
    let mut st = core.lock();
    st.stats.acks += 1;
    for t in st.transactions.values_mut() {
        if t.method == Method::Invite && t.call_id == call_id && t.cseq == cseq.seq {
            t.acked = true;
        }
    }
}

fn dialog_id(req: &Message) -> Option<DialogId> {
    let local = req.to().ok()?.tag()?.to_owned();
    let remote = req.from().ok()?.tag()?.to_owned();
    Some((req.call_id().ok()?.to_owned(), local, remote))
}

fn on_bye(core: &Core, req: &Message) -> Message {
    let removed = dialog_id(req).and_then(|id| core.lock().dialogs.remove(&id));
    match removed {
        Some(d) => {
            core.lock().stats.byes += 1;
            tracing::info!(identity = %d.identity, "SCF: dialog ended");
            answer(core, req, 200, None, None)
        }
        None => answer(core, req, 481, None, Some(&Refusal::new(481, "no such dialog"))),
    }
}

/// An INVITE server transaction: `100 Trying`, the procedure, the final answer (repeated until
/// the ACK).
async fn on_invite(
    core: Arc<Core>,
    socket: Arc<tokio::net::UdpSocket>,
    req: Message,
    from: SocketAddr,
    target: SocketAddr,
) {
    let Some(branch) = req.top_via().ok().and_then(|v| v.branch().map(str::to_owned)) else {
        let f = Refusal::new(400, "the topmost Via has no branch");
        send(&core, &socket, &answer(&core, &req, 400, None, Some(&f)), target).await;
        return;
    };
    let key = format!("{branch}|INVITE");
    let (call_id, cseq) = match (req.call_id(), req.cseq()) {
        (Ok(c), Ok(s)) => (c.to_owned(), s.seq),
        _ => return,
    };
    let in_dialog = req.to().ok().and_then(|t| t.tag().map(str::to_owned));
    let retransmitted = {
        let mut st = core.lock();
        let last = st.transactions.get(&key).map(|t| t.last.clone());
        if last.is_some() {
            st.stats.retransmissions += 1;
        }
        last
    };
    if let Some(last) = retransmitted {
        if let Some(bytes) = last {
            let _ = socket.send_to(&bytes, target).await;
        }
        return;
    }
    let to_tag = {
        let mut st = core.lock();
        let now = Instant::now();
        st.transactions.retain(|_, t| now.duration_since(t.created) < TRANSACTION_LIFETIME);
        if st.transactions.len() >= MAX_TRANSACTIONS
            && let Some(oldest) =
                st.transactions.iter().min_by_key(|(_, t)| t.created).map(|(k, _)| k.clone())
        {
            st.transactions.remove(&oldest);
        }
        st.transactions.insert(
            key.clone(),
            Transaction { call_id, cseq, method: Method::Invite, last: None, acked: false, created: now },
        );
        if in_dialog.is_some() {
            st.stats.reinvites += 1;
        } else {
            st.stats.invites += 1;
        }
        in_dialog.clone().unwrap_or_else(|| st.rand.hex(8))
    };
    let trying = answer(&core, &req, 100, None, None);
    if let Some(bytes) = send(&core, &socket, &trying, target).await
        && let Some(t) = core.lock().transactions.get_mut(&key)
    {
        t.last = Some(bytes);
    }

    let outcome = invite(&core, &req, from, &to_tag).await;
    let final_answer = match outcome {
        Ok(ok) => {
            let mut r = answer(&core, &req, 200, Some(&to_tag), None);
            r.push_header(sip::header::CONTACT, &format!("<sip:{SCF_USER}@{}>", core.addr));
            if in_dialog.is_none() {
                // The route set of the dialog (RFC 3261 §12.1.1).
                for rr in req.header_lines(sip::header::RECORD_ROUTE) {
                    r.push_header(sip::header::RECORD_ROUTE, rr);
                }
            }
            r.push_header(sip::header::ALLOW, ALLOW);
            r.set_body(ok.content_type, ok.body.into_bytes());
            core.lock().stats.invite_ok += 1;
            r
        }
        Err(f) => {
            tracing::info!(code = f.code, reason = %f.reason, "SCF: INVITE refused");
            if f.rebootstrap {
                core.lock().stats.rebootstrap_responses += 1;
            }
            answer(&core, &req, f.code, Some(&to_tag), Some(&f))
        }
    };
    let Some(bytes) = send(&core, &socket, &final_answer, target).await else { return };
    if let Some(t) = core.lock().transactions.get_mut(&key) {
        t.last = Some(bytes.clone());
    }
    // Repeat the final answer until the ACK (RFC 3261 §13.3.1.4, §17.2.1), T1 doubling to T2.
    let mut wait = T1;
    let start = Instant::now();
    loop {
        tokio::time::sleep(wait).await;
        if start.elapsed() >= TRANSACTION_LIFETIME {
            return;
        }
        let acked = core.lock().transactions.get(&key).is_none_or(|t| t.acked);
        if acked {
            return;
        }
        core.lock().stats.retransmissions += 1;
        let _ = socket.send_to(&bytes, target).await;
        wait = (wait * 2).min(T2);
    }
}

/// The body and Content-Type of a 200 to an INVITE.
struct InviteOk {
    content_type: &'static str,
    body: String,
}

/// Clears the dialog's busy mark when the re-INVITE is answered.
struct BusyGuard<'a> {
    core: &'a Core,
    id: Option<DialogId>,
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        if let Some(id) = &self.id
            && let Some(d) = self.core.lock().dialogs.get_mut(id)
        {
            d.busy = false;
        }
    }
}

/// The procedure of an INVITE or re-INVITE (TS 26.237 §10.4.2.1, .1A, .2, .3; CR §10.2.3).
async fn invite(core: &Core, req: &Message, from: SocketAddr, to_tag: &str) -> Result<InviteOk, Refusal> {
    let bad = |reason: String| Refusal::new(400, reason);
    let remote_tag = req.from().map_err(|e| bad(e.to_string()))?.tag().map(str::to_owned);
    let remote_tag = remote_tag.ok_or_else(|| bad("From has no tag".into()))?;
    let call_id = req.call_id().map_err(|e| bad(e.to_string()))?.to_owned();
    let cseq = req.cseq().map_err(|e| bad(e.to_string()))?.seq;
    let in_dialog = req.to().ok().and_then(|t| t.tag().map(str::to_owned)).is_some();
    let id: DialogId = (call_id, to_tag.to_owned(), remote_tag);

    // A re-INVITE belongs to a dialog, with a higher CSeq, one at a time (RFC 3261 §12.2.2, §14.2).
    let mut guard = BusyGuard { core, id: None };
    let dialog = if in_dialog {
        let mut st = core.lock();
        let d = st.dialogs.get_mut(&id).ok_or_else(|| Refusal::new(481, "no such dialog"))?;
        if d.busy {
            return Err(Refusal::new(491, "another re-INVITE is being answered"));
        }
        if cseq <= d.remote_cseq {
            return Err(Refusal::new(500, "CSeq not above the dialog's last"));
        }
        d.remote_cseq = cseq;
        d.busy = true;
        guard.id = Some(id.clone());
        Some((d.identity.clone(), d.ue_ip))
    } else {
        None
    };

    // Identity: P-Asserted-Identity from a trusted proxy only (RFC 3325 §5).
    let trusted = {
        let st = core.lock();
        st.trusted_proxies.is_empty() || st.trusted_proxies.contains(&from)
    };
    let identities: Vec<String> = if trusted {
        req.asserted_identities().map_err(|e| bad(e.to_string()))?.into_iter().map(|n| n.uri).collect()
    } else {
        Vec::new()
    };
    if identities.is_empty() {
        return Err(Refusal::new(
            sip_based_mbms::SIP_STATUS_NOT_AUTHORIZED,
            "no P-Asserted-Identity from a trusted proxy",
        ));
    }
    let subscriber = core.subscriber(&identities).ok_or_else(|| {
        Refusal::new(
            sip_based_mbms::SIP_STATUS_NOT_AUTHORIZED,
            format!("{} subscribes to no MBMS User Service", identities.join(", ")),
        )
    })?;
    let impu = subscriber.impu.clone();
    if let Some((owner, _)) = &dialog
        && *owner != impu
    {
        return Err(Refusal::new(
            sip_based_mbms::SIP_STATUS_NOT_AUTHORIZED,
            "the dialog belongs to another identity",
        ));
    }

    // The body.
    let content_type = req.content_type().unwrap_or_default();
    let bare_allowed = core.mode == ScfMode::Authorize;
    let is_security =
        mbms_key_management::content_type_matches(content_type, sip_based_mbms::CONTENT_TYPE_SIP_SECURITY);
    let is_bare =
        mbms_key_management::content_type_matches(content_type, mbms_key_management::CONTENT_TYPE_REGISTER);
    if req.body.is_empty() {
        return Err(bad(format!("no {} body", sip_based_mbms::CONTENT_TYPE_SIP_SECURITY)));
    }
    if !(is_security || (bare_allowed && is_bare)) {
        return Err(Refusal::new(
            415,
            format!("Content-Type `{content_type}`: {} expected", sip_based_mbms::CONTENT_TYPE_SIP_SECURITY),
        ));
    }
    let text = std::str::from_utf8(&req.body).map_err(|_| bad("body is not UTF-8".into()))?;
    let (btid, procedure) = if is_security {
        let r = SipSecurityRequest::from_xml(text).map_err(|e| bad(format!("body: {e}")))?;
        (Some(r.btid), r.procedure)
    } else {
        (None, SipProcedure::from_xml(text).map_err(|e| bad(format!("body: {e}")))?)
    };

    // The UE's address: its Contact, or the dialog's.
    let contact_ip = match req.contacts() {
        Ok(c) => c.first().and_then(|n| n.sip_uri().ok()).and_then(|u| u.ip()),
        Err(e) => return Err(bad(e.to_string())),
    };
    let ue_ip = contact_ip
        .or(dialog.as_ref().map(|(_, ip)| *ip))
        .ok_or_else(|| bad("no Contact with an IP address".into()))?;
    if !ue_ip.is_loopback() {
        return Err(bad(format!("Contact address {ue_ip} is not on loopback")));
    }

    // Authorization from the subscription (§10.4.2.1: "If not, the procedure is terminated").
    let subscribed = |s: &ScfService| subscriber.services.contains(&s.service_id);
    let mut involved: Vec<&ScfService> = Vec::new();
    match &procedure {
        SipProcedure::Register(_) | SipProcedure::Deregister(_) => {
            let register = matches!(procedure, SipProcedure::Register(_));
            for id in procedure.service_ids() {
                let s = core
                    .service(id)
                    .ok_or_else(|| Refusal::new(404, format!("unknown User Service {id}")))?;
                if register && !subscribed(s) {
                    return Err(Refusal::new(
                        sip_based_mbms::SIP_STATUS_NOT_AUTHORIZED,
                        format!("{impu} does not subscribe to {id}"),
                    ));
                }
                involved.push(s);
            }
        }
        SipProcedure::MskRequest(r) => {
            for k in &r.key_ids {
                let s = core.service_of_key(k).ok_or_else(|| {
                    Refusal::new(
                        404,
                        format!(
                            "no User Service has Key Domain {:02X?} Key Group {}",
                            k.key_domain_id.0,
                            k.msk_id.key_group()
                        ),
                    )
                })?;
                if !subscribed(s) {
                    return Err(Refusal::new(
                        sip_based_mbms::SIP_STATUS_NOT_AUTHORIZED,
                        format!("{impu} does not subscribe to {}", s.service_id),
                    ));
                }
                involved.push(s);
            }
        }
    }

    let mut bmscs: Vec<(SocketAddr, &str)> = Vec::new();
    for s in involved {
        if !bmscs.iter().any(|(b, _)| *b == s.bmsc) {
            bmscs.push((s.bmsc, s.naf_fqdn.as_str()));
        }
    }

    // One request per BM-SC, its part of the procedure.
    let mut register_statuses: Vec<(u16, String)> = Vec::new();
    let mut key_statuses: Vec<(u16, MskKeyId)> = Vec::new();
    let identity_header = identities.join(", ");
    for (bmsc, naf_fqdn) in bmscs {
        let part = procedure
            .retain(
                |id| core.service(id).is_some_and(|s| s.bmsc == bmsc),
                |k| core.service_of_key(k).is_some_and(|s| s.bmsc == bmsc),
            )
            .ok_or_else(|| Refusal::new(500, "empty part"))?;
        let (t, body) = match core.mode {
            ScfMode::Authorize => {
                let SipProcedure::Register(r) = &part else {
                    return Err(Refusal::new(
                        488,
                        "deregistrations and MSK requests go to the BM-SC over HTTP here",
                    ));
                };
                let a = AuthorizeRequest { ue_ip_address: ue_ip, service_ids: r.service_ids.clone() };
                (ScfRequestType::Authorize, Zeroizing::new(a.to_xml()))
            }
            ScfMode::SipBased => {
                let btid = btid.clone().ok_or_else(|| bad("no B-TID".into()))?;
                let (muk, lifetime, fresh) = naf_keys(core, &impu, &btid, naf_fqdn).await?;
                let register = matches!(part, SipProcedure::Register(_));
                // Keys always with a registration; otherwise only when new (§10.4.2.1A, §10.4.2.2).
                let keys = (register || fresh).then(|| NafKeys {
                    muk,
                    muk_lifetime: lifetime,
                    btid: btid.clone(),
                    naf_fqdn: naf_fqdn.to_owned(),
                });
                let info = NafKeyInfo { ue_ip_addresses: vec![ue_ip], keys, procedure: part.clone() };
                (part.scf_request_type(), Zeroizing::new(info.to_xml()))
            }
        };
        let r = post_bmsc(core, bmsc, t, &identity_header, &body).await?;
        match part {
            SipProcedure::MskRequest(_) => {
                let doc =
                    MskResponse::from_xml(&r).map_err(|e| Refusal::new(500, format!("BM-SC {bmsc}: {e}")))?;
                key_statuses.extend(
                    doc.statuses.into_iter().flat_map(|s| s.key_ids.into_iter().map(move |k| (s.code, k))),
                );
            }
            _ => {
                let doc = RegisterResponse::from_xml(&r)
                    .map_err(|e| Refusal::new(500, format!("BM-SC {bmsc}: {e}")))?;
                register_statuses.extend(
                    doc.statuses
                        .into_iter()
                        .flat_map(|s| s.service_ids.into_iter().map(move |i| (s.code, i))),
                );
            }
        }
    }

    if !in_dialog {
        let mut st = core.lock();
        if st.dialogs.len() >= MAX_DIALOGS
            && let Some(oldest) = st.dialogs.iter().min_by_key(|(_, d)| d.created).map(|(k, _)| k.clone())
        {
            st.dialogs.remove(&oldest);
        }
        st.dialogs.insert(
            id,
            Dialog { identity: impu.clone(), ue_ip, remote_cseq: cseq, busy: false, created: Instant::now() },
        );
    } else if let Some(d) = core.lock().dialogs.get_mut(&id) {
        d.ue_ip = ue_ip;
    }
    tracing::info!(%impu, procedure = %procedure.scf_request_type(), "SCF: INVITE served");
    Ok(match procedure {
        SipProcedure::MskRequest(_) => InviteOk {
            content_type: mbms_key_management::CONTENT_TYPE_MSK_RESPONSE,
            body: MskResponse {
                statuses: group(key_statuses)
                    .into_iter()
                    .map(|(code, key_ids)| KeyStatus { code, key_ids })
                    .collect(),
            }
            .to_xml(),
        },
        _ => InviteOk {
            content_type: mbms_key_management::CONTENT_TYPE_REGISTER_RESPONSE,
            body: RegisterResponse {
                statuses: group(register_statuses)
                    .into_iter()
                    .map(|(code, service_ids)| ServiceStatus { code, service_ids })
                    .collect(),
            }
            .to_xml(),
        },
    })
}

/// Groups per-item outcomes by code, in the order codes first appear.
fn group<T>(items: Vec<(u16, T)>) -> Vec<(u16, Vec<T>)> {
    let mut out: Vec<(u16, Vec<T>)> = Vec::new();
    for (code, item) in items {
        match out.iter_mut().find(|(c, _)| *c == code) {
            Some((_, v)) => v.push(item),
            None => out.push((code, vec![item])),
        }
    }
    out
}

/// The MUK of `impu`'s B-TID for `naf_fqdn`, its lifetime, and whether it was fetched now: kept,
/// or over Zn (TS 26.237 §10.4.2.1: "If there is no B-TID stored for the UE or if the received
/// B-TID is different than the one stored").
async fn naf_keys(
    core: &Core,
    impu: &str,
    btid: &str,
    naf_fqdn: &str,
) -> Result<(Muk, String, bool), Refusal> {
    let now = unix_now();
    let too_old = |bootstrapped: u64| {
        core.fresh_keys_after.is_some_and(|d| now.saturating_sub(bootstrapped) >= d.as_secs())
    };
    {
        let mut st = core.lock();
        if st.rebootstrap.get(impu).is_some_and(|b| b == btid) {
            return Err(Refusal::rebootstrap(format!("a new bootstrapping is required of {impu}")));
        }
        if let Some(ue) = st.ues.get(impu)
            && ue.btid == btid
            && let Some(k) = ue.keys.get(naf_fqdn)
        {
            if now >= k.expires {
                st.ues.remove(impu);
                return Err(Refusal::rebootstrap(format!("the key lifetime of B-TID {btid} has ended")));
            }
            if too_old(k.bootstrapped) {
                st.ues.remove(impu);
                st.rebootstrap.insert(impu.to_owned(), btid.to_owned());
                return Err(Refusal::rebootstrap("policy: keys from a fresh bootstrapping wanted"));
            }
            return Ok((k.muk.clone(), k.lifetime.clone(), false));
        }
        st.stats.zn_queries += 1;
    }
    let naf_id =
        NafId::new(naf_fqdn, UaSecurityProtocolId::MBMS).map_err(|e| Refusal::new(500, e.to_string()))?;
    let request = ZnRequest { btid: btid.to_owned(), naf_id, gba_u_aware: true };
    let fail = |f: Refusal| {
        core.lock().stats.zn_failures += 1;
        f
    };
    let a = match zn_query_async(core.bsf_zn, &request).await {
        Ok(a) => a,
        Err(e @ ZnError::Refused { .. }) => {
            tracing::info!(%btid, "SCF: {e}");
            return Err(fail(Refusal::rebootstrap(format!("B-TID {btid}: {e}"))));
        }
        Err(e) => {
            tracing::warn!(%btid, "SCF: {e}");
            return Err(fail(Refusal::new(503, format!("BSF: {e}"))));
        }
    };
    if a.btid != btid {
        return Err(fail(Refusal::new(500, "the BSF answered for another B-TID")));
    }
    if !a.impus.iter().any(|i| same_identity(i, impu)) {
        return Err(fail(Refusal::new(
            sip_based_mbms::SIP_STATUS_NOT_AUTHORIZED,
            format!("B-TID {btid} is not {impu}'s"),
        )));
    }
    let expires = ub::parse_utc_time(&a.key_expiry)
        .map_err(|e| fail(Refusal::new(500, format!("Zn key expiry: {e}"))))?;
    if now >= expires {
        return Err(fail(Refusal::rebootstrap(format!("the key lifetime of B-TID {btid} has ended"))));
    }
    let bootstrapped = ub::parse_utc_time(&a.bootstrap_time).unwrap_or(now);
    if too_old(bootstrapped) {
        core.lock().rebootstrap.insert(impu.to_owned(), btid.to_owned());
        return Err(fail(Refusal::rebootstrap("policy: keys from a fresh bootstrapping wanted")));
    }
    // TS 33.246 §6.1: GBA_U → MUK = Ks_int_NAF; GBA_ME → the ME-based MUK from Ks_NAF.
    let muk = match &a.keys {
        NafKeyMaterial::GbaU { ks_int_naf: Some(int), .. } => mbms_keys::uicc_based_muk(int),
        NafKeyMaterial::GbaU { ks_ext_naf, ks_int_naf: None } => {
            mbms_keys::me_based_muk(&KsNaf::new(*ks_ext_naf.expose()))
        }
        NafKeyMaterial::GbaMe { ks_naf } => mbms_keys::me_based_muk(ks_naf),
    };
    let lifetime = ub::utc_time_string(expires);
    let mut st = core.lock();
    st.rebootstrap.remove(impu);
    st.serial += 1;
    let serial = st.serial;
    if !st.ues.contains_key(impu)
        && st.ues.len() >= MAX_UES
        && let Some(oldest) = st.ues.iter().min_by_key(|(_, u)| u.serial).map(|(k, _)| k.clone())
    {
        st.ues.remove(&oldest);
    }
    let ue = st.ues.entry(impu.to_owned()).or_insert_with(|| UeKeys {
        btid: btid.to_owned(),
        keys: HashMap::new(),
        serial,
    });
    if ue.btid != btid {
        // A new bootstrapping: the keys of the old B-TID are done with.
        ue.btid = btid.to_owned();
        ue.keys.clear();
    }
    ue.serial = serial;
    ue.keys.insert(
        naf_fqdn.to_owned(),
        NafKeyEntry { muk: muk.clone(), expires, lifetime: lifetime.clone(), bootstrapped },
    );
    tracing::info!(%impu, %btid, %naf_fqdn, "SCF: NAF keys from the BSF");
    Ok((muk, lifetime, true))
}

/// One request to a BM-SC from [`ScfConfig::http_source`]; the answer's body on `200`.
async fn post_bmsc(
    core: &Core,
    bmsc: SocketAddr,
    t: ScfRequestType,
    identities: &str,
    body: &str,
) -> Result<String, Refusal> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    core.lock().stats.bmsc_requests += 1;
    let fail = |reason: String| {
        core.lock().stats.bmsc_failures += 1;
        tracing::warn!(%bmsc, request = %t, "SCF: {reason}");
        Refusal::new(500, reason)
    };
    let mut request = Zeroizing::new(
        format!(
            "POST {} HTTP/1.1\r\nHost: {bmsc}\r\nContent-Type: {}\r\n{}: {identities}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            t.path_and_query(),
            t.request_content_type(),
            sip_based_mbms::ASSERTED_IDENTITY_HEADER,
            body.len()
        )
        .into_bytes(),
    );
    request.extend_from_slice(body.as_bytes());
    let source = core.http_source;
    let exchange = async {
        let socket =
            if bmsc.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.bind(SocketAddr::new(source, 0))?;
        let mut stream = socket.connect(bmsc).await?;
        stream.write_all(&request).await?;
        let mut raw = Vec::new();
        stream.take(http::MAX_RESPONSE_LEN as u64 + 1).read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = match tokio::time::timeout(http::DEFAULT_TIMEOUT, exchange).await {
        Ok(Ok(raw)) => raw,
        Ok(Err(e)) => return Err(fail(format!("BM-SC {bmsc} unreachable from {source}: {e}"))),
        Err(_) => return Err(fail(format!("BM-SC {bmsc}: no answer in time"))),
    };
    let r: HttpResponse = http::parse_response(&raw).map_err(|e| fail(format!("BM-SC {bmsc}: {e}")))?;
    if r.status != 200 {
        let reason = r.header(mbms_key_management::REASON_HEADER).unwrap_or("").to_owned();
        return Err(fail(format!("BM-SC {bmsc} answered {}: {reason}", r.status)));
    }
    if !r
        .header("content-type")
        .is_some_and(|c| mbms_key_management::content_type_matches(c, t.response_content_type()))
    {
        return Err(fail(format!("BM-SC {bmsc}: answer is not {}", t.response_content_type())));
    }
    String::from_utf8(r.body).map_err(|_| fail(format!("BM-SC {bmsc}: answer is not UTF-8")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ScfConfig {
        let mut c = ScfConfig::new("scf.example.org", "127.0.0.1:9".parse().unwrap());
        let bmsc1: SocketAddr = "127.0.0.1:1001".parse().unwrap();
        let bmsc2: SocketAddr = "127.0.0.1:1002".parse().unwrap();
        c.services = vec![
            ScfService::new("svc-a", "scf1.example.org", bmsc1, 1),
            ScfService::new("svc-b", "scf1.example.org", bmsc1, 2),
            ScfService::new("svc-c", "scf2.example.org", bmsc2, 3),
        ];
        c.subscribers =
            vec![ScfSubscriber { impu: "sip:u@example.org".into(), services: vec!["svc-a".into()] }];
        c
    }

    #[test]
    fn start_refuses_bad_configurations() {
        let mut c = config();
        c.bind = "0.0.0.0".parse().unwrap();
        assert!(Scf::start(c).is_err());
        let mut c = config();
        c.services.clear();
        assert!(Scf::start(c).is_err());
        let mut c = config();
        c.services[2].naf_fqdn = "scf1.example.org".into();
        assert!(Scf::start(c).is_err(), "one NAF FQDN for two BM-SCs");
        let mut c = config();
        c.services[1].naf_fqdn = "scf3.example.org".into();
        assert!(Scf::start(c).is_err(), "two NAF FQDNs for one BM-SC");
        let mut c = config();
        c.services[1].key_group = 1;
        assert!(Scf::start(c).is_err(), "same Key Group twice");
        let mut c = config();
        c.services[0].naf_fqdn = "bad fqdn".into();
        assert!(Scf::start(c).is_err());
        let mut c = config();
        c.subscribers[0].services.push("svc-x".into());
        assert!(Scf::start(c).is_err());
        let mut c = config();
        c.http_source = "192.0.2.1".parse().unwrap();
        assert!(Scf::start(c).is_err());
        let scf = Scf::start(config()).unwrap();
        assert!(scf.addr().ip().is_loopback());
        assert_eq!(scf.uri(), "sip:scf@scf.example.org");
        scf.shutdown().unwrap();
    }

    #[test]
    fn identities_compare_as_addresses_of_record() {
        assert!(same_identity("sip:u@Example.ORG", "sip:u@example.org;user=phone"));
        assert!(!same_identity("sip:u@example.org", "sips:u@example.org"));
        assert!(!same_identity("sip:u@example.org", "sip:v@example.org"));
        assert!(same_identity("tel:+15550100", "tel:+15550100"));
    }

    #[test]
    fn groups_keep_first_order() {
        assert_eq!(group(vec![(200, 1), (404, 2), (200, 3)]), vec![(200, vec![1, 3]), (404, vec![2])]);
    }
}
