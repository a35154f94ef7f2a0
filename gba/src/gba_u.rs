//! GBA_U modification of AKA: AUTN* with MAC* = MAC ⊕ Trunc64(SHA-1(IK)) (TS 33.220 §5.3.2).
//!
//! **UNCONFIRMED** (spec digest §1.7, marked there as from memory): that the mask is the first 8 octets of SHA-1(IK) could
//! not be checked against the text of TS 33.220 §5.3.2. The mask is therefore computed in one
//! place, [`gba_u_mac_mask`], shared by the BSF (which masks) and the card (which unmasks); both
//! are ours, so they agree even if the formula is wrong, and correcting it is a one-line change.
//!
//! Effect: a GBA_U challenge sent in the 3G context fails the MAC check, so an ME cannot obtain
//! CK/IK for a GBA_U RAND. The ME itself never touches AUTN*.

use sha1::{Digest, Sha1};
use zeroize::Zeroize;

use crate::aka::{AkaFailure, AkaSuccess, AuthVector, Autn, usim_verify};
use crate::keys::Ik;
use crate::milenage::Milenage;
use crate::sqn::{SqnArray, SqnPolicy};
use crate::{Mac, Rand, xor};

/// The 64-bit MAC mask of GBA_U: Trunc64(SHA-1(IK)), the first 8 octets (TS 33.220 §5.3.2,
/// UNCONFIRMED, see the module documentation).
pub fn gba_u_mac_mask(ik: &Ik) -> Mac {
    let mut digest: [u8; 20] = Sha1::digest(ik.expose()).into();
    let mut mask = [0u8; 8];
    for (m, d) in mask.iter_mut().zip(digest.iter()) {
        *m = *d;
    }
    digest.zeroize();
    mask
}

/// AUTN* = SQN ⊕ AK ‖ AMF ‖ MAC*, MAC* = MAC ⊕ [`gba_u_mac_mask`] (the BSF's side).
pub fn mask_autn_for_gba_u(autn: &Autn, ik: &Ik) -> Autn {
    Autn { mac: xor(&autn.mac, &gba_u_mac_mask(ik)), ..*autn }
}

/// AUTN from AUTN*: MAC = MAC* ⊕ [`gba_u_mac_mask`] (the card's side). XOR is its own inverse, so
/// this is [`mask_autn_for_gba_u`] again; the two names say which way the data flows.
pub fn unmask_autn_for_gba_u(autn_star: &Autn, ik: &Ik) -> Autn {
    mask_autn_for_gba_u(autn_star, ik)
}

impl AuthVector {
    /// The AUTN* the BSF sends for a GBA_U bootstrapping with this vector.
    pub fn gba_u_autn(&self) -> Autn {
        mask_autn_for_gba_u(&self.autn, &self.ik)
    }
}

/// The card's check of a GBA Bootstrapping Mode challenge (RAND, AUTN*): computes IK, unmasks MAC*,
/// then runs [`usim_verify`]. Does not change `sqns`.
pub fn usim_verify_gba_u<const A: usize>(
    m: &Milenage,
    rand: &Rand,
    autn_star: &Autn,
    sqns: &SqnArray<A>,
    policy: &SqnPolicy,
) -> Result<AkaSuccess, AkaFailure> {
    let autn = unmask_autn_for_gba_u(autn_star, &m.f4(rand));
    usim_verify(m, rand, &autn, sqns, policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aka::Sqn;
    use crate::sqn::UsimSqnArray;

    fn h<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    const IK: &str = "f769bcd751044604127672711c6d3441";

    /// Spec digest §8.3 (values follow the UNCONFIRMED formula).
    #[test]
    fn vector_8_3() {
        let ik = Ik::new(h(IK));
        assert_eq!(gba_u_mac_mask(&ik), h::<8>("c6e0c5ce26e01df7"));
        let autn = Autn::from_bytes(&h("55f328b43577b9b94a9ffac354dfafb3"));
        let star = mask_autn_for_gba_u(&autn, &ik);
        assert_eq!(star.to_bytes(), h::<16>("55f328b43577b9b98c7f3f0d723fb244"));
        assert_eq!(unmask_autn_for_gba_u(&star, &ik), autn);
    }

    /// The SHA-1 prefix checked with an independent tool (`sha1sum`) when it exists.
    #[test]
    fn mask_matches_sha1sum_when_available() {
        use std::io::Write;
        let child = std::process::Command::new("sha1sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn();
        let Ok(mut child) = child else {
            eprintln!("sha1sum not available: skipping");
            return;
        };
        child.stdin.take().unwrap().write_all(&h::<16>(IK)).unwrap();
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(&text[..16], hex::encode(gba_u_mac_mask(&Ik::new(h(IK)))));
    }

    #[test]
    fn gba_u_challenge_fails_in_3g_context_and_passes_in_gba_context() {
        let m = Milenage::new(&h("465b5ce8b199b49faa5f0a2ee238a6bc"), &h("cd63cb71954a9f4e48a5994e37a02baf"));
        let rand = h::<16>("23553cbe9637a89d218ae64dae47bf35");
        let av = AuthVector::generate(&m, &rand, Sqn::new(0x40).unwrap(), &[0x80, 0x00]);
        let star = av.gba_u_autn();
        let sqns = UsimSqnArray::new();
        let p = SqnPolicy::DEFAULT;
        assert!(matches!(usim_verify(&m, &rand, &star, &sqns, &p), Err(AkaFailure::MacFailure)));
        let ok = usim_verify_gba_u(&m, &rand, &star, &sqns, &p).unwrap();
        assert!(av.verify_res(&ok.res));
        // And the plain AUTN fails in the GBA context.
        assert!(matches!(usim_verify_gba_u(&m, &rand, &av.autn, &sqns, &p), Err(AkaFailure::MacFailure)));
    }
}
