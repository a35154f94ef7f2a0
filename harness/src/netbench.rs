//! Network figures of MBMS security on loopback (TS 33.246 §6.1–§6.3 over GBA, TS 33.220 §4.5,
//! TS 24.109 §5): a UE from power-on to its first decrypted SRTP packet, MTK updates sustained end
//! to end, and BM-SC registrations over HTTP Digest, against the BSF and BM-SC of `network`.
//!
//! | figure | what one unit is |
//! |---|---|
//! | [`measure_power_on_to_first_media`] | card powered (ATR), UE set up (PIN1, EFs, key store, sockets), GBA over Ub, NAF keys, registration, MSK push taken, MTK message taken, first SRTP packet decrypted |
//! | [`measure_mtk_updates_per_second`] | BM-SC MTK message → UDP → UE poll → MTK Generation on the card (UICC-based) or in the ME (ME-based) → SRTP context installed; one at a time |
//! | [`measure_registrations_per_second`] | one `register` answered `200` with a valid `rspauth`, and the MSK push it causes sent |
//!
//! The BM-SC sends the MTK message and the media packet as soon as the UE holds the MSK, so the
//! power-on figure is the procedures' own time, without waiting for a bearer schedule. Every run
//! checks what it measured: the decrypted payloads equal `network::bmsc_stream::test_signal_frame`,
//! the latest MTK's MKI is the one the receiver holds, the BM-SC pushed an MSK per registration.
//!
//! Used by `keysim bench`, `benches/network.rs` and the PC/SC tests.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gba::{KsNaf, Mrk};
use me::{BmscClient, BmscSession, Credentials, KeyManagementPath, Ue, UeConfig, UeStats};
use mikey::mbms::{MtkId, mki};
use network::bmsc::{Bmsc, BmscConfig, BmscService};
use network::bmsc_stream::test_signal_frame;
use network::bsf::{Bsf, BsfConfig, Subscriber};
use sim_reader::{CardProfile, Reader};
use wire::zn::{NafKeyMaterial, ZnAnswer};

use crate::{Context, Error, Result, ensure};

/// The BM-SC's FQDN: its NAF_Id with the MBMS Ua protocol identifier, and its Digest realms.
pub const BMSC_FQDN: &str = "bmsc.example.org";
/// The one User Service of the figures.
pub const SERVICE_ID: &str = "urn:keysim:mbms:netbench:1";
/// Its Key Group (the MSK ID's high half).
pub const KEY_GROUP: u16 = 0x0001;
/// Seed of the service's MSK / MTK / SRTP stream.
const STREAM_SEED: [u8; 32] = [0x4e; 32];
/// The longest any one step may take on loopback before the figure is abandoned as broken.
pub const STEP_WAIT: Duration = Duration::from_secs(10);
/// SRTP packets decrypted and checked after a run of MTK updates.
const MEDIA_CHECK_PACKETS: usize = 4;
/// The SRTP stream of the only service: the UE's first.
const STREAM: me::StreamId = 0;

/// B-TID of the registration figure (a GBA_ME bootstrap put into the BM-SC without a BSF).
const REGISTRATION_BTID: &str = "bmV0YmVuY2gtcmFuZC0wMQ==@bsf.example.org";
/// Ks_NAF behind that B-TID.
const REGISTRATION_KS_NAF: [u8; 32] = [0x6b; 32];

/// Scratch directories of this process (one per network), removed when dropped.
static SCRATCH: AtomicU64 = AtomicU64::new(0);
/// Networks started by this process.
static NETWORKS: AtomicU64 = AtomicU64::new(0);

