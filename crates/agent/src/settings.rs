//! What the device does, as the twin's desired properties set it: sampling interval,
//! feature window, mode and alert thresholds.
//!
//! Pure: [`Settings::apply_desired`] takes a desired document or patch (JSON merge
//! patch: `null` removes, so the value returns to its default) and reports what changed
//! and what it refused; [`Settings::reported`] is the reported-properties document.
//! Untrusted JSON never panics here (property-tested); a refused value leaves the
//! current one in place.

use std::time::Duration;

use device::Features;
use serde_json::{json, Map, Value};

/// Shortest interval accepted (a feature window at 12 kHz lasts 0.34 s).
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Longest interval accepted: a day.
pub const MAX_INTERVAL: Duration = Duration::from_secs(86_400);
/// Default interval: one feature message a minute.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Default feature window, samples per axis (0.34 s at 12 kHz, 2.9 Hz bins).
pub const DEFAULT_WINDOW: usize = 4096;
/// Smallest window accepted: narrower windows cannot resolve the defect bands.
pub const MIN_WINDOW: usize = 1024;

/// The device's operating mode (reported as `mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Features once per interval.
    #[default]
    Running,
    /// Set by the hub after an anomaly: features continue, and the operator sees it.
    Alarm,
    /// No feature messages (commands and the twin still work).
    Idle,
}

impl Mode {
    /// The twin's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Running => "running",
            Mode::Alarm => "alarm",
            Mode::Idle => "idle",
        }
    }

    /// Parses the twin's spelling.
    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "running" => Some(Mode::Running),
            "alarm" => Some(Mode::Alarm),
            "idle" => Some(Mode::Idle),
            _ => None,
        }
    }
}

/// Per-window alert thresholds on axis features; a window over any of them is sent with
/// an `alert` application property naming it, so rules can react before the hub's
/// models do. `None` = no threshold.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct Thresholds {
    /// RMS of any axis, g.
    pub rms: Option<f32>,
    /// Kurtosis of any axis.
    pub kurtosis: Option<f32>,
    /// Envelope energy at BPFO or BPFI (fundamental) of any axis, g².
    pub envelope: Option<f32>,
}

impl Thresholds {
    /// The names of the thresholds `features` exceeds, in a fixed order.
    pub fn exceeded(&self, features: &Features) -> Vec<&'static str> {
        let axes = features.axes.iter().flatten();
        let over = |limit: Option<f32>, value: &dyn Fn(&device::AxisFeatures) -> f32| {
            limit.is_some_and(|l| axes.clone().any(|a| value(a) > l))
        };
        let mut names = Vec::new();
        if over(self.rms, &|a| a.rms) {
            names.push("rms");
        }
        if over(self.kurtosis, &|a| a.kurtosis) {
            names.push("kurtosis");
        }
        if over(self.envelope, &|a| {
            a.envelope.bpfo[0].max(a.envelope.bpfi[0])
        }) {
            names.push("envelope");
        }
        names
    }

    /// As JSON for the reported properties (absent thresholds omitted).
    fn to_json(self) -> Value {
        let mut map = Map::new();
        for (name, value) in [
            ("rms", self.rms),
            ("kurtosis", self.kurtosis),
            ("envelope", self.envelope),
        ] {
            if let Some(v) = value {
                map.insert(name.into(), json!(v));
            }
        }
        Value::Object(map)
    }
}

/// The settings in force.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Time between feature messages (device time; `--speed` divides it).
    pub interval: Duration,
    /// Samples per axis per feature window (a power of two, 1024–8192).
    pub window: usize,
    /// Operating mode.
    pub mode: Mode,
    /// Alert thresholds.
    pub thresholds: Thresholds,
}

/// What [`Settings::apply_desired`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Some setting changed: report again.
    pub changed: bool,
    /// Desired properties whose values were refused (the old value stays).
    pub refused: Vec<String>,
}

impl Settings {
    /// Defaults with the given interval (the CLI's `--interval`).
    pub fn new(interval: Duration) -> Settings {
        Settings {
            interval,
            window: DEFAULT_WINDOW,
            mode: Mode::Running,
            thresholds: Thresholds::default(),
        }
    }

    /// Applies a desired document or patch; `defaults` supply the value of a property
    /// set to `null`. Unknown properties and `$version` are ignored.
    pub fn apply_desired(&mut self, desired: &Value, defaults: &Settings) -> Applied {
        let mut applied = Applied::default();
        let Some(map) = desired.as_object() else {
            return applied;
        };
        let before = *self;
        for (name, value) in map {
            let ok = match name.as_str() {
                "interval_s" => self.set_interval(value, defaults),
                "window" => self.set_window(value, defaults),
                "mode" => self.set_mode(value, defaults),
                "thresholds" => self.set_thresholds(value),
                _ => true,
            };
            if !ok {
                applied.refused.push(name.chars().take(64).collect());
            }
        }
        applied.changed = *self != before;
        applied
    }

