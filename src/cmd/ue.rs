//! `keysim ue`: one standalone UE (or N) against a running BSF and BM-SC — argument checks, the
//! card, printing. The UE itself is `me::standalone`.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use me::report::{PathReport, Report, Step, path_tag};
use me::standalone::{self, Fanout, MeStateReport, MediaOut, StandaloneConfig};
use me::{KeyManagementPath, Signalling, UeConfig};
use serde::Serialize;
use sim_reader::{CardProfile, Emulator, Protocol, Reader};
use wire::mbms_key_management::DEFAULT_BMSC_FQDN;
use wire::sip_based_mbms::{DEFAULT_SCF_DOMAIN, DEFAULT_SCF_NAF_FQDN};

use super::demo::Log;
use crate::cli::UeArgs;

/// With --pcscf the UE sends nothing to a BM-SC over HTTP, but its HTTP client still needs a
/// well-formed loopback URL: this one (the discard port) is never contacted.
const NO_BMSC_URL: &str = "http://127.0.0.1:9";
/// The longest --duration.
const MAX_DURATION_S: f64 = 86_400.0;

/// Everything `--json` adds for `keysim ue` beside the demo's report.
#[derive(Serialize)]
struct UeDetail {
    bsf: String,
    bmsc: Option<String>,
    pcscf: Option<String>,
    naf_fqdn: String,
    mikey_addr: Option<String>,
    me_state: Option<MeStateReport>,
    media_out: Option<MediaOut>,
    packets_unkeyed: u64,
    solicited_pulls: u64,
    verifications_sent: u64,
    network_errors: u64,
}

#[derive(Serialize)]
struct UeReport {
    #[serde(flatten)]
    run: Report,
    ue: UeDetail,
}

#[derive(Serialize)]
struct ManyUe {
    index: usize,
    address: String,
    imsi: String,
    ok: bool,
    report: PathReport,
}

#[derive(Serialize)]
struct ManyReport {
    ues: usize,
    duration_s: f64,
    path: &'static str,
    ok: bool,
    /// UEs whose every step succeeded.
    ok_count: usize,
    registered: usize,
    with_msk: usize,
    with_mtk: usize,
    decrypting: usize,
    decrypt_failures: u64,
    unkeyed_packets: u64,
    registration_window_ms: f64,
    registrations_per_s: f64,
    mtk_fanout: Fanout,
    vm_rss_before_kib: Option<u64>,
    vm_hwm_kib: Option<u64>,
    memory_per_ue_kib: Option<f64>,
    per_ue: Vec<ManyUe>,
}

/// Everything the arguments fix that every UE shares.
struct Plan {
    base: UeConfig,
    bsf: String,
    bmsc: Option<String>,
    pcscf: Option<String>,
    naf_fqdn: String,
    mikey_bind: SocketAddr,
    bearer_mikey: Option<SocketAddr>,
    bearer_media: SocketAddr,
    listen: Duration,
    path: KeyManagementPath,
}

fn loopback(option: &str, text: &str) -> Result<SocketAddr> {
    let addr: SocketAddr = text.parse().map_err(|e| anyhow!("{option} '{text}': expected IP:PORT ({e})"))?;
    Ok(addr)
}

/// `sip:host:port` (or `sip:user@host:port`) to the P-CSCF's UDP address on loopback.
fn pcscf_addr(uri: &str) -> Result<SocketAddr> {
    let rest = uri.strip_prefix("sip:").ok_or_else(|| anyhow!("--pcscf '{uri}': expected sip:HOST:PORT"))?;
    let hostport = rest.rsplit('@').next().unwrap_or(rest).split(';').next().unwrap_or("");
    let addr = hostport
        .to_socket_addrs()
        .map_err(|e| anyhow!("--pcscf '{uri}': {e}"))?
        .next()
        .ok_or_else(|| anyhow!("--pcscf '{uri}': no address"))?;
    if !addr.ip().is_loopback() {
        bail!("--pcscf '{uri}': the UE talks to loopback peers only");
    }
    Ok(addr)
}

