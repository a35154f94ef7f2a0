//! The BSF (TS 33.220 §4.5.2–4.5.3, TS 24.109 §4–5): Ub (HTTP Digest AKA, RFC 3310) and Zn over
//! HTTP/1.1 on an ephemeral loopback port, with its own HSS (Milenage over the subscribers'
//! K / OPc, TS 35.206).
//!
//! The wire formats are those of [`wire::ub`]. The server:
//!
//! - `GET /` (or `POST /`) with `Authorization: Digest username="IMPI", …, nonce=""` → `401` with an
//!   AKAv1-MD5 challenge, nonce = base64(RAND ‖ AUTN), AUTN* for a GBA_U run (the subscriber is
//!   GBA_U and the `User-Agent` carries `3gpp-gba-uicc`, [`wire::ub::USER_AGENT_GBA_UICC`]);
//! - the answer with the right RES → `200 OK`, `Authentication-Info` with `rspauth`, and the
//!   `BootstrappingInfo` XML (B-TID = base64(RAND)@domain, key lifetime); a wrong RES → a fresh
//!   `401` and nothing stored;
//! - `auts` (RFC 3310 §3.4) → SQN_HE := SQN_MS from AUTS when MAC-S verifies (TS 33.102 §6.3.5),
//!   then a fresh `401`;
//! - `POST /zn` ([`wire::zn::ZnRequest`]) → [`wire::zn::ZnAnswer`], or `404` for an unknown or
//!   expired B-TID, `400` for a malformed request ([`wire::zn::ZnErrorBody`]).
//!
//! Malformed headers or bodies get a `400` with the reason as `text/plain` and change nothing.
//!
//! The HE's SQN (TS 33.102 Annex C.1.1, C.3.2): each vector takes SEQ_HE + 1 with IND =
//! [`BSF_IND`] (IND of [`gba::sqn::IND_LEN_BITS`] bits). A subscriber loaded from a card profile
//! starts at the profile's `sqn`, which is the card's SQN_MS, so the first challenge is fresh.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{get, post};
use gba::sqn::IND_LEN_BITS;
use gba::{AuthVector, BTid, Ks, Milenage, Rand, Sqn, kdf};
use wire::digest::{self, AuthenticationInfo, DigestAuthorization, DigestChallenge, Qop};
use wire::ub::{self, ALGORITHM_AKAV1_MD5, AkaNonce, BootstrappingInfo};
use wire::zn::{self, GbaType, NafKeyMaterial, ZnAnswer, ZnErrorBody, ZnErrorCode, ZnRequest};

use crate::peer_thread::PeerThread;
use crate::rand_source::RandSource;
use crate::store::{BootstrapRecord, Store, StoreError};
use zeroize::Zeroize;

use crate::http::{self, HttpError};

/// The BSF's domain name in the B-TID, by default (TS 23.003 §16.2 for MCC 001, MNC 01).
pub const DEFAULT_BSF_DOMAIN: &str = "bsf.mnc001.mcc001.pub.3gppnetwork.org";
/// Default key lifetime (TS 33.220 §4.5.2 leaves it to operator policy).
pub const DEFAULT_KEY_LIFETIME: Duration = Duration::from_secs(24 * 3600);
/// The IND the BSF puts in every SQN (TS 33.102 Annex C.3.2: one IND value per serving node).
pub const BSF_IND: u64 = 0;
/// Challenges waiting for their answer; the oldest is dropped beyond this.
pub const MAX_PENDING_CHALLENGES: usize = 1024;

// ------------------------------------------------------------------------------------------------
// Subscribers

/// Why a subscriber profile was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubscriberError {
    /// Not the TOML of a card profile (syntax, missing or unknown key, wrong type).
    #[error("subscriber profile: {0}")]
    Syntax(String),
    /// A field holds a value the BSF cannot take.
    #[error("subscriber profile: field `{field}`: {reason}")]
    Field {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The card profile format of `sim-reader` (`CardProfile`), plus the BSF's optional `gba_type`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the card-only fields are read to accept the format, not used
struct ProfileToml {
    iccid: String,
    imsi: String,
    k: String,
    opc: String,
    sqn: String,
    amf: String,
    impi: String,
    impu: Vec<String>,
    home_domain: String,
    pin1: String,
    adm1: String,
    #[serde(default)]
    puk1: Option<String>,
    #[serde(default)]
    gba_type: Option<String>,
}

fn hex_field<const N: usize>(field: &'static str, value: &str) -> Result<[u8; N], SubscriberError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(value, &mut out).map_err(|e| SubscriberError::Field {
        field,
        reason: format!("expected {} hex digits: {e}", 2 * N),
    })?;
    Ok(out)
}

