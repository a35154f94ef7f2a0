//! The one error type of the reader crate (PC/SC, emulator, vpcd, traces, profiles).

use apdu::{ApduError, Status};

use crate::profile::ProfileError;

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong between the ME and a card.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `SCardEstablishContext` failed because no PC/SC daemon answers.
    #[error("no PC/SC service: is pcscd running?")]
    NoService,
    /// The PC/SC service knows no reader at all.
    #[error("no PC/SC reader found (plug one in, or start pcscd with the vsmartcard vpcd driver)")]
    NoReaders,
    /// No reader name contains the substring asked for.
    #[error("no reader matches '{wanted}'; readers: {}", list(available))]
    NoSuchReader {
        /// The substring asked for.
        wanted: String,
        /// The readers present.
        available: Vec<String>,
    },
    /// The reader index asked for is past the end of the list.
    #[error("no reader with index {index}; readers: {}", list(available))]
    ReaderIndexOutOfRange {
        /// The index asked for.
        index: usize,
        /// The readers present.
        available: Vec<String>,
    },
    /// The reader has no card (or the card was removed).
    #[error("no card in reader '{reader}'")]
    NoCard {
        /// The reader's name.
        reader: String,
    },
    /// Any other PC/SC failure.
    #[error("PC/SC {operation} on '{reader}' failed: {source}")]
    Pcsc {
        /// The PC/SC call that failed.
        operation: &'static str,
        /// The reader's name (empty for context-wide calls).
        reader: String,
        /// The PC/SC error.
        source: pcsc::Error,
    },
    /// A command was sent to a card that is powered off.
    #[error("the card in '{reader}' is powered off: power it on first")]
    NotPowered {
        /// The reader's name.
        reader: String,
    },
    /// The command bytes are no valid ISO/IEC 7816-4 command APDU.
    #[error("malformed command APDU {apdu}: {reason}")]
    MalformedCommand {
        /// The command as hex.
        apdu: String,
        /// What is wrong with it.
        reason: ApduError,
    },
    /// A hex string could not be decoded.
    #[error("invalid hex '{input}': {reason}")]
    Hex {
        /// The offending input.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The card or reader returned fewer than the two status bytes.
    #[error("response of {len} byte(s) has no status word (SW1 SW2)")]
    ShortResponse {
        /// The length received.
        len: usize,
    },
    /// The card kept answering `61 xx` past any sensible response length.
    #[error("card still answers 61xx after {rounds} GET RESPONSE commands ({bytes} bytes so far)")]
    GetResponseLoop {
        /// GET RESPONSE commands sent.
        rounds: usize,
        /// Response bytes collected.
        bytes: usize,
    },
    /// The card answered `6C xx` again to a command already re-issued with its Le.
    #[error("card answered {second:04X} to a command re-issued after 6C{first:02X}")]
    WrongLeLoop {
        /// The Le the card asked for first.
        first: u8,
        /// The status word of the re-issued command.
        second: u16,
    },
    /// A command did not end with the status word expected.
    #[error("{command} answered {status}")]
    UnexpectedStatus {
        /// The command.
        command: &'static str,
        /// What the card answered.
        status: Status,
    },
    /// The emulator's card-state file could not be locked, read, written, or was refused.
    #[error(transparent)]
    State(#[from] statefile::Error),
    /// The card's NVM refused an access during personalization.
    #[error("card NVM: {0}")]
    Nvm(&'static str),
    /// The subscriber profile is invalid.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// A trace output (file or socket) failed.
    #[error("APDU trace output: {0}")]
    Trace(#[source] std::io::Error),
    /// Any other I/O failure (vpcd socket, address resolution).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn list(names: &[String]) -> String {
    if names.is_empty() { "(none)".to_owned() } else { names.join(", ") }
}

impl Error {
    pub(crate) fn pcsc(operation: &'static str, reader: &str, source: pcsc::Error) -> Self {
        match source {
            pcsc::Error::NoService | pcsc::Error::ServiceStopped => Error::NoService,
            pcsc::Error::NoReadersAvailable => Error::NoReaders,
            pcsc::Error::NoSmartcard | pcsc::Error::RemovedCard => {
                Error::NoCard { reader: reader.to_owned() }
            }
            source => Error::Pcsc { operation, reader: reader.to_owned(), source },
        }
    }
}