/// How many MSK numbers a new network's BM-SC skips before it serves. A BM-SC of
/// `network::bmsc` numbers its MSKs from 1 and its MTK IDs from 1 when it starts, while a card
/// keeps, per MSK ID, the last MTK ID it accepted and takes later MTKs only with greater IDs
/// (TS 33.246 §6.3.3 MGV-F; EF.MSK of TS 31.102 §4.2.80). A card that outlives a network (PC/SC,
/// a card-state file) would take the next network's MTK messages under a repeated MSK ID for
/// replays; so each network starts at another MSK number, from the clock and a counter.
fn msk_numbers_to_skip() -> u64 {
    let secs =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    (secs % 2048) * 16 + NETWORKS.fetch_add(1, Ordering::Relaxed) % 16
}

struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self> {
        let n = SCRATCH.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("keysim-netbench-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free loopback UDP port (bound and released: the BM-SC needs the UE's ports before the UE).
fn free_udp_port() -> Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0").context("binding a UDP port")?.local_addr()?.port())
}

/// The BSF and the BM-SC of one card's subscriber, on loopback, serving UEs one after another
/// on the same two UE ports.
pub struct Network {
    bsf: Bsf,
    bmsc: Bmsc,
    ue_mikey: SocketAddr,
    ue_media: SocketAddr,
    first_seq: u16,
    pin1: String,
    ues: u64,
    scratch: Scratch,
}

impl Network {
    /// A BSF knowing the subscriber of `profile` (its K, OPc, SQN, IMPI) and a BM-SC with one
    /// service whose MTK messages and SRTP go to the UE's ports.
    pub fn start(profile: &CardProfile) -> Result<Self> {
        let subscriber = Subscriber::from_profile_toml(&profile.to_toml())
            .map_err(|e| Error::Other(format!("BSF subscriber: {e}")))?;
        let bsf = Bsf::start(BsfConfig { subscribers: vec![subscriber], ..BsfConfig::default() })
            .context("starting the BSF")?;
        let ue_mikey = SocketAddr::from(([127, 0, 0, 1], free_udp_port()?));
        let ue_media = SocketAddr::from(([127, 0, 0, 1], free_udp_port()?));
        let service = BmscService::new(SERVICE_ID, KEY_GROUP, STREAM_SEED);
        let first_seq = service.stream.first_seq;
        let mut config = BmscConfig::new(BMSC_FQDN, bsf.addr());
        config.services = vec![service];
        config.ue_mikey_port = ue_mikey.port();
        config.bearer_mikey = vec![ue_mikey];
        config.bearer_media = vec![ue_media];
        config.v_bit = true;
        let bmsc = Bmsc::start(config).context("starting the BM-SC")?;
        for _ in 0..msk_numbers_to_skip() {
            bmsc.rotate_msk(SERVICE_ID).context("BM-SC MSK rotation")?;
        }
        Ok(Network {
            bsf,
            bmsc,
            ue_mikey,
            ue_media,
            first_seq,
            pin1: profile.pin1().to_owned(),
            ues: 0,
            scratch: Scratch::new()?,
        })
    }

    /// The BSF.
    pub fn bsf(&self) -> &Bsf {
        &self.bsf
    }

    /// The BM-SC.
    pub fn bmsc(&self) -> &Bmsc {
        &self.bmsc
    }

    /// The RTP sequence number of the service's first SRTP packet.
    pub fn first_seq(&self) -> u16 {
        self.first_seq
    }

    /// The configuration of the next UE: the network's ports, the service, PIN1, `path`, and a key
    /// store file of its own (a new ME: nothing kept from an earlier one).
    pub fn ue_config(&mut self, path: KeyManagementPath) -> UeConfig {
        self.ues += 1;
        let store = self.scratch.0.join(format!("me-keys-{}.bin", self.ues));
        let mut config = UeConfig::new(&self.bsf.url(), &self.bmsc.url(), BMSC_FQDN, store);
        config.service_ids = vec![SERVICE_ID.to_owned()];
        config.mikey_bind = self.ue_mikey;
        config.media_bind = self.ue_media;
        config.path = Some(path);
        config.pin1 = Some(self.pin1.clone());
        config.frames_kept = 64;
        config
    }

    /// Deregisters the UE (so that the BM-SC serves no one more) and powers it off; its ports
    /// are free again when this returns.
    pub fn power_off<R: Reader>(&self, mut ue: Ue<R>) -> Result<()> {
        if !ue.registered().is_empty() {
            ue.deregister().context("deregistration")?;
        }
        let store = ue.key_store().path().to_owned();
        drop(ue);
        let _ = std::fs::remove_file(store);
        Ok(())
    }
}

/// Polls `ue` until `done` holds for its counters; an error after [`STEP_WAIT`].
fn poll_until<R: Reader>(ue: &mut Ue<R>, what: &str, done: impl Fn(&UeStats) -> bool) -> Result<()> {
    ue.poll_until(Instant::now() + STEP_WAIT, &done).with_context(|| format!("polling for {what}"))?;
    let stats = ue.stats();
    ensure!(done(&stats), "{what}: not there after {STEP_WAIT:?} ({stats:?})");
    Ok(())
}

/// Every frame `ue` kept is test-signal frame `seq - first_seq`; returns how many were checked.
pub fn check_frames<R: Reader>(ue: &Ue<R>, first_seq: u16) -> Result<usize> {
    let mut n = 0;
    for f in ue.frames() {
        let index = u64::from(f.sequence_number.wrapping_sub(first_seq));
        ensure!(
            f.payload == test_signal_frame(index),
            "decrypted frame (RTP sequence number {}) is not test-signal frame {index}",
            f.sequence_number
        );
        n += 1;
    }
    Ok(n)
}

/// Where the time from power-on to the first decrypted packet went; each phase ends where the
/// next starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PowerOnTimeline {
    /// Card powered (ATR) and the UE set up: PIN1, EF.DIR / UST / ICCID / IMPI, key store, sockets.
    pub ue_ready: Duration,
    /// GBA over Ub (GBA_U or GBA_ME): two HTTP exchanges with the BSF, AUTHENTICATE on the card.
    pub bootstrap: Duration,
    /// NAF key derivation for the BM-SC (on the card for GBA_U, in the ME for GBA_ME).
    pub naf_keys: Duration,
    /// Registration: `401`, the Digest answer, the BM-SC's Zn query to the BSF, `200`.
    pub register: Duration,
    /// The MSK push taken (MSK Update on the card, or verified and stored in the ME), the
    /// verification message sent.
    pub msk: Duration,
    /// The MTK message taken (MTK Generation on the card, or derived in the ME), SRTP context in.
    pub mtk: Duration,
    /// One SRTP packet sent by the BM-SC and decrypted.
    pub first_media: Duration,
}

