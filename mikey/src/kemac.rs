//! KEMAC protection and verification, and the V payload MAC (RFC 3830 §4.1.4, §4.2.3, §4.2.4,
//! §5.2, §6.2, §6.9).
//!
//! * Transport keys (encr_key, auth_key, salt_key) come from the pre-shared key with the PRF and
//!   the label `constant || 0xFF || CSB ID || RAND`.
//! * AES-CM-128: `IV = (salt_key XOR (0x0000 || CSB ID || T)) || 0x0000`, T the initiator's 64-bit
//!   timestamp (a COUNTER zero-padded to 64 bits); the Key data sub-payloads are encrypted as one
//!   blob.
//! * HMAC-SHA-1-160 over the whole message from the first HDR byte up to and including the MAC
//!   algorithm byte (PSK method: the KEMAC is the last payload).
//! * The verification message MAC covers the verification message without its MAC, followed by
//!   a caller-given trailer (RFC 3830 §5.2: `IDi || IDr || T`); the V payload of a MIKEY-TICKET
//!   message covers it the same way, without a TRANSFER_INIT's Initiator Data (RFC 6043 §5.5).
//! * The same transport keys serve RFC 6043 with its own labels ([`TransportKeys::derive_with_label`]).

use aes::Aes128;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::Error;
use crate::codec::Writer;
use crate::message::{Message, MessageBuilder};
use crate::payload::{DataType, EncrAlg, Kemac, KeyData, KeyDataList, MacAlg, Payload, PayloadType};
use crate::prf::{Label, PrfFunc, label, prf, prf_with_constant};

/// Length of encr_key for AES-CM-128.
pub const ENCR_KEY_LEN: usize = 16;
/// Length of auth_key for HMAC-SHA-1-160 (160 bits, §4.2.4).
pub const AUTH_KEY_LEN: usize = 20;
/// Length of salt_key for AES-CM-128 (112 bits, §4.2.3).
pub const SALT_KEY_LEN: usize = 14;

type Aes128Cm = ctr::Ctr128BE<Aes128>;

/// The keys that protect one MIKEY message: derived from the pre-shared key (for MBMS: the MUK or
/// the MSK), the CSB ID and the RAND (RFC 3830 §4.1.4).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct TransportKeys {
    encr_key: [u8; ENCR_KEY_LEN],
    auth_key: [u8; AUTH_KEY_LEN],
    salt_key: [u8; SALT_KEY_LEN],
}

impl core::fmt::Debug for TransportKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("TransportKeys { .. }")
    }
}

impl TransportKeys {
    /// Derives encr_key, auth_key and salt_key from `inkey`.
    pub fn derive(prf_func: PrfFunc, inkey: &[u8], csb_id: u32, rand: &[u8]) -> Result<Self, Error> {
        let mut k = TransportKeys {
            encr_key: [0; ENCR_KEY_LEN],
            auth_key: [0; AUTH_KEY_LEN],
            salt_key: [0; SALT_KEY_LEN],
        };
        prf(prf_func, inkey, &Label::transport(label::TRANSPORT_ENCR, csb_id, rand), &mut k.encr_key)?;
        prf(prf_func, inkey, &Label::transport(label::TRANSPORT_AUTH, csb_id, rand), &mut k.auth_key)?;
        prf(prf_func, inkey, &Label::transport(label::TRANSPORT_SALT, csb_id, rand), &mut k.salt_key)?;
        Ok(k)
    }

    /// Derives encr_key, auth_key and salt_key from `inkey` with the labels `constant || tail` of
    /// RFC 6043 (§5.1.2, §6.10, Appendix A.2.1), the constants those of RFC 3830 §4.1.4.
    pub fn derive_with_label(prf_func: PrfFunc, inkey: &[u8], tail: &[&[u8]]) -> Result<Self, Error> {
        let mut k = TransportKeys {
            encr_key: [0; ENCR_KEY_LEN],
            auth_key: [0; AUTH_KEY_LEN],
            salt_key: [0; SALT_KEY_LEN],
        };
        prf_with_constant(prf_func, inkey, label::TRANSPORT_ENCR, tail, &mut k.encr_key)?;
        prf_with_constant(prf_func, inkey, label::TRANSPORT_AUTH, tail, &mut k.auth_key)?;
        prf_with_constant(prf_func, inkey, label::TRANSPORT_SALT, tail, &mut k.salt_key)?;
        Ok(k)
    }

