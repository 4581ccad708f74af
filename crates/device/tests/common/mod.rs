//! Signal generators shared by the integration tests: deterministic, so a failure
//! reproduces, and free of any random-number crate.
#![allow(dead_code, unreachable_pub)]

use std::f32::consts::PI;

/// Sampling rate of the CWRU records and of the synthetic signals.
pub const FS: f32 = 12_000.0;
/// Window length used throughout.
pub const N: usize = 4096;

/// xorshift32 generator: uniform and Gaussian samples.
pub struct Rng(pub u32);

impl Rng {
    /// Uniform in (0, 1].
    pub fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        (self.0 as f32 + 1.0) / (u32::MAX as f32 + 1.0)
    }

    /// Standard normal (Box–Muller).
    pub fn gaussian(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * PI * v).cos()
    }
}

/// `amp · sin(2π f t)` sampled at [`FS`].
pub fn tone(freq: f32, amp: f32, len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| amp * (2.0 * PI * freq * i as f32 / FS).sin())
        .collect()
}

/// A bearing-fault-like signal: impacts at `rate_hz` (with 1 % random spacing jitter, as
/// slipping rolling elements give), each ringing a `resonance_hz` mode that decays in
/// about a millisecond, plus Gaussian noise and a strong 1× shaft tone that the envelope
/// must see through.
pub fn impact_train(
    rate_hz: f32,
    resonance_hz: f32,
    shaft_hz: f32,
    len: usize,
    seed: u32,
) -> Vec<f32> {
    let mut rng = Rng(seed);
    let mut x: Vec<f32> = (0..len).map(|_| 0.05 * rng.gaussian()).collect();
    for (i, v) in x.iter_mut().enumerate() {
        *v += 0.5 * (2.0 * PI * shaft_hz * i as f32 / FS).sin();
    }
    let period = FS / rate_hz;
    let mut t0 = 10.0f32;
    while (t0 as usize) < len {
        let start = t0 as usize;
        for (k, v) in x[start..len.min(start + 200)].iter_mut().enumerate() {
            let t = k as f32 / FS;
            *v += (-t / 0.001).exp() * (2.0 * PI * resonance_hz * t).sin();
        }
        t0 += period * (1.0 + 0.01 * (2.0 * rng.uniform() - 1.0));
    }
    x
}
