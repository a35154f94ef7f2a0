//! AES in Counter Mode, the SRTP default cipher (RFC 3711 §4.1.1).
//!
//! The keystream for a packet is AES(k_e, IV + j mod 2^128), j = 0, 1, 2, ..., with
//! `IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16)`; the same construction, with the master key
//! and the key_id in place of the session keys, drives the key derivation (§4.3.3).

use aes::Aes128;
use ctr::cipher::{InnerIvInit, StreamCipher};

use crate::policy::MASTER_SALT_LEN;

/// AES-128 counter mode over a borrowed, already expanded key schedule: starting a packet costs
/// no key expansion and no copy of the round keys.
type Aes128Cm<'a> = ctr::Ctr128BE<&'a Aes128>;

/// The AES-CM IV for one SRTP or SRTCP packet (RFC 3711 §4.1.1): the 112-bit session salt shifted
/// left by 16 bits, XOR the SSRC at bits 64..95, XOR the 48-bit packet index (or the SRTCP index)
/// shifted left by 16 bits.
pub fn packet_iv(session_salt: &[u8; MASTER_SALT_LEN], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..MASTER_SALT_LEN].copy_from_slice(session_salt);
    for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
        *b ^= s;
    }
    // The index is at most 48 bits: its low six bytes go to bytes 8..14.
    for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *b ^= s;
    }
    iv
}

/// XORs the AES-CM keystream that starts at `iv` into `data` (encrypts or decrypts in place).
///
/// SRTP IVs end in 16 zero bits and packets are far shorter than 2^16 blocks, so the counter never
/// carries beyond its low 16 bits; the 128-bit counter wraps mod 2^128 as §4.1.1 says in any case.
pub fn apply_keystream(cipher: &Aes128, iv: &[u8; 16], data: &mut [u8]) {
    let mut cm = Aes128Cm::from_core(ctr::CtrCore::inner_iv_init(cipher, iv.into()));
    cm.apply_keystream(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use aes::cipher::KeyInit;

    /// RFC 3711 Appendix B.2: AES-CM keystream for session key 2B7E...4F3C, session salt
    /// F0F1...FCFD, SSRC 0, ROC 0, SEQ 0.
    #[test]
    fn rfc3711_b2_keystream() {
        let key: [u8; 16] = hex::decode("2B7E151628AED2A6ABF7158809CF4F3C").unwrap().try_into().unwrap();
        let salt: [u8; 14] = hex::decode("F0F1F2F3F4F5F6F7F8F9FAFBFCFD").unwrap().try_into().unwrap();
        let iv = packet_iv(&salt, 0, 0);
        assert_eq!(hex::encode_upper(iv), "F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000");
        let cipher = Aes128::new((&key).into());
        let mut ks = vec![0u8; 16 * 0xff02];
        apply_keystream(&cipher, &iv, &mut ks);
        let block = |n: usize| hex::encode_upper(&ks[16 * n..16 * n + 16]);
        assert_eq!(block(0x0000), "E03EAD0935C95E80E166B16DD92B4EB4");
        assert_eq!(block(0x0001), "D23513162B02D0F72A43A2FE4A5F97AB");
        assert_eq!(block(0x0002), "41E95B3BB0A2E8DD477901E4FCA894C0");
        assert_eq!(block(0xfeff), "EC8CDF7398607CB0F2D21675EA9EA1E4");
        assert_eq!(block(0xff00), "362B7C3C6773516318A077D7FC5073AE");
        assert_eq!(block(0xff01), "6A2CC3787889374FBEB4C81B17BA6C44");
    }

    /// The IV layout of RFC 3711 §4.1.1: SSRC at bits 64..95, index at bits 16..63.
    #[test]
    fn iv_places_ssrc_and_index() {
        let iv = packet_iv(&[0; 14], 0x0102_0304, 0x0000_a1b2_c3d4_e5f6);
        assert_eq!(hex::encode(iv), "0000000001020304a1b2c3d4e5f60000");
    }
}
