//! Time on a card without a clock: the GBA key lifetime of TS 33.220 §4.5.2 (an XML dateTime in
//! UTC, TS 24.109 §4.2) and the NTP timestamps of MIKEY (RFC 3830 §6.6, era rule of RFC 4330 §3),
//! both as seconds since the NTP epoch 1900-01-01T00:00:00Z. No allocation, no calendar library.

use mikey::NTP_UNIX_OFFSET;

/// The seconds of a 64-bit NTP timestamp (RFC 3830 §6.6: 32 bits of seconds, 32 of fraction) as
/// seconds since 1900, reading a seconds field whose top bit is clear as era 1 (RFC 4330 §3).
pub(crate) use mikey::ntp_era_seconds as ntp_seconds;

/// A key lifetime `YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm)` (no zone is read as UTC) as seconds since
/// 1900-01-01T00:00:00Z (the reading of [`gba::lifetime::parse_key_lifetime`]). `None` for anything
/// else, or a time before 1900.
pub(crate) fn parse_key_lifetime(text: &[u8]) -> Option<u64> {
    let unix = gba::lifetime::parse_key_lifetime(text)?;
    u64::try_from(unix.checked_add(NTP_UNIX_OFFSET as i64)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days_in_month(year: u32, month: u32) -> u32 {
        gba::lifetime::days_in_month(i64::from(year), month)
    }

    /// Known instants on the NTP scale: the Unix epoch is 2 208 988 800 (RFC 868), 2000-01-01 is
    /// 3 155 673 600 (RFC 5905 Figure 4 lists the year 2000 at that NTP timestamp), and the first
    /// instant of NTP era 1, 2036-02-07T06:28:16Z, is 2^32 (RFC 4330 §3).
    #[test]
    fn known_instants() {
        let p = |s: &str| parse_key_lifetime(s.as_bytes());
        assert_eq!(p("1900-01-01T00:00:00Z"), Some(0));
        assert_eq!(p("1970-01-01T00:00:00Z"), Some(2_208_988_800));
        assert_eq!(p("2000-01-01T00:00:00Z"), Some(3_155_673_600));
        assert_eq!(p("2036-02-07T06:28:16Z"), Some(1 << 32));
        // One day and one second later; a leap day; a fraction; offsets.
        assert_eq!(p("1970-01-02T00:00:01Z"), Some(2_208_988_800 + 86_401));
        assert_eq!(p("2024-02-29T12:00:00Z"), Some(2_208_988_800 + 1_709_208_000));
        assert_eq!(p("2000-01-01T00:00:00.123Z"), Some(3_155_673_600));
        assert_eq!(p("2000-01-01T01:30:00+01:30"), Some(3_155_673_600));
        assert_eq!(p("1999-12-31T22:00:00-02:00"), Some(3_155_673_600));
        assert_eq!(p("2000-01-01T00:00:00"), Some(3_155_673_600));
    }

    #[test]
    fn malformed_lifetimes_are_refused() {
        for bad in [
            "",
            "2000-01-01",
            "2000-01-01 00:00:00Z",
            "2000/01/01T00:00:00Z",
            "2000-13-01T00:00:00Z",
            "2000-00-01T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2000-01-32T00:00:00Z",
            "2000-01-01T24:00:00Z",
            "2000-01-01T00:60:00Z",
            "2000-01-01T00:00:00ZZ",
            "2000-01-01T00:00:00.Z",
            "2000-01-01T00:00:00+1:00",
            "1899-12-31T23:59:59Z",
            "20a0-01-01T00:00:00Z",
            "+000-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_key_lifetime(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(parse_key_lifetime(&[0xFF; 20]), None);
    }

    #[test]
    fn ntp_eras() {
        // 2000-01-01 in era 0 (top bit set), and 2036-02-07T06:28:16Z + 1 s in era 1.
        assert_eq!(ntp_seconds(3_155_673_600u64 << 32 | 0xFFFF_FFFF), 3_155_673_600);
        assert_eq!(ntp_seconds(1u64 << 32), (1u64 << 32) + 1);
        assert_eq!(ntp_seconds(0), 1 << 32);
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            let _ = parse_key_lifetime(&bytes);
        }

        #[test]
        fn every_valid_date_round_trips_through_the_day_count(days in 0i64..200_000) {
            // Walk forward from 1900-01-01 by day count using the month table, then parse.
            let (mut y, mut m, mut d) = (1900u32, 1u32, 1u32);
            let mut left = days;
            while left > 0 {
                let step = i64::from(days_in_month(y, m) - d + 1).min(left);
                left -= step;
                d += step as u32;
                if d > days_in_month(y, m) {
                    d = 1;
                    m += 1;
                    if m > 12 {
                        m = 1;
                        y += 1;
                    }
                }
            }
            let text = format!("{y:04}-{m:02}-{d:02}T00:00:00Z");
            proptest::prop_assert_eq!(parse_key_lifetime(text.as_bytes()), Some(days as u64 * 86_400));
        }
    }
}
