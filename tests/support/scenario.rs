//! The world of the MBMS scenarios (TS 33.246 §6 on TS 33.220 GBA): a BSF, a BM-SC and one UE on
//! an emulated card, all on loopback with real sockets, for either key-management path.
//!
//! Between the BM-SC and the UE sit two UDP relays, as a network element on the path would: one
//! for MIKEY (the point-to-point MSK messages and the MTK messages of the bearer; the UE's
//! verification messages go back through it to the BM-SC) and one for SRTP. Each forwards every
//! datagram and keeps a copy of those toward the UE, so a scenario can capture a message the
//! BM-SC really sent, lose the next MSK message, or hold the media back and deliver it itself.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use me::key_store::KeyStore;
use me::ue::ReceivedFrame;
use me::{KeyManagementPath, Ue, UeConfig, UeStats};
use mikey::mbms::KeyDomainId;
use network::bmsc::{Bmsc, BmscConfig, BmscService};
use network::bmsc_stream::{MskTimestamps, test_signal_frame};
use network::bsf::{Bsf, BsfConfig, Subscriber};
use sha2::{Digest, Sha256};
use sim_reader::{CardProfile, Emulator};

/// The BM-SC's FQDN (its NAF_Id, the MIKEY IDi, the Digest realms).
pub const FQDN: &str = "bmsc.example.org";
/// The one User Service of the scenarios.
pub const SERVICE: &str = "urn:keysim:mbms:scenario:1";
/// Its Key Domain (MCC 001, MNC 01) and Key Group.
pub const KEY_DOMAIN: KeyDomainId = KeyDomainId([0x00, 0xF1, 0x10]);
/// The Key Group of [`SERVICE`].
pub const KEY_GROUP: u16 = 0x0001;
/// How long a scenario waits for something on loopback; the polls end as soon as it holds.
pub const WAIT: Duration = Duration::from_secs(5);
/// How often the relays look whether they should stop.
const RELAY_TICK: Duration = Duration::from_millis(20);

