//! Maintenance windows: daily spans of UTC time (`01:00-05:00`) in which a rollout may
//! notify devices. Outside every window a phase waits: no new notifications, while
//! devices already updating finish and are still watched by the gates.
//!
//! A window whose end is before its start wraps midnight (`22:00-02:00`); one whose
//! start equals its end is the whole day. Written and serialized as `HH:MM-HH:MM`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::spec::SpecError;

/// Minutes in a day.
const DAY_MINUTES: u16 = 24 * 60;
/// Most windows a rollout may have.
pub const MAX_WINDOWS: usize = 24;

/// One daily window, in minutes since midnight UTC: `start` included, `end` excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Window {
    /// First minute of the day inside the window.
    pub start: u16,
    /// First minute of the day after it.
    pub end: u16,
}

impl Window {
    /// Parses `HH:MM-HH:MM` (UTC, 24-hour clock; `24:00` allowed as an end).
    pub fn parse(text: &str) -> Result<Window, SpecError> {
        let bad = || SpecError(format!("window {text:?} is not HH:MM-HH:MM (UTC)"));
        let (start, end) = text.trim().split_once('-').ok_or_else(bad)?;
        let start = minute_of(start)
            .filter(|m| *m < DAY_MINUTES)
            .ok_or_else(bad)?;
        let end = minute_of(end).ok_or_else(bad)?;
        Ok(Window {
            start,
            end: end % DAY_MINUTES,
        })
    }

    /// Whether the minute of the day `minute` is inside.
    pub fn contains(&self, minute: u16) -> bool {
        match self.start.cmp(&self.end) {
            std::cmp::Ordering::Less => self.start <= minute && minute < self.end,
            std::cmp::Ordering::Greater => minute >= self.start || minute < self.end,
            std::cmp::Ordering::Equal => true,
        }
    }
}

/// `HH:MM` → minutes since midnight (up to 24:00).
fn minute_of(text: &str) -> Option<u16> {
    let (h, m) = text.trim().split_once(':')?;
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(h) || !two_digits(m) {
        return None;
    }
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    if m > 59 || h > 24 || (h == 24 && m > 0) {
        return None;
    }
    Some(h * 60 + m)
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        write!(f, "{}-{}", hm(self.start), hm(self.end))
    }
}

impl TryFrom<String> for Window {
    type Error = SpecError;

    fn try_from(text: String) -> Result<Window, SpecError> {
        Window::parse(&text)
    }
}

impl From<Window> for String {
    fn from(w: Window) -> String {
        w.to_string()
    }
}

/// Whether `now_ms` (since the epoch) is inside one of `windows`; no windows: always.
pub fn open_at(windows: &[Window], now_ms: u64) -> bool {
    let minute = ((now_ms / 60_000) % u64::from(DAY_MINUTES)) as u16;
    windows.is_empty() || windows.iter().any(|w| w.contains(minute))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const HOUR_MS: u64 = 3_600_000;

    #[test]
    fn parses_and_prints() {
        let w = Window::parse("01:00-05:30").expect("window");
        assert_eq!((w.start, w.end), (60, 330));
        assert_eq!(w.to_string(), "01:00-05:30");
        assert_eq!(Window::parse("22:00-24:00").expect("end").end, 0);
        for bad in [
            "",
            "1:00-05:00",
            "01:00",
            "25:00-01:00",
            "01:60-02:00",
            "24:00-01:00",
            "a:bc-01:00",
            "01:00-24:01",
        ] {
            assert!(Window::parse(bad).is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&w).expect("json");
        assert_eq!(json, "\"01:00-05:30\"");
        assert_eq!(serde_json::from_str::<Window>(&json).expect("back"), w);
        assert!(serde_json::from_str::<Window>("\"99:00-01:00\"").is_err());
    }

    #[test]
    fn a_window_holds_its_hours_only() {
        let night = [Window::parse("01:00-05:00").expect("w")];
        let day = 20_000 * 24 * HOUR_MS; // a midnight UTC
        assert!(!open_at(&night, day));
        assert!(open_at(&night, day + HOUR_MS));
        assert!(open_at(&night, day + 5 * HOUR_MS - 1));
        assert!(!open_at(&night, day + 5 * HOUR_MS));
        assert!(open_at(&[], day), "no windows: always open");
    }

    #[test]
    fn a_window_may_wrap_midnight() {
        let late = [Window::parse("22:00-02:00").expect("w")];
        let day = 20_000 * 24 * HOUR_MS;
        assert!(open_at(&late, day + 23 * HOUR_MS));
        assert!(open_at(&late, day));
        assert!(open_at(&late, day + HOUR_MS + 59 * 60_000));
        assert!(!open_at(&late, day + 2 * HOUR_MS));
        assert!(!open_at(&late, day + 12 * HOUR_MS));
        let several = [
            Window::parse("01:00-02:00").expect("w"),
            Window::parse("13:00-14:00").expect("w"),
        ];
        assert!(open_at(&several, day + 13 * HOUR_MS + 1));
        assert!(!open_at(&several, day + 3 * HOUR_MS));
        assert!(
            open_at(&[Window::parse("07:00-07:00").expect("w")], day),
            "whole day"
        );
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_round_trips(text in "\\PC{0,16}", a in 0u16..1440, b in 0u16..1440) {
            let _ = Window::parse(&text);
            let w = Window { start: a, end: b };
            prop_assert_eq!(Window::parse(&w.to_string()).expect("round trip"), w);
        }
    }
}
