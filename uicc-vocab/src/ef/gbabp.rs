//! EF.GBABP, GBA bootstrapping parameters (TS 31.102 §4.2.79, TS 31.103 §4.2.9):
//! `X RAND L B-TID N lifetime`, each length counting its own field only. The card writes RAND (and
//! empties B-TID and lifetime) at a bootstrap; the ME writes B-TID and lifetime after the RAND.

use super::RAND_LEN;
use crate::{EncodeError, lv, put, put_lv};

/// The fields of EF.GBABP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gbabp<'a> {
    /// RAND of the last bootstrapping (written by the card).
    pub rand: &'a [u8],
    /// B-TID (written by the ME); empty until then.
    pub b_tid: &'a [u8],
    /// Key lifetime (written by the ME); empty until then.
    pub lifetime: &'a [u8],
}

/// Read EF.GBABP. `None` if a length field runs past the file (an erased `FF` length does).
pub fn parse(body: &[u8]) -> Option<Gbabp<'_>> {
    let (rand, rest) = lv(body)?;
    let (b_tid, rest) = lv(rest)?;
    let (lifetime, _) = lv(rest)?;
    Some(Gbabp { rand, b_tid, lifetime })
}

/// The RAND field alone (what the ME checks a B-TID against before it writes after it).
pub fn rand(body: &[u8]) -> Option<&[u8]> {
    lv(body).map(|(rand, _)| rand)
}

/// EF.GBABP after a bootstrapping over the whole of `out`: the new RAND, empty B-TID and lifetime
/// (TS 33.220 Annex G.1: all replaced by the ME afterwards), the rest erased (`FF`).
pub fn encode_after_bootstrap(rand: &[u8; RAND_LEN], out: &mut [u8]) -> Result<(), EncodeError> {
    out.fill(0xFF);
    let mut at = 0;
    put(out, &mut at, &[&[RAND_LEN as u8], rand, &[0x00, 0x00]])
}

/// Where the ME writes B-TID and lifetime: right after a RAND of `rand_len` bytes.
pub const fn b_tid_offset(rand_len: usize) -> usize {
    1 + rand_len
}

/// `L B-TID N lifetime`, what the ME writes at [`b_tid_offset`], into `out`; the bytes written.
pub fn encode_b_tid_lifetime(b_tid: &[u8], lifetime: &[u8], out: &mut [u8]) -> Result<usize, EncodeError> {
    let mut at = 0;
    put_lv(out, &mut at, b_tid)?;
    put_lv(out, &mut at, lifetime)?;
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ef::vectors::{B_TID, RAND, h};

    #[test]
    fn ef_gbabp_vectors() {
        // TS 31.102 §4.2.79: X RAND L B-TID N lifetime.
        let mut after = [0u8; 128];
        encode_after_bootstrap(&h(RAND).try_into().unwrap(), &mut after).unwrap();
        assert_eq!(after[..19].to_vec(), h(&format!("10 {RAND} 00 00")));
        assert!(after[19..].iter().all(|&b| b == 0xFF));
        let parsed = parse(&after).unwrap();
        assert_eq!((parsed.rand, parsed.b_tid, parsed.lifetime), (&h(RAND)[..], &[][..], &[][..]));
        // With B-TID (28) and lifetime "2030-12-31T23:59:59Z" (14) as the ME writes them.
        let full = h(&format!("10 {RAND} 28 {B_TID} 14 323033302d31322d33315432333a35393a35395a FFFF"));
        let parsed = parse(&full).unwrap();
        assert_eq!(parsed.b_tid, b"I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example.org");
        assert_eq!(parsed.lifetime, b"2030-12-31T23:59:59Z");
        assert_eq!(rand(&full), Some(&h(RAND)[..]));
        let mut tail = [0u8; 80];
        let n = encode_b_tid_lifetime(parsed.b_tid, parsed.lifetime, &mut tail).unwrap();
        assert_eq!(tail[..n], full[b_tid_offset(16)..b_tid_offset(16) + n]);
        // The personalized state (three empty LVs) and broken lengths.
        assert_eq!(parse(&h("000000FFFF")), Some(Gbabp { rand: &[], b_tid: &[], lifetime: &[] }));
        assert_eq!(parse(&[0xFF; 128]), None);
        assert_eq!(parse(&h("02AA")), None);
        assert_eq!(parse(&h("00 00")), None);
        assert_eq!(rand(&h("10 AA")), None);
        assert_eq!(encode_b_tid_lifetime(&[0; 256], b"", &mut [0u8; 300]), Err(EncodeError::ValueTooLong));
        assert_eq!(encode_after_bootstrap(&[0; 16], &mut [0u8; 18]), Err(EncodeError::BufferTooSmall));
    }
}
