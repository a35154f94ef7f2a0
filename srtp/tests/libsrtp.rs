//! Cross-check against libsrtp, the reference SRTP implementation, through PyPI `pylibsrtp`
//! (libsrtp linked into a Python wheel), driven by `tests/oracle/libsrtp_oracle.py` over
//! stdin/stdout.
//!
//! Compared byte for byte: libsrtp's SRTP/SRTCP output against ours for the same plaintext and
//! master key (both suites, random keys, several SSRCs, sequence numbers that wrap past 65535 so
//! the ROC moves); libsrtp unprotecting our packets and we unprotecting libsrtp's; the accept /
//! refuse decisions of both replay lists for the same reordered, duplicated and late packets,
//! with several window sizes; and a non-zero key derivation rate, which libsrtp lacks, through the
//! RFC 3711 §4.3.1 identity "rate kdr at index i = rate 0 with the salt XOR (i DIV kdr)".
//!
//! The Python comes from `KEYSIM_PYTHON` (an interpreter that can import pylibsrtp) or from a venv
//! created in `<target>/pyenv-srtp` with `pip install pylibsrtp`. If that is impossible the tests
//! print why and pass, except under `KEYSIM_REQUIRE_ORACLES=1` (CI), where they fail.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;

use srtp::{CryptoSuite, Direction, Error, MasterKey, Policy, SrtpContext};

/// The pylibsrtp release this check was written against (libsrtp 2.x inside).
const PYLIBSRTP: &str = "pylibsrtp==1.0.0";

// ---------------------------------------------------------------------------------------------
// Oracle process

fn require_oracles() -> bool {
    std::env::var("KEYSIM_REQUIRE_ORACLES").is_ok_and(|v| v == "1")
}

fn imports_pylibsrtp(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import pylibsrtp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// A Python that can import pylibsrtp, set up once per test binary.
fn python() -> Result<PathBuf, String> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            if let Ok(p) = std::env::var("KEYSIM_PYTHON") {
                let p = PathBuf::from(p);
                return if imports_pylibsrtp(&p) {
                    Ok(p)
                } else {
                    Err(format!("KEYSIM_PYTHON={} cannot import pylibsrtp", p.display()))
                };
            }
            // CARGO_TARGET_TMPDIR is <target>/tmp; the venv lives beside it.
            let target = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap_or(Path::new("target"));
            let venv = target.join("pyenv-srtp");
            let py = venv.join("bin").join("python");
            if imports_pylibsrtp(&py) {
                return Ok(py);
            }
            run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
            run(Command::new(&py).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                PYLIBSRTP,
            ]))?;
            if imports_pylibsrtp(&py) { Ok(py) } else { Err("pylibsrtp installed but not importable".into()) }
        })
        .clone()
}

struct Oracle {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    next_id: usize,
}

