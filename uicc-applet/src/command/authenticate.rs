//! AUTHENTICATE (TS 31.102 §7.1, TS 31.103 §7.1): the EVEN instruction `88` with the 3G context
//! (P2 `81`) and the GBA context (P2 `84`: Bootstrapping Mode `DD`, NAF Derivation Mode `DE`),
//! and the ODD instruction `89` with the MBMS context (P2 `85`: MSK Update, MTK Generation, MSK
//! Deletion, MUK Deletion). Parsed once here; each family executes in its own module: [`aka`]
//! (3G and GBA bootstrap), [`naf`] (NAF derivation), [`mbms`] (MBMS modes).
//!
//! Every check that can refuse a command runs before the command's one journal transaction, so a
//! refusal never changes the NVM; the values the card keys its answer on are in
//! [`crate::open_values`].

mod aka;
mod mbms;
mod naf;

use apdu::Status;
use apdu::tlv::Tlv;

use super::{Context, Reply};
use crate::error::Error;
use crate::fs::App;
use crate::key_files::{self, KEY_DOMAIN_ID_LEN, MukId, RAND_LEN};
use crate::nvm::Nvm;
use crate::open_values::{
    KEY_GROUP_LEN, MODE_MSK_DELETION, MODE_MSK_UPDATE, MODE_MTK_GENERATION, MODE_MUK_DELETION, P1_EVEN,
    P1_ODD_FIRST_BLOCK, P2_3G_CONTEXT, P2_EVEN_CONTEXTS_NOT_SUPPORTED, P2_GBA_CONTEXT, P2_MBMS_CONTEXT,
    P2_ODD_CONTEXTS_NOT_SUPPORTED, TAG_GBA_BOOTSTRAPPING, TAG_GBA_NAF_DERIVATION, TAG_MBMS_DATA,
};

/// Length of AUTN (TS 33.102 §6.3.2).
const AUTN_LEN: usize = gba::aka::AUTN_LEN;

