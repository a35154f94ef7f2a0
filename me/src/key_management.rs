//! One MBMS key management for the ME (TS 33.246 §6.1, §6.3), with two implementations:
//! [`UiccBased`](crate::UiccBased) (MGV-F and MGV-S on the card, the ME gets only MTK and salt) and
//! [`MeBased`](crate::MeBased) (MUK and MRK from Ks_NAF, MIKEY verified and stored in the ME).

use mikey::mbms::{KeyDomainId, MskId, Mtk, MtkId, MtkSalt};
use sim_reader::Reader;

use crate::card::Card;
use crate::error::{Error, Result};
use uicc_vocab::ef::service_table::UST_MBMS_SECURITY;

use crate::open_values::{SALT_WHEN_ABSENT, mki};

/// Where the MBMS keys live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyManagementPath {
    /// MUK and MSKs on the UICC; MSK Update and MTK Generation over AUTHENTICATE (GBA_U).
    UiccBased,
    /// MUK, MRK, MSKs and MTKs in the ME key store (GBA_ME, or GBA_U without MBMS on the card).
    MeBased,
}

impl core::fmt::Display for KeyManagementPath {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            KeyManagementPath::UiccBased => "UICC-based",
            KeyManagementPath::MeBased => "ME-based",
        })
    }
}

/// The path the ME uses: `forced` when given, else UICC-based exactly when EF.UST offers MBMS
/// security (service n°69, TS 31.102 §4.2.8; TS 33.246 §6.1). Reading EF.UST needs PIN1.
pub fn choose_path<R: Reader>(
    card: &Card<R>,
    forced: Option<KeyManagementPath>,
) -> Result<KeyManagementPath> {
    if let Some(path) = forced {
        return Ok(path);
    }
    Ok(if card.usim_service_table()?.has(UST_MBMS_SECURITY) {
        KeyManagementPath::UiccBased
    } else {
        KeyManagementPath::MeBased
    })
}

/// The outcome of a verified MSK message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MskOutcome {
    /// A new MSK is stored (on the card or in the ME).
    Msk {
        /// Key Domain ID.
        key_domain_id: KeyDomainId,
        /// MSK ID.
        msk_id: MskId,
        /// The MIKEY verification message to send back when the BM-SC set the V bit.
        verification: Option<Vec<u8>>,
    },
    /// A solicited pull (TS 33.246 §6.3.2.2.4): run a basic MSK request for this Key Group.
    SolicitedPull {
        /// Key Domain ID.
        key_domain_id: KeyDomainId,
        /// Key Group to request.
        key_group: u16,
        /// The MIKEY verification message, when the BM-SC asked for one.
        verification: Option<Vec<u8>>,
    },
}

impl MskOutcome {
    /// The verification message to send back, if any.
    pub fn verification(&self) -> Option<&[u8]> {
        match self {
            MskOutcome::Msk { verification, .. } | MskOutcome::SolicitedPull { verification, .. } => {
                verification.as_deref()
            }
        }
    }
}

/// An MTK out of a verified MTK message, with its identifiers: what the SRTP receiver needs.
#[derive(Debug)]
pub struct MtkOutcome {
    /// Key Domain ID.
    pub key_domain_id: KeyDomainId,
    /// MSK ID of the MSK that protected it.
    pub msk_id: MskId,
    /// MTK ID.
    pub mtk_id: MtkId,
    /// The MTK (the SRTP master key).
    pub mtk: Mtk,
    /// The salt (the SRTP master salt), when the message carried one.
    pub salt: Option<MtkSalt>,
}

impl MtkOutcome {
    /// The SRTP master key of this MTK: key = MTK, salt = the delivered salt (or
    /// [`SALT_WHEN_ABSENT`]), MKI = MSK ID ‖ MTK ID ([`crate::open_values::MKI_LEN`]).
    pub fn srtp_master_key(&self) -> srtp::MasterKey {
        let salt = self.salt.as_ref().map_or(SALT_WHEN_ABSENT, |s| *s.as_bytes());
        srtp::MasterKey::new(*self.mtk.as_bytes(), salt, mki(self.msk_id, self.mtk_id).to_vec())
    }

    /// The MKI of this MTK.
    pub fn mki(&self) -> Vec<u8> {
        mki(self.msk_id, self.mtk_id).to_vec()
    }
}

/// MBMS key management (TS 33.246 §6.3): the same calls on either path. Refused messages return
/// an error and change no stored key.
pub trait MbmsKeyManagement {
    /// Which path this is.
    fn path(&self) -> KeyManagementPath;

    /// Processes a MIKEY MSK message (MUK-protected): MSK delivery or solicited pull.
    fn msk_update(&mut self, mikey: &[u8]) -> Result<MskOutcome>;

    /// Processes a MIKEY MTK message (MSK-protected) and returns the MTK with its salt and ids.
    fn mtk_generate(&mut self, mikey: &[u8]) -> Result<MtkOutcome>;

    /// Deletes every MSK of a Key Domain and Key Group ([`Error::KeyNotFound`] when there is none).
    fn delete_msk(&mut self, key_domain_id: KeyDomainId, key_group: u16) -> Result<()>;

    /// Deletes the MUK named by IDi (BM-SC FQDN) and IDr (B-TID) ([`Error::KeyNotFound`] when
    /// there is none).
    fn delete_muk(&mut self, idi: &[u8], idr: &[u8]) -> Result<()>;
}

impl<K: MbmsKeyManagement + ?Sized> MbmsKeyManagement for Box<K> {
    fn path(&self) -> KeyManagementPath {
        (**self).path()
    }
    fn msk_update(&mut self, mikey: &[u8]) -> Result<MskOutcome> {
        (**self).msk_update(mikey)
    }
    fn mtk_generate(&mut self, mikey: &[u8]) -> Result<MtkOutcome> {
        (**self).mtk_generate(mikey)
    }
    fn delete_msk(&mut self, key_domain_id: KeyDomainId, key_group: u16) -> Result<()> {
        (**self).delete_msk(key_domain_id, key_group)
    }
    fn delete_muk(&mut self, idi: &[u8], idr: &[u8]) -> Result<()> {
        (**self).delete_muk(idi, idr)
    }
}

/// What a MIKEY message is, told apart by parsing (an MTK message carries an MTK ID; an MSK
/// message carries IDi and IDr).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MikeyKind {
    /// An MSK message or a solicited pull.
    Msk,
    /// An MTK message.
    Mtk,
}

/// Classifies a datagram, or returns the parse error of the MSK reading (the more general one).
pub fn classify(mikey: &[u8]) -> core::result::Result<MikeyKind, mikey::Error> {
    if mikey::mbms::parse_mtk_message(mikey).is_ok() {
        return Ok(MikeyKind::Mtk);
    }
    mikey::mbms::parse_msk_message(mikey).map(|_| MikeyKind::Msk)
}

pub(crate) fn malformed(e: mikey::Error) -> Error {
    Error::MalformedMikey { reason: Some(e) }
}
