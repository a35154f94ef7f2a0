//! The card's reading of TS 31.102 §7.1 (AUTHENTICATE in the GBA and MBMS contexts), TS 33.220
//! Annex G (GBA_U key storage) and TS 33.246 §6 (MUK/MSK handling, solicited pull) wherever the
//! specifications available to the project leave a value open: every such value is a named constant
//! here, with the clause it comes from, so that it can be corrected in one line.
//!
//! Items marked UNCONFIRMED come from the project's digests of the specifications
//! (`spec/uicc-gba.md`, `spec/mikey-srtp.md`), from the Rel-6 change requests of TS 33.246 (CR 021,
//! CR 027), or from the public implementations the digests cite, not from the normative text.

use apdu::Status;

// ---------------------------------------------------------------------------------------------
// Command framing (TS 31.102 §7.1.2)

/// P2 b8: "specific reference data" (TS 31.102 Table 7.1.2-1); every AUTHENTICATE context sets it.
pub const P2_SPECIFIC_REFERENCE: u8 = 0x80;
/// P2 of the 3G security context (TS 31.102 Table 7.1.2-1).
pub const P2_3G_CONTEXT: u8 = 0x81;
/// P2 of the GBA security context (TS 31.102 Table 7.1.2-1).
pub const P2_GBA_CONTEXT: u8 = 0x84;
/// P2 of the MBMS security context, ODD instruction only (TS 31.102 Table 7.1.2-2).
pub const P2_MBMS_CONTEXT: u8 = 0x85;
/// P2 contexts of the EVEN instruction that TS 31.102 defines but this card does not implement:
/// GSM (`80`) and VGCS/VBS (`82`). They answer `98 64`; any other unknown P2 answers `6A 86`.
pub const P2_EVEN_CONTEXTS_NOT_SUPPORTED: [u8; 2] = [0x80, 0x82];
/// P2 contexts of the ODD instruction that TS 31.102 defines but this card does not implement:
/// Local Key Establishment (`86`). It answers `98 64`; any other unknown P2 answers `6A 86`.
pub const P2_ODD_CONTEXTS_NOT_SUPPORTED: [u8; 1] = [0x86];
/// P1 of the EVEN instruction (TS 31.102 §7.1.2).
pub const P1_EVEN: u8 = 0x00;
/// P1 of the ODD instruction: "first block of authentication data" (TS 31.101 block chaining;
/// `KFirstBlockOfAuthenticationData = 0x80` of the Nokia Symbian modem TSY,
/// adaptationlayer/tsy/nokiatsy_dll/src/cmmcustommesshandler.cpp). The card takes every MBMS
/// command as one block (extended APDUs carry long MIKEY messages), never answers `62 F3`, and
/// refuses other P1 values (`6A 86`).
pub const P1_ODD_FIRST_BLOCK: u8 = 0x80;

/// Tag of a 3G challenge/response when successful (TS 31.102 §7.1.2.1).
pub const TAG_SUCCESS: u8 = 0xDB;
/// Tag of a synchronisation failure (TS 31.102 §7.1.2.1).
pub const TAG_SYNC_FAILURE: u8 = 0xDC;
/// GBA security context, Bootstrapping Mode (TS 31.102 §7.1.2.3).
pub const TAG_GBA_BOOTSTRAPPING: u8 = 0xDD;
/// GBA security context, NAF Derivation Mode (TS 31.102 §7.1.2.4).
pub const TAG_GBA_NAF_DERIVATION: u8 = 0xDE;
/// The BER-TLV object that wraps non-BER-TLV authentication data of the ODD instruction
/// (TS 31.102 §7.1.2; MBMS uses it per the Nokia TSY `KMBMSDataObjectTag`).
pub const TAG_MBMS_DATA: u8 = 0x53;

/// MBMS mode byte "MSK Update" (TS 31.102 §7.1.1.6 in Rel-6 numbering): `KMskUpdateMode = 0x01`
/// of the Nokia Symbian modem TSY (cmmcustommesshandler.cpp), which builds these commands.
pub const MODE_MSK_UPDATE: u8 = 0x01;
/// MBMS mode byte "MTK Generation": `KMtkGenerationMode = 0x02` of the Nokia Symbian modem TSY.
pub const MODE_MTK_GENERATION: u8 = 0x02;
/// MBMS mode byte "MSK Deletion": `KMskDeletionMode = 0x03` of the Nokia Symbian modem TSY.
pub const MODE_MSK_DELETION: u8 = 0x03;
/// MBMS mode byte "MUK Deletion". UNCONFIRMED (TS 31.102 §7.1.1.9): the Nokia TSY defines 01 to
/// 03 only; `04` is the next value. Sources tried: Nokia TSY, Symbian etelmm docs, pySim.
pub const MODE_MUK_DELETION: u8 = 0x04;

/// Length of the Key Group part of an MSK ID in MSK Deletion mode data (TS 31.102 §4.2.80).
pub const KEY_GROUP_LEN: usize = 2;
/// First byte of the solicited-pull answer after `DB`: `00` cannot begin a MIKEY message (whose
/// version byte is `01`), so the ME tells "run a basic MSK request" (TS 33.246 §6.3.2.2.4) apart
/// from an MSK Update answer. This card's own convention, written into `docs/card-interface.md`.
pub const SOLICITED_PULL_MARKER: u8 = 0x00;

// ---------------------------------------------------------------------------------------------
// Services (TS 31.102 §4.2.8 EF.UST, TS 31.103 §4.2.7 EF.IST)