    fn set_interval(&mut self, value: &Value, defaults: &Settings) -> bool {
        if value.is_null() {
            self.interval = defaults.interval;
            return true;
        }
        let Some(seconds) = value.as_f64().filter(|s| s.is_finite()) else {
            return false;
        };
        let range = MIN_INTERVAL.as_secs_f64()..=MAX_INTERVAL.as_secs_f64();
        if !range.contains(&seconds) {
            return false;
        }
        self.interval = Duration::from_secs_f64(seconds);
        true
    }

    fn set_window(&mut self, value: &Value, defaults: &Settings) -> bool {
        if value.is_null() {
            self.window = defaults.window;
            return true;
        }
        match value.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(n) if n >= MIN_WINDOW && device::window::is_supported_window(n) => {
                self.window = n;
                true
            }
            _ => false,
        }
    }

    fn set_mode(&mut self, value: &Value, defaults: &Settings) -> bool {
        if value.is_null() {
            self.mode = defaults.mode;
            return true;
        }
        match value.as_str().and_then(Mode::parse) {
            Some(mode) => {
                self.mode = mode;
                true
            }
            None => false,
        }
    }

    /// `thresholds` is an object patched member by member (`null` clears one, and
    /// `"thresholds": null` clears all); a member must be a finite number ≥ 0.
    fn set_thresholds(&mut self, value: &Value) -> bool {
        let map = match value {
            Value::Null => {
                self.thresholds = Thresholds::default();
                return true;
            }
            Value::Object(map) => map,
            _ => return false,
        };
        let mut next = self.thresholds;
        for (name, limit) in map {
            let slot = match name.as_str() {
                "rms" => &mut next.rms,
                "kurtosis" => &mut next.kurtosis,
                "envelope" => &mut next.envelope,
                _ => continue,
            };
            *slot = match limit {
                Value::Null => None,
                v => match v
                    .as_f64()
                    .filter(|x| (0.0..=f64::from(f32::MAX)).contains(x))
                {
                    Some(x) => Some(x as f32),
                    None => return false,
                },
            };
        }
        self.thresholds = next;
        true
    }

    /// The reported-properties patch: mode, firmware, interval, window, thresholds.
    /// `firmware` is an object with `version`, where the hub's registry reads it.
    pub fn reported(&self, firmware: &str) -> Value {
        json!({
            "mode": self.mode.as_str(),
            "firmware": { "version": firmware },
            "interval_s": self.interval.as_secs_f64(),
            "window": self.window,
            "thresholds": self.thresholds.to_json(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn defaults() -> Settings {
        Settings::new(DEFAULT_INTERVAL)
    }

    #[test]
    fn applies_and_refuses() {
        let mut s = defaults();
        let applied = s.apply_desired(
            &json!({"interval_s": 5, "window": 2048, "mode": "alarm", "$version": 3,
                    "thresholds": {"rms": 0.5}}),
            &defaults(),
        );
        assert!(applied.changed);
        assert!(applied.refused.is_empty());
        assert_eq!(s.interval, Duration::from_secs(5));
        assert_eq!(s.window, 2048);
        assert_eq!(s.mode, Mode::Alarm);
        assert_eq!(s.thresholds.rms, Some(0.5));

        let applied = s.apply_desired(
            &json!({"interval_s": 0, "window": 1000, "mode": "dancing", "thresholds": 3}),
            &defaults(),
        );
        assert!(!applied.changed);
        assert_eq!(applied.refused.len(), 4);
        assert_eq!(s.window, 2048);

        let applied = s.apply_desired(
            &json!({"interval_s": null, "window": null, "mode": null, "thresholds": null}),
            &defaults(),
        );
        assert!(applied.changed);
        assert_eq!(s, defaults());
    }

    #[test]
    fn reported_document_names_firmware_version() {
        let r = defaults().reported("1.2.3");
        assert_eq!(r["mode"], "running");
        assert_eq!(r["firmware"]["version"], "1.2.3");
        assert_eq!(r["interval_s"], 60.0);
        assert_eq!(r["window"], 4096);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<f64>().prop_map(|f| json!(f)),
            any::<i64>().prop_map(|i| json!(i)),
            "[a-z]{0,8}".prop_map(Value::String),
            prop_oneof![Just("running"), Just("alarm"), Just("idle")].prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            let keys = prop_oneof![
                Just("interval_s".to_string()),
                Just("window".to_string()),
                Just("mode".to_string()),
                Just("thresholds".to_string()),
                Just("rms".to_string()),
                "[a-z$]{1,6}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(keys, inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_desired_document_keeps_settings_valid(doc in json_value()) {
            let mut s = defaults();
            let _ = s.apply_desired(&doc, &defaults());
            prop_assert!(s.interval >= MIN_INTERVAL && s.interval <= MAX_INTERVAL);
            prop_assert!(s.window >= MIN_WINDOW && device::window::is_supported_window(s.window));
            let t = s.thresholds;
            for t in [t.rms, t.kurtosis, t.envelope].into_iter().flatten() {
                prop_assert!(t.is_finite() && t >= 0.0);
            }
        }
    }
}
