//! The GBA_U + MBMS scenario of `test_kit::mbms_run` (`test-kit/src/mbms_run.rs`) through a real pcscd: libpcsclite and
//! the `pcsc` crate on this side, pcscd's vsmartcard vpcd driver and `keysim vpcd` (slot 0,
//! reader `KEYSIM_PCSC_READER`) serving the card with the built-in profile on the other.
//!
//! After the run it writes what the network delivered (EF.GBABP RAND / B-TID / lifetime, EF.MSK
//! Key Domain / MSK IDs / counters, EF.MUK IDr / IDi / counter, EF.GBANL NAF_Id / B-TID) as JSON
//! to the file named by `KEYSIM_MBMS_EXPECT`, for `scripts/pysim-check.sh` to compare with what
//! osmocom pySim decodes from the same card; then it reports MTK generations per second and APDUs
//! per MTK update through pcscd (figures, not assertions).
//!
//! Needs the set-up of `scripts/pcsc-tests.sh` (a private pcscd and a fresh `keysim vpcd` card),
//! so it is ignored in a plain `cargo test`.

mod support;

use std::time::{Duration, Instant};

use sim_reader::{PcscReader, Reader, ReaderSelector, list_readers, measure_select_mf};
use test_kit::mbms_run::{self, CardLink};

/// MTK generations timed through pcscd.
const MTK_GENERATIONS: usize = 200;

fn open_reader() -> PcscReader {
    let name = std::env::var("KEYSIM_PCSC_READER").unwrap_or_else(|_| "Virtual PCD 00 00".to_owned());
    let start = Instant::now();
    loop {
        let readers = list_readers().unwrap_or_else(|e| panic!("PC/SC: {e}"));
        if readers.iter().any(|r| r.name == name && r.card_present) {
            return PcscReader::open(&ReaderSelector::Name(name)).expect("open reader");
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no card in '{name}' after 10 s: {readers:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs pcscd with `keysim vpcd` on slot 0: run by scripts/pcsc-tests.sh"]
fn mbms_run_through_pcscd() {
    let profile = support::vpcd_card_profile();
    let mut reader = open_reader();
    reader.reset().expect("warm reset through PC/SC");
    let protocol = reader.protocol();
    let (mut run, reader) = mbms_run::run(reader, &profile);
    eprintln!(
        "MBMS scenario through pcscd ({protocol}): {} commands, {} APDUs, {} MSKs, {} MTKs",
        run.steps.len(),
        run.raw_exchanges().count(),
        run.msks.len(),
        run.mtks.len()
    );

    // No Ks, MUK or MSK window crossed pcscd either.
    let (secrets, _) = mbms_run::secrets_and_outputs(&run);
    for ex in run.raw_exchanges() {
        let mut leaks = mbms_run::secret_windows_in(&secrets, &ex.response);
        leaks.extend(mbms_run::secret_windows_in(&secrets, &ex.command));
        assert!(leaks.is_empty(), "{leaks:?} in {ex:?}");
    }

    // Figures: MTK generations (growing MTK IDs) and SELECT MF through pcscd.
    let mut link = CardLink::new(reader);
    link.record = false;
    let start = Instant::now();
    let mut apdus = Vec::with_capacity(MTK_GENERATIONS);
    for _ in 0..MTK_GENERATIONS {
        let g = mbms_run::next_mtk(&mut link, &mut run).unwrap_or_else(|e| panic!("{e}"));
        apdus.push(g.apdus);
    }
    let elapsed = start.elapsed();
    apdus.dedup();
    assert_eq!(apdus.len(), 1, "APDUs per MTK update varied: {apdus:?}");
    // One command/response pair, plus one GET RESPONSE under T=0 (the card's ATR offers T=0
    // only, so `keysim vpcd` must serve it with `--protocol t0`).
    let expected = if protocol == sim_reader::Protocol::T0 { 2 } else { 1 };
    assert_eq!(apdus[0], expected, "APDUs per MTK update under {protocol}");
    eprintln!(
        "MTK Generation through pcscd: {:.0} per second ({MTK_GENERATIONS} in {elapsed:?}), {} APDUs per MTK update ({protocol})",
        MTK_GENERATIONS as f64 / elapsed.as_secs_f64(),
        apdus[0]
    );
    // The MTK generations moved the EF.MSK counter of the current MSK (the last MTK ID accepted
    // under it, the card's MSK_TS_IS_MTK_ID reading of TS 31.102 §4.2.80).
    let (current, last) = (run.current_msk.msk_id, run.next_mtk - 1);
    for pair in run.expected.msk.iter_mut().flat_map(|r| r.msk_ids.iter_mut()) {
        if pair.0 == current {
            pair.1 = last;
        }
    }
    mbms_run::check_files(&mut link, &run.expected).unwrap_or_else(|e| panic!("{e}"));
    if let Some(path) = std::env::var_os("KEYSIM_MBMS_EXPECT") {
        let json = serde_json::to_string_pretty(&run.expected.to_json()).expect("JSON");
        std::fs::write(&path, json + "\n").expect("write KEYSIM_MBMS_EXPECT");
        eprintln!("delivered EF contents written to {}", path.to_string_lossy());
    }
    let rate = measure_select_mf(link.into_reader(), 200).expect("SELECT MF");
    eprintln!(
        "SELECT MF through pcscd: {:.0} APDU/s ({:?} per APDU)",
        rate.apdus_per_second(),
        rate.per_apdu()
    );
}
