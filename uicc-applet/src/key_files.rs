//! Codecs of the GBA and MBMS files the card writes itself (TS 31.102 §4.2.79 EF.GBABP, §4.2.80
//! EF.MSK, §4.2.81 EF.MUK, §4.2.83 EF.GBANL; TS 31.103 §4.2.9 and §4.2.10 for the ISIM's
//! EF.GBABP and EF.GBANL). Parsers borrow and never panic; encoders write whole records, padded
//! with `FF`. Each codec has its known-answer vectors in the tests below.

use apdu::tlv::{self, Tlv};

use crate::fs::{GBABP_SIZE, MSK_RECORD_LEN};
use crate::open_values::{
    MSKS_PER_KEY_GROUP, MUK_TS_LEN, MUK_UA_SECURITY_PROTOCOL_ID, TAG_GBANL_B_TID, TAG_GBANL_NAF_ID,
    TAG_MUK_ID, TAG_MUK_IDI, TAG_MUK_IDR, TAG_MUK_TS,
};

/// Length of RAND (TS 33.102 §6.3.2).
pub(crate) const RAND_LEN: usize = 16;
/// Length of a Key Domain ID (TS 31.102 §4.2.80).
pub(crate) const KEY_DOMAIN_ID_LEN: usize = 3;

/// EF.GBABP: `X RAND L B-TID N lifetime`, each length counting its own field only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gbabp<'a> {
    /// RAND of the last bootstrapping (written by the card).
    pub rand: &'a [u8],
    /// B-TID (written by the ME); empty until then.
    pub b_tid: &'a [u8],
    /// Key lifetime (written by the ME); empty until then.
    pub lifetime: &'a [u8],
}

/// Read EF.GBABP. `None` if a length field runs past the file (an erased `FF` length does).
pub(crate) fn parse_gbabp(body: &[u8]) -> Option<Gbabp<'_>> {
    fn lv(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
        let (&len, rest) = bytes.split_first()?;
        let value = rest.get(..usize::from(len))?;
        Some((value, rest.get(usize::from(len)..)?))
    }
    let (rand, rest) = lv(body)?;
    let (b_tid, rest) = lv(rest)?;
    let (lifetime, _) = lv(rest)?;
    Some(Gbabp { rand, b_tid, lifetime })
}

/// EF.GBABP after a bootstrapping: the new RAND, empty B-TID and lifetime (TS 33.220 Annex G.1:
/// all replaced by the ME afterwards), the rest erased.
pub(crate) fn gbabp_after_bootstrap(rand: &[u8; RAND_LEN]) -> [u8; GBABP_SIZE as usize] {
    let mut out = [0xFFu8; GBABP_SIZE as usize];
    out[0] = RAND_LEN as u8;
    out[1..1 + RAND_LEN].copy_from_slice(rand);
    out[1 + RAND_LEN] = 0x00;
    out[2 + RAND_LEN] = 0x00;
    out
}

/// Write `tag L value` at `*at` and advance it.
fn put(out: &mut [u8], at: &mut usize, tag: u8, value: &[u8]) -> Option<()> {
    let n = tlv::write(u16::from(tag), value, out.get_mut(*at..)?).ok()?;
    *at += n;
    Some(())
}

/// Bytes `tag L value` takes with a BER length.
pub(crate) const fn tlv_len(value_len: usize) -> usize {
    1 + tlv::length_field_len(value_len) + value_len
}

/// Whether every byte after the objects is `FF` padding.
fn padded(rest: &[u8]) -> bool {
    rest.iter().all(|&b| b == 0xFF)
}

/// An EF.GBANL record: `80 L NAF_Id 81 L B-TID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GbanlRecord<'a> {
    /// NAF_Id = FQDN ‖ Ua security protocol id.
    pub naf_id: &'a [u8],
    /// B-TID of the bootstrapping the key came from.
    pub b_tid: &'a [u8],
}

