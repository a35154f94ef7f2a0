//! Many UEs against BM-SCs on loopback (`keysim bench scale`, `keysim bench storm`)
//! (TS 33.246 §6.3.2 registration and MSK delivery, §6.3.3 MTK delivery, §6.3.2.2.4 solicited
//! pull), on the UICC-based path with an emulated card per UE.
//!
//! Each UE has its own emulated card (its own applet state), its own GBA_U bootstrap on that card
//! (a RAND of its own, so its own Ks, B-TID, MUK and MRK) and its own NAF derivation for the BM-SC,
//! and its own HTTP Digest client; it registers with the BM-SC over HTTP, takes the MSK push on
//! its card (MSK Update) and then every MTK message on its card (MTK Generation). What is shared,
//! so that N UEs fit in one process on two cores:
//! * the UEs are multiplexed on a few worker threads (`--threads`), each serving its share in turn;
//! * the network side of GBA (the BSF's authentication vector and NAF key derivation) is computed
//!   in-process and handed to the BM-SC as a Zn answer; Ub over HTTP is not exercised here
//!   (`keysim bench` measures it per UE);
//! * all UEs send from 127.0.0.1, so the BM-SC's MSK pushes and solicited pulls, addressed to
//!   (source IP, UE MIKEY port), land on one socket; a dispatcher hands each message to its UE by
//!   the message's IDr (the UE's B-TID), as distinct UE addresses would;
//! * MTK messages go to one bearer socket per worker (the BM-SC sends each message to every
//!   bearer address, as a multicast bearer delivers one copy per receiver host); each worker
//!   gives the message to each of its UEs' cards.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use me::{BmscClient, BmscSession, MbmsKeyManagement, MskOutcome, UiccBased};
use mikey::mbms::{MskId, MtkId};
use network::bmsc::{Bmsc, BmscConfig, BmscService};
use serde_json::{Value, json};
use wire::mbms_key_management::MskKeyId;
use wire::zn::{NafKeyMaterial, ZnAnswer};

use crate::card_setup::{CardWithNafKeys, card_with_naf_keys};
use crate::{Context, Error, Result, bail, ensure};

const BMSC_FQDN: &str = "bmsc.example.org";
const SERVICE_ID: &str = "urn:keysim:mbms:scale:1";
const KEY_GROUP: u16 = 0x0001;
const STREAM_SEED: [u8; 32] = [0x5a; 32];
/// UEs per BM-SC instance: a `network::bmsc::Bmsc` keeps at most `MAX_KNOWN_BTIDS` (4096) B-TIDs
/// and registrations, so N UEs are spread over ceil(N / UES_PER_BMSC) BM-SCs on loopback, each
/// with the same service, UE `i` on BM-SC `i mod` their number.
const UES_PER_BMSC: usize = 4000;
/// A solicited pull lost on the shared push socket is sent again this long after the last round.
const RESEND_AFTER: Duration = Duration::from_secs(2);
/// The pulls leave in bursts of this many; the next burst when the dispatcher has taken the
/// previous one off the push socket that all UEs share here (or after 50 ms). Separate UEs would
/// each have a socket buffer of their own; one shared buffer overflows when a burst of
/// thousands of datagrams meets a dispatcher that waits for a core.
const PULL_BURST: usize = 64;
/// Pull rounds at most (the first and the resends).
const MAX_PULL_ROUNDS: u32 = 10;
/// The longest a phase may wait for its last event before the run is abandoned as broken.
const PHASE_WAIT: Duration = Duration::from_secs(120);

type Km = UiccBased<sim_reader::Emulator>;

/// One UE: its card behind the UICC-based key management, its BM-SC session, what it holds.
struct ScaleUe {
    index: usize,
    /// Its BM-SC (see [`UES_PER_BMSC`]).
    shard: usize,
    km: Km,
    session: BmscSession,
    msk: Option<MskId>,
    mtks: u64,
    /// When it holds the MSK the storm is about.
    storm_done: Option<Instant>,
}

/// What the main thread tells a worker.
enum Ctl {
    /// Register every UE (HTTP), then wait until each holds an MSK.
    Register,
    /// Take `rounds` MTK messages from the bearer socket, one round at a time.
    Mtk { rounds: u64 },
    /// Answer solicited pulls until each UE holds the new MSK of its BM-SC.
    Storm { msks: Vec<MskId> },
    /// Report and stop.
    Finish,
}

/// What reaches a worker.
enum Event {
    Ctl(Ctl),
    /// An MSK push or solicited pull for the worker's UE `local`.
    Push {
        local: usize,
        message: Vec<u8>,
        pull: bool,
    },
    /// Go on with the next MTK round (the MTK ID each BM-SC sent).
    MtkRound(Vec<MtkId>),
}

/// What a worker reports.
enum Report {
    SetUp {
        btids: Vec<(String, usize, usize)>,
    },
    Registered {
        http_errors: u64,
    },
    MtkRoundDone {
        mtks: Vec<Option<[u8; 16]>>,
    },
    StormDone {
        done: Vec<(usize, Option<Instant>)>,
        msk_requests: u64,
        http_errors: u64,
        refused: u64,
        first_refusal: Option<String>,
    },
    Failed(String),
}