/// A parsed AUTHENTICATE. No `Debug`: the data are challenges and key material in transit.
#[derive(Clone, Copy)]
pub(crate) enum Authenticate<'a> {
    /// 3G context: RAND, AUTN.
    Aka {
        /// RAND.
        rand: [u8; RAND_LEN],
        /// AUTN.
        autn: [u8; AUTN_LEN],
    },
    /// GBA context, Bootstrapping Mode: RAND, AUTN* (GBA_U).
    GbaBootstrap {
        /// RAND.
        rand: [u8; RAND_LEN],
        /// AUTN* (MAC masked, TS 33.220 §5.3.2).
        autn: [u8; AUTN_LEN],
    },
    /// GBA context, NAF Derivation Mode.
    NafDerivation {
        /// NAF_Id (checked to be FQDN ‖ Ua security protocol id).
        naf_id: &'a [u8],
        /// IMPI, as its UTF-8 octets.
        impi: &'a [u8],
    },
    /// MBMS context, MSK Update mode: a MIKEY MSK message (or solicited pull).
    MskUpdate(&'a [u8]),
    /// MBMS context, MTK Generation mode: a MIKEY MTK message.
    MtkGeneration(&'a [u8]),
    /// MBMS context, MSK Deletion mode.
    MskDeletion {
        /// Key Domain ID.
        key_domain_id: [u8; KEY_DOMAIN_ID_LEN],
        /// Key Group part of the MSK IDs to delete.
        key_group: u16,
    },
    /// MBMS context, MUK Deletion mode.
    MukDeletion(MukId<'a>),
}

/// `L value` with a one-byte length at the front of `bytes`; the value and what follows.
fn lv(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&len, rest) = bytes.split_first()?;
    Some((rest.get(..usize::from(len))?, rest.get(usize::from(len)..)?))
}

/// `10 RAND 10 AUTN` (TS 31.102 §7.1.2.1), exactly.
fn rand_autn(data: &[u8]) -> Result<([u8; RAND_LEN], [u8; AUTN_LEN]), Error> {
    if data.len() != 2 + RAND_LEN + AUTN_LEN {
        return Err(Error::WrongLength);
    }
    let (rand, rest) = lv(data).ok_or(Error::IncorrectData)?;
    let (autn, rest) = lv(rest).ok_or(Error::IncorrectData)?;
    let rand = rand.try_into().map_err(|_| Error::IncorrectData)?;
    let autn = autn.try_into().map_err(|_| Error::IncorrectData)?;
    if !rest.is_empty() {
        return Err(Error::IncorrectData);
    }
    Ok((rand, autn))
}

impl<'a> Authenticate<'a> {
    pub(crate) fn parse(c: &apdu::Command<'a>) -> Result<Self, Error> {
        if c.ins == super::ins::AUTHENTICATE_ODD {
            return Self::parse_odd(c);
        }
        if c.p1 != P1_EVEN {
            return Err(Error::IncorrectP1P2);
        }
        match c.p2 {
            P2_3G_CONTEXT => {
                let (rand, autn) = rand_autn(c.data)?;
                Ok(Authenticate::Aka { rand, autn })
            }
            P2_GBA_CONTEXT => Self::parse_gba(c.data),
            p2 if P2_EVEN_CONTEXTS_NOT_SUPPORTED.contains(&p2) => Err(Error::ContextNotSupported),
            _ => Err(Error::IncorrectP1P2),
        }
    }

    /// `DD 10 RAND 10 AUTN*` or `DE Ln NAF_Id Li IMPI` (TS 31.102 §7.1.2.3, §7.1.2.4).
    fn parse_gba(data: &'a [u8]) -> Result<Self, Error> {
        let (&tag, body) = data.split_first().ok_or(Error::WrongLength)?;
        match tag {
            TAG_GBA_BOOTSTRAPPING => {
                let (rand, autn) = rand_autn(body)?;
                Ok(Authenticate::GbaBootstrap { rand, autn })
            }
            TAG_GBA_NAF_DERIVATION => {
                let (naf_id, rest) = lv(body).ok_or(Error::WrongLength)?;
                let (impi, rest) = lv(rest).ok_or(Error::WrongLength)?;
                if !rest.is_empty() {
                    return Err(Error::WrongLength);
                }
                gba::NafId::from_bytes(naf_id).map_err(|_| Error::IncorrectData)?;
                if impi.is_empty() {
                    return Err(Error::IncorrectData);
                }
                Ok(Authenticate::NafDerivation { naf_id, impi })
            }
            _ => Err(Error::IncorrectData),
        }
    }

    /// `53 L mode data` (TS 31.102 §7.1.2.5 in Rel-6 numbering; spec digest §2.6).
    fn parse_odd(c: &apdu::Command<'a>) -> Result<Self, Error> {
        if c.p1 != P1_ODD_FIRST_BLOCK {
            return Err(Error::IncorrectP1P2);
        }
        match c.p2 {
            P2_MBMS_CONTEXT => {}
            p2 if P2_ODD_CONTEXTS_NOT_SUPPORTED.contains(&p2) => return Err(Error::ContextNotSupported),
            _ => return Err(Error::IncorrectP1P2),
        }
        if c.data.is_empty() {
            return Err(Error::WrongLength);
        }
        let (object, rest) = Tlv::parse(c.data).map_err(|_| Error::IncorrectData)?;
        if object.tag != u32::from(TAG_MBMS_DATA) || !rest.is_empty() {
            return Err(Error::IncorrectData);
        }
        let (&mode, data) = object.value.split_first().ok_or(Error::IncorrectData)?;
        match mode {
            MODE_MSK_UPDATE => Ok(Authenticate::MskUpdate(data)),
            MODE_MTK_GENERATION => Ok(Authenticate::MtkGeneration(data)),
            MODE_MSK_DELETION => {
                if data.len() != KEY_DOMAIN_ID_LEN + KEY_GROUP_LEN {
                    return Err(Error::IncorrectData);
                }
                let mut key_domain_id = [0u8; KEY_DOMAIN_ID_LEN];
                key_domain_id.copy_from_slice(&data[..KEY_DOMAIN_ID_LEN]);
                let key_group = u16::from_be_bytes([data[KEY_DOMAIN_ID_LEN], data[KEY_DOMAIN_ID_LEN + 1]]);
                Ok(Authenticate::MskDeletion { key_domain_id, key_group })
            }
            MODE_MUK_DELETION => match key_files::parse_muk_id(data) {
                Some((id, [])) => Ok(Authenticate::MukDeletion(id)),
                _ => Err(Error::IncorrectData),
            },
            _ => Err(Error::ContextNotSupported),
        }
    }

    pub(crate) fn exec<N: Nvm>(&self, ctx: &mut Context<'_, N>, reply: &mut Reply) -> Result<Status, Error> {
        let app = authorize(ctx)?;
        match self {
            Authenticate::Aka { rand, autn } => aka::three_g(ctx, app, rand, autn, reply),
            Authenticate::GbaBootstrap { rand, autn } => aka::gba_bootstrap(ctx, app, rand, autn, reply),
            Authenticate::NafDerivation { naf_id, impi } => naf::derive(ctx, app, naf_id, impi, reply),
            Authenticate::MskUpdate(message) => mbms::msk_update(ctx, app, message, reply),
            Authenticate::MtkGeneration(message) => mbms::mtk_generation(ctx, app, message, reply),
            Authenticate::MskDeletion { key_domain_id, key_group } => {
                mbms::msk_deletion(ctx, app, key_domain_id, *key_group, reply)
            }
            Authenticate::MukDeletion(id) => mbms::muk_deletion(ctx, app, id, reply),
        }?;
        Ok(Status::Ok)
    }
}

/// AUTHENTICATE needs PIN1 (TS 31.102 §7.1: access condition PIN) and a current application.
fn authorize<N: Nvm>(ctx: &Context<'_, N>) -> Result<App, Error> {
    if !ctx.vol.pin1_verified {
        return Err(Error::SecurityStatusNotSatisfied);
    }
    ctx.vol.current_app.ok_or(Error::ConditionsNotSatisfied)
}

/// Append bytes to the reply.
fn push(reply: &mut Reply, bytes: &[u8]) -> Result<(), Error> {
    reply.extend_from_slice(bytes).map_err(|_| Error::TechnicalProblem)
}