    /// encr_key (exposed for known-answer tests and key export).
    pub fn encr_key(&self) -> &[u8; ENCR_KEY_LEN] {
        &self.encr_key
    }

    /// auth_key.
    pub fn auth_key(&self) -> &[u8; AUTH_KEY_LEN] {
        &self.auth_key
    }

    /// salt_key.
    pub fn salt_key(&self) -> &[u8; SALT_KEY_LEN] {
        &self.salt_key
    }

    fn mac(&self) -> Result<Hmac<Sha1>, Error> {
        hmac_sha1(&self.auth_key)
    }
}

/// HMAC-SHA-1 keyed with `key`.
pub(crate) fn hmac_sha1(key: &[u8]) -> Result<Hmac<Sha1>, Error> {
    <Hmac<Sha1> as KeyInit>::new_from_slice(key).map_err(|_| Error::BadLength)
}

/// The AES-CM IV of the KEMAC (RFC 3830 §4.2.3).
pub fn kemac_iv(salt_key: &[u8; SALT_KEY_LEN], csb_id: u32, timestamp: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    let mut x = [0u8; SALT_KEY_LEN];
    x[2..6].copy_from_slice(&csb_id.to_be_bytes());
    x[6..14].copy_from_slice(&timestamp.to_be_bytes());
    for ((d, s), m) in iv.iter_mut().zip(salt_key.iter()).zip(x.iter()) {
        *d = s ^ m;
    }
    iv
}

/// Applies the AES-CM-128 keystream of a KEMAC to `data` (encrypts or decrypts).
pub fn aes_cm_apply(keys: &TransportKeys, csb_id: u32, timestamp: u64, data: &mut [u8]) -> Result<(), Error> {
    let mut iv = kemac_iv(&keys.salt_key, csb_id, timestamp);
    let mut c = Aes128Cm::new(&keys.encr_key.into(), &iv.into());
    iv.zeroize();
    c.try_apply_keystream(data).map_err(|_| Error::FieldTooLong)
}

/// How a KEMAC is protected.
#[derive(Debug, Clone, Copy)]
pub struct KemacProtection<'k> {
    /// Encryption of the key data (NULL or AES-CM-128).
    pub encr_alg: EncrAlg,
    /// MAC over the message.
    pub mac_alg: MacAlg,
    /// Keys from [`TransportKeys::derive`].
    pub keys: &'k TransportKeys,
    /// CSB ID of the header (enters the IV).
    pub csb_id: u32,
    /// The message's timestamp as 64 bits ([`crate::Timestamp::as_u64`]; enters the IV).
    pub timestamp: u64,
}