/// The host of an http:// URL when it is a name (not an IP address).
fn url_host_name(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split('/').next()?;
    let host = if authority.starts_with('[') {
        return None;
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    (!host.is_empty() && host.parse::<IpAddr>().is_err()).then(|| host.to_owned())
}

fn plan(args: &UeArgs, profile: &CardProfile) -> Result<Plan> {
    if !(args.duration > 0.0 && args.duration <= MAX_DURATION_S) {
        bail!("--duration: expected seconds in (0, {MAX_DURATION_S}], got {}", args.duration);
    }
    // The URLs are checked here, before the card is touched.
    me::UbClient::new(&args.bsf).map_err(|e| anyhow!("--bsf: {e}"))?;
    let path = if args.path == "me" { KeyManagementPath::MeBased } else { KeyManagementPath::UiccBased };
    let (bmsc_url, naf_fqdn, signalling) = match (&args.bmsc, &args.pcscf) {
        (Some(url), None) => {
            let fqdn = match &args.naf_fqdn {
                Some(f) => f.clone(),
                None => url_host_name(url).unwrap_or_else(|| DEFAULT_BMSC_FQDN.to_owned()),
            };
            me::BmscClient::new(url, &fqdn).map_err(|e| anyhow!("--bmsc: {e}"))?;
            (url.clone(), fqdn, Signalling::Http)
        }
        (None, Some(uri)) => {
            let fqdn = args.naf_fqdn.clone().unwrap_or_else(|| DEFAULT_SCF_NAF_FQDN.to_owned());
            let impu = match &args.impu {
                Some(i) => i.clone(),
                None => profile.impu().first().cloned().ok_or_else(|| anyhow!("the profile has no IMPU"))?,
            };
            let signalling = Signalling::Sip {
                pcscf: pcscf_addr(uri)?,
                scf_uri: args.scf_uri.clone().unwrap_or_else(|| format!("sip:scf@{DEFAULT_SCF_DOMAIN}")),
                impu,
                naf_fqdn: fqdn.clone(),
            };
            (NO_BMSC_URL.to_owned(), fqdn, signalling)
        }
        _ => bail!("give exactly one of --bmsc URL and --pcscf SIP-URI"),
    };
    if naf_fqdn.is_empty() || naf_fqdn.chars().any(|c| c.is_control() || c.is_whitespace()) {
        bail!("--naf-fqdn '{naf_fqdn}' is no FQDN");
    }
    let mikey_bind = loopback("--mikey-bind", &args.mikey_bind)?;
    if !mikey_bind.ip().is_loopback() || mikey_bind.port() == 0 {
        bail!("--mikey-bind {mikey_bind}: a loopback address with the port the BM-SC pushes MSKs to");
    }
    let bearer_mikey = args.bearer_mikey.as_deref().map(|t| loopback("--bearer-mikey", t)).transpose()?;
    if let Some(b) = bearer_mikey
        && !b.ip().is_multicast()
        && b != mikey_bind
    {
        bail!(
            "--bearer-mikey {b}: a unicast bearer's MTK messages come to the MIKEY socket ({mikey_bind}); \
             give that address or a 239.x multicast group"
        );
    }
    let bearer_media = loopback("--bearer-media", &args.bearer_media)?;
    if !(bearer_media.ip().is_loopback() || bearer_media.ip().is_multicast()) || bearer_media.port() == 0 {
        bail!(
            "--bearer-media {bearer_media}: a loopback address or an IPv4 239.x multicast group, with a port"
        );
    }
    for (what, addr) in [("--bearer-mikey", bearer_mikey), ("--bearer-media", Some(bearer_media))] {
        if let Some(a) = addr
            && a.ip().is_multicast()
            && !matches!(a, SocketAddr::V4(_))
        {
            bail!("{what} {a}: only IPv4 multicast groups");
        }
    }
    let services =
        if args.services.is_empty() { vec![super::demo::service_id(0)] } else { args.services.clone() };
    let mut base = UeConfig::new(&args.bsf, &bmsc_url, &naf_fqdn, PathBuf::new());
    base.service_ids = services;
    base.signalling = signalling;
    base.path = Some(path);
    base.pin1 = Some(args.pin.clone().unwrap_or_else(|| profile.pin1().to_owned()));
    base.frames_kept = if args.media_out.is_some() { usize::MAX } else { 0 };
    Ok(Plan {
        base,
        bsf: args.bsf.clone(),
        bmsc: args.bmsc.clone(),
        pcscf: args.pcscf.clone(),
        naf_fqdn,
        mikey_bind,
        bearer_mikey,
        bearer_media,
        listen: Duration::from_secs_f64(args.duration),
        path,
    })
}

fn v4_group(a: SocketAddr) -> Option<SocketAddrV4> {
    match a {
        SocketAddr::V4(v) if v.ip().is_multicast() => Some(v),
        _ => None,
    }
}

impl Plan {
    /// The configuration of one UE: on `ip` (multi-UE) or on the addresses as given.
    fn ue_config(&self, ip: Option<Ipv4Addr>, key_store: PathBuf) -> UeConfig {
        let mut c = self.base.clone();
        c.key_store_path = key_store;
        let on = |a: SocketAddr| ip.map_or(a, |ip| SocketAddr::new(IpAddr::V4(ip), a.port()));
        c.mikey_bind = on(self.mikey_bind);
        c.bearer_mikey_group = self.bearer_mikey.and_then(v4_group);
        c.bearer_media_group = v4_group(self.bearer_media);
        c.media_bind = match c.bearer_media_group {
            Some(_) => SocketAddr::new(c.mikey_bind.ip(), 0),
            None => on(self.bearer_media),
        };
        c.http_source = ip.map(IpAddr::V4);
        c
    }
}

/// Creates `dir` (and its parents) private to the user when it does not exist; an existing
/// directory is used as it is.
fn private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).with_context(|| format!("creating {}", dir.display()))
}

