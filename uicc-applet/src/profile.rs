//! The card's personalization (TS 31.102 §4.2 EF contents, TS 33.102 subscriber keys), borrowed
//! from whatever holds the profile (a TOML file on the std side, a constant in tests).

use crate::ef;
use crate::fs::{DOMAIN_SIZE, IMPI_SIZE, IMPU_RECORD_LEN, IMPU_RECORDS};

/// Everything written into a blank card. Strings are borrowed so the card needs no heap.
/// `Debug` shows the identities but not K, OPc, PIN1 or ADM1.
#[derive(Clone, Copy)]
pub struct Personalization<'a> {
    /// ICCID as decimal digits (19 or 20), stored BCD-swapped in EF.ICCID.
    pub iccid: &'a str,
    /// IMSI as decimal digits (up to 15), stored in EF.IMSI (TS 31.102 §4.2.2).
    pub imsi: &'a str,
    /// Subscriber key K (TS 35.206).
    pub k: [u8; 16],
    /// OPc (TS 35.206).
    pub opc: [u8; 16],
    /// Initial sequence number SQN (48 bits).
    pub sqn: [u8; 6],
    /// Authentication management field the card expects in AUTN.
    pub amf: [u8; 2],
    /// IMPI for EF.IMPI (TS 31.103 §4.2.2).
    pub impi: &'a str,
    /// IMPUs for EF.IMPU records (TS 31.103 §4.2.4).
    pub impu: &'a [&'a str],
    /// Home network domain name for EF.DOMAIN (TS 31.103 §4.2.3).
    pub home_domain: &'a str,
    /// PIN1 as ASCII digits (4 to 8), padded with `FF` to 8 bytes (TS 102 221 §9.5.1).
    pub pin1: &'a str,
    /// ADM1 as its 8-byte verification value.
    pub adm1: [u8; 8],
    /// PUK1, the UNBLOCK PIN value of PIN1: 8 ASCII digits (TS 102 221 §9.5.1).
    pub puk1: &'a str,
}

impl core::fmt::Debug for Personalization<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Personalization")
            .field("iccid", &self.iccid)
            .field("imsi", &self.imsi)
            .field("k", &"<secret>")
            .field("opc", &"<secret>")
            .field("sqn", &self.sqn)
            .field("amf", &self.amf)
            .field("impi", &self.impi)
            .field("impu", &self.impu)
            .field("home_domain", &self.home_domain)
            .field("pin1", &"<secret>")
            .field("adm1", &"<secret>")
            .field("puk1", &"<secret>")
            .finish()
    }
}

/// Mobile country codes whose networks use 3-digit MNCs (ITU-T E.212 assignments of North America,
/// the Caribbean and a few Latin American countries). Not exhaustive: an operator elsewhere with a
/// 3-digit MNC corrects EF.AD byte 4 with UPDATE BINARY under ADM.
pub const MCCS_WITH_THREE_DIGIT_MNC: &[u16] = &[
    302, 310, 311, 312, 313, 314, 315, 316, 334, 338, 342, 344, 346, 348, 354, 356, 358, 360, 365, 366, 376,
    708, 722, 732,
];

/// Which field of a [`Personalization`] cannot be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileError {
    /// ICCID not 18 to 20 decimal digits.
    Iccid,
    /// IMSI not 6 to 15 decimal digits.
    Imsi,
    /// PIN1 not 4 to 8 decimal digits.
    Pin1,
    /// PUK1 not 8 decimal digits.
    Puk1,
    /// IMPI empty or longer than EF.IMPI holds.
    Impi,
    /// No IMPU, more than EF.IMPU has records, or one longer than a record holds.
    Impu,
    /// Home domain empty or longer than EF.DOMAIN holds.
    HomeDomain,
}

impl core::fmt::Display for ProfileError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ProfileError::Iccid => "ICCID must be 18 to 20 decimal digits",
            ProfileError::Imsi => "IMSI must be 6 to 15 decimal digits",
            ProfileError::Pin1 => "PIN1 must be 4 to 8 decimal digits",
            ProfileError::Puk1 => "PUK1 must be 8 decimal digits",
            ProfileError::Impi => "IMPI empty or too long for EF.IMPI",
            ProfileError::Impu => "IMPU list empty, too long, or an IMPU too long for an EF.IMPU record",
            ProfileError::HomeDomain => "home domain empty or too long for EF.DOMAIN",
        })
    }
}

impl core::error::Error for ProfileError {}

/// Whether `value` fits, as `80 L value`, in `capacity` bytes.
fn fits_tag80(value: &str, capacity: usize) -> bool {
    !value.is_empty() && 1 + apdu::tlv::length_field_len(value.len()) + value.len() <= capacity
}

impl Personalization<'_> {
    /// Check that every field can be encoded into its EF.
    pub fn validate(&self) -> Result<(), ProfileError> {
        ef::encode_iccid(self.iccid).ok_or(ProfileError::Iccid)?;
        ef::encode_imsi(self.imsi).ok_or(ProfileError::Imsi)?;
        ef::encode_pin(self.pin1).ok_or(ProfileError::Pin1)?;
        if self.puk1.len() != ef::PIN_LEN || ef::encode_pin(self.puk1).is_none() {
            return Err(ProfileError::Puk1);
        }
        if !fits_tag80(self.impi, IMPI_SIZE.into()) {
            return Err(ProfileError::Impi);
        }
        if !fits_tag80(self.home_domain, DOMAIN_SIZE.into()) {
            return Err(ProfileError::HomeDomain);
        }
        if self.impu.is_empty()
            || self.impu.len() > usize::from(IMPU_RECORDS)
            || !self.impu.iter().all(|u| fits_tag80(u, IMPU_RECORD_LEN.into()))
        {
            return Err(ProfileError::Impu);
        }
        Ok(())
    }

    /// Digits of the MNC in the IMSI, for EF.AD (TS 31.102 §4.2.18): 3 when the MCC is in
    /// [`MCCS_WITH_THREE_DIGIT_MNC`], else 2.
    pub fn mnc_len(&self) -> u8 {
        let mcc = self
            .imsi
            .as_bytes()
            .get(..3)
            .map(|d| d.iter().fold(0u16, |acc, &c| acc * 10 + u16::from(c.wrapping_sub(b'0') % 10)));
        match mcc {
            Some(mcc) if MCCS_WITH_THREE_DIGIT_MNC.contains(&mcc) => 3,
            _ => 2,
        }
    }
}