impl PowerOnTimeline {
    /// Power-on to the first decrypted packet.
    pub fn total(&self) -> Duration {
        self.ue_ready
            + self.bootstrap
            + self.naf_keys
            + self.register
            + self.msk
            + self.mtk
            + self.first_media
    }
}

impl std::fmt::Display for PowerOnTimeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        write!(
            f,
            "{:.2} ms (power-on + UE {:.2}, GBA {:.2}, NAF keys {:.2}, register {:.2}, MSK {:.2}, MTK {:.2}, media {:.2})",
            ms(self.total()),
            ms(self.ue_ready),
            ms(self.bootstrap),
            ms(self.naf_keys),
            ms(self.register),
            ms(self.msk),
            ms(self.mtk),
            ms(self.first_media)
        )
    }
}

/// A UE that has decrypted its first packet, and how long that took.
pub struct FirstMedia<R: Reader> {
    /// The UE: registered, holding an MSK and an MTK.
    pub ue: Ue<R>,
    /// The phases.
    pub timeline: PowerOnTimeline,
}

/// One UE from power-on to its first decrypted SRTP packet on `path`: `reader_factory` powers the
/// card (its time counts), then GBA runs afresh whatever the card kept (a cold start on the same
/// footing for both paths), registration, MSK, MTK, one packet. The packet is checked against the
/// test signal.
pub fn power_on_to_first_media<R: Reader>(
    net: &mut Network,
    path: KeyManagementPath,
    reader_factory: impl FnOnce() -> Result<R>,
) -> Result<FirstMedia<R>> {
    let config = net.ue_config(path);
    let start = Instant::now();
    let mut mark = start;
    let mut lap = || {
        let now = Instant::now();
        let d = now - mark;
        mark = now;
        d
    };
    let reader = reader_factory().context("powering the card")?;
    let mut ue = Ue::new(reader, config).context("UE power-on")?;
    ensure!(ue.path() == path, "the UE runs the {} path, not {path}", ue.path());
    let ue_ready = lap();
    ue.bootstrap().context("GBA bootstrap")?;
    let bootstrap = lap();
    ue.derive_naf_keys().context("NAF keys")?;
    let naf_keys = lap();
    let reg = ue.register().context("registration")?;
    ensure!(
        reg.accepted == [SERVICE_ID],
        "registration: accepted {:?}, refused {:?}",
        reg.accepted,
        reg.refused
    );
    let register = lap();
    poll_until(&mut ue, "the MSK push", |s| s.msk_count >= 1)?;
    let msk = lap();
    net.bmsc.send_mtk(SERVICE_ID).context("BM-SC MTK message")?;
    poll_until(&mut ue, "the MTK message", |s| s.mtk_count >= 1)?;
    let mtk = lap();
    net.bmsc.send_media(SERVICE_ID, 1).context("BM-SC media")?;
    poll_until(&mut ue, "the first SRTP packet", |s| s.packets_decrypted >= 1)?;
    let first_media = lap();
    let timeline = PowerOnTimeline { ue_ready, bootstrap, naf_keys, register, msk, mtk, first_media };
    ensure!(check_frames(&ue, net.first_seq)? == 1, "one decrypted frame expected");
    Ok(FirstMedia { ue, timeline })
}

