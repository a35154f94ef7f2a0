//! Personalization: the initial NVM image of a card (TS 31.102 §4.2, TS 31.103 §4.2 and
//! TS 102 221 §13 file contents; PIN/ADM state of TS 102 221 §9.5).

use gba::sqn::SQN_ARRAY_LEN;
use gba::{Sqn, UsimSqnArray};

use crate::command::pin::KeyRef;
use crate::ef;
use crate::fs::{ARR_RECORDS, App, Ef, IMPU_RECORD_LEN};
use crate::journal;
use crate::layout::{
    self, ADM1_TRIES, ADM1_VALUE, AMF, HEADER, HEADER_MAGIC, K, LAYOUT_VERSION, NVM_SIZE, OPC, PIN1_TRIES,
    PIN1_VALUE, PUK1_TRIES, PUK1_VALUE, Region, SQN_ARRAY, STATE_START, USED,
};
use crate::nvm::{Nvm, NvmError};
use crate::profile::Personalization;

/// Content of EF.GBABP before any bootstrapping: empty RAND, B-TID and key lifetime LVs
/// (TS 31.102 §4.2.79).
const GBABP_EMPTY: [u8; 3] = [0x00, 0x00, 0x00];

/// Write the image. The header goes last, so an interrupted personalization leaves a card that
/// answers `6F 00` until personalized again.
pub(crate) fn format<N: Nvm>(nvm: &mut N, p: &Personalization<'_>) -> Result<(), NvmError> {
    if nvm.capacity() < NVM_SIZE {
        return Err(NvmError::OutOfRange);
    }
    p.validate().map_err(|_| NvmError::OutOfRange)?;
    erase(nvm, HEADER)?;
    journal::format(nvm)?;
    erase(nvm, Region { offset: STATE_START, len: USED - STATE_START })?;

    let pin1 = ef::encode_pin(p.pin1).ok_or(NvmError::OutOfRange)?;
    nvm.write(PIN1_VALUE.offset, &pin1)?;
    nvm.write(PIN1_TRIES.offset, &[KeyRef::Pin1.max_tries()])?;
    nvm.write(ADM1_VALUE.offset, &p.adm1)?;
    nvm.write(ADM1_TRIES.offset, &[KeyRef::Adm1.max_tries()])?;
    let puk1 = ef::encode_pin(p.puk1).ok_or(NvmError::OutOfRange)?;
    nvm.write(PUK1_VALUE.offset, &puk1)?;
    nvm.write(PUK1_TRIES.offset, &[KeyRef::Puk1.max_tries()])?;

    nvm.write(K.offset, &p.k)?;
    nvm.write(OPC.offset, &p.opc)?;
    nvm.write(AMF.offset, &p.amf)?;
    nvm.write(SQN_ARRAY.offset, &initial_sqn_array(&p.sqn).to_bytes())?;

    for ef in Ef::ALL {
        write_ef(nvm, ef, p)?;
    }

    let mut header = [0xFFu8; HEADER.len];
    for (slot, &b) in header.iter_mut().zip(HEADER_MAGIC.iter().chain(&[LAYOUT_VERSION])) {
        *slot = b;
    }
    nvm.write(HEADER.offset, &header)
}

/// The SQN array of a new card whose highest accepted SQN is `sqn` (TS 33.102 Annex C.2.2):
/// SEQ_MS(IND) = SEQ for SQN = SEQ ‖ IND, every other entry zero. The network starts above it.
pub(crate) fn initial_sqn_array(sqn: &[u8; 6]) -> UsimSqnArray {
    let sqn = Sqn::from_bytes(sqn);
    let bits = UsimSqnArray::IND_BITS;
    let mut seq_ms = [0u64; SQN_ARRAY_LEN];
    if let Some(entry) = seq_ms.get_mut(sqn.ind(bits) as usize) {
        *entry = sqn.seq(bits);
    }
    // A 48-bit SQN always leaves a SEQ that fits beside its IND.
    UsimSqnArray::from_seq_ms(seq_ms).unwrap_or_default()
}

