//! The KMS of TS 33.328 §6.2.3 and Annexes A / B as a NAF (TS 33.220): MIKEY-TICKET (RFC 6043)
//! Ticket Request and Ticket Resolve over HTTP on loopback, the 3GPP ticket (type 2, subtype 0,
//! version 0), and Zk between two KMS domains.
//!
//! ```text
//! UE → KMS  POST /keymanagement?requesttype=ticketrequest   Content-Type: application/mikey
//!           base64(REQUEST_INIT_PSK)                          (IDRpsk = B-TID, PSK = NAF key)
//! KMS → BSF Zn: NAF key and IMPUs of the B-TID
//! KMS → UE  200 application/mikey base64(REQUEST_RESP | error message)
//! UE → KMS  POST /keymanagement?requesttype=ticketresolve   base64(RESOLVE_INIT_PSK)
//! KMS_R → KMS_I (Zk, trusted peers only, unprotected)  POST …?requesttype=ticketresolve
//! ```
//!
//! The wire format (path, request types, content type, base64 bodies) is [`wire::kms_http`].
//! HTTP-level faults (method, path, request type, content type, base64) answer 4xx; everything the
//! MIKEY layer refuses answers 200 with a MIKEY error message (Annex A.2). The KMS keeps no
//! per-ticket state (tickets carry their keys); what it stores — the NAF keys and IMPUs learned
//! over Zn — changes only when a request succeeds. The one exception is the replay cache below,
//! which records every authenticated request that reaches it, whatever the outcome.
//!
//! Replay protection (RFC 3830 §5.4, which RFC 6043 keeps for its T-payload exchanges): once a
//! REQUEST_INIT_PSK or RESOLVE_INIT_PSK is authenticated (MAC) and addressed to this KMS, its T
//! must lie within [`ALLOWED_CLOCK_SKEW`] of the KMS clock and its identity (data type, IDRpsk, T,
//! RAND) must not be in the replay cache; it then enters the cache until its T leaves the window.
//! Stale and replayed messages get MIKEY error 1 (Invalid TS, RFC 3830 §6.12). The cache holds at
//! most [`KmsConfig::replay_cache_max`] entries: when it is full of live entries, new requests are
//! refused (evicting a live entry would reopen the replay window). Unauthenticated messages never
//! enter it, so a forger cannot fill it. The unprotected Zk resolve between trusted KMSs has no MAC
//! and is not cached.
//!
//! Policy (TS 33.328 §5.4.3, §6.2.3.3; B.1.2 step 7, B.2.2.2 step 6): [`KmsPolicy`] holds per-user
//! entries ([`KmsUserPolicy`]) keyed by a KMS UID pattern (`?` matches any run of characters, as in
//! [`mikey::ticket::uid_matches`]); the first entry matching a user is that user's policy, and a
//! user no entry matches gets the global one. A Ticket Request is checked against the requesting
//! user's policy: every requested recipient must match one of its allowed recipients (else MIKEY
//! error 15, Invalid TPpar), and reuse and lifetime are reduced to what it allows (K flag). A
//! Ticket Resolve is checked against the resolving user's policy: the ticket's initiator must
//! match one of the initiators it may receive from, else the usage conflict is refused with MIKEY
//! error 7 (Invalid ID, the same error as a resolver outside the ticket's recipients).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::any;
use gba::NafId;
use mikey::ticket::exchange::{
    self as tx, Key128, OwnedTicket, PolicySpec, RequestGrant, ResolveGrant, ResolveInit, TicketKeys,
};
use mikey::ticket::{err_no, kms_uid, verify_initiator_data};
use mikey::{ErrorNo, Message, NTP_UNIX_OFFSET, Timestamp, TransportKeys, ntp_from_unix};
use serde::Serialize;
use sha2::{Digest, Sha256};
use wire::kms_http::{self, KEY_MANAGEMENT_PATH, MIKEY_CONTENT_TYPE, RequestType, kms_naf_id};
use wire::ub;
use wire::zn::{NafKeyMaterial, ZnRequest};
use zeroize::Zeroizing;

use crate::bsf::{ZnError, zn_query_async};
use crate::http;
use crate::peer_thread::PeerThread;
use crate::rand_source::RandSource;
use crate::store::Store;

/// Largest request body accepted.
pub const MAX_BODY_LEN: usize = 16 * 1024;
/// Default lifetime of an issued ticket.
pub const DEFAULT_TICKET_LIFETIME: Duration = Duration::from_secs(3600);

/// How far a request's T may be from the KMS clock, either way (RFC 3830 §5.4); the value is
/// [`mikey::ticket::profile::ALLOWED_CLOCK_SKEW_SECS`] (a deployment choice).
pub const ALLOWED_CLOCK_SKEW: Duration = Duration::from_secs(mikey::ticket::profile::ALLOWED_CLOCK_SKEW_SECS);

