//! What "normal" looks like for one feature: mean and variance on a log-like scale.
//!
//! Vibration energies span decades and grow multiplicatively with damage, so statistics
//! are kept on `asinh(v / scale)`: logarithmic for `|v| ≫ scale` (a z-score then measures
//! a *ratio* to the baseline, whatever the sensor's level or units), linear near zero,
//! and defined for negative values (a mean can be either sign). Mean and variance are
//! accumulated by Welford's algorithm, which is stable over long runs, and can later
//! drift slowly by exponential forgetting.
//!
//! **Signed features near zero.** A mean-like feature (`x.mean`, a DC offset) hovers
//! around zero and may cross it; on the log-like scale a crossing is a leap of decades
//! (`asinh` of ±1e-5 against a 1e-9 scale is ±9.9), so a baseline learnt on one side
//! would call any normal crossing a huge anomaly. The raw values' own mean and spread
//! are therefore kept too, the spread floored at `min_sigma` × the feature's typical
//! magnitude (mean |v|), and a deviation counts only as far as it is large on *both*
//! scales: the smaller |z| wins. A fault that multiplies an energy is large on both; a
//! zero crossing of a feature whose spread is comparable to its level is not.

use serde::{Deserialize, Serialize};

/// Running statistics of one transformed feature.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Baseline {
    /// Observations learned.
    pub(crate) n: u64,
    /// Mean of the transformed values.
    pub(crate) mean: f64,
    /// Sum of squared deviations from the mean (Welford's M2).
    pub(crate) m2: f64,
    /// Raw values learned (0 in models saved before raw statistics existed: those
    /// score on the log-like scale only).
    #[serde(default)]
    pub(crate) raw_n: u64,
    /// Mean of the raw values.
    #[serde(default)]
    pub(crate) raw_mean: f64,
    /// Welford's M2 of the raw values.
    #[serde(default)]
    pub(crate) raw_m2: f64,
    /// Mean of |raw value|: the feature's typical magnitude, for the spread's floor.
    #[serde(default)]
    pub(crate) magnitude: f64,
}

/// The log-like transform: `asinh(v / scale)`; `None` for non-finite results.
pub(crate) fn transform(value: f64, scale: f64) -> Option<f64> {
    let t = (value / scale).asinh();
    t.is_finite().then_some(t)
}

/// The inverse of [`transform`], saturated to finite values.
pub(crate) fn untransform(t: f64, scale: f64) -> f64 {
    let v = t.clamp(-700.0, 700.0).sinh() * scale;
    if v.is_finite() {
        v
    } else {
        0.0
    }
}

impl Baseline {
    /// An empty baseline.
    pub(crate) fn new() -> Self {
        Self {
            n: 0,
            mean: 0.0,
            m2: 0.0,
            raw_n: 0,
            raw_mean: 0.0,
            raw_m2: 0.0,
            magnitude: 0.0,
        }
    }

    /// Learns one value `v` and its transform `t` (Welford).
    pub(crate) fn learn(&mut self, v: f64, t: f64) {
        self.n = self.n.saturating_add(1);
        let delta = t - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (t - self.mean);
        self.raw_n = self.raw_n.saturating_add(1);
        let delta = v - self.raw_mean;
        self.raw_mean += delta / self.raw_n as f64;
        self.raw_m2 += delta * (v - self.raw_mean);
        self.magnitude += (v.abs() - self.magnitude) / self.raw_n as f64;
        self.sanitise();
    }

    /// Moves towards `v` (transformed `t`) with weight `rate` (exponential forgetting),
    /// keeping the counts.
    pub(crate) fn drift(&mut self, v: f64, t: f64, rate: f64) {
        let var = self.variance();
        let delta = t - self.mean;
        self.mean += rate * delta;
        let var = (1.0 - rate) * (var + rate * delta * delta);
        self.m2 = var * self.n.saturating_sub(1).max(1) as f64;
        if self.raw_n >= 2 {
            let var = self.raw_variance();
            let delta = v - self.raw_mean;
            self.raw_mean += rate * delta;
            let var = (1.0 - rate) * (var + rate * delta * delta);
            self.raw_m2 = var * (self.raw_n - 1) as f64;
            self.magnitude += rate * (v.abs() - self.magnitude);
        }
        self.sanitise();
    }

