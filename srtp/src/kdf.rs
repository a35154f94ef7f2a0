//! SRTP key derivation (RFC 3711 §4.3): session keys from the master key and master salt.
//!
//! ```text
//! r      = 0 if key_derivation_rate == 0, else index DIV key_derivation_rate   (48 bits)
//! key_id = label || r                                                          (56 bits)
//! x      = key_id XOR master_salt        (key_id right-aligned in the 112-bit salt)
//! key    = AES-CM keystream under the master key with IV = x * 2^16, cut to length (§4.3.3)
//! ```
//! For SRTCP (§4.3.2) the index is the 31-bit SRTCP index and the labels are 3, 4 and 5.

use aes::Aes128;
use aes::cipher::KeyInit;
use zeroize::Zeroize;

use crate::aes_cm;
use crate::policy::{MASTER_KEY_LEN, MASTER_SALT_LEN, SESSION_AUTH_KEY_LEN};
use crate::transform::HmacSha1Key;

/// SHA-1 block length, the HMAC key block (RFC 2104).
const SHA1_BLOCK_LEN: usize = 64;

/// The key derivation labels of RFC 3711 §4.3.1 (SRTP) and §4.3.2 (SRTCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Label {
    /// 0x00: SRTP encryption key.
    RtpEncryption = 0x00,
    /// 0x01: SRTP authentication key.
    RtpAuthentication = 0x01,
    /// 0x02: SRTP salting key.
    RtpSalt = 0x02,
    /// 0x03: SRTCP encryption key.
    RtcpEncryption = 0x03,
    /// 0x04: SRTCP authentication key.
    RtcpAuthentication = 0x04,
    /// 0x05: SRTCP salting key.
    RtcpSalt = 0x05,
}

/// `r = index DIV key_derivation_rate` (0 when the rate is 0), cut to 48 bits (RFC 3711 §4.3.1).
pub fn key_derivation_r(index: u64, key_derivation_rate: u64) -> u64 {
    index.checked_div(key_derivation_rate).unwrap_or(0) & 0xffff_ffff_ffff
}

/// Derives one session key into `out` (any length) from an expanded master key (§4.3.1, §4.3.3).
pub fn derive_with(
    master: &Aes128,
    master_salt: &[u8; MASTER_SALT_LEN],
    label: Label,
    r: u64,
    out: &mut [u8],
) {
    // x = (label || r) XOR master_salt: label at byte 7, r (48 bits) at bytes 8..14.
    let mut iv = [0u8; 16];
    iv[..MASTER_SALT_LEN].copy_from_slice(master_salt);
    iv[7] ^= label as u8;
    for (b, s) in iv[8..14].iter_mut().zip(&r.to_be_bytes()[2..]) {
        *b ^= s;
    }
    out.fill(0);
    aes_cm::apply_keystream(master, &iv, out);
    iv.zeroize();
}

/// Derives one session key into `out` from the raw master key and salt, for the packet (or SRTCP)
/// `index` under `key_derivation_rate` (§4.3.1).
pub fn derive_session_key(
    master_key: &[u8; MASTER_KEY_LEN],
    master_salt: &[u8; MASTER_SALT_LEN],
    label: Label,
    index: u64,
    key_derivation_rate: u64,
    out: &mut [u8],
) {
    let master = Aes128::new(master_key.into());
    derive_with(&master, master_salt, label, key_derivation_r(index, key_derivation_rate), out);
}

/// The three session keys of one direction (SRTP or SRTCP), ready for per-packet use: the AES key
/// schedule is expanded once and the HMAC inner/outer pads are hashed once; a packet borrows the
/// schedule and the HMAC states (RFC 3711 §4.3 "session key cache").
pub(crate) struct SessionKeys {
    /// The `r` these keys belong to.
    pub r: u64,
    pub cipher: Aes128,
    pub salt: [u8; MASTER_SALT_LEN],
    pub auth: HmacSha1Key,
}

impl SessionKeys {
    /// Derives the session keys with labels `[encryption, authentication, salt]` for `r`.
    pub fn derive(master: &Aes128, master_salt: &[u8; MASTER_SALT_LEN], labels: [Label; 3], r: u64) -> Self {
        let mut enc = [0u8; MASTER_KEY_LEN];
        // HMAC pads a key shorter than the SHA-1 block with zeros (RFC 2104 §2), so the 20-byte
        // session key in a zeroed 64-byte block is the same key, and keying cannot fail.
        let mut auth = [0u8; SHA1_BLOCK_LEN];
        let mut salt = [0u8; MASTER_SALT_LEN];
        derive_with(master, master_salt, labels[0], r, &mut enc);
        derive_with(master, master_salt, labels[1], r, &mut auth[..SESSION_AUTH_KEY_LEN]);
        derive_with(master, master_salt, labels[2], r, &mut salt);
        let keys = SessionKeys { r, cipher: Aes128::new((&enc).into()), salt, auth: HmacSha1Key::new(&auth) };
        enc.zeroize();
        auth.zeroize();
        salt.zeroize();
        keys
    }
}

