//! One `keysim serve` process against the N UEs of one `keysim ue --ues N` process over real
//! loopback sockets (`keysim bench serve`): TS 33.220 bootstrapping and TS 33.246 §6.3.2
//! registration per UE, then §6.3.3 MTK delivery on the bearer to all of them.
//!
//! The bench starts `keysim serve` as a child with a private state directory, free ports and a
//! configuration whose `[[subscriber_range]]` holds exactly the N subscribers `keysim ue --ues N`
//! numbers its cards with (`network::config::derived_identity`); the bearer is one IPv4 multicast
//! group on loopback that every UE joins, or (`unicast`) one MTK and one SRTP address per UE, to
//! which the BM-SC sends a copy each. It then runs `keysim ue --ues N --json` and takes its
//! figures: the registration rate over the window from the first registration to the last, the
//! MTK fan-out (per MTK installed by two UEs or more, first to last UE installing it) and the UE
//! process's peak memory. From the server's side it polls the admin API for the UEs registered and
//! reads the server's memory and CPU time from `/proc`.

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use me::standalone::{status_field_kib, ue_loopback_address};
use serde_json::{Value, json};
use sim_reader::CardProfile;

use crate::{Context, Error, Result, bail, ensure};

/// The line `keysim serve` prints on stdout once every function listens.
const SERVE_READY_LINE: &str = "serving until";
/// The longest `keysim serve` may take to start.
const SERVE_START_WAIT: Duration = Duration::from_secs(60);
/// The longest it may take to stop after SIGTERM (in-flight requests finish first).
const SERVE_STOP_WAIT: Duration = Duration::from_secs(20);
/// How often the admin API and `/proc` are read while the UEs run.
const POLL_EVERY: Duration = Duration::from_millis(100);
/// Timeout of one admin request.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Time the UE process may take beyond `--duration` per UE (bootstrapping, registration and the
/// MSK push of every UE on a shared machine), and in any case.
const UE_WAIT_PER_UE: Duration = Duration::from_millis(500);
const UE_WAIT_BASE: Duration = Duration::from_secs(120);
/// `/proc/PID/stat` counts CPU time in clock ticks of `USER_HZ`, 100 on every Linux architecture
/// this runs on (`sysconf(_SC_CLK_TCK)`; `man 5 proc`).
const USER_HZ: f64 = 100.0;
/// The multicast group of the bearer (organisation-local scope, RFC 2365); the ports are free
/// ones, so concurrent runs do not meet.
const BEARER_GROUP: Ipv4Addr = Ipv4Addr::new(239, 255, 42, 1);
/// The bench's schedule: SRTP packets per media period and the media period.
const MEDIA_PERIOD_MS: u64 = 100;
const PACKETS_PER_MEDIA_PERIOD: u32 = 2;

/// How the bearer reaches the UEs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bearer {
    /// One IPv4 multicast group on loopback, joined by every UE: one datagram per message.
    Multicast,
    /// One address per UE (its MIKEY socket and an SRTP socket on its own loopback address): the
    /// BM-SC sends N copies.
    Unicast,
}

impl std::str::FromStr for Bearer {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "multicast" => Ok(Bearer::Multicast),
            "unicast" => Ok(Bearer::Unicast),
            other => Err(Error::Other(format!("bearer `{other}`: expected multicast or unicast"))),
        }
    }
}

/// What `keysim bench serve` runs.
#[derive(Debug, Clone)]
pub struct ServeBenchOptions {
    /// The `keysim` executable (the bench's own).
    pub keysim: PathBuf,
    /// Number of UEs (1 to `me::standalone::MAX_UES`).
    pub ues: usize,
    /// Seconds each UE listens to the bearer after its MSK push.
    pub duration_s: f64,
    /// The BM-SC's MTK period.
    pub mtk_period_ms: u64,
    /// Key-management path of the UEs (`uicc` or `me`).
    pub path: String,
    /// How the bearer reaches the UEs.
    pub bearer: Bearer,
}

/// Free loopback ports (free a moment ago).
struct Ports {
    admin: u16,
    bsf: u16,
    bmsc: u16,
    bmsc_mikey: u16,
    ue_mikey: u16,
    bearer_mikey: u16,
    bearer_media: u16,
}

fn tcp_port() -> Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("a free TCP port")?.local_addr()?.port())
}

fn udp_port() -> Result<u16> {
    Ok(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).context("a free UDP port")?.local_addr()?.port())
}

