//! The SRTP figures of `keysim bench` (RFC 3711 with AES_CM_128_HMAC_SHA1_80): this project's
//! SRTP protect and unprotect, the bare crypto of a packet as budgets, libsrtp through pylibsrtp
//! and the other peers ([`peers`]), and `openssl speed`. All time the same packets on this
//! thread's CPU clock ([`crate::timing`]).

pub mod peers;

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use aes::Aes128;
use ctr::cipher::{InnerIvInit, KeyInit as _, StreamCipher};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha1::Sha1;
use srtp::transform::{Strategy, aes_batch};
use srtp::{CryptoSuite, MasterKey, Policy, SrtpContext};

use crate::timing::{REPS, cpu_now, is_cpu_time, output_within, rate, rate_timed, warm_up};
use crate::{Context, Error, Result};

/// RTP payload length of every measured packet.
pub const PAYLOAD: usize = 1200;
/// RTP fixed header (RFC 3550 §5.1), no CSRC, no extension.
const HEADER: usize = 12;
/// Bytes under the SRTP MAC: header, payload and the 4-byte ROC (RFC 3711 §4.2).
pub const HMAC_INPUT: usize = HEADER + PAYLOAD + 4;
/// The SRTP tag of the _80 suite.
const TAG: usize = 10;
const SSRC: u32 = 0xdead_beef;
const MASTER_KEY: [u8; 16] = [0x2b; 16];
const MASTER_SALT: [u8; 14] = [0x17; 14];
/// Packets protected (untimed) before each timed unprotect batch; the same in the Python loop.
pub const UNPROTECT_BATCH: usize = 256;

// ---------------------------------------------------------------------------------------------
// This project's SRTP and the bare crypto

/// This project's figures on one core.
pub struct Ours {
    /// SRTP protects per second.
    pub protect_pps: f64,
    /// SRTP unprotects per second.
    pub unprotect_pps: f64,
    /// The budget with the strategy the srtp crate picked for this CPU.
    pub budget_pps: f64,
    /// The budget through the crates' general APIs (`NaiveBudget`).
    pub naive_budget_pps: f64,
    /// The budget with the strategy it did not pick (sequential or one-pass).
    pub other_budget_pps: f64,
    /// The strategy it did not pick.
    pub other_strategy: Strategy,
    /// `Strategies::describe` of this CPU's choice.
    pub strategy: String,
}

fn context() -> Result<SrtpContext> {
    let key = MasterKey::new(MASTER_KEY, MASTER_SALT, []);
    SrtpContext::new(Policy::new(CryptoSuite::Aes128CmHmacSha1_80), [key])
        .map_err(|e| Error::Other(e.to_string()))
}

/// An RTP packet with room for the tag: V=2, PT 96, the given SEQ, SSRC, 0xa5 payload.
fn rtp_buffer() -> Vec<u8> {
    let mut p = vec![0xa5u8; HEADER + PAYLOAD + TAG];
    p[..HEADER].fill(0);
    p[0] = 0x80;
    p[1] = 96;
    p[8..12].copy_from_slice(&SSRC.to_be_bytes());
    p
}

struct Protect {
    ctx: SrtpContext,
    buf: Vec<u8>,
    seq: u16,
}

impl Protect {
    fn new() -> Result<Self> {
        Ok(Protect { ctx: context()?, buf: rtp_buffer(), seq: 0 })
    }

    fn step(&mut self) -> Result<()> {
        self.seq = self.seq.wrapping_add(1);
        self.buf[2..4].copy_from_slice(&self.seq.to_be_bytes());
        let n = self
            .ctx
            .protect_rtp(black_box(&mut self.buf), HEADER + PAYLOAD)
            .map_err(|e| Error::Other(e.to_string()))?;
        black_box(n);
        Ok(())
    }
}

struct Unprotect {
    tx: SrtpContext,
    rx: SrtpContext,
    batch: Vec<Vec<u8>>,
    seq: u16,
}

impl Unprotect {
    fn new() -> Result<Self> {
        Ok(Unprotect { tx: context()?, rx: context()?, batch: vec![rtp_buffer(); UNPROTECT_BATCH], seq: 0 })
    }