/// What the HSS knows of one subscriber (TS 33.220 §4.4.3: AV and GUSS). K and OPc are wiped on
/// drop and never printed.
#[derive(Clone)]
pub struct Subscriber {
    imsi: String,
    k: [u8; 16],
    opc: [u8; 16],
    amf: [u8; 2],
    sqn_he: Sqn,
    impi: String,
    impus: Vec<String>,
    gba_type: GbaType,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.k.zeroize();
        self.opc.zeroize();
    }
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("imsi", &self.imsi)
            .field("impi", &self.impi)
            .field("impus", &self.impus)
            .field("gba_type", &self.gba_type)
            .field("sqn_he", &self.sqn_he)
            .finish_non_exhaustive()
    }
}

impl Subscriber {
    /// Reads the card profile TOML (keys `iccid, imsi, k, opc, sqn, amf, impi, impu, home_domain,
    /// pin1, adm1` and the optional `puk1`, as `sim-reader`'s `CardProfile`) plus an optional `gba_type = "GBA_U" | "GBA_ME"`
    /// (the UICC type of the GUSS; default `GBA_U`). `sqn` is the card's SQN_MS: the first vector
    /// uses the next SEQ.
    pub fn from_profile_toml(text: &str) -> Result<Self, SubscriberError> {
        let p: ProfileToml = toml::from_str(text).map_err(|e| SubscriberError::Syntax(e.to_string()))?;
        let field =
            |field: &'static str, reason: &str| SubscriberError::Field { field, reason: reason.into() };
        if p.impi.is_empty() || p.impi.chars().any(char::is_control) {
            return Err(field("impi", "empty or with control characters"));
        }
        if p.impu.is_empty() {
            return Err(field("impu", "at least one public identity is needed"));
        }
        let gba_type = match p.gba_type.as_deref() {
            None => GbaType::GbaU,
            Some(t) => t.parse().map_err(|_| field("gba_type", "expected \"GBA_U\" or \"GBA_ME\""))?,
        };
        let mut k = hex_field::<16>("k", &p.k)?;
        let mut opc = hex_field::<16>("opc", &p.opc)?;
        let s = Subscriber {
            imsi: p.imsi,
            k,
            opc,
            amf: hex_field("amf", &p.amf)?,
            sqn_he: Sqn::from_bytes(&hex_field("sqn", &p.sqn)?),
            impi: p.impi,
            impus: p.impu,
            gba_type,
        };
        k.zeroize();
        opc.zeroize();
        Ok(s)
    }

    /// A subscriber from its values: `sqn` is the card's SQN_MS (the first vector uses the next
    /// SEQ), `gba_type` the GUSS UICC type.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        imsi: &str,
        impi: &str,
        impus: Vec<String>,
        k: [u8; 16],
        opc: [u8; 16],
        amf: [u8; 2],
        sqn: Sqn,
        gba_type: GbaType,
    ) -> Self {
        Subscriber { imsi: imsi.to_owned(), k, opc, amf, sqn_he: sqn, impi: impi.to_owned(), impus, gba_type }
    }

    /// The same subscriber with another GUSS UICC type.
    pub fn with_gba_type(mut self, gba_type: GbaType) -> Self {
        self.gba_type = gba_type;
        self
    }

    /// The same subscriber with the HE's SQN set (the next vector uses SEQ + 1).
    pub fn with_sqn(mut self, sqn: Sqn) -> Self {
        self.sqn_he = sqn;
        self
    }

    /// IMPI.
    pub fn impi(&self) -> &str {
        &self.impi
    }
    /// IMPUs.
    pub fn impus(&self) -> &[String] {
        &self.impus
    }
    /// IMSI.
    pub fn imsi(&self) -> &str {
        &self.imsi
    }
    /// The GUSS UICC type: GBA_U means the card can run GBA_U.
    pub fn gba_type(&self) -> GbaType {
        self.gba_type
    }
    /// The highest SQN the HE has used (or the card's SQN_MS it started from).
    pub fn sqn_he(&self) -> Sqn {
        self.sqn_he
    }

    fn milenage(&self) -> Milenage {
        Milenage::new(&self.k, &self.opc)
    }

    /// SQN of the next vector: SEQ_HE + 1 ‖ [`BSF_IND`].
    pub fn next_sqn(&self) -> Result<Sqn, gba::Error> {
        Sqn::from_seq_ind(self.sqn_he.seq(IND_LEN_BITS) + 1, BSF_IND, IND_LEN_BITS)
    }
}

// ------------------------------------------------------------------------------------------------
// Configuration and state

