//! The SRTP peers of `keysim bench` besides pylibsrtp: Debian's libsrtp2 through a small C
//! harness (`benches/peers/libsrtp_bench.c`, compiled on first use) and webrtc-srtp through a
//! bench-only crate outside the workspace (`benches/peers/webrtc-srtp`, built on first use).
//! Both time the same packets as the srtp figures on their thread's CPU clock and print
//! `{"version", "protect_pps", "unprotect_pps"}`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

use super::output_within;

/// The C harness, built into the binary so that `keysim bench` can compile it anywhere.
const LIBSRTP_BENCH_C: &str = include_str!("../../../benches/peers/libsrtp_bench.c");
/// The webrtc-srtp bench crate's manifest, in this source tree.
const WEBRTC_MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers/webrtc-srtp/Cargo.toml");

/// A peer's figures.
pub(crate) struct Rates {
    pub(crate) version: String,
    /// The crypto library under the peer, where it can be told.
    pub(crate) crypto: String,
    pub(crate) protect_pps: f64,
    pub(crate) unprotect_pps: f64,
}

/// `<target>/peers`, `<target>` being two levels above this executable (`target/release/keysim`).
fn peers_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this executable")?;
    let target = exe.parent().and_then(Path::parent).ok_or_else(|| anyhow!("no target directory"))?;
    Ok(target.join("peers"))
}

fn run_peer(program: &Path, secs: f64, reps: usize, batch: usize) -> Result<(String, f64, f64)> {
    let limit = Duration::from_secs_f64(60.0 + 4.0 * secs * (reps as f64 + 1.0));
    let out = output_within(
        Command::new(program).args([secs.to_string(), reps.to_string(), batch.to_string()]),
        limit,
    )
    .with_context(|| program.display().to_string())?;
    let v: Value =
        serde_json::from_str(out.trim()).with_context(|| format!("{} printed {out:?}", program.display()))?;
    let num = |k: &str| v[k].as_f64().ok_or_else(|| anyhow!("no {k} in {out:?}"));
    Ok((v["version"].as_str().unwrap_or("?").to_owned(), num("protect_pps")?, num("unprotect_pps")?))
}

/// Debian's libsrtp2 from C: compiles the harness with `cc -O2 … -lsrtp2` (once per source
/// version) and runs it; `crypto` is the library libsrtp2 links for AES and HMAC, from `ldd`.
pub(crate) fn libsrtp_c(secs: f64, reps: usize, batch: usize) -> Result<Rates> {
    let dir = peers_dir()?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // The file name carries a hash of the source, so an edited harness is rebuilt.
    let tag = LIBSRTP_BENCH_C
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3));
    let exe = dir.join(format!("libsrtp_bench-{tag:016x}"));
    if !exe.exists() {
        let src = dir.join(format!("libsrtp_bench-{tag:016x}.c"));
        std::fs::write(&src, LIBSRTP_BENCH_C).with_context(|| format!("writing {}", src.display()))?;
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
        output_within(
            Command::new(&cc).arg("-O2").arg("-o").arg(&exe).arg(&src).arg("-lsrtp2"),
            Duration::from_secs(120),
        )
        .with_context(|| {
            format!(
                "compiling benches/peers/libsrtp_bench.c with `{cc} … -lsrtp2` (Debian: apt-get install \
                 libsrtp2-dev)"
            )
        })?;
    }
    let (version, protect_pps, unprotect_pps) = run_peer(&exe, secs, reps, batch)?;
    let ldd = output_within(Command::new("ldd").arg(&exe), Duration::from_secs(20)).unwrap_or_default();
    let crypto = if ldd.contains("libnss3") {
        "NSS (libnss3)"
    } else if ldd.contains("libcrypto") {
        "OpenSSL (libcrypto)"
    } else {
        "libsrtp's built-in crypto"
    };
    Ok(Rates { version, crypto: crypto.to_owned(), protect_pps, unprotect_pps })
}

/// webrtc-srtp through `benches/peers/webrtc-srtp`: runs `<target>/peers/release/webrtc-srtp-bench`,
/// building it first with cargo when `build` is set (about 90 s on two cores; the first build
/// needs the crates from the registry).
pub(crate) fn webrtc_srtp(secs: f64, reps: usize, batch: usize, build: bool) -> Result<Rates> {
    let dir = peers_dir()?;
    let exe = dir.join("release").join("webrtc-srtp-bench");
    if !exe.exists() {
        if !build {
            bail!(
                "{} not built (--quick does not build it): cargo build --release --manifest-path \
                 benches/peers/webrtc-srtp/Cargo.toml with CARGO_TARGET_DIR={}",
                exe.display(),
                dir.display()
            );
        }
        if !Path::new(WEBRTC_MANIFEST).exists() {
            bail!("{WEBRTC_MANIFEST} not found (keysim runs outside its source tree)");
        }
        eprintln!("keysim bench: building the webrtc-srtp peer once (benches/peers/webrtc-srtp, about 90 s)");
        output_within(
            Command::new("cargo")
                .args(["build", "--release", "--quiet", "--manifest-path", WEBRTC_MANIFEST])
                .env("CARGO_TARGET_DIR", &dir),
            Duration::from_secs(900),
        )
        .context("building benches/peers/webrtc-srtp")?;
    }
    let (version, protect_pps, unprotect_pps) = run_peer(&exe, secs, reps, batch)?;
    Ok(Rates {
        version,
        crypto: "RustCrypto (aes 0.8, hmac 0.12, sha1 0.10)".to_owned(),
        protect_pps,
        unprotect_pps,
    })
}