impl MessageBuilder<'_> {
    /// Appends a KEMAC carrying `key_data`, encrypted and MACed as `p` says; this ends an RFC 3830
    /// message (in a MIKEY-TICKET message the V payload does).
    pub fn push_kemac(
        &mut self,
        p: &KemacProtection<'_>,
        key_data: &[KeyData<'_>],
    ) -> Result<&mut Self, Error> {
        if self.sealed {
            return Err(Error::PayloadAfterMac);
        }
        let start = self.pos;
        let mut w = Writer::at(self.buf, start);
        w.u8(0)?;
        w.u8(p.encr_alg as u8)?;
        w.len16(KeyDataList::encoded_len(key_data))?;
        let data_start = w.pos();
        KeyDataList::encode_into(key_data, &mut w)?;
        let data_end = w.pos();
        w.u8(p.mac_alg as u8)?;
        let mac_start = w.pos();
        let end = mac_start.checked_add(p.mac_alg.mac_len()).ok_or(Error::BufferTooSmall)?;
        if self.buf.len() < end {
            return Err(Error::BufferTooSmall);
        }
        match p.encr_alg {
            EncrAlg::Null => {}
            EncrAlg::AesCm128 => {
                let data = self.buf.get_mut(data_start..data_end).ok_or(Error::BufferTooSmall)?;
                aes_cm_apply(p.keys, p.csb_id, p.timestamp, data)?;
            }
            EncrAlg::AesKw128 => return Err(Error::UnsupportedEncrAlg(EncrAlg::AesKw128 as u8)),
        }
        // Link first: the MAC covers the patched next-payload byte of the previous payload.
        self.link(PayloadType::Kemac, end)?;
        self.sealed = self.kemac_ends_message();
        if p.mac_alg == MacAlg::HmacSha1_160 {
            let mut m = p.keys.mac()?;
            m.update(self.buf.get(..mac_start).ok_or(Error::BufferTooSmall)?);
            let tag = m.finalize().into_bytes();
            self.buf.get_mut(mac_start..end).ok_or(Error::BufferTooSmall)?.copy_from_slice(&tag);
        }
        Ok(self)
    }

    /// Appends a V payload whose MAC covers the message so far and then `trailer` (RFC 3830 §5.2:
    /// `IDi || IDr || T` of the message being verified); this ends the message. In a TRANSFER_INIT
    /// the Initiator Data of the TICKET payload is not covered (RFC 6043 §5.5).
    pub fn push_verification(
        &mut self,
        mac_alg: MacAlg,
        keys: &TransportKeys,
        trailer: &[&[u8]],
    ) -> Result<&mut Self, Error> {
        self.push_v(mac_alg, &keys.auth_key, trailer)
    }

    /// Ends a MIKEY-TICKET message with a V payload (HMAC-SHA-1-160 with `auth_key`) as
    /// [`MessageBuilder::push_verification`] does; returns the message length.
    pub fn seal(mut self, auth_key: &[u8], trailer: &[&[u8]]) -> Result<usize, Error> {
        self.push_v(MacAlg::HmacSha1_160, auth_key, trailer)?;
        Ok(self.pos)
    }

    fn push_v(&mut self, mac_alg: MacAlg, auth_key: &[u8], trailer: &[&[u8]]) -> Result<&mut Self, Error> {
        if self.sealed {
            return Err(Error::PayloadAfterMac);
        }
        let start = self.pos;
        let mac_start = start + 2;
        let end = mac_start + mac_alg.mac_len();
        if self.buf.len() < end {
            return Err(Error::BufferTooSmall);
        }
        let mut w = Writer::at(self.buf, start);
        w.u8(0)?;
        w.u8(mac_alg as u8)?;
        self.link(PayloadType::Verification, end)?;
        self.sealed = true;
        if mac_alg == MacAlg::HmacSha1_160 {
            let transfer_init = self.buf.get(1) == Some(&DataType::TRANSFER_INIT.0);
            let skip = if transfer_init && self.is_ticket_message() {
                self.buf.get_mut(mac_start..end).ok_or(Error::BufferTooSmall)?.fill(0);
                let built = self.buf.get(..end).ok_or(Error::BufferTooSmall)?;
                Message::parse_ticket(built)?.initiator_data_span()?
            } else {
                None
            };
            let covered = self.buf.get(..mac_start).ok_or(Error::BufferTooSmall)?;
            let mut m = hmac_sha1(auth_key)?;
            update_skipping(&mut m, covered, skip)?;
            for t in trailer {
                m.update(t);
            }
            let tag = m.finalize().into_bytes();
            self.buf.get_mut(mac_start..end).ok_or(Error::BufferTooSmall)?.copy_from_slice(&tag);
        }
        Ok(self)
    }
}

/// Feeds `covered` into `m`, without the bytes `skip` names.
fn update_skipping(m: &mut Hmac<Sha1>, covered: &[u8], skip: Option<(usize, usize)>) -> Result<(), Error> {
    match skip {
        Some((a, b)) => {
            m.update(covered.get(..a).ok_or(Error::Truncated)?);
            m.update(covered.get(b..).ok_or(Error::Truncated)?);
        }
        None => m.update(covered),
    }
    Ok(())
}

