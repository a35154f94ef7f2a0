//! MBMS security context (TS 31.102 §7.1.1 and §7.1.2, Rel-6 §7.1.1.6 to §7.1.1.9; TS 33.246
//! §6.3): MSK Update (with the solicited pull of §6.3.2.2.4), MTK Generation, MSK Deletion and MUK
//! Deletion. The card is the MGV-F and MGV-S of TS 33.246 §4: MUK and MSK never leave it; the ME
//! gets the MIKEY verification message, or MTK and salt.
//!
//! Every answer is `53 L DB [data]`. The MIKEY parsing and cryptography are the `mikey` crate's
//! (`mikey::mbms`); this module finds the keys, enforces lifetime and freshness, and stores.

use mikey::Timestamp;
use mikey::mbms::{
    self, MskDelivery, MskUpdate, build_verification_message, is_fresh, parse_msk_message, parse_mtk_message,
    verify_and_decrypt_msk, verify_and_decrypt_mtk,
};
use uicc_vocab::authenticate::encode_mbms_answer_head;
use uicc_vocab::ef::msk::{MskPair, MskRecord};
use uicc_vocab::ef::muk::{self, MukId};
use uicc_vocab::ef::service_table::UST_MBMS_SECURITY;
use uicc_vocab::ef::{KEY_DOMAIN_ID_LEN, gbanl};
use uicc_vocab::open_values::{
    EXPIRED_MUK_FOR_SOLICITED_PULL, FIRST_MTK_ID_ANY, MSK_TS_IS_MTK_ID, MSKS_PER_KEY_GROUP,
    SOLICITED_PULL_MARKER, TIME_FROM_NTP_UTC_ONLY,
};
use zeroize::Zeroizing;

use super::{Context, Reply, push};
use crate::error::Error;
use crate::fs::{App, Ef, GBANL_RECORD_LEN, MSK_RECORD_LEN, MUK_RECORD_LEN};
use crate::journal::Transaction;
use crate::keystore::{self, MSK_MTK_SEEN, NafKey, STATE_USED, service_available};
use crate::layout::{KS_INT_NAF_SLOT_LEN, MSK_SLOT_LEN};
use crate::nvm::Nvm;
use crate::open_values::SOLICITED_PULL_RECORDS_MUK;
use crate::time::ntp_seconds;

/// Largest verification message the card builds (the reply holds 256 bytes with its framing).
const VERIFICATION_MAX: usize = 240;

/// MBMS runs on the USIM only, with service n°69 (TS 31.102 §4.2.8).
fn require_mbms<N: Nvm>(nvm: &N, app: App) -> Result<(), Error> {
    if app != App::Usim || !service_available(nvm, app, UST_MBMS_SECURITY)? {
        return Err(Error::ContextNotSupported);
    }
    Ok(())
}

/// A MIKEY failure: a MAC that does not verify is `98 62`, anything else malformed `6A 80`.
fn mikey_error(e: mikey::Error) -> Error {
    match e {
        mikey::Error::MacMismatch => Error::AuthMacFailure,
        _ => Error::IncorrectData,
    }
}

/// `53 L DB parts…`.
fn answer(reply: &mut Reply, parts: &[&[u8]]) -> Result<(), Error> {
    let mut head = [0u8; 6];
    let n = encode_mbms_answer_head(parts.iter().map(|p| p.len()).sum(), &mut head)
        .map_err(|_| Error::TechnicalProblem)?;
    push(reply, head.get(..n).ok_or(Error::TechnicalProblem)?)?;
    for part in parts {
        push(reply, part)?;
    }
    Ok(())
}

/// The USIM Ks_int_NAF that is the MUK `id` names (see `keystore::is_muk`), with its slot.
fn find_muk<N: Nvm>(nvm: &N, id: &MukId<'_>) -> Result<Option<(usize, NafKey)>, Error> {
    let list = keystore::naf_key_list(App::Usim);
    let mut record = [0u8; GBANL_RECORD_LEN as usize];
    for i in 0..list.count {
        keystore::read_record(nvm, list.gbanl, i, &mut record)?;
        if gbanl::parse(&record).is_some_and(|r| keystore::is_muk(&r, id))
            && let Some(key) = keystore::read_naf_key(nvm, &list, i)?
        {
            return Ok(Some((i, key)));
        }
    }
    Ok(None)
}

