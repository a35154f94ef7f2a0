//! `keysim serve` as a real process on real sockets: an independent Python UE (its own AES,
//! Milenage, Digest AKA and GBA KDF) bootstraps and registers; the in-process UE (`me::Ue`, the
//! emulated card) runs a whole MBMS session on both key-management paths while the server is
//! stopped with SIGTERM and killed with SIGKILL; bad input leaves the stored counters and
//! registrations as they were; a server whose counter commits are skipped fails the restart checks.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use me::{KeyManagementPath, Ue, UeConfig};
use network::bmsc_stream::test_signal_frame;
use serde_json::Value;
use sim_reader::{CardProfile, Emulator};
use support::serve::{Ports, free_tcp_port, subscriber_table};

const FQDN: &str = "bmsc.mnc001.mcc001.pub.3gppnetwork.org";
const SERVICE: &str = "urn:keysim:mbms:service:1";
const WAIT: Duration = Duration::from_secs(15);
const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/gba_mbms_client.py");

/// The built-in card's subscriber, written out as the configuration takes it.
fn config(p: &Ports, mtk_period_ms: u64, extra: &str) -> String {
    config_with(p, mtk_period_ms, extra, &CardProfile::default())
}

fn config_with(p: &Ports, mtk_period_ms: u64, extra: &str, c: &CardProfile) -> String {
    let j: Value = serde_json::from_str(&c.to_json()).unwrap();
    format!(
        r#"[admin]
listen = "127.0.0.1:{admin}"
[bsf]
listen = "127.0.0.1:{bsf}"
[bmsc]
listen = "127.0.0.1:{bmsc}"
mikey_listen = "127.0.0.1:{bmsc_mikey}"
ue_mikey_port = {ue_mikey}
bearer_media = ["127.0.0.1:{media}"]
mtk_period_ms = {mtk_period_ms}
media_period_ms = 40
packets_per_media_period = 2
{extra}
[[subscriber]]
imsi = "{imsi}"
impi = "{impi}"
impu = ["{impu}"]
k = "{k}"
opc = "{opc}"
amf = "{amf}"
sqn = "{sqn}"
"#,
        admin = p.admin,
        bsf = p.bsf,
        bmsc = p.bmsc,
        bmsc_mikey = p.bmsc_mikey,
        ue_mikey = p.ue_mikey,
        media = p.media,
        imsi = j["imsi"].as_str().unwrap(),
        impi = j["impi"].as_str().unwrap(),
        impu = c.impu()[0],
        k = j["k"].as_str().unwrap(),
        opc = j["opc"].as_str().unwrap(),
        amf = j["amf"].as_str().unwrap(),
        sqn = j["sqn"].as_str().unwrap(),
    )
}

/// A `keysim serve` child process.
struct Server {
    child: Child,
    stdout: std::sync::mpsc::Receiver<String>,
    config: PathBuf,
    state: PathBuf,
    admin: String,
    skip_commit: bool,
}

impl Server {
    fn start(dir: &Path, config_text: &str, admin: &str, skip_commit: bool) -> Result<Server, String> {
        let config = dir.join("serve.toml");
        std::fs::write(&config, config_text).unwrap();
        Server::spawn(config, dir.join("state"), admin.to_owned(), skip_commit)
    }

