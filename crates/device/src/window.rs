//! Window lengths and the Hann window.
//!
//! An FFT of a finite record treats it as one period of a periodic signal; the jump
//! between its last and first sample smears every line over the whole spectrum. The Hann
//! window tapers both ends to zero so a line's energy stays within ±2 bins, which is what
//! lets the defect bands be a few bins wide. The *periodic* Hann (period `n`, not `n − 1`)
//! is used because it is the one whose DFT is exactly three bins wide, so band sums are
//! exact for on-bin tones.

use crate::trig::cos_sin_turn;

/// Longest supported window, in samples.
///
/// Sets the size of the compile-time sine table (`MAX_WINDOW/4 + 1` floats, 8 KiB of
/// flash): 8192 points are 0.68 s at 12 kHz, a 1.5 Hz bin.
pub const MAX_WINDOW: usize = 8192;

/// Shortest supported window, in samples.
///
/// Below 64 points the bins are too coarse for any bearing band and the envelope
/// spectrum (half as many points) would have almost nothing left.
pub const MIN_WINDOW: usize = 64;

/// Mean of `w[i]²` over one period of the periodic Hann window (exactly 3/8).
///
/// Spectra are divided by it so that the band energies of a windowed record add up to
/// the mean square of the record, in g², whatever the window.
pub const HANN_POWER_GAIN: f32 = 0.375;

/// Value of the periodic Hann window of length `n` at sample `i`.
///
/// `n` must be a power of two between [`MIN_WINDOW`] and [`MAX_WINDOW`] (other lengths
/// would need a sine outside the table).
pub fn hann(i: usize, n: usize) -> f32 {
    let (c, _) = cos_sin_turn(i, n);
    0.5 - 0.5 * c
}

/// Multiplies a record by the Hann window of its own length, in place.
pub(crate) fn apply_hann(samples: &mut [f32]) {
    let n = samples.len();
    for (i, x) in samples.iter_mut().enumerate() {
        *x *= hann(i, n);
    }
}

/// Whether `n` is a window length this crate can transform.
pub const fn is_supported_window(n: usize) -> bool {
    n.is_power_of_two() && n >= MIN_WINDOW && n <= MAX_WINDOW
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_gain_is_three_eighths() {
        for n in [64usize, 1024, 4096] {
            let mean_square: f64 =
                (0..n).map(|i| f64::from(hann(i, n)).powi(2)).sum::<f64>() / n as f64;
            assert!(
                (mean_square - f64::from(HANN_POWER_GAIN)).abs() < 1e-6,
                "n={n}: {mean_square}"
            );
        }
    }

    #[test]
    fn ends_at_zero_and_peaks_in_the_middle() {
        assert_eq!(hann(0, 4096), 0.0);
        assert_eq!(hann(2048, 4096), 1.0);
    }

    #[test]
    fn supported_lengths() {
        assert!(is_supported_window(4096));
        assert!(!is_supported_window(4095));
        assert!(!is_supported_window(32));
        assert!(!is_supported_window(16384));
    }
}
