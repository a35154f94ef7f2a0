//! `keysim bench --json`: the shape of the report (keys and types), never the figures: timing
//! depends on the machine, so nothing here asserts a speed.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

fn oracles_required() -> bool {
    std::env::var("KEYSIM_REQUIRE_ORACLES").is_ok_and(|v| v == "1")
}

fn notes_mention(v: &Value, word: &str) -> bool {
    v["notes"].as_array().is_some_and(|n| n.iter().any(|s| s.as_str().is_some_and(|s| s.contains(word))))
}

#[test]
fn bench_json_has_the_documented_keys() {
    let out = Command::new(env!("CARGO_BIN_EXE_keysim"))
        .args(["bench", "--json", "--quick"])
        .output()
        .expect("run keysim");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let obj = v.as_object().expect("object");

    // Always measured: positive packet rates and their ratio to the crypto budget.
    for key in [
        "srtp_protect_pps",
        "srtp_unprotect_pps",
        "crypto_budget_pps",
        "crypto_budget_sequential_pps",
        "crypto_budget_other_strategy_pps",
        "crypto_budget_best_pps",
        "ratio_vs_best_budget_protect",
        "ratio_vs_best_budget_unprotect",
        "srtp_vs_crypto_budget",
        "ratio_vs_budget_protect",
        "ratio_vs_budget_unprotect",
    ] {
        let x = v[key].as_f64().unwrap_or_else(|| panic!("{key} is a number: {}", v[key]));
        assert!(x > 0.0, "{key} = {x}");
    }
    for key in ["srtp_protect_vs_crypto_budget", "srtp_unprotect_vs_crypto_budget"] {
        assert!(v[key].is_number(), "{key}");
    }
    assert_eq!(v["payload_bytes"], 1200);
    // The transform strategy this CPU got, and the other one, measured as a budget beside it.
    let strategy = v["srtp_strategy"].as_str().expect("srtp_strategy");
    assert!(
        ["sequential (AES batches of ", "one-pass/1 (AES batches of "]
            .iter()
            .any(|s| strategy.starts_with(s)),
        "{strategy}"
    );
    let other = v["crypto_budget_other_strategy"].as_str().expect("crypto_budget_other_strategy");
    assert!(["sequential", "one-pass/1"].contains(&other) && !strategy.starts_with(other), "{other}");
    let best = v["crypto_budget_best_pps"].as_f64().unwrap();
    for key in ["crypto_budget_pps", "crypto_budget_sequential_pps", "crypto_budget_other_strategy_pps"] {
        assert!(v[key].as_f64().unwrap() <= best, "{key} above the best budget");
    }
    assert_eq!(v["suite"], "AES_CM_128_HMAC_SHA1_80");
    assert!(v["notes"].as_array().is_some_and(|n| n.iter().all(Value::is_string)), "notes: strings");

    // Measured when the tool is there: a number, or null with a note saying why.
    let optional = [
        ("libsrtp_protect_pps", "libsrtp"),
        ("libsrtp_unprotect_pps", "libsrtp"),
        ("srtp_vs_libsrtp", "libsrtp"),
        ("srtp_protect_vs_libsrtp", "libsrtp"),
        ("srtp_unprotect_vs_libsrtp", "libsrtp"),
        ("openssl_aes128ctr_1200_Bps", "openssl aes-128-ctr"),
        ("openssl_hmac_sha1_1216_Bps", "openssl hmac"),
        ("openssl_budget_pps", "openssl_budget_pps"),
        ("libsrtp_c_protect_pps", "libsrtp_c"),
        ("libsrtp_c_unprotect_pps", "libsrtp_c"),
        ("ratio_vs_libsrtp_c_protect", "libsrtp_c"),
        ("ratio_vs_libsrtp_c_unprotect", "libsrtp_c"),
        ("ratio_vs_libsrtp_protect", "libsrtp"),
        ("ratio_vs_libsrtp_unprotect", "libsrtp"),
        ("ratio_vs_openssl_budget_protect", "openssl_budget_pps"),
        ("ratio_vs_openssl_budget_unprotect", "openssl_budget_pps"),
        ("libsrtp_openssl_protect_pps", "libsrtp_openssl"),
        ("libsrtp_openssl_unprotect_pps", "libsrtp_openssl"),
        ("ratio_vs_libsrtp_openssl_protect", "libsrtp_openssl"),
        ("ratio_vs_libsrtp_openssl_unprotect", "libsrtp_openssl"),
        ("webrtc_srtp_protect_pps", "webrtc_srtp"),
        ("webrtc_srtp_unprotect_pps", "webrtc_srtp"),
        ("ratio_vs_webrtc_protect", "webrtc_srtp"),
        ("ratio_vs_webrtc_unprotect", "webrtc_srtp"),
        ("mtk_updates_per_s_uicc_pcsc", "mtk_updates_per_s_uicc_pcsc"),
        ("mtk_updates_per_s_me_pcsc", "mtk_updates_per_s_me_pcsc"),
        ("card_select_aps", "card SELECT MF"),
        ("card_mtk_generations_per_s", "card_mtk_generations_per_s"),
        ("ue_power_on_to_first_media_ms_uicc", "ue_power_on_to_first_media_ms_uicc"),
        ("ue_power_on_to_first_media_ms_me", "ue_power_on_to_first_media_ms_me"),
        ("mtk_updates_per_s_uicc", "mtk_updates_per_s_uicc"),
        ("mtk_updates_per_s_me", "mtk_updates_per_s_me"),
        ("bmsc_registrations_per_s", "bmsc_registrations_per_s"),
        ("bmsc_registrations_fresh_challenge_per_s", "bmsc_registrations_fresh_challenge_per_s"),
    ];
    for (key, note) in optional {
        assert!(obj.contains_key(key), "{key} present");
        match &v[key] {
            Value::Number(n) => assert!(n.as_f64().is_some_and(|x| x > 0.0), "{key} = {n}"),
            Value::Null => assert!(notes_mention(&v, note), "{key} is null without a note: {}", v["notes"]),
            other => panic!("{key} = {other}"),
        }
    }
    if v["libsrtp_protect_pps"].is_number() {
        assert!(v["libsrtp_version"].as_str().is_some_and(|s| s.starts_with("pylibsrtp")));
        let r = v["srtp_protect_vs_libsrtp"].as_f64().unwrap();
        let expected = v["srtp_protect_pps"].as_f64().unwrap() / v["libsrtp_protect_pps"].as_f64().unwrap();
        assert!((r - expected).abs() < 0.01 + expected * 0.01, "ratio {r} vs {expected}");
    } else {
        assert!(!oracles_required(), "libsrtp is required (KEYSIM_REQUIRE_ORACLES=1): {}", v["notes"]);
    }
    if v["openssl_aes128ctr_1200_Bps"].is_null() {
        assert!(!oracles_required(), "openssl is required (KEYSIM_REQUIRE_ORACLES=1): {}", v["notes"]);
    }
}

