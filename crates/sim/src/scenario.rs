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
//!
//! [[events]]            # the hub is killed (SIGKILL) and restarted on its data
//! kind = "hub_restart"  # (only when `bosun sim` started the hub itself)
//! at = "30s"
//!
//! [[events]]            # bad firmware later: a signed image rolled out to the fleet
//! kind = "rollout"      # (the devices need --firmware-key)
//! at = "45s"
//! name = "fw-2-1"
//! manifest = "fw.manifest.json"   # as `bosun firmware sign` wrote it
//! image = "fw.bin"
//! phases = "1%,10%,50%,100%"      # the default
//! policy = "rollback"             # or "pause" (the default)
//! soak = "30s"                    # per phase (the default here)
//! start_delay = "5s"              # random start delay bound (the default here)
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
    /// Hub restarts (kill -9, then start on the same data and ports), wall time since
    /// the fleet started, in order.
    pub hub_restarts: Vec<Duration>,
    /// Firmware rolled out to the fleet while it runs, in order.
    pub rollouts: Vec<RolloutEvent>,
}

/// A signed image uploaded to the hub and rolled out to the whole simulated fleet at
/// `at`: how an operator ships an update, and how "bad firmware later" is played (an
/// image that crashes on boot).
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutEvent {
    /// When, wall time since the fleet started.
    pub at: Duration,
    /// The rollout's name.
    pub name: String,
    /// The manifest `bosun firmware sign` wrote.
    pub manifest: std::path::PathBuf,
    /// The image it signs.
    pub image: std::path::PathBuf,
    /// Cumulative phase shares, e.g. `1%,10%,50%,100%`.
    pub phases: String,
    /// What a health-gate breach does: `pause` or `rollback`.
    pub policy: String,
    /// Soak time per phase.
    pub soak: Duration,
    /// Bound of the random delay before each device starts.
    pub start_delay: Duration,
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
            hub_restarts: Vec::new(),
            rollouts: Vec::new(),
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
    duration: Option<String>,
    first: Option<usize>,
    count: Option<usize>,
    name: Option<String>,
    manifest: Option<std::path::PathBuf>,
    image: Option<std::path::PathBuf>,
    phases: Option<String>,
    policy: Option<String>,
    soak: Option<String>,
    start_delay: Option<String>,
}

