//! Time-domain condition indicators: mean, RMS, peak, crest factor, kurtosis.
//!
//! These are the cheap, classic indicators that need no spectrum: RMS follows overall
//! vibration severity (ISO 10816/20816 thresholds are RMS values), while crest factor and
//! kurtosis react to short impacts — the first sign of a spalled race — before they carry
//! enough energy to move the RMS. All of them are computed on the AC part (mean removed),
//! because a DC accelerometer reads 1 g of gravity on its vertical axis.

use libm::sqrtf;

/// Time-domain summary of one record.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TimeStats {
    /// Mean (DC) value: gravity and sensor offset, kept to spot a drifting sensor.
    pub mean: f32,
    /// Root mean square of the record with its mean removed.
    pub rms: f32,
    /// Largest absolute deviation from the mean.
    pub peak: f32,
    /// `peak / rms`: √2 for a sine, around 3–4 for Gaussian noise, higher with impacts.
    /// Zero for a constant record.
    pub crest: f32,
    /// Fourth standardised moment `m4 / m2²` (not the excess): 3 for Gaussian noise,
    /// 1.5 for a sine, higher when impacts make the distribution heavy-tailed.
    /// Zero for a constant record.
    pub kurtosis: f32,
}

/// Computes [`TimeStats`] in two passes (mean first), which keeps `f32` accumulation
/// accurate where a one-pass formula would cancel catastrophically under a large DC.
///
/// An empty record gives all zeros. The caller is expected to have rejected non-finite
/// samples; they would turn every field into NaN but cannot make this panic.
pub fn time_stats(x: &[f32]) -> TimeStats {
    if x.is_empty() {
        return TimeStats::default();
    }
    let n = x.len() as f32;
    let mean = x.iter().sum::<f32>() / n;
    let (mut m2, mut m4, mut peak) = (0.0f32, 0.0f32, 0.0f32);
    for &v in x {
        let d = v - mean;
        let d2 = d * d;
        m2 += d2;
        m4 += d2 * d2;
        peak = peak.max(d.abs());
    }
    m2 /= n;
    m4 /= n;
    let rms = sqrtf(m2);
    let (crest, kurtosis) = if m2 > 0.0 {
        (peak / rms, m4 / (m2 * m2))
    } else {
        (0.0, 0.0)
    };
    TimeStats {
        mean,
        rms,
        peak,
        crest,
        kurtosis,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_has_textbook_values() {
        let n = 4096;
        let x: Vec<f32> = (0..n)
            .map(|i| 1.0 + 2.0 * (2.0 * std::f32::consts::PI * 50.0 * i as f32 / n as f32).sin())
            .collect();
        let s = time_stats(&x);
        assert!((s.mean - 1.0).abs() < 1e-4);
        assert!((s.rms - 2.0 / 2f32.sqrt()).abs() < 1e-4, "rms {}", s.rms);
        assert!((s.peak - 2.0).abs() < 1e-3);
        assert!((s.crest - 2f32.sqrt()).abs() < 1e-3);
        assert!((s.kurtosis - 1.5).abs() < 1e-3, "kurtosis {}", s.kurtosis);
    }

    #[test]
    fn degenerate_records_give_zeros() {
        assert_eq!(time_stats(&[]), TimeStats::default());
        let s = time_stats(&[3.0; 16]);
        assert_eq!((s.mean, s.rms, s.crest, s.kurtosis), (3.0, 0.0, 0.0, 0.0));
    }
}