    /// Sample variance of the raw values (0 with fewer than two).
    fn raw_variance(&self) -> f64 {
        if self.raw_n < 2 {
            0.0
        } else {
            self.raw_m2 / (self.raw_n - 1) as f64
        }
    }

    /// Sample variance (0 with fewer than two observations).
    pub(crate) fn variance(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            self.m2 / (self.n - 1) as f64
        }
    }

    /// Standard score of value `v` (transformed `t`): on the log-like scale, with the
    /// deviation floored at `min_sigma` so that a feature that never moved during
    /// warm-up does not make every later wobble huge — unless the raw-scale score is
    /// smaller (see the module documentation).
    pub(crate) fn z(&self, v: f64, t: f64, min_sigma: f64) -> f64 {
        let log = (t - self.mean) / self.variance().sqrt().max(min_sigma);
        if self.raw_n < 2 {
            return log;
        }
        let floor = min_sigma * self.magnitude;
        let raw = (v - self.raw_mean) / self.raw_variance().sqrt().max(floor);
        if raw.is_finite() && raw.abs() < log.abs() {
            raw
        } else {
            log
        }
    }

    /// Keeps the state finite whatever arithmetic happened, so it always serialises.
    fn sanitise(&mut self) {
        if !self.mean.is_finite() {
            self.mean = 0.0;
        }
        if !self.m2.is_finite() || self.m2 < 0.0 {
            self.m2 = 0.0;
        }
        if !self.raw_mean.is_finite() || !self.magnitude.is_finite() {
            self.raw_mean = 0.0;
            self.magnitude = 0.0;
        }
        if !self.raw_m2.is_finite() || self.raw_m2 < 0.0 {
            self.raw_m2 = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welford_matches_two_pass() {
        let xs = [1.0, 2.0, 4.0, 8.0, 16.0];
        let mut b = Baseline::new();
        xs.iter().for_each(|&x| b.learn(x, x));
        let mean = xs.iter().sum::<f64>() / 5.0;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 4.0;
        assert!((b.mean - mean).abs() < 1e-12 && (b.variance() - var).abs() < 1e-9);
        assert!((b.raw_mean - mean).abs() < 1e-12 && (b.raw_variance() - var).abs() < 1e-9);
        let one_sigma = mean + var.sqrt();
        assert!((b.z(one_sigma, one_sigma, 0.0) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn transform_is_logarithmic_for_large_values() {
        let (a, b) = (
            transform(1e-3, 1e-9).unwrap_or_default(),
            transform(1e-2, 1e-9).unwrap_or_default(),
        );
        assert!((b - a - 10f64.ln()).abs() < 1e-6);
        assert!((untransform(a, 1e-9) - 1e-3).abs() < 1e-12);
        assert_eq!(transform(f64::NAN, 1e-9), None);
    }

    #[test]
    fn a_zero_crossing_of_a_signed_feature_is_not_a_leap() {
        // A DC offset learnt slightly positive (1e-5 to 3e-5), then a normal dip below 0.
        let mut b = Baseline::new();
        for i in 0..30 {
            let v = 2e-5 + 1e-5 * ((i * 7 % 11) as f64 / 5.0 - 1.0);
            b.learn(v, transform(v, 1e-9).unwrap_or_default());
        }
        let v = -1e-5;
        let t = transform(v, 1e-9).unwrap_or_default();
        let log_only = (t - b.mean) / b.variance().sqrt().max(0.1);
        assert!(log_only < -20.0, "the log scale alone calls it {log_only}");
        let z = b.z(v, t, 0.1);
        assert!((-6.0..0.0).contains(&z), "{z}");
        // An energy tripling is large on both scales.
        let mut rms = Baseline::new();
        for i in 0..30 {
            let v = 1.0 + 0.02 * ((i * 7 % 11) as f64 / 5.0 - 1.0);
            rms.learn(v, transform(v, 1e-9).unwrap_or_default());
        }
        let z = rms.z(3.0, transform(3.0, 1e-9).unwrap_or_default(), 0.1);
        assert!(z > 10.0, "{z}");
    }

    #[test]
    fn models_saved_without_raw_statistics_score_as_before() {
        let old: Baseline = serde_json::from_str(r#"{"n":30,"mean":1.0,"m2":0.29}"#)
            .unwrap_or_else(|_| Baseline::new());
        assert_eq!((old.n, old.raw_n), (30, 0));
        assert!((old.z(0.0, 2.0, 0.1) - 10.0).abs() < 1e-9);
    }
}
