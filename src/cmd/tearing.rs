//! `keysim tearing`: the power-cut campaign of `harness::tearing`, its arguments and its table.

use std::process::ExitCode;

use anyhow::Result;
use harness::tearing::{Defect, run_campaign};

/// `keysim tearing` arguments.
#[derive(Debug, clap::Args)]
pub struct TearingArgs {
    /// Print JSON: {"flows":[{"name","side","writes","cut_points","violations","details"}],
    /// "cut_points_total","violations_total","ok"}.
    #[arg(long)]
    pub json: bool,
    /// Run only this flow (see the table for the names).
    #[arg(long)]
    pub flow: Option<String>,
    /// Plant a deliberately broken write ordering, to see the checks fail.
    #[arg(long, value_enum, hide = true)]
    pub defect: Option<DefectArg>,
}

/// `--defect`: [`Defect`] by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DefectArg {
    /// [`Defect::JournalMarkLost`].
    JournalMarkLost,
    /// [`Defect::StoreInPlace`].
    StoreInPlace,
}

impl From<DefectArg> for Defect {
    fn from(d: DefectArg) -> Self {
        match d {
            DefectArg::JournalMarkLost => Defect::JournalMarkLost,
            DefectArg::StoreInPlace => Defect::StoreInPlace,
        }
    }
}

/// `keysim tearing`.
pub fn run(args: TearingArgs) -> Result<ExitCode> {
    let report = run_campaign(args.flow.as_deref(), args.defect.map(Defect::from))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{:<34} {:<5} {:>7} {:>11} {:>11}", "flow", "side", "writes", "cut points", "violations");
        for f in &report.flows {
            println!(
                "{:<34} {:<5} {:>7} {:>11} {:>11}",
                f.name, f.side, f.writes, f.cut_points, f.violations
            );
        }
        println!(
            "{} flows, {} cut points, {} invariant violations",
            report.flows.len(),
            report.cut_points_total,
            report.violations_total
        );
        for f in report.flows.iter().filter(|f| f.violations > 0) {
            for d in &f.details {
                println!("  {}: {d}", f.name);
            }
        }
    }
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
