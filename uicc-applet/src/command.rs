//! The commands of TS 102 221 §10.1.2 (Table 10.5) that the card implements, parsed once from the
//! APDU into a closed enum, then executed. One module per family: [`file`] (SELECT, STATUS,
//! READ/UPDATE BINARY and RECORD), [`pin`] (VERIFY, CHANGE PIN, UNBLOCK PIN), [`get_response`]
//! (T=0), [`channel`] (MANAGE CHANNEL), and AUTHENTICATE of TS 31.102 §7.1 in [`authenticate`].

pub(crate) mod authenticate;
pub(crate) mod channel;
pub(crate) mod file;
pub(crate) mod get_response;
pub(crate) mod pin;

use apdu::Status;

use crate::error::Error;
use crate::fs::{App, Df, Ef};
use crate::nvm::Nvm;

use get_response::PendingResponse;

/// Largest response data field the card builds (short Le).
pub(crate) const REPLY_MAX: usize = 256;

/// Response data under construction.
pub(crate) type Reply = heapless::Vec<u8, REPLY_MAX>;

/// Instruction bytes (TS 102 221 §10.1.2, Table 10.5).
pub(crate) mod ins {
    /// SELECT.
    pub const SELECT: u8 = 0xA4;
    /// STATUS.
    pub const STATUS: u8 = 0xF2;
    /// READ BINARY.
    pub const READ_BINARY: u8 = 0xB0;
    /// UPDATE BINARY.
    pub const UPDATE_BINARY: u8 = 0xD6;
    /// READ RECORD.
    pub const READ_RECORD: u8 = 0xB2;
    /// UPDATE RECORD.
    pub const UPDATE_RECORD: u8 = 0xDC;
    /// VERIFY PIN.
    pub const VERIFY: u8 = 0x20;
    /// CHANGE PIN.
    pub const CHANGE_PIN: u8 = 0x24;
    /// UNBLOCK PIN.
    pub const UNBLOCK_PIN: u8 = 0x2C;
    /// MANAGE CHANNEL.
    pub const MANAGE_CHANNEL: u8 = 0x70;
    /// GET RESPONSE.
    pub const GET_RESPONSE: u8 = 0xC0;
    /// AUTHENTICATE, EVEN and ODD instructions (TS 31.102 §7.1.2).
    pub use uicc_vocab::authenticate::{
        INS_AUTHENTICATE_EVEN as AUTHENTICATE_EVEN, INS_AUTHENTICATE_ODD as AUTHENTICATE_ODD,
    };
}

/// The two command classes of TS 102 221 §10.1.1 the card accepts on the basic channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// `0X`: ISO/IEC 7816-4 interindustry commands.
    Interindustry,
    /// `8X`: commands specific to TS 102 221 (STATUS).
    Proprietary,
}

impl Class {
    /// Decode CLA (TS 102 221 §10.1.1, Table 10.3): `0X` and `8X` carry the logical channel in
    /// b2-b1 (channels 0 to 3, whether open is checked by the card) and secure messaging in b4-b3;
    /// `4X`/`6X`/`CX`/`EX` address channels 4 to 19, which this card does not have.
    fn decode(cla: u8) -> Result<Class, Error> {
        let class = match cla & 0xF0 {
            0x00 => Class::Interindustry,
            0x80 => Class::Proprietary,
            0x40 | 0x60 | 0xC0 | 0xE0 => return Err(Error::LogicalChannelNotSupported),
            _ => return Err(Error::ClaNotSupported),
        };
        if cla & 0x0C != 0 {
            return Err(Error::SecureMessagingNotSupported);
        }
        Ok(class)
    }
}