/// The median of `runs` cold starts of one UE after another on `path` (each with a card from
/// `reader_factory`, each deregistered and powered off untimed), against one BSF and BM-SC for
/// the subscriber of `profile`.
pub fn measure_power_on_to_first_media<R: Reader>(
    path: KeyManagementPath,
    profile: &CardProfile,
    mut reader_factory: impl FnMut() -> Result<R>,
    runs: usize,
) -> Result<Duration> {
    ensure!(runs > 0, "at least one run");
    let mut net = Network::start(profile)?;
    let mut totals = Vec::with_capacity(runs);
    for _ in 0..runs {
        let first = power_on_to_first_media(&mut net, path, &mut reader_factory)?;
        totals.push(first.timeline.total());
        net.power_off(first.ue)?;
    }
    totals.sort();
    Ok(totals[totals.len() / 2])
}

/// MTK messages one BM-SC service sends in its life: `network::bmsc_stream` numbers them with one
/// MTK ID counter across MSKs and never reuses an MTK ID.
pub const MTK_MESSAGES_PER_BMSC: u64 = MtkId::MAX as u64;

/// `updates` MTK updates, one at a time (the next message leaves the BM-SC when the UE has
/// installed the SRTP context of the previous one); returns their time. Then, untimed, a few SRTP
/// packets under the last MTK are decrypted and checked against the test signal, and the last MKI
/// the receiver holds must be MSK ID ‖ the last MTK ID.
pub fn mtk_updates<R: Reader>(net: &Network, ue: &mut Ue<R>, updates: u64) -> Result<Duration> {
    let base = ue.stats();
    let mut last: Option<MtkId> = None;
    let start = Instant::now();
    for i in 1..=updates {
        last = Some(net.bmsc.send_mtk(SERVICE_ID).context("BM-SC MTK message")?);
        ue.poll_until(Instant::now() + STEP_WAIT, |s| {
            s.mtk_count >= base.mtk_count + i || s.mikey_dropped > base.mikey_dropped
        })?;
        let d = ue.stats().since(&base);
        ensure!(d.mtk_count == i && d.mikey_dropped == 0, "MTK update {i} of {updates} not taken: {d:?}");
    }
    let elapsed = start.elapsed();
    if let Some(mtk_id) = last {
        let msk_id =
            net.bmsc.current_msk_id(SERVICE_ID).ok_or_else(|| Error::Other("the BM-SC has no MSK".into()))?;
        let mkis = ue.receiver().mkis(STREAM)?;
        ensure!(
            mkis.last().map(Vec::as_slice) == Some(&mki(msk_id, mtk_id)[..]),
            "the receiver's latest MKI is not MSK ID ‖ MTK ID of the last MTK message"
        );
        let before = ue.stats().packets_decrypted;
        net.bmsc.send_media(SERVICE_ID, MEDIA_CHECK_PACKETS).context("BM-SC media")?;
        poll_until(ue, "media under the last MTK", |s| {
            s.packets_decrypted >= before + MEDIA_CHECK_PACKETS as u64
        })?;
        check_frames(ue, net.first_seq)?;
    }
    Ok(elapsed)
}