/// How a BSF is set up.
#[derive(Debug, Clone)]
pub struct BsfConfig {
    /// The loopback address to listen on (port chosen by the system).
    pub bind: IpAddr,
    /// The domain in the B-TID.
    pub domain: String,
    /// The Digest realm of the challenges.
    pub realm: String,
    /// Lifetime of a bootstrapped Ks.
    pub key_lifetime: Duration,
    /// The qop values offered (TS 24.109: `auth-int`).
    pub qop: Vec<Qop>,
    /// The HSS's subscribers.
    pub subscribers: Vec<Subscriber>,
    /// Seed of the RAND generator; `None` seeds from the process's randomness.
    pub rand_seed: Option<[u8; 32]>,
    /// The TCP port; 0: chosen by the system.
    pub port: u16,
    /// The persistent state (`keysim serve`): each SQN is committed before its challenge goes
    /// out, each bootstrapping before its 200 OK; at start the subscribers' SQNs and the
    /// bootstrappings come back from it. `None`: in memory only.
    pub store: Option<Arc<Store>>,
}

impl Default for BsfConfig {
    fn default() -> Self {
        BsfConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            domain: DEFAULT_BSF_DOMAIN.to_owned(),
            realm: DEFAULT_BSF_DOMAIN.to_owned(),
            key_lifetime: DEFAULT_KEY_LIFETIME,
            qop: vec![Qop::AuthInt],
            subscribers: Vec::new(),
            rand_seed: None,
            port: 0,
            store: None,
        }
    }
}

/// A challenge waiting for its answer.
struct Pending {
    impi: String,
    av: AuthVector,
    gba_type: GbaType,
    opaque: String,
    serial: u64,
}

/// A bootstrapping the BSF keeps (TS 33.220 §4.5.2): Ks with RAND, IMPI, GBA type and lifetime.
struct BootstrapSession {
    impi: String,
    rand: Rand,
    ks: Ks,
    gba_type: GbaType,
    created: u64,
    expires: u64,
}

/// What a test or an operator may see of a stored bootstrapping (no key material).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// IMPI.
    pub impi: String,
    /// RAND.
    pub rand: Rand,
    /// GBA type of the run.
    pub gba_type: GbaType,
    /// Creation time, Unix seconds.
    pub created: u64,
    /// Expiry of Ks, Unix seconds.
    pub expires: u64,
}

struct BsfState {
    domain: String,
    realm: String,
    key_lifetime: Duration,
    qop: Vec<Qop>,
    subscribers: HashMap<String, Subscriber>,
    pending: HashMap<String, Pending>,
    pending_serial: u64,
    sessions: HashMap<String, BootstrapSession>,
    rand: RandSource,
    store: Option<Arc<Store>>,
}

type Shared = Arc<Mutex<BsfState>>;

fn lock(s: &Shared) -> MutexGuard<'_, BsfState> {
    // A panic while holding the lock cannot leave half-written state behind (every change is one
    // insert or remove), so a poisoned lock is still usable.
    s.lock().unwrap_or_else(|e| e.into_inner())
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

// ------------------------------------------------------------------------------------------------
// The running server

/// A running BSF. Dropping it shuts it down too; [`Bsf::shutdown`] reports how that went.
pub struct Bsf {
    addr: SocketAddr,
    state: Shared,
    server: PeerThread,
}

