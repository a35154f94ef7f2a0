//! GBA key derivations (TS 33.220 §4.5.2, §5.3.2, Annex B) and Milenage (TS 35.206).
//!
//! Shared by the card (GBA_U), the ME (GBA_ME) and the simulated BSF, so that all three derive
//! the same keys from the same inputs.
//!
//! | module | what | spec |
//! |---|---|---|
//! | [`milenage`] | f1, f1*, f2, f3, f4, f5, f5*, OPc | TS 35.206 §4 |
//! | [`aka`] | SQN, AUTN, AUTS, authentication vectors, the USIM side of AKA | TS 33.102 §6.3 |
//! | [`sqn`] | SQN freshness on the USIM: the SEQ/IND array, Δ and L | TS 33.102 Annex C.2 |
//! | [`kdf`](mod@kdf) | the generic KDF, Ks, Ks_NAF, Ks_ext_NAF, Ks_int_NAF | TS 33.220 Annex B |
//! | [`naf_id`] | NAF_Id = FQDN ‖ Ua security protocol identifier | TS 33.220 Annex H |
//! | [`btid`] | B-TID = base64(RAND) "@" BSF domain | TS 33.220 §4.5.2 |
//! | [`lifetime`] | the key lifetime as TS 24.109 writes it, and the calendar arithmetic of it | TS 33.220 §4.5.2, TS 24.109 §4.2 |
//! | [`gba_u`] | AUTN* / MAC* of the GBA_U bootstrapping (UNCONFIRMED mask) | TS 33.220 §5.3.2 |
//! | [`mbms_keys`] | MRK and MUK for the UICC-based and ME-based MBMS key management | TS 33.246 §6.1 |
//!
//! The crate is `no_std` and never allocates; every output goes into a fixed-size value. Key
//! types ([`keys`]) have no `PartialEq`, print as `<redacted>` and are zeroized on drop.
//!
//! ```
//! use gba::{AuthVector, Milenage, NafId, Sqn, UaSecurityProtocolId, UsimSqnArray, SqnPolicy};
//! use gba::{aka, gba_u, kdf, mbms_keys, BTid};
//!
//! // HSS/BSF: an authentication vector; for GBA_U the BSF sends AUTN* instead of AUTN.
//! let m = Milenage::with_op(&[0x46; 16], &[0xcd; 16]);
//! let rand = [0x23; 16];
//! let av = AuthVector::generate(&m, &rand, Sqn::new(33).unwrap(), &[0x80, 0x00]);
//! let autn_star = av.gba_u_autn();
//!
//! // Card (GBA Bootstrapping Mode): unmask, check MAC and SQN, keep Ks = CK || IK, return RES only.
//! let mut sqns = UsimSqnArray::new();
//! let ok = gba_u::usim_verify_gba_u(&m, &rand, &autn_star, &sqns, &SqnPolicy::DEFAULT).unwrap();
//! sqns.accept(ok.sqn);
//! assert!(av.verify_res(&ok.res));
//! let ks = gba::Ks::from_ck_ik(&ok.ck, &ok.ik);
//!
//! // BSF: the B-TID; card (NAF Derivation Mode): Ks_ext_NAF (= MRK) out, Ks_int_NAF (= MUK) kept.
//! let btid = BTid::new(&rand, "bsf.example.org").unwrap();
//! let naf_id = NafId::new("bmsc.example.org", UaSecurityProtocolId::MBMS).unwrap();
//! let impi = b"user@ims.mnc001.mcc001.3gppnetwork.org";
//! let (ext, int) = kdf::derive_gba_u_naf_keys(&ks, &rand, impi, &naf_id).unwrap();
//! let mrk = mbms_keys::uicc_based_mrk(&ext);
//! let muk = mbms_keys::uicc_based_muk(&int);
//! # let _ = (btid, mrk, muk, aka::AUTN_LEN);
//! ```
#![cfg_attr(not(test), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]
// No panics on input paths: library code may not unwrap, expect, panic or index unchecked.
#![cfg_attr(
    not(test),
    warn(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)
)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod aka;
pub mod btid;
mod error;
pub mod gba_u;
pub mod kdf;
pub mod keys;
pub mod lifetime;
pub mod mbms_keys;
pub mod milenage;
pub mod naf_id;
pub mod sqn;

pub use aka::{AkaFailure, AkaSuccess, AuthVector, Autn, Auts};
pub use btid::BTid;
pub use error::Error;
pub use kdf::{Kdf, kdf};
pub use keys::{Ck, Ik, Ks, KsExtNaf, KsIntNaf, KsNaf, Mrk, Muk};
pub use milenage::Milenage;
pub use naf_id::{NafId, UaSecurityProtocolId};
pub use sqn::{Sqn, SqnArray, SqnPolicy, SqnReject, UsimSqnArray};

/// RAND, the 128-bit random challenge of AKA (TS 33.102 §6.3.2).
pub type Rand = [u8; 16];
/// AMF, the 16-bit authentication management field (TS 33.102 §6.3.2).
pub type Amf = [u8; 2];
/// RES / XRES as produced by Milenage f2: 64 bits (TS 35.206 §4.1).
pub type Res = [u8; 8];
/// AK or AK*, the 48-bit anonymity key (f5, f5*).
pub type Ak = [u8; 6];
/// MAC-A (f1) or MAC-S (f1*), 64 bits.
pub type Mac = [u8; 8];

/// XOR of two equal-length arrays, the one operation every module here needs.
pub(crate) fn xor<const N: usize>(a: &[u8; N], b: &[u8; N]) -> [u8; N] {
    let mut out = [0u8; N];
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = x ^ y;
    }
    out
}
