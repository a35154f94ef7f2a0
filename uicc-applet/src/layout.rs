//! The NVM map of the card: where every persistent byte lives (EF bodies of TS 31.102 / TS 31.103,
//! PIN and ADM state of TS 102 221 §9.5, subscriber keys of TS 33.102, and the GBA_U / MBMS key
//! stores of TS 33.220 Annex G and TS 33.246 §6). The one place to change when the image changes;
//! bump [`LAYOUT_VERSION`] when it does.
//!
//! ```text
//! HEADER        magic "KSIM", layout version           written last by personalization
//! JOURNAL_*     commit mark, used length, entries       see crate::journal
//! PIN1/ADM1/PUK1 8-byte value + 1-byte tries left
//! K, OPC, AMF, SQN_ARRAY                                 AKA (3G context, GBA bootstrap)
//! *_GBA_CONTEXT, *_KS_INT_NAF, MSK_KEYS                 GBA_U and MBMS keys (crate::keystore)
//! EF bodies     one region per fs::Ef, in Ef::ALL order
//! ```

use crate::fs::{self, Ef};

/// Bytes of NVM the card needs: allocate at least this much for the store given to
/// [`Uicc::power_on`](crate::Uicc::power_on).
pub const NVM_SIZE: usize = 16 * 1024;

/// A byte range of the NVM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
}

impl Region {
    /// One past the last byte.
    pub const fn end(self) -> usize {
        self.offset + self.len
    }

    /// The region of `len` bytes right after this one.
    const fn then(self, len: usize) -> Region {
        Region { offset: self.end(), len }
    }
}

/// Image header: magic, layout version, then RFU bytes.
pub const HEADER: Region = Region { offset: 0, len: 16 };
/// Magic at the start of a personalized image.
pub const HEADER_MAGIC: [u8; 4] = *b"KSIM";
/// Version of this layout, stored after the magic; an image of another version is refused.
pub const LAYOUT_VERSION: u8 = 3;

/// Capacity of the journal's entry area: the largest single transaction, entry headers included.
/// The largest today are a GBA bootstrap (SQN array, GBA context, EF.GBABP: about 400 bytes) and an
/// MSK Update (EF.MUK record, MUK link, EF.MSK record, two MSK slots: about 290).
pub const JOURNAL_BODY_LEN: usize = 1536;
/// Journal commit mark (one byte, written alone so it is atomic).
pub const JOURNAL_MARK: Region = HEADER.then(1);
/// Bytes of the journal body in use, big-endian u16, written before the commit mark.
pub const JOURNAL_USED: Region = JOURNAL_MARK.then(2);
/// Journal entries: `offset (u16) | length (u16) | data`.
pub const JOURNAL_BODY: Region = JOURNAL_USED.then(JOURNAL_BODY_LEN);

/// PIN1 value, 8 bytes as presented in VERIFY (TS 102 221 §9.5.1).
pub const PIN1_VALUE: Region = JOURNAL_BODY.then(8);
/// PIN1 tries left.
pub const PIN1_TRIES: Region = PIN1_VALUE.then(1);
/// ADM1 value, 8 bytes.
pub const ADM1_VALUE: Region = PIN1_TRIES.then(8);
/// ADM1 tries left.
pub const ADM1_TRIES: Region = ADM1_VALUE.then(1);

/// PUK1, the UNBLOCK PIN value of PIN1 (TS 102 221 §9.5.1: 8 digits), as presented in UNBLOCK PIN.
pub const PUK1_VALUE: Region = ADM1_TRIES.then(8);
/// PUK1 tries left.
pub const PUK1_TRIES: Region = PUK1_VALUE.then(1);

/// Subscriber key K (TS 35.206).
pub const K: Region = PUK1_TRIES.then(16);
/// OPc (TS 35.206).
pub const OPC: Region = K.then(16);
/// AMF of the personalization (kept for the network side; the card does not compare it, see
/// [`CHECK_AMF`](crate::open_values::CHECK_AMF)).
pub const AMF: Region = OPC.then(2);
/// SQN array entries (TS 33.102 Annex C.2.2: 2^IND, IND of 5 bits; `gba::sqn::SQN_ARRAY_LEN`).
pub const SQN_ARRAY_ENTRIES: usize = gba::sqn::SQN_ARRAY_LEN;
/// SQN array: SEQ_MS(i) by IND i, 6 bytes each, big-endian (`gba::UsimSqnArray` encoding). The
/// personalized SQN = SEQ ‖ IND is stored as SEQ in entry IND: the highest SQN accepted so far.
/// Shared by the USIM and the ISIM: one SQN space per subscription (see `open_values`).
pub const SQN_ARRAY: Region = AMF.then(gba::sqn::USIM_SQN_STATE_LEN);

