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

const ORACLE: &str = r#"
import sys, hmac, hashlib, subprocess

def P(s, label, m, h):
    out, a = b'', label
    for _ in range(m):
        a = hmac.new(s, a, h).digest()
        out += hmac.new(s, a + label, h).digest()
    return out

def prf(inkey, label, outlen, h):
    m = -(-outlen // h().digest_size)
    res = bytearray(outlen)
    for i in range(0, len(inkey), 32):
        p = P(inkey[i:i + 32], label, m, h)
        for j in range(outlen):
            res[j] ^= p[j]
    return bytes(res)

def aes_ctr(key, iv, data):
    try:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        e = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
        return e.update(data) + e.finalize()
    except ImportError:
        r = subprocess.run(['openssl', 'enc', '-aes-128-ctr', '-K', key.hex(), '-iv', iv.hex(), '-nosalt'],
                           input=data, capture_output=True, check=True)
        return r.stdout

def u16(b, i): return int.from_bytes(b[i:i + 2], 'big')

def parse(msg):
    assert msg[0] == 1, 'version'
    dtype, nxt, vprf = msg[1], msg[2], msg[3]
    csb, ncs, maptype = int.from_bytes(msg[4:8], 'big'), msg[8], msg[9]
    pos = 10 + (9 * ncs if maptype == 0 else 0)
    assert maptype in (0, 1), 'map type'
    pl = []
    while nxt != 0:
        t, nxt = nxt, msg[pos]
        if t == 1:
            ea, l = msg[pos + 1], u16(msg, pos + 2)
            ed, ma = msg[pos + 4:pos + 4 + l], msg[pos + 4 + l]
            ml = 20 if ma == 1 else 0
            pl.append(('KEMAC', (ea, ed, ma, msg[pos + 5 + l:pos + 5 + l + ml])))
            pos += 5 + l + ml
        elif t == 5:
            n = 4 if msg[pos + 1] == 2 else 8
            pl.append(('T', msg[pos + 2:pos + 2 + n])); pos += 2 + n
        elif t == 11:
            l = msg[pos + 1]; pl.append(('RAND', msg[pos + 2:pos + 2 + l])); pos += 2 + l
        elif t == 6:
            l = u16(msg, pos + 2); pl.append(('ID', msg[pos + 4:pos + 4 + l])); pos += 4 + l
        elif t == 21:
            l = u16(msg, pos + 2); pl.append(('EXT', (msg[pos + 1], msg[pos + 4:pos + 4 + l]))); pos += 4 + l
        elif t == 10:
            pos += 5 + u16(msg, pos + 3); pl.append(('SP', None))
        elif t == 9:
            pl.append(('V', msg[pos + 2:pos + 22])); pos += 22
        else:
            raise Exception('payload %d' % t)
    assert pos == len(msg), 'length'
    return dict(dtype=dtype, v=vprf >> 7, csb=csb, pl=pl)

def get(p, name): return [v for (n, v) in p['pl'] if n == name]

def keys(psk, csb, rand):
    lab = lambda c: c.to_bytes(4, 'big') + b'\xff' + csb.to_bytes(4, 'big') + rand
    return [prf(psk, lab(c), n, hashlib.sha1) for c, n in ((0x150533E1, 16), (0x2D22AC75, 20), (0x29B88916, 14))]

mode = sys.argv[1]
if mode == 'prf':
    for line in sys.stdin:
        h, k, lab, n = line.split()
        h = hashlib.sha1 if h == 'sha1' else hashlib.sha256
        print(prf(bytes.fromhex(k), bytes.fromhex(lab), int(n), h).hex())
elif mode == 'open':
    psk, raw = bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
    p = parse(raw)
    rand = (get(p, 'RAND') or [b''])[0]
    t = get(p, 'T')[0]
    ea, ed, ma, mac = get(p, 'KEMAC')[0]
    ek, ak, sk = keys(psk, p['csb'], rand)
    print('mac_ok=%d' % hmac.compare_digest(hmac.new(ak, raw[:-20], hashlib.sha1).digest(), mac))
    x = bytes(2) + p['csb'].to_bytes(4, 'big') + int.from_bytes(t, 'big').to_bytes(8, 'big')
    plain = aes_ctr(ek, bytes(a ^ b for a, b in zip(sk, x)) + bytes(2), ed)
    pos = 0
    while pos < len(plain):
        nxt, typ, kv = plain[pos], plain[pos + 1] >> 4, plain[pos + 1] & 15
        kl = u16(plain, pos + 2); key = plain[pos + 4:pos + 4 + kl]; pos += 4 + kl
        salt = b''
        if typ in (1, 3):
            sl = u16(plain, pos); salt = plain[pos + 2:pos + 2 + sl]; pos += 2 + sl
        kvd = b''
        if kv == 1:
            kvd = plain[pos:pos + 1 + plain[pos]]; pos += len(kvd)
        elif kv == 2:
            l1 = plain[pos]; l2 = plain[pos + 1 + l1]; kvd = plain[pos:pos + 2 + l1 + l2]; pos += len(kvd)
        print('key=%s type=%d kv=%d salt=%s kvdata=%s next=%d' % (key.hex(), typ, kv, salt.hex(), kvd.hex(), nxt))
    for et, d in get(p, 'EXT'):
        i = 0
        while i < len(d):
            print('keyid=%d:%d:%s' % (et, d[i], d[i + 2:i + 2 + d[i + 1]].hex())); i += 2 + d[i + 1]
    print('ids=%s' % ','.join(x.hex() for x in get(p, 'ID')))
    print('csb=%d v=%d ts=%s plain_len=%d' % (p['csb'], p['v'], t.hex(), len(plain)))
elif mode == 'ver':
    psk, init = bytes.fromhex(sys.argv[2]), parse(bytes.fromhex(sys.argv[3]))
    raw = bytes.fromhex(sys.argv[4]); ver = parse(raw)
    ids, t = get(init, 'ID'), get(init, 'T')[0]
    ek, ak, sk = keys(psk, init['csb'], get(init, 'RAND')[0])
    mac = hmac.new(ak, raw[:-20] + ids[0] + ids[1] + t, hashlib.sha1).digest()
    print('ver_ok=%d dtype=%d t_same=%d csb_same=%d' % (hmac.compare_digest(mac, get(ver, 'V')[0]), ver['dtype'],
          get(ver, 'T')[0] == t, ver['csb'] == init['csb']))
"#;

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
