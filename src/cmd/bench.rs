//! `keysim bench`: SRTP protect/unprotect throughput (RFC 3711, AES_CM_128_HMAC_SHA1_80, 1200-byte
//! payloads) on one core, beside libsrtp (pylibsrtp, and Debian's libsrtp2 from C), webrtc-srtp,
//! the bare crypto on the same packets and OpenSSL, all measured in the same run; the emulated
//! card's command rates; MTK updates end to end in-process and through pcscd + vpcd. What is
//! measured lives in `harness`: `harness::srtpbench` (with its `peers`), `harness::cardbench`,
//! `harness::netbench` and `harness::timing`; `keysim bench scale` and `keysim bench storm` are
//! `harness::scale` (printed by `scale.rs`). This assembles the report and prints it.

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use harness::cardbench::{card_mtk_rate, card_select_rate};
use harness::netbench::{NetworkFigures, network_figures};
use harness::srtpbench::{
    HMAC_INPUT, PAYLOAD, UNPROTECT_BATCH, cpu_model, find_python, libsrtp_rates, measure_ours, openssl_speed,
    peers,
};
use harness::timing::{REPS, is_cpu_time};
use serde_json::{Value, json};
use srtp::CryptoSuite;

use crate::cli::{BenchArgs, BenchCommand};

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

    let ours = measure_ours(secs, &mut notes).map_err(|e| anyhow!("{}", e.chain()))?;
    let libsrtp = match find_python(args.python.as_deref()) {
        Ok(python) => match libsrtp_rates(&python, secs) {
            Ok(r) => Some((python, r)),
            Err(e) => {
                notes.push(format!("libsrtp not measured: {}", e.chain()));
                None
            }
        },
        Err(why) => {
            notes.push(format!("libsrtp not measured: {why}"));
            None
        }
    };
    let libsrtp_c = peers::libsrtp_c(secs, REPS, UNPROTECT_BATCH)
        .map_err(|e| notes.push(format!("libsrtp_c not measured: {}", e.chain())))
        .ok();
    let webrtc = peers::webrtc_srtp(secs, REPS, UNPROTECT_BATCH, !args.quick)
        .map_err(|e| notes.push(format!("webrtc_srtp not measured: {}", e.chain())))
        .ok();
    let libsrtp_openssl = peers::libsrtp_openssl(secs, REPS, UNPROTECT_BATCH, !args.quick)
        .map_err(|e| notes.push(format!("libsrtp_openssl not measured: {}", e.chain())))
        .ok();
    let openssl_secs = secs.round().max(1.0) as u32;
    let aes_ctr = openssl_speed(&["-evp", "aes-128-ctr"], PAYLOAD, openssl_secs)
        .map_err(|e| notes.push(format!("openssl aes-128-ctr not measured: {}", e.chain())))
        .ok();
    let hmac_sha1 = openssl_speed(&["-hmac", "sha1"], HMAC_INPUT, openssl_secs)
        .map_err(|e| notes.push(format!("openssl hmac sha1 not measured: {}", e.chain())))
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
            .map_err(|e| notes.push(format!("card SELECT MF not measured: {}", e.chain())))
            .ok();
        let card_mtk = card_mtk_rate(secs)
            .map_err(|e| notes.push(format!("card_mtk_generations_per_s not measured: {}", e.chain())))
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
        "timing": if is_cpu_time() { "thread CPU time" } else { "wall clock" },
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
