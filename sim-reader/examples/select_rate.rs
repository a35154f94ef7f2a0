//! APDU rate of SELECT MF on the in-process emulator, or on a PC/SC reader given by index or name:
//!
//! ```sh
//! cargo run -p sim-reader --release --example select_rate            # emulator
//! cargo run -p sim-reader --release --example select_rate -- "Virtual PCD 00 00" 1000
//! ```

use sim_reader::{CardProfile, Emulator, PcscReader, ReaderSelector, measure_select_mf};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let reader = args.next();
    let count: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(10_000);
    let (name, rate) = match reader {
        None => ("emulator".to_owned(), measure_select_mf(Emulator::new(&CardProfile::default())?, count)?),
        Some(sel) => {
            let sel: ReaderSelector = sel.parse()?;
            (format!("{sel:?}"), measure_select_mf(PcscReader::open(&sel)?, count)?)
        }
    };
    println!(
        "{name}: {} SELECT MF, {} APDUs in {:?}: {:.0} APDU/s, {:?} per APDU",
        rate.commands,
        rate.apdus,
        rate.elapsed,
        rate.apdus_per_second(),
        rate.per_apdu()
    );
    Ok(())
}
