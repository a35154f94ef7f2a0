//! The key lifetime of a bootstrapping (TS 33.220 §4.5.2) as TS 24.109 §4.2 writes it, an XML
//! Schema dateTime in UTC (`YYYY-MM-DDThh:mm:ssZ`), and the proleptic Gregorian calendar every
//! reader and writer of such times uses: the card, the ME, the Ub and Zn bodies, the command line.
//! No allocation, no calendar library.

/// Shortest key lifetime text: `YYYY-MM-DDThh:mm:ss` (then `Z`, a fraction or an offset).
pub const KEY_LIFETIME_BASE_LEN: usize = 19;

/// Earliest year of a key lifetime that is read: the NTP epoch (a lifetime is compared with NTP
/// timestamps, RFC 3830 §6.6).
pub const KEY_LIFETIME_MIN_YEAR: i64 = 1900;

/// Seconds in a day.
pub const SECONDS_PER_DAY: i64 = 86_400;

/// Whether `year` is a leap year of the proleptic Gregorian calendar.
pub const fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Days in `month` (1 to 12) of `year`; 0 for a month outside 1 to 12.
pub const fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar, `month` 1 to 12 (the
/// `days_from_civil` algorithm of H. Hinnant, "chrono-Compatible Low-Level Date Algorithms").
pub const fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = ((month + 9) % 12) as i64;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month 1 to 12, day) `days` after 1970-01-01 (H. Hinnant's `civil_from_days`).
pub const fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + if m <= 2 { 1 } else { 0 }, m, d)
}

/// Two or four ASCII digits as a number.
fn digits(text: &[u8]) -> Option<u32> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(text.iter().fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0')))
}

/// Reads a key lifetime `YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm)` as seconds since
/// 1970-01-01T00:00:00Z (negative before). As the card reads it, `t` may be lower case, a missing
/// zone is UTC, a fraction of a second is dropped and a leap second (`60`) is accepted. `None` for
/// anything else, or a year before [`KEY_LIFETIME_MIN_YEAR`].
pub fn parse_key_lifetime(text: &[u8]) -> Option<i64> {
    let base = text.get(..KEY_LIFETIME_BASE_LEN)?;
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if !separators.iter().all(|&(i, c)| base.get(i) == Some(&c) || (c == b'T' && base.get(i) == Some(&b't')))
    {
        return None;
    }
    let year = i64::from(digits(base.get(0..4)?)?);
    let month = digits(base.get(5..7)?)?;
    let day = digits(base.get(8..10)?)?;
    let hour = digits(base.get(11..13)?)?;
    let minute = digits(base.get(14..16)?)?;
    let second = digits(base.get(17..19)?)?;
    if year < KEY_LIFETIME_MIN_YEAR
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
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
            let seconds = i64::from(h * 60 + m) * 60;
            if *sign == b'+' { seconds } else { -seconds }
        }
        _ => return None,
    };
    Some(
        days_from_civil(year, month, day) * SECONDS_PER_DAY
            + i64::from(hour) * 3600
            + i64::from(minute) * 60
            + i64::from(second)
            - offset,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known days (each checked with Python's datetime when written): the epoch, a leap day, the
    /// NTP epoch, the first instant of NTP era 1, and the last day of year 9999.
    #[test]
    fn known_days() {
        for (days, date) in [
            (0, (1970, 1, 1)),
            (11_016, (2000, 2, 29)),
            (-25_567, (1900, 1, 1)),
            (24_143, (2036, 2, 7)),
            (2_932_896, (9999, 12, 31)),
            (-1, (1969, 12, 31)),
        ] {
            assert_eq!(civil_from_days(days), date);
            assert_eq!(days_from_civil(date.0, date.1, date.2), days);
        }
        assert_eq!((days_in_month(2000, 2), days_in_month(1900, 2), days_in_month(2023, 13)), (29, 28, 0));
    }

    #[test]
    fn lifetimes_as_unix_seconds() {
        let p = |s: &str| parse_key_lifetime(s.as_bytes());
        assert_eq!(p("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(p("1900-01-01T00:00:00Z"), Some(-2_208_988_800));
        assert_eq!(p("2024-02-29T12:00:00+01:00"), Some(1_709_204_400));
        assert_eq!(p("2000-01-01t00:00:00.5z"), Some(946_684_800));
        assert_eq!(p("2016-12-31T23:59:60Z"), Some(1_483_228_800));
        for bad in ["", "1899-12-31T23:59:59Z", "2000-02-30T00:00:00Z", "2000-01-01T00:00:00+15:00"] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }

    /// Round trips over the whole range, day by day in steps.
    #[test]
    fn days_round_trip() {
        let mut d = -25_567;
        while d < 2_932_897 {
            let (y, m, day) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, day), d);
            d += 97;
        }
    }
}
