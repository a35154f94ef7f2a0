//! The whole UE (`me::Ue`) on a card behind a real pcscd, against the BSF and BM-SC of `network`
//! on loopback (TS 33.246 §6.1–§6.3 over GBA, TS 33.220 §4.5): libpcsclite and the `pcsc` crate on
//! this side, pcscd's vsmartcard vpcd driver and `keysim vpcd` (slot 0, reader
//! `KEYSIM_PCSC_READER`) serving the card with the built-in profile on the other.
//!
//! On the UICC-based (GBA_U) and the ME-based (GBA_ME) path: power-on, GBA over Ub, registration
//! over HTTP Digest, the MSK push and MTK message over UDP taken through the card or the ME, and
//! SRTP decrypted to exactly the BM-SC's test signal (`network::bmsc_stream::test_signal_frame`).
//! The power-on → first-media time and the MTK update rate through pcscd are printed, never
//! asserted.
//!
//! Needs the set-up of `scripts/pcsc-tests.sh` (a private pcscd and a `keysim vpcd` card), so it is
//! ignored in a plain `cargo test`. It bootstraps the card again, so the script runs it after the
//! pySim comparison of the EFs that `tests/pcsc_mbms.rs` wrote.

mod support;

use std::time::{Duration, Instant};

use harness::netbench::{self, Network};
use me::{KeyManagementPath, Ue};
use network::bmsc_stream::test_signal_frame;
use sim_reader::{PcscReader, Reader, ReaderSelector, list_readers};

/// SRTP packets checked after the first one.
const MORE_PACKETS: u64 = 20;
/// MTK updates timed through pcscd, per path.
const MTK_UPDATES: u64 = 100;
/// Cold starts whose median is printed, per path.
const COLD_STARTS: usize = 5;

fn reader_name() -> String {
    std::env::var("KEYSIM_PCSC_READER").unwrap_or_else(|_| "Virtual PCD 00 00".to_owned())
}

/// Connects to the card (which powers it), once pcscd shows it present.
fn open_reader() -> harness::Result<PcscReader> {
    let name = reader_name();
    let start = Instant::now();
    loop {
        let readers = list_readers()?;
        if readers.iter().any(|r| r.name == name && r.card_present) {
            return Ok(PcscReader::open(&ReaderSelector::Name(name))?);
        }
        if start.elapsed() >= Duration::from_secs(10) {
            return Err(harness::Error::Other(format!("no card in '{name}' after 10 s: {readers:?}")));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every frame the UE kept is the test-signal frame of its RTP sequence number, and they are
/// `total` consecutive frames.
fn assert_test_signal(ue: &Ue<PcscReader>, first_seq: u16, total: u64) {
    let mut indices: Vec<u64> = Vec::new();
    for f in ue.frames() {
        let n = u64::from(f.sequence_number.wrapping_sub(first_seq));
        assert_eq!(f.payload, test_signal_frame(n), "frame {n} (RTP sequence number {})", f.sequence_number);
        indices.push(n);
    }
    assert_eq!(indices.len() as u64, total, "decrypted frames kept: {indices:?}");
    assert!(indices.windows(2).all(|w| w[1] == w[0] + 1), "frames not consecutive: {indices:?}");
}

#[test]
#[ignore = "needs pcscd with `keysim vpcd` on slot 0: run by scripts/pcsc-tests.sh"]
fn ue_through_pcscd_on_both_paths() {
    let profile = support::vpcd_card_profile();
    for path in [KeyManagementPath::UiccBased, KeyManagementPath::MeBased] {
        let mut net = Network::start(&profile).expect("BSF and BM-SC");
        let first = netbench::power_on_to_first_media(&mut net, path, open_reader)
            .unwrap_or_else(|e| panic!("{path}: {e:#}"));
        let protocol = first.ue.card().with_session(|s| s.reader_mut().protocol()).expect("card session");
        eprintln!("{path} through pcscd ({protocol}): power-on to first media {}", first.timeline);
        let mut ue = first.ue;
        assert_eq!(ue.path(), path);
        let stats = ue.stats();
        assert_eq!((stats.msk_count, stats.mtk_count, stats.packets_decrypted), (1, 1, 1), "{stats:?}");
        assert_eq!(net.bmsc().registered(ue.btid().expect("B-TID")), vec![netbench::SERVICE_ID.to_owned()]);
        assert_eq!(net.bmsc().stats().verifications_ok, 1, "the BM-SC checked the verification message");
        assert_test_signal(&ue, net.first_seq(), 1);

        // More media under the same MTK: every packet decrypted, equal to the test signal.
        net.bmsc().send_media(netbench::SERVICE_ID, MORE_PACKETS as usize).expect("media");
        ue.poll_until(Instant::now() + netbench::STEP_WAIT, |s| s.packets_decrypted > MORE_PACKETS)
            .expect("poll");
        assert_eq!(ue.stats().packets_decrypted, 1 + MORE_PACKETS, "{:?}", ue.stats());
        assert_test_signal(&ue, net.first_seq(), 1 + MORE_PACKETS);

        // MTK updates end to end through pcscd (the function checks MKIs and media after them).
        let elapsed = netbench::mtk_updates(&net, &mut ue, MTK_UPDATES).unwrap_or_else(|e| panic!("{e:#}"));
        assert_eq!(ue.stats().mtk_count, 1 + MTK_UPDATES);
        assert_eq!(ue.stats().packets_failed, 0, "{:?}", ue.stats());
        eprintln!(
            "{path} through pcscd: {:.0} MTK updates per second end to end ({MTK_UPDATES} in {elapsed:?})",
            MTK_UPDATES as f64 / elapsed.as_secs_f64()
        );
        net.power_off(ue).expect("power-off");
        drop(net);

        let median = netbench::measure_power_on_to_first_media(path, &profile, open_reader, COLD_STARTS)
            .unwrap_or_else(|e| panic!("{path}: {e:#}"));
        eprintln!(
            "{path} through pcscd: power-on to first media, median of {COLD_STARTS} cold starts {median:?}"
        );
    }
}
