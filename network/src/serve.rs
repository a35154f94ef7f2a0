//! The standalone network of `keysim serve`: the BSF (TS 33.220) and the BM-SC (TS 33.246) as
//! long-lived servers on fixed loopback ports, their state in a [`Store`], an admin API on
//! loopback, until SIGINT or SIGTERM.
//!
//! Admin API (JSON; see [`ADMIN_ROUTES`]):
//!
//! - `GET /v1/status`: addresses, state directory;
//! - `GET /v1/registrations`: the BM-SC's registrations and the BSF's bootstrappings;
//! - `GET /v1/counters`: per service the MSK ID, MTK ID and media frames, per subscriber SQN_HE,
//!   the KMS's counters;
//! - `POST /v1/rotate-msk {"service_id"}`: a new MSK now, pushed to every registered UE;
//! - `POST /v1/pull {"btid"}`: a solicited pull to a registered UE;
//! - `POST /v1/media {"service_id", "on"}`: the scheduled media of a service on or off.
//!
//! Errors are `{"error": "…"}` with 400 (bad request), 404 (no such service, B-TID or route) or
//! 503 (the function is not running, or the store refused).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::bmsc::{Bmsc, BmscConfig, BmscError, BmscService};
use crate::bmsc_stream::{BmscStreamConfig, MediaFile};
use crate::bsf::{Bsf, BsfConfig, Subscriber};
use crate::config::{ConfigError, ServeConfig};
use crate::kms::{Kms, KmsConfig};
use crate::pcscf::{Pcscf, PcscfConfig, PcscfUser};
use crate::peer_thread::PeerThread;
use crate::rand_source::RandSource;
use crate::scf::{Scf, ScfConfig, ScfMode, ScfService, ScfSubscriber};
use crate::store::{Store, StoreError};

/// The routes of the admin API: (method, path).
pub const ADMIN_ROUTES: [(&str, &str); 6] = [
    ("GET", "/v1/status"),
    ("GET", "/v1/registrations"),
    ("GET", "/v1/counters"),
    ("POST", "/v1/rotate-msk"),
    ("POST", "/v1/pull"),
    ("POST", "/v1/media"),
];
/// The state directory when neither `--state-dir` nor the file's `state_dir` says one:
/// `$XDG_STATE_HOME/keysim/serve`, else `$HOME/.local/state/keysim/serve`, else this.
pub const FALLBACK_STATE_DIR: &str = "./keysim-state";
/// Largest admin request body.
pub const MAX_ADMIN_BODY: usize = 4096;

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The state store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A server could not start.
    #[error("{what}: {source}")]
    Start {
        /// Which.
        what: &'static str,
        /// Why.
        source: std::io::Error,
    },
}

/// The default state directory ([`FALLBACK_STATE_DIR`]).
pub fn default_state_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("keysim").join("serve");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(h).join(".local/state/keysim/serve");
    }
    PathBuf::from(FALLBACK_STATE_DIR)
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The configuration.
    pub config: ServeConfig,
    /// The state directory.
    pub state_dir: PathBuf,
    /// The BSF's address, when it runs.
    pub bsf: Option<SocketAddr>,
    /// The BM-SC's address, when it runs.
    pub bmsc: Option<SocketAddr>,
    /// The KMS's address, when it runs.
    pub kms: Option<SocketAddr>,
    /// The SCF's SIP address, when it runs.
    pub scf: Option<SocketAddr>,
    /// The P-CSCF's SIP address, when it runs.
    pub pcscf: Option<SocketAddr>,
    /// Subscribers used when the configuration lists none (the built-in card).
    pub default_subscribers: Vec<Subscriber>,
}

