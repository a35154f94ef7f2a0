//! The standalone UE of TS 33.246 §6 (`keysim ue`): one UE, or N, against any BSF and BM-SC for
//! a given time. Power-on, GBA over Ub (TS 33.220 §4.5.2), the NAF keys, registration (HTTP Digest
//! to the BM-SC, TS 33.246 §6.3.2.1, or SIP to the SCF, TS 26.237 §10.4.2), the MSK push, then
//! whatever the BM-SC sends on its own schedule (MTK messages, SRTP media, MSK rotations, solicited
//! pulls) for the listening time, deregistration and power-down. Each procedure is a
//! [`Step`] of a [`PathReport`], the shape `keysim demo --json` prints.
//!
//! The ME key store lives in a directory across runs ([`MeState`]): the last used MUK stays over
//! a power cycle (TS 33.246 §6.1 as changed by CR 027), and a card of another ICCID or IMPI wipes
//! every key (CR 001).
//!
//! Several UEs of one host each need their own MIKEY endpoint, since the BM-SC pushes MSKs to
//! `(source address of the HTTP request, UE MIKEY port)`: UE *i* gets the loopback address
//! [`ue_loopback_address`], its HTTP requests leave from it and its MIKEY socket is bound to it.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sim_reader::Reader;
use statefile::StateFile;

use crate::error::{Error, Result};
use crate::key_management::KeyManagementPath;
use crate::key_store::{CardChange, KeyStore};
use crate::report::{PathReport, Step, StepLog};
use crate::ue::{MtkInstall, ReceivedFrame, Signalling, Ue, UeConfig, UeStats};

/// The longest the UE waits for the MSK push after registration.
pub const MSK_PUSH_TIMEOUT: Duration = Duration::from_secs(10);
/// The ME key store's file in an `--me-state` directory.
pub const KEY_STORE_FILE: &str = "me-keys.bin";
/// The file in an `--me-state` directory naming the card (ICCID, IMPI) the key store belongs to.
pub const CARD_FILE: &str = "card-identity.bin";
/// The [`statefile`] format of [`CARD_FILE`]: payload `ICCID '\n' IMPI`.
pub const CARD_FORMAT: statefile::Format =
    statefile::Format { magic: *b"KSIMUECD", version: 1, what: "UE card identity", legacy_len: None };
/// The first UE address of a multi-UE run (UE 0); 127.0.0.1 stays the network's.
pub const FIRST_UE_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 1, 1);
/// Most UEs of one run: the loopback addresses 127.0.1.1 – 127.0.254.254 without .0 and .255.
pub const MAX_UES: usize = 254 * 254;

/// The loopback address of UE `index` of a multi-UE run: 127.0.(1 + i / 254).(1 + i % 254).
pub fn ue_loopback_address(index: usize) -> Result<Ipv4Addr> {
    if index >= MAX_UES {
        return Err(Error::InvalidInput(format!("UE {index}: at most {MAX_UES} UEs per host")));
    }
    let [a, b, c, d] = FIRST_UE_ADDRESS.octets();
    Ok(Ipv4Addr::new(a, b, c + (index / 254) as u8, d + (index % 254) as u8))
}

/// How one standalone UE runs.
#[derive(Debug, Clone)]
pub struct StandaloneConfig {
    /// The UE: URLs, FQDN, services, sockets, path, PIN, signalling, key store file.
    pub ue: UeConfig,
    /// How long the UE listens after the MSK push.
    pub listen: Duration,
    /// The `--me-state` directory: the key store ([`KEY_STORE_FILE`]) and [`CARD_FILE`] live
    /// there; `None`: `ue.key_store_path` as it is, no card-identity check.
    pub me_state: Option<PathBuf>,
}

/// What the `--me-state` directory held and holds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MeStateReport {
    /// The directory.
    pub dir: String,
    /// "first card", "same card", or "different card" (another ICCID or IMPI: keys wiped).
    pub card_change: &'static str,
    /// B-TIDs (IDr) of the MUKs found in the store at power-on, after the card check.
    pub muks_at_power_on: Vec<String>,
    /// B-TID of the MUK marked last used at power-on.
    pub last_used_muk_at_power_on: Option<String>,
    /// B-TIDs of the MUKs left in the store after power-down.
    pub muks_at_power_down: Vec<String>,
    /// B-TID of the MUK marked last used after power-down.
    pub last_used_muk_at_power_down: Option<String>,
}

