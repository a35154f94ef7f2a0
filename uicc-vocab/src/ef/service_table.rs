//! Service tables (TS 31.102 §4.2.8 EF.UST, TS 31.103 §4.2.7 EF.IST): service n is bit (n-1) mod 8
//! of byte (n-1) div 8, least significant bit first.

/// USIM service n°27, "GSM Access": when available, the 3G context also returns Kc
/// (TS 31.102 §7.1.2.1).
pub const UST_GSM_ACCESS: u16 = 27;
/// USIM service n°33, "Packet Switched Domain" (TS 31.102 §4.2.8 requires it set).
pub const UST_PACKET_SWITCHED: u16 = 33;
/// USIM service n°68, GBA.
pub const UST_GBA: u16 = 68;
/// USIM service n°69, MBMS security.
pub const UST_MBMS_SECURITY: u16 = 69;
/// ISIM service n°2, GBA.
pub const IST_GBA: u16 = 2;

/// Whether service `n` (1-based) is available in `table`; services beyond it are not.
pub fn has(table: &[u8], n: u16) -> bool {
    let Some(i) = n.checked_sub(1) else { return false };
    table.get(usize::from(i / 8)).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

/// The table of `N` bytes with `services` available. Services beyond `N` bytes are dropped.
pub fn encode<const N: usize>(services: &[u16]) -> [u8; N] {
    let mut out = [0u8; N];
    for &n in services {
        let Some(bit) = n.checked_sub(1) else { continue };
        if let Some(byte) = out.get_mut(usize::from(bit / 8)) {
            *byte |= 1 << (bit % 8);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_bits_of_the_spec_digest() {
        // Spec digest §3: n°68 is byte 9 mask 08, n°69 byte 9 mask 10.
        let t: [u8; 12] = encode(&[UST_GBA, UST_MBMS_SECURITY]);
        assert_eq!(t, [0, 0, 0, 0, 0, 0, 0, 0, 0x18, 0, 0, 0]);
        let mut ust = [0u8; 12];
        ust[8] = 0x10;
        assert!(has(&ust, 69) && !has(&ust, 68) && !has(&ust, 0) && !has(&ust, 200));
        // ISIM n°2 is byte 1 mask 02; n°33 is byte 5 mask 01.
        assert_eq!(encode::<4>(&[IST_GBA]), [0x02, 0, 0, 0]);
        assert_eq!(encode::<5>(&[UST_PACKET_SWITCHED, 0, 41]), [0, 0, 0, 0, 0x01]);
    }
}