/// Peak and current resident memory of this process (VmHWM, VmRSS), bytes.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// A RAND of its own for UE `index`.
fn rand_of(index: usize) -> [u8; 16] {
    let mut r = [0x6bu8; 16];
    r[..8].copy_from_slice(&(index as u64).to_be_bytes());
    r
}

struct Worker {
    id: usize,
    ues: Vec<ScaleUe>,
    /// One bearer socket per BM-SC.
    bearers: Vec<UdpSocket>,
    events: Receiver<Event>,
    reports: Sender<(usize, Report)>,
    admission: Arc<dyn Admission>,
    /// The HTTP client of each BM-SC its UEs use.
    clients: HashMap<usize, BmscClient>,
    /// The User Service every UE registers for.
    service_id: Arc<str>,
    /// Per UE (by index): it holds the MSK of the storm.
    storm_flags: Arc<Vec<AtomicBool>>,
    /// MIKEY messages a card refused, and the first refusal.
    refused: u64,
    first_refusal: Option<String>,
}

impl Worker {
    fn report(&self, r: Report) {
        let _ = self.reports.send((self.id, r));
    }

    fn set_up(&mut self, indices: Vec<usize>) -> Result<Vec<(String, usize, usize)>> {
        // Subscriber `index`: the built-in profile with an IMSI, IMPI and K of its own (the BM-SC
        // keeps one registration per IMPI, as one subscriber re-bootstrapping moves its registrations).
        let base = sim_reader::CardProfile::default();
        let mut btids = Vec::with_capacity(indices.len());
        for (local, index) in indices.into_iter().enumerate() {
            let d = network::config::derived_identity(index);
            let profile = base
                .with_identity(&d.imsi, &d.impi, &[d.impu], d.k)
                .map_err(|e| Error::Other(format!("profile of UE {index}: {e}")))?;
            let CardWithNafKeys { card, btid, ks_ext_naf, ks_int_naf, impi, .. } =
                card_with_naf_keys(&profile, rand_of(index)).with_context(|| format!("UE {index}: card"))?;
            let mrk = gba::mbms_keys::uicc_based_mrk(&ks_ext_naf);
            let shard = index % self.admission.shards();
            let bmsc = self.admission.admit(
                shard,
                &ZnAnswer {
                    btid: btid.clone(),
                    keys: NafKeyMaterial::GbaU { ks_ext_naf, ks_int_naf: Some(ks_int_naf) },
                    key_expiry: "2099-12-31T23:59:59Z".to_owned(),
                    bootstrap_time: "2025-01-01T00:00:00Z".to_owned(),
                    impi,
                    impus: Vec::new(),
                },
            )?;
            if let std::collections::hash_map::Entry::Vacant(e) = self.clients.entry(shard) {
                e.insert(BmscClient::new(&format!("http://{bmsc}"), BMSC_FQDN)?);
            }
            let session = BmscSession::new(&btid, mrk, true);
            let km = UiccBased::new(me::Card::from_session(card));
            self.ues.push(ScaleUe { index, shard, km, session, msk: None, mtks: 0, storm_done: None });
            btids.push((btid, local, index));
        }
        Ok(btids)
    }

    /// An MSK push or solicited pull for UE `local`; a pull is answered with a basic MSK request.
    fn push(
        &mut self,
        local: usize,
        message: &[u8],
        storm: Option<&[MskId]>,
        counts: &mut (u64, u64),
    ) -> Result<()> {
        let ue = self.ues.get_mut(local).ok_or_else(|| Error::Other(format!("no UE {local}")))?;
        // A message the card refuses is the UE's business (counted), not the run's end.
        let outcome = match ue.km.msk_update(message) {
            Ok(o) => o,
            Err(e) => {
                self.refused += 1;
                if self.first_refusal.is_none() {
                    self.first_refusal = Some(format!("UE {}: {e}", ue.index));
                }
                return Ok(());
            }
        };
        match outcome {
            MskOutcome::Msk { msk_id, .. } => {
                ue.msk = Some(msk_id);
                let target = storm.and_then(|m| m.get(ue.shard)).copied();
                if target == Some(msk_id) && ue.storm_done.is_none() {
                    ue.storm_done = Some(Instant::now());
                    if let Some(f) = self.storm_flags.get(ue.index) {
                        f.store(true, Ordering::Release);
                    }
                }
            }
            MskOutcome::SolicitedPull { key_domain_id, key_group, .. } => {
                counts.0 += 1;
                let key = MskKeyId::any_in_group(key_domain_id, key_group);
                let answer = match self.clients.get(&ue.shard) {
                    Some(client) => ue.session.msk_request(client, &[key]),
                    None => Err(me::Error::InvalidInput(format!("no client of BM-SC {}", ue.shard))),
                };
                if let Err(e) = answer {
                    counts.1 += 1;
                    tracing::warn!(ue = ue.index, "MSK request: {e}");
                }
            }
        }
        Ok(())
    }