impl Bsf {
    /// Binds `config.bind` on an ephemeral port and serves Ub and Zn on a thread of its own.
    pub fn start(config: BsfConfig) -> std::io::Result<Bsf> {
        if !config.bind.is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "the BSF listens on loopback only",
            ));
        }
        BTid::new(&[0; 16], &config.domain)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("BSF domain: {e}")))?;
        let mut subscribers = config.subscribers;
        let mut sessions = HashMap::new();
        if let Some(store) = &config.store {
            restore(store, &mut subscribers, &mut sessions).map_err(std::io::Error::other)?;
        }
        let listener = std::net::TcpListener::bind((config.bind, config.port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state: Shared = Arc::new(Mutex::new(BsfState {
            domain: config.domain,
            realm: config.realm,
            key_lifetime: config.key_lifetime,
            qop: config.qop,
            subscribers: subscribers.into_iter().map(|s| (s.impi.clone(), s)).collect(),
            pending: HashMap::new(),
            pending_serial: 0,
            sessions,
            rand: RandSource::new(config.rand_seed),
            store: config.store,
        }));
        let app = axum::Router::new()
            .route("/", get(ub).post(ub))
            .route(zn::ZN_PATH, post(zn))
            .fallback(not_found)
            .with_state(state.clone());
        let server = PeerThread::serve_http("BSF", "bsf", listener, app)?;
        tracing::info!(%addr, "BSF listening");
        Ok(Bsf { addr, state, server })
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr/`, the Ub URL.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// `http://addr/zn`, the Zn URL.
    pub fn zn_url(&self) -> String {
        format!("http://{}{}", self.addr, zn::ZN_PATH)
    }

    /// The domain in the B-TIDs.
    pub fn domain(&self) -> String {
        lock(&self.state).domain.clone()
    }

    /// Adds (or replaces) a subscriber.
    pub fn add_subscriber(&self, s: Subscriber) {
        lock(&self.state).subscribers.insert(s.impi.clone(), s);
    }

    /// The subscriber's current SQN_HE.
    pub fn subscriber_sqn(&self, impi: &str) -> Option<Sqn> {
        lock(&self.state).subscribers.get(impi).map(|s| s.sqn_he)
    }

    /// Lifetime of the Ks of later bootstrappings.
    pub fn set_key_lifetime(&self, lifetime: Duration) {
        lock(&self.state).key_lifetime = lifetime;
    }

    /// A stored bootstrapping, without its key.
    pub fn session(&self, btid: &str) -> Option<SessionInfo> {
        lock(&self.state).sessions.get(btid).map(|s| SessionInfo {
            impi: s.impi.clone(),
            rand: s.rand,
            gba_type: s.gba_type,
            created: s.created,
            expires: s.expires,
        })
    }

    /// Every stored bootstrapping (no key material), by B-TID.
    pub fn sessions(&self) -> Vec<(String, SessionInfo)> {
        let st = lock(&self.state);
        let mut v: Vec<(String, SessionInfo)> = st
            .sessions
            .iter()
            .map(|(b, s)| {
                (
                    b.clone(),
                    SessionInfo {
                        impi: s.impi.clone(),
                        rand: s.rand,
                        gba_type: s.gba_type,
                        created: s.created,
                        expires: s.expires,
                    },
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Every subscriber's IMPI and SQN_HE, by IMPI.
    pub fn subscriber_sqns(&self) -> Vec<(String, Sqn)> {
        let st = lock(&self.state);
        let mut v: Vec<(String, Sqn)> = st.subscribers.values().map(|s| (s.impi.clone(), s.sqn_he)).collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// How many bootstrappings are stored.
    pub fn session_count(&self) -> usize {
        lock(&self.state).sessions.len()
    }

    /// Lets a stored B-TID expire now (its lifetime set one second into the past). `false` if
    /// there is no such B-TID.
    pub fn expire(&self, btid: &str) -> bool {
        match lock(&self.state).sessions.get_mut(btid) {
            Some(s) => {
                s.expires = unix_now().saturating_sub(1).min(s.expires);
                true
            }
            None => false,
        }
    }

    /// Stops serving (in-flight requests finish) and waits for the server thread.
    pub fn shutdown(mut self) -> std::io::Result<()> {
        self.server.stop()
    }
}

impl std::fmt::Debug for Bsf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bsf").field("addr", &self.addr).finish_non_exhaustive()
    }
}

/// The stored SQNs (each subscriber continues from the higher of its configured and its committed
/// SQN) and the bootstrappings that have not expired.
fn restore(
    store: &Store,
    subscribers: &mut [Subscriber],
    sessions: &mut HashMap<String, BootstrapSession>,
) -> Result<(), StoreError> {
    for s in subscribers.iter_mut() {
        if let Some(sqn) = store.sqn(&s.impi)?
            && sqn.value() > s.sqn_he.value()
        {
            s.sqn_he = sqn;
        }
    }
    for b in store.bootstraps(unix_now())? {
        sessions.insert(
            b.btid,
            BootstrapSession {
                impi: b.impi,
                rand: b.rand,
                ks: b.ks,
                gba_type: b.gba_type,
                created: b.created,
                expires: b.expires,
            },
        );
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------------
// Responses

fn text(status: StatusCode, reason: impl Into<String>) -> Response {
    let reason = reason.into();
    tracing::debug!(%status, %reason, "BSF refuses a request");
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Body::from(format!("{reason}\n")))
        .unwrap_or_default()
}

fn zn_error(code: ZnErrorCode, reason: impl Into<String>) -> Response {
    let body = ZnErrorBody { code, reason: reason.into() };
    tracing::debug!(code = code.as_str(), reason = %body.reason, "BSF refuses a Zn request");
    Response::builder()
        .status(StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::BAD_REQUEST))
        .header(header::CONTENT_TYPE, zn::ZN_CONTENT_TYPE)
        .body(Body::from(body.to_xml()))
        .unwrap_or_default()
}

async fn not_found(uri: Uri) -> Response {
    text(StatusCode::NOT_FOUND, format!("no resource {}", uri.path()))
}

// ------------------------------------------------------------------------------------------------
// Ub

/// The one value of a header that may appear at most once, as visible ASCII; `Err` is the reason.
fn single_header(headers: &HeaderMap, name: header::HeaderName) -> Result<Option<&str>, String> {
    let mut values = headers.get_all(&name).iter();
    let Some(first) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(format!("more than one {name} header"));
    }
    first.to_str().map(Some).map_err(|_| format!("{name} header is not visible ASCII"))
}

/// Whether the User-Agent carries the `3gpp-gba-uicc` product token (TS 24.109 §4.3.1).
fn ua_has_gba_uicc(user_agent: Option<&str>) -> bool {
    user_agent.is_some_and(|ua| {
        ua.split(|c: char| c.is_whitespace() || c == ';' || c == ',').any(|tok| {
            let name = tok.split('/').next().unwrap_or("");
            name.eq_ignore_ascii_case(ub::USER_AGENT_GBA_UICC)
        })
    })
}

async fn ub(
    State(state): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = match single_header(&headers, header::AUTHORIZATION) {
        Ok(Some(a)) => a,
        Ok(None) => {
            return text(
                StatusCode::BAD_REQUEST,
                "Ub needs an Authorization: Digest header with username=IMPI",
            );
        }
        Err(reason) => return text(StatusCode::BAD_REQUEST, reason),
    };
    let user_agent = match single_header(&headers, header::USER_AGENT) {
        Ok(ua) => ua,
        Err(reason) => return text(StatusCode::BAD_REQUEST, reason),
    };
    let auth = match DigestAuthorization::parse(authorization) {
        Ok(a) => a,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    if auth.uri != target {
        return text(
            StatusCode::BAD_REQUEST,
            format!("Digest uri \"{}\" is not the request target \"{target}\"", auth.uri),
        );
    }
    let mut st = lock(&state);
    if !st.subscribers.contains_key(&auth.username) {
        return text(StatusCode::FORBIDDEN, format!("unknown IMPI {}", auth.username));
    }
    if auth.nonce.is_empty() {
        return st.challenge(&auth.username, ua_has_gba_uicc(user_agent));
    }
    let Some(pending) = st.pending.get(&auth.nonce) else {
        // An old, used or foreign nonce: start again.
        return st.challenge(&auth.username, ua_has_gba_uicc(user_agent));
    };
    if pending.impi != auth.username {
        return st.challenge(&auth.username, ua_has_gba_uicc(user_agent));
    }
    // Header checks: refused with 400, and the challenge stays usable.
    if let Some(a) = &auth.algorithm
        && !a.eq_ignore_ascii_case(ALGORITHM_AKAV1_MD5)
    {
        return text(StatusCode::BAD_REQUEST, format!("algorithm {a} is not {ALGORITHM_AKAV1_MD5}"));
    }
    match auth.qop {
        Some(q) if st.qop.contains(&q) => {}
        Some(q) => return text(StatusCode::BAD_REQUEST, format!("qop {} was not offered", q.as_str())),
        None if st.qop.is_empty() => {}
        None => return text(StatusCode::BAD_REQUEST, "qop missing, the challenge offered it"),
    }
    if auth.realm != st.realm {
        return text(StatusCode::BAD_REQUEST, format!("realm \"{}\" is not \"{}\"", auth.realm, st.realm));
    }
    if auth.opaque.as_deref() != Some(pending.opaque.as_str()) {
        return text(StatusCode::BAD_REQUEST, "opaque does not match the challenge");
    }
    let auts = match auth.decode_auts() {
        Ok(a) => a,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    // From here on the challenge is used up, whatever the outcome.
    let Some(pending) = st.pending.remove(&auth.nonce) else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "challenge vanished");
    };
    let uicc = pending.gba_type == GbaType::GbaU;
    if let Some(auts) = auts {
        if !auth.verify(b"", method.as_str(), &body) {
            tracing::info!(impi = %auth.username, "AUTS with a wrong digest response: no resynchronisation");
            return st.challenge(&auth.username, uicc);
        }
        let Some(sub) = st.subscribers.get_mut(&auth.username) else {
            return text(StatusCode::FORBIDDEN, format!("unknown IMPI {}", auth.username));
        };
        match auts.verify(&sub.milenage(), &pending.av.rand) {
            Some(sqn_ms) => {
                tracing::info!(impi = %auth.username, sqn_ms = sqn_ms.value(), "resynchronised SQN_HE from AUTS");
                sub.sqn_he = sqn_ms;
                if let Some(store) = &st.store
                    && let Err(e) = store.commit_sqn(&auth.username, sqn_ms)
                {
                    return text(StatusCode::SERVICE_UNAVAILABLE, format!("state store: {e}"));
                }
            }
            None => tracing::info!(impi = %auth.username, "AUTS with a wrong MAC-S: no resynchronisation"),
        }
        return st.challenge(&auth.username, uicc);
    }
    if !auth.verify(&pending.av.xres, method.as_str(), &body) {
        tracing::info!(impi = %auth.username, "wrong RES: new challenge, nothing stored");
        return st.challenge(&auth.username, uicc);
    }
    st.bootstrapped(&auth, pending, method.as_str(), &body)
}

impl BsfState {
    /// A fresh AKA challenge for `impi`: 401 with WWW-Authenticate.
    fn challenge(&mut self, impi: &str, ue_has_gba_u_uicc: bool) -> Response {
        let rand = self.rand.next();
        let opaque = hex::encode(self.rand.next());
        let Some(sub) = self.subscribers.get_mut(impi) else {
            return text(StatusCode::FORBIDDEN, format!("unknown IMPI {impi}"));
        };
        let sqn = match sub.next_sqn() {
            Ok(s) => s,
            Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("SQN exhausted: {e}")),
        };
        let gba_type =
            if sub.gba_type == GbaType::GbaU && ue_has_gba_u_uicc { GbaType::GbaU } else { GbaType::GbaMe };
        let av = AuthVector::generate(&sub.milenage(), &rand, sqn, &sub.amf);
        // Write-ahead: the SQN is durable before the challenge carrying it leaves.
        if let Some(store) = &self.store
            && let Err(e) = store.commit_sqn(impi, sqn)
        {
            return text(StatusCode::SERVICE_UNAVAILABLE, format!("state store: {e}"));
        }
        sub.sqn_he = sqn;
        let autn = if gba_type == GbaType::GbaU { av.gba_u_autn() } else { av.autn };
        let nonce = AkaNonce { rand, autn, server_data: Vec::new() }.encode();
        let challenge = DigestChallenge {
            realm: self.realm.clone(),
            nonce: nonce.clone(),
            algorithm: Some(ALGORITHM_AKAV1_MD5.to_owned()),
            qop: self.qop.clone(),
            opaque: Some(opaque.clone()),
            stale: false,
        };
        let value = match challenge.to_header_value() {
            Ok(v) => v,
            Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
        // One outstanding challenge per IMPI; and a bound on all of them.
        self.pending.retain(|_, p| p.impi != impi);
        if self.pending.len() >= MAX_PENDING_CHALLENGES
            && let Some(oldest) = self.pending.iter().min_by_key(|(_, p)| p.serial).map(|(n, _)| n.clone())
        {
            self.pending.remove(&oldest);
        }
        self.pending_serial += 1;
        let serial = self.pending_serial;
        self.pending.insert(nonce, Pending { impi: impi.to_owned(), av, gba_type, opaque, serial });
        tracing::debug!(impi, sqn = sqn.value(), %gba_type, "AKA challenge");
        Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header(header::WWW_AUTHENTICATE, value)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Body::from("AKA challenge\n"))
            .unwrap_or_default()
    }

    /// A successful run: store Ks under the B-TID, 200 OK with rspauth and the XML body.
    fn bootstrapped(
        &mut self,
        auth: &DigestAuthorization,
        p: Pending,
        method: &str,
        body: &[u8],
    ) -> Response {
        let btid = match BTid::new(&p.av.rand, &self.domain) {
            Ok(b) => b.as_str().to_owned(),
            Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, format!("B-TID: {e}")),
        };
        let created = unix_now();
        let expires = created.saturating_add(self.key_lifetime.as_secs()).min(ub::MAX_UTC_SECONDS);
        let info = BootstrappingInfo { btid: btid.clone(), lifetime: ub::utc_time_string(expires) };
        let xml = info.to_xml();
        let request = auth.digest_input(&p.av.xres, method, body);
        let auth_info = AuthenticationInfo {
            qop: auth.qop,
            rspauth: Some(digest::rspauth(&request, xml.as_bytes())),
            cnonce: auth.cnonce.clone(),
            nc: auth.nc,
            nextnonce: None,
        };
        let auth_info = match auth_info.to_header_value() {
            Ok(v) => v,
            Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        };
        tracing::info!(impi = %p.impi, %btid, gba_type = %p.gba_type, "bootstrapped");
        if let Some(store) = &self.store {
            let record = BootstrapRecord {
                btid: btid.clone(),
                impi: p.impi.clone(),
                rand: p.av.rand,
                ks: p.av.ks(),
                gba_type: p.gba_type,
                created,
                expires,
            };
            if let Err(e) = store.store_bootstrap(&record) {
                return text(StatusCode::SERVICE_UNAVAILABLE, format!("state store: {e}"));
            }
        }
        self.sessions.insert(
            btid,
            BootstrapSession {
                impi: p.impi,
                rand: p.av.rand,
                ks: p.av.ks(),
                gba_type: p.gba_type,
                created,
                expires,
            },
        );
        Response::builder()
            .status(StatusCode::OK)
            .header(header::HeaderName::from_static("authentication-info"), auth_info)
            .header(header::CONTENT_TYPE, ub::BSF_CONTENT_TYPE)
            .body(Body::from(xml))
            .unwrap_or_default()
    }
}

// ------------------------------------------------------------------------------------------------
// Zn

async fn zn(State(state): State<Shared>, body: Bytes) -> Response {
    let Ok(text_body) = std::str::from_utf8(&body) else {
        return zn_error(ZnErrorCode::BadRequest, "body is not UTF-8");
    };
    let req = match ZnRequest::from_xml(text_body) {
        Ok(r) => r,
        Err(e) => return zn_error(ZnErrorCode::BadRequest, e.to_string()),
    };
    let st = lock(&state);
    let Some(session) = st.sessions.get(&req.btid) else {
        return zn_error(ZnErrorCode::UnknownBtid, format!("no bootstrapping with B-TID {}", req.btid));
    };
    if unix_now() >= session.expires {
        return zn_error(
            ZnErrorCode::ExpiredBtid,
            format!(
                "the key lifetime of B-TID {} ended at {}",
                req.btid,
                ub::utc_time_string(session.expires)
            ),
        );
    }
    let impi = session.impi.as_bytes();
    let keys = match session.gba_type {
        GbaType::GbaMe => kdf::derive_ks_naf(&session.ks, &session.rand, impi, &req.naf_id)
            .map(|ks_naf| NafKeyMaterial::GbaMe { ks_naf }),
        GbaType::GbaU if req.gba_u_aware => {
            kdf::derive_gba_u_naf_keys(&session.ks, &session.rand, impi, &req.naf_id)
                .map(|(ext, int)| NafKeyMaterial::GbaU { ks_ext_naf: ext, ks_int_naf: Some(int) })
        }
        GbaType::GbaU => kdf::derive_ks_ext_naf(&session.ks, &session.rand, impi, &req.naf_id)
            .map(|ext| NafKeyMaterial::GbaU { ks_ext_naf: ext, ks_int_naf: None }),
    };
    let keys = match keys {
        Ok(k) => k,
        Err(e) => return zn_error(ZnErrorCode::BadRequest, format!("key derivation: {e}")),
    };
    let impus = st.subscribers.get(&session.impi).map(|s| s.impus.clone()).unwrap_or_default();
    let answer = ZnAnswer {
        btid: req.btid.clone(),
        keys,
        key_expiry: ub::utc_time_string(session.expires),
        bootstrap_time: ub::utc_time_string(session.created),
        impi: session.impi.clone(),
        impus,
    };
    tracing::info!(btid = %req.btid, naf = ?req.naf_id, gba_type = %answer.gba_type(), "Zn keys delivered");
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, zn::ZN_CONTENT_TYPE)
        .body(Body::from(answer.to_xml()))
        .unwrap_or_default()
}

