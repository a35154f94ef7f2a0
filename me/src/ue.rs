//! A whole UE for MBMS security (TS 33.246 §6.1–§6.3 on GBA, TS 33.220 §4.5): the card, GBA over
//! Ub, the NAF keys of the BM-SC, registration and the basic MSK request over HTTP, MIKEY MSK and
//! MTK messages over UDP, and SRTP reception, on one key-management path.
//!
//! Each procedure is a method of its own that returns a small report, so a caller can time and log
//! them: [`Ue::bootstrap`], [`Ue::derive_naf_keys`], [`Ue::register`], [`Ue::poll`],
//! [`Ue::msk_request`], [`Ue::deregister`], [`Ue::power_cycle`], [`Ue::insert_card`].
//!
//! What [`Ue::poll`] does with each datagram:
//!
//! | datagram | action |
//! |---|---|
//! | MIKEY MSK message | the path's MSK update; the verification message back to the sender when V is set |
//! | solicited pull (MSK ID 0) | basic MSK request over HTTP for the current MSK of the Key Group |
//! | MIKEY MTK message | the path's MTK generation; the MTK to the SRTP receiver |
//! | MTK message naming an MSK the UE lacks | basic MSK request for that MSK; the message waits for it |
//! | SRTP packet | unprotected with the MTK its MKI names; payload kept and hashed |
//! | SRTP packet naming no MTK held | kept up to [`UNKEYED_PACKET_HOLD`] for its MTK message, then refused |
//!
//! Anything malformed or refused is counted ([`UeStats`]) and logged and changes no stored key;
//! only local failures (reader, key-store file, sockets) end a poll with an error.
//!
//! The UE keeps its GBA keys fresh: when the bootstrap's key lifetime has passed it bootstraps
//! again, which gives a new MUK, and registers again so that the BM-SC uses it (TS 33.246 §6.1,
//! TS 33.220 §4.5.3); a `401` of the BM-SC to credentials (unknown B-TID) does the same and the
//! request is retried once.
//!
//! With [`Signalling::Sip`] the same procedures run over SIP to the SCF through the P-CSCF
//! (TS 26.237 §10.4.2, [`crate::sip_client`]): the NAF keys are those of the SCF FQDN, the BM-SC's
//! MIKEY messages carry it as IDi, and the SCF's re-bootstrap answer does what the BM-SC's `401`
//! does over HTTP.

use std::collections::{HashMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gba::{Mrk, NafId, UaSecurityProtocolId};
use mikey::mbms::{KeyDomainId, MskId, Mtk, MtkSalt};
use sha2::{Digest, Sha256};
use sim_reader::Reader;
use srtp::{CryptoSuite, Policy};
use wire::mbms_key_management::{self, MskKeyId};

use crate::bmsc_client::{BmscClient, Credentials};
use crate::card::Card;
use crate::error::{Error, Result};
use crate::gba_client::{GbaClient, GbaVariant};
use crate::http_client::DEFAULT_HTTP_TIMEOUT;
use crate::key_management::{
    KeyManagementPath, MbmsKeyManagement, MikeyKind, MskOutcome, MtkOutcome, choose_path, classify,
};
use crate::key_store::{CardChange, KeyStore};
use crate::mbms_receiver::{MbmsReceiver, StreamId};
use crate::me_based::MeBased;
use crate::mikey_listener::DATAGRAM_MAX;
use crate::open_values::parse_key_lifetime;
use crate::sip_client::{SipClient, SipConfig};
use crate::ub_client::{BootstrapReport, UbClient};
use crate::uicc_based::UiccBased;

/// Datagrams waiting between the socket threads and [`Ue::poll`]; more are dropped and counted
/// ([`UeStats::datagrams_overflowed`]), as a full socket buffer would drop them.
pub const DATAGRAM_QUEUE: usize = 8192;
/// How often the socket threads look whether the UE is gone.
pub const SOCKET_TICK: Duration = Duration::from_millis(50);
/// MTK messages kept while the MSK they name is being requested.
pub const PARKED_MTK_MESSAGES: usize = 16;
/// An MTK message naming an unknown MSK triggers a basic MSK request for it at most this often (a
/// forged message cannot be told apart before the MSK is there, so this bounds what it can cause).
pub const MSK_REQUEST_HOLDOFF: Duration = Duration::from_secs(2);
/// SRTP packets whose MKI names no MTK the UE holds are kept this long for the MTK message that
/// may be right behind them: MTK messages and media come on different sockets, so a packet sent
/// just after its MTK message can be taken first. Refused (counted failed) when still unkeyed.
pub const UNKEYED_PACKET_HOLD: Duration = Duration::from_millis(300);
/// At most this many such packets are kept; the oldest is refused beyond it.
pub const UNKEYED_PACKETS_KEPT: usize = 64;
/// After a failed renewal of expired GBA keys, the next attempt waits this long.
pub const RENEWAL_RETRY: Duration = Duration::from_secs(1);

/// How the UE asks for registration, deregistration and MSKs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Signalling {
    /// HTTP Digest to the BM-SC (TS 33.246 §6.3.2); the NAF is the BM-SC ([`UeConfig::bmsc_fqdn`]).
    #[default]
    Http,
    /// SIP to the SCF through the P-CSCF (TS 26.237 §10.4.2); the NAF is the SCF.
    Sip {
        /// The P-CSCF's UDP address (loopback).
        pcscf: SocketAddr,
        /// The SCF's Request-URI (`sip:scf@<domain>`).
        scf_uri: String,
        /// The UE's public user identity (From of the INVITE).
        impu: String,
        /// The SCF FQDN of the BM-SC serving the services: NAF_Id = it ‖ MBMS Ua protocol id,
        /// and the IDi of the MIKEY MSK messages.
        naf_fqdn: String,
    },
}

/// How a UE is set up.
#[derive(Debug, Clone)]
pub struct UeConfig {
    /// The BSF's Ub URL (`http://127.0.0.1:port/`).
    pub bsf_url: String,
    /// The BM-SC's base URL (`http://127.0.0.1:port`).
    pub bmsc_url: String,
    /// The BM-SC's FQDN: its NAF_Id, MIKEY IDi and Digest realms.
    pub bmsc_fqdn: String,
    /// The User Service IDs [`Ue::register`] registers.
    pub service_ids: Vec<String>,
    /// UDP address of the MIKEY socket (MSK push, MTK messages; verification messages leave from
    /// it). Loopback only.
    pub mikey_bind: SocketAddr,
    /// UDP address of the SRTP socket. Loopback only.
    pub media_bind: SocketAddr,
    /// An IPv4 multicast group and port of the MBMS bearer's MTK messages, joined on the loopback
    /// interface (the BM-SC sends there with multicast loop on `lo`), besides `mikey_bind`.
    pub bearer_mikey_group: Option<SocketAddrV4>,
    /// An IPv4 multicast group and port of the bearer's SRTP media, joined on loopback.
    pub bearer_media_group: Option<SocketAddrV4>,
    /// The ME key store file.
    pub key_store_path: PathBuf,
    /// Keep MRK, MSK and MTK in the ME over a power cycle (TS 33.246 §6.1 leaves it to the ME).
    pub keep_keys_at_power_down: bool,
    /// Force a key-management path instead of [`choose_path`]'s reading of EF.UST.
    pub path: Option<KeyManagementPath>,
    /// PIN1, verified at power-on; `None` when the card needs none verified by the UE.
    pub pin1: Option<String>,
    /// The SRTP policy of the MBMS streams (the MKI length is set by the receiver).
    pub srtp_policy: Policy,
    /// How many decrypted frames [`Ue::frames`] keeps (the media digest covers all).
    pub frames_kept: usize,
    /// Time limit of one HTTP exchange (and of one SIP transaction).
    pub http_timeout: Duration,
    /// HTTP to the BM-SC or SIP to the SCF.
    pub signalling: Signalling,
    /// The loopback address HTTP requests leave from (the BM-SC pushes MSKs to the request's
    /// source address, so several UEs of one host each need their own); `None`: the system's
    /// choice.
    pub http_source: Option<std::net::IpAddr>,
}

