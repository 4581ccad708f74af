//! The scenario file: how many devices, which of them develop a bearing fault and when,
//! how fast device time runs, and what happens to the network.
//!
//! All times in the file except `interval` and `faults.growth` are **wall-clock time
//! since the fleet started**; `interval` and `growth` are **device time**, which runs
//! `speed` times faster (the agent's time acceleration). Durations are written `90s`,
//! `5m`, `250ms` or plain seconds. Unknown keys are errors, so a typo cannot silently
//! fall back to a default.
//!
//! ```toml
//! devices = 2000
//! prefix = "motor-"     # ids motor-0001 … motor-2000
//! width = 4             # digits in the number (zero-padded)
//! interval = "1s"       # one feature message per device per interval (device time)
//! speed = 1.0           # device time / wall time
//! duration = "60s"      # how long the fleet runs
//! stagger = "10s"       # starts spread evenly over this span ("0s": a provisioning storm)
//! seed = 1              # seeds every device's noise (with its number)
//! axes = 3              # axes each device analyses (1 = cheaper)
//!
//! [faults]
//! count = 3             # devices chosen evenly across the fleet …
//! ids = ["motor-0017"]  # … and/or these
//! onset = "40s"         # when their outer race starts to spall
//! kind = "bpfo"         # or "bpfi"
//! growth = "5s"         # device time from onset to full severity
//! severity = 2.0        # impact amplitude at full severity, g
//!
//! [[events]]            # a network partition: these agents stop, then restart
//! kind = "partition"
//! at = "20s"
//! duration = "10s"
//! first = 1             # device numbers first … first + count - 1
//! count = 100
//! ```

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::Error;

/// Most devices one scenario may hold (one process holds at most ~20,000 descriptors).
pub const MAX_DEVICES: usize = 100_000;

/// A validated scenario.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Number of devices.
    pub devices: usize,
    /// Device id prefix.
    pub prefix: String,
    /// Digits of the zero-padded device number.
    pub width: usize,
    /// Feature interval, device time.
    pub interval: Duration,
    /// Time acceleration of the device clock.
    pub speed: f64,
    /// How long the fleet runs, wall time.
    pub duration: Duration,
    /// Span over which the starts are spread, wall time.
    pub stagger: Duration,
    /// Seed of the devices' noise.
    pub seed: u64,
    /// Axes each device analyses (1–3).
    pub axes: usize,
    /// Which devices fail, and how.
    pub faults: Faults,
    /// Network partitions.
    pub partitions: Vec<Partition>,
}

/// Bearing faults.
#[derive(Clone, Debug, PartialEq)]
pub struct Faults {
    /// Devices picked evenly across the fleet.
    pub count: usize,
    /// Devices picked by id (in addition to `count`).
    pub ids: Vec<String>,
    /// Onset, wall time since the fleet started.
    pub onset: Duration,
    /// `bpfo` (outer race) or `bpfi` (inner race).
    pub kind: String,
    /// Growth from onset to full severity, device time.
    pub growth: Duration,
    /// Impact amplitude at full severity, g.
    pub severity: f32,
}

/// A group of agents cut off for a while (stopped, then restarted on their buffers).
#[derive(Clone, Debug, PartialEq)]
pub struct Partition {
    /// First device number (1-based).
    pub first: usize,
    /// Number of devices.
    pub count: usize,
    /// When it starts, wall time since the fleet started.
    pub at: Duration,
    /// How long it lasts.
    pub duration: Duration,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            devices: 100,
            prefix: "motor-".into(),
            width: 4,
            interval: Duration::from_secs(1),
            speed: 1.0,
            duration: Duration::from_secs(60),
            stagger: Duration::from_secs(5),
            seed: 1,
            axes: 3,
            faults: Faults::default(),
            partitions: Vec::new(),
        }
    }
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            count: 0,
            ids: Vec::new(),
            onset: Duration::from_secs(40),
            kind: "bpfo".into(),
            growth: Duration::from_secs(5),
            severity: 2.0,
        }
    }
}

