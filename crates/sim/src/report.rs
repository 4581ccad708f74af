//! The final report: what the hub says happened, set against what the fleet did, and
//! the verdict (which checks failed).
//!
//! - **messages lost** = Σ per device max(0, acknowledged − stored): a message the hub
//!   acknowledged (PUBACK means stored, docs/telemetry.md) but whose `x.rms` point is
//!   not in the store. At-least-once delivery may store a message twice; that is not
//!   counted against anything.
//! - **detection latency** = the device's first `entered` anomaly event − its fault
//!   onset (wall clock).
//! - **false alarms** = devices that entered the anomalous state without a fault (or
//!   before theirs started).
//! - **hub restarts**: how long the hub was down and how long until every device was
//!   connected again ([`crate::restart`]); a restart whose devices did not all come
//!   back before the end fails the run.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use crate::fleet::Outcome;
use crate::hub::{self, Anomaly, Capture, HubApi};
use crate::plan::Plan;
use crate::restart::Restart;
use crate::Error;

/// What the hub's API said at the end of a run.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Fleet devices in the registry.
    pub registered: usize,
    /// Fleet devices connected (measured by the caller while the fleet still ran).
    pub connected: usize,
    /// Feature messages stored per device.
    pub stored: HashMap<String, u64>,
    /// `entered` anomaly events since the start, oldest first.
    pub anomalies: Vec<Anomaly>,
    /// Stored captures.
    pub captures: Vec<Capture>,
    /// Hub restarts and the devices' reconnection (set by the caller that ran them).
    pub restarts: Vec<Restart>,
    /// When the registry first listed every fleet device as connected, since the
    /// start (as often as the caller looked; set by the caller).
    pub all_connected: Option<std::time::Duration>,
}

impl Observed {
    /// Asks the hub, after the fleet stopped; `connected` is what the caller counted
    /// just before stopping it.
    pub fn collect(
        api: &dyn HubApi,
        plan: &Plan,
        started_ms: i64,
        connected: usize,
    ) -> Result<Observed, Error> {
        let ids: HashSet<&str> = plan.devices.iter().map(|d| d.id.as_str()).collect();
        Ok(Observed {
            registered: hub::count_devices(api, &ids, false)?,
            connected,
            // The hub stamps points with its own clock (the same one on one machine);
            // a little slack, but not so much that a previous run's points count.
            stored: hub::stored_counts(api, started_ms - 2_000)?,
            anomalies: hub::anomalies(api, started_ms)?,
            captures: hub::captures(api, None)?,
            restarts: Vec::new(),
            all_connected: None,
        })
    }
}

/// The numbers of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// Devices simulated.
    pub devices: usize,
    /// Of them, in the hub's registry.
    pub registered: usize,
    /// Of them, connected at the end of the run.
    pub connected: usize,
    /// When all of them were first seen connected, since the start.
    pub all_connected: Option<std::time::Duration>,
    /// Feature messages produced by the agents.
    pub produced: u64,
    /// Of them, acknowledged by the hub.
    pub acked: u64,
    /// Of them, still in the agents' buffers at the end.
    pub unsent: u64,
    /// Feature messages the hub stored.
    pub stored: u64,
    /// Acknowledged but not stored.
    pub lost: u64,
    /// Wall time the fleet ran, seconds.
    pub seconds: f64,
    /// Devices with a fault.
    pub faulty: usize,
    /// Of them, detected after onset.
    pub detected: usize,
    /// Detection latencies, ms, sorted.
    pub latencies_ms: Vec<i64>,
    /// Devices that entered the anomalous state without (or before) a fault.
    pub false_alarms: Vec<String>,
    /// Complete captures stored for fleet devices.
    pub captures: usize,
    /// Agents that stopped with an error (`id: error`).
    pub errors: Vec<String>,
    /// Connections the hub accepted, all agents (restarts and partitions add some).
    pub connects: u64,
    /// Connections the agents lost (not their own clean disconnects).
    pub disconnects: u64,
    /// Hub restarts.
    pub restarts: Vec<Restart>,
}

