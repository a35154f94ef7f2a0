//! EF.MUK, the MBMS user keys (TS 31.102 §4.2.81): per record the MUK ID `A0 L { 80 L Idr,
//! 82 L Idi }` and the Time Stamp Counter `81 L TS`, then `FF` padding. The MUK ID has the same
//! coding in the data of MBMS MUK Deletion mode.

use apdu::tlv::{self, Tlv};

use super::padded;
use crate::open_values::MUK_TS_LEN;
use crate::{EncodeError, put_tlv, tlv_len};

/// Tag of the MUK ID template.
pub const TAG_MUK_ID: u8 = 0xA0;
/// Tag of MUK Idr (the B-TID) inside the MUK ID.
pub const TAG_MUK_IDR: u8 = 0x80;
/// Tag of MUK Idi (the BM-SC FQDN) inside the MUK ID.
pub const TAG_MUK_IDI: u8 = 0x82;
/// Tag of the Time Stamp Counter, after the MUK ID.
pub const TAG_MUK_TS: u8 = 0x81;

/// A MUK ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MukId<'a> {
    /// Idr: the B-TID.
    pub idr: &'a [u8],
    /// Idi: the BM-SC (NAF) FQDN.
    pub idi: &'a [u8],
}

/// Read the MUK ID template at the front of `bytes`; return it and what follows. Idr and Idi must
/// both be present once, in either order, and nothing else inside.
pub fn parse_muk_id(bytes: &[u8]) -> Option<(MukId<'_>, &[u8])> {
    let (template, rest) = Tlv::parse(bytes).ok()?;
    if template.tag != u32::from(TAG_MUK_ID) {
        return None;
    }
    let (mut idr, mut idi) = (None, None);
    let mut inner = template.value;
    while !inner.is_empty() {
        let (object, next) = Tlv::parse(inner).ok()?;
        let slot = match object.tag {
            t if t == u32::from(TAG_MUK_IDR) => &mut idr,
            t if t == u32::from(TAG_MUK_IDI) => &mut idi,
            _ => return None,
        };
        if slot.replace(object.value).is_some() {
            return None;
        }
        inner = next;
    }
    Some((MukId { idr: idr?, idi: idi? }, rest))
}

/// Bytes the MUK ID template takes.
pub const fn muk_id_len(idr_len: usize, idi_len: usize) -> usize {
    tlv_len(tlv_len(idr_len) + tlv_len(idi_len))
}

/// Writes the MUK ID template (Idr first) at `*at` in `out`, advancing `*at`.
fn put_muk_id(idr: &[u8], idi: &[u8], out: &mut [u8], at: &mut usize) -> Result<(), EncodeError> {
    let inner_len = tlv_len(idr.len()) + tlv_len(idi.len());
    crate::put(out, at, &[&[TAG_MUK_ID]])?;
    *at += tlv::write_length(inner_len, out.get_mut(*at..).ok_or(EncodeError::BufferTooSmall)?)
        .map_err(|_| EncodeError::BufferTooSmall)?;
    put_tlv(out, at, TAG_MUK_IDR, idr)?;
    put_tlv(out, at, TAG_MUK_IDI, idi)
}

/// Writes the MUK ID template of `idr` and `idi` at the start of `out`; the bytes written.
pub fn encode_muk_id(idr: &[u8], idi: &[u8], out: &mut [u8]) -> Result<usize, EncodeError> {
    let mut at = 0;
    put_muk_id(idr, idi, out, &mut at)?;
    Ok(at)
}

/// An EF.MUK record: the MUK ID and the Time Stamp Counter of the last MIKEY message accepted with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MukRecord<'a> {
    /// Which MUK.
    pub id: MukId<'a>,
    /// The last accepted MIKEY timestamp (64-bit value).
    pub ts: u64,
}

/// Read an EF.MUK record; `None` for an erased or malformed one.
pub fn parse(record: &[u8]) -> Option<MukRecord<'_>> {
    let (id, rest) = parse_muk_id(record)?;
    let (ts, rest) = Tlv::parse(rest).ok()?;
    if ts.tag != u32::from(TAG_MUK_TS) || !padded(rest) {
        return None;
    }
    let ts: [u8; MUK_TS_LEN] = ts.value.try_into().ok()?;
    Some(MukRecord { id, ts: u64::from_be_bytes(ts) })
}

