//! Cross-checks against an independent Python implementation run at test time: the RFC 3830
//! §4.1.2 PRF written with Python's `hmac`/`hashlib`, and a Python reader of MSK, MTK and
//! verification messages that parses the wire format itself, derives the transport keys, checks
//! the HMAC-SHA-1 MAC and decrypts the KEMAC with AES-CTR (the `cryptography` package, or the
//! `openssl enc` command when that package is missing).
//!
//! Without python3 the tests are skipped with a message, or fail under KEYSIM_REQUIRE_ORACLES=1.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::*;
use mikey::mbms::{
    Msk, Mtk, MtkSalt, Muk, build_msk_message, build_mtk_message, build_solicited_pull,
    build_verification_message, parse_msk_message,
};
use mikey::prf::{PrfFunc, prf_with_label_parts};

/// The Python MIKEY reader the tests of several crates share (the one copy lives in test-kit,
/// which depends on this crate, so it is included by path here).
const ORACLE: &str = include_str!("../../test-kit/oracles/mikey.py");

fn python() -> Option<&'static str> {
    if runs("python3", &["-c", "import hmac, hashlib"]) {
        Some("python3")
    } else {
        oracle_missing("python3 (with hmac, hashlib)");
        None
    }
}

fn run_oracle(py: &str, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(py)
        .arg("-c")
        .arg(ORACLE)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("python3 output");
    assert!(out.status.success(), "oracle failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn prf_matches_python_reimplementation() {
    let Some(py) = python() else { return };
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut cases = Vec::new();
    let mut input = String::new();
    // Inkey lengths around the 256-bit chunk boundaries, outputs around the 160/256-bit blocks.
    for &klen in &[1usize, 16, 20, 31, 32, 33, 48, 63, 64, 65, 100] {
        for &olen in &[1usize, 14, 16, 20, 21, 32, 33, 40, 41, 64, 100] {
            let func = if rng.below(2) == 0 { PrfFunc::MikeyHmacSha1 } else { PrfFunc::HmacSha256 };
            let key = rng.bytes(klen);
            let llen = 9 + rng.below(40);
            let label = rng.bytes(llen);
            let mut ours = vec![0u8; olen];
            prf_with_label_parts(func, &key, &[&label], &mut ours).expect("prf");
            let h = if func == PrfFunc::MikeyHmacSha1 { "sha1" } else { "sha256" };
            input.push_str(&format!("{h} {} {} {olen}\n", hex::encode(&key), hex::encode(&label)));
            cases.push(hex::encode(ours));
        }
    }
    let out = run_oracle(py, &["prf"], &input);
    let theirs: Vec<&str> = out.lines().collect();
    assert_eq!(theirs.len(), cases.len());
    for (i, (a, b)) in cases.iter().zip(theirs).enumerate() {
        assert_eq!(a, b, "case {i}");
    }
}

fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key} in oracle output:\n{out}"))
}

#[test]
fn msk_message_opens_in_python() {
    let Some(py) = python() else { return };
    let mut buf = [0u8; 512];
    let n =
        build_msk_message(&Muk::new(MUK), &msk_params(true, 41), &Msk::new(MSK), &mut buf).expect("build");
    let out = run_oracle(py, &["open", &hex::encode(MUK), &hex::encode(&buf[..n])], "");
    assert_eq!(field(&out, "mac_ok"), "1", "{out}");
    assert_eq!(field(&out, "key"), hex::encode(MSK));
    assert_eq!(field(&out, "type"), "0", "MSK is carried as TGK");
    assert_eq!(field(&out, "kv"), "2");
    assert_eq!(field(&out, "kvdata"), "02000102ffff");
    assert_eq!(field(&out, "next"), "0");
    assert!(out.contains(&format!("keyid=3:0:{}", hex::encode(KEY_DOMAIN.0))), "{out}");
    assert!(out.contains(&format!("keyid=3:1:{}", hex::encode(MSK_ID.to_bytes()))), "{out}");
    assert_eq!(field(&out, "ids"), format!("{},{}", hex::encode(BMSC_FQDN), hex::encode(B_TID)));
    assert_eq!(field(&out, "csb"), MSK_CSB.to_string());
    assert_eq!(field(&out, "v"), "1");
    assert_eq!(field(&out, "ts"), "00000029");

    // The verification message the card would return.
    let msg = parse_msk_message(&buf[..n]).expect("parse");
    let mut ver = [0u8; 256];
    let vn = build_verification_message(&Muk::new(MUK), &msg, &mut ver).expect("ver");
    let out =
        run_oracle(py, &["ver", &hex::encode(MUK), &hex::encode(&buf[..n]), &hex::encode(&ver[..vn])], "");
    assert_eq!(field(&out, "ver_ok"), "1", "{out}");
    assert_eq!(field(&out, "dtype"), "1");
    assert_eq!(field(&out, "t_same"), "1");
    assert_eq!(field(&out, "csb_same"), "1");
}

#[test]
fn solicited_pull_opens_in_python() {
    let Some(py) = python() else { return };
    let mut buf = [0u8; 512];
    let n = build_solicited_pull(&Muk::new(MUK), &pull_params(42), &mut buf).expect("build");
    let out = run_oracle(py, &["open", &hex::encode(MUK), &hex::encode(&buf[..n])], "");
    assert_eq!(field(&out, "mac_ok"), "1", "{out}");
    assert_eq!(field(&out, "plain_len"), "0");
    let pull_id = ((MSK_ID.key_group() as u32) << 16).to_be_bytes();
    assert!(out.contains(&format!("keyid=3:1:{}", hex::encode(pull_id))), "{out}");
}

#[test]
fn mtk_message_opens_in_python() {
    let Some(py) = python() else { return };
    for streaming in [false, true] {
        let mut buf = [0u8; 512];
        let n = build_mtk_message(
            &Msk::new(MSK),
            &mtk_params(7, streaming),
            &Mtk::new(MTK),
            Some(&MtkSalt::new(SALT)),
            &mut buf,
        )
        .expect("build");
        let out = run_oracle(py, &["open", &hex::encode(MSK), &hex::encode(&buf[..n])], "");
        assert_eq!(field(&out, "mac_ok"), "1", "{out}");
        assert_eq!(field(&out, "key"), hex::encode(MTK));
        assert_eq!(field(&out, "salt"), hex::encode(SALT));
        assert_eq!(field(&out, "type"), "1", "TGK+SALT");
        assert!(out.contains(&format!("keyid=3:2:{}", hex::encode(&MTK_ID.0.to_be_bytes()[2..]))), "{out}");
        assert_eq!(field(&out, "v"), "0");
    }
}