/// Whether the MUK EF.MUK record `j` names was derived after the Ks_int_NAF of LRU stamp `stamp`.
fn recorded_muk_is_newer<N: Nvm>(nvm: &N, j: usize, stamp: u32) -> Result<bool, Error> {
    let mut record = [0u8; MUK_RECORD_LEN as usize];
    keystore::read_record(nvm, Ef::UsimMuk, j, &mut record)?;
    let Some(r) = muk::parse(&record) else { return Ok(false) };
    Ok(find_muk(nvm, &r.id)?.is_some_and(|(_, recorded)| recorded.stamp > stamp))
}

/// What EF.MUK says about a MUK ID.
#[derive(Debug, Default)]
struct MukRecords {
    /// The record of this MUK and its counter.
    this: Option<(usize, u64)>,
    /// The record of another MUK of the same BM-SC (same Idi).
    same_idi: Option<usize>,
    /// The first free record.
    free: Option<usize>,
}

fn scan_muk_records<N: Nvm>(nvm: &N, id: &MukId<'_>) -> Result<MukRecords, Error> {
    let mut found = MukRecords::default();
    let mut record = [0u8; MUK_RECORD_LEN as usize];
    for j in 0..keystore::records(Ef::UsimMuk) {
        keystore::read_record(nvm, Ef::UsimMuk, j, &mut record)?;
        match muk::parse(&record) {
            Some(r) if r.id.idi == id.idi && r.id.idr == id.idr => {
                found.this.get_or_insert((j, r.ts));
            }
            Some(r) if r.id.idi == id.idi => {
                found.same_idi.get_or_insert(j);
            }
            Some(_) => {}
            None => {
                found.free.get_or_insert(j);
            }
        }
    }
    Ok(found)
}

/// What EF.MSK says about a Key Domain ID and Key Group.
struct MskRecords {
    /// The record of that Key Group, and what it holds.
    found: Option<(usize, MskRecord)>,
    /// The first free record.
    free: Option<usize>,
}

fn find_msk_record<N: Nvm>(
    nvm: &N,
    key_domain_id: &[u8; KEY_DOMAIN_ID_LEN],
    key_group: u16,
) -> Result<MskRecords, Error> {
    let mut free = None;
    let mut record = [0u8; MSK_RECORD_LEN as usize];
    for r in 0..keystore::records(Ef::UsimMsk) {
        keystore::read_record(nvm, Ef::UsimMsk, r, &mut record)?;
        match MskRecord::parse(&record) {
            Some(rec) if rec.key_domain_id == *key_domain_id && rec.key_group() == Some(key_group) => {
                return Ok(MskRecords { found: Some((r, rec)), free });
            }
            Some(_) => {}
            None => {
                free.get_or_insert(r);
            }
        }
    }
    Ok(MskRecords { found: None, free })
}

