//! The generic key derivation function of TS 33.220 Annex B.2 and the NAF-specific keys of
//! Annex B.3 (Ks_NAF, Ks_ext_NAF, Ks_int_NAF).
//!
//! ```text
//! derived key = HMAC-SHA-256(Key, S)        (full 32 octets, not truncated)
//! S = FC ‖ P0 ‖ L0 ‖ P1 ‖ L1 ‖ … ‖ Pn ‖ Ln  (Li = length of Pi, two octets big-endian, after Pi)
//!
//! Ks_NAF / Ks_ext_NAF = KDF(Ks, FC = 0x01, "gba-me", RAND, IMPI, NAF_Id)
//! Ks_int_NAF          = KDF(Ks, FC = 0x01, "gba-u",  RAND, IMPI, NAF_Id)
//! ```
//!
//! S is never built in memory: each Pi and Li is fed to the HMAC as it comes, so there is no
//! buffer to size and nothing to allocate. Character strings (IMPI, the FQDN of NAF_Id) enter as
//! their UTF-8 octets (Annex B.2.1); the caller passes those octets.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroize;

use crate::keys::{Ks, KsExtNaf, KsIntNaf, KsNaf};
use crate::naf_id::NafId;
use crate::{Error, Rand};

/// FC of the NAF-specific key derivation in GBA, GBA_U and GBA_ME (TS 33.220 Annex B.3).
pub const FC_GBA_NAF: u8 = 0x01;
/// P0 of Ks_NAF (GBA_ME) and Ks_ext_NAF (GBA_U): "gba-me" (TS 33.220 Annex B.3).
pub const P0_GBA_ME: &[u8] = b"gba-me";
/// P0 of Ks_int_NAF (GBA_U): "gba-u" (TS 33.220 Annex B.3).
pub const P0_GBA_U: &[u8] = b"gba-u";
/// Largest parameter length Li can express (Annex B.1).
pub const KDF_MAX_PARAM_LEN: usize = u16::MAX as usize;

const _: () = assert!(P0_GBA_ME.len() <= KDF_MAX_PARAM_LEN && P0_GBA_U.len() <= KDF_MAX_PARAM_LEN);

type HmacSha256 = Hmac<Sha256>;

/// Incremental KDF: `Kdf::new(key, fc).param(p0)?.param(p1)?.finish()`.
#[derive(Clone)]
pub struct Kdf {
    mac: HmacSha256,
}

impl core::fmt::Debug for Kdf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Kdf(<redacted>)")
    }
}

impl Kdf {
    /// Starts S = FC … under a 256-bit Key (Ks or a key derived from it).
    pub fn new(key: &[u8; 32], fc: u8) -> Self {
        // HMAC pads a key shorter than the 64-octet SHA-256 block with zeros (RFC 2104 §2), so
        // keying with the padded block is the same HMAC and cannot fail.
        let mut block = [0u8; 64];
        for (b, k) in block.iter_mut().zip(key) {
            *b = *k;
        }
        let mut mac = <HmacSha256 as KeyInit>::new(&block.into());
        block.zeroize();
        mac.update(&[fc]);
        Kdf { mac }
    }

    /// Appends Pi ‖ Li. Fails if Pi is longer than 65535 octets.
    pub fn param(mut self, p: &[u8]) -> Result<Self, Error> {
        let len = u16::try_from(p.len()).map_err(|_| Error::KdfParameterTooLong)?;
        self.mac.update(p);
        self.mac.update(&len.to_be_bytes());
        Ok(self)
    }

    /// Appends a fixed-size Pi ‖ Li (the size is checked at compile time, so this cannot fail).
    pub fn param_array<const N: usize>(mut self, p: &[u8; N]) -> Self {
        const { assert!(N <= KDF_MAX_PARAM_LEN) };
        self.mac.update(p);
        self.mac.update(&(N as u16).to_be_bytes());
        self
    }

    /// Appends one of this crate's constant labels (their lengths are checked at compile time).
    pub(crate) fn param_label(mut self, p: &'static [u8]) -> Self {
        let len = u16::try_from(p.len()).unwrap_or(u16::MAX);
        self.mac.update(p);
        self.mac.update(&len.to_be_bytes());
        self
    }

    /// HMAC-SHA-256(Key, S), all 32 octets.
    pub fn finish(self) -> [u8; 32] {
        self.mac.finalize().into_bytes().into()
    }
}