    fn run(mut self, indices: Vec<usize>) {
        match self.set_up(indices) {
            Ok(btids) => self.report(Report::SetUp { btids }),
            Err(e) => return self.report(Report::Failed(e.chain())),
        }
        loop {
            let Ok(event) = self.events.recv() else { return };
            let result = match event {
                Event::Ctl(Ctl::Register) => self.register(),
                Event::Ctl(Ctl::Mtk { rounds }) => self.mtk_rounds(rounds),
                Event::Ctl(Ctl::Storm { msks }) => self.storm(&msks),
                Event::Ctl(Ctl::Finish) => return,
                Event::Push { local, message, .. } => self.push(local, &message, None, &mut (0, 0)),
                Event::MtkRound(_) => Ok(()),
            };
            if let Err(e) = result {
                return self.report(Report::Failed(e.chain()));
            }
        }
    }

    /// Takes pushes (and nothing else) until `done` holds or the phase times out.
    fn take_pushes(
        &mut self,
        storm: Option<&[MskId]>,
        counts: &mut (u64, u64),
        done: impl Fn(&[ScaleUe]) -> bool,
    ) -> Result<()> {
        // Each UE stands for itself: an MSK push that has arrived is taken before the next UE's
        // solicited pull (one queue in arrival order would serve every pull before any push).
        let deadline = Instant::now() + PHASE_WAIT;
        let mut pulls: std::collections::VecDeque<(usize, Vec<u8>)> = Default::default();
        let mut msks: std::collections::VecDeque<(usize, Vec<u8>)> = Default::default();
        while !done(&self.ues) {
            loop {
                match self.events.try_recv() {
                    Ok(Event::Push { local, message, pull: true }) => pulls.push_back((local, message)),
                    Ok(Event::Push { local, message, pull: false }) => msks.push_back((local, message)),
                    Ok(Event::Ctl(_)) => return Ok(()),
                    Ok(Event::MtkRound(_)) => bail!("worker {}: an MTK round while taking pushes", self.id),
                    Err(_) => break,
                }
            }
            if let Some((local, message)) = msks.pop_front().or_else(|| pulls.pop_front()) {
                self.push(local, &message, storm, counts)?;
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Event::Push { local, message, pull: true }) => pulls.push_back((local, message)),
                Ok(Event::Push { local, message, pull: false }) => msks.push_back((local, message)),
                // The main thread ends the phase (a storm it gave up on).
                Ok(Event::Ctl(_)) => return Ok(()),
                Ok(Event::MtkRound(_)) => bail!("worker {}: an MTK round while taking pushes", self.id),
                Err(RecvTimeoutError::Timeout) => return Ok(()),
                Err(RecvTimeoutError::Disconnected) => bail!("dispatcher gone"),
            }
        }
        Ok(())
    }

    fn register(&mut self) -> Result<()> {
        let services = vec![self.service_id.to_string()];
        let mut http_errors = 0;
        let mut counts = (0, 0);
        for local in 0..self.ues.len() {
            let ue = &mut self.ues[local];
            let client = self
                .clients
                .get(&ue.shard)
                .ok_or_else(|| Error::Other(format!("no client of BM-SC {}", ue.shard)))?;
            match ue.session.register(client, &services) {
                Ok(answer) if answer.code_of(&self.service_id) == Some(200) => {}
                Ok(answer) => bail!("UE {}: registration refused: {answer:?}", ue.index),
                Err(e) => {
                    http_errors += 1;
                    tracing::warn!(ue = ue.index, "registration: {e}");
                }
            }
            // Take the pushes that have come meanwhile.
            while let Ok(event) = self.events.try_recv() {
                match event {
                    Event::Push { local, message, .. } => self.push(local, &message, None, &mut counts)?,
                    _ => bail!("worker {}: a command while registering", self.id),
                }
            }
        }
        self.take_pushes(None, &mut counts, |ues| ues.iter().all(|u| u.msk.is_some()))?;
        self.report(Report::Registered { http_errors });
        Ok(())
    }

    fn mtk_rounds(&mut self, rounds: u64) -> Result<()> {
        for b in &self.bearers {
            b.set_read_timeout(Some(PHASE_WAIT))?;
        }
        let mut buf = [0u8; 2048];
        for _ in 0..rounds {
            let ids = match self.events.recv_timeout(PHASE_WAIT) {
                Ok(Event::MtkRound(ids)) => ids,
                Ok(_) => bail!("worker {}: expected an MTK round", self.id),
                Err(_) => bail!("worker {}: no MTK round", self.id),
            };
            let mut mtks = Vec::with_capacity(ids.len());
            for (shard, expected) in ids.into_iter().enumerate() {
                let bearer = self
                    .bearers
                    .get(shard)
                    .ok_or_else(|| Error::Other(format!("no bearer socket {shard}")))?;
                let (n, _) = bearer.recv_from(&mut buf).context("bearer socket")?;
                mtks.push(mtk_round(&mut self.ues, shard, &buf[..n], expected)?);
            }
            self.report(Report::MtkRoundDone { mtks });
        }
        Ok(())
    }

    fn storm(&mut self, msks: &[MskId]) -> Result<()> {
        let mut counts = (0, 0);
        self.take_pushes(Some(msks), &mut counts, |ues| ues.iter().all(|u| u.storm_done.is_some()))?;
        let done = self.ues.iter().map(|u| (u.index, u.storm_done)).collect();
        let first_refusal = self.first_refusal.clone();
        self.report(Report::StormDone {
            done,
            msk_requests: counts.0,
            http_errors: counts.1,
            refused: self.refused,
            first_refusal,
        });
        Ok(())
    }
}

