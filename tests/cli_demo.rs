//! `keysim demo` as scripts use it (TS 33.246 §6 end to end on loopback): the JSON shape the
//! MBMS issue names, exit codes, and bad arguments. The media check is redone here from the
//! source: SHA-256 over the test-signal frames `network::bmsc_stream` sends.

use std::process::{Command, Output};

use sha2::{Digest, Sha256};

fn keysim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keysim")).args(args).output().expect("run keysim")
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "keysim failed ({:?}): {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// The steps of the issue, in order.
const STEPS: [&str; 11] = [
    "power_on",
    "gba_bootstrap",
    "naf_derivation",
    "registration",
    "msk_push",
    "mtk_update",
    "media",
    "msk_rotation",
    "solicited_pull",
    "deregistration",
    "media_check",
];

/// SHA-256 over test-signal frames 0..n: what a UE that decrypted every packet of one stream in
/// order must have hashed.
fn source_digest(n: u64) -> String {
    let mut h = Sha256::new();
    for k in 0..n {
        h.update(network::bmsc_stream::test_signal_frame(k));
    }
    hex::encode(h.finalize())
}

#[test]
fn demo_both_paths_json() {
    let v = json(&keysim(&["demo", "--json", "--duration", "0.4", "-q"]));
    assert_eq!(v["ok"], true);
    assert_eq!(v["media_identical_across_paths"], true);
    let paths = v["paths"].as_object().expect("paths object");
    let mut names: Vec<&str> = paths.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["me", "uicc"]);
    for (name, gba) in [("uicc", "GBA_U"), ("me", "GBA_ME")] {
        let p = &paths[name];
        for key in [
            "ok",
            "packets_received",
            "packets_decrypted",
            "packets_failed",
            "media_match",
            "msk_count",
            "mtk_count",
            "steps",
            "latency_ms",
        ] {
            assert!(p.get(key).is_some(), "{name}: no {key}");
        }
        assert_eq!(p["ok"], true, "{name}");
        assert_eq!(p["gba"], gba);
        let sent = p["packets_sent"].as_u64().expect("packets_sent");
        assert!(sent > 0);
        assert_eq!(p["packets_received"].as_u64(), Some(sent), "{name}");
        assert_eq!(p["packets_decrypted"].as_u64(), Some(sent), "{name}");
        assert_eq!(p["packets_failed"].as_u64(), Some(0), "{name}");
        assert_eq!(p["media_match"], true);
        assert_eq!(p["media_sha256"].as_str(), Some(source_digest(sent).as_str()), "{name}");
        // Registration push, rotation, solicited pull; one MTK per second of media plus one
        // after the rotation.
        assert_eq!(p["msk_count"].as_u64(), Some(3), "{name}");
        assert_eq!(p["mtk_count"].as_u64(), Some(2), "{name}");
        assert_eq!(p["basic_msk_requests"].as_u64(), Some(1), "{name}");
        let steps: Vec<&str> =
            p["steps"].as_array().expect("steps").iter().map(|s| s["name"].as_str().expect("name")).collect();
        assert_eq!(steps, STEPS);
        for s in p["steps"].as_array().expect("steps") {
            assert_eq!(s["ok"], true, "{s}");
            assert!(s["latency_ms"].as_f64().expect("latency") >= 0.0);
            assert_eq!(p["latency_ms"][s["name"].as_str().expect("name")], s["latency_ms"]);
        }
        // B-TID = base64(RAND)@BSF domain (TS 33.220 §4.5.2): 16 octets of RAND.
        let btid = p["btid"].as_str().expect("btid");
        let (rand, domain) = btid.split_once('@').expect("B-TID has @");
        assert_eq!(rand.len(), 24, "{btid}");
        assert!(rand.ends_with("=="), "{btid}");
        assert!(!domain.is_empty());
        assert!(p["time_to_first_media_ms"].as_f64().expect("time to first media") > 0.0);
    }
    // The UICC-based path ran MSK update and MTK generation on the card: more APDUs.
    assert!(paths["uicc"]["apdus"].as_u64() > paths["me"]["apdus"].as_u64());
}

#[test]
fn demo_one_path_several_services() {
    let v =
        json(&keysim(&["demo", "--path", "uicc", "--services", "3", "--json", "--duration", "0.2", "-q"]));
    let paths = v["paths"].as_object().expect("paths");
    assert_eq!(paths.keys().collect::<Vec<_>>(), ["uicc"]);
    assert_eq!(v["media_identical_across_paths"], serde_json::Value::Null);
    let p = &paths["uicc"];
    assert_eq!(p["ok"], true);
    // Three services: each got its MSK at registration, at the rotation and after the pull.
    assert_eq!(p["msk_count"].as_u64(), Some(9));
    assert_eq!(p["mtk_count"].as_u64(), Some(6));
    assert_eq!(p["basic_msk_requests"].as_u64(), Some(3));
    let sent = p["packets_sent"].as_u64().expect("sent");
    assert_eq!(sent % 3, 0);
    assert_eq!(p["packets_decrypted"].as_u64(), Some(sent));
}