impl Plan {
    /// The plan of a configuration: the functions it enables at its addresses, unless `chosen`
    /// (the `--bsf`/`--bmsc` options) names some.
    pub fn new(
        config: ServeConfig,
        state_dir: Option<PathBuf>,
        chosen_bsf: Option<SocketAddr>,
        chosen_bmsc: Option<SocketAddr>,
        chosen_kms: Option<SocketAddr>,
        chosen_sip: (Option<SocketAddr>, Option<SocketAddr>),
        default_subscribers: Vec<Subscriber>,
    ) -> Result<Plan, ConfigError> {
        let (chosen_scf, chosen_pcscf) = chosen_sip;
        for (opt, a) in [
            ("--bsf", chosen_bsf),
            ("--bmsc", chosen_bmsc),
            ("--kms", chosen_kms),
            ("--scf", chosen_scf),
            ("--pcscf", chosen_pcscf),
        ] {
            if let Some(a) = a
                && !a.ip().is_loopback()
            {
                return Err(ConfigError::Value {
                    key: opt.into(),
                    reason: format!("{a}: the network listens on loopback only"),
                });
            }
        }
        let any = [chosen_bsf, chosen_bmsc, chosen_kms, chosen_scf, chosen_pcscf].iter().any(Option::is_some);
        let (bsf, bmsc, kms, scf, pcscf) = if any {
            (chosen_bsf, chosen_bmsc, chosen_kms, chosen_scf, chosen_pcscf)
        } else {
            (
                config.bsf.enabled.then_some(config.bsf.listen),
                config.bmsc.enabled.then_some(config.bmsc.listen),
                config.kms.enabled.then_some(config.kms.listen),
                config.scf.enabled.then_some(config.scf.listen),
                config.pcscf.enabled.then_some(config.pcscf.listen),
            )
        };
        if pcscf.is_some() && scf.is_none() {
            return Err(ConfigError::Value {
                key: "pcscf".into(),
                reason: "the P-CSCF forwards to the SCF: run the SCF too".into(),
            });
        }
        let state_dir = state_dir.or_else(|| config.state_dir.clone()).unwrap_or_else(default_state_dir);
        Ok(Plan { config, state_dir, bsf, bmsc, kms, scf, pcscf, default_subscribers })
    }
}

/// The running network.
pub struct Running {
    bsf: Option<Arc<Bsf>>,
    bmsc: Option<Arc<Bmsc>>,
    kms: Option<Arc<Kms>>,
    scf: Option<Scf>,
    pcscf: Option<Pcscf>,
    admin: PeerThread,
    admin_addr: SocketAddr,
    store: Arc<Store>,
    state_dir: PathBuf,
    signals: Option<Signals>,
}

/// SIGINT and SIGTERM, caught from before the first server starts (so a signal that comes the
/// moment the servers are up is not the default action, an exit without shutdown).
struct Signals {
    runtime: tokio::runtime::Runtime,
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (interrupt, terminate) = {
            let _context = runtime.enter();
            (signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?)
        };
        Ok(Signals { runtime, interrupt, terminate })
    }

    fn wait(mut self) -> &'static str {
        let (int, term) = (&mut self.interrupt, &mut self.terminate);
        self.runtime.block_on(async {
            tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            }
        })
    }
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").field("admin", &self.admin_addr).finish_non_exhaustive()
    }
}

fn random_seed(rand: &mut RandSource) -> [u8; 32] {
    let mut seed = [0u8; 32];
    seed[..16].copy_from_slice(&rand.next());
    seed[16..].copy_from_slice(&rand.next());
    seed
}

