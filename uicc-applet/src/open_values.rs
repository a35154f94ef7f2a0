//! The card's reading of TS 31.102 §7.1 (AUTHENTICATE in the GBA and MBMS contexts), TS 33.220
//! Annex G (GBA_U key storage) and TS 33.246 §6 (MUK/MSK handling, solicited pull) wherever the
//! specifications available to the project leave a value open: every such value is a named constant
//! here, with the clause it comes from, so that it can be corrected in one line.
//!
//! Items marked UNCONFIRMED come from the project's digests of the specifications
//! (`spec/uicc-gba.md`, `spec/mikey-srtp.md`), from the Rel-6 change requests of TS 33.246 (CR 021,
//! CR 027), or from the public implementations the digests cite, not from the normative text.
//!
//! The open values of the card interface itself (the MBMS framing and mode bytes, the solicited-pull
//! marker, EF.MSK and EF.MUK field meanings, the MGV-F rules the ME mirrors) are the vocabulary's:
//! `uicc_vocab::open_values`. Here stays what only this card decides.

use apdu::Status;
use uicc_vocab::authenticate::{P2_GSM_CONTEXT, P2_LOCAL_KEY_CONTEXT, P2_VGCS_CONTEXT};

// ---------------------------------------------------------------------------------------------
// Contexts (TS 31.102 §7.1.2)

/// P2 contexts of the EVEN instruction that TS 31.102 defines but this card does not implement:
/// GSM (`80`) and VGCS/VBS (`82`). They answer `98 64`; any other unknown P2 answers `6A 86`.
pub const P2_EVEN_CONTEXTS_NOT_SUPPORTED: [u8; 2] = [P2_GSM_CONTEXT, P2_VGCS_CONTEXT];
/// P2 contexts of the ODD instruction that TS 31.102 defines but this card does not implement:
/// Local Key Establishment (`86`). It answers `98 64`; any other unknown P2 answers `6A 86`.
pub const P2_ODD_CONTEXTS_NOT_SUPPORTED: [u8; 1] = [P2_LOCAL_KEY_CONTEXT];

// ---------------------------------------------------------------------------------------------
// AKA on the card (TS 33.102 §6.3, Annex C)
//
// The ISIM runs AKA with the USIM's K, OPc and SQN array (`layout::SQN_ARRAY`): one SQN space per
// subscription, so a challenge accepted by one application is stale for the other. TS 31.103
// leaves the key provisioning to the operator; this card has one K. The card's own choice.

/// Whether the AMF of AUTN must equal the personalized AMF (a mismatch then answers `98 62`).
/// TS 33.102 Annex F leaves the AMF's use to the operator and it is covered by the MAC, so the
/// card does not compare it (the stored AMF is what the network side puts into its vectors).
pub const CHECK_AMF: bool = false;

// ---------------------------------------------------------------------------------------------
// GBA_U key storage (TS 33.220 Annex G.2)

/// Ua security protocol identifier a Ks_int_NAF must carry in its NAF_Id to serve as an MBMS MUK
/// (TS 33.220 Annex H.3: `01 00 00 00 01`, MBMS, TS 33.246). Keys derived for other protocols
/// of the same NAF stay separate.
pub const MUK_UA_SECURITY_PROTOCOL_ID: [u8; 5] = gba::UaSecurityProtocolId::MBMS.0;

// ---------------------------------------------------------------------------------------------
// MUK bookkeeping (TS 31.102 §4.2.81; TS 33.246 §6.3)

/// A verified message of MSK Update mode with a MUK not yet in EF.MUK (a MSK delivery or a
/// solicited pull) creates its EF.MUK record, replacing the record of an older MUK of the same
/// BM-SC (TS 31.102 §4.2.81: one MUK per Idi). The card's choice.
pub const SOLICITED_PULL_RECORDS_MUK: bool = true;

