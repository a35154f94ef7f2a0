//! Media plane key management of an IMS session (TS 33.328 §7.2, §7.3): what the SDP offer and
//! answer carry, and the SRTP master keys (RFC 3711 §8) each end uses afterwards.
//!
//! Every key management solution of TS 33.328 fits one shape: the offerer puts media-level
//! attributes into its SDP offer (`a=crypto` lines for SDES, RFC 4568; one `a=key-mgmt:mikey`
//! line for MIKEY-TICKET, RFC 4567 / RFC 6043), the answerer reads them and answers with its own,
//! and the offerer completes from the answer. Afterwards each side knows the master key it
//! protects its own media with and the one it checks the peer's media with.

use srtp::{CryptoSuite, MasterKey};

/// One direction's SRTP parameters.
#[derive(Clone)]
pub struct SrtpKeying {
    /// The crypto suite.
    pub suite: CryptoSuite,
    /// Master key, master salt and MKI (empty: no MKI).
    pub master: MasterKey,
    /// Key derivation rate (0, or 2^t; RFC 3711 §4.3.1).
    pub kdr: u64,
}

impl std::fmt::Debug for SrtpKeying {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrtpKeying")
            .field("suite", &self.suite)
            .field("mki_len", &self.master.mki.len())
            .field("kdr", &self.kdr)
            .finish_non_exhaustive()
    }
}

/// The SRTP keys one end of a session holds once offer and answer are done.
#[derive(Debug, Clone)]
pub struct MediaKeys {
    /// What this end protects its outgoing media with.
    pub send: SrtpKeying,
    /// What this end checks and decrypts the peer's media with.
    pub recv: SrtpKeying,
}

/// Who takes part in the session, as the SIP request names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallParties {
    /// The offerer's public identity (the From URI of the INVITE, e.g. `sip:alice@ims.example`).
    pub caller: String,
    /// The answerer's public identity (the To URI of the INVITE).
    pub callee: String,
    /// The SIP Call-ID.
    pub call_id: String,
}

/// One media plane key management solution, seen from one IMS UE.
///
/// Attribute lines are given without the leading `a=` (e.g. `crypto:1 AES_CM_128_HMAC_SHA1_80
/// inline:...` or `key-mgmt:mikey ...`); the SDP layer puts them into the media description.
pub trait MediaKeying {
    /// The solution's name as shown to users (`sdes-e2e`, `sdes-e2ae`, `kms`).
    fn name(&self) -> &'static str;
    /// Offerer: the attributes the SDP offer carries.
    fn offer(&mut self, call: &CallParties) -> crate::Result<Vec<String>>;
    /// Answerer: the attributes of the received offer in, the answer's attributes and this end's
    /// keys out. An offer this end cannot accept is an error (the caller answers 488).
    fn answer(&mut self, call: &CallParties, offer: &[String]) -> crate::Result<(Vec<String>, MediaKeys)>;
    /// Offerer: the attributes of the received answer in, this end's keys out.
    fn complete(&mut self, call: &CallParties, answer: &[String]) -> crate::Result<MediaKeys>;
}