/// One UE's run.
#[derive(Debug)]
pub struct Run {
    /// The step report.
    pub report: PathReport,
    /// The decrypted frames, in arrival order.
    pub frames: Vec<ReceivedFrame>,
    /// The MTKs installed, with their times.
    pub mtk_installs: Vec<MtkInstall>,
    /// The counters at the end.
    pub stats: UeStats,
    /// The `--me-state` directory's story.
    pub me_state: Option<MeStateReport>,
    /// When registration started and ended (if it ran).
    pub registration: Option<(Instant, Instant)>,
    /// The MIKEY socket's address.
    pub mikey_addr: Option<SocketAddr>,
}

/// [`StepLog::step`] with this crate's errors.
fn step<T>(
    steps: &mut StepLog<'_>,
    name: &'static str,
    f: impl FnOnce() -> Result<(T, String)>,
) -> Result<T> {
    steps.step(name, f)
}

fn muk_btids(store: &KeyStore, idi: &[u8]) -> (Vec<String>, Option<String>) {
    let mine: Vec<_> = store.muks().iter().filter(|m| m.idi == idi).collect();
    let names = mine.iter().map(|m| String::from_utf8_lossy(&m.idr).into_owned()).collect();
    let last = mine.iter().find(|m| m.last_used).map(|m| String::from_utf8_lossy(&m.idr).into_owned());
    (names, last)
}

/// Reads [`CARD_FILE`] (locked until the returned file is dropped): whether the card (ICCID,
/// IMPI) is the one the directory's key store belongs to, and the payload to store for it.
fn check_card_identity(dir: &Path, iccid: &str, impi: &str) -> Result<(StateFile, CardChange, String)> {
    let (file, payload) = StateFile::open(&dir.join(CARD_FILE), CARD_FORMAT)?;
    let now = format!("{iccid}\n{impi}");
    let change = match payload {
        None => CardChange::FirstCard,
        Some(p) if p.as_slice() == now.as_bytes() => CardChange::SameCard,
        Some(_) => CardChange::DifferentCard,
    };
    Ok((file, change, now))
}

fn change_name(c: CardChange) -> &'static str {
    match c {
        CardChange::FirstCard => "first card",
        CardChange::SameCard => "same card",
        CardChange::DifferentCard => "different card",
    }
}

impl Run {
    fn empty(report: PathReport) -> Self {
        Run {
            report,
            frames: Vec::new(),
            mtk_installs: Vec::new(),
            stats: UeStats::default(),
            me_state: None,
            registration: None,
            mikey_addr: None,
        }
    }
}

/// Runs one UE with the (powered) card in `reader`: every step is recorded, a failed step ends
/// the run (deregistration and power-down are still tried once registered). `on_step` sees each
/// step as it ends.
pub fn run<R: Reader>(reader: R, mut config: StandaloneConfig, on_step: &mut dyn FnMut(&Step)) -> Run {
    if let Some(dir) = &config.me_state {
        config.ue.key_store_path = dir.join(KEY_STORE_FILE);
    }
    let path = config.ue.path.unwrap_or(KeyManagementPath::UiccBased);
    let services = config.ue.service_ids.len();
    let mut report = PathReport::for_path(path, services);
    report.signalling = match config.ue.signalling {
        Signalling::Http => "http",
        Signalling::Sip { .. } => "sip",
    };
    let mut steps = StepLog::new(on_step);
    let mut run = Run::empty(PathReport::default());
    let result = run_steps(reader, &config, &mut steps, &mut report, &mut run);
    if let Err(e) = &result {
        report.error = Some(e.to_string());
    }
    report.ok = result.is_ok() && steps.steps().iter().all(|s| s.ok);
    report.set_steps(steps.into_steps());
    run.report = report;
    run
}