    fn spawn(config: PathBuf, state: PathBuf, admin: String, skip_commit: bool) -> Result<Server, String> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keysim"));
        cmd.args(["serve", "--config"]).arg(&config).arg("--state-dir").arg(&state);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        if skip_commit {
            cmd.env(network::store::SKIP_COUNTER_COMMIT_ENV, "1");
        }
        let mut child = cmd.spawn().map_err(|e| format!("spawn keysim serve: {e}"))?;
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut s = Server { child, stdout: rx, config, state, admin, skip_commit };
        let deadline = Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            match s.stdout.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.starts_with("serving until") => return Ok(s),
                Ok(line) => seen.push(line),
                Err(_) => {
                    if let Ok(Some(status)) = s.child.try_wait() {
                        let mut err = String::new();
                        s.child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                        return Err(format!("keysim serve ended ({status}): {err} {seen:?}"));
                    }
                    if Instant::now() > deadline {
                        return Err(format!("keysim serve did not start: {seen:?}"));
                    }
                }
            }
        }
    }

    /// SIGTERM, and the exit status must be 0 within the wait.
    fn terminate(mut self) -> Result<(PathBuf, PathBuf, String, bool), String> {
        let st = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        assert!(st.success());
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if !status.success() {
                    return Err(format!("keysim serve after SIGTERM: {status}"));
                }
                return Ok((self.config.clone(), self.state.clone(), self.admin.clone(), self.skip_commit));
            }
            if Instant::now() > deadline {
                return Err("keysim serve did not stop on SIGTERM".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL (no chance to flush anything).
    fn kill9(mut self) -> (PathBuf, PathBuf, String, bool) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        (self.config.clone(), self.state.clone(), self.admin.clone(), self.skip_commit)
    }

    fn restart(parts: (PathBuf, PathBuf, String, bool)) -> Result<Server, String> {
        Server::spawn(parts.0, parts.1, parts.2, parts.3)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `keysim ctl --admin ADDR ARGS --json`.
fn ctl(admin: &str, args: &[&str]) -> Result<Value, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_keysim"))
        .args(["ctl", "--admin", admin])
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(format!("keysim ctl {args:?}: {} {}", out.status, String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("ctl JSON: {e}"))
}

/// `keysim ctl --admin ADDR ARGS` (plain output).
fn ctl_text(admin: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_keysim"))
        .args(["ctl", "--admin", admin])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "keysim ctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn service_counter(admin: &str, key: &str) -> Result<u64, String> {
    let v = ctl(admin, &["counters"])?;
    v["services"][0][key].as_u64().ok_or_else(|| format!("no {key} in {v}"))
}

fn registered_btids(admin: &str) -> Result<Vec<String>, String> {
    let v = ctl(admin, &["list"])?;
    Ok(v["registrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["btid"].as_str().unwrap().to_owned())
        .collect())
}

fn python() -> Option<&'static str> {
    let ok = Command::new("python3").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok && std::env::var_os("KEYSIM_REQUIRE_ORACLES").is_some() {
        panic!("python3 is missing and KEYSIM_REQUIRE_ORACLES is set");
    }
    ok.then_some("python3")
}

fn ue_for(p: &Ports, dir: &Path, path: KeyManagementPath) -> Ue<Emulator> {
    ue_signalling(p, dir, path, None)
}

fn ue_signalling(
    p: &Ports,
    dir: &Path,
    path: KeyManagementPath,
    sip: Option<me::Signalling>,
) -> Ue<Emulator> {
    let profile = CardProfile::default();
    let mut c = UeConfig::new(
        &format!("http://{}/", p.bsf()),
        &format!("http://{}/keymanagement", p.bmsc()),
        FQDN,
        dir.join("me-keys.bin"),
    );
    c.service_ids = vec![SERVICE.to_owned()];
    c.mikey_bind = SocketAddr::from(([127, 0, 0, 1], p.ue_mikey));
    c.media_bind = SocketAddr::from(([127, 0, 0, 1], p.media));
    c.path = Some(path);
    c.pin1 = Some(profile.pin1().to_owned());
    if let Some(sip) = sip {
        c.signalling = sip;
    }
    Ue::new(Emulator::new(&profile).unwrap(), c).unwrap()
}

fn poll(ue: &mut Ue<Emulator>, what: &str, cond: impl Fn(&me::ue::UeStats) -> bool) -> Result<(), String> {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        ue.poll(Instant::now() + Duration::from_millis(50)).map_err(|e| format!("{what}: poll: {e:#}"))?;
        if cond(&ue.stats()) {
            return Ok(());
        }
    }
    Err(format!("{what}: not seen within {WAIT:?}: {:?}", ue.stats()))
}

/// Every decrypted frame is the test signal's frame of its RTP sequence number.
fn media_matches(ue: &Ue<Emulator>) -> Result<u64, String> {
    let mut n = 0;
    for f in ue.frames() {
        let index = u64::from(f.sequence_number.wrapping_sub(1));
        if f.payload != test_signal_frame(index) {
            return Err(format!(
                "frame with RTP sequence number {} differs from the source",
                f.sequence_number
            ));
        }
        n += 1;
    }
    Ok(n)
}

#[derive(Clone, Copy, Debug)]
enum Stop {
    Term,
    Kill,
}

/// A whole MBMS session against `keysim serve`, restarted mid-session as `stops` says; `Err`
/// names the first restart invariant that did not hold.
fn session(path: KeyManagementPath, stops: &[Stop], skip_commit: bool) -> Result<String, String> {
    let dir = tempfile::tempdir().unwrap();
    let p = Ports::new();
    let mut server = Server::start(dir.path(), &config(&p, 300, ""), &p.admin(), skip_commit)?;
    let mut ue = ue_for(&p, dir.path(), path);
    let boot = ue.bootstrap().map_err(|e| format!("bootstrap: {e:#}"))?;
    if boot.resynchronisations != 0 {
        return Err("the first bootstrap needed a resynchronisation".into());
    }
    ue.derive_naf_keys().map_err(|e| format!("NAF keys: {e:#}"))?;
    let r = ue.register().map_err(|e| format!("register: {e:#}"))?;
    if r.accepted != [SERVICE] {
        return Err(format!("registration: {r:?}"));
    }
    poll(&mut ue, "MSK push and media", |s| s.msk_count >= 1 && s.packets_decrypted >= 10)?;
    let msk1 = ctl(&p.admin(), &["rotate-msk", SERVICE])?["msk_id"].as_u64().unwrap();
    poll(&mut ue, "the rotated MSK", |s| s.msk_count >= 2)?;
    let mut last_msk = msk1;
    let mut log = Vec::new();
    for (round, stop) in stops.iter().enumerate() {
        let before = ue.stats();
        poll(&mut ue, "media under the current MTK", |s| {
            s.packets_decrypted >= before.packets_decrypted + 10
        })?;
        let btid = ue.btid().unwrap().to_owned();
        // The highest MTK ID the server has sent so far (at least: more may leave before it stops).
        let mtk_before = service_counter(&p.admin(), "mtk_id")?;
        let parts = match stop {
            Stop::Term => server.terminate()?,
            Stop::Kill => server.kill9(),
        };
        let mtk_seen_by_ue = ue.stats().mtk_count;
        server = Server::restart(parts)?;
        // Registrations survive.
        let regs = registered_btids(&p.admin())?;
        if !regs.contains(&btid) {
            return Err(format!("round {round} ({stop:?}): registration of {btid} lost: {regs:?}"));
        }
        // The MSK continues.
        let msk_now = service_counter(&p.admin(), "msk_id")?;
        if msk_now != last_msk {
            return Err(format!("round {round} ({stop:?}): current MSK {msk_now:08X}, was {last_msk:08X}"));
        }
        // The UE keeps decrypting with MTKs the restarted server sends (MTK IDs past the old ones).
        let failed = ue.stats().packets_failed;
        let decrypted = ue.stats().packets_decrypted;
        poll(&mut ue, "a new MTK and media after the restart", |s| {
            s.mtk_count > mtk_seen_by_ue && s.packets_decrypted >= decrypted + 10
        })
        .map_err(|e| format!("round {round} ({stop:?}): {e}"))?;
        let mtk_after = service_counter(&p.admin(), "mtk_id")?;
        if mtk_after <= mtk_before {
            return Err(format!(
                "round {round} ({stop:?}): MTK ID {mtk_after} after restart, {mtk_before} before"
            ));
        }
        if ue.stats().packets_failed > failed + 2 {
            return Err(format!("round {round} ({stop:?}): packets failed after restart: {:?}", ue.stats()));
        }
        // A new MSK: its ID is past every earlier one, and the UE takes it (the MIKEY counter of
        // its MUK went on).
        let msks = ue.stats().msk_count;
        let msk_new = ctl(&p.admin(), &["rotate-msk", SERVICE])?["msk_id"].as_u64().unwrap();
        if msk_new <= last_msk {
            return Err(format!(
                "round {round} ({stop:?}): MSK ID {msk_new:08X} reused (last {last_msk:08X})"
            ));
        }
        last_msk = msk_new;
        poll(&mut ue, "the MSK rotated after the restart", |s| s.msk_count > msks)
            .map_err(|e| format!("round {round} ({stop:?}): {e} (a reused MIKEY counter is refused)"))?;
        // A solicited pull answered with a basic MSK request.
        let before = ue.stats();
        ctl(&p.admin(), &["pull", &btid])?;
        poll(&mut ue, "the solicited pull", |s| {
            s.solicited_pulls > before.solicited_pulls && s.basic_msk_requests > before.basic_msk_requests
        })?;
        // A new bootstrap: the BSF's SQN went on, so the card needs no resynchronisation.
        let b = ue.bootstrap().map_err(|e| format!("re-bootstrap: {e:#}"))?;
        if b.resynchronisations != 0 {
            return Err(format!(
                "round {round} ({stop:?}): the card refused a reused SQN (resynchronisation)"
            ));
        }
        ue.derive_naf_keys().map_err(|e| format!("NAF keys: {e:#}"))?;
        let msks = ue.stats().msk_count;
        ue.register().map_err(|e| format!("register again: {e:#}"))?;
        poll(&mut ue, "the MSK push to the new B-TID", |s| s.msk_count > msks)?;
        log.push(format!("{stop:?}: MTK ID {mtk_before} -> {mtk_after}, MSK ID {msk_new:08X}"));
    }
    let frames = media_matches(&ue)?;
    let s = ue.stats();
    if frames == 0 || s.packets_decrypted == 0 {
        return Err(format!("no media: {s:?}"));
    }
    server.terminate()?;
    Ok(format!("{} frames equal to the source; {}", frames, log.join("; ")))
}

#[test]
fn uicc_based_session_survives_sigterm_and_sigkill() {
    let r = session(KeyManagementPath::UiccBased, &[Stop::Term, Stop::Kill], false);
    eprintln!("{r:?}");
    r.unwrap();
}

#[test]
fn me_based_session_survives_sigterm_and_sigkill() {
    let r = session(KeyManagementPath::MeBased, &[Stop::Term, Stop::Kill], false);
    eprintln!("{r:?}");
    r.unwrap();
}

/// The planted defect: with the counter commits skipped, the restart checks must fail.
#[test]
fn skipped_counter_commits_fail_the_restart_checks() {
    let r = session(KeyManagementPath::MeBased, &[Stop::Kill], true);
    eprintln!("with the commits skipped: {r:?}");
    assert!(r.is_err(), "the restart checks passed without counter commits: {r:?}");
}

fn python_client(py: &str, p: &Ports, extra: &[&str]) -> Value {
    let c = CardProfile::default();
    let j: Value = serde_json::from_str(&c.to_json()).unwrap();
    let out = Command::new(py)
        .arg(CLIENT)
        .args(["--bsf", &p.bsf(), "--bmsc", &p.bmsc(), "--fqdn", FQDN, "--service", SERVICE])
        .args(["--impi", j["impi"].as_str().unwrap(), "--k", j["k"].as_str().unwrap()])
        .args(["--opc", j["opc"].as_str().unwrap()])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python client: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn an_independent_python_ue_bootstraps_and_registers() {
    let Some(py) = python() else {
        eprintln!("skipped: no python3");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = Ports::new();
    let server = Server::start(dir.path(), &config(&p, 300, ""), &p.admin(), false).unwrap();
    let ue_port = p.ue_mikey.to_string();
    // GBA_U: Ks_ext_NAF is the MRK; the MSK push arrives at the UE's MIKEY port.
    let v = python_client(py, &p, &["--mikey-port", &ue_port, "--replay"]);
    assert_eq!(v["register_status"], 200, "{v}");
    assert!(v["register_body"].as_str().unwrap().contains("code=\"200\""), "{v}");
    assert_eq!((v["mikey_version"].as_u64(), v["mikey_data_type"].as_u64()), (Some(1), Some(0)), "{v}");
    // The same Authorization again (nonce count not increased): refused.
    assert_eq!(v["replay_status"], 401, "{v}");
    let btid = v["btid"].as_str().unwrap().to_owned();
    assert_eq!(registered_btids(&p.admin()).unwrap(), vec![btid.clone()]);
    // The SQN the client saw is the one after the card's (0x20 = SEQ 1): SEQ 2, IND 0.
    assert_eq!(v["sqn"], 0x40, "{v}");
    // GBA_ME with the ME-based MRK: a second bootstrap, SQN one step on.
    let v2 = python_client(py, &p, &["--gba-me"]);
    assert_eq!(v2["register_status"], 200, "{v2}");
    assert_eq!(v2["sqn"], 0x60, "{v2}");
    // Two more devices of the same IMPI, from other loopback addresses: each keeps its own
    // registration (the GBA_ME one above moved to the 127.0.0.2 device's B-TID is not expected:
    // a newer B-TID takes over only from the same address).
    let d2 = python_client(py, &p, &["--gba-me", "--source", "127.0.0.2"]);
    let d3 = python_client(py, &p, &["--source", "127.0.0.3", "--mikey-port", &ue_port]);
    assert_eq!((d2["register_status"].as_u64(), d3["register_status"].as_u64()), (Some(200), Some(200)));
    let mut want = vec![
        v2["btid"].as_str().unwrap().to_owned(),
        d2["btid"].as_str().unwrap().to_owned(),
        d3["btid"].as_str().unwrap().to_owned(),
    ];
    want.sort();
    assert_eq!(registered_btids(&p.admin()).unwrap(), want, "one registration per device");
    let list = ctl(&p.admin(), &["list"]).unwrap();
    let addrs: Vec<&str> =
        list["registrations"].as_array().unwrap().iter().map(|r| r["ue_address"].as_str().unwrap()).collect();
    assert!(addrs.contains(&"127.0.0.2") && addrs.contains(&"127.0.0.3"), "{list}");
    // Every `keysim ctl` subcommand in its plain form, as the README shows them.
    let list = ctl_text(&p.admin(), &["list"]);
    assert!(
        list.contains("registrations: 3") && list.contains(&v2["btid"].as_str().unwrap()[..10]),
        "{list}"
    );
    let counters = ctl_text(&p.admin(), &["counters"]);
    // A new state numbers MSKs from the clock: Key Group 0001, then that number.
    let msk_id = counters
        .split_once("service urn:keysim:mbms:service:1: MSK ID 0001")
        .and_then(|(_, rest)| u16::from_str_radix(rest.get(..4)?, 16).ok())
        .unwrap_or_else(|| panic!("no MSK ID of Key Group 0001: {counters}"));
    assert!(counters.contains("SQN 0000000000A0"), "{counters}");
    let rotated = ctl_text(&p.admin(), &["rotate-msk", SERVICE]);
    assert_eq!(rotated.trim(), format!("urn:keysim:mbms:service:1: new MSK ID 0001{:04X}", msk_id + 1));
    let pulled = ctl_text(&p.admin(), &["pull", v2["btid"].as_str().unwrap()]);
    assert!(pulled.ends_with(": 1 solicited pull(s) sent\n"), "{pulled}");
    assert_eq!(ctl_text(&p.admin(), &["media", SERVICE, "off"]).trim(), format!("{SERVICE}: media off"));
    assert_eq!(ctl_text(&p.admin(), &["media", SERVICE, "on"]).trim(), format!("{SERVICE}: media on"));
    let parts = server.kill9();
    let server = Server::restart(parts).unwrap();
    // After kill -9: the registrations are all there, and the next bootstrap continues the SQN.
    assert_eq!(registered_btids(&p.admin()).unwrap(), want);
    let v3 = python_client(py, &p, &[]);
    assert_eq!(v3["sqn"], 0xC0, "{v3}");
    let counters = ctl(&p.admin(), &["counters"]).unwrap();
    assert_eq!(counters["subscribers"][0]["sqn"], 0xC0, "{counters}");
    server.terminate().unwrap();
}

/// Raw bytes to a server; the status code of the answer, `None` when the connection was closed
/// without one.
fn raw_http(addr: &str, bytes: &[u8]) -> Option<u16> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    text.strip_prefix("HTTP/1.1 ").and_then(|t| t.get(..3)).and_then(|c| c.parse().ok())
}

/// The counters and registrations, without the statistics bad input is meant to raise.
fn snapshot(admin: &str) -> Value {
    let mut c = ctl(admin, &["counters"]).unwrap();
    c.as_object_mut().unwrap().remove("bmsc_http_4xx");
    c.as_object_mut().unwrap().remove("bmsc_challenges");
    serde_json::json!({"counters": c, "list": ctl(admin, &["list"]).unwrap()})
}

#[test]
fn bad_input_changes_no_stored_state() {
    let Some(py) = python() else {
        eprintln!("skipped: no python3");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let p = Ports::new();
    // MTK messages once an hour and media off: the counters stand still unless a request moves them.
    let server = Server::start(dir.path(), &config(&p, 3_600_000, ""), &p.admin(), false).unwrap();
    ctl(&p.admin(), &["media", SERVICE, "off"]).unwrap();
    let v = python_client(py, &p, &[]);
    assert_eq!(v["register_status"], 200);
    let before = snapshot(&p.admin());

    // A client that sends half a request and stalls, held open through everything below.
    let mut slow_bsf = TcpStream::connect(p.bsf()).unwrap();
    slow_bsf.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Dig").unwrap();
    let mut slow_bmsc = TcpStream::connect(p.bmsc()).unwrap();
    slow_bmsc
        .write_all(b"POST /keymanagement?requesttype=register HTTP/1.1\r\nContent-Length: 500\r\n\r\n<mbms")
        .unwrap();

    for addr in [p.bsf(), p.bmsc(), p.admin()] {
        // Not HTTP at all.
        let s = raw_http(&addr, b"\x16\x03\x01\x02\x00garbage\r\n\r\n");
        assert!(s.is_none_or(|c| (400..500).contains(&c)), "{addr}: {s:?}");
        // A header line without a colon.
        let s = raw_http(&addr, b"GET / HTTP/1.1\r\nHost x\r\n\r\n");
        assert!(s.is_none_or(|c| (400..500).contains(&c)), "{addr}: {s:?}");
    }
    // Oversized body to the BM-SC: 413.
    let big = vec![b'a'; 2 * 1024 * 1024];
    let mut req = format!(
        "POST /keymanagement?requesttype=register HTTP/1.1\r\nHost: x\r\nContent-Type: application/mbms-register+xml\r\nContent-Length: {}\r\n\r\n",
        big.len()
    )
    .into_bytes();
    req.extend_from_slice(&big);
    let s = raw_http(&p.bmsc(), &req);
    assert!(s.is_none_or(|c| c == 413), "{s:?}");
    // Oversized body to the admin API.
    let mut req =
        format!("POST /v1/pull HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", big.len()).into_bytes();
    req.extend_from_slice(&big);
    let s = raw_http(&p.admin(), &req);
    assert!(s.is_none_or(|c| c == 413), "{s:?}");
    // Unknown B-TID at Zn: 404.
    let zn = "<?xml version=\"1.0\"?><ZnRequest><btid>AAAAAAAAAAAAAAAAAAAAAA==@nowhere</btid></ZnRequest>";
    let req = format!("POST /zn HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{zn}", zn.len());
    let s = raw_http(&p.bsf(), req.as_bytes());
    assert!(s.is_some_and(|c| (400..500).contains(&c)), "{s:?}");
    // Unknown B-TID at the BM-SC (a Digest answer for a B-TID the BSF never gave): 401.
    let body = "<mbmsRegister xmlns=\"urn:3GPP:metadata:2005:MBMS:mbmsRegister\"><serviceId>x</serviceId></mbmsRegister>";
    let req = format!(
        "POST /keymanagement?requesttype=register HTTP/1.1\r\nHost: x\r\nContent-Type: application/mbms-register+xml\r\n\
         Authorization: Digest username=\"AAAAAAAAAAAAAAAAAAAAAA==@nowhere\", realm=\"3GPP-bootstrapping@{FQDN}\", \
         nonce=\"00112233\", uri=\"/keymanagement?requesttype=register\", qop=auth, nc=00000001, cnonce=\"ab\", \
         response=\"00000000000000000000000000000000\", opaque=\"00\", algorithm=MD5\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    assert_eq!(raw_http(&p.bmsc(), req.as_bytes()), Some(401));
    // Unknown IMPI at Ub: 403.
    let req = "GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Digest username=\"nobody@nowhere\", realm=\"r\", nonce=\"\", uri=\"/\", response=\"\"\r\n\r\n";
    assert_eq!(raw_http(&p.bsf(), req.as_bytes()), Some(403));
    // Admin API: unknown service, unknown B-TID, bad JSON.
    assert!(ctl(&p.admin(), &["rotate-msk", "urn:nope"]).is_err());
    assert!(ctl(&p.admin(), &["pull", "AAAA@nowhere"]).is_err());
    let req = "POST /v1/rotate-msk HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n{nope";
    assert_eq!(raw_http(&p.admin(), req.as_bytes()), Some(400));
    // A replayed nonce count (the Python client sends its registration twice): 401.
    // (The registration itself is a state change, so it runs before the snapshot above; here
    // only the replay's effect matters.)
    let after = snapshot(&p.admin());
    assert_eq!(before, after, "bad input changed the stored state");
    // Other clients are served while the slow ones stall.
    assert_eq!(registered_btids(&p.admin()).unwrap().len(), 1);
    drop((slow_bsf, slow_bmsc));
    // The state on disk is what the server showed: after a restart the same snapshot.
    let parts = server.terminate().unwrap();
    let server = Server::restart(parts).unwrap();
    let restarted = snapshot(&p.admin());
    assert_eq!(after["list"]["registrations"], restarted["list"]["registrations"]);
    assert_eq!(after["counters"]["subscribers"], restarted["counters"]["subscribers"]);
    server.terminate().unwrap();
}

/// Half a request, then silence: how long until the server ends the connection, and what it
/// sent before (empty when it closed without an answer).
fn stall(
    addr: String,
    half: &'static [u8],
    give_up: Duration,
) -> std::thread::JoinHandle<(Duration, String)> {
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(give_up)).unwrap();
        let start = Instant::now();
        s.write_all(half).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        (start.elapsed(), String::from_utf8_lossy(&out).into_owned())
    })
}

#[test]
fn a_stalled_client_is_dropped_within_the_bound_while_others_are_served() {
    use network::http::{SERVER_BODY_READ_TIMEOUT, SERVER_HEADER_READ_TIMEOUT};
    let dir = tempfile::tempdir().unwrap();
    let p = Ports::new();
    let server = Server::start(dir.path(), &config(&p, 3_600_000, ""), &p.admin(), false).unwrap();
    ctl(&p.admin(), &["media", SERVICE, "off"]).unwrap();
    let before = snapshot(&p.admin());
    let slack = Duration::from_secs(10);
    let give_up = SERVER_HEADER_READ_TIMEOUT.max(SERVER_BODY_READ_TIMEOUT) + 2 * slack;
    // Half a header block (BSF, BM-SC), and whole headers with half the body they announce
    // (BM-SC registration, admin MSK rotation: either would change the stored state if served).
    let header_stalls = [
        stall(p.bsf(), b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Dig", give_up),
        stall(
            p.bmsc(),
            b"POST /keymanagement?requesttype=register HTTP/1.1\r\nHost: x\r\nContent-Le",
            give_up,
        ),
    ];
    let body_stalls = [
        stall(
            p.bmsc(),
            b"POST /keymanagement?requesttype=register HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/mbms-register+xml\r\nContent-Length: 500\r\n\r\n<mbms",
            give_up,
        ),
        stall(
            p.admin(),
            b"POST /v1/rotate-msk HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 200\r\n\r\n{\"service_id\": \"urn:keysim:mbms:servi",
            give_up,
        ),
    ];
    // Others are served while those stall: the admin API, and the BSF (an unknown IMPI: 403, which
    // stores nothing; a challenge would store the SQN it carries).
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(registered_btids(&p.admin()).unwrap().len(), 0);
    let req = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Digest username=\"nobody@nowhere\", realm=\"r\", nonce=\"\", uri=\"/\", response=\"\"\r\n\r\n";
    assert_eq!(raw_http(&p.bsf(), req.as_bytes()), Some(403));
    let ended: Vec<usize> = header_stalls
        .iter()
        .chain(&body_stalls)
        .enumerate()
        .filter(|(_, t)| t.is_finished())
        .map(|(i, _)| i)
        .collect();
    assert!(ended.is_empty(), "stalled clients {ended:?} ended early");

    for t in header_stalls {
        let (took, answer) = t.join().unwrap();
        assert!(took < SERVER_HEADER_READ_TIMEOUT + slack, "header stall held {took:?}");
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    for t in body_stalls {
        let (took, answer) = t.join().unwrap();
        assert!(took < SERVER_BODY_READ_TIMEOUT + slack, "body stall held {took:?}");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    // Nothing stored changed (no MSK rotated, no registration, no SQN moved).
    assert_eq!(before, snapshot(&p.admin()), "a stalled request changed the stored state");
    // The server still serves, and stops at once (no connection left to wait for).
    assert_eq!(raw_http(&p.bsf(), req.as_bytes()), Some(403));
    server.terminate().unwrap();
}

#[test]
fn a_second_server_on_the_same_state_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = Ports::new();
    let server = Server::start(dir.path(), &config(&p, 1000, ""), &p.admin(), false).unwrap();
    let q = Ports::new();
    std::fs::write(dir.path().join("other.toml"), config(&q, 1000, "")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_keysim"))
        .args(["serve", "--config"])
        .arg(dir.path().join("other.toml"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another keysim serve"), "{err}");
    let mode = |p: PathBuf| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode(dir.path().join("state")), 0o700);
    assert_eq!(mode(dir.path().join("state").join(network::store::DB_FILE)), 0o600);
    server.terminate().unwrap();
}

#[test]
fn a_foreign_or_corrupt_database_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let p = Ports::new();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let db = state.join(network::store::DB_FILE);
    std::fs::write(&db, b"SQLite format 3\0 but then nothing of the kind follows here at all").unwrap();
    let err = Server::start(dir.path(), &config(&p, 1000, ""), &p.admin(), false).err().unwrap();
    assert!(err.contains("keysim-serve.sqlite3"), "{err}");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        b"SQLite format 3\0 but then nothing of the kind follows here at all"
    );
    // A real database that a run wrote, with a byte of its schema page flipped.
    let dir2 = tempfile::tempdir().unwrap();
    let s = Server::start(dir2.path(), &config(&p, 1000, ""), &p.admin(), false).unwrap();
    let parts = s.terminate().unwrap();
    let db2 = parts.1.join(network::store::DB_FILE);
    let mut bytes = std::fs::read(&db2).unwrap();
    for b in bytes.iter_mut().skip(100).take(60) {
        *b ^= 0x5a;
    }
    std::fs::write(&db2, &bytes).unwrap();
    let err = Server::restart(parts).err().unwrap();
    assert!(err.contains("keysim-serve.sqlite3"), "{err}");
    assert_eq!(std::fs::read(&db2).unwrap(), bytes, "the damaged file was changed");
}

#[test]
fn a_bad_configuration_names_the_key_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    for (text, key) in [
        ("[bsf]\nlisten = \"127.0.0.1:1\"\ncolour = 3\n", "colour"),
        ("[bmsc]\nue_mikey_port = 0\n", "bmsc.ue_mikey_port"),
        (
            "[[subscriber]]\nimsi = \"1\"\nimpi = \"a@b\"\nimpu = [\"sip:a@b\"]\nk = \"00\"\nopc = \"00\"\n",
            "subscriber[0].k",
        ),
        ("[admin]\nlisten = \"192.0.2.1:80\"\n", "admin.listen"),
    ] {
        let f = dir.path().join("bad.toml");
        std::fs::write(&f, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_keysim"))
            .args(["serve", "--config"])
            .arg(&f)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key), "{text}: {err}");
    }
}

#[test]
fn the_printed_configuration_runs_as_it_stands() {
    let out = Command::new(env!("CARGO_BIN_EXE_keysim")).args(["serve", "--print-config"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // Only the fixed ports are moved to free ones, so tests running side by side do not meet.
    let p = Ports::new();
    let text = text
        .replace("127.0.0.1:24759", &p.admin())
        .replace("127.0.0.1:24750", &p.bsf())
        .replace("127.0.0.1:24751", &p.bmsc())
        .replace("127.0.0.1:24752", &format!("127.0.0.1:{}", p.bmsc_mikey))
        .replace("127.0.0.1:5004", &format!("127.0.0.1:{}", p.media))
        .replace("ue_mikey_port = 2269", &format!("ue_mikey_port = {}", p.ue_mikey))
        .replace("127.0.0.1:2269", &format!("127.0.0.1:{}", p.ue_mikey));
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &text, &p.admin(), false).unwrap();
    let c = ctl(&p.admin(), &["counters"]).unwrap();
    assert_eq!(c["subscribers"].as_array().unwrap().len(), 1001, "the built-in card and the range of 1000");
    assert_eq!(c["services"][0]["service_id"], SERVICE);
    server.terminate().unwrap();
}

// ------------------------------------------------------------------------------------------------
// The KMS

/// A proxy in front of the KMS that keeps every request it forwards (one request per connection,
/// answered with `Connection: close`).
struct Recorder {
    addr: SocketAddr,
    requests: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

fn read_request(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Some(buf);
        }
    }
}

fn recorder(target: SocketAddr) -> Recorder {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = requests.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let Some(req) = read_request(&mut c) else { continue };
            keep.lock().unwrap().push(req.clone());
            // Ask the KMS to close after its answer, so the client does not keep the connection.
            let at = req.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
            let mut fwd = req[..at].to_vec();
            fwd.extend_from_slice(b"Connection: close\r\n");
            fwd.extend_from_slice(&req[at..]);
            let Ok(mut k) = TcpStream::connect(target) else { continue };
            let _ = k.write_all(&fwd);
            let mut resp = Vec::new();
            let _ = k.read_to_end(&mut resp);
            let _ = c.write_all(&resp);
        }
    });
    Recorder { addr, requests }
}