/// The file as written; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    devices: Option<usize>,
    prefix: Option<String>,
    width: Option<usize>,
    interval: Option<String>,
    speed: Option<f64>,
    duration: Option<String>,
    stagger: Option<String>,
    seed: Option<u64>,
    axes: Option<usize>,
    faults: Option<FaultsFile>,
    #[serde(default)]
    events: Vec<EventFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultsFile {
    count: Option<usize>,
    ids: Option<Vec<String>>,
    onset: Option<String>,
    kind: Option<String>,
    growth: Option<String>,
    severity: Option<f32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventFile {
    kind: String,
    at: String,
    duration: String,
    first: usize,
    count: usize,
}

impl Scenario {
    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Scenario::parse(&text)
    }

    /// Parses and validates scenario text; missing keys take the defaults.
    pub fn parse(text: &str) -> Result<Scenario, Error> {
        let file: File = toml::from_str(text).map_err(|e| Error::Parse(e.to_string()))?;
        let d = Scenario::default();
        let faults = file.faults.unwrap_or_default();
        let fd = Faults::default();
        let scenario = Scenario {
            devices: file.devices.unwrap_or(d.devices),
            prefix: file.prefix.unwrap_or(d.prefix),
            width: file.width.unwrap_or(d.width),
            interval: duration_or("interval", file.interval, d.interval)?,
            speed: file.speed.unwrap_or(d.speed),
            duration: duration_or("duration", file.duration, d.duration)?,
            stagger: duration_or("stagger", file.stagger, d.stagger)?,
            seed: file.seed.unwrap_or(d.seed),
            axes: file.axes.unwrap_or(d.axes),
            faults: Faults {
                count: faults.count.unwrap_or(fd.count),
                ids: faults.ids.unwrap_or(fd.ids),
                onset: duration_or("faults.onset", faults.onset, fd.onset)?,
                kind: faults.kind.unwrap_or(fd.kind),
                growth: duration_or("faults.growth", faults.growth, fd.growth)?,
                severity: faults.severity.unwrap_or(fd.severity),
            },
            partitions: file
                .events
                .into_iter()
                .map(partition)
                .collect::<Result<_, _>>()?,
        };
        scenario.validate()?;
        Ok(scenario)
    }

    /// Checks ranges and consistency (also after the CLI overrode values).
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Invalid(m));
        if !(1..=MAX_DEVICES).contains(&self.devices) {
            return bad(format!("devices must be 1–{MAX_DEVICES}"));
        }
        if self.width > 9 || self.prefix.len() > 100 || self.prefix.contains(['/', '+', '#']) {
            return bad("prefix: at most 100 characters without / + #; width ≤ 9".into());
        }
        if !(self.speed.is_finite() && self.speed > 0.0 && self.speed <= agent::options::MAX_SPEED)
        {
            return bad(format!(
                "speed must be in (0, {}]",
                agent::options::MAX_SPEED
            ));
        }
        if !(1..=3).contains(&self.axes) {
            return bad("axes must be 1, 2 or 3".into());
        }
        if self.faults.count > self.devices {
            return bad("faults.count exceeds devices".into());
        }
        if !["bpfo", "bpfi"].contains(&self.faults.kind.as_str()) {
            return bad("faults.kind must be bpfo or bpfi".into());
        }
        if !(self.faults.severity.is_finite() && (0.0..=1000.0).contains(&self.faults.severity)) {
            return bad("faults.severity must be 0–1000 g".into());
        }
        for p in &self.partitions {
            let end = p.first.checked_add(p.count);
            if p.first == 0 || p.count == 0 || end.is_none_or(|e| e - 1 > self.devices) {
                return bad(format!(
                    "partition of devices {}..+{} is outside 1–{}",
                    p.first, p.count, self.devices
                ));
            }
        }
        Ok(())
    }
}

fn duration_or(name: &str, text: Option<String>, default: Duration) -> Result<Duration, Error> {
    match text {
        None => Ok(default),
        Some(t) => {
            agent::source::parse_duration(&t).map_err(|e| Error::Invalid(format!("{name}: {e}")))
        }
    }
}

fn partition(event: EventFile) -> Result<Partition, Error> {
    if event.kind != "partition" {
        return Err(Error::Invalid(format!(
            "event kind {:?}: only \"partition\" is supported",
            event.kind
        )));
    }
    Ok(Partition {
        first: event.first,
        count: event.count,
        at: duration_or("events.at", Some(event.at), Duration::ZERO)?,
        duration: duration_or("events.duration", Some(event.duration), Duration::ZERO)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let text = r#"
            devices = 2000
            interval = "2s"
            speed = 0.5
            duration = "90s"
            stagger = "0s"
            [faults]
            count = 3
            ids = ["motor-0017"]
            onset = "40s"
            [[events]]
            kind = "partition"
            at = "20s"
            duration = "10s"
            first = 1
            count = 100
        "#;
        let s = Scenario::parse(text).expect("parses");
        assert_eq!(s.devices, 2000);
        assert_eq!(s.interval, Duration::from_secs(2));
        assert_eq!(s.stagger, Duration::ZERO);
        assert_eq!(s.faults.count, 3);
        assert_eq!(s.faults.ids, ["motor-0017"]);
        assert_eq!(s.partitions.len(), 1);
        assert_eq!(s.prefix, "motor-");
    }

    #[test]
    fn defaults_and_refusals() {
        assert_eq!(Scenario::parse("").expect("empty"), Scenario::default());
        for bad in [
            "devices = 0",
            "colour = 1",
            "speed = 0.0",
            "axes = 4",
            "interval = \"soon\"",
            "devices = 2\n[faults]\ncount = 3",
            "[faults]\nkind = \"cage\"",
            "[[events]]\nkind = \"reboot\"\nat = \"1s\"\nduration = \"1s\"\nfirst = 1\ncount = 1",
            "devices = 5\n[[events]]\nkind = \"partition\"\nat = \"1s\"\nduration = \"1s\"\nfirst = 5\ncount = 2",
            "devices = [",
        ] {
            assert!(Scenario::parse(bad).is_err(), "{bad}");
        }
    }
}
