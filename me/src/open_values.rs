//! The ME's reading of TS 33.246 §6.1 / §6.3 and TS 31.102 §7.1 wherever the specifications
//! available to the project leave a value open: the AUTHENTICATE framing the ME sends, the SRTP MKI
//! layout, how many MTKs the receiver keeps, and the key-lifetime rule shared with the card.
//!
//! Every value here is a named constant with the clause it should come from, so that it can be
//! corrected in one line. Items marked UNCONFIRMED come from the project's digests of the
//! specifications (`spec/uicc-gba.md`, `spec/mikey-srtp.md`) and from `docs/card-interface.md`, not
//! from the normative text. The card keeps its own copy of the card-side values in
//! `uicc-applet/src/open_values.rs`; the ME never links the card code.

use mikey::NTP_UNIX_OFFSET;

// ---------------------------------------------------------------------------------------------
// AUTHENTICATE framing (TS 31.102 §7.1.2; docs/card-interface.md)

/// INS of AUTHENTICATE, EVEN instruction (TS 31.102 §7.1.2): 3G and GBA contexts.
pub const INS_AUTHENTICATE_EVEN: u8 = 0x88;
/// INS of AUTHENTICATE, ODD instruction (TS 31.102 §7.1.2): the MBMS context.
pub const INS_AUTHENTICATE_ODD: u8 = 0x89;
/// P1 of the EVEN instruction.
pub const P1_EVEN: u8 = 0x00;
/// P1 of the ODD instruction: first block of authentication data (TS 31.102 §7.1.2; `0x80` is
/// `KFirstBlockOfAuthenticationData` of the Nokia Symbian modem TSY,
/// adaptationlayer/tsy/nokiatsy_dll/src/cmmcustommesshandler.cpp). The ME sends every MBMS command
/// as one block (extended APDU when long).
pub const P1_ODD_FIRST_BLOCK: u8 = 0x80;
/// P2 of the 3G security context (TS 31.102 Table 7.1.2-1).
pub const P2_3G_CONTEXT: u8 = 0x81;
/// P2 of the GBA security context (TS 31.102 Table 7.1.2-1).
pub const P2_GBA_CONTEXT: u8 = 0x84;
/// P2 of the MBMS security context (TS 31.102 Table 7.1.2-2).
pub const P2_MBMS_CONTEXT: u8 = 0x85;
/// Tag of a successful AUTHENTICATE response (TS 31.102 §7.1.2.1).
pub const TAG_SUCCESS: u8 = 0xDB;
/// Tag of a synchronisation failure (TS 31.102 §7.1.2.1).
pub const TAG_SYNC_FAILURE: u8 = 0xDC;
/// GBA security context, Bootstrapping Mode (TS 31.102 §7.1.2.3).
pub const TAG_GBA_BOOTSTRAPPING: u8 = 0xDD;
/// GBA security context, NAF Derivation Mode (TS 31.102 §7.1.2.4).
pub const TAG_GBA_NAF_DERIVATION: u8 = 0xDE;
/// BER-TLV object wrapping the MBMS data (TS 31.102 §7.1.2, Nokia TSY `KMBMSDataObjectTag`).
pub const TAG_MBMS_DATA: u8 = 0x53;
/// The BER-TLV wrapper the card may use instead for BER-TLV content (TS 31.102 §7.1.2); accepted
/// in responses.
pub const TAG_MBMS_DATA_BER: u8 = 0x73;
/// MBMS mode "MSK Update" (TS 31.102 §7.1.1.6): `KMskUpdateMode = 0x01` of the Nokia Symbian
/// modem TSY (cmmcustommesshandler.cpp), the one public ME that builds these commands.
pub const MODE_MSK_UPDATE: u8 = 0x01;
/// MBMS mode "MTK Generation": `KMtkGenerationMode = 0x02` of the Nokia Symbian modem TSY.
pub const MODE_MTK_GENERATION: u8 = 0x02;
/// MBMS mode "MSK Deletion": `KMskDeletionMode = 0x03` of the Nokia Symbian modem TSY.
pub const MODE_MSK_DELETION: u8 = 0x03;
/// MBMS mode "MUK Deletion". UNCONFIRMED (TS 31.102 §7.1.1.9): the Nokia TSY defines modes 01
/// to 03 only, and the Symbian API (`TMbmsMukDeleteDataV8`) carries no mode byte; `04` is the
/// next value. Sources tried: Nokia TSY, Symbian etelmm docs, pySim, tech-invite TS 31.102 §7.1.
pub const MODE_MUK_DELETION: u8 = 0x04;
/// First byte after `DB` when MSK Update verified a solicited pull: `00` ‖ Key Domain ID ‖ Key Group
/// ‖ [verification message] (the card's convention, `docs/card-interface.md`; a MIKEY message
/// starts with its version `01`, so the two cannot be confused).
pub const SOLICITED_PULL_MARKER: u8 = 0x00;
/// Tag of the MUK ID template in MUK Deletion mode data (TS 31.102 §4.2.81).
pub const TAG_MUK_ID: u8 = 0xA0;
/// Tag of MUK Idr (the B-TID) inside the MUK ID (TS 31.102 §4.2.81).
pub const TAG_MUK_IDR: u8 = 0x80;
/// Tag of MUK Idi (the BM-SC FQDN) inside the MUK ID (TS 31.102 §4.2.81).
pub const TAG_MUK_IDI: u8 = 0x82;
/// Length of the Key Group part of an MSK ID (TS 31.102 §4.2.80).
pub const KEY_GROUP_LEN: usize = 2;