impl GbanlRecord<'_> {
    /// Whether this key is the MUK `id` names (TS 33.246 §6.1, UICC-based: MUK = Ks_int_NAF): its
    /// NAF_Id is Idi ‖ the MBMS Ua security protocol id and its B-TID is Idr.
    pub(crate) fn is_muk(&self, id: &MukId<'_>) -> bool {
        let Some(split) = self.naf_id.len().checked_sub(MUK_UA_SECURITY_PROTOCOL_ID.len()) else {
            return false;
        };
        let (fqdn, ua) = self.naf_id.split_at(split);
        fqdn == id.idi && ua == MUK_UA_SECURITY_PROTOCOL_ID && self.b_tid == id.idr
    }
}

/// Read an EF.GBANL record; `None` for an erased or malformed record.
pub(crate) fn parse_gbanl_record(record: &[u8]) -> Option<GbanlRecord<'_>> {
    let (naf, rest) = Tlv::parse(record).ok()?;
    let (btid, rest) = Tlv::parse(rest).ok()?;
    if naf.tag != u32::from(TAG_GBANL_NAF_ID) || btid.tag != u32::from(TAG_GBANL_B_TID) || !padded(rest) {
        return None;
    }
    Some(GbanlRecord { naf_id: naf.value, b_tid: btid.value })
}

/// Bytes an EF.GBANL record needs for these values.
pub(crate) const fn gbanl_record_len(naf_id_len: usize, b_tid_len: usize) -> usize {
    tlv_len(naf_id_len) + tlv_len(b_tid_len)
}

/// Write an EF.GBANL record over the whole of `out`; `None` if it does not fit.
pub(crate) fn encode_gbanl_record(naf_id: &[u8], b_tid: &[u8], out: &mut [u8]) -> Option<()> {
    if gbanl_record_len(naf_id.len(), b_tid.len()) > out.len() {
        return None;
    }
    out.fill(0xFF);
    let mut at = 0;
    put(out, &mut at, TAG_GBANL_NAF_ID, naf_id)?;
    put(out, &mut at, TAG_GBANL_B_TID, b_tid)
}

/// A MUK ID: `A0 L { 80 L Idr, 82 L Idi }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MukId<'a> {
    /// Idr: the B-TID.
    pub idr: &'a [u8],
    /// Idi: the BM-SC (NAF) FQDN.
    pub idi: &'a [u8],
}

/// Read the MUK ID template at the front of `bytes`; return it and what follows. Idr and Idi
/// must both be present once, in either order, and nothing else inside.
pub(crate) fn parse_muk_id(bytes: &[u8]) -> Option<(MukId<'_>, &[u8])> {
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

/// An EF.MUK record: the MUK ID and the Time Stamp Counter of the last MIKEY message accepted with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MukRecord<'a> {
    /// Which MUK.
    pub id: MukId<'a>,
    /// The last accepted MIKEY timestamp (64-bit value).
    pub ts: u64,
}

/// Read an EF.MUK record; `None` for an erased or malformed one.
pub(crate) fn parse_muk_record(record: &[u8]) -> Option<MukRecord<'_>> {
    let (id, rest) = parse_muk_id(record)?;
    let (ts, rest) = Tlv::parse(rest).ok()?;
    if ts.tag != u32::from(TAG_MUK_TS) || !padded(rest) {
        return None;
    }
    let ts: [u8; MUK_TS_LEN] = ts.value.try_into().ok()?;
    Some(MukRecord { id, ts: u64::from_be_bytes(ts) })
}

/// Bytes the MUK ID template takes.
const fn muk_id_len(idr_len: usize, idi_len: usize) -> usize {
    tlv_len(tlv_len(idr_len) + tlv_len(idi_len))
}

/// Bytes an EF.MUK record needs for these identifiers.
pub(crate) const fn muk_record_len(idr_len: usize, idi_len: usize) -> usize {
    muk_id_len(idr_len, idi_len) + tlv_len(MUK_TS_LEN)
}