/// libsrtp with its OpenSSL backend: the bench crate's build command (BENCHMARKS.md), after which
/// `keysim bench` measures it in the same run as the srtp figures and reports its version and the
/// OpenSSL it runs on. The build needs gcc, make, libclang-dev and libssl-dev
/// (scripts/setup-system.sh); without them the test is skipped unless oracles are required.
#[test]
fn bench_measures_libsrtp_with_openssl() {
    let keysim = Path::new(env!("CARGO_BIN_EXE_keysim"));
    let peers = keysim.parent().and_then(Path::parent).expect("target directory").join("peers");
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers/libsrtp-openssl/Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let built = Command::new(cargo)
        .args(["build", "--release", "--quiet", "--manifest-path", manifest])
        .env("CARGO_TARGET_DIR", &peers)
        .status();
    if !built.as_ref().is_ok_and(|s| s.success()) {
        assert!(!oracles_required(), "building {manifest} failed: {built:?}");
        eprintln!("skipped: building {manifest} failed ({built:?})");
        return;
    }
    let out = Command::new(keysim)
        .args(["bench", "--json", "--quick", "--srtp-only"])
        .output()
        .expect("run keysim");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    for key in [
        "libsrtp_openssl_protect_pps",
        "libsrtp_openssl_unprotect_pps",
        "ratio_vs_libsrtp_openssl_protect",
        "ratio_vs_libsrtp_openssl_unprotect",
    ] {
        assert!(v[key].as_f64().is_some_and(|x| x > 0.0), "{key} = {}: {}", v[key], v["notes"]);
    }
    let version = v["libsrtp_openssl_version"].as_str().expect("libsrtp_openssl_version");
    assert!(version.starts_with("libsrtp2 2.") && version.contains("--enable-openssl"), "{version}");
    let crypto = v["libsrtp_openssl_crypto"].as_str().expect("libsrtp_openssl_crypto");
    assert!(crypto.starts_with("OpenSSL ") && version.ends_with(crypto), "{crypto} / {version}");
    let r = v["ratio_vs_libsrtp_openssl_unprotect"].as_f64().unwrap();
    let expected =
        v["srtp_unprotect_pps"].as_f64().unwrap() / v["libsrtp_openssl_unprotect_pps"].as_f64().unwrap();
    assert!((r - expected).abs() < 0.01 + expected * 0.01, "ratio {r} vs {expected}");
}

