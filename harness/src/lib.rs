//! Harness libraries that drive the whole system: the differential validation of the two MBMS
//! key-management paths of TS 33.246 §6.1 ([`differential`]) and the set-up both paths share
//! ([`paths`]); the power-cut campaign over the card's NVM and the ME key store ([`tearing`]); many
//! UEs against BM-SCs on loopback ([`scale`]); one `keysim serve` process against a `keysim ue
//! --ues N` process ([`servebench`]); the network figures of MBMS security end to end
//! ([`netbench`]); the SRTP figures of `keysim bench` beside libsrtp, webrtc-srtp and OpenSSL
//! ([`srtpbench`]) and the emulated card's command rates ([`cardbench`]), on this thread's CPU
//! clock ([`timing`]).
//!
//! The binary only parses arguments and prints; what runs lives here, with its tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod card_setup;
pub mod cardbench;
pub mod differential;
pub mod netbench;
pub mod paths;
pub mod scale;
pub mod servebench;
pub mod srtpbench;
pub mod tearing;
pub mod timing;

/// The one error type of the harness.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ME (either path) failed where the harness expected it to work.
    #[error(transparent)]
    Me(#[from] me::Error),
    /// The card reader failed.
    #[error(transparent)]
    Reader(#[from] sim_reader::Error),
    /// The simulated BM-SC could not build a message.
    #[error("BM-SC: {0}")]
    Bmsc(String),
    /// A file or socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// What the harness was doing when a lower layer failed, and that failure.
    #[error("{what}")]
    Context {
        /// What the harness was doing.
        what: String,
        /// The failure.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A lower layer's error, as it is.
    #[error(transparent)]
    Lower(Box<dyn std::error::Error + Send + Sync + 'static>),
    /// Anything else, said in words.
    #[error("{0}")]
    Other(String),
}

impl From<network::bmsc_stream::StreamError> for Error {
    fn from(e: network::bmsc_stream::StreamError) -> Self {
        Error::Bmsc(format!("{e:?}"))
    }
}

impl Error {
    /// A lower layer's error, as it is ([`Error::Lower`]).
    pub fn lower(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Lower(Box::new(e))
    }

    /// The error and its causes joined by ": ", leaving out a cause whose text the message before
    /// it already ends with (errors that print their source themselves would say it twice).
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            let part = c.to_string();
            if !text.ends_with(&part) {
                text.push_str(": ");
                text.push_str(&part);
            }
            cause = c.source();
        }
        text
    }
}

/// Result with the harness's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Says what the harness was doing when a lower layer failed ([`Error::Context`]).
pub trait Context<T> {
    /// The failure, with `what` in front.
    fn context(self, what: impl std::fmt::Display) -> Result<T>;
    /// The failure, with the text `what` makes in front (made only on failure).
    fn with_context<S: std::fmt::Display>(self, what: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl std::fmt::Display) -> Result<T> {
        self.map_err(|e| Error::Context { what: what.to_string(), source: Box::new(e) })
    }

    fn with_context<S: std::fmt::Display>(self, what: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error::Context { what: what().to_string(), source: Box::new(e) })
    }
}

/// Returns early with [`Error::Other`] made by `format!`.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::Error::Other(format!($($arg)*)))
    };
}

/// Returns early with [`Error::Other`] made by `format!` unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => {
        if !$cond {
            $crate::bail!($($arg)*);
        }
    };
}

pub(crate) use {bail, ensure};