impl UeConfig {
    /// A configuration with ephemeral loopback ports, no services, keys dropped at power-down, the
    /// path from EF.UST, AES-CM-128 / HMAC-SHA1-80 SRTP.
    pub fn new(bsf_url: &str, bmsc_url: &str, bmsc_fqdn: &str, key_store_path: impl Into<PathBuf>) -> Self {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        UeConfig {
            bsf_url: bsf_url.to_owned(),
            bmsc_url: bmsc_url.to_owned(),
            bmsc_fqdn: bmsc_fqdn.to_owned(),
            service_ids: Vec::new(),
            mikey_bind: loopback,
            media_bind: loopback,
            bearer_mikey_group: None,
            bearer_media_group: None,
            key_store_path: key_store_path.into(),
            keep_keys_at_power_down: false,
            path: None,
            pin1: None,
            srtp_policy: Policy::new(CryptoSuite::Aes128CmHmacSha1_80),
            frames_kept: 100_000,
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            signalling: Signalling::Http,
            http_source: None,
        }
    }

    /// The NAF whose keys the UE uses: the BM-SC, or with SIP the SCF.
    pub fn naf_fqdn(&self) -> &str {
        match &self.signalling {
            Signalling::Http => &self.bmsc_fqdn,
            Signalling::Sip { naf_fqdn, .. } => naf_fqdn,
        }
    }
}

/// Counters of a UE since it was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UeStats {
    /// SRTP datagrams received.
    pub packets_received: u64,
    /// SRTP packets unprotected.
    pub packets_decrypted: u64,
    /// SRTP packets refused (unknown MKI, authentication, replay, malformed).
    pub packets_failed: u64,
    /// Of [`Self::packets_failed`]: those whose MKI named no MTK the UE held within
    /// [`UNKEYED_PACKET_HOLD`] (media sent before the UE had its keys, or under an MTK whose
    /// message never came); the others failed authentication, replay or parsing.
    pub packets_unkeyed: u64,
    /// MSKs accepted (MIKEY MSK messages with a key).
    pub msk_count: u64,
    /// MTKs accepted.
    pub mtk_count: u64,
    /// MIKEY datagrams received.
    pub mikey_received: u64,
    /// MIKEY datagrams malformed or refused (MAC, replay, unknown key, expired MUK).
    pub mikey_dropped: u64,
    /// Verification messages sent back.
    pub verifications_sent: u64,
    /// Solicited pulls accepted.
    pub solicited_pulls: u64,
    /// Basic MSK requests sent (over HTTP or SIP).
    pub basic_msk_requests: u64,
    /// GBA bootstraps the UE ran on its own: no usable keys (none yet, lost at power-down), key
    /// lifetime over, or B-TID refused by the BM-SC.
    pub rebootstraps: u64,
    /// Failed HTTP procedures during [`Ue::poll`] (counted, logged, not fatal).
    pub network_errors: u64,
    /// Datagrams dropped because the UE did not poll fast enough.
    pub datagrams_overflowed: u64,
}

impl UeStats {
    /// The counts since `earlier`.
    pub fn since(&self, earlier: &UeStats) -> UeStats {
        UeStats {
            packets_received: self.packets_received - earlier.packets_received,
            packets_decrypted: self.packets_decrypted - earlier.packets_decrypted,
            packets_failed: self.packets_failed - earlier.packets_failed,
            packets_unkeyed: self.packets_unkeyed - earlier.packets_unkeyed,
            msk_count: self.msk_count - earlier.msk_count,
            mtk_count: self.mtk_count - earlier.mtk_count,
            mikey_received: self.mikey_received - earlier.mikey_received,
            mikey_dropped: self.mikey_dropped - earlier.mikey_dropped,
            verifications_sent: self.verifications_sent - earlier.verifications_sent,
            solicited_pulls: self.solicited_pulls - earlier.solicited_pulls,
            basic_msk_requests: self.basic_msk_requests - earlier.basic_msk_requests,
            rebootstraps: self.rebootstraps - earlier.rebootstraps,
            network_errors: self.network_errors - earlier.network_errors,
            datagrams_overflowed: self.datagrams_overflowed - earlier.datagrams_overflowed,
        }
    }
}

/// MTK installs [`Ue::mtk_installs`] keeps.
pub const MTK_INSTALLS_KEPT: usize = 4096;

/// An MTK handed to the SRTP receiver, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MtkInstall {
    /// Its Key Domain.
    pub key_domain_id: KeyDomainId,
    /// The MSK it was derived under.
    pub msk_id: MskId,
    /// Its MTK ID.
    pub mtk_id: mikey::mbms::MtkId,
    /// When the UE installed it.
    pub at: Instant,
}

/// One decrypted media frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedFrame {
    /// RTP SSRC.
    pub ssrc: u32,
    /// RTP sequence number.
    pub sequence_number: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// The RTP payload (padding removed).
    pub payload: Vec<u8>,
}

/// What [`Ue::derive_naf_keys`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NafKeysReport {
    /// The B-TID the keys belong to.
    pub btid: String,
    /// Their key lifetime.
    pub lifetime: String,
    /// The BM-SC FQDN derived for.
    pub naf_fqdn: String,
    /// The path (UICC-based: the card keeps Ks_int_NAF as MUK; ME-based: MUK and MRK stored).
    pub path: KeyManagementPath,
    /// Wall time.
    pub elapsed: Duration,
}

/// What [`Ue::register`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterReport {
    /// The B-TID used.
    pub btid: String,
    /// Services the BM-SC accepted (status 200).
    pub accepted: Vec<String>,
    /// Services refused, with their status codes.
    pub refused: Vec<(String, u16)>,
    /// GBA ran again first (expired keys or a refused B-TID).
    pub rebootstrapped: bool,
    /// Wall time.
    pub elapsed: Duration,
}

/// What [`Ue::msk_request`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MskRequestReport {
    /// Every key ID with its status code ([`mbms_key_management::STATUS_OK`]: the MSK is pushed over UDP).
    pub statuses: Vec<(MskKeyId, u16)>,
    /// GBA ran again first.
    pub rebootstrapped: bool,
    /// Wall time.
    pub elapsed: Duration,
}

