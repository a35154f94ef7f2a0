//! UICC-based MBMS key management (TS 33.246 §6.1, TS 31.102 §7.1.1 MBMS modes): the card holds
//! MUK (= Ks_int_NAF) and MSKs and runs MGV-F; the ME sends MIKEY messages with AUTHENTICATE in the
//! MBMS context and receives only MTK and salt. Each status word is mapped to a typed [`Error`].

use mikey::mbms::profile::{KEY_DOMAIN_ID_LEN, MTK_LEN, MTK_SALT_LEN};
use mikey::mbms::{KeyDomainId, Mtk, MtkSalt};
use sim_reader::Reader;
use zeroize::Zeroizing;

use uicc_vocab::authenticate::{self as framing, MbmsAnswerError, P2_MBMS_CONTEXT};
use uicc_vocab::ef::KEY_GROUP_LEN;
use uicc_vocab::ef::muk::encode_muk_id;
use uicc_vocab::open_values::{
    MODE_MSK_DELETION, MODE_MSK_UPDATE, MODE_MTK_GENERATION, MODE_MUK_DELETION, SOLICITED_PULL_MARKER,
};

use crate::card::Card;
use crate::error::{Error, Result};
use crate::key_management::{KeyManagementPath, MbmsKeyManagement, MskOutcome, MtkOutcome, malformed};

/// The UICC-based key management over a shared card handle. PIN1 must be verified.
pub struct UiccBased<R> {
    card: Card<R>,
}

impl<R> core::fmt::Debug for UiccBased<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("UiccBased { .. }")
    }
}

impl<R: Reader> UiccBased<R> {
    /// Key management on `card` (the USIM's MBMS context).
    pub fn new(card: Card<R>) -> Self {
        UiccBased { card }
    }

    /// The card.
    pub fn card(&self) -> &Card<R> {
        &self.card
    }

    /// One MBMS AUTHENTICATE: `53 L mode data`, answered `53 L DB [data]`; returns the data after
    /// `DB`. `on_6985` names the error of "conditions of use not satisfied" in this mode.
    fn mbms(
        &self,
        mode: u8,
        data: &[u8],
        command: &'static str,
        on_6985: Error,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let mut body = vec![0; framing::mbms_len(data.len())];
        framing::encode_mbms(mode, data, &mut body)
            .map_err(|_| Error::InvalidInput("TLV value over 65535 bytes".into()))?;
        let r = Zeroizing::new(self.card.authenticate_odd(P2_MBMS_CONTEXT, &body)?);
        match r.sw {
            0x9000 => {}
            0x6985 => return Err(on_6985),
            sw => {
                return Err(Error::from_mbms_sw(sw).unwrap_or(Error::CardStatus { command, sw }));
            }
        }
        let bad = |reason| Error::CardResponse { command, reason };
        match framing::parse_mbms_answer(&r.data) {
            Ok(after) => Ok(Zeroizing::new(after.to_vec())),
            Err(MbmsAnswerError::NoObject) => Err(bad("no 53 object")),
            Err(MbmsAnswerError::NotOneObject) => Err(bad("not one 53 object")),
            Err(MbmsAnswerError::NoSuccessTag) => Err(bad("no DB tag")),
        }
    }
}

impl<R: Reader> MbmsKeyManagement for UiccBased<R> {
    fn path(&self) -> KeyManagementPath {
        KeyManagementPath::UiccBased
    }

    fn msk_update(&mut self, mikey: &[u8]) -> Result<MskOutcome> {
        let command = "AUTHENTICATE (MBMS MSK Update)";
        let out = self.mbms(MODE_MSK_UPDATE, mikey, command, Error::NoMuk)?;
        let bad = |reason| Error::CardResponse { command, reason };
        match out.split_first() {
            Some((&SOLICITED_PULL_MARKER, rest)) => {
                let (kd, rest) =
                    rest.split_at_checked(KEY_DOMAIN_ID_LEN).ok_or(bad("short solicited pull"))?;
                let (kg, verification) =
                    rest.split_at_checked(KEY_GROUP_LEN).ok_or(bad("short solicited pull"))?;
                let mut key_domain_id = [0u8; KEY_DOMAIN_ID_LEN];
                key_domain_id.copy_from_slice(kd);
                Ok(MskOutcome::SolicitedPull {
                    key_domain_id: KeyDomainId(key_domain_id),
                    key_group: u16::from_be_bytes([kg[0], kg[1]]),
                    verification: (!verification.is_empty()).then(|| verification.to_vec()),
                })
            }
            _ => {
                // The card accepted the message, so it parses; the ME reads its identifiers.
                let msg = mikey::mbms::parse_msk_message(mikey).map_err(malformed)?;
                Ok(MskOutcome::Msk {
                    key_domain_id: msg.key_domain_id(),
                    msk_id: msg.msk_id(),
                    verification: (!out.is_empty()).then(|| out.to_vec()),
                })
            }
        }
    }

    fn mtk_generate(&mut self, mikey: &[u8]) -> Result<MtkOutcome> {
        let command = "AUTHENTICATE (MBMS MTK Generation)";
        let on_6985 = Error::CardStatus { command, sw: 0x6985 };
        let out = self.mbms(MODE_MTK_GENERATION, mikey, command, on_6985)?;
        let bad = |reason| Error::CardResponse { command, reason };
        let (mtk, salt) = match out.len() {
            MTK_LEN => (&out[..], None),
            n if n == MTK_LEN + MTK_SALT_LEN => (&out[..MTK_LEN], Some(&out[MTK_LEN..])),
            _ => return Err(bad("MTK and salt of a wrong length")),
        };
        let msg = mikey::mbms::parse_mtk_message(mikey).map_err(malformed)?;
        Ok(MtkOutcome {
            key_domain_id: msg.key_domain_id(),
            msk_id: msg.msk_id(),
            mtk_id: msg.mtk_id(),
            mtk: Mtk::from_slice(mtk).map_err(|_| bad("MTK length"))?,
            salt: salt.map(MtkSalt::from_slice).transpose().map_err(|_| bad("salt length"))?,
        })
    }

    fn delete_msk(&mut self, key_domain_id: KeyDomainId, key_group: u16) -> Result<()> {
        let command = "AUTHENTICATE (MBMS MSK Deletion)";
        let data = framing::msk_deletion_data(&key_domain_id.0, key_group);
        let out = self.mbms(MODE_MSK_DELETION, &data, command, Error::CardStatus { command, sw: 0x6985 })?;
        if !out.is_empty() {
            return Err(Error::CardResponse { command, reason: "data after DB" });
        }
        Ok(())
    }

    fn delete_muk(&mut self, idi: &[u8], idr: &[u8]) -> Result<()> {
        let command = "AUTHENTICATE (MBMS MUK Deletion)";
        let mut data = vec![0; uicc_vocab::ef::muk::muk_id_len(idr.len(), idi.len())];
        encode_muk_id(idr, idi, &mut data)
            .map_err(|_| Error::InvalidInput("TLV value over 65535 bytes".into()))?;
        let out = self.mbms(MODE_MUK_DELETION, &data, command, Error::CardStatus { command, sw: 0x6985 })?;
        if !out.is_empty() {
            return Err(Error::CardResponse { command, reason: "data after DB" });
        }
        Ok(())
    }
}
