//! MANAGE CHANNEL (TS 102 221 §11.1.17): open and close logical channels 1 to 3. Each channel
//! has its own current directory, EF and application (§8.4.1); PIN verification is shared.

use apdu::Status;

use super::{CHANNELS, Context, Reply, Selection};
use crate::error::Error;
use crate::nvm::Nvm;

/// P1 `00`: open.
const P1_OPEN: u8 = 0x00;
/// P1 `80`: close.
const P1_CLOSE: u8 = 0x80;

/// A parsed MANAGE CHANNEL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ManageChannel {
    /// Open the channel P2 names, or with P2 `00` the lowest free one, whose number the card returns.
    Open(Option<usize>),
    /// Close the channel P2 names.
    Close(usize),
}

impl ManageChannel {
    pub(crate) fn parse(c: &apdu::Command<'_>) -> Result<Self, Error> {
        if !c.data.is_empty() {
            return Err(Error::WrongLength);
        }
        let channel = usize::from(c.p2);
        match c.p1 {
            P1_OPEN if channel == 0 => Ok(ManageChannel::Open(None)),
            P1_OPEN | P1_CLOSE if (CHANNELS..=19).contains(&channel) => {
                Err(Error::LogicalChannelNotSupported)
            }
            P1_OPEN if channel < CHANNELS => Ok(ManageChannel::Open(Some(channel))),
            P1_CLOSE if (1..CHANNELS).contains(&channel) => Ok(ManageChannel::Close(channel)),
            _ => Err(Error::IncorrectP1P2),
        }
    }

    /// Open or close. A channel opened from the basic channel starts with the MF selected; one
    /// opened from another channel takes that channel's selection (§11.1.17.2).
    pub(crate) fn exec<N: Nvm>(&self, ctx: &mut Context<'_, N>, reply: &mut Reply) -> Result<Status, Error> {
        let vol = &mut *ctx.vol;
        match *self {
            ManageChannel::Open(wanted) => {
                let channel = match wanted {
                    Some(n) if vol.is_open(n) => return Err(Error::IncorrectP1P2),
                    Some(n) => n,
                    None => (1..CHANNELS).find(|&n| !vol.is_open(n)).ok_or(Error::NoChannelAvailable)?,
                };
                let selection = if vol.channel == 0 { Selection::MF } else { vol.selection() };
                let slot = vol.channels.get_mut(channel).ok_or(Error::TechnicalProblem)?;
                *slot = Some(selection);
                if wanted.is_none() {
                    reply.push(channel as u8).map_err(|_| Error::TechnicalProblem)?;
                }
            }
            ManageChannel::Close(channel) => {
                if !vol.is_open(channel) {
                    return Err(Error::LogicalChannelNotSupported);
                }
                if let Some(slot) = vol.channels.get_mut(channel) {
                    *slot = None;
                }
            }
        }
        Ok(Status::Ok)
    }
}