impl Report {
    /// Sets the hub's view against the fleet's.
    pub fn build(plan: &Plan, outcome: &Outcome, observed: &Observed) -> Report {
        let mut first: HashMap<&str, &Anomaly> = HashMap::new();
        for a in &observed.anomalies {
            first.entry(a.device_id.as_str()).or_insert(a);
        }
        let (mut latencies, mut false_alarms) = (Vec::new(), Vec::new());
        for device in &plan.devices {
            let Some(event) = first.get(device.id.as_str()) else {
                continue;
            };
            let onset = device
                .fault_at
                .map(|at| outcome.started_ms + at.as_millis() as i64);
            match onset {
                Some(onset) if event.time_ms >= onset => latencies.push(event.time_ms - onset),
                _ => false_alarms.push(device.id.clone()),
            }
        }
        latencies.sort_unstable();
        let ours: HashSet<&str> = plan.devices.iter().map(|d| d.id.as_str()).collect();
        let stored_of = |id: &str| observed.stored.get(id).copied().unwrap_or(0);
        let d = &outcome.devices;
        Report {
            devices: plan.devices.len(),
            registered: observed.registered,
            connected: observed.connected,
            all_connected: observed.all_connected,
            produced: d.iter().map(|o| o.windows).sum(),
            acked: d.iter().map(|o| o.acked()).sum(),
            unsent: d.iter().map(|o| o.unsent).sum(),
            stored: d.iter().map(|o| stored_of(&o.id)).sum(),
            lost: d
                .iter()
                .map(|o| o.acked().saturating_sub(stored_of(&o.id)))
                .sum(),
            seconds: outcome.ran.as_secs_f64(),
            faulty: plan.faulty().count(),
            detected: latencies.len(),
            latencies_ms: latencies,
            false_alarms,
            captures: observed
                .captures
                .iter()
                .filter(|c| c.complete && ours.contains(c.device_id.as_str()))
                .count(),
            errors: d
                .iter()
                .filter_map(|o| Some(format!("{}: {}", o.id, o.error.as_ref()?)))
                .collect(),
            connects: d.iter().map(|o| o.connects).sum(),
            disconnects: d.iter().map(|o| o.disconnects).sum(),
            restarts: observed.restarts.clone(),
        }
    }