fn run_steps<R: Reader>(
    reader: R,
    config: &StandaloneConfig,
    steps: &mut StepLog<'_>,
    report: &mut PathReport,
    run: &mut Run,
) -> Result<()> {
    let idi = config.ue.naf_fqdn().as_bytes().to_vec();
    let power_on = Instant::now();
    let mut ue = step(steps, "power_on", || {
        let mut ue = Ue::new(reader, config.ue.clone())?;
        let mut detail = format!("ICCID {}, IMPI {}, {} path", ue.iccid(), ue.impi(), ue.path());
        if let Some(dir) = &config.me_state {
            // The key store binds itself to the ICCID; the IMPI is checked here.
            let (file, change, identity) = check_card_identity(dir, ue.iccid(), ue.impi())?;
            // The keys go before the new identity is written: a crash in between wipes again.
            if change == CardChange::DifferentCard {
                ue.wipe_me_keys()?;
            }
            if change != CardChange::SameCard {
                file.store(identity.as_bytes())?;
            }
            let (muks, last) = muk_btids(ue.key_store(), &idi);
            detail.push_str(&format!(
                ", ME key store {}: {}, {} MUK(s) kept",
                dir.display(),
                change_name(change),
                muks.len()
            ));
            run.me_state = Some(MeStateReport {
                dir: dir.display().to_string(),
                card_change: change_name(change),
                muks_at_power_on: muks,
                last_used_muk_at_power_on: last,
                ..MeStateReport::default()
            });
        }
        Ok((ue, detail))
    })?;
    run.mikey_addr = Some(ue.mikey_addr());
    let result = session(&mut ue, config, steps, report, run, power_on);
    // Power-down whatever happened: the key store keeps the last used MUK.
    let down = step(steps, "power_down", || {
        ue.power_down()?;
        Ok(((), "ME key store saved (last used MUK kept), card powered off".to_owned()))
    });
    if let Some(state) = run.me_state.as_mut() {
        let (muks, last) = muk_btids(ue.key_store(), &idi);
        state.muks_at_power_down = muks;
        state.last_used_muk_at_power_down = last;
    }
    run.frames = ue.frames().cloned().collect();
    run.mtk_installs = ue.mtk_installs().copied().collect();
    run.stats = ue.stats();
    report.fill(&run.stats);
    report.media_sha256 = hex::encode(ue.media_digest());
    report.btid = ue.btid().unwrap_or_default().to_owned();
    result.and(down)
}

fn session<R: Reader>(
    ue: &mut Ue<R>,
    config: &StandaloneConfig,
    steps: &mut StepLog<'_>,
    report: &mut PathReport,
    run: &mut Run,
    power_on: Instant,
) -> Result<()> {
    let path = ue.path();
    step(steps, "gba_bootstrap", || {
        let b = ue.bootstrap()?;
        let variant = match b.variant {
            crate::GbaVariant::GbaU => "GBA_U",
            crate::GbaVariant::GbaMe => "GBA_ME",
        };
        let resync = if b.resynchronisations > 0 { ", SQN resynchronised" } else { "" };
        Ok((
            (),
            format!(
                "{variant}: B-TID {}, lifetime {}, {} HTTP requests{resync}",
                b.btid, b.lifetime, b.http_requests
            ),
        ))
    })?;
    step(steps, "naf_derivation", || {
        let k = ue.derive_naf_keys()?;
        let held = match path {
            KeyManagementPath::UiccBased => "Ks_int_NAF (MUK) kept on the card, Ks_ext_NAF (MRK) to the ME",
            KeyManagementPath::MeBased => "MUK and MRK derived from Ks_NAF in the ME",
        };
        Ok(((), format!("NAF {}: {held}", k.naf_fqdn)))
    })?;
    let n = config.ue.service_ids.len() as u64;
    let start = Instant::now();
    let registered = step(steps, "registration", || {
        let r = ue.register()?;
        if !r.refused.is_empty() {
            return Err(Error::InvalidInput(format!("services refused: {:?}", r.refused)));
        }
        Ok(((), format!("{} service(s) registered", r.accepted.len())))
    });
    run.registration = Some((start, Instant::now()));
    let result = registered.and_then(|()| listen(ue, config, steps, n, power_on, report));
    // Deregistration of what is registered, whatever happened after registration.
    if !ue.registered().is_empty() {
        let dereg = step(steps, "deregistration", || {
            let r = ue.deregister()?;
            if !r.refused.is_empty() {
                return Err(Error::InvalidInput(format!("deregistration refused: {:?}", r.refused)));
            }
            Ok(((), format!("{} service(s) deregistered", r.accepted.len())))
        });
        return result.and(dereg);
    }
    result
}

