//! The BM-SC (TS 33.246 §6.2–§6.3, TS 26.346 §11, TS 24.109 §5): MBMS key management over HTTP/1.1
//! with GBA-based Digest authentication, MSK delivery over UDP (MIKEY, point-to-point), MTK
//! messages and SRTP media on the MBMS bearer (point-to-multipoint), all on loopback.
//!
//! The wire formats are those of [`wire::mbms_key_management`] (paths, MIME types, XML bodies, realms) and
//! of [`crate::bmsc_stream`] (MIKEY and SRTP):
//!
//! - `POST /keymanagement?requesttype=register|deregister|msk-request` with the XML body of its
//!   type. Bad input (unknown path → 404, other method → 405, unknown request type → 400,
//!   wrong Content-Type → 415, body over [`mbms_key_management::MAX_XML_LEN`] → 413, malformed XML or
//!   Digest header → 400) gets a one-line `text/plain` reason, also in
//!   [`mbms_key_management::REASON_HEADER`], and changes nothing.
//! - Without credentials: `401` with two `WWW-Authenticate: Digest` challenges (realms
//!   `3GPP-bootstrapping@<fqdn>` and `3GPP-bootstrapping-uicc@<fqdn>`, one fresh nonce, MD5,
//!   qop=auth). username = B-TID, password = base64(MRK).
//! - An unknown B-TID is resolved over Zn ([`crate::bsf::zn_query_async`]) with NAF_Id = FQDN ‖
//!   01 00 00 00 01. Answering the `-uicc` realm with GBA_U keys: MRK = Ks_ext_NAF, MUK =
//!   Ks_int_NAF; otherwise MRK and MUK are the ME-based derivations of [`gba::mbms_keys`]
//!   from Ks_(ext)_NAF. A Zn refusal, a realm the keys do not allow, a wrong response or a
//!   replayed nonce count get a fresh `401` (without a reason header): the UE re-bootstraps. A
//!   right response on an unknown or expired nonce gets `401` with `stale=true`.
//! - Success: `200` with `Authentication-Info` (rspauth) and the answer document with one status
//!   per outcome (200, 404 unknown service or key, 403 not registered). After `register` and
//!   `msk-request` the BM-SC pushes the MSKs as MIKEY MSK messages to
//!   `(<the request's source IP>, ue_mikey_port)` from its MIKEY socket; verification messages
//!   (V bit) coming back to that socket are checked and counted.
//!
//! SIP-based MBMS security (TS 26.237 §10.4.2): the SCF, acting as the NAF, posts
//! `?requesttype=sip-based-register|sip-based-deregister|sip-based-msk-request` with
//! [`wire::sip_based_mbms::ASSERTED_IDENTITY_HEADER`] and the Annex I.2 document
//! ([`wire::sip_based_mbms::NafKeyInfo`]: UE IP address, MUK, MUK lifetime, B-TID, NAF FQDN). No
//! Digest: only sources in [`BmscConfig::trusted_scfs`] are served (NDS/IP stands behind that
//! trust in the spec), anyone else gets `403`. The answer is the same status document as over
//! HTTP; MSK messages then go to the UE IP address of the body with IDi = the NAF (SCF) FQDN and
//! IDr = the B-TID, protected with the MUK of the body. The earlier variant (TS 26.237 CR §10.2)
//! is `?requesttype=authorize` ([`wire::sip_based_mbms::AuthorizeRequest`]); with
//! [`BmscConfig::require_scf_authorization`] an HTTP registration must then carry
//! [`wire::sip_based_mbms::INTENDED_IDENTITY_HEADER`] naming an IMPU of the B-TID's subscriber that the SCF
//! authorized for each service from that UE address (others get per-item
//! [`wire::sip_based_mbms::STATUS_NOT_AUTHORIZED`]).
//!
//! The keys come from one [`BmscStream`] per User Service (deterministic from its seed). Without
//! a [`BmscSchedule`] nothing is sent unless a method asks for it ([`Bmsc::rotate_msk`],
//! [`Bmsc::send_mtk`], [`Bmsc::send_media`], …), so tests are deterministic.
//!
//! Multicast bearer addresses (IPv4 239.0.0.0/8, administratively scoped, RFC 2365) are sent
//! through the loopback interface with multicast loop on and TTL 0, so they never leave the host.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::any;
use gba::keys::{KsNaf, Mrk};
use gba::{NafId, UaSecurityProtocolId, mbms_keys};
use mikey::mbms::{MskId, MtkId, Muk};
use srtp::Policy;
use wire::digest::{self, AuthenticationInfo, DigestAuthorization, DigestChallenge, Qop};
use wire::mbms_key_management::{
    self, DeregisterRequest, KeyStatus, MskKeyId, MskRequest, MskResponse, RegisterRequest, RegisterResponse,
    RequestType, STATUS_NOT_REGISTERED, STATUS_OK, STATUS_UNKNOWN, ServiceStatus,
};
use wire::sip_based_mbms::{self, AuthorizeRequest, NafKeyInfo, NafKeys, ScfRequestType, SipProcedure};
use wire::ub;
use wire::zn::{self, NafKeyMaterial, ZnRequest};

use crate::bmsc_stream::{BmscStream, BmscStreamConfig, StreamError};
use crate::bsf::{ZnError, zn_query_async};
use crate::peer_thread::PeerThread;
use crate::rand_source::RandSource;
use crate::store::{RegistrationRecord, Store, StoreError};

/// How long a nonce of a challenge may be used.
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// Nonces kept; the oldest is forgotten beyond this (its user gets `stale=true`).
pub const MAX_NONCES: usize = 1024;
/// B-TIDs whose Zn keys are kept; beyond this the oldest one without a registration is forgotten.
pub const MAX_KNOWN_BTIDS: usize = 4096;
/// MSK messages waiting for their verification message; the oldest is forgotten beyond this.
pub const MAX_PENDING_VERIFICATIONS: usize = 1024;
/// Largest datagram read on the MIKEY socket; longer ones are dropped.
pub const MAX_DATAGRAM_LEN: usize = 2048;
/// MUK replay counters kept; beyond this the table starts over (counters then restart from the
/// streams' own, which only a UE registered to several services could notice).
pub const MAX_MUK_COUNTERS: usize = 8192;

// ------------------------------------------------------------------------------------------------
// Configuration

/// One User Service and the stream that carries it.
#[derive(Debug, Clone)]
pub struct BmscService {
    /// The User Service ID of registrations (TS 26.346 §11).
    pub service_id: String,
    /// Key Domain, Key Group, seed, SSRC… of its keys and media. Its `bmsc_fqdn` is replaced by
    /// [`BmscConfig::bmsc_fqdn`] and its `v_bit` by [`BmscConfig::v_bit`].
    pub stream: BmscStreamConfig,
}

impl BmscService {
    /// A service with the default stream of [`BmscStreamConfig::new`] for Key Group `key_group`.
    pub fn new(service_id: &str, key_group: u16, seed: [u8; 32]) -> Self {
        let mut stream = BmscStreamConfig::new("", seed);
        stream.key_group = key_group;
        BmscService { service_id: service_id.to_owned(), stream }
    }
}

/// The background sender: MTK messages, media and MSK rotation at fixed intervals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BmscSchedule {
    /// A new MTK message on the bearer every so often (TS 33.246 §6.3.3).
    pub mtk_interval: Duration,
    /// Media is sent every so often …
    pub media_interval: Duration,
    /// … this many SRTP packets per service each time.
    pub packets_per_media_interval: usize,
    /// A new MSK (pushed to every registered UE) every so often; `None`: never.
    pub msk_rotation_interval: Option<Duration>,
}

/// How a BM-SC is set up.
#[derive(Debug, Clone)]
pub struct BmscConfig {
    /// The loopback address of the HTTP server and of the MIKEY and bearer sockets.
    pub bind: IpAddr,
    /// HTTP port; 0: chosen by the system.
    pub http_port: u16,
    /// Port of the MIKEY socket (MSK pushes leave from it, verification messages come to it);
    /// 0: chosen by the system.
    pub mikey_port: u16,
    /// The BM-SC's FQDN: realms, NAF_Id, IDi of MSK messages.
    pub bmsc_fqdn: String,
    /// The BSF's Zn address.
    pub bsf_zn: SocketAddr,
    /// The User Services.
    pub services: Vec<BmscService>,
    /// The UEs' UDP port of MSK pushes ([`mbms_key_management::DEFAULT_UE_MIKEY_PORT`]).
    pub ue_mikey_port: u16,
    /// Where MTK messages go (unicast loopback or IPv4 239.x multicast).
    pub bearer_mikey: Vec<SocketAddr>,
    /// Where SRTP packets go (unicast loopback or IPv4 239.x multicast).
    pub bearer_media: Vec<SocketAddr>,
    /// Ask for verification messages (MIKEY V bit) in MSK messages.
    pub v_bit: bool,
    /// The background sender; `None`: everything is driven by method calls.
    pub schedule: Option<BmscSchedule>,
    /// How long a nonce may be used.
    pub nonce_lifetime: Duration,
    /// Seed of the nonce / opaque generator; `None` seeds from the process's randomness.
    pub nonce_seed: Option<[u8; 32]>,
    /// Source addresses of the SCFs whose `sip-based-*` and `authorize` requests are served
    /// (TS 26.237 §10.4.2 assumes NDS/IP between SCF and BM-SC); others get `403`. Empty: none.
    pub trusted_scfs: Vec<IpAddr>,
    /// The `authorize` variant (TS 26.237 CR §10.2.4): HTTP registrations need an SCF
    /// authorization of [`wire::sip_based_mbms::INTENDED_IDENTITY_HEADER`]'s IMPU.
    pub require_scf_authorization: bool,
    /// The persistent state (`keysim serve`): MSKs, MTK IDs, media frames and MIKEY counters are
    /// committed before they go out, registrations when they change; at start the services and
    /// registrations carry on from it. `None`: in memory only.
    pub store: Option<Arc<Store>>,
}

impl BmscConfig {
    /// A BM-SC named `bmsc_fqdn` on 127.0.0.1 (ephemeral ports) asking the BSF at `bsf_zn`, with
    /// no services, no bearer addresses, the V bit clear and no schedule.
    pub fn new(bmsc_fqdn: &str, bsf_zn: SocketAddr) -> Self {
        BmscConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            http_port: 0,
            mikey_port: 0,
            bmsc_fqdn: bmsc_fqdn.to_owned(),
            bsf_zn,
            services: Vec::new(),
            ue_mikey_port: mbms_key_management::DEFAULT_UE_MIKEY_PORT,
            bearer_mikey: Vec::new(),
            bearer_media: Vec::new(),
            v_bit: false,
            schedule: None,
            nonce_lifetime: DEFAULT_NONCE_LIFETIME,
            nonce_seed: None,
            trusted_scfs: Vec::new(),
            require_scf_authorization: false,
            store: None,
        }
    }
}

