//! The ME (terminal) of TS 33.246 §6.1 and TS 33.220 §5: GBA_U and GBA_ME clients, the UICC-based and
//! ME-based MBMS key management paths, and the ME key store.
//!
//! | module | what | spec |
//! |---|---|---|
//! | [`bmsc_client`] | registration, deregistration, basic MSK request over HTTP Digest | TS 33.246 §6.3.2, TS 24.109 §5 |
//! | [`card`] | the card over any `sim_reader::Reader`: EF.DIR, PIN1, EF.ICCID/UST/IMSI/AD/IMPI, AUTHENTICATE | TS 102 221, TS 31.102, TS 31.103 |
//! | [`gba_client`] | GBA_U and GBA_ME as the steps of the Ub exchange | TS 33.220 §4.5.2, §5.3.2, Annex G |
//! | [`key_management`] | the [`MbmsKeyManagement`] trait, the path choice from EF.UST | TS 33.246 §6.1, §6.3 |
//! | [`uicc_based`] | MSK Update / MTK Generation / deletions over AUTHENTICATE | TS 31.102 §7.1 |
//! | [`me_based`] | MIKEY verified and stored in the ME | TS 33.246 §6.1, §6.3 |
//! | [`key_store`] | the ME key store: atomic file, ICCID binding, power-down rules | TS 33.246 §6.1 |
//! | [`mbms_receiver`] | SRTP contexts keyed by MTK, MKI = MSK ID ‖ MTK ID | RFC 3711, TS 33.246 |
//! | [`media_keying`] | the offer/answer shape every IMS media key management solution fits | TS 33.328 §7 |
//! | [`mikey_listener`] | MIKEY over UDP on loopback | TS 33.246 §6.3 |
//! | [`sdes`] | SDES offer/answer of an IMS UE, e2e and e2ae scopes | TS 33.328 §7.2, §7.3, RFC 4568 |
//! | [`ims_ue`] | an IMS UE call agent: REGISTER, INVITE / answer, SRTP media, BYE | TS 33.328 §7, RFC 3261 |
//! | [`sip_client`] | IMS-based registration, deregistration, MSK request: INVITE / re-INVITE to the SCF | TS 26.237 §10.4.2, RFC 3261 |
//! | [`ub_client`] | GBA bootstrapping over Ub: HTTP Digest AKA with the BSF | TS 24.109 §4–5, RFC 3310 |
//! | [`report`] | the step report of a UE run (`keysim demo`, `keysim ue`) | TS 33.246 §6 |
//! | [`standalone`] | the standalone UE: one or N UEs against any BSF and BM-SC for a time | TS 33.246 §6 |
//! | [`ue`] | a whole UE: GBA, registration, MSK/MTK over UDP, SRTP, power and card changes | TS 33.246 §6 |
//! | [`open_values`] | the values the specifications leave open, in one place | — |
#![deny(unsafe_code)]
#![warn(missing_docs, clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod bmsc_client;
pub mod card;
mod error;
pub mod gba_client;
mod http_client;
pub mod ims_ue;
pub mod key_management;
pub mod key_store;
pub mod kms;
pub mod mbms_receiver;
pub mod me_based;
pub mod media_keying;
pub mod mikey_listener;
pub mod open_values;
pub mod report;
pub mod sdes;
pub mod sip_client;
pub mod standalone;
pub mod ub_client;
pub mod ue;
pub mod uicc_based;

pub use bmsc_client::{BmscClient, BmscSession, Credentials};
pub use card::{App, Card, ServiceTable};
pub use error::{Error, Result};
pub use gba_client::{BootstrapOutcome, GbaClient, GbaVariant, NafKey, NafKeys};
pub use ims_ue::{Call, CallRun, ImsUe, ImsUeConfig, MediaReport, Registration, run_call};
pub use key_management::{
    KeyManagementPath, MbmsKeyManagement, MikeyKind, MskOutcome, MtkOutcome, choose_path,
};
pub use key_store::{CardChange, KeyStore};
pub use mbms_receiver::{MbmsReceiver, StreamId};
pub use me_based::MeBased;
pub use media_keying::{CallParties, MediaKeying, MediaKeys, SrtpKeying};
pub use mikey_listener::{MikeyEvent, MikeyListener, MikeyStats};
pub use sdes::{SdesKeying, SdesScope};
pub use sip_client::{SipClient, SipConfig};
pub use ub_client::{BootstrapReport, UbClient};
pub use ue::{Signalling, Ue, UeConfig, UeStats};
pub use uicc_based::UiccBased;