/// One MTK message to every UE of BM-SC `shard`; the MTK they all derived.
fn mtk_round(ues: &mut [ScaleUe], shard: usize, message: &[u8], expected: MtkId) -> Result<Option<[u8; 16]>> {
    let mut first: Option<[u8; 16]> = None;
    for ue in ues.iter_mut().filter(|u| u.shard == shard) {
        let out = ue.km.mtk_generate(message).with_context(|| format!("UE {}: MTK message", ue.index))?;
        ensure!(out.mtk_id == expected, "UE {}: MTK ID {:?}, expected {expected:?}", ue.index, out.mtk_id);
        let mtk = *out.mtk.as_bytes();
        match first {
            None => first = Some(mtk),
            Some(f) => ensure!(f == mtk, "UE {}: another MTK than its neighbours", ue.index),
        }
        ue.mtks += 1;
    }
    Ok(first)
}

/// Where the UEs of a [`UeFleet`] register: BM-SCs that learn each UE's NAF keys as a BSF's Zn
/// answer would give them (TS 33.220 §4.5.3).
pub trait Admission: Send + Sync {
    /// How many BM-SCs; UE `i` goes to BM-SC `i mod shards`.
    fn shards(&self) -> usize;
    /// Makes BM-SC `shard` know a UE's B-TID and NAF keys; returns that BM-SC's HTTP address.
    fn admit(&self, shard: usize, zn: &ZnAnswer) -> Result<SocketAddr>;
}

/// BM-SCs of this process: the Zn answer goes straight into the BM-SC.
impl Admission for Vec<Arc<Bmsc>> {
    fn shards(&self) -> usize {
        self.len()
    }

    fn admit(&self, shard: usize, zn: &ZnAnswer) -> Result<SocketAddr> {
        let bmsc = self.get(shard).ok_or_else(|| Error::Other(format!("no BM-SC {shard}")))?;
        bmsc.insert_zn_answer(zn).map_err(|e| Error::Other(format!("Zn answer: {e}")))?;
        Ok(bmsc.addr())
    }
}

/// The UDP sockets of a [`UeFleet`], bound before the BM-SCs start since their configuration
/// names them: one socket all UEs take MSK pushes and solicited pulls on (TS 33.246 §6.3.2.2,
/// sent to the UE's MIKEY port), and per worker one MTK bearer socket per BM-SC.
pub struct FleetSockets {
    push: UdpSocket,
    /// bearers[worker][shard]
    bearers: Vec<Vec<UdpSocket>>,
}

impl FleetSockets {
    /// Binds the sockets of `threads` workers for `shards` BM-SCs on 127.0.0.1.
    pub fn bind(threads: usize, shards: usize) -> Result<Self> {
        let push = UdpSocket::bind("127.0.0.1:0").context("push socket")?;
        let bearers = (0..threads)
            .map(|_| (0..shards).map(|_| UdpSocket::bind("127.0.0.1:0")).collect::<std::io::Result<_>>())
            .collect::<std::io::Result<_>>()?;
        Ok(FleetSockets { push, bearers })
    }

    /// The UE MIKEY port the BM-SCs send MSK pushes and solicited pulls to.
    pub fn push_port(&self) -> Result<u16> {
        Ok(self.push.local_addr()?.port())
    }

    /// The bearer addresses BM-SC `shard` sends each MTK message to (one per worker).
    pub fn bearer_addrs(&self, shard: usize) -> Result<Vec<SocketAddr>> {
        self.bearers
            .iter()
            .map(|w| {
                w.get(shard)
                    .ok_or_else(|| Error::Other(format!("no bearer socket {shard}")))
                    .and_then(|s| Ok(s.local_addr()?))
            })
            .collect()
    }
}

