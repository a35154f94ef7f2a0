//! The card's internal key store (TS 33.220 Annex G: GBA_U Ks and Ks_int_NAF; TS 33.246 §6: MUK
//! and MSK): NVM slots that no READ command reaches, beside the EFs (EF.GBABP, EF.GBANL, EF.MUK,
//! EF.MSK) that name their keys. Keys come out of here only as zeroizing key types.
//!
//! Slot formats (offsets inside each slot; a slot whose state byte is not [`STATE_USED`] is free):
//!
//! ```text
//! GBA context   state | Ks (32) | RAND (16) | RFU                      layout::*_GBA_CONTEXT
//! Ks_int_NAF    state | key (32) | lifetime (8, s since 1900) | LRU stamp (4) | RFU
//! MSK           state | MSK (16) | MTK accepted (1) | RFU            one per EF.MSK pair
//! ```

use gba::{Ks, KsIntNaf};
use mikey::mbms::Msk;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::fs::{
    App, Ef, GBANL_RECORD_LEN, GBANL_RECORDS, ISIM_GBANL_RECORDS, MSK_PAIRS_PER_RECORD, MUK_RECORD_LEN,
    Structure,
};
use uicc_vocab::ef::RAND_LEN;
use uicc_vocab::ef::gbanl::{self, GbanlRecord};
use uicc_vocab::ef::muk::{self, MukId};

use crate::layout::{self, GBA_CONTEXT_LEN, KS_INT_NAF_SLOT_LEN, MSK_SLOT_LEN, Region};
use crate::nvm::Nvm;
use crate::open_values::MUK_UA_SECURITY_PROTOCOL_ID;

/// State byte of a slot in use (the erased state `FF`, or anything else, is free).
pub(crate) const STATE_USED: u8 = 0x01;
/// Length of an MSK.
pub(crate) const MSK_LEN: usize = mikey::mbms::profile::MSK_LEN;

const CTX_KS: usize = 1;
const CTX_RAND: usize = CTX_KS + Ks::LEN;
const NAF_KEY: usize = 1;
const NAF_LIFETIME: usize = NAF_KEY + KsIntNaf::LEN;
const NAF_STAMP: usize = NAF_LIFETIME + 8;
const MSK_KEY: usize = 1;
/// Offset of the "an MTK was accepted under this MSK" flag inside an MSK slot.
pub(crate) const MSK_MTK_SEEN: usize = MSK_KEY + MSK_LEN;

const _: () = assert!(CTX_RAND + RAND_LEN <= GBA_CONTEXT_LEN);
const _: () = assert!(NAF_STAMP + 4 <= KS_INT_NAF_SLOT_LEN);
const _: () = assert!(MSK_MTK_SEEN < MSK_SLOT_LEN);

/// Read `N` bytes at `offset` into a buffer wiped on drop.
fn read_secret<const N: usize, S: Nvm>(nvm: &S, offset: usize) -> Result<Zeroizing<[u8; N]>, Error> {
    let mut buf = Zeroizing::new([0u8; N]);
    nvm.read(offset, &mut buf[..])?;
    Ok(buf)
}

/// The `len` bytes at `at` of a slot; the layouts keep every field inside its slot, so an error
/// here is a technical problem.
fn field(raw: &[u8], at: usize, len: usize) -> Result<&[u8], Error> {
    raw.get(at..at + len).ok_or(Error::TechnicalProblem)
}