/// What the BM-SC has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BmscStats {
    /// Services registered (per item: one request may register several).
    pub registrations: u64,
    /// Services deregistered (per item).
    pub deregistrations: u64,
    /// Authenticated basic MSK requests.
    pub msk_requests: u64,
    /// MSK messages sent (pushes after register / msk-request, rotations, [`Bmsc::push_msks`]).
    pub msk_pushes: u64,
    /// Solicited-pull messages sent.
    pub solicited_pulls: u64,
    /// MTK messages sent (per message, whatever the number of bearer addresses).
    pub mtk_messages: u64,
    /// SRTP packets built (per packet, whatever the number of bearer addresses).
    pub media_packets: u64,
    /// Verification messages that verified.
    pub verifications_ok: u64,
    /// MIKEY messages on the MIKEY socket that verify against no pending MSK message.
    pub verifications_bad: u64,
    /// `401` challenges sent (first requests, failed or stale authentications).
    pub challenges: u64,
    /// Other 4xx answers (bad input).
    pub http_4xx: u64,
    /// Zn queries sent.
    pub zn_queries: u64,
    /// Zn queries refused or failed.
    pub zn_failures: u64,
    /// Datagrams dropped on the MIKEY socket (not MIKEY, too long).
    pub udp_drops: u64,
    /// Datagrams that could not be sent.
    pub send_errors: u64,
    /// SCF requests served (`sip-based-*`, `authorize`).
    pub scf_requests: u64,
    /// Requests of an SCF request type from an untrusted source (answered `403`).
    pub scf_untrusted: u64,
}

/// Why a procedure could not be driven.
#[derive(Debug, thiserror::Error)]
pub enum BmscError {
    /// No such User Service.
    #[error("no User Service `{0}`")]
    UnknownService(String),
    /// The B-TID has no registration.
    #[error("B-TID `{0}` is registered to no service")]
    NotRegistered(String),
    /// The stream could not build a message.
    #[error("stream: {0}")]
    Stream(#[from] StreamError),
    /// The state store refused a commit: nothing was sent.
    #[error("state store: {0}")]
    Store(#[from] StoreError),
}

// ------------------------------------------------------------------------------------------------
// State

struct Service {
    id: String,
    stream: BmscStream,
    /// Recipient slots of the stream given back by deregistrations.
    free_recipients: Vec<usize>,
    /// Media frames reserved in the store (the stream's frame count stays below).
    frames_reserved: u64,
    /// Whether the schedule sends this service's media.
    media_on: bool,
}

/// The Zn answer kept for a B-TID.
struct KnownBtid {
    impi: String,
    /// The subscriber's IMPUs (GUSS): an `authorize` variant registration must name one.
    impus: Vec<String>,
    keys: NafKeyMaterial,
    /// Key expiry, Unix seconds.
    expires: u64,
    serial: u64,
}

/// A UE's registrations.
struct Registration {
    impi: String,
    peer: IpAddr,
    /// The UE authenticated in the `-uicc` realm (UICC-based key management).
    uicc_based: bool,
    /// Service index → recipient index in that service's stream.
    services: BTreeMap<usize, usize>,
    /// Registered through the SCF (TS 26.237 §10.4.2): MSK messages name the NAF (SCF) FQDN and
    /// are protected with the MUK the SCF gave; `impi` then holds the asserted identity.
    sip: Option<SipKeys>,
}

/// The NAF keys of a registration made through the SCF.
struct SipKeys {
    naf_fqdn: String,
    muk: Muk,
}

/// An `authorize` notification of the SCF (TS 26.237 CR §10.2.4) for one IMPU.
struct ScfAuthorization {
    ue_ip: IpAddr,
    services: std::collections::BTreeSet<usize>,
    serial: u64,
}

struct Nonce {
    opaque: String,
    created: Instant,
    last_nc: u32,
    serial: u64,
}

struct PendingVerification {
    service: usize,
    recipient: usize,
    peer: IpAddr,
    /// IDr of the MSK message: the verification message carries it back.
    btid: String,
    message: Vec<u8>,
}

struct BmscState {
    services: Vec<Service>,
    known: HashMap<String, KnownBtid>,
    registrations: HashMap<String, Registration>,
    nonces: HashMap<String, Nonce>,
    pending: VecDeque<PendingVerification>,
    /// The MIKEY timestamp counter per MUK (per IDr = B-TID), shared by every service's stream:
    /// the UE keeps one replay counter per MUK.
    muk_counters: HashMap<String, u32>,
    /// IMPU → what the SCF authorized (the `authorize` variant).
    authorizations: HashMap<String, ScfAuthorization>,
    serial: u64,
    rand: RandSource,
    stats: BmscStats,
    store: Option<Arc<Store>>,
}

/// Everything the server, the receiver, the schedule and the handle share.
struct Core {
    fqdn: String,
    naf_id: NafId,
    realm_me: String,
    realm_uicc: String,
    bsf_zn: SocketAddr,
    ue_mikey_port: u16,
    nonce_lifetime: Duration,
    bearer_mikey: Vec<SocketAddr>,
    bearer_media: Vec<SocketAddr>,
    mikey_socket: UdpSocket,
    bearer_socket: UdpSocket,
    trusted_scfs: Vec<IpAddr>,
    require_scf_authorization: bool,
    state: Mutex<BmscState>,
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn invalid_input(why: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, why.into())
}

/// Loopback unicast, or IPv4 administratively scoped multicast (239.0.0.0/8, RFC 2365).
fn check_bearer_address(a: SocketAddr) -> std::io::Result<()> {
    let ok = a.ip().is_loopback() || matches!(a.ip(), IpAddr::V4(v4) if v4.octets()[0] == 239);
    if ok && a.port() != 0 {
        Ok(())
    } else {
        Err(invalid_input(format!("bearer address {a}: loopback or 239.x multicast with a port expected")))
    }
}

/// The bearer socket: IPv4 multicast goes out of the loopback interface, looped back, TTL 0.
fn bearer_socket(bind: IpAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if bind.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    socket.bind(&SocketAddr::new(bind, 0).into())?;
    if let IpAddr::V4(v4) = bind {
        socket.set_multicast_if_v4(&v4)?;
        socket.set_multicast_loop_v4(true)?;
        socket.set_multicast_ttl_v4(0)?;
    }
    Ok(socket.into())
}

impl Core {
    fn lock(&self) -> MutexGuard<'_, BmscState> {
        // Every change is a few inserts / removes under one lock; a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn service_index(st: &BmscState, service_id: &str) -> Result<usize, BmscError> {
        st.services
            .iter()
            .position(|s| s.id == service_id)
            .ok_or_else(|| BmscError::UnknownService(service_id.to_owned()))
    }

    fn send(&self, st: &mut BmscState, socket: &UdpSocket, bytes: &[u8], to: SocketAddr) {
        if let Err(e) = socket.send_to(bytes, to) {
            st.stats.send_errors += 1;
            tracing::warn!(%to, "BM-SC: datagram not sent: {e}");
        }
    }

    /// Sends an MSK message to a UE; with the V bit it waits for a verification message.
    fn push_msk(
        &self,
        st: &mut BmscState,
        service: usize,
        recipient: usize,
        peer: IpAddr,
        msk_id: Option<MskId>,
    ) -> Result<(), BmscError> {
        let sip = sip_keys_of(st, service, recipient);
        let Some(s) = st.services.get_mut(service) else { return Ok(()) };
        let shared = s.stream.recipient_btid(recipient).and_then(|b| st.muk_counters.get(b).copied());
        s.stream.raise_counter(recipient, shared.unwrap_or(0))?;
        // NTP-UTC timestamps tell the UE the time it checks MUK lifetimes against.
        s.stream.set_time(unix_now());
        let message = match (sip, msk_id) {
            (Some((idi, muk)), _) => {
                let msk_id = msk_id.or_else(|| s.stream.current_msk_id()).ok_or(StreamError::NoMsk)?;
                sip_mikey_message(&mut s.stream, recipient, &idi, &muk, Some(msk_id), st.rand.next())?
            }
            (None, Some(id)) => s.stream.msk_message_for(recipient, id)?,
            (None, None) => s.stream.msk_message(recipient)?,
        };
        Self::share_counter(&mut st.muk_counters, &s.stream, recipient);
        commit_counter(st.store.as_deref(), &s.stream, recipient)?;
        let v_bit = s.stream.config().v_bit;
        let btid = match mikey::mbms::parse_msk_message(&message) {
            Ok(m) => String::from_utf8_lossy(m.idr().data).into_owned(),
            Err(_) => String::new(),
        };
        self.send(st, &self.mikey_socket, &message, SocketAddr::new(peer, self.ue_mikey_port));
        st.stats.msk_pushes += 1;
        if v_bit {
            if st.pending.len() >= MAX_PENDING_VERIFICATIONS {
                st.pending.pop_front();
            }
            st.pending.push_back(PendingVerification { service, recipient, peer, btid, message });
        }
        Ok(())
    }

    /// Records `recipient`'s counter as the counter of its MUK (bounded like the B-TIDs it follows).
    fn share_counter(counters: &mut HashMap<String, u32>, stream: &BmscStream, recipient: usize) {
        if let (Some(btid), Some(c)) = (stream.recipient_btid(recipient), stream.recipient_counter(recipient))
        {
            if counters.len() >= MAX_MUK_COUNTERS && !counters.contains_key(btid) {
                counters.clear();
            }
            counters.insert(btid.to_owned(), c);
        }
    }

    fn rotate_msk(&self, service_id: &str) -> Result<MskId, BmscError> {
        let mut st = self.lock();
        let service = Self::service_index(&st, service_id)?;
        let msk_id = st
            .services
            .get_mut(service)
            .map(|s| s.stream.rotate_msk())
            .ok_or_else(|| BmscError::UnknownService(service_id.to_owned()))?;
        if let (Some(store), Some(s)) = (&st.store, st.services.get(service)) {
            commit_msks(store, s)?;
        }
        let targets: Vec<(usize, IpAddr)> = st
            .registrations
            .values()
            .filter_map(|r| r.services.get(&service).map(|rec| (*rec, r.peer)))
            .collect();
        for (recipient, peer) in targets {
            self.push_msk(&mut st, service, recipient, peer, Some(msk_id))?;
        }
        tracing::info!(service = service_id, msk_id = format!("{:08X}", msk_id.0), "MSK rotated");
        Ok(msk_id)
    }

    fn push_msks(&self, btid: &str) -> Result<usize, BmscError> {
        let mut st = self.lock();
        let reg = st.registrations.get(btid).ok_or_else(|| BmscError::NotRegistered(btid.to_owned()))?;
        let peer = reg.peer;
        let targets: Vec<(usize, usize)> = reg.services.iter().map(|(s, r)| (*s, *r)).collect();
        for (service, recipient) in &targets {
            self.push_msk(&mut st, *service, *recipient, peer, None)?;
        }
        Ok(targets.len())
    }

    fn solicited_pull(&self, btid: &str) -> Result<usize, BmscError> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let reg = st.registrations.get(btid).ok_or_else(|| BmscError::NotRegistered(btid.to_owned()))?;
        let peer = reg.peer;
        let targets: Vec<(usize, usize)> = reg.services.iter().map(|(s, r)| (*s, *r)).collect();
        for (service, recipient) in &targets {
            let sip = sip_keys_of(st, *service, *recipient);
            let Some(s) = st.services.get_mut(*service) else { continue };
            let shared = s.stream.recipient_btid(*recipient).and_then(|b| st.muk_counters.get(b).copied());
            s.stream.raise_counter(*recipient, shared.unwrap_or(0))?;
            s.stream.set_time(unix_now());
            let message = match sip {
                Some((idi, muk)) => {
                    sip_mikey_message(&mut s.stream, *recipient, &idi, &muk, None, st.rand.next())?
                }
                None => s.stream.solicited_pull(*recipient)?,
            };
            Self::share_counter(&mut st.muk_counters, &s.stream, *recipient);
            commit_counter(st.store.as_deref(), &s.stream, *recipient)?;
            self.send(st, &self.mikey_socket, &message, SocketAddr::new(peer, self.ue_mikey_port));
            st.stats.solicited_pulls += 1;
        }
        Ok(targets.len())
    }

