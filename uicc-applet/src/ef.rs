//! Encodings of EF contents written at personalization: EF.ICCID and EF.DIR (TS 102 221 §13),
//! EF.ARR (TS 102 221 §9.2.4), EF.IMSI, EF.AD and EF.UST (TS 31.102 §4.2), EF.IMPI, EF.DOMAIN,
//! EF.IMPU and EF.IST (TS 31.103 §4.2), PIN values (TS 102 221 §9.5.1).

use crate::fs::{
    self, AD_SIZE, ARR_DF, ARR_RECORD_LEN, Access, App, DIR_RECORD_LEN, ICCID_SIZE, IMSI_SIZE, IST_SIZE,
    UST_SIZE,
};

/// Services declared available in EF.UST (TS 31.102 §4.2.8): n°33 (packet switched domain, which
/// the spec requires set), n°68 (GBA) and n°69 (MBMS security). Only services whose files exist.
pub const USIM_SERVICES: &[u16] = &[33, 68, 69];
/// Services declared available in EF.IST (TS 31.103 §4.2.7): n°2 (GBA).
pub const ISIM_SERVICES: &[u16] = &[2];

/// UE operation mode "normal operation" in EF.AD byte 1 (TS 31.102 §4.2.18).
pub const AD_NORMAL_OPERATION: u8 = 0x00;

/// Length of a PIN or ADM value field (TS 102 221 §9.5.1).
pub const PIN_LEN: usize = 8;
/// Fewest digits in a PIN (TS 102 221 §9.5.1).
pub const PIN_MIN_DIGITS: usize = 4;

fn digit(c: u8) -> Option<u8> {
    c.is_ascii_digit().then(|| c - b'0')
}

/// Pack nibbles two to a byte, first nibble low (the "BCD swapped" order of TS 102 221 / 24.008).
fn pack_swapped(nibbles: &[u8], out: &mut [u8]) {
    for (i, byte) in out.iter_mut().enumerate() {
        let lo = nibbles.get(2 * i).copied().unwrap_or(0xF);
        let hi = nibbles.get(2 * i + 1).copied().unwrap_or(0xF);
        *byte = (hi << 4) | lo;
    }
}

/// EF.IMSI (TS 31.102 §4.2.2, TS 24.008 §10.5.1.4): length byte, then the type/parity nibble and
/// the digits, two per byte, low nibble first; unused nibbles `F`. `None` unless 6 to 15 digits.
pub fn encode_imsi(imsi: &str) -> Option<[u8; IMSI_SIZE as usize]> {
    let digits = imsi.as_bytes();
    if !(6..=15).contains(&digits.len()) {
        return None;
    }
    let mut nibbles = [0xFu8; 16];
    let odd = digits.len() % 2 == 1;
    nibbles[0] = if odd { 0b1001 } else { 0b0001 };
    for (slot, &c) in nibbles[1..].iter_mut().zip(digits) {
        *slot = digit(c)?;
    }
    let mut out = [0xFFu8; IMSI_SIZE as usize];
    out[0] = (digits.len() / 2 + 1) as u8;
    pack_swapped(&nibbles, &mut out[1..]);
    Some(out)
}

/// EF.ICCID (TS 102 221 §13.2): the ICCID digits two per byte, low nibble first, padded with `F`.
/// `None` unless 18 to 20 digits.
pub fn encode_iccid(iccid: &str) -> Option<[u8; ICCID_SIZE as usize]> {
    let digits = iccid.as_bytes();
    if !(18..=20).contains(&digits.len()) {
        return None;
    }
    let mut nibbles = [0xFu8; 20];
    for (slot, &c) in nibbles.iter_mut().zip(digits) {
        *slot = digit(c)?;
    }
    let mut out = [0u8; ICCID_SIZE as usize];
    pack_swapped(&nibbles, &mut out);
    Some(out)
}

/// An application template DO (TS 102 221 §13.1, ISO/IEC 7816-4 §8.2.1.1): `61 L` holding the
/// AID `4F` and the label `50`, written at the start of `out`. `None` if it does not fit.
pub fn encode_application_template(aid: &[u8], label: &[u8], out: &mut [u8]) -> Option<usize> {
    let inner = 2 + aid.len() + 2 + label.len();
    if aid.len() > 16 || inner > 0x7F {
        return None;
    }
    let parts: [&[u8]; 4] =
        [&[0x61, inner as u8, 0x4F, aid.len() as u8], aid, &[0x50, label.len() as u8], label];
    let mut at = 0;
    for part in parts {
        out.get_mut(at..at + part.len())?.copy_from_slice(part);
        at += part.len();
    }
    Some(at)
}

/// The EF.DIR record of `app`: its application template, padded with `FF`.
pub fn encode_dir_record(app: App) -> [u8; DIR_RECORD_LEN as usize] {
    let mut out = [0xFFu8; DIR_RECORD_LEN as usize];
    // Fits by construction: 26 bytes in a 40-byte record.
    let _ = encode_application_template(app.aid(), app.label(), &mut out);
    out
}

/// EF.AD (TS 31.102 §4.2.18, TS 31.103 §4.2.5): operation mode, two bytes of additional
/// information, length of the MNC in the IMSI.
pub fn encode_ad(mnc_len: u8) -> [u8; AD_SIZE as usize] {
    [AD_NORMAL_OPERATION, 0x00, 0x00, mnc_len]
}

/// A service table (EF.UST of TS 31.102 §4.2.8, EF.IST of TS 31.103 §4.2.7): service n is bit
/// (n-1) mod 8 of byte (n-1) div 8, least significant bit first. Services beyond `N` bytes are dropped.
pub fn encode_service_table<const N: usize>(services: &[u16]) -> [u8; N] {
    let mut out = [0u8; N];
    for &n in services {
        let Some(bit) = n.checked_sub(1) else { continue };
        if let Some(byte) = out.get_mut(usize::from(bit / 8)) {
            *byte |= 1 << (bit % 8);
        }
    }
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
    apdu::tlv::write(0x80, value, out).ok()
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
    out[..digits.len()].copy_from_slice(digits);
    Some(out)
}

/// Whether an 8-byte PIN field is coded as TS 102 221 §9.5.1 requires: at least four ASCII digits,
/// then only `FF`.
pub fn pin_well_formed(value: &[u8]) -> bool {
    let digits = value.iter().take_while(|b| b.is_ascii_digit()).count();
    value.len() == PIN_LEN && digits >= PIN_MIN_DIGITS && value.iter().skip(digits).all(|&b| b == 0xFF)
}
