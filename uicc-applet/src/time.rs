//! Time on a card without a clock: the GBA key lifetime of TS 33.220 §4.5.2 (an XML dateTime in
//! UTC, TS 24.109 §4.2) and the NTP timestamps of MIKEY (RFC 3830 §6.6, era rule of RFC 4330 §3),
//! both as seconds since the NTP epoch 1900-01-01T00:00:00Z. No allocation, no calendar library.

use mikey::NTP_UNIX_OFFSET;

use crate::open_values::{KEY_LIFETIME_BASE_LEN, NTP_ERA_PIVOT_BIT};

/// Seconds in a day.
const DAY: i64 = 86_400;

/// Two or four ASCII digits as a number.
fn digits(text: &[u8]) -> Option<u32> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(text.iter().fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0')))
}

fn is_leap(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (the `days_from_civil` algorithm
/// of H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
fn days_from_civil(year: u32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A key lifetime `YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm)` (no zone is read as UTC) as seconds since
/// 1900-01-01T00:00:00Z. `None` for anything else, or a date before 1900.
pub(crate) fn parse_key_lifetime(text: &[u8]) -> Option<u64> {
    let base = text.get(..KEY_LIFETIME_BASE_LEN)?;
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if !separators.iter().all(|&(i, c)| base.get(i) == Some(&c) || (c == b'T' && base.get(i) == Some(&b't')))
    {
        return None;
    }
    let year = digits(base.get(0..4)?)?;
    let month = digits(base.get(5..7)?)?;
    let day = digits(base.get(8..10)?)?;
    let hour = digits(base.get(11..13)?)?;
    let minute = digits(base.get(14..16)?)?;
    let second = digits(base.get(17..19)?)?;
    if year < 1900 || day == 0 || day > days_in_month(year, month) || hour > 23 || minute > 59 || second > 60
    {
        return None;
    }
    let mut rest = text.get(KEY_LIFETIME_BASE_LEN..)?;
    if let Some((b'.', fraction)) = rest.split_first() {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        rest = fraction.get(n..)?;
    }
    let offset: i64 = match rest {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = digits(&[*h1, *h2])?;
            let m = digits(&[*m1, *m2])?;
            if h > 14 || m > 59 {
                return None;
            }
            let minutes = i64::from(h * 60 + m) * 60;
            if *sign == b'+' { minutes } else { -minutes }
        }
        _ => return None,
    };
    let unix = days_from_civil(year, month, day) * DAY
        + i64::from(hour) * 3600
        + i64::from(minute) * 60
        + i64::from(second)
        - offset;
    u64::try_from(unix.checked_add(NTP_UNIX_OFFSET as i64)?).ok()
}

/// The seconds of a 64-bit NTP timestamp (RFC 3830 §6.6: 32 bits of seconds, 32 of fraction) as
/// seconds since 1900, reading a seconds field whose top bit is clear as era 1 (RFC 4330 §3).
pub(crate) fn ntp_seconds(timestamp: u64) -> u64 {
    let seconds = (timestamp >> 32) as u32;
    if seconds & NTP_ERA_PIVOT_BIT != 0 { u64::from(seconds) } else { u64::from(seconds) + (1 << 32) }
}

#[cfg(test)]
mod tests {
    use super::*;

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