/// A GBA_U-bootstrapped MIKEY-TICKET UE on the emulated card of `profile`.
fn kms_ue(profile: &CardProfile, bsf: &str, kms: &str) -> me::kms::KmsKeying<Emulator> {
    let card = me::Card::new(Emulator::new(profile).unwrap());
    card.verify_pin(profile.pin1()).unwrap();
    let mut gba = me::GbaClient::new(card, me::GbaVariant::GbaU);
    let report =
        me::UbClient::new(&format!("http://{bsf}/")).unwrap().bootstrap(&mut gba, profile.impi()).unwrap();
    assert_eq!(report.resynchronisations, 0);
    let cfg = me::kms::KmsUeConfig::new(
        &format!("http://{kms}"),
        network::config::DEFAULT_KMS_FQDN,
        profile.impi(),
    );
    me::kms::KmsKeying::new(gba, cfg).unwrap()
}

fn kms_counter(admin: &str, key: &str) -> u64 {
    let v = ctl(admin, &["counters"]).unwrap();
    v["kms"][key].as_u64().unwrap_or_else(|| panic!("no kms.{key} in {v}"))
}

/// A ticket issued before `kill -9` resolves after the restart (the TPK is kept), and the ticket
/// request sent before it is refused as a replay after it (the replay cache is kept).
#[test]
fn kms_tickets_and_replay_cache_survive_sigkill() {
    use me::MediaKeying;
    let dir = tempfile::tempdir().unwrap();
    let p = Ports::new();
    let kms_port = free_tcp_port();
    let kms = format!("127.0.0.1:{kms_port}");
    let extra = format!("[kms]\nenabled = true\nlisten = \"{kms}\"\n");
    let text = config(&p, 1000, &extra) + &subscriber_table(&CardProfile::callee());
    let server = Server::start(dir.path(), &text, &p.admin(), false).unwrap();
    let rec = recorder(kms.parse().unwrap());
    let via = rec.addr.to_string();
    let mut caller = kms_ue(&CardProfile::default(), &p.bsf(), &via);
    let mut callee = kms_ue(&CardProfile::callee(), &p.bsf(), &via);
    let call = me::CallParties {
        caller: CardProfile::default().impu()[0].clone(),
        callee: CardProfile::callee().impu()[0].clone(),
        call_id: "serve-kms@127.0.0.1".into(),
    };
    let offer = caller.offer(&call).unwrap();
    assert_eq!(kms_counter(&p.admin(), "tickets_issued"), 1);
    let ticket_request = rec.requests.lock().unwrap()[0].clone();

    let server = Server::restart(server.kill9()).unwrap();
    // The callee resolves the ticket the KMS issued before it was killed.
    let (answer, kb) = callee.answer(&call, &offer).unwrap();
    let ka = caller.complete(&call, &answer).unwrap();
    assert_eq!(ka.send.master.key, kb.recv.master.key);
    assert_eq!(ka.recv.master.salt, kb.send.master.salt);
    assert_eq!(kms_counter(&p.admin(), "tickets_resolved"), 1);
    // The ticket request of before the restart, sent again: a replay.
    assert_eq!(kms_counter(&p.admin(), "replays"), 0);
    let _ = raw_http(&kms, &ticket_request);
    assert_eq!(kms_counter(&p.admin(), "replays"), 1, "the replay cache was lost in the restart");
    assert_eq!(kms_counter(&p.admin(), "tickets_issued"), 0, "counters restart, the cache does not");
    server.terminate().unwrap();
}