/// The new EF.MSK record and MSK slots after storing a delivered MSK (TS 33.246 §6.3.2.1: at most
/// two per Key Domain ID and Key Group, the older deleted). A re-delivered MSK ID keeps its MTK counter.
fn store_msk<N: Nvm>(
    nvm: &N,
    d: &MskDelivery,
    keep_oldest: bool,
) -> Result<(usize, MskRecord, keystore::MskSlots), Error> {
    let key_group = d.msk_id.key_group();
    let fresh = MskPair { msk_id: d.msk_id.0, ts: 0 };
    let records = find_msk_record(nvm, &d.key_domain_id.0, key_group)?;
    match (records.found, records.free) {
        (Some((r, mut rec)), _) => {
            let mut slots = keystore::read_msk_slots(nvm, r)?;
            if let Some(p) = rec.pairs.iter().position(|p| p.msk_id == d.msk_id.0) {
                if keystore::msk_in(&slots, p).is_some() {
                    keystore::replace_msk_key(&mut slots, p, &d.msk);
                } else {
                    keystore::put_msk(&mut slots, p, &d.msk);
                }
            } else {
                if rec.pairs.len() >= MSKS_PER_KEY_GROUP && keep_oldest {
                    // Planted defect: the newer MSK goes, the older stays.
                    rec.pairs.remove(1);
                    keystore::drop_newer_msk(&mut slots);
                } else if rec.pairs.len() >= MSKS_PER_KEY_GROUP {
                    rec.pairs.remove(0);
                    keystore::drop_older_msk(&mut slots);
                }
                let p = rec.pairs.len();
                rec.pairs.push(fresh).map_err(|_| Error::TechnicalProblem)?;
                keystore::put_msk(&mut slots, p, &d.msk);
            }
            Ok((r, rec, slots))
        }
        (None, Some(r)) => {
            let mut pairs = heapless::Vec::new();
            pairs.push(fresh).map_err(|_| Error::TechnicalProblem)?;
            let rec = MskRecord { key_domain_id: d.key_domain_id.0, pairs };
            let mut slots = keystore::MskSlots::new([0xFF; MSK_SLOT_LEN * 2]);
            keystore::put_msk(&mut slots, 0, &d.msk);
            Ok((r, rec, slots))
        }
        (None, None) => Err(Error::NoMskSpace),
    }
}

/// MSK Update mode. The MUK is the Ks_int_NAF named by IDi/IDr (`69 85` if none). An expired MUK
/// (`98 63`) is accepted only for a solicited pull, and only if EF.MUK names it for that BM-SC
/// (its most recently used MUK). Then the KEMAC MAC (`98 62`), the timestamp against the MUK's
/// counter (`98 65`), room in EF.MUK (`98 67`) and EF.MSK (`98 66`). One transaction stores
/// EF.MUK, EF.MSK and the MSK slots.
pub(super) fn msk_update<N: Nvm>(
    ctx: &mut Context<'_, N>,
    app: App,
    message: &[u8],
    reply: &mut Reply,
) -> Result<(), Error> {
    require_mbms(ctx.nvm, app)?;
    let msg = parse_msk_message(message).map_err(mikey_error)?;
    let id = MukId { idr: msg.idr().data, idi: msg.idi().data };
    let (_, naf_key) = find_muk(ctx.nvm, &id)?.ok_or(Error::ConditionsNotSatisfied)?;
    let records = scan_muk_records(ctx.nvm, &id)?;
    let now = match msg.timestamp() {
        Timestamp::NtpUtc(t) => Some(ntp_seconds(t)),
        Timestamp::Ntp(t) if !TIME_FROM_NTP_UTC_ONLY => Some(ntp_seconds(t)),
        // The T payload of an MSK message never carries NTP-UTC-32 (a TR-only type).
        Timestamp::Ntp(_) | Timestamp::Counter(_) | Timestamp::NtpUtc32(_) => None,
    };
    let expired = now.is_some_and(|now| naf_key.lifetime < now);
    let most_recent = records.this.is_some();
    if expired && !(EXPIRED_MUK_FOR_SOLICITED_PULL && msg.is_solicited_pull() && most_recent) {
        return Err(Error::MukExpired);
    }
    let muk = gba::mbms_keys::uicc_based_muk(&naf_key.key);
    let update = verify_and_decrypt_msk(&muk, &msg).map_err(mikey_error)?;
    let ts = msg.timestamp().as_u64();
    if let Some((_, stored)) = records.this
        && !is_fresh(ts, stored)
    {
        return Err(Error::KeyFreshness);
    }
    // EF.MUK keeps one counter per BM-SC (TS 31.102 §4.2.81): the one of its most recently used
    // MUK. A MUK derived before that one has had its counter replaced, so its messages can no
    // longer be checked for freshness: refused as not fresh (a replay would pass otherwise).
    if records.this.is_none()
        && let Some(j) = records.same_idi
        && recorded_muk_is_newer(ctx.nvm, j, naf_key.stamp)?
    {
        return Err(Error::KeyFreshness);
    }
    // The EF.MUK record to write: this MUK's, or a new one (replacing an older MUK of the BM-SC).
    let record_muk = most_recent || SOLICITED_PULL_RECORDS_MUK || !msg.is_solicited_pull();
    let muk_index = match records.this.map(|(j, _)| j).or(records.same_idi).or(records.free) {
        Some(j) => Some(j),
        None if record_muk => return Err(Error::NoMukSpace),
        None => None,
    }
    .filter(|_| record_muk);
    let mut muk_record = [0xFFu8; MUK_RECORD_LEN as usize];
    muk::encode(id.idr, id.idi, ts, &mut muk_record).map_err(|_| Error::RecordTooSmall)?;
    let msk = match &update {
        MskUpdate::Msk(delivery) => {
            Some(store_msk(ctx.nvm, delivery, crate::command::planted!(ctx, ThirdMskKept))?)
        }
        MskUpdate::SolicitedPull(_) => None,
    };
    let mut verification = Zeroizing::new([0u8; VERIFICATION_MAX]);
    let verification_len = if msg.v_bit() {
        build_verification_message(&muk, &msg, &mut verification[..]).map_err(|_| Error::TechnicalProblem)?
    } else {
        0
    };
    let verification = verification.get(..verification_len).ok_or(Error::TechnicalProblem)?;
    match &update {
        MskUpdate::Msk(_) => answer(reply, &[verification])?,
        MskUpdate::SolicitedPull(pull) => answer(
            reply,
            &[&[SOLICITED_PULL_MARKER], &pull.key_domain_id.0, &pull.key_group.to_be_bytes(), verification],
        )?,
    }
    let mut t = Transaction::begin(ctx.nvm);
    if let Some(j) = muk_index {
        let muk_region = keystore::record(Ef::UsimMuk, j).ok_or(Error::TechnicalProblem)?;
        t.write(muk_region.offset, &muk_record)?;
    }
    if let Some((r, rec, slots)) = &msk {
        let record_region = keystore::record(Ef::UsimMsk, *r).ok_or(Error::TechnicalProblem)?;
        let slots_region = keystore::msk_slots_region(*r).ok_or(Error::TechnicalProblem)?;
        t.write(record_region.offset, &rec.encode())?;
        t.write(slots_region.offset, &slots[..])?;
    }
    t.commit()?;
    Ok(())
}

