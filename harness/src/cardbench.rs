//! The card figures of `keysim bench` on the in-process emulated card: SELECT MF per second
//! (TS 102 221 §11.1.1) and MTK Generations per second through AUTHENTICATE in the MBMS context
//! (TS 31.102 §7.1.2, TS 33.246 §6.3.3), on the card [`crate::card_setup`] makes ready.

use std::hint::black_box;
use std::time::{Duration, Instant};

use uicc_vocab::authenticate::{self as framing, INS_AUTHENTICATE_ODD, P2_MBMS_CONTEXT};
use uicc_vocab::open_values::{MODE_MSK_UPDATE, MODE_MTK_GENERATION, P1_ODD_FIRST_BLOCK};

use crate::card_setup::{BMSC_FQDN, Card, card_ok, card_with_naf_keys, short_apdu};
use crate::timing::{REPS, rate_timed, warm_up};
use crate::{Context, Error, Result, bail};

/// SELECT MF per second through `Session<Emulator>` (TS 102 221 §11.1.1).
pub fn card_select_rate(secs: f64) -> Result<f64> {
    let mut card = sim_reader::Emulator::new(&sim_reader::CardProfile::default())?;
    let probe = sim_reader::measure_select_mf(&mut card, 200)?;
    let count = (probe.apdus_per_second() * secs).clamp(200.0, 50_000_000.0) as usize;
    let mut best = 0f64;
    for _ in 0..REPS {
        best = best.max(sim_reader::measure_select_mf(&mut card, count)?.apdus_per_second());
    }
    Ok(best)
}

// ---------------------------------------------------------------------------------------------
// MTK Generation on the emulated card (docs/card-interface.md, TS 31.102 §7.1.2, TS 33.246 §6.3)

/// 2032-01-01T00:00:00Z (Unix): the MSK messages' time, inside the MUK's key lifetime.
const UNIX_2032: u64 = 1_956_528_000;
/// MTK IDs have 16 bits in this profile: a new MSK after this many MTKs.
const MTKS_PER_MSK: u32 = 60_000;
/// MTK messages built (untimed) before each timed batch of MTK Generations.
const MTK_BATCH: usize = 64;

/// AUTHENTICATE in the MBMS context: ODD instruction, P1 80, P2 85, data `53 L mode message`.
fn mbms_authenticate(mode: u8, message: &[u8]) -> Result<Vec<u8>> {
    if message.len() + 1 > 0xFF {
        bail!("MIKEY message too long for one short APDU");
    }
    let mut data = vec![0; framing::mbms_len(message.len())];
    framing::encode_mbms(mode, message, &mut data).map_err(|e| Error::Other(format!("MBMS data: {e}")))?;
    short_apdu([0x00, INS_AUTHENTICATE_ODD, P1_ODD_FIRST_BLOCK, P2_MBMS_CONTEXT], &data, true)
}

/// The card with a MUK: ADF.USIM selected, PIN1 verified, GBA_U bootstrap (TS 33.220 §5.3.2) with
/// the profile's K and OPc, B-TID and lifetime written, NAF derivation for the BM-SC (Annex G).
/// Returns the card, the MUK (Ks_int_NAF, computed on the network side), the B-TID and the Key
/// Domain ID.
fn card_with_muk() -> Result<(Card, mikey::mbms::Muk, String, mikey::mbms::KeyDomainId)> {
    let c = card_with_naf_keys(&sim_reader::CardProfile::default(), [0x42u8; 16])?;
    Ok((c.card, gba::mbms_keys::uicc_based_muk(&c.ks_int_naf), c.btid, c.key_domain_id))
}

/// MTK Generations per second on the in-process emulated card (TS 33.246 §6.3.3 through
/// AUTHENTICATE, docs/card-interface.md): after [`card_with_muk`] and an MSK Update, MTK messages
/// are built untimed in batches, then sent one AUTHENTICATE each; only those exchanges are timed,
/// and every answer must be `53 1F DB` with the MTK and salt that were sent.
pub fn card_mtk_rate(secs: f64) -> Result<f64> {
    use mikey::Timestamp;
    use mikey::mbms::{self, Msk, MskId, MskMessageParams, Mtk, MtkId, MtkMessageParams, MtkSalt};

    let (mut card, muk, btid, key_domain_id) = card_with_muk()?;
    let mut msk_number = 0u32;
    let mut new_msk = |card: &mut Card| -> Result<(MskId, [u8; 16])> {
        msk_number += 1;
        let msk_id = MskId(0x0001_0000 | msk_number);
        let msk = [msk_number as u8 ^ 0x3C; 16];
        let rand = [msk_number as u8; 16];
        let timestamp = Timestamp::NtpUtc((UNIX_2032 + u64::from(msk_number) + mikey::NTP_UNIX_OFFSET) << 32);
        let params = MskMessageParams::new(
            BMSC_FQDN.as_bytes(),
            btid.as_bytes(),
            key_domain_id,
            msk_id,
            timestamp,
            &rand,
        );
        let mut out = [0u8; 512];
        let n = mbms::build_msk_message(&muk, &params, &Msk::new(msk), &mut out)
            .map_err(|e| Error::Other(e.to_string()))?;
        card_ok(card, "MSK Update", &mbms_authenticate(MODE_MSK_UPDATE, &out[..n])?)?;
        Ok((msk_id, msk))
    };
    let (mut msk_id, mut msk) = new_msk(&mut card)?;
    let mut mtk_id = 0u32;
    let mut batch = |card: &mut Card| -> Result<(u64, Duration)> {
        let mut messages = Vec::with_capacity(MTK_BATCH);
        for _ in 0..MTK_BATCH {
            if mtk_id == MTKS_PER_MSK {
                (msk_id, msk) = new_msk(card)?;
                mtk_id = 0;
            }
            mtk_id += 1;
            let (mtk, salt) = ([mtk_id as u8; 16], [(mtk_id >> 8) as u8; 14]);
            let params =
                MtkMessageParams::new(key_domain_id, msk_id, MtkId(mtk_id), Timestamp::Counter(mtk_id));
            let mut out = [0u8; 512];
            let salt_key = MtkSalt::new(salt);
            let n =
                mbms::build_mtk_message(&Msk::new(msk), &params, &Mtk::new(mtk), Some(&salt_key), &mut out)
                    .map_err(|e| Error::Other(e.to_string()))?;
            let mut expected = vec![0; 3];
            let head = framing::encode_mbms_answer_head(mtk.len() + salt.len(), &mut expected)
                .map_err(|e| Error::Other(e.to_string()))?;
            expected.truncate(head);
            expected.extend_from_slice(&mtk);
            expected.extend_from_slice(&salt);
            messages.push((mbms_authenticate(MODE_MTK_GENERATION, &out[..n])?, expected));
        }
        let start = Instant::now();
        for (apdu, expected) in &messages {
            let ex = card.transmit_apdu(black_box(apdu)).context("MTK Generation")?;
            if ex.sw() != 0x9000 || ex.data != *expected {
                bail!(
                    "MTK Generation: expected {} 9000, got {} {:04X}",
                    hex::encode(expected),
                    hex::encode(&ex.data),
                    ex.sw()
                );
            }
        }
        Ok((messages.len() as u64, start.elapsed()))
    };
    rate_timed(warm_up(secs), || batch(&mut card))?;
    let mut best = 0f64;
    for _ in 0..REPS {
        best = best.max(rate_timed(secs, || batch(&mut card))?);
    }
    Ok(best)
}