/// Opens the store and starts the chosen functions and the admin API.
pub fn start(plan: Plan) -> Result<Running, ServeError> {
    let signals =
        Signals::install().map_err(|source| ServeError::Start { what: "signal handlers", source })?;
    let store = Arc::new(Store::open(&plan.state_dir)?);
    let c = &plan.config;
    let mut subscribers = c.subscribers()?;
    if subscribers.is_empty() {
        subscribers = plan.default_subscribers.clone();
    }
    let subscribers_for_sip: Vec<(String, Vec<String>)> =
        subscribers.iter().map(|s| (s.impi().to_owned(), s.impus().to_vec())).collect();
    let bsf = match plan.bsf {
        Some(addr) => Some(Arc::new(
            Bsf::start(BsfConfig {
                bind: addr.ip(),
                port: addr.port(),
                domain: c.bsf.domain.clone(),
                realm: c.bsf.domain.clone(),
                key_lifetime: Duration::from_secs(c.bsf.key_lifetime_s),
                subscribers,
                store: Some(store.clone()),
                ..BsfConfig::default()
            })
            .map_err(|source| ServeError::Start { what: "BSF", source })?,
        )),
        None => None,
    };
    let bmsc = match plan.bmsc {
        Some(addr) => {
            let b = &c.bmsc;
            let zn = b.bsf_zn.or(plan.bsf).unwrap_or(c.bsf.listen);
            let mut config = BmscConfig::new(&b.fqdn, zn);
            config.bind = addr.ip();
            config.http_port = addr.port();
            config.mikey_port = b.mikey_listen.port();
            config.ue_mikey_port = b.ue_mikey_port;
            config.v_bit = b.v_bit;
            config.bearer_mikey = b.bearer_mikey_or_default();
            config.bearer_media = b.bearer_media_or_default();
            config.schedule = Some(b.schedule());
            config.store = Some(store.clone());
            if plan.scf.is_some() {
                config.trusted_scfs = vec![crate::scf::DEFAULT_HTTP_SOURCE];
            }
            // Keys and media come from a fresh seed each start: what must continue (MSKs,
            // counters) comes from the store, so no key is generated twice.
            let mut rand = RandSource::new(None);
            let mut services = Vec::new();
            for (i, s) in b.services.iter().enumerate() {
                let mut stream = BmscStreamConfig::new(&b.fqdn, random_seed(&mut rand));
                stream.key_domain_id = s.key_domain_id(i)?;
                stream.key_group = s.key_group;
                stream.ssrc = s.ssrc.unwrap_or(0x4D42_4D00 + u32::from(s.key_group));
                if let Some(path) = &s.media {
                    let m = MediaFile::load_g711(path).map_err(|e| ConfigError::Value {
                        key: format!("bmsc.service[{i}].media"),
                        reason: format!("{}: {e}", path.display()),
                    })?;
                    stream.media = Some(Arc::new(m));
                }
                services.push(BmscService { service_id: s.id.clone(), stream });
            }
            config.services = services;
            Some(Arc::new(Bmsc::start(config).map_err(|source| ServeError::Start { what: "BM-SC", source })?))
        }
        None => None,
    };
    let (scf, pcscf) = start_sip(&plan, &subscribers_for_sip, bmsc.as_ref().map(|b| b.addr()))?;
    let kms = match plan.kms {
        Some(addr) => {
            let zn = c.kms.bsf_zn.or(plan.bsf).unwrap_or(c.bsf.listen);
            let mut config = KmsConfig::new(&c.kms.fqdn, zn, None);
            config.bind = addr.ip();
            config.port = addr.port();
            config.policy.allow_reuse = c.kms.allow_reuse;
            if c.kms.max_ticket_lifetime_s > 0 {
                config.policy.max_lifetime = Duration::from_secs(c.kms.max_ticket_lifetime_s);
            }
            config.store = Some(store.clone());
            Some(Arc::new(Kms::start(config).map_err(|source| ServeError::Start { what: "KMS", source })?))
        }
        None => None,
    };
    let admin_addr = c.admin.listen;
    let listener = std::net::TcpListener::bind(admin_addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .map_err(|source| ServeError::Start { what: "admin API", source })?;
    let admin_addr =
        listener.local_addr().map_err(|source| ServeError::Start { what: "admin API", source })?;
    let ctx = Arc::new(Admin {
        scf: scf.as_ref().map(|s| s.addr()),
        pcscf: pcscf.as_ref().map(|p| p.addr()),
        bsf: bsf.clone(),
        bmsc: bmsc.clone(),
        kms: kms.clone(),
        state_dir: plan.state_dir.clone(),
        admin: admin_addr,
    });
    let app = axum::Router::new()
        .route("/v1/status", get(status))
        .route("/v1/registrations", get(registrations))
        .route("/v1/counters", get(counters))
        .route("/v1/rotate-msk", post(rotate_msk))
        .route("/v1/pull", post(pull))
        .route("/v1/media", post(media))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such admin route".into()) })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_ADMIN_BODY))
        .with_state(ctx);
    let admin = PeerThread::serve_http("admin API", "admin", listener, app)
        .map_err(|source| ServeError::Start { what: "admin API", source })?;
    Ok(Running {
        bsf,
        bmsc,
        kms,
        scf,
        pcscf,
        admin,
        admin_addr,
        store,
        state_dir: plan.state_dir,
        signals: Some(signals),
    })
}

impl Running {
    /// The BSF's address.
    pub fn bsf_addr(&self) -> Option<SocketAddr> {
        self.bsf.as_ref().map(|b| b.addr())
    }
    /// The BM-SC's HTTP and MIKEY addresses.
    pub fn bmsc_addrs(&self) -> Option<(SocketAddr, SocketAddr)> {
        self.bmsc.as_ref().map(|b| (b.addr(), b.mikey_addr()))
    }
    /// The SCF's and the P-CSCF's SIP addresses.
    pub fn sip_addrs(&self) -> (Option<SocketAddr>, Option<SocketAddr>) {
        (self.scf.as_ref().map(|s| s.addr()), self.pcscf.as_ref().map(|p| p.addr()))
    }
    /// The KMS's address.
    pub fn kms_addr(&self) -> Option<SocketAddr> {
        self.kms.as_ref().map(|k| k.addr())
    }
    /// The admin API's address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }
    /// The state directory.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }
    /// The database file.
    pub fn db_path(&self) -> &Path {
        self.store.path()
    }

    /// Serves until SIGINT or SIGTERM, then shuts down; returns the signal's name.
    pub fn run_until_signal(mut self) -> std::io::Result<&'static str> {
        let name = match self.signals.take() {
            Some(s) => s.wait(),
            None => Signals::install()?.wait(),
        };
        tracing::info!("{name}: shutting down");
        self.shutdown()?;
        Ok(name)
    }

    /// Stops the admin API, then the BM-SC (its schedule, then in-flight requests finish), then
    /// the BSF; the store closes last (every change was committed when made).
    pub fn shutdown(mut self) -> std::io::Result<()> {
        self.admin.stop()?;
        drop(self.pcscf.take());
        drop(self.scf.take());
        if let Some(k) = self.kms.take() {
            match Arc::try_unwrap(k) {
                Ok(k) => k.shutdown()?,
                Err(k) => drop(k),
            }
        }
        if let Some(b) = self.bmsc.take() {
            match Arc::try_unwrap(b) {
                Ok(b) => b.shutdown()?,
                Err(b) => drop(b),
            }
        }
        if let Some(b) = self.bsf.take() {
            match Arc::try_unwrap(b) {
                Ok(b) => b.shutdown()?,
                Err(b) => drop(b),
            }
        }
        Ok(())
    }
}

