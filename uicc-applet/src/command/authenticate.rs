//! AUTHENTICATE (TS 31.102 §7.1, TS 31.103 §7.1): the EVEN instruction `88` with the 3G context
//! (P2 `81`) and the GBA context (P2 `84`: Bootstrapping Mode `DD`, NAF Derivation Mode `DE`),
//! and the ODD instruction `89` with the MBMS context (P2 `85`: MSK Update, MTK Generation, MSK
//! Deletion, MUK Deletion). Parsed once here; each family executes in its own module: [`aka`]
//! (3G and GBA bootstrap), [`naf`] (NAF derivation), [`mbms`] (MBMS modes).
//!
//! Every check that can refuse a command runs before the command's one journal transaction, so a
//! refusal never changes the NVM; the values the card keys its answer on are in
//! [`crate::open_values`]. The framing is the vocabulary's (`uicc_vocab::authenticate`).

mod aka;
mod mbms;
mod naf;

use apdu::Status;
use uicc_vocab::authenticate::{
    self as framing, FramingError, GbaCommand, INS_AUTHENTICATE_ODD, MbmsCommand, P1_EVEN, P2_3G_CONTEXT,
    P2_GBA_CONTEXT, P2_MBMS_CONTEXT,
};
use uicc_vocab::ef::{AUTN_LEN, RAND_LEN};
use uicc_vocab::open_values::P1_ODD_FIRST_BLOCK;

use super::{Context, Reply};
use crate::error::Error;
use crate::fs::App;
use crate::nvm::Nvm;
use crate::open_values::{P2_EVEN_CONTEXTS_NOT_SUPPORTED, P2_ODD_CONTEXTS_NOT_SUPPORTED};

/// A parsed AUTHENTICATE: the vocabulary's framing of each context. No `Debug`: the data are
/// challenges and key material in transit.
#[derive(Clone, Copy)]
pub(crate) enum Authenticate<'a> {
    /// 3G context: RAND, AUTN.
    Aka {
        /// RAND.
        rand: [u8; RAND_LEN],
        /// AUTN.
        autn: [u8; AUTN_LEN],
    },
    /// GBA context: Bootstrapping Mode (RAND, AUTN*) or NAF Derivation Mode (NAF_Id checked to be
    /// FQDN ‖ Ua security protocol id, IMPI).
    Gba(GbaCommand<'a>),
    /// MBMS context: MSK Update, MTK Generation, MSK Deletion, MUK Deletion.
    Mbms(MbmsCommand<'a>),
}

impl From<FramingError> for Error {
    fn from(e: FramingError) -> Self {
        match e {
            FramingError::WrongLength => Error::WrongLength,
            FramingError::IncorrectData => Error::IncorrectData,
            FramingError::UnknownMode => Error::ContextNotSupported,
        }
    }
}

impl<'a> Authenticate<'a> {
    pub(crate) fn parse(c: &apdu::Command<'a>) -> Result<Self, Error> {
        if c.ins == INS_AUTHENTICATE_ODD {
            return Self::parse_odd(c);
        }
        if c.p1 != P1_EVEN {
            return Err(Error::IncorrectP1P2);
        }
        match c.p2 {
            P2_3G_CONTEXT => {
                let (rand, autn) = framing::parse_rand_autn(c.data)?;
                Ok(Authenticate::Aka { rand, autn })
            }
            P2_GBA_CONTEXT => {
                let command = framing::parse_gba(c.data)?;
                if let GbaCommand::NafDerivation { naf_id, .. } = command {
                    gba::NafId::from_bytes(naf_id).map_err(|_| Error::IncorrectData)?;
                }
                Ok(Authenticate::Gba(command))
            }
            p2 if P2_EVEN_CONTEXTS_NOT_SUPPORTED.contains(&p2) => Err(Error::ContextNotSupported),
            _ => Err(Error::IncorrectP1P2),
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
        Ok(Authenticate::Mbms(framing::parse_mbms(c.data)?))
    }

    pub(crate) fn exec<N: Nvm>(&self, ctx: &mut Context<'_, N>, reply: &mut Reply) -> Result<Status, Error> {
        let app = authorize(ctx)?;
        match self {
            Authenticate::Aka { rand, autn } => aka::three_g(ctx, app, rand, autn, reply),
            Authenticate::Gba(GbaCommand::Bootstrap { rand, autn }) => {
                aka::gba_bootstrap(ctx, app, rand, autn, reply)
            }
            Authenticate::Gba(GbaCommand::NafDerivation { naf_id, impi }) => {
                naf::derive(ctx, app, naf_id, impi, reply)
            }
            Authenticate::Mbms(MbmsCommand::MskUpdate(message)) => mbms::msk_update(ctx, app, message, reply),
            Authenticate::Mbms(MbmsCommand::MtkGeneration(message)) => {
                mbms::mtk_generation(ctx, app, message, reply)
            }
            Authenticate::Mbms(MbmsCommand::MskDeletion { key_domain_id, key_group }) => {
                mbms::msk_deletion(ctx, app, key_domain_id, *key_group, reply)
            }
            Authenticate::Mbms(MbmsCommand::MukDeletion(id)) => mbms::muk_deletion(ctx, app, id, reply),
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
