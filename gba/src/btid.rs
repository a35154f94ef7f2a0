//! B-TID, the bootstrapping transaction identifier: base64(RAND) "@" BSF domain name
//! (TS 33.220 §4.5.2).
//!
//! base64 is the standard alphabet with `=` padding (RFC 4648 §4), so a 16-octet RAND always
//! gives 24 characters ending in `==`. The tiny encoder/decoder for exactly 16 octets lives here
//! so the card needs no base64 dependency.

use crate::{Error, Rand};

/// Largest B-TID we hold: 255 octets, the most EF_GBABP's one-octet length can describe
/// (TS 31.102 §4.2.79).
pub const BTID_MAX_LEN: usize = 255;
/// Length of base64(RAND).
pub const RAND_BASE64_LEN: usize = 24;
/// Longest BSF domain that still fits: 255 − 24 − 1.
pub const BSF_DOMAIN_MAX_LEN: usize = BTID_MAX_LEN - RAND_BASE64_LEN - 1;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn sextet_char(v: u8) -> u8 {
    ALPHABET.get(usize::from(v & 0x3f)).copied().unwrap_or(b'A')
}

fn char_sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// base64 of a 16-octet RAND (RFC 4648 §4, padded): 24 characters.
pub fn rand_to_base64(rand: &Rand) -> [u8; RAND_BASE64_LEN] {
    let mut out = [b'='; RAND_BASE64_LEN];
    // Five full 3-octet groups (15 octets), then one octet left: 2 characters + "==".
    let mut o = out.iter_mut();
    for group in rand.chunks(3) {
        let b0 = group.first().copied().unwrap_or(0);
        let b1 = group.get(1).copied();
        let b2 = group.get(2).copied();
        let n = (u32::from(b0) << 16) | (u32::from(b1.unwrap_or(0)) << 8) | u32::from(b2.unwrap_or(0));
        let chars = [(n >> 18) as u8, (n >> 12) as u8, (n >> 6) as u8, n as u8];
        let used = 2 + usize::from(b1.is_some()) + usize::from(b2.is_some());
        for (i, c) in chars.iter().enumerate() {
            if let Some(slot) = o.next()
                && i < used
            {
                *slot = sextet_char(*c);
            }
        }
    }
    out
}

/// Decodes exactly the canonical base64 of a 16-octet value (24 characters ending in `==`,
/// unused bits zero). Anything else is `None`.
pub fn rand_from_base64(text: &[u8]) -> Option<Rand> {
    let text: &[u8; RAND_BASE64_LEN] = text.try_into().ok()?;
    let (body, pad) = text.split_at(22);
    if pad != b"==" {
        return None;
    }
    let mut rand = [0u8; 16];
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    let mut out = rand.iter_mut();
    for &c in body {
        acc = (acc << 6) | u32::from(char_sextet(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *out.next()? = (acc >> bits) as u8;
            acc &= (1 << bits) - 1;
        }
    }
    // 22 characters carry 132 bits: 128 used, the last 4 must be zero (canonical form).
    if bits != 4 || acc != 0 || out.next().is_some() {
        return None;
    }
    Some(rand)
}

/// A B-TID in a fixed buffer, always of the form base64(RAND) "@" domain.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BTid {
    buf: [u8; BTID_MAX_LEN],
    len: u8,
}

impl BTid {
    /// base64(RAND) "@" `bsf_domain` (TS 33.220 §4.5.2). The domain must be 1..=230 printable
    /// ASCII octets without '@' or space.
    pub fn new(rand: &Rand, bsf_domain: &str) -> Result<Self, Error> {
        let domain = bsf_domain.as_bytes();
        if domain.is_empty()
            || domain.len() > BSF_DOMAIN_MAX_LEN
            || !domain.iter().all(|&b| (0x21..=0x7e).contains(&b) && b != b'@')
        {
            return Err(Error::InvalidBsfDomain);
        }
        let encoded = rand_to_base64(rand);
        let total = RAND_BASE64_LEN + 1 + domain.len();
        let len = u8::try_from(total).map_err(|_| Error::InvalidBsfDomain)?;
        let mut buf = [0u8; BTID_MAX_LEN];
        for (b, v) in buf.iter_mut().zip(encoded.iter().chain(b"@").chain(domain)) {
            *b = *v;
        }
        Ok(BTid { buf, len })
    }

    /// Parses a B-TID of our form (for example read back from EF_GBABP).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > BTID_MAX_LEN {
            return Err(Error::MalformedBTid);
        }
        let (encoded, rest) = bytes.split_at_checked(RAND_BASE64_LEN).ok_or(Error::MalformedBTid)?;
        let rand = rand_from_base64(encoded).ok_or(Error::MalformedBTid)?;
        let domain = rest.strip_prefix(b"@").ok_or(Error::MalformedBTid)?;
        let domain = core::str::from_utf8(domain).map_err(|_| Error::MalformedBTid)?;
        Self::new(&rand, domain).map_err(|_| Error::MalformedBTid)
    }

    /// The B-TID octets (ASCII).
    pub fn as_bytes(&self) -> &[u8] {
        self.buf.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The B-TID as text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).unwrap_or("")
    }

    /// The RAND it was made from.
    pub fn rand(&self) -> Rand {
        self.buf.get(..RAND_BASE64_LEN).and_then(rand_from_base64).unwrap_or([0; 16])
    }

    /// The BSF domain part.
    pub fn bsf_domain(&self) -> &str {
        self.as_str().get(RAND_BASE64_LEN + 1..).unwrap_or("")
    }
}

impl core::fmt::Debug for BTid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "BTid({:?})", self.as_str())
    }
}

impl core::fmt::Display for BTid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spec digest §8.2: B-TID of the test-set-1 RAND.
    #[test]
    fn example_8_2() {
        let rand: Rand = hex::decode("23553cbe9637a89d218ae64dae47bf35").unwrap().try_into().unwrap();
        let b = BTid::new(&rand, "bsf.example.org").unwrap();
        assert_eq!(b.as_str(), "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example.org");
        assert_eq!(b.rand(), rand);
        assert_eq!(b.bsf_domain(), "bsf.example.org");
        assert_eq!(BTid::parse(b.as_bytes()), Ok(b));
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(BTid::parse(b"I1U8vpY3qJ0hiuZNrke/NQ==bsf.example.org"), Err(Error::MalformedBTid));
        assert_eq!(BTid::parse(b"I1U8vpY3qJ0hiuZNrke/NQ==@"), Err(Error::MalformedBTid));
        assert_eq!(BTid::parse(b"I1U8vpY3qJ0hiuZNrke/NR==@bsf"), Err(Error::MalformedBTid)); // non-canonical
        assert_eq!(BTid::parse(b"I1U8vpY3qJ0hiuZNrke/N==@bsf"), Err(Error::MalformedBTid));
        assert_eq!(BTid::parse(b"short"), Err(Error::MalformedBTid));
        assert_eq!(BTid::new(&[0; 16], "a@b"), Err(Error::InvalidBsfDomain));
        assert_eq!(BTid::new(&[0; 16], ""), Err(Error::InvalidBsfDomain));
        assert!(BTid::new(&[0; 16], &"d".repeat(230)).is_ok());
        assert_eq!(BTid::new(&[0; 16], &"d".repeat(231)), Err(Error::InvalidBsfDomain));
    }
}