    /// Protects a batch untimed, then times unprotecting it.
    fn batch(&mut self) -> Result<(u64, Duration)> {
        for p in &mut self.batch {
            self.seq = self.seq.wrapping_add(1);
            p[2..4].copy_from_slice(&self.seq.to_be_bytes());
            self.tx.protect_rtp(p, HEADER + PAYLOAD).map_err(|e| Error::Other(e.to_string()))?;
        }
        let start = cpu_now();
        for p in &mut self.batch {
            let n =
                self.rx.unprotect_rtp(black_box(p)).map_err(|e| Error::Other(format!("unprotect: {e}")))?;
            black_box(n);
        }
        Ok((self.batch.len() as u64, cpu_now() - start))
    }
}

/// The bare crypto of one packet with the primitives used the way the srtp crate uses them, and
/// nothing else: the RFC 3711 §4.1.1 IV, then `srtp::transform::encrypt_and_authenticate_with`
/// (AES-128 counter mode over the payload and HMAC-SHA1 over header, payload and ROC, from the
/// hashed inner/outer key states, straight on the `aes` and `sha1` crates, scheduled as
/// `strategy` says), truncated to 80 bits. No header parsing, no index estimation, no replay
/// list, no key lookup: the SRTP framing is what the srtp figures have on top of this one.
struct Budget {
    strategy: Strategy,
    aes: Aes128,
    mac: srtp::transform::HmacSha1Key,
    salt: [u8; 14],
    buf: Vec<u8>,
    seq: u16,
}

impl Budget {
    fn new(strategy: Strategy) -> Self {
        Budget {
            strategy,
            aes: Aes128::new(&[0x3c; 16].into()),
            mac: srtp::transform::HmacSha1Key::new(&[0x5c; 20]),
            salt: [0x17; 14],
            buf: rtp_buffer(),
            seq: 0,
        }
    }

    fn step(&mut self) {
        self.seq = self.seq.wrapping_add(1);
        self.buf[2..4].copy_from_slice(&self.seq.to_be_bytes());
        let roc = 0u32;
        let index = (u64::from(roc) << 16) | u64::from(self.seq);
        let iv = srtp::aes_cm::packet_iv(&self.salt, SSRC, index);
        let packet = &mut self.buf[..HEADER + PAYLOAD];
        let tag = srtp::transform::encrypt_and_authenticate_with(
            self.strategy,
            &self.aes,
            &iv,
            &self.mac,
            packet,
            HEADER,
            &roc.to_be_bytes(),
        );
        self.buf[HEADER + PAYLOAD..].copy_from_slice(&tag[..TAG]);
        black_box(&self.buf);
    }
}

/// The bare crypto through the crates' general APIs, one after the other (CRATES.md §3 (c)):
/// AES-128 in counter mode over the payload with the expanded key schedule reused, the RFC 3711
/// §4.1.1 IV, and HMAC-SHA1 over header, payload and ROC from a pre-keyed `hmac::Hmac` state that
/// is cloned per packet, truncated to 80 bits. Reported beside [`Budget`] to show what the
/// one-pass transform gains.
struct NaiveBudget {
    aes: Aes128,
    mac: Hmac<Sha1>,
    salt: [u8; 14],
    buf: Vec<u8>,
    seq: u16,
}

impl NaiveBudget {
    fn new() -> Result<Self> {
        Ok(NaiveBudget {
            aes: Aes128::new(&[0x3c; 16].into()),
            mac: <Hmac<Sha1> as hmac::KeyInit>::new_from_slice(&[0x5c; 20])
                .map_err(|e| Error::Other(e.to_string()))?,
            salt: [0x17; 14],
            buf: rtp_buffer(),
            seq: 0,
        })
    }

    fn step(&mut self) {
        self.seq = self.seq.wrapping_add(1);
        self.buf[2..4].copy_from_slice(&self.seq.to_be_bytes());
        let roc = 0u32;
        let index = (u64::from(roc) << 16) | u64::from(self.seq);
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(SSRC.to_be_bytes()) {
            *b ^= s;
        }
        for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *b ^= s;
        }
        let mut cm =
            ctr::Ctr128BE::<&Aes128>::from_core(ctr::CtrCore::inner_iv_init(&self.aes, (&iv).into()));
        cm.apply_keystream(&mut self.buf[HEADER..HEADER + PAYLOAD]);
        let mut m = self.mac.clone();
        m.update(&self.buf[..HEADER + PAYLOAD]);
        m.update(&roc.to_be_bytes());
        let tag = m.finalize().into_bytes();
        self.buf[HEADER + PAYLOAD..].copy_from_slice(&tag[..TAG]);
        black_box(&self.buf);
    }
}