/// Checks `mac`, the MAC field that ends `msg`: HMAC-SHA-1 with `auth_key` over the message up to
/// the MAC field (without a TRANSFER_INIT's Initiator Data, RFC 6043 §5.5), then `trailer`.
pub(crate) fn check_message_mac(
    msg: &Message<'_>,
    mac: &[u8],
    auth_key: &[u8],
    trailer: &[&[u8]],
) -> Result<(), Error> {
    let bytes = msg.as_bytes();
    let covered = bytes.get(..bytes.len().saturating_sub(mac.len())).ok_or(Error::Truncated)?;
    let mut m = hmac_sha1(auth_key)?;
    update_skipping(&mut m, covered, msg.initiator_data_span()?)?;
    for t in trailer {
        m.update(t);
    }
    check_tag(m, mac)
}

/// Compares the MAC `m` computed with `tag`, in constant time.
pub(crate) fn check_tag(m: Hmac<Sha1>, tag: &[u8]) -> Result<(), Error> {
    let computed = m.finalize().into_bytes();
    if bool::from(computed.as_slice().ct_eq(tag)) { Ok(()) } else { Err(Error::MacMismatch) }
}

/// Verifies the MAC of a PSK message whose last payload is its KEMAC; returns the KEMAC.
///
/// A NULL MAC is refused ([`Error::UnsupportedMacAlg`]): there is nothing to verify.
pub fn verify_kemac<'a>(msg: &Message<'a>, keys: &TransportKeys) -> Result<Kemac<'a>, Error> {
    let kemac = match msg.last_payload() {
        Some(Payload::Kemac(k)) => k,
        _ => return Err(Error::MissingPayload(PayloadType::Kemac)),
    };
    if kemac.mac_alg != MacAlg::HmacSha1_160 {
        return Err(Error::UnsupportedMacAlg(kemac.mac_alg as u8));
    }
    check_message_mac(msg, kemac.mac, &keys.auth_key, &[])?;
    Ok(kemac)
}

/// Decrypts a KEMAC's key data into `out` and validates the Key data sub-payloads.
pub fn decrypt_key_data<'o>(
    kemac: &Kemac<'_>,
    keys: &TransportKeys,
    csb_id: u32,
    timestamp: u64,
    out: &'o mut [u8],
) -> Result<KeyDataList<'o>, Error> {
    KeyDataList::parse(decrypt_into(kemac, keys, csb_id, timestamp, out)?)
}

/// Decrypts a KEMAC's key data into the start of `out`; returns the plaintext.
pub(crate) fn decrypt_into<'o>(
    kemac: &Kemac<'_>,
    keys: &TransportKeys,
    csb_id: u32,
    timestamp: u64,
    out: &'o mut [u8],
) -> Result<&'o [u8], Error> {
    let n = kemac.encr_data.len();
    let plain = out.get_mut(..n).ok_or(Error::FieldTooLong)?;
    plain.copy_from_slice(kemac.encr_data);
    match kemac.encr_alg {
        EncrAlg::Null => {}
        EncrAlg::AesCm128 => aes_cm_apply(keys, csb_id, timestamp, plain)?,
        EncrAlg::AesKw128 => return Err(Error::UnsupportedEncrAlg(EncrAlg::AesKw128 as u8)),
    }
    Ok(plain)
}

/// Verifies the V payload that ends a verification message; `trailer` as for
/// [`MessageBuilder::push_verification`]. A NULL MAC is refused.
pub fn verify_verification(msg: &Message<'_>, keys: &TransportKeys, trailer: &[&[u8]]) -> Result<(), Error> {
    let v = match msg.last_payload() {
        Some(Payload::Verification(v)) => v,
        _ => return Err(Error::MissingPayload(PayloadType::Verification)),
    };
    if v.mac_alg != MacAlg::HmacSha1_160 {
        return Err(Error::UnsupportedMacAlg(v.mac_alg as u8));
    }
    check_message_mac(msg, v.mac, &keys.auth_key, trailer)
}
