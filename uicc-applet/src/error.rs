//! Card-internal errors and the status words they become at the APDU boundary (TS 102 221 §10.2.1,
//! ISO/IEC 7816-4 §5.6).

use apdu::Status;

use crate::nvm::NvmError;
use crate::open_values;

/// Why a command was not (fully) executed. Converted to a status word only at the APDU edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Error {
    /// `67 00`: Lc, Le or the data length does not fit the command.
    WrongLength,
    /// `6C xx`: Le does not match the data available (T=0); xx is the exact length (`00` = 256).
    WrongLe(u8),
    /// `6E 00`: class byte not supported, or not valid with this instruction.
    ClaNotSupported,
    /// `6D 00`: instruction not supported.
    InsNotSupported,
    /// `68 81`: a logical channel other than the basic channel 0.
    LogicalChannelNotSupported,
    /// `6A 81`: MANAGE CHANNEL OPEN with every logical channel in use.
    NoChannelAvailable,
    /// `68 82`: the class byte announces secure messaging.
    SecureMessagingNotSupported,
    /// `6A 86`: P1 or P2 not valid for the instruction.
    IncorrectP1P2,
    /// `6B 00`: offset in P1-P2 outside the transparent EF.
    OffsetOutsideFile,
    /// `6A 82`: file or application not found.
    FileNotFound,
    /// `6A 83`: record not found.
    RecordNotFound,
    /// `69 86`: command needs a current EF and none is selected.
    NoEfSelected,
    /// `69 81`: command incompatible with the file structure (e.g. READ BINARY on a record EF).
    IncompatibleFileStructure,
    /// `69 82`: access condition not fulfilled.
    SecurityStatusNotSatisfied,
    /// `69 83`: the PIN is blocked (no tries left).
    PinBlocked,
    /// `63 Cx`: verification failed, x tries left. The try counter in NVM has gone down.
    VerifyFailed(u8),
    /// `6A 88`: referenced data (key reference) not found.
    ReferencedDataNotFound,
    /// `6A 80`: incorrect data field (e.g. a PIN not coded as TS 102 221 §9.5.1 requires).
    IncorrectData,
    /// `6F 00`: GET RESPONSE with no response pending (TS 102 221 §12.1.1.1), card not
    /// personalized, or internal inconsistency.
    TechnicalProblem,
    /// `65 81`: an NVM write failed; the card stops until the next power-on.
    MemoryProblem,
    /// `98 62`: AKA or MIKEY MAC verification failed.
    AuthMacFailure,
    /// `98 63`: the MUK's key lifetime has passed.
    MukExpired,
    /// `98 64`: security context, mode or service not supported by this application.
    ContextNotSupported,
    /// `98 65`: a MIKEY timestamp or MTK ID not above the stored counter (replay, old message).
    KeyFreshness,
    /// `98 66`: no EF.MSK record free for a new Key Domain ID / Key Group.
    NoMskSpace,
    /// `98 67`: no EF.MUK record or Ks_int_NAF slot free.
    NoMukSpace,
    /// `69 85`: conditions of use not satisfied (no Ks, no B-TID or lifetime, no MUK, no application).
    ConditionsNotSatisfied,
    /// `6A 84`: the identifiers do not fit the record that must hold them.
    RecordTooSmall,
}

impl From<Error> for Status {
    fn from(e: Error) -> Status {
        match e {
            Error::WrongLength => Status::WrongLength,
            Error::WrongLe(n) => Status::WrongLe(n),
            Error::ClaNotSupported => Status::ClaNotSupported,
            Error::InsNotSupported => Status::InsNotSupported,
            Error::LogicalChannelNotSupported => Status::LogicalChannelNotSupported,
            Error::NoChannelAvailable => Status::FunctionNotSupported,
            Error::SecureMessagingNotSupported => Status::SecureMessagingNotSupported,
            Error::IncorrectP1P2 => Status::IncorrectP1P2,
            Error::OffsetOutsideFile => Status::WrongP1P2,
            Error::FileNotFound => Status::FileNotFound,
            Error::RecordNotFound => Status::RecordNotFound,
            Error::NoEfSelected => Status::NoEfSelected,
            Error::IncompatibleFileStructure => Status::IncompatibleFileStructure,
            Error::SecurityStatusNotSatisfied => Status::SecurityStatusNotSatisfied,
            Error::PinBlocked => Status::AuthMethodBlocked,
            Error::VerifyFailed(n) => Status::VerifyFailed(n),
            Error::ReferencedDataNotFound => Status::ReferencedDataNotFound,
            Error::IncorrectData => Status::IncorrectData,
            Error::TechnicalProblem => Status::NoPreciseDiagnosis,
            Error::MemoryProblem => Status::MemoryProblem,
            Error::AuthMacFailure => open_values::SW_MAC_FAILURE,
            Error::MukExpired => open_values::SW_MUK_EXPIRED,
            Error::ContextNotSupported => open_values::SW_CONTEXT_NOT_SUPPORTED,
            Error::KeyFreshness => open_values::SW_KEY_FRESHNESS,
            Error::NoMskSpace => open_values::SW_NO_MSK_SPACE,
            Error::NoMukSpace => open_values::SW_NO_MUK_SPACE,
            Error::ConditionsNotSatisfied => open_values::SW_CONDITIONS,
            Error::RecordTooSmall => open_values::SW_RECORD_TOO_SMALL,
        }
    }
}

impl From<NvmError> for Error {
    fn from(e: NvmError) -> Error {
        match e {
            NvmError::PowerLost => Error::MemoryProblem,
            NvmError::OutOfRange => Error::TechnicalProblem,
        }
    }
}