/// Many UEs on the UICC-based path, an emulated card each, multiplexed on a few worker threads,
/// with the dispatcher of their shared push socket (see the module notes). Each UE bootstraps on
/// its card, is admitted to its BM-SC ([`Admission`]), and registers for one User Service.
pub struct UeFleet {
    workers: Vec<Sender<Event>>,
    reports: Receiver<(usize, Report)>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Pulls and pushes dropped by the dropper switch (the storm's missed rotation push).
    drop_pushes: Arc<std::sync::atomic::AtomicBool>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
    /// B-TID of every UE, by index.
    btids: Vec<String>,
    storm_flags: Arc<Vec<AtomicBool>>,
    /// Per UE: the dispatcher has taken a solicited pull for it off the push socket.
    pull_taken: Arc<Vec<AtomicBool>>,
    push_port: u16,
    /// Solicited pulls the dispatcher has taken off the push socket.
    pulls: Arc<std::sync::atomic::AtomicU64>,
}

impl UeFleet {
    /// Sets up `ues` UEs on the workers of `sockets` (one per worker) for the User Service
    /// `service_id`, each admitted to its BM-SC; returns the fleet and the set-up time.
    pub fn start(
        sockets: FleetSockets,
        ues: usize,
        service_id: &str,
        admission: Arc<dyn Admission>,
    ) -> Result<(UeFleet, Duration)> {
        let FleetSockets { push, mut bearers } = sockets;
        let threads = bearers.len();
        let service_id: Arc<str> = service_id.into();
        let (report_tx, reports) = mpsc::channel();
        let mut senders = Vec::new();
        let storm_flags: Arc<Vec<AtomicBool>> = Arc::new((0..ues).map(|_| AtomicBool::new(false)).collect());
        let mut handles = Vec::new();
        let start = Instant::now();
        for (id, bearers) in bearers.drain(..).enumerate() {
            let (tx, rx) = mpsc::channel();
            let (reports, admission, flags) = (report_tx.clone(), admission.clone(), storm_flags.clone());
            let service_id = service_id.clone();
            let indices: Vec<usize> = (id..ues).step_by(threads).collect();
            // The worker (its cards are not `Send`) is made on its own thread.
            let run = move || {
                let storm_flags = flags;
                Worker {
                    id,
                    ues: Vec::new(),
                    bearers,
                    events: rx,
                    reports,
                    admission,
                    clients: HashMap::new(),
                    service_id,
                    storm_flags,
                    refused: 0,
                    first_refusal: None,
                }
                .run(indices)
            };
            handles.push(std::thread::Builder::new().name(format!("scale worker {id}")).spawn(run)?);
            senders.push(tx);
        }
        // Every worker's B-TIDs, for the dispatcher.
        let mut route: HashMap<Vec<u8>, (usize, usize, usize)> = HashMap::with_capacity(ues);
        let mut all = vec![String::new(); ues];
        for _ in 0..threads {
            match reports.recv_timeout(PHASE_WAIT * 10).map_err(Error::lower)? {
                (w, Report::SetUp { btids }) => {
                    for (btid, local, index) in btids {
                        route.insert(btid.clone().into_bytes(), (w, local, index));
                        all[index] = btid;
                    }
                }
                (_, Report::Failed(e)) => bail!("set-up: {e}"),
                _ => bail!("set-up: unexpected report"),
            }
        }
        let set_up = start.elapsed();
        let drop_pushes = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (dp, dd) = (drop_pushes.clone(), dropped.clone());
        let pulls = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let pulls_seen = pulls.clone();
        let to_workers = senders.clone();
        let push_port = push.local_addr()?.port();
        let pull_taken: Arc<Vec<AtomicBool>> = Arc::new((0..ues).map(|_| AtomicBool::new(false)).collect());
        let taken = pull_taken.clone();
        handles.push(std::thread::Builder::new().name("scale dispatcher".into()).spawn(move || {
            use std::sync::atomic::Ordering::Relaxed;
            let mut buf = [0u8; 4096];
            while let Ok((n, _)) = push.recv_from(&mut buf) {
                let message = &buf[..n];
                if message == [0] {
                    return;
                }
                let Ok(parsed) = mikey::mbms::parse_msk_message(message) else { continue };
                if parsed.is_solicited_pull() {
                    pulls_seen.fetch_add(1, Relaxed);
                }
                if dp.load(Relaxed) && !parsed.is_solicited_pull() {
                    dd.fetch_add(1, Relaxed);
                    continue;
                }
                if let Some((w, local, index)) = route.get(parsed.idr().data) {
                    let pull = parsed.is_solicited_pull();
                    if pull && let Some(t) = taken.get(*index) {
                        t.store(true, Relaxed);
                    }
                    let _ =
                        to_workers[*w].send(Event::Push { local: *local, message: message.to_vec(), pull });
                }
            }
        })?);
        let fleet = UeFleet {
            workers: senders,
            reports,
            threads: handles,
            drop_pushes,
            dropped,
            btids: all,
            storm_flags,
            pull_taken,
            push_port,
            pulls,
        };
        Ok((fleet, set_up))
    }

    fn tell(&self, ctl: impl Fn() -> Ctl) -> Result<()> {
        for w in &self.workers {
            if w.send(Event::Ctl(ctl())).is_err() {
                let why = self.reports.try_iter().find_map(|(_, r)| match r {
                    Report::Failed(e) => Some(e),
                    _ => None,
                });
                bail!("a worker stopped: {}", why.unwrap_or_else(|| "no reason given".to_owned()));
            }
        }
        Ok(())
    }

    fn wait(&self, what: &str) -> Result<Vec<Report>> {
        let mut out = Vec::new();
        for _ in 0..self.workers.len() {
            match self.reports.recv_timeout(PHASE_WAIT * 2) {
                Ok((_, Report::Failed(e))) => bail!("{what}: {e}"),
                Ok((_, r)) => out.push(r),
                Err(_) => bail!("{what}: a worker did not answer within {:?}", PHASE_WAIT * 2),
            }
        }
        Ok(out)
    }

