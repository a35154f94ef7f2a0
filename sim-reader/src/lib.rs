//! Card readers for the ME (PC/SC part 3, vsmartcard vpcd protocol): the [`Reader`] trait, the
//! in-process emulator, PC/SC readers, the vpcd server, T=0 handling and APDU traces.
//!
//! - [`Reader`]: one raw exchange at a time (a command APDU in, data‖SW out), implemented by
//!   [`Emulator`] (the `uicc-applet` card in this process) and [`PcscReader`] (any PC/SC reader).
//! - [`Session`]: the ISO/IEC 7816-4 / TS 102 221 §7.3 transport loop over any reader: `61 xx`
//!   answered with GET RESPONSE, `6C xx` answered by re-issuing the command with Le = xx.
//! - [`vpcd::serve`]: any reader offered to pcscd as a virtual card (vsmartcard's vpcd driver).
//! - [`trace`]: decoded text, GSMTAP and pcap traces of every exchange, through [`Traced`].
//! - [`profile`]: the subscriber profile a blank emulated card is personalized from.
#![deny(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod bench;
mod emulator;
mod error;
mod pcsc_reader;
pub mod profile;
mod session;
pub mod trace;
pub mod vpcd;

pub use bench::{SelectMfRate, measure_select_mf};
pub use emulator::{CARD_STATE_FORMAT, Emulator, ImageNvm, NVM_SIZE};
pub use error::{Error, Result};
pub use pcsc_reader::{PcscReader, ReaderInfo, ReaderSelector, list_readers};
pub use profile::CardProfile;
pub use session::{Exchange, RawExchange, Session, parse_hex};
pub use trace::Traced;

/// The transmission protocol between reader and card (ISO/IEC 7816-3 §10 and §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    /// Character protocol T=0: case-4 responses wait behind `61 xx`.
    T0,
    /// Block protocol T=1: data and status word come back together.
    #[default]
    T1,
}

impl core::fmt::Display for Protocol {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Protocol::T0 => "T=0",
            Protocol::T1 => "T=1",
        })
    }
}

/// A card in a reader, one raw exchange at a time (PC/SC `SCardTransmit` semantics).
///
/// `transmit` sends exactly the bytes given and returns exactly what the card answered
/// (response data followed by SW1 SW2); it does not answer `61 xx` or `6C xx` itself.
/// [`Session`] does that on top of any reader.
pub trait Reader {
    /// A human-readable name of the reader (the PC/SC reader name for real readers).
    fn name(&self) -> &str;
    /// The protocol in use with the card.
    fn protocol(&self) -> Protocol;
    /// Power the card on (cold reset when it was off) and return its answer-to-reset.
    fn power_on(&mut self) -> Result<Vec<u8>>;
    /// Warm reset of the card; return its answer-to-reset.
    fn reset(&mut self) -> Result<Vec<u8>>;
    /// Power the card off.
    fn power_off(&mut self) -> Result<()>;
    /// Send one command APDU and return the raw response (data‖SW1 SW2).
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>>;
}

impl<R: Reader + ?Sized> Reader for &mut R {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn protocol(&self) -> Protocol {
        (**self).protocol()
    }
    fn power_on(&mut self) -> Result<Vec<u8>> {
        (**self).power_on()
    }
    fn reset(&mut self) -> Result<Vec<u8>> {
        (**self).reset()
    }
    fn power_off(&mut self) -> Result<()> {
        (**self).power_off()
    }
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>> {
        (**self).transmit(command)
    }
}

impl<R: Reader + ?Sized> Reader for Box<R> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn protocol(&self) -> Protocol {
        (**self).protocol()
    }
    fn power_on(&mut self) -> Result<Vec<u8>> {
        (**self).power_on()
    }
    fn reset(&mut self) -> Result<Vec<u8>> {
        (**self).reset()
    }
    fn power_off(&mut self) -> Result<()> {
        (**self).power_off()
    }
    fn transmit(&mut self, command: &[u8]) -> Result<Vec<u8>> {
        (**self).transmit(command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Readers move into the thread that serves them over vpcd.
    #[test]
    fn readers_are_send() {
        fn send<T: Send>() {}
        send::<Emulator>();
        send::<PcscReader>();
        send::<Traced<Emulator>>();
        send::<Session<Traced<PcscReader>>>();
    }
}