/// Write an EF.MUK record over the whole of `out`; `None` if it does not fit.
pub(crate) fn encode_muk_record(idr: &[u8], idi: &[u8], ts: u64, out: &mut [u8]) -> Option<()> {
    if muk_record_len(idr.len(), idi.len()) > out.len() {
        return None;
    }
    out.fill(0xFF);
    let inner_len = tlv_len(idr.len()) + tlv_len(idi.len());
    out[0] = TAG_MUK_ID;
    let mut at = 1 + tlv::write_length(inner_len, out.get_mut(1..)?).ok()?;
    put(out, &mut at, TAG_MUK_IDR, idr)?;
    put(out, &mut at, TAG_MUK_IDI, idi)?;
    put(out, &mut at, TAG_MUK_TS, &ts.to_be_bytes())
}

/// One (MSK ID, Time Stamp Counter) pair of EF.MSK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MskPair {
    /// MSK ID; its first two bytes are the Key Group.
    pub msk_id: u32,
    /// Time Stamp Counter (see [`crate::open_values::MSK_TS_IS_MTK_ID`]).
    pub ts: u32,
}

/// An EF.MSK record: Key Domain ID, then up to two pairs, older first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MskRecord {
    /// Key Domain ID (MCC ‖ MNC).
    pub key_domain_id: [u8; KEY_DOMAIN_ID_LEN],
    /// The MSKs of one Key Group, in delivery order.
    pub pairs: heapless::Vec<MskPair, MSKS_PER_KEY_GROUP>,
}

/// Bytes of one pair.
const MSK_PAIR_LEN: usize = 8;

impl MskRecord {
    /// The Key Group of the record (of its first pair); `None` if it has none.
    pub(crate) fn key_group(&self) -> Option<u16> {
        self.pairs.first().map(|p| (p.msk_id >> 16) as u16)
    }

    /// Read an EF.MSK record. `None` for an erased record, one holding no pair, more pairs than
    /// the card keeps, or pairs of different Key Groups.
    pub(crate) fn parse(record: &[u8]) -> Option<MskRecord> {
        let key_domain_id: [u8; KEY_DOMAIN_ID_LEN] = record.get(..KEY_DOMAIN_ID_LEN)?.try_into().ok()?;
        let n = usize::from(*record.get(KEY_DOMAIN_ID_LEN)?);
        if n == 0 || n > MSKS_PER_KEY_GROUP {
            return None;
        }
        let mut pairs = heapless::Vec::new();
        for i in 0..n {
            let at = KEY_DOMAIN_ID_LEN + 1 + i * MSK_PAIR_LEN;
            let b = record.get(at..at + MSK_PAIR_LEN)?;
            let msk_id = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
            let ts = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
            pairs.push(MskPair { msk_id, ts }).ok()?;
        }
        let record = MskRecord { key_domain_id, pairs };
        let group = record.key_group()?;
        record.pairs.iter().all(|p| (p.msk_id >> 16) as u16 == group).then_some(record)
    }

