//! `keysim bench --json`: the shape of the report (keys and types), never the figures: timing
//! depends on the machine, so nothing here asserts a speed.

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
        .args(["bench", "--json", "--seconds", "0.05"])
        .output()
        .expect("run keysim");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let obj = v.as_object().expect("object");

    // Always measured: positive packet rates and their ratio to the crypto budget.
    for key in ["srtp_protect_pps", "srtp_unprotect_pps", "crypto_budget_pps", "srtp_vs_crypto_budget"] {
        let x = v[key].as_f64().unwrap_or_else(|| panic!("{key} is a number: {}", v[key]));
        assert!(x > 0.0, "{key} = {x}");
    }
    for key in ["srtp_protect_vs_crypto_budget", "srtp_unprotect_vs_crypto_budget"] {
        assert!(v[key].is_number(), "{key}");
    }
    assert_eq!(v["payload_bytes"], 1200);
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
        ("openssl_hmac_sha1_1200_Bps", "openssl hmac"),
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

#[test]
fn bench_refuses_a_bad_duration() {
    let out = Command::new(env!("CARGO_BIN_EXE_keysim"))
        .args(["bench", "--seconds", "0"])
        .output()
        .expect("run keysim");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--seconds"));
}
