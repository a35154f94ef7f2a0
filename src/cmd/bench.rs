//! `keysim bench`: SRTP protect/unprotect throughput (RFC 3711, AES_CM_128_HMAC_SHA1_80, 1200-byte
//! payloads) on one core, beside libsrtp (pylibsrtp, and Debian's libsrtp2 from C), webrtc-srtp,
//! the bare crypto on the same packets and OpenSSL, all measured in the same run; the emulated
//! card's command rates; MTK updates end to end in-process and through pcscd + vpcd. `keysim bench
//! scale` and `keysim bench storm` are `harness::scale` (printed by `scale.rs`); the network figures
//! are `harness::netbench`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use aes::Aes128;
use anyhow::{Context, Result, anyhow, bail};
use ctr::cipher::{InnerIvInit, KeyInit as _, StreamCipher};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha1::Sha1;
use srtp::transform::{Strategy, aes_batch};
use srtp::{CryptoSuite, MasterKey, Policy, SrtpContext};
use uicc_vocab::authenticate::{self as framing, INS_AUTHENTICATE_ODD, P2_MBMS_CONTEXT};
use uicc_vocab::open_values::{MODE_MSK_UPDATE, MODE_MTK_GENERATION, P1_ODD_FIRST_BLOCK};

use harness::card_setup::{BMSC_FQDN, Card, card_ok, card_with_naf_keys, short_apdu};

use crate::cli::{BenchArgs, BenchCommand};

mod peers;