/// Default bound of the replay cache (RFC 3830 §5.4 replay cache), in entries of 32 bytes plus
/// an expiry. A choice: enough for a few thousand requests per [`ALLOWED_CLOCK_SKEW`] window.
pub const REPLAY_CACHE_MAX: usize = 4096;

/// A KMS of another domain this one may ask over Zk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsPeer {
    /// Its identity as tickets name it (TP IDRkms).
    pub kms_id: String,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// The KMS policy (TS 33.328 §5.4.3, §6.2.3.3): global settings and per-user entries.
#[derive(Debug, Clone)]
pub struct KmsPolicy {
    /// Patterns (KMS UIDs or groups with `?`) a requested recipient must match, for users no entry
    /// of [`KmsPolicy::users`] matches.
    pub allowed_recipients: Vec<String>,
    /// Whether reusable tickets are granted (users without an entry).
    pub allow_reuse: bool,
    /// Whether tickets created by initiators (mode 3) are resolved.
    pub allow_mode3: bool,
    /// Longest validity granted (users without an entry).
    pub max_lifetime: Duration,
    /// Per-user policies, first match wins (B.1.2 step 7: "its policy for the requesting user").
    pub users: Vec<KmsUserPolicy>,
}

impl Default for KmsPolicy {
    fn default() -> Self {
        KmsPolicy {
            allowed_recipients: vec!["?".into()],
            allow_reuse: true,
            allow_mode3: true,
            max_lifetime: DEFAULT_TICKET_LIFETIME,
            users: Vec::new(),
        }
    }
}

/// The KMS policy for the users whose KMS UID matches [`KmsUserPolicy::user`] (TS 33.328 §5.4.3:
/// which recipients a user may request tickets for, whether they may be reused, for how long; and
/// from which initiators the user may receive keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsUserPolicy {
    /// A KMS UID or a pattern with `?` (matches zero or more characters).
    pub user: String,
    /// Patterns a recipient this user requests a ticket for must match.
    pub allowed_recipients: Vec<String>,
    /// Patterns the initiator (IDRi) of a ticket this user resolves must match.
    pub allowed_initiators: Vec<String>,
    /// Whether this user's tickets may be reusable.
    pub allow_reuse: bool,
    /// Longest validity granted to this user's tickets.
    pub max_lifetime: Duration,
}

impl KmsUserPolicy {
    /// An entry for `user` that allows everything the default global policy allows.
    pub fn new(user: &str) -> Self {
        KmsUserPolicy {
            user: user.to_owned(),
            allowed_recipients: vec!["?".into()],
            allowed_initiators: vec!["?".into()],
            allow_reuse: true,
            max_lifetime: DEFAULT_TICKET_LIFETIME,
        }
    }
}

/// The policy that applies to one user: its entry or the global settings.
struct UserPolicy<'a> {
    allowed_recipients: &'a [String],
    /// `None`: any initiator.
    allowed_initiators: Option<&'a [String]>,
    allow_reuse: bool,
    max_lifetime: Duration,
}

/// Whether `id` (a KMS UID or a group identity) matches one of `patterns`.
fn matches_any(patterns: &[String], id: &str) -> bool {
    patterns.iter().any(|p| mikey::ticket::uid_matches(p, id) || p == id)
}

impl KmsPolicy {
    /// The policy of the user with KMS UID `uid`: the first entry whose pattern matches, else the
    /// global settings.
    fn for_user(&self, uid: &str) -> UserPolicy<'_> {
        match self.users.iter().find(|u| mikey::ticket::uid_matches(&u.user, uid)) {
            Some(u) => UserPolicy {
                allowed_recipients: &u.allowed_recipients,
                allowed_initiators: Some(&u.allowed_initiators),
                allow_reuse: u.allow_reuse,
                max_lifetime: u.max_lifetime,
            },
            None => UserPolicy {
                allowed_recipients: &self.allowed_recipients,
                allowed_initiators: None,
                allow_reuse: self.allow_reuse,
                max_lifetime: self.max_lifetime,
            },
        }
    }
}

/// How a KMS is set up.
#[derive(Clone)]
pub struct KmsConfig {
    /// Loopback address to listen on (ephemeral port).
    pub bind: IpAddr,
    /// The KMS FQDN: its NAF FQDN and its identity (IDRkms).
    pub fqdn: String,
    /// The BSF's Zn address.
    pub bsf_zn: SocketAddr,
    /// The KMS-only ticket protection key.
    pub tpk: [u8; 32],
    /// The name of that key in the tickets (IDRpsk of the Ticket Data).
    pub tpk_id: String,
    /// Policy.
    pub policy: KmsPolicy,
    /// KMSs of other domains this one forwards resolves to.
    pub peers: Vec<KmsPeer>,
    /// Addresses whose unprotected Zk resolves are served (TS 33.328 B.2.3: NDS/IP-protected peers).
    pub trusted_peers: Vec<IpAddr>,
    /// Seed of the random generator (keys, RANDs); `None` seeds from the process.
    pub rand_seed: Option<[u8; 32]>,
    /// Most authenticated requests remembered for replay detection (RFC 3830 §5.4); when that
    /// many are live, further requests are refused until some expire.
    pub replay_cache_max: usize,
    /// TCP port; 0: chosen by the system.
    pub port: u16,
    /// The persistent state (`keysim serve`): the TPK of this FQDN (so tickets issued before a
    /// restart, reusable ones included, still resolve) and the replay cache, each entry committed
    /// before the request it records is answered. `None`: in memory only.
    pub store: Option<Arc<Store>>,
}

