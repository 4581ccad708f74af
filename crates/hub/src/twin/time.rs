//! RFC 3339 timestamps for twin metadata (and anyone else in the hub that shows a time).
//!
//! Times are passed in as milliseconds since the Unix epoch so the twin logic never reads a
//! clock; this file only turns such a number into text. The date math is the
//! "civil from days" algorithm (proleptic Gregorian calendar, era of 400 years).

/// Milliseconds in one day.
const MS_PER_DAY: i64 = 86_400_000;
/// `0000-01-01T00:00:00.000Z`: the earliest instant RFC 3339's four-digit year can show.
const MIN_MS: i64 = -62_167_219_200_000;
/// `9999-12-31T23:59:59.999Z`: the latest instant RFC 3339's four-digit year can show.
const MAX_MS: i64 = 253_402_300_799_999;

/// Formats `ms` (milliseconds since 1970-01-01 UTC) as RFC 3339 with milliseconds in UTC,
/// e.g. `2024-03-01T12:00:00.250Z`, the shape Azure uses for `$lastUpdated`.
///
/// Instants outside years 0000–9999 cannot be written with a four-digit year; they are
/// clamped to the nearest representable instant rather than producing invalid text.
pub fn rfc3339(ms: i64) -> String {
    let ms = ms.clamp(MIN_MS, MAX_MS);
    let days = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute) = (in_day / 3_600_000, in_day / 60_000 % 60);
    let (second, milli) = (in_day / 1000 % 60, in_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z")
}

/// Turns days since 1970-01-01 into (year, month 1–12, day 1–31).
///
/// Shifts the calendar so years start on March 1st (leap days fall at the end of a year),
/// then splits into 400-year eras of 146 097 days each.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn epoch() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(1_709_294_400_250), "2024-03-01T12:00:00.250Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(1_234_567_890_123), "2009-02-13T23:31:30.123Z");
    }

    #[test]
    fn clamps_out_of_range() {
        assert_eq!(rfc3339(i64::MIN), "0000-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(i64::MAX), "9999-12-31T23:59:59.999Z");
    }

    proptest! {
        #[test]
        fn always_24_chars_and_ordered(a in any::<i64>(), b in any::<i64>()) {
            let (sa, sb) = (rfc3339(a), rfc3339(b));
            prop_assert_eq!(sa.len(), 24);
            // Fixed-width text sorts like the instants it shows.
            prop_assert_eq!(a.clamp(MIN_MS, MAX_MS).cmp(&b.clamp(MIN_MS, MAX_MS)), sa.cmp(&sb));
        }
    }
}
