//! `keysim serve`: the BSF and the BM-SC as standalone servers with persistent state
//! (`network::serve`); this module only parses the options and prints.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use clap::Args;
use network::bsf::Subscriber;
use network::config::{ServeConfig, SubscriberEntry};

/// `keysim serve` options.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The configuration file (TOML; `--print-config` prints a documented example).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the state database lives (default: $XDG_STATE_HOME/keysim/serve, else
    /// ~/.local/state/keysim/serve, else ./keysim-state).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Run the BSF on ADDR (with any of --bsf/--bmsc, only the functions named run).
    #[arg(long, value_name = "ADDR")]
    pub bsf: Option<SocketAddr>,
    /// Run the BM-SC's key management on ADDR.
    #[arg(long, value_name = "ADDR")]
    pub bmsc: Option<SocketAddr>,
    /// Run the SCF (SIP-based MBMS security, TS 26.237) on ADDR (UDP).
    #[arg(long, value_name = "ADDR")]
    pub scf: Option<SocketAddr>,
    /// Run the P-CSCF in front of the SCF on ADDR (UDP).
    #[arg(long, value_name = "ADDR")]
    pub pcscf: Option<SocketAddr>,
    /// Run the KMS (MIKEY-TICKET, TS 33.328) on ADDR.
    #[arg(long, value_name = "ADDR")]
    pub kms: Option<SocketAddr>,
    /// The admin API's address (default 127.0.0.1:24759, or the file's [admin] listen).
    #[arg(long, value_name = "ADDR")]
    pub admin: Option<SocketAddr>,
    /// Print a documented example configuration (which --config accepts as it stands) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Write the server's packets into FILE (pcapng) until it stops: the frames of the host's
    /// loopback to or from its ports and the UE MIKEY and bearer ports it sends to (a packet
    /// socket on lo: needs CAP_NET_RAW).
    #[arg(long, value_name = "FILE")]
    pub capture: Option<PathBuf>,
    /// Write an HTML message sequence chart of the same frames into FILE when it stops (as
    /// keysim demo --report).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// The ports whose frames a capture of the server keeps: every address it listens on, the Zn
/// addresses it asks, the UE MIKEY port and the bearer's addresses it sends to.
fn capture_ports(plan: &network::serve::Plan) -> crate::capture::HostPorts {
    let c = &plan.config;
    let mut ports: Vec<u16> = [plan.bsf, plan.bmsc, plan.kms, plan.scf, plan.pcscf]
        .into_iter()
        .flatten()
        .map(|a| a.port())
        .chain([c.admin.listen.port()])
        .collect();
    let mut mikey_ports = Vec::new();
    if plan.bmsc.is_some() {
        let b = &c.bmsc;
        mikey_ports.push(b.ue_mikey_port);
        mikey_ports.extend(b.bearer_mikey_or_default().iter().map(|a| a.port()));
        ports.push(b.mikey_listen.port());
        ports.extend(b.bsf_zn.map(|a| a.port()));
        ports.extend(b.bearer_media_or_default().iter().map(|a| a.port()));
    }
    ports.extend(c.kms.bsf_zn.filter(|_| plan.kms.is_some()).map(|a| a.port()));
    ports.extend(&mikey_ports);
    ports.sort_unstable();
    ports.dedup();
    crate::capture::HostPorts { ports, mikey_ports }
}

/// The built-in card's subscriber, as the BSF takes it and as the example writes it out.
fn builtin() -> Result<(Subscriber, SubscriberEntry)> {
    let profile = super::card::load_profile(None)?;
    let sub =
        Subscriber::from_profile_toml(&profile.to_toml()).map_err(|e| anyhow!("built-in subscriber: {e}"))?;
    let j: serde_json::Value = serde_json::from_str(&profile.to_json())?;
    let s = |k: &str| j[k].as_str().unwrap_or_default().to_owned();
    let entry = SubscriberEntry {
        imsi: s("imsi"),
        impi: s("impi"),
        impu: profile.impu().to_vec(),
        k: s("k"),
        opc: s("opc"),
        amf: s("amf"),
        sqn: s("sqn"),
        gba_type: "GBA_U".into(),
    };
    Ok((sub, entry))
}

pub fn run(args: ServeArgs) -> Result<ExitCode> {
    let (sub, entry) = builtin()?;
    if args.print_config {
        print!("{}", network::config::example(&entry));
        return Ok(ExitCode::SUCCESS);
    }
    let config = match &args.config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| anyhow!("--config {}: {e}", path.display()))?;
            match ServeConfig::parse(&text) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("keysim serve: {}: {e}", path.display());
                    return Ok(ExitCode::from(2));
                }
            }
        }
        None => ServeConfig::builtin(),
    };
    let mut config = config;
    if let Some(a) = args.admin {
        if !a.ip().is_loopback() {
            eprintln!("keysim serve: --admin {a}: the admin API listens on loopback only");
            return Ok(ExitCode::from(2));
        }
        config.admin.listen = a;
    }
    // The built-in cards: the one of `keysim demo` and the callee of `keysim call`.
    let callee = sim_reader::CardProfile::callee();
    let callee = Subscriber::from_profile_toml(&callee.to_toml())
        .map_err(|e| anyhow!("built-in callee subscriber: {e}"))?;
    let subs = vec![sub, callee];
    let sip = (args.scf, args.pcscf);
    let plan =
        match network::serve::Plan::new(config, args.state_dir, args.bsf, args.bmsc, args.kms, sip, subs) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("keysim serve: {e}");
                return Ok(ExitCode::from(2));
            }
        };
    let report = args.report.as_deref().map(|p| (p, crate::report::RunKind::Demo));
    let capture = crate::capture::begin_on_host(args.capture.as_deref(), report, capture_ports(&plan), None)?;
    crate::capture::end(capture, serve(plan))
}

/// Starts the planned functions, prints where they are and serves until a signal.
fn serve(plan: network::serve::Plan) -> Result<ExitCode> {
    let running = match network::serve::start(plan) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keysim serve: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "keysim serve: the subscribers' K and OPc and every key derived here are TEST keys")?;
    if let Some(a) = running.bsf_addr() {
        writeln!(out, "BSF    http://{a}/ (Ub), http://{a}/zn (Zn)")?;
    }
    if let Some((http, mikey)) = running.bmsc_addrs() {
        writeln!(out, "BM-SC  http://{http}/keymanagement, MIKEY from {mikey}")?;
    }
    if let (Some(scf), pcscf) = running.sip_addrs() {
        let p = pcscf.map(|p| format!(", P-CSCF sip:{p}")).unwrap_or_default();
        writeln!(out, "SCF    sip:{scf} (UDP){p}")?;
    }
    if let Some(a) = running.kms_addr() {
        writeln!(out, "KMS    http://{a}/keymanagement (MIKEY-TICKET)")?;
    }
    writeln!(
        out,
        "admin  http://{}/v1/ (keysim ctl --admin {})",
        running.admin_addr(),
        running.admin_addr()
    )?;
    writeln!(out, "state  {} ({})", running.state_dir().display(), running.db_path().display())?;
    writeln!(out, "serving until SIGINT or SIGTERM")?;
    out.flush()?;
    drop(out);
    let running_dir = running.state_dir().to_owned();
    let signal = running.run_until_signal()?;
    println!("{signal}: stopped; the state stays in {}", running_dir.display());
    Ok(ExitCode::SUCCESS)
}