/// What [`Ue::poll`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollReport {
    /// The counters' change during the poll.
    pub delta: UeStats,
    /// Wall time.
    pub elapsed: Duration,
}

/// What [`Ue::power_cycle`] and [`Ue::insert_card`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardReport {
    /// The card's ICCID.
    pub iccid: String,
    /// What the ME key store made of it.
    pub change: CardChange,
    /// The key-management path now in use.
    pub path: KeyManagementPath,
    /// A bootstrap survived (GBA_U on the card; or MRK kept in the ME store).
    pub bootstrap_kept: bool,
    /// Wall time.
    pub elapsed: Duration,
}

/// What became of one SRTP packet.
enum MediaOutcome {
    /// Unprotected: the RTP packet.
    Decrypted(Vec<u8>),
    /// Its MKI names no MTK held (yet).
    NoKey,
    /// Refused (authentication, replay, malformed).
    Refused(Error),
}

/// Where a datagram came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Mikey,
    Media,
}

struct Datagram {
    source: Source,
    from: SocketAddr,
    data: Vec<u8>,
}

/// The GBA keys the HTTP requests use: B-TID, lifetime, MRK.
struct Session {
    btid: String,
    lifetime: String,
    expires_unix: i64,
    mrk: Mrk,
}

/// The socket side: two threads feeding one queue.
struct Sockets {
    mikey: UdpSocket,
    mikey_addr: SocketAddr,
    media_addr: SocketAddr,
    queue: Receiver<Datagram>,
    stop: Arc<AtomicBool>,
    overflow: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for Sockets {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn bind_loopback(addr: SocketAddr, what: &'static str) -> Result<UdpSocket> {
    if !addr.ip().is_loopback() {
        return Err(Error::InvalidInput(format!("the {what} socket binds only loopback addresses")));
    }
    UdpSocket::bind(addr).map_err(|source| Error::Io { context: what, source })
}

/// A socket bound to a multicast `group` and joined on the loopback interface; several UEs of one
/// host share the group (SO_REUSEADDR).
fn join_loopback_group(group: SocketAddrV4, what: &'static str) -> Result<UdpSocket> {
    if !group.ip().is_multicast() {
        return Err(Error::InvalidInput(format!("the {what} group {group} is not a multicast address")));
    }
    let io = |source| Error::Io { context: what, source };
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))
            .map_err(io)?;
    socket.set_reuse_address(true).map_err(io)?;
    socket.bind(&SocketAddr::V4(group).into()).map_err(io)?;
    socket.join_multicast_v4(group.ip(), &Ipv4Addr::LOCALHOST).map_err(io)?;
    Ok(socket.into())
}