impl Oracle {
    /// Starts the oracle, or returns None (test skipped) when Python/pylibsrtp is unavailable
    /// and oracles are not required.
    fn start() -> Option<Oracle> {
        let python = match python() {
            Ok(p) => p,
            Err(why) if require_oracles() => {
                panic!("libsrtp oracle required (KEYSIM_REQUIRE_ORACLES=1): {why}")
            }
            Err(why) => {
                eprintln!("skipping libsrtp cross-check: {why}");
                return None;
            }
        };
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/libsrtp_oracle.py");
        let mut child = Command::new(&python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut oracle = Oracle { child, stdin, stdout, next_id: 0 };
        let version = oracle.call("version").expect("oracle version");
        eprintln!("libsrtp oracle: pylibsrtp {}", String::from_utf8_lossy(&version));
        Some(oracle)
    }

    fn call(&mut self, request: &str) -> Result<Vec<u8>, String> {
        let stdin = self.stdin.as_mut().expect("oracle stdin open");
        writeln!(stdin, "{request}").expect("write to oracle");
        stdin.flush().expect("flush oracle");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read from oracle");
        let line = line.trim_end();
        if let Some(hex) = line.strip_prefix("ok") {
            Ok(hex::decode(hex.trim()).expect("oracle hex"))
        } else if let Some(msg) = line.strip_prefix("err ") {
            Err(msg.to_string())
        } else {
            panic!("oracle: {line:?} for request {request:?}")
        }
    }

    /// A libsrtp session (ssrc_any_outbound or ssrc_any_inbound) with master key || salt.
    fn session(&mut self, suite: CryptoSuite, outbound: bool, window: usize, key: &MasterKey) -> String {
        self.next_id += 1;
        let id = format!("s{}", self.next_id);
        let dir = if outbound { "out" } else { "in" };
        let key_salt = hex::encode([&key.key[..], &key.salt[..]].concat());
        self.call(&format!("session {id} {} {dir} {window} {key_salt}", suite.name()))
            .expect("libsrtp session");
        id
    }

    fn packet(&mut self, op: &str, session: &str, packet: &[u8]) -> Result<Vec<u8>, String> {
        self.call(&format!("{op} {session} {}", hex::encode(packet)))
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        drop(self.stdin.take()); // EOF ends the script's loop
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Packets

/// xorshift64*: reproducible random keys and packets; the seed is printed.
struct Rng(u64);

impl Rng {
    fn from_time() -> Rng {
        let seed = std::env::var("KEYSIM_SRTP_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        }) | 1;
        eprintln!("KEYSIM_SRTP_SEED={seed}");
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        std::array::from_fn(|_| self.next() as u8)
    }
    fn vec(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn master_key(&mut self) -> MasterKey {
        MasterKey::new(self.bytes(), self.bytes(), [])
    }
}

/// A random RTP packet: CSRCs, header extension, padding and payload vary (RFC 3550 §5.1).
fn rtp(rng: &mut Rng, ssrc: u32, seq: u16) -> Vec<u8> {
    let cc = rng.below(4) as u8;
    let ext = rng.below(3) == 0;
    let pad = if rng.below(4) == 0 { 1 + rng.below(8) as u8 } else { 0 };
    let mut p = vec![0x80 | (u8::from(pad > 0) << 5) | (u8::from(ext) << 4) | cc, rng.below(128) as u8];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&rng.bytes::<4>());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend(rng.vec(4 * usize::from(cc)));
    if ext {
        let words = rng.below(4) as u16;
        p.extend_from_slice(&[0xbe, 0xde]);
        p.extend_from_slice(&words.to_be_bytes());
        p.extend(rng.vec(4 * usize::from(words)));
    }
    let n = rng.below(200) as usize;
    p.extend(rng.vec(n));
    if pad > 0 {
        p.extend(std::iter::repeat_n(0, usize::from(pad) - 1));
        p.push(pad);
    }
    p
}

/// A random RTCP compound packet with the given sender SSRC.
fn rtcp(rng: &mut Rng, ssrc: u32) -> Vec<u8> {
    let words = 1 + rng.below(20) as usize;
    let mut p = vec![0x80 | rng.below(32) as u8, 200 + rng.below(5) as u8];
    p.extend_from_slice(&(words as u16).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend(rng.vec(4 * words));
    p
}

fn ours(ctx: &mut SrtpContext, rtcp: bool, protect: bool, packet: &[u8]) -> Result<Vec<u8>, Error> {
    let mut p = packet.to_vec();
    match (rtcp, protect) {
        (false, true) => ctx.protect_rtp_vec(&mut p),
        (false, false) => ctx.unprotect_rtp_vec(&mut p),
        (true, true) => ctx.protect_rtcp_vec(&mut p),
        (true, false) => ctx.unprotect_rtcp_vec(&mut p),
    }?;
    Ok(p)
}

/// The same verdict: accepted with the same bytes, or refused for the same reason class.
fn same_verdict(theirs: &Result<Vec<u8>, String>, mine: &Result<Vec<u8>, Error>) -> bool {
    match (theirs, mine) {
        (Ok(a), Ok(b)) => a == b,
        (Err(t), Err(Error::ReplayDuplicate)) => t.contains("bad index"),
        (Err(t), Err(Error::ReplayOld)) => t.contains("too old"),
        (Err(t), Err(Error::AuthFailure)) => t.contains("authentication"),
        _ => false,
    }
}

const SUITES: [CryptoSuite; 2] = [CryptoSuite::Aes128CmHmacSha1_80, CryptoSuite::Aes128CmHmacSha1_32];

// ---------------------------------------------------------------------------------------------
// Tests

/// SRTP both ways, two SSRCs, sequence numbers that wrap so the ROC becomes 1; forged copies are
/// refused by both.
#[test]
fn srtp_both_ways_across_wrap() {
    let Some(mut lib) = Oracle::start() else { return };
    let mut rng = Rng::from_time();
    for suite in SUITES {
        for _round in 0..3 {
            let key = rng.master_key();
            let policy = Policy::new(suite);
            let (mut tx, mut rx) = (
                SrtpContext::new(policy.clone(), [key.clone()]).unwrap(),
                SrtpContext::new(policy, [key.clone()]).unwrap(),
            );
            let (lib_tx, lib_rx) =
                (lib.session(suite, true, 128, &key), lib.session(suite, false, 128, &key));
            let ssrcs = [rng.next() as u32, rng.next() as u32];
            let starts = [65535 - rng.below(40) as u16, 65420 + rng.below(100) as u16];
            for k in 0..120u16 {
                for (ssrc, start) in ssrcs.iter().zip(starts) {
                    let plain = rtp(&mut rng, *ssrc, start.wrapping_add(k));
                    let theirs = lib.packet("protect", &lib_tx, &plain).expect("libsrtp protect");
                    let mine = ours(&mut tx, false, true, &plain).expect("protect");
                    assert_eq!(hex::encode(&mine), hex::encode(&theirs), "{suite} SSRC {ssrc:08x} k {k}");
                    if k % 10 == 3 {
                        let mut forged = theirs.clone();
                        let bit = rng.below(8 * forged.len() as u64) as usize;
                        forged[bit / 8] ^= 0x80 >> (bit % 8);
                        assert!(lib.packet("unprotect", &lib_rx, &forged).is_err());
                        assert!(ours(&mut rx, false, false, &forged).is_err());
                    }
                    assert_eq!(
                        ours(&mut rx, false, false, &theirs).expect("unprotect libsrtp's packet"),
                        plain
                    );
                    assert_eq!(lib.packet("unprotect", &lib_rx, &mine).expect("libsrtp unprotect"), plain);
                }
            }
            for (ssrc, start) in ssrcs.iter().zip(starts) {
                let last = u64::from(start) + 119;
                assert_eq!(tx.rtp_index(Direction::Outbound, *ssrc), Some(last));
                assert_eq!(rx.rtp_index(Direction::Inbound, *ssrc), Some(last));
                assert!(last >= 65536, "the sequence numbers wrapped");
            }
        }
    }
}

/// SRTCP both ways (both suites: libsrtp keeps the 80-bit SRTCP tag for the _32 profile too).
#[test]
fn srtcp_both_ways() {
    let Some(mut lib) = Oracle::start() else { return };
    let mut rng = Rng::from_time();
    for suite in SUITES {
        let key = rng.master_key();
        let policy = Policy::new(suite);
        let (mut tx, mut rx) = (
            SrtpContext::new(policy.clone(), [key.clone()]).unwrap(),
            SrtpContext::new(policy, [key.clone()]).unwrap(),
        );
        let (lib_tx, lib_rx) = (lib.session(suite, true, 128, &key), lib.session(suite, false, 128, &key));
        let ssrcs = [rng.next() as u32, rng.next() as u32];
        for k in 0..40 {
            for ssrc in ssrcs {
                let plain = rtcp(&mut rng, ssrc);
                let theirs = lib.packet("protect_rtcp", &lib_tx, &plain).expect("libsrtp protect_rtcp");
                let mine = ours(&mut tx, true, true, &plain).expect("protect_rtcp");
                assert_eq!(hex::encode(&mine), hex::encode(&theirs), "{suite} SSRC {ssrc:08x} k {k}");
                assert_eq!(mine.len(), plain.len() + 4 + 10);
                assert_eq!(ours(&mut rx, true, false, &theirs).expect("unprotect libsrtp's packet"), plain);
                assert_eq!(
                    lib.packet("unprotect_rtcp", &lib_rx, &mine).expect("libsrtp unprotect_rtcp"),
                    plain
                );
            }
        }
    }
}

/// The two replay lists give the same verdict for the same schedule of fresh, reordered,
/// duplicated and too-old packets around a sequence number wrap, for several window sizes
/// (100 shows libsrtp's rounding up to a multiple of 32).
#[test]
fn replay_verdicts_agree() {
    let Some(mut lib) = Oracle::start() else { return };
    let mut rng = Rng::from_time();
    for window in [64usize, 100, 128, 256, 1000] {
        let suite = SUITES[rng.below(2) as usize];
        let key = rng.master_key();
        let policy = Policy::new(suite).with_replay_window(window);
        let mut tx = SrtpContext::new(policy.clone(), [key.clone()]).unwrap();
        let mut rx = SrtpContext::new(policy, [key.clone()]).unwrap();
        let lib_rx = lib.session(suite, false, window, &key);
        let ssrc = rng.next() as u32;
        let start = 65535 - 300 + rng.below(100) as u16;
        let sent: Vec<Vec<u8>> = (0..1500u16)
            .map(|k| ours(&mut tx, false, true, &rtp(&mut rng, ssrc, start.wrapping_add(k))).unwrap())
            .collect();
        let mut newest = 0usize;
        let mut rejected = 0;
        for step in 0..1200 {
            // Mostly forward, sometimes back by up to 1.5 windows, sometimes a jump ahead.
            let k = match rng.below(10) {
                0..=5 => (newest + 1 + rng.below(3) as usize).min(sent.len() - 1),
                6..=8 => newest.saturating_sub(rng.below(window as u64 * 3 / 2) as usize),
                _ => (newest + rng.below(200) as usize).min(sent.len() - 1),
            };
            newest = newest.max(k);
            let theirs = lib.packet("unprotect", &lib_rx, &sent[k]);
            let mine = ours(&mut rx, false, false, &sent[k]);
            assert!(
                same_verdict(&theirs, &mine),
                "window {window} step {step} packet {k}: libsrtp {theirs:?}, ours {mine:?}"
            );
            rejected += usize::from(mine.is_err());
        }
        assert!(rejected > 50, "the schedule exercised the replay list ({rejected} refusals)");
    }
}

/// The same for SRTCP (libsrtp's SRTCP window is 128).
#[test]
fn srtcp_replay_verdicts_agree() {
    let Some(mut lib) = Oracle::start() else { return };
    let mut rng = Rng::from_time();
    let suite = SUITES[rng.below(2) as usize];
    let key = rng.master_key();
    let policy = Policy::new(suite);
    let mut tx = SrtpContext::new(policy.clone(), [key.clone()]).unwrap();
    let mut rx = SrtpContext::new(policy, [key.clone()]).unwrap();
    let lib_rx = lib.session(suite, false, 128, &key);
    let ssrc = rng.next() as u32;
    let sent: Vec<Vec<u8>> =
        (0..800).map(|_| ours(&mut tx, true, true, &rtcp(&mut rng, ssrc)).unwrap()).collect();
    let mut newest = 0usize;
    for step in 0..700 {
        let k = match rng.below(10) {
            0..=5 => (newest + 1).min(sent.len() - 1),
            6..=8 => newest.saturating_sub(rng.below(200) as usize),
            _ => (newest + rng.below(150) as usize).min(sent.len() - 1),
        };
        newest = newest.max(k);
        let theirs = lib.packet("unprotect_rtcp", &lib_rx, &sent[k]);
        let mine = ours(&mut rx, true, false, &sent[k]);
        assert!(same_verdict(&theirs, &mine), "step {step} packet {k}: libsrtp {theirs:?}, ours {mine:?}");
    }
}

fn salt_xor_r(key: &MasterKey, r: u64) -> MasterKey {
    let mut k = key.clone();
    for (b, x) in k.salt[8..].iter_mut().zip(&r.to_be_bytes()[2..]) {
        *b ^= x;
    }
    k
}

/// Key derivation rate 2^6 (SRTP) and 2^3 (SRTCP): our packets at index i equal libsrtp's with the
/// master salt XOR (i DIV kdr), and libsrtp with that salt unprotects ours.
#[test]
fn key_derivation_rate_via_shifted_salt() {
    let Some(mut lib) = Oracle::start() else { return };
    let mut rng = Rng::from_time();
    let suite = CryptoSuite::Aes128CmHmacSha1_80;
    let key = rng.master_key();
    let ssrc = rng.next() as u32;

    let kdr = 64u64;
    let mut tx = SrtpContext::new(Policy::new(suite).with_key_derivation_rate(kdr), [key.clone()]).unwrap();
    let mut seq = 0u16;
    while seq < 700 {
        let plain = rtp(&mut rng, ssrc, seq);
        let mine = ours(&mut tx, false, true, &plain).unwrap();
        let shifted = salt_xor_r(&key, u64::from(seq) / kdr);
        let lib_tx = lib.session(suite, true, 128, &shifted);
        let theirs = lib.packet("protect", &lib_tx, &plain).expect("libsrtp protect");
        assert_eq!(hex::encode(&mine), hex::encode(&theirs), "SRTP index {seq}");
        let lib_rx = lib.session(suite, false, 128, &shifted);
        assert_eq!(lib.packet("unprotect", &lib_rx, &mine).expect("libsrtp unprotect"), plain);
        seq += 1 + rng.below(13) as u16;
    }

    let kdr = 8u64;
    let mut tx = SrtpContext::new(Policy::new(suite).with_key_derivation_rate(kdr), [key.clone()]).unwrap();
    for index in 1u64..=30 {
        let plain = rtcp(&mut rng, ssrc);
        let mine = ours(&mut tx, true, true, &plain).unwrap();
        let shifted = salt_xor_r(&key, index / kdr);
        let lib_tx = lib.session(suite, true, 128, &shifted);
        let mut theirs = Vec::new();
        for _ in 0..index {
            theirs = lib.packet("protect_rtcp", &lib_tx, &plain).expect("libsrtp protect_rtcp");
        }
        assert_eq!(hex::encode(&mine), hex::encode(&theirs), "SRTCP index {index}");
    }
}