/// KDF(Key, FC, P0, …, Pn) of TS 33.220 Annex B.2. Checks every length before hashing anything.
pub fn kdf(key: &[u8; 32], fc: u8, params: &[&[u8]]) -> Result<[u8; 32], Error> {
    if params.iter().any(|p| p.len() > KDF_MAX_PARAM_LEN) {
        return Err(Error::KdfParameterTooLong);
    }
    let mut k = Kdf::new(key, fc);
    for p in params {
        k = k.param(p)?;
    }
    Ok(k.finish())
}

fn naf_kdf(ks: &Ks, p0: &'static [u8], rand: &Rand, impi: &[u8], naf_id: &NafId) -> Result<[u8; 32], Error> {
    Ok(Kdf::new(ks.expose(), FC_GBA_NAF)
        .param_label(p0)
        .param_array(rand)
        .param(impi)?
        .param(naf_id.as_bytes())?
        .finish())
}

/// Ks_NAF = KDF(Ks, "gba-me", RAND, IMPI, NAF_Id), GBA_ME (TS 33.220 Annex B.3). `impi` is the
/// UTF-8 encoding of the IMPI.
pub fn derive_ks_naf(ks: &Ks, rand: &Rand, impi: &[u8], naf_id: &NafId) -> Result<KsNaf, Error> {
    let mut out = naf_kdf(ks, P0_GBA_ME, rand, impi, naf_id)?;
    let key = KsNaf::new(out);
    out.zeroize();
    Ok(key)
}

/// Ks_ext_NAF = KDF(Ks, "gba-me", RAND, IMPI, NAF_Id), GBA_U, derived on the card (Annex B.3).
pub fn derive_ks_ext_naf(ks: &Ks, rand: &Rand, impi: &[u8], naf_id: &NafId) -> Result<KsExtNaf, Error> {
    let mut out = naf_kdf(ks, P0_GBA_ME, rand, impi, naf_id)?;
    let key = KsExtNaf::new(out);
    out.zeroize();
    Ok(key)
}

/// Ks_int_NAF = KDF(Ks, "gba-u", RAND, IMPI, NAF_Id), GBA_U, stays on the card (Annex B.3).
pub fn derive_ks_int_naf(ks: &Ks, rand: &Rand, impi: &[u8], naf_id: &NafId) -> Result<KsIntNaf, Error> {
    let mut out = naf_kdf(ks, P0_GBA_U, rand, impi, naf_id)?;
    let key = KsIntNaf::new(out);
    out.zeroize();
    Ok(key)
}