fn spawn_reader(
    socket: UdpSocket,
    source: Source,
    tx: SyncSender<Datagram>,
    stop: Arc<AtomicBool>,
    overflow: Arc<AtomicU64>,
) -> Result<JoinHandle<()>> {
    socket
        .set_read_timeout(Some(SOCKET_TICK))
        .map_err(|source| Error::Io { context: "UE socket timeout", source })?;
    std::thread::Builder::new()
        .name(format!("ue {source:?} socket"))
        .spawn(move || {
            let mut buf = vec![0u8; DATAGRAM_MAX];
            while !stop.load(Ordering::Relaxed) {
                match socket.recv_from(&mut buf) {
                    Ok((n, from)) => {
                        let data = buf.get(..n).unwrap_or_default().to_vec();
                        match tx.try_send(Datagram { source, from, data }) {
                            Ok(()) => {}
                            Err(TrySendError::Full(_)) => {
                                overflow.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(TrySendError::Disconnected(_)) => break,
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(e) => {
                        tracing::warn!(?source, %e, "UE socket receive failed");
                        std::thread::sleep(SOCKET_TICK);
                    }
                }
            }
        })
        .map_err(|source| Error::Io { context: "UE socket thread", source })
}

impl Sockets {
    fn open(config: &UeConfig) -> Result<Self> {
        let mikey = bind_loopback(config.mikey_bind, "MIKEY socket")?;
        let media = bind_loopback(config.media_bind, "media socket")?;
        let groups = [
            (config.bearer_mikey_group, Source::Mikey, "MTK bearer group"),
            (config.bearer_media_group, Source::Media, "media bearer group"),
        ];
        let mut joined = Vec::new();
        for (group, source, what) in groups {
            if let Some(g) = group {
                joined.push((join_loopback_group(g, what)?, source));
            }
        }
        let addr = |s: &UdpSocket| {
            s.local_addr().map_err(|source| Error::Io { context: "UE socket address", source })
        };
        let (mikey_addr, media_addr) = (addr(&mikey)?, addr(&media)?);
        let (tx, queue) = mpsc::sync_channel(DATAGRAM_QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let overflow = Arc::new(AtomicU64::new(0));
        let reader =
            mikey.try_clone().map_err(|source| Error::Io { context: "MIKEY socket clone", source })?;
        let mut sockets = Sockets {
            mikey,
            mikey_addr,
            media_addr,
            queue,
            stop: stop.clone(),
            overflow: overflow.clone(),
            threads: Vec::new(),
        };
        sockets.threads.push(spawn_reader(
            reader,
            Source::Mikey,
            tx.clone(),
            stop.clone(),
            overflow.clone(),
        )?);
        for (socket, source) in joined {
            sockets.threads.push(spawn_reader(socket, source, tx.clone(), stop.clone(), overflow.clone())?);
        }
        sockets.threads.push(spawn_reader(media, Source::Media, tx, stop, overflow)?);
        Ok(sockets)
    }
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The local failures that end a procedure; anything else a network peer caused is counted.
fn is_local_failure(e: &Error) -> bool {
    matches!(
        e,
        Error::Reader(_)
            | Error::Store { .. }
            | Error::State(_)
            | Error::Io { .. }
            | Error::CardPoisoned
            | Error::PinRequired
            | Error::PinBlocked
            | Error::WrongPin { .. }
    )
}

/// The channel of the key-management requests: HTTP Digest to the BM-SC, or SIP to the SCF.
struct Signaller<'a> {
    bmsc: &'a BmscClient,
    sip: Option<&'a mut SipClient>,
}

impl Signaller<'_> {
    fn register(
        &mut self,
        c: &Credentials<'_>,
        service_ids: &[String],
    ) -> Result<mbms_key_management::RegisterResponse> {
        match self.sip.as_deref_mut() {
            Some(sip) => sip.register(c.btid, service_ids),
            None => self.bmsc.register(c, service_ids),
        }
    }

    fn deregister(
        &mut self,
        c: &Credentials<'_>,
        service_ids: &[String],
    ) -> Result<mbms_key_management::RegisterResponse> {
        match self.sip.as_deref_mut() {
            Some(sip) => sip.deregister(c.btid, service_ids),
            None => self.bmsc.deregister(c, service_ids),
        }
    }

    fn msk_request(
        &mut self,
        c: &Credentials<'_>,
        key_ids: &[MskKeyId],
    ) -> Result<mbms_key_management::MskResponse> {
        match self.sip.as_deref_mut() {
            Some(sip) => sip.msk_request(c.btid, key_ids),
            None => self.bmsc.msk_request(c, key_ids),
        }
    }
}

/// A UE on one key-management path.
pub struct Ue<R: Reader> {
    config: UeConfig,
    card: Card<R>,
    iccid: String,
    impi: String,
    path: KeyManagementPath,
    gba: GbaClient<R>,
    uicc: UiccBased<R>,
    me: MeBased,
    ub: UbClient,
    bmsc: BmscClient,
    /// The SIP UA when [`UeConfig::signalling`] is SIP.
    sip: Option<SipClient>,
    naf_id: NafId,
    /// B-TID and lifetime of the last completed bootstrap the UE knows of.
    bootstrapped: Option<(String, String)>,
    session: Option<Session>,
    registered: Vec<String>,
    /// The B-TID the registrations were made with.
    registered_btid: Option<String>,
    receiver: MbmsReceiver,
    streams: Vec<(KeyDomainId, u16, StreamId)>,
    parked: VecDeque<(KeyDomainId, MskId, Vec<u8>)>,
    requested: HashMap<MskKeyId, Instant>,
    next_renewal: Option<Instant>,
    sockets: Sockets,
    stats: UeStats,
    frames: VecDeque<ReceivedFrame>,
    media_hash: Sha256,
    mtk_installs: VecDeque<MtkInstall>,
    /// SRTP packets naming no MTK held yet, with their arrival time ([`UNKEYED_PACKET_HOLD`]).
    unkeyed: VecDeque<(Instant, Vec<u8>)>,
}

impl<R: Reader> core::fmt::Debug for Ue<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Ue")
            .field("iccid", &self.iccid)
            .field("path", &self.path)
            .field("btid", &self.session.as_ref().map(|s| &s.btid))
            .field("registered", &self.registered)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn variant_of(path: KeyManagementPath) -> GbaVariant {
    match path {
        KeyManagementPath::UiccBased => GbaVariant::GbaU,
        KeyManagementPath::MeBased => GbaVariant::GbaMe,
    }
}

/// The card in `reader` with PIN1 verified, and its ICCID.
fn power_on_card<R: Reader>(card: &Card<R>, pin1: Option<&str>) -> Result<String> {
    if let Some(pin) = pin1 {
        card.verify_pin(pin)?;
    }
    card.iccid()
}

impl<R: Reader> Ue<R> {
    /// A UE with the card in `reader` (powered): PIN1 verified, the key-management path chosen,
    /// the ME key store opened and bound to the card's ICCID, the UDP sockets bound.
    pub fn new(reader: R, config: UeConfig) -> Result<Self> {
        let card = Card::new(reader);
        let iccid = power_on_card(&card, config.pin1.as_deref())?;
        let path = choose_path(&card, config.path)?;
        let impi = card.impi()?;
        let mut store = KeyStore::open(&config.key_store_path)?;
        store.on_card_inserted(&iccid)?;
        let naf_id = NafId::new(config.naf_fqdn(), UaSecurityProtocolId::MBMS)?;
        let ub = UbClient::with_source(&config.bsf_url, config.http_timeout, config.http_source)?;
        let bmsc = BmscClient::with_source(
            &config.bmsc_url,
            &config.bmsc_fqdn,
            config.http_timeout,
            config.http_source,
        )?;
        let sip = match &config.signalling {
            Signalling::Http => None,
            Signalling::Sip { pcscf, scf_uri, impu, .. } => Some(SipClient::new(
                SipConfig { pcscf: *pcscf, scf_uri: scf_uri.clone(), impu: impu.clone() },
                config.http_timeout,
            )?),
        };
        let sockets = Sockets::open(&config)?;
        let mut ue = Ue {
            gba: GbaClient::new(card.clone(), variant_of(path)),
            uicc: UiccBased::new(card.clone()),
            me: MeBased::new(store),
            card,
            iccid,
            impi,
            path,
            ub,
            bmsc,
            sip,
            naf_id,
            bootstrapped: None,
            session: None,
            registered: Vec::new(),
            registered_btid: None,
            receiver: MbmsReceiver::new(),
            streams: Vec::new(),
            parked: VecDeque::new(),
            requested: HashMap::new(),
            next_renewal: None,
            sockets,
            stats: UeStats::default(),
            frames: VecDeque::new(),
            media_hash: Sha256::new(),
            mtk_installs: VecDeque::new(),
            unkeyed: VecDeque::new(),
            config,
        };
        ue.recover_bootstrap();
        tracing::info!(iccid = %ue.iccid, path = %ue.path, mikey = %ue.sockets.mikey_addr, media = %ue.sockets.media_addr, "UE ready");
        Ok(ue)
    }

    // --- accessors ------------------------------------------------------------------------------

    /// The key-management path.
    pub fn path(&self) -> KeyManagementPath {
        self.path
    }

    /// The card.
    pub fn card(&self) -> &Card<R> {
        &self.card
    }

    /// The card's ICCID.
    pub fn iccid(&self) -> &str {
        &self.iccid
    }

    /// The IMPI GBA runs with.
    pub fn impi(&self) -> &str {
        &self.impi
    }

    /// The address the BM-SC sends MIKEY to.
    pub fn mikey_addr(&self) -> SocketAddr {
        self.sockets.mikey_addr
    }

    /// The address the BM-SC sends SRTP to.
    pub fn media_addr(&self) -> SocketAddr {
        self.sockets.media_addr
    }

    /// The B-TID of the GBA keys in use, if any.
    pub fn btid(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.btid.as_str()).or(self.bootstrapped.as_ref().map(|b| b.0.as_str()))
    }

    /// The services the BM-SC accepted.
    pub fn registered(&self) -> &[String] {
        &self.registered
    }

    /// The counters.
    pub fn stats(&self) -> UeStats {
        let mut s = self.stats;
        s.datagrams_overflowed = self.sockets.overflow.load(Ordering::Relaxed);
        s
    }

    /// The last [`UeConfig::frames_kept`] decrypted frames, oldest first.
    pub fn frames(&self) -> impl Iterator<Item = &ReceivedFrame> {
        self.frames.iter()
    }

    /// The last [`MTK_INSTALLS_KEPT`] MTKs handed to the SRTP receiver, oldest first (MTKs
    /// reloaded from the ME key store at power-on included).
    pub fn mtk_installs(&self) -> impl Iterator<Item = &MtkInstall> {
        self.mtk_installs.iter()
    }

    /// SHA-256 over every decrypted payload, in the order of decryption.
    pub fn media_digest(&self) -> [u8; 32] {
        self.media_hash.clone().finalize().into()
    }

    /// The ME key store (its keys are used on the ME-based path only).
    pub fn key_store(&self) -> &KeyStore {
        self.me.store()
    }

    /// The SRTP receiver.
    pub fn receiver(&self) -> &MbmsReceiver {
        &self.receiver
    }

    /// The configuration.
    pub fn config(&self) -> &UeConfig {
        &self.config
    }

    fn km(&mut self) -> &mut dyn MbmsKeyManagement {
        match self.path {
            KeyManagementPath::UiccBased => &mut self.uicc,
            KeyManagementPath::MeBased => &mut self.me,
        }
    }

    // --- GBA ------------------------------------------------------------------------------------

    /// Runs GBA over Ub (GBA_U on the UICC-based path, GBA_ME on the ME-based one). The NAF keys
    /// of the previous bootstrap are no longer used; call [`Self::derive_naf_keys`] next.
    pub fn bootstrap(&mut self) -> Result<BootstrapReport> {
        self.session = None;
        self.bootstrapped = None;
        let report = self.ub.bootstrap(&mut self.gba, &self.impi)?;
        self.bootstrapped = Some((report.btid.clone(), report.lifetime.clone()));
        Ok(report)
    }

    /// Derives the BM-SC's NAF keys (NAF_Id = FQDN ‖ MBMS Ua protocol id): on the UICC-based path
    /// the card keeps Ks_int_NAF as MUK and gives Ks_ext_NAF = MRK; on the ME-based path MUK and
    /// MRK are derived and stored in the ME.
    pub fn derive_naf_keys(&mut self) -> Result<NafKeysReport> {
        let start = Instant::now();
        let keys = self.gba.naf_keys(&self.naf_id, &self.impi)?;
        let expires = parse_key_lifetime(keys.lifetime.as_bytes())
            .ok_or_else(|| Error::InvalidInput(format!("key lifetime '{}' unreadable", keys.lifetime)))?;
        let uicc_based = self.path == KeyManagementPath::UiccBased;
        if !uicc_based {
            self.me.install_naf_keys(&keys)?;
        }
        self.session = Some(Session {
            btid: keys.btid.clone(),
            lifetime: keys.lifetime.clone(),
            expires_unix: expires.unix_seconds(),
            mrk: keys.mrk(uicc_based),
        });
        self.bootstrapped = Some((keys.btid.clone(), keys.lifetime.clone()));
        tracing::info!(btid = %keys.btid, path = %self.path, "NAF keys of the BM-SC derived");
        Ok(NafKeysReport {
            btid: keys.btid.clone(),
            lifetime: keys.lifetime.clone(),
            naf_fqdn: self.naf_id.fqdn().to_owned(),
            path: self.path,
            elapsed: start.elapsed(),
        })
    }

    /// Whether the GBA keys in use (or the last bootstrap) have passed their key lifetime.
    pub fn gba_keys_expired(&self) -> bool {
        let now = unix_now();
        match (&self.session, &self.bootstrapped) {
            (Some(s), _) => now >= s.expires_unix,
            (None, Some((_, lifetime))) => {
                parse_key_lifetime(lifetime.as_bytes()).is_none_or(|t| now >= t.unix_seconds())
            }
            (None, None) => true,
        }
    }

    /// Makes sure there are usable GBA keys: derives NAF keys from a live bootstrap, or bootstraps
    /// (again). Returns true when it bootstrapped again although a bootstrap had been done.
    fn ensure_session(&mut self) -> Result<bool> {
        if self.session.is_some() && !self.gba_keys_expired() {
            return Ok(false);
        }
        if self.session.is_none() && self.bootstrapped.is_some() && !self.gba_keys_expired() {
            self.derive_naf_keys()?;
            return Ok(false);
        }
        self.rebootstrap("no usable GBA keys (none yet, or key lifetime over)")?;
        Ok(true)
    }

    /// A bootstrap the UE runs on its own (counted in [`UeStats::rebootstraps`]).
    fn rebootstrap(&mut self, why: &str) -> Result<()> {
        tracing::info!(why, "bootstrapping");
        self.bootstrap()?;
        self.derive_naf_keys()?;
        self.stats.rebootstraps += 1;
        Ok(())
    }

    /// Runs `op` with the current credentials: after a refused B-TID, bootstraps again and retries
    /// once. With `reregister`, when the B-TID is no longer the one the registrations were made
    /// with, the registered services are registered again first, so that the BM-SC knows the new
    /// B-TID (its registrations are per B-TID).
    fn with_credentials<T>(
        &mut self,
        reregister: bool,
        mut op: impl FnMut(&mut Signaller<'_>, &Credentials<'_>) -> Result<T>,
    ) -> Result<(T, bool)> {
        let mut rebootstrapped = self.ensure_session()?;
        let mut attempt = 0;
        loop {
            let current = self.session.as_ref().map(|s| s.btid.as_str());
            if reregister && !self.registered.is_empty() && self.registered_btid.as_deref() != current {
                self.reregister()?;
            }
            let result = {
                let session = self.session.as_ref().ok_or(Error::NoBootstrap("BM-SC request"))?;
                let credentials = Credentials {
                    btid: &session.btid,
                    mrk: &session.mrk,
                    uicc_realm: self.path == KeyManagementPath::UiccBased,
                };
                let mut signaller = Signaller { bmsc: &self.bmsc, sip: self.sip.as_mut() };
                op(&mut signaller, &credentials)
            };
            match result {
                Err(Error::BtidRejected { btid }) if attempt == 0 => {
                    attempt += 1;
                    self.rebootstrap(&format!("the network refused B-TID {btid}"))?;
                    rebootstrapped = true;
                }
                other => return other.map(|t| (t, rebootstrapped)),
            }
        }
    }

    /// Registration of the registered services again (after a new bootstrap).
    fn reregister(&mut self) -> Result<()> {
        let session = self.session.as_ref().ok_or(Error::NoBootstrap("registration"))?;
        let credentials = Credentials {
            btid: &session.btid,
            mrk: &session.mrk,
            uicc_realm: self.path == KeyManagementPath::UiccBased,
        };
        let mut signaller = Signaller { bmsc: &self.bmsc, sip: self.sip.as_mut() };
        let response = signaller.register(&credentials, &self.registered)?;
        let accepted: Vec<String> = self
            .registered
            .iter()
            .filter(|s| response.code_of(s) == Some(mbms_key_management::STATUS_OK))
            .cloned()
            .collect();
        tracing::info!(btid = %session.btid, ?accepted, "registered again with the new B-TID");
        self.registered_btid = Some(session.btid.clone());
        self.registered = accepted;
        Ok(())
    }

    // --- HTTP procedures ------------------------------------------------------------------------

    /// MBMS registration of [`UeConfig::service_ids`] (TS 33.246 §6.3.2.1), bootstrapping first when
    /// needed. The BM-SC then pushes the current MSKs; [`Self::poll`] takes them.
    pub fn register(&mut self) -> Result<RegisterReport> {
        let start = Instant::now();
        let services = self.config.service_ids.clone();
        if services.is_empty() {
            return Err(Error::InvalidInput("no User Service ID to register".into()));
        }
        let (response, rebootstrapped) = self.with_credentials(false, |b, c| b.register(c, &services))?;
        let mut report = RegisterReport {
            btid: self.btid().unwrap_or_default().to_owned(),
            accepted: Vec::new(),
            refused: Vec::new(),
            rebootstrapped,
            elapsed: Duration::ZERO,
        };
        for service in &services {
            match response.code_of(service) {
                Some(mbms_key_management::STATUS_OK) => report.accepted.push(service.clone()),
                Some(code) => report.refused.push((service.clone(), code)),
                None => {
                    tracing::warn!(service, "the BM-SC answered nothing for this service");
                    report.refused.push((service.clone(), 0));
                }
            }
        }
        if self.registered_btid.as_deref() != Some(report.btid.as_str()) {
            // Registrations made with an earlier B-TID are not this B-TID's at the BM-SC.
            self.registered.clear();
            self.registered_btid = Some(report.btid.clone());
        }
        for s in &report.accepted {
            if !self.registered.contains(s) {
                self.registered.push(s.clone());
            }
        }
        report.elapsed = start.elapsed();
        tracing::info!(accepted = ?report.accepted, refused = ?report.refused, "registered");
        Ok(report)
    }

    /// MBMS deregistration of every registered service (TS 33.246 §6.3.2.2).
    pub fn deregister(&mut self) -> Result<RegisterReport> {
        let start = Instant::now();
        let services = self.registered.clone();
        if services.is_empty() {
            return Err(Error::InvalidInput("no registered service to deregister".into()));
        }
        let (response, rebootstrapped) = self.with_credentials(true, |b, c| b.deregister(c, &services))?;
        let mut report = RegisterReport {
            btid: self.btid().unwrap_or_default().to_owned(),
            accepted: Vec::new(),
            refused: Vec::new(),
            rebootstrapped,
            elapsed: Duration::ZERO,
        };
        for service in &services {
            match response.code_of(service) {
                Some(mbms_key_management::STATUS_OK) => report.accepted.push(service.clone()),
                code => report.refused.push((service.clone(), code.unwrap_or(0))),
            }
        }
        self.registered.retain(|s| !report.accepted.contains(s));
        if self.registered.is_empty()
            && let Some(sip) = self.sip.as_mut()
            && let Err(e) = sip.bye()
        {
            // The SCF holds nothing for the UE any more; a lost BYE only leaves a stale dialog.
            tracing::warn!(%e, "ending the SIP dialog failed");
        }
        report.elapsed = start.elapsed();
        tracing::info!(deregistered = ?report.accepted, "deregistered");
        Ok(report)
    }

    /// Basic MSK request (TS 33.246 §6.3.2.2.2) for `key_ids`; the MSKs come as MIKEY messages that
    /// [`Self::poll`] takes.
    pub fn msk_request(&mut self, key_ids: &[MskKeyId]) -> Result<MskRequestReport> {
        let start = Instant::now();
        if key_ids.is_empty() {
            return Err(Error::InvalidInput("no key ID to request".into()));
        }
        self.stats.basic_msk_requests += 1;
        let keys = key_ids.to_vec();
        let (response, rebootstrapped) = self.with_credentials(true, |b, c| b.msk_request(c, &keys))?;
        let statuses: Vec<(MskKeyId, u16)> =
            keys.iter().map(|k| (*k, response.code_of(k).unwrap_or(0))).collect();
        tracing::info!(?statuses, "basic MSK request answered");
        Ok(MskRequestReport { statuses, rebootstrapped, elapsed: start.elapsed() })
    }

    // --- datagrams ------------------------------------------------------------------------------

    /// Processes datagrams until `deadline`.
    pub fn poll(&mut self, deadline: Instant) -> Result<PollReport> {
        self.poll_until(deadline, |_| false)
    }

    /// Processes datagrams until `deadline` or until `done` holds for the counters.
    pub fn poll_until(
        &mut self,
        deadline: Instant,
        mut done: impl FnMut(&UeStats) -> bool,
    ) -> Result<PollReport> {
        let start = Instant::now();
        let before = self.stats();
        loop {
            self.renew_if_expired()?;
            self.expire_unkeyed();
            if done(&self.stats()) {
                break;
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) else {
                break;
            };
            let mut wait = self.until_renewal().map_or(left, |t| left.min(t));
            if let Some((at, _)) = self.unkeyed.front() {
                wait = wait.min((*at + UNKEYED_PACKET_HOLD).saturating_duration_since(Instant::now()));
            }
            match self.sockets.queue.recv_timeout(wait) {
                Ok(d) => self.handle(d)?,
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(Error::Io {
                        context: "UE sockets",
                        source: std::io::Error::other("the socket threads ended"),
                    });
                }
            }
        }
        let after = self.stats();
        Ok(PollReport { delta: after.since(&before), elapsed: start.elapsed() })
    }

    /// The end of the key lifetime of the GBA keys in use (or of the last bootstrap), Unix seconds.
    fn keys_expire_unix(&self) -> Option<i64> {
        match (&self.session, &self.bootstrapped) {
            (Some(s), _) => Some(s.expires_unix),
            (None, Some((_, lifetime))) => parse_key_lifetime(lifetime.as_bytes()).map(|t| t.unix_seconds()),
            (None, None) => None,
        }
    }

    /// Registered, and the GBA keys in use have expired (or an earlier renewal failed).
    fn renewal_due(&self) -> bool {
        !self.registered.is_empty()
            && (self.next_renewal.is_some() || self.keys_expire_unix().is_some_and(|t| unix_now() >= t))
    }

    /// How long until [`Self::renew_if_expired`] has something to do.
    fn until_renewal(&self) -> Option<Duration> {
        if self.registered.is_empty() {
            return None;
        }
        if let Some(t) = self.next_renewal {
            return Some(t.saturating_duration_since(Instant::now()));
        }
        let expires = u64::try_from(self.keys_expire_unix()?).unwrap_or(0);
        let expires = UNIX_EPOCH + Duration::from_secs(expires);
        Some(expires.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
    }

    /// When the GBA keys in use have expired while services are registered: bootstrap again (a
    /// new MUK) and register again (TS 33.246 §6.1). A failure is counted and retried after
    /// [`RENEWAL_RETRY`].
    fn renew_if_expired(&mut self) -> Result<()> {
        if !self.renewal_due() || self.next_renewal.is_some_and(|t| Instant::now() < t) {
            return Ok(());
        }
        let result = self.rebootstrap("GBA key lifetime over").and_then(|()| self.reregister());
        match result {
            // Keys that are expired on arrival are not renewed again at once.
            Ok(()) if self.gba_keys_expired() => self.next_renewal = Some(Instant::now() + RENEWAL_RETRY),
            Ok(()) => self.next_renewal = None,
            Err(e) if is_local_failure(&e) => return Err(e),
            Err(e) => {
                self.stats.network_errors += 1;
                self.next_renewal = Some(Instant::now() + RENEWAL_RETRY);
                tracing::warn!(%e, "renewing expired GBA keys failed; trying again later");
            }
        }
        Ok(())
    }

    fn handle(&mut self, d: Datagram) -> Result<()> {
        match d.source {
            Source::Mikey => self.handle_mikey(d.from, &d.data),
            Source::Media => {
                self.handle_media(&d.data);
                Ok(())
            }
        }
    }

    /// A failed step caused by the network: counted and logged; local failures are returned.
    fn network_failure(&mut self, what: &str, e: Error) -> Result<()> {
        if is_local_failure(&e) {
            return Err(e);
        }
        self.stats.network_errors += 1;
        tracing::warn!(what, %e, "network procedure failed");
        Ok(())
    }

    fn handle_mikey(&mut self, from: SocketAddr, data: &[u8]) -> Result<()> {
        self.stats.mikey_received += 1;
        let kind = match classify(data) {
            Ok(k) => k,
            Err(error) => {
                self.stats.mikey_dropped += 1;
                tracing::warn!(%from, len = data.len(), %error, "malformed MIKEY datagram dropped");
                return Ok(());
            }
        };
        match kind {
            MikeyKind::Msk => self.handle_msk(from, data),
            MikeyKind::Mtk => self.handle_mtk(data, true),
        }
    }

    fn handle_msk(&mut self, from: SocketAddr, data: &[u8]) -> Result<()> {
        let outcome = match self.km().msk_update(data) {
            Ok(o) => o,
            Err(e) if is_local_failure(&e) => return Err(e),
            Err(e) => {
                self.stats.mikey_dropped += 1;
                tracing::warn!(%from, %e, "MIKEY MSK message refused");
                return Ok(());
            }
        };
        if let Some(v) = outcome.verification() {
            match self.sockets.mikey.send_to(v, from) {
                Ok(_) => self.stats.verifications_sent += 1,
                Err(e) => tracing::warn!(%from, %e, "sending the MIKEY verification message failed"),
            }
        }
        match outcome {
            MskOutcome::Msk { key_domain_id, msk_id, .. } => {
                self.stats.msk_count += 1;
                tracing::info!(?key_domain_id, ?msk_id, path = %self.path, "MSK stored");
                self.requested.remove(&MskKeyId { key_domain_id, msk_id });
                let waiting: Vec<Vec<u8>> = {
                    let (take, keep): (Vec<_>, Vec<_>) =
                        self.parked.drain(..).partition(|(kd, id, _)| *kd == key_domain_id && *id == msk_id);
                    self.parked = keep.into();
                    take.into_iter().map(|(_, _, m)| m).collect()
                };
                for message in waiting {
                    self.handle_mtk(&message, false)?;
                }
                Ok(())
            }
            MskOutcome::SolicitedPull { key_domain_id, key_group, .. } => {
                self.stats.solicited_pulls += 1;
                tracing::info!(?key_domain_id, key_group, "solicited pull: basic MSK request");
                let key = MskKeyId::any_in_group(key_domain_id, key_group);
                match self.msk_request(&[key]) {
                    Ok(_) => Ok(()),
                    Err(e) => self.network_failure("basic MSK request after a solicited pull", e),
                }
            }
        }
    }

    fn handle_mtk(&mut self, data: &[u8], may_request: bool) -> Result<()> {
        let mtk = match self.km().mtk_generate(data) {
            Ok(m) => m,
            Err(Error::KeyNotFound) if may_request => {
                return self.mtk_for_unknown_msk(data);
            }
            Err(e) if is_local_failure(&e) => return Err(e),
            Err(e) => {
                self.stats.mikey_dropped += 1;
                tracing::warn!(%e, "MIKEY MTK message refused");
                return Ok(());
            }
        };
        self.stats.mtk_count += 1;
        self.add_mtk(&mtk)
    }

    fn add_mtk(&mut self, mtk: &MtkOutcome) -> Result<()> {
        let key_group = mtk.msk_id.key_group();
        if !self.streams.iter().any(|(kd, kg, _)| *kd == mtk.key_domain_id && *kg == key_group) {
            let id = self.streams.len() as StreamId;
            self.receiver.add_stream(id, mtk.key_domain_id, key_group, self.config.srtp_policy.clone())?;
            self.streams.push((mtk.key_domain_id, key_group, id));
        }
        self.receiver.add_mtk(mtk)?;
        if self.mtk_installs.len() >= MTK_INSTALLS_KEPT {
            self.mtk_installs.pop_front();
        }
        self.mtk_installs.push_back(MtkInstall {
            key_domain_id: mtk.key_domain_id,
            msk_id: mtk.msk_id,
            mtk_id: mtk.mtk_id,
            at: Instant::now(),
        });
        tracing::debug!(msk_id = ?mtk.msk_id, mtk_id = ?mtk.mtk_id, "MTK to the SRTP receiver");
        for (at, packet) in std::mem::take(&mut self.unkeyed) {
            match self.try_unprotect(&packet) {
                MediaOutcome::NoKey => self.unkeyed.push_back((at, packet)),
                outcome => self.count_media(outcome),
            }
        }
        Ok(())
    }

    /// Refuses the unkeyed packets older than [`UNKEYED_PACKET_HOLD`].
    fn expire_unkeyed(&mut self) {
        let now = Instant::now();
        while self.unkeyed.front().is_some_and(|(at, _)| now.duration_since(*at) >= UNKEYED_PACKET_HOLD) {
            self.unkeyed.pop_front();
            self.stats.packets_failed += 1;
            self.stats.packets_unkeyed += 1;
            tracing::debug!("SRTP packet for no MTK the UE holds");
        }
    }

    fn try_unprotect(&mut self, data: &[u8]) -> MediaOutcome {
        for &(_, _, id) in &self.streams {
            let mut packet = data.to_vec();
            match self.receiver.unprotect(id, &mut packet) {
                Ok(()) => return MediaOutcome::Decrypted(packet),
                Err(Error::Srtp(srtp::Error::UnknownMki)) => continue,
                Err(e) => return MediaOutcome::Refused(e),
            }
        }
        MediaOutcome::NoKey
    }

    fn count_media(&mut self, outcome: MediaOutcome) {
        match outcome {
            MediaOutcome::Decrypted(packet) => {
                self.stats.packets_decrypted += 1;
                self.record_frame(&packet);
            }
            MediaOutcome::Refused(e) => {
                self.stats.packets_failed += 1;
                tracing::debug!(%e, "SRTP packet refused");
            }
            MediaOutcome::NoKey => {}
        }
    }

    /// An MTK message naming an MSK the UE does not hold: park it and ask the BM-SC for the MSK.
    fn mtk_for_unknown_msk(&mut self, data: &[u8]) -> Result<()> {
        let Ok(msg) = mikey::mbms::parse_mtk_message(data) else {
            self.stats.mikey_dropped += 1;
            return Ok(());
        };
        let key = MskKeyId { key_domain_id: msg.key_domain_id(), msk_id: msg.msk_id() };
        if self.parked.len() >= PARKED_MTK_MESSAGES {
            self.parked.pop_front();
            self.stats.mikey_dropped += 1;
        }
        self.parked.push_back((key.key_domain_id, key.msk_id, data.to_vec()));
        let now = Instant::now();
        if self.requested.get(&key).is_some_and(|t| now.duration_since(*t) < MSK_REQUEST_HOLDOFF) {
            return Ok(());
        }
        self.requested.insert(key, now);
        tracing::info!(msk_id = ?key.msk_id, "MTK message for an unknown MSK: basic MSK request");
        match self.msk_request(&[key]) {
            Ok(_) => Ok(()),
            Err(e) => self.network_failure("basic MSK request for an unknown MSK", e),
        }
    }

    fn handle_media(&mut self, data: &[u8]) {
        self.stats.packets_received += 1;
        match self.try_unprotect(data) {
            MediaOutcome::NoKey => {
                if self.unkeyed.len() >= UNKEYED_PACKETS_KEPT {
                    self.unkeyed.pop_front();
                    self.stats.packets_failed += 1;
                    self.stats.packets_unkeyed += 1;
                    tracing::debug!("SRTP packet for no MTK the UE holds");
                }
                self.unkeyed.push_back((Instant::now(), data.to_vec()));
            }
            outcome => self.count_media(outcome),
        }
    }

    fn record_frame(&mut self, packet: &[u8]) {
        let Ok(header) = srtp::rtp::RtpHeader::parse(packet) else { return };
        let Ok(payload) = header.payload(packet) else { return };
        self.media_hash.update(payload);
        if self.config.frames_kept == 0 {
            return;
        }
        if self.frames.len() >= self.config.frames_kept {
            self.frames.pop_front();
        }
        self.frames.push_back(ReceivedFrame {
            ssrc: header.ssrc,
            sequence_number: header.sequence_number,
            timestamp: header.timestamp,
            payload: payload.to_vec(),
        });
    }

    // --- power and card ---------------------------------------------------------------------------

    /// Power-down and power-up of the UE (TS 33.246 §6.1): the ME key store keeps or drops MRK,
    /// MSK and MTK by [`UeConfig::keep_keys_at_power_down`] (the last used MUK always stays); what
    /// the ME held in memory (SRTP contexts, Ks of GBA_ME, NAF keys) is gone; the card is powered
    /// off and on and PIN1 verified again. GBA_U keys survive on the card.
    pub fn power_cycle(&mut self) -> Result<CardReport> {
        let start = Instant::now();
        self.me.store_mut().power_down(self.config.keep_keys_at_power_down)?;
        self.card.with_session(|s| -> Result<()> {
            s.reader_mut().power_off()?;
            s.reader_mut().power_on()?;
            Ok(())
        })??;
        let iccid = power_on_card(&self.card, self.config.pin1.as_deref())?;
        self.restart_me(self.card.clone(), iccid, self.path, self.impi.clone(), start)
    }

    /// Power-down at the end of the UE's life (TS 33.246 §6.1): the ME key store keeps or drops
    /// MRK, MSK and MTK by [`UeConfig::keep_keys_at_power_down`] (the last used MUK always stays)
    /// and is saved; the card is powered off.
    pub fn power_down(&mut self) -> Result<()> {
        self.me.store_mut().power_down(self.config.keep_keys_at_power_down)?;
        self.card.with_session(|s| s.reader_mut().power_off())??;
        Ok(())
    }

    /// Deletes every key of the ME key store and saves it (the ICCID binding stays): what the ME
    /// does when the subscriber behind the same ICCID changed (another IMPI). Registrations are
    /// forgotten.
    pub fn wipe_me_keys(&mut self) -> Result<()> {
        let store = self.me.store_mut();
        store.wipe_keys();
        store.save()?;
        self.registered.clear();
        self.registered_btid = None;
        self.session = None;
        self.bootstrapped = None;
        self.recover_bootstrap();
        Ok(())
    }

    /// A (possibly different) card is inserted and the UE powers on with it. Another ICCID wipes
    /// every MBMS key of the ME (TS 33.246 §6.1) and forgets the registrations; UICC-based keys
    /// went away with the old card.
    pub fn insert_card(&mut self, reader: R) -> Result<CardReport> {
        let start = Instant::now();
        let card = Card::new(reader);
        let iccid = power_on_card(&card, self.config.pin1.as_deref())?;
        let path = choose_path(&card, self.config.path)?;
        let impi = card.impi()?;
        self.restart_me(card, iccid, path, impi, start)
    }

    /// Binds the key store to the card and starts the ME's volatile state afresh. Everything that
    /// can fail on the card or the file runs before anything in the UE changes.
    fn restart_me(
        &mut self,
        card: Card<R>,
        iccid: String,
        path: KeyManagementPath,
        impi: String,
        start: Instant,
    ) -> Result<CardReport> {
        // The ME holds its key store's file (and its lock) across the power cycle; what it had in
        // memory is read back from the file.
        self.me.store_mut().reload()?;
        let change = self.me.store_mut().on_card_inserted(&iccid)?;
        if change != CardChange::SameCard {
            self.registered.clear();
            self.registered_btid = None;
        }
        self.gba = GbaClient::new(card.clone(), variant_of(path));
        self.uicc = UiccBased::new(card.clone());
        self.card = card;
        self.path = path;
        self.impi = impi;
        self.iccid = iccid;
        self.session = None;
        self.bootstrapped = None;
        self.receiver = MbmsReceiver::new();
        self.streams.clear();
        self.unkeyed.clear();
        self.parked.clear();
        self.requested.clear();
        self.next_renewal = None;
        while self.sockets.queue.try_recv().is_ok() {}
        self.recover_bootstrap();
        if self.path == KeyManagementPath::MeBased {
            self.reload_stored_mtks()?;
        }
        let report = CardReport {
            iccid: self.iccid.clone(),
            change,
            path: self.path,
            bootstrap_kept: self.bootstrapped.is_some(),
            elapsed: start.elapsed(),
        };
        tracing::info!(?report, "UE powered on");
        Ok(report)
    }

    /// What survives power-off: the GBA_U bootstrap in EF.GBABP; on the ME-based path an MRK kept
    /// in the store (with its B-TID and lifetime).
    fn recover_bootstrap(&mut self) {
        match self.path {
            KeyManagementPath::UiccBased => {
                if let Ok(b) = self.gba.bootstrap_info() {
                    self.bootstrapped = Some(b);
                }
            }
            KeyManagementPath::MeBased => {
                let idi = self.config.naf_fqdn().as_bytes();
                let now = unix_now();
                let kept = self.me.store().mrks().iter().rev().find_map(|m| {
                    let expires = parse_key_lifetime(m.lifetime.as_bytes())?.unix_seconds();
                    let btid = String::from_utf8(m.idr.clone()).ok()?;
                    (m.idi == idi && now < expires).then(|| Session {
                        btid,
                        lifetime: m.lifetime.clone(),
                        expires_unix: expires,
                        mrk: m.mrk.clone(),
                    })
                });
                if let Some(s) = kept {
                    self.bootstrapped = Some((s.btid.clone(), s.lifetime.clone()));
                    self.session = Some(s);
                }
            }
        }
        if self.gba_keys_expired() {
            self.session = None;
            self.bootstrapped = None;
        }
    }

    /// The MTKs the ME store kept over power-down, back into the SRTP receiver.
    fn reload_stored_mtks(&mut self) -> Result<()> {
        let mtks: Vec<MtkOutcome> = self
            .me
            .store()
            .mtks()
            .iter()
            .map(|t| MtkOutcome {
                key_domain_id: t.key_domain_id,
                msk_id: t.msk_id,
                mtk_id: t.mtk_id,
                mtk: Mtk::new(*t.mtk.as_bytes()),
                salt: t.salt.as_ref().map(|s| MtkSalt::new(*s.as_bytes())),
            })
            .collect();
        for m in &mtks {
            self.add_mtk(m)?;
        }
        Ok(())
    }
}
