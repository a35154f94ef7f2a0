//! EF.MSK, the MBMS service keys list (TS 31.102 §4.2.80): per record the Key Domain ID (3 bytes),
//! the number of (MSK ID, Time Stamp Counter) pairs, then the pairs (4 + 4 bytes), older first;
//! record length 8n + 4. The Key Group is the first two bytes of the MSK ID.

use super::KEY_DOMAIN_ID_LEN;
use crate::open_values::MSKS_PER_KEY_GROUP;

/// Bytes of one (MSK ID, Time Stamp Counter) pair.
pub const PAIR_LEN: usize = 8;
/// Record length for `n` pairs (TS 31.102 §4.2.80: 8n + 4).
pub const fn record_len(n: usize) -> usize {
    PAIR_LEN * n + KEY_DOMAIN_ID_LEN + 1
}
/// Record length with [`MSKS_PER_KEY_GROUP`] pairs.
pub const RECORD_LEN: usize = record_len(MSKS_PER_KEY_GROUP);

/// One (MSK ID, Time Stamp Counter) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MskPair {
    /// MSK ID; its first two bytes are the Key Group.
    pub msk_id: u32,
    /// Time Stamp Counter (see [`crate::open_values::MSK_TS_IS_MTK_ID`]).
    pub ts: u32,
}

/// An EF.MSK record: Key Domain ID, then up to [`MSKS_PER_KEY_GROUP`] pairs, older first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MskRecord {
    /// Key Domain ID (MCC ‖ MNC).
    pub key_domain_id: [u8; KEY_DOMAIN_ID_LEN],
    /// The MSKs of one Key Group, in delivery order.
    pub pairs: heapless::Vec<MskPair, MSKS_PER_KEY_GROUP>,
}

impl MskRecord {
    /// A record of `key_domain_id` holding `pairs`, older first; `None` for more than
    /// [`MSKS_PER_KEY_GROUP`] pairs.
    pub fn new(key_domain_id: [u8; KEY_DOMAIN_ID_LEN], pairs: &[MskPair]) -> Option<MskRecord> {
        Some(MskRecord { key_domain_id, pairs: heapless::Vec::from_slice(pairs).ok()? })
    }

    /// The Key Group of the record (of its first pair); `None` if it has none.
    pub fn key_group(&self) -> Option<u16> {
        self.pairs.first().map(|p| (p.msk_id >> 16) as u16)
    }

    /// Read an EF.MSK record. `None` for an erased record, one holding no pair, more pairs than
    /// [`MSKS_PER_KEY_GROUP`], or pairs of different Key Groups.
    pub fn parse(record: &[u8]) -> Option<MskRecord> {
        let (key_domain_id, rest) = record.split_first_chunk::<KEY_DOMAIN_ID_LEN>()?;
        let (&n, rest) = rest.split_first()?;
        let n = usize::from(n);
        if n == 0 || n > MSKS_PER_KEY_GROUP {
            return None;
        }
        let mut pairs = heapless::Vec::new();
        for pair in rest.chunks_exact(PAIR_LEN).take(n) {
            let (msk_id, ts) = pair.split_first_chunk::<4>()?;
            let ts: [u8; 4] = ts.try_into().ok()?;
            pairs.push(MskPair { msk_id: u32::from_be_bytes(*msk_id), ts: u32::from_be_bytes(ts) }).ok()?;
        }
        if pairs.len() != n {
            return None;
        }
        let record = MskRecord { key_domain_id: *key_domain_id, pairs };
        let group = record.key_group()?;
        record.pairs.iter().all(|p| (p.msk_id >> 16) as u16 == group).then_some(record)
    }

    /// The record bytes, unused pairs `FF`.
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let mut out = [0xFFu8; RECORD_LEN];
        let (kd, rest) = out.split_at_mut(KEY_DOMAIN_ID_LEN);
        kd.copy_from_slice(&self.key_domain_id);
        if let Some((n, pairs)) = rest.split_first_mut() {
            *n = self.pairs.len() as u8;
            for (dst, p) in pairs.chunks_exact_mut(PAIR_LEN).zip(&self.pairs) {
                let (id, ts) = dst.split_at_mut(4);
                id.copy_from_slice(&p.msk_id.to_be_bytes());
                ts.copy_from_slice(&p.ts.to_be_bytes());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ef::vectors::h;

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
        assert_eq!(RECORD_LEN, 20);
        let one = h("00F110 01 00010002 00000005 FFFFFFFF FFFFFFFF");
        assert_eq!(MskRecord::parse(&one).unwrap().encode().to_vec(), one);
        assert_eq!(MskRecord::parse(&[0xFF; 20]), None);
        assert_eq!(MskRecord::parse(&h("00F110 00 FFFFFFFFFFFFFFFF FFFFFFFFFFFFFFFF")), None);
        assert_eq!(MskRecord::parse(&h("00F110 03 00010002 00000005 00010003 00000009")), None);
        // A record cut short inside its second pair.
        assert_eq!(MskRecord::parse(&h("00F110 02 00010002 00000005 000100")), None);
        // Two Key Groups in one record.
        assert_eq!(MskRecord::parse(&h("00F110 02 00010002 00000005 00020003 00000009")), None);
    }
}
