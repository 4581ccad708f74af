//! Band energies read off a packed real-FFT spectrum.
//!
//! Both the plain spectrum and the envelope spectrum are reduced to a handful of numbers
//! the same way: the power of the bins in a band around a frequency of interest, scaled so
//! that a band's value is the mean-square contribution (g²) of what lies in it. A sine of
//! amplitude `A` centred in a band reads `A²/2`, and all bins together add up to the
//! record's mean square. Bands are widened by a relative tolerance because the real
//! speed differs from the nominal one and rolling elements slip by 1–2 %.

use crate::bearing::DefectFrequencies;
use crate::features::{DefectBands, HARMONICS};
use crate::window::HANN_POWER_GAIN;

/// How wide a band around a nominal frequency `f` is: `f·relative + bins` bins on each
/// side.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BandTolerance {
    /// Relative half-width: covers speed error and rolling-element slip, and grows with
    /// the harmonic number because the error does.
    pub relative: f32,
    /// Absolute half-width in bins: a Hann-windowed line off the bin centre spreads over
    /// ±2 bins, so fewer would lose part of it.
    pub bins: f32,
}

impl BandTolerance {
    /// ±2 % plus ±2 bins.
    pub const DEFAULT: Self = Self {
        relative: 0.02,
        bins: 2.0,
    };
}

impl Default for BandTolerance {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A one-sided power spectrum over a packed real-FFT output (see [`crate::fft`]).
pub(crate) struct PowerSpectrum<'a> {
    /// Packed bins of a Hann-windowed record of `packed.len()` samples.
    packed: &'a [f32],
    /// Width of one bin in Hz.
    bin_hz: f32,
    /// Factor from `|X[k]|²` to g²: `2 / (n² · mean(w²))` for the one-sided bins.
    scale: f32,
}

impl<'a> PowerSpectrum<'a> {
    /// Wraps a spectrum of `packed.len()` Hann-windowed samples taken `bin_hz·len` apart.
    pub(crate) fn new(packed: &'a [f32], bin_hz: f32) -> Self {
        let n = packed.len() as f32;
        Self {
            packed,
            bin_hz,
            scale: 2.0 / (n * n * HANN_POWER_GAIN),
        }
    }

    /// Number of bins from DC to Nyquist inclusive.
    fn bins(&self) -> usize {
        self.packed.len() / 2 + 1
    }

    /// Power of bin `k` in g²; out-of-range bins have none.
    fn power(&self, k: usize) -> f32 {
        let half = self.packed.len() / 2;
        match k {
            // DC and Nyquist have no mirror image, hence half the one-sided factor.
            0 => self
                .packed
                .first()
                .map_or(0.0, |x| 0.5 * self.scale * x * x),
            k if k == half => self.packed.get(1).map_or(0.0, |x| 0.5 * self.scale * x * x),
            k => match (self.packed.get(2 * k), self.packed.get(2 * k + 1)) {
                (Some(re), Some(im)) => self.scale * (re * re + im * im),
                _ => 0.0,
            },
        }
    }

    /// Total power of the bins whose centre lies in `[low_hz, high_hz]`. Empty, reversed
    /// or non-finite bands give 0 rather than an error: a band above Nyquist simply holds
    /// nothing this record can see.
    pub(crate) fn band(&self, low_hz: f32, high_hz: f32) -> f32 {
        if !(low_hz <= high_hz && self.bin_hz > 0.0) {
            return 0.0;
        }
        // `as usize` saturates (negative and NaN become 0), so no bound can wrap.
        let first = libm::ceilf(low_hz / self.bin_hz).max(0.0) as usize;
        let last =
            (libm::floorf(high_hz / self.bin_hz) as usize).min(self.bins().saturating_sub(1));
        (first..=last).map(|k| self.power(k)).sum()
    }

    /// Power around `h × f`, with the tolerance widening the band.
    pub(crate) fn around(&self, f: f32, harmonic: usize, tolerance: &BandTolerance) -> f32 {
        let centre = f * harmonic as f32;
        if !(centre > 0.0 && centre.is_finite()) {
            return 0.0;
        }
        let half_width = centre * tolerance.relative + tolerance.bins * self.bin_hz;
        self.band(centre - half_width, centre + half_width)
    }

    /// Band powers at the first [`HARMONICS`] harmonics of each defect frequency.
    pub(crate) fn defect_bands(
        &self,
        f: &DefectFrequencies,
        tolerance: &BandTolerance,
    ) -> DefectBands {
        let harmonics = |base: f32| -> [f32; HARMONICS] {
            core::array::from_fn(|i| self.around(base, i + 1, tolerance))
        };
        DefectBands {
            bpfo: harmonics(f.bpfo),
            bpfi: harmonics(f.bpfi),
            bsf: harmonics(f.bsf),
            ftf: harmonics(f.ftf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fft::real_in_place;
    use crate::window::apply_hann;

    fn spectrum_of(x: &mut [f32]) {
        apply_hann(x);
        real_in_place(x).expect("power of two");
    }

    #[test]
    fn sine_band_holds_half_the_square_amplitude() {
        let (n, fs) = (4096usize, 12_000.0f32);
        // One tone on a bin centre, one between two bins: both must read A²/2.
        for (freq, amp) in [
            (100.0 * fs / n as f32, 2.0f32),
            (1000.5 * fs / n as f32, 0.5),
        ] {
            let mut x: Vec<f32> = (0..n)
                .map(|i| amp * (2.0 * std::f32::consts::PI * freq * i as f32 / fs).sin())
                .collect();
            spectrum_of(&mut x);
            let s = PowerSpectrum::new(&x, fs / n as f32);
            let got = s.around(
                freq,
                1,
                &BandTolerance {
                    relative: 0.0,
                    bins: 2.0,
                },
            );
            let want = amp * amp / 2.0;
            assert!(
                (got - want).abs() < 0.01 * want,
                "f={freq}: {got} vs {want}"
            );
            let total = s.band(0.0, fs / 2.0);
            assert!(
                (total - want).abs() < 0.01 * want,
                "Parseval: {total} vs {want}"
            );
        }
    }

    #[test]
    fn strange_bands_are_empty_not_errors() {
        let x = [0.0f32; 64];
        let s = PowerSpectrum::new(&x, 1.0);
        assert_eq!(s.band(10.0, 5.0), 0.0);
        assert_eq!(s.band(f32::NAN, 5.0), 0.0);
        assert_eq!(s.band(-1e30, 1e30), 0.0);
        assert_eq!(s.around(f32::INFINITY, 3, &BandTolerance::DEFAULT), 0.0);
        assert_eq!(s.around(-5.0, 1, &BandTolerance::DEFAULT), 0.0);
    }
}
