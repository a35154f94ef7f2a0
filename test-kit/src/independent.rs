//! Oracles that do not share code with the `gba` crate: AKA through the `milenage` crate
//! (TS 35.206), the GBA_U MAC* mask of TS 33.220 §5.3.2 through `sha1`, and the GBA KDF of
//! TS 33.220 Annex B.2 written out over `hmac` + `sha2`. The network side of a card run computes
//! its values with `gba` and checks them against these.

use hmac::{Hmac, KeyInit, Mac};
use sha1::{Digest, Sha1};
use sha2::Sha256;

/// What the HE/AuC computes for one challenge (TS 33.102 §6.3.2), plus the GBA_U AUTN*.
pub struct Vector {
    /// XRES = f2(RAND).
    pub xres: [u8; 8],
    /// CK = f3(RAND).
    pub ck: [u8; 16],
    /// IK = f4(RAND).
    pub ik: [u8; 16],
    /// AUTN = SQN ⊕ AK ‖ AMF ‖ MAC-A.
    pub autn: [u8; 16],
    /// AUTN* = SQN ⊕ AK ‖ AMF ‖ MAC*, MAC* = MAC-A ⊕ Trunc64(SHA-1(IK)) (TS 33.220 §5.3.2; the
    /// mask is UNCONFIRMED in the project's spec digest §1.7 / §8.3).
    pub autn_star: [u8; 16],
}

/// One vector through the `milenage` crate.
pub fn vector(k: &[u8; 16], opc: &[u8; 16], rand: &[u8; 16], sqn: u64, amf: &[u8; 2]) -> Vector {
    let mut m = milenage::Milenage::new_with_opc(*k, *opc);
    let (xres, ck, ik, ak) = m.f2345(rand);
    let sqn_bytes: [u8; 6] = sqn.to_be_bytes()[2..].try_into().expect("48-bit SQN");
    let mac_a = m.f1(rand, &sqn_bytes, amf);
    let digest = Sha1::digest(ik);
    let mut autn = [0u8; 16];
    for i in 0..6 {
        autn[i] = sqn_bytes[i] ^ ak[i];
    }
    autn[6..8].copy_from_slice(amf);
    let mut autn_star = autn;
    autn[8..].copy_from_slice(&mac_a);
    for i in 0..8 {
        autn_star[8 + i] = mac_a[i] ^ digest[i];
    }
    Vector { xres, ck, ik, autn, autn_star }
}

/// SQN_MS ⊕ AK* out of AUTS, unmasked with f5* of the `milenage` crate (TS 33.102 §6.3.3).
pub fn sqn_ms_from_auts(k: &[u8; 16], opc: &[u8; 16], rand: &[u8; 16], auts: &[u8]) -> u64 {
    let mut m = milenage::Milenage::new_with_opc(*k, *opc);
    let ak_star = m.f5star(rand);
    auts[..6].iter().zip(ak_star).fold(0u64, |acc, (a, b)| (acc << 8) | u64::from(a ^ b))
}

/// The GBA KDF (TS 33.220 Annex B.2): HMAC-SHA-256(Key, FC ‖ P0 ‖ L0 ‖ … ‖ Pn ‖ Ln), each Li
/// two octets big-endian after its Pi.
pub fn gba_kdf(key: &[u8], fc: u8, params: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(&[fc]);
    for p in params {
        mac.update(p);
        mac.update(&u16::try_from(p.len()).expect("KDF parameter length").to_be_bytes());
    }
    mac.finalize().into_bytes().into()
}

/// Ks_ext_NAF = KDF(Ks, 0x01, "gba-me", RAND, IMPI, NAF_Id) (TS 33.220 Annex B.3).
pub fn ks_ext_naf(ks: &[u8; 32], rand: &[u8; 16], impi: &[u8], naf_id: &[u8]) -> [u8; 32] {
    gba_kdf(ks, 0x01, &[b"gba-me", rand, impi, naf_id])
}

/// Ks_int_NAF = KDF(Ks, 0x01, "gba-u", RAND, IMPI, NAF_Id) (TS 33.220 Annex B.3).
pub fn ks_int_naf(ks: &[u8; 32], rand: &[u8; 16], impi: &[u8], naf_id: &[u8]) -> [u8; 32] {
    gba_kdf(ks, 0x01, &[b"gba-u", rand, impi, naf_id])
}