/// A UE at its first packet on one path, for runs of MTK updates of any length: when the BM-SC's
/// MTK IDs run out ([`MTK_MESSAGES_PER_BMSC`]) a new BSF, BM-SC and UE (card from the factory)
/// take over, untimed.
pub struct MtkRig<R: Reader, F: FnMut() -> Result<R>> {
    profile: CardProfile,
    path: KeyManagementPath,
    reader_factory: F,
    net: Network,
    ue: Option<Ue<R>>,
    mtk_messages: u64,
}

impl<R: Reader, F: FnMut() -> Result<R>> MtkRig<R, F> {
    /// The network and a UE at its first packet.
    pub fn start(path: KeyManagementPath, profile: &CardProfile, mut reader_factory: F) -> Result<Self> {
        let mut net = Network::start(profile)?;
        let first = power_on_to_first_media(&mut net, path, &mut reader_factory)?;
        Ok(MtkRig {
            profile: profile.clone(),
            path,
            reader_factory,
            net,
            ue: Some(first.ue),
            mtk_messages: 1,
        })
    }

    /// `updates` MTK updates (see [`mtk_updates`]); returns their time.
    pub fn run(&mut self, updates: u64) -> Result<Duration> {
        let mut elapsed = Duration::ZERO;
        let mut left = updates;
        while left > 0 {
            let room = MTK_MESSAGES_PER_BMSC.saturating_sub(self.mtk_messages);
            if room == 0 {
                self.restart()?;
                continue;
            }
            let n = left.min(room);
            let ue =
                self.ue.as_mut().ok_or_else(|| Error::Other("no UE (an earlier restart failed)".into()))?;
            elapsed += mtk_updates(&self.net, ue, n)?;
            self.mtk_messages += n;
            left -= n;
        }
        Ok(elapsed)
    }

    fn restart(&mut self) -> Result<()> {
        // The old UE first: a PC/SC card serves one UE at a time.
        if let Some(ue) = self.ue.take() {
            self.net.power_off(ue)?;
        }
        self.net = Network::start(&self.profile)?;
        let first = power_on_to_first_media(&mut self.net, self.path, &mut self.reader_factory)?;
        self.ue = Some(first.ue);
        self.mtk_messages = 1;
        Ok(())
    }

    /// Deregisters and powers the UE off.
    pub fn finish(mut self) -> Result<()> {
        match self.ue.take() {
            Some(ue) => self.net.power_off(ue),
            None => Ok(()),
        }
    }
}

