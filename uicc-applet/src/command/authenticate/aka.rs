//! AKA on the card (TS 33.102 §6.3.3 and Annex C.2, Milenage of TS 35.206): the 3G context
//! (TS 31.102 §7.1.2.1) and the GBA context's Bootstrapping Mode (TS 31.102 §7.1.2.3) with the
//! GBA_U MAC* of TS 33.220 §5.3.2. Both share the USIM's SQN array.

use gba::aka::{AkaFailure, AkaSuccess, Autn, usim_verify};
use gba::gba_u::usim_verify_gba_u;
use gba::sqn::{SqnPolicy, USIM_SQN_STATE_LEN};
use gba::{Ck, Ik, Ks, Milenage, UsimSqnArray};
use zeroize::Zeroizing;

use uicc_vocab::authenticate::{TAG_SUCCESS, TAG_SYNC_FAILURE};
use uicc_vocab::ef::service_table::{IST_GBA, UST_GBA, UST_GSM_ACCESS};
use uicc_vocab::ef::{RAND_LEN, gbabp};

use super::{Context, Reply, push};
use crate::error::Error;
use crate::fs::{App, Ef, GBABP_SIZE};
use crate::journal::Transaction;
use crate::keystore::{self, service_available};
use crate::layout::{self, K, OPC, SQN_ARRAY};
use crate::nvm::Nvm;
use crate::open_values::CHECK_AMF;

/// Length of Kc (TS 33.102 §6.8.1.2).
const KC_LEN: usize = 8;

/// Milenage keyed with the card's K and OPc.
fn milenage<N: Nvm>(nvm: &N) -> Result<Milenage, Error> {
    let mut k = Zeroizing::new([0u8; 16]);
    let mut opc = Zeroizing::new([0u8; 16]);
    nvm.read(K.offset, &mut k[..])?;
    nvm.read(OPC.offset, &mut opc[..])?;
    Ok(Milenage::new(&k, &opc))
}

/// The SQN array; a damaged one stops the command (`6F 00`) rather than being guessed at.
fn sqn_array<N: Nvm>(nvm: &N) -> Result<UsimSqnArray, Error> {
    let mut bytes = [0u8; USIM_SQN_STATE_LEN];
    nvm.read(SQN_ARRAY.offset, &mut bytes)?;
    UsimSqnArray::from_bytes(&bytes).map_err(|_| Error::TechnicalProblem)
}

/// Kc = c3(CK, IK) = CK1 ⊕ CK2 ⊕ IK1 ⊕ IK2, the 64-bit halves (TS 33.102 §6.8.1.2).
fn c3(ck: &Ck, ik: &Ik) -> Zeroizing<[u8; KC_LEN]> {
    let (ck, ik) = (ck.expose(), ik.expose());
    let mut kc = Zeroizing::new([0u8; KC_LEN]);
    let (ck1, ck2) = ck.split_at(KC_LEN);
    let (ik1, ik2) = ik.split_at(KC_LEN);
    for (b, (((c1, c2), i1), i2)) in kc.iter_mut().zip(ck1.iter().zip(ck2).zip(ik1).zip(ik2)) {
        *b = c1 ^ c2 ^ i1 ^ i2;
    }
    kc
}

/// `tag L value`.
fn push_lv(reply: &mut Reply, value: &[u8]) -> Result<(), Error> {
    push(reply, &[value.len() as u8])?;
    push(reply, value)
}

/// Check a challenge: `Some` (the outputs, and the array already holding the new SQN) when fresh
/// and authentic; `None` when authentic but not fresh, the synchronisation failure answer
/// `DC 0E AUTS` then being in the reply; `98 62` on a MAC failure.
fn check<N: Nvm>(
    ctx: &Context<'_, N>,
    rand: &[u8; RAND_LEN],
    autn: &[u8; 16],
    gba_u: bool,
    reply: &mut Reply,
) -> Result<Option<(AkaSuccess, UsimSqnArray)>, Error> {
    let m = milenage(ctx.nvm)?;
    let mut sqns = sqn_array(ctx.nvm)?;
    let autn = Autn::from_bytes(autn);
    let policy = SqnPolicy::DEFAULT;
    if CHECK_AMF {
        let mut amf = [0u8; 2];
        ctx.nvm.read(layout::AMF.offset, &mut amf)?;
        if amf != autn.amf {
            return Err(Error::AuthMacFailure);
        }
    }
    let mut outcome = if gba_u {
        usim_verify_gba_u(&m, rand, &autn, &sqns, &policy)
    } else {
        usim_verify(&m, rand, &autn, &sqns, &policy)
    };
    if !gba_u
        && matches!(outcome, Err(AkaFailure::MacFailure))
        && crate::command::planted!(ctx, WrongMacCheck)
    {
        outcome = usim_verify_gba_u(&m, rand, &autn, &sqns, &policy);
    }
    match outcome {
        Ok(ok) => {
            sqns.accept(ok.sqn);
            Ok(Some((ok, sqns)))
        }
        Err(AkaFailure::MacFailure) => Err(Error::AuthMacFailure),
        Err(AkaFailure::SyncFailure { auts, .. }) => {
            push(reply, &[TAG_SYNC_FAILURE])?;
            push_lv(reply, &auts.to_bytes())?;
            Ok(None)
        }
    }
}