/// The SCF (every subscriber's IMPUs may use every service of the BM-SC) and the P-CSCF in
/// front of it, which knows every subscriber.
fn start_sip(
    plan: &Plan,
    subscribers: &[(String, Vec<String>)],
    bmsc: Option<SocketAddr>,
) -> Result<(Option<Scf>, Option<Pcscf>), ServeError> {
    let Some(addr) = plan.scf else { return Ok((None, None)) };
    let c = &plan.config;
    let zn = plan.bsf.unwrap_or(c.bsf.listen);
    let bmsc = bmsc.unwrap_or(c.bmsc.listen);
    let mut config = ScfConfig::new(&c.scf.domain, zn);
    config.bind = addr.ip();
    config.sip_port = addr.port();
    config.services =
        c.bmsc.services.iter().map(|s| ScfService::new(&s.id, &c.scf.naf_fqdn, bmsc, s.key_group)).collect();
    let ids: Vec<String> = c.bmsc.services.iter().map(|s| s.id.clone()).collect();
    config.subscribers = subscribers
        .iter()
        .flat_map(|(_, impus)| impus.iter())
        .map(|impu| ScfSubscriber { impu: impu.clone(), services: ids.clone() })
        .collect();
    config.mode = ScfMode::SipBased;
    let scf = Scf::start(config).map_err(|source| ServeError::Start { what: "SCF", source })?;
    let pcscf = match plan.pcscf {
        Some(addr) => {
            let mut p = PcscfConfig::new(scf.addr());
            p.bind = addr.ip();
            p.port = addr.port();
            p.users = subscribers
                .iter()
                .map(|(impi, impus)| PcscfUser { impi: impi.clone(), impus: impus.clone(), ue_addr: None })
                .collect();
            let pcscf = Pcscf::start(p).map_err(|source| ServeError::Start { what: "P-CSCF", source })?;
            scf.trust_proxy(pcscf.addr());
            Some(pcscf)
        }
        None => None,
    };
    Ok((Some(scf), pcscf))
}

// ------------------------------------------------------------------------------------------------
// Admin API

struct Admin {
    scf: Option<SocketAddr>,
    pcscf: Option<SocketAddr>,
    bsf: Option<Arc<Bsf>>,
    bmsc: Option<Arc<Bmsc>>,
    kms: Option<Arc<Kms>>,
    state_dir: PathBuf,
    admin: SocketAddr,
}

type Ctx = State<Arc<Admin>>;

