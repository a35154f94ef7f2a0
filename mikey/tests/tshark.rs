//! Wireshark's MIKEY dissector as an independent decoder: the messages built here are written into
//! a pcap (UDP port 2269, the MIKEY port Wireshark decodes by default), read back with
//! `tshark`, and every frame must decode as MIKEY without malformed-packet or expert items, with
//! field values equal to what was built.
//!
//! tshark 4.0 knows every RFC 3830 payload and IDR (RFC 6043), but not the RFC 4563 Key ID
//! extension contents (it shows the raw data) nor the empty map name; those raw bytes are compared
//! against the RFC 4563 layout written out by hand below. AES-CM-encrypted key data stays opaque
//! to tshark, so one extra frame uses NULL encryption to let it decode a Key data sub-payload.
//!
//! Without tshark the test is skipped with a message, or fails under KEYSIM_REQUIRE_ORACLES=1.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;
use mikey::kemac::KemacProtection;
use mikey::mbms::{
    Msk, Mtk, MtkSalt, Muk, build_msk_message, build_mtk_message, build_solicited_pull,
    build_verification_message, parse_msk_message,
};
use mikey::{
    CsIdMap, DataType, EncrAlg, ErrPayload, ErrorNo, Hdr, IdRole, IdType, Idr, KeyData, KeyType, KeyValidity,
    MacAlg, MessageBuilder, Payload, PrfFunc, Rand, Timestamp, TransportKeys,
};

const MIKEY_PORT: u16 = 2269;

/// A classic pcap file (LINKTYPE_ETHERNET) with one IPv4/UDP datagram per payload.
fn pcap(datagrams: &[Vec<u8>]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&4u16.to_le_bytes());
    f.extend_from_slice(&0i32.to_le_bytes());
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&65535u32.to_le_bytes());
    f.extend_from_slice(&1u32.to_le_bytes());
    for (i, d) in datagrams.iter().enumerate() {
        let mut frame = Vec::new();
        frame.extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0x08, 0x00]);
        let total = (20 + 8 + d.len()) as u16;
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[4..6].copy_from_slice(&(i as u16 + 1).to_be_bytes());
        let mut sum: u32 = ip.chunks(2).map(|c| u32::from(u16::from_be_bytes([c[0], c[1]]))).sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&MIKEY_PORT.to_be_bytes());
        frame.extend_from_slice(&MIKEY_PORT.to_be_bytes());
        frame.extend_from_slice(&(8 + d.len() as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]); // no UDP checksum (allowed over IPv4)
        frame.extend_from_slice(d);
        f.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        f.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        f.extend_from_slice(&frame);
    }
    f
}

