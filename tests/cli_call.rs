//! `keysim call` through the binary: SDES e2e and e2ae calls between the two built-in
//! subscribers on loopback, the JSON report's keys and values, and the KMS choice (refused cleanly
//! in a build without the KMS).

use std::process::Command;

use serde_json::Value;

const CALLER: &str = "sip:001010123456789@ims.mnc001.mcc001.3gppnetwork.org";
const CALLEE: &str = "sip:001010000000002@ims.mnc001.mcc001.3gppnetwork.org";

fn keysim(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_keysim")).args(args).output().expect("run keysim")
}

fn call_json(security: &str, packets: u32) -> Value {
    let out = keysim(&["call", "--security", security, "--json", "--packets", &packets.to_string()]);
    assert!(out.status.success(), "{security}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn check_ends(j: &Value, packets: u64) {
    for (end, impu) in [("caller", CALLER), ("callee", CALLEE)] {
        let e = &j[end];
        assert_eq!(e["impu"], impu);
        for k in ["packets_sent", "packets_received", "packets_decrypted"] {
            assert_eq!(e[k], packets, "{end}.{k}");
        }
        assert_eq!(e["packets_failed"], 0);
        assert_eq!(e["media_sha256"].as_str().map(str::len), Some(64));
    }
    // Each end decrypted exactly what the other sent.
    assert_eq!(j["caller"]["media_sha256"], j["callee"]["sent_sha256"]);
    assert_eq!(j["callee"]["media_sha256"], j["caller"]["sent_sha256"]);
    assert_ne!(j["caller"]["media_sha256"], j["callee"]["media_sha256"]);
    assert_eq!(j["media_match"], true);
    assert_eq!(j["ok"], true);
    assert!(j["signalling"]["invite_ms"].as_f64().is_some());
    assert_eq!(j["kms"], Value::Null);
}

fn check_ends_kms(j: &Value, packets: u64) {
    let mut sdes_like = j.clone();
    sdes_like["kms"] = Value::Null;
    check_ends(&sdes_like, packets);
    assert!(j["kms"].is_object(), "the KMS reports itself");
    assert_eq!(j["agw"], Value::Null);
}

#[test]
fn sdes_e2e_call() {
    let j = call_json("sdes-e2e", 30);
    assert_eq!(j["security"], "sdes-e2e");
    check_ends(&j, 30);
    assert_eq!(j["agw"], Value::Null, "e2e media does not pass the access gateway");
    assert_eq!(j["signalling"]["e2e_offers"], 1);
    assert_eq!(j["signalling"]["e2ae_offers"], 0);
}

#[test]
fn sdes_e2ae_call() {
    let j = call_json("sdes-e2ae", 25);
    assert_eq!(j["security"], "sdes-e2ae");
    check_ends(&j, 25);
    assert_eq!(j["signalling"]["network_e2ae"], true);
    assert_eq!(j["signalling"]["e2ae_offers"], 1);
    let agw = &j["agw"];
    for (dir, sender) in [("a_to_b", "caller"), ("b_to_a", "callee")] {
        assert_eq!(agw[dir]["decrypted"], 25, "{dir}");
        assert_eq!(agw[dir]["forwarded"], 25, "{dir}");
        assert_eq!(agw[dir]["failed"], 0, "{dir}");
        assert_eq!(agw[dir]["plaintext_sha256"], j[sender]["sent_sha256"], "the gateway saw the plaintext");
    }
    assert_ne!(agw["leg_a"], agw["leg_b"]);
}

#[test]
fn text_report_and_kms() {
    let out = keysim(&["call", "--security", "sdes-e2e", "--packets", "3"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("media match: true; OK"), "{text}");

    let out = keysim(&["call", "--security", "kms", "--json", "--packets", "10"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let j: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(j["security"], "kms");
    check_ends_kms(&j, 10);
    let out = keysim(&["call", "--security", "sdes-e3e"]);
    assert_eq!(out.status.code(), Some(2), "clap refuses an unknown choice");
    let out = keysim(&["call", "--security", "sdes-e2e", "--packets", "0"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `--reader` names a PC/SC reader for the caller's card: one that does not exist is a clear
/// error before anything starts (whether pcscd runs or not), and SDES, which uses no card,
/// refuses the card options.
#[test]
fn kms_reader_that_does_not_exist() {
    let out = keysim(&["call", "--security", "kms", "--reader", "keysim-no-such-reader", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("opening reader keysim-no-such-reader"), "{err}");
    assert!(out.stdout.is_empty(), "no report for a call that never started");

    let out = keysim(&["call", "--security", "kms", "--profile", "/nonexistent/keysim-profile.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--profile /nonexistent/keysim-profile.toml"));

    for security in ["sdes-e2e", "sdes-e2ae"] {
        let out = keysim(&["call", "--security", security, "--reader", "0", "--pcap", "/tmp/x.pcap"]);
        assert_eq!(out.status.code(), Some(2), "{security}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--reader, --pcap only apply to --security kms"), "{err}");
        assert!(out.stdout.is_empty());
    }
}
