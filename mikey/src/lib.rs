//! MIKEY (RFC 3830) with the MBMS profile of TS 33.246 §6.3 and the extensions of RFC 4563 and RFC 6043.
//!
//! Messages are parsed without allocating and built into caller buffers, so the card can use the
//! same code as the ME and the BM-SC.
//!
//! * [`Payload`] — one payload model for RFC 3830, RFC 4563 and RFC 6043; a [`PayloadSet`] says
//!   which payloads a parser accepts.
//! * [`Message`] — a validated, borrowed view of a whole message ([`Message::parse`] for RFC 3830,
//!   [`Message::parse_ticket`] with the MIKEY-TICKET payloads); [`Message::payloads`] iterates its
//!   [`Payload`]s.
//! * [`MessageBuilder`] — writes a header (or the first byte of a payload chain) and appends
//!   payloads into a caller buffer, patching the next-payload bytes; [`MessageBuilder::push_kemac`]
//!   and [`MessageBuilder::push_verification`] add the MAC-protected payloads that end a message.
//! * [`prf`] — the MIKEY PRF and the key-derivation labels.
//! * [`kemac`] — transport keys, AES-CM-128 key data encryption, HMAC-SHA-1-160 MACs.
//! * [`mbms`] — MSK, MTK, solicited-pull and verification messages of TS 33.246.
//! * [`ticket`] — MIKEY-TICKET (RFC 6043) with the 3GPP ticket of TS 33.328; its `exchange`
//!   module (feature `std`) builds and checks the owned messages of the KMS and the IMS UE.
//! * [`describe`] (feature `std`) — a message field by field, verified and decrypted with the
//!   MBMS profile's keys when given, as a tree of named values for printing.
//!
//! The HTTP bodies of MBMS key management live in the `wire` crate.
#![cfg_attr(not(any(feature = "std", test)), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod codec;
#[cfg(feature = "std")]
pub mod describe;
pub mod error;
pub mod kemac;
mod list;
pub mod mbms;
pub mod message;
pub mod payload;
pub mod prf;
pub mod ticket;

pub use error::{Error, ProfileViolation};
pub use kemac::{KemacProtection, TransportKeys};
pub use message::{Message, MessageBuilder, Payloads};
pub use payload::{
    CsIdMap, DataType, EncrAlg, ErrPayload, ErrorNo, GeneralExtension, GenericIdEntries, GenericIdEntry, Hdr,
    Id, IdRole, IdType, Idr, Kemac, KeyData, KeyDataList, KeyId, KeyIdType, KeyIds, KeyType, KeyValidity,
    MacAlg, NTP_ERA_PIVOT_BIT, NTP_UNIX_OFFSET, Payload, PayloadSet, PayloadType, ProtType, Rand,
    SecurityPolicy, SpParam, SpParams, SrtpIdEntries, SrtpIdEntry, Timestamp, Verification, ntp_era_seconds,
    ntp_from_unix,
};
pub use prf::PrfFunc;