/// The five figures, interleaved run by run so that a slower stretch of the machine hits all of
/// them alike; the best run of each is kept.
pub fn measure_ours(secs: f64, notes: &mut Vec<String>) -> Result<Ours> {
    if !is_cpu_time() {
        notes.push("SRTP figures timed on the wall clock: no CLOCK_THREAD_CPUTIME_ID".into())
    }
    let chosen = Strategy::for_this_cpu();
    let other = if chosen.protect == Strategy::Sequential {
        Strategy::OnePass { sha_blocks: 1 }
    } else {
        Strategy::Sequential
    };
    let (mut p, mut u, mut b, mut nb, mut ob) = (
        Protect::new()?,
        Unprotect::new()?,
        Budget::new(chosen.protect),
        NaiveBudget::new()?,
        Budget::new(other),
    );
    let w = warm_up(secs);
    rate(w, || p.step())?;
    rate_timed(w, || u.batch())?;
    rate(w, || {
        b.step();
        Ok(())
    })?;
    rate(w, || {
        nb.step();
        Ok(())
    })?;
    rate(w, || {
        ob.step();
        Ok(())
    })?;
    let mut best = Ours {
        protect_pps: 0.0,
        unprotect_pps: 0.0,
        budget_pps: 0.0,
        naive_budget_pps: 0.0,
        other_budget_pps: 0.0,
        other_strategy: other,
        strategy: chosen.describe(aes_batch()),
    };
    for _ in 0..REPS {
        best.protect_pps = best.protect_pps.max(rate(secs, || p.step())?);
        best.unprotect_pps = best.unprotect_pps.max(rate_timed(secs, || u.batch())?);
        best.budget_pps = best.budget_pps.max(rate(secs, || {
            b.step();
            Ok(())
        })?);
        best.naive_budget_pps = best.naive_budget_pps.max(rate(secs, || {
            nb.step();
            Ok(())
        })?);
        best.other_budget_pps = best.other_budget_pps.max(rate(secs, || {
            ob.step();
            Ok(())
        })?);
    }
    Ok(best)
}

// ---------------------------------------------------------------------------------------------
// libsrtp through pylibsrtp

/// pylibsrtp's figures.
pub struct LibsrtpRates {
    /// pylibsrtp's version.
    pub version: String,
    /// Protects per second.
    pub protect_pps: f64,
    /// Unprotects per second.
    pub unprotect_pps: f64,
}

/// The Python side: the same packets (12-byte header, 1200 bytes of 0xa5, SSRC deadbeef, fresh
/// sequence numbers), the same batches, the same best-of-runs rule and the same clock (this
/// thread's CPU time, `time.thread_time()`) as the Rust side. The Python call overhead is part of
/// the figure.
const LIBSRTP_LOOP: &str = r#"
import json, sys, time
import pylibsrtp
from pylibsrtp import Policy, Session

secs, reps, batch = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
key = bytes([0x2B] * 16 + [0x17] * 14)
profile = Policy.SRTP_PROFILE_AES128_CM_SHA1_80

def session(kind):
    return Session(policy=Policy(key=key, ssrc_type=kind, srtp_profile=profile))

payload = b"\xa5" * 1200
headers = [b"\x80\x60" + s.to_bytes(2, "big") + b"\0\0\0\0" + (0xDEADBEEF).to_bytes(4, "big") for s in range(65536)]
tx, tx2, rx = session(Policy.SSRC_ANY_OUTBOUND), session(Policy.SSRC_ANY_OUTBOUND), session(Policy.SSRC_ANY_INBOUND)
state = {"seq": 0, "useq": 0}

def protect_rate(duration):
    protect, seq, n = tx.protect, state["seq"], 0
    start = time.thread_time()
    while True:
        for _ in range(256):
            seq = (seq + 1) & 0xFFFF
            protect(headers[seq] + payload)
        n += 256
        elapsed = time.thread_time() - start
        if elapsed >= duration:
            state["seq"] = seq
            return n / elapsed

def unprotect_rate(duration):
    protect, unprotect, seq, n, timed = tx2.protect, rx.unprotect, state["useq"], 0, 0.0
    while timed < duration:
        packets = []
        for _ in range(batch):
            seq = (seq + 1) & 0xFFFF
            packets.append(protect(headers[seq] + payload))
        start = time.thread_time()
        for p in packets:
            unprotect(p)
        timed += time.thread_time() - start
        n += batch
    state["useq"] = seq
    return n / timed