// ---------------------------------------------------------------------------------------------
// Services (TS 31.102 §4.2.8 EF.UST)

/// USIM service n°68, GBA.
pub const UST_GBA: u16 = 68;
/// USIM service n°69, MBMS security: when available, the ME uses the UICC-based key management
/// (TS 33.246 §6.1: "Storing the MSKs on the UICC requires a UICC that contains the MBMS
/// management functions").
pub const UST_MBMS_SECURITY: u16 = 69;

// ---------------------------------------------------------------------------------------------
// MUK and MSK bookkeeping in the ME (TS 33.246 §6.1, §6.3.2.1; the same rules as the card)

/// Most MSKs kept per Key Domain ID and Key Group; a further one deletes the older
/// (TS 33.246 §6.3.2.1 as changed by CR 021; TS 31.102 §4.2.80).
pub const MSKS_PER_KEY_GROUP: usize = 2;
/// A freshly delivered MSK accepts any MTK ID, 0 included, for its first MTK; later MTKs need a
/// greater MTK ID (MGV-F, TS 33.246 §6.3.3). The card's choice (`FIRST_MTK_ID_ANY`), mirrored.
pub const FIRST_MTK_ID_ANY: bool = true;
/// An expired MUK is still accepted to verify a solicited pull when it is the most recently used
/// MUK of that BM-SC (TS 33.246 §6.1 and §6.3.2.2.4 as changed by CR 027 and CR 021). It is
/// accepted for nothing else.
pub const EXPIRED_MUK_FOR_SOLICITED_PULL: bool = true;

// ---------------------------------------------------------------------------------------------
// From MTK to SRTP (spec digest mikey-srtp.md §2.7)

/// SRTP MKI layout (MSK ID ‖ MTK ID, UNCONFIRMED, spec digest §2.7): defined once in the MIKEY MBMS
/// profile, shared with the BM-SC.
pub use mikey::mbms::mki;
pub use mikey::mbms::profile::MKI_LEN;
/// MTKs (SRTP master keys) each stream keeps; adding one more removes the oldest. Two would do
/// for a clean key change; three leave room for reordering around the change. The ME's choice.
pub const MTKS_KEPT_PER_STREAM: usize = 3;
/// SRTP master salt used when an MTK message carries no salt. UNCONFIRMED (spec digest §2.7:
/// whether the ME then derives a salt with the MIKEY PRF is open); all zero here.
pub const SALT_WHEN_ABSENT: [u8; 14] = [0; 14];

// ---------------------------------------------------------------------------------------------
// Time (TS 33.220 §4.5.2 key lifetime; RFC 3830 §6.6 NTP timestamps)

/// Only an NTP-UTC timestamp (RFC 3830 type 0) tells the time; NTP (type 1) and COUNTER (type 2)
/// mean "time unknown", so no MUK is expired by them. UNCONFIRMED (TS 33.246 MIKEY profile); the
/// card reads it the same way (`TIME_FROM_NTP_UTC_ONLY`).
pub const TIME_FROM_NTP_UTC_ONLY: bool = true;

/// A point in time as an NTP 64-bit fixed-point value counted from 1900-01-01 in era 0 and beyond
/// (seconds in the upper 32+ bits, fraction in the lower 32), so that key lifetimes and MIKEY
/// NTP-UTC timestamps compare directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NtpTime(pub i128);

impl NtpTime {
    /// The time `unix` seconds (and `fraction`/2^32) after 1970-01-01T00:00:00Z.
    pub fn from_unix(unix: i64, fraction: u32) -> Self {
        NtpTime((i128::from(unix + NTP_UNIX_OFFSET as i64) << 32) | i128::from(fraction))
    }

    /// Seconds since 1970-01-01T00:00:00Z, rounded down.
    pub fn unix_seconds(self) -> i64 {
        ((self.0 >> 32) as i64) - NTP_UNIX_OFFSET as i64
    }

    /// The time a MIKEY NTP timestamp value names, with the era rule of RFC 4330 §3 as the card
    /// reads it ([`mikey::ntp_era_seconds`]).
    pub fn from_ntp64(value: u64) -> Self {
        NtpTime(i128::from(mikey::ntp_era_seconds(value)) << 32 | i128::from(value as u32))
    }

    /// The MIKEY NTP timestamp value of this time (era bits dropped, RFC 4330 §3).
    pub fn to_ntp64(self) -> u64 {
        self.0 as u64
    }
}

