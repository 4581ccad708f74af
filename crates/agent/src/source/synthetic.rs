//! A synthetic motor: what a healthy or failing machine's accelerometer would read, for
//! the fleet simulator and for tests without recordings.
//!
//! The signal per axis is the sum of
//! - the 1× shaft tone (imbalance, amplitude `imbalance` g, scaled by load) and a weaker
//!   2× tone (misalignment);
//! - Gaussian noise (`noise` g RMS);
//! - once a bearing fault has started (`onset`, device time), an impact train at BPFO or
//!   BPFI of the SKF 6205 (the CWRU bearing), each impact ringing a 3 kHz resonance
//!   that decays in about a millisecond, with 1 % jitter in the spacing (rolling
//!   elements slip). An inner-race defect turns with the shaft, so its impacts are
//!   amplitude-modulated at 1×. The impact amplitude grows linearly from 0 at onset to
//!   `severity` g after `growth` (then stays), the slow build-up a spall has.
//!
//! The y and z axes see the same sources with other gains (0.7 and 0.4) and phases, as
//! a triaxial sensor on a bearing housing does. Deterministic for a seed: the device id
//! seeds it in the agent, so two simulated devices differ but each reproduces.

use std::f64::consts::PI;
use std::time::Duration;

use device::BearingGeometry;

use super::{options, parse_duration, parse_number, Frame, Source};
use crate::Error;

/// The resonance the impacts ring (inside the envelope band the device crate uses).
const RESONANCE_HZ: f64 = 3_000.0;
/// Decay time constant of one impact's ringing, seconds.
const RING_DECAY_S: f64 = 0.001;
/// An impact is ignored after this many decay constants (e⁻⁸ ≈ 3e-4).
const RING_SPAN: f64 = 8.0 * RING_DECAY_S;
/// Gains of the y and z axes relative to x.
const AXIS_GAIN: [f32; 3] = [1.0, 0.7, 0.4];
/// Phase offsets of the y and z axes, radians.
const AXIS_PHASE: [f64; 3] = [0.0, 1.1, 2.3];

/// Which bearing defect the model grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// Outer race: impacts at BPFO, constant amplitude.
    Bpfo,
    /// Inner race: impacts at BPFI, modulated at 1×.
    Bpfi,
}

/// The model's parameters; `synthetic:k=v,…` on the command line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MotorSpec {
    /// Sampling rate, Hz (`rate=`, default 12,000).
    pub rate_hz: f32,
    /// Shaft speed, rpm (`rpm=`, default 1797).
    pub rpm: f32,
    /// Load, 0–1 (`load=`, default 0.5): scales the shaft tones.
    pub load: f32,
    /// 1× amplitude at full load, g (`imbalance=`, default 0.3).
    pub imbalance: f32,
    /// Noise RMS, g (`noise=`, default 0.05).
    pub noise: f32,
    /// The fault, if any (`fault=bpfo|bpfi|none`).
    pub fault: Option<FaultKind>,
    /// Device time at which the fault starts (`onset=`, default 0 s).
    pub onset: Duration,
    /// Time from onset to full severity (`growth=`, default 10 min).
    pub growth: Duration,
    /// Impact amplitude at full severity, g (`severity=`, default 2).
    pub severity: f32,
    /// Noise seed (`seed=`); the agent uses a hash of the device id by default.
    pub seed: u64,
}

impl Default for MotorSpec {
    fn default() -> Self {
        MotorSpec {
            rate_hz: 12_000.0,
            rpm: 1797.0,
            load: 0.5,
            imbalance: 0.3,
            noise: 0.05,
            fault: None,
            onset: Duration::ZERO,
            growth: Duration::from_secs(600),
            severity: 2.0,
            seed: 1,
        }
    }
}