    fn send_mtk(&self, service_id: &str) -> Result<MtkId, BmscError> {
        let mut st = self.lock();
        let service = Self::service_index(&st, service_id)?;
        let Some(s) = st.services.get_mut(service) else {
            return Err(BmscError::UnknownService(service_id.to_owned()));
        };
        let message = s.stream.next_mtk_message()?;
        let mtk_id = s.stream.current_mtk().map(|(_, id, _, _)| id).unwrap_or(MtkId(0));
        // Write-ahead: the MTK ID (the MTK message's replay counter) is durable before it leaves.
        if let Some(store) = &st.store {
            store.commit_mtk_id(service_id, mtk_id.0)?;
        }
        for to in &self.bearer_mikey {
            self.send(&mut st, &self.bearer_socket, &message, *to);
        }
        st.stats.mtk_messages += 1;
        Ok(mtk_id)
    }

    fn send_media(&self, service_id: &str, packets: usize) -> Result<usize, BmscError> {
        let mut st = self.lock();
        let service = Self::service_index(&st, service_id)?;
        for _ in 0..packets {
            let store = st.store.clone();
            let Some(s) = st.services.get_mut(service) else { break };
            if let Some(store) = store
                && s.stream.frames() >= s.frames_reserved
            {
                let up_to = s.stream.frames() + crate::store::FRAME_RESERVATION;
                store.reserve_frames(&s.id, up_to)?;
                s.frames_reserved = up_to;
            }
            let (srtp, _) = s.stream.next_srtp_packet()?;
            for to in &self.bearer_media {
                self.send(&mut st, &self.bearer_socket, &srtp, *to);
            }
            st.stats.media_packets += 1;
        }
        Ok(packets)
    }

    fn forget_btid(st: &mut BmscState, btid: &str) -> bool {
        if let Some(store) = &st.store
            && let Err(e) = store.remove_registration(btid)
        {
            tracing::warn!(%btid, "BM-SC: state store: {e}");
        }
        let known = st.known.remove(btid).is_some();
        let registered = match st.registrations.remove(btid) {
            Some(reg) => {
                for (service, recipient) in reg.services {
                    Self::free_recipient(st, service, recipient);
                }
                true
            }
            None => false,
        };
        known || registered
    }

    fn free_recipient(st: &mut BmscState, service: usize, recipient: usize) {
        st.pending.retain(|p| !(p.service == service && p.recipient == recipient));
        if let Some(s) = st.services.get_mut(service) {
            s.free_recipients.push(recipient);
        }
    }

    /// A datagram on the MIKEY socket: a verification message of a pending MSK message, or junk.
    fn on_datagram(&self, bytes: &[u8], from: SocketAddr) {
        let mut st = self.lock();
        if bytes.len() >= MAX_DATAGRAM_LEN {
            st.stats.udp_drops += 1;
            tracing::warn!(%from, "BM-SC: datagram too long, dropped");
            return;
        }
        let idr = match mikey::Message::parse(bytes) {
            Ok(m) => m.ids().next().map(|id| id.data.to_vec()),
            Err(e) => {
                st.stats.udp_drops += 1;
                tracing::warn!(%from, "BM-SC: not a MIKEY message ({e:?}), dropped");
                return;
            }
        };
        // Only the MSK messages sent to that address (and to that IDr, when the message names
        // one) are tried.
        let hit = st.pending.iter().position(|p| {
            p.peer == from.ip()
                && idr.as_deref().is_none_or(|i| i == p.btid.as_bytes())
                && st
                    .services
                    .get(p.service)
                    .is_some_and(|s| s.stream.check_verification(p.recipient, &p.message, bytes).is_ok())
        });
        match hit {
            Some(i) => {
                st.pending.remove(i);
                st.stats.verifications_ok += 1;
                tracing::info!(%from, "BM-SC: MSK verification message verified");
            }
            None => {
                st.stats.verifications_bad += 1;
                tracing::warn!(%from, "BM-SC: a MIKEY message that acknowledges no pending MSK message");
            }
        }
    }
}

/// One registration as [`Bmsc::registration_list`] shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RegistrationView {
    /// B-TID.
    pub btid: String,
    /// IMPI.
    pub impi: String,
    /// Where its MSK messages go.
    pub ue_address: String,
    /// UICC-based key management (GBA_U realm).
    pub uicc_based: bool,
    /// User Service IDs.
    pub services: Vec<String>,
    /// The last MIKEY replay counter sent under its MUK.
    pub mikey_counter: u32,
}

/// One service as [`Bmsc::service_list`] shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceView {
    /// User Service ID.
    pub service_id: String,
    /// Key Group.
    pub key_group: u16,
    /// The current MSK ID.
    pub msk_id: u32,
    /// The number of the current MSK (the low 16 bits of its ID).
    pub msk_number: u16,
    /// The last MTK ID sent under the current MSK.
    pub mtk_id: u32,
    /// Media frames sent (since the stream started or resumed).
    pub media_frames: u64,
    /// Whether its media is on.
    pub media_on: bool,
    /// UEs registered to it.
    pub registered_ues: usize,
}

// ------------------------------------------------------------------------------------------------
// Persistence (`keysim serve`)

/// Commits the MUK's MIKEY replay counter of `recipient` before its message goes out.
fn commit_counter(store: Option<&Store>, stream: &BmscStream, recipient: usize) -> Result<(), StoreError> {
    match (store, stream.recipient_btid(recipient), stream.recipient_counter(recipient)) {
        (Some(store), Some(btid), Some(counter)) => store.commit_muk_counter(btid, counter),
        _ => Ok(()),
    }
}

/// Commits a service's MSKs and MSK number (after a rotation, before the MSK goes out).
fn commit_msks(store: &Store, s: &Service) -> Result<(), StoreError> {
    let msks: Vec<(MskId, &mikey::mbms::Msk)> = s.stream.msks().collect();
    store.commit_msk(&s.id, s.stream.msk_number(), &msks)
}

/// The registration of `btid` as the store keeps it (HTTP registrations only: those made
/// through an SCF are the SCF's to renew).
fn registration_record(st: &BmscState, btid: &str, r: &Registration) -> Option<RegistrationRecord> {
    if r.sip.is_some() {
        return None;
    }
    let known = st.known.get(btid)?;
    let expiry = ub::utc_time_string(known.expires);
    let answer = zn::ZnAnswer {
        btid: btid.to_owned(),
        keys: known.keys.clone(),
        key_expiry: expiry.clone(),
        bootstrap_time: expiry,
        impi: known.impi.clone(),
        impus: known.impus.clone(),
    };
    Some(RegistrationRecord {
        btid: btid.to_owned(),
        impi: r.impi.clone(),
        peer: r.peer,
        uicc_based: r.uicc_based,
        services: r.services.keys().filter_map(|i| st.services.get(*i).map(|s| s.id.clone())).collect(),
        zn_answer: answer.to_xml(),
        expires: known.expires,
    })
}

/// Writes the registrations of `impi` as they now are (before the answer goes out).
fn persist_registrations(st: &BmscState, impi: &str) -> Result<(), BmscError> {
    let Some(store) = &st.store else { return Ok(()) };
    let records: Vec<RegistrationRecord> = st
        .registrations
        .iter()
        .filter(|(_, r)| r.impi == impi)
        .filter_map(|(b, r)| registration_record(st, b, r))
        .collect();
    store.replace_registrations(impi, &records)?;
    Ok(())
}

