//! Which time a message is stamped with: the device's own if it gave one and it is
//! sane, else the hub's receive time.
//!
//! The device's time is looked for in the body's top-level `ts`, `timestamp` or `time`
//! (first found; a number is milliseconds since the Unix epoch, a string is RFC 3339),
//! then in the `iothub-creation-time-utc` property (RFC 3339). It is sane when it is at
//! most [`Limits::max_future_ms`] ahead of and at most [`Limits::max_age_ms`] behind the
//! receive time. An insane or unreadable device time is not an error — the reading is
//! still worth keeping — but it must not land in the wrong place of a time series, so the
//! message takes the hub's time and carries a [`TimestampIssue`] for a counter.

use serde::Serialize;
use serde_json::{Map, Value};

use super::Limits;

/// Body fields that may hold the device's timestamp, in the order they are looked for.
pub const TIMESTAMP_FIELDS: [&str; 3] = ["ts", "timestamp", "time"];

/// The property Azure IoT SDKs set to the device's send time.
pub const CREATION_TIME_PROPERTY: &str = "iothub-creation-time-utc";

/// Whose clock [`Message::ts_ms`](super::Message::ts_ms) comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TsSource {
    /// The device's own timestamp, found sane.
    Device,
    /// The hub's receive time: the device gave none, or an insane one.
    Hub,
}

/// Why a device timestamp was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimestampIssue {
    /// Neither a number nor an RFC 3339 string.
    Unreadable,
    /// More than the allowed skew ahead of the hub's clock.
    Future,
    /// Older than the allowed age.
    TooOld,
}

impl TimestampIssue {
    /// Stable snake_case name, for counters.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Unreadable => "ts_unreadable",
            Self::Future => "ts_future",
            Self::TooOld => "ts_too_old",
        }
    }
}

/// The chosen time of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) ts_ms: i64,
    pub(crate) source: TsSource,
    pub(crate) issue: Option<TimestampIssue>,
    /// The body field the device's time was read from, if any.
    pub(crate) field: Option<&'static str>,
}

/// Picks the message's time from `body` and `properties`.
pub(crate) fn stamp(
    body: &Map<String, Value>,
    properties: &[(String, String)],
    received_ms: i64,
    limits: &Limits,
) -> Stamp {
    let field = TIMESTAMP_FIELDS.into_iter().find(|f| body.contains_key(*f));
    let candidate = match field.and_then(|f| body.get(f)) {
        Some(v) => Some(read_value(v)),
        None => properties
            .iter()
            .find(|(k, _)| k == CREATION_TIME_PROPERTY)
            .map(|(_, v)| parse_rfc3339(v)),
    };
    let hub = |issue| Stamp {
        ts_ms: received_ms,
        source: TsSource::Hub,
        issue,
        field,
    };
    match candidate {
        None => hub(None),
        Some(None) => hub(Some(TimestampIssue::Unreadable)),
        Some(Some(ts)) if ts > received_ms.saturating_add(limits.max_future_ms) => {
            hub(Some(TimestampIssue::Future))
        }
        Some(Some(ts)) if ts < received_ms.saturating_sub(limits.max_age_ms) => {
            hub(Some(TimestampIssue::TooOld))
        }
        Some(Some(ts)) => Stamp {
            ts_ms: ts,
            source: TsSource::Device,
            issue: None,
            field,
        },
    }
}

/// Milliseconds from a body value: a number of ms, or an RFC 3339 string.
fn read_value(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            let f = n.as_f64()?;
            // Past ±2^62 ms (146 million years) is no timestamp; the bound keeps the
            // conversion exact and the later arithmetic far from overflow.
            (f.abs() < 4.6e18).then_some(f as i64)
        }),
        Value::String(s) => parse_rfc3339(s),
        _ => None,
    }
}

