//! The emulator as a UICC seen through the session layer, checked against what TS 102 221,
//! TS 31.102 and TS 31.103 require of any UICC (so the same test would pass on a real card with
//! this profile), and its card-state file.

use apdu::Status;
use sim_reader::{CardProfile, Emulator, Protocol, Reader, Session};

/// EF.IMSI of IMSI 001010123456789 (TS 31.102 §4.2.2): length 8, then the digits BCD-swapped with
/// the odd-parity nibble 9 in front of the first digit.
const EF_IMSI: &str = "080910101032547698";

fn session(protocol: Protocol) -> Session<Emulator> {
    Session::new(Emulator::new(&CardProfile::default()).unwrap().with_protocol(protocol))
}

#[test]
fn select_mf_answers_9000() {
    for protocol in [Protocol::T0, Protocol::T1] {
        let mut s = session(protocol);
        let r = s.transmit_hex("00A4000C023F00").unwrap();
        assert_eq!(r.status, Status::Ok, "{protocol}: {}", r.status);
        assert!(r.data.is_empty());
    }
}

#[test]
fn select_usim_returns_its_fcp_on_either_protocol() {
    for protocol in [Protocol::T0, Protocol::T1] {
        let mut s = session(protocol);
        let r = s.transmit_hex("00A4040407A000000087100200").unwrap();
        assert_eq!(r.status, Status::Ok, "{protocol}: {}", r.status);
        // FCP template, tag 62 (TS 102 221 §11.1.1.3), whole after any GET RESPONSE.
        assert_eq!(r.data.first(), Some(&0x62), "{protocol}: {}", hex::encode(&r.data));
        assert_eq!(usize::from(r.data[1]) + 2, r.data.len(), "{protocol}: {}", hex::encode(&r.data));
        if protocol == Protocol::T0 {
            // Case 4 under T=0: 61xx, then GET RESPONSE.
            assert_eq!(r.apdu_count(), 2, "{:?}", r.raw);
            assert_eq!(r.raw[1].command[..4], [0x00, 0xC0, 0x00, 0x00]);
        }
    }
}

#[test]
fn read_ef_imsi() {
    for protocol in [Protocol::T0, Protocol::T1] {
        let mut s = session(protocol);
        // EF.IMSI is read under PIN1 (TS 31.102 §4.2.2 access conditions): VERIFY PIN1 "1234" first.
        for cmd in ["00A4040C07A0000000871002", "002000010831323334FFFFFFFF", "00A4000C026F07"] {
            let r = s.transmit_hex(cmd).unwrap();
            assert_eq!(r.status, Status::Ok, "{cmd}: {}", r.status);
        }
        let r = s.transmit_hex("00B0000009").unwrap();
        assert_eq!(r.status, Status::Ok, "{}", r.status);
        assert_eq!(hex::encode(&r.data), EF_IMSI);
    }
}

#[test]
fn pin_retry_counter_survives_in_the_state_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("card.nvm");
    let profile = CardProfile::default();
    let mut s = Session::new(Emulator::open(&profile, Some(&path)).unwrap());
    let before = std::fs::read(&path).unwrap();
    // VERIFY PIN1 (key reference 01) with a wrong value "0000" padded with FF (TS 102 221 §11.1.9).
    let r = s.transmit_hex("002000010830303030FFFFFFFF").unwrap();
    assert_eq!(r.status, Status::VerifyFailed(2), "{}", r.status);
    assert_ne!(std::fs::read(&path).unwrap(), before, "the retry counter reached the state file");
    drop(s);

    // Another process, later: the counter is still 2 (VERIFY without data asks for it).
    let mut s = Session::new(Emulator::open(&profile, Some(&path)).unwrap());
    let r = s.transmit_hex("00200001").unwrap();
    assert_eq!(r.status, Status::VerifyFailed(2), "{}", r.status);
    let r = s.transmit_hex("002000010831323334FFFFFFFF").unwrap();
    assert_eq!(r.status, Status::Ok, "{}", r.status);
}

#[test]
fn power_cycle_and_reset_return_the_atr() {
    let mut e = Emulator::new(&CardProfile::default()).unwrap();
    assert_eq!(e.reset().unwrap(), uicc_applet::ATR);
    e.power_off().unwrap();
    assert_eq!(e.power_on().unwrap(), uicc_applet::ATR);
    let mut s = Session::new(e);
    assert_eq!(s.transmit_hex("00A4000C023F00").unwrap().status, Status::Ok);
}
