//! The SRTP peers of `keysim bench` besides pylibsrtp: Debian's libsrtp2 through a small C
//! harness (`benches/peers/libsrtp_bench.c`, compiled on first use), and two bench-only crates
//! outside the workspace, built on first use: webrtc-srtp (`benches/peers/webrtc-srtp`) and
//! libsrtp with its OpenSSL backend, built from source by `srtp2-sys`
//! (`benches/peers/libsrtp-openssl`). All time the same packets as the srtp figures on their
//! thread's CPU clock and print `{"version", "protect_pps", "unprotect_pps"}` (and `crypto`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::timing::output_within;
use crate::{Context, Error, Result, bail};

/// The C harness, built into the binary so that `keysim bench` can compile it anywhere.
const LIBSRTP_BENCH_C: &str = include_str!("../../../benches/peers/libsrtp_bench.c");
/// The webrtc-srtp bench crate's manifest, in this source tree.
const WEBRTC_MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../benches/peers/webrtc-srtp/Cargo.toml");
/// The libsrtp + OpenSSL bench crate's manifest, in this source tree.
const LIBSRTP_OPENSSL_MANIFEST: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../benches/peers/libsrtp-openssl/Cargo.toml");

/// A peer's figures.
pub struct Rates {
    /// The peer's version.
    pub version: String,
    /// The crypto library under the peer, where it can be told.
    pub crypto: String,
    /// Protects per second.
    pub protect_pps: f64,
    /// Unprotects per second.
    pub unprotect_pps: f64,
}

/// `<target>/peers`, `<target>` being two levels above this executable (`target/release/keysim`).
fn peers_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this executable")?;
    let target =
        exe.parent().and_then(Path::parent).ok_or_else(|| Error::Other("no target directory".to_owned()))?;
    Ok(target.join("peers"))
}

/// A peer's figures as it printed them: version, protect and unprotect rates, and `crypto` when
/// it says.
struct Printed {
    version: String,
    crypto: Option<String>,
    protect_pps: f64,
    unprotect_pps: f64,
}

fn run_peer(program: &Path, secs: f64, reps: usize, batch: usize) -> Result<Printed> {
    let limit = Duration::from_secs_f64(60.0 + 4.0 * secs * (reps as f64 + 1.0));
    let out = output_within(
        Command::new(program).args([secs.to_string(), reps.to_string(), batch.to_string()]),
        limit,
    )
    .with_context(|| program.display().to_string())?;
    let v: Value =
        serde_json::from_str(out.trim()).with_context(|| format!("{} printed {out:?}", program.display()))?;
    let num = |k: &str| v[k].as_f64().ok_or_else(|| Error::Other(format!("no {k} in {out:?}")));
    Ok(Printed {
        version: v["version"].as_str().unwrap_or("?").to_owned(),
        crypto: v["crypto"].as_str().map(str::to_owned),
        protect_pps: num("protect_pps")?,
        unprotect_pps: num("unprotect_pps")?,
    })
}

/// Debian's libsrtp2 from C: compiles the harness with `cc -O2 … -lsrtp2` (once per source
/// version) and runs it; `crypto` is the library libsrtp2 links for AES and HMAC, from `ldd`.
pub fn libsrtp_c(secs: f64, reps: usize, batch: usize) -> Result<Rates> {
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
    let Printed { version, protect_pps, unprotect_pps, .. } = run_peer(&exe, secs, reps, batch)?;
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

/// `<target>/peers/release/<bin>` of the bench crate at `manifest`, built with cargo
/// (`CARGO_TARGET_DIR=<target>/peers`) when `build` is set: the first time (`about` says how long
/// that takes), and again after an edit of the crate (cargo's check that it is up to date takes
/// a moment). Without `build` it must exist.
fn cargo_peer(bin: &str, manifest: &str, build: bool, about: &str) -> Result<PathBuf> {
    let dir = peers_dir()?;
    let exe = dir.join("release").join(bin);
    let rel = manifest.strip_prefix(concat!(env!("CARGO_MANIFEST_DIR"), "/../")).unwrap_or(manifest);
    if !build {
        if !exe.exists() {
            bail!(
                "{} not built (--quick does not build it): cargo build --release --manifest-path {rel} \
                 with CARGO_TARGET_DIR={}",
                exe.display(),
                dir.display()
            );
        }
        return Ok(exe);
    }
    if !Path::new(manifest).exists() {
        if exe.exists() {
            return Ok(exe);
        }
        bail!("{manifest} not found (keysim runs outside its source tree)");
    }
    if !exe.exists() {
        eprintln!("keysim bench: building the {bin} peer once ({rel}, {about})");
    }
    output_within(
        Command::new("cargo")
            .args(["build", "--release", "--quiet", "--manifest-path", manifest])
            .env("CARGO_TARGET_DIR", &dir),
        Duration::from_secs(900),
    )
    .with_context(|| format!("building {rel}"))?;
    Ok(exe)
}

/// webrtc-srtp through `benches/peers/webrtc-srtp`: runs `<target>/peers/release/webrtc-srtp-bench`,
/// building it first with cargo when `build` is set (about 90 s on two cores; the first build
/// needs the crates from the registry).
pub fn webrtc_srtp(secs: f64, reps: usize, batch: usize, build: bool) -> Result<Rates> {
    let exe = cargo_peer("webrtc-srtp-bench", WEBRTC_MANIFEST, build, "about 90 s")?;
    let Printed { version, protect_pps, unprotect_pps, .. } = run_peer(&exe, secs, reps, batch)?;
    Ok(Rates {
        version,
        crypto: "RustCrypto (aes 0.8, hmac 0.12, sha1 0.10)".to_owned(),
        protect_pps,
        unprotect_pps,
    })
}

/// libsrtp with its OpenSSL backend through `benches/peers/libsrtp-openssl`: runs
/// `<target>/peers/release/libsrtp-openssl-bench`, building it first with cargo when `build` is
/// set (`srtp2-sys` runs bindgen, then libsrtp's `./configure --enable-openssl` and `make`: about
/// a minute; it needs a C compiler, make, libclang and libssl-dev). The peer refuses to print
/// figures unless libsrtp runs on OpenSSL; `crypto` is the OpenSSL version it linked.
pub fn libsrtp_openssl(secs: f64, reps: usize, batch: usize, build: bool) -> Result<Rates> {
    let exe = cargo_peer("libsrtp-openssl-bench", LIBSRTP_OPENSSL_MANIFEST, build, "about a minute")?;
    let printed = run_peer(&exe, secs, reps, batch)?;
    let crypto = printed
        .crypto
        .filter(|c| c.starts_with("OpenSSL"))
        .ok_or_else(|| Error::Other(format!("{} did not report the OpenSSL it runs on", exe.display())))?;
    Ok(Rates {
        version: format!("{} with {crypto}", printed.version),
        crypto,
        protect_pps: printed.protect_pps,
        unprotect_pps: printed.unprotect_pps,
    })
}
