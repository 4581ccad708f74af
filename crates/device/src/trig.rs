//! Sine and cosine of exact fractions of a turn, from a table built at compile time.
//!
//! The FFT twiddles and the Hann window only ever need `sin(2π·k/n)` for a power of two
//! `n ≤ MAX_WINDOW`. A quarter-wave table evaluated by the compiler (in `f64`, rounded
//! once to `f32`) gives those values exactly rounded, costs no trigonometric call at run
//! time, and lives in flash rather than RAM. `core` has no `sin`/`cos` on stable, so the
//! alternative would be a `libm` call per twiddle.

use crate::window::MAX_WINDOW;

/// Table steps per quarter turn.
const QUARTER: usize = MAX_WINDOW / 4;

/// `QUARTER_SINE[i] = sin(i/QUARTER · π/2)` for `i` in `0..=QUARTER`.
static QUARTER_SINE: [f32; QUARTER + 1] = build_quarter_sine();

/// Fills the table at compile time; floating-point arithmetic is allowed in `const fn`
/// since Rust 1.82.
const fn build_quarter_sine() -> [f32; QUARTER + 1] {
    let mut table = [0.0f32; QUARTER + 1];
    let mut i = 0;
    while i <= QUARTER {
        let x = (i as f64) * core::f64::consts::FRAC_PI_2 / (QUARTER as f64);
        table[i] = taylor_sin(x) as f32;
        i += 1;
    }
    // Pin the end points so that sin(π/2) = 1 and cos(π/2) = 0 hold exactly.
    table[0] = 0.0;
    table[QUARTER] = 1.0;
    table
}

/// `sin(x)` for `x` in `[0, π/2]`: 14 Taylor terms leave an error below 1e-17, far under
/// half an `f32` ulp.
const fn taylor_sin(x: f64) -> f64 {
    let x2 = x * x;
    let mut term = x;
    let mut sum = x;
    let mut k = 1;
    while k < 14 {
        let a = (2 * k) as f64;
        term = -term * x2 / (a * (a + 1.0));
        sum += term;
        k += 1;
    }
    sum
}

/// `(cos θ, sin θ)` for `θ = 2π·k/n`.
///
/// `n` must be a power of two no larger than [`MAX_WINDOW`]; callers check that once per
/// window (the extractor checks `N` at compile time). Any `k` is accepted: it wraps
/// around the turn.
pub(crate) fn cos_sin_turn(k: usize, n: usize) -> (f32, f32) {
    let step = MAX_WINDOW / n.max(1);
    let i = k.wrapping_mul(step) & (MAX_WINDOW - 1);
    let quadrant = i / QUARTER;
    let r = i % QUARTER;
    let a = QUARTER_SINE[r];
    let b = QUARTER_SINE[QUARTER - r];
    match quadrant {
        0 => (b, a),
        1 => (-a, b),
        2 => (-b, -a),
        _ => (a, -b),
    }
}

/// `cos(x)` for an angle `x` in radians within `[0, π/2]` (clamped to it), such as a
/// bearing's contact angle.
///
/// A Taylor polynomial to `x¹⁶` is accurate to `f32` rounding on that range and takes a
/// few dozen bytes, where `libm::cosf` brings a 4 KiB argument reduction for huge angles
/// that a contact angle never needs.
pub(crate) fn cos_quarter_turn(x: f32) -> f32 {
    let x = x.clamp(0.0, core::f32::consts::FRAC_PI_2);
    let x2 = x * x;
    // Horner form of Σ (−1)^k x^{2k} / (2k)!, k = 0..=8, innermost term first.
    let mut sum = 1.0f32;
    let mut k = 8;
    while k > 0 {
        let a = (2 * k) as f32;
        sum = 1.0 - x2 / (a * (a - 1.0)) * sum;
        k -= 1;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cos_quarter_turn_matches_std() {
        for i in 0..=1000 {
            let x = i as f32 / 1000.0 * std::f32::consts::FRAC_PI_2;
            assert!((cos_quarter_turn(x) - x.cos()).abs() < 2e-7, "x = {x}");
        }
        assert_eq!(cos_quarter_turn(0.0), 1.0);
    }

    #[test]
    fn matches_std_trigonometry() {
        for n in [4usize, 64, 4096, MAX_WINDOW] {
            for k in 0..(2 * n) {
                let (c, s) = cos_sin_turn(k, n);
                let theta = 2.0 * core::f64::consts::PI * (k as f64) / (n as f64);
                assert!((f64::from(c) - theta.cos()).abs() < 1e-7, "cos k={k} n={n}");
                assert!((f64::from(s) - theta.sin()).abs() < 1e-7, "sin k={k} n={n}");
            }
        }
    }

    #[test]
    fn exact_at_quadrants() {
        assert_eq!(cos_sin_turn(0, 8), (1.0, 0.0));
        assert_eq!(cos_sin_turn(2, 8), (0.0, 1.0));
        assert_eq!(cos_sin_turn(4, 8), (-1.0, 0.0));
        assert_eq!(cos_sin_turn(6, 8), (0.0, -1.0));
    }
}
