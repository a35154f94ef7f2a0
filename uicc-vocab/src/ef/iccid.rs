//! EF.ICCID (TS 102 221 §13.2): the ICCID digits two per byte, low nibble first ("BCD swapped"),
//! padded with `F`.

/// Size of EF.ICCID.
pub const ICCID_LEN: usize = 10;

/// Pack nibbles two to a byte, first nibble low (the swapped-BCD order of TS 102 221 / TS 24.008);
/// nibbles missing at the end are `F`.
pub(crate) fn pack_swapped(nibbles: &[u8], out: &mut [u8]) {
    for (i, byte) in out.iter_mut().enumerate() {
        let lo = nibbles.get(2 * i).copied().unwrap_or(0xF);
        let hi = nibbles.get(2 * i + 1).copied().unwrap_or(0xF);
        *byte = (hi << 4) | lo;
    }
}

/// The value of an ASCII decimal digit.
pub(crate) fn digit(c: u8) -> Option<u8> {
    c.is_ascii_digit().then(|| c - b'0')
}

/// EF.ICCID for `iccid`; `None` unless 18 to 20 decimal digits.
pub fn encode(iccid: &str) -> Option<[u8; ICCID_LEN]> {
    let digits = iccid.as_bytes();
    if !(18..=20).contains(&digits.len()) {
        return None;
    }
    let mut nibbles = [0xFu8; 20];
    for (slot, &c) in nibbles.iter_mut().zip(digits) {
        *slot = digit(c)?;
    }
    let mut out = [0u8; ICCID_LEN];
    pack_swapped(&nibbles, &mut out);
    Some(out)
}

/// The digits of a swapped-BCD string as ASCII, up to the first nibble that is no digit (the
/// filler `F`).
pub fn digits(raw: &[u8]) -> impl Iterator<Item = char> + '_ {
    raw.iter().flat_map(|b| [b & 0x0F, b >> 4]).take_while(|&n| n <= 9).map(|n| char::from(b'0' + n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iccid_vectors() {
        // The card's doc example: 98 88 12 01 00 00 40 03 10 F0 is 8988211000000430010.
        let raw = [0x98, 0x88, 0x12, 0x01, 0x00, 0x00, 0x40, 0x03, 0x10, 0xF0];
        assert_eq!(digits(&raw).collect::<String>(), "8988211000000430010");
        assert_eq!(encode("8988211000000430010"), Some(raw));
        assert_eq!(encode("89882110000004300"), None);
        assert_eq!(encode("898821100000043001x"), None);
    }
}
