//! Settings of the anomaly model and their defaults.

use serde::{Deserialize, Serialize};

/// How the model learns, scores and decides. Every field has a sane default
/// ([`ModelConfig::default`]); out-of-range values are replaced by the nearest valid
/// one when a model is built, so a bad setting cannot make the model panic or go NaN.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelConfig {
    /// Messages learned as the baseline before any score is given (at least 2).
    pub warmup: u64,
    /// Score at or above which a message counts towards entering the anomalous state.
    pub enter: f64,
    /// Score below which a message counts towards leaving it (at most `enter`).
    pub exit: f64,
    /// Consecutive messages at or above `enter` needed to enter (at least 1).
    pub enter_count: u32,
    /// Consecutive messages below `exit` needed to leave (at least 1).
    pub exit_count: u32,
    /// The score is the RMS of the `top_k` largest |z| (at least 1): a fault moves a
    /// few features a lot, noise moves many a little.
    pub top_k: usize,
    /// Floor of a feature's standard deviation on the log scale (0.1 ≈ 10 %): a
    /// feature that was constant during warm-up is not infinitely sensitive.
    pub min_sigma: f64,
    /// Values much larger than this are compared as ratios (log scale), smaller ones
    /// linearly: `asinh(v / scale)`. Below the smallest meaningful energy.
    pub scale: f64,
    /// Weight of each normal message in slow baseline adaptation after warm-up
    /// (0 = off). Never applied while anomalous or pending.
    pub adapt: f64,
    /// Most distinct feature names kept per model: bounds memory when a device sends
    /// ever-new names; later names are ignored.
    pub max_features: usize,
    /// Contributions reported per assessment.
    pub explain: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            warmup: 30,
            enter: 6.0,
            exit: 4.0,
            enter_count: 2,
            exit_count: 3,
            top_k: 3,
            min_sigma: 0.1,
            scale: 1e-9,
            adapt: 0.0,
            max_features: 1024,
            explain: 5,
        }
    }
}

impl ModelConfig {
    /// The same settings forced into their valid ranges (NaN takes the default).
    pub fn sanitised(&self) -> Self {
        let d = Self::default();
        let pick = |v: f64, lo: f64, hi: f64, default: f64| {
            if v.is_nan() {
                default
            } else {
                v.clamp(lo, hi)
            }
        };
        let enter = pick(self.enter, 0.0, 1e6, d.enter);
        Self {
            warmup: self.warmup.max(2),
            enter,
            exit: pick(self.exit, 0.0, enter, d.exit.min(enter)),
            enter_count: self.enter_count.max(1),
            exit_count: self.exit_count.max(1),
            top_k: self.top_k.max(1),
            min_sigma: pick(self.min_sigma, 1e-6, 1e6, d.min_sigma),
            scale: pick(self.scale, 1e-300, 1e300, d.scale),
            adapt: pick(self.adapt, 0.0, 1.0, d.adapt),
            max_features: self.max_features.max(1),
            explain: self.explain,
        }
    }
}
