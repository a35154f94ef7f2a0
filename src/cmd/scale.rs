//! `keysim bench scale`, `keysim bench storm` and `keysim bench serve`: the arguments of
//! `harness::scale` and `harness::servebench`, and their figures printed.

use std::process::ExitCode;

use anyhow::Result;
use harness::scale::{self, ScaleOptions};
use serde_json::Value;

use crate::cli::{ScaleArgs, ServeBenchArgs};

fn options(args: &ScaleArgs) -> ScaleOptions {
    ScaleOptions {
        ues: args.ues,
        mtk_updates: args.mtk_updates,
        path: args.path.clone(),
        threads: args.threads,
    }
}

fn print(report: &Value, json_out: bool) -> Result<ExitCode> {
    if json_out {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else if let Some(o) = report.as_object() {
        for (k, v) in o {
            println!("{k:40} {v}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `keysim bench scale`.
pub fn run_scale(args: ScaleArgs) -> Result<ExitCode> {
    print(&scale::run_scale(&options(&args))?, args.json)
}

/// `keysim bench storm`.
pub fn run_storm(args: ScaleArgs) -> Result<ExitCode> {
    print(&scale::run_storm(&options(&args))?, args.json)
}

/// `keysim bench serve`.
pub fn run_serve(args: ServeBenchArgs) -> Result<ExitCode> {
    let options = harness::servebench::ServeBenchOptions {
        keysim: std::env::current_exe()?,
        ues: args.ues,
        duration_s: args.duration,
        mtk_period_ms: args.mtk_period_ms,
        path: args.path.clone(),
        bearer: args.bearer.parse()?,
    };
    let report = harness::servebench::run(&options)?;
    let ok = report["ok"].as_bool() == Some(true);
    print(&report, args.json)?;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