/// Parses an RFC 3339 date-time (`2024-05-01T12:00:00.250Z`, `…+02:00`; `t`, `z` and a
/// space separator accepted) to milliseconds since the Unix epoch. Fractions finer than
/// a millisecond are truncated. `None` for anything else.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0i64, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    let sep = |at: usize, want: &[u8]| b.get(at).is_some_and(|c| want.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut pos = 19;
    let mut millis = 0;
    if sep(pos, b".") {
        pos += 1;
        let start = pos;
        while b.get(pos).is_some_and(u8::is_ascii_digit) {
            pos += 1;
        }
        let digits = pos - start;
        if digits == 0 {
            return None;
        }
        let kept = digits.min(3);
        millis = num(start, kept)? * 10i64.pow(3 - kept as u32);
    }
    let offset_min = match b.get(pos..)? {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (num(pos + 1, 2)?, num(pos + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let total = h * 60 + m;
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_min * 60;
    Some(secs * 1000 + millis)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date (the usual era-based method:
/// shift the year to start in March so the leap day is last).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_717_243_200_000; // 2024-06-01T12:00:00Z

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2024-06-01T12:00:00Z"), Some(NOW));
        assert_eq!(
            parse_rfc3339("2024-06-01t14:00:00.25+02:00"),
            Some(NOW + 250)
        );
        assert_eq!(
            parse_rfc3339("2024-06-01 11:30:00.123456-00:30"),
            Some(NOW + 123)
        );
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(parse_rfc3339("2023-02-29T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2024-06-01T12:00:00"), None);
        assert_eq!(parse_rfc3339("2024-06-01T12:00:00.Z"), None);
        assert_eq!(parse_rfc3339("2024-13-01T12:00:00Z"), None);
        assert_eq!(parse_rfc3339("２024-06-01T12:00:00Z"), None);
    }

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn choice_and_sanity() {
        let l = Limits::default();
        let s = stamp(&body(json!({"ts": NOW - 1000})), &[], NOW, &l);
        assert_eq!(
            (s.ts_ms, s.source, s.field),
            (NOW - 1000, TsSource::Device, Some("ts"))
        );
        let s = stamp(&body(json!({"time": "2024-06-01T11:59:00Z"})), &[], NOW, &l);
        assert_eq!((s.ts_ms, s.source), (NOW - 60_000, TsSource::Device));
        let props = vec![(
            CREATION_TIME_PROPERTY.to_owned(),
            "2024-06-01T11:00:00Z".to_owned(),
        )];
        let s = stamp(&Map::new(), &props, NOW, &l);
        assert_eq!(
            (s.ts_ms, s.source, s.field),
            (NOW - 3_600_000, TsSource::Device, None)
        );
        let s = stamp(&body(json!({"ts": NOW + 600_000})), &[], NOW, &l);
        assert_eq!((s.ts_ms, s.issue), (NOW, Some(TimestampIssue::Future)));
        let s = stamp(&body(json!({"ts": 1_717_243_200})), &[], NOW, &l);
        assert_eq!((s.ts_ms, s.issue), (NOW, Some(TimestampIssue::TooOld)));
        let s = stamp(&body(json!({"timestamp": true})), &[], NOW, &l);
        assert_eq!(
            (s.source, s.issue),
            (TsSource::Hub, Some(TimestampIssue::Unreadable))
        );
        let s = stamp(&body(json!({"ts": 1e300})), &[], NOW, &l);
        assert_eq!(s.issue, Some(TimestampIssue::Unreadable));
        let s = stamp(&Map::new(), &[], NOW, &l);
        assert_eq!((s.ts_ms, s.source, s.issue), (NOW, TsSource::Hub, None));
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,40}|[0-9TZ:.+ -]{0,32}") {
            let _ = parse_rfc3339(&s);
        }

        #[test]
        fn days_are_consecutive(d in -1_000_000i64..1_000_000) {
            // Whole days from the epoch, formatted by brute force, parse back.
            let ms = d * 86_400_000;
            let (mut y, mut rem) = (1970i64, d);
            while rem < 0 { y -= 1; rem += if is_leap(y) { 366 } else { 365 }; }
            while rem >= if is_leap(y) { 366 } else { 365 } {
                rem -= if is_leap(y) { 366 } else { 365 }; y += 1;
            }
            let mut m = 1;
            while rem >= days_in_month(y, m) { rem -= days_in_month(y, m); m += 1; }
            prop_assume!((0..=9999).contains(&y));
            let text = format!("{y:04}-{m:02}-{:02}T00:00:00Z", rem + 1);
            prop_assert_eq!(parse_rfc3339(&text), Some(ms));
        }
    }
}
