//! SRTP master keys and their MKIs (RFC 3711 §3.2.1, §8.1). In MBMS the master key is the MTK,
//! the master salt the salt delivered with it, and the MKI identifies the MTK (TS 33.246); this
//! crate treats the MKI as opaque bytes of the policy's length, so its layout is the caller's.

use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};
use crate::policy::{MASTER_KEY_LEN, MASTER_SALT_LEN};

/// One master key with its master salt and MKI. Wiped on drop; `Debug` shows only the MKI.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey {
    /// The 128-bit master key.
    pub key: [u8; MASTER_KEY_LEN],
    /// The 112-bit master salt.
    pub salt: [u8; MASTER_SALT_LEN],
    /// The Master Key Identifier carried in each packet; empty when the policy has no MKI.
    pub mki: Vec<u8>,
}

impl MasterKey {
    /// A master key from its parts.
    pub fn new(key: [u8; MASTER_KEY_LEN], salt: [u8; MASTER_SALT_LEN], mki: impl Into<Vec<u8>>) -> Self {
        MasterKey { key, salt, mki: mki.into() }
    }

    /// A master key from slices, checking the lengths.
    pub fn from_slices(key: &[u8], salt: &[u8], mki: &[u8]) -> Result<Self> {
        let key: [u8; MASTER_KEY_LEN] = key.try_into().map_err(|_| Error::InvalidKeyLength {
            what: "master key",
            got: key.len(),
            expected: MASTER_KEY_LEN,
        })?;
        let salt: [u8; MASTER_SALT_LEN] = salt.try_into().map_err(|_| Error::InvalidKeyLength {
            what: "master salt",
            got: salt.len(),
            expected: MASTER_SALT_LEN,
        })?;
        Ok(MasterKey::new(key, salt, mki))
    }

    /// A master key from the 30-byte concatenation `key || salt` used by SDES inline keys
    /// (RFC 4568 §6.1) and libsrtp policies.
    pub fn from_key_and_salt(key_and_salt: &[u8], mki: &[u8]) -> Result<Self> {
        if key_and_salt.len() != MASTER_KEY_LEN + MASTER_SALT_LEN {
            return Err(Error::InvalidKeyLength {
                what: "master key || salt",
                got: key_and_salt.len(),
                expected: MASTER_KEY_LEN + MASTER_SALT_LEN,
            });
        }
        let (key, salt) = key_and_salt.split_at(MASTER_KEY_LEN);
        MasterKey::from_slices(key, salt, mki)
    }
}

impl core::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MasterKey { mki: ")?;
        for b in &self.mki {
            write!(f, "{b:02x}")?;
        }
        f.write_str(", .. }")
    }
}
