//! `keysim demo`: every MBMS security procedure of TS 33.246 §6 end to end on loopback — GBA
//! bootstrapping with the BSF (TS 33.220 §4.5.2), NAF key derivation, registration with the BM-SC
//! (§6.3.2.1), MSK push (§6.3.2.2), MTK updates on the bearer (§6.3.3), SRTP media (§6.6), MSK
//! rotation, a solicited pull answered with a basic MSK request (§6.3.2.2.4), deregistration —
//! on the UICC-based path, the ME-based path, or both, with the peers started in-process.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use me::report::{PathReport, Report, Step, StepLog, path_tag as tag};
use me::ue::UeStats;
use me::{KeyManagementPath, Ue, UeConfig};
use network::bmsc::{Bmsc, BmscConfig, BmscService};
use network::bmsc_stream::{BmscStreamConfig, MediaFile};
use network::bsf::{Bsf, BsfConfig, Subscriber};
use sim_reader::trace::MemoryTrace;
use sim_reader::{CardProfile, Reader};

use crate::cli::DemoArgs;

/// The BM-SC's FQDN (its NAF_Id with the MBMS Ua protocol identifier, its Digest realms).
pub(crate) const BMSC_FQDN: &str = wire::mbms_key_management::DEFAULT_BMSC_FQDN;
/// Media frames per second and service (20 ms frames of the test signal).
const PACKETS_PER_SECOND: f64 = 50.0;
/// Media is sent in bursts this often, with the UE polling in between.
const MEDIA_TICK: Duration = Duration::from_millis(100);
/// A new MTK on the bearer every so much media.
const MTK_PERIOD: Duration = Duration::from_secs(1);
/// The longest any one step may wait for the UE to see what the network sent.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);
/// Media sent under the rotated MSK (one MTK period's worth, at least).
const AFTER_ROTATION: Duration = Duration::from_millis(400);
/// Seed of the BM-SC's deterministic key and media generator: both paths get the same MSKs, MTKs
/// and media, so their decrypted output can be compared.
const STREAM_SEED: [u8; 32] = *b"keysim demo BM-SC key generator.";
/// The SCF's SIP domain (Request-URI `sip:scf@…`) with --signalling sip.
const SCF_DOMAIN: &str = wire::sip_based_mbms::DEFAULT_SCF_DOMAIN;
/// The SCF's FQDN for the BM-SC: the NAF FQDN of the services with --signalling sip.
const SCF_FQDN: &str = wire::sip_based_mbms::DEFAULT_SCF_NAF_FQDN;
/// The bearer's multicast group with --multicast (administratively scoped, RFC 2365).
const MULTICAST_GROUP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(239, 255, 77, 77);
/// The SSRC of the first service's stream; service i uses SSRC_BASE + i.
const SSRC_BASE: u32 = 0x4D42_4D00;

/// The step log on stderr.
pub(crate) struct Log {
    pub(crate) quiet: bool,
}

impl Log {
    pub(crate) fn step(&self, tag: &str, s: &Step) {
        if !self.quiet {
            let mark = if s.ok { "ok " } else { "FAIL" };
            eprintln!("[{tag:<4}] {mark} {:<22} {:>9.2} ms  {}", s.name, s.latency_ms, s.detail);
        }
    }

    pub(crate) fn note(&self, tag: &str, text: &str) {
        if !self.quiet {
            eprintln!("[{tag:<4}]      {text}");
        }
    }
}