/// MTK updates per second sustained end to end on `path` (see [`mtk_updates`]), with one UE
/// brought up to its first packet on a card from `reader_factory` (again when a BM-SC's MTK IDs
/// run out).
pub fn measure_mtk_updates_per_second<R: Reader>(
    path: KeyManagementPath,
    profile: &CardProfile,
    reader_factory: impl FnMut() -> Result<R>,
    updates: u64,
) -> Result<f64> {
    ensure!(updates > 0, "at least one MTK update");
    let mut rig = MtkRig::start(path, profile, reader_factory)?;
    let elapsed = rig.run(updates)?;
    rig.finish()?;
    Ok(updates as f64 / elapsed.as_secs_f64())
}

/// How the Digest challenges of a run of registrations come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Challenges {
    /// One challenge for the run: `me::BmscSession` answers every request on the same nonce with
    /// a rising nonce count (one round trip per registration).
    OneNonce,
    /// A fresh challenge per registration with the same client code (a new `me::BmscSession`
    /// each time: `401`, then the answer, two round trips).
    FreshPerRegistration,
    /// The UE's own client, `me::BmscClient`, which asks for a fresh challenge on every request.
    MeClient,
}

impl Challenges {
    /// All of them.
    pub const ALL: [Challenges; 3] =
        [Challenges::OneNonce, Challenges::FreshPerRegistration, Challenges::MeClient];

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Challenges::OneNonce => "one nonce, rising nc",
            Challenges::FreshPerRegistration => "fresh challenge each",
            Challenges::MeClient => "me::BmscClient, fresh challenge each",
        }
    }
}

/// A BM-SC on loopback that knows one GBA_ME B-TID (its Zn answer put in directly, no BSF), with
/// a UDP socket where its MSK pushes land.
pub struct Registrations {
    bmsc: Bmsc,
    _push_sink: UdpSocket,
    mrk: Mrk,
    services: Vec<String>,
    one_nonce: BmscSession,
    me_client: BmscClient,
}

impl Registrations {
    /// Starts the BM-SC.
    pub fn start() -> Result<Self> {
        let push_sink = UdpSocket::bind("127.0.0.1:0").context("binding the MSK push sink")?;
        // Zn is never asked (the B-TID is known); the discard port stands in for the BSF.
        let mut config = BmscConfig::new(BMSC_FQDN, SocketAddr::from(([127, 0, 0, 1], 9)));
        config.services = vec![BmscService::new(SERVICE_ID, KEY_GROUP, STREAM_SEED)];
        config.ue_mikey_port = push_sink.local_addr()?.port();
        let bmsc = Bmsc::start(config).context("starting the BM-SC")?;
        let ks_naf = KsNaf::new(REGISTRATION_KS_NAF);
        let mrk = gba::mbms_keys::me_based_mrk(&ks_naf);
        bmsc.insert_zn_answer(&ZnAnswer {
            btid: REGISTRATION_BTID.to_owned(),
            keys: NafKeyMaterial::GbaMe { ks_naf },
            key_expiry: "2099-12-31T23:59:59Z".to_owned(),
            bootstrap_time: "2025-01-01T00:00:00Z".to_owned(),
            impi: "netbench@ims.example.org".to_owned(),
            impus: Vec::new(),
        })
        .map_err(|e| Error::Other(format!("Zn answer: {e}")))?;
        let one_nonce = BmscSession::new(REGISTRATION_BTID, mrk.clone(), false);
        let me_client = BmscClient::new(&bmsc.url(), BMSC_FQDN)?;
        Ok(Registrations {
            bmsc,
            _push_sink: push_sink,
            mrk,
            services: vec![SERVICE_ID.to_owned()],
            one_nonce,
            me_client,
        })
    }

    /// The BM-SC.
    pub fn bmsc(&self) -> &Bmsc {
        &self.bmsc
    }