impl MotorSpec {
    /// Parses `k=v,…` (the part after `synthetic:`) with `seed` unless `seed=` is
    /// given; unknown keys are errors.
    pub fn parse(text: &str, seed: u64) -> Result<MotorSpec, Error> {
        let mut spec = MotorSpec {
            seed,
            ..MotorSpec::default()
        };
        for (name, value) in options(text) {
            match name {
                "rate" => spec.rate_hz = parse_number(name, value)?,
                "rpm" => spec.rpm = parse_number(name, value)?,
                "load" => spec.load = parse_number(name, value)?,
                "imbalance" => spec.imbalance = parse_number(name, value)?,
                "noise" => spec.noise = parse_number(name, value)?,
                "severity" => spec.severity = parse_number(name, value)?,
                "onset" => spec.onset = parse_duration(value)?,
                "growth" => spec.growth = parse_duration(value)?,
                "seed" => {
                    spec.seed = value
                        .parse()
                        .map_err(|_| Error::Config(format!("seed: {value:?} is not a number")))?
                }
                "fault" => {
                    spec.fault = match value {
                        "bpfo" => Some(FaultKind::Bpfo),
                        "bpfi" => Some(FaultKind::Bpfi),
                        "none" => None,
                        other => {
                            return Err(Error::Config(format!(
                                "fault {other:?}: use bpfo, bpfi or none"
                            )))
                        }
                    }
                }
                other => {
                    return Err(Error::Config(format!(
                        "synthetic: unknown option {other:?}"
                    )))
                }
            }
        }
        spec.validate()?;
        Ok(spec)
    }

    /// Refuses rates and amplitudes the model cannot use.
    fn validate(&self) -> Result<(), Error> {
        if !(10_000.0..=100_000.0).contains(&self.rate_hz) {
            return Err(Error::Config(
                "synthetic: rate must be 10000–100000 Hz (the envelope band is 2–4 kHz)".into(),
            ));
        }
        if !(0.0..=100_000.0).contains(&self.rpm) || !(0.0..=1.0).contains(&self.load) {
            return Err(Error::Config("synthetic: rpm ≥ 0 and load in 0–1".into()));
        }
        let amplitudes = [self.imbalance, self.noise, self.severity];
        if amplitudes.iter().any(|a| !(0.0..=1000.0).contains(a)) {
            return Err(Error::Config(
                "synthetic: amplitudes must be 0–1000 g".into(),
            ));
        }
        Ok(())
    }
}

/// The running model.
#[derive(Clone, Debug)]
pub struct Motor {
    spec: MotorSpec,
    /// Time of the next sample, seconds of device time.
    t: f64,
    /// Start times of impacts still ringing, oldest first.
    ringing: Vec<f64>,
    /// When the next impact happens.
    next_impact: f64,
    /// xorshift64 state (never 0).
    rng: u64,
}

impl Motor {
    /// A motor at device time 0.
    pub fn new(spec: MotorSpec) -> Motor {
        let mut motor = Motor {
            spec,
            t: 0.0,
            ringing: Vec::new(),
            next_impact: 0.0,
            rng: spec.seed | 1,
        };
        motor.next_impact = motor.spec.onset.as_secs_f64();
        motor
    }

    /// Impact amplitude at time `t`, g: 0 before onset, then a linear ramp.
    pub fn severity_at(&self, t: f64) -> f32 {
        let onset = self.spec.onset.as_secs_f64();
        if self.spec.fault.is_none() || t < onset {
            return 0.0;
        }
        let growth = self.spec.growth.as_secs_f64().max(1e-3);
        (((t - onset) / growth).min(1.0) as f32) * self.spec.severity
    }

    fn shaft_hz64(&self) -> f64 {
        f64::from(self.spec.rpm) / 60.0
    }

    /// Impacts per second of the configured fault.
    fn defect_hz(&self) -> f64 {
        let f = BearingGeometry::SKF_6205.frequencies(self.spec.rpm / 60.0);
        match self.spec.fault {
            Some(FaultKind::Bpfi) => f64::from(f.bpfi),
            _ => f64::from(f.bpfo),
        }
    }

    /// Uniform in [0, 1).
    fn uniform(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn gaussian(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * PI * v).cos()
    }

    /// Schedules impacts up to time `t` and forgets those that have died out.
    fn update_impacts(&mut self, t: f64) {
        let defect_hz = self.defect_hz();
        if self.spec.fault.is_none() || defect_hz <= 0.0 {
            return;
        }
        while self.next_impact <= t {
            self.ringing.push(self.next_impact);
            let jitter = 1.0 + 0.01 * (2.0 * self.uniform() - 1.0);
            self.next_impact += jitter / defect_hz;
        }
        self.ringing.retain(|&start| t - start < RING_SPAN);
    }

    /// The bearing's contribution at `t` (before the axis gain).
    fn impacts_at(&self, t: f64, phase: f64) -> f64 {
        let amplitude = f64::from(self.severity_at(t));
        if amplitude == 0.0 {
            return 0.0;
        }
        let modulation = match self.spec.fault {
            Some(FaultKind::Bpfi) => 0.5 * (1.0 + (2.0 * PI * self.shaft_hz64() * t + phase).cos()),
            _ => 1.0,
        };
        let ring: f64 = self
            .ringing
            .iter()
            .map(|&start| {
                let dt = t - start;
                (-dt / RING_DECAY_S).exp() * (2.0 * PI * RESONANCE_HZ * dt).sin()
            })
            .sum();
        amplitude * modulation * ring
    }

