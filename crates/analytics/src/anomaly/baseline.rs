//! What "normal" looks like for one feature: mean and variance on a log-like scale.
//!
//! Vibration energies span decades and grow multiplicatively with damage, so statistics
//! are kept on `asinh(v / scale)`: logarithmic for `|v| ≫ scale` (a z-score then measures
//! a *ratio* to the baseline, whatever the sensor's level or units), linear near zero,
//! and defined for negative values (a mean can be either sign). Mean and variance are
//! accumulated by Welford's algorithm, which is stable over long runs, and can later
//! drift slowly by exponential forgetting.

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
        }
    }

    /// Learns one transformed value (Welford).
    pub(crate) fn learn(&mut self, t: f64) {
        self.n = self.n.saturating_add(1);
        let delta = t - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (t - self.mean);
        self.sanitise();
    }

    /// Moves towards `t` with weight `rate` (exponential forgetting), keeping `n`.
    pub(crate) fn drift(&mut self, t: f64, rate: f64) {
        let var = self.variance();
        let delta = t - self.mean;
        self.mean += rate * delta;
        let var = (1.0 - rate) * (var + rate * delta * delta);
        self.m2 = var * self.n.saturating_sub(1).max(1) as f64;
        self.sanitise();
    }

    /// Sample variance (0 with fewer than two observations).
    pub(crate) fn variance(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            self.m2 / (self.n - 1) as f64
        }
    }

    /// Standard score of `t`, with the deviation floored at `min_sigma` so that a
    /// feature that never moved during warm-up does not make every later wobble huge.
    pub(crate) fn z(&self, t: f64, min_sigma: f64) -> f64 {
        (t - self.mean) / self.variance().sqrt().max(min_sigma)
    }

    /// Keeps the state finite whatever arithmetic happened, so it always serialises.
    fn sanitise(&mut self) {
        if !self.mean.is_finite() {
            self.mean = 0.0;
        }
        if !self.m2.is_finite() || self.m2 < 0.0 {
            self.m2 = 0.0;
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
        xs.iter().for_each(|&x| b.learn(x));
        let mean = xs.iter().sum::<f64>() / 5.0;
        let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / 4.0;
        assert!((b.mean - mean).abs() < 1e-12 && (b.variance() - var).abs() < 1e-9);
        assert!((b.z(mean + var.sqrt(), 0.0) - 1.0).abs() < 1e-9);
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
}
