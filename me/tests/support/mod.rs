//! The network side of the ME tests: an HSS/BSF computing authentication vectors with the `gba`
//! crate (cross-checked against the independent `milenage` crate), the BM-SC keys computed with
//! `gba` directly, and a few shared steps. Nothing here calls the ME's own derivations.
#![allow(dead_code)]

use gba::{AuthVector, BTid, KsIntNaf, KsNaf, Milenage, NafId, Sqn, UaSecurityProtocolId};
use me::{BootstrapOutcome, Card, GbaClient, GbaVariant};
use sim_reader::{CardProfile, Emulator, Reader};

/// BSF domain of the B-TIDs.
pub const BSF: &str = "bsf.example.org";
/// The BM-SC FQDN (NAF).
pub const BMSC: &str = "bmsc.example.org";
/// A key lifetime far ahead.
pub const LIFETIME: &str = "2099-12-31T23:59:59Z";
/// PIN1 of the built-in profile (sim-reader/default.toml).
pub const PIN: &str = "1234";
/// TS 35.208 test set 1 RAND.
pub const RAND_TS1: [u8; 16] =
    [0x23, 0x55, 0x3c, 0xbe, 0x96, 0x37, 0xa8, 0x9d, 0x21, 0x8a, 0xe6, 0x4d, 0xae, 0x47, 0xbf, 0x35];
/// SQN index bits of the card's SQN array (TS 33.102 Annex C.3.2, IND of 5 bits).
pub const IND_BITS: u32 = 5;

/// The NAF_Id of the BM-SC: FQDN ‖ 01 00 00 00 01 (TS 33.220 Annex H.3, MBMS).
pub fn bmsc_naf_id() -> NafId {
    NafId::new(BMSC, UaSecurityProtocolId::MBMS).unwrap()
}

/// The HSS/BSF of the built-in profile.
pub struct Hss {
    pub m: Milenage,
    pub k: [u8; 16],
    pub opc: [u8; 16],
    next_seq: u64,
    amf: [u8; 2],
}

impl Hss {
    pub fn for_profile(p: &CardProfile) -> Self {
        let first = Sqn::from_bytes(p.sqn()).seq(IND_BITS) + 1;
        Hss { m: Milenage::new(p.k(), p.opc()), k: *p.k(), opc: *p.opc(), next_seq: first, amf: *p.amf() }
    }

    /// The next authentication vector for `rand` (SEQ + 1, IND 0), with its RES, CK and IK checked
    /// against the independent `milenage` crate.
    pub fn vector(&mut self, rand: &[u8; 16]) -> AuthVector {
        let sqn = Sqn::from_seq_ind(self.next_seq, 0, IND_BITS).unwrap();
        self.next_seq += 1;
        let av = AuthVector::generate(&self.m, rand, sqn, &self.amf);
        let mut oracle = milenage::Milenage::new_with_opc(self.k, self.opc);
        let (res, ck, ik, _ak) = oracle.f2345(rand);
        assert_eq!(av.xres, res, "gba Milenage RES disagrees with the milenage crate");
        assert_eq!(av.ck.expose(), &ck);
        assert_eq!(av.ik.expose(), &ik);
        av
    }

    /// A vector with an SQN the card has already seen (SEQ 1: the personalized one), to provoke
    /// a synchronisation failure.
    pub fn stale_vector(&self, rand: &[u8; 16]) -> AuthVector {
        let sqn = Sqn::from_seq_ind(1, 0, IND_BITS).unwrap();
        AuthVector::generate(&self.m, rand, sqn, &self.amf)
    }
}

/// The emulated card of the built-in profile.
pub fn emulator() -> Emulator {
    Emulator::new(&CardProfile::default()).unwrap()
}

/// The network's record of one bootstrap.
pub struct Bootstrapped {
    pub rand: [u8; 16],
    pub av: AuthVector,
    pub btid: String,
    pub lifetime: String,
}

impl Bootstrapped {
    /// Ks_NAF / Ks_ext_NAF as the BSF computes it for the NAF (TS 33.220 Annex B.3).
    pub fn ks_naf(&self, impi: &str) -> KsNaf {
        gba::kdf::derive_ks_naf(&self.av.ks(), &self.rand, impi.as_bytes(), &bmsc_naf_id()).unwrap()
    }

    /// Ks_int_NAF (the UICC-based MUK) as the BSF computes it.
    pub fn ks_int_naf(&self, impi: &str) -> KsIntNaf {
        gba::kdf::derive_ks_int_naf(&self.av.ks(), &self.rand, impi.as_bytes(), &bmsc_naf_id()).unwrap()
    }

    /// The MUK the BM-SC uses with this UE: Ks_int_NAF (UICC-based) or the ME-based MUK.
    pub fn bmsc_muk(&self, impi: &str, uicc_based: bool) -> mikey::mbms::Muk {
        if uicc_based {
            gba::mbms_keys::uicc_based_muk(&self.ks_int_naf(impi))
        } else {
            gba::mbms_keys::me_based_muk(&self.ks_naf(impi))
        }
    }
}

/// One whole Ub run as the HTTP layer will drive it: challenge, RES check by the BSF, B-TID.
pub fn bootstrap<R: Reader>(
    client: &mut GbaClient<R>,
    hss: &mut Hss,
    rand: [u8; 16],
    lifetime: &str,
) -> Bootstrapped {
    let av = hss.vector(&rand);
    let autn = match client.variant() {
        GbaVariant::GbaU => av.gba_u_autn().to_bytes(),
        GbaVariant::GbaMe => av.autn.to_bytes(),
    };
    match client.bootstrap(&rand, &autn).unwrap() {
        BootstrapOutcome::Res(res) => assert!(av.verify_res(&res), "the BSF refuses RES"),
        other => panic!("bootstrap: {other:?}"),
    }
    let btid = BTid::new(&rand, BSF).unwrap().as_str().to_owned();
    client.complete_bootstrap(&btid, lifetime).unwrap();
    Bootstrapped { rand, av, btid, lifetime: lifetime.to_owned() }
}

/// A card with PIN1 verified.
pub fn card<R: Reader>(reader: R) -> Card<R> {
    let card = Card::new(reader);
    card.verify_pin(PIN).unwrap();
    card
}

/// A RAND for run `n` (distinct per run).
pub fn rand(n: u8) -> [u8; 16] {
    let mut r = RAND_TS1;
    r[15] ^= n;
    r
}