/// MTK Generation mode: the MSK named by Key Domain ID and MSK ID (`6A 88` if none), the KEMAC MAC
/// (`98 62`), the MTK ID against the one stored with the MSK (`98 65`); answers MTK ‖ salt. One
/// transaction stores the new counter in EF.MSK (and the MSK slot's first-MTK flag).
pub(super) fn mtk_generation<N: Nvm>(
    ctx: &mut Context<'_, N>,
    app: App,
    message: &[u8],
    reply: &mut Reply,
) -> Result<(), Error> {
    require_mbms(ctx.nvm, app)?;
    let msg = parse_mtk_message(message).map_err(mikey_error)?;
    let msk_id = msg.msk_id();
    let records = find_msk_record(ctx.nvm, &msg.key_domain_id().0, msk_id.key_group())?;
    let (r, mut rec) = records.found.ok_or(Error::ReferencedDataNotFound)?;
    let p = rec.pairs.iter().position(|p| p.msk_id == msk_id.0).ok_or(Error::ReferencedDataNotFound)?;
    let slots = keystore::read_msk_slots(ctx.nvm, r)?;
    let key = keystore::msk_in(&slots, p).ok_or(Error::ReferencedDataNotFound)?;
    let delivery = verify_and_decrypt_mtk(&key.msk, &msg).map_err(mikey_error)?;
    // The counter EF.MSK keeps for this MSK (see MSK_TS_IS_MTK_ID).
    let counter = if MSK_TS_IS_MTK_ID { delivery.mtk_id.0 } else { delivery.timestamp.as_u64() as u32 };
    let pair = rec.pairs.get_mut(p).ok_or(Error::TechnicalProblem)?;
    if (key.mtk_seen || !FIRST_MTK_ID_ANY) && !is_fresh(u64::from(counter), u64::from(pair.ts)) {
        return Err(Error::KeyFreshness);
    }
    pair.ts = counter;
    let mut keys = Zeroizing::new([0u8; mbms::profile::MTK_LEN + mbms::profile::MTK_SALT_LEN]);
    let n = delivery.write_mtk_and_salt(&mut keys[..]).map_err(|_| Error::TechnicalProblem)?;
    answer(reply, &[keys.get(..n).ok_or(Error::TechnicalProblem)?])?;
    let record_region = keystore::record(Ef::UsimMsk, r).ok_or(Error::TechnicalProblem)?;
    let slots_region = keystore::msk_slots_region(r).ok_or(Error::TechnicalProblem)?;
    let advance = !crate::command::planted!(ctx, CounterNotAdvanced);
    let mut t = Transaction::begin(ctx.nvm);
    if advance {
        t.write(record_region.offset, &rec.encode())?;
    }
    if !key.mtk_seen {
        t.write(slots_region.offset + p * MSK_SLOT_LEN + MSK_MTK_SEEN, &[STATE_USED])?;
    }
    t.commit()?;
    Ok(())
}

