//! One axis, one window: samples in, [`AxisFeatures`] out.
//!
//! This is where the pieces meet, in the order the memory allows: time-domain statistics
//! first (they need the raw samples), then window and FFT in place, then every band of
//! the plain spectrum, then the envelope, which reuses the same buffer. So one `[f32; N]`
//! is all the RAM an axis needs, and [`analyze_in_place`] lets a caller whose samples are
//! already in such a buffer skip even that.

use crate::bearing::BearingGeometry;
use crate::envelope::{envelope_spectrum_in_place, Band};
use crate::features::AxisFeatures;
use crate::fft::real_in_place;
use crate::spectrum::{BandTolerance, PowerSpectrum};
use crate::stats::time_stats;
use crate::window::{apply_hann, is_supported_window};
use crate::Error;

/// What the pipeline needs to know about the machine and the sensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    /// Sampling rate of every axis, Hz.
    pub sample_rate_hz: f32,
    /// The monitored bearing, for the defect frequencies.
    pub bearing: BearingGeometry,
    /// Resonance band the envelope demodulates.
    pub resonance: Band,
    /// Width of the bands around shaft and defect frequencies.
    pub tolerance: BandTolerance,
}

impl Config {
    /// A configuration with the CWRU resonance band (2–4 kHz) and default tolerances.
    /// `const` so that firmware can build it in a `static`.
    pub const fn new(sample_rate_hz: f32, bearing: BearingGeometry) -> Self {
        Self {
            sample_rate_hz,
            bearing,
            resonance: Band::CWRU_RESONANCE,
            tolerance: BandTolerance::DEFAULT,
        }
    }

    /// Checks the configuration for an `n`-point window: a positive finite rate, a valid
    /// bearing, a resonance band with at least one bin below Nyquist, and finite,
    /// non-negative tolerances.
    pub const fn validate(&self, n: usize) -> Result<(), Error> {
        if !is_supported_window(n) {
            return Err(Error::WindowLength { got: n });
        }
        if !(self.sample_rate_hz.is_finite() && self.sample_rate_hz > 0.0) {
            return Err(Error::InvalidConfig(
                "sample rate must be positive and finite",
            ));
        }
        if let Err(e) = self.bearing.validate() {
            return Err(e);
        }
        if let Err(e) = self.resonance.bins(n, self.sample_rate_hz) {
            return Err(e);
        }
        let t = self.tolerance;
        if !(t.relative.is_finite() && t.bins.is_finite() && t.relative >= 0.0 && t.bins >= 0.0) {
            return Err(Error::InvalidConfig(
                "band tolerances must be finite and not negative",
            ));
        }
        Ok(())
    }
}

/// Computes one axis's features from `buf`, destroying its contents (they end up as
/// spectrum scratch). The length must be a supported window length.
///
/// For callers that own a sample buffer they do not need afterwards, e.g. the frames of
/// a [`crate::pipeline::Pipeline`]; others use [`FeatureExtractor`], which copies.
pub fn analyze_in_place(
    buf: &mut [f32],
    config: &Config,
    shaft_hz: f32,
) -> Result<AxisFeatures, Error> {
    let n = buf.len();
    config.validate(n)?;
    if !(shaft_hz.is_finite() && shaft_hz >= 0.0) {
        return Err(Error::InvalidShaftSpeed);
    }
    if let Some(index) = buf.iter().position(|x| !x.is_finite()) {
        return Err(Error::NonFiniteSample { index });
    }
    let stats = time_stats(buf);
    // The mean goes before the window: a DC of 1 g would otherwise leak into the lowest
    // bins, where the cage frequency lives.
    for x in buf.iter_mut() {
        *x -= stats.mean;
    }
    apply_hann(buf);
    real_in_place(buf)?;

    let bin_hz = config.sample_rate_hz / n as f32;
    let tol = &config.tolerance;
    let defects = config.bearing.frequencies(shaft_hz);
    let spectrum = PowerSpectrum::new(buf, bin_hz);
    let mut features = AxisFeatures {
        mean: stats.mean,
        rms: stats.rms,
        peak: stats.peak,
        crest: stats.crest,
        kurtosis: stats.kurtosis,
        shaft_1x: spectrum.around(shaft_hz, 1, tol),
        shaft_2x: spectrum.around(shaft_hz, 2, tol),
        resonance: spectrum.band(config.resonance.low_hz, config.resonance.high_hz),
        spectrum: spectrum.defect_bands(&defects, tol),
        envelope: Default::default(),
    };

    let (first, last) = config.resonance.bins(n, config.sample_rate_hz)?;
    envelope_spectrum_in_place(buf, first, last)?;
    // The envelope is sampled at fs/2 over n/2 points: bins stay fs/n wide.
    let envelope = PowerSpectrum::new(buf.get(..n / 2).unwrap_or_default(), bin_hz);
    features.envelope = envelope.defect_bands(&defects, tol);
    Ok(features)
}

/// A single-axis feature extractor for `N`-point windows that keeps its own work buffer.
///
/// `N` is a const generic so the buffer is an array inside the struct: no heap, and its
/// RAM (`4·N` bytes plus the 36-byte [`Config`]) is visible in `size_of`. `N` must be
/// a power of two between [`crate::window::MIN_WINDOW`] and [`crate::window::MAX_WINDOW`];
/// other values fail to compile:
/// ```compile_fail
/// use device::{BearingGeometry, Config, FeatureExtractor};
/// let _ = FeatureExtractor::<1000>::new(Config::new(12_000.0, BearingGeometry::SKF_6205));
/// ```
#[derive(Clone, Debug)]
pub struct FeatureExtractor<const N: usize> {
    /// Validated once in [`Self::new`].
    config: Config,
    /// Samples, then spectrum, then envelope spectrum: reused for every window.
    work: [f32; N],
}

impl<const N: usize> FeatureExtractor<N> {
    /// Post-monomorphisation check: `FeatureExtractor::<1000>::new` is a compile error.
    const SUPPORTED: () = assert!(
        is_supported_window(N),
        "window length must be a power of two in 64..=8192"
    );

    /// Validates `config` for `N`-point windows. `const`, so that firmware can place the
    /// extractor (and its `4·N`-byte buffer) in a `static` instead of on the stack.
    pub const fn new(config: Config) -> Result<Self, Error> {
        let () = Self::SUPPORTED;
        match config.validate(N) {
            Ok(()) => Ok(Self {
                config,
                work: [0.0; N],
            }),
            Err(e) => Err(e),
        }
    }

    /// The configuration the extractor was built with.
    pub const fn config(&self) -> &Config {
        &self.config
    }

    /// Computes the features of one window of exactly `N` samples at shaft speed
    /// `shaft_hz` (rpm / 60; 0 if unknown). `samples` is left untouched.
    pub fn extract(&mut self, samples: &[f32], shaft_hz: f32) -> Result<AxisFeatures, Error> {
        if samples.len() != N {
            return Err(Error::WindowLength { got: samples.len() });
        }
        self.work.copy_from_slice(samples);
        analyze_in_place(&mut self.work, &self.config, shaft_hz)
    }
}
