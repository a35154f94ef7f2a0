//! `keysim compare --random N | --history EVENTS`: the differential validation of the two MBMS
//! key-management paths ([`harness::differential`]) on the command line.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use harness::differential::{self, Allowance, CardSource, EmulatedCards, Event, HistoryRun};
use serde::Serialize;
use sim_reader::{CardProfile, Emulator, PcscReader, Reader, ReaderSelector};

use crate::cli::CompareArgs;

/// Most runs spent shrinking one divergence.
const SHRINK_BUDGET: usize = 400;

/// The UICC-based path's card in a PC/SC reader; the ME-based path's on an emulated card.
struct PcscCards {
    selector: ReaderSelector,
    profile: CardProfile,
}

impl CardSource for PcscCards {
    fn uicc_card(&mut self) -> harness::Result<Box<dyn Reader>> {
        let mut reader = PcscReader::open(&self.selector)?;
        reader.power_on()?;
        Ok(Box::new(reader))
    }

    fn me_card(&mut self) -> harness::Result<Box<dyn Reader>> {
        Ok(Box::new(Emulator::new(&self.profile)?))
    }

    fn run_nonce(&mut self) -> u16 {
        // A card that keeps its state between runs must see new B-TIDs (new MUK IDs) every run.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        (now.as_nanos() as u16) | 1
    }
}

#[derive(Serialize)]
struct FirstDifference {
    step: usize,
    event: String,
    uicc: differential::Observation,
    me: differential::Observation,
}

#[derive(Serialize)]
struct Divergence {
    seed: Option<u64>,
    /// Steps of the shrunk history.
    steps: usize,
    history: String,
    original_steps: usize,
    first_difference: FirstDifference,
    command: String,
}

#[derive(Serialize)]
struct AllowedSeen {
    name: String,
    clause: &'static str,
    steps: usize,
}

#[derive(Serialize)]
struct Report {
    histories: u64,
    steps: usize,
    divergences: Vec<Divergence>,
    allowed_differences_seen: Vec<AllowedSeen>,
    ok: bool,
}

pub fn run(args: &CompareArgs, profile: &CardProfile) -> Result<ExitCode> {
    let mut cards: Box<dyn CardSource> = match &args.reader {
        Some(name) => Box::new(PcscCards {
            selector: name.parse().unwrap_or(ReaderSelector::Name(name.clone())),
            profile: profile.clone(),
        }),
        None => Box::new(EmulatedCards(profile.clone())),
    };
    me::me_based::planted::set(match args.plant.as_deref() {
        Some("me-stale-mtk-id") => Some(me::me_based::planted::Defect::StaleMtkIdAccepted),
        _ => None,
    });
    let dir = std::env::temp_dir().join(format!("keysim-compare-random-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = run_all(args, profile, cards.as_mut(), &dir);
    let _ = std::fs::remove_dir_all(&dir);
    let report = result?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print(&report);
    }
    Ok(if report.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn run_all(
    args: &CompareArgs,
    profile: &CardProfile,
    cards: &mut dyn CardSource,
    dir: &std::path::Path,
) -> Result<Report> {
    let histories: Vec<(Option<u64>, Vec<Event>)> = match (&args.history, args.random) {
        (Some(text), _) => {
            vec![(None, differential::parse_history(text).map_err(|e| anyhow!("--history: {e}"))?)]
        }
        (None, Some(n)) => {
            (0..n).map(|i| args.seed.wrapping_add(i)).map(|s| (Some(s), differential::generate(s))).collect()
        }
        (None, None) => Vec::new(),
    };
    let mut run = |h: &[Event]| -> Result<HistoryRun> {
        differential::run(h, profile, cards, dir).map_err(|e| anyhow!("{e}"))
    };
    let mut steps = 0;
    let mut allowed: BTreeMap<Allowance, usize> = BTreeMap::new();
    let mut divergences = Vec::new();
    for (seed, history) in &histories {
        let result = run(history).with_context(|| match seed {
            Some(s) => format!("history of seed {s}"),
            None => "the history".to_owned(),
        })?;
        steps += result.steps.len();
        for s in &result.steps {
            if let Some(a) = s.allowed.filter(|_| s.uicc != s.me) {
                *allowed.entry(a).or_default() += 1;
            }
        }
        if result.first_divergence().is_some() {
            // Shrink: the history up to its first divergence, then fewer events while one remains.
            let cut = result.first_divergence().map_or(history.len(), |(i, _)| i + 1);
            let short = differential::shrink(
                &history[..cut],
                |h| run(h).is_ok_and(|r| r.first_divergence().is_some()),
                SHRINK_BUDGET,
            );
            let shown = run(&short)?;
            let (i, step) =
                shown.first_divergence().ok_or_else(|| anyhow!("the shrunk history no longer diverges"))?;
            let text = differential::history_text(&short);
            let mut command = format!("keysim compare --history '{text}'");
            if let Some(r) = &args.reader {
                command.push_str(&format!(" --reader '{r}'"));
            }
            if let Some(p) = &args.profile {
                command.push_str(&format!(" --profile '{}'", p.display()));
            }
            if let Some(d) = &args.plant {
                command.push_str(&format!(" --plant {d}"));
            }
            divergences.push(Divergence {
                seed: *seed,
                steps: short.len(),
                history: text,
                original_steps: history.len(),
                first_difference: FirstDifference {
                    step: i,
                    event: step.event.clone(),
                    uicc: step.uicc.clone(),
                    me: step.me.clone(),
                },
                command,
            });
        }
    }
    let ok = divergences.is_empty();
    Ok(Report {
        histories: histories.len() as u64,
        steps,
        divergences,
        allowed_differences_seen: allowed
            .into_iter()
            .map(|(a, n)| AllowedSeen { name: format!("{a:?}"), clause: a.clause(), steps: n })
            .collect(),
        ok,
    })
}

fn print(r: &Report) {
    println!("{} histories, {} steps through both key-management paths", r.histories, r.steps);
    for a in &r.allowed_differences_seen {
        println!("allowed difference {} ({} steps): {}", a.name, a.steps, a.clause);
    }
    for d in &r.divergences {
        let seed = d.seed.map_or(String::new(), |s| format!("seed {s}: "));
        println!(
            "DIVERGENCE {seed}{} steps (shrunk from {}), at step {} ({}):",
            d.steps, d.original_steps, d.first_difference.step, d.first_difference.event
        );
        let o = |x: &differential::Observation| {
            format!("{}; MSKs held {:?}; SRTP decrypts {:?}", x.outcome, x.msks, x.decrypts)
        };
        println!("  UICC-based: {}", o(&d.first_difference.uicc));
        println!("  ME-based:   {}", o(&d.first_difference.me));
        println!("  run it again: {}", d.command);
    }
    println!("{}", if r.ok { "no divergence" } else { "THE PATHS DIVERGE" });
}