/// MSK Deletion mode: every MSK of the Key Domain ID and Key Group (`6A 88` if none).
pub(super) fn msk_deletion<N: Nvm>(
    ctx: &mut Context<'_, N>,
    app: App,
    key_domain_id: &[u8; KEY_DOMAIN_ID_LEN],
    key_group: u16,
    reply: &mut Reply,
) -> Result<(), Error> {
    require_mbms(ctx.nvm, app)?;
    let records = find_msk_record(ctx.nvm, key_domain_id, key_group)?;
    let (r, _) = records.found.ok_or(Error::ReferencedDataNotFound)?;
    let record_region = keystore::record(Ef::UsimMsk, r).ok_or(Error::TechnicalProblem)?;
    let slots_region = keystore::msk_slots_region(r).ok_or(Error::TechnicalProblem)?;
    answer(reply, &[])?;
    let mut t = Transaction::begin(ctx.nvm);
    t.write(record_region.offset, &[0xFF; MSK_RECORD_LEN as usize])?;
    t.write(slots_region.offset, &[0xFF; MSK_SLOT_LEN * 2])?;
    t.commit()?;
    Ok(())
}

/// MUK Deletion mode: the EF.MUK record of the MUK ID (`6A 88` if none) and the Ks_int_NAF it
/// names, with that key's EF.GBANL record.
pub(super) fn muk_deletion<N: Nvm>(
    ctx: &mut Context<'_, N>,
    app: App,
    id: &MukId<'_>,
    reply: &mut Reply,
) -> Result<(), Error> {
    require_mbms(ctx.nvm, app)?;
    let records = scan_muk_records(ctx.nvm, id)?;
    let (j, _) = records.this.ok_or(Error::ReferencedDataNotFound)?;
    let key_slot = find_muk(ctx.nvm, id)?.map(|(slot, _)| slot);
    let muk_region = keystore::record(Ef::UsimMuk, j).ok_or(Error::TechnicalProblem)?;
    let list = keystore::naf_key_list(App::Usim);
    answer(reply, &[])?;
    let mut t = Transaction::begin(ctx.nvm);
    t.write(muk_region.offset, &[0xFF; MUK_RECORD_LEN as usize])?;
    if let Some(slot) = key_slot {
        let slot_region = list.slot(slot).ok_or(Error::TechnicalProblem)?;
        let gbanl_region = keystore::record(list.gbanl, slot).ok_or(Error::TechnicalProblem)?;
        t.write(slot_region.offset, &[0xFF; KS_INT_NAF_SLOT_LEN])?;
        t.write(gbanl_region.offset, &[0xFF; GBANL_RECORD_LEN as usize])?;
    }
    t.commit()?;
    Ok(())
}