impl Ports {
    fn pick() -> Result<Ports> {
        Ok(Ports {
            admin: tcp_port()?,
            bsf: tcp_port()?,
            bmsc: tcp_port()?,
            bmsc_mikey: udp_port()?,
            ue_mikey: udp_port()?,
            bearer_mikey: udp_port()?,
            bearer_media: udp_port()?,
        })
    }
}

fn list(addrs: &[String]) -> String {
    addrs.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", ")
}

/// The `keysim serve` configuration of the run.
fn serve_config(o: &ServeBenchOptions, p: &Ports) -> Result<String> {
    let profile = CardProfile::default();
    let card: Value = serde_json::from_str(&profile.to_json()).context("the built-in card profile")?;
    let field = |k: &str| {
        card[k].as_str().map(str::to_owned).ok_or_else(|| Error::Other(format!("profile has no {k}")))
    };
    let (mikey, media): (Vec<String>, Vec<String>) = match o.bearer {
        Bearer::Multicast => (
            vec![format!("{BEARER_GROUP}:{}", p.bearer_mikey)],
            vec![format!("{BEARER_GROUP}:{}", p.bearer_media)],
        ),
        Bearer::Unicast => {
            let mut mikey = Vec::with_capacity(o.ues);
            let mut media = Vec::with_capacity(o.ues);
            for i in 0..o.ues {
                let ip = ue_loopback_address(i)?;
                mikey.push(format!("{ip}:{}", p.ue_mikey));
                media.push(format!("{ip}:{}", p.bearer_media));
            }
            (mikey, media)
        }
    };
    Ok(format!(
        "[admin]\nlisten = \"127.0.0.1:{admin}\"\n\
         [bsf]\nlisten = \"127.0.0.1:{bsf}\"\n\
         [bmsc]\nlisten = \"127.0.0.1:{bmsc}\"\nmikey_listen = \"127.0.0.1:{bmsc_mikey}\"\n\
         ue_mikey_port = {ue_mikey}\nbearer_mikey = [{mikey}]\nbearer_media = [{media}]\n\
         mtk_period_ms = {mtk}\nmedia_period_ms = {MEDIA_PERIOD_MS}\n\
         packets_per_media_period = {PACKETS_PER_MEDIA_PERIOD}\n\
         [[subscriber_range]]\ncount = {n}\nopc = \"{opc}\"\namf = \"{amf}\"\nsqn = \"{sqn}\"\n",
        admin = p.admin,
        bsf = p.bsf,
        bmsc = p.bmsc,
        bmsc_mikey = p.bmsc_mikey,
        ue_mikey = p.ue_mikey,
        mikey = list(&mikey),
        media = list(&media),
        mtk = o.mtk_period_ms,
        n = o.ues,
        opc = field("opc")?,
        amf = field("amf")?,
        sqn = field("sqn")?,
    ))
}

/// The `keysim ue` arguments of the run.
fn ue_args(o: &ServeBenchOptions, p: &Ports) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "ue".into(),
        "--emulator".into(),
        "--ues".into(),
        o.ues.to_string(),
        "--path".into(),
        o.path.clone(),
        "--bsf".into(),
        format!("http://127.0.0.1:{}/", p.bsf),
        "--bmsc".into(),
        format!("http://127.0.0.1:{}", p.bmsc),
        "--mikey-bind".into(),
        format!("127.0.0.1:{}", p.ue_mikey),
        "--duration".into(),
        o.duration_s.to_string(),
        "--json".into(),
        "--quiet".into(),
    ];
    match o.bearer {
        Bearer::Multicast => a.extend([
            "--bearer-mikey".into(),
            format!("{BEARER_GROUP}:{}", p.bearer_mikey),
            "--bearer-media".into(),
            format!("{BEARER_GROUP}:{}", p.bearer_media),
        ]),
        Bearer::Unicast => a.extend(["--bearer-media".into(), format!("127.0.0.1:{}", p.bearer_media)]),
    }
    a
}

/// A running `keysim serve`, stopped (SIGTERM, then SIGKILL) when dropped.
struct Server {
    child: Child,
    admin: SocketAddr,
}

