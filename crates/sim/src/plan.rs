//! A scenario resolved per device: its id, when it starts, whether and when its bearing
//! starts to fail, and when it is cut off. Pure and deterministic: the same scenario
//! always gives the same plan.

use std::collections::HashMap;
use std::time::Duration;

use crate::scenario::Scenario;
use crate::Error;

/// What one simulated device does.
#[derive(Clone, Debug, PartialEq)]
pub struct DevicePlan {
    /// Device number, 1-based.
    pub number: usize,
    /// Device id (`{prefix}{number:0width}`).
    pub id: String,
    /// Noise seed (scenario seed and number), so every run reproduces.
    pub seed: u64,
    /// First start, wall time since the fleet started.
    pub start: Duration,
    /// Fault onset, wall time since the fleet started; `None`: healthy.
    pub fault_at: Option<Duration>,
    /// Partitions `[from, to)`, wall time since the fleet started, in order.
    pub offline: Vec<(Duration, Duration)>,
}

/// The whole fleet's plan.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The scenario it came from.
    pub scenario: Scenario,
    /// One entry per device, by number.
    pub devices: Vec<DevicePlan>,
}

impl Plan {
    /// Resolves `scenario`; fails when a faulty id is not one of the fleet's.
    pub fn new(scenario: Scenario) -> Result<Plan, Error> {
        scenario.validate()?;
        let n = scenario.devices;
        let mut devices: Vec<DevicePlan> = (1..=n)
            .map(|number| DevicePlan {
                number,
                id: device_id(&scenario, number),
                seed: device_seed(scenario.seed, number),
                start: scenario.stagger.mul_f64((number - 1) as f64 / n as f64),
                fault_at: None,
                offline: Vec::new(),
            })
            .collect();
        let index: HashMap<String, usize> = devices
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.clone(), i))
            .collect();
        let count = scenario.faults.count;
        let mut faulty: Vec<usize> = (0..count).map(|k| (k * n + n / 2) / count.max(1)).collect();
        for id in &scenario.faults.ids {
            let i = index.get(id).ok_or_else(|| {
                Error::Invalid(format!("faulty device {id:?} is not in the fleet"))
            })?;
            faulty.push(*i);
        }
        for i in faulty {
            if let Some(d) = devices.get_mut(i) {
                d.fault_at = Some(scenario.faults.onset);
            }
        }
        for p in &scenario.partitions {
            for d in devices.iter_mut().skip(p.first - 1).take(p.count) {
                d.offline.push((p.at, p.at + p.duration));
            }
        }
        for d in &mut devices {
            d.offline.sort();
        }
        Ok(Plan { scenario, devices })
    }

    /// Keeps only shard `index` of `count` (devices whose number − 1 ≡ index mod
    /// count), for one of several simulator processes.
    pub fn shard(&mut self, index: usize, count: usize) {
        let count = count.max(1);
        self.devices.retain(|d| (d.number - 1) % count == index);
    }

    /// Devices whose agents should be running at wall offset `t`: started, and not
    /// cut off by a partition.
    pub fn running_at(&self, t: Duration) -> usize {
        self.devices
            .iter()
            .filter(|d| d.start <= t && !d.offline.iter().any(|&(from, to)| from <= t && t < to))
            .count()
    }

    /// The devices that develop a fault.
    pub fn faulty(&self) -> impl Iterator<Item = &DevicePlan> {
        self.devices.iter().filter(|d| d.fault_at.is_some())
    }
}

/// A device's noise seed: SplitMix64 of the scenario seed and the number, odd. Odd
/// because the synthetic motor's xorshift state is `seed | 1`: plain consecutive
/// seeds would give pairs of devices the very same noise.
pub fn device_seed(seed: u64, number: usize) -> u64 {
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(number as u64);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1
}

/// `{prefix}{number}` with the number zero-padded to the scenario's width.
pub fn device_id(scenario: &Scenario, number: usize) -> String {
    format!(
        "{}{:0width$}",
        scenario.prefix,
        number,
        width = scenario.width
    )
}

impl DevicePlan {
    /// The `synthetic:` source spec for an agent started at wall offset `started`:
    /// the onset is converted to that agent's device clock (which starts at 0 at each
    /// start and runs `speed` times faster).
    pub fn source_spec(&self, scenario: &Scenario, started: Duration) -> String {
        let mut spec = format!("synthetic:seed={}", self.seed);
        if let Some(at) = self.fault_at {
            let onset = at.saturating_sub(started).mul_f64(scenario.speed);
            spec.push_str(&format!(
                ",fault={},onset={}ms,growth={}ms,severity={}",
                scenario.faults.kind,
                onset.as_millis(),
                scenario.faults.growth.as_millis(),
                scenario.faults.severity
            ));
        }
        spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Partition;

    fn scenario() -> Scenario {
        let mut s = Scenario {
            devices: 100,
            width: 2,
            stagger: Duration::from_secs(10),
            ..Scenario::default()
        };
        s.faults.count = 2;
        s.faults.ids = vec!["motor-17".into()];
        s.partitions.push(Partition {
            first: 91,
            count: 10,
            at: Duration::from_secs(5),
            duration: Duration::from_secs(5),
        });
        s
    }

    #[test]
    fn ids_faults_starts_and_partitions() {
        let plan = Plan::new(scenario()).expect("plan");
        assert_eq!(plan.devices[0].id, "motor-01");
        assert_eq!(plan.devices[99].id, "motor-100");
        let faulty: Vec<&str> = plan.faulty().map(|d| d.id.as_str()).collect();
        assert_eq!(faulty, ["motor-17", "motor-26", "motor-76"]);
        assert_eq!(plan.devices[50].start, Duration::from_secs(5));
        assert!(plan.devices[89].offline.is_empty());
        assert_eq!(plan.devices[90].offline.len(), 1);
        assert_eq!(plan.running_at(Duration::from_millis(9550)), 96 - 6);
        assert_eq!(plan.running_at(Duration::from_secs(11)), 100);
        // Distinct even after the motor's `| 1`.
        let seeds: std::collections::HashSet<u64> =
            plan.devices.iter().map(|d| d.seed | 1).collect();
        assert_eq!(seeds.len(), 100);
    }

    #[test]
    fn onset_is_in_each_start_s_device_time() {
        let mut s = scenario();
        s.speed = 2.0;
        let plan = Plan::new(s.clone()).expect("plan");
        let d = &plan.devices[16];
        let spec = d.source_spec(&s, Duration::from_secs(10));
        assert!(spec.contains("fault=bpfo,onset=60000ms"), "{spec}");
        assert!(agent::parse_source(&spec, 1).is_ok());
        assert_eq!(
            plan.devices[0].source_spec(&s, Duration::ZERO),
            format!("synthetic:seed={}", plan.devices[0].seed)
        );
    }

    #[test]
    fn shards_split_the_fleet() {
        let mut plan = Plan::new(scenario()).expect("plan");
        plan.shard(1, 3);
        assert_eq!(plan.devices.len(), 33);
        assert_eq!(plan.devices[0].id, "motor-02");
        assert!(plan.devices.iter().all(|d| d.number % 3 == 2));
    }

    #[test]
    fn unknown_faulty_id_is_refused() {
        let mut s = scenario();
        s.faults.ids = vec!["pump-1".into()];
        assert!(Plan::new(s).is_err());
    }
}