/// Bytes an EF.MUK record needs for these identifiers.
pub const fn record_len(idr_len: usize, idi_len: usize) -> usize {
    muk_id_len(idr_len, idi_len) + tlv_len(MUK_TS_LEN)
}

/// Write an EF.MUK record over the whole of `out`, padded with `FF`.
pub fn encode(idr: &[u8], idi: &[u8], ts: u64, out: &mut [u8]) -> Result<(), EncodeError> {
    if record_len(idr.len(), idi.len()) > out.len() {
        return Err(EncodeError::BufferTooSmall);
    }
    out.fill(0xFF);
    let mut at = 0;
    put_muk_id(idr, idi, out, &mut at)?;
    put_tlv(out, &mut at, TAG_MUK_TS, &ts.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ef::vectors::{B_TID, h};
    use proptest::prelude::*;

    #[test]
    fn ef_muk_vectors() {
        // TS 31.102 §4.2.81: A0 L {80 L Idr, 82 L Idi} 81 L TS, FF-padded. Idi = "bmsc.example.org".
        let idi = h("626d73632e6578616d706c652e6f7267");
        let expected =
            h(&format!("A0 3C 80 28 {B_TID} 82 10 626d73632e6578616d706c652e6f7267 81 08 0000000000000102"));
        let mut rec = [0u8; 160];
        encode(&h(B_TID), &idi, 0x0102, &mut rec).unwrap();
        assert_eq!(rec[..expected.len()].to_vec(), expected);
        assert!(rec[expected.len()..].iter().all(|&b| b == 0xFF));
        assert_eq!(record_len(40, 16), expected.len());
        let parsed = parse(&rec).unwrap();
        assert_eq!(
            (parsed.id.idr.to_vec(), parsed.id.idi.to_vec(), parsed.ts),
            (h(B_TID), idi.clone(), 0x0102)
        );
        let mut id = [0u8; 80];
        assert_eq!(encode_muk_id(&h(B_TID), &idi, &mut id), Ok(0x3E));
        assert_eq!(id[..0x3E], expected[..0x3E]);
        // The MUK ID of MUK Deletion mode, Idi first: the order inside A0 is free.
        let idi_first = h("A0 08 82 02 6162 80 02 6364");
        let (id, rest) = parse_muk_id(&idi_first).unwrap();
        assert_eq!((id.idr, id.idi, rest), (&b"cd"[..], &b"ab"[..], &[][..]));
        // Missing, duplicated or foreign objects, a timestamp of the wrong size.
        assert_eq!(parse_muk_id(&h("A0 04 80 02 6364")), None);
        assert_eq!(parse_muk_id(&h("A0 0C 80 02 6364 80 02 6364 82 00")), None);
        assert_eq!(parse_muk_id(&h("A0 08 80 02 6364 83 02 6162")), None);
        assert_eq!(parse_muk_id(&h("A1 08 80 02 6364 82 02 6162")), None);
        assert_eq!(parse(&h("A0 08 80 02 6364 82 02 6162 81 04 00000001")), None);
        assert_eq!(parse(&[0xFF; 160]), None);
        assert_eq!(encode(&[0; 100], &[0; 60], 0, &mut rec), Err(EncodeError::BufferTooSmall));
    }

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
            let _ = parse_muk_id(&bytes);
            let _ = crate::ef::gbabp::parse(&bytes);
            let _ = crate::ef::gbanl::parse(&bytes);
            let _ = crate::ef::msk::MskRecord::parse(&bytes);
        }

        #[test]
        fn muk_round_trip(
            naf in proptest::collection::vec(any::<u8>(), 0..140),
            btid in proptest::collection::vec(any::<u8>(), 0..140),
            ts in any::<u64>(),
        ) {
            let mut rec = [0u8; 160];
            if encode(&btid, &naf, ts, &mut rec).is_ok() {
                let p = parse(&rec).unwrap();
                prop_assert_eq!((p.id.idr, p.id.idi, p.ts), (&btid[..], &naf[..], ts));
            } else {
                prop_assert!(record_len(btid.len(), naf.len()) > 160);
            }
        }
    }
}
