//! EF.IMPI, EF.DOMAIN and EF.IMPU (TS 31.103 §4.2.2 to §4.2.4): one `80 L value` data object (the
//! NAI, the home network domain name, a SIP or TEL URI), then `FF` padding.

use super::find;

/// Tag of the value of EF.IMPI, EF.DOMAIN and an EF.IMPU record.
pub const TAG: u8 = 0x80;

/// The identity `80 L value` holds (the IMPI's NAI, the domain, the IMPU's URI).
pub fn decode(raw: &[u8]) -> Option<&[u8]> {
    find(raw, TAG)
}

/// Writes `80 L value` at the start of `out`, leaving the rest of `out` as it is; the bytes written.
pub fn encode(value: &[u8], out: &mut [u8]) -> Result<usize, crate::EncodeError> {
    let mut at = 0;
    crate::put_tlv(out, &mut at, TAG, value)?;
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impi_vectors() {
        // TS 31.103 §4.2.2: 80 L NAI, FF-padded.
        let mut out = [0xFFu8; 40];
        let n = encode(b"user@ims.example.org", &mut out).unwrap();
        assert_eq!(n, 22);
        assert_eq!(out[..22], *b"\x80\x14user@ims.example.org");
        assert_eq!(decode(&out), Some(&b"user@ims.example.org"[..]));
        // A value over 127 bytes takes the length 81 xx.
        let long = [0x61u8; 130];
        let mut out = [0xFFu8; 140];
        assert_eq!(encode(&long, &mut out), Ok(133));
        assert_eq!(out[..3], [0x80, 0x81, 0x82]);
        assert_eq!(decode(&out), Some(&long[..]));
        assert_eq!(encode(&long, &mut [0u8; 10]), Err(crate::EncodeError::BufferTooSmall));
        // Other objects first, padding, truncation.
        assert_eq!(find(&[0x81, 0x01, 9, 0x80, 0x01, 7], 0x80), Some(&[7u8][..]));
        assert_eq!(decode(&[0xFF, 0x80, 0x01, 7]), None);
        assert_eq!(decode(&[0x80, 0x05, 1]), None);
    }
}
