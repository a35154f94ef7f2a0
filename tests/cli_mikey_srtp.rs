//! `keysim mikey` and `keysim srtp` as scripts use them, checked against independent tools:
//!
//! * MIKEY: messages built by `keysim mikey build` are written into a pcap on UDP 2269 and read
//!   back by Wireshark's MIKEY dissector (`tshark`): no malformed or expert items, and the fields
//!   tshark shows equal the ones given to `build` (the RFC 4563 Key ID bytes, which tshark shows
//!   raw, are written out by hand here). `keysim mikey decode --json` gives the same fields back.
//! * SRTP: `keysim srtp protect` output equals libsrtp's for the same keys and packets, byte for
//!   byte, and libsrtp unprotects it; `keysim srtp unprotect` opens libsrtp's packets. libsrtp runs
//!   through PyPI pylibsrtp, driven by the srtp crate's oracle script
//!   (`srtp/tests/oracle/libsrtp_oracle.py`), in the venv `<target>/pyenv-srtp` its tests use.
//!
//! A missing tshark or pylibsrtp skips the check with a printed reason, except under
//! `KEYSIM_REQUIRE_ORACLES=1`, where it fails.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

fn keysim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keysim")).args(args).output().expect("run keysim")
}

fn stdout_json(out: &Output) -> Value {
    assert!(out.status.success(), "keysim failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn stdout_text(out: &Output) -> String {
    assert!(out.status.success(), "keysim failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).expect("utf-8")
}

fn oracles_required() -> bool {
    std::env::var("KEYSIM_REQUIRE_ORACLES").is_ok_and(|v| v == "1")
}

fn oracle_missing(what: &str) {
    assert!(!oracles_required(), "{what} is required (KEYSIM_REQUIRE_ORACLES=1) but not available");
    eprintln!("skipping the {what} check: {what} not available");
}

fn runs(cmd: &str, args: &[&str]) -> bool {
    Command::new(cmd)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.trim()).unwrap_or_else(|e| panic!("{e}: {s:?}"))
}

/// xorshift64*: reproducible test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// pcap (written and read here independently of keysim's own pcap code)

const MIKEY_PORT: u16 = 2269;

fn ip_checksum(h: &[u8]) -> u16 {
    let mut s: u32 = h.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An Ethernet/IPv4/UDP frame from 10.0.0.1:port to 10.0.0.2:port, UDP checksum 0 (none).
fn udp_frame(port: u16, payload: &[u8], ip_id: u16) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
    ip[2..4].copy_from_slice(&((20 + 8 + payload.len()) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&ip_id.to_be_bytes());
    let c = ip_checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&port.to_be_bytes());
    f.extend_from_slice(&port.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

/// A classic little-endian pcap (LINKTYPE_ETHERNET) holding the frames.
fn pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    for w in [0u32, 0, 65535, 1] {
        f.extend_from_slice(&w.to_le_bytes());
    }
    for (i, frame) in frames.iter().enumerate() {
        for w in [1_700_000_000 + i as u32, 0, frame.len() as u32, frame.len() as u32] {
            f.extend_from_slice(&w.to_le_bytes());
        }
        f.extend_from_slice(frame);
    }
    f
}

/// The frames of a little-endian classic pcap.
fn pcap_frames(file: &[u8]) -> Vec<Vec<u8>> {
    assert_eq!(&file[..4], &0xa1b2_c3d4u32.to_le_bytes(), "little-endian pcap magic");
    let mut at = 24;
    let mut frames = Vec::new();
    while at < file.len() {
        let incl = u32::from_le_bytes(file[at + 8..at + 12].try_into().unwrap()) as usize;
        let orig = u32::from_le_bytes(file[at + 12..at + 16].try_into().unwrap()) as usize;
        assert_eq!(incl, orig, "whole frames");
        frames.push(file[at + 16..at + 16 + incl].to_vec());
        at += 16 + incl;
    }
    frames
}

/// The UDP payload of an Ethernet/IPv4 frame, with the IPv4 and UDP lengths checked.
fn udp_payload(frame: &[u8]) -> Vec<u8> {
    assert_eq!(&frame[12..14], &[0x08, 0x00]);
    let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
    assert_eq!(total, frame.len() - 14, "IPv4 total length");
    assert_eq!(ip_checksum(&frame[14..34]), 0, "IPv4 header checksum");
    let udp_len = usize::from(u16::from_be_bytes([frame[38], frame[39]]));
    assert_eq!(udp_len, total - 20, "UDP length");
    frame[42..].to_vec()
}

fn tshark(args: &[&str]) -> String {
    let out = Command::new("tshark")
        .env("HOME", env!("CARGO_TARGET_TMPDIR"))
        .env_remove("XDG_CONFIG_HOME")
        .args(args)
        .output()
        .expect("run tshark");
    assert!(out.status.success(), "tshark {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// One row per frame; repeated fields joined with ','.
fn tshark_fields(file: &str, extra: &[&str], names: &[&str]) -> Vec<Vec<String>> {
    let mut args = vec!["-r", file];
    args.extend_from_slice(extra);
    args.extend(["-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,"]);
    for n in names {
        args.push("-e");
        args.push(n);
    }
    tshark(&args).lines().map(|l| l.split('|').map(str::to_owned).collect()).collect()
}

/// No malformed packets and no expert warnings or errors in the file.
fn assert_tshark_clean(file: &str, extra: &[&str]) {
    let mut args = vec!["-r", file];
    args.extend_from_slice(extra);
    args.extend(["-Y", "_ws.malformed || _ws.expert.severity >= warning"]);
    assert_eq!(tshark(&args).trim(), "", "malformed or expert items in {file}");
    let mut args = vec!["-r", file, "-q", "-z", "expert"];
    args.extend_from_slice(extra);
    let expert = tshark(&args);
    assert!(!expert.lines().any(|l| l.starts_with("Errors") || l.starts_with("Warnings")), "{expert}");
}

// ---------------------------------------------------------------------------------------------
// MIKEY

const MUK: &str = "4d554b0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d";
const MSK: &str = "4d534ba0a1a2a3a4a5a6a7a8a9aaabac";
const MTK: &str = "4d544bb0b1b2b3b4b5b6b7b8b9babbbc";
const SALT: &str = "53414cc0c1c2c3c4c5c6c7c8c9ca";
const RAND: &str = "52414e44101112131415161718191a1b";
const IDI: &str = "bmsc.mnc001.mcc001.pub.3gppnetwork.org";
const IDR: &str = "dGVzdC1idGlk@bsf.mnc001.mcc001.pub.3gppnetwork.org";
const KEY_DOMAIN: &str = "00f110";
const MSK_ID: &str = "01020007";
const MTK_ID: &str = "0203";

fn build(args: &[&str]) -> String {
    let mut all = vec!["mikey", "build"];
    all.extend_from_slice(args);
    stdout_text(&keysim(&all)).trim().to_owned()
}

fn msk_message(extra: &[&str]) -> String {
    let mut a = vec![
        "msk",
        "--muk",
        MUK,
        "--idi",
        IDI,
        "--idr",
        IDR,
        "--key-domain",
        KEY_DOMAIN,
        "--msk-id",
        MSK_ID,
        "--msk",
        MSK,
        "--rand",
        RAND,
        "--csb-id",
        "01020000",
    ];
    if !extra.contains(&"--timestamp") {
        a.extend_from_slice(&["--timestamp", "41"]);
    }
    a.extend_from_slice(extra);
    build(&a)
}

fn mtk_message(extra: &[&str]) -> String {
    let mut a = vec![
        "mtk",
        "--msk",
        MSK,
        "--key-domain",
        KEY_DOMAIN,
        "--msk-id",
        MSK_ID,
        "--mtk-id",
        MTK_ID,
        "--mtk",
        MTK,
        "--salt",
        SALT,
        "--counter",
        "7",
        "--csb-id",
        "00000203",
    ];
    a.extend_from_slice(extra);
    build(&a)
}

fn pull_message() -> String {
    build(&[
        "pull",
        "--muk",
        MUK,
        "--idi",
        IDI,
        "--idr",
        IDR,
        "--key-domain",
        KEY_DOMAIN,
        "--key-group",
        "0102",
        "--timestamp",
        "42",
        "--rand",
        RAND,
    ])
}

fn decode_json(hex: &str, extra: &[&str]) -> Value {
    let mut a = vec!["mikey", "decode", "--json", hex];
    a.extend_from_slice(extra);
    stdout_json(&keysim(&a))
}

/// The payload objects of a decoded message, by type, in order.
fn payloads<'a>(v: &'a Value, ty: &str) -> Vec<&'a Value> {
    v["payloads"].as_array().expect("payloads").iter().filter(|p| p["type"] == ty).collect()
}

#[test]
fn mikey_decode_gives_back_the_fields_given_to_build() {
    let v = decode_json(&msk_message(&["--v"]), &[]);
    let types: Vec<&str> =
        v["payloads"].as_array().unwrap().iter().map(|p| p["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["HDR", "EXT", "T", "RAND", "ID", "ID", "KEMAC"]);
    let hdr = payloads(&v, "HDR")[0];
    assert_eq!(hdr["version"], 1);
    assert_eq!(hdr["data_type"], 0);
    assert_eq!(hdr["v"], true);
    assert_eq!(hdr["prf"], 0);
    assert_eq!(hdr["csb_id"], "01020000");
    assert_eq!(hdr["cs_id_map_type"], 1);
    assert_eq!(hdr["cs_id_map"], serde_json::json!([]));
    let ext = payloads(&v, "EXT")[0];
    assert_eq!(ext["ext_type"], 3);
    assert_eq!(ext["key_domain_id"], KEY_DOMAIN);
    assert_eq!(ext["msk_id"], MSK_ID);
    assert_eq!(ext["key_group"], "0102");
    assert!(ext.get("mtk_id").is_none());
    let t = payloads(&v, "T")[0];
    assert_eq!(
        (t["ts_type"].clone(), t["ts_type_name"].clone(), t["value"].clone()),
        (2.into(), "COUNTER".into(), 41.into())
    );
    assert_eq!(payloads(&v, "RAND")[0]["rand"], RAND);
    let ids = payloads(&v, "ID");
    assert_eq!((ids[0]["role"].as_str(), ids[0]["data"].as_str()), (Some("IDi"), Some(IDI)));
    assert_eq!((ids[1]["role"].as_str(), ids[1]["data"].as_str()), (Some("IDr"), Some(IDR)));
    let kemac = payloads(&v, "KEMAC")[0];
    assert_eq!(kemac["encr_alg"], 1);
    assert_eq!(kemac["mac_alg"], 1);
    assert!(kemac.get("key_data").is_none(), "encrypted key data is not shown without the MUK");
    // Offsets and lengths tile the message exactly.
    let total = msk_message(&["--v"]).len() / 2;
    let mut at = 0;
    for p in v["payloads"].as_array().unwrap() {
        assert_eq!(p["offset"], at);
        at += p["length"].as_u64().unwrap() as usize;
    }
    assert_eq!(at, total);
    assert!(v.get("verification").is_none());

    let v = decode_json(&mtk_message(&["--rand", RAND]), &[]);
    let types: Vec<&str> =
        v["payloads"].as_array().unwrap().iter().map(|p| p["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["HDR", "EXT", "T", "RAND", "KEMAC"]);
    assert_eq!(payloads(&v, "HDR")[0]["csb_id"], "00000203");
    assert_eq!(payloads(&v, "HDR")[0]["v"], false);
    let ext = payloads(&v, "EXT")[0];
    assert_eq!((ext["key_domain_id"].as_str(), ext["msk_id"].as_str()), (Some(KEY_DOMAIN), Some(MSK_ID)));
    assert_eq!(ext["mtk_id"], MTK_ID);
    assert_eq!(payloads(&v, "T")[0]["value"], 7);

    let v = decode_json(&pull_message(), &[]);
    let ext = payloads(&v, "EXT")[0];
    assert_eq!(ext["msk_id"], "01020000", "solicited pull: Key Group 0102, key number 0");
    assert_eq!(payloads(&v, "KEMAC")[0]["encr_data_len"], 0);
    assert_eq!(payloads(&v, "T")[0]["value"], 42);
}

#[test]
fn mikey_decode_verifies_and_decrypts_with_the_right_key_only() {
    let msg = msk_message(&[]);
    let v = decode_json(&msg, &["--muk", MUK]);
    let ver = &v["verification"];
    assert_eq!(
        (ver["message"].as_str(), ver["key"].as_str(), ver["mac"].as_str()),
        (Some("MSK"), Some("MUK"), Some("valid"))
    );
    assert_eq!(ver["msk_id"], MSK_ID);
    assert_eq!(ver["timestamp"], 41);
    assert!(ver.get("msk").is_none(), "keys only with --show-keys");
    let kd = &payloads(&v, "KEMAC")[0]["key_data"][0];
    assert_eq!(kd["key_len"], 16);
    assert!(kd.get("key").is_none());

    let v = decode_json(&msg, &["--muk", MUK, "--show-keys"]);
    assert_eq!(v["verification"]["msk"], MSK);
    assert_eq!(payloads(&v, "KEMAC")[0]["key_data"][0]["key"], MSK);

    let wrong = format!("{}00", &MUK[..62]);
    let out = keysim(&["mikey", "decode", "--json", &msg, "--muk", &wrong]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON even when the MAC fails");
    assert_eq!(v["verification"]["mac"], "invalid");
    assert!(String::from_utf8_lossy(&out.stderr).contains("MAC verification failed"));

    let v = decode_json(&mtk_message(&[]), &["--msk", MSK, "--show-keys"]);
    let ver = &v["verification"];
    assert_eq!((ver["message"].as_str(), ver["mac"].as_str()), (Some("MTK"), Some("valid")));
    assert_eq!((ver["mtk"].as_str(), ver["salt"].as_str()), (Some(MTK), Some(SALT)));
    assert_eq!(ver["mtk_id"], MTK_ID);
    let kd = &payloads(&v, "KEMAC")[0]["key_data"][0];
    assert_eq!((kd["key_len"].clone(), kd["salt_len"].clone()), (16.into(), 14.into()));

    let v = decode_json(&pull_message(), &["--muk", MUK]);
    assert_eq!(
        (v["verification"]["message"].as_str(), v["verification"]["key_group"].as_str()),
        (Some("solicited pull"), Some("0102"))
    );

    // The wrong kind of key is named, not tried.
    let out = keysim(&["mikey", "decode", &mtk_message(&[]), "--muk", MUK]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--msk"));
}

#[test]
fn mikey_ntp_utc_timestamp_is_shown_as_iso8601() {
    // NTP second 0xe8f3c0a0 with half a second: `date -u -d @$((0xe8f3c0a0 - 2208988800))` gives
    // 2023-11-06T19:44:32Z.
    let msg = msk_message(&["--ts-type", "ntp-utc", "--timestamp", "0xe8f3c0a080000000"]);
    let v = decode_json(&msg, &[]);
    let t = payloads(&v, "T")[0];
    assert_eq!(t["ts_type_name"], "NTP-UTC");
    assert_eq!(t["value_hex"], "e8f3c0a080000000");
    assert_eq!(t["time"], "2023-11-06T19:44:32.500000Z");
    let text = stdout_text(&keysim(&["mikey", "decode", &msg]));
    assert!(text.contains("2023-11-06T19:44:32.500000Z"), "{text}");
}

#[test]
fn mikey_built_messages_pass_tshark() {
    if !runs("tshark", &["--version"]) {
        oracle_missing("tshark");
        return;
    }
    let msgs = [
        msk_message(&["--v"]),
        mtk_message(&[]),
        pull_message(),
        msk_message(&["--ts-type", "ntp-utc", "--timestamp", "0xe8f3c0a080000000"]),
    ];
    let frames: Vec<Vec<u8>> =
        msgs.iter().enumerate().map(|(i, m)| udp_frame(MIKEY_PORT, &unhex(m), i as u16)).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mikey.pcap");
    std::fs::write(&path, pcap(&frames)).expect("write pcap");
    let file = path.to_str().unwrap();

    assert_tshark_clean(file, &[]);
    let rows = tshark_fields(
        file,
        &[],
        &[
            "frame.protocols",
            "mikey.type",
            "mikey.v.set",
            "mikey.csb_id",
            "mikey.cs_id_map_type",
            "mikey.t.ts_type",
            "mikey.rand.data",
            "mikey.id.data",
            "mikey.ext.type",
            "mikey.ext.data",
            "mikey.kemac.encr_alg",
            "mikey.kemac.key_data_len",
            "mikey.kemac.mac_alg",
            "mikey.kemac.mac",
            "mikey.t.ntp",
        ],
    );
    assert_eq!(rows.len(), msgs.len());
    for r in &rows {
        assert!(r[0].ends_with(":udp:mikey"), "{}", r[0]);
        assert_eq!(r[1], "0", "PSK init");
        assert_eq!(r[4], "1", "empty map");
        assert_eq!(r[8], "3", "Key ID extension");
        assert_eq!(r[10], "1", "AES-CM-128");
        assert_eq!(r[12], "1", "HMAC-SHA-1-160");
    }
    let tail = |m: &str| m[m.len() - 40..].to_owned();
    // RFC 4563 §4 Key ID sub-payloads, type | length | value: Key Domain ID, MSK ID[, MTK ID].
    let key_ids = format!("0003{KEY_DOMAIN}0104{MSK_ID}");
    // MSK message: V set, CSB ID, COUNTER 41, RAND, IDi, IDr, 16-byte key in 4 bytes of framing.
    assert_eq!(rows[0][2], "1");
    assert_eq!(rows[0][3], "0x01020000");
    assert_eq!(rows[0][5], "2", "COUNTER");
    assert_eq!(rows[0][6], RAND);
    assert_eq!(rows[0][7], format!("{IDI},{IDR}"));
    assert_eq!(rows[0][9], key_ids);
    assert_eq!(rows[0][11], "20", "next | type/KV | length(2) | 16-byte MSK");
    assert_eq!(rows[0][13], tail(&msgs[0]));
    // MTK message: MTK ID too, key 16 + salt 14 with their lengths.
    assert_eq!(rows[1][2], "0");
    assert_eq!(rows[1][3], "0x00000203");
    assert_eq!(rows[1][9], format!("{key_ids}0202{MTK_ID}"));
    assert_eq!(rows[1][11], "36");
    assert_eq!(rows[1][13], tail(&msgs[1]));
    // Solicited pull: key number 0, no key data.
    assert_eq!(rows[2][9], format!("0003{KEY_DOMAIN}010401020000"));
    assert_eq!(rows[2][11], "0");
    // NTP-UTC: tshark's own date.
    assert_eq!(rows[3][5], "0");
    assert!(rows[3][14].contains("2023") && rows[3][14].contains("19:44:32"), "{}", rows[3][14]);
}

#[test]
fn mikey_decode_reports_malformed_input_with_payload_and_offset() {
    let msg = unhex(&msk_message(&[]));
    // HDR 10 bytes, EXT 15 (offset 10), T 6 (offset 25), RAND 18 (offset 31): cut inside RAND.
    let out = keysim(&["mikey", "decode", &hex::encode(&msg[..40])]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("payload 3 (RAND) at offset 31") && err.contains("truncated"), "{err}");
    assert!(out.stdout.is_empty());

    let mut bad = msg.clone();
    bad[0] = 2;
    let err = String::from_utf8_lossy(&keysim(&["mikey", "decode", &hex::encode(&bad)]).stderr).into_owned();
    assert!(err.contains("HDR") && err.contains("version 2"), "{err}");

    let mut trailing = msg.clone();
    trailing.push(0);
    let err =
        String::from_utf8_lossy(&keysim(&["mikey", "decode", &hex::encode(&trailing)]).stderr).into_owned();
    assert!(err.contains(&format!("offset {}", msg.len())), "{err}");

    // Every truncation and many random corruptions: exit 0, 1 or 2, never a crash.
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut cases: Vec<Vec<u8>> = (1..msg.len()).step_by(3).map(|n| msg[..n].to_vec()).collect();
    for _ in 0..60 {
        let mut m = msg.clone();
        for _ in 0..1 + rng.below(3) {
            let at = rng.below(m.len() as u64) as usize;
            m[at] = rng.next() as u8;
        }
        cases.push(m);
    }
    for case in cases {
        let out = keysim(&["mikey", "decode", "--json", &hex::encode(&case), "--muk", MUK]);
        let code = out.status.code();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(matches!(code, Some(0..=2)), "{code:?} for {}: {err}", hex::encode(&case));
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn mikey_decode_reads_hex_or_binary_files_and_writes_raw_with_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = dir.path().join("msk.bin");
    let out = keysim(&[
        "mikey",
        "build",
        "msk",
        "--muk",
        MUK,
        "--idi",
        IDI,
        "--idr",
        IDR,
        "--key-domain",
        KEY_DOMAIN,
        "--msk-id",
        MSK_ID,
        "--msk",
        MSK,
        "--timestamp",
        "9",
        "--out",
        raw.to_str().unwrap(),
    ]);
    assert!(out.status.success() && out.stdout.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&raw).unwrap();
    assert_eq!(bytes[0], 1, "MIKEY version byte");
    let from_bin = stdout_json(&keysim(&["mikey", "decode", "--json", "--in", raw.to_str().unwrap()]));
    let text = dir.path().join("msk.hex");
    let spaced: Vec<String> = bytes.chunks(16).map(hex::encode).collect();
    std::fs::write(&text, spaced.join("\n")).unwrap();
    let from_hex = stdout_json(&keysim(&["mikey", "decode", "--json", "--in", text.to_str().unwrap()]));
    assert_eq!(from_bin, from_hex);
    // A fresh RAND of 16 bytes when none is given.
    assert_eq!(payloads(&from_bin, "RAND")[0]["rand"].as_str().map(str::len), Some(32));

    let text = stdout_text(&keysim(&["mikey", "decode", "--in", raw.to_str().unwrap(), "--muk", MUK]));
    for word in ["HDR (offset 0", "EXT (offset 10", "Key Domain ID", "KEMAC", "verification:", "mac: valid"] {
        assert!(text.contains(word), "{word:?} in:\n{text}");
    }
    let out = keysim(&[
        "mikey",
        "build",
        "msk",
        "--muk",
        MUK,
        "--idi",
        IDI,
        "--idr",
        IDR,
        "--key-domain",
        KEY_DOMAIN,
        "--msk-id",
        "01020000",
        "--msk",
        MSK,
        "--timestamp",
        "9",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("pull"));
}

// ---------------------------------------------------------------------------------------------
// libsrtp oracle (pylibsrtp), as the srtp crate's tests drive it

const PYLIBSRTP: &str = "pylibsrtp==1.0.0";

fn imports_pylibsrtp(python: &Path) -> bool {
    runs(python.to_str().unwrap_or("python3"), &["-c", "import pylibsrtp"])
}

fn python() -> Result<PathBuf, String> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Ok(p) = std::env::var("KEYSIM_PYTHON") {
                let p = PathBuf::from(p);
                return if imports_pylibsrtp(&p) {
                    Ok(p)
                } else {
                    Err(format!("{} cannot import pylibsrtp", p.display()))
                };
            }
            let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap_or(Path::new("target"));
            let venv = target.join("pyenv-srtp");
            let py = venv.join("bin").join("python");
            if imports_pylibsrtp(&py) {
                return Ok(py);
            }
            let ok = |c: &mut Command| c.status().is_ok_and(|s| s.success());
            if !ok(Command::new("python3").args(["-m", "venv"]).arg(&venv))
                || !ok(Command::new(&py).args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    PYLIBSRTP,
                ]))
            {
                return Err("cannot create the pylibsrtp venv".into());
            }
            if imports_pylibsrtp(&py) { Ok(py) } else { Err("pylibsrtp installed but not importable".into()) }
        })
        .clone()
}

struct Libsrtp {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    sessions: usize,
}

impl Libsrtp {
    fn start() -> Option<Libsrtp> {
        let python = match python() {
            Ok(p) => p,
            Err(why) => {
                assert!(!oracles_required(), "libsrtp oracle required (KEYSIM_REQUIRE_ORACLES=1): {why}");
                eprintln!("skipping the libsrtp cross-check: {why}");
                return None;
            }
        };
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("srtp/tests/oracle/libsrtp_oracle.py");
        let mut child = Command::new(&python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Some(Libsrtp { child, stdin, stdout, sessions: 0 })
    }

    fn call(&mut self, request: &str) -> Result<Vec<u8>, String> {
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{request}").expect("write");
        stdin.flush().expect("flush");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read");
        let line = line.trim_end();
        if let Some(h) = line.strip_prefix("ok") {
            Ok(unhex(h))
        } else if let Some(m) = line.strip_prefix("err ") {
            Err(m.to_owned())
        } else {
            panic!("oracle: {line:?} for {request:?}")
        }
    }

    fn session(&mut self, suite: &str, outbound: bool, key: &str, salt: &str) -> String {
        self.sessions += 1;
        let id = format!("s{}", self.sessions);
        let dir = if outbound { "out" } else { "in" };
        self.call(&format!("session {id} {suite} {dir} 128 {key}{salt}")).expect("session");
        id
    }

    fn packet(&mut self, op: &str, session: &str, p: &[u8]) -> Result<Vec<u8>, String> {
        self.call(&format!("{op} {session} {}", hex::encode(p)))
    }
}

impl Drop for Libsrtp {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// SRTP

const SUITES: [&str; 2] = ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"];

/// RTP packets of one SSRC with consecutive sequence numbers from `start` (so they may wrap), with
/// CSRCs, header extensions and padding now and then (RFC 3550 §5.1).
fn rtp_packets(rng: &mut Rng, n: usize, start: u16) -> Vec<Vec<u8>> {
    let ssrc = rng.next() as u32;
    (0..n)
        .map(|k| {
            let cc = rng.below(3) as u8;
            let ext = rng.below(4) == 0;
            let mut p = vec![0x80 | (u8::from(ext) << 4) | cc, 96];
            p.extend_from_slice(&start.wrapping_add(k as u16).to_be_bytes());
            p.extend_from_slice(&(k as u32 * 160).to_be_bytes());
            p.extend_from_slice(&ssrc.to_be_bytes());
            p.extend(rng.bytes(4 * usize::from(cc)));
            if ext {
                p.extend_from_slice(&[0xbe, 0xde, 0, 1]);
                p.extend(rng.bytes(4));
            }
            let len = rng.below(300) as usize;
            p.extend(rng.bytes(len));
            p
        })
        .collect()
}

fn rtcp_packets(rng: &mut Rng, n: usize) -> Vec<Vec<u8>> {
    let ssrc = rng.next() as u32;
    (0..n)
        .map(|_| {
            let words = 1 + rng.below(10) as usize;
            let mut p = vec![0x80, 200];
            p.extend_from_slice(&(words as u16).to_be_bytes());
            p.extend_from_slice(&ssrc.to_be_bytes());
            p.extend(rng.bytes(4 * words));
            p
        })
        .collect()
}

fn hex_lines(packets: &[Vec<u8>]) -> String {
    packets.iter().map(|p| hex::encode(p) + "\n").collect()
}

fn read_lines(path: &Path) -> Vec<Vec<u8>> {
    std::fs::read_to_string(path).expect("output").lines().map(unhex).collect()
}

struct Run {
    code: Option<i32>,
    stderr: String,
}

/// `keysim srtp OP` on files in `dir`; returns the exit status and stderr.
fn srtp(dir: &Path, op: &str, input: &[u8], format: &str, options: &[&str]) -> (Run, PathBuf) {
    let (inp, out) = (dir.join(format!("{op}-in.{format}")), dir.join(format!("{op}-out.{format}")));
    std::fs::write(&inp, input).expect("write input");
    let mut args =
        vec!["srtp", op, "--in", inp.to_str().unwrap(), "--out", out.to_str().unwrap(), "--format", format];
    args.extend_from_slice(options);
    let o = keysim(&args);
    (Run { code: o.status.code(), stderr: String::from_utf8_lossy(&o.stderr).into_owned() }, out)
}

fn key_options<'a>(suite: &'a str, key: &'a str, salt: &'a str) -> Vec<&'a str> {
    vec!["--suite", suite, "--key", key, "--salt", salt]
}

#[test]
fn srtp_protect_is_byte_exact_with_libsrtp_and_libsrtp_unprotects_it() {
    let Some(mut lib) = Libsrtp::start() else { return };
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let dir = tempfile::tempdir().expect("tempdir");
    for suite in SUITES {
        let (key, salt) = (hex::encode(rng.bytes(16)), hex::encode(rng.bytes(14)));
        let plain = rtp_packets(&mut rng, 60, 65_500);
        let tx = lib.session(suite, true, &key, &salt);
        let rx = lib.session(suite, false, &key, &salt);
        let (run, out) = srtp(
            dir.path(),
            "protect",
            hex_lines(&plain).as_bytes(),
            "hex",
            &key_options(suite, &key, &salt),
        );
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let ours = read_lines(&out);
        assert_eq!(ours.len(), plain.len());
        for (k, (p, mine)) in plain.iter().zip(&ours).enumerate() {
            let theirs = lib.packet("protect", &tx, p).expect("libsrtp protect");
            assert_eq!(hex::encode(mine), hex::encode(&theirs), "{suite} packet {}", k + 1);
            assert_eq!(&lib.packet("unprotect", &rx, mine).expect("libsrtp unprotect"), p);
        }

        // SRTCP the same way.
        let plain = rtcp_packets(&mut rng, 20);
        let (run, out) = srtp(
            dir.path(),
            "protect",
            hex_lines(&plain).as_bytes(),
            "hex",
            &[key_options(suite, &key, &salt), vec!["--rtcp"]].concat(),
        );
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        for (p, mine) in plain.iter().zip(read_lines(&out)) {
            assert_eq!(
                hex::encode(&mine),
                hex::encode(lib.packet("protect_rtcp", &tx, p).expect("protect_rtcp"))
            );
            assert_eq!(&lib.packet("unprotect_rtcp", &rx, &mine).expect("unprotect_rtcp"), p);
        }
    }
}

#[test]
fn srtp_unprotect_opens_libsrtp_packets_and_reports_tampered_and_replayed_ones() {
    let Some(mut lib) = Libsrtp::start() else { return };
    let mut rng = Rng(0xfeed_beef_0000_0042);
    let dir = tempfile::tempdir().expect("tempdir");
    for suite in SUITES {
        let (key, salt) = (hex::encode(rng.bytes(16)), hex::encode(rng.bytes(14)));
        let plain = rtp_packets(&mut rng, 12, 100);
        let tx = lib.session(suite, true, &key, &salt);
        let mut protected: Vec<Vec<u8>> =
            plain.iter().map(|p| lib.packet("protect", &tx, p).expect("libsrtp protect")).collect();
        let (run, out) = srtp(
            dir.path(),
            "unprotect",
            hex_lines(&protected).as_bytes(),
            "hex",
            &key_options(suite, &key, &salt),
        );
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        assert_eq!(read_lines(&out), plain);

        // Packet 3 tampered (one payload bit), packet 6 a copy of packet 5 (a replay).
        let last = protected.len() - 1;
        protected[2][last.min(20)] ^= 0x01;
        protected.insert(5, protected[4].clone());
        let (run, out) = srtp(
            dir.path(),
            "unprotect",
            hex_lines(&protected).as_bytes(),
            "hex",
            &key_options(suite, &key, &salt),
        );
        assert_eq!(run.code, Some(2), "two failures: {}", run.stderr);
        assert!(run.stderr.contains("packet 3: authentication failed"), "{}", run.stderr);
        assert!(run.stderr.contains("packet 6: replayed"), "{}", run.stderr);
        let mut expected = plain.clone();
        expected.remove(2);
        assert_eq!(read_lines(&out), expected, "the failed packets are not written");
    }

    // SRTCP from libsrtp.
    let (key, salt) = (hex::encode(rng.bytes(16)), hex::encode(rng.bytes(14)));
    let tx = lib.session(SUITES[0], true, &key, &salt);
    let plain = rtcp_packets(&mut rng, 10);
    let protected: Vec<Vec<u8>> = plain.iter().map(|p| lib.packet("protect_rtcp", &tx, p).unwrap()).collect();
    let (run, out) = srtp(
        dir.path(),
        "unprotect",
        hex_lines(&protected).as_bytes(),
        "hex",
        &[key_options(SUITES[0], &key, &salt), vec!["--rtcp"]].concat(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(read_lines(&out), plain);
}

#[test]
fn srtp_pcap_keeps_the_frames_and_fixes_lengths_and_checksums() {
    let Some(mut lib) = Libsrtp::start() else { return };
    let mut rng = Rng(0x1111_2222_3333_4444);
    let dir = tempfile::tempdir().expect("tempdir");
    let suite = SUITES[0];
    let (key, salt) = (hex::encode(rng.bytes(16)), hex::encode(rng.bytes(14)));
    let plain = rtp_packets(&mut rng, 8, 4000);
    // An ARP frame in the middle is not UDP: copied unchanged.
    let arp = [vec![0xff; 6], vec![2, 0, 0, 0, 0, 1, 0x08, 0x06], vec![0u8; 28]].concat();
    let mut frames: Vec<Vec<u8>> =
        plain.iter().enumerate().map(|(i, p)| udp_frame(5004, p, i as u16)).collect();
    frames.insert(3, arp.clone());
    let (run, out) = srtp(dir.path(), "protect", &pcap(&frames), "pcap", &key_options(suite, &key, &salt));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let out_frames = pcap_frames(&std::fs::read(&out).unwrap());
    assert_eq!(out_frames.len(), frames.len());
    assert_eq!(out_frames[3], arp);
    let tx = lib.session(suite, true, &key, &salt);
    let protected: Vec<Vec<u8>> = out_frames.iter().filter(|f| **f != arp).map(|f| udp_payload(f)).collect();
    for ((p, mine), (orig, new)) in plain
        .iter()
        .zip(&protected)
        .zip(frames.iter().filter(|f| **f != arp).zip(out_frames.iter().filter(|f| **f != arp)))
    {
        assert_eq!(hex::encode(mine), hex::encode(lib.packet("protect", &tx, p).unwrap()));
        assert_eq!(orig[..14], new[..14], "Ethernet header kept");
        assert_eq!(orig[26..38], new[26..38], "addresses and ports kept");
    }
    if runs("tshark", &["--version"]) {
        let file = out.to_str().unwrap();
        let checks = ["-o", "udp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE"];
        assert_tshark_clean(file, &checks);
        let rows =
            tshark_fields(file, &checks, &["udp.payload", "udp.checksum.status", "ip.checksum.status"]);
        let udp_rows: Vec<&Vec<String>> = rows.iter().filter(|r| !r[0].is_empty()).collect();
        assert_eq!(udp_rows.len(), protected.len());
        for (r, p) in udp_rows.iter().zip(&protected) {
            assert_eq!(r[0], hex::encode(p), "tshark reads the same payload");
            // PROTO_CHECKSUM_E_GOOD is 1 (0 bad, 2 unverified).
            assert_eq!((r[1].as_str(), r[2].as_str()), ("1", "1"), "checksums verified good");
        }
    } else {
        oracle_missing("tshark");
    }

    // And back: keysim unprotects its own pcap into the original frames' payloads.
    let (run, back) = srtp(
        dir.path(),
        "unprotect",
        &std::fs::read(&out).unwrap(),
        "pcap",
        &key_options(suite, &key, &salt),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let back: Vec<Vec<u8>> = pcap_frames(&std::fs::read(&back).unwrap())
        .iter()
        .filter(|f| **f != arp)
        .map(|f| udp_payload(f))
        .collect();
    assert_eq!(back, plain);
}

/// RFC 3711 §3.1: the MKI sits between the encrypted portion and the tag and is not authenticated,
/// so a packet with MKI is libsrtp's packet without MKI with the MKI inserted before the tag.
#[test]
fn srtp_mki_sits_before_the_tag() {
    let Some(mut lib) = Libsrtp::start() else { return };
    let mut rng = Rng(0x7777_0000_1234_5678);
    let dir = tempfile::tempdir().expect("tempdir");
    let suite = SUITES[1];
    let (key, salt) = (hex::encode(rng.bytes(16)), hex::encode(rng.bytes(14)));
    let mki = "00010203";
    let plain = rtp_packets(&mut rng, 10, 1);
    let (run, out) = srtp(
        dir.path(),
        "protect",
        hex_lines(&plain).as_bytes(),
        "hex",
        &[key_options(suite, &key, &salt), vec!["--mki", mki]].concat(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let tx = lib.session(suite, true, &key, &salt);
    let ours = read_lines(&out);
    for (p, mine) in plain.iter().zip(&ours) {
        let theirs = lib.packet("protect", &tx, p).unwrap();
        let (body, tag) = theirs.split_at(theirs.len() - 4);
        assert_eq!(hex::encode(mine), format!("{}{mki}{}", hex::encode(body), hex::encode(tag)));
    }
    // A different MKI on receipt names no key.
    let (run, _) = srtp(
        dir.path(),
        "unprotect",
        hex_lines(&ours).as_bytes(),
        "hex",
        &[key_options(suite, &key, &salt), vec!["--mki", "00010204"]].concat(),
    );
    assert_eq!(run.code, Some(10), "{}", run.stderr);
    assert!(run.stderr.contains("packet 1: unknown MKI"), "{}", run.stderr);
}

#[test]
fn srtp_errors_of_the_run_have_their_own_exit_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = "00112233445566778899aabbccddeeff";
    let salt = "0011223344556677889900112233";
    let (run, _) = srtp(dir.path(), "protect", b"8000", "hex", &["--key", "0011", "--salt", salt]);
    assert_eq!(run.code, Some(64), "{}", run.stderr);
    assert!(run.stderr.contains("--key"), "{}", run.stderr);
    let (run, _) = srtp(dir.path(), "protect", b"8000", "hex", &["--key", key, "--salt", salt, "--kdr", "3"]);
    assert_eq!(run.code, Some(64), "{}", run.stderr);
    let (run, _) =
        srtp(dir.path(), "protect", b"not a pcap at all, just text", "pcap", &["--key", key, "--salt", salt]);
    assert_eq!(run.code, Some(65), "{}", run.stderr);
    let o = keysim(&[
        "srtp",
        "protect",
        "--key",
        key,
        "--salt",
        salt,
        "--in",
        "/nonexistent/x",
        "--out",
        "/tmp/x",
    ]);
    assert_eq!(o.status.code(), Some(66));
    // A packet that is no RTP, and a line that is no hex, are failures of those packets only.
    let (run, out) = srtp(
        dir.path(),
        "protect",
        b"# comment\n8000\nzz\n800000010000000000000001abcd\n",
        "hex",
        &["--key", key, "--salt", salt],
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("packet 1:") && run.stderr.contains("packet 2:"), "{}", run.stderr);
    assert_eq!(read_lines(&out).len(), 1);
}
