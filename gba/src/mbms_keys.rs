//! MRK and MUK of MBMS security (TS 33.246 §6.1), for both key-management paths.
//!
//! * UICC-based (GBA_U): **MRK = Ks_ext_NAF** (given to the ME) and **MUK = Ks_int_NAF** (kept
//!   on the card); nothing is derived (TS 33.246 §6.1; TS 33.220 Annex G.2 speaks of "a
//!   Ks_int_NAF put into use as an MBMS MUK").
//! * ME-based (GBA_ME): the ME holds one Ks_NAF for NAF_Id = BM-SC FQDN ‖ 01 00 00 00 01, and
//!   TS 33.246 separates the HTTP-digest key (MRK) from the MIKEY key (MUK) by deriving both from
//!   Ks_NAF (TS 33.220 Annex H.3 note).
//!
//! **UNCONFIRMED** (spec digest §4.3): the exact KDF inputs of the ME-based derivation in
//! TS 33.246 §6.1 could not be found. The FC value and the P0 labels below are our own
//! placeholders, kept together here so that one line corrects each of them. They are not
//! interoperable with a real BM-SC until checked against TS 33.246 §6.1.

use zeroize::Zeroize;

use crate::kdf::Kdf;
use crate::keys::{KsExtNaf, KsIntNaf, KsNaf, Mrk, Muk};

/// FC of the ME-based MRK/MUK derivation. UNCONFIRMED placeholder (TS 33.246 §6.1): we reuse the
/// GBA NAF FC 0x01 of TS 33.220 Annex B.3; the P0 labels keep the outputs apart from Ks_NAF.
pub const FC_MBMS_ME_KEYS: u8 = 0x01;
/// P0 of MRK = KDF(Ks_NAF, FC, P0). UNCONFIRMED placeholder label (TS 33.246 §6.1).
pub const P0_MRK: &[u8] = b"gba-me-mrk";
/// P0 of MUK = KDF(Ks_NAF, FC, P0). UNCONFIRMED placeholder label (TS 33.246 §6.1).
pub const P0_MUK: &[u8] = b"gba-me-muk";

const _: () = assert!(P0_MRK.len() <= u16::MAX as usize && P0_MUK.len() <= u16::MAX as usize);

/// ME-based MRK = KDF(Ks_NAF, [`FC_MBMS_ME_KEYS`], [`P0_MRK`]) (UNCONFIRMED inputs).
pub fn me_based_mrk(ks_naf: &KsNaf) -> Mrk {
    let mut out = Kdf::new(ks_naf.expose(), FC_MBMS_ME_KEYS).param_label(P0_MRK).finish();
    let key = Mrk::new(out);
    out.zeroize();
    key
}

/// ME-based MUK = KDF(Ks_NAF, [`FC_MBMS_ME_KEYS`], [`P0_MUK`]) (UNCONFIRMED inputs).
pub fn me_based_muk(ks_naf: &KsNaf) -> Muk {
    let mut out = Kdf::new(ks_naf.expose(), FC_MBMS_ME_KEYS).param_label(P0_MUK).finish();
    let key = Muk::new(out);
    out.zeroize();
    key
}

/// UICC-based MRK: Ks_ext_NAF itself (TS 33.246 §6.1).
pub fn uicc_based_mrk(ks_ext_naf: &KsExtNaf) -> Mrk {
    Mrk::new(*ks_ext_naf.expose())
}

/// UICC-based MUK: Ks_int_NAF itself (TS 33.246 §6.1). Only the card calls this.
pub fn uicc_based_muk(ks_int_naf: &KsIntNaf) -> Muk {
    Muk::new(*ks_int_naf.expose())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hmac::{Hmac, KeyInit, Mac};
    use sha2::Sha256;

    /// The placeholder formula, recomputed with the `hmac` crate on a hand-built S.
    #[test]
    fn me_based_keys_follow_the_annex_b_encoding() {
        let ks_naf = KsNaf::new([0x3c; 32]);
        for (label, got) in [
            (b"gba-me-mrk", *me_based_mrk(&ks_naf).expose()),
            (b"gba-me-muk", *me_based_muk(&ks_naf).expose()),
        ] {
            let mut s = vec![0x01];
            s.extend_from_slice(label);
            s.extend_from_slice(&[0x00, 0x0a]);
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&[0x3c; 32]).unwrap();
            mac.update(&s);
            let expected: [u8; 32] = mac.finalize().into_bytes().into();
            assert_eq!(got, expected);
        }
        assert_ne!(me_based_mrk(&ks_naf).expose(), me_based_muk(&ks_naf).expose());
        assert_ne!(me_based_mrk(&ks_naf).expose(), ks_naf.expose());
    }

    #[test]
    fn uicc_based_keys_are_the_naf_keys() {
        assert_eq!(uicc_based_mrk(&KsExtNaf::new([1; 32])).expose(), &[1; 32]);
        assert_eq!(uicc_based_muk(&KsIntNaf::new([2; 32])).expose(), &[2; 32]);
    }
}