/// Whether `nvm` holds a personalized image of this layout.
pub(crate) fn is_formatted<N: Nvm>(nvm: &N) -> bool {
    let mut header = [0u8; 5];
    nvm.capacity() >= NVM_SIZE
        && nvm.read(HEADER.offset, &mut header).is_ok()
        && header[..4] == HEADER_MAGIC
        && header[4] == LAYOUT_VERSION
}

fn fill<N: Nvm>(nvm: &mut N, region: Region, byte: u8) -> Result<(), NvmError> {
    let chunk = [byte; 64];
    let mut at = 0;
    while at < region.len {
        let n = (region.len - at).min(chunk.len());
        nvm.write(region.offset + at, chunk.get(..n).ok_or(NvmError::OutOfRange)?)?;
        at += n;
    }
    Ok(())
}

fn erase<N: Nvm>(nvm: &mut N, region: Region) -> Result<(), NvmError> {
    fill(nvm, region, 0xFF)
}

/// Write record `record` (1-based) of a linear fixed EF whose records are `len` bytes.
fn write_record<N: Nvm>(nvm: &mut N, ef: Ef, len: usize, record: usize, data: &[u8]) -> Result<(), NvmError> {
    nvm.write(layout::ef(ef).offset + (record - 1) * len, data)
}

/// Write `value` as `80 L value`, the rest of `capacity` bytes left erased.
fn write_tag80<N: Nvm>(nvm: &mut N, offset: usize, value: &str) -> Result<(), NvmError> {
    let mut buf = [0xFFu8; 256];
    let n = ef::encode_tag80(value.as_bytes(), &mut buf).ok_or(NvmError::OutOfRange)?;
    nvm.write(offset, buf.get(..n).ok_or(NvmError::OutOfRange)?)
}

fn write_ef<N: Nvm>(nvm: &mut N, ef: Ef, p: &Personalization<'_>) -> Result<(), NvmError> {
    let at = layout::ef(ef).offset;
    match ef {
        Ef::Dir => {
            for (i, app) in App::ALL.into_iter().enumerate() {
                let record = ef::encode_dir_record(app);
                write_record(nvm, ef, record.len(), i + 1, &record)?;
            }
        }
        Ef::Iccid => nvm.write(at, &ef::encode_iccid(p.iccid).ok_or(NvmError::OutOfRange)?)?,
        Ef::Arr => {
            for record in 1..=ARR_RECORDS {
                let data = ef::encode_arr_record(record);
                write_record(nvm, ef, data.len(), record.into(), &data)?;
            }
        }
        Ef::UsimImsi => nvm.write(at, &ef::encode_imsi(p.imsi).ok_or(NvmError::OutOfRange)?)?,
        Ef::UsimAd | Ef::IsimAd => nvm.write(at, &ef::encode_ad(p.mnc_len()))?,
        Ef::UsimUst => nvm.write(at, &ef::usim_service_table())?,
        Ef::IsimIst => nvm.write(at, &ef::isim_service_table())?,
        Ef::UsimGbabp | Ef::IsimGbabp => nvm.write(at, &GBABP_EMPTY)?,
        Ef::IsimImpi => write_tag80(nvm, at, p.impi)?,
        Ef::IsimDomain => write_tag80(nvm, at, p.home_domain)?,
        Ef::IsimImpu => {
            for (i, impu) in p.impu.iter().enumerate() {
                write_tag80(nvm, at + i * usize::from(IMPU_RECORD_LEN), impu)?;
            }
        }
        // Erased (all `FF`): no preferred language, no NAF keys, no MBMS keys yet.
        Ef::Pl | Ef::UsimGbanl | Ef::UsimMsk | Ef::UsimMuk | Ef::IsimGbanl => {}
    }
    Ok(())
}