// ------------------------------------------------------------------------------------------------
// The NAF side of Zn

/// Why a Zn query failed.
#[derive(Debug, thiserror::Error)]
pub enum ZnError {
    /// No HTTP exchange (connect, I/O, timeout, not loopback, unparseable HTTP).
    #[error("Zn: {0}")]
    Http(#[from] HttpError),
    /// The BSF refused: unknown or expired B-TID, or a bad request.
    #[error("Zn: BSF answered {status}: {} ({})", .body.code.as_str(), .body.reason)]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The BSF's error document.
        body: ZnErrorBody,
    },
    /// The BSF's answer does not parse.
    #[error("Zn: BSF answered {status} with an unreadable body: {reason}")]
    Malformed {
        /// The HTTP status.
        status: u16,
        /// What is wrong.
        reason: String,
    },
}

fn zn_outcome(r: http::HttpResponse) -> Result<ZnAnswer, ZnError> {
    let status = r.status;
    let body = std::str::from_utf8(&r.body)
        .map_err(|_| ZnError::Malformed { status, reason: "body is not UTF-8".into() })?;
    if status == 200 {
        ZnAnswer::from_xml(body).map_err(|e| ZnError::Malformed { status, reason: e.to_string() })
    } else {
        match ZnErrorBody::from_xml(body) {
            Ok(body) => Err(ZnError::Refused { status, body }),
            Err(e) => Err(ZnError::Malformed { status, reason: e.to_string() }),
        }
    }
}