pub fn run(args: DemoArgs) -> Result<ExitCode> {
    if !(args.duration > 0.0 && args.duration <= 3600.0) {
        bail!("--duration: expected seconds in (0, 3600], got {}", args.duration);
    }
    let profile = super::card::load_profile(args.card.profile.as_deref())?;
    let media = match &args.media {
        Some(path) => {
            Some(Arc::new(MediaFile::load_g711(path).with_context(|| format!("--media {}", path.display()))?))
        }
        None => None,
    };
    let paths: Vec<KeyManagementPath> = match args.path.as_str() {
        "uicc" => vec![KeyManagementPath::UiccBased],
        "me" => vec![KeyManagementPath::MeBased],
        _ => vec![KeyManagementPath::UiccBased, KeyManagementPath::MeBased],
    };
    let log = Log { quiet: args.quiet };

    // One card for every path: the emulated one, or the card in the named reader.
    let (reader, card_name) = super::card::open_card(args.reader.as_deref(), &args.card)?;
    let apdus = MemoryTrace::new();
    let mut reader = super::card::traced(reader, &args.trace)?;
    reader.add_sink(apdus.clone());
    reader.power_on().context("powering the card on")?;
    if paths.contains(&KeyManagementPath::UiccBased) {
        // Each service is its own Key Group, and the card keeps the MSKs of a Key Group in one
        // EF.MSK record: refuse more services than it has records before anything runs.
        let card = me::Card::new(&mut reader);
        let groups = card.msk_key_groups().context("reading the size of the card's EF.MSK")?;
        if usize::from(args.services) > groups {
            bail!(
                "--services {}: the card's EF.MSK has {groups} records, one per Key Group, and each service \
                 is a Key Group of its own on the UICC-based path: give at most {groups}, or --path me",
                args.services
            );
        }
    }

    let bsf = Bsf::start(BsfConfig {
        subscribers: vec![
            Subscriber::from_profile_toml(&profile.to_toml()).map_err(|e| anyhow!("BSF subscriber: {e}"))?,
        ],
        ..BsfConfig::default()
    })
    .context("starting the BSF")?;
    log.note("net", &format!("BSF on {} (Ub {}, Zn {})", bsf.addr(), bsf.url(), bsf.zn_url()));

    let dir = std::env::temp_dir().join(format!("keysim-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut reports = BTreeMap::new();
    let mut digests = Vec::new();
    for path in paths {
        let tag = tag(path);
        let before = apdus.exchanges().len();
        let setting =
            Setting { args: &args, media: media.clone(), profile: &profile, bsf: &bsf, dir: &dir, log: &log };
        let mut report = run_path(&setting, &mut reader, path);
        report.apdus = apdus.exchanges().len() - before;
        digests.push(report.media_sha256.clone());
        reports.insert(tag, report);
    }
    let _ = std::fs::remove_dir_all(&dir);

    let identical = (digests.len() == 2).then(|| digests[0] == digests[1] && !digests[0].is_empty());
    let ok = reports.values().all(|r| r.ok) && identical.unwrap_or(true);
    let report = Report {
        card: card_name,
        services: args.services,
        duration_s: args.duration,
        paths: reports,
        media_identical_across_paths: identical,
        ok,
    };
    crate::report::run_summary(&serde_json::to_value(&report)?);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report);
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub(crate) fn service_id(i: u16) -> String {
    format!("urn:keysim:mbms:service:{}", i + 1)
}

/// A free loopback UDP port: the BM-SC must know the UE's ports before the UE binds them.
fn free_udp_port() -> Result<u16> {
    Ok(UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// What every path of one run shares.
struct Setting<'a> {
    args: &'a DemoArgs,
    media: Option<Arc<MediaFile>>,
    profile: &'a CardProfile,
    bsf: &'a Bsf,
    dir: &'a std::path::Path,
    log: &'a Log,
}

/// One path from power-on to deregistration; failures end the path and are reported in it.
fn run_path<R: Reader>(setting: &Setting<'_>, reader: &mut R, path: KeyManagementPath) -> PathReport {
    let Setting { args, log, .. } = *setting;
    let mut report = PathReport::for_path(path, usize::from(args.services));
    let tag = tag(path);
    let mut run = PathRun { tag, log, steps: StepLog::new(move |s: &Step| log.step(tag, s)) };
    let result = run.all(setting, reader, path, &mut report);
    if let Err(e) = &result {
        report.error = Some(format!("{e:#}"));
        log.note(run.tag, &format!("stopped: {e:#}"));
    }
    report.ok = result.is_ok() && run.steps.steps().iter().all(|s| s.ok) && report.media_match;
    report.set_steps(run.steps.into_steps());
    report
}

struct PathRun<'a> {
    tag: &'static str,
    log: &'a Log,
    steps: StepLog<'a>,
}

impl PathRun<'_> {
    fn record(&mut self, name: &'static str, ok: bool, elapsed: Duration, detail: String) {
        self.steps.record(name, ok, elapsed, detail);
    }

    /// Runs `f`, records it as a step and passes its error on.
    fn step<T>(&mut self, name: &'static str, f: impl FnOnce() -> Result<(T, String)>) -> Result<T> {
        self.steps.step(name, f).map_err(|e| e.context(name))
    }

    fn all<R: Reader>(
        &mut self,
        setting: &Setting<'_>,
        reader: &mut R,
        path: KeyManagementPath,
        report: &mut PathReport,
    ) -> Result<()> {
        let Setting { args, profile, bsf, dir, .. } = *setting;
        let services: Vec<String> = (0..args.services).map(service_id).collect();
        // A captured run sends MIKEY to its registered port, where Wireshark looks for it.
        let captured = args.capture.is_some() || args.report.is_some();
        let mikey_port = if captured { crate::capture::MIKEY_PORT } else { free_udp_port()? };
        let media_port = free_udp_port()?;
        let mikey_addr = SocketAddr::from(([127, 0, 0, 1], mikey_port));
        let media_addr = SocketAddr::from(([127, 0, 0, 1], media_port));
        let mut config = BmscConfig::new(BMSC_FQDN, bsf.addr());
        config.services = (0..args.services)
            .map(|i| {
                let mut stream = BmscStreamConfig::new(BMSC_FQDN, STREAM_SEED);
                stream.key_group = i + 1;
                stream.ssrc = SSRC_BASE + u32::from(i);
                let mut seed = STREAM_SEED;
                seed[31] ^= i as u8;
                stream.seed = seed;
                stream.media = setting.media.clone();
                BmscService { service_id: service_id(i), stream }
            })
            .collect();
        config.ue_mikey_port = mikey_port;
        let groups = args.multicast.then(|| -> Result<_> {
            Ok((
                std::net::SocketAddrV4::new(
                    MULTICAST_GROUP,
                    if captured { mikey_port } else { free_udp_port()? },
                ),
                std::net::SocketAddrV4::new(MULTICAST_GROUP, free_udp_port()?),
            ))
        });
        let groups = groups.transpose()?;
        match groups {
            Some((mtk, media)) => {
                config.bearer_mikey = vec![SocketAddr::V4(mtk)];
                config.bearer_media = vec![SocketAddr::V4(media)];
            }
            None => {
                config.bearer_mikey = vec![mikey_addr];
                config.bearer_media = vec![media_addr];
            }
        }
        config.v_bit = true;
        let sip = args.signalling == "sip";
        if sip {
            config.trusted_scfs = vec![network::scf::DEFAULT_HTTP_SOURCE];
        }
        let bmsc = Bmsc::start(config).context("starting the BM-SC")?;
        // With SIP signalling: the SCF (the NAF of the services) and the P-CSCF in front of it.
        let impu = profile.impu().first().cloned().unwrap_or_default();
        let ims = if sip {
            let mut c = network::scf::ScfConfig::new(SCF_DOMAIN, bsf.addr());
            c.services = (0..args.services)
                .map(|i| network::scf::ScfService::new(&service_id(i), SCF_FQDN, bmsc.addr(), i + 1))
                .collect();
            c.subscribers =
                vec![network::scf::ScfSubscriber { impu: impu.clone(), services: services.clone() }];
            c.mode = network::scf::ScfMode::SipBased;
            let scf = network::scf::Scf::start(c).context("starting the SCF")?;
            let mut p = network::pcscf::PcscfConfig::new(scf.addr());
            p.users.push(network::pcscf::PcscfUser {
                impi: profile.impi().to_owned(),
                impus: profile.impu().to_vec(),
                ue_addr: None,
            });
            let pcscf = network::pcscf::Pcscf::start(p).context("starting the P-CSCF")?;
            scf.trust_proxy(pcscf.addr());
            self.log.note(
                self.tag,
                &format!("SCF {SCF_FQDN} (NAF) on {}, P-CSCF on {}", scf.addr(), pcscf.addr()),
            );
            Some((scf, pcscf))
        } else {
            None
        };
        let bearer = match groups {
            Some((mtk, media)) => format!("multicast bearer: MTK {mtk}, media {media}"),
            None => format!("unicast bearer: MTK {mikey_addr}, media {media_addr}"),
        };
        self.log.note(
            self.tag,
            &format!("BM-SC {BMSC_FQDN} on {} (MIKEY {}), {bearer}", bmsc.addr(), bmsc.mikey_addr()),
        );

        let mut ue_config =
            UeConfig::new(&bsf.url(), &bmsc.url(), BMSC_FQDN, dir.join(format!("me-keys-{}.bin", self.tag)));
        ue_config.service_ids = services.clone();
        ue_config.mikey_bind = mikey_addr;
        ue_config.media_bind = media_addr;
        if let Some((_, pcscf)) = &ims {
            ue_config.signalling = me::Signalling::Sip {
                pcscf: pcscf.addr(),
                scf_uri: format!("sip:scf@{SCF_DOMAIN}"),
                impu: impu.clone(),
                naf_fqdn: SCF_FQDN.to_owned(),
            };
        }
        ue_config.bearer_mikey_group = groups.map(|g| g.0);
        ue_config.bearer_media_group = groups.map(|g| g.1);
        ue_config.path = Some(path);
        ue_config.pin1 = Some(args.pin.clone().unwrap_or_else(|| profile.pin1().to_owned()));
        let power_on = Instant::now();
        let mut ue = self.step("power_on", || {
            let ue = Ue::new(&mut *reader, ue_config)?;
            let detail = format!("ICCID {}, IMPI {}, {} path", ue.iccid(), ue.impi(), ue.path());
            Ok((ue, detail))
        })?;

        let boot = self.step("gba_bootstrap", || {
            let b = ue.bootstrap()?;
            let detail = format!(
                "{}: B-TID {}, lifetime {}, {} HTTP requests{}",
                match b.variant {
                    me::GbaVariant::GbaU => "GBA_U",
                    me::GbaVariant::GbaMe => "GBA_ME",
                },
                b.btid,
                b.lifetime,
                b.http_requests,
                if b.resynchronisations > 0 { ", SQN resynchronised" } else { "" }
            );
            Ok((b, detail))
        })?;
        report.btid = boot.btid.clone();
        self.step("naf_derivation", || {
            let k = ue.derive_naf_keys()?;
            let held = match path {
                KeyManagementPath::UiccBased => {
                    "Ks_int_NAF (MUK) kept on the card, Ks_ext_NAF (MRK) to the ME"
                }
                KeyManagementPath::MeBased => "MUK and MRK derived from Ks_NAF in the ME",
            };
            Ok(((), format!("NAF {}: {held}", k.naf_fqdn)))
        })?;
        let n = services.len() as u64;
        self.step("registration", || {
            let r = ue.register()?;
            if !r.refused.is_empty() {
                bail!("services refused: {:?}", r.refused);
            }
            let how = if sip {
                "SIP INVITE via the P-CSCF to the SCF (NAF keys over Zn, posted to the BM-SC)"
            } else {
                "HTTP Digest user = B-TID, password from MRK"
            };
            Ok(((), format!("{} service(s) registered, {how}", r.accepted.len())))
        })?;
        self.step("msk_push", || {
            poll(&mut ue, |s| s.msk_count >= n)?;
            let s = ue.stats();
            Ok((
                (),
                format!(
                    "{} MSK(s) over MIKEY/UDP verified with the MUK, {} verification message(s) sent",
                    s.msk_count, s.verifications_sent
                ),
            ))
        })?;

        // Media with MTK updates, paced in real time.
        let total = Duration::from_secs_f64(args.duration);
        let per_tick = ((PACKETS_PER_SECOND * MEDIA_TICK.as_secs_f64()).round() as usize).max(1);
        let mut mtk_latency = Duration::ZERO;
        let mut mtk_updates = 0u32;
        let mut sent = 0u64;
        let media_start = Instant::now();
        let mut first_media: Option<Duration> = None;
        let mut next_mtk = Duration::ZERO;
        let mut elapsed = Duration::ZERO;
        while elapsed < total {
            if elapsed >= next_mtk {
                let t = Instant::now();
                let before = ue.stats().mtk_count;
                for s in &services {
                    bmsc.send_mtk(s).map_err(|e| anyhow!("BM-SC MTK: {e}"))?;
                }
                poll(&mut ue, |s| s.mtk_count >= before + n).context("MTK update")?;
                mtk_latency += t.elapsed();
                mtk_updates += 1;
                next_mtk += MTK_PERIOD;
            }
            let tick_end = Instant::now() + MEDIA_TICK;
            for s in &services {
                bmsc.send_media(s, per_tick).map_err(|e| anyhow!("BM-SC media: {e}"))?;
            }
            sent += per_tick as u64 * n;
            if first_media.is_none() {
                ue.poll_until(tick_end, |s| s.packets_decrypted > 0)?;
                if ue.stats().packets_decrypted > 0 {
                    first_media = Some(power_on.elapsed());
                }
            }
            ue.poll(tick_end)?;
            elapsed += MEDIA_TICK;
        }
        let expected = sent;
        let done = ue.poll_until(Instant::now() + STEP_TIMEOUT, |s| s.packets_received >= expected);
        done?;
        if first_media.is_none() && ue.stats().packets_decrypted > 0 {
            first_media = Some(power_on.elapsed());
        }
        report.time_to_first_media_ms = first_media.map(|d| d.as_secs_f64() * 1e3);
        let mean_mtk = mtk_latency / mtk_updates.max(1);
        self.record(
            "mtk_update",
            true,
            mean_mtk,
            format!("{mtk_updates} MTK update(s) per service, mean latency BM-SC → SRTP context installed"),
        );
        let s = ue.stats();
        let media_ok = s.packets_decrypted == expected && s.packets_failed == 0;
        self.record(
            "media",
            media_ok,
            media_start.elapsed(),
            format!(
                "{} SRTP packets sent, {} decrypted, {} failed",
                expected, s.packets_decrypted, s.packets_failed
            ),
        );

        // MSK rotation: every registered UE gets the new MSK; the next MTK is under it.
        self.step("msk_rotation", || {
            let before = ue.stats();
            let mut ids = Vec::new();
            for s in &services {
                ids.push(bmsc.rotate_msk(s).map_err(|e| anyhow!("BM-SC rotation: {e}"))?);
            }
            poll(&mut ue, |s| s.msk_count >= before.msk_count + n)?;
            for s in &services {
                bmsc.send_mtk(s).map_err(|e| anyhow!("BM-SC MTK: {e}"))?;
            }
            poll(&mut ue, |s| s.mtk_count >= before.mtk_count + n)?;
            let packets = ((PACKETS_PER_SECOND * AFTER_ROTATION.as_secs_f64()) as usize).max(1);
            for s in &services {
                bmsc.send_media(s, packets).map_err(|e| anyhow!("BM-SC media: {e}"))?;
            }
            sent += packets as u64 * n;
            let want = before.packets_decrypted + packets as u64 * n;
            poll(&mut ue, |s| s.packets_decrypted >= want)?;
            let ids: Vec<String> = ids.iter().map(|m| format!("{:08X}", m.0)).collect();
            Ok(((), format!("new MSK ID(s) {}, media decrypted under the new MTK", ids.join(" "))))
        })?;

        self.step("solicited_pull", || {
            let before = ue.stats();
            let pulls = bmsc.solicited_pull(ue.btid().unwrap_or_default()).map_err(|e| anyhow!("{e}"))?;
            poll(&mut ue, |s| {
                s.solicited_pulls > before.solicited_pulls && s.msk_count >= before.msk_count + n
            })?;
            let d = ue.stats().since(&before);
            Ok((
                (),
                format!(
                    "{pulls} pull(s) (MSK ID 0) → {} basic MSK request(s) → {} MSK(s) pushed",
                    d.basic_msk_requests, d.msk_count
                ),
            ))
        })?;

        self.step("deregistration", || {
            let btid = ue.btid().unwrap_or_default().to_owned();
            let r = ue.deregister()?;
            if !bmsc.registered(&btid).is_empty() {
                bail!("the BM-SC still lists {btid}");
            }
            Ok(((), format!("{} service(s) deregistered", r.accepted.len())))
        })?;

        // The decrypted media against the source: every frame is test-signal frame (seq - first).
        let mut source = BmscStreamConfig::new(BMSC_FQDN, STREAM_SEED);
        source.media = setting.media.clone();
        let first_seq = source.first_seq;
        let mut per_ssrc: BTreeMap<u32, Vec<u16>> = BTreeMap::new();
        let mut mismatches = 0usize;
        for f in ue.frames() {
            let k = u64::from(f.sequence_number.wrapping_sub(first_seq));
            if f.payload != source.frame(k) {
                mismatches += 1;
            }
            per_ssrc.entry(f.ssrc).or_default().push(f.sequence_number);
        }
        let per_service = sent / n;
        let complete = per_ssrc.len() == services.len()
            && per_ssrc.keys().copied().eq((0..args.services).map(|i| SSRC_BASE + u32::from(i)))
            && per_ssrc.values().all(|seqs| {
                seqs.len() as u64 == per_service
                    && seqs.iter().enumerate().all(|(i, q)| q.wrapping_sub(first_seq) as usize == i)
            });
        report.media_match = mismatches == 0 && complete;
        let s = ue.stats();
        report.packets_sent = sent;
        report.fill(&s);
        report.media_sha256 = hex::encode(ue.media_digest());
        report.signalling = if sip { "sip" } else { "http" };
        if let Some((scf, _)) = &ims {
            let st = scf.stats();
            report.scf_invites = Some(st.invites);
            report.scf_reinvites = Some(st.reinvites);
            report.scf_bmsc_requests = Some(st.bmsc_requests);
        }
        self.record(
            "media_check",
            report.media_match,
            Duration::ZERO,
            format!(
                "{} frames against the source: {} mismatching, {}",
                s.packets_decrypted,
                mismatches,
                if complete { "none missing or repeated" } else { "frames missing or repeated" }
            ),
        );
        Ok(())
    }
}

/// Polls until `done`, or fails after [`STEP_TIMEOUT`].
fn poll<R: Reader>(ue: &mut Ue<R>, done: impl Fn(&UeStats) -> bool) -> Result<()> {
    ue.poll_until(Instant::now() + STEP_TIMEOUT, &done)?;
    if done(&ue.stats()) { Ok(()) } else { Err(anyhow!("nothing after {STEP_TIMEOUT:?}: {:?}", ue.stats())) }
}

fn print_table(r: &Report) {
    // The UICC-based path first, as in `keysim compare`.
    let cols: Vec<&PathReport> = ["uicc", "me"].iter().filter_map(|t| r.paths.get(t)).collect();
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: &str, f: &dyn Fn(&PathReport) -> String| {
        rows.push((name.to_owned(), cols.iter().map(|p| f(p)).collect()));
    };
    row("", &|p| p.path.to_string());
    row("GBA", &|p| p.gba.to_string());
    row("keys held by", &|p| p.keys_held_by.to_string());
    row("B-TID", &|p| p.btid.clone());
    let names: Vec<&'static str> =
        cols.first().map(|p| p.steps.iter().map(|s| s.name).collect()).unwrap_or_default();
    for name in names {
        row(&format!("  {name}"), &|p| match p.steps.iter().find(|s| s.name == name) {
            Some(s) => format!("{} {:.2} ms", if s.ok { "ok" } else { "FAILED" }, s.latency_ms),
            None => "-".into(),
        });
    }
    row("power-on → first media", &|p| {
        p.time_to_first_media_ms.map_or("-".into(), |t| format!("{t:.1} ms"))
    });
    row("SRTP sent/decrypted/failed", &|p| {
        format!("{} / {} / {}", p.packets_sent, p.packets_decrypted, p.packets_failed)
    });
    row("media equal to the source", &|p| p.media_match.to_string());
    row("MSKs / MTKs accepted", &|p| format!("{} / {}", p.msk_count, p.mtk_count));
    row("basic MSK requests", &|p| p.basic_msk_requests.to_string());
    row("APDUs", &|p| p.apdus.to_string());
    let widths: Vec<usize> =
        (0..cols.len()).map(|i| rows.iter().map(|(_, v)| v[i].chars().count()).max().unwrap_or(0)).collect();
    println!();
    println!("keysim demo: {}, {} service(s), {:.1} s of media", r.card, r.services, r.duration_s);
    for (name, values) in &rows {
        let mut line = format!("{name:<28}");
        for (v, w) in values.iter().zip(&widths) {
            line.push_str(&format!("  {v:<w$}"));
        }
        println!("{}", line.trim_end());
    }
    for p in &cols {
        if let Some(e) = &p.error {
            println!("{}: {e}", p.path);
        }
    }
    if let Some(same) = r.media_identical_across_paths {
        println!("decrypted media identical on both paths: {same}");
    }
    println!("{}", if r.ok { "every step succeeded" } else { "SOME STEP FAILED" });
}