fn listen<R: Reader>(
    ue: &mut Ue<R>,
    config: &StandaloneConfig,
    steps: &mut StepLog<'_>,
    n: u64,
    power_on: Instant,
    report: &mut PathReport,
) -> Result<()> {
    let pushed = Instant::now();
    step(steps, "msk_push", || {
        ue.poll_until(Instant::now() + MSK_PUSH_TIMEOUT, |s| s.msk_count >= n)?;
        let s = ue.stats();
        if s.msk_count < n {
            return Err(Error::InvalidInput(format!(
                "{} of {n} MSK(s) pushed within {MSK_PUSH_TIMEOUT:?}",
                s.msk_count
            )));
        }
        Ok((
            (),
            format!(
                "{} MSK(s) over MIKEY/UDP, {} verification message(s) sent",
                s.msk_count, s.verifications_sent
            ),
        ))
    })?;
    let before = ue.stats();
    let listen_start = Instant::now();
    let end = listen_start + config.listen;
    let mut first_media: Option<Instant> = None;
    let polled = ue.poll_until(end, |s| {
        if first_media.is_none() && s.packets_decrypted > before.packets_decrypted {
            first_media = Some(Instant::now());
        }
        false
    });
    let d = ue.stats().since(&before);
    report.time_to_first_media_ms = first_media.map(|t| t.duration_since(power_on).as_secs_f64() * 1e3);
    let installs: Vec<Instant> = ue.mtk_installs().map(|m| m.at).filter(|t| *t >= pushed).collect();
    let first_mtk = installs.first().map(|t| t.duration_since(pushed)).unwrap_or_default();
    steps.record(
        "mtk_update",
        !installs.is_empty(),
        first_mtk,
        format!(
            "{} MTK(s) from the BM-SC since registration, {} while listening {:.1} s (latency: registration \
             done → first MTK installed)",
            installs.len(),
            d.mtk_count,
            config.listen.as_secs_f64()
        ),
    );
    // Decryption failures are packets refused by SRTP (authentication, replay, parsing) over the
    // whole run; packets naming an MTK the UE never got (sent before it had its keys) are counted
    // apart.
    let all = ue.stats();
    let refused = all.packets_failed - all.packets_unkeyed;
    steps.record(
        "media",
        d.packets_decrypted > 0 && refused == 0,
        listen_start.elapsed(),
        format!(
            "{} SRTP packets received, {} decrypted, {refused} refused by SRTP; {} naming no MTK the UE held \
             (sent before it had its keys)",
            d.packets_received, d.packets_decrypted, all.packets_unkeyed
        ),
    );
    if d.msk_count > 0 {
        steps.record(
            "msk_rotation",
            true,
            Duration::ZERO,
            format!("{} MSK message(s) during listening (rotations, answers to pulls)", d.msk_count),
        );
    }
    if d.solicited_pulls > 0 {
        steps.record(
            "solicited_pull",
            d.basic_msk_requests >= d.solicited_pulls,
            Duration::ZERO,
            format!(
                "{} pull(s) (MSK ID 0) → {} basic MSK request(s)",
                d.solicited_pulls, d.basic_msk_requests
            ),
        );
    }
    polled.map(|_| ())
}

// ------------------------------------------------------------------------------------------------
// Media out

/// One SSRC's part of a media-out file.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MediaOutStream {
    /// The RTP SSRC.
    pub ssrc: u32,
    /// Sequence number of its first frame in the file.
    pub first_seq: u16,
    /// Sequence number of its last frame in the file.
    pub last_seq: u16,
    /// Frames written.
    pub frames: u64,
    /// Sequence numbers between the first and the last that never arrived.
    pub missing: u64,
    /// Offset of its first byte in the file.
    pub offset: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// What [`write_media_out`] wrote.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MediaOut {
    /// The file.
    pub file: String,
    /// [`MEDIA_OUT_FORMAT`].
    pub format: &'static str,
    /// Bytes in the file.
    pub bytes: u64,
    /// The SSRCs in file order.
    pub streams: Vec<MediaOutStream>,
}

/// The format of a media-out file, as `--json` names it.
pub const MEDIA_OUT_FORMAT: &str =
    "rtp-payloads: per SSRC (ascending), the decrypted RTP payloads in RTP sequence order, concatenated";

