//! `keysim serve` as a child process for the tests that run it beside other `keysim` processes:
//! start (waiting for its "serving until" line), SIGTERM, SIGKILL, restart on the same
//! configuration and state, and `keysim ctl --json` against its admin API.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use serde_json::Value;
use sim_reader::CardProfile;

/// The longest a start or a stop may take.
pub const SERVE_WAIT: Duration = Duration::from_secs(20);

/// A loopback TCP port for a server process ([`test_kit::ports::loopback_port`]).
pub fn free_tcp_port() -> u16 {
    test_kit::ports::loopback_port()
}

/// A loopback UDP port for a server process ([`test_kit::ports::loopback_port`]).
pub fn free_udp_port() -> u16 {
    test_kit::ports::loopback_port()
}

/// The ports of one test's `keysim serve` (and of the UE beside it).
pub struct Ports {
    pub bsf: u16,
    pub bmsc: u16,
    pub admin: u16,
    pub bmsc_mikey: u16,
    pub ue_mikey: u16,
    pub media: u16,
    pub scf: u16,
    pub pcscf: u16,
}

impl Ports {
    pub fn new() -> Ports {
        Ports {
            bsf: free_tcp_port(),
            bmsc: free_tcp_port(),
            admin: free_tcp_port(),
            bmsc_mikey: free_udp_port(),
            ue_mikey: free_udp_port(),
            media: free_udp_port(),
            scf: free_udp_port(),
            pcscf: free_udp_port(),
        }
    }
    pub fn admin(&self) -> String {
        format!("127.0.0.1:{}", self.admin)
    }
    pub fn bsf(&self) -> String {
        format!("127.0.0.1:{}", self.bsf)
    }
    pub fn bmsc(&self) -> String {
        format!("127.0.0.1:{}", self.bmsc)
    }
    pub fn bsf_url(&self) -> String {
        format!("http://{}", self.bsf())
    }
    pub fn bmsc_url(&self) -> String {
        format!("http://{}", self.bmsc())
    }
}

/// A `[[subscriber]]` table of serve's configuration for a card profile.
pub fn subscriber_table(c: &CardProfile) -> String {
    let j: Value = serde_json::from_str(&c.to_json()).unwrap();
    format!(
        "[[subscriber]]\nimsi = \"{}\"\nimpi = \"{}\"\nimpu = [\"{}\"]\nk = \"{}\"\nopc = \"{}\"\namf = \"{}\"\nsqn = \"{}\"\n",
        j["imsi"].as_str().unwrap(),
        j["impi"].as_str().unwrap(),
        c.impu()[0],
        j["k"].as_str().unwrap(),
        j["opc"].as_str().unwrap(),
        j["amf"].as_str().unwrap(),
        j["sqn"].as_str().unwrap(),
    )
}

/// How `keysim serve` is started: its arguments after `serve`, and its environment.
#[derive(Clone, Debug, Default)]
pub struct ServeCommand {
    /// Arguments after `serve`.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// The admin API's address, for `keysim ctl --admin`.
    pub admin: String,
}

/// A running `keysim serve`.
pub struct ServeProcess {
    child: Child,
    pub command: ServeCommand,
    /// When its "serving until" line came.
    pub ready_at: Instant,
    /// Its standard output up to that line.
    pub banner: Vec<String>,
}

impl ServeProcess {
    /// Starts it and waits until it says it serves.
    pub fn start(command: ServeCommand) -> Result<ServeProcess, String> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keysim"));
        cmd.arg("serve").args(&command.args);
        for (k, v) in &command.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| format!("spawn keysim serve: {e}"))?;
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + SERVE_WAIT;
        let mut banner = Vec::new();
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) if line.starts_with("serving until") => {
                    drain(rx);
                    return Ok(ServeProcess { child, command, ready_at: Instant::now(), banner });
                }
                Ok(line) => banner.push(line),
                Err(_) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        let mut err = String::new();
                        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
                        return Err(format!("keysim serve ended ({status}): {err} {banner:?}"));
                    }
                    if Instant::now() > deadline {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(format!("keysim serve did not start: {banner:?}"));
                    }
                }
            }
        }
    }

    /// The PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM; the exit status must be 0. Gives the command back for a restart.
    pub fn terminate(mut self) -> Result<ServeCommand, String> {
        let st = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().unwrap();
        if !st.success() {
            return Err("kill -TERM failed".into());
        }
        let deadline = Instant::now() + SERVE_WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if !status.success() {
                    return Err(format!("keysim serve after SIGTERM: {status}"));
                }
                return Ok(self.command.clone());
            }
            if Instant::now() > deadline {
                return Err("keysim serve did not stop on SIGTERM".into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL: nothing is flushed. Gives the command back for a restart.
    pub fn kill9(mut self) -> ServeCommand {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.command.clone()
    }

    /// `keysim ctl --admin ADMIN ARGS --json`.
    pub fn ctl(&self, args: &[&str]) -> Result<Value, String> {
        ctl_json(&self.command.admin, args)
    }
}

/// Keeps reading the child's output so that it never blocks on a full pipe.
fn drain(rx: Receiver<String>) {
    std::thread::spawn(move || while rx.recv().is_ok() {});
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `keysim ctl --admin ADMIN ARGS --json`, its answer parsed.
pub fn ctl_json(admin: &str, args: &[&str]) -> Result<Value, String> {
    let out = Command::new(env!("CARGO_BIN_EXE_keysim"))
        .args(["ctl", "--admin", admin])
        .args(args)
        .arg("--json")
        .output()
        .map_err(|e| format!("run keysim ctl: {e}"))?;
    if !out.status.success() {
        return Err(format!("keysim ctl {args:?}: {} {}", out.status, String::from_utf8_lossy(&out.stderr)));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("keysim ctl {args:?}: JSON: {e}"))
}

/// The path of a file in a directory, as a `String` argument.
pub fn arg(p: &std::path::Path) -> String {
    p.to_str().expect("UTF-8 path").to_owned()
}

/// A path under `dir`.
pub fn under(dir: &std::path::Path, name: &str) -> PathBuf {
    dir.join(name)
}