/// 3G context: `DB 08 RES 10 CK 10 IK [08 Kc]`, or `DC 0E AUTS`; the new SQN is committed before
/// the answer leaves.
pub(super) fn three_g<N: Nvm>(
    ctx: &mut Context<'_, N>,
    app: App,
    rand: &[u8; RAND_LEN],
    autn: &[u8; 16],
    reply: &mut Reply,
) -> Result<(), Error> {
    let Some((ok, sqns)) = check(ctx, rand, autn, false, reply)? else { return Ok(()) };
    let with_kc = app == App::Usim && service_available(ctx.nvm, app, UST_GSM_ACCESS)?;
    push(reply, &[TAG_SUCCESS])?;
    push_lv(reply, &ok.res)?;
    push_lv(reply, ok.ck.expose())?;
    push_lv(reply, ok.ik.expose())?;
    if with_kc {
        push_lv(reply, &c3(&ok.ck, &ok.ik)[..])?;
    }
    let mut t = Transaction::begin(ctx.nvm);
    t.write(SQN_ARRAY.offset, &sqns.to_bytes())?;
    t.commit()?;
    Ok(())
}

/// Whether the application offers GBA (USIM service n°68, ISIM service n°2).
pub(super) fn require_gba<N: Nvm>(nvm: &N, app: App) -> Result<(), Error> {
    let service = match app {
        App::Usim => UST_GBA,
        App::Isim => IST_GBA,
    };
    if service_available(nvm, app, service)? { Ok(()) } else { Err(Error::ContextNotSupported) }
}

/// GBA Bootstrapping Mode (GBA_U): `DB L RES` only; Ks = CK ‖ IK and RAND stay in the
/// application's GBA context, RAND goes into EF.GBABP, B-TID and lifetime are cleared. One
/// transaction holds the SQN array, the context and EF.GBABP.
pub(super) fn gba_bootstrap<N: Nvm>(
    ctx: &mut Context<'_, N>,
    app: App,
    rand: &[u8; RAND_LEN],
    autn_star: &[u8; 16],
    reply: &mut Reply,
) -> Result<(), Error> {
    require_gba(ctx.nvm, app)?;
    let Some((ok, sqns)) = check(ctx, rand, autn_star, true, reply)? else { return Ok(()) };
    let ks = Ks::from_ck_ik(&ok.ck, &ok.ik);
    let context = keystore::encode_gba_context(&ks, rand);
    let mut gbabp = [0u8; GBABP_SIZE as usize];
    gbabp::encode_after_bootstrap(rand, &mut gbabp).map_err(|_| Error::TechnicalProblem)?;
    let gbabp_file = match app {
        App::Usim => Ef::UsimGbabp,
        App::Isim => Ef::IsimGbabp,
    };
    push(reply, &[TAG_SUCCESS])?;
    push_lv(reply, &ok.res)?;
    let mut t = Transaction::begin(ctx.nvm);
    t.write(SQN_ARRAY.offset, &sqns.to_bytes())?;
    t.write(keystore::gba_context_region(app).offset, &context[..])?;
    t.write(layout::ef(gbabp_file).offset, &gbabp)?;
    t.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// c3 of TS 33.102 §6.8.1.2 on the test set 1 CK and IK of TS 35.208, XORed by hand:
    /// b40ba9a3c58b2a05 ⊕ bbf0d987b21bf8cb ⊕ f769bcd751044604 ⊕ 127672711c6d3441.
    #[test]
    fn kc_is_c3_of_ck_and_ik() {
        let ck = Ck::new(hex::decode("b40ba9a3c58b2a05bbf0d987b21bf8cb").unwrap().try_into().unwrap());
        let ik = Ik::new(hex::decode("f769bcd751044604127672711c6d3441").unwrap().try_into().unwrap());
        let halves = ["b40ba9a3c58b2a05", "bbf0d987b21bf8cb", "f769bcd751044604", "127672711c6d3441"]
            .map(|h| u64::from_str_radix(h, 16).unwrap());
        let expected = (halves[0] ^ halves[1] ^ halves[2] ^ halves[3]).to_be_bytes();
        assert_eq!(*c3(&ck, &ik), expected);
    }
}