    /// `n` registrations one after another of the same B-TID to the same service; returns their
    /// time. Each must come back `200` for the service (the clients check `rspauth`) and each makes
    /// the BM-SC push the current MSK (a registration already held is answered and served the
    /// same way, but counted as a registration only once): the BM-SC must have sent `n` pushes
    /// and taken the challenges the variant implies.
    pub fn run(&mut self, how: Challenges, n: u64) -> Result<Duration> {
        let before = self.bmsc.stats();
        let start = Instant::now();
        for _ in 0..n {
            let answer = match how {
                Challenges::OneNonce => self.one_nonce.register(&self.me_client, &self.services)?,
                Challenges::FreshPerRegistration => {
                    BmscSession::new(REGISTRATION_BTID, self.mrk.clone(), false)
                        .register(&self.me_client, &self.services)?
                }
                Challenges::MeClient => {
                    let credentials =
                        Credentials { btid: REGISTRATION_BTID, mrk: &self.mrk, uicc_realm: false };
                    self.me_client.register(&credentials, &self.services)?
                }
            };
            ensure!(answer.code_of(SERVICE_ID) == Some(200), "registration refused: {answer:?}");
        }
        let elapsed = start.elapsed();
        let after = self.bmsc.stats();
        let pushes = after.msk_pushes - before.msk_pushes;
        let challenges = after.challenges - before.challenges;
        ensure!(pushes == n, "the BM-SC pushed {pushes} MSKs for {n} registrations");
        match how {
            // The first run of this client takes its one challenge (or a stale nonce's new one).
            Challenges::OneNonce => ensure!(challenges <= 1, "{challenges} challenges on one nonce"),
            _ => ensure!(challenges == n, "{challenges} challenges for {n} fresh-challenge registrations"),
        }
        Ok(elapsed)
    }
}

/// BM-SC registrations per second on loopback, HTTP Digest with challenges as `how` says, on a
/// BM-SC of its own. Every registration is a new TCP connection from 127.0.0.1 to one port: keep
/// `registrations` well under the ephemeral port range (about 28 000) per minute, or the figure
/// measures the kernel's search for a free port among TIME-WAIT connections.
pub fn measure_registrations_per_second(how: Challenges, registrations: u64) -> Result<f64> {
    ensure!(registrations > 0, "at least one registration");
    let mut r = Registrations::start()?;
    let elapsed = r.run(how, registrations)?;
    Ok(registrations as f64 / elapsed.as_secs_f64())
}

// ---------------------------------------------------------------------------------------------
// The figures of `keysim bench`

/// The end-to-end figures of the network peers with a UE on the emulated card (see
/// `benches/network.rs` for the criterion version and the per-phase breakdown).
#[derive(Debug, Default)]
pub struct NetworkFigures {
    /// Power-on to first media, UICC-based path, ms.
    pub first_media_uicc_ms: Option<f64>,
    /// Power-on to first media, ME-based path, ms.
    pub first_media_me_ms: Option<f64>,
    /// MTK updates per second, UICC-based path.
    pub mtk_uicc: Option<f64>,
    /// MTK updates per second, ME-based path.
    pub mtk_me: Option<f64>,
    /// MTK updates per second, UICC-based path, through PC/SC.
    pub mtk_uicc_pcsc: Option<f64>,
    /// MTK updates per second, ME-based path, through PC/SC.
    pub mtk_me_pcsc: Option<f64>,
    /// The PC/SC reader of the PC/SC figures.
    pub pcsc_reader: Option<String>,
    /// BM-SC registrations per second, one nonce.
    pub registrations: Option<f64>,
    /// BM-SC registrations per second, a fresh challenge each.
    pub registrations_fresh: Option<f64>,
}