    /// The B-TID of every UE, by index.
    pub fn btids(&self) -> &[String] {
        &self.btids
    }

    /// Registration of every UE and its MSK push: the time and the HTTP errors.
    pub fn register(&self) -> Result<(Duration, u64)> {
        let start = Instant::now();
        self.tell(|| Ctl::Register)?;
        let mut errors = 0;
        for r in self.wait("registration")? {
            if let Report::Registered { http_errors } = r {
                errors += http_errors;
            }
        }
        Ok((start.elapsed(), errors))
    }

    /// Tells every worker to take `rounds` MTK messages from its bearer sockets, one round
    /// at a time, each round started by [`UeFleet::mtk_round`].
    pub fn expect_mtk_rounds(&self, rounds: u64) -> Result<()> {
        self.tell(|| Ctl::Mtk { rounds })
    }

    /// One MTK round: each BM-SC has sent the MTK message with the MTK ID `ids[shard]`; every UE
    /// takes it on its card, and within one BM-SC every UE must derive the same MTK.
    pub fn mtk_round(&self, ids: &[MtkId]) -> Result<()> {
        for w in &self.workers {
            w.send(Event::MtkRound(ids.to_vec())).map_err(|_| Error::Other("a worker stopped".into()))?;
        }
        let mut per_worker = Vec::new();
        for r in self.wait("MTK round")? {
            if let Report::MtkRoundDone { mtks } = r {
                per_worker.push(mtks);
            }
        }
        // Within one BM-SC, every worker's UEs derived the same MTK.
        for shard in 0..ids.len() {
            let mut seen = per_worker.iter().filter_map(|m| m.get(shard).copied().flatten());
            if let Some(first) = seen.next() {
                ensure!(seen.all(|m| m == first), "UEs of BM-SC {shard} derived different MTKs");
            }
        }
        Ok(())
    }