/// Bytes of one GBA_U bootstrapping context: state (1), Ks (32), RAND (16), RFU. The RAND kept
/// here, not the ME-writable copy in EF.GBABP, enters the NAF key derivation.
pub const GBA_CONTEXT_LEN: usize = 64;
/// The USIM's GBA_U context (TS 33.220 §5.3.2, Annex G.1).
pub const USIM_GBA_CONTEXT: Region = SQN_ARRAY.then(GBA_CONTEXT_LEN);
/// The ISIM's GBA_U context (TS 31.103 §7.1: each application has its own Ks and EF.GBABP).
pub const ISIM_GBA_CONTEXT: Region = USIM_GBA_CONTEXT.then(GBA_CONTEXT_LEN);
/// Bytes of one Ks_int_NAF slot: state (1), Ks_int_NAF (32), key lifetime in seconds since 1900
/// (8), LRU stamp (4), RFU. NAF_Id and B-TID are in the EF.GBANL record of the same number; a
/// USIM slot whose NAF_Id and B-TID an EF.MUK record names is a MUK in use (TS 33.220 Annex G.2).
pub const KS_INT_NAF_SLOT_LEN: usize = 48;
/// The USIM's Ks_int_NAF store, one slot per EF.GBANL record (TS 33.220 Annex G.2).
pub const USIM_KS_INT_NAF: Region = ISIM_GBA_CONTEXT.then(fs::GBANL_RECORDS as usize * KS_INT_NAF_SLOT_LEN);
/// The ISIM's Ks_int_NAF store.
pub const ISIM_KS_INT_NAF: Region =
    USIM_KS_INT_NAF.then(fs::ISIM_GBANL_RECORDS as usize * KS_INT_NAF_SLOT_LEN);
/// Bytes of one MSK slot: state (1), MSK (16), "an MTK was accepted" flag (1), RFU. The MSK ID and
/// its counter are in the EF.MSK pair of the same number (TS 33.246 §6.3).
pub const MSK_SLOT_LEN: usize = 32;
/// MSK store, one slot per (MSK ID, TS) pair of EF.MSK, record by record.
pub const MSK_KEYS: Region =
    ISIM_KS_INT_NAF.then(fs::MSK_RECORDS as usize * fs::MSK_PAIRS_PER_RECORD as usize * MSK_SLOT_LEN);

/// Start of the EF bodies.
const EF_DATA_START: usize = MSK_KEYS.end();

// Evaluated by the compiler: an index out of range here fails the build, never the card.
#[allow(clippy::indexing_slicing)]
const EF_OFFSETS: [usize; Ef::COUNT] = {
    let mut offsets = [0; Ef::COUNT];
    let mut at = EF_DATA_START;
    let mut i = 0;
    while i < Ef::COUNT {
        offsets[i] = at;
        at += Ef::ALL[i].info().structure.size();
        i += 1;
    }
    offsets
};

/// All EF bodies.
// Evaluated by the compiler: an index out of range here fails the build, never the card.
#[allow(clippy::indexing_slicing)]
pub const EF_DATA: Region = {
    let last = Ef::ALL[Ef::COUNT - 1];
    Region {
        offset: EF_DATA_START,
        len: EF_OFFSETS[Ef::COUNT - 1] + last.info().structure.size() - EF_DATA_START,
    }
};

/// The body of `ef`.
pub const fn ef(ef: Ef) -> Region {
    let offset = match EF_OFFSETS.split_at_checked(ef.index()) {
        Some((_, [offset, ..])) => *offset,
        // Unreachable: `Ef::index` is below `Ef::COUNT`.
        _ => 0,
    };
    Region { offset, len: ef.info().structure.size() }
}

/// First byte that transactions may write: everything from here to [`USED`] is persistent state.
pub const STATE_START: usize = PIN1_VALUE.offset;
/// End of the used image.
pub const USED: usize = EF_DATA.end();

const _: () = assert!(USED <= NVM_SIZE, "NVM layout exceeds NVM_SIZE");
const _: () = assert!(USED <= u16::MAX as usize, "journal entries address the image with 16-bit offsets");