/// RTP payload length of every measured packet.
const PAYLOAD: usize = 1200;
/// RTP fixed header (RFC 3550 §5.1), no CSRC, no extension.
const HEADER: usize = 12;
/// Bytes under the SRTP MAC: header, payload and the 4-byte ROC (RFC 3711 §4.2).
const HMAC_INPUT: usize = HEADER + PAYLOAD + 4;
/// The SRTP tag of the _80 suite.
const TAG: usize = 10;
const SSRC: u32 = 0xdead_beef;
const MASTER_KEY: [u8; 16] = [0x2b; 16];
const MASTER_SALT: [u8; 14] = [0x17; 14];
/// Timed runs per figure; the best is kept.
const REPS: usize = 3;
/// Packets protected (untimed) before each timed unprotect batch; the same in the Python loop.
const UNPROTECT_BATCH: usize = 256;
/// Checked between batches of this many packets, so the clock costs nothing per packet.
const CLOCK_EVERY: u64 = 256;

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    match args.what {
        Some(BenchCommand::Scale(a)) => return super::scale::run_scale(a),
        Some(BenchCommand::Storm(a)) => return super::scale::run_storm(a),
        Some(BenchCommand::Serve(a)) => return super::scale::run_serve(a),
        None => {}
    }
    if !(args.seconds.is_finite() && args.seconds > 0.0 && args.seconds <= 600.0) {
        bail!("--seconds: a duration in (0, 600], got {}", args.seconds);
    }
    let secs = if args.quick { args.seconds.min(0.05) } else { args.seconds };
    let mut notes: Vec<String> = Vec::new();

    let ours = measure_ours(secs, &mut notes)?;
    let libsrtp = match find_python(args.python.as_deref()) {
        Ok(python) => match libsrtp_rates(&python, secs) {
            Ok(r) => Some((python, r)),
            Err(e) => {
                notes.push(format!("libsrtp not measured: {e:#}"));
                None
            }
        },
        Err(why) => {
            notes.push(format!("libsrtp not measured: {why}"));
            None
        }
    };
    let libsrtp_c = peers::libsrtp_c(secs, REPS, UNPROTECT_BATCH)
        .map_err(|e| notes.push(format!("libsrtp_c not measured: {e:#}")))
        .ok();
    let webrtc = peers::webrtc_srtp(secs, REPS, UNPROTECT_BATCH, !args.quick)
        .map_err(|e| notes.push(format!("webrtc_srtp not measured: {e:#}")))
        .ok();
    let libsrtp_openssl = peers::libsrtp_openssl(secs, REPS, UNPROTECT_BATCH, !args.quick)
        .map_err(|e| notes.push(format!("libsrtp_openssl not measured: {e:#}")))
        .ok();
    let openssl_secs = secs.round().max(1.0) as u32;
    let aes_ctr = openssl_speed(&["-evp", "aes-128-ctr"], PAYLOAD, openssl_secs)
        .map_err(|e| notes.push(format!("openssl aes-128-ctr not measured: {e:#}")))
        .ok();
    let hmac_sha1 = openssl_speed(&["-hmac", "sha1"], HMAC_INPUT, openssl_secs)
        .map_err(|e| notes.push(format!("openssl hmac sha1 not measured: {e:#}")))
        .ok();
    // One packet's AES-128-CTR over the payload then HMAC-SHA1 over header, payload and ROC, at
    // OpenSSL's rates for those sizes.
    let openssl_budget = match (aes_ctr, hmac_sha1) {
        (Some(a), Some(h)) if a > 0.0 && h > 0.0 => Some(1.0 / (PAYLOAD as f64 / a + HMAC_INPUT as f64 / h)),
        _ => {
            notes.push("openssl_budget_pps not measured: an `openssl speed` figure is missing".to_owned());
            None
        }
    };
    let (card_select, card_mtk, net) = if args.srtp_only {
        notes.push("card and network figures not measured: --srtp-only".to_owned());
        (None, None, NetworkFigures::default())
    } else {
        let card_select = card_select_rate(secs)
            .map_err(|e| notes.push(format!("card SELECT MF not measured: {e:#}")))
            .ok();
        let card_mtk = card_mtk_rate(secs)
            .map_err(|e| notes.push(format!("card_mtk_generations_per_s not measured: {e:#}")))
            .ok();
        (card_select, card_mtk, network_figures(secs, &mut notes))
    };

    let ratio = |a: f64, b: Option<f64>| b.filter(|b| *b > 0.0).map(|b| round2(a / b));
    let (lib_protect, lib_unprotect) = match &libsrtp {
        Some((_, r)) => (Some(r.protect_pps), Some(r.unprotect_pps)),
        None => (None, None),
    };
    let protect_vs_lib = ratio(ours.protect_pps, lib_protect);
    let unprotect_vs_lib = ratio(ours.unprotect_pps, lib_unprotect);
    let protect_vs_budget = round2(ours.protect_pps / ours.budget_pps);
    let unprotect_vs_budget = round2(ours.unprotect_pps / ours.budget_pps);
    let min = |a: Option<f64>, b: Option<f64>| Some(a?.min(b?));
    let (p, u) = (ours.protect_pps, ours.unprotect_pps);
    let peer = |r: &Option<peers::Rates>| r.as_ref().map(|r| (r.protect_pps, r.unprotect_pps));
    let (c_protect, c_unprotect) = peer(&libsrtp_c).unzip();
    let (w_protect, w_unprotect) = peer(&webrtc).unzip();
    let (o_protect, o_unprotect) = peer(&libsrtp_openssl).unzip();
    let best_budget = ours.budget_pps.max(ours.naive_budget_pps).max(ours.other_budget_pps);

    let mut report = json!({
        "payload_bytes": PAYLOAD,
        "suite": CryptoSuite::Aes128CmHmacSha1_80.name(),
        "seconds": secs,
        "cpu": cpu_model(),
        "srtp_protect_pps": ours.protect_pps.round(),
        "srtp_unprotect_pps": ours.unprotect_pps.round(),
        "crypto_budget_pps": ours.budget_pps.round(),
        "crypto_budget_sequential_pps": ours.naive_budget_pps.round(),
        "crypto_budget_other_strategy_pps": ours.other_budget_pps.round(),
        "crypto_budget_other_strategy": ours.other_strategy.name(),
        "crypto_budget_best_pps": best_budget.round(),
        "srtp_strategy": ours.strategy,
        "libsrtp_protect_pps": lib_protect.map(f64::round),
        "libsrtp_unprotect_pps": lib_unprotect.map(f64::round),
        "libsrtp_version": libsrtp.as_ref().map(|(_, r)| format!("pylibsrtp {}", r.version)),
        "python": libsrtp.as_ref().map(|(p, _)| p.display().to_string()),
        "openssl_aes128ctr_1200_Bps": aes_ctr.map(f64::round),
        "openssl_hmac_sha1_1216_Bps": hmac_sha1.map(f64::round),
        "openssl_budget_pps": openssl_budget.map(f64::round),
    });
    let peers = json!({
        "libsrtp_c_protect_pps": c_protect.map(f64::round),
        "libsrtp_c_unprotect_pps": c_unprotect.map(f64::round),
        "libsrtp_c_version": libsrtp_c.as_ref().map(|r| r.version.clone()),
        "libsrtp_c_crypto": libsrtp_c.as_ref().map(|r| r.crypto.clone()),
        "webrtc_srtp_protect_pps": w_protect.map(f64::round),
        "webrtc_srtp_unprotect_pps": w_unprotect.map(f64::round),
        "webrtc_srtp_version": webrtc.as_ref().map(|r| r.version.clone()),
        "ratio_vs_libsrtp_protect": ratio(p, lib_protect),
        "ratio_vs_libsrtp_unprotect": ratio(u, lib_unprotect),
        "ratio_vs_libsrtp_c_protect": ratio(p, c_protect),
        "ratio_vs_libsrtp_c_unprotect": ratio(u, c_unprotect),
        "ratio_vs_budget_protect": ratio(p, Some(ours.budget_pps)),
        "ratio_vs_budget_unprotect": ratio(u, Some(ours.budget_pps)),
        "ratio_vs_sequential_budget_protect": ratio(p, Some(ours.naive_budget_pps)),
        "ratio_vs_sequential_budget_unprotect": ratio(u, Some(ours.naive_budget_pps)),
        "ratio_vs_openssl_budget_protect": ratio(p, openssl_budget),
        "ratio_vs_openssl_budget_unprotect": ratio(u, openssl_budget),
        "ratio_vs_webrtc_protect": ratio(p, w_protect),
        "ratio_vs_webrtc_unprotect": ratio(u, w_unprotect),
        "timing": if CLOCK.with(CpuClock::is_cpu_time) { "thread CPU time" } else { "wall clock" },
        "srtp_protect_vs_libsrtp": protect_vs_lib,
        "srtp_unprotect_vs_libsrtp": unprotect_vs_lib,
        "srtp_vs_libsrtp": min(protect_vs_lib, unprotect_vs_lib),
        "srtp_protect_vs_crypto_budget": protect_vs_budget,
        "srtp_unprotect_vs_crypto_budget": unprotect_vs_budget,
        "srtp_vs_crypto_budget": protect_vs_budget.min(unprotect_vs_budget),
        "card_select_aps": card_select.map(f64::round),
        "card_mtk_generations_per_s": card_mtk.map(f64::round),
        "ue_power_on_to_first_media_ms_uicc": net.first_media_uicc_ms.map(round2),
        "ue_power_on_to_first_media_ms_me": net.first_media_me_ms.map(round2),
        "mtk_updates_per_s_uicc": net.mtk_uicc.map(f64::round),
        "mtk_updates_per_s_me": net.mtk_me.map(f64::round),
        "mtk_updates_per_s_uicc_pcsc": net.mtk_uicc_pcsc.map(f64::round),
        "mtk_updates_per_s_me_pcsc": net.mtk_me_pcsc.map(f64::round),
        "pcsc_reader": net.pcsc_reader,
        "bmsc_registrations_per_s": net.registrations.map(f64::round),
        "bmsc_registrations_fresh_challenge_per_s": net.registrations_fresh.map(f64::round),
        "notes": notes,
    });
    // libsrtp with its OpenSSL backend, and the best of the bare-crypto budgets.
    let openssl_peer = json!({
        "libsrtp_openssl_protect_pps": o_protect.map(f64::round),
        "libsrtp_openssl_unprotect_pps": o_unprotect.map(f64::round),
        "libsrtp_openssl_version": libsrtp_openssl.as_ref().map(|r| r.version.clone()),
        "libsrtp_openssl_crypto": libsrtp_openssl.as_ref().map(|r| r.crypto.clone()),
        "ratio_vs_libsrtp_openssl_protect": ratio(p, o_protect),
        "ratio_vs_libsrtp_openssl_unprotect": ratio(u, o_unprotect),
        "ratio_vs_best_budget_protect": ratio(p, Some(best_budget)),
        "ratio_vs_best_budget_unprotect": ratio(u, Some(best_budget)),
    });
    for more in [peers, openssl_peer] {
        if let (Some(report), Value::Object(more)) = (report.as_object_mut(), more) {
            report.extend(more);
        }
    }

    if args.json {
        println!("{}", serde_json::to_string_pretty(&report).context("JSON")?);
    } else {
        print_text(&report);
    }
    Ok(ExitCode::SUCCESS)
}

