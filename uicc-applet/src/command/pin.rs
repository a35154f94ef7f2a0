//! PIN commands of TS 102 221 §11.1.9 (VERIFY PIN), §11.1.10 (CHANGE PIN) and §11.1.13 (UNBLOCK
//! PIN), for PIN1 (key reference `01`, unblocked with PUK1) and ADM1 (`0A`), with try counters kept
//! in NVM (§9.5).
//!
//! A presented value costs a try before it is compared: the decremented counter is written first
//! and restored only after a match, so cutting the power at any point never gives a try back.

use apdu::Status;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::Context;
use crate::ef::{self, PIN_LEN};
use crate::error::Error;
use crate::journal::Transaction;
use crate::layout::{self, Region};
use crate::nvm::Nvm;

/// Tries of PIN1 before it blocks (TS 102 221 §9.5.1 requires 3).
pub const PIN1_MAX_TRIES: u8 = 3;
/// Tries of ADM1 before it blocks (operator choice; 10 is common on programmable cards).
pub const ADM1_MAX_TRIES: u8 = 10;
/// Tries of PUK1 (the UNBLOCK PIN value of PIN1) before it blocks for good (TS 102 221 §9.5.1:
/// 10).
pub const PUK1_MAX_TRIES: u8 = 10;

/// A key reference the card holds (TS 102 221 §9.5.1, Table 9.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyRef {
    /// `01`: PIN1, shared by the USIM and the ISIM.
    Pin1,
    /// `0A`: ADM1.
    Adm1,
    /// The UNBLOCK PIN value of PIN1 (named by key reference `01` in UNBLOCK PIN).
    Puk1,
}

impl KeyRef {
    /// Decode P2: `01` and `0A` are held; other references Table 9.3 defines are `6A 88`;
    /// undefined values are `6A 86`.
    fn from_p2(p2: u8) -> Result<KeyRef, Error> {
        match p2 {
            0x01 => Ok(KeyRef::Pin1),
            0x0A => Ok(KeyRef::Adm1),
            0x02..=0x08 | 0x0B..=0x0E | 0x11 | 0x81..=0x88 | 0x8A..=0x8E => {
                Err(Error::ReferencedDataNotFound)
            }
            _ => Err(Error::IncorrectP1P2),
        }
    }

    /// Tries after personalization and after a successful verification.
    pub(crate) const fn max_tries(self) -> u8 {
        match self {
            KeyRef::Pin1 => PIN1_MAX_TRIES,
            KeyRef::Adm1 => ADM1_MAX_TRIES,
            KeyRef::Puk1 => PUK1_MAX_TRIES,
        }
    }

    const fn value(self) -> Region {
        match self {
            KeyRef::Pin1 => layout::PIN1_VALUE,
            KeyRef::Adm1 => layout::ADM1_VALUE,
            KeyRef::Puk1 => layout::PUK1_VALUE,
        }
    }

    const fn tries(self) -> Region {
        match self {
            KeyRef::Pin1 => layout::PIN1_TRIES,
            KeyRef::Adm1 => layout::ADM1_TRIES,
            KeyRef::Puk1 => layout::PUK1_TRIES,
        }
    }

    /// Whether presented values must be TS 102 221 §9.5.1 PINs (ADM values are opaque bytes).
    const fn is_pin(self) -> bool {
        matches!(self, KeyRef::Pin1 | KeyRef::Puk1)
    }

    fn verified<N: Nvm>(self, ctx: &Context<'_, N>) -> bool {
        match self {
            KeyRef::Pin1 => ctx.vol.pin1_verified,
            KeyRef::Adm1 => ctx.vol.adm1_verified,
            KeyRef::Puk1 => false,
        }
    }

    fn set_verified<N: Nvm>(self, ctx: &mut Context<'_, N>, verified: bool) {
        match self {
            KeyRef::Pin1 => ctx.vol.pin1_verified = verified,
            KeyRef::Adm1 => ctx.vol.adm1_verified = verified,
            KeyRef::Puk1 => {}
        }
    }
}

/// Tries left; a stored value above the maximum (a damaged byte) counts as blocked.
fn tries_left<N: Nvm>(nvm: &N, key: KeyRef) -> Result<u8, Error> {
    let mut tries = [0u8; 1];
    nvm.read(key.tries().offset, &mut tries)?;
    Ok(if tries[0] > key.max_tries() { 0 } else { tries[0] })
}

/// Check `presented` against the stored value: pay a try, compare in constant time, refund on match.
fn present<N: Nvm>(ctx: &mut Context<'_, N>, key: KeyRef, presented: &[u8; PIN_LEN]) -> Result<(), Error> {
    let tries = tries_left(ctx.nvm, key)?;
    if tries == 0 {
        return Err(Error::PinBlocked);
    }
    if key.is_pin() && !ef::pin_well_formed(presented) {
        return Err(Error::IncorrectData);
    }
    if !super::planted!(ctx, PinTryNotCounted) {
        ctx.nvm.write(key.tries().offset, &[tries - 1])?;
    }
    let mut stored = Zeroizing::new([0u8; PIN_LEN]);
    ctx.nvm.read(key.value().offset, &mut stored[..])?;
    if bool::from(stored.ct_eq(presented)) {
        ctx.nvm.write(key.tries().offset, &[key.max_tries()])?;
        key.set_verified(ctx, true);
        Ok(())
    } else {
        key.set_verified(ctx, false);
        Err(Error::VerifyFailed(tries - 1))
    }
}