#[test]
fn bench_refuses_a_bad_duration() {
    let out = Command::new(env!("CARGO_BIN_EXE_keysim"))
        .args(["bench", "--seconds", "0"])
        .output()
        .expect("run keysim");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--seconds"));
}

/// The scale and storm commands run on a few UEs and report their keys; every UE ends with the
/// current MSK.
#[test]
fn bench_scale_and_storm_report_their_keys() {
    let run = |what: &str| -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_keysim"))
            .args(["bench", what, "--ues", "20", "--mtk-updates", "3", "--json"])
            .output()
            .expect("run keysim");
        assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON")
    };
    let scale = run("scale");
    assert_eq!(scale["ues"], 20);
    assert_eq!(scale["msk_pushes"], 20);
    for key in
        ["wall_s", "registration_s", "mtk_s", "peak_rss_bytes", "bytes_per_ue", "mtk_generations_per_s"]
    {
        assert!(scale[key].as_f64().is_some_and(|x| x > 0.0), "{key} = {}", scale[key]);
    }
    let storm = run("storm");
    assert_eq!(storm["ues"], 20);
    assert_eq!(storm["ues_without_current_msk"], 0, "{storm}");
    assert!(storm["msk_requests_served"].as_u64().is_some_and(|n| n >= 20), "{storm}");
    for key in ["msk_requests_per_s", "latency_ms_p50", "latency_ms_p90", "latency_ms_p99", "latency_ms_max"]
    {
        assert!(storm[key].as_f64().is_some_and(|x| x > 0.0), "{key} = {}", storm[key]);
    }
}

/// `keysim bench serve`: one `keysim serve` child and one `keysim ue --ues 5` child over loopback
/// sockets, on each bearer kind. What is checked is that the run is whole (every UE bootstrapped
/// at the server, registered, keyed and decrypting; the server stopped cleanly) and that the
/// figures are present and positive; never how fast.
#[test]
fn bench_serve_registers_every_ue_and_reports_its_figures() {
    for bearer in ["multicast", "unicast"] {
        let out = Command::new(env!("CARGO_BIN_EXE_keysim"))
            .args(["bench", "serve", "--ues", "5", "--duration", "2", "--mtk-period-ms", "200", "--json"])
            .args(["--bearer", bearer])
            .output()
            .expect("run keysim");
        assert!(out.status.success(), "{bearer}: {}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(v["ues"], 5, "{v}");
        assert_eq!(v["bearer"], bearer);
        assert_eq!(v["ok"], true, "{v}");
        for key in ["ok_count", "registered", "with_msk", "with_mtk", "decrypting"] {
            assert_eq!(v[key], 5, "{bearer}: {key} in {v}");
        }
        assert_eq!(v["decrypt_failures"], 0, "{v}");
        // The server's own account: one bootstrapping per UE, all five registered at once.
        assert_eq!(v["serve_bootstraps"], 5, "{v}");
        assert_eq!(v["serve_registered_max"], 5, "{v}");
        assert_eq!(v["serve_exit"], "exit status: 0", "{v}");
        for key in [
            "registrations_per_s",
            "registration_window_ms",
            "mtk_fanout_mean_ms",
            "mtk_fanout_p95_ms",
            "ue_vm_hwm_kib",
            "ue_memory_per_ue_kib",
            "serve_rss_kib",
            "serve_rss_idle_kib",
            "serve_hwm_kib",
        ] {
            assert!(v[key].as_f64().is_some_and(|x| x > 0.0), "{bearer}: {key} = {}", v[key]);
        }
        // Five UEs on a 200 ms MTK period listening 2 s: several MTKs reached two UEs or more.
        assert!(v["mtk_fanout_mtks"].as_u64().is_some_and(|n| n >= 2), "{v}");
        let per_ue = v["ue_memory_per_ue_kib"].as_f64().unwrap();
        let hwm = v["ue_vm_hwm_kib"].as_f64().unwrap();
        assert!((per_ue * 5.0 - hwm).abs() < 0.01, "{per_ue} × 5 ≠ {hwm}");
        assert!(v["mtk_fanout_p95_ms"].as_f64() >= v["mtk_fanout_p50_ms"].as_f64(), "{v}");
        assert!(v["cpu"]["cores"].as_u64().is_some_and(|n| n > 0), "{v}");
    }
}

#[test]
fn bench_serve_refuses_bad_arguments() {
    for args in [&["--ues", "0"][..], &["--duration", "0"], &["--bearer", "broadcast"]] {
        let out =
            Command::new(env!("CARGO_BIN_EXE_keysim")).args(["bench", "serve"]).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(!String::from_utf8_lossy(&out.stderr).is_empty());
    }
}
