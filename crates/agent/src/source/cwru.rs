//! Replay of a CWRU bearing record (12 kHz, drive end, one axis) in a loop.
//!
//! The record is read whole at start (the largest is about 480 KB) with `device::raw`.
//! The rig has one drive-end accelerometer, so frames carry x only and [`Source::axes`]
//! is 1; the feature messages then hold one axis, as the hub expects for CWRU data.
//! The shaft speed is not in the file: `rpm=` gives it (default 1797 rpm, the 0 HP
//! records; the 2 HP ones run near 1750).
//!
//! `fault=FILE,onset=T` plays a second record from device time `T` on: a healthy
//! record first (the anomaly model's warm-up), then a fault record, which is how the
//! end-to-end test drives the whole reference scenario with real bearing data.

use std::path::Path;
use std::time::Duration;

use super::{options, parse_duration, parse_number, Frame, Source};
use crate::Error;

/// Sampling rate of the CWRU drive-end records used here.
pub const CWRU_RATE_HZ: f32 = 12_000.0;
/// Shaft speed assumed when the spec gives none, rpm.
pub const DEFAULT_RPM: f32 = 1797.0;

/// Loops over one record.
#[derive(Debug, Clone)]
pub struct CwruReplay {
    /// The whole record, g.
    samples: Vec<f32>,
    /// Next sample to play.
    position: usize,
    /// Shaft speed, Hz.
    shaft_hz: f32,
    /// The record to switch to, and from when (device time); taken at the switch.
    fault: Option<(Vec<f32>, Duration)>,
}

impl CwruReplay {
    /// Reads `path` (little-endian `f32`), for a record at `rpm`.
    pub fn open(path: &Path, rpm: f32) -> Result<CwruReplay, Error> {
        let samples = device::raw::read_f32_le(path)
            .map_err(|e| Error::Source(format!("{}: {e}", path.display())))?;
        CwruReplay::from_samples(samples, rpm)
    }

    /// A replay of samples already in memory (tests, other recordings at 12 kHz).
    pub fn from_samples(samples: Vec<f32>, rpm: f32) -> Result<CwruReplay, Error> {
        if samples.is_empty() {
            return Err(Error::Source("the record holds no samples".into()));
        }
        if let Some(i) = samples.iter().position(|x| !x.is_finite()) {
            return Err(Error::Source(format!("sample {i} is not finite")));
        }
        if !(rpm.is_finite() && rpm >= 0.0) {
            return Err(Error::Config(format!("rpm {rpm} is not a speed")));
        }
        Ok(CwruReplay {
            samples,
            position: 0,
            shaft_hz: rpm / 60.0,
            fault: None,
        })
    }

    /// Plays `fault` (samples, checked like the first record's) from device time
    /// `onset` on, in place of the record given at start.
    pub fn then_play(mut self, fault: Vec<f32>, onset: Duration) -> Result<CwruReplay, Error> {
        let checked = CwruReplay::from_samples(fault, 0.0)?;
        self.fault = Some((checked.samples, onset));
        Ok(self)
    }

    /// Parses `FILE[,rpm=R]` and opens the file.
    pub fn open_spec(spec: &str) -> Result<CwruReplay, Error> {
        let mut parts = spec.splitn(2, ',');
        let path = parts.next().unwrap_or_default();
        if path.is_empty() {
            return Err(Error::Config("cwru: needs a file (cwru:FILE)".into()));
        }
        let (mut rpm, mut fault, mut onset) = (DEFAULT_RPM, None, Duration::ZERO);
        for (name, value) in options(parts.next().unwrap_or_default()) {
            match name {
                "rpm" => rpm = parse_number("rpm", value)?,
                "fault" => fault = Some(Path::new(value)),
                "onset" => onset = parse_duration(value)?,
                other => return Err(Error::Config(format!("cwru: unknown option {other:?}"))),
            }
        }
        let replay = CwruReplay::open(Path::new(path), rpm)?;
        match fault {
            Some(file) => {
                let samples = device::raw::read_f32_le(file)
                    .map_err(|e| Error::Source(format!("{}: {e}", file.display())))?;
                replay.then_play(samples, onset)
            }
            None => Ok(replay),
        }
    }
}

