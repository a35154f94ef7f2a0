//! End to end through a real pcscd: the emulator served by the vpcd server to pcscd's vsmartcard
//! driver, driven through libpcsclite with the `pcsc` crate, must answer byte for byte what the same
//! card answers in-process.
//!
//! Ignored by default: it needs pcscd with the vpcd driver listening on 127.0.0.1:35963 and the
//! reader "Virtual PCD 00 00" free (or the port in `KEYSIM_VPCD_PORT` and the reader named in
//! `KEYSIM_PCSC_READER`, for a private pcscd). CI starts pcscd and runs it with `--ignored`; by hand:
//!
//! ```sh
//! pcscd -f & PCSCD_PID=$!
//! cargo test -p sim-reader --test pcscd_vpcd -- --ignored --nocapture
//! kill $PCSCD_PID
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use apdu::Status;
use sim_reader::vpcd::{self, ServeOptions};
use sim_reader::{
    CardProfile, Emulator, Error, PcscReader, Protocol, Reader, ReaderSelector, Session, list_readers,
    measure_select_mf,
};

/// The reader of the vpcd slot the server connects to.
fn reader_name() -> String {
    std::env::var("KEYSIM_PCSC_READER").unwrap_or_else(|_| "Virtual PCD 00 00".to_owned())
}

/// The vpcd slot's port.
fn vpcd_port() -> u16 {
    std::env::var("KEYSIM_VPCD_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(vpcd::DEFAULT_PORT)
}

/// SELECT MF, no data returned (TS 102 221 §11.1.1).
const SELECT_MF: &str = "00a4000c023f00";
/// SELECT ADF.USIM by its AID (RID A000000087, application code 1002; TS 31.102), return FCP.
const SELECT_USIM: &str = "00a4040407a000000087100200";
/// VERIFY PIN1 (key reference 01) with the default profile's "1234", padded with FF: EF.IMSI is
/// read under PIN1 (TS 31.102 §4.2.2).
const VERIFY_PIN1: &str = "002000010831323334ffffffff";
/// SELECT EF.IMSI (6F07 under ADF.USIM), no data returned.
const SELECT_IMSI: &str = "00a4000c026f07";
/// READ BINARY of the 9 bytes of EF.IMSI.
const READ_IMSI: &str = "00b0000009";

fn wait_for_card(reader: &str, deadline: Duration) -> Result<(), String> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < deadline {
        match list_readers() {
            Ok(readers) => {
                if readers.iter().any(|r| r.name.contains(reader) && r.card_present) {
                    return Ok(());
                }
                last = format!("{readers:?}");
            }
            Err(e @ Error::NoService) => return Err(e.to_string()),
            Err(e) => last = e.to_string(),
        }
        thread::sleep(Duration::from_millis(50));
    }
    Err(format!("no card in '{reader}' after {deadline:?}: {last}"))
}

#[test]
#[ignore = "needs pcscd with the vsmartcard vpcd driver (run with --ignored after starting pcscd)"]
fn emulator_through_pcscd_matches_in_process() {
    let profile = CardProfile::default();
    let stop = Arc::new(AtomicBool::new(false));
    let opts = ServeOptions { stop: stop.clone(), ..ServeOptions::default() };
    let served = Emulator::new(&profile).unwrap().with_protocol(Protocol::T0);
    let server = thread::spawn(move || {
        let mut card = served;
        vpcd::serve(&mut card, ([127, 0, 0, 1], vpcd_port()).into(), &opts)
    });
    let result = std::panic::catch_unwind(|| {
        let reader = reader_name();
        wait_for_card(&reader, Duration::from_secs(10)).unwrap();
        let pcsc = PcscReader::open(&ReaderSelector::Name(reader.clone())).unwrap();
        assert_eq!(pcsc.name(), reader);
        let mut through_pcscd = Session::new(pcsc);
        // The ATR announces T=0 only (TD1 = 80), so the in-process twin speaks T=0 as well.
        assert_eq!(through_pcscd.reader().protocol(), Protocol::T0);
        let mut in_process = Session::new(Emulator::new(&profile).unwrap().with_protocol(Protocol::T0));
        assert_eq!(through_pcscd.reader_mut().reset().unwrap(), uicc_applet::ATR);

        let mut imsi = None;
        for command in [SELECT_MF, SELECT_USIM, VERIFY_PIN1, SELECT_IMSI, READ_IMSI] {
            let a = through_pcscd.transmit_hex(command).unwrap();
            let b = in_process.transmit_hex(command).unwrap();
            assert_eq!(hex::encode(a.to_bytes()), hex::encode(b.to_bytes()), "{command}");
            assert_eq!(a.status, Status::Ok, "{command}: {}", a.status);
            imsi = Some(a.data);
        }
        // EF.IMSI of 001010123456789 (TS 31.102 §4.2.2): length 8, then the digits BCD-swapped
        // with the odd-parity nibble 9 in front of the first digit.
        assert_eq!(hex::encode(imsi.unwrap()), "080910101032547698");

        // The rate is a figure to report (with TCP_QUICKACK well under a millisecond per APDU,
        // without it about 45 ms), not something a test asserts.
        let rate = measure_select_mf(through_pcscd.reader_mut(), 200).unwrap();
        eprintln!(
            "SELECT MF through pcscd: {:.0} APDU/s ({:?} per APDU)",
            rate.apdus_per_second(),
            rate.per_apdu()
        );
    });
    stop.store(true, Ordering::Relaxed);
    let stats = server.join().unwrap().unwrap();
    eprintln!("vpcd server: {stats:?}");
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    assert!(stats.apdus >= 205, "{stats:?}");
}