/// The end-to-end figures, each measured for about `secs`; what fails is said in `notes`.
pub fn network_figures(secs: f64, notes: &mut Vec<String>) -> NetworkFigures {
    use me::KeyManagementPath::{MeBased, UiccBased};
    let profile = sim_reader::CardProfile::default();
    let card = || -> crate::Result<sim_reader::Emulator> {
        Ok(sim_reader::Emulator::new(&sim_reader::CardProfile::default())?)
    };
    let mut note = |what: &str, e: crate::Error| notes.push(format!("{what} not measured: {}", e.chain()));
    let runs = ((secs * 20.0) as usize).clamp(3, 51);
    let updates = ((secs * 1000.0) as u64).clamp(50, 20_000);
    let registrations = ((secs * 1000.0) as u64).clamp(50, 5_000);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mut f = NetworkFigures::default();
    match measure_power_on_to_first_media(UiccBased, &profile, card, runs) {
        Ok(d) => f.first_media_uicc_ms = Some(ms(d)),
        Err(e) => note("ue_power_on_to_first_media_ms_uicc", e),
    }
    match measure_power_on_to_first_media(MeBased, &profile, card, runs) {
        Ok(d) => f.first_media_me_ms = Some(ms(d)),
        Err(e) => note("ue_power_on_to_first_media_ms_me", e),
    }
    match measure_mtk_updates_per_second(UiccBased, &profile, card, updates) {
        Ok(r) => f.mtk_uicc = Some(r),
        Err(e) => note("mtk_updates_per_s_uicc", e),
    }
    match measure_mtk_updates_per_second(MeBased, &profile, card, updates / 10 + 10) {
        Ok(r) => f.mtk_me = Some(r),
        Err(e) => note("mtk_updates_per_s_me", e),
    }
    // Through pcscd + vpcd, when a card is being served (benches/pcsc-bench.sh sets this up).
    match std::env::var("KEYSIM_PCSC_READER") {
        Ok(name) => {
            let pcsc_updates = (updates / 50).clamp(20, 500);
            let open = || open_pcsc_reader(&name);
            match measure_mtk_updates_per_second(UiccBased, &profile, open, pcsc_updates) {
                Ok(r) => f.mtk_uicc_pcsc = Some(r),
                Err(e) => note("mtk_updates_per_s_uicc_pcsc", e),
            }
            match measure_mtk_updates_per_second(MeBased, &profile, open, pcsc_updates / 4 + 5) {
                Ok(r) => f.mtk_me_pcsc = Some(r),
                Err(e) => note("mtk_updates_per_s_me_pcsc", e),
            }
            f.pcsc_reader = Some(name);
        }
        Err(_) => {
            for key in ["mtk_updates_per_s_uicc_pcsc", "mtk_updates_per_s_me_pcsc"] {
                notes.push(format!(
                    "{key} not measured: no KEYSIM_PCSC_READER (benches/pcsc-bench.sh runs keysim bench \
                     with a private pcscd and a `keysim vpcd` card)"
                ));
            }
        }
    }
    let mut note = |what: &str, e: crate::Error| notes.push(format!("{what} not measured: {}", e.chain()));
    match measure_registrations_per_second(Challenges::OneNonce, registrations) {
        Ok(r) => f.registrations = Some(r),
        Err(e) => note("bmsc_registrations_per_s", e),
    }
    match measure_registrations_per_second(Challenges::MeClient, registrations / 2 + 10) {
        Ok(r) => f.registrations_fresh = Some(r),
        Err(e) => note("bmsc_registrations_fresh_challenge_per_s", e),
    }
    f
}

/// Connects to the card in the PC/SC reader `name` (which powers it), once pcscd shows it present.
fn open_pcsc_reader(name: &str) -> crate::Result<sim_reader::PcscReader> {
    let start = Instant::now();
    loop {
        let readers = sim_reader::list_readers()?;
        if readers.iter().any(|r| r.name == name && r.card_present) {
            return Ok(sim_reader::PcscReader::open(&sim_reader::ReaderSelector::Name(name.to_owned()))?);
        }
        if start.elapsed() > Duration::from_secs(10) {
            crate::bail!("no card in PC/SC reader '{name}' after 10 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