/// An event of the file, by kind.
enum Event {
    Partition(Partition),
    HubRestart(Duration),
    Rollout(RolloutEvent),
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
        let (mut partitions, mut hub_restarts, mut rollouts) = (Vec::new(), Vec::new(), Vec::new());
        for event in file.events {
            match event_of(event)? {
                Event::Partition(p) => partitions.push(p),
                Event::HubRestart(at) => hub_restarts.push(at),
                Event::Rollout(r) => rollouts.push(r),
            }
        }
        hub_restarts.sort();
        rollouts.sort_by_key(|r: &RolloutEvent| r.at);
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
            partitions,
            hub_restarts,
            rollouts,
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
        let events = self
            .hub_restarts
            .iter()
            .chain(self.rollouts.iter().map(|r| &r.at));
        if let Some(last) = events.max().filter(|&&t| t >= self.duration) {
            return bad(format!(
                "an event at {:.1} s is not before the end of the run ({:.1} s)",
                last.as_secs_f64(),
                self.duration.as_secs_f64()
            ));
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

/// One `[[events]]` entry: a partition needs `duration`, `first` and `count`; a hub
/// restart takes none of them.
fn event_of(event: EventFile) -> Result<Event, Error> {
    let at = duration_or("events.at", Some(event.at.clone()), Duration::ZERO)?;
    match event.kind.as_str() {
        "partition" => {
            let (Some(duration), Some(first), Some(count)) =
                (event.duration, event.first, event.count)
            else {
                return Err(Error::Invalid(
                    "a partition needs duration, first and count".into(),
                ));
            };
            Ok(Event::Partition(Partition {
                first,
                count,
                at,
                duration: duration_or("events.duration", Some(duration), Duration::ZERO)?,
            }))
        }
        "rollout" => rollout_of(event, at),
        "hub_restart" => {
            if event.duration.is_some() || event.first.is_some() || event.count.is_some() {
                return Err(Error::Invalid(
                    "a hub restart takes only `at` (it restarts the whole hub)".into(),
                ));
            }
            Ok(Event::HubRestart(at))
        }
        other => Err(Error::Invalid(format!(
            "event kind {other:?}: \"partition\", \"hub_restart\" or \"rollout\""
        ))),
    }
}

/// A `rollout` event: `name`, `manifest` and `image` are needed; phases and policy
/// have defaults.
fn rollout_of(event: EventFile, at: Duration) -> Result<Event, Error> {
    let (Some(name), Some(manifest), Some(image)) = (event.name, event.manifest, event.image)
    else {
        return Err(Error::Invalid(
            "a rollout needs name, manifest and image".into(),
        ));
    };
    let policy = event.policy.unwrap_or_else(|| "pause".into());
    if !["pause", "rollback"].contains(&policy.as_str()) {
        return Err(Error::Invalid(format!(
            "rollout policy {policy:?}: \"pause\" or \"rollback\""
        )));
    }
    if name.is_empty() || name.len() > 64 || name.contains(['/', '?', '#', ' ']) {
        return Err(Error::Invalid(format!(
            "rollout name {name:?}: 1–64 characters, no / ? # or space"
        )));
    }
    Ok(Event::Rollout(RolloutEvent {
        at,
        name,
        manifest,
        image,
        phases: event.phases.unwrap_or_else(|| "1%,10%,50%,100%".into()),
        policy,
        soak: duration_or("events.soak", event.soak, Duration::from_secs(30))?,
        start_delay: duration_or(
            "events.start_delay",
            event.start_delay,
            Duration::from_secs(5),
        )?,
    }))
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
        assert!(s.hub_restarts.is_empty());
    }

    #[test]
    fn rollouts_are_events_with_defaults() {
        let s = Scenario::parse(
            "duration = \"60s\"\n[[events]]\nkind = \"rollout\"\nat = \"30s\"\nname = \"bad\"\nmanifest = \"m.json\"\nimage = \"fw.bin\"\npolicy = \"rollback\"",
        )
        .expect("scenario");
        assert_eq!(s.rollouts.len(), 1);
        let r = &s.rollouts[0];
        assert_eq!((r.at, r.name.as_str()), (Duration::from_secs(30), "bad"));
        assert_eq!(
            (r.phases.as_str(), r.policy.as_str()),
            ("1%,10%,50%,100%", "rollback")
        );
        for bad in [
            "[[events]]\nkind = \"rollout\"\nat = \"1s\"\nname = \"x\"",
            "[[events]]\nkind = \"rollout\"\nat = \"1s\"\nname = \"x\"\nmanifest = \"m\"\nimage = \"i\"\npolicy = \"retry\"",
            "[[events]]\nkind = \"rollout\"\nat = \"1s\"\nname = \"a b\"\nmanifest = \"m\"\nimage = \"i\"",
            "duration = \"10s\"\n[[events]]\nkind = \"rollout\"\nat = \"20s\"\nname = \"x\"\nmanifest = \"m\"\nimage = \"i\"",
        ] {
            assert!(Scenario::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hub_restarts_are_events_in_order() {
        let text = r#"
            [[events]]
            kind = "hub_restart"
            at = "30s"
            [[events]]
            kind = "hub_restart"
            at = "10s"
        "#;
        let s = Scenario::parse(text).expect("parses");
        assert_eq!(
            s.hub_restarts,
            [Duration::from_secs(10), Duration::from_secs(30)]
        );
        assert!(s.partitions.is_empty());
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
            "[[events]]\nkind = \"partition\"\nat = \"1s\"",
            "[[events]]\nkind = \"hub_restart\"\nat = \"1s\"\ncount = 3",
            "[[events]]\nkind = \"hub_restart\"",
        ] {
            assert!(Scenario::parse(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,200}") {
            let _ = Scenario::parse(&text);
        }

        #[test]
        fn any_restart_time_parses_or_is_refused(secs in 0u64..200, duration in 1u64..200) {
            let text = format!(
                "duration = \"{duration}s\"\n[[events]]\nkind = \"hub_restart\"\nat = \"{secs}s\""
            );
            let parsed = Scenario::parse(&text);
            proptest::prop_assert_eq!(parsed.is_ok(), secs < duration);
        }
    }
}
