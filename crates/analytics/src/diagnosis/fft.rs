//! An in-place radix-2 complex FFT in `f64`, for whole records.
//!
//! `device::fft` is `f32` and stops at 8192 points, the most a device window needs; a
//! diagnosis looks at seconds of signal (65,536 points and more) where `f32` rounding
//! starts to show in a pre-whitened spectrum. This is the textbook iterative
//! decimation-in-time transform with twiddles from `sin_cos` per stage.

use std::f64::consts::PI;

/// One complex value as `(re, im)`.
pub(crate) type Complex = (f64, f64);

/// Transforms `buf` in place: forward (`e^{−2πijk/n}`) or, with `inverse`, the unscaled
/// inverse. Lengths that are not a power of two are left untouched and reported `false`.
pub(crate) fn fft_in_place(buf: &mut [Complex], inverse: bool) -> bool {
    let n = buf.len();
    if !n.is_power_of_two() {
        return false;
    }
    bit_reverse(buf);
    let sign = if inverse { 1.0 } else { -1.0 };
    let mut len = 2;
    while len <= n {
        let half = len / 2;
        let step = sign * 2.0 * PI / len as f64;
        for k in 0..half {
            let (s, c) = (step * k as f64).sin_cos();
            let mut a = k;
            while a + half < n {
                let b = a + half;
                let (br, bi) = buf[b];
                let (tr, ti) = (br * c - bi * s, br * s + bi * c);
                let (ar, ai) = buf[a];
                buf[a] = (ar + tr, ai + ti);
                buf[b] = (ar - tr, ai - ti);
                a += len;
            }
        }
        len *= 2;
    }
    true
}

/// Puts element `i` at the bit-reversed index of `i`.
fn bit_reverse(buf: &mut [Complex]) {
    let n = buf.len();
    let mut j = 0;
    for i in 0..n {
        if i < j {
            buf.swap(i, j);
        }
        let mut bit = n >> 1;
        while bit > 0 && j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_direct_dft_and_inverts() {
        for n in [1usize, 2, 8, 64] {
            let data: Vec<Complex> = (0..n)
                .map(|i| ((i as f64 * 0.7).sin(), (i as f64 * 1.3).cos()))
                .collect();
            let mut buf = data.clone();
            assert!(fft_in_place(&mut buf, false));
            for (k, got) in buf.iter().enumerate() {
                let mut want = (0.0, 0.0);
                for (j, x) in data.iter().enumerate() {
                    let a = -2.0 * PI * (j * k % n) as f64 / n as f64;
                    want.0 += x.0 * a.cos() - x.1 * a.sin();
                    want.1 += x.0 * a.sin() + x.1 * a.cos();
                }
                assert!((got.0 - want.0).abs() < 1e-9 && (got.1 - want.1).abs() < 1e-9);
            }
            assert!(fft_in_place(&mut buf, true));
            for (got, want) in buf.iter().zip(&data) {
                assert!((got.0 / n as f64 - want.0).abs() < 1e-12);
            }
        }
        assert!(!fft_in_place(&mut [(0.0, 0.0); 3], false));
    }
}