/// Seconds since 1970.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Waits until the wall clock has passed `unix` (whole seconds): every NTP-UTC timestamp made from
/// then on lies after a key lifetime ending at `unix`.
pub fn sleep_past(unix: u64) {
    while unix_now() <= unix {
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ------------------------------------------------------------------------------------------------
// Relay

#[derive(Default)]
struct RelayShared {
    /// Where datagrams toward the UE go.
    ue: Mutex<Option<SocketAddr>>,
    /// Where the UE's datagrams go (the BM-SC's MIKEY socket).
    back: Mutex<Option<SocketAddr>>,
    /// Every datagram toward the UE, in arrival order.
    seen: Mutex<Vec<Vec<u8>>>,
    /// Drop this many more MSK messages (not solicited pulls, not MTK messages) toward the UE.
    drop_msk: AtomicUsize,
    dropped: Mutex<Vec<Vec<u8>>>,
    /// Keep datagrams toward the UE instead of forwarding them.
    hold: AtomicBool,
    held: Mutex<VecDeque<Vec<u8>>>,
}

/// Whether a datagram is a MIKEY MSK message carrying a key (not a solicited pull).
fn is_msk_delivery(datagram: &[u8]) -> bool {
    mikey::mbms::parse_mtk_message(datagram).is_err()
        && mikey::mbms::parse_msk_message(datagram).is_ok_and(|m| !m.is_solicited_pull())
}

/// A UDP relay on loopback between the BM-SC and the UE (see the module documentation).
pub struct Relay {
    addr: SocketAddr,
    socket: UdpSocket,
    shared: Arc<RelayShared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// A relay bound to an ephemeral loopback port; it forwards once [`Relay::set_ue`] was called.
    pub fn start() -> Relay {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(RELAY_TICK)).unwrap();
        let addr = socket.local_addr().unwrap();
        let shared = Arc::new(RelayShared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (rx, sh, st) = (socket.try_clone().unwrap(), shared.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name(format!("relay {addr}"))
            .spawn(move || relay_loop(&rx, &sh, &st))
            .unwrap();
        Relay { addr, socket, shared, stop, thread: Some(thread) }
    }

    /// The address the BM-SC sends to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where datagrams toward the UE go.
    pub fn set_ue(&self, ue: SocketAddr) {
        *self.shared.ue.lock().unwrap() = Some(ue);
    }

    /// Where the UE's datagrams go.
    pub fn set_back(&self, back: SocketAddr) {
        *self.shared.back.lock().unwrap() = Some(back);
    }

    /// Every datagram the relay got for the UE so far (forwarded, dropped or held).
    pub fn seen(&self) -> Vec<Vec<u8>> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Loses the next `n` MSK messages toward the UE.
    pub fn drop_next_msk_messages(&self, n: usize) {
        self.shared.drop_msk.store(n, Ordering::SeqCst);
    }

    /// The datagrams lost so far.
    pub fn dropped(&self) -> Vec<Vec<u8>> {
        self.shared.dropped.lock().unwrap().clone()
    }

    /// Holds datagrams toward the UE (`true`) or forwards them (`false`).
    pub fn hold(&self, on: bool) {
        self.shared.hold.store(on, Ordering::SeqCst);
    }

    /// Takes `n` held datagrams, waiting up to [`WAIT`] for them.
    #[track_caller]
    pub fn take_held(&self, n: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + WAIT;
        loop {
            {
                let mut held = self.shared.held.lock().unwrap();
                if held.len() >= n {
                    return held.drain(..n).collect();
                }
            }
            assert!(Instant::now() < deadline, "{n} datagrams held expected");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends `datagram` to the UE from the relay's address.
    pub fn send_to_ue(&self, datagram: &[u8]) {
        let ue = self.shared.ue.lock().unwrap().expect("relay without UE address");
        self.socket.send_to(datagram, ue).unwrap();
    }
}

fn relay_loop(socket: &UdpSocket, shared: &RelayShared, stop: &AtomicBool) {
    let mut buf = vec![0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let (n, from) = match socket.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                continue;
            }
            Err(_) => continue,
        };
        let data = buf[..n].to_vec();
        let ue = *shared.ue.lock().unwrap();
        if Some(from) == ue {
            if let Some(back) = *shared.back.lock().unwrap() {
                let _ = socket.send_to(&data, back);
            }
            continue;
        }
        shared.seen.lock().unwrap().push(data.clone());
        let lose = is_msk_delivery(&data)
            && shared.drop_msk.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |k| k.checked_sub(1)).is_ok();
        if lose {
            shared.dropped.lock().unwrap().push(data);
        } else if shared.hold.load(Ordering::SeqCst) {
            shared.held.lock().unwrap().push_back(data);
        } else if let Some(ue) = ue {
            let _ = socket.send_to(&data, ue);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ------------------------------------------------------------------------------------------------
// World

/// How a world is set up.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// [`UeConfig::keep_keys_at_power_down`].
    pub keep_keys: bool,
    /// The BSF's key lifetime of the first bootstraps (default: a day).
    pub key_lifetime: Option<Duration>,
}

/// A BSF, a BM-SC with [`SERVICE`] (V bit set, NTP-UTC timestamps from the wall clock) and a UE on
/// the emulated card of the built-in profile, on one key-management path.
pub struct World {
    pub path: KeyManagementPath,
    pub profile: CardProfile,
    pub ue: Ue<Emulator>,
    pub bmsc: Bmsc,
    pub bsf: Bsf,
    pub mikey: Relay,
    pub media: Relay,
    first_seq: u16,
    _dir: tempfile::TempDir,
}

impl World {
    /// A world with default options.
    pub fn start(path: KeyManagementPath) -> World {
        World::with(path, Options::default())
    }

    /// A world with `options`.
    pub fn with(path: KeyManagementPath, options: Options) -> World {
        let profile = CardProfile::default();
        let bsf = Bsf::start(BsfConfig {
            subscribers: vec![Subscriber::from_profile_toml(&profile.to_toml()).unwrap()],
            key_lifetime: options.key_lifetime.unwrap_or(network::bsf::DEFAULT_KEY_LIFETIME),
            ..BsfConfig::default()
        })
        .unwrap();
        let (mikey, media) = (Relay::start(), Relay::start());
        let mut service = BmscService::new(SERVICE, KEY_GROUP, [0x5C; 32]);
        service.stream.key_domain_id = KEY_DOMAIN;
        service.stream.msk_timestamps = MskTimestamps::NtpUtc;
        let first_seq = service.stream.first_seq;
        let mut config = BmscConfig::new(FQDN, bsf.addr());
        config.services = vec![service];
        config.ue_mikey_port = mikey.addr().port();
        config.bearer_mikey = vec![mikey.addr()];
        config.bearer_media = vec![media.addr()];
        config.v_bit = true;
        let bmsc = Bmsc::start(config).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut ue_config = UeConfig::new(&bsf.url(), &bmsc.url(), FQDN, dir.path().join("me-keys.bin"));
        ue_config.service_ids = vec![SERVICE.to_owned()];
        ue_config.path = Some(path);
        ue_config.pin1 = Some(profile.pin1().to_owned());
        ue_config.keep_keys_at_power_down = options.keep_keys;
        let ue = Ue::new(Emulator::new(&profile).unwrap(), ue_config).unwrap();
        assert_eq!(ue.path(), path);
        mikey.set_ue(ue.mikey_addr());
        mikey.set_back(bmsc.mikey_addr());
        media.set_ue(ue.media_addr());
        World { path, profile, ue, bmsc, bsf, mikey, media, first_seq, _dir: dir }
    }

    /// Polls the UE until `done` holds for its counters; fails the test after [`WAIT`].
    #[track_caller]
    pub fn poll_until(&mut self, what: &str, done: impl Fn(&UeStats) -> bool) {
        self.ue.poll_until(Instant::now() + WAIT, &done).unwrap();
        assert!(done(&self.ue.stats()), "{} {what}: {:?}", self.path, self.ue.stats());
    }

    /// Polls the UE for `d` whatever comes.
    pub fn poll_for(&mut self, d: Duration) {
        self.ue.poll(Instant::now() + d).unwrap();
    }

    /// Waits (without polling the UE) until `done` holds for the BM-SC's counters.
    #[track_caller]
    pub fn wait_bmsc(&self, what: &str, done: impl Fn(&network::bmsc::BmscStats) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(&self.bmsc.stats()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(done(&self.bmsc.stats()), "{} {what}: {:?}", self.path, self.bmsc.stats());
    }

    /// The B-TID the UE uses.
    pub fn btid(&self) -> String {
        self.ue.btid().expect("a B-TID").to_owned()
    }

    /// Registration (bootstrapping first), the MSK it pushes, its verification message checked by
    /// the BM-SC, an MTK message: the UE is ready for media. Returns the B-TID.
    #[track_caller]
    pub fn join(&mut self) -> String {
        let before = self.ue.stats();
        let verified = self.bmsc.stats().verifications_ok;
        let report = self.ue.register().unwrap();
        assert_eq!(report.accepted, vec![SERVICE.to_owned()]);
        let btid = self.btid();
        assert_eq!(self.bmsc.registered(&btid), vec![SERVICE.to_owned()]);
        self.poll_until("MSK after registration", |s| {
            s.msk_count == before.msk_count + 1 && s.verifications_sent == before.verifications_sent + 1
        });
        self.wait_bmsc("verification message", |b| b.verifications_ok == verified + 1);
        self.mtk();
        btid
    }

    /// One MTK message on the bearer, taken by the UE.
    #[track_caller]
    pub fn mtk(&mut self) {
        let n = self.ue.stats().mtk_count;
        self.bmsc.send_mtk(SERVICE).unwrap();
        self.poll_until("MTK", |s| s.mtk_count == n + 1);
    }

    /// `n` SRTP packets of the test signal: the UE decrypts every one, refuses none.
    #[track_caller]
    pub fn media(&mut self, n: u64) {
        let before = self.ue.stats();
        self.bmsc.send_media(SERVICE, n as usize).unwrap();
        self.poll_until("media", |s| s.packets_received == before.packets_received + n);
        let d = self.ue.stats().since(&before);
        assert_eq!((d.packets_decrypted, d.packets_failed), (n, 0), "{}: {d:?}", self.path);
    }

    /// The MSK ID the last MTK the UE holds was made under (the MKI's first four octets).
    pub fn msk_id_in_use(&self) -> u32 {
        let mki = self.ue.receiver().mkis(0).unwrap().last().unwrap().clone();
        u32::from_be_bytes(mki[..4].try_into().unwrap())
    }

    /// The ME key store as it is on disk now (the UE holds its lock: a snapshot).
    pub fn store_on_disk(&self) -> KeyStore {
        KeyStore::snapshot(&self.ue.config().key_store_path).unwrap()
    }

    /// The key store file's bytes.
    pub fn store_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.ue.config().key_store_path).unwrap()
    }

    /// Every SRTP packet the BM-SC sent reached the UE decrypted, and nothing else: the frames are
    /// the test signal's frames 0.. (frame `seq - first_seq`), each once, and the running digest
    /// is SHA-256 over those source frames in order.
    #[track_caller]
    pub fn check_all_media(&self) {
        let total = self.bmsc.stats().media_packets;
        let frames: Vec<&ReceivedFrame> = self.ue.frames().collect();
        assert_eq!(frames.len() as u64, total, "{}: every packet sent decrypted", self.path);
        for (i, f) in frames.iter().enumerate() {
            let n = u64::from(f.sequence_number.wrapping_sub(self.first_seq));
            assert_eq!(n, i as u64, "{}: frames in order, none missing", self.path);
            assert_eq!(f.payload, test_signal_frame(n), "{}: frame {n}", self.path);
        }
        let mut h = Sha256::new();
        for n in 0..total {
            h.update(test_signal_frame(n));
        }
        let expected: [u8; 32] = h.finalize().into();
        assert_eq!(self.ue.media_digest(), expected, "{}: media digest", self.path);
        assert_eq!(self.ue.stats().datagrams_overflowed, 0);
    }
}

/// The card of another subscriber: its own ICCID (Luhn digit 8), IMSI, IMPI, IMPUs and K / OPc
/// (TS 35.208 §4.3 test set 2: K 0396eb31…, OPc 53c15671… = E_K(OP) ⊕ OP for OP ff53bade…).
pub fn other_profile() -> CardProfile {
    let mut f = CardProfile::default().to_fields();
    f.iccid = "89882110000000000028".into();
    f.imsi = "001010000000002".into();
    f.k = "0396eb317b6d1c36f19c1c84cd6ffd16".into();
    f.opc = "53c15671c60a4b731c55b4a441c0bde2".into();
    f.impi = "001010000000002@ims.mnc001.mcc001.3gppnetwork.org".into();
    f.impu = vec!["sip:001010000000002@ims.mnc001.mcc001.3gppnetwork.org".into(), "tel:+15550102".into()];
    CardProfile::try_from(f).unwrap()
}

// ------------------------------------------------------------------------------------------------
// What the card keeps (UICC-based path), read over plain APDUs with PIN1 verified

/// USIM application of the 3GPP RID (TS 31.110 / ETSI TS 101 220 Annex E: A0 00 00 00 87, 10 02),
/// selected by partial AID.
const SELECT_USIM: [u8; 12] = [0x00, 0xA4, 0x04, 0x0C, 0x07, 0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02];
/// EF.MSK (TS 31.102 §4.2.80).
pub const FID_MSK: u16 = 0x6FD7;
/// EF.MUK (TS 31.102 §4.2.81).
pub const FID_MUK: u16 = 0x6FD8;

/// A TLV of one-byte tag with a BER length (one byte, or 81 xx): tag, value, rest.
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = b.split_first()?;
    let (len, rest) = match rest.split_first()? {
        (&0x81, r) => (usize::from(*r.first()?), &r[1..]),
        (&l, r) if l < 0x80 => (usize::from(l), r),
        _ => return None,
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// One EF.MUK record as TS 31.102 §4.2.81 lays it out: `A0 L (80 L Idr, 82 L Idi)`, `81 L TS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardMuk {
    /// MUK Idr: the B-TID.
    pub idr: String,
    /// MUK Idi: the BM-SC FQDN.
    pub idi: String,
    /// Time Stamp Counter: the last MSK message's timestamp.
    pub ts: Vec<u8>,
}

/// One EF.MSK record as TS 31.102 §4.2.80 lays it out: Key Domain ID (3), number of MSKs (1),
/// then (MSK ID 4, Time Stamp Counter 4) pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardMsk {
    /// Key Domain ID.
    pub key_domain_id: [u8; 3],
    /// (MSK ID, Time Stamp Counter), older first.
    pub pairs: Vec<(u32, u32)>,
}

impl World {
    /// The used records of a linear fixed EF of the USIM (all-`FF` records are free).
    pub fn card_records(&self, fid: u16) -> Vec<Vec<u8>> {
        let [hi, lo] = fid.to_be_bytes();
        self.ue
            .card()
            .with_session(|s| {
                assert!(s.transmit_apdu(&SELECT_USIM).unwrap().is_ok(), "SELECT ADF.USIM");
                assert!(
                    s.transmit_apdu(&[0x00, 0xA4, 0x00, 0x0C, 0x02, hi, lo]).unwrap().is_ok(),
                    "SELECT EF"
                );
                let mut out = Vec::new();
                for n in 1..=254u8 {
                    let r = s.transmit_apdu(&[0x00, 0xB2, n, 0x04, 0x00]).unwrap();
                    if !r.is_ok() {
                        assert_eq!(
                            r.sw(),
                            0x6A83,
                            "READ RECORD {n} of {fid:04X}: only 'record not found' ends"
                        );
                        break;
                    }
                    if r.data.iter().any(|&b| b != 0xFF) {
                        out.push(r.data.clone());
                    }
                }
                out
            })
            .unwrap()
    }

    /// EF.MUK of the card.
    pub fn card_muks(&self) -> Vec<CardMuk> {
        self.card_records(FID_MUK)
            .iter()
            .map(|rec| {
                let (tag, id, rest) = tlv(rec).expect("MUK ID template");
                assert_eq!(tag, 0xA0);
                let (t1, idr, id_rest) = tlv(id).expect("Idr");
                let (t2, idi, _) = tlv(id_rest).expect("Idi");
                assert_eq!((t1, t2), (0x80, 0x82));
                let (t3, ts, _) = tlv(rest).expect("Time Stamp Counter");
                assert_eq!(t3, 0x81);
                CardMuk {
                    idr: String::from_utf8(idr.to_vec()).unwrap(),
                    idi: String::from_utf8(idi.to_vec()).unwrap(),
                    ts: ts.to_vec(),
                }
            })
            .collect()
    }

    /// EF.MSK of the card.
    pub fn card_msks(&self) -> Vec<CardMsk> {
        self.card_records(FID_MSK)
            .iter()
            .map(|rec| {
                let n = usize::from(rec[3]);
                let pairs = (0..n)
                    .map(|i| {
                        let p = &rec[4 + 8 * i..12 + 8 * i];
                        (
                            u32::from_be_bytes(p[..4].try_into().unwrap()),
                            u32::from_be_bytes(p[4..].try_into().unwrap()),
                        )
                    })
                    .collect();
                CardMsk { key_domain_id: rec[..3].try_into().unwrap(), pairs }
            })
            .collect()
    }

    /// The MSK IDs the UE holds for [`KEY_DOMAIN`]: on the card (UICC-based) or in the ME key store
    /// file (ME-based).
    pub fn held_msk_ids(&self) -> Vec<u32> {
        let mut ids: Vec<u32> = match self.path {
            KeyManagementPath::UiccBased => self
                .card_msks()
                .iter()
                .filter(|r| r.key_domain_id == KEY_DOMAIN.0)
                .flat_map(|r| r.pairs.iter().map(|p| p.0))
                .collect(),
            KeyManagementPath::MeBased => self
                .store_on_disk()
                .msks()
                .iter()
                .filter(|m| m.key_domain_id == KEY_DOMAIN)
                .map(|m| m.msk_id.0)
                .collect(),
        };
        ids.sort_unstable();
        ids
    }

    /// Everything the UE keeps of MBMS keys and their counters, as stored: EF.MUK and EF.MSK
    /// records of the card and the ME key store file.
    pub fn stored_state(&self) -> Vec<Vec<u8>> {
        let mut state = vec![self.store_bytes()];
        if self.path == KeyManagementPath::UiccBased {
            state.extend(self.card_records(FID_MUK));
            state.extend(self.card_records(FID_MSK));
        }
        state
    }
}