warm = min(max(secs / 5, 0.01), 0.2)
protect_rate(warm)
unprotect_rate(warm)
best_p = best_u = 0.0
for _ in range(reps):
    best_p = max(best_p, protect_rate(secs))
    best_u = max(best_u, unprotect_rate(secs))
print(json.dumps({"version": pylibsrtp.__version__, "protect_pps": best_p, "unprotect_pps": best_u}))
"#;

fn imports_pylibsrtp(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import pylibsrtp"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The venv the srtp crate's libsrtp tests create: `<target>/pyenv-srtp`, `<target>` being two
/// levels above this executable (`target/release/keysim`).
fn target_venv() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let target = exe.parent()?.parent()?;
    Some(target.join("pyenv-srtp").join("bin").join("python"))
}

/// --python, $KEYSIM_PYTHON, the target directory's venv, then python3, whichever imports
/// pylibsrtp first.
pub fn find_python(option: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(p) = option {
        return if imports_pylibsrtp(p) {
            Ok(p.to_owned())
        } else {
            Err(format!("--python {} cannot import pylibsrtp", p.display()))
        };
    }
    if let Some(p) = std::env::var_os("KEYSIM_PYTHON") {
        let p = PathBuf::from(p);
        return if imports_pylibsrtp(&p) {
            Ok(p)
        } else {
            Err(format!("KEYSIM_PYTHON={} cannot import pylibsrtp", p.display()))
        };
    }
    let candidates: Vec<PathBuf> = target_venv().into_iter().chain([PathBuf::from("python3")]).collect();
    candidates.iter().find(|p| imports_pylibsrtp(p)).cloned().ok_or_else(|| {
        format!(
            "no Python that imports pylibsrtp (tried {}); `python3 -m venv V && V/bin/pip install \
             pylibsrtp`, then --python V/bin/python",
            candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        )
    })
}

/// pylibsrtp's figures from `LIBSRTP_LOOP` run by `python`.
pub fn libsrtp_rates(python: &Path, secs: f64) -> Result<LibsrtpRates> {
    let limit = Duration::from_secs_f64(60.0 + 20.0 * secs);
    let out = output_within(
        Command::new(python).args([
            "-c",
            LIBSRTP_LOOP,
            &secs.to_string(),
            &REPS.to_string(),
            &UNPROTECT_BATCH.to_string(),
        ]),
        limit,
    )
    .with_context(|| format!("{} (pylibsrtp loop)", python.display()))?;
    let v: Value =
        serde_json::from_str(out.trim()).with_context(|| format!("pylibsrtp loop printed {out:?}"))?;
    let num =
        |k: &str| v[k].as_f64().ok_or_else(|| Error::Other(format!("pylibsrtp loop: no {k} in {out:?}")));
    Ok(LibsrtpRates {
        version: v["version"].as_str().unwrap_or("?").to_owned(),
        protect_pps: num("protect_pps")?,
        unprotect_pps: num("unprotect_pps")?,
    })
}

// ---------------------------------------------------------------------------------------------
// OpenSSL

/// Bytes per second of `openssl speed -mr -seconds S -bytes N ARGS` (its `+F:` line). `openssl
/// speed` divides by the process's user CPU time unless told `-elapsed`.
pub fn openssl_speed(what: &[&str], bytes: usize, secs: u32) -> Result<f64> {
    let secs_text = secs.to_string();
    let bytes_text = bytes.to_string();
    let mut args = vec!["speed", "-mr", "-seconds", &secs_text, "-bytes", &bytes_text];
    args.extend_from_slice(what);
    let out =
        output_within(Command::new("openssl").args(&args), Duration::from_secs(30 + 4 * u64::from(secs)))
            .context("openssl")?;
    out.lines()
        .find_map(|l| {
            l.strip_prefix("+F:").and_then(|rest| rest.rsplit(':').next()?.trim().parse::<f64>().ok())
        })
        .ok_or_else(|| Error::Other(format!("no +F: line in `openssl {}`", args.join(" "))))
}

/// The CPU's model name, from /proc/cpuinfo.
pub fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines().find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, v)| v.trim().to_owned()))
}