/// The frames of each SSRC in RTP sequence order (extended over wrap-around from arrival order),
/// each sequence number once.
pub fn frames_in_sequence(frames: &[ReceivedFrame]) -> BTreeMap<u32, Vec<(i64, &ReceivedFrame)>> {
    let mut per: BTreeMap<u32, Vec<(i64, &ReceivedFrame)>> = BTreeMap::new();
    let mut last: BTreeMap<u32, (i64, u16)> = BTreeMap::new();
    for f in frames {
        let ext = match last.get(&f.ssrc) {
            None => i64::from(f.sequence_number),
            Some(&(ext, seq)) => ext + i64::from(f.sequence_number.wrapping_sub(seq) as i16),
        };
        let newest = last.get(&f.ssrc).is_none_or(|&(e, _)| ext > e);
        if newest {
            last.insert(f.ssrc, (ext, f.sequence_number));
        }
        per.entry(f.ssrc).or_default().push((ext, f));
    }
    for v in per.values_mut() {
        v.sort_by_key(|(e, _)| *e);
        v.dedup_by_key(|(e, _)| *e);
    }
    per
}

/// Writes the decrypted media to `path` in [`MEDIA_OUT_FORMAT`] (replacing the file).
pub fn write_media_out(frames: &[ReceivedFrame], path: &Path) -> Result<MediaOut> {
    let mut out =
        MediaOut { file: path.display().to_string(), format: MEDIA_OUT_FORMAT, ..MediaOut::default() };
    let mut bytes = Vec::new();
    for (ssrc, seq) in frames_in_sequence(frames) {
        let (Some(first), Some(last)) = (seq.first(), seq.last()) else { continue };
        let offset = bytes.len() as u64;
        for (_, f) in &seq {
            bytes.extend_from_slice(&f.payload);
        }
        out.streams.push(MediaOutStream {
            ssrc,
            first_seq: first.1.sequence_number,
            last_seq: last.1.sequence_number,
            frames: seq.len() as u64,
            missing: (last.0 - first.0 + 1) as u64 - seq.len() as u64,
            offset,
            bytes: bytes.len() as u64 - offset,
        });
    }
    out.bytes = bytes.len() as u64;
    std::fs::write(path, &bytes)
        .map_err(|source| Error::Io { context: "writing the media-out file", source })?;
    Ok(out)
}

// ------------------------------------------------------------------------------------------------
// Many UEs

/// Spread of one MTK over the UEs: last install − first install.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Fanout {
    /// MTKs seen by at least two UEs.
    pub mtks: usize,
    /// Mean spread, ms.
    pub mean_ms: f64,
    /// Median spread, ms.
    pub p50_ms: f64,
    /// 95th percentile, ms.
    pub p95_ms: f64,
    /// Largest spread, ms.
    pub max_ms: f64,
}

/// The MTK fan-out latency: for each MTK (Key Domain, MSK ID, MTK ID) installed by at least two
/// UEs, the time between the first and the last UE installing it.
pub fn mtk_fanout(runs: &[&[MtkInstall]]) -> Fanout {
    /// (Key Domain ID, MSK ID, MTK ID) → (first install, last install, UEs).
    type Seen = BTreeMap<([u8; 3], u32, u32), (Instant, Instant, usize)>;
    let mut by_mtk = Seen::new();
    for installs in runs {
        for m in installs.iter() {
            let key = (m.key_domain_id.0, m.msk_id.0, m.mtk_id.0);
            let e = by_mtk.entry(key).or_insert((m.at, m.at, 0));
            e.0 = e.0.min(m.at);
            e.1 = e.1.max(m.at);
            e.2 += 1;
        }
    }
    let mut spreads: Vec<f64> = by_mtk
        .values()
        .filter(|(_, _, n)| *n >= 2)
        .map(|(a, b, _)| b.duration_since(*a).as_secs_f64() * 1e3)
        .collect();
    if spreads.is_empty() {
        return Fanout::default();
    }
    spreads.sort_by(f64::total_cmp);
    let at = |q: f64| spreads.get(((spreads.len() - 1) as f64 * q).round() as usize).copied().unwrap_or(0.0);
    Fanout {
        mtks: spreads.len(),
        mean_ms: spreads.iter().sum::<f64>() / spreads.len() as f64,
        p50_ms: at(0.5),
        p95_ms: at(0.95),
        max_ms: spreads.last().copied().unwrap_or(0.0),
    }
}