    /// One frame at the current time, then advance by one sample.
    fn next_frame(&mut self) -> Frame {
        let t = self.t;
        self.update_impacts(t);
        let shaft = 2.0 * PI * self.shaft_hz64() * t;
        let one_x = f64::from(self.spec.imbalance * self.spec.load);
        let mut frame = [0.0f32; 3];
        for (axis, slot) in frame.iter_mut().enumerate() {
            let phase = AXIS_PHASE.get(axis).copied().unwrap_or_default();
            let tones = one_x * (shaft + phase).sin() + 0.3 * one_x * (2.0 * shaft + phase).sin();
            let noise = f64::from(self.spec.noise) * self.gaussian();
            let value = tones + noise + self.impacts_at(t, phase);
            *slot = value as f32 * AXIS_GAIN.get(axis).copied().unwrap_or_default();
        }
        self.t += 1.0 / f64::from(self.spec.rate_hz);
        frame
    }
}

impl Source for Motor {
    fn rate_hz(&self) -> f32 {
        self.spec.rate_hz
    }

    fn axes(&self) -> usize {
        3
    }

    fn shaft_hz(&self) -> f32 {
        self.spec.rpm / 60.0
    }

    /// Jumps to the device time; impacts in flight are dropped and the next one is
    /// scheduled from there (bursts are far apart compared with a ring).
    fn start_burst(&mut self, device_time: Duration) {
        let t = device_time.as_secs_f64();
        if t > self.t {
            self.t = t;
            self.ringing.clear();
            self.next_impact = self.next_impact.max(t);
        }
    }

    fn fill(&mut self, frames: &mut [Frame]) -> Result<(), Error> {
        for frame in frames {
            *frame = self.next_frame();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::FeatureMaker;

    fn features_at(spec: MotorSpec, at: Duration) -> device::Features {
        let mut motor = Motor::new(spec);
        let mut maker = FeatureMaker::new(4096);
        motor.start_burst(at);
        maker.compute(&mut motor).expect("features")
    }

    #[test]
    fn parses_specs() {
        let spec = MotorSpec::parse("fault=bpfo,onset=120s,rpm=1750,seed=7", 1).expect("spec");
        assert_eq!(spec.fault, Some(FaultKind::Bpfo));
        assert_eq!(spec.onset, Duration::from_secs(120));
        assert_eq!(spec.rpm, 1750.0);
        assert!(MotorSpec::parse("fault=cage", 1).is_err());
        assert!(MotorSpec::parse("colour=red", 1).is_err());
        assert!(MotorSpec::parse("rate=10", 1).is_err());
    }

    #[test]
    fn fault_grows_after_onset_and_shows_in_the_envelope() {
        let spec = MotorSpec {
            fault: Some(FaultKind::Bpfo),
            onset: Duration::from_secs(100),
            growth: Duration::from_secs(100),
            ..MotorSpec::default()
        };
        let healthy = features_at(spec, Duration::from_secs(50));
        let early = features_at(spec, Duration::from_secs(120));
        let late = features_at(spec, Duration::from_secs(300));
        let env = |f: &device::Features| f.axes[0].map(|a| a.envelope.bpfo[0]).unwrap_or(0.0);
        let bpfi = |f: &device::Features| f.axes[0].map(|a| a.envelope.bpfi[0]).unwrap_or(0.0);
        assert!(
            env(&early) > 10.0 * env(&healthy),
            "{} vs {}",
            env(&early),
            env(&healthy)
        );
        assert!(
            env(&late) > 4.0 * env(&early),
            "{} vs {}",
            env(&late),
            env(&early)
        );
        assert!(env(&late) > 10.0 * bpfi(&late));
        assert!(healthy.axes[2].is_some(), "three axes");
    }

    #[test]
    fn inner_race_fault_shows_at_bpfi() {
        let spec = MotorSpec {
            fault: Some(FaultKind::Bpfi),
            ..MotorSpec::default()
        };
        let f = features_at(spec, Duration::from_secs(600));
        let a = f.axes[0].expect("axis x");
        assert!(a.envelope.bpfi[0] > 5.0 * a.envelope.bpfo[0], "{a:?}");
    }
}