impl Source for CwruReplay {
    fn rate_hz(&self) -> f32 {
        CWRU_RATE_HZ
    }

    fn axes(&self) -> usize {
        1
    }

    fn shaft_hz(&self) -> f32 {
        self.shaft_hz
    }

    fn start_burst(&mut self, device_time: Duration) {
        if self
            .fault
            .as_ref()
            .is_some_and(|(_, at)| device_time >= *at)
        {
            if let Some((samples, _)) = self.fault.take() {
                self.samples = samples;
                self.position = 0;
            }
        }
    }

    fn fill(&mut self, frames: &mut [Frame]) -> Result<(), Error> {
        for frame in frames {
            let x = match self.samples.get(self.position) {
                Some(&x) => x,
                None => {
                    self.position = 0;
                    self.samples.first().copied().unwrap_or_default()
                }
            };
            self.position += 1;
            *frame = [x, 0.0, 0.0];
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_over_the_record() {
        let mut replay = CwruReplay::from_samples(vec![1.0, 2.0, 3.0], 1800.0).expect("replay");
        let mut frames = [[0.0; 3]; 7];
        replay.fill(&mut frames).expect("fill");
        let x: Vec<f32> = frames.iter().map(|f| f[0]).collect();
        assert_eq!(x, [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0]);
        assert_eq!(replay.shaft_hz(), 30.0);
        assert!(CwruReplay::from_samples(vec![], 1800.0).is_err());
        assert!(CwruReplay::from_samples(vec![f32::NAN], 1800.0).is_err());
    }

    #[test]
    fn switches_to_the_fault_record_at_onset() {
        let replay = CwruReplay::from_samples(vec![1.0, 2.0], 1800.0).expect("replay");
        let mut replay = replay
            .then_play(vec![7.0, 8.0, 9.0], Duration::from_secs(30))
            .expect("fault");
        let mut frames = [[0.0; 3]; 3];
        replay.start_burst(Duration::from_secs(29));
        replay.fill(&mut frames).expect("fill");
        assert_eq!(frames.map(|f| f[0]), [1.0, 2.0, 1.0]);
        replay.start_burst(Duration::from_secs(30));
        replay.fill(&mut frames).expect("fill");
        assert_eq!(frames.map(|f| f[0]), [7.0, 8.0, 9.0]);
        replay.start_burst(Duration::from_secs(31));
        replay.fill(&mut frames).expect("fill");
        assert_eq!(frames.map(|f| f[0]), [7.0, 8.0, 9.0]);
        let bad = CwruReplay::from_samples(vec![1.0], 1800.0).expect("replay");
        assert!(bad.then_play(vec![], Duration::ZERO).is_err());
        assert!(CwruReplay::open_spec("x.f32,onset=soon").is_err());
    }

    /// The shared CWRU copy, if this checkout has it (`../shared/data/cwru`).
    fn record(name: &str) -> Option<std::path::PathBuf> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/cwru")
            .join(name);
        path.exists().then_some(path)
    }

    #[test]
    fn inner_race_record_lights_up_envelope_bpfi() {
        let (Some(normal), Some(faulty)) = (record("normal_0hp.f32"), record("ir007_0hp.f32"))
        else {
            eprintln!("CWRU data not found; skipped");
            return;
        };
        let bpfi = |path: &Path, rpm: f32| {
            let spec = format!("{},rpm={rpm}", path.display());
            let mut replay = CwruReplay::open_spec(&spec).expect("record");
            let mut maker = crate::features::FeatureMaker::new(4096);
            let f = maker.compute(&mut replay).expect("features");
            assert!(f.axes[1].is_none(), "CWRU is one axis");
            f.axes[0].map(|a| a.envelope.bpfi[0]).unwrap_or(0.0)
        };
        let (healthy, fault) = (bpfi(&normal, 1796.0), bpfi(&faulty, 1797.0));
        assert!(fault > 100.0 * healthy, "{fault} vs {healthy}");
    }
}
