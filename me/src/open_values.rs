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
use uicc_vocab::open_values::TIME_FROM_NTP_UTC_ONLY;

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
