//! `keysim bench scale` and `keysim bench storm`: the arguments of `harness::scale` and its figures
//! printed.

use std::process::ExitCode;

use anyhow::Result;
use harness::scale::{self, ScaleOptions};
use serde_json::Value;

use crate::cli::ScaleArgs;

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
