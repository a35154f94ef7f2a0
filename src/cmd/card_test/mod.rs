//! `keysim card-test`: a conformance suite for a card in any PC/SC reader (or the emulated one).
//!
//! A catalogue of cases (see [`cases`]) over TS 102 221 / ISO/IEC 7816-4 basics, USIM/ISIM AKA
//! (TS 33.102, TS 31.102 §7.1.2.1), GBA_U (TS 33.220, TS 31.102 §7.1.2.3-4) and MBMS key
//! management (TS 33.246 with the Rel-6 CRs, TS 31.102 §7.1.2.5), plus a check that no secret
//! leaves the card. Every expected answer is computed by the network side ([`net`]) from the
//! profile's K, OPc and IMPI: Milenage and the GBA KDF of the `gba` crate, MIKEY messages built
//! with `mikey::mbms` as a BM-SC builds them. Nothing expected is read back from the card.
//!
//! Applicability comes from the card (EF.DIR for the ISIM, EF.UST services n°68 and n°69, EF.IST
//! service n°2). Safe by default: a PIN is presented only while two or more tries are left, a
//! wrong PIN is tried once and the right one restores the counter, MSKs and MUKs the suite
//! delivers are deleted again, EF.PL is written back. Cases that cannot be undone (blocking PIN1,
//! filling EF.MSK) run only with `--destructive`.

mod cases;
mod net;
mod planted;
mod report;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::Args;
use sim_reader::{Emulator, PcscReader, Protocol, Reader, ReaderSelector, Session};

use crate::cmd::card::load_profile;

pub(crate) use net::Ctx;

/// `keysim card-test` options. Flag names and the JSON keys are a public interface.
#[derive(Debug, Args)]
#[command(after_long_help = report::HELP)]
pub struct CardTestArgs {
    /// A PC/SC reader, by index (0, 1, ...) or by a substring of its name.
    #[arg(long, value_name = "NAME", conflicts_with = "emulator", required_unless_present_any = ["emulator", "list"])]
    pub reader: Option<String>,
    /// Test the built-in emulated card (T=0, personalized from --profile).
    #[arg(long)]
    pub emulator: bool,
    /// The card's profile (TOML, as `keysim profile show` prints it): K, OPc, SQN, AMF, IMPI, PIN1
    /// and, for UNBLOCK PIN, PUK1. Default: the built-in profile.
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// ADM1 key value in hex (8 bytes): enables the cases that write ADM-protected files. The
    /// suite presents it once, and only while the card reports two or more tries left.
    #[arg(long, value_name = "HEX")]
    pub adm: Option<String>,
    /// Also run the cases that cannot be undone (blocking PIN1 and unblocking it with PUK1,
    /// filling EF.MSK); the suite says what they will do before it starts.
    #[arg(long)]
    pub destructive: bool,
    /// Run only the cases whose ID or clause matches PATTERN (a substring, or a glob with `*`).
    #[arg(long, value_name = "PATTERN")]
    pub only: Option<String>,
    /// Print the catalogue (ID, clause, title) and exit.
    #[arg(long)]
    pub list: bool,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write the results as JUnit XML into FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// With --emulator: the emulated card's NVM in FILE (as `keysim apdu --card-state`), e.g. a
    /// card whose EF.UST or EF.DIR was changed under ADM.
    #[arg(long, value_name = "FILE", requires = "emulator")]
    pub card_state: Option<PathBuf>,
    /// Test only: run the emulated card with a planted defect (see uicc_applet::testing::Defect),
    /// to prove the suite catches it.
    #[arg(long, value_name = "NAME", hide = true, requires = "emulator")]
    pub defect: Option<String>,
}

/// Run the suite; exit 0 only if no case failed.
pub fn run(args: CardTestArgs) -> Result<ExitCode> {
    let catalogue = cases::catalogue();
    let selected: Vec<&cases::Case> =
        catalogue.iter().filter(|c| args.only.as_deref().is_none_or(|p| c.matches(p))).collect();
    if args.list {
        report::print_list(&selected, args.json)?;
        return Ok(ExitCode::SUCCESS);
    }
    if selected.is_empty() {
        bail!("--only {}: no case matches", args.only.as_deref().unwrap_or_default());
    }
    let profile = load_profile(args.profile.as_deref())?;
    let adm = match &args.adm {
        Some(text) => Some(crate::cmd::hex_array::<8>("--adm", text)?),
        None => None,
    };
    let defect = match &args.defect {
        Some(name) => Some(planted::defect(name)?),
        None => None,
    };
    let reader: Box<dyn Reader> = match (&args.reader, defect) {
        (Some(name), _) => {
            let selector: ReaderSelector = name.parse().unwrap_or(ReaderSelector::Name(name.clone()));
            Box::new(PcscReader::open(&selector).context("opening the reader")?)
        }
        (None, Some(defect)) => Box::new(planted::PlantedCard::new(&profile, defect)?),
        (None, None) => Box::new(
            Emulator::open(&profile, args.card_state.as_deref())
                .context("starting the emulated card")?
                .with_protocol(Protocol::T0),
        ),
    };
    if args.destructive {
        let destructive: Vec<_> = selected.iter().filter(|c| c.destructive).collect();
        if !destructive.is_empty() {
            eprintln!("keysim card-test --destructive: these cases cannot be undone on the card:");
            for c in destructive {
                eprintln!("  {}  {}", c.id, c.destructive_note);
            }
        }
    }
    let mut ctx = Ctx::new(Session::new(reader), profile, adm)?;
    let mut results = Vec::with_capacity(selected.len());
    for case in &selected {
        let result = ctx.run_case(case, args.destructive);
        if !args.json {
            report::print_line(&result);
        }
        results.push(result);
    }
    let _ = ctx.session_mut().reader_mut().power_off();
    let run = report::Run {
        reader: ctx.reader_name.clone(),
        atr: ctx.facts.atr.clone(),
        defect: defect.map(|d| d.name().to_owned()),
        results,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&run.to_json())?);
    } else {
        report::print_summary(&run);
    }
    if let Some(path) = &args.junit {
        std::fs::write(path, run.to_junit()).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(if run.failed() == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