// The key lifetime format the card reads is `gba::lifetime`'s (TS 24.109 §4.2: the XML dateTime
// in UTC the BSF sends; a fractional second and a `±hh:mm` offset are accepted too); a lifetime
// the card cannot read refuses NAF derivation (`69 85`). NTP timestamps follow the era rule of
// RFC 4330 §3 (`mikey::NTP_ERA_PIVOT_BIT`), so the card reads 1968 to 2104 unambiguously; which
// timestamps tell the time at all is `uicc_vocab::open_values::TIME_FROM_NTP_UTC_ONLY`.

// ---------------------------------------------------------------------------------------------
// Status words (TS 31.102 §7.3, TS 102 221 §10.2.1; spec digest §2.6 and §6)

/// Authentication error, incorrect MAC: AKA MAC failure (3G, GBA bootstrap) or MIKEY KEMAC
/// failure (MSK Update, MTK Generation).
pub const SW_MAC_FAILURE: Status = Status::AuthIncorrectMac;
/// "Security session or association expired" (TS 31.102 §7.3): the MUK's key lifetime has passed (MSK Update).
pub const SW_MUK_EXPIRED: Status = Status::SecuritySessionExpired;
/// Authentication error, security context not supported: MBMS on the ISIM, an unknown MBMS mode,
/// a context this card does not implement, or the application's service (GBA / MBMS) not available.
pub const SW_CONTEXT_NOT_SUPPORTED: Status = Status::SecurityContextNotSupported;
/// Key freshness failure: a MIKEY timestamp not above the MUK's counter, or an MTK ID not above
/// the MSK's (replay or old message).
pub const SW_KEY_FRESHNESS: Status = Status::KeyFreshnessFailure;
/// Authentication error, no memory space available: every EF.MSK record holds another Key
/// Domain ID / Key Group.
pub const SW_NO_MSK_SPACE: Status = Status::AuthNoMemory;
/// Authentication error, no memory space available in EF.MUK: every EF.MUK record holds the MUK
/// of another BM-SC, or every Ks_int_NAF slot holds a MUK in use.
pub const SW_NO_MUK_SPACE: Status = Status::AuthNoMemoryMuk;
/// Conditions of use not satisfied: no Ks (no bootstrap yet), B-TID or key lifetime not written
/// (or unreadable, or written for another RAND), no Ks_int_NAF matching the MSK message's
/// IDi/IDr, or no application selected.
pub const SW_CONDITIONS: Status = Status::ConditionsNotSatisfied;
/// Referenced data not found: no MSK for the Key Domain ID / MSK ID (MTK Generation), no EF.MSK
/// record for the Key Domain ID / Key Group (MSK Deletion), no EF.MUK record for the MUK ID
/// (MUK Deletion).
pub const SW_NOT_FOUND: Status = Status::ReferencedDataNotFound;
/// Incorrect data: malformed tag or length in the command data, a NAF_Id that is not FQDN ‖ Ua
/// security protocol id, a MIKEY message that does not parse or breaks the MBMS profile.
pub const SW_MALFORMED: Status = Status::IncorrectData;
/// Not enough memory space in the file: NAF_Id and B-TID too long for an EF.GBANL record (or, on
/// the USIM, for an EF.MUK record should the key become a MUK).
pub const SW_RECORD_TOO_SMALL: Status = Status::NotEnoughMemory;
/// Security status not satisfied: PIN1 not verified (TS 31.102 §7.1: AUTHENTICATE needs PIN).
pub const SW_PIN_REQUIRED: Status = Status::SecurityStatusNotSatisfied;
/// Incorrect P1/P2: a P1 other than `P1_EVEN` / `P1_ODD_FIRST_BLOCK`, P2 without b8 or with
/// an RFU context, MBMS with the EVEN or GBA/3G with the ODD instruction.
pub const SW_BAD_P1_P2: Status = Status::IncorrectP1P2;
/// Wrong length: command data of the wrong size for its context.
pub const SW_WRONG_LENGTH: Status = Status::WrongLength;
