//! `keysim ctl`: operator actions on a running `keysim serve` through its admin API
//! (`network::serve`); this module only parses, sends and prints.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

/// `keysim ctl` options.
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The admin API of the running `keysim serve`.
    #[arg(long, value_name = "ADDR", default_value_t = network::config::DEFAULT_ADMIN_ADDR, global = true)]
    pub admin: SocketAddr,
    /// Print the server's JSON answer as it is.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub action: CtlAction,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum CtlAction {
    /// The BM-SC's registrations and the BSF's bootstrappings.
    List,
    /// Per service the MSK ID, MTK ID and media frames; per subscriber SQN_HE; the MIKEY counters.
    Counters,
    /// A new MSK for SERVICE now, pushed to every UE registered to it.
    RotateMsk {
        /// The User Service ID.
        service: String,
    },
    /// A solicited pull (MSK ID 0) to the UE of BTID: it answers with a basic MSK request.
    Pull {
        /// The B-TID of a registration.
        btid: String,
    },
    /// Switch the scheduled media of SERVICE on or off.
    Media {
        /// The User Service ID.
        service: String,
        /// on or off.
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
}

const TIMEOUT: Duration = Duration::from_secs(10);

fn call(admin: SocketAddr, method: &str, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
    let bytes = body.map(|b| b.to_string()).unwrap_or_default();
    let ct = if bytes.is_empty() { "" } else { "application/json" };
    let r = network::http::request_blocking(admin, method, path, ct, bytes.as_bytes(), TIMEOUT)
        .with_context(|| format!("admin API at {admin} (is keysim serve running?)"))?;
    let v: Value = serde_json::from_slice(&r.body)
        .with_context(|| format!("admin API answered {} with a body that is not JSON", r.status))?;
    Ok((r.status, v))
}

pub fn run(args: CtlArgs) -> Result<ExitCode> {
    let (status, v) = match &args.action {
        CtlAction::List => call(args.admin, "GET", "/v1/registrations", None)?,
        CtlAction::Counters => call(args.admin, "GET", "/v1/counters", None)?,
        CtlAction::RotateMsk { service } => {
            call(args.admin, "POST", "/v1/rotate-msk", Some(json!({"service_id": service})))?
        }
        CtlAction::Pull { btid } => call(args.admin, "POST", "/v1/pull", Some(json!({"btid": btid})))?,
        CtlAction::Media { service, state } => {
            call(args.admin, "POST", "/v1/media", Some(json!({"service_id": service, "on": state == "on"})))?
        }
    };
    if status != 200 {
        let reason = v["error"].as_str().unwrap_or("no reason given");
        eprintln!("keysim ctl: the server refused ({status}): {reason}");
        if args.json {
            println!("{v}");
        }
        return Ok(ExitCode::from(1));
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    match &args.action {
        CtlAction::List => print_list(&v),
        CtlAction::Counters => print_counters(&v),
        CtlAction::RotateMsk { .. } => {
            println!(
                "{}: new MSK ID {:08X}",
                v["service_id"].as_str().unwrap_or(""),
                v["msk_id"].as_u64().unwrap_or(0)
            )
        }
        CtlAction::Pull { .. } => {
            println!("{}: {} solicited pull(s) sent", v["btid"].as_str().unwrap_or(""), v["pulls"])
        }
        CtlAction::Media { .. } => println!(
            "{}: media {}",
            v["service_id"].as_str().unwrap_or(""),
            if v["media_on"].as_bool() == Some(true) { "on" } else { "off" }
        ),
    }
    Ok(ExitCode::SUCCESS)
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_list(v: &Value) {
    let regs = v["registrations"].as_array().cloned().unwrap_or_default();
    println!("registrations: {}", regs.len());
    for r in regs {
        let services: Vec<String> = r["services"].as_array().into_iter().flatten().map(s).collect();
        println!(
            "  {}  {}  UE {}  {}  MIKEY counter {}  {}",
            s(&r["btid"]),
            s(&r["impi"]),
            s(&r["ue_address"]),
            if r["uicc_based"].as_bool() == Some(true) { "UICC-based" } else { "ME-based" },
            s(&r["mikey_counter"]),
            services.join(" ")
        );
    }
    let boots = v["bootstraps"].as_array().cloned().unwrap_or_default();
    println!("bootstraps: {}", boots.len());
    for b in boots {
        println!(
            "  {}  {}  {}  expires {}",
            s(&b["btid"]),
            s(&b["impi"]),
            s(&b["gba_type"]),
            s(&b["expires"])
        );
    }
}

fn print_counters(v: &Value) {
    for sv in v["services"].as_array().into_iter().flatten() {
        println!(
            "service {}: MSK ID {:08X}, MTK ID {}, media frames {}, media {}, {} UE(s)",
            s(&sv["service_id"]),
            sv["msk_id"].as_u64().unwrap_or(0),
            s(&sv["mtk_id"]),
            s(&sv["media_frames"]),
            if sv["media_on"].as_bool() == Some(true) { "on" } else { "off" },
            s(&sv["registered_ues"])
        );
    }
    for sub in v["subscribers"].as_array().into_iter().flatten() {
        println!("subscriber {}: SQN {:012X}", s(&sub["impi"]), sub["sqn"].as_u64().unwrap_or(0));
    }
    for m in v["mikey_counters"].as_array().into_iter().flatten() {
        println!("MUK of {}: MIKEY counter {}", s(&m["btid"]), s(&m["counter"]));
    }
}