/// USIM service n°27, "GSM Access": when available, the 3G context also returns Kc
/// (TS 31.102 §7.1.2.1).
pub const UST_GSM_ACCESS: u16 = 27;
/// USIM service n°68, GBA.
pub const UST_GBA: u16 = 68;
/// USIM service n°69, MBMS security.
pub const UST_MBMS_SECURITY: u16 = 69;
/// ISIM service n°2, GBA.
pub const IST_GBA: u16 = 2;

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
pub const MUK_UA_SECURITY_PROTOCOL_ID: [u8; 5] = [0x01, 0x00, 0x00, 0x00, 0x01];

// ---------------------------------------------------------------------------------------------
// MUK and MSK bookkeeping (TS 31.102 §4.2.80, §4.2.81; TS 33.246 §6.3)

/// Length of the EF.MUK Time Stamp Counter (tag `81`): the full 64-bit MIKEY timestamp value
/// (RFC 3830 §6.6; a COUNTER is zero-padded). UNCONFIRMED: TS 31.102 §4.2.81 says "as in
/// TS 33.246".
pub const MUK_TS_LEN: usize = 8;
/// Tag of the MUK ID template in EF.MUK and in MUK Deletion mode data (TS 31.102 §4.2.81).
pub const TAG_MUK_ID: u8 = 0xA0;
/// Tag of MUK Idr (the B-TID) inside the MUK ID (TS 31.102 §4.2.81).
pub const TAG_MUK_IDR: u8 = 0x80;
/// Tag of MUK Idi (the BM-SC FQDN) inside the MUK ID (TS 31.102 §4.2.81).
pub const TAG_MUK_IDI: u8 = 0x82;
/// Tag of the Time Stamp Counter in EF.MUK (TS 31.102 §4.2.81).
pub const TAG_MUK_TS: u8 = 0x81;
/// Tag of NAF_Id in EF.GBANL (TS 31.102 §4.2.83).
pub const TAG_GBANL_NAF_ID: u8 = 0x80;
/// Tag of B-TID in EF.GBANL (TS 31.102 §4.2.83).
pub const TAG_GBANL_B_TID: u8 = 0x81;
/// Most MSKs kept per Key Domain ID and Key Group; a further one deletes the older
/// (TS 33.246 §6.3.2.1 as changed by CR 021; TS 31.102 §4.2.80).
pub const MSKS_PER_KEY_GROUP: usize = 2;
/// What the 4-byte Time Stamp Counter of an EF.MSK (MSK ID, TS) pair holds: the MTK ID of the
/// last MTK accepted under that MSK, which MTK Generation requires to grow (MGV-F, TS 33.246
/// §6.3.3). UNCONFIRMED: TS 31.102 §4.2.80 names the field "Time Stamp Counter"; the digest
/// (spec/mikey-srtp.md §2.4) reads the MTK freshness rule as "MTK ID greater than the stored one".
pub const MSK_TS_IS_MTK_ID: bool = true;
/// A freshly delivered MSK accepts any MTK ID, 0 included, for its first MTK; later MTKs need a
/// greater MTK ID. The card's choice (an internal flag, not visible in EF.MSK, records the first).
pub const FIRST_MTK_ID_ANY: bool = true;
/// A MUK whose key lifetime has passed is still accepted to verify a solicited pull (MSK ID with
/// key number 0, no key data) when it is the most recently used MUK of that BM-SC, i.e. the one
/// EF.MUK names for the message's IDi (TS 33.246 §6.1 and §6.3.2.2.4 as changed by CR 027 and
/// CR 021: "the ME shall store the last successfully used MUK ... to authenticate the first MIKEY
/// message of a push solicited pull procedure"). It is accepted for nothing else.
pub const EXPIRED_MUK_FOR_SOLICITED_PULL: bool = true;
/// A verified message of MSK Update mode with a MUK not yet in EF.MUK (a MSK delivery or a
/// solicited pull) creates its EF.MUK record, replacing the record of an older MUK of the same
/// BM-SC (TS 31.102 §4.2.81: one MUK per Idi). The card's choice.
pub const SOLICITED_PULL_RECORDS_MUK: bool = true;

// ---------------------------------------------------------------------------------------------
// Time (TS 33.220 §4.5.2 key lifetime; RFC 3830 §6.6 NTP timestamps)

// The key lifetime format the card reads is `gba::lifetime`'s (TS 24.109 §4.2: the XML dateTime
// in UTC the BSF sends; a fractional second and a `±hh:mm` offset are accepted too); a lifetime
// the card cannot read refuses NAF derivation (`69 85`). NTP timestamps follow the era rule of
// RFC 4330 §3 (`mikey::NTP_ERA_PIVOT_BIT`), so the card reads 1968 to 2104 unambiguously.
/// Only an NTP-UTC timestamp (RFC 3830 type 0) tells the card the time. An NTP timestamp of
/// unknown zone (type 1) and a COUNTER (type 2) mean "time unknown": the MUK is not expired.
/// UNCONFIRMED: TS 33.246 profiles the MIKEY timestamp of MSK messages; the card has no clock.
pub const TIME_FROM_NTP_UTC_ONLY: bool = true;

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
/// Incorrect P1/P2: a P1 other than [`P1_EVEN`] / [`P1_ODD_FIRST_BLOCK`], P2 without b8 or with
/// an RFU context, MBMS with the EVEN or GBA/3G with the ODD instruction.
pub const SW_BAD_P1_P2: Status = Status::IncorrectP1P2;
/// Wrong length: command data of the wrong size for its context.
pub const SW_WRONG_LENGTH: Status = Status::WrongLength;
