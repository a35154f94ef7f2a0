//! Encodings of EF contents written at personalization: EF.ICCID and EF.DIR (TS 102 221 §13),
//! EF.ARR (TS 102 221 §9.2.4), EF.IMSI, EF.AD and EF.UST (TS 31.102 §4.2), EF.IMPI, EF.DOMAIN,
//! EF.IMPU and EF.IST (TS 31.103 §4.2), PIN values (TS 102 221 §9.5.1). The EF codecs are the
//! vocabulary's (`uicc_vocab::ef`); this module holds what this card writes with them.

use crate::fs::{self, ARR_DF, ARR_RECORD_LEN, Access, App, DIR_RECORD_LEN, IST_SIZE, UST_SIZE};

use uicc_vocab::ef::service_table::{IST_GBA, UST_GBA, UST_MBMS_SECURITY, UST_PACKET_SWITCHED};

pub use uicc_vocab::ef::ad::encode as encode_ad;
pub use uicc_vocab::ef::dir::encode_application_template;
pub use uicc_vocab::ef::iccid::encode as encode_iccid;
pub use uicc_vocab::ef::imsi::encode as encode_imsi;
pub use uicc_vocab::ef::service_table::encode as encode_service_table;

/// Services declared available in EF.UST (TS 31.102 §4.2.8): n°33 (packet switched domain, which
/// the spec requires set), n°68 (GBA) and n°69 (MBMS security). Only services whose files exist.
pub const USIM_SERVICES: &[u16] = &[UST_PACKET_SWITCHED, UST_GBA, UST_MBMS_SECURITY];
/// Services declared available in EF.IST (TS 31.103 §4.2.7): n°2 (GBA).
pub const ISIM_SERVICES: &[u16] = &[IST_GBA];

/// Length of a PIN or ADM value field (TS 102 221 §9.5.1).
pub const PIN_LEN: usize = 8;
/// Fewest digits in a PIN (TS 102 221 §9.5.1).
pub const PIN_MIN_DIGITS: usize = 4;

/// The EF.DIR record of `app`: its application template, padded with `FF`.
pub fn encode_dir_record(app: App) -> [u8; DIR_RECORD_LEN as usize] {
    let mut out = [0xFFu8; DIR_RECORD_LEN as usize];
    // Fits by construction: 26 bytes in a 40-byte record.
    let _ = encode_application_template(app.aid(), app.label(), &mut out);
    out
}

/// EF.UST of this card.
pub fn usim_service_table() -> [u8; UST_SIZE as usize] {
    encode_service_table(USIM_SERVICES)
}

/// EF.IST of this card.
pub fn isim_service_table() -> [u8; IST_SIZE as usize] {
    encode_service_table(ISIM_SERVICES)
}

/// A `80 L value` data object, as in EF.IMPI, EF.DOMAIN and EF.IMPU (TS 31.103 §4.2.2 to 4.2.4),
/// written at the start of `out`; the rest of `out` is left as it is. `None` if it does not fit.
pub fn encode_tag80(value: &[u8], out: &mut [u8]) -> Option<usize> {
    uicc_vocab::ef::ims_identity::encode(value, out).ok()
}

/// Security condition DO of TS 102 221 §9.2.4 / ISO/IEC 7816-4 §9.3.4: `90 00` always, `97 00`
/// never, or `A4` (CRT for user authentication) naming the key reference with usage qualifier `08`.
fn security_condition(access: Access) -> &'static [u8] {
    match access {
        Access::Always => &[0x90, 0x00],
        Access::Never => &[0x97, 0x00],
        Access::Pin1 => &[0xA4, 0x06, 0x83, 0x01, 0x01, 0x95, 0x01, 0x08],
        Access::Adm1 => &[0xA4, 0x06, 0x83, 0x01, 0x0A, 0x95, 0x01, 0x08],
    }
}

/// Access mode byte of an EF (ISO/IEC 7816-4 §9.3.2): READ / SEARCH.
const AM_EF_READ: u8 = 0x01;
/// Access mode byte of an EF: UPDATE / ERASE.
const AM_EF_UPDATE: u8 = 0x02;
/// Access mode byte of a DF: every administrative mode (delete self, terminate, activate,
/// deactivate, create DF, create EF, delete child).
const AM_DF_ADMIN: u8 = 0x7F;

/// EF.ARR record `record` (1-based, TS 102 221 §9.2.4 expanded format): pairs of access mode DO
/// `80 01 xx` and security condition DO, padded with `FF`.
pub fn encode_arr_record(record: u8) -> [u8; ARR_RECORD_LEN as usize] {
    let rule = fs::arr_rule(record);
    let pairs: [(u8, Access); 2] = if record == ARR_DF {
        [(AM_DF_ADMIN, rule.update), (0, Access::Never)]
    } else {
        [(AM_EF_READ, rule.read), (AM_EF_UPDATE, rule.update)]
    };
    let mut out = [0xFFu8; ARR_RECORD_LEN as usize];
    let mut at = 0;
    for (mode, access) in pairs {
        if mode == 0 {
            continue;
        }
        for part in [&[0x80, 0x01, mode][..], security_condition(access)] {
            if let Some(dst) = out.get_mut(at..at + part.len()) {
                dst.copy_from_slice(part);
            }
            at += part.len();
        }
    }
    out
}

/// A PIN as VERIFY carries it (TS 102 221 §9.5.1): 4 to 8 ASCII digits, padded with `FF`.
pub fn encode_pin(pin: &str) -> Option<[u8; PIN_LEN]> {
    let digits = pin.as_bytes();
    if !(PIN_MIN_DIGITS..=PIN_LEN).contains(&digits.len()) || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut out = [0xFFu8; PIN_LEN];
    for (slot, &digit) in out.iter_mut().zip(digits) {
        *slot = digit;
    }
    Some(out)
}

/// Whether an 8-byte PIN field is coded as TS 102 221 §9.5.1 requires: at least four ASCII digits,
/// then only `FF`.
pub fn pin_well_formed(value: &[u8]) -> bool {
    let digits = value.iter().take_while(|b| b.is_ascii_digit()).count();
    value.len() == PIN_LEN && digits >= PIN_MIN_DIGITS && value.iter().skip(digits).all(|&b| b == 0xFF)
}
