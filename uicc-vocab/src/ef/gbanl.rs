//! EF.GBANL, the GBA NAF list (TS 31.102 §4.2.83, TS 31.103 §4.2.10): per record `80 L NAF_Id`
//! (FQDN ‖ 5-byte Ua security protocol id) and `81 L B-TID`, BER lengths, then `FF` padding.

use apdu::tlv::Tlv;

use super::padded;
use crate::{EncodeError, put_tlv, tlv_len};

/// Tag of NAF_Id.
pub const TAG_NAF_ID: u8 = 0x80;
/// Tag of B-TID.
pub const TAG_B_TID: u8 = 0x81;

/// An EF.GBANL record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GbanlRecord<'a> {
    /// NAF_Id = FQDN ‖ Ua security protocol id.
    pub naf_id: &'a [u8],
    /// B-TID of the bootstrapping the key came from.
    pub b_tid: &'a [u8],
}

/// Read an EF.GBANL record; `None` for an erased or malformed record.
pub fn parse(record: &[u8]) -> Option<GbanlRecord<'_>> {
    let (naf, rest) = Tlv::parse(record).ok()?;
    let (btid, rest) = Tlv::parse(rest).ok()?;
    if naf.tag != u32::from(TAG_NAF_ID) || btid.tag != u32::from(TAG_B_TID) || !padded(rest) {
        return None;
    }
    Some(GbanlRecord { naf_id: naf.value, b_tid: btid.value })
}

/// Bytes an EF.GBANL record needs for these values.
pub const fn record_len(naf_id_len: usize, b_tid_len: usize) -> usize {
    tlv_len(naf_id_len) + tlv_len(b_tid_len)
}

/// Write an EF.GBANL record over the whole of `out`, padded with `FF`.
pub fn encode(naf_id: &[u8], b_tid: &[u8], out: &mut [u8]) -> Result<(), EncodeError> {
    if record_len(naf_id.len(), b_tid.len()) > out.len() {
        return Err(EncodeError::BufferTooSmall);
    }
    out.fill(0xFF);
    let mut at = 0;
    put_tlv(out, &mut at, TAG_NAF_ID, naf_id)?;
    put_tlv(out, &mut at, TAG_B_TID, b_tid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ef::vectors::{B_TID, NAF_ID, h};
    use proptest::prelude::*;

    #[test]
    fn ef_gbanl_vectors() {
        // TS 31.102 §4.2.83: 80 L NAF_Id 81 L B-TID, FF-padded.
        let expected = h(&format!("80 15 {NAF_ID} 81 28 {B_TID}"));
        let mut rec = [0u8; 160];
        encode(&h(NAF_ID), &h(B_TID), &mut rec).unwrap();
        assert_eq!(rec[..expected.len()].to_vec(), expected);
        assert!(rec[expected.len()..].iter().all(|&b| b == 0xFF));
        let parsed = parse(&rec).unwrap();
        assert_eq!((parsed.naf_id.to_vec(), parsed.b_tid.to_vec()), (h(NAF_ID), h(B_TID)));
        // A value longer than 127 bytes takes the two-byte length 81 xx (ISO/IEC 8825-1).
        let long = [0x61u8; 130];
        encode(&long, b"x", &mut rec).unwrap();
        assert_eq!(rec[..4].to_vec(), h("80 81 82 61"));
        assert_eq!(rec[133..136].to_vec(), h("81 01 78"));
        assert_eq!(record_len(130, 1), 136);
        assert_eq!(encode(&[0x61; 150], &[0x62; 10], &mut rec), Err(EncodeError::BufferTooSmall));
        // Erased, wrong tags, trailing garbage.
        assert_eq!(parse(&[0xFF; 160]), None);
        assert_eq!(parse(&h("8101AA 8001BB FF")), None);
        assert_eq!(parse(&h("8001AA 8101BB 00")), None);
        assert!(parse(&h("8001AA 8101BB FFFF")).is_some());
    }

    proptest! {
        #[test]
        fn gbanl_round_trip(
            naf in proptest::collection::vec(any::<u8>(), 0..140),
            btid in proptest::collection::vec(any::<u8>(), 0..140),
        ) {
            let mut rec = [0u8; 160];
            if encode(&naf, &btid, &mut rec).is_ok() {
                let p = parse(&rec).unwrap();
                prop_assert_eq!((p.naf_id, p.b_tid), (&naf[..], &btid[..]));
            } else {
                prop_assert!(record_len(naf.len(), btid.len()) > 160);
            }
        }
    }
}
