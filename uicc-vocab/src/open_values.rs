//! The card interface's reading of TS 31.102 §7.1 (AUTHENTICATE in the MBMS context), §4.2.80 and
//! §4.2.81 (EF.MSK, EF.MUK) and TS 33.246 §6.3 (MGV-F) wherever the specifications available to the
//! project leave a value open. Card and ME both take them from here.
//!
//! Every value is a named constant with the clause it should come from, so that it can be corrected
//! in one line. Items marked UNCONFIRMED come from the project's digests of the specifications
//! (`spec/uicc-gba.md`, `spec/mikey-srtp.md`), from the Rel-6 change requests of TS 33.246 (CR 021,
//! CR 027), from `docs/card-interface.md`, or from the public implementations the digests cite, not
//! from the normative text.

// ---------------------------------------------------------------------------------------------
// MBMS framing of AUTHENTICATE (TS 31.102 §7.1.2; spec digest §2.2 and §2.6)

/// P1 of the ODD instruction: "first block of authentication data" (TS 31.101 block chaining;
/// `KFirstBlockOfAuthenticationData = 0x80` of the Nokia Symbian modem TSY,
/// adaptationlayer/tsy/nokiatsy_dll/src/cmmcustommesshandler.cpp). Every MBMS command travels as
/// one block (extended APDUs carry long MIKEY messages).
pub const P1_ODD_FIRST_BLOCK: u8 = 0x80;
/// The BER-TLV object that wraps non-BER-TLV authentication data of the ODD instruction
/// (TS 31.102 §7.1.2; MBMS uses it per the Nokia TSY `KMBMSDataObjectTag`).
pub const TAG_MBMS_DATA: u8 = 0x53;
/// The BER-TLV wrapper for BER-TLV content (TS 31.102 §7.1.2); the ME accepts it in responses, as
/// the Nokia TSY does.
pub const TAG_MBMS_DATA_BER: u8 = 0x73;
/// MBMS mode "MSK Update" (TS 31.102 §7.1.1.6 in Rel-6 numbering): `KMskUpdateMode = 0x01` of the
/// Nokia Symbian modem TSY (cmmcustommesshandler.cpp), the one public ME that builds these commands.
pub const MODE_MSK_UPDATE: u8 = 0x01;
/// MBMS mode "MTK Generation": `KMtkGenerationMode = 0x02` of the Nokia Symbian modem TSY.
pub const MODE_MTK_GENERATION: u8 = 0x02;
/// MBMS mode "MSK Deletion": `KMskDeletionMode = 0x03` of the Nokia Symbian modem TSY.
pub const MODE_MSK_DELETION: u8 = 0x03;
/// MBMS mode "MUK Deletion". UNCONFIRMED (TS 31.102 §7.1.1.9): the Nokia TSY defines modes 01 to 03
/// only, and the Symbian API (`TMbmsMukDeleteDataV8`) carries no mode byte; `04` is the next value.
/// Sources tried: Nokia TSY, Symbian etelmm docs, pySim, tech-invite TS 31.102 §7.1.
pub const MODE_MUK_DELETION: u8 = 0x04;
/// First byte after `DB` when MSK Update verified a solicited pull: `00` ‖ Key Domain ID ‖ Key Group
/// ‖ [verification message]. `00` cannot begin a MIKEY message (whose version byte is `01`), so the
/// ME tells "run a basic MSK request" (TS 33.246 §6.3.2.2.4) apart from an MSK Update answer. The
/// card's own convention, written into `docs/card-interface.md`.
pub const SOLICITED_PULL_MARKER: u8 = 0x00;

// ---------------------------------------------------------------------------------------------
// EF.MSK and EF.MUK (TS 31.102 §4.2.80, §4.2.81)

/// Most MSKs kept per Key Domain ID and Key Group, the "n" of EF.MSK; a further one deletes the
/// older (TS 33.246 §6.3.2.1 as changed by CR 021; TS 31.102 §4.2.80).
pub const MSKS_PER_KEY_GROUP: usize = 2;
/// What the 4-byte Time Stamp Counter of an EF.MSK (MSK ID, TS) pair holds: the MTK ID of the last
/// MTK accepted under that MSK, which MTK Generation requires to grow (MGV-F, TS 33.246 §6.3.3).
/// UNCONFIRMED: TS 31.102 §4.2.80 names the field "Time Stamp Counter"; the digest
/// (spec/mikey-srtp.md §2.4) reads the MTK freshness rule as "MTK ID greater than the stored one".
pub const MSK_TS_IS_MTK_ID: bool = true;
/// Length of the EF.MUK Time Stamp Counter (tag `81`): the full 64-bit MIKEY timestamp value
/// (RFC 3830 §6.6; a COUNTER is zero-padded). UNCONFIRMED: TS 31.102 §4.2.81 says "as in
/// TS 33.246".
pub const MUK_TS_LEN: usize = 8;

// ---------------------------------------------------------------------------------------------
// MGV-F rules the card applies and the ME-based path mirrors (TS 33.246 §6.1, §6.3)

/// A freshly delivered MSK accepts any MTK ID, 0 included, for its first MTK; later MTKs need a
/// greater MTK ID (MGV-F, TS 33.246 §6.3.3). The card records the first with an internal flag, not
/// visible in EF.MSK.
pub const FIRST_MTK_ID_ANY: bool = true;
/// A MUK whose key lifetime has passed is still accepted to verify a solicited pull (MSK ID with
/// key number 0, no key data) when it is the most recently used MUK of that BM-SC, i.e. the one
/// EF.MUK names for the message's IDi (TS 33.246 §6.1 and §6.3.2.2.4 as changed by CR 027 and
/// CR 021: "the ME shall store the last successfully used MUK ... to authenticate the first MIKEY
/// message of a push solicited pull procedure"). It is accepted for nothing else.
pub const EXPIRED_MUK_FOR_SOLICITED_PULL: bool = true;
/// Only an NTP-UTC timestamp (RFC 3830 type 0) tells the time. An NTP timestamp of unknown zone
/// (type 1) and a COUNTER (type 2) mean "time unknown": no MUK is expired by them. UNCONFIRMED:
/// TS 33.246 profiles the MIKEY timestamp of MSK messages; the card has no clock.
pub const TIME_FROM_NTP_UTC_ONLY: bool = true;