/// A line of `/proc/self/status` (`VmHWM`, `VmRSS`…) in KiB; `None` off Linux.
pub fn proc_status_kib(field: &str) -> Option<u64> {
    status_field_kib(&std::fs::read_to_string("/proc/self/status").ok()?, field)
}

/// A line (`VmHWM`, `VmRSS`…) of the text of a `/proc/PID/status` file, in KiB.
pub fn status_field_kib(text: &str, field: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    line[field.len() + 1..].split_whitespace().next()?.parse().ok()
}

/// Runs every UE in a thread of its own at once; the runs come back in the order given.
pub fn run_many<R: Reader + Send + 'static>(ues: Vec<(R, StandaloneConfig)>) -> Vec<Run> {
    let handles: Vec<_> = ues
        .into_iter()
        .enumerate()
        .map(|(i, (reader, config))| {
            std::thread::Builder::new().name(format!("ue {i}")).spawn(move || {
                run(reader, config, &mut |s: &Step| {
                    tracing::info!(ue = i, ok = s.ok, ms = s.latency_ms, "{}: {}", s.name, s.detail);
                })
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| {
            match h
                .map_err(|e| e.to_string())
                .and_then(|h| h.join().map_err(|_| "the UE thread panicked".to_owned()))
            {
                Ok(r) => r,
                Err(e) => Run::empty(PathReport { error: Some(e), ..PathReport::default() }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ue_addresses_are_distinct_loopback() {
        let mut seen = std::collections::HashSet::new();
        for i in [0usize, 1, 252, 253, 254, 255, 1000, MAX_UES - 1] {
            let a = ue_loopback_address(i).unwrap();
            assert!(a.is_loopback());
            let o = a.octets();
            assert!(o[3] != 0 && o[3] != 255 && o[2] != 0 && o[2] != 255, "{a}");
            assert!(seen.insert(a));
        }
        assert_eq!(ue_loopback_address(0).unwrap(), Ipv4Addr::new(127, 0, 1, 1));
        assert_eq!(ue_loopback_address(254).unwrap(), Ipv4Addr::new(127, 0, 2, 1));
        assert!(ue_loopback_address(MAX_UES).is_err());
    }

    #[test]
    fn media_out_orders_by_extended_sequence() {
        let f = |ssrc: u32, seq: u16, b: u8| ReceivedFrame {
            ssrc,
            sequence_number: seq,
            timestamp: 0,
            payload: vec![b; 2],
        };
        // Arrival order with a wrap-around, a reordering, a duplicate and a gap; two SSRCs.
        let frames = [f(9, 65534, 1), f(5, 10, 7), f(9, 0, 3), f(9, 65535, 2), f(9, 0, 3), f(9, 2, 5)];
        let dir = std::env::temp_dir().join(format!("keysim-media-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.raw");
        let m = write_media_out(&frames, &path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), [7, 7, 1, 1, 2, 2, 3, 3, 5, 5]);
        assert_eq!(m.streams.len(), 2);
        assert_eq!((m.streams[0].ssrc, m.streams[0].frames, m.streams[0].offset), (5, 1, 0));
        let s = &m.streams[1];
        assert_eq!(
            (s.ssrc, s.first_seq, s.last_seq, s.frames, s.missing, s.offset, s.bytes),
            (9, 65534, 2, 4, 1, 2, 8)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fanout_is_last_minus_first() {
        use mikey::mbms::{KeyDomainId, MskId, MtkId};
        let t0 = Instant::now();
        let m = |ms: u64, id: u32| MtkInstall {
            key_domain_id: KeyDomainId([0, 0, 1]),
            msk_id: MskId(1),
            mtk_id: MtkId(id),
            at: t0 + Duration::from_millis(ms),
        };
        let a = [m(0, 1), m(100, 2)];
        let b = [m(4, 1), m(130, 2), m(200, 3)];
        let f = mtk_fanout(&[&a, &b]);
        assert_eq!(f.mtks, 2);
        assert!((f.max_ms - 30.0).abs() < 1e-6);
        assert!((f.mean_ms - 17.0).abs() < 1e-6);
    }
}
