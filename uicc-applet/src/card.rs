//! The card's APDU entry point (TS 102 221 §10 and §11): parse, execute, and fit the answer to
//! Le and to the transport (T=0 `61 xx` / `6C xx`, TS 102 221 §7.3 and §12.1.1).

use apdu::{EXTENDED_NE_MAX, SHORT_NE_MAX, Status};

use crate::NvmError;
use crate::command::get_response::{PendingResponse, length_byte};
use crate::command::{Command, Context, Reply, Volatile};
use crate::error::Error;
use crate::journal;
use crate::nvm::Nvm;
use crate::personalize;
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

/// Whether the card can work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Personalized and consistent.
    Ready,
    /// No personalized image of this layout: every command gets `6F 00`.
    Unformatted,
    /// An NVM access failed (power lost, or a damaged journal): every command gets `6F 00` until
    /// the next power-on (or warm reset) recovers.
    Halted,
}

/// The card: file system, USIM and ISIM over one NVM.
pub struct Uicc<N: Nvm> {
    nvm: N,
    transport: Transport,
    state: State,
    vol: Volatile,
    pending: PendingResponse,
    #[cfg(any(test, feature = "testing"))]
    defect: Option<crate::testing::Defect>,
}

impl<N: Nvm> Uicc<N> {
    /// Write the initial image of a card with this personalization into `nvm` (at least
    /// [`NVM_SIZE`](crate::NVM_SIZE) bytes; any previous content is replaced).
    ///
    /// `OutOfRange` if the store is too small or a field does not fit its EF (see
    /// [`Personalization::validate`] for which).
    pub fn personalize(nvm: &mut N, p: &Personalization<'_>) -> Result<(), NvmError> {
        personalize::format(nvm, p)
    }

    /// Cold reset: recover any interrupted transaction and start with no file selected and no PIN verified.
    pub fn power_on(nvm: N) -> Self {
        let mut card = Uicc {
            nvm,
            transport: Transport::default(),
            state: State::Unformatted,
            vol: Volatile::RESET,
            pending: PendingResponse::default(),
            #[cfg(any(test, feature = "testing"))]
            defect: None,
        };
        card.boot();
        card
    }

    fn boot(&mut self) {
        self.state = if !personalize::is_formatted(&self.nvm) {
            State::Unformatted
        } else if journal::recover(&mut self.nvm).is_ok() {
            State::Ready
        } else {
            State::Halted
        };
    }

    /// The answer-to-reset.
    pub fn atr(&self) -> &'static [u8] {
        ATR
    }

    /// Warm reset: volatile state (selection, PIN verified) cleared; a card halted by an NVM
    /// failure tries to recover.
    pub fn reset(&mut self) {
        self.vol = Volatile::RESET;
        self.pending.clear();
        if self.state == State::Halted {
            self.boot();
        }
    }

    /// Choose how case-4 responses are returned.
    pub fn set_transport(&mut self, transport: Transport) {
        self.transport = transport;
    }

    /// The transport in use.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Whether the NVM holds a personalized image the card can work with.
    pub fn is_personalized(&self) -> bool {
        self.state != State::Unformatted
    }

    /// Process one command APDU; write data and status word into `response` (at least
    /// [`RESPONSE_MAX`] bytes) and return the length written. Never panics.
    ///
    /// A `response` too small for the data gets `6F 00` alone; one shorter than 2 bytes gets nothing.
    pub fn process(&mut self, command: &[u8], response: &mut [u8]) -> usize {
        let mut reply = Reply::new();
        let status = self.respond(command, &mut reply);
        let out = if response.len() >= reply.len() + 2 {
            apdu::Response { data: &reply, status }
        } else {
            apdu::Response { data: &[], status: Status::NoPreciseDiagnosis }
        };
        out.encode(response).unwrap_or(0)
    }

    fn respond(&mut self, bytes: &[u8], reply: &mut Reply) -> Status {
        if self.state != State::Ready {
            return Status::NoPreciseDiagnosis;
        }
        let parsed = apdu::Command::parse(bytes)
            .map_err(|e| e.status())
            .and_then(|apdu| Command::try_from(&apdu).map(|command| (apdu, command)));
        let (apdu, command) = match parsed {
            Ok(parsed) => parsed,
            Err(status) => {
                self.pending.clear();
                return status;
            }
        };
        let get_response = matches!(command, Command::GetResponse(_));
        if !get_response {
            self.pending.clear();
        }
        let channel = crate::command::channel_of(apdu.cla);
        if !self.vol.is_open(channel) {
            return Status::LogicalChannelNotSupported;
        }
        self.vol.enter(channel);
        let mut ctx = Context {
            nvm: &mut self.nvm,
            vol: &mut self.vol,
            pending: &mut self.pending,
            #[cfg(any(test, feature = "testing"))]
            defect: self.defect,
        };
        let result = command.exec(&mut ctx, reply);
        self.vol.leave();
        match result {
            Ok(status) if get_response => status,
            Ok(_) => self.deliver(&apdu, reply),
            Err(e) => {
                reply.clear();
                if e == Error::MemoryProblem {
                    self.state = State::Halted;
                }
                e.into()
            }
        }
    }

    /// Fit the data of a successful command to the transport and to Le:
    /// - T=0, case 4 (command data sent): keep the data, answer `61 xx`.
    /// - Le absent, or Le at most the data available: that much data, `90 00`.
    /// - Le larger than the data: T=0 answers `6C xx` with the exact length; otherwise the data
    ///   goes out with `62 82` (end of file reached before Le bytes), or with `90 00` when Le was
    ///   `00` / `00 00`, which asks for "all available" (ISO/IEC 7816-4 §5.1).
    fn deliver(&mut self, apdu: &apdu::Command<'_>, reply: &mut Reply) -> Status {
        let available = reply.len();
        if available == 0 {
            return Status::Ok;
        }
        if self.transport == Transport::T0 && !apdu.data.is_empty() {
            self.pending.store(reply);
            reply.clear();
            return Status::BytesAvailable(length_byte(available));
        }
        let Some(ne) = apdu.ne else { return Status::Ok };
        if ne <= available {
            reply.truncate(ne);
            return Status::Ok;
        }
        if self.transport == Transport::T0 && !apdu.extended {
            reply.clear();
            return Status::WrongLe(length_byte(available));
        }
        let all_available = ne == if apdu.extended { EXTENDED_NE_MAX } else { SHORT_NE_MAX };
        if all_available { Status::Ok } else { Status::EndOfFile }
    }

    /// Plant a deliberate defect (feature `testing`): the card then misbehaves as
    /// [`Defect`](crate::testing::Defect) says, to prove a test suite catches it. `None` repairs it.
    #[cfg(any(test, feature = "testing"))]
    pub fn plant_defect(&mut self, defect: Option<crate::testing::Defect>) {
        self.defect = defect;
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