/// Brings back the stored registrations: their Zn keys, a recipient per service with its MUK and
/// the MUK's committed MIKEY counter. Expired ones and those of services no longer configured
/// are dropped from the store.
fn restore_registrations(st: &mut BmscState, store: &Store) -> Result<(), StoreError> {
    let counters: HashMap<String, u32> = store.muk_counters()?.into_iter().collect();
    let now = unix_now();
    for r in store.registrations()? {
        let answer = match zn::ZnAnswer::from_xml(&r.zn_answer) {
            Ok(a) if r.expires > now => a,
            Ok(_) => {
                tracing::info!(btid = %r.btid, "BM-SC: a stored registration has expired");
                store.remove_registration(&r.btid)?;
                continue;
            }
            Err(e) => {
                return Err(StoreError::Invalid {
                    path: store.path().to_owned(),
                    reason: format!("registration {}: Zn answer: {e}", r.btid),
                });
            }
        };
        let Some((_, muk)) = ue_keys(&answer.keys, r.uicc_based) else { continue };
        insert_known(st, &answer, r.expires);
        let counter = counters.get(&r.btid).copied().unwrap_or(0);
        let mut services = BTreeMap::new();
        for id in &r.services {
            let Some(i) = st.services.iter().position(|s| &s.id == id) else { continue };
            let Some(s) = st.services.get_mut(i) else { continue };
            let rec = s.stream.add_recipient(muk.clone(), &r.btid);
            s.stream.raise_counter(rec, counter).map_err(|e| StoreError::Invalid {
                path: store.path().to_owned(),
                reason: format!("registration {}: {e}", r.btid),
            })?;
            services.insert(i, rec);
        }
        if services.is_empty() {
            continue;
        }
        st.muk_counters.insert(r.btid.clone(), counter);
        st.registrations.insert(
            r.btid.clone(),
            Registration { impi: r.impi, peer: r.peer, uicc_based: r.uicc_based, services, sip: None },
        );
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// The running server

/// A running BM-SC. Dropping it shuts it down too; [`Bmsc::shutdown`] reports how that went.
pub struct Bmsc {
    addr: SocketAddr,
    mikey_addr: SocketAddr,
    core: Arc<Core>,
    server: PeerThread,
    schedule_stop: Option<std::sync::mpsc::Sender<()>>,
    schedule_thread: Option<std::thread::JoinHandle<()>>,
}

impl Bmsc {
    /// Binds the HTTP server and the UDP sockets on loopback and serves on a thread of its own.
    /// Every service gets its first MSK now. Refused: a non-loopback `bind`, a bad FQDN, no or
    /// duplicate services (same ID or same Key Domain and Key Group), non-loopback bearer
    /// addresses.
    pub fn start(config: BmscConfig) -> std::io::Result<Bmsc> {
        if !config.bind.is_loopback() {
            return Err(invalid_input("the BM-SC listens on loopback only"));
        }
        if !config.bsf_zn.ip().is_loopback() {
            return Err(invalid_input("the BSF's Zn address must be on loopback"));
        }
        let naf_id = NafId::new(&config.bmsc_fqdn, UaSecurityProtocolId::MBMS)
            .map_err(|e| invalid_input(format!("BM-SC FQDN: {e}")))?;
        if config.services.is_empty() {
            return Err(invalid_input("a BM-SC needs at least one User Service"));
        }
        for a in config.bearer_mikey.iter().chain(&config.bearer_media) {
            check_bearer_address(*a)?;
            if a.is_ipv4() != config.bind.is_ipv4() {
                return Err(invalid_input(format!(
                    "bearer address {a}: not of the family of {}",
                    config.bind
                )));
            }
        }
        if config.ue_mikey_port == 0 {
            return Err(invalid_input("ue_mikey_port 0"));
        }
        let mut services: Vec<Service> = Vec::new();
        for s in &config.services {
            mbms_key_management::check_service_id(&s.service_id).map_err(|e| invalid_input(e.to_string()))?;
            let dup = services.iter().any(|o| {
                o.id == s.service_id
                    || (o.stream.config().key_domain_id == s.stream.key_domain_id
                        && o.stream.config().key_group == s.stream.key_group)
            });
            if dup {
                return Err(invalid_input(format!(
                    "service `{}`: its ID or its Key Domain and Key Group repeat another service's",
                    s.service_id
                )));
            }
            let mut cfg = s.stream.clone();
            cfg.bmsc_fqdn = config.bmsc_fqdn.clone();
            cfg.v_bit = config.v_bit;
            let mut stream = BmscStream::new(cfg).map_err(|e| invalid_input(e.to_string()))?;
            let stored = match &config.store {
                Some(store) => store.service(&s.service_id).map_err(std::io::Error::other)?,
                None => None,
            };
            let fresh = stored.as_ref().is_none_or(|r| r.msks.is_empty());
            let service = match stored {
                Some(r) if !r.msks.is_empty() => {
                    tracing::info!(service = %s.service_id, msk_number = r.msk_number, mtk_id = r.mtk_id,
                        "BM-SC: the service carries on from the state store");
                    stream.resume(r.msk_number, r.msks, r.mtk_id, r.frames_reserved);
                    Service {
                        id: s.service_id.clone(),
                        stream,
                        free_recipients: Vec::new(),
                        frames_reserved: r.frames_reserved,
                        media_on: r.media_on,
                    }
                }
                _ => {
                    // A stored service without an MSK carries on from its number; a new one of a
                    // state store starts from the clock ([`first_msk_number`]).
                    let start = match (&stored, &config.store) {
                        (Some(r), _) => r.msk_number,
                        (None, Some(_)) => first_msk_number(SystemTime::now()),
                        (None, None) => 0,
                    };
                    if start != 0 {
                        stream.resume(start, Vec::new(), 0, 0);
                    }
                    stream.rotate_msk();
                    Service {
                        id: s.service_id.clone(),
                        stream,
                        free_recipients: Vec::new(),
                        frames_reserved: 0,
                        media_on: true,
                    }
                }
            };
            if let Some(store) = &config.store
                && fresh
            {
                commit_msks(store, &service).map_err(std::io::Error::other)?;
            }
            services.push(service);
        }

        let listener = std::net::TcpListener::bind((config.bind, config.http_port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let mikey_socket = UdpSocket::bind((config.bind, config.mikey_port))?;
        let mikey_addr = mikey_socket.local_addr()?;
        let receiver = mikey_socket.try_clone()?;
        let core = Arc::new(Core {
            realm_me: mbms_key_management::realm_me(&config.bmsc_fqdn),
            realm_uicc: mbms_key_management::realm_uicc(&config.bmsc_fqdn),
            fqdn: config.bmsc_fqdn,
            naf_id,
            bsf_zn: config.bsf_zn,
            ue_mikey_port: config.ue_mikey_port,
            nonce_lifetime: config.nonce_lifetime,
            bearer_mikey: config.bearer_mikey,
            bearer_media: config.bearer_media,
            mikey_socket,
            bearer_socket: bearer_socket(config.bind)?,
            trusted_scfs: config.trusted_scfs,
            require_scf_authorization: config.require_scf_authorization,
            state: Mutex::new(BmscState {
                services,
                known: HashMap::new(),
                registrations: HashMap::new(),
                nonces: HashMap::new(),
                pending: VecDeque::new(),
                muk_counters: HashMap::new(),
                authorizations: HashMap::new(),
                serial: 0,
                rand: RandSource::new(config.nonce_seed),
                stats: BmscStats::default(),
                store: config.store.clone(),
            }),
        });
        if let Some(store) = &config.store {
            restore_registrations(&mut core.lock(), store).map_err(std::io::Error::other)?;
        }
        let app = axum::Router::new()
            .route(mbms_key_management::KEY_MANAGEMENT_PATH, any(key_management))
            .fallback(not_found)
            .with_state(core.clone());
        let rx_core = core.clone();
        let server = PeerThread::spawn("BM-SC", "bmsc", addr, move |stopped| async move {
            receiver.set_nonblocking(true)?;
            let receiver = tokio::net::UdpSocket::from_std(receiver)?;
            tokio::spawn(mikey_receiver(rx_core, receiver));
            let listener = tokio::net::TcpListener::from_std(listener)?;
            crate::peer_thread::serve_connections(listener, app, stopped).await
        })?;
        let (schedule_stop, schedule_thread) = match config.schedule {
            Some(schedule) => {
                let (tx, rx) = std::sync::mpsc::channel::<()>();
                let core = core.clone();
                let t = std::thread::Builder::new()
                    .name(format!("bmsc schedule {addr}"))
                    .spawn(move || run_schedule(&core, schedule, &rx))?;
                (Some(tx), Some(t))
            }
            None => (None, None),
        };
        tracing::info!(%addr, %mikey_addr, fqdn = %core.fqdn, "BM-SC listening");
        Ok(Bmsc { addr, mikey_addr, core, server, schedule_stop, schedule_thread })
    }

    /// The HTTP address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr/keymanagement`, the key-management URL (add `?requesttype=…`).
    pub fn url(&self) -> String {
        format!("http://{}{}", self.addr, mbms_key_management::KEY_MANAGEMENT_PATH)
    }

    /// The full URL of one request type.
    pub fn request_url(&self, request_type: RequestType) -> String {
        format!("http://{}{}", self.addr, request_type.path_and_query())
    }

    /// The MIKEY socket's address: MSK pushes leave from it, verification messages go to it.
    pub fn mikey_addr(&self) -> SocketAddr {
        self.mikey_addr
    }

    /// The BM-SC's NAF_Id (FQDN ‖ 01 00 00 00 01).
    pub fn naf_id(&self) -> &NafId {
        &self.core.naf_id
    }

    /// The Digest realm of the ME-based path.
    pub fn realm_me(&self) -> &str {
        &self.core.realm_me
    }

    /// The Digest realm of the UICC-based path.
    pub fn realm_uicc(&self) -> &str {
        &self.core.realm_uicc
    }

    /// A new MSK for `service_id` (TS 33.246 §6.3.2.2), pushed to every UE registered to it.
    pub fn rotate_msk(&self, service_id: &str) -> Result<MskId, BmscError> {
        self.core.rotate_msk(service_id)
    }

    /// Pushes the current MSK of every service `btid` is registered to; returns how many.
    pub fn push_msks(&self, btid: &str) -> Result<usize, BmscError> {
        self.core.push_msks(btid)
    }

    /// Sends a solicited pull (TS 33.246 §6.3.2.2.4) for every service `btid` is registered to;
    /// returns how many.
    pub fn solicited_pull(&self, btid: &str) -> Result<usize, BmscError> {
        self.core.solicited_pull(btid)
    }

    /// A new MTK message for `service_id` to every bearer MIKEY address; returns its MTK ID.
    pub fn send_mtk(&self, service_id: &str) -> Result<MtkId, BmscError> {
        self.core.send_mtk(service_id)
    }

    /// `packets` SRTP packets of `service_id`'s test signal to every bearer media address.
    pub fn send_media(&self, service_id: &str, packets: usize) -> Result<usize, BmscError> {
        self.core.send_media(service_id, packets)
    }

    /// Ends a B-TID at the BM-SC, as when its key lifetime ends: its Zn keys and registrations are
    /// forgotten, so its next request is resolved over Zn again. `false` if the B-TID is unknown.
    pub fn expire_registration(&self, btid: &str) -> bool {
        let mut st = self.core.lock();
        Core::forget_btid(&mut st, btid)
    }

    /// Counters.
    pub fn stats(&self) -> BmscStats {
        self.core.lock().stats
    }

    /// The User Service IDs `btid` is registered to.
    pub fn registered(&self, btid: &str) -> Vec<String> {
        let st = self.core.lock();
        st.registrations
            .get(btid)
            .map(|r| r.services.keys().filter_map(|i| st.services.get(*i).map(|s| s.id.clone())).collect())
            .unwrap_or_default()
    }

    /// How many B-TIDs hold registrations.
    pub fn registration_count(&self) -> usize {
        self.core.lock().registrations.len()
    }

    /// The current MSK ID of a service.
    pub fn current_msk_id(&self, service_id: &str) -> Option<MskId> {
        let st = self.core.lock();
        st.services.iter().find(|s| s.id == service_id).and_then(|s| s.stream.current_msk_id())
    }

    /// The SRTP policy receivers of a service need.
    pub fn srtp_policy(&self, service_id: &str) -> Option<Policy> {
        let st = self.core.lock();
        st.services.iter().find(|s| s.id == service_id).map(|s| s.stream.srtp_policy())
    }

    /// Every registration with its MUK's MIKEY counter, ordered by B-TID (operators' view: no
    /// key material).
    pub fn registration_list(&self) -> Vec<RegistrationView> {
        let st = self.core.lock();
        let mut out: Vec<RegistrationView> = st
            .registrations
            .iter()
            .map(|(btid, r)| RegistrationView {
                btid: btid.clone(),
                impi: r.impi.clone(),
                ue_address: r.peer.to_string(),
                uicc_based: r.uicc_based,
                services: r
                    .services
                    .keys()
                    .filter_map(|i| st.services.get(*i).map(|s| s.id.clone()))
                    .collect(),
                mikey_counter: st.muk_counters.get(btid).copied().unwrap_or(0),
            })
            .collect();
        out.sort_by(|a, b| a.btid.cmp(&b.btid));
        out
    }

    /// Every service's keys and counters (operators' view: IDs, no key material).
    pub fn service_list(&self) -> Vec<ServiceView> {
        let st = self.core.lock();
        st.services
            .iter()
            .enumerate()
            .map(|(i, s)| ServiceView {
                service_id: s.id.clone(),
                key_group: s.stream.config().key_group,
                msk_id: s.stream.current_msk_id().map(|m| m.0).unwrap_or(0),
                msk_number: s.stream.msk_number(),
                mtk_id: s.stream.mtk_counter(),
                media_frames: s.stream.frames(),
                media_on: s.media_on,
                registered_ues: st.registrations.values().filter(|r| r.services.contains_key(&i)).count(),
            })
            .collect()
    }

    /// Switches the scheduled media of a service on or off (kept in the store).
    pub fn set_media(&self, service_id: &str, on: bool) -> Result<(), BmscError> {
        let mut st = self.core.lock();
        let i = Core::service_index(&st, service_id)?;
        if let Some(store) = &st.store {
            store.set_media(service_id, on)?;
        }
        if let Some(s) = st.services.get_mut(i) {
            s.media_on = on;
        }
        Ok(())
    }

    /// Keeps a Zn answer as if the BSF had just given it (benchmarks and tests that run without a
    /// BSF). Its key expiry must parse.
    pub fn insert_zn_answer(&self, answer: &zn::ZnAnswer) -> Result<(), wire::Error> {
        let expires = ub::parse_utc_time(&answer.key_expiry)?;
        let mut st = self.core.lock();
        insert_known(&mut st, answer, expires);
        Ok(())
    }

    /// Stops serving (in-flight requests finish) and waits for the threads.
    pub fn shutdown(mut self) -> std::io::Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> std::io::Result<()> {
        if let Some(stop) = self.schedule_stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.schedule_thread.take() {
            t.join().map_err(|_| std::io::Error::other("the BM-SC schedule thread panicked"))?;
        }
        self.server.stop()
    }
}

impl Drop for Bmsc {
    fn drop(&mut self) {
        if let Err(e) = self.stop_and_join() {
            tracing::warn!(addr = %self.addr, "BM-SC shutdown: {e}");
        }
    }
}

impl std::fmt::Debug for Bmsc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bmsc")
            .field("addr", &self.addr)
            .field("mikey_addr", &self.mikey_addr)
            .field("fqdn", &self.core.fqdn)
            .finish_non_exhaustive()
    }
}

fn run_schedule(core: &Core, schedule: BmscSchedule, stop: &std::sync::mpsc::Receiver<()>) {
    let ids: Vec<String> = core.lock().services.iter().map(|s| s.id.clone()).collect();
    let tick = schedule.media_interval.max(Duration::from_millis(1));
    let start = Instant::now();
    let (mut next_mtk, mut next_rotation) = (start, schedule.msk_rotation_interval.map(|d| start + d));
    loop {
        let now = Instant::now();
        if next_rotation.is_some_and(|t| now >= t) {
            for id in &ids {
                if let Err(e) = core.rotate_msk(id) {
                    tracing::warn!(service = %id, "scheduled MSK rotation: {e}");
                }
            }
            next_rotation = schedule.msk_rotation_interval.map(|d| now + d);
        }
        if now >= next_mtk {
            for id in &ids {
                if let Err(e) = core.send_mtk(id) {
                    tracing::warn!(service = %id, "scheduled MTK message: {e}");
                }
            }
            next_mtk = now + schedule.mtk_interval.max(Duration::from_millis(1));
        }
        for id in &ids {
            let on = core.lock().services.iter().any(|s| &s.id == id && s.media_on);
            if !on {
                continue;
            }
            if let Err(e) = core.send_media(id, schedule.packets_per_media_interval) {
                tracing::warn!(service = %id, "scheduled media: {e}");
            }
        }
        match stop.recv_timeout(tick) {
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}

async fn mikey_receiver(core: Arc<Core>, socket: tokio::net::UdpSocket) {
    let mut buf = vec![0u8; MAX_DATAGRAM_LEN];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => core.on_datagram(buf.get(..n).unwrap_or_default(), from),
            Err(e) => {
                tracing::debug!("BM-SC MIKEY socket: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// HTTP

/// A 4xx (or other) answer with a one-line reason in the body and in [`mbms_key_management::REASON_HEADER`].
fn refuse(core: &Core, status: StatusCode, reason: impl Into<String>) -> Response {
    let reason: String = reason.into().replace(['\r', '\n'], " ");
    tracing::debug!(%status, %reason, "BM-SC refuses a request");
    if status.is_client_error() {
        core.lock().stats.http_4xx += 1;
    }
    let mut b = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, mbms_key_management::CONTENT_TYPE_REASON);
    // The header carries visible ASCII only (RFC 9110 §5.5); anything else becomes `?`.
    let ascii: String =
        reason.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).collect();
    if let (Ok(name), Ok(v)) =
        (HeaderName::from_bytes(mbms_key_management::REASON_HEADER.as_bytes()), HeaderValue::from_str(&ascii))
    {
        b = b.header(name, v);
    }
    b.body(Body::from(format!("{reason}\n"))).unwrap_or_default()
}

async fn not_found(State(core): State<Arc<Core>>, uri: Uri) -> Response {
    refuse(&core, StatusCode::NOT_FOUND, format!("no resource {}", uri.path()))
}

/// The one value of a header that may appear at most once, as visible ASCII; `Err` is the reason.
fn single_header(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<&str>, String> {
    let mut values = headers.get_all(&name).iter();
    let Some(first) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(format!("more than one {name} header"));
    }
    first.to_str().map(Some).map_err(|_| format!("{name} header is not visible ASCII"))
}

/// A parsed request body.
enum KmRequest {
    Register(RegisterRequest),
    Deregister(DeregisterRequest),
    Msk(MskRequest),
}

impl KmRequest {
    fn parse(t: RequestType, body: &str) -> Result<Self, wire::Error> {
        Ok(match t {
            RequestType::Register => KmRequest::Register(RegisterRequest::from_xml(body)?),
            RequestType::Deregister => KmRequest::Deregister(DeregisterRequest::from_xml(body)?),
            RequestType::MskRequest => KmRequest::Msk(MskRequest::from_xml(body)?),
        })
    }
}

/// The checks of a request that need no key: request type, Content-Type, size and body.
async fn parse_request(
    core: &Core,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<(RequestType, KmRequest, Vec<u8>), Response> {
    if method != Method::POST {
        return Err(refuse(core, StatusCode::METHOD_NOT_ALLOWED, format!("method {method}: only POST")));
    }
    let request_type = RequestType::from_query(uri.query().unwrap_or(""))
        .map_err(|e| refuse(core, StatusCode::BAD_REQUEST, e.to_string()))?;
    let content_type = single_header(headers, header::CONTENT_TYPE)
        .map_err(|e| refuse(core, StatusCode::BAD_REQUEST, e))?
        .unwrap_or("");
    let expected = request_type.request_content_type();
    if !mbms_key_management::content_type_matches(content_type, expected) {
        return Err(refuse(
            core,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type `{content_type}`: a {request_type} request carries {expected}"),
        ));
    }
    let bytes = axum::body::to_bytes(body, mbms_key_management::MAX_XML_LEN).await.map_err(|_| {
        refuse(
            core,
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body longer than {} bytes (or unreadable)", mbms_key_management::MAX_XML_LEN),
        )
    })?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| refuse(core, StatusCode::BAD_REQUEST, "body is not UTF-8"))?;
    let parsed = KmRequest::parse(request_type, text)
        .map_err(|e| refuse(core, StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok((request_type, parsed, bytes.to_vec()))
}

/// The Digest checks that need no key (TS 24.109 §5, RFC 2617 §3.2.2).
fn check_authorization(core: &Core, auth: &DigestAuthorization, uri: &Uri) -> Result<bool, String> {
    let uicc = if auth.realm == core.realm_uicc {
        true
    } else if auth.realm == core.realm_me {
        false
    } else {
        return Err(format!("realm `{}` is neither {} nor {}", auth.realm, core.realm_me, core.realm_uicc));
    };
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
    if auth.uri != target {
        return Err(format!("digest uri `{}` is not the request target `{target}`", auth.uri));
    }
    if auth.username.is_empty() || auth.username.len() > gba::btid::BTID_MAX_LEN {
        return Err("username (the B-TID) empty or longer than 255 bytes".into());
    }
    if auth
        .algorithm
        .as_deref()
        .is_some_and(|a| !a.eq_ignore_ascii_case(mbms_key_management::DIGEST_ALGORITHM))
    {
        return Err(format!("algorithm must be {}", mbms_key_management::DIGEST_ALGORITHM));
    }
    if auth.qop != Some(Qop::Auth) {
        return Err(format!("qop must be {}", mbms_key_management::DIGEST_QOP));
    }
    if auth.response.is_empty() {
        return Err("empty response".into());
    }
    if auth.auts.is_some() {
        return Err("auts has no place in a request to the BM-SC".into());
    }
    Ok(uicc)
}

/// MRK and MUK of a B-TID's keys for the realm the UE answered (TS 33.246 §6.1).
fn ue_keys(keys: &NafKeyMaterial, uicc_realm: bool) -> Option<(Mrk, Muk)> {
    match (keys, uicc_realm) {
        (NafKeyMaterial::GbaU { ks_ext_naf, ks_int_naf: Some(int) }, true) => {
            Some((mbms_keys::uicc_based_mrk(ks_ext_naf), mbms_keys::uicc_based_muk(int)))
        }
        (_, true) => None,
        (NafKeyMaterial::GbaU { ks_ext_naf, .. }, false) => {
            let ks_naf = KsNaf::new(*ks_ext_naf.expose());
            Some((mbms_keys::me_based_mrk(&ks_naf), mbms_keys::me_based_muk(&ks_naf)))
        }
        (NafKeyMaterial::GbaMe { ks_naf }, false) => {
            Some((mbms_keys::me_based_mrk(ks_naf), mbms_keys::me_based_muk(ks_naf)))
        }
    }
}

fn insert_known(st: &mut BmscState, answer: &zn::ZnAnswer, expires: u64) -> bool {
    if !st.known.contains_key(&answer.btid) && st.known.len() >= MAX_KNOWN_BTIDS {
        let oldest = st
            .known
            .iter()
            .filter(|(b, _)| !st.registrations.contains_key(*b))
            .min_by_key(|(_, k)| k.serial)
            .map(|(b, _)| b.clone());
        match oldest {
            Some(b) => {
                st.known.remove(&b);
            }
            None => return false,
        }
    }
    st.serial += 1;
    let serial = st.serial;
    st.known.insert(
        answer.btid.clone(),
        KnownBtid {
            impi: answer.impi.clone(),
            impus: answer.impus.clone(),
            keys: answer.keys.clone(),
            expires,
            serial,
        },
    );
    true
}

/// `401` with the two challenges of one fresh nonce.
fn challenge(core: &Core, stale: bool) -> Response {
    let mut st = core.lock();
    st.stats.challenges += 1;
    let nonce = st.rand.hex(16);
    let opaque = st.rand.hex(8);
    let now = Instant::now();
    st.nonces.retain(|_, n| now.duration_since(n.created) < core.nonce_lifetime);
    if st.nonces.len() >= MAX_NONCES
        && let Some(oldest) = st.nonces.iter().min_by_key(|(_, n)| n.serial).map(|(k, _)| k.clone())
    {
        st.nonces.remove(&oldest);
    }
    st.serial += 1;
    let serial = st.serial;
    st.nonces.insert(nonce.clone(), Nonce { opaque: opaque.clone(), created: now, last_nc: 0, serial });
    drop(st);
    let mut b = Response::builder()
        .status(StatusCode::UNAUTHORIZED)
        .header(header::CONTENT_TYPE, mbms_key_management::CONTENT_TYPE_REASON);
    for realm in [&core.realm_me, &core.realm_uicc] {
        let ch = DigestChallenge {
            realm: realm.clone(),
            nonce: nonce.clone(),
            algorithm: Some(mbms_key_management::DIGEST_ALGORITHM.to_owned()),
            qop: vec![Qop::Auth],
            opaque: Some(opaque.clone()),
            stale,
        };
        match ch.to_header_value() {
            Ok(v) => b = b.header(header::WWW_AUTHENTICATE, v),
            Err(e) => return refuse(core, StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    }
    b.body(Body::from("authentication required\n")).unwrap_or_default()
}

async fn key_management(
    State(core): State<Arc<Core>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(t) = ScfRequestType::from_query(uri.query().unwrap_or("")) {
        return scf_request(&core, peer, &method, t, &headers, body).await;
    }
    let (request_type, request, body) = match parse_request(&core, &method, &uri, &headers, body).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let header_value = match single_header(&headers, header::AUTHORIZATION) {
        Ok(Some(h)) => h,
        Ok(None) => return challenge(&core, false),
        Err(e) => return refuse(&core, StatusCode::BAD_REQUEST, e),
    };
    let auth = match DigestAuthorization::parse(header_value) {
        Ok(a) => a,
        Err(e) => return refuse(&core, StatusCode::BAD_REQUEST, e.to_string()),
    };
    // The first-request form of TS 24.109 §5 (nonce="", response=""): just the challenge.
    if auth.nonce.is_empty() && auth.response.is_empty() {
        return challenge(&core, false);
    }
    let uicc = match check_authorization(&core, &auth, &uri) {
        Ok(u) => u,
        Err(reason) => return refuse(&core, StatusCode::BAD_REQUEST, reason),
    };
    let btid = auth.username.clone();

    // The B-TID's keys: kept, or over Zn.
    let cached = {
        let mut st = core.lock();
        let now = unix_now();
        if st.known.get(&btid).is_some_and(|k| now >= k.expires) {
            tracing::info!(%btid, "BM-SC: the B-TID's key lifetime has ended");
            Core::forget_btid(&mut st, &btid);
        }
        st.known.contains_key(&btid)
    };
    if !cached {
        core.lock().stats.zn_queries += 1;
        let request = ZnRequest { btid: btid.clone(), naf_id: core.naf_id.clone(), gba_u_aware: true };
        let answer = match zn_query_async(core.bsf_zn, &request).await {
            Ok(a) if a.btid == btid => a,
            Ok(a) => {
                core.lock().stats.zn_failures += 1;
                tracing::warn!(%btid, other = %a.btid, "BM-SC: Zn answered for another B-TID");
                return challenge(&core, false);
            }
            Err(e) => {
                core.lock().stats.zn_failures += 1;
                match &e {
                    ZnError::Refused { .. } => tracing::info!(%btid, "BM-SC: {e}"),
                    _ => tracing::warn!(%btid, "BM-SC: {e}"),
                }
                return challenge(&core, false);
            }
        };
        let expires = match ub::parse_utc_time(&answer.key_expiry) {
            Ok(t) => t,
            Err(e) => {
                core.lock().stats.zn_failures += 1;
                tracing::warn!(%btid, "BM-SC: Zn key expiry: {e}");
                return challenge(&core, false);
            }
        };
        if unix_now() >= expires {
            return challenge(&core, false);
        }
        let mut st = core.lock();
        if !insert_known(&mut st, &answer, expires) {
            drop(st);
            return refuse(&core, StatusCode::SERVICE_UNAVAILABLE, "too many registered UEs");
        }
    }

    let mut st = core.lock();
    let Some(known) = st.known.get(&btid) else {
        drop(st);
        return challenge(&core, false);
    };
    let impi = known.impi.clone();
    let Some((mrk, muk)) = ue_keys(&known.keys, uicc) else {
        tracing::info!(%btid, uicc, "BM-SC: the B-TID's keys do not allow that realm");
        drop(st);
        return challenge(&core, false);
    };
    let password = zeroize::Zeroizing::new(mbms_key_management::digest_password(mrk.expose()));
    if !auth.verify(password.as_bytes(), method.as_str(), &body) {
        tracing::info!(%btid, "BM-SC: wrong Digest response");
        drop(st);
        return challenge(&core, false);
    }
    let now = Instant::now();
    let nonce_state = match st.nonces.get_mut(&auth.nonce) {
        Some(n) if now.duration_since(n.created) < core.nonce_lifetime => n,
        _ => {
            drop(st);
            return challenge(&core, true);
        }
    };
    if auth.opaque.as_deref() != Some(nonce_state.opaque.as_str()) {
        drop(st);
        return refuse(&core, StatusCode::BAD_REQUEST, "opaque does not match the challenge");
    }
    let nc = auth.nc.unwrap_or(0);
    if nc <= nonce_state.last_nc {
        tracing::info!(%btid, nc, "BM-SC: nonce count replayed");
        drop(st);
        return challenge(&core, false);
    }
    nonce_state.last_nc = nc;

    let peer_ip = peer.ip();
    let (request, denied) = if core.require_scf_authorization {
        match scf_authorization_filter(&st, &headers, &btid, peer_ip, request) {
            Ok(r) => r,
            Err(reason) => {
                drop(st);
                return refuse(&core, StatusCode::FORBIDDEN, reason);
            }
        }
    } else {
        (Some(request), Vec::new())
    };
    let result = match request {
        Some(request) => execute(&core, &mut st, &btid, &impi, peer_ip, uicc, &muk, request),
        None => Ok(RegisterResponse { statuses: Vec::new() }.to_xml()),
    };
    let result = result.and_then(|body| persist_registrations(&st, &impi).map(|()| body));
    drop(st);
    let response_body = match result.map(|b| add_denied(b, denied)) {
        Ok(b) => b,
        Err(e) => return refuse(&core, StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let auth_info = AuthenticationInfo {
        qop: auth.qop,
        rspauth: Some(digest::rspauth(
            &auth.digest_input(password.as_bytes(), method.as_str(), &body),
            response_body.as_bytes(),
        )),
        cnonce: auth.cnonce.clone(),
        nc: auth.nc,
        nextnonce: None,
    };
    let auth_info = match auth_info.to_header_value() {
        Ok(v) => v,
        Err(e) => return refuse(&core, StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(HeaderName::from_static("authentication-info"), auth_info)
        .header(header::CONTENT_TYPE, request_type.response_content_type())
        .body(Body::from(response_body))
        .unwrap_or_default()
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

/// Whether the B-TID, or another B-TID of the same IMPI from the same UE address, holds
/// registrations.
fn has_registration(st: &BmscState, btid: &str, impi: &str, peer: IpAddr) -> bool {
    st.registrations.contains_key(btid) || st.registrations.values().any(|r| r.impi == impi && r.peer == peer)
}

/// The UE's registration, created if needed; a newer B-TID of the same IMPI from the same UE
/// address takes over the registrations of the older one (the UE re-bootstrapped), and the
/// recipients follow the MUK. Another device of the IMPI (another address) keeps its own.
fn registration<'a>(
    st: &'a mut BmscState,
    btid: &str,
    impi: &str,
    peer: IpAddr,
    uicc: bool,
    muk: &Muk,
) -> &'a mut Registration {
    let older: Vec<String> = st
        .registrations
        .iter()
        .filter(|(b, r)| b.as_str() != btid && r.impi == impi && r.peer == peer && r.sip.is_none())
        .map(|(b, _)| b.clone())
        .collect();
    let mut inherited = BTreeMap::new();
    for b in older {
        if let Some(r) = st.registrations.remove(&b) {
            tracing::info!(old = %b, new = %btid, "BM-SC: registrations move to the new B-TID");
            inherited.extend(r.services);
        }
    }
    let rekey = match st.registrations.get(btid) {
        Some(r) => r.uicc_based != uicc || !inherited.is_empty(),
        None => !inherited.is_empty(),
    };
    let reg = st.registrations.entry(btid.to_owned()).or_insert_with(|| Registration {
        impi: impi.to_owned(),
        peer,
        uicc_based: uicc,
        services: BTreeMap::new(),
        sip: None,
    });
    reg.peer = peer;
    reg.uicc_based = uicc;
    for (service, recipient) in inherited {
        reg.services.entry(service).or_insert(recipient);
    }
    if rekey {
        for (service, recipient) in &reg.services {
            if let Some(s) = st.services.get_mut(*service) {
                let _ = s.stream.rekey_recipient(*recipient, muk.clone(), btid);
            }
        }
    }
    reg
}

/// Runs an authenticated request: the answer document; MSK pushes are sent on the way.
#[allow(clippy::too_many_arguments)]
fn execute(
    core: &Core,
    st: &mut BmscState,
    btid: &str,
    impi: &str,
    peer: IpAddr,
    uicc: bool,
    muk: &Muk,
    request: KmRequest,
) -> Result<String, BmscError> {
    match request {
        KmRequest::Register(r) => {
            registration(st, btid, impi, peer, uicc, muk);
            let mut outcomes = Vec::new();
            let mut pushes = Vec::new();
            for id in r.service_ids {
                let Some(service) = st.services.iter().position(|s| s.id == id) else {
                    outcomes.push((STATUS_UNKNOWN, id));
                    continue;
                };
                let existing = st.registrations.get(btid).and_then(|reg| reg.services.get(&service).copied());
                let recipient = match existing {
                    Some(rec) => rec,
                    None => {
                        let Some(s) = st.services.get_mut(service) else { continue };
                        let rec = match s.free_recipients.pop() {
                            Some(rec) => {
                                s.stream.rekey_recipient(rec, muk.clone(), btid)?;
                                rec
                            }
                            None => s.stream.add_recipient(muk.clone(), btid),
                        };
                        if let Some(reg) = st.registrations.get_mut(btid) {
                            reg.services.insert(service, rec);
                        }
                        st.stats.registrations += 1;
                        tracing::info!(%btid, service = %id, uicc, "BM-SC: registered");
                        rec
                    }
                };
                if !pushes.contains(&(service, recipient)) {
                    pushes.push((service, recipient));
                }
                outcomes.push((STATUS_OK, id));
            }
            if st.registrations.get(btid).is_some_and(|r| r.services.is_empty()) {
                st.registrations.remove(btid);
            }
            for (service, recipient) in pushes {
                core.push_msk(st, service, recipient, peer, None)?;
            }
            let statuses = group(outcomes)
                .into_iter()
                .map(|(code, service_ids)| ServiceStatus { code, service_ids })
                .collect();
            Ok(RegisterResponse { statuses }.to_xml())
        }
        KmRequest::Deregister(r) => {
            if has_registration(st, btid, impi, peer) {
                registration(st, btid, impi, peer, uicc, muk);
            }
            let mut outcomes = Vec::new();
            for id in r.service_ids {
                let Some(service) = st.services.iter().position(|s| s.id == id) else {
                    outcomes.push((STATUS_UNKNOWN, id));
                    continue;
                };
                let removed = st.registrations.get_mut(btid).and_then(|reg| reg.services.remove(&service));
                if let Some(recipient) = removed {
                    Core::free_recipient(st, service, recipient);
                    st.stats.deregistrations += 1;
                    tracing::info!(%btid, service = %id, "BM-SC: deregistered");
                }
                outcomes.push((STATUS_OK, id));
            }
            if st.registrations.get(btid).is_some_and(|r| r.services.is_empty()) {
                st.registrations.remove(btid);
            }
            let statuses = group(outcomes)
                .into_iter()
                .map(|(code, service_ids)| ServiceStatus { code, service_ids })
                .collect();
            Ok(RegisterResponse { statuses }.to_xml())
        }
        KmRequest::Msk(r) => {
            st.stats.msk_requests += 1;
            if has_registration(st, btid, impi, peer) {
                registration(st, btid, impi, peer, uicc, muk);
            }
            let mut outcomes: Vec<(u16, MskKeyId)> = Vec::new();
            for key_id in r.key_ids {
                let service = st.services.iter().position(|s| {
                    s.stream.config().key_domain_id == key_id.key_domain_id
                        && s.stream.config().key_group == key_id.msk_id.key_group()
                });
                let Some(service) = service else {
                    outcomes.push((STATUS_UNKNOWN, key_id));
                    continue;
                };
                let Some(recipient) =
                    st.registrations.get(btid).and_then(|reg| reg.services.get(&service).copied())
                else {
                    outcomes.push((STATUS_NOT_REGISTERED, key_id));
                    continue;
                };
                let Some(s) = st.services.get(service) else { continue };
                let msk_id = if key_id.is_any_in_group() {
                    s.stream.current_msk_id()
                } else {
                    s.stream.msk(key_id.msk_id).map(|_| key_id.msk_id)
                };
                let Some(msk_id) = msk_id else {
                    outcomes.push((STATUS_UNKNOWN, key_id));
                    continue;
                };
                core.push_msk(st, service, recipient, peer, Some(msk_id))?;
                outcomes.push((STATUS_OK, key_id));
            }
            let statuses =
                group(outcomes).into_iter().map(|(code, key_ids)| KeyStatus { code, key_ids }).collect();
            Ok(MskResponse { statuses }.to_xml())
        }
    }
}

// ------------------------------------------------------------------------------------------------
// SIP-based MBMS security: requests of the SCF (TS 26.237 §10.4.2, CR §10.2)

/// Most identities in one [`wire::sip_based_mbms::ASSERTED_IDENTITY_HEADER`].
pub const MAX_ASSERTED_IDENTITIES: usize = 8;

/// The NAF FQDN and MUK of `recipient` of `service` when it belongs to a registration made
/// through the SCF.
fn sip_keys_of(st: &BmscState, service: usize, recipient: usize) -> Option<(String, Muk)> {
    let btid = st.services.get(service)?.stream.recipient_btid(recipient)?;
    let reg = st.registrations.get(btid)?;
    if reg.services.get(&service) != Some(&recipient) {
        return None;
    }
    reg.sip.as_ref().map(|k| (k.naf_fqdn.clone(), k.muk.clone()))
}

/// An MSK message (`msk_id`) or, without one, a solicited pull to `recipient` with IDi = the
/// NAF (SCF) FQDN (TS 26.237 §10.4.2.0: "SCF FQDN is sent instead of BM-SC FQDN"), built as the
/// stream builds its own: the recipient's next timestamp, the stream's Key Domain and Key Group.
fn sip_mikey_message(
    stream: &mut BmscStream,
    recipient: usize,
    idi: &str,
    muk: &Muk,
    msk_id: Option<MskId>,
    rand: [u8; 16],
) -> Result<Vec<u8>, BmscError> {
    use crate::bmsc_stream::{CSB_ID_IS_KEY_GROUP, MIKEY_MAX, MskTimestamps};
    use mikey::NTP_UNIX_OFFSET;
    use mikey::mbms::{self, MskMessageParams, SolicitedPullParams};

    let no_recipient = || BmscError::Stream(StreamError::NoRecipient(recipient));
    let counter = stream.recipient_counter(recipient).ok_or_else(no_recipient)?.saturating_add(1);
    stream.raise_counter(recipient, counter)?;
    let config = stream.config();
    let timestamp = match config.msk_timestamps {
        MskTimestamps::Counter => mikey::Timestamp::Counter(counter),
        MskTimestamps::NtpUtc => {
            mikey::Timestamp::NtpUtc(((unix_now() + NTP_UNIX_OFFSET) << 32) | u64::from(counter))
        }
    };
    let csb_id = if CSB_ID_IS_KEY_GROUP { u32::from(config.key_group) } else { 0 };
    let idr = stream.recipient_btid(recipient).ok_or_else(no_recipient)?;
    let mut out = vec![0u8; MIKEY_MAX];
    let n = match msk_id {
        Some(id) => {
            let msk = stream.msk(id).ok_or(StreamError::NoMsk)?;
            let params = MskMessageParams {
                csb_id,
                v_bit: config.v_bit,
                timestamp,
                rand: &rand,
                idi: idi.as_bytes(),
                idr: idr.as_bytes(),
                key_domain_id: config.key_domain_id,
                msk_id: id,
                cs_id_map: mikey::CsIdMap::Empty { cs_count: mbms::profile::EMPTY_MAP_CS_COUNT },
                policy: None,
                validity: mikey::KeyValidity::Null,
            };
            mbms::build_msk_message(muk, &params, msk, &mut out).map_err(StreamError::from)?
        }
        None => {
            let params = SolicitedPullParams {
                csb_id,
                timestamp,
                rand: &rand,
                idi: idi.as_bytes(),
                idr: idr.as_bytes(),
                key_domain_id: config.key_domain_id,
                key_group: config.key_group,
            };
            mbms::build_solicited_pull(muk, &params, &mut out).map_err(StreamError::from)?
        }
    };
    out.truncate(n);
    Ok(out)
}

/// Makes `btid` the registration of `identity` through the SCF with these keys: registrations of
/// its older B-TIDs move over (the UE bootstrapped again, TS 26.237 §10.4.2.3), and every
/// recipient of the registration takes the new MUK and B-TID. Without `create`, nothing is
/// created when the identity holds no registration. `false`: too many registrations.
fn sip_registration(st: &mut BmscState, identity: &str, ue_ip: IpAddr, keys: &NafKeys, create: bool) -> bool {
    let btid = keys.btid.as_str();
    let older: Vec<String> = st
        .registrations
        .iter()
        .filter(|(b, r)| b.as_str() != btid && r.sip.is_some() && r.impi == identity)
        .map(|(b, _)| b.clone())
        .collect();
    let mut inherited = BTreeMap::new();
    for b in older {
        if let Some(r) = st.registrations.remove(&b) {
            tracing::info!(old = %b, new = %btid, %identity, "BM-SC: SIP-based registrations move to the new B-TID");
            inherited.extend(r.services);
        }
    }
    if !st.registrations.contains_key(btid) {
        if !create && inherited.is_empty() {
            return true;
        }
        if st.registrations.len() >= MAX_KNOWN_BTIDS {
            return false;
        }
    }
    let reg = st.registrations.entry(btid.to_owned()).or_insert_with(|| Registration {
        impi: identity.to_owned(),
        peer: ue_ip,
        uicc_based: false,
        services: BTreeMap::new(),
        sip: None,
    });
    reg.impi = identity.to_owned();
    reg.peer = ue_ip;
    reg.uicc_based = false;
    reg.sip = Some(SipKeys { naf_fqdn: keys.naf_fqdn.clone(), muk: keys.muk.clone() });
    for (service, recipient) in inherited {
        reg.services.entry(service).or_insert(recipient);
    }
    let recipients: Vec<(usize, usize)> = reg.services.iter().map(|(s, r)| (*s, *r)).collect();
    for (service, recipient) in recipients {
        if let Some(s) = st.services.get_mut(service) {
            let _ = s.stream.rekey_recipient(recipient, keys.muk.clone(), btid);
        }
    }
    true
}

/// The identities of [`wire::sip_based_mbms::ASSERTED_IDENTITY_HEADER`]: comma-separated URIs, angle
/// brackets optional.
fn asserted_identities(headers: &HeaderMap) -> Result<Vec<String>, String> {
    let name = HeaderName::from_static("x-3gpp-asserted-identity");
    let value = single_header(headers, name)?
        .ok_or_else(|| format!("no {} header", sip_based_mbms::ASSERTED_IDENTITY_HEADER))?;
    let ids: Vec<String> = value
        .split(',')
        .map(|i| i.trim().trim_start_matches('<').trim_end_matches('>').trim().to_owned())
        .collect();
    if ids.is_empty()
        || ids.len() > MAX_ASSERTED_IDENTITIES
        || ids.iter().any(|i| i.is_empty() || i.contains(' '))
    {
        return Err(format!(
            "{} must hold 1..={MAX_ASSERTED_IDENTITIES} comma-separated identities",
            sip_based_mbms::ASSERTED_IDENTITY_HEADER
        ));
    }
    Ok(ids)
}

/// A request of the SCF (`sip-based-*`, `authorize`): trusted source, Content-Type, identities,
/// body; then the procedure, answered with the status document.
async fn scf_request(
    core: &Core,
    peer: SocketAddr,
    method: &Method,
    t: ScfRequestType,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    if !core.trusted_scfs.contains(&peer.ip()) {
        core.lock().stats.scf_untrusted += 1;
        tracing::warn!(%peer, request = %t, "BM-SC: an SCF request from an untrusted source");
        return refuse(core, StatusCode::FORBIDDEN, format!("{t} is served to a trusted SCF only"));
    }
    if method != Method::POST {
        return refuse(core, StatusCode::METHOD_NOT_ALLOWED, format!("method {method}: only POST"));
    }
    let content_type = match single_header(headers, header::CONTENT_TYPE) {
        Ok(c) => c.unwrap_or(""),
        Err(e) => return refuse(core, StatusCode::BAD_REQUEST, e),
    };
    let expected = t.request_content_type();
    if !mbms_key_management::content_type_matches(content_type, expected) {
        return refuse(
            core,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type `{content_type}`: a {t} request carries {expected}"),
        );
    }
    let identities = match asserted_identities(headers) {
        Ok(i) => i,
        Err(e) => return refuse(core, StatusCode::BAD_REQUEST, e),
    };
    let Ok(bytes) = axum::body::to_bytes(body, mbms_key_management::MAX_XML_LEN).await else {
        return refuse(
            core,
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body longer than {} bytes (or unreadable)", mbms_key_management::MAX_XML_LEN),
        );
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return refuse(core, StatusCode::BAD_REQUEST, "body is not UTF-8");
    };
    let result = match t {
        ScfRequestType::Authorize => scf_authorize(core, &identities, text),
        _ => scf_sip_based(core, &identities, t, text),
    };
    match result {
        Ok(xml) => {
            core.lock().stats.scf_requests += 1;
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, t.response_content_type())
                .body(Body::from(xml))
                .unwrap_or_default()
        }
        Err((status, reason)) => refuse(core, status, reason),
    }
}

/// The UE address of an SCF request: loopback only (every peer lives on this host).
fn check_ue_ip(ip: IpAddr) -> Result<IpAddr, (StatusCode, String)> {
    if ip.is_loopback() {
        Ok(ip)
    } else {
        Err((StatusCode::BAD_REQUEST, format!("UE address {ip} is not a loopback address")))
    }
}

/// `authorize` (TS 26.237 CR §10.2.4): stores what the SCF authorized for each identity.
fn scf_authorize(core: &Core, identities: &[String], text: &str) -> Result<String, (StatusCode, String)> {
    let request = AuthorizeRequest::from_xml(text).map_err(|e| (StatusCode::BAD_REQUEST, e.to_string()))?;
    let ue_ip = check_ue_ip(request.ue_ip_address)?;
    let mut st = core.lock();
    let mut outcomes = Vec::new();
    let mut authorized = std::collections::BTreeSet::new();
    for id in request.service_ids {
        match st.services.iter().position(|s| s.id == id) {
            Some(i) => {
                authorized.insert(i);
                outcomes.push((STATUS_OK, id));
            }
            None => outcomes.push((STATUS_UNKNOWN, id)),
        }
    }
    for identity in identities {
        if !st.authorizations.contains_key(identity)
            && st.authorizations.len() >= MAX_KNOWN_BTIDS
            && let Some(oldest) =
                st.authorizations.iter().min_by_key(|(_, a)| a.serial).map(|(k, _)| k.clone())
        {
            st.authorizations.remove(&oldest);
        }
        st.serial += 1;
        let serial = st.serial;
        let entry = st.authorizations.entry(identity.clone()).or_insert_with(|| ScfAuthorization {
            ue_ip,
            services: std::collections::BTreeSet::new(),
            serial,
        });
        if entry.ue_ip != ue_ip {
            entry.services.clear();
            entry.ue_ip = ue_ip;
        }
        entry.services.extend(authorized.iter().copied());
        entry.serial = serial;
    }
    tracing::info!(identity = %identities.join(","), %ue_ip, "BM-SC: SCF authorization stored");
    let statuses =
        group(outcomes).into_iter().map(|(code, service_ids)| ServiceStatus { code, service_ids }).collect();
    Ok(RegisterResponse { statuses }.to_xml())
}

/// `sip-based-register`, `-deregister`, `-msk-request` (TS 26.237 §10.4.2.1, .1A, .2).
fn scf_sip_based(
    core: &Core,
    identities: &[String],
    t: ScfRequestType,
    text: &str,
) -> Result<String, (StatusCode, String)> {
    let bad = |reason: String| (StatusCode::BAD_REQUEST, reason);
    let info = NafKeyInfo::from_xml(text).map_err(|e| bad(e.to_string()))?;
    if info.procedure.scf_request_type() != t {
        return Err(bad(format!(
            "the body holds a {} request, the query says {t}",
            info.procedure.scf_request_type()
        )));
    }
    let ue_ip = info.ue_ip_addresses.first().copied().map(check_ue_ip).transpose()?;
    let identity = identities.first().map(String::as_str).unwrap_or_default();
    let register = matches!(info.procedure, SipProcedure::Register(_));
    if register && (info.keys.is_none() || ue_ip.is_none()) {
        return Err(bad(format!("a {t} request carries the UE address and the NAF keys")));
    }
    let mut st = core.lock();
    // The UE's SIP-based registration: by the B-TID of the keys, or the identity's current one.
    let current = st
        .registrations
        .iter()
        .find(|(_, r)| r.sip.is_some() && r.impi == identity)
        .map(|(b, r)| (b.clone(), r.peer));
    let ue_ip = match (ue_ip, &current) {
        (Some(ip), _) => ip,
        (None, Some((_, peer))) => *peer,
        (None, None) => IpAddr::V4(Ipv4Addr::LOCALHOST),
    };
    if let Some(keys) = &info.keys
        && !sip_registration(&mut st, identity, ue_ip, keys, register)
    {
        return Err((StatusCode::SERVICE_UNAVAILABLE, "too many registered UEs".into()));
    }
    let btid = match (&info.keys, current) {
        (Some(k), _) => k.btid.clone(),
        (None, Some((b, _))) => b,
        // Nothing registered: the per-item codes say so.
        (None, None) => String::new(),
    };
    let muk = st
        .registrations
        .get(&btid)
        .and_then(|r| r.sip.as_ref())
        .map(|k| k.muk.clone())
        .unwrap_or_else(|| Muk::new([0; 32]));
    let request = match info.procedure {
        SipProcedure::Register(r) => KmRequest::Register(r),
        SipProcedure::Deregister(r) => KmRequest::Deregister(r),
        SipProcedure::MskRequest(r) => KmRequest::Msk(r),
    };
    tracing::info!(%identity, %btid, request = %t, "BM-SC: SCF request");
    execute(core, &mut st, &btid, identity, ue_ip, false, &muk, request)
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

/// The `authorize` variant's check of an HTTP registration (TS 26.237 CR §10.2.4): the request
/// for the services the SCF authorized for [`wire::sip_based_mbms::INTENDED_IDENTITY_HEADER`]'s IMPU from
/// this address (unknown services pass, to get their `404`), and the services refused. `Err`: no
/// IMPU, or one the B-TID's subscriber does not have.
fn scf_authorization_filter(
    st: &BmscState,
    headers: &HeaderMap,
    btid: &str,
    peer: IpAddr,
    request: KmRequest,
) -> Result<(Option<KmRequest>, Vec<String>), String> {
    let KmRequest::Register(r) = request else { return Ok((Some(request), Vec::new())) };
    let name = HeaderName::from_static("x-3gpp-intended-identity");
    let impu = single_header(headers, name)?.ok_or_else(|| {
        format!(
            "no {}: this BM-SC registers UEs the SCF authorized",
            sip_based_mbms::INTENDED_IDENTITY_HEADER
        )
    })?;
    let impu = impu.trim().trim_start_matches('<').trim_end_matches('>');
    if !st.known.get(btid).is_some_and(|k| k.impus.iter().any(|i| i == impu)) {
        return Err(format!("{impu} is not an identity of the B-TID's subscriber"));
    }
    let auth = st.authorizations.get(impu);
    let (mut allowed, mut denied) = (Vec::new(), Vec::new());
    for id in r.service_ids {
        let ok = match st.services.iter().position(|s| s.id == id) {
            None => true,
            Some(i) => auth.is_some_and(|a| a.ue_ip == peer && a.services.contains(&i)),
        };
        if ok { allowed.push(id) } else { denied.push(id) }
    }
    let request =
        (!allowed.is_empty()).then_some(KmRequest::Register(RegisterRequest { service_ids: allowed }));
    Ok((request, denied))
}

/// A registration answer with the refused services added under
/// [`wire::sip_based_mbms::STATUS_NOT_AUTHORIZED`].
fn add_denied(xml: String, denied: Vec<String>) -> String {
    if denied.is_empty() {
        return xml;
    }
    let mut statuses = RegisterResponse::from_xml(&xml).map(|r| r.statuses).unwrap_or_default();
    statuses.push(ServiceStatus { code: sip_based_mbms::STATUS_NOT_AUTHORIZED, service_ids: denied });
    RegisterResponse { statuses }.to_xml()
}

/// A registration made through the SCF, as the BM-SC holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipRegistrationInfo {
    /// The asserted identity the SCF named.
    pub identity: String,
    /// The NAF (SCF) FQDN: IDi of the MSK messages.
    pub naf_fqdn: String,
    /// Where MSK messages go.
    pub ue_ip: IpAddr,
    /// The User Service IDs.
    pub services: Vec<String>,
}

impl Bmsc {
    /// The registration of `btid` made through the SCF, if any.
    pub fn sip_registration(&self, btid: &str) -> Option<SipRegistrationInfo> {
        let st = self.core.lock();
        let r = st.registrations.get(btid)?;
        let keys = r.sip.as_ref()?;
        Some(SipRegistrationInfo {
            identity: r.impi.clone(),
            naf_fqdn: keys.naf_fqdn.clone(),
            ue_ip: r.peer,
            services: r.services.keys().filter_map(|i| st.services.get(*i).map(|s| s.id.clone())).collect(),
        })
    }

    /// The User Service IDs the SCF authorized for `impu` (the `authorize` variant).
    pub fn authorized_services(&self, impu: &str) -> Vec<String> {
        let st = self.core.lock();
        st.authorizations
            .get(impu)
            .map(|a| a.services.iter().filter_map(|i| st.services.get(*i).map(|s| s.id.clone())).collect())
            .unwrap_or_default()
    }
}

/// MSK numbers a BM-SC with a new state store starts after: the seconds of the Unix clock modulo
/// [`FIRST_MSK_NUMBER_SPAN`]. TS 33.246 §6.3.2 leaves the choice of MSK IDs to the BM-SC; a card
/// keeps, per MSK ID, the last MTK ID it took (TS 31.102 §4.2.80 EF.MSK), so a new BM-SC that
/// numbered from 1 again would have its MTKs refused as replays by a card that met an earlier one
/// with the same Key Group. Starting from the clock keeps two states begun more than a second apart
/// on different numbers for 17 hours; the span leaves 4095 rotations before the 16-bit number wraps.
fn first_msk_number(now: SystemTime) -> u16 {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    (secs % u64::from(FIRST_MSK_NUMBER_SPAN)) as u16
}

/// The span of [`first_msk_number`].
const FIRST_MSK_NUMBER_SPAN: u16 = 0xF000;

#[cfg(test)]
mod tests {
    #[test]
    fn a_new_state_numbers_msks_from_the_clock_below_the_wrap() {
        let at = |secs| super::first_msk_number(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), 0);
        assert_eq!(at(1_000), 1_000);
        assert_eq!(at(u64::from(super::FIRST_MSK_NUMBER_SPAN) + 5), 5);
        assert!((0..200_000).all(|s| at(s) < super::FIRST_MSK_NUMBER_SPAN));
    }

    use super::*;

    #[test]
    fn bearer_addresses() {
        assert!(check_bearer_address("127.0.0.1:5000".parse().unwrap()).is_ok());
        assert!(check_bearer_address("[::1]:5000".parse().unwrap()).is_ok());
        assert!(check_bearer_address("239.1.2.3:5000".parse().unwrap()).is_ok());
        assert!(check_bearer_address("224.0.0.1:5000".parse().unwrap()).is_err());
        assert!(check_bearer_address("192.0.2.1:5000".parse().unwrap()).is_err());
        assert!(check_bearer_address("127.0.0.1:0".parse().unwrap()).is_err());
    }

    #[test]
    fn groups_keep_first_order() {
        let g = group(vec![(200, "a"), (404, "b"), (200, "c")]);
        assert_eq!(g, vec![(200, vec!["a", "c"]), (404, vec!["b"])]);
    }

    #[test]
    fn ue_keys_by_realm_and_gba_type() {
        use gba::keys::{KsExtNaf, KsIntNaf};
        let gba_u = NafKeyMaterial::GbaU {
            ks_ext_naf: KsExtNaf::new([1; 32]),
            ks_int_naf: Some(KsIntNaf::new([2; 32])),
        };
        let (mrk, muk) = ue_keys(&gba_u, true).unwrap();
        assert_eq!((mrk.expose(), muk.expose()), (&[1; 32], &[2; 32]));
        let (mrk, muk) = ue_keys(&gba_u, false).unwrap();
        let k = KsNaf::new([1; 32]);
        assert_eq!(mrk.expose(), mbms_keys::me_based_mrk(&k).expose());
        assert_eq!(muk.expose(), mbms_keys::me_based_muk(&k).expose());
        let unaware = NafKeyMaterial::GbaU { ks_ext_naf: KsExtNaf::new([1; 32]), ks_int_naf: None };
        assert!(ue_keys(&unaware, true).is_none());
        let gba_me = NafKeyMaterial::GbaMe { ks_naf: KsNaf::new([3; 32]) };
        assert!(ue_keys(&gba_me, true).is_none());
        assert_eq!(
            ue_keys(&gba_me, false).unwrap().1.expose(),
            mbms_keys::me_based_muk(&KsNaf::new([3; 32])).expose()
        );
    }

    #[test]
    fn start_refuses_bad_configurations() {
        let zn: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let good = || {
            let mut c = BmscConfig::new("bmsc.example.org", zn);
            c.services.push(BmscService::new("svc-1", 1, [1; 32]));
            c
        };
        let mut c = good();
        c.bind = "0.0.0.0".parse().unwrap();
        assert!(Bmsc::start(c).is_err());
        let mut c = good();
        c.services.clear();
        assert!(Bmsc::start(c).is_err());
        let mut c = good();
        c.services.push(BmscService::new("svc-2", 1, [2; 32]));
        assert!(Bmsc::start(c).is_err(), "same Key Group twice");
        let mut c = good();
        c.bearer_media.push("192.0.2.1:5004".parse().unwrap());
        assert!(Bmsc::start(c).is_err());
        let mut c = good();
        c.bmsc_fqdn = "bad name".into();
        assert!(Bmsc::start(c).is_err());
        let b = Bmsc::start(good()).unwrap();
        assert!(b.addr().ip().is_loopback() && b.mikey_addr().ip().is_loopback());
        assert_eq!(b.current_msk_id("svc-1"), Some(MskId(0x0001_0001)));
        assert_eq!(
            b.request_url(RequestType::Register),
            format!("http://{}/keymanagement?requesttype=register", b.addr())
        );
        let addr = b.addr();
        b.shutdown().unwrap();
        assert!(std::net::TcpStream::connect(addr).is_err(), "nothing listens after shutdown");
    }
}