// ------------------------------------------------------------------------------------------------
// SIP-based MBMS security through the SCF and the P-CSCF

/// The in-process UE registers through the P-CSCF and the SCF of `keysim serve` (SIP INVITE, the
/// SCF fetches the keys over Zn and registers it at the BM-SC) and decrypts the media.
#[test]
fn sip_signalling_through_the_standalone_scf() {
    let dir = tempfile::tempdir().unwrap();
    let p = Ports::new();
    let (scf, pcscf) = (p.scf, p.pcscf);
    let extra = format!(
        "[scf]\nenabled = true\nlisten = \"127.0.0.1:{scf}\"\n[pcscf]\nenabled = true\nlisten = \"127.0.0.1:{pcscf}\"\n"
    );
    let server = Server::start(dir.path(), &config(&p, 300, &extra), &p.admin(), false).unwrap();
    let sip = me::Signalling::Sip {
        pcscf: SocketAddr::from(([127, 0, 0, 1], pcscf)),
        scf_uri: format!("sip:scf@{}", network::config::DEFAULT_SCF_DOMAIN),
        impu: CardProfile::default().impu()[0].clone(),
        naf_fqdn: network::config::DEFAULT_SCF_FQDN.to_owned(),
    };
    let mut ue = ue_signalling(&p, dir.path(), KeyManagementPath::UiccBased, Some(sip));
    ue.bootstrap().unwrap();
    ue.derive_naf_keys().unwrap();
    let r = ue.register().unwrap();
    assert_eq!(r.accepted, [SERVICE], "{r:?}");
    poll(&mut ue, "MSK push and media", |s| s.msk_count >= 1 && s.packets_decrypted >= 10).unwrap();
    assert!(media_matches(&ue).unwrap() >= 10);
    assert_eq!(registered_btids(&p.admin()).unwrap(), vec![ue.btid().unwrap().to_owned()]);
    server.terminate().unwrap();
}