impl core::fmt::Debug for KmsConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KmsConfig")
            .field("fqdn", &self.fqdn)
            .field("bsf_zn", &self.bsf_zn)
            .field("peers", &self.peers)
            .field("trusted_peers", &self.trusted_peers)
            .field("replay_cache_max", &self.replay_cache_max)
            .finish_non_exhaustive()
    }
}

impl KmsConfig {
    /// A KMS named `fqdn` using the BSF at `bsf_zn`, with a fresh TPK from `seed`.
    pub fn new(fqdn: &str, bsf_zn: SocketAddr, seed: Option<[u8; 32]>) -> Self {
        let mut r = RandSource::new(seed);
        let mut tpk = [0u8; 32];
        tpk[..16].copy_from_slice(&r.next());
        tpk[16..].copy_from_slice(&r.next());
        KmsConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            fqdn: fqdn.to_owned(),
            bsf_zn,
            tpk,
            tpk_id: format!("tpk-1@{fqdn}"),
            policy: KmsPolicy::default(),
            peers: Vec::new(),
            trusted_peers: Vec::new(),
            rand_seed: seed.map(|mut s| {
                s[0] ^= 0x5A;
                s
            }),
            replay_cache_max: REPLAY_CACHE_MAX,
            port: 0,
            store: None,
        }
    }
}

/// What the KMS counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KmsStats {
    /// Ticket requests received (well-formed HTTP).
    pub ticket_requests: u64,
    /// Tickets issued.
    pub tickets_issued: u64,
    /// Resolves received from UEs.
    pub resolve_requests: u64,
    /// Tickets resolved for UEs.
    pub tickets_resolved: u64,
    /// Resolves of mode-3 tickets (created by the initiator with its NAF key as TPK).
    pub mode3_resolved: u64,
    /// Resolves forwarded to another KMS over Zk.
    pub zk_forwarded: u64,
    /// Zk resolves served for another KMS.
    pub zk_served: u64,
    /// Zn queries to the BSF.
    pub zn_queries: u64,
    /// MIKEY error messages sent.
    pub mikey_errors: u64,
    /// Authenticated requests refused because their T was outside [`ALLOWED_CLOCK_SKEW`].
    pub stale_timestamps: u64,
    /// Authenticated requests refused as replays (already in the replay cache).
    pub replays: u64,
    /// Authenticated requests refused because the replay cache was full.
    pub replay_cache_full: u64,
    /// 4xx answers.
    pub http_errors: u64,
}

struct ZnEntry {
    key: Zeroizing<[u8; 32]>,
    impus: Vec<String>,
    expires: u64,
}

struct KmsState {
    zn_cache: HashMap<String, ZnEntry>,
    /// Replay cache: identity digest of an authenticated request → last second (KMS clock) its T
    /// is inside the window.
    replay_cache: HashMap<[u8; 32], u64>,
    rand: RandSource,
    stats: KmsStats,
}

struct Core {
    fqdn: String,
    naf_id: NafId,
    bsf_zn: SocketAddr,
    tpk: Zeroizing<[u8; 32]>,
    tpk_id: String,
    policy: KmsPolicy,
    peers: Vec<KmsPeer>,
    trusted: Vec<IpAddr>,
    clock_offset: AtomicI64,
    replay_cache_max: usize,
    store: Option<Arc<Store>>,
    state: Mutex<KmsState>,
}

impl Core {
    fn lock(&self) -> MutexGuard<'_, KmsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> u64 {
        let real = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        real.saturating_add_signed(self.clock_offset.load(Ordering::Relaxed))
    }

    fn random(&self, n: usize) -> Vec<u8> {
        let mut st = self.lock();
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            out.extend_from_slice(&st.rand.next());
        }
        out.truncate(n);
        out
    }

    fn key128(&self) -> Key128 {
        let mut k = [0u8; 16];
        k.copy_from_slice(&self.random(16));
        Key128(k)
    }
}

/// A running KMS. Dropping it shuts it down too.
pub struct Kms {
    addr: SocketAddr,
    core: Arc<Core>,
    server: PeerThread,
}