impl Drop for SessionKeys {
    fn drop(&mut self) {
        // The key schedule and the HMAC state wipe themselves (`zeroize` features).
        self.salt.zeroize();
    }
}

/// SRTP session key labels.
pub(crate) const RTP_LABELS: [Label; 3] = [Label::RtpEncryption, Label::RtpAuthentication, Label::RtpSalt];
/// SRTCP session key labels.
pub(crate) const RTCP_LABELS: [Label; 3] =
    [Label::RtcpEncryption, Label::RtcpAuthentication, Label::RtcpSalt];

#[cfg(test)]
mod tests {
    use super::*;

    fn arr<const N: usize>(h: &str) -> [u8; N] {
        hex::decode(h).unwrap().try_into().unwrap()
    }

    const MASTER_KEY: &str = "E1F97A0D3E018BE0D64FA32C06DE4139";
    const MASTER_SALT: &str = "0EC675AD498AFEEBB6960B3AABE6";

    /// RFC 3711 Appendix B.3 (index 0, key derivation rate 0).
    #[test]
    fn rfc3711_b3_key_derivation() {
        let (k, s) = (arr::<16>(MASTER_KEY), arr::<14>(MASTER_SALT));
        let mut enc = [0u8; 16];
        derive_session_key(&k, &s, Label::RtpEncryption, 0, 0, &mut enc);
        assert_eq!(hex::encode_upper(enc), "C61E7A93744F39EE10734AFE3FF7A087");
        let mut salt = [0u8; 14];
        derive_session_key(&k, &s, Label::RtpSalt, 0, 0, &mut salt);
        assert_eq!(hex::encode_upper(salt), "30CBBC08863D8C85D49DB34A9AE1");
        let mut auth = [0u8; 94];
        derive_session_key(&k, &s, Label::RtpAuthentication, 0, 0, &mut auth);
        assert_eq!(
            hex::encode_upper(auth),
            "CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF3C34E2359E6CDBCE\
             E049646C43D9327AD175578EF72270986371C10C9A369AC2F94A8C5FBCDDDC25\
             6D6E919A48B610EF17C2041E474035766B68642C59BBFC2F34DB60DBDFB2"
        );
    }

    /// Non-zero key derivation rate: OpenSSL's SRTP KDF test data (evpkdf_srtp.txt), kdr 1.
    #[test]
    fn openssl_kdr1_vector() {
        let k = arr::<16>("8C307F105F79D5D2C26B1A933AE22CD5");
        let s = arr::<14>("563B4C15458D977B68080242CEE1");
        let mut enc = [0u8; 16];
        derive_session_key(&k, &s, Label::RtpEncryption, 0x0828_4B49_F520, 1, &mut enc);
        assert_eq!(hex::encode_upper(enc), "A920DF50EAA111D03FBE9B203121C07D");
    }

    /// r = index DIV kdr, 0 when kdr is 0 (RFC 3711 §4.3.1).
    #[test]
    fn r_is_index_div_rate() {
        assert_eq!(key_derivation_r(0x1234_5678_9abc, 0), 0);
        assert_eq!(key_derivation_r(0x1234_5678_9abc, 1), 0x1234_5678_9abc);
        assert_eq!(key_derivation_r(65535, 256), 255);
        assert_eq!(key_derivation_r(65536, 256), 256);
        assert_eq!(key_derivation_r(1 << 40, 1 << 24), 1 << 16);
    }

    /// With a non-zero rate, the key_id label || r is XORed into the salt, so deriving at index i
    /// equals deriving at rate 0 with the salt XOR r in its last 48 bits (§4.3.1 algebra).
    #[test]
    fn rate_equals_salt_shift() {
        let (k, s) = (arr::<16>(MASTER_KEY), arr::<14>(MASTER_SALT));
        let index = 0x0001_2345_u64;
        let r = index >> 8;
        let mut shifted = s;
        for (b, x) in shifted[8..].iter_mut().zip(&r.to_be_bytes()[2..]) {
            *b ^= x;
        }
        for label in [Label::RtpEncryption, Label::RtcpAuthentication, Label::RtcpSalt] {
            let (mut a, mut b) = ([0u8; 20], [0u8; 20]);
            derive_session_key(&k, &s, label, index, 256, &mut a);
            derive_session_key(&k, &shifted, label, 0, 0, &mut b);
            assert_eq!(a, b);
        }
    }
}