    /// Stops the workers and the dispatcher.
    pub fn finish(self) {
        let _ = self.tell(|| Ctl::Finish);
        // Wake the dispatcher with a datagram it stops on.
        if let Ok(s) = UdpSocket::bind("127.0.0.1:0") {
            let _ = s.send_to(&[0], SocketAddr::from(([127, 0, 0, 1], self.push_port)));
        }
        drop(self.workers);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// What `keysim bench scale` and `keysim bench storm` measure.
#[derive(Debug, Clone)]
pub struct ScaleOptions {
    /// Number of UEs (1 to 1 000 000).
    pub ues: usize,
    /// MTK updates each UE takes (scale).
    pub mtk_updates: u64,
    /// Key management path of the UEs: only `uicc` (an emulated card each) is measured at scale.
    pub path: String,
    /// Worker threads that multiplex the UEs (default: the number of cores).
    pub threads: Option<usize>,
}

/// The BM-SCs of a bench on loopback, the UEs' fleet against them.
struct Rig {
    bmscs: Vec<Arc<Bmsc>>,
    fleet: UeFleet,
}

impl Rig {
    fn start(ues: usize, threads: usize) -> Result<(Rig, Duration)> {
        let shards = ues.div_ceil(UES_PER_BMSC);
        let sockets = FleetSockets::bind(threads, shards)?;
        let mut bmscs = Vec::with_capacity(shards);
        for shard in 0..shards {
            let mut config = BmscConfig::new(BMSC_FQDN, SocketAddr::from(([127, 0, 0, 1], 9)));
            config.services = vec![BmscService::new(SERVICE_ID, KEY_GROUP, STREAM_SEED)];
            config.ue_mikey_port = sockets.push_port()?;
            config.bearer_mikey = sockets.bearer_addrs(shard)?;
            bmscs.push(Arc::new(Bmsc::start(config).context("starting a BM-SC")?));
        }
        let (fleet, set_up) = UeFleet::start(sockets, ues, SERVICE_ID, Arc::new(bmscs.clone()))?;
        Ok((Rig { bmscs, fleet }, set_up))
    }

    /// `rounds` MTK messages, one at a time; returns the time and each round's duration.
    fn mtk(&self, rounds: u64) -> Result<(Duration, Vec<Duration>)> {
        self.fleet.expect_mtk_rounds(rounds)?;
        let mut per_round = Vec::with_capacity(rounds as usize);
        let start = Instant::now();
        for _ in 0..rounds {
            let t = Instant::now();
            let ids = self
                .bmscs
                .iter()
                .map(|b| b.send_mtk(SERVICE_ID))
                .collect::<Result<Vec<_>, _>>()
                .context("BM-SC MTK message")?;
            self.fleet.mtk_round(&ids)?;
            per_round.push(t.elapsed());
        }
        Ok((start.elapsed(), per_round))
    }
}

fn check(args: &ScaleOptions) -> Result<usize> {
    ensure!(args.ues > 0 && args.ues <= 1_000_000, "--ues: 1 to 1000000");
    ensure!(args.path == "uicc", "--path: only `uicc` (an emulated card per UE) is measured at scale");
    Ok(args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
        .clamp(1, 64))
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// `keysim bench scale`: set-up, registration and MTK rounds of `ues` UEs; the figures as JSON.
pub fn run_scale(args: &ScaleOptions) -> Result<Value> {
    let threads = check(args)?;
    let (_, rss_before) = memory();
    let wall = Instant::now();
    let (rig, set_up) = Rig::start(args.ues, threads)?;
    let (hwm_setup, _) = memory();
    let (registration, http_errors) = rig.fleet.register()?;
    let msk_pushes: u64 = rig.bmscs.iter().map(|b| b.stats().msk_pushes).sum();
    let (mtk_time, rounds) = rig.mtk(args.mtk_updates)?;
    let total = wall.elapsed();
    let (hwm, rss) = memory();
    let n = args.ues as f64;
    let mut sorted = rounds.clone();
    sorted.sort();
    let pct = |p: f64| sorted.get(((sorted.len() as f64 - 1.0) * p).round() as usize).copied().map(ms);
    let mtk_generations = args.ues as u64 * args.mtk_updates;
    let report = json!({
        "ues": args.ues,
        "threads": threads,
        "path": "uicc",
        "mtk_updates_per_ue": args.mtk_updates,
        "wall_s": total.as_secs_f64(),
        "setup_s": set_up.as_secs_f64(),
        "registration_s": registration.as_secs_f64(),
        "registrations_per_s": n / registration.as_secs_f64(),
        "registration_http_errors": http_errors,
        "msk_pushes": msk_pushes,
        "bmsc_instances": rig.bmscs.len(),
        "mtk_s": mtk_time.as_secs_f64(),
        "mtk_generations_per_s": mtk_generations as f64 / mtk_time.as_secs_f64().max(1e-9),
        "mtk_round_ms_p50": pct(0.5),
        "mtk_round_ms_max": pct(1.0),
        "rss_before_bytes": rss_before,
        "peak_rss_after_setup_bytes": hwm_setup,
        "peak_rss_bytes": hwm,
        "rss_end_bytes": rss,
        "bytes_per_ue": (hwm.saturating_sub(rss_before)) as f64 / n,
        "wall_us_per_ue": total.as_secs_f64() * 1e6 / n,
    });
    rig.fleet.finish();
    Ok(report)
}

/// `keysim bench storm`: an MSK every UE misses, then a solicited pull to all at once; the
/// figures as JSON.
pub fn run_storm(args: &ScaleOptions) -> Result<Value> {
    use std::sync::atomic::Ordering::Relaxed;
    let threads = check(args)?;
    let (rig, set_up) = Rig::start(args.ues, threads)?;
    let (registration, http_errors) = rig.fleet.register()?;
    // A new MSK whose push every UE misses (dropped before the UEs), so that only the solicited
    // pull brings it.
    rig.fleet.drop_pushes.store(true, Relaxed);
    let msks = rig
        .bmscs
        .iter()
        .map(|b| b.rotate_msk(SERVICE_ID))
        .collect::<Result<Vec<_>, _>>()
        .context("MSK rotation")?;
    // All N pushes have left the BM-SC when rotate_msk returns; those the dispatcher has not
    // dropped yet are in the socket buffer or lost there (also missed): wait for quiet.
    let mut seen = u64::MAX;
    while rig.fleet.dropped.load(Relaxed) != seen {
        seen = rig.fleet.dropped.load(Relaxed);
        std::thread::sleep(Duration::from_millis(100));
    }
    rig.fleet.drop_pushes.store(false, Relaxed);
    rig.fleet.tell(|| Ctl::Storm { msks: msks.clone() })?;
    let stats = |rig: &Rig| {
        rig.bmscs.iter().map(|b| b.stats()).fold((0u64, 0u64, 0u64), |a, s| {
            (a.0 + s.solicited_pulls, a.1 + s.msk_requests, a.2 + s.challenges)
        })
    };
    let before = stats(&rig);
    let shards = rig.bmscs.len();
    // The pulls, to every registered UE as fast as the BM-SC builds them.
    let btids = rig.fleet.btids.clone();
    let mut sent_at = vec![Instant::now(); args.ues];
    let start = Instant::now();
    let seen_before = rig.fleet.pulls.load(Relaxed);
    for (i, btid) in btids.iter().enumerate() {
        // Flow control of the shared push socket (see PULL_BURST).
        if i % PULL_BURST == 0 {
            let wait = Instant::now() + Duration::from_millis(50);
            while rig.fleet.pulls.load(Relaxed) - seen_before < i as u64 && Instant::now() < wait {
                std::thread::yield_now();
            }
        }
        sent_at[i] = Instant::now();
        rig.bmscs[i % shards].solicited_pull(btid).with_context(|| format!("solicited pull to UE {i}"))?;
    }
    let pulls_sent = start.elapsed();
    // UDP loses datagrams when a receiver falls behind: here the one socket all UEs share on
    // 127.0.0.1 (see the module notes), which separate UEs would not. A pull the dispatcher never
    // took off that socket is sent again after RESEND_AFTER, up to MAX_PULL_ROUNDS rounds in all.
    let mut resends = 0u64;
    let mut rounds = 1u32;
    let mut round_start = Instant::now();
    let (mut done_before, mut progress) = (0usize, Instant::now());
    loop {
        let missing: Vec<usize> =
            (0..args.ues).filter(|i| !rig.fleet.storm_flags[*i].load(Ordering::Acquire)).collect();
        if missing.is_empty() {
            break;
        }
        let done = args.ues - missing.len();
        if done != done_before {
            (done_before, progress) = (done, Instant::now());
        } else if progress.elapsed() > PHASE_WAIT {
            break;
        }
        if round_start.elapsed() >= RESEND_AFTER && rounds < MAX_PULL_ROUNDS {
            let lost: Vec<usize> =
                missing.into_iter().filter(|i| !rig.fleet.pull_taken[*i].load(Ordering::Acquire)).collect();
            if !lost.is_empty() {
                for i in lost {
                    rig.bmscs[i % shards]
                        .solicited_pull(&btids[i])
                        .with_context(|| format!("solicited pull to UE {i}"))?;
                    resends += 1;
                }
                rounds += 1;
            }
            round_start = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Ends the workers' storm phase if some UE never got there.
    rig.fleet.tell(|| Ctl::Finish)?;
    let mut latencies = Vec::with_capacity(args.ues);
    let (mut msk_requests, mut request_errors, mut last) = (0u64, 0u64, start);
    let mut missing = 0usize;
    let (mut refused, mut refusal) = (0u64, None::<String>);
    for r in rig.fleet.wait("storm")? {
        if let Report::StormDone { done, msk_requests: m, http_errors, refused: k, first_refusal } = r {
            msk_requests += m;
            request_errors += http_errors;
            refused += k;
            if refusal.is_none() {
                refusal = first_refusal;
            }
            for (i, t) in done {
                match t {
                    Some(t) => {
                        latencies.push(t.saturating_duration_since(sent_at[i]));
                        last = last.max(t);
                    }
                    None => missing += 1,
                }
            }
        }
    }
    let storm = last.saturating_duration_since(start);
    let after = stats(&rig);
    latencies.sort();
    let pct = |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).copied().map(ms);
    let served = after.1 - before.1;
    let report = json!({
        "ues": args.ues,
        "threads": threads,
        "path": "uicc",
        "setup_s": set_up.as_secs_f64(),
        "registration_s": registration.as_secs_f64(),
        "registration_http_errors": http_errors,
        "bmsc_instances": shards,
        "solicited_pulls_sent": after.0 - before.0,
        "pulls_send_s": pulls_sent.as_secs_f64(),
        "pull_burst": PULL_BURST,
        "pull_resends": resends,
        "pull_rounds": rounds,
        "rotation_pushes_dropped_by_dispatcher": rig.fleet.dropped.load(Relaxed),
        "msk_requests_sent": msk_requests,
        "msk_request_errors": request_errors,
        "msk_requests_served": served,
        "storm_s": storm.as_secs_f64(),
        "msk_requests_per_s": served as f64 / storm.as_secs_f64().max(1e-9),
        "latency_ms_p50": pct(0.5),
        "latency_ms_p90": pct(0.9),
        "latency_ms_p99": pct(0.99),
        "latency_ms_max": pct(1.0),
        "ues_without_current_msk": missing,
        "mikey_refused_by_cards": refused,
        "first_refusal": refusal,
        "challenges": after.2 - before.2,
    });
    rig.fleet.finish();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(ues: usize) -> ScaleOptions {
        ScaleOptions { ues, mtk_updates: 3, path: "uicc".into(), threads: Some(2) }
    }

    #[test]
    fn a_small_fleet_registers_takes_its_msks_and_every_mtk_round() {
        let report = run_scale(&options(5)).expect("scale");
        assert_eq!(report["registration_http_errors"], 0);
        // One MSK push per registration, all on one BM-SC.
        assert_eq!(report["msk_pushes"], 5);
        assert_eq!(report["bmsc_instances"], 1);
        assert!(report["mtk_round_ms_max"].is_number(), "{report}");
    }

    #[test]
    fn a_storm_brings_the_new_msk_to_every_ue_by_solicited_pull() {
        let report = run_storm(&options(4)).expect("storm");
        assert_eq!(report["ues_without_current_msk"], 0, "{report}");
        assert_eq!(report["mikey_refused_by_cards"], 0, "{report}");
        // Every UE missed the rotation push, so each one asked for the MSK once it was pulled.
        assert!(report["msk_requests_served"].as_u64() >= Some(4), "{report}");
    }

    #[test]
    fn the_options_are_checked() {
        let e = run_scale(&options(0)).expect_err("no UEs");
        assert!(e.to_string().contains("--ues"), "{e}");
        let e = run_scale(&ScaleOptions { path: "me".into(), ..options(1) }).expect_err("ME path");
        assert!(e.to_string().contains("--path"), "{e}");
    }
}