/// Both GBA_U NAF keys of one NAF Derivation Mode run (TS 33.220 Annex G.2).
pub fn derive_gba_u_naf_keys(
    ks: &Ks,
    rand: &Rand,
    impi: &[u8],
    naf_id: &NafId,
) -> Result<(KsExtNaf, KsIntNaf), Error> {
    Ok((derive_ks_ext_naf(ks, rand, impi, naf_id)?, derive_ks_int_naf(ks, rand, impi, naf_id)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naf_id::UaSecurityProtocolId;

    fn h<const N: usize>(s: &str) -> [u8; N] {
        hex::decode(s.replace([' ', '|', '\n'], "")).unwrap().try_into().unwrap()
    }

    const KS: &str = "b40ba9a3c58b2a05bbf0d987b21bf8cbf769bcd751044604127672711c6d3441";
    const RAND: &str = "23553cbe9637a89d218ae64dae47bf35";
    const IMPI: &str = "user@ims.mnc001.mcc001.3gppnetwork.org";
    /// S(ext) exactly as written in the spec digest §8.2, typed from there, not from our code.
    const S_EXT: &str = "01 | 6762612d6d65 0006 | 23553cbe9637a89d218ae64dae47bf35 0010
        | 7573657240696d732e6d6e633030312e6d63633030312e336770706e6574776f726b2e6f7267 0026
        | 626d73632e6578616d706c652e6f7267 0100000001 0015";
    /// S(int) of §8.2: "gba-u" with L0 = 00 05, the rest as S(ext).
    const S_INT: &str = "01 | 6762612d75 0005 | 23553cbe9637a89d218ae64dae47bf35 0010
        | 7573657240696d732e6d6e633030312e6d63633030312e336770706e6574776f726b2e6f7267 0026
        | 626d73632e6578616d706c652e6f7267 0100000001 0015";
    const EXT: &str = "f519b9a4b75b451a1e36b9f2ed46e862a68735f51cd4a231d73841b21cd26334";
    const INT: &str = "528d966e28f446754cddd71f235195aeefed207477908292b44ac2372cb51cb9";

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.replace([' ', '|', '\n'], "")).unwrap()
    }

    fn naf() -> NafId {
        NafId::new("bmsc.example.org", UaSecurityProtocolId::MBMS).unwrap()
    }

    /// Spec digest §8.2 (self-computed there, so also checked independently below).
    #[test]
    fn worked_example_8_2() {
        let ks = Ks::new(h(KS));
        let rand = h::<16>(RAND);
        let ext = derive_ks_ext_naf(&ks, &rand, IMPI.as_bytes(), &naf()).unwrap();
        let int = derive_ks_int_naf(&ks, &rand, IMPI.as_bytes(), &naf()).unwrap();
        let me = derive_ks_naf(&ks, &rand, IMPI.as_bytes(), &naf()).unwrap();
        assert_eq!(ext.expose(), &h::<32>(EXT));
        assert_eq!(int.expose(), &h::<32>(INT));
        assert_eq!(me.expose(), ext.expose(), "Ks_NAF and Ks_ext_NAF share the formula");
        let (e2, i2) = derive_gba_u_naf_keys(&ks, &rand, IMPI.as_bytes(), &naf()).unwrap();
        assert_eq!((e2.expose(), i2.expose()), (ext.expose(), int.expose()));
    }

    /// Independent check of the parameter encoding: HMAC-SHA-256 over the S string of §8.2,
    /// computed with the `hmac` crate directly on the hand-written S (no code of ours involved).
    #[test]
    fn worked_example_matches_hand_built_s() {
        for (s, expected) in [(S_EXT, EXT), (S_INT, INT)] {
            let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&unhex(KS)).unwrap();
            mac.update(&unhex(s));
            let tag: [u8; 32] = mac.finalize().into_bytes().into();
            assert_eq!(tag, h::<32>(expected));
        }
        // And the generic kdf() with the parameters spelt out.
        let naf = naf();
        let out = kdf(&h(KS), 0x01, &[b"gba-me", &h::<16>(RAND), IMPI.as_bytes(), naf.as_bytes()]).unwrap();
        assert_eq!(out, h::<32>(EXT));
    }

    /// Second independent oracle: Python's `hmac`/`hashlib` computing the same S at test time.
    #[test]
    fn worked_example_matches_python_when_available() {
        for (s, expected) in [(S_EXT, EXT), (S_INT, INT)] {
            let s = hex::encode(unhex(s));
            let out = std::process::Command::new("python3")
                .args([
                    "-c",
                    "import hmac,hashlib,sys;print(hmac.new(bytes.fromhex(sys.argv[1]),bytes.fromhex(sys.argv[2]),hashlib.sha256).hexdigest())",
                    KS,
                    &s,
                ])
                .output();
            match out {
                Ok(o) if o.status.success() => {
                    assert_eq!(String::from_utf8(o.stdout).unwrap().trim(), expected);
                }
                _ => eprintln!("python3 not available: skipping the Python cross-check"),
            }
        }
    }

    #[test]
    fn length_fields_are_two_octets_big_endian() {
        // A 300-octet parameter: Li = 01 2c (the Nokia "00 ‖ (u8)len" bug would give 00 2c).
        let key = [7u8; 32];
        let p = [0x5au8; 300];
        let mut s = vec![0x42];
        s.extend_from_slice(&p);
        s.extend_from_slice(&[0x01, 0x2c]);
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&key).unwrap();
        mac.update(&s);
        let expected: [u8; 32] = mac.finalize().into_bytes().into();
        assert_eq!(kdf(&key, 0x42, &[&p]).unwrap(), expected);
    }

    #[test]
    fn too_long_parameter_is_an_error() {
        let big = vec![0u8; 65536];
        assert_eq!(kdf(&[0; 32], 1, &[&big]), Err(Error::KdfParameterTooLong));
        assert!(kdf(&[0; 32], 1, &[&big[..65535]]).is_ok());
        assert!(derive_ks_naf(&Ks::new([0; 32]), &[0; 16], &big, &naf()).is_err());
    }
}