impl Server {
    fn start(keysim: &Path, config: &Path, state: &Path, admin: SocketAddr) -> Result<Server> {
        let mut child = Command::new(keysim)
            .args(["serve", "--config"])
            .arg(config)
            .arg("--state-dir")
            .arg(state)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {} serve", keysim.display()))?;
        let out = child.stdout.take().ok_or_else(|| Error::Other("keysim serve: no stdout".into()))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(std::result::Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server { child, admin };
        let deadline = Instant::now() + SERVE_START_WAIT;
        loop {
            match rx.recv_timeout(POLL_EVERY) {
                Ok(line) if line.starts_with(SERVE_READY_LINE) => return Ok(server),
                Ok(_) => {}
                Err(_) => {
                    if let Some(status) = server.child.try_wait()? {
                        let mut err = String::new();
                        if let Some(mut e) = server.child.stderr.take() {
                            let _ = e.read_to_string(&mut err);
                        }
                        bail!("keysim serve ended at start ({status}): {}", err.trim());
                    }
                    ensure!(
                        Instant::now() < deadline,
                        "keysim serve did not start within {SERVE_START_WAIT:?}"
                    );
                }
            }
        }
    }

    fn status(&self) -> Option<String> {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()
    }

    fn kib(&self, field: &str) -> Option<u64> {
        status_field_kib(&self.status()?, field)
    }

    /// User + system CPU seconds so far.
    fn cpu_s(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // Fields after the command name (which may hold spaces), from field 3 on: utime and
        // stime are fields 14 and 15.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        Some(ticks as f64 / USER_HZ)
    }

    fn admin(&self, path: &str) -> Result<Value> {
        let r = network::http::request_blocking(self.admin, "GET", path, "", &[], ADMIN_TIMEOUT)
            .with_context(|| format!("admin API {path}"))?;
        ensure!(r.status == 200, "admin API {path}: status {}", r.status);
        serde_json::from_slice(&r.body).with_context(|| format!("admin API {path}: not JSON"))
    }

    /// UEs registered with the first service now.
    fn registered(&self) -> Result<u64> {
        let v = self.admin("/v1/counters")?;
        Ok(v["services"].get(0).and_then(|s| s["registered_ues"].as_u64()).unwrap_or(0))
    }

    /// SIGTERM and the exit status (SIGKILL when it does not stop in time).
    fn stop(mut self) -> Result<String> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + SERVE_STOP_WAIT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status.to_string());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let status = self.child.wait()?;
                return Ok(format!("killed after {SERVE_STOP_WAIT:?} without stopping ({status})"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The CPU of this machine as `/proc/cpuinfo` names it, and the cores the process may use.
pub fn cpu() -> Value {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.split(':').next().is_some_and(|k| k.trim() == name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
    };
    let flags = field("flags").unwrap_or_default();
    let of_note: Vec<&str> = flags
        .split_whitespace()
        .filter(|f| ["aes", "vaes", "avx2", "avx512f", "sha_ni", "pclmulqdq", "vpclmulqdq"].contains(f))
        .collect();
    json!({
        "model": field("model name"),
        "family": field("cpu family"),
        "model_number": field("model"),
        "cores": std::thread::available_parallelism().map_or(0, usize::from),
        "flags_of_note": of_note.join(" "),
        "hypervisor": flags.split_whitespace().any(|f| f == "hypervisor"),
        "loadavg": std::fs::read_to_string("/proc/loadavg").ok().map(|s| s.trim().to_owned()),
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `keysim bench serve`: one run; the figures as JSON.
pub fn run(o: &ServeBenchOptions) -> Result<Value> {
    ensure!(o.ues >= 1 && o.ues <= me::standalone::MAX_UES, "--ues: 1 to {}", me::standalone::MAX_UES);
    ensure!(o.path == "uicc" || o.path == "me", "--path: uicc or me");
    ensure!(
        o.duration_s.is_finite() && o.duration_s > 0.0 && o.duration_s <= 3600.0,
        "--duration: seconds in (0, 3600]"
    );
    ensure!(o.mtk_period_ms >= 1, "--mtk-period-ms: at least 1");
    let dir =
        tempfile::Builder::new().prefix("keysim-bench-serve-").tempdir().context("a temporary directory")?;
    let ports = Ports::pick()?;
    let config = dir.path().join("serve.toml");
    std::fs::write(&config, serve_config(o, &ports)?).context("writing the serve configuration")?;
    let state = dir.path().join("state");
    let admin = SocketAddr::from((Ipv4Addr::LOCALHOST, ports.admin));

    let started = Instant::now();
    let server = Server::start(&o.keysim, &config, &state, admin)?;
    let serve_start_s = started.elapsed().as_secs_f64();
    let serve_rss_idle = server.kib("VmRSS");
    let serve_cpu_before = server.cpu_s();

    let mut ue = Command::new(&o.keysim)
        .args(ue_args(o, &ports))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting keysim ue")?;
    let out = ue.stdout.take().ok_or_else(|| Error::Other("keysim ue: no stdout".into()))?;
    let err = ue.stderr.take().ok_or_else(|| Error::Other("keysim ue: no stderr".into()))?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(out).read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(err).read_to_string(&mut s);
        s
    });
    let wait = UE_WAIT_BASE + UE_WAIT_PER_UE * o.ues as u32 + Duration::from_secs_f64(o.duration_s);
    let ue_started = Instant::now();
    let mut registered_max = 0u64;
    let mut serve_rss_peak = 0u64;
    let ue_status = loop {
        if let Some(status) = ue.try_wait()? {
            break status;
        }
        if ue_started.elapsed() > wait {
            let _ = ue.kill();
            let _ = ue.wait();
            bail!("keysim ue --ues {} did not end within {wait:?}", o.ues);
        }
        if let Ok(n) = server.registered() {
            registered_max = registered_max.max(n);
        }
        serve_rss_peak = serve_rss_peak.max(server.kib("VmRSS").unwrap_or(0));
        std::thread::sleep(POLL_EVERY);
    };
    let ue_wall_s = ue_started.elapsed().as_secs_f64();
    let text = reader.join().unwrap_or_default();
    let ue_err = err_reader.join().unwrap_or_default();
    let serve_rss_end = server.kib("VmRSS");
    let serve_hwm = server.kib("VmHWM");
    let serve_cpu_s = match (serve_cpu_before, server.cpu_s()) {
        (Some(a), Some(b)) => Some(round3(b - a)),
        _ => None,
    };
    let bootstraps = server.admin("/v1/registrations")?["bootstraps"].as_array().map_or(0, Vec::len);
    let serve_exit = server.stop()?;

    let r: Value = serde_json::from_str(&text).map_err(|e| {
        Error::Other(format!("keysim ue ({ue_status}) printed no JSON report ({e}): {}", ue_err.trim()))
    })?;
    let n = o.ues as f64;
    let ue_hwm = r["vm_hwm_kib"].as_u64();
    Ok(json!({
        "ues": o.ues,
        "path": o.path,
        "bearer": match o.bearer { Bearer::Multicast => "multicast", Bearer::Unicast => "unicast" },
        "duration_s": o.duration_s,
        "mtk_period_ms": o.mtk_period_ms,
        "ok": r["ok"].as_bool() == Some(true) && ue_status.success(),
        "ue_exit_status": ue_status.code(),
        "ok_count": r["ok_count"],
        "registered": r["registered"],
        "with_msk": r["with_msk"],
        "with_mtk": r["with_mtk"],
        "decrypting": r["decrypting"],
        "decrypt_failures": r["decrypt_failures"],
        "registration_window_ms": r["registration_window_ms"],
        "registrations_per_s": r["registrations_per_s"],
        "mtk_fanout_mtks": r["mtk_fanout"]["mtks"],
        "mtk_fanout_mean_ms": r["mtk_fanout"]["mean_ms"],
        "mtk_fanout_p50_ms": r["mtk_fanout"]["p50_ms"],
        "mtk_fanout_p95_ms": r["mtk_fanout"]["p95_ms"],
        "mtk_fanout_max_ms": r["mtk_fanout"]["max_ms"],
        "ue_vm_hwm_kib": ue_hwm,
        "ue_memory_per_ue_kib": ue_hwm.map(|h| round3(h as f64 / n)),
        "ue_memory_per_ue_above_start_kib": r["memory_per_ue_kib"],
        "ue_wall_s": round3(ue_wall_s),
        "serve_start_s": round3(serve_start_s),
        "serve_registered_max": registered_max,
        "serve_bootstraps": bootstraps,
        "serve_rss_idle_kib": serve_rss_idle,
        "serve_rss_kib": serve_rss_end,
        "serve_rss_peak_sampled_kib": serve_rss_peak,
        "serve_hwm_kib": serve_hwm,
        "serve_cpu_s": serve_cpu_s,
        "serve_exit": serve_exit,
        "cpu": cpu(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unicast_config_lists_one_bearer_address_per_ue() {
        let o = ServeBenchOptions {
            keysim: PathBuf::from("keysim"),
            ues: 3,
            duration_s: 1.0,
            mtk_period_ms: 100,
            path: "uicc".into(),
            bearer: Bearer::Unicast,
        };
        let p =
            Ports { admin: 1, bsf: 2, bmsc: 3, bmsc_mikey: 4, ue_mikey: 5, bearer_mikey: 6, bearer_media: 7 };
        let text = serve_config(&o, &p).unwrap();
        let c = network::config::ServeConfig::parse(&text).unwrap();
        assert_eq!(c.bmsc.bearer_mikey.len(), 3);
        assert_eq!(c.bmsc.bearer_media[2], "127.0.1.3:7".parse::<SocketAddr>().unwrap());
        assert_eq!(c.subscribers().unwrap().len(), 3);
    }
}