/// Writes `bytes` at `at` of a slot (every field lies inside its slot by the layout).
fn set(raw: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = raw.get_mut(at..at + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

/// The `index`-th (0-based) `len`-byte piece of `region`, if it lies inside.
fn nth(region: Region, len: usize, index: usize) -> Option<Region> {
    let offset = region.offset.checked_add(index.checked_mul(len)?)?;
    (offset + len <= region.end()).then_some(Region { offset, len })
}

/// Record `index` (0-based) of a linear fixed EF.
pub(crate) fn record(ef: Ef, index: usize) -> Option<Region> {
    let Structure::LinearFixed { record_len, .. } = ef.info().structure else { return None };
    nth(layout::ef(ef), usize::from(record_len), index)
}

/// Number of records of a linear fixed EF (0 for a transparent one).
pub(crate) fn records(ef: Ef) -> usize {
    match ef.info().structure {
        Structure::LinearFixed { records, .. } => usize::from(records),
        Structure::Transparent { .. } => 0,
    }
}

/// Read record `index` of `ef` into `buf` (exactly one record long).
pub(crate) fn read_record<S: Nvm>(nvm: &S, ef: Ef, index: usize, buf: &mut [u8]) -> Result<(), Error> {
    let r = record(ef, index).filter(|r| r.len == buf.len()).ok_or(Error::TechnicalProblem)?;
    nvm.read(r.offset, buf)?;
    Ok(())
}

/// Whether service `n` is available in the application's service table (TS 31.102 §4.2.8 EF.UST,
/// TS 31.103 §4.2.7 EF.IST): bit (n-1) mod 8 of byte (n-1) div 8.
pub(crate) fn service_available<S: Nvm>(nvm: &S, app: App, n: u16) -> Result<bool, Error> {
    let table = match app {
        App::Usim => Ef::UsimUst,
        App::Isim => Ef::IsimIst,
    };
    let Some(bit) = n.checked_sub(1) else { return Ok(false) };
    let region = layout::ef(table);
    let byte_index = usize::from(bit / 8);
    if byte_index >= region.len {
        return Ok(false);
    }
    let mut byte = [0u8; 1];
    nvm.read(region.offset + byte_index, &mut byte)?;
    Ok(byte[0] & (1 << (bit % 8)) != 0)
}

// ---------------------------------------------------------------------------------------------
// GBA_U bootstrapping context (TS 33.220 §5.3.2, Annex G.1)

/// The context of an application's last GBA_U bootstrapping.
pub(crate) struct GbaContext {
    /// Ks = CK ‖ IK.
    pub ks: Ks,
    /// RAND of the bootstrapping.
    pub rand: [u8; RAND_LEN],
}

/// The NVM region of `app`'s GBA context.
pub(crate) const fn gba_context_region(app: App) -> Region {
    match app {
        App::Usim => layout::USIM_GBA_CONTEXT,
        App::Isim => layout::ISIM_GBA_CONTEXT,
    }
}

/// The stored context, or `None` before the first bootstrapping.
pub(crate) fn read_gba_context<S: Nvm>(nvm: &S, app: App) -> Result<Option<GbaContext>, Error> {
    let raw = read_secret::<GBA_CONTEXT_LEN, S>(nvm, gba_context_region(app).offset)?;
    if raw.first() != Some(&STATE_USED) {
        return Ok(None);
    }
    let ks = Ks::from_slice(field(&raw[..], CTX_KS, Ks::LEN)?).map_err(|_| Error::TechnicalProblem)?;
    let rand = field(&raw[..], CTX_RAND, RAND_LEN)?.try_into().map_err(|_| Error::TechnicalProblem)?;
    Ok(Some(GbaContext { ks, rand }))
}

/// The slot bytes of a context.
pub(crate) fn encode_gba_context(ks: &Ks, rand: &[u8; RAND_LEN]) -> Zeroizing<[u8; GBA_CONTEXT_LEN]> {
    let mut raw = Zeroizing::new([0xFFu8; GBA_CONTEXT_LEN]);
    set(&mut raw[..], 0, &[STATE_USED]);
    set(&mut raw[..], CTX_KS, ks.expose());
    set(&mut raw[..], CTX_RAND, rand);
    raw
}

// ---------------------------------------------------------------------------------------------
// Ks_int_NAF key list (TS 33.220 Annex G.2)

/// An application's Ks_int_NAF list: the slots and the EF.GBANL records that name them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NafKeyList {
    /// The slots.
    pub slots: Region,
    /// How many.
    pub count: usize,
    /// The EF.GBANL of the application.
    pub gbanl: Ef,
}

/// The key list of `app`.
pub(crate) const fn naf_key_list(app: App) -> NafKeyList {
    match app {
        App::Usim => {
            NafKeyList { slots: layout::USIM_KS_INT_NAF, count: GBANL_RECORDS as usize, gbanl: Ef::UsimGbanl }
        }
        App::Isim => NafKeyList {
            slots: layout::ISIM_KS_INT_NAF,
            count: ISIM_GBANL_RECORDS as usize,
            gbanl: Ef::IsimGbanl,
        },
    }
}

impl NafKeyList {
    /// Slot `index`.
    pub(crate) fn slot(&self, index: usize) -> Option<Region> {
        if index >= self.count {
            return None;
        }
        nth(self.slots, KS_INT_NAF_SLOT_LEN, index)
    }
}

/// A stored Ks_int_NAF.
pub(crate) struct NafKey {
    /// The key.
    pub key: KsIntNaf,
    /// Key lifetime, seconds since 1900 (copied from EF.GBABP at derivation).
    pub lifetime: u64,
    /// LRU stamp: larger is more recent.
    pub stamp: u32,
}

/// Slot `index` of `list`, or `None` if it is free.
pub(crate) fn read_naf_key<S: Nvm>(
    nvm: &S,
    list: &NafKeyList,
    index: usize,
) -> Result<Option<NafKey>, Error> {
    let region = list.slot(index).ok_or(Error::TechnicalProblem)?;
    let raw = read_secret::<KS_INT_NAF_SLOT_LEN, S>(nvm, region.offset)?;
    if raw.first() != Some(&STATE_USED) {
        return Ok(None);
    }
    let key = KsIntNaf::from_slice(field(&raw[..], NAF_KEY, KsIntNaf::LEN)?)
        .map_err(|_| Error::TechnicalProblem)?;
    let lifetime = field(&raw[..], NAF_LIFETIME, 8)?.try_into().map_err(|_| Error::TechnicalProblem)?;
    let stamp = field(&raw[..], NAF_STAMP, 4)?.try_into().map_err(|_| Error::TechnicalProblem)?;
    Ok(Some(NafKey { key, lifetime: u64::from_be_bytes(lifetime), stamp: u32::from_be_bytes(stamp) }))
}

/// The slot bytes of a Ks_int_NAF entry.
pub(crate) fn encode_naf_key(
    key: &KsIntNaf,
    lifetime: u64,
    stamp: u32,
) -> Zeroizing<[u8; KS_INT_NAF_SLOT_LEN]> {
    let mut raw = Zeroizing::new([0xFFu8; KS_INT_NAF_SLOT_LEN]);
    set(&mut raw[..], 0, &[STATE_USED]);
    set(&mut raw[..], NAF_KEY, key.expose());
    set(&mut raw[..], NAF_LIFETIME, &lifetime.to_be_bytes());
    set(&mut raw[..], NAF_STAMP, &stamp.to_be_bytes());
    raw
}

// ---------------------------------------------------------------------------------------------
// MUKs in use (TS 33.246 §6.1: MUK = Ks_int_NAF; TS 33.220 Annex G.2)

/// Which USIM Ks_int_NAF slots are MUKs in use: named (by Idi ‖ MBMS and Idr = B-TID) by an
/// EF.MUK record.
pub(crate) fn muks_in_use<S: Nvm>(nvm: &S) -> Result<[bool; GBANL_RECORDS as usize], Error> {
    let mut in_use = [false; GBANL_RECORDS as usize];
    let list = naf_key_list(App::Usim);
    let mut muk = [0u8; MUK_RECORD_LEN as usize];
    let mut gbanl = [0u8; GBANL_RECORD_LEN as usize];
    for j in 0..records(Ef::UsimMuk) {
        read_record(nvm, Ef::UsimMuk, j, &mut muk)?;
        let Some(record) = muk::parse(&muk) else { continue };
        for (i, flag) in in_use.iter_mut().enumerate().take(list.count) {
            read_record(nvm, list.gbanl, i, &mut gbanl)?;
            if gbanl::parse(&gbanl).is_some_and(|r| is_muk(&r, &record.id)) {
                *flag = true;
            }
        }
    }
    Ok(in_use)
}

// ---------------------------------------------------------------------------------------------
// MSKs (TS 33.246 §6.3.2)

/// The two MSK slots of EF.MSK record `index`.
pub(crate) fn msk_slots_region(index: usize) -> Option<Region> {
    let len = MSK_SLOT_LEN * usize::from(MSK_PAIRS_PER_RECORD);
    nth(layout::MSK_KEYS, len, index)
}

/// Both MSK slots of EF.MSK record `index`, raw.
pub(crate) type MskSlots = Zeroizing<[u8; MSK_SLOT_LEN * MSK_PAIRS_PER_RECORD as usize]>;

/// Read both MSK slots of EF.MSK record `index`.
pub(crate) fn read_msk_slots<S: Nvm>(nvm: &S, index: usize) -> Result<MskSlots, Error> {
    let region = msk_slots_region(index).ok_or(Error::TechnicalProblem)?;
    read_secret(nvm, region.offset)
}

/// A stored MSK.
pub(crate) struct MskKey {
    /// The key.
    pub msk: Msk,
    /// Whether an MTK was accepted under it (the EF.MSK counter is then meaningful).
    pub mtk_seen: bool,
}

/// The MSK in pair `pair` of `slots`, or `None` if that slot is free.
pub(crate) fn msk_in(slots: &MskSlots, pair: usize) -> Option<MskKey> {
    let raw = slots.get(pair * MSK_SLOT_LEN..(pair + 1) * MSK_SLOT_LEN)?;
    if raw.first() != Some(&STATE_USED) {
        return None;
    }
    let msk = Msk::from_slice(raw.get(MSK_KEY..MSK_KEY + MSK_LEN)?).ok()?;
    Some(MskKey { msk, mtk_seen: raw.get(MSK_MTK_SEEN) == Some(&STATE_USED) })
}

/// Write a fresh MSK (no MTK yet) into pair `pair` of `slots`.
pub(crate) fn put_msk(slots: &mut MskSlots, pair: usize, msk: &Msk) {
    if let Some(raw) = slots.get_mut(pair * MSK_SLOT_LEN..(pair + 1) * MSK_SLOT_LEN) {
        raw.fill(0xFF);
        set(raw, 0, &[STATE_USED]);
        set(raw, MSK_KEY, msk.as_bytes());
        set(raw, MSK_MTK_SEEN, &[0x00]);
    }
}

/// Replace the key of pair `pair`, keeping its MTK flag.
pub(crate) fn replace_msk_key(slots: &mut MskSlots, pair: usize, msk: &Msk) {
    if let Some(raw) = slots.get_mut(pair * MSK_SLOT_LEN + MSK_KEY..pair * MSK_SLOT_LEN + MSK_KEY + MSK_LEN) {
        raw.copy_from_slice(msk.as_bytes());
    }
}

/// Free the second (newer) MSK slot of a record: what a card with the planted defect
/// `ThirdMskKept` of the `testing` feature does instead of [`drop_older_msk`].
pub(crate) fn drop_newer_msk(slots: &mut MskSlots) {
    if let Some(raw) = slots.get_mut(MSK_SLOT_LEN..2 * MSK_SLOT_LEN) {
        raw.fill(0xFF);
    }
}

/// Move pair 1 to pair 0 and free pair 1 (the older MSK is deleted).
pub(crate) fn drop_older_msk(slots: &mut MskSlots) {
    slots.copy_within(MSK_SLOT_LEN..2 * MSK_SLOT_LEN, 0);
    if let Some(raw) = slots.get_mut(MSK_SLOT_LEN..2 * MSK_SLOT_LEN) {
        raw.fill(0xFF);
    }
}

/// Whether the Ks_int_NAF of an EF.GBANL record is the MUK `id` names (TS 33.246 §6.1, UICC-based:
/// MUK = Ks_int_NAF): its NAF_Id is Idi ‖ the MBMS Ua security protocol id and its B-TID is Idr.
pub(crate) fn is_muk(record: &GbanlRecord<'_>, id: &MukId<'_>) -> bool {
    let Some(split) = record.naf_id.len().checked_sub(MUK_UA_SECURITY_PROTOCOL_ID.len()) else {
        return false;
    };
    let (fqdn, ua) = record.naf_id.split_at(split);
    fqdn == id.idi && ua == MUK_UA_SECURITY_PROTOCOL_ID && record.b_tid == id.idr
}