fn tshark(args: &[&str]) -> String {
    let out = Command::new("tshark")
        .env("HOME", env!("CARGO_TARGET_TMPDIR"))
        .env_remove("XDG_CONFIG_HOME")
        .args(args)
        .output()
        .expect("run tshark");
    assert!(out.status.success(), "tshark {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// One row per frame; each field's occurrences joined with ','.
fn fields(file: &str, names: &[&str]) -> Vec<Vec<String>> {
    let mut args =
        vec!["-r", file, "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,"];
    for n in names {
        args.push("-e");
        args.push(n);
    }
    tshark(&args).lines().map(|l| l.split('|').map(str::to_owned).collect()).collect()
}

/// A generic (non-MBMS) PSK message with NULL encryption so that tshark decodes the Key data
/// sub-payload: NTP-UTC timestamp, RAND, IDR, and a TEK+SALT key with a KV interval.
fn null_kemac_message(out: &mut [u8]) -> usize {
    let keys = TransportKeys::derive(PrfFunc::MikeyHmacSha1, &MUK, 0x0bad_cafe, &RAND).expect("keys");
    let hdr = Hdr {
        data_type: DataType::PSK_INIT,
        v: false,
        prf: PrfFunc::MikeyHmacSha1,
        csb_id: 0x0bad_cafe,
        cs_id_map: CsIdMap::Empty { cs_count: 0 },
    };
    let mut b = MessageBuilder::new(out, &hdr).expect("hdr");
    b.push(&Payload::Timestamp(Timestamp::NtpUtc(0xe8f3_c0a0_8000_0000)))
        .expect("t")
        .push(&Payload::Rand(Rand { rand: &RAND }))
        .expect("rand")
        .push(&Payload::Idr(Idr { role: IdRole::KMS, id_type: IdType::URI, data: b"sip:kms@example.org" }))
        .expect("idr");
    let key = KeyData {
        key_type: KeyType::Tek,
        key: &MTK,
        salt: Some(&SALT),
        kv: KeyValidity::Interval { from: &[0, 0, 0, 0, 0, 1], to: &[0, 0, 0, 0, 0xff, 0xff] },
    };
    let prot = KemacProtection {
        encr_alg: EncrAlg::Null,
        mac_alg: MacAlg::HmacSha1_160,
        keys: &keys,
        csb_id: 0x0bad_cafe,
        timestamp: 0xe8f3_c0a0_8000_0000,
    };
    b.push_kemac(&prot, &[key]).expect("kemac");
    b.finish()
}

fn error_message(out: &mut [u8]) -> usize {
    let hdr = Hdr {
        data_type: DataType::ERROR,
        v: false,
        prf: PrfFunc::MikeyHmacSha1,
        csb_id: MSK_CSB,
        cs_id_map: CsIdMap::Empty { cs_count: 0 },
    };
    let mut b = MessageBuilder::new(out, &hdr).expect("hdr");
    b.push(&Payload::Timestamp(Timestamp::Counter(41)))
        .expect("t")
        .push(&Payload::Err(ErrPayload { error_no: ErrorNo::INVALID_MAC }))
        .expect("err");
    b.finish()
}

fn temp_pcap(bytes: &[u8]) -> PathBuf {
    let p = std::env::temp_dir().join(format!("mikey-tshark-{}.pcap", std::process::id()));
    std::fs::write(&p, bytes).expect("write pcap");
    p
}

#[test]
fn tshark_decodes_built_messages() {
    if !runs("tshark", &["--version"]) {
        oracle_missing("tshark");
        return;
    }
    let mut msgs: Vec<Vec<u8>> = Vec::new();
    let mut buf = [0u8; 1024];
    // 1: MSK message with V bit.
    let n = build_msk_message(&Muk::new(MUK), &msk_params(true, 41), &Msk::new(MSK), &mut buf).expect("msk");
    msgs.push(buf[..n].to_vec());
    // 2: its verification message.
    let msk_bytes = msgs[0].clone();
    let msk_msg = parse_msk_message(&msk_bytes).expect("parse msk");
    let n = build_verification_message(&Muk::new(MUK), &msk_msg, &mut buf).expect("ver");
    msgs.push(buf[..n].to_vec());
    // 3: MTK message for download (empty map, no SP).
    let salt = MtkSalt::new(SALT);
    let n = build_mtk_message(&Msk::new(MSK), &mtk_params(7, false), &Mtk::new(MTK), Some(&salt), &mut buf)
        .expect("mtk");
    msgs.push(buf[..n].to_vec());
    // 4: MTK message for streaming (SRTP-ID map and SP).
    let n = build_mtk_message(&Msk::new(MSK), &mtk_params(8, true), &Mtk::new(MTK), Some(&salt), &mut buf)
        .expect("mtk");
    msgs.push(buf[..n].to_vec());
    // 5: solicited pull.
    let n = build_solicited_pull(&Muk::new(MUK), &pull_params(42), &mut buf).expect("pull");
    msgs.push(buf[..n].to_vec());
    // 6: NULL-encrypted generic message; 7: error message.
    let n = null_kemac_message(&mut buf);
    msgs.push(buf[..n].to_vec());
    let n = error_message(&mut buf);
    msgs.push(buf[..n].to_vec());

    let path = temp_pcap(&pcap(&msgs));
    let file = path.to_str().expect("path");

    // Framing: every frame is MIKEY, nothing malformed, no expert items.
    let rows = fields(file, &["frame.number", "frame.protocols", "mikey.version"]);
    assert_eq!(rows.len(), msgs.len());
    for r in &rows {
        assert!(r[1].ends_with(":udp:mikey"), "frame {} protocols {}", r[0], r[1]);
        assert_eq!(r[2], "1");
    }
    assert_eq!(tshark(&["-r", file, "-Y", "_ws.malformed || _ws.expert"]).trim(), "");
    let expert = tshark(&["-r", file, "-q", "-z", "expert"]);
    assert!(
        !expert.lines().any(|l| l.starts_with("Errors") || l.starts_with("Warnings")),
        "expert info:\n{expert}"
    );
    let verbose = tshark(&["-r", file, "-V", "-O", "mikey"]);
    assert!(!verbose.contains("Malformed"), "{verbose}");

    // Header and payload fields.
    let f = fields(
        file,
        &[
            "mikey.type",
            "mikey.v.set",
            "mikey.prf_func",
            "mikey.csb_id",
            "mikey.cs_count",
            "mikey.cs_id_map_type",
            "mikey.t.ts_type",
            "mikey.rand.data",
            "mikey.id.type",
            "mikey.id.data",
            "mikey.ext.type",
            "mikey.ext.data",
            "mikey.kemac.encr_alg",
            "mikey.kemac.key_data_len",
            "mikey.kemac.key_data",
            "mikey.kemac.mac_alg",
            "mikey.kemac.mac",
            "mikey.v.auth_alg",
            "mikey.v.ver_data",
            "mikey.srtp_id.ssrc",
            "mikey.sp.encr_alg",
            "mikey.sp.auth_tag_len",
        ],
    );
    let col = |frame: usize, name: &str| -> String {
        let names = [
            "type", "v", "prf", "csb", "cs_count", "map", "ts_type", "rand", "id_type", "id", "ext_type",
            "ext", "encr", "kd_len", "kd", "mac_alg", "mac", "v_alg", "v_data", "ssrc", "sp_encr", "sp_tag",
        ];
        let i = names.iter().position(|n| *n == name).expect("column");
        f[frame][i].clone()
    };
    let hexs = |b: &[u8]| hex::encode(b);
    let tail = |m: &[u8], n: usize| hex::encode(&m[m.len() - n..]);

    // Frame 1: MSK message.
    assert_eq!(col(0, "type"), "0");
    assert_eq!(col(0, "v"), "1");
    assert_eq!(col(0, "prf"), "0");
    assert_eq!(col(0, "csb"), format!("0x{MSK_CSB:08x}"));
    assert_eq!(col(0, "cs_count"), "0");
    assert_eq!(col(0, "map"), "1");
    assert_eq!(col(0, "ts_type"), "2");
    assert_eq!(col(0, "rand"), hexs(&RAND));
    assert_eq!(col(0, "id_type"), "1,0");
    assert_eq!(
        col(0, "id"),
        format!("{},{}", String::from_utf8_lossy(BMSC_FQDN), String::from_utf8_lossy(B_TID))
    );
    assert_eq!(col(0, "ext_type"), "3");
    // RFC 4563 §4 Key ID sub-payloads, written out by hand: type 0 (Key Domain ID, 3 bytes),
    // type 1 (MSK ID, 4 bytes).
    assert_eq!(col(0, "ext"), "000300f11001040102 0007".replace(' ', ""));
    assert_eq!(col(0, "encr"), "1");
    // Key data: next(1) type/kv(1) len(2) MSK(16) VF len(1) VF(2) VT len(1) VT(2) = 26 bytes.
    assert_eq!(col(0, "kd_len"), "26");
    assert_eq!(col(0, "mac_alg"), "1");
    assert_eq!(col(0, "mac"), tail(&msgs[0], 20));
    assert_eq!(col(0, "kd"), hex::encode(&msgs[0][msgs[0].len() - 21 - 26..msgs[0].len() - 21]));

    // Frame 2: verification message.
    assert_eq!(col(1, "type"), "1");
    assert_eq!(col(1, "v"), "0");
    assert_eq!(col(1, "csb"), format!("0x{MSK_CSB:08x}"));
    assert_eq!(col(1, "ts_type"), "2");
    assert_eq!(col(1, "id"), String::from_utf8_lossy(B_TID));
    assert_eq!(col(1, "v_alg"), "1");
    assert_eq!(col(1, "v_data"), tail(&msgs[1], 20));

    // Frames 3 and 4: MTK messages.
    for (frame, map) in [(2, "1"), (3, "0")] {
        assert_eq!(col(frame, "type"), "0");
        assert_eq!(col(frame, "v"), "0");
        assert_eq!(col(frame, "csb"), format!("0x{MTK_CSB:08x}"));
        assert_eq!(col(frame, "map"), map);
        assert_eq!(col(frame, "ext_type"), "3");
        assert_eq!(col(frame, "ext"), "000300f1100104010200070202 0203".replace(' ', ""));
        // next(1) type/kv(1) len(2) MTK(16) salt len(2) salt(14) = 36 bytes.
        assert_eq!(col(frame, "kd_len"), "36");
        assert_eq!(col(frame, "mac"), tail(&msgs[frame], 20));
    }
    assert_eq!(col(2, "cs_count"), "0");
    assert_eq!(col(3, "cs_count"), "1");
    assert_eq!(col(3, "ssrc"), "0x12345678");
    assert_eq!(col(3, "sp_encr"), "1");
    assert_eq!(col(3, "sp_tag"), "10");

    // Frame 5: solicited pull: MSK ID = Key Group || 0x0000, no key data, MAC only.
    assert_eq!(col(4, "ext"), "000300f11001040102 0000".replace(' ', ""));
    assert_eq!(col(4, "kd_len"), "0");
    assert!(matches!(col(4, "kd").as_str(), "" | "<MISSING>"), "{}", col(4, "kd"));
    assert_eq!(col(4, "mac"), tail(&msgs[4], 20));

    // Frame 6: NULL encryption, so tshark decodes the Key data sub-payload.
    let k = fields(
        file,
        &[
            "mikey.key.type",
            "mikey.key.kv",
            "mikey.key.data",
            "mikey.key.salt",
            "mikey.key.kv.from",
            "mikey.key.kv.to",
            "mikey.id.role",
            "mikey.id.data",
            "mikey.t.ntp",
        ],
    );
    assert_eq!(k[5][0], "3", "TEK+SALT");
    assert_eq!(k[5][1], "2", "KV interval");
    assert_eq!(k[5][2], hexs(&MTK));
    assert_eq!(k[5][3], hexs(&SALT));
    assert_eq!(k[5][4], "000000000001");
    assert_eq!(k[5][5], "00000000ffff");
    assert_eq!(k[5][6], "3", "IDRkms");
    assert_eq!(k[5][7], "sip:kms@example.org");
    assert!(k[5][8].contains("2023"), "NTP 0xe8f3c0a0 is in 2023: {}", k[5][8]);

    // Frame 7: error message.
    let e = fields(file, &["mikey.type", "mikey.err.no", "mikey.t.ts_type"]);
    assert_eq!(e[6], vec!["6".to_owned(), "3".to_owned(), "2".to_owned()]);

    if std::env::var_os("MIKEY_KEEP_PCAP").is_none() {
        let _ = std::fs::remove_file(&path);
    }
}