/// The time a MIKEY timestamp tells, if it tells one (see [`TIME_FROM_NTP_UTC_ONLY`]).
pub fn message_time(ts: &mikey::Timestamp) -> Option<NtpTime> {
    match *ts {
        mikey::Timestamp::NtpUtc(v) => Some(NtpTime::from_ntp64(v)),
        mikey::Timestamp::Ntp(v) if !TIME_FROM_NTP_UTC_ONLY => Some(NtpTime::from_ntp64(v)),
        _ => None,
    }
}

/// Whether a key with lifetime `lifetime` has expired at the time of a message stamped `ts`: the
/// lifetime lies before the message time, compared in whole seconds as the card does (a fraction of
/// a second is dropped on both sides). A message that tells no time expires nothing.
pub fn is_expired(lifetime: NtpTime, ts: &mikey::Timestamp) -> bool {
    message_time(ts).is_some_and(|now| (lifetime.0 >> 32) < (now.0 >> 32))
}

/// Parses a key lifetime as the BSF sends it (TS 24.109 §4.2, an XML `dateTime` in UTC:
/// `YYYY-MM-DDThh:mm:ssZ`), as the card reads it ([`gba::lifetime::parse_key_lifetime`]: a
/// fractional second, dropped, a `±hh:mm` offset and a missing zone, read as UTC, are accepted;
/// years before 1900 are not). `None` if the text is no such time.
pub fn parse_key_lifetime(text: &[u8]) -> Option<NtpTime> {
    gba::lifetime::parse_key_lifetime(text).map(|unix| NtpTime::from_unix(unix, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_parses_known_instants() {
        // 2000-01-01T00:00:00Z is Unix 946684800 (POSIX date arithmetic, `date -u -d @946684800`).
        assert_eq!(parse_key_lifetime(b"2000-01-01T00:00:00Z").unwrap().unix_seconds(), 946_684_800);
        // 2038-01-19T03:14:07Z is Unix 2^31 - 1.
        assert_eq!(parse_key_lifetime(b"2038-01-19T03:14:07Z").unwrap().unix_seconds(), 2_147_483_647);
        // Leap day and an offset: 2024-02-29T12:00:00+01:00 is 11:00Z, Unix 1709204400.
        assert_eq!(parse_key_lifetime(b"2024-02-29T12:00:00+01:00").unwrap().unix_seconds(), 1_709_204_400);
        // A fraction is dropped; no zone reads as UTC (the card's reading).
        let whole = parse_key_lifetime(b"2000-01-01T00:00:00Z").unwrap();
        assert_eq!(parse_key_lifetime(b"2000-01-01T00:00:00.5Z"), Some(whole));
        assert_eq!(parse_key_lifetime(b"2000-01-01T00:00:00"), Some(whole));
    }

    #[test]
    fn lifetime_refuses_non_times() {
        for bad in [
            &b""[..],
            b"1899-12-31T23:59:59Z",
            b"2000-13-01T00:00:00Z",
            b"2001-02-29T00:00:00Z",
            b"2000-01-01 00:00:00Z",
            b"2000-01-01T24:00:00Z",
            b"2000-01-01T00:00:00.Z",
            b"2000-01-01T00:00:00+1:00",
            b"2000-01-01T00:00:00Zjunk",
            b"20x0-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_key_lifetime(bad), None, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn ntp_era_rule() {
        // RFC 4330 §3: 0x80000000 seconds is 1968-01-20T03:14:08Z; small values are after 2036.
        let t = NtpTime::from_ntp64(0x8000_0000_0000_0000);
        assert_eq!(t.unix_seconds(), 0x8000_0000i64 - NTP_UNIX_OFFSET as i64);
        let t = NtpTime::from_ntp64(0x0000_0001_0000_0000);
        assert_eq!(t.unix_seconds(), (1i64 << 32) + 1 - NTP_UNIX_OFFSET as i64);
        let now = NtpTime::from_unix(1_700_000_000, 7);
        assert_eq!(NtpTime::from_ntp64(now.to_ntp64()), now);
    }

    #[test]
    fn expiry_needs_ntp_utc() {
        let lifetime = parse_key_lifetime(b"2020-01-01T00:00:00Z").unwrap();
        let later = NtpTime::from_unix(lifetime.unix_seconds() + 1, 0).to_ntp64();
        assert!(is_expired(lifetime, &mikey::Timestamp::NtpUtc(later)));
        assert!(!is_expired(lifetime, &mikey::Timestamp::NtpUtc(lifetime.to_ntp64())));
        // Within the same second: not expired (whole seconds, as on the card).
        assert!(!is_expired(lifetime, &mikey::Timestamp::NtpUtc(lifetime.to_ntp64() | 0xFFFF_FFFF)));
        assert!(!is_expired(lifetime, &mikey::Timestamp::Ntp(later)));
        assert!(!is_expired(lifetime, &mikey::Timestamp::Counter(u32::MAX)));
    }

    #[test]
    fn mki_is_msk_id_then_mtk_id() {
        assert_eq!(mki(mikey::mbms::MskId(0x0102_0304), mikey::mbms::MtkId(0x0506)), [1, 2, 3, 4, 5, 6]);
    }
}