impl Kms {
    /// Binds `config.bind` on an ephemeral port and serves on a thread of its own.
    pub fn start(config: KmsConfig) -> std::io::Result<Kms> {
        let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
        if !config.bind.is_loopback() {
            return Err(invalid("the KMS listens on loopback only".into()));
        }
        let naf_id = kms_naf_id(&config.fqdn).map_err(|e| invalid(format!("KMS FQDN: {e}")))?;
        let (mut tpk, mut tpk_id) = (Zeroizing::new(config.tpk), config.tpk_id);
        let mut replay_cache = HashMap::new();
        if let Some(store) = &config.store {
            let io = std::io::Error::other;
            match store.kms_key(&config.fqdn).map_err(io)? {
                Some((key, id)) => {
                    tpk = key;
                    tpk_id = id;
                }
                None => store.store_kms_key(&config.fqdn, &tpk, &tpk_id).map_err(io)?,
            }
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            replay_cache = store.kms_replays(&config.fqdn, now).map_err(io)?.into_iter().collect();
        }
        let listener = std::net::TcpListener::bind((config.bind, config.port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let core = Arc::new(Core {
            fqdn: config.fqdn,
            naf_id,
            bsf_zn: config.bsf_zn,
            tpk,
            tpk_id,
            policy: config.policy,
            peers: config.peers,
            trusted: config.trusted_peers,
            clock_offset: AtomicI64::new(0),
            replay_cache_max: config.replay_cache_max,
            store: config.store,
            state: Mutex::new(KmsState {
                zn_cache: HashMap::new(),
                replay_cache,
                rand: RandSource::new(config.rand_seed),
                stats: KmsStats::default(),
            }),
        });
        let app = axum::Router::new()
            .route(KEY_MANAGEMENT_PATH, any(key_management))
            .fallback(not_found)
            .with_state(core.clone());
        let server = PeerThread::spawn("KMS", "kms", addr, move |stopped| async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            crate::peer_thread::serve_connections(listener, app, stopped).await
        })?;
        tracing::info!(%addr, fqdn = %core.fqdn, "KMS listening");
        Ok(Kms { addr, core, server })
    }

    /// The HTTP address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The KMS FQDN (its identity).
    pub fn fqdn(&self) -> &str {
        &self.core.fqdn
    }

    /// The counters.
    pub fn stats(&self) -> KmsStats {
        self.core.lock().stats.clone()
    }

    /// How many B-TIDs' keys the KMS keeps (its only stored state).
    pub fn cached_btids(&self) -> usize {
        self.core.lock().zn_cache.len()
    }

    /// How many requests the replay cache holds (expired ones are dropped at the next check).
    pub fn replay_cache_len(&self) -> usize {
        self.core.lock().replay_cache.len()
    }

    /// Moves the KMS clock (tests of validity periods and of the replay window).
    pub fn advance_clock(&self, secs: i64) {
        self.core.clock_offset.fetch_add(secs, Ordering::Relaxed);
    }

    /// Stops the server and waits for its thread.
    pub fn shutdown(mut self) -> std::io::Result<()> {
        self.server.stop()
    }
}

// ------------------------------------------------------------------------------------------------
// HTTP

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap_or_default()
}

fn http_error(core: &Core, status: StatusCode, reason: &str) -> Response {
    core.lock().stats.http_errors += 1;
    tracing::info!(%status, reason, "KMS: HTTP error");
    respond(status, "text/plain", format!("{reason}\n").into_bytes())
}

fn mikey_ok(message: &[u8]) -> Response {
    respond(StatusCode::OK, MIKEY_CONTENT_TYPE, kms_http::encode_body(message).into_bytes())
}

async fn not_found(State(core): State<Arc<Core>>, uri: Uri) -> Response {
    http_error(&core, StatusCode::NOT_FOUND, &format!("no resource {}", uri.path()))
}

/// Why the MIKEY layer refused a request: the error number answered and a reason to log.
struct Refusal {
    error_no: ErrorNo,
    reason: String,
}

fn refuse(error_no: ErrorNo, reason: impl Into<String>) -> Refusal {
    Refusal { error_no, reason: reason.into() }
}

fn mikey_err(e: mikey::Error) -> Refusal {
    let n = match e {
        mikey::Error::MacMismatch => ErrorNo::AUTH_FAILURE,
        mikey::Error::UnsupportedPrf(_) => ErrorNo::INVALID_PRF,
        mikey::Error::WrongDataType(_) => ErrorNo::INVALID_DT,
        _ => ErrorNo::UNSPECIFIED,
    };
    refuse(n, format!("MIKEY: {e}"))
}