    /// Stored feature messages per second of the run.
    pub fn msgs_per_s(&self) -> f64 {
        if self.seconds > 0.0 {
            self.stored as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// The checks that failed; empty when the run passed.
    pub fn failures(&self) -> Vec<String> {
        let mut failed = Vec::new();
        if self.connected < self.devices {
            failed.push(format!(
                "{} of {} devices connected",
                self.connected, self.devices
            ));
        }
        if self.lost > 0 {
            failed.push(format!("{} messages lost", self.lost));
        }
        if self.acked == 0 {
            failed.push("no message was acknowledged".into());
        }
        if self.detected < self.faulty {
            failed.push(format!(
                "{} of {} faults detected",
                self.detected, self.faulty
            ));
        }
        if !self.false_alarms.is_empty() {
            failed.push(format!("{} false alarms", self.false_alarms.len()));
        }
        if !self.errors.is_empty() {
            failed.push(format!("{} agents failed", self.errors.len()));
        }
        for r in self.restarts.iter().filter(|r| r.reconnect.is_none()) {
            failed.push(format!(
                "after the hub restart at {:.1} s only {} of {} devices reconnected",
                r.at.as_secs_f64(),
                r.reconnected,
                r.expected
            ));
        }
        failed
    }

    /// The report as a Markdown table, then the verdict and the failed checks.
    pub fn markdown(&self) -> String {
        let mut out = self.table();
        let failures = self.failures();
        if failures.is_empty() {
            out.push_str("\nresult: PASS\n");
        } else {
            let _ = writeln!(out, "\nresult: FAIL ({})", failures.join("; "));
        }
        for id in self.false_alarms.iter().take(10) {
            let _ = writeln!(out, "false alarm: {id}");
        }
        for e in self.errors.iter().take(10) {
            let _ = writeln!(out, "agent error: {e}");
        }
        out
    }

    /// The numbers alone, as a Markdown table.
    pub fn table(&self) -> String {
        let latency = |q: f64| {
            let n = self.latencies_ms.len();
            let i = ((n as f64 - 1.0) * q).round() as usize;
            self.latencies_ms
                .get(i.min(n.saturating_sub(1)))
                .map_or("–".to_owned(), |ms| {
                    format!("{:.1} s", *ms as f64 / 1000.0)
                })
        };
        let rows = [
            ("devices", self.devices.to_string()),
            ("provisioned (in the registry)", self.registered.to_string()),
            ("connected at the end", self.connected.to_string()),
            (
                "all connected after",
                self.all_connected
                    .map_or("–".into(), |d| format!("{:.0} s", d.as_secs_f64())),
            ),
            ("feature messages produced", self.produced.to_string()),
            ("acknowledged by the hub", self.acked.to_string()),
            ("still buffered on devices", self.unsent.to_string()),
            ("stored by the hub", self.stored.to_string()),
            ("**messages lost**", format!("**{}**", self.lost)),
            ("run time", format!("{:.1} s", self.seconds)),
            ("stored msgs/s", format!("{:.0}", self.msgs_per_s())),
            (
                "faulty devices detected",
                format!("{} of {}", self.detected, self.faulty),
            ),
            (
                "detection latency min / median / max",
                format!("{} / {} / {}", latency(0.0), latency(0.5), latency(1.0)),
            ),
            ("false alarms", self.false_alarms.len().to_string()),
            ("captures stored (complete)", self.captures.to_string()),
            ("agents failed", self.errors.len().to_string()),
            (
                "agent connections (lost)",
                format!("{} ({})", self.connects, self.disconnects),
            ),
        ];
        let mut out = String::from("| metric | value |\n|---|---|\n");
        for (name, value) in rows {
            let _ = writeln!(out, "| {name} | {value} |");
        }
        for (name, value) in self.restart_rows() {
            let _ = writeln!(out, "| {name} | {value} |");
        }
        out
    }

    /// One group of rows per hub restart.
    fn restart_rows(&self) -> Vec<(String, String)> {
        let mut rows = Vec::new();
        for r in &self.restarts {
            let at = format!("hub restart at {:.1} s", r.at.as_secs_f64());
            rows.push((
                format!("{at}: down (kill -9 → listening)"),
                format!("{:.1} s", r.down.as_secs_f64()),
            ));
            rows.push((
                format!("{at}: devices reconnected"),
                format!("{} of {}", r.reconnected, r.expected),
            ));
            rows.push((
                format!("{at}: reconnection time (listening → all connected)"),
                r.reconnect.map_or("not all before the end".into(), |d| {
                    format!("{:.1} s", d.as_secs_f64())
                }),
            ));
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::DeviceOutcome;
    use crate::scenario::Scenario;
    use std::time::Duration;

    fn plan() -> Plan {
        let mut s = Scenario {
            devices: 3,
            ..Scenario::default()
        };
        s.faults.ids = vec!["motor-0002".into()];
        s.faults.onset = Duration::from_secs(10);
        Plan::new(s).expect("plan")
    }

    fn outcome(plan: &Plan) -> Outcome {
        Outcome {
            devices: plan
                .devices
                .iter()
                .map(|d| DeviceOutcome {
                    id: d.id.clone(),
                    windows: 10,
                    unsent: 1,
                    evicted: 0,
                    connects: 1,
                    disconnects: 0,
                    error: None,
                })
                .collect(),
            started_ms: 1_000_000,
            ran: Duration::from_secs(30),
        }
    }

    fn anomaly(id: &str, time_ms: i64) -> Anomaly {
        Anomaly {
            device_id: id.into(),
            time_ms,
            score: 9.0,
            top: vec![],
        }
    }

    #[test]
    fn a_clean_run_passes() {
        let plan = plan();
        let observed = Observed {
            registered: 3,
            connected: 3,
            stored: plan.devices.iter().map(|d| (d.id.clone(), 9)).collect(),
            anomalies: vec![anomaly("motor-0002", 1_012_500)],
            captures: vec![],
            restarts: vec![Restart {
                at: Duration::from_secs(5),
                down: Duration::from_millis(800),
                reconnect: Some(Duration::from_millis(2_500)),
                reconnected: 3,
                expected: 3,
            }],
            all_connected: None,
        };
        let r = Report::build(&plan, &outcome(&plan), &observed);
        assert_eq!((r.acked, r.stored, r.lost), (27, 27, 0));
        assert_eq!(r.latencies_ms, [2_500]);
        assert!(r.failures().is_empty(), "{:?}", r.failures());
        assert!(r.markdown().contains("| **messages lost** | **0** |"));
        assert!(r.markdown().contains(
            "| hub restart at 5.0 s: reconnection time (listening → all connected) | 2.5 s |"
        ));
        assert!((r.msgs_per_s() - 0.9).abs() < 1e-9);
    }

    #[test]
    fn losses_misses_and_false_alarms_fail() {
        let plan = plan();
        let observed = Observed {
            registered: 3,
            connected: 2,
            stored: [("motor-0001".to_owned(), 5)].into(),
            anomalies: vec![
                anomaly("motor-0003", 1_001_000),
                anomaly("motor-0002", 1_005_000),
            ],
            captures: vec![],
            restarts: vec![Restart {
                at: Duration::from_secs(5),
                down: Duration::from_millis(800),
                reconnect: None,
                reconnected: 1,
                expected: 3,
            }],
            all_connected: None,
        };
        let r = Report::build(&plan, &outcome(&plan), &observed);
        assert_eq!(r.lost, 4 + 9 + 9);
        assert_eq!(r.detected, 0);
        assert_eq!(r.false_alarms, ["motor-0002", "motor-0003"]);
        assert_eq!(r.failures().len(), 5, "{:?}", r.failures());
        assert!(r.markdown().contains("result: FAIL"));
    }
}