/// The end-to-end figures of the network peers with a UE on the emulated card (see
/// `benches/network.rs` for the criterion version and the per-phase breakdown).
#[derive(Default)]
struct NetworkFigures {
    first_media_uicc_ms: Option<f64>,
    first_media_me_ms: Option<f64>,
    mtk_uicc: Option<f64>,
    mtk_me: Option<f64>,
    mtk_uicc_pcsc: Option<f64>,
    mtk_me_pcsc: Option<f64>,
    pcsc_reader: Option<String>,
    registrations: Option<f64>,
    registrations_fresh: Option<f64>,
}

fn network_figures(secs: f64, notes: &mut Vec<String>) -> NetworkFigures {
    use harness::netbench::{
        Challenges, measure_mtk_updates_per_second, measure_power_on_to_first_media,
        measure_registrations_per_second,
    };
    use me::KeyManagementPath::{MeBased, UiccBased};
    let profile = sim_reader::CardProfile::default();
    let card = || -> harness::Result<sim_reader::Emulator> {
        Ok(sim_reader::Emulator::new(&sim_reader::CardProfile::default())?)
    };
    let mut note = |what: &str, e: harness::Error| notes.push(format!("{what} not measured: {}", e.chain()));
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
            let open = || open_pcsc_reader(&name).map_err(|e| harness::Error::Other(format!("{e:#}")));
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
    let mut note = |what: &str, e: harness::Error| notes.push(format!("{what} not measured: {}", e.chain()));
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
fn open_pcsc_reader(name: &str) -> Result<sim_reader::PcscReader> {
    let start = Instant::now();
    loop {
        let readers = sim_reader::list_readers()?;
        if readers.iter().any(|r| r.name == name && r.card_present) {
            return Ok(sim_reader::PcscReader::open(&sim_reader::ReaderSelector::Name(name.to_owned()))?);
        }
        if start.elapsed() > Duration::from_secs(10) {
            bail!("no card in PC/SC reader '{name}' after 10 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn print_text(r: &Value) {
    let num = |k: &str| r[k].as_f64();
    let pps = |k: &str| num(k).map_or_else(|| "not measured".to_owned(), |v| format!("{v:>12.0} /s"));
    let x = |k: &str| num(k).map_or_else(String::new, |v| format!("{v:.2}x"));
    println!(
        "1200-byte RTP payload, {}, one core, best of {REPS} x {} s",
        r["suite"].as_str().unwrap_or(""),
        r["seconds"]
    );
    println!(
        "srtp protect           {}   {} libsrtp, {} budget",
        pps("srtp_protect_pps"),
        x("srtp_protect_vs_libsrtp"),
        x("srtp_protect_vs_crypto_budget")
    );
    println!(
        "srtp unprotect         {}   {} libsrtp, {} budget",
        pps("srtp_unprotect_pps"),
        x("srtp_unprotect_vs_libsrtp"),
        x("srtp_unprotect_vs_crypto_budget")
    );
    println!("crypto budget          {}   ({})", pps("crypto_budget_pps"), r["srtp_strategy"]);
    println!(
        "crypto budget, other   {}   ({})",
        pps("crypto_budget_other_strategy_pps"),
        r["crypto_budget_other_strategy"]
    );
    println!("crypto budget, ctr+hmac{}", pps("crypto_budget_sequential_pps"));
    println!("libsrtp protect        {}", pps("libsrtp_protect_pps"));
    println!("libsrtp unprotect      {}", pps("libsrtp_unprotect_pps"));
    let bps =
        |k: &str| num(k).map_or_else(|| "not measured".to_owned(), |v| format!("{:>9.1} MB/s", v / 1e6));
    println!("openssl aes-128-ctr    {}", bps("openssl_aes128ctr_1200_Bps"));
    println!("openssl hmac(sha1)     {}", bps("openssl_hmac_sha1_1216_Bps"));
    println!("libsrtp2 C protect     {}   ({})", pps("libsrtp_c_protect_pps"), r["libsrtp_c_crypto"]);
    println!("libsrtp2 C unprotect   {}", pps("libsrtp_c_unprotect_pps"));
    println!(
        "libsrtp+OpenSSL protect   {}   ({})",
        pps("libsrtp_openssl_protect_pps"),
        r["libsrtp_openssl_version"]
    );
    println!("libsrtp+OpenSSL unprotect {}", pps("libsrtp_openssl_unprotect_pps"));
    println!("webrtc-srtp protect    {}", pps("webrtc_srtp_protect_pps"));
    println!("webrtc-srtp unprotect  {}", pps("webrtc_srtp_unprotect_pps"));
    println!("openssl budget         {}", pps("openssl_budget_pps"));
    println!("card SELECT MF         {}", pps("card_select_aps"));
    println!("card MTK generation    {}", pps("card_mtk_generations_per_s"));
    println!("MTK updates, UICC      {}", pps("mtk_updates_per_s_uicc"));
    println!("MTK updates, ME        {}", pps("mtk_updates_per_s_me"));
    println!("MTK updates, UICC pcsc {}", pps("mtk_updates_per_s_uicc_pcsc"));
    println!("MTK updates, ME pcsc   {}", pps("mtk_updates_per_s_me_pcsc"));
    if let Some(notes) = r["notes"].as_array() {
        for n in notes {
            println!("note: {}", n.as_str().unwrap_or(""));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Timing

/// The CPU time this thread has run, from `clock_gettime(CLOCK_THREAD_CPUTIME_ID)` (which asks
/// the scheduler for the running time up to now; `/proc/thread-self/schedstat`, read here
/// before, only advances at scheduler ticks, 4 ms apart, so a timed batch of unprotects read 0
/// or a whole tick). The per-core figures divide by this clock, not by the wall clock: on a
/// machine shared with other work, time the thread spent waiting for a core is not counted
/// against it (the peers are timed the same way: Python's `time.thread_time()`, the C harness's
/// and the Rust peers' `CLOCK_THREAD_CPUTIME_ID`, `openssl speed`'s user time). Falls back to the
/// wall clock where that clock is missing.
pub(crate) struct CpuClock {
    cpu_time: bool,
    wall: Instant,
}

impl CpuClock {
    pub(crate) fn new() -> Self {
        CpuClock { cpu_time: thread_cpu_time().is_some(), wall: Instant::now() }
    }

    /// Now, on this clock.
    pub(crate) fn now(&self) -> Duration {
        match thread_cpu_time().filter(|_| self.cpu_time) {
            Some(t) => t,
            None => self.wall.elapsed(),
        }
    }

    /// Whether this is the thread's CPU time (else the wall clock).
    pub(crate) fn is_cpu_time(&self) -> bool {
        self.cpu_time
    }
}

/// This thread's CPU time.
#[allow(unsafe_code)]
fn thread_cpu_time() -> Option<Duration> {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid, writable timespec; clock_gettime writes only it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    (rc == 0).then(|| Duration::new(u64::try_from(t.tv_sec).unwrap_or(0), t.tv_nsec as u32))
}

thread_local! {
    static CLOCK: CpuClock = CpuClock::new();
}

fn cpu_now() -> Duration {
    CLOCK.with(CpuClock::now)
}

/// Calls `step` until `secs` of this thread's CPU time have passed; returns calls per second.
fn rate(secs: f64, mut step: impl FnMut() -> Result<()>) -> Result<f64> {
    let wall = Instant::now();
    let start = cpu_now();
    let mut n = 0u64;
    loop {
        for _ in 0..CLOCK_EVERY {
            step()?;
        }
        n += CLOCK_EVERY;
        // The wall clock is cheap; the CPU clock is read only when the wall clock says it may be
        // time (CPU time never runs ahead of wall time).
        if wall.elapsed().as_secs_f64() >= secs {
            let t = (cpu_now() - start).as_secs_f64();
            if t >= secs {
                return Ok(n as f64 / t);
            }
        }
    }
}

/// Runs `batch` (which returns how many operations it timed and how long they took) until
/// `secs` of timed work; returns operations per second.
fn rate_timed(secs: f64, mut batch: impl FnMut() -> Result<(u64, Duration)>) -> Result<f64> {
    let (mut n, mut timed) = (0u64, Duration::ZERO);
    while timed.as_secs_f64() < secs {
        let (k, t) = batch()?;
        n += k;
        timed += t;
    }
    Ok(n as f64 / timed.as_secs_f64())
}

fn warm_up(secs: f64) -> f64 {
    (secs / 5.0).clamp(0.01, 0.2)
}

// ---------------------------------------------------------------------------------------------
// This project's SRTP and the bare crypto

struct Ours {
    protect_pps: f64,
    unprotect_pps: f64,
    /// The budget with the strategy the srtp crate picked for this CPU.
    budget_pps: f64,
    naive_budget_pps: f64,
    /// The budget with the strategy it did not pick (sequential or one-pass).
    other_budget_pps: f64,
    other_strategy: Strategy,
    /// `Strategies::describe` of this CPU's choice.
    strategy: String,
}

fn context() -> Result<SrtpContext> {
    let key = MasterKey::new(MASTER_KEY, MASTER_SALT, []);
    SrtpContext::new(Policy::new(CryptoSuite::Aes128CmHmacSha1_80), [key]).map_err(|e| anyhow!("{e}"))
}

/// An RTP packet with room for the tag: V=2, PT 96, the given SEQ, SSRC, 0xa5 payload.
fn rtp_buffer() -> Vec<u8> {
    let mut p = vec![0xa5u8; HEADER + PAYLOAD + TAG];
    p[..HEADER].fill(0);
    p[0] = 0x80;
    p[1] = 96;
    p[8..12].copy_from_slice(&SSRC.to_be_bytes());
    p
}

struct Protect {
    ctx: SrtpContext,
    buf: Vec<u8>,
    seq: u16,
}

impl Protect {
    fn new() -> Result<Self> {
        Ok(Protect { ctx: context()?, buf: rtp_buffer(), seq: 0 })
    }

    fn step(&mut self) -> Result<()> {
        self.seq = self.seq.wrapping_add(1);
        self.buf[2..4].copy_from_slice(&self.seq.to_be_bytes());
        let n =
            self.ctx.protect_rtp(black_box(&mut self.buf), HEADER + PAYLOAD).map_err(|e| anyhow!("{e}"))?;
        black_box(n);
        Ok(())
    }
}

struct Unprotect {
    tx: SrtpContext,
    rx: SrtpContext,
    batch: Vec<Vec<u8>>,
    seq: u16,
}

impl Unprotect {
    fn new() -> Result<Self> {
        Ok(Unprotect { tx: context()?, rx: context()?, batch: vec![rtp_buffer(); UNPROTECT_BATCH], seq: 0 })
    }

    /// Protects a batch untimed, then times unprotecting it.
    fn batch(&mut self) -> Result<(u64, Duration)> {
        for p in &mut self.batch {
            self.seq = self.seq.wrapping_add(1);
            p[2..4].copy_from_slice(&self.seq.to_be_bytes());
            self.tx.protect_rtp(p, HEADER + PAYLOAD).map_err(|e| anyhow!("{e}"))?;
        }
        let start = cpu_now();
        for p in &mut self.batch {
            let n = self.rx.unprotect_rtp(black_box(p)).map_err(|e| anyhow!("unprotect: {e}"))?;
            black_box(n);
        }
        Ok((self.batch.len() as u64, cpu_now() - start))
    }
}

/// The bare crypto of one packet with the primitives used the way the srtp crate uses them, and
/// nothing else: the RFC 3711 §4.1.1 IV, then `srtp::transform::encrypt_and_authenticate_with`
/// (AES-128 counter mode over the payload and HMAC-SHA1 over header, payload and ROC, from the
/// hashed inner/outer key states, straight on the `aes` and `sha1` crates, scheduled as
/// `strategy` says), truncated to 80 bits. No header parsing, no index estimation, no replay
/// list, no key lookup: the SRTP framing is what the srtp figures have on top of this one.
struct Budget {
    strategy: Strategy,
    aes: Aes128,
    mac: srtp::transform::HmacSha1Key,
    salt: [u8; 14],
    buf: Vec<u8>,
    seq: u16,
}

impl Budget {
    fn new(strategy: Strategy) -> Self {
        Budget {
            strategy,
            aes: Aes128::new(&[0x3c; 16].into()),
            mac: srtp::transform::HmacSha1Key::new(&[0x5c; 20]),
            salt: [0x17; 14],
            buf: rtp_buffer(),
            seq: 0,
        }
    }

    fn step(&mut self) {
        self.seq = self.seq.wrapping_add(1);
        self.buf[2..4].copy_from_slice(&self.seq.to_be_bytes());
        let roc = 0u32;
        let index = (u64::from(roc) << 16) | u64::from(self.seq);
        let iv = srtp::aes_cm::packet_iv(&self.salt, SSRC, index);
        let packet = &mut self.buf[..HEADER + PAYLOAD];
        let tag = srtp::transform::encrypt_and_authenticate_with(
            self.strategy,
            &self.aes,
            &iv,
            &self.mac,
            packet,
            HEADER,
            &roc.to_be_bytes(),
        );
        self.buf[HEADER + PAYLOAD..].copy_from_slice(&tag[..TAG]);
        black_box(&self.buf);
    }
}

/// The bare crypto through the crates' general APIs, one after the other (CRATES.md §3 (c)):
/// AES-128 in counter mode over the payload with the expanded key schedule reused, the RFC 3711
/// §4.1.1 IV, and HMAC-SHA1 over header, payload and ROC from a pre-keyed `hmac::Hmac` state that
/// is cloned per packet, truncated to 80 bits. Reported beside [`Budget`] to show what the
/// one-pass transform gains.
struct NaiveBudget {
    aes: Aes128,
    mac: Hmac<Sha1>,
    salt: [u8; 14],
    buf: Vec<u8>,
    seq: u16,
}

impl NaiveBudget {
    fn new() -> Result<Self> {
        Ok(NaiveBudget {
            aes: Aes128::new(&[0x3c; 16].into()),
            mac: <Hmac<Sha1> as hmac::KeyInit>::new_from_slice(&[0x5c; 20]).map_err(|e| anyhow!("{e}"))?,
            salt: [0x17; 14],
            buf: rtp_buffer(),
            seq: 0,
        })
    }

    fn step(&mut self) {
        self.seq = self.seq.wrapping_add(1);
        self.buf[2..4].copy_from_slice(&self.seq.to_be_bytes());
        let roc = 0u32;
        let index = (u64::from(roc) << 16) | u64::from(self.seq);
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(SSRC.to_be_bytes()) {
            *b ^= s;
        }
        for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        let mut cm =
            ctr::Ctr128BE::<&Aes128>::from_core(ctr::CtrCore::inner_iv_init(&self.aes, (&iv).into()));
        cm.apply_keystream(&mut self.buf[HEADER..HEADER + PAYLOAD]);
        let mut m = self.mac.clone();
        m.update(&self.buf[..HEADER + PAYLOAD]);
        m.update(&roc.to_be_bytes());
        let tag = m.finalize().into_bytes();
        self.buf[HEADER + PAYLOAD..].copy_from_slice(&tag[..TAG]);
        black_box(&self.buf);
    }
}

/// The five figures, interleaved run by run so that a slower stretch of the machine hits all of
/// them alike; the best run of each is kept.
fn measure_ours(secs: f64, notes: &mut Vec<String>) -> Result<Ours> {
    CLOCK.with(|c| {
        if !c.is_cpu_time() {
            notes.push("SRTP figures timed on the wall clock: no CLOCK_THREAD_CPUTIME_ID".into())
        }
    });
    let chosen = Strategy::for_this_cpu();
    let other = if chosen.protect == Strategy::Sequential {
        Strategy::OnePass { sha_blocks: 1 }
    } else {
        Strategy::Sequential
    };
    let (mut p, mut u, mut b, mut nb, mut ob) = (
        Protect::new()?,
        Unprotect::new()?,
        Budget::new(chosen.protect),
        NaiveBudget::new()?,
        Budget::new(other),
    );
    let w = warm_up(secs);
    rate(w, || p.step())?;
    rate_timed(w, || u.batch())?;
    rate(w, || {
        b.step();
        Ok(())
    })?;
    rate(w, || {
        nb.step();
        Ok(())
    })?;
    rate(w, || {
        ob.step();
        Ok(())
    })?;
    let mut best = Ours {
        protect_pps: 0.0,
        unprotect_pps: 0.0,
        budget_pps: 0.0,
        naive_budget_pps: 0.0,
        other_budget_pps: 0.0,
        other_strategy: other,
        strategy: chosen.describe(aes_batch()),
    };
    for _ in 0..REPS {
        best.protect_pps = best.protect_pps.max(rate(secs, || p.step())?);
        best.unprotect_pps = best.unprotect_pps.max(rate_timed(secs, || u.batch())?);
        best.budget_pps = best.budget_pps.max(rate(secs, || {
            b.step();
            Ok(())
        })?);
        best.naive_budget_pps = best.naive_budget_pps.max(rate(secs, || {
            nb.step();
            Ok(())
        })?);
        best.other_budget_pps = best.other_budget_pps.max(rate(secs, || {
            ob.step();
            Ok(())
        })?);
    }
    Ok(best)
}

// ---------------------------------------------------------------------------------------------
// libsrtp through pylibsrtp

struct LibsrtpRates {
    version: String,
    protect_pps: f64,
    unprotect_pps: f64,
}

/// The Python side: the same packets (12-byte header, 1200 bytes of 0xa5, SSRC deadbeef, fresh
/// sequence numbers), the same batches, the same best-of-runs rule and the same clock (this
/// thread's CPU time, `time.thread_time()`) as the Rust side. The Python call overhead is part of
/// the figure.
const LIBSRTP_LOOP: &str = r#"
import json, sys, time
import pylibsrtp
from pylibsrtp import Policy, Session

secs, reps, batch = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
key = bytes([0x2B] * 16 + [0x17] * 14)
profile = Policy.SRTP_PROFILE_AES128_CM_SHA1_80

def session(kind):
    return Session(policy=Policy(key=key, ssrc_type=kind, srtp_profile=profile))

payload = b"\xa5" * 1200
headers = [b"\x80\x60" + s.to_bytes(2, "big") + b"\0\0\0\0" + (0xDEADBEEF).to_bytes(4, "big") for s in range(65536)]
tx, tx2, rx = session(Policy.SSRC_ANY_OUTBOUND), session(Policy.SSRC_ANY_OUTBOUND), session(Policy.SSRC_ANY_INBOUND)
state = {"seq": 0, "useq": 0}

def protect_rate(duration):
    protect, seq, n = tx.protect, state["seq"], 0
    start = time.thread_time()
    while True:
        for _ in range(256):
            seq = (seq + 1) & 0xFFFF
            protect(headers[seq] + payload)
        n += 256
        elapsed = time.thread_time() - start
        if elapsed >= duration:
            state["seq"] = seq
            return n / elapsed

def unprotect_rate(duration):
    protect, unprotect, seq, n, timed = tx2.protect, rx.unprotect, state["useq"], 0, 0.0
    while timed < duration:
        packets = []
        for _ in range(batch):
            seq = (seq + 1) & 0xFFFF
            packets.append(protect(headers[seq] + payload))
        start = time.thread_time()
        for p in packets:
            unprotect(p)
        timed += time.thread_time() - start
        n += batch
    state["useq"] = seq
    return n / timed

warm = min(max(secs / 5, 0.01), 0.2)
protect_rate(warm)
unprotect_rate(warm)
best_p = best_u = 0.0
for _ in range(reps):
    best_p = max(best_p, protect_rate(secs))
    best_u = max(best_u, unprotect_rate(secs))
print(json.dumps({"version": pylibsrtp.__version__, "protect_pps": best_p, "unprotect_pps": best_u}))
"#;

fn imports_pylibsrtp(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import pylibsrtp"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The venv the srtp crate's libsrtp tests create: `<target>/pyenv-srtp`, `<target>` being two
/// levels above this executable (`target/release/keysim`).
fn target_venv() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let target = exe.parent()?.parent()?;
    Some(target.join("pyenv-srtp").join("bin").join("python"))
}

/// --python, $KEYSIM_PYTHON, the target directory's venv, then python3, whichever imports
/// pylibsrtp first.
fn find_python(option: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = option {
        return if imports_pylibsrtp(p) {
            Ok(p.to_owned())
        } else {
            Err(format!("--python {} cannot import pylibsrtp", p.display()))
        };
    }
    if let Some(p) = std::env::var_os("KEYSIM_PYTHON") {
        let p = PathBuf::from(p);
        return if imports_pylibsrtp(&p) {
            Ok(p)
        } else {
            Err(format!("KEYSIM_PYTHON={} cannot import pylibsrtp", p.display()))
        };
    }
    let candidates: Vec<PathBuf> = target_venv().into_iter().chain([PathBuf::from("python3")]).collect();
    candidates.iter().find(|p| imports_pylibsrtp(p)).cloned().ok_or_else(|| {
        format!(
            "no Python that imports pylibsrtp (tried {}); `python3 -m venv V && V/bin/pip install \
             pylibsrtp`, then --python V/bin/python",
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )
    })
}

/// Runs a command with a time limit; returns its stdout.
pub(crate) fn output_within(cmd: &mut Command, limit: Duration) -> Result<String> {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn()?;
    let start = Instant::now();
    loop {
        if child.try_wait()?.is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            bail!("no answer within {} s", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn libsrtp_rates(python: &Path, secs: f64) -> Result<LibsrtpRates> {
    let limit = Duration::from_secs_f64(60.0 + 20.0 * secs);
    let out = output_within(
        Command::new(python).args([
            "-c",
            LIBSRTP_LOOP,
            &secs.to_string(),
            &REPS.to_string(),
            &UNPROTECT_BATCH.to_string(),
        ]),
        limit,
    )
    .with_context(|| format!("{} (pylibsrtp loop)", python.display()))?;
    let v: Value =
        serde_json::from_str(out.trim()).with_context(|| format!("pylibsrtp loop printed {out:?}"))?;
    let num = |k: &str| v[k].as_f64().ok_or_else(|| anyhow!("pylibsrtp loop: no {k} in {out:?}"));
    Ok(LibsrtpRates {
        version: v["version"].as_str().unwrap_or("?").to_owned(),
        protect_pps: num("protect_pps")?,
        unprotect_pps: num("unprotect_pps")?,
    })
}

// ---------------------------------------------------------------------------------------------
// OpenSSL

/// Bytes per second of `openssl speed -mr -seconds S -bytes N ARGS` (its `+F:` line). `openssl
/// speed` divides by the process's user CPU time unless told `-elapsed`.
fn openssl_speed(what: &[&str], bytes: usize, secs: u32) -> Result<f64> {
    let secs_text = secs.to_string();
    let bytes_text = bytes.to_string();
    let mut args = vec!["speed", "-mr", "-seconds", &secs_text, "-bytes", &bytes_text];
    args.extend_from_slice(what);
    let out =
        output_within(Command::new("openssl").args(&args), Duration::from_secs(30 + 4 * u64::from(secs)))
            .context("openssl")?;
    out.lines()
        .find_map(|l| {
            l.strip_prefix("+F:").and_then(|rest| rest.rsplit(':').next()?.trim().parse::<f64>().ok())
        })
        .ok_or_else(|| anyhow!("no +F: line in `openssl {}`", args.join(" ")))
}

// ---------------------------------------------------------------------------------------------
// The emulated card

/// SELECT MF per second through `Session<Emulator>` (TS 102 221 §11.1.1).
fn card_select_rate(secs: f64) -> Result<f64> {
    let mut card = sim_reader::Emulator::new(&sim_reader::CardProfile::default())?;
    let probe = sim_reader::measure_select_mf(&mut card, 200)?;
    let count = (probe.apdus_per_second() * secs).clamp(200.0, 50_000_000.0) as usize;
    let mut best = 0f64;
    for _ in 0..REPS {
        best = best.max(sim_reader::measure_select_mf(&mut card, count)?.apdus_per_second());
    }
    Ok(best)
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines().find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, v)| v.trim().to_owned()))
}

// ---------------------------------------------------------------------------------------------
// MTK Generation on the emulated card (docs/card-interface.md, TS 31.102 §7.1.2, TS 33.246 §6.3)

/// 2032-01-01T00:00:00Z (Unix): the MSK messages' time, inside the MUK's key lifetime.
const UNIX_2032: u64 = 1_956_528_000;
/// MTK IDs have 16 bits in this profile: a new MSK after this many MTKs.
const MTKS_PER_MSK: u32 = 60_000;
/// MTK messages built (untimed) before each timed batch of MTK Generations.
const MTK_BATCH: usize = 64;

/// AUTHENTICATE in the MBMS context: ODD instruction, P1 80, P2 85, data `53 L mode message`.
fn mbms_authenticate(mode: u8, message: &[u8]) -> Result<Vec<u8>> {
    if message.len() + 1 > 0xFF {
        bail!("MIKEY message too long for one short APDU");
    }
    let mut data = vec![0; framing::mbms_len(message.len())];
    framing::encode_mbms(mode, message, &mut data).map_err(|e| anyhow!("MBMS data: {e}"))?;
    Ok(short_apdu([0x00, INS_AUTHENTICATE_ODD, P1_ODD_FIRST_BLOCK, P2_MBMS_CONTEXT], &data, true)?)
}

/// The card with a MUK: ADF.USIM selected, PIN1 verified, GBA_U bootstrap (TS 33.220 §5.3.2) with
/// the profile's K and OPc, B-TID and lifetime written, NAF derivation for the BM-SC (Annex G).
/// Returns the card, the MUK (Ks_int_NAF, computed on the network side), the B-TID and the Key
/// Domain ID.
fn card_with_muk() -> Result<(Card, mikey::mbms::Muk, String, mikey::mbms::KeyDomainId)> {
    let c = card_with_naf_keys(&sim_reader::CardProfile::default(), [0x42u8; 16])?;
    Ok((c.card, gba::mbms_keys::uicc_based_muk(&c.ks_int_naf), c.btid, c.key_domain_id))
}

/// MTK Generations per second on the in-process emulated card (TS 33.246 §6.3.3 through
/// AUTHENTICATE, docs/card-interface.md): after [`card_with_muk`] and an MSK Update, MTK messages
/// are built untimed in batches, then sent one AUTHENTICATE each; only those exchanges are timed,
/// and every answer must be `53 1F DB` with the MTK and salt that were sent.
fn card_mtk_rate(secs: f64) -> Result<f64> {
    use mikey::Timestamp;
    use mikey::mbms::{self, Msk, MskId, MskMessageParams, Mtk, MtkId, MtkMessageParams, MtkSalt};

    let (mut card, muk, btid, key_domain_id) = card_with_muk()?;
    let mut msk_number = 0u32;
    let mut new_msk = |card: &mut Card| -> Result<(MskId, [u8; 16])> {
        msk_number += 1;
        let msk_id = MskId(0x0001_0000 | msk_number);
        let msk = [msk_number as u8 ^ 0x3C; 16];
        let rand = [msk_number as u8; 16];
        let timestamp = Timestamp::NtpUtc((UNIX_2032 + u64::from(msk_number) + mikey::NTP_UNIX_OFFSET) << 32);
        let params = MskMessageParams::new(
            BMSC_FQDN.as_bytes(),
            btid.as_bytes(),
            key_domain_id,
            msk_id,
            timestamp,
            &rand,
        );
        let mut out = [0u8; 512];
        let n =
            mbms::build_msk_message(&muk, &params, &Msk::new(msk), &mut out).map_err(|e| anyhow!("{e}"))?;
        card_ok(card, "MSK Update", &mbms_authenticate(MODE_MSK_UPDATE, &out[..n])?)?;
        Ok((msk_id, msk))
    };
    let (mut msk_id, mut msk) = new_msk(&mut card)?;
    let mut mtk_id = 0u32;
    let mut batch = |card: &mut Card| -> Result<(u64, Duration)> {
        let mut messages = Vec::with_capacity(MTK_BATCH);
        for _ in 0..MTK_BATCH {
            if mtk_id == MTKS_PER_MSK {
                (msk_id, msk) = new_msk(card)?;
                mtk_id = 0;
            }
            mtk_id += 1;
            let (mtk, salt) = ([mtk_id as u8; 16], [(mtk_id >> 8) as u8; 14]);
            let params =
                MtkMessageParams::new(key_domain_id, msk_id, MtkId(mtk_id), Timestamp::Counter(mtk_id));
            let mut out = [0u8; 512];
            let salt_key = MtkSalt::new(salt);
            let n =
                mbms::build_mtk_message(&Msk::new(msk), &params, &Mtk::new(mtk), Some(&salt_key), &mut out)
                    .map_err(|e| anyhow!("{e}"))?;
            let mut expected = vec![0; 3];
            let head = framing::encode_mbms_answer_head(mtk.len() + salt.len(), &mut expected)
                .map_err(|e| anyhow!("{e}"))?;
            expected.truncate(head);
            expected.extend_from_slice(&mtk);
            expected.extend_from_slice(&salt);
            messages.push((mbms_authenticate(MODE_MTK_GENERATION, &out[..n])?, expected));
        }
        let start = Instant::now();
        for (apdu, expected) in &messages {
            let ex = card.transmit_apdu(black_box(apdu)).context("MTK Generation")?;
            if ex.sw() != 0x9000 || ex.data != *expected {
                bail!(
                    "MTK Generation: expected {} 9000, got {} {:04X}",
                    hex::encode(expected),
                    hex::encode(&ex.data),
                    ex.sw()
                );
            }
        }
        Ok((messages.len() as u64, start.elapsed()))
    };
    rate_timed(warm_up(secs), || batch(&mut card))?;
    let mut best = 0f64;
    for _ in 0..REPS {
        best = best.max(rate_timed(secs, || batch(&mut card))?);
    }
    Ok(best)
}
