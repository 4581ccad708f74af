//! Pre-whitening, spectral-kurtosis band selection and the squared envelope spectrum.
//!
//! The three steps of the benchmark method (Smith & Randall 2015) in the frequency
//! domain of one whole record:
//! 1. **Cepstral pre-whitening**: divide every bin by its magnitude. That is real-cepstrum
//!    liftering of every quefrency but zero: the spectrum becomes flat, the phase stays,
//!    so discrete lines (shaft, gears, the 160 Hz machine line) lose their dominance and
//!    what remains is dominated by repeated impacts.
//! 2. **Band selection**: split the band into 2, 4, 8 … sub-bands (with half-band
//!    overlap, a cheap relative of Antoni's fast kurtogram) and keep the one whose
//!    complex envelope is the most impulsive, measured by spectral kurtosis
//!    `E|z|⁴ / (E|z|²)² − 2` (0 for Gaussian noise).
//! 3. **Squared envelope spectrum** of that band, averaged over segments (Welch) so
//!    that a line stands out against a smooth background.

use super::fft::{fft_in_place, Complex};

/// A frequency band as FFT bins `first..first + width` of an `n`-point record spectrum.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct BandBins {
    /// First bin.
    pub(crate) first: usize,
    /// Number of bins (a power of two).
    pub(crate) width: usize,
    /// Spectral kurtosis of the band's complex envelope.
    pub(crate) kurtosis: f64,
}

/// The whitened spectrum of `x` (its first `n` samples, mean removed): unit magnitude in
/// every bin from 1 to `n/2 − 1`, zero elsewhere (the negative frequencies are not
/// needed: every later step works on the analytic signal).
pub(crate) fn whitened_spectrum(x: &[f32], n: usize) -> Vec<Complex> {
    let head = x.get(..n).unwrap_or(x);
    let mean = head.iter().map(|&v| f64::from(v)).sum::<f64>() / head.len().max(1) as f64;
    let mut buf: Vec<Complex> = head.iter().map(|&v| (f64::from(v) - mean, 0.0)).collect();
    buf.resize(n, (0.0, 0.0));
    fft_in_place(&mut buf, false);
    for (k, bin) in buf.iter_mut().enumerate() {
        let mag = bin.0.hypot(bin.1);
        *bin = if k == 0 || k >= n / 2 || mag <= f64::MIN_POSITIVE {
            (0.0, 0.0)
        } else {
            (bin.0 / mag, bin.1 / mag)
        };
    }
    buf
}

/// The complex envelope of bins `first..first + width` of `spectrum`, sampled with `m`
/// points (`m` a power of two ≥ `width`; larger `m` interpolates).
fn band_envelope(spectrum: &[Complex], first: usize, width: usize, m: usize) -> Vec<Complex> {
    let mut z = vec![(0.0, 0.0); m];
    let src = spectrum.get(first..first + width).unwrap_or_default();
    for (dst, bin) in z.iter_mut().zip(src) {
        *dst = *bin;
    }
    fft_in_place(&mut z, true);
    z
}

/// Spectral kurtosis of a complex envelope: `E|z|⁴ / (E|z|²)² − 2`.
fn spectral_kurtosis(z: &[Complex]) -> f64 {
    let (mut s2, mut s4) = (0.0, 0.0);
    for (re, im) in z {
        let p = re * re + im * im;
        s2 += p;
        s4 += p * p;
    }
    let len = z.len().max(1) as f64;
    let (m2, m4) = (s2 / len, s4 / len);
    if m2 > 0.0 {
        m4 / (m2 * m2) - 2.0
    } else {
        0.0
    }
}

/// Every candidate band of `spectrum` (an `n`-point whitened spectrum) with its
/// spectral kurtosis, over levels `0..=levels` (level `l` has bands of `n/2^(l+1)` bins,
/// overlapping by half; level 0 is the whole band), skipping bands narrower than
/// `min_width` bins, starting below bin `lowest` or reaching into the top tenth below
/// Nyquist.
pub(crate) fn candidate_bands(
    spectrum: &[Complex],
    levels: u32,
    min_width: usize,
    lowest: usize,
) -> Vec<BandBins> {
    let half = spectrum.len() / 2;
    // The anti-alias roll-off below Nyquist is flattened by the whitening too, and any
    // stray spike there dominates the kurtosis; the lowest bins hold the defect lines
    // themselves, which cannot be demodulated. Neither is a carrier band.
    let top = half - half / 10;
    let mut out = Vec::new();
    for level in 0..=levels {
        let width = half >> level;
        if width < min_width.max(2) {
            break;
        }
        let mut first = 0;
        while first + width <= half {
            if first >= lowest && first + width <= top {
                let z = band_envelope(spectrum, first, width, width);
                out.push(BandBins {
                    first,
                    width,
                    kurtosis: spectral_kurtosis(&z),
                });
            }
            first += width / 2;
        }
    }
    out
}

/// The most impulsive of [`candidate_bands`], or the whole band if none qualifies.
pub(crate) fn select_band(
    spectrum: &[Complex],
    levels: u32,
    min_width: usize,
    lowest: usize,
) -> BandBins {
    candidate_bands(spectrum, levels, min_width, lowest)
        .into_iter()
        .max_by(|a, b| a.kurtosis.total_cmp(&b.kurtosis))
        .unwrap_or(BandBins {
            first: 0,
            width: spectrum.len() / 2,
            kurtosis: 0.0,
        })
}

