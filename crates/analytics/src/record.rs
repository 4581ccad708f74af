//! Raw single-axis records: reading `f32` files and cutting them into feature windows.
//!
//! The offline path (`bosun dsp score`, the CWRU evaluation) must see exactly what a
//! device would send, so windows go through the device SDK's own extractor
//! (`device::analyze_in_place`) and come out as `device::Features` records.

use std::path::Path;

use device::{BearingGeometry, Config, Features};

use crate::Error;

/// Reads a headerless little-endian `f32` file, refusing a torn tail and non-finite
/// samples (a sensor or conversion fault that would poison every feature).
pub fn read_f32_file(path: &Path) -> Result<Vec<f32>, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    if bytes.len() % 4 != 0 {
        return Err(Error::TornRecord { len: bytes.len() });
    }
    let samples: Vec<f32> = device::raw::samples_le(&bytes).collect();
    if let Some(index) = samples.iter().position(|x| !x.is_finite()) {
        return Err(Error::NonFinite { index });
    }
    Ok(samples)
}

/// How a record is cut into windows and analysed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Windowing {
    /// Samples per window: a power of two the device SDK supports (64–8192).
    pub window: usize,
    /// Samples between window starts (≥ 1; less than `window` overlaps).
    pub hop: usize,
    /// Sampling rate, Hz.
    pub sample_rate_hz: f32,
    /// Shaft speed, Hz (rpm / 60).
    pub shaft_hz: f32,
    /// The monitored bearing.
    pub bearing: BearingGeometry,
}

impl Windowing {
    /// Features of every whole window of `samples`, as a one-axis device would send them
    /// (axis `x`). Errors if no window fits or the settings are refused by the SDK.
    pub fn features(&self, samples: &[f32]) -> Result<Vec<Features>, Error> {
        if self.hop == 0 {
            return Err(Error::InvalidConfig("hop must be at least 1 sample".into()));
        }
        let config = Config::new(self.sample_rate_hz, self.bearing);
        config.validate(self.window)?;
        if samples.len() < self.window {
            return Err(Error::TooShort {
                got: samples.len(),
                need: self.window,
            });
        }
        let mut buf = vec![0.0f32; self.window];
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(chunk) = samples.get(start..start + self.window) {
            buf.copy_from_slice(chunk);
            let axis = device::analyze_in_place(&mut buf, &config, self.shaft_hz)?;
            out.push(Features {
                seq: out.len() as u32,
                sample_rate_hz: self.sample_rate_hz,
                window_len: self.window as u32,
                shaft_hz: self.shaft_hz,
                axes: [Some(axis), None, None],
            });
            start += self.hop;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windowing() -> Windowing {
        Windowing {
            window: 256,
            hop: 128,
            sample_rate_hz: 12_000.0,
            shaft_hz: 30.0,
            bearing: BearingGeometry::SKF_6205,
        }
    }

    #[test]
    fn cuts_overlapping_windows_and_refuses_bad_input() {
        let x: Vec<f32> = (0..1024).map(|i| (i as f32 * 0.3).sin()).collect();
        let w = windowing();
        assert_eq!(w.features(&x).map(|f| f.len()), Ok(7));
        assert!(matches!(w.features(&x[..100]), Err(Error::TooShort { .. })));
        assert!(Windowing { hop: 0, ..w }.features(&x).is_err());
        assert!(Windowing { window: 1000, ..w }.features(&x).is_err());
        let mut bad = x.clone();
        bad[300] = f32::NAN;
        assert!(w.features(&bad).is_err());
    }
}
