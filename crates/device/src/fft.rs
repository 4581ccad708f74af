//! In-place radix-2 FFTs over `f32` slices, complex values stored as `[re, im]` pairs.
//!
//! Written here rather than taken from `microfft` because the pipeline needs three things
//! that crate's API does not give without `unsafe` casts or `generic_const_exprs`: one
//! transform for any const-generic window length `N` (microfft has one function per size),
//! an inverse transform of `N/2` complex points living in the same `[f32; N]` buffer as
//! the real spectrum (the envelope reuses that memory), and no extra dependency. The
//! transforms are checked against a direct DFT in the tests below.
//!
//! Layout of [`real_in_place`]'s output, for a record of `n` real samples: `buf[0]` is
//! the DC term, `buf[1]` the (real) Nyquist term, and `buf[2k], buf[2k+1]` are the real
//! and imaginary parts of bin `k` for `1 ≤ k < n/2`. The negative frequencies are the
//! conjugates and are not stored.

use crate::trig::cos_sin_turn;
use crate::window::MAX_WINDOW;
use crate::Error;

/// Sign of the exponent: which way the transform turns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// `X[k] = Σ x[j]·e^{−2πijk/n}`: time to frequency.
    Forward,
    /// `x[j] = Σ X[k]·e^{+2πijk/n}`, *not* divided by `n`: callers fold the scale into
    /// their own normalisation instead of paying a pass over the data.
    Inverse,
}

/// Transforms `buf.len()/2` complex values in place.
///
/// The length in complex points must be a power of two from 1 to [`MAX_WINDOW`];
/// anything else is refused with [`Error::WindowLength`] before a value is touched.
pub fn complex_in_place(buf: &mut [f32], direction: Direction) -> Result<(), Error> {
    let m = buf.len() / 2;
    if buf.len() % 2 != 0 || !m.is_power_of_two() || m > MAX_WINDOW {
        return Err(Error::WindowLength { got: buf.len() });
    }
    bit_reverse(buf, m);
    let mut len = 2;
    while len <= m {
        let half = len / 2;
        for k in 0..half {
            let (c, s) = cos_sin_turn(k, len);
            let (wr, wi) = match direction {
                Direction::Forward => (c, -s),
                Direction::Inverse => (c, s),
            };
            let mut a = k;
            while a < m {
                let b = a + half;
                let (br, bi) = (buf[2 * b], buf[2 * b + 1]);
                let tr = br * wr - bi * wi;
                let ti = br * wi + bi * wr;
                let (ar, ai) = (buf[2 * a], buf[2 * a + 1]);
                buf[2 * a] = ar + tr;
                buf[2 * a + 1] = ai + ti;
                buf[2 * b] = ar - tr;
                buf[2 * b + 1] = ai - ti;
                a += len;
            }
        }
        len *= 2;
    }
    Ok(())
}