/// A temporary directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The port of an `http://host:port…` URL.
fn url_port(url: &str) -> Option<u16> {
    let rest = url.strip_prefix("http://")?;
    let hostport = rest.split('/').next()?;
    hostport.rsplit_once(':')?.1.parse().ok()
}

/// The ports whose frames a capture of the UE keeps: its MIKEY and bearer ports and its peers'.
fn capture_ports(plan: &Plan) -> crate::capture::HostPorts {
    let mut mikey_ports = vec![plan.mikey_bind.port()];
    mikey_ports.extend(plan.bearer_mikey.map(|a| a.port()));
    let mut ports: Vec<u16> = [Some(plan.bsf.as_str()), plan.bmsc.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(url_port)
        .chain(plan.pcscf.as_deref().and_then(|p| pcscf_addr(p).ok()).map(|a| a.port()))
        .chain([plan.bearer_media.port()])
        .chain(mikey_ports.iter().copied())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    crate::capture::HostPorts { ports, mikey_ports }
}

pub fn run(mut args: UeArgs) -> Result<ExitCode> {
    let profile = super::card::load_profile(args.card.profile.as_deref())?;
    let plan = plan(&args, &profile)?;
    let report = args.report.clone();
    let report = report.as_deref().map(|p| (p, crate::report::RunKind::Demo));
    let capture_file = args.capture.clone();
    // With one UE its card's APDUs go into the capture as GSMTAP.
    let apdus = (args.ues <= 1).then_some(&mut args.trace);
    let capture =
        crate::capture::begin_on_host(capture_file.as_deref(), report, capture_ports(&plan), apdus)?;
    crate::capture::end(capture, run_planned(&args, &plan, &profile))
}

fn run_planned(args: &UeArgs, plan: &Plan, profile: &CardProfile) -> Result<ExitCode> {
    if args.ues > 1 {
        return run_many(args, plan, profile);
    }
    let log = Log { quiet: args.quiet };
    let tag = path_tag(plan.path);
    let (reader, card_name) = super::card::open_card(args.reader.as_deref(), &args.card)?;
    let mut reader = super::card::traced(reader, &args.trace)?;
    reader.power_on().context("powering the card on")?;
    let _temp;
    let (key_store, me_state) = match &args.me_state {
        Some(dir) => {
            private_dir(dir)?;
            (dir.join(standalone::KEY_STORE_FILE), Some(dir.clone()))
        }
        None => {
            let dir = std::env::temp_dir().join(format!("keysim-ue-{}", std::process::id()));
            private_dir(&dir)?;
            _temp = TempDir(dir.clone());
            (dir.join(standalone::KEY_STORE_FILE), None)
        }
    };
    let config = StandaloneConfig { ue: plan.ue_config(None, key_store), listen: plan.listen, me_state };
    let peer = plan.bmsc.as_deref().or(plan.pcscf.as_deref()).unwrap_or_default();
    log.note(
        tag,
        &format!(
            "BSF {}, {} {peer}, NAF {}, listening {:.1} s",
            plan.bsf,
            if plan.bmsc.is_some() { "BM-SC" } else { "P-CSCF" },
            plan.naf_fqdn,
            plan.listen.as_secs_f64()
        ),
    );
    let mut run = standalone::run(reader, config, &mut |s: &Step| log.step(tag, s));
    let media_out = match &args.media_out {
        Some(path) => match standalone::write_media_out(&run.frames, path) {
            Ok(m) => Some(m),
            Err(e) => {
                run.report.ok = false;
                run.report.error.get_or_insert(format!("--media-out {}: {e}", path.display()));
                None
            }
        },
        None => None,
    };
    let ok = run.report.ok;
    let services = run.report.services;
    let report = UeReport {
        run: Report {
            card: card_name,
            services: u16::try_from(services).unwrap_or(u16::MAX),
            duration_s: plan.listen.as_secs_f64(),
            paths: BTreeMap::from([(tag, run.report)]),
            media_identical_across_paths: None,
            ok,
        },
        ue: UeDetail {
            bsf: plan.bsf.clone(),
            bmsc: plan.bmsc.clone(),
            pcscf: plan.pcscf.clone(),
            naf_fqdn: plan.naf_fqdn.clone(),
            mikey_addr: run.mikey_addr.map(|a| a.to_string()),
            me_state: run.me_state,
            media_out,
            packets_unkeyed: run.stats.packets_unkeyed,
            solicited_pulls: run.stats.solicited_pulls,
            verifications_sent: run.stats.verifications_sent,
            network_errors: run.stats.network_errors,
        },
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report);
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn print_summary(r: &UeReport) {
    for (tag, p) in &r.run.paths {
        println!("keysim ue: {} ({}), {} path, B-TID {}", r.run.card, tag, p.path, p.btid);
        for s in &p.steps {
            println!(
                "  {:<16} {:<6} {:>9.2} ms  {}",
                s.name,
                if s.ok { "ok" } else { "FAILED" },
                s.latency_ms,
                s.detail
            );
        }
        println!(
            "  MSKs {} / MTKs {} / SRTP received {} decrypted {} failed {}",
            p.msk_count, p.mtk_count, p.packets_received, p.packets_decrypted, p.packets_failed
        );
        if let Some(e) = &p.error {
            println!("  stopped: {e}");
        }
    }
    if let Some(m) = &r.ue.media_out {
        println!("media written to {} ({} bytes, {} stream(s))", m.file, m.bytes, m.streams.len());
    }
    println!("{}", if r.run.ok { "every step succeeded" } else { "SOME STEP FAILED" });
}

fn run_many(args: &UeArgs, plan: &Plan, profile: &CardProfile) -> Result<ExitCode> {
    if args.reader.is_some() {
        bail!("--ues needs --emulator: one emulated card per UE");
    }
    if args.card.card_state.is_some() {
        bail!("--card-state keeps one card; --ues runs emulated cards whose memory is not kept");
    }
    if args.media_out.is_some() {
        bail!("--media-out writes one UE's media; not with --ues");
    }
    if matches!(plan.base.signalling, Signalling::Sip { .. }) {
        bail!("--ues registers over HTTP (--bmsc); SIP registration runs one UE");
    }
    let n = args.ues as usize;
    let protocol = if args.card.protocol == "t0" { Protocol::T0 } else { Protocol::T1 };
    let temp;
    let root = match &args.me_state {
        Some(dir) => dir.clone(),
        None => {
            let dir = std::env::temp_dir().join(format!("keysim-ue-{}", std::process::id()));
            temp = TempDir(dir);
            temp.0.clone()
        }
    };
    private_dir(&root)?;
    let rss_before = standalone::proc_status_kib("VmRSS");
    let mut ues = Vec::with_capacity(n);
    let mut who = Vec::with_capacity(n);
    for i in 0..n {
        let d = network::config::derived_identity(i);
        let p = profile
            .with_identity(&d.imsi, &d.impi, &[d.impu], d.k)
            .map_err(|e| anyhow!("subscriber {i}: {e}"))?;
        let ip = standalone::ue_loopback_address(i)?;
        let mut card =
            Emulator::open(&p, None).with_context(|| format!("emulated card {i}"))?.with_protocol(protocol);
        card.power_on().with_context(|| format!("powering card {i} on"))?;
        let dir = root.join(format!("ue-{i}"));
        private_dir(&dir)?;
        let config = StandaloneConfig {
            ue: plan.ue_config(Some(ip), dir.join(standalone::KEY_STORE_FILE)),
            listen: plan.listen,
            me_state: args.me_state.as_ref().map(|_| dir.clone()),
        };
        who.push((ip, p.imsi().to_owned()));
        ues.push((card, config));
    }
    let log = Log { quiet: args.quiet };
    log.note(
        "ues",
        &format!(
            "{n} UEs on 127.0.1.1 … {}, listening {:.1} s",
            who.last().map(|w| w.0.to_string()).unwrap_or_default(),
            plan.listen.as_secs_f64()
        ),
    );
    let started = Instant::now();
    let runs = standalone::run_many(ues);
    let hwm = standalone::proc_status_kib("VmHWM");
    let regs: Vec<(Instant, Instant)> = runs
        .iter()
        .filter(|r| r.report.steps.iter().any(|s| s.name == "registration" && s.ok))
        .filter_map(|r| r.registration)
        .collect();
    let window = match (regs.iter().map(|r| r.0).min(), regs.iter().map(|r| r.1).max()) {
        (Some(a), Some(b)) => b.duration_since(a),
        _ => Duration::ZERO,
    };
    let installs: Vec<&[me::ue::MtkInstall]> = runs.iter().map(|r| r.mtk_installs.as_slice()).collect();
    let fanout = standalone::mtk_fanout(&installs);
    let count = |f: &dyn Fn(&standalone::Run) -> bool| runs.iter().filter(|r| f(r)).count();
    let report = ManyReport {
        ues: n,
        duration_s: plan.listen.as_secs_f64(),
        path: path_tag(plan.path),
        ok: runs.iter().all(|r| r.report.ok),
        ok_count: count(&|r| r.report.ok),
        registered: regs.len(),
        with_msk: count(&|r| r.stats.msk_count > 0),
        with_mtk: count(&|r| r.stats.mtk_count > 0),
        decrypting: count(&|r| r.stats.packets_decrypted > 0),
        decrypt_failures: runs.iter().map(|r| r.stats.packets_failed - r.stats.packets_unkeyed).sum(),
        unkeyed_packets: runs.iter().map(|r| r.stats.packets_unkeyed).sum(),
        registration_window_ms: window.as_secs_f64() * 1e3,
        registrations_per_s: if window.is_zero() { 0.0 } else { regs.len() as f64 / window.as_secs_f64() },
        mtk_fanout: fanout,
        vm_rss_before_kib: rss_before,
        vm_hwm_kib: hwm,
        memory_per_ue_kib: match (hwm, rss_before) {
            (Some(h), Some(b)) => Some(h.saturating_sub(b) as f64 / n as f64),
            _ => None,
        },
        per_ue: runs
            .into_iter()
            .zip(who)
            .enumerate()
            .map(|(index, (r, (ip, imsi)))| ManyUe {
                index,
                address: ip.to_string(),
                imsi,
                ok: r.report.ok,
                report: r.report,
            })
            .collect(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for u in report.per_ue.iter().filter(|u| !u.ok) {
            let failed: Vec<&str> = u.report.steps.iter().filter(|s| !s.ok).map(|s| s.name).collect();
            println!(
                "UE {} ({}) failed: {:?} {}",
                u.index,
                u.address,
                failed,
                u.report.error.clone().unwrap_or_default()
            );
        }
        println!(
            "keysim ue: {}/{} UEs ok in {:.1} s; registered {}, MSK {}, MTK {}, decrypting {}; {:.1} registrations/s; \
             MTK fan-out mean {:.2} ms, max {:.2} ms over {} MTKs; VmHWM {} KiB ({} KiB per UE)",
            report.ok_count,
            n,
            started.elapsed().as_secs_f64(),
            report.registered,
            report.with_msk,
            report.with_mtk,
            report.decrypting,
            report.registrations_per_s,
            report.mtk_fanout.mean_ms,
            report.mtk_fanout.max_ms,
            report.mtk_fanout.mtks,
            report.vm_hwm_kib.map_or("-".into(), |v| v.to_string()),
            report.memory_per_ue_kib.map_or("-".into(), |v| format!("{v:.0}")),
        );
    }
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
