//! What the BM-SC, SCF and KMS tests share: a UE's card driven over APDUs
//! (TS 31.102 §7.1 AUTHENTICATE contexts, per docs/card-interface.md), the ureq agent of the Ub
//! exchanges, and a second (GBA_ME) subscriber.
#![allow(dead_code)]

use std::time::Duration;

use sim_reader::{CardProfile, Emulator, Protocol, Session};
use wire::ub::BootstrappingInfo;

pub const UA_UICC: &str = "keysim-test/0.1 3gpp-gba-uicc";

pub const UA_ME: &str = "keysim-test/0.1 3gpp-gba";

pub const TIMEOUT: Duration = Duration::from_secs(10);

pub use test_kit::mbms_run::{short_apdu, tlv};

pub struct Card {
    session: Session<Emulator>,
}

impl Card {
    /// ADF.USIM selected, PIN1 verified.
    pub fn new(profile: &CardProfile) -> Self {
        let emulator = Emulator::new(profile).expect("emulated card").with_protocol(Protocol::T1);
        let mut card = Card { session: Session::new(emulator) };
        card.cmd(
            "SELECT ADF.USIM",
            &[0x00, 0xA4, 0x04, 0x04, 0x07, 0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02, 0x00],
        );
        let mut pin = [0xFF; 8];
        pin[..profile.pin1().len()].copy_from_slice(profile.pin1().as_bytes());
        card.cmd("VERIFY PIN1", &short_apdu([0x00, 0x20, 0x00, 0x01], &pin, None));
        card
    }

    pub fn cmd(&mut self, name: &str, apdu: &[u8]) -> Vec<u8> {
        let ex = self.session.transmit_apdu(apdu).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(ex.sw(), 0x9000, "{name}: SW {:04X}, data {}", ex.sw(), hex::encode_upper(&ex.data));
        ex.data
    }

    /// AUTHENTICATE GBA Bootstrapping Mode (`DD`): RES.
    pub fn gba_bootstrap(&mut self, rand: &[u8; 16], autn_star: &[u8; 16]) -> Vec<u8> {
        let mut data = vec![0xDD, 0x10];
        data.extend_from_slice(rand);
        data.push(0x10);
        data.extend_from_slice(autn_star);
        let d = self.cmd("AUTHENTICATE GBA bootstrap", &short_apdu([0x00, 0x88, 0x00, 0x84], &data, Some(0)));
        match d.as_slice() {
            [0xDB, len, res @ ..] if usize::from(*len) == res.len() => res.to_vec(),
            other => panic!("GBA bootstrap answer {}", hex::encode_upper(other)),
        }
    }

    /// UPDATE BINARY EF.GBABP after RAND: B-TID and lifetime.
    pub fn write_gbabp(&mut self, info: &BootstrappingInfo) {
        self.cmd("SELECT EF.GBABP", &short_apdu([0x00, 0xA4, 0x00, 0x0C], &[0x6F, 0xD6], None));
        let mut data = vec![info.btid.len() as u8];
        data.extend_from_slice(info.btid.as_bytes());
        data.push(info.lifetime.len() as u8);
        data.extend_from_slice(info.lifetime.as_bytes());
        self.cmd("UPDATE BINARY EF.GBABP", &short_apdu([0x00, 0xD6, 0x00, 17], &data, None));
    }

    /// AUTHENTICATE NAF Derivation Mode (`DE`): Ks_ext_NAF.
    pub fn naf_derivation(&mut self, naf_id: &[u8], impi: &[u8]) -> [u8; 32] {
        let mut data = vec![0xDE, naf_id.len() as u8];
        data.extend_from_slice(naf_id);
        data.push(impi.len() as u8);
        data.extend_from_slice(impi);
        let d =
            self.cmd("AUTHENTICATE NAF derivation", &short_apdu([0x00, 0x88, 0x00, 0x84], &data, Some(0)));
        match d.as_slice() {
            [0xDB, 0x20, key @ ..] => key.try_into().expect("32 octets"),
            other => panic!("NAF derivation answer {}", hex::encode_upper(other)),
        }
    }

    /// AUTHENTICATE MBMS MSK Update (mode 01) of a MIKEY message: the data after `DB` (the
    /// verification message when the V bit is set).
    pub fn msk_update(&mut self, message: &[u8]) -> Vec<u8> {
        let mut inner = vec![0x01];
        inner.extend_from_slice(message);
        let d = self.cmd(
            "AUTHENTICATE MSK Update",
            &short_apdu([0x00, 0x89, 0x80, 0x85], &tlv(0x53, &inner), Some(0)),
        );
        let (object, rest) = apdu::tlv::Tlv::parse(&d).expect("53 object");
        assert_eq!((object.tag, rest.len()), (0x53, 0), "{}", hex::encode_upper(&d));
        match object.value.split_first() {
            Some((0xDB, data)) => data.to_vec(),
            _ => panic!("MSK Update answer {}", hex::encode_upper(&d)),
        }
    }
}

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(TIMEOUT)).build().into()
}

/// A second subscriber (own IMPI and K), whose GUSS says GBA_ME.
pub fn me_profile() -> CardProfile {
    let mut f = CardProfile::default().to_fields();
    f.imsi = "001010000000002".into();
    f.impi = "001010000000002@ims.mnc001.mcc001.3gppnetwork.org".into();
    f.impu = vec!["sip:001010000000002@ims.mnc001.mcc001.3gppnetwork.org".into()];
    f.k = "000102030405060708090a0b0c0d0e0f".into();
    CardProfile::try_from(f).unwrap()
}