/// Puts complex point `i` at the bit-reversed index of `i`, the input order of an
/// iterative decimation-in-time FFT.
fn bit_reverse(buf: &mut [f32], m: usize) {
    let mut j = 0;
    for i in 0..m {
        if i < j {
            buf.swap(2 * i, 2 * j);
            buf.swap(2 * i + 1, 2 * j + 1);
        }
        let mut bit = m >> 1;
        while bit > 0 && j & bit != 0 {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
    }
}

/// Forward FFT of `buf.len()` real samples, in place, in the packed layout described in
/// the module documentation.
///
/// Costs one complex FFT of half the length plus a linear pass: the even and odd samples
/// are transformed together as the real and imaginary parts of one complex record, then
/// separated using the symmetry of real signals. The length must be a power of two from
/// 4 to [`MAX_WINDOW`].
pub fn real_in_place(buf: &mut [f32]) -> Result<(), Error> {
    let n = buf.len();
    if !n.is_power_of_two() || !(4..=MAX_WINDOW).contains(&n) {
        return Err(Error::WindowLength { got: n });
    }
    complex_in_place(buf, Direction::Forward)?;
    let m = n / 2;
    // Bin 0 and the Nyquist bin are real; both come from Z[0].
    let (z0r, z0i) = (buf[0], buf[1]);
    buf[0] = z0r + z0i;
    buf[1] = z0r - z0i;
    // Bins k and m−k are computed together from Z[k] and Z[m−k]:
    //   E = (Z[k] + conj Z[m−k]) / 2   (spectrum of the even samples)
    //   O = (Z[k] − conj Z[m−k]) / 2i  (spectrum of the odd samples)
    //   X[k] = E + W^k·O,  X[m−k] = conj(E − W^k·O),  W = e^{−2πi/n}.
    for k in 1..=m / 2 {
        let j = m - k;
        let (ar, ai) = (buf[2 * k], buf[2 * k + 1]);
        let (br, bi) = (buf[2 * j], -buf[2 * j + 1]);
        let (er, ei) = (0.5 * (ar + br), 0.5 * (ai + bi));
        // (a − b) / 2i = (im(a − b) − i·re(a − b)) / 2
        let (or, oi) = (0.5 * (ai - bi), -0.5 * (ar - br));
        let (c, s) = cos_sin_turn(k, n);
        let (wr, wi) = (c, -s);
        let tr = or * wr - oi * wi;
        let ti = or * wi + oi * wr;
        buf[2 * j] = er - tr;
        buf[2 * j + 1] = -(ei - ti);
        buf[2 * k] = er + tr;
        buf[2 * k + 1] = ei + ti;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A direct O(n²) DFT in f64, the reference the FFTs are checked against.
    fn dft(re: &[f64], im: &[f64], sign: f64) -> (Vec<f64>, Vec<f64>) {
        let n = re.len();
        let mut out_re = vec![0.0; n];
        let mut out_im = vec![0.0; n];
        for k in 0..n {
            for j in 0..n {
                let a = sign * 2.0 * std::f64::consts::PI * (j * k % n) as f64 / n as f64;
                out_re[k] += re[j] * a.cos() - im[j] * a.sin();
                out_im[k] += re[j] * a.sin() + im[j] * a.cos();
            }
        }
        (out_re, out_im)
    }

    /// Deterministic pseudo-random samples in [−1, 1) (xorshift), so tests need no crate.
    fn noise(len: usize, mut state: u32) -> Vec<f32> {
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn complex_matches_dft_both_directions() {
        for m in [1usize, 2, 4, 8, 64, 256] {
            let data = noise(2 * m, 7 + m as u32);
            let re: Vec<f64> = data.iter().step_by(2).map(|&x| f64::from(x)).collect();
            let im: Vec<f64> = data
                .iter()
                .skip(1)
                .step_by(2)
                .map(|&x| f64::from(x))
                .collect();
            for (direction, sign) in [(Direction::Forward, -1.0), (Direction::Inverse, 1.0)] {
                let mut buf = data.clone();
                complex_in_place(&mut buf, direction).expect("valid length");
                let (want_re, want_im) = dft(&re, &im, sign);
                for k in 0..m {
                    assert!(
                        (f64::from(buf[2 * k]) - want_re[k]).abs() < 1e-4 * m as f64,
                        "m={m} k={k}"
                    );
                    assert!(
                        (f64::from(buf[2 * k + 1]) - want_im[k]).abs() < 1e-4 * m as f64,
                        "m={m} k={k}"
                    );
                }
            }
        }
    }

    #[test]
    fn real_matches_dft() {
        for n in [4usize, 8, 16, 64, 512, 4096] {
            let data = noise(n, 99 + n as u32);
            let re: Vec<f64> = data.iter().map(|&x| f64::from(x)).collect();
            let (want_re, want_im) = dft(&re, &vec![0.0; n], -1.0);
            let mut buf = data.clone();
            real_in_place(&mut buf).expect("valid length");
            let tol = 2e-5 * n as f64;
            assert!((f64::from(buf[0]) - want_re[0]).abs() < tol, "n={n} DC");
            assert!(
                (f64::from(buf[1]) - want_re[n / 2]).abs() < tol,
                "n={n} Nyquist"
            );
            for k in 1..n / 2 {
                assert!(
                    (f64::from(buf[2 * k]) - want_re[k]).abs() < tol,
                    "n={n} k={k} re"
                );
                assert!(
                    (f64::from(buf[2 * k + 1]) - want_im[k]).abs() < tol,
                    "n={n} k={k} im"
                );
            }
        }
    }

    #[test]
    fn inverse_undoes_forward() {
        let data = noise(2 * 1024, 5);
        let mut buf = data.clone();
        complex_in_place(&mut buf, Direction::Forward).expect("valid length");
        complex_in_place(&mut buf, Direction::Inverse).expect("valid length");
        for (got, want) in buf.iter().zip(&data) {
            assert!((got / 1024.0 - want).abs() < 1e-5);
        }
    }

    #[test]
    fn refuses_unsupported_lengths() {
        assert!(real_in_place(&mut [0.0; 6]).is_err());
        assert!(real_in_place(&mut [0.0; 2]).is_err());
        assert!(real_in_place(&mut []).is_err());
        assert!(complex_in_place(&mut [0.0; 3], Direction::Forward).is_err());
        assert!(complex_in_place(&mut [0.0; 12], Direction::Forward).is_err());
        assert!(complex_in_place(&mut vec![0.0; 4 * MAX_WINDOW], Direction::Forward).is_err());
    }
}