/// The whole band (bins `0..n/2`) with its spectral kurtosis: the full-band squared
/// envelope after pre-whitening is Smith & Randall's benchmark method, and it keeps
/// impacts that ring several resonances, which one narrow band would split.
pub(crate) fn full_band(spectrum: &[Complex]) -> BandBins {
    let width = spectrum.len() / 2;
    BandBins {
        first: 0,
        width,
        kurtosis: spectral_kurtosis(&band_envelope(spectrum, 0, width, width.max(1))),
    }
}

/// Welch-averaged power spectrum of the squared envelope of `band`; returns
/// `(powers, bin_hz)`. `rate` is the record's sampling rate, `f_max` the highest
/// frequency the caller will look at, `seg_hz` the wanted bin width (coarser when the
/// record is too short for `min_averages` segments).
pub(crate) fn squared_envelope_spectrum(
    spectrum: &[Complex],
    band: BandBins,
    rate: f64,
    f_max: f64,
    (seg_hz, min_averages): (f64, usize),
) -> (Vec<f64>, f64) {
    let n = spectrum.len().max(1);
    // Enough envelope samples for f_max (with margin), and never fewer than the band.
    let needed = (2.5 * f_max * n as f64 / rate).ceil() as usize;
    let m = needed.max(band.width).max(2).next_power_of_two().min(n);
    let z = band_envelope(spectrum, band.first, band.width, m);
    let env: Vec<f64> = z.iter().map(|(re, im)| re * re + im * im).collect();
    let env_rate = rate * m as f64 / n as f64;
    // Segments short enough for `min_averages` half-overlapping averages: a short
    // record trades resolution for a background smooth enough to judge lines against.
    let most = (2 * m / (min_averages + 1)).max(16);
    let seg = ((env_rate / seg_hz).round() as usize)
        .max(16)
        .next_power_of_two()
        .min(prev_power_of_two(most))
        .min(m);
    (welch(&env, seg), env_rate / seg as f64)
}

/// Largest power of two ≤ `n` (1 for 0).
pub(crate) fn prev_power_of_two(n: usize) -> usize {
    if n.is_power_of_two() {
        n
    } else {
        (n.next_power_of_two() / 2).max(1)
    }
}

/// Mean of the Hann-windowed periodograms of `seg`-sample segments of `x`, half
/// overlapping, each with its mean removed; bins `0..=seg/2`.
fn welch(x: &[f64], seg: usize) -> Vec<f64> {
    let mut acc = vec![0.0; seg / 2 + 1];
    let window: Vec<f64> = (0..seg)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / seg as f64).cos())
        .collect();
    let mut count = 0usize;
    let mut start = 0;
    let mut buf = vec![(0.0, 0.0); seg];
    while let Some(chunk) = x.get(start..start + seg) {
        let mean = chunk.iter().sum::<f64>() / seg as f64;
        for ((dst, v), w) in buf.iter_mut().zip(chunk).zip(&window) {
            *dst = ((v - mean) * w, 0.0);
        }
        fft_in_place(&mut buf, false);
        for (a, (re, im)) in acc.iter_mut().zip(&buf) {
            *a += re * re + im * im;
        }
        count += 1;
        start += seg / 2;
    }
    let scale = 1.0 / count.max(1) as f64;
    acc.iter_mut().for_each(|a| *a *= scale);
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Impacts ringing a 3 kHz resonance at `every_hz` with 1 % jitter (real rolling
    /// elements slip, which is what makes pre-whitening keep them), in noise.
    pub(crate) fn impacts(n: usize, rate: f64, every_hz: f64) -> Vec<f32> {
        let mut state = 12345u32;
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as f64 / u32::MAX as f64 - 0.5
        };
        let mut x: Vec<f64> = (0..n).map(|_| uniform() * 0.2).collect();
        let mut at = 0.0;
        while at < n as f64 / rate {
            let start = (at * rate).ceil() as usize;
            for (i, v) in x.iter_mut().enumerate().skip(start).take(200) {
                let since = i as f64 / rate - at;
                *v += (-since * 800.0).exp() * (2.0 * std::f64::consts::PI * 3000.0 * since).sin();
            }
            at += (1.0 + 0.02 * uniform()) / every_hz;
        }
        x.into_iter().map(|v| v as f32).collect()
    }

    #[test]
    fn finds_the_resonance_and_the_impact_rate() {
        let rate = 12_000.0;
        let n = 16_384;
        let spec = whitened_spectrum(&impacts(n, rate, 107.0), n);
        let band = select_band(&spec, 4, 64, 64);
        let (lo, hi) = (
            band.first as f64 * rate / n as f64,
            (band.first + band.width) as f64 * rate / n as f64,
        );
        assert!(lo < 3000.0 && hi > 3000.0, "band {lo}..{hi}");
        assert!(band.kurtosis > 1.0, "{band:?}");
        let (ses, bin_hz) = squared_envelope_spectrum(&spec, band, rate, 500.0, (2.0, 8));
        // Between the low-frequency wander of the envelope and the third harmonic.
        let (lo, hi) = ((30.0 / bin_hz) as usize, (400.0 / bin_hz) as usize);
        let peak = ses
            .iter()
            .enumerate()
            .take(hi)
            .skip(lo)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(k, _)| k as f64 * bin_hz)
            .unwrap_or_default();
        assert!((peak - 107.0).abs() < 2.0 * bin_hz, "peak at {peak}");
    }
}
