//! GET RESPONSE (TS 102 221 §12.1.1): under T=0 a case-4 command cannot return data with its
//! status word, so the card answers `61 xx` and keeps the data for the GET RESPONSE that must
//! follow immediately.

use apdu::Status;

use super::{Context, REPLY_MAX, Reply};
use crate::error::Error;
use crate::nvm::Nvm;

/// The SW2 byte that announces `n` bytes (`00` stands for 256).
pub(crate) fn length_byte(n: usize) -> u8 {
    if n >= 256 { 0 } else { n as u8 }
}

/// Response data kept for GET RESPONSE. Any other command discards it.
#[derive(Debug, Clone, Default)]
pub(crate) struct PendingResponse {
    data: heapless::Vec<u8, REPLY_MAX>,
    taken: usize,
}

impl PendingResponse {
    /// Keep `data` (at most [`REPLY_MAX`] bytes; the reply buffer holds no more).
    pub(crate) fn store(&mut self, data: &[u8]) {
        self.data.clear();
        self.taken = 0;
        let n = data.len().min(REPLY_MAX);
        // Cannot fail: n fits the capacity.
        let _ = self.data.extend_from_slice(data.get(..n).unwrap_or_default());
    }

    /// Drop what is kept.
    pub(crate) fn clear(&mut self) {
        self.data.clear();
        self.taken = 0;
    }

    /// Bytes not yet fetched.
    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.taken)
    }

    /// Hand out `ne` bytes: `61 yy` while some remain, `90 00` when done; `6C xx` (keeping the data)
    /// when more is asked for than is available.
    fn take(&mut self, ne: usize, reply: &mut Reply) -> Result<Status, Error> {
        let available = self.remaining();
        if available == 0 {
            return Err(Error::TechnicalProblem);
        }
        if ne > available {
            return Err(Error::WrongLe(length_byte(available)));
        }
        let chunk = self.data.get(self.taken..self.taken + ne).ok_or(Error::TechnicalProblem)?;
        reply.extend_from_slice(chunk).map_err(|_| Error::TechnicalProblem)?;
        self.taken += ne;
        match self.remaining() {
            0 => {
                self.clear();
                Ok(Status::Ok)
            }
            left => Ok(Status::BytesAvailable(length_byte(left))),
        }
    }
}

/// GET RESPONSE: P1 = P2 = `00`, Le the number of bytes wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GetResponse {
    ne: usize,
}

impl GetResponse {
    pub(crate) fn parse(c: &apdu::Command<'_>) -> Result<Self, Error> {
        if c.p1 != 0 || c.p2 != 0 {
            return Err(Error::IncorrectP1P2);
        }
        match (c.data.is_empty(), c.ne) {
            (true, Some(ne)) => Ok(GetResponse { ne }),
            _ => Err(Error::WrongLength),
        }
    }

    pub(crate) fn exec<N: Nvm>(&self, ctx: &mut Context<'_, N>, reply: &mut Reply) -> Result<Status, Error> {
        ctx.pending.take(self.ne, reply)
    }
}