/// VERIFY PIN (TS 102 221 §11.1.9). Without data it reports the state: `90 00` if verified,
/// `63 Cx` with the tries left, `69 83` if blocked.
#[derive(Clone, Copy)]
pub(crate) struct Verify<'a> {
    key: KeyRef,
    value: Option<&'a [u8; PIN_LEN]>,
}

impl<'a> Verify<'a> {
    pub(crate) fn parse(c: &apdu::Command<'a>) -> Result<Self, Error> {
        if c.p1 != 0x00 {
            return Err(Error::IncorrectP1P2);
        }
        let key = KeyRef::from_p2(c.p2)?;
        let value = match c.data.len() {
            0 => None,
            PIN_LEN => Some(c.data.try_into().map_err(|_| Error::WrongLength)?),
            _ => return Err(Error::WrongLength),
        };
        Ok(Verify { key, value })
    }

    pub(crate) fn exec<N: Nvm>(&self, ctx: &mut Context<'_, N>) -> Result<Status, Error> {
        match self.value {
            Some(value) => present(ctx, self.key, value)?,
            None if self.key.verified(ctx) => {}
            None => {
                return Err(match tries_left(ctx.nvm, self.key)? {
                    0 => Error::PinBlocked,
                    n => Error::VerifyFailed(n),
                });
            }
        }
        Ok(Status::Ok)
    }
}

/// CHANGE PIN (TS 102 221 §11.1.10), PIN1 only: old value, then new value, 8 bytes each.
#[derive(Clone, Copy)]
pub(crate) struct ChangePin<'a> {
    key: KeyRef,
    old: &'a [u8; PIN_LEN],
    new: &'a [u8; PIN_LEN],
}

impl<'a> ChangePin<'a> {
    pub(crate) fn parse(c: &apdu::Command<'a>) -> Result<Self, Error> {
        if c.p1 != 0x00 {
            return Err(Error::IncorrectP1P2);
        }
        let key = match KeyRef::from_p2(c.p2)? {
            KeyRef::Pin1 => KeyRef::Pin1,
            KeyRef::Adm1 | KeyRef::Puk1 => return Err(Error::ReferencedDataNotFound),
        };
        let (old, new) = c.data.split_at_checked(PIN_LEN).ok_or(Error::WrongLength)?;
        let old = old.try_into().map_err(|_| Error::WrongLength)?;
        let new = new.try_into().map_err(|_| Error::WrongLength)?;
        Ok(ChangePin { key, old, new })
    }

    pub(crate) fn exec<N: Nvm>(&self, ctx: &mut Context<'_, N>) -> Result<Status, Error> {
        if !ef::pin_well_formed(self.new) {
            return Err(Error::IncorrectData);
        }
        present(ctx, self.key, self.old)?;
        let mut t = Transaction::begin(ctx.nvm);
        t.write(self.key.value().offset, self.new)?;
        t.commit()?;
        Ok(Status::Ok)
    }
}

/// UNBLOCK PIN (TS 102 221 §11.1.13), PIN1 only: the PUK1 value, then the new PIN1 value, 8 bytes
/// each. Without data it reports PUK1's state: `63 Cx` with the tries left, `69 83` if blocked.
/// A matching PUK1 sets the new PIN1, gives PIN1 and PUK1 their full tries, and verifies PIN1.
#[derive(Clone, Copy)]
pub(crate) struct UnblockPin<'a> {
    values: Option<(&'a [u8; PIN_LEN], &'a [u8; PIN_LEN])>,
}

impl<'a> UnblockPin<'a> {
    pub(crate) fn parse(c: &apdu::Command<'a>) -> Result<Self, Error> {
        if c.p1 != 0x00 {
            return Err(Error::IncorrectP1P2);
        }
        match KeyRef::from_p2(c.p2)? {
            KeyRef::Pin1 => {}
            KeyRef::Adm1 | KeyRef::Puk1 => return Err(Error::ReferencedDataNotFound),
        }
        let values = match c.data.len() {
            0 => None,
            n if n == 2 * PIN_LEN => {
                let (puk, new) = c.data.split_at(PIN_LEN);
                Some((
                    puk.try_into().map_err(|_| Error::WrongLength)?,
                    new.try_into().map_err(|_| Error::WrongLength)?,
                ))
            }
            _ => return Err(Error::WrongLength),
        };
        Ok(UnblockPin { values })
    }

    pub(crate) fn exec<N: Nvm>(&self, ctx: &mut Context<'_, N>) -> Result<Status, Error> {
        let Some((puk, new)) = self.values else {
            return Err(match tries_left(ctx.nvm, KeyRef::Puk1)? {
                0 => Error::PinBlocked,
                n => Error::VerifyFailed(n),
            });
        };
        if !ef::pin_well_formed(new) {
            return Err(Error::IncorrectData);
        }
        present(ctx, KeyRef::Puk1, puk)?;
        let mut t = Transaction::begin(ctx.nvm);
        t.write(KeyRef::Pin1.value().offset, new)?;
        t.write(KeyRef::Pin1.tries().offset, &[KeyRef::Pin1.max_tries()])?;
        t.commit()?;
        ctx.vol.pin1_verified = true;
        Ok(Status::Ok)
    }
}
