//! Codecs of the EFs the project reads or writes (TS 102 221 §13, TS 31.102 §4.2, TS 31.103 §4.2):
//! parsers borrow and never panic; encoders write into caller buffers (or return fixed arrays),
//! padding records with `FF`. Each codec carries its known-answer vectors in its tests.

pub mod ad;
pub mod dir;
pub mod gbabp;
pub mod gbanl;
pub mod iccid;
pub mod ims_identity;
pub mod imsi;
pub mod msk;
pub mod muk;
pub mod service_table;

/// Length of RAND (TS 33.102 §6.3.2), as EF.GBABP and AUTHENTICATE carry it.
pub const RAND_LEN: usize = 16;
/// Length of AUTN (TS 33.102 §6.3.2).
pub const AUTN_LEN: usize = 16;
/// Length of a Key Domain ID (TS 31.102 §4.2.80: MCC ‖ MNC).
pub const KEY_DOMAIN_ID_LEN: usize = 3;
/// Length of the Key Group part of an MSK ID (TS 31.102 §4.2.80).
pub const KEY_GROUP_LEN: usize = 2;

use apdu::tlv::Tlv;

/// The value of the first top-level data object tagged `tag` in `data`; padding (`FF` or `00`) or
/// a malformed object ends the search.
pub fn find(mut data: &[u8], tag: u8) -> Option<&[u8]> {
    while !data.is_empty() {
        let (object, rest) = Tlv::parse(data).ok()?;
        if object.tag == u32::from(tag) {
            return Some(object.value);
        }
        data = rest;
    }
    None
}

/// Whether every byte after the objects is `FF` padding.
pub(crate) fn padded(rest: &[u8]) -> bool {
    rest.iter().all(|&b| b == 0xFF)
}

#[cfg(test)]
pub(crate) mod vectors {
    //! Values written by hand from the byte tables of TS 31.102 §4.2.79 to §4.2.83 (spec digest §3)
    //! and the §8.2 example identifiers; none is output of the code under test.

    pub fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    pub const RAND: &str = "23553cbe9637a89d218ae64dae47bf35";
    /// "I1U8vpY3qJ0hiuZNrke/NQ==@bsf.example.org" (40 bytes), the B-TID example of spec digest §8.2.
    pub const B_TID: &str =
        "4931553876705933714a30686975 5a4e726b652f4e513d3d406273662e6578616d706c652e6f7267";
    /// "bmsc.example.org" ‖ 01 00 00 00 01 (21 bytes).
    pub const NAF_ID: &str = "626d73632e6578616d706c652e6f7267 0100000001";
}