#[test]
fn demo_table_and_step_log() {
    let out = keysim(&["demo", "--path", "me", "--duration", "0.2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("ME-based") && stdout.contains("every step succeeded"), "{stdout}");
    for step in STEPS {
        assert!(stderr.contains(step), "step log lacks {step}: {stderr}");
    }
}

#[test]
fn demo_refuses_bad_arguments() {
    for args in [
        &["demo", "--duration", "0"][..],
        &["demo", "--duration", "-1"],
        &["demo", "--duration", "nan"],
        &["demo", "--services", "0"],
        &["demo", "--services", "17"],
        &["demo", "--path", "sideways"],
        &["demo", "--profile", "/nonexistent/profile.toml"],
    ] {
        let out = keysim(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(!out.stderr.is_empty(), "{args:?}: no reason given");
        assert!(out.stdout.is_empty(), "{args:?}: printed a result");
    }
}

#[test]
fn demo_streams_a_media_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("speech.ul");
    // 1000 octets of "µ-law" (any octets): 6 frames of 160 and one of 40, then again from the start.
    let bytes: Vec<u8> = (0..1000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    std::fs::write(&path, &bytes).expect("write media");
    let path = path.to_str().expect("utf-8 path");
    let v = json(&keysim(&["demo", "--path", "me", "--media", path, "--json", "--duration", "0.3", "-q"]));
    let p = &v["paths"]["me"];
    assert_eq!(p["ok"], true);
    let sent = p["packets_sent"].as_u64().expect("sent");
    assert!(sent > 7, "the file wraps around");
    let chunks: Vec<&[u8]> = bytes.chunks(160).collect();
    let mut h = Sha256::new();
    for k in 0..sent as usize {
        h.update(chunks[k % chunks.len()]);
    }
    assert_eq!(p["media_sha256"].as_str(), Some(hex::encode(h.finalize()).as_str()));
    let empty = dir.path().join("empty.ul");
    std::fs::write(&empty, b"").expect("write");
    let out = keysim(&["demo", "--media", empty.to_str().expect("utf-8"), "-q"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty media file"));
}

#[test]
fn demo_over_a_multicast_bearer_on_loopback() {
    let out = keysim(&["demo", "--multicast", "--path", "uicc", "--json", "--duration", "0.2"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let v = json(&out);
    assert!(stderr.contains("multicast bearer: MTK 239.255.77.77:"), "{stderr}");
    let p = &v["paths"]["uicc"];
    assert_eq!(p["ok"], true);
    let sent = p["packets_sent"].as_u64().expect("sent");
    assert_eq!(p["packets_decrypted"].as_u64(), Some(sent));
    assert_eq!(p["media_sha256"].as_str(), Some(source_digest(sent).as_str()));
}

/// `--signalling sip` (TS 26.237 §10.4.2): registration, the solicited pull's MSK request and
/// deregistration go over SIP through the P-CSCF to the SCF, as the SCF's own counters show; the
/// media still equal the source on both paths.
#[test]
fn demo_with_sip_signalling() {
    let v = json(&keysim(&["demo", "--signalling", "sip", "--json", "--duration", "0.3", "-q"]));
    assert_eq!(v["ok"], true);
    assert_eq!(v["media_identical_across_paths"], true);
    for name in ["uicc", "me"] {
        let p = &v["paths"][name];
        assert_eq!(p["signalling"], "sip", "{name}");
        assert_eq!(p["scf_invites"].as_u64(), Some(1), "{name}: one INVITE registers");
        // The MSK request after the solicited pull and the deregistration are re-INVITEs.
        assert_eq!(p["scf_reinvites"].as_u64(), Some(2), "{name}");
        assert_eq!(p["scf_bmsc_requests"].as_u64(), Some(3), "{name}");
        let sent = p["packets_sent"].as_u64().expect("sent");
        assert_eq!(p["packets_decrypted"].as_u64(), Some(sent));
        assert_eq!(p["media_sha256"].as_str(), Some(source_digest(sent).as_str()));
    }
    let http = json(&keysim(&["demo", "--path", "me", "--json", "--duration", "0.1", "-q"]));
    assert_eq!(http["paths"]["me"]["signalling"], "http");
    assert_eq!(http["paths"]["me"]["scf_invites"], serde_json::Value::Null);
}
