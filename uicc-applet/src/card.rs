//! The card's APDU entry point (TS 102 221 §10 and §11).

use crate::NvmError;
use crate::nvm::Nvm;
use crate::profile::Personalization;

/// Answer-to-reset (ISO/IEC 7816-3 §8): T=0 and T=1, as seen on commercial UICCs.
pub const ATR: &[u8] = &[
    0x3B, 0x9F, 0x96, 0x80, 0x1F, 0xC7, 0x80, 0x31, 0xA0, 0x73, 0xBE, 0x21, 0x13, 0x67, 0x43, 0x20, 0x07,
    0x18, 0x00, 0x00, 0x01, 0xA5,
];

/// The largest response [`Uicc::process`] writes: 256 data bytes and the status word.
pub const RESPONSE_MAX: usize = 258;

/// The transport protocol, which decides how case-4 responses are returned (TS 102 221 §7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// T=0: response data wait behind `61 xx` for GET RESPONSE.
    T0,
    /// T=1 (and the in-process transport): data and status word together.
    #[default]
    T1,
}

/// The card: file system, USIM and ISIM over one NVM.
pub struct Uicc<N: Nvm> {
    nvm: N,
    transport: Transport,
}

impl<N: Nvm> Uicc<N> {
    /// Write the initial image of a card with this personalization into a blank `nvm`.
    pub fn personalize(_nvm: &mut N, _p: &Personalization<'_>) -> Result<(), NvmError> {
        Ok(())
    }

    /// Cold reset: recover any interrupted transaction and start with no file selected and no PIN verified.
    pub fn power_on(nvm: N) -> Self {
        Uicc { nvm, transport: Transport::default() }
    }

    /// The answer-to-reset.
    pub fn atr(&self) -> &'static [u8] {
        ATR
    }

    /// Warm reset: volatile state (selection, PIN verified) cleared.
    pub fn reset(&mut self) {}

    /// Choose how case-4 responses are returned.
    pub fn set_transport(&mut self, transport: Transport) {
        self.transport = transport;
    }

    /// Process one command APDU; write data and status word into `response` (at least
    /// [`RESPONSE_MAX`] bytes) and return the length written. Never panics.
    pub fn process(&mut self, _command: &[u8], response: &mut [u8]) -> usize {
        if response.len() < 2 {
            return 0;
        }
        response[..2].copy_from_slice(&[0x6D, 0x00]);
        2
    }

    /// The NVM.
    pub fn nvm(&self) -> &N {
        &self.nvm
    }

    /// Power off: give back the NVM.
    pub fn into_nvm(self) -> N {
        self.nvm
    }
}