fn error(status: StatusCode, reason: String) -> Response {
    (status, Json(json!({ "error": reason }))).into_response()
}

fn bmsc_error(e: BmscError) -> Response {
    let status = match e {
        BmscError::UnknownService(_) | BmscError::NotRegistered(_) => StatusCode::NOT_FOUND,
        BmscError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        BmscError::Stream(_) => StatusCode::CONFLICT,
    };
    error(status, e.to_string())
}

fn no_bmsc() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "the BM-SC is not running here".into())
}

fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, Box<Response>> {
    serde_json::from_slice(bytes)
        .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, format!("request body: {e}"))))
}

async fn status(State(a): Ctx) -> Response {
    Json(json!({
        "bsf": a.bsf.as_ref().map(|b| b.addr().to_string()),
        "bmsc": a.bmsc.as_ref().map(|b| b.addr().to_string()),
        "bmsc_mikey": a.bmsc.as_ref().map(|b| b.mikey_addr().to_string()),
        "kms": a.kms.as_ref().map(|k| k.addr().to_string()),
        "scf": a.scf.map(|s| s.to_string()),
        "pcscf": a.pcscf.map(|s| s.to_string()),
        "admin": a.admin.to_string(),
        "state_dir": a.state_dir.display().to_string(),
        "test_keys": true,
    }))
    .into_response()
}

async fn registrations(State(a): Ctx) -> Response {
    let regs = a.bmsc.as_ref().map(|b| b.registration_list()).unwrap_or_default();
    let boots: Vec<Value> = a
        .bsf
        .as_ref()
        .map(|b| b.sessions())
        .unwrap_or_default()
        .into_iter()
        .map(|(btid, s)| {
            json!({"btid": btid, "impi": s.impi, "gba_type": s.gba_type.to_string(),
                   "created": s.created, "expires": s.expires})
        })
        .collect();
    Json(json!({ "registrations": regs, "bootstraps": boots })).into_response()
}

async fn counters(State(a): Ctx) -> Response {
    let services = a.bmsc.as_ref().map(|b| b.service_list()).unwrap_or_default();
    let subscribers: Vec<Value> = a
        .bsf
        .as_ref()
        .map(|b| b.subscriber_sqns())
        .unwrap_or_default()
        .into_iter()
        .map(|(impi, sqn)| json!({"impi": impi, "sqn": sqn.value()}))
        .collect();
    let mikey: Vec<Value> = a
        .bmsc
        .as_ref()
        .map(|b| b.registration_list())
        .unwrap_or_default()
        .into_iter()
        .map(|r| json!({"btid": r.btid, "counter": r.mikey_counter}))
        .collect();
    let stats = a.bmsc.as_ref().map(|b| b.stats());
    Json(json!({
        "services": services,
        "subscribers": subscribers,
        "mikey_counters": mikey,
        "bmsc_http_4xx": stats.map(|s| s.http_4xx),
        "bmsc_challenges": stats.map(|s| s.challenges),
        "kms": a.kms.as_ref().map(|k| k.stats()),
    }))
    .into_response()
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceBody {
    service_id: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PullBody {
    btid: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct MediaBody {
    service_id: String,
    on: bool,
}

async fn rotate_msk(State(a): Ctx, bytes: Bytes) -> Response {
    let b: ServiceBody = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let Some(bmsc) = &a.bmsc else { return no_bmsc() };
    match bmsc.rotate_msk(&b.service_id) {
        Ok(id) => Json(json!({"service_id": b.service_id, "msk_id": id.0})).into_response(),
        Err(e) => bmsc_error(e),
    }
}

async fn pull(State(a): Ctx, bytes: Bytes) -> Response {
    let b: PullBody = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let Some(bmsc) = &a.bmsc else { return no_bmsc() };
    match bmsc.solicited_pull(&b.btid) {
        Ok(n) => Json(json!({"btid": b.btid, "pulls": n})).into_response(),
        Err(e) => bmsc_error(e),
    }
}

async fn media(State(a): Ctx, bytes: Bytes) -> Response {
    let b: MediaBody = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let Some(bmsc) = &a.bmsc else { return no_bmsc() };
    match bmsc.set_media(&b.service_id, b.on) {
        Ok(()) => Json(json!({"service_id": b.service_id, "media_on": b.on})).into_response(),
        Err(e) => bmsc_error(e),
    }
}