/// A NAF asks the BSF at `bsf` for the keys of `request` (blocking).
pub fn zn_query(bsf: SocketAddr, request: &ZnRequest) -> Result<ZnAnswer, ZnError> {
    let body = request.to_xml();
    let r = http::request_blocking(
        bsf,
        "POST",
        zn::ZN_PATH,
        zn::ZN_CONTENT_TYPE,
        body.as_bytes(),
        http::DEFAULT_TIMEOUT,
    )?;
    zn_outcome(r)
}

/// A NAF asks the BSF at `bsf` for the keys of `request`, on the caller's tokio runtime.
pub async fn zn_query_async(bsf: SocketAddr, request: &ZnRequest) -> Result<ZnAnswer, ZnError> {
    let body = request.to_xml();
    let r =
        http::request(bsf, "POST", zn::ZN_PATH, zn::ZN_CONTENT_TYPE, body.as_bytes(), http::DEFAULT_TIMEOUT)
            .await?;
    zn_outcome(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILE: &str = r#"
iccid = "89882110000000000010"
imsi = "001010123456789"
k = "465b5ce8b199b49faa5f0a2ee238a6bc"
opc = "cd63cb71954a9f4e48a5994e37a02baf"
sqn = "000000000020"
amf = "8000"
impi = "001010123456789@ims.mnc001.mcc001.3gppnetwork.org"
impu = ["sip:001010123456789@ims.mnc001.mcc001.3gppnetwork.org", "tel:+15550100"]
home_domain = "ims.mnc001.mcc001.3gppnetwork.org"
pin1 = "1234"
adm1 = "3838383838383838"
"#;

    #[test]
    fn subscriber_from_card_profile() {
        let s = Subscriber::from_profile_toml(PROFILE).unwrap();
        assert_eq!(s.impi(), "001010123456789@ims.mnc001.mcc001.3gppnetwork.org");
        assert_eq!(s.impus().len(), 2);
        assert_eq!(s.gba_type(), GbaType::GbaU);
        // SQN 0x20 = SEQ 1, IND 0 with 5 IND bits; the next vector is SEQ 2, IND 0 = 0x40.
        assert_eq!(s.sqn_he().value(), 0x20);
        assert_eq!(s.next_sqn().unwrap().value(), 0x40);
        assert!(!format!("{s:?}").contains("465b5ce8"));
        let me = Subscriber::from_profile_toml(&format!("{PROFILE}gba_type = \"GBA_ME\"\n")).unwrap();
        assert_eq!(me.gba_type(), GbaType::GbaMe);
        // A card SQN_MS with IND ≠ 0 (SEQ 3, IND 7): next is SEQ 4, IND 0.
        let odd = s.clone().with_sqn(Sqn::from_seq_ind(3, 7, IND_LEN_BITS).unwrap());
        assert_eq!(odd.next_sqn().unwrap(), Sqn::from_seq_ind(4, 0, IND_LEN_BITS).unwrap());
    }

    #[test]
    fn subscriber_errors() {
        for (text, what) in [
            (PROFILE.replace("k = \"465b", "k = \"465"), "`k`"),
            (format!("{PROFILE}gba_type = \"GBA_X\"\n"), "`gba_type`"),
            (format!("{PROFILE}color = \"red\"\n"), "unknown field"),
            (PROFILE.replace("impu = [", "impu = [] #"), "`impu`"),
            (PROFILE.replace("amf = \"8000\"", ""), "missing field"),
        ] {
            let e = Subscriber::from_profile_toml(&text).unwrap_err().to_string();
            assert!(e.contains(what), "{e}");
        }
    }

    #[test]
    fn user_agent_tokens() {
        assert!(ua_has_gba_uicc(Some("GBA-service; 0.1; 3gpp-gba-uicc")));
        assert!(ua_has_gba_uicc(Some("keysim/0.1 3gpp-gba-uicc/1")));
        assert!(!ua_has_gba_uicc(Some("keysim/0.1 3gpp-gba")));
        assert!(!ua_has_gba_uicc(Some("x-3gpp-gba-uicc")));
        assert!(!ua_has_gba_uicc(None));
    }

    #[test]
    fn starts_and_stops_on_loopback_only() {
        let cfg = BsfConfig { bind: "0.0.0.0".parse().unwrap(), ..BsfConfig::default() };
        assert!(Bsf::start(cfg).is_err());
        let bsf = Bsf::start(BsfConfig::default()).unwrap();
        assert!(bsf.addr().ip().is_loopback());
        let r =
            http::request_blocking(bsf.addr(), "POST", "/nowhere", "text/plain", b"", http::DEFAULT_TIMEOUT)
                .unwrap();
        assert_eq!(r.status, 404);
        let addr = bsf.addr();
        bsf.shutdown().unwrap();
        assert!(std::net::TcpStream::connect(addr).is_err(), "nothing listens after shutdown");
    }

    #[test]
    fn zn_client_reports_unknown_btid() {
        let bsf = Bsf::start(BsfConfig::default()).unwrap();
        let naf_id = gba::NafId::new("naf.example.org", gba::UaSecurityProtocolId::HTTP_DIGEST).unwrap();
        let req = ZnRequest { btid: "AAAAAAAAAAAAAAAAAAAAAA==@x".into(), naf_id, gba_u_aware: true };
        match zn_query(bsf.addr(), &req) {
            Err(ZnError::Refused { status: 404, body }) => assert_eq!(body.code, ZnErrorCode::UnknownBtid),
            other => panic!("{other:?}"),
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        match rt.block_on(zn_query_async(bsf.addr(), &req)) {
            Err(ZnError::Refused { status: 404, body }) => assert_eq!(body.code, ZnErrorCode::UnknownBtid),
            other => panic!("{other:?}"),
        }
    }
}
