//! EF.AD, administrative data (TS 31.102 §4.2.18, TS 31.103 §4.2.5): UE operation mode, two bytes of
//! additional information, the length of the MNC in the IMSI.

/// Size of the EF.AD this project writes: the four mandatory bytes.
pub const AD_LEN: usize = 4;
/// UE operation mode "normal operation" in byte 1.
pub const NORMAL_OPERATION: u8 = 0x00;

/// EF.AD of a card in normal operation with an MNC of `mnc_len` digits.
pub const fn encode(mnc_len: u8) -> [u8; AD_LEN] {
    [NORMAL_OPERATION, 0x00, 0x00, mnc_len]
}

/// The number of MNC digits (byte 4, b4..b1): 3 when it says 3, else 2 (also when absent).
pub fn mnc_length(raw: &[u8]) -> usize {
    match raw.get(3).map(|b| b & 0x0F) {
        Some(3) => 3,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mnc_length_vectors() {
        // TS 31.102 §4.2.18: byte 4 b4..b1 = 0011 for a three-digit MNC; the upper bits are RFU.
        assert_eq!(encode(2), [0x00, 0x00, 0x00, 0x02]);
        assert_eq!(mnc_length(&[0x00, 0x00, 0x00, 0x03]), 3);
        assert_eq!(mnc_length(&[0x00, 0x00, 0x00, 0xF3]), 3);
        assert_eq!(mnc_length(&[0x00, 0x00, 0x00, 0x02]), 2);
        assert_eq!(mnc_length(&[0x00, 0x00, 0x00]), 2);
    }
}