async fn key_management(
    State(core): State<Arc<Core>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if method != Method::POST {
        return http_error(&core, StatusCode::METHOD_NOT_ALLOWED, "only POST");
    }
    let request_type = match RequestType::from_query(uri.query().unwrap_or("")) {
        Some(t) => t,
        None => {
            return http_error(
                &core,
                StatusCode::BAD_REQUEST,
                "requesttype must be ticketrequest or ticketresolve",
            );
        }
    };
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase() != MIKEY_CONTENT_TYPE {
        return http_error(
            &core,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/mikey",
        );
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_LEN).await else {
        return http_error(&core, StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    };
    let Ok(message) = kms_http::decode_body(&bytes) else {
        return http_error(&core, StatusCode::BAD_REQUEST, "body is not base64");
    };
    let outcome = if request_type == RequestType::TicketRequest {
        core.lock().stats.ticket_requests += 1;
        ticket_request(&core, &message).await
    } else {
        resolve(&core, peer, &message).await
    };
    match outcome {
        Ok(resp) => mikey_ok(&resp),
        Err(r) => {
            tracing::info!(error_no = r.error_no.0, reason = %r.reason, "KMS: MIKEY error");
            core.lock().stats.mikey_errors += 1;
            match tx::build_error_for(&message, ntp_from_unix(core.now()), r.error_no) {
                Ok(e) => mikey_ok(&e),
                Err(_) => {
                    http_error(&core, StatusCode::INTERNAL_SERVER_ERROR, "cannot build an error message")
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Zn

struct UserKeys {
    btid: String,
    key: Zeroizing<[u8; 32]>,
    uids: Vec<String>,
    cached: bool,
    impus: Vec<String>,
    expires: u64,
}

/// The NAF key (Ks_ext_NAF for GBA_U, Ks_NAF for GBA_ME: the KMS is not GBA_U aware) and the KMS
/// UIDs of a B-TID, from the cache or over Zn (TS 33.328 §6.2.3.5). Nothing is cached here.
async fn user_keys(core: &Core, btid: &str) -> Result<UserKeys, Refusal> {
    let now = core.now();
    if let Some(e) = core.lock().zn_cache.get(btid).filter(|e| now < e.expires) {
        return Ok(UserKeys {
            btid: btid.to_owned(),
            key: e.key.clone(),
            uids: e.impus.iter().filter_map(|i| kms_uid(i)).map(str::to_owned).collect(),
            cached: true,
            impus: e.impus.clone(),
            expires: e.expires,
        });
    }
    core.lock().stats.zn_queries += 1;
    let req = ZnRequest { btid: btid.to_owned(), naf_id: core.naf_id.clone(), gba_u_aware: false };
    let answer = zn_query_async(core.bsf_zn, &req).await.map_err(|e| match e {
        ZnError::Refused { .. } => refuse(ErrorNo::AUTH_FAILURE, format!("B-TID {btid}: {e}")),
        other => refuse(ErrorNo::UNSPECIFIED, format!("Zn: {other}")),
    })?;
    if answer.btid != btid {
        return Err(refuse(ErrorNo::AUTH_FAILURE, "Zn answered for another B-TID"));
    }
    let key = match &answer.keys {
        NafKeyMaterial::GbaMe { ks_naf } => *ks_naf.expose(),
        NafKeyMaterial::GbaU { ks_ext_naf, .. } => *ks_ext_naf.expose(),
    };
    let expires = ub::parse_utc_time(&answer.key_expiry).unwrap_or(now);
    Ok(UserKeys {
        btid: btid.to_owned(),
        key: Zeroizing::new(key),
        uids: answer.impus.iter().filter_map(|i| kms_uid(i)).map(str::to_owned).collect(),
        cached: false,
        impus: answer.impus,
        expires,
    })
}

/// Remembers a B-TID's keys after a request succeeded.
fn remember(core: &Core, u: &UserKeys) {
    if !u.cached {
        core.lock().zn_cache.insert(
            u.btid.clone(),
            ZnEntry { key: u.key.clone(), impus: u.impus.clone(), expires: u.expires },
        );
    }
}

// ------------------------------------------------------------------------------------------------
// Replay protection (RFC 3830 §5.4)

/// The identity of a request in the replay cache: SHA-256 over its data type, IDRpsk, T (as
/// carried) and RAND (RANDRi or RANDRr), each length-prefixed.
fn replay_id(data_type: u8, psk_id: &str, t: Timestamp, rand: &[u8]) -> [u8; 32] {
    let mut tv = [0u8; 8];
    let tn = t.value_bytes(&mut tv);
    let mut h = Sha256::new();
    h.update([data_type, t.ts_type()]);
    for part in [psk_id.as_bytes(), tv.get(..tn).unwrap_or(&[]), rand] {
        h.update((part.len() as u32).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// Checks an authenticated request's T against the KMS clock and the replay cache, and records
/// it (RFC 3830 §5.4). Call only after the MAC verified, so forgeries never enter the cache.
fn check_replay(core: &Core, message: &[u8], psk_id: &str, rand: &[u8]) -> Result<(), Refusal> {
    let m = Message::parse_ticket(message).map_err(mikey_err)?;
    let t = m.timestamp().ok_or_else(|| refuse(ErrorNo::INVALID_TS, "no T payload"))?;
    let now = core.now();
    let skew = ALLOWED_CLOCK_SKEW.as_secs();
    let mut st = core.lock();
    let secs = match t.ntp_seconds() {
        Some(s) => u64::from(s).saturating_sub(NTP_UNIX_OFFSET),
        None => {
            st.stats.stale_timestamps += 1;
            return Err(refuse(ErrorNo::INVALID_TS, "a counter T cannot be checked against the clock"));
        }
    };
    if secs.abs_diff(now) > skew {
        st.stats.stale_timestamps += 1;
        return Err(refuse(
            ErrorNo::INVALID_TS,
            format!("T is {}s from the KMS clock (allowed {skew}s)", secs.abs_diff(now)),
        ));
    }
    st.replay_cache.retain(|_, until| *until >= now);
    let id = replay_id(m.hdr().data_type.0, psk_id, t, rand);
    if st.replay_cache.contains_key(&id) {
        st.stats.replays += 1;
        return Err(refuse(ErrorNo::INVALID_TS, "replayed message"));
    }
    if st.replay_cache.len() >= core.replay_cache_max {
        st.stats.replay_cache_full += 1;
        return Err(refuse(ErrorNo::INVALID_TS, "replay cache full"));
    }
    // Write-ahead: a restarted KMS still refuses this request as a replay.
    if let Some(store) = &core.store
        && let Err(e) = store.record_kms_replay(&core.fqdn, &id, secs + skew, now)
    {
        tracing::warn!("KMS: state store: {e}");
        return Err(refuse(ErrorNo::UNSPECIFIED, "the KMS could not record the request"));
    }
    st.replay_cache.insert(id, secs + skew);
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Ticket Request (TS 33.328 B.1.2 steps 5–8)

async fn ticket_request(core: &Core, message: &[u8]) -> Result<Vec<u8>, Refusal> {
    let req = tx::read_request_init(message).map_err(mikey_err)?;
    let user = user_keys(core, &req.psk_id).await?;
    tx::verify_request_init(message, &user.key[..]).map_err(mikey_err)?;
    if !user.uids.contains(&req.initiator) {
        return Err(refuse(
            ErrorNo::INVALID_ID,
            format!("{} is none of the requester's KMS UIDs", req.initiator),
        ));
    }
    if req.kms != core.fqdn {
        return Err(refuse(ErrorNo::INVALID_ID, format!("IDRkms {} is not this KMS", req.kms)));
    }
    check_replay(core, message, &req.psk_id, &req.randri)?;
    // The KMS's policy for the requesting user and the requested recipients (B.1.2 step 7).
    let wanted = &req.policy;
    let user_policy = core.policy.for_user(&req.initiator);
    if wanted.recipients.is_empty() {
        return Err(refuse(err_no::INVALID_TPPAR, "no recipient"));
    }
    for r in &wanted.recipients {
        if !matches_any(user_policy.allowed_recipients, r) {
            return Err(refuse(
                err_no::INVALID_TPPAR,
                format!("recipient {r} not allowed for {}", req.initiator),
            ));
        }
    }
    let now = core.now();
    let mut granted =
        PolicySpec::ims(&core.fqdn, &req.initiator, &[], wanted.flags.j && user_policy.allow_reuse);
    granted.recipients = wanted.recipients.clone();
    granted.valid_from = Some(now);
    let max_end = now + user_policy.max_lifetime.as_secs();
    granted.valid_to = Some(wanted.valid_to.map_or(max_end, |t| t.min(max_end)));
    granted.flags.k = granted.flags.j != wanted.flags.j || wanted.valid_to.is_some_and(|t| t > max_end);
    let keys = TicketKeys { mpk: core.key128(), tgk: core.key128() };
    let rand = core.random(tx::TICKET_RAND_LEN);
    let t = ntp_from_unix(now);
    let ticket =
        tx::issue_ticket(&granted, &core.tpk[..], &core.tpk_id, &keys, &rand, t).map_err(mikey_err)?;
    let (mpki, mpkr) = tx::mpk_pair(&ticket, &keys.mpk).map_err(mikey_err)?;
    let grant = RequestGrant { ticket, mpki, mpkr, tgk: keys.tgk.clone() };
    let resp = tx::build_request_resp(message, t, &core.fqdn, &grant, &user.key[..]).map_err(mikey_err)?;
    remember(core, &user);
    core.lock().stats.tickets_issued += 1;
    tracing::info!(initiator = %req.initiator, recipients = ?granted.recipients, reusable = granted.flags.j, "KMS: ticket issued");
    Ok(resp)
}

// ------------------------------------------------------------------------------------------------
// Ticket Resolve (B.2.2.2 steps 4–7, B.2.3.2)

async fn resolve(core: &Core, peer: SocketAddr, message: &[u8]) -> Result<Vec<u8>, Refusal> {
    let (req, protected) = tx::read_resolve_init(message).map_err(mikey_err)?;
    if !protected {
        return zk_serve(core, peer, message, &req);
    }
    core.lock().stats.resolve_requests += 1;
    let btid = req.psk_id.clone().ok_or_else(|| refuse(ErrorNo::AUTH_FAILURE, "no IDRpsk"))?;
    let user = user_keys(core, &btid).await?;
    tx::verify_resolve_init(message, &user.key[..]).map_err(mikey_err)?;
    if !user.uids.contains(&req.responder) {
        return Err(refuse(
            ErrorNo::INVALID_ID,
            format!("{} is none of the resolver's KMS UIDs", req.responder),
        ));
    }
    if req.kms != core.fqdn {
        return Err(refuse(ErrorNo::INVALID_ID, format!("IDRkms {} is not this KMS", req.kms)));
    }
    check_replay(core, message, &btid, &req.randrr)?;
    let policy = req.ticket.policy().map_err(mikey_err)?;
    let ticket = req.ticket.as_ticket().map_err(mikey_err)?;
    if !ticket.policy.is_3gpp() {
        return Err(refuse(err_no::INVALID_TICKET, "not a 3GPP ticket type 2/0/0"));
    }
    // Step 5: one of the resolver's KMS UIDs (preferably the one it named) is an allowed recipient.
    let matched = if policy.allows(std::slice::from_ref(&req.responder)).is_some() {
        req.responder.clone()
    } else {
        policy
            .allows(&user.uids)
            .ok_or_else(|| refuse(ErrorNo::INVALID_ID, "the resolver is not an allowed recipient"))?
    };
    // Step 6: the resolving user's own policy must allow keys from the ticket's initiator.
    let initiator = policy.initiator.as_deref().unwrap_or("");
    if let Some(allowed) = core.policy.for_user(&matched).allowed_initiators
        && !matches_any(allowed, initiator)
    {
        return Err(refuse(ErrorNo::INVALID_ID, format!("{matched} may not receive keys from {initiator}")));
    }
    let issuer = policy.kms.clone().unwrap_or_else(|| core.fqdn.clone());
    let grant = if issuer == core.fqdn {
        resolve_own(core, &req.ticket, &policy, &matched).await?
    } else {
        zk_forward(core, &issuer, &req, &matched).await?
    };
    let t = ntp_from_unix(core.now());
    let resp =
        tx::build_resolve_resp(message, t, &core.fqdn, &grant, Some(&user.key[..])).map_err(mikey_err)?;
    remember(core, &user);
    core.lock().stats.tickets_resolved += 1;
    tracing::info!(resolver = %matched, %issuer, "KMS: ticket resolved");
    Ok(resp)
}

/// Opens a ticket this KMS can resolve (its own TPK, or a mode-3 ticket under the initiator's NAF
/// key) and forks the keys for `responder`.
async fn resolve_own(
    core: &Core,
    ticket: &OwnedTicket,
    policy: &PolicySpec,
    responder: &str,
) -> Result<ResolveGrant, Refusal> {
    let tpk_id = ticket.tpk_id().map_err(mikey_err)?;
    let mode3;
    let keys = if tpk_id == core.tpk_id && ticket.flags.d {
        mode3 = false;
        tx::open_ticket_keys(ticket, &core.tpk[..]).map_err(mikey_err)?
    } else if !ticket.flags.d {
        // Mode 3 (B.1.2 step 1): the initiator made the ticket with its NAF key as TPK; IDRpsk is
        // its B-TID.
        if !core.policy.allow_mode3 {
            return Err(refuse(err_no::INVALID_TICKET, "initiator-created tickets are not allowed"));
        }
        mode3 = true;
        let initiator = user_keys(core, &tpk_id).await?;
        let keys = tx::open_ticket_keys(ticket, &initiator.key[..]).map_err(mikey_err)?;
        let named = policy.initiator.as_deref().unwrap_or("");
        if !initiator.uids.iter().any(|u| u == named) {
            return Err(refuse(ErrorNo::INVALID_ID, "the ticket's IDRi is none of its creator's KMS UIDs"));
        }
        keys
    } else {
        return Err(refuse(err_no::INVALID_TICKET, format!("unknown ticket protection key {tpk_id}")));
    };
    if !policy.valid_at(core.now()) {
        return Err(refuse(ErrorNo::INVALID_TS, "the ticket is outside its validity period"));
    }
    let (mpki, mpkr) = tx::mpk_pair(ticket, &keys.mpk).map_err(mikey_err)?;
    let grant = if ticket.flags.i {
        let vr = TransportKeys::for_initiator_data(ticket.prf, &mpkr.0).map_err(mikey_err)?;
        verify_initiator_data(&ticket.initiator_data, &vr).map_err(mikey_err)?;
        let randrkms = core.random(tx::RANDRKMS_LEN);
        let (mpkr_f, tgk_f) =
            tx::fork(ticket.prf, &mpkr, &keys.tgk, responder, &randrkms).map_err(mikey_err)?;
        ResolveGrant { mpki, mpkr: mpkr_f, tgk: tgk_f, responder: responder.to_owned(), randrkms }
    } else {
        ResolveGrant {
            mpki: mpki.clone(),
            mpkr: mpki,
            tgk: keys.tgk.clone(),
            responder: responder.to_owned(),
            randrkms: Vec::new(),
        }
    };
    if mode3 {
        core.lock().stats.mode3_resolved += 1;
    }
    Ok(grant)
}

/// KMS_I: an unprotected resolve from a trusted KMS_R (B.2.3.2 steps 8–10).
fn zk_serve(core: &Core, peer: SocketAddr, message: &[u8], req: &ResolveInit) -> Result<Vec<u8>, Refusal> {
    if !core.trusted.contains(&peer.ip()) {
        return Err(refuse(ErrorNo::AUTH_FAILURE, format!("unprotected resolve from untrusted {peer}")));
    }
    let policy = req.ticket.policy().map_err(mikey_err)?;
    if policy.kms.as_deref() != Some(core.fqdn.as_str()) {
        return Err(refuse(err_no::INVALID_TICKET, "not a ticket of this KMS"));
    }
    if policy.allows(std::slice::from_ref(&req.responder)).is_none() {
        return Err(refuse(ErrorNo::INVALID_ID, "the responder is not an allowed recipient"));
    }
    // The mode-3 path needs Zn; Zk serves tickets of this KMS's own TPK.
    let tpk_id = req.ticket.tpk_id().map_err(mikey_err)?;
    if tpk_id != core.tpk_id {
        return Err(refuse(err_no::INVALID_TICKET, "Zk resolves only tickets under this KMS's key"));
    }
    let keys = tx::open_ticket_keys(&req.ticket, &core.tpk[..]).map_err(mikey_err)?;
    if !policy.valid_at(core.now()) {
        return Err(refuse(ErrorNo::INVALID_TS, "the ticket is outside its validity period"));
    }
    let (mpki, mpkr) = tx::mpk_pair(&req.ticket, &keys.mpk).map_err(mikey_err)?;
    let grant = if req.ticket.flags.i {
        let vr = TransportKeys::for_initiator_data(req.ticket.prf, &mpkr.0).map_err(mikey_err)?;
        verify_initiator_data(&req.ticket.initiator_data, &vr).map_err(mikey_err)?;
        let randrkms = core.random(tx::RANDRKMS_LEN);
        let (m, t) =
            tx::fork(req.ticket.prf, &mpkr, &keys.tgk, &req.responder, &randrkms).map_err(mikey_err)?;
        ResolveGrant { mpki, mpkr: m, tgk: t, responder: req.responder.clone(), randrkms }
    } else {
        ResolveGrant {
            mpki: mpki.clone(),
            mpkr: mpki,
            tgk: keys.tgk.clone(),
            responder: req.responder.clone(),
            randrkms: Vec::new(),
        }
    };
    let resp = tx::build_resolve_resp(message, ntp_from_unix(core.now()), &core.fqdn, &grant, None)
        .map_err(mikey_err)?;
    core.lock().stats.zk_served += 1;
    tracing::info!(%peer, responder = %req.responder, "KMS: Zk resolve served");
    Ok(resp)
}

/// KMS_R: asks the issuing KMS over Zk (B.2.3.2 steps 6–7, 11).
async fn zk_forward(
    core: &Core,
    issuer: &str,
    req: &ResolveInit,
    matched: &str,
) -> Result<ResolveGrant, Refusal> {
    let peer = core
        .peers
        .iter()
        .find(|p| p.kms_id == issuer)
        .ok_or_else(|| refuse(err_no::INVALID_TICKET, format!("no trust relation with {issuer}")))?;
    let csb = u32::from_be_bytes(core.random(4).try_into().unwrap_or([0; 4]));
    let zk = ResolveInit {
        csb_id: csb,
        t: ntp_from_unix(core.now()),
        randrr: core.random(tx::RAND_LEN),
        responder: matched.to_owned(),
        kms: issuer.to_owned(),
        ticket: req.ticket.clone(),
        psk_id: None,
    };
    let init = tx::build_resolve_init(&zk, None).map_err(mikey_err)?;
    let path = RequestType::TicketResolve.path_and_query();
    let r = http::request(
        peer.addr,
        "POST",
        &path,
        MIKEY_CONTENT_TYPE,
        kms_http::encode_body(&init).as_bytes(),
        http::DEFAULT_TIMEOUT,
    )
    .await
    .map_err(|e| refuse(ErrorNo::UNSPECIFIED, format!("Zk to {issuer}: {e}")))?;
    if r.status != 200 {
        return Err(refuse(ErrorNo::UNSPECIFIED, format!("Zk: {issuer} answered {}", r.status)));
    }
    let resp =
        kms_http::decode_body(&r.body).map_err(|_| refuse(ErrorNo::UNSPECIFIED, "Zk: body is not base64"))?;
    if let Ok(m) = Message::parse_ticket(&resp)
        && let Some(n) = m.error_no()
    {
        return Err(refuse(n, format!("Zk: {issuer} refused with error {}", n.0)));
    }
    let grant = tx::open_resolve_resp(&resp, &init, None).map_err(mikey_err)?;
    core.lock().stats.zk_forwarded += 1;
    Ok(grant)
}
