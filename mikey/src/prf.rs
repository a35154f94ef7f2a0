//! The MIKEY PRF and key derivation (RFC 3830 §4.1.2–§4.1.4; PRF-HMAC-SHA-256 of RFC 6043 §6.1).
//!
//! ```text
//! P(s, label, m) = HMAC(s, A_1 || label) || ... || HMAC(s, A_m || label)
//! A_0 = label, A_i = HMAC(s, A_(i-1))
//! inkey = s_1 || ... || s_n  (256-bit chunks, the last one possibly shorter)
//! outkey = leftmost bits of P(s_1, label, m) XOR ... XOR P(s_n, label, m)
//! ```
//! With HMAC-SHA-1 each P block is 160 bits; with HMAC-SHA-256 it is 256 bits.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;
use zeroize::Zeroize;

use crate::Error;

/// PRF function of the common header (RFC 3830 Table 6.1.c, RFC 6043 Table 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PrfFunc {
    /// MIKEY-1: the HMAC-SHA-1 based PRF of RFC 3830 §4.1.2.
    MikeyHmacSha1 = 0,
    /// PRF-HMAC-SHA-256 (RFC 6043 §6.1).
    HmacSha256 = 1,
}

impl PrfFunc {
    /// The function for a 7-bit wire value.
    pub const fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(PrfFunc::MikeyHmacSha1),
            1 => Some(PrfFunc::HmacSha256),
            _ => None,
        }
    }

    /// The wire value.
    pub const fn to_u8(self) -> u8 {
        self as u8
    }
}

/// Inkey chunk size of the PRF: 256 bits (RFC 3830 §4.1.2).
pub const INKEY_CHUNK_LEN: usize = 32;

/// Label constants (RFC 3830 §4.1.3 for keys from a TGK, §4.1.4 for the transport keys that protect
/// a message with a pre-shared key or envelope key).
pub mod label {
    /// TEK from a TGK.
    pub const TEK: u32 = 0x2AD0_1C64;
    /// Authentication key from a TGK.
    pub const TGK_AUTH: u32 = 0x1B5C_7973;
    /// Encryption key from a TGK.
    pub const TGK_ENCR: u32 = 0x1579_8CEF;
    /// Salting key from a TGK.
    pub const TGK_SALT: u32 = 0x39A2_C14B;
    /// KEMAC encryption key (encr_key) from the pre-shared key.
    pub const TRANSPORT_ENCR: u32 = 0x1505_33E1;
    /// MAC key (auth_key) of KEMAC and V from the pre-shared key.
    pub const TRANSPORT_AUTH: u32 = 0x2D22_AC75;
    /// KEMAC AES-CM salt (salt_key) from the pre-shared key.
    pub const TRANSPORT_SALT: u32 = 0x29B8_8916;
    /// The cs_id slot of the label for transport keys (§4.1.4).
    pub const TRANSPORT_CS_ID: u8 = 0xFF;
}

/// A PRF label: `constant(4) || cs_id(1) || csb_id(4) || RAND` (RFC 3830 §4.1.3, §4.1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label<'a> {
    /// One of the [`label`] constants.
    pub constant: u32,
    /// Crypto session ID, or [`label::TRANSPORT_CS_ID`] for transport keys.
    pub cs_id: u8,
    /// CSB ID of the common header.
    pub csb_id: u32,
    /// The RAND payload value (may be empty).
    pub rand: &'a [u8],
}

impl<'a> Label<'a> {
    /// The label of a transport key (§4.1.4).
    pub const fn transport(constant: u32, csb_id: u32, rand: &'a [u8]) -> Self {
        Label { constant, cs_id: label::TRANSPORT_CS_ID, csb_id, rand }
    }

    fn parts(&self, c: &'a mut [u8; 4], b: &'a mut [u8; 4], id: &'a mut [u8; 1]) -> [&'a [u8]; 4] {
        *c = self.constant.to_be_bytes();
        *b = self.csb_id.to_be_bytes();
        *id = [self.cs_id];
        [c, id, b, self.rand]
    }
}

/// Fills `out` with the PRF output for `inkey` and `label` (RFC 3830 §4.1.2).
///
/// Fails only for an empty inkey.
pub fn prf(func: PrfFunc, inkey: &[u8], label: &Label<'_>, out: &mut [u8]) -> Result<(), Error> {
    let (mut c, mut b, mut id) = ([0u8; 4], [0u8; 4], [0u8; 1]);
    let parts = label.parts(&mut c, &mut b, &mut id);
    prf_with_label_parts(func, inkey, &parts, out)
}

/// The PRF with the label `constant || tail[0] || tail[1] || …` (RFC 6043 §5.1 and Appendix A
/// write their labels this way).
pub fn prf_with_constant(
    func: PrfFunc,
    inkey: &[u8],
    constant: u32,
    tail: &[&[u8]],
    out: &mut [u8],
) -> Result<(), Error> {
    let c = constant.to_be_bytes();
    let mut parts: heapless::Vec<&[u8], 12> = heapless::Vec::new();
    parts.push(&c).map_err(|_| Error::FieldTooLong)?;
    for p in tail {
        parts.push(p).map_err(|_| Error::FieldTooLong)?;
    }
    prf_with_label_parts(func, inkey, &parts, out)
}

/// The PRF over a label given as concatenated parts (for labels other than the RFC 3830 layout,
/// e.g. tests against other implementations).
pub fn prf_with_label_parts(
    func: PrfFunc,
    inkey: &[u8],
    label: &[&[u8]],
    out: &mut [u8],
) -> Result<(), Error> {
    if inkey.is_empty() {
        return Err(Error::BadLength);
    }
    out.fill(0);
    for chunk in inkey.chunks(INKEY_CHUNK_LEN) {
        match func {
            PrfFunc::MikeyHmacSha1 => p_xor::<Hmac<Sha1>>(chunk, label, out)?,
            PrfFunc::HmacSha256 => p_xor::<Hmac<Sha256>>(chunk, label, out)?,
        }
    }
    Ok(())
}

/// XORs P(s, label, m) into `out`, m = ceil(len(out) / block).
fn p_xor<M: Mac + KeyInit + Clone>(s: &[u8], label: &[&[u8]], out: &mut [u8]) -> Result<(), Error> {
    let keyed = <M as KeyInit>::new_from_slice(s).map_err(|_| Error::BadLength)?;
    // A_i, at most 32 bytes (SHA-256).
    let mut a = [0u8; 32];
    let mut a_len = 0;
    // A_1 = HMAC(s, A_0) with A_0 = label.
    {
        let mut m = keyed.clone();
        for p in label {
            m.update(p);
        }
        let t = m.finalize().into_bytes();
        for (d, s) in a.iter_mut().zip(t.iter()) {
            *d = *s;
            a_len += 1;
        }
    }
    let block = a_len;
    let mut chunks = out.chunks_mut(block).peekable();
    while let Some(chunk) = chunks.next() {
        let a_i = a.get(..a_len).ok_or(Error::BadLength)?;
        let mut m = keyed.clone();
        m.update(a_i);
        for p in label {
            m.update(p);
        }
        let t = m.finalize().into_bytes();
        for (o, x) in chunk.iter_mut().zip(t.iter()) {
            *o ^= *x;
        }
        if chunks.peek().is_some() {
            let mut m = keyed.clone();
            m.update(a_i);
            let t = m.finalize().into_bytes();
            for (d, s) in a.iter_mut().zip(t.iter()) {
                *d = *s;
            }
        }
    }
    a.zeroize();
    Ok(())
}