    /// The record bytes, unused pairs `FF`.
    pub(crate) fn encode(&self) -> [u8; MSK_RECORD_LEN as usize] {
        let mut out = [0xFFu8; MSK_RECORD_LEN as usize];
        out[..KEY_DOMAIN_ID_LEN].copy_from_slice(&self.key_domain_id);
        out[KEY_DOMAIN_ID_LEN] = self.pairs.len() as u8;
        for (i, p) in self.pairs.iter().enumerate() {
            let at = KEY_DOMAIN_ID_LEN + 1 + i * MSK_PAIR_LEN;
            if let Some(dst) = out.get_mut(at..at + MSK_PAIR_LEN) {
                dst[..4].copy_from_slice(&p.msk_id.to_be_bytes());
                dst[4..].copy_from_slice(&p.ts.to_be_bytes());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    //! Vectors written by hand from the byte tables of TS 31.102 §4.2.79 to §4.2.83 (spec digest §3)
    //! and the §8.2 example identifiers; none is output of the code under test.
    use super::*;
    use proptest::prelude::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    const RAND: &str = "23553cbe9637a89d218ae64dae47bf35";
    /// "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example.org" (40 bytes), the B-TID example of spec digest §8.2.
    const B_TID: &str = "4931553876705933714a30686975 5a4e726b652f4e513d3d406273662e6578616d706c652e6f7267";
    /// "bmsc.example.org" ‖ 01 00 00 00 01 (21 bytes).
    const NAF_ID: &str = "626d73632e6578616d706c652e6f7267 0100000001";

    #[test]
    fn ef_gbabp_vectors() {
        // TS 31.102 §4.2.79: X RAND L B-TID N lifetime.
        let after = gbabp_after_bootstrap(&h(RAND).try_into().unwrap());
        assert_eq!(after[..19].to_vec(), h(&format!("10 {RAND} 00 00")));
        assert!(after[19..].iter().all(|&b| b == 0xFF));
        let parsed = parse_gbabp(&after).unwrap();
        assert_eq!((parsed.rand, parsed.b_tid, parsed.lifetime), (&h(RAND)[..], &[][..], &[][..]));
        // With B-TID (28) and lifetime "2030-12-31T23:59:59Z" (14) as the ME writes them.
        let full = h(&format!("10 {RAND} 28 {B_TID} 14 323033302d31322d33315432333a35393a35395a FFFF"));
        let parsed = parse_gbabp(&full).unwrap();
        assert_eq!(parsed.b_tid, b"I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example.org");
        assert_eq!(parsed.lifetime, b"2030-12-31T23:59:59Z");
        // The personalized state (three empty LVs) and broken lengths.
        assert_eq!(parse_gbabp(&h("000000FFFF")), Some(Gbabp { rand: &[], b_tid: &[], lifetime: &[] }));
        assert_eq!(parse_gbabp(&[0xFF; 128]), None);
        assert_eq!(parse_gbabp(&h("02AA")), None);
        assert_eq!(parse_gbabp(&h("00 00")), None);
    }

    #[test]
    fn ef_gbanl_vectors() {
        // TS 31.102 §4.2.83: 80 L NAF_Id 81 L B-TID, FF-padded.
        let expected = h(&format!("80 15 {NAF_ID} 81 28 {B_TID}"));
        let mut rec = [0u8; 160];
        encode_gbanl_record(&h(NAF_ID), &h(B_TID), &mut rec).unwrap();
        assert_eq!(rec[..expected.len()].to_vec(), expected);
        assert!(rec[expected.len()..].iter().all(|&b| b == 0xFF));
        let parsed = parse_gbanl_record(&rec).unwrap();
        assert_eq!((parsed.naf_id.to_vec(), parsed.b_tid.to_vec()), (h(NAF_ID), h(B_TID)));
        // A value longer than 127 bytes takes the two-byte length 81 xx (ISO/IEC 8825-1).
        let long = [0x61u8; 130];
        encode_gbanl_record(&long, b"x", &mut rec).unwrap();
        assert_eq!(rec[..4].to_vec(), h("80 81 82 61"));
        assert_eq!(rec[133..136].to_vec(), h("81 01 78"));
        assert_eq!(gbanl_record_len(130, 1), 136);
        assert_eq!(encode_gbanl_record(&[0x61; 150], &[0x62; 10], &mut rec), None);
        // Erased, wrong tags, trailing garbage.
        assert_eq!(parse_gbanl_record(&[0xFF; 160]), None);
        assert_eq!(parse_gbanl_record(&h("8101AA 8001BB FF")), None);
        assert_eq!(parse_gbanl_record(&h("8001AA 8101BB 00")), None);
        assert!(parse_gbanl_record(&h("8001AA 8101BB FFFF")).is_some());
    }

    #[test]
    fn ef_muk_vectors() {
        // TS 31.102 §4.2.81: A0 L {80 L Idr, 82 L Idi} 81 L TS, FF-padded. Idi = "bmsc.example.org".
        let idi = h("626d73632e6578616d706c652e6f7267");
        let expected =
            h(&format!("A0 3C 80 28 {B_TID} 82 10 626d73632e6578616d706c652e6f7267 81 08 0000000000000102"));
        let mut rec = [0u8; 160];
        encode_muk_record(&h(B_TID), &idi, 0x0102, &mut rec).unwrap();
        assert_eq!(rec[..expected.len()].to_vec(), expected);
        assert!(rec[expected.len()..].iter().all(|&b| b == 0xFF));
        assert_eq!(muk_record_len(40, 16), expected.len());
        let parsed = parse_muk_record(&rec).unwrap();
        assert_eq!(
            (parsed.id.idr.to_vec(), parsed.id.idi.to_vec(), parsed.ts),
            (h(B_TID), idi.clone(), 0x0102)
        );
        // The MUK ID of MUK Deletion mode, Idi first: the order inside A0 is free.
        let idi_first = h("A0 08 82 02 6162 80 02 6364");
        let (id, rest) = parse_muk_id(&idi_first).unwrap();
        assert_eq!((id.idr, id.idi, rest), (&b"cd"[..], &b"ab"[..], &[][..]));
        // Missing, duplicated or foreign objects, a timestamp of the wrong size.
        assert_eq!(parse_muk_id(&h("A0 04 80 02 6364")), None);
        assert_eq!(parse_muk_id(&h("A0 0C 80 02 6364 80 02 6364 82 00")), None);
        assert_eq!(parse_muk_id(&h("A0 08 80 02 6364 83 02 6162")), None);
        assert_eq!(parse_muk_id(&h("A1 08 80 02 6364 82 02 6162")), None);
        assert_eq!(parse_muk_record(&h("A0 08 80 02 6364 82 02 6162 81 04 00000001")), None);
        assert_eq!(parse_muk_record(&[0xFF; 160]), None);
        assert_eq!(encode_muk_record(&[0; 100], &[0; 60], 0, &mut rec), None);
    }

    #[test]
    fn ef_msk_vectors() {
        // TS 31.102 §4.2.80: Key Domain ID (3), n, (MSK ID (4), TS (4)) × n; the Key Group is the
        // first two bytes of the MSK ID.
        let bytes = h("00F110 02 00010002 00000005 00010003 00000009");
        let rec = MskRecord::parse(&bytes).unwrap();
        assert_eq!(rec.key_domain_id, [0x00, 0xF1, 0x10]);
        assert_eq!(
            rec.pairs.as_slice(),
            [MskPair { msk_id: 0x0001_0002, ts: 5 }, MskPair { msk_id: 0x0001_0003, ts: 9 }]
        );
        assert_eq!(rec.key_group(), Some(1));
        assert_eq!(rec.encode().to_vec(), bytes);
        let one = h("00F110 01 00010002 00000005 FFFFFFFF FFFFFFFF");
        assert_eq!(MskRecord::parse(&one).unwrap().encode().to_vec(), one);
        assert_eq!(MskRecord::parse(&[0xFF; 20]), None);
        assert_eq!(MskRecord::parse(&h("00F110 00 FFFFFFFFFFFFFFFF FFFFFFFFFFFFFFFF")), None);
        assert_eq!(MskRecord::parse(&h("00F110 03 00010002 00000005 00010003 00000009")), None);
        // Two Key Groups in one record.
        assert_eq!(MskRecord::parse(&h("00F110 02 00010002 00000005 00020003 00000009")), None);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_gbabp(&bytes);
            let _ = parse_gbanl_record(&bytes);
            let _ = parse_muk_record(&bytes);
            let _ = parse_muk_id(&bytes);
            let _ = MskRecord::parse(&bytes);
        }

        #[test]
        fn records_round_trip(
            naf in proptest::collection::vec(any::<u8>(), 0..140),
            btid in proptest::collection::vec(any::<u8>(), 0..140),
            ts in any::<u64>(),
        ) {
            let mut rec = [0u8; 160];
            if encode_gbanl_record(&naf, &btid, &mut rec).is_some() {
                let p = parse_gbanl_record(&rec).unwrap();
                prop_assert_eq!((p.naf_id, p.b_tid), (&naf[..], &btid[..]));
            } else {
                prop_assert!(gbanl_record_len(naf.len(), btid.len()) > 160);
            }
            if encode_muk_record(&btid, &naf, ts, &mut rec).is_some() {
                let p = parse_muk_record(&rec).unwrap();
                prop_assert_eq!((p.id.idr, p.id.idi, p.ts), (&btid[..], &naf[..], ts));
            } else {
                prop_assert!(muk_record_len(btid.len(), naf.len()) > 160);
            }
        }
    }
}
