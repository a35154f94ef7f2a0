//! EF.IMSI (TS 31.102 §4.2.2, TS 24.008 §10.5.1.4): a length byte, then the type/parity nibble and
//! the digits, two per byte, low nibble first; unused nibbles `F`.

use super::iccid::{digit, pack_swapped};

/// Size of EF.IMSI.
pub const IMSI_LEN: usize = 9;
/// Most digits of an IMSI (TS 23.003 §2.2).
pub const IMSI_DIGITS_MAX: usize = 15;

/// EF.IMSI for `imsi`; `None` unless 6 to 15 decimal digits.
pub fn encode(imsi: &str) -> Option<[u8; IMSI_LEN]> {
    let digits = imsi.as_bytes();
    if !(6..=IMSI_DIGITS_MAX).contains(&digits.len()) {
        return None;
    }
    let mut nibbles = [0xFu8; 16];
    let (parity, rest) = nibbles.split_first_mut()?;
    *parity = if digits.len() % 2 == 1 { 0b1001 } else { 0b0001 };
    for (slot, &c) in rest.iter_mut().zip(digits) {
        *slot = digit(c)?;
    }
    let mut out = [0xFFu8; IMSI_LEN];
    let (len, body) = out.split_first_mut()?;
    *len = (digits.len() / 2 + 1) as u8;
    pack_swapped(&nibbles, body);
    Some(out)
}

/// The IMSI digits of EF.IMSI; `None` unless the length byte fits the file and 6 to 15 digits follow.
pub fn decode(raw: &[u8]) -> Option<heapless::String<IMSI_DIGITS_MAX>> {
    let (&len, rest) = raw.split_first()?;
    let bytes = rest.get(..usize::from(len))?;
    let (&first, more) = bytes.split_first()?;
    let mut digits = heapless::String::new();
    let high = first >> 4;
    if high <= 9 {
        digits.push(char::from(b'0' + high)).ok()?;
    }
    for b in more {
        for nibble in [b & 0x0F, b >> 4] {
            if nibble <= 9 {
                digits.push(char::from(b'0' + nibble)).ok()?;
            } else if nibble != 0x0F {
                return None;
            }
        }
    }
    (6..=IMSI_DIGITS_MAX).contains(&digits.len()).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imsi_vectors() {
        // TS 31.102 §4.2.2 coding of 001010123456789 (15 digits, odd parity 9).
        let raw = [0x08, 0x09, 0x10, 0x10, 0x10, 0x32, 0x54, 0x76, 0x98];
        assert_eq!(decode(&raw).as_deref(), Some("001010123456789"));
        assert_eq!(encode("001010123456789"), Some(raw));
        // An even IMSI: parity nibble 1, the last high nibble F.
        assert_eq!(encode("00101012345678"), Some([0x08, 0x01, 0x10, 0x10, 0x10, 0x32, 0x54, 0x76, 0xF8]));
        assert_eq!(
            decode(&[0x08, 0x01, 0x10, 0x10, 0x10, 0x32, 0x54, 0x76, 0xF8]).as_deref(),
            Some("00101012345678")
        );
        assert_eq!(decode(&[0x08, 0x09]), None);
        assert_eq!(decode(&[]), None);
        assert_eq!(encode("12345"), None);
        assert_eq!(encode("1234567890123456"), None);
    }
}
