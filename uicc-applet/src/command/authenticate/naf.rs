//! GBA context, NAF Derivation Mode (TS 31.102 §7.1.2.4; TS 33.220 Annex G.2 and Annex B.3):
//! Ks_ext_NAF goes to the ME, Ks_int_NAF stays in the application's key list with NAF_Id, B-TID
//! and key lifetime; a full list loses its least recently used entry, never a MUK in use.

use gba::{KsIntNaf, NafId};
use uicc_vocab::authenticate::TAG_SUCCESS;
use uicc_vocab::ef::{gbabp, gbanl, muk};

use super::aka::require_gba;
use super::{Context, Reply, push};
use crate::error::Error;
use crate::fs::{App, Ef, GBABP_SIZE, GBANL_RECORD_LEN, GBANL_RECORDS, MUK_RECORD_LEN};
use crate::journal::Transaction;
use crate::keystore::{self, NafKeyList};
use crate::layout;
use crate::nvm::Nvm;
use crate::time::parse_key_lifetime;

/// Where the new Ks_int_NAF goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// The entry of the same NAF_Id and B-TID (a repeated derivation): replaced in place.
    Same(usize),
    /// An entry of the same NAF_Id from an older bootstrapping, not a MUK in use: superseded.
    Superseded(usize),
    /// A free slot.
    Free(usize),
    /// The least recently used entry that is not a MUK in use.
    Evict(usize),
}

impl Placement {
    fn slot(self) -> usize {
        match self {
            Placement::Same(i) | Placement::Superseded(i) | Placement::Free(i) | Placement::Evict(i) => i,
        }
    }

    fn rank(self) -> u8 {
        match self {
            Placement::Same(_) => 0,
            Placement::Superseded(_) => 1,
            Placement::Free(_) => 2,
            Placement::Evict(_) => 3,
        }
    }
}

/// Choose the slot for (NAF_Id, B-TID) and compute the next LRU stamp.
fn place<N: Nvm>(
    nvm: &N,
    app: App,
    list: &NafKeyList,
    naf_id: &[u8],
    b_tid: &[u8],
) -> Result<(Placement, u32), Error> {
    let in_use = match app {
        App::Usim => keystore::muks_in_use(nvm)?,
        App::Isim => [false; GBANL_RECORDS as usize],
    };
    let mut best: Option<(Placement, u32)> = None;
    let mut newest = 0u32;
    let mut record = [0u8; GBANL_RECORD_LEN as usize];
    for i in 0..list.count {
        let pinned = in_use.get(i).copied().unwrap_or(false);
        let candidate = match keystore::read_naf_key(nvm, list, i)? {
            None => Some((Placement::Free(i), 0)),
            Some(entry) => {
                newest = newest.max(entry.stamp);
                keystore::read_record(nvm, list.gbanl, i, &mut record)?;
                match gbanl::parse(&record) {
                    Some(r) if r.naf_id == naf_id && r.b_tid == b_tid => {
                        Some((Placement::Same(i), entry.stamp))
                    }
                    Some(r) if r.naf_id == naf_id && !pinned => Some((Placement::Superseded(i), entry.stamp)),
                    _ if !pinned => Some((Placement::Evict(i), entry.stamp)),
                    _ => None,
                }
            }
        };
        if let Some((c, stamp)) = candidate {
            let better = match best {
                None => true,
                Some((b, best_stamp)) => {
                    c.rank() < b.rank() || (c.rank() == b.rank() && c.rank() == 3 && stamp < best_stamp)
                }
            };
            if better {
                best = Some((c, stamp));
            }
        }
    }
    let (placement, _) = best.ok_or(Error::NoMukSpace)?;
    Ok((placement, newest.saturating_add(1)))
}

/// NAF Derivation Mode: `DB 20 Ks_ext_NAF`. Needs a Ks, and B-TID and key lifetime written by the
/// ME into EF.GBABP for the same RAND (`69 85` otherwise). One transaction: the Ks_int_NAF slot and
/// its EF.GBANL record.
pub(super) fn derive<N: Nvm>(
    ctx: &mut Context<'_, N>,
    app: App,
    naf_id: &[u8],
    impi: &[u8],
    reply: &mut Reply,
) -> Result<(), Error> {
    require_gba(ctx.nvm, app)?;
    let naf = NafId::from_bytes(naf_id).map_err(|_| Error::IncorrectData)?;
    let context = keystore::read_gba_context(ctx.nvm, app)?.ok_or(Error::ConditionsNotSatisfied)?;
    let gbabp_file = match app {
        App::Usim => Ef::UsimGbabp,
        App::Isim => Ef::IsimGbabp,
    };
    let mut gbabp = [0u8; GBABP_SIZE as usize];
    ctx.nvm.read(layout::ef(gbabp_file).offset, &mut gbabp)?;
    let params = gbabp::parse(&gbabp).ok_or(Error::ConditionsNotSatisfied)?;
    if params.rand != context.rand || params.b_tid.is_empty() {
        return Err(Error::ConditionsNotSatisfied);
    }
    let lifetime = parse_key_lifetime(params.lifetime).ok_or(Error::ConditionsNotSatisfied)?;
    let b_tid = params.b_tid;
    // The identifiers must fit EF.GBANL, and on the USIM also EF.MUK should the key become a MUK.
    let fqdn_len = naf.fqdn().len();
    if gbanl::record_len(naf_id.len(), b_tid.len()) > usize::from(GBANL_RECORD_LEN)
        || (app == App::Usim && muk::record_len(b_tid.len(), fqdn_len) > usize::from(MUK_RECORD_LEN))
    {
        return Err(Error::RecordTooSmall);
    }
    let list = keystore::naf_key_list(app);
    let (placement, stamp) = place(ctx.nvm, app, &list, naf_id, b_tid)?;
    let slot = placement.slot();
    let (ext, int): (gba::KsExtNaf, KsIntNaf) =
        gba::kdf::derive_gba_u_naf_keys(&context.ks, &context.rand, impi, &naf)
            .map_err(|_| Error::IncorrectData)?;
    let entry = keystore::encode_naf_key(&int, lifetime, stamp);
    let mut record = [0xFFu8; GBANL_RECORD_LEN as usize];
    gbanl::encode(naf_id, b_tid, &mut record).map_err(|_| Error::RecordTooSmall)?;
    let slot_region = list.slot(slot).ok_or(Error::TechnicalProblem)?;
    let record_region = keystore::record(list.gbanl, slot).ok_or(Error::TechnicalProblem)?;
    push(reply, &[TAG_SUCCESS, gba::KsExtNaf::LEN as u8])?;
    push(reply, ext.expose())?;
    if crate::command::planted!(ctx, KsIntNafLeaked) {
        push(reply, int.expose())?;
    }
    let mut t = Transaction::begin(ctx.nvm);
    t.write(slot_region.offset, &entry[..])?;
    t.write(record_region.offset, &record)?;
    t.commit()?;
    Ok(())
}