/// A parsed command. No `Debug` or `PartialEq`: VERIFY and CHANGE PIN carry PIN values,
/// AUTHENTICATE challenges and MIKEY messages.
#[derive(Clone, Copy)]
pub(crate) enum Command<'a> {
    /// SELECT (TS 102 221 §11.1.1).
    Select(file::Select<'a>),
    /// STATUS (TS 102 221 §11.1.2).
    Status(file::StatusCommand),
    /// READ BINARY (TS 102 221 §11.1.3).
    ReadBinary(file::ReadBinary),
    /// UPDATE BINARY (TS 102 221 §11.1.4).
    UpdateBinary(file::UpdateBinary<'a>),
    /// READ RECORD (TS 102 221 §11.1.5).
    ReadRecord(file::ReadRecord),
    /// UPDATE RECORD (TS 102 221 §11.1.6).
    UpdateRecord(file::UpdateRecord<'a>),
    /// VERIFY PIN (TS 102 221 §11.1.9).
    Verify(pin::Verify<'a>),
    /// CHANGE PIN (TS 102 221 §11.1.10).
    ChangePin(pin::ChangePin<'a>),
    /// UNBLOCK PIN (TS 102 221 §11.1.13).
    UnblockPin(pin::UnblockPin<'a>),
    /// MANAGE CHANNEL (TS 102 221 §11.1.17).
    ManageChannel(channel::ManageChannel),
    /// GET RESPONSE (TS 102 221 §12.1.1).
    GetResponse(get_response::GetResponse),
    /// AUTHENTICATE (TS 31.102 §7.1, TS 31.103 §7.1).
    Authenticate(authenticate::Authenticate<'a>),
}

impl<'a> Command<'a> {
    /// Parse an APDU: class, then instruction, then parameters and lengths.
    pub(crate) fn parse(c: &apdu::Command<'a>) -> Result<Self, Error> {
        let class = Class::decode(c.cla)?;
        let expected = match c.ins {
            ins::STATUS => Class::Proprietary,
            ins::SELECT
            | ins::READ_BINARY
            | ins::UPDATE_BINARY
            | ins::READ_RECORD
            | ins::UPDATE_RECORD
            | ins::VERIFY
            | ins::CHANGE_PIN
            | ins::UNBLOCK_PIN
            | ins::MANAGE_CHANNEL
            | ins::GET_RESPONSE
            | ins::AUTHENTICATE_EVEN
            | ins::AUTHENTICATE_ODD => Class::Interindustry,
            _ => return Err(Error::InsNotSupported),
        };
        if class != expected {
            return Err(Error::ClaNotSupported);
        }
        Ok(match c.ins {
            ins::SELECT => Command::Select(file::Select::parse(c)?),
            ins::STATUS => Command::Status(file::StatusCommand::parse(c)?),
            ins::READ_BINARY => Command::ReadBinary(file::ReadBinary::parse(c)?),
            ins::UPDATE_BINARY => Command::UpdateBinary(file::UpdateBinary::parse(c)?),
            ins::READ_RECORD => Command::ReadRecord(file::ReadRecord::parse(c)?),
            ins::UPDATE_RECORD => Command::UpdateRecord(file::UpdateRecord::parse(c)?),
            ins::VERIFY => Command::Verify(pin::Verify::parse(c)?),
            ins::CHANGE_PIN => Command::ChangePin(pin::ChangePin::parse(c)?),
            ins::UNBLOCK_PIN => Command::UnblockPin(pin::UnblockPin::parse(c)?),
            ins::MANAGE_CHANNEL => Command::ManageChannel(channel::ManageChannel::parse(c)?),
            ins::AUTHENTICATE_EVEN | ins::AUTHENTICATE_ODD => {
                Command::Authenticate(authenticate::Authenticate::parse(c)?)
            }
            _ => Command::GetResponse(get_response::GetResponse::parse(c)?),
        })
    }

    /// Execute; response data goes into `reply`. `Ok` carries the status word of a successful
    /// command (`90 00`, or `61 xx` from GET RESPONSE).
    pub(crate) fn exec<N: Nvm>(&self, ctx: &mut Context<'_, N>, reply: &mut Reply) -> Result<Status, Error> {
        match self {
            Command::Select(c) => c.exec(ctx, reply),
            Command::Status(c) => c.exec(ctx, reply),
            Command::ReadBinary(c) => c.exec(ctx, reply),
            Command::UpdateBinary(c) => c.exec(ctx),
            Command::ReadRecord(c) => c.exec(ctx, reply),
            Command::UpdateRecord(c) => c.exec(ctx),
            Command::Verify(c) => c.exec(ctx),
            Command::ChangePin(c) => c.exec(ctx),
            Command::UnblockPin(c) => c.exec(ctx),
            Command::ManageChannel(c) => c.exec(ctx, reply),
            Command::GetResponse(c) => c.exec(ctx, reply),
            Command::Authenticate(c) => c.exec(ctx, reply),
        }
    }
}

impl<'a> TryFrom<&apdu::Command<'a>> for Command<'a> {
    type Error = Status;

    fn try_from(c: &apdu::Command<'a>) -> Result<Self, Status> {
        Command::parse(c).map_err(Status::from)
    }
}

/// Logical channels the card offers: the basic channel 0 and channels 1 to 3 (TS 102 221 §11.1.17).
pub(crate) const CHANNELS: usize = 4;

/// The logical channel a class byte addresses (TS 102 221 §10.1.1): b2-b1 of `0X` / `8X`.
pub(crate) const fn channel_of(cla: u8) -> usize {
    (cla & 0x03) as usize
}

/// What each logical channel has selected (TS 102 221 §8.4.1: every channel has its own current
/// directory, EF and application).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Selection {
    /// Current directory.
    pub current_df: Df,
    /// Current EF.
    pub current_ef: Option<Ef>,
    /// Current application.
    pub current_app: Option<App>,
    /// Record pointer.
    pub record: Option<u8>,
}

impl Selection {
    /// The MF selected, nothing else (after a reset, or on a channel opened from the basic channel).
    pub(crate) const MF: Selection =
        Selection { current_df: Df::Mf, current_ef: None, current_app: None, record: None };
}

/// State that lives only while the card is powered (TS 102 221 §8.4, §9.5): the current
/// directory, EF, application and record of the channel a command runs on, what every open
/// channel has selected, and which PINs have been verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Volatile {
    /// Current directory: the MF or an ADF.
    pub current_df: Df,
    /// Current EF, if any.
    pub current_ef: Option<Ef>,
    /// Current application (what 7FFF stands for).
    pub current_app: Option<App>,
    /// Record pointer of the current EF.
    pub record: Option<u8>,
    /// PIN1 verified since power-on.
    pub pin1_verified: bool,
    /// ADM1 verified since power-on.
    pub adm1_verified: bool,
    /// The selection of each open logical channel (`None`: closed); the basic channel is always
    /// open. While a command runs, its channel's selection is in the fields above.
    pub channels: [Option<Selection>; CHANNELS],
    /// The channel the running command came on.
    pub channel: usize,
}

impl Volatile {
    /// The state after a reset: MF selected, nothing verified, only the basic channel open
    /// (TS 102 221 §8.4, §11.1.17).
    pub(crate) const RESET: Volatile = Volatile {
        current_df: Df::Mf,
        current_ef: None,
        current_app: None,
        record: None,
        pin1_verified: false,
        adm1_verified: false,
        channels: [Some(Selection::MF), None, None, None],
        channel: 0,
    };

    /// Whether `channel` is open.
    pub(crate) fn is_open(&self, channel: usize) -> bool {
        matches!(self.channels.get(channel), Some(Some(_)))
    }

    /// The selection of the running command's channel.
    pub(crate) fn selection(&self) -> Selection {
        Selection {
            current_df: self.current_df,
            current_ef: self.current_ef,
            current_app: self.current_app,
            record: self.record,
        }
    }

    /// Make `channel`'s selection the current one, for a command on that channel.
    pub(crate) fn enter(&mut self, channel: usize) {
        let s = self.channels.get(channel).copied().flatten().unwrap_or(Selection::MF);
        self.current_df = s.current_df;
        self.current_ef = s.current_ef;
        self.current_app = s.current_app;
        self.record = s.record;
        self.channel = channel;
    }

    /// Keep the current selection as `channel`'s, unless the command closed that channel.
    pub(crate) fn leave(&mut self) {
        let selection = self.selection();
        if let Some(Some(s)) = self.channels.get_mut(self.channel) {
            *s = selection;
        }
    }
}

/// What a command may touch while it executes.
pub(crate) struct Context<'c, N: Nvm> {
    /// The card's persistent memory.
    pub nvm: &'c mut N,
    /// Selection and security state.
    pub vol: &'c mut Volatile,
    /// Response data waiting for GET RESPONSE.
    pub pending: &'c mut PendingResponse,
    /// A defect planted for a test (feature `testing`).
    #[cfg(any(test, feature = "testing"))]
    pub defect: Option<crate::testing::Defect>,
}

/// Whether the defect `$d` of [`crate::testing::Defect`] is planted in the card running `$ctx`;
/// always `false` in a card built without the `testing` feature.
macro_rules! planted {
    ($ctx:expr, $d:ident) => {{
        #[cfg(any(test, feature = "testing"))]
        let planted = $ctx.defect == Some($crate::testing::Defect::$d);
        #[cfg(not(any(test, feature = "testing")))]
        let planted = {
            let _ = &$ctx;
            false
        };
        planted
    }};
}
pub(crate) use planted;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(bytes: &[u8]) -> Result<Command<'_>, Status> {
        let apdu = apdu::Command::parse(bytes).map_err(|e| e.status())?;
        Command::try_from(&apdu)
    }

    #[test]
    fn class_byte_is_checked_before_the_instruction() {
        let err = |bytes: &[u8]| parse(bytes).err();
        assert_eq!(err(&[0xA0, 0xA4, 0, 0, 2, 0x3F, 0]), Some(Status::ClaNotSupported));
        assert_eq!(err(&[0x41, 0xB0, 0, 0, 1]), Some(Status::LogicalChannelNotSupported));
        assert_eq!(err(&[0x0C, 0xB0, 0, 0, 1]), Some(Status::SecureMessagingNotSupported));
        assert_eq!(err(&[0x00, 0x99, 0, 0]), Some(Status::InsNotSupported));
        assert_eq!(err(&[0x80, 0xA4, 0, 0, 2, 0x3F, 0]), Some(Status::ClaNotSupported));
        assert_eq!(err(&[0x00, 0xF2, 0, 0, 0]), Some(Status::ClaNotSupported));
        assert!(matches!(parse(&[0x80, 0xF2, 0, 0, 0]), Ok(Command::Status(_))));
        assert!(matches!(parse(&[0x01, 0xA4, 0, 0x0C, 2, 0x3F, 0]), Ok(Command::Select(_))));
        assert!(matches!(parse(&[0x00, 0x70, 0, 0, 1]), Ok(Command::ManageChannel(_))));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse(&bytes);
        }
    }
}
