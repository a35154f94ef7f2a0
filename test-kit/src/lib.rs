//! What the tests of several crates share, one copy each: the independent Python oracles (MIKEY
//! of RFC 3830 / TS 33.246 §6.3, HTTP Digest of RFC 2617) and the runner that calls them; the
//! network side of a card's GBA and MBMS procedures computed independently of the card
//! ([`independent`]) and the MBMS runs that drive a card through them ([`mbms_run`]), used by the
//! root tests and the card benchmark.
//!
//! A dev-dependency only: nothing here ships. The oracles are plain `.py` files under `oracles/`,
//! readable and runnable by hand (`python3 test-kit/oracles/mikey.py open PSK MSG`).

pub mod independent;
pub mod mbms_run;
pub mod ports;

use std::io::Write;
use std::process::{Command, Stdio};

/// The MIKEY reader in Python: `prf`, `open PSK MSG`, `ver PSK INIT VER` (see the file's head).
pub const MIKEY_ORACLE: &str = include_str!("../oracles/mikey.py");

/// RFC 2617 request-digest and rspauth in Python: `response …`, `rspauth …`.
pub const DIGEST_ORACLE: &str = include_str!("../oracles/digest.py");

/// Whether a missing oracle fails the test (`KEYSIM_REQUIRE_ORACLES` set) rather than skipping it.
pub fn require_oracles() -> bool {
    std::env::var_os("KEYSIM_REQUIRE_ORACLES").is_some()
}

/// Runs a Python 3 script with `args` and `stdin`; its output trimmed, or `None` (the reason
/// printed) when python3 is missing and [`require_oracles`] is not set. A failing script panics.
pub fn python_with_input(script: &str, args: &[&str], stdin: &str) -> Option<String> {
    let child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if require_oracles() => panic!("python3 is required (KEYSIM_REQUIRE_ORACLES is set): {e}"),
        Err(e) => {
            eprintln!("python3 not available ({e}): skipping the Python cross-check");
            return None;
        }
    };
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("writing python3's input");
    let out = child.wait_with_output().expect("python3 output");
    assert!(out.status.success(), "python3 failed: {}", String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8(out.stdout).expect("python prints UTF-8").trim().to_owned())
}

/// [`python_with_input`] with nothing on its input.
pub fn python(script: &str, args: &[&str]) -> Option<String> {
    python_with_input(script, args, "")
}

/// The value of `key=value` among the whitespace-separated words of an oracle's output.
pub fn field<'a>(out: &'a str, key: &str) -> &'a str {
    out.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key} in oracle output:\n{out}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 2617 §3.5: the example request-digest of "Mufasa" / "Circle Of Life".
    #[test]
    fn the_digest_oracle_gives_the_rfc_2617_example() {
        let auth = r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b""#;
        let Some(out) = python(DIGEST_ORACLE, &["response", auth, &hex("Circle Of Life"), "GET", ""]) else {
            return;
        };
        assert_eq!(out, "6629fae49393a05397450978507c4ef1");
    }

    fn hex(s: &str) -> String {
        s.bytes().map(|b| format!("{b:02x}")).collect()
    }
}
