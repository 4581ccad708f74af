//! Rice coding of unsigned integers, plus zigzag mapping for signed ones.
//!
//! Delta-of-delta timestamps and decimal value deltas are small numbers clustered around
//! zero with a spread that depends on the data (jitter, sensor noise). Gorilla uses fixed
//! buckets for them; a Rice code with a parameter `k` chosen per column fits the actual
//! spread instead: `z >> k` in unary, then the low `k` bits. Outliers are escaped to a
//! raw 64-bit value so one spike cannot cost thousands of bits.

use super::bits::{BitReader, BitWriter};

/// Quotients at or above this are escaped: `ESCAPE` ones, then the raw 64-bit value.
const ESCAPE: u64 = 24;
/// Largest Rice parameter written or accepted.
pub(crate) const MAX_K: u32 = 48;

/// Maps a signed value to unsigned so small magnitudes get small codes.
pub(crate) fn zigzag(x: i64) -> u64 {
    ((x << 1) ^ (x >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub(crate) fn unzigzag(z: u64) -> i64 {
    ((z >> 1) as i64) ^ -((z & 1) as i64)
}

/// Bits [`write`] spends on `z` with parameter `k`.
fn cost(z: u64, k: u32) -> u64 {
    let q = z >> k;
    if q < ESCAPE {
        q + 1 + u64::from(k)
    } else {
        ESCAPE + 64
    }
}

/// The parameter that codes `values` in the fewest bits.
pub(crate) fn best_k(values: &[u64]) -> u32 {
    (0..=MAX_K)
        .min_by_key(|&k| values.iter().map(|&z| cost(z, k)).sum::<u64>())
        .unwrap_or(0)
}

/// Writes `z` with parameter `k` (≤ [`MAX_K`]).
pub(crate) fn write(w: &mut BitWriter, z: u64, k: u32) {
    let q = z >> k;
    if q < ESCAPE {
        // q ones and a terminating zero.
        w.write((1u64 << (q + 1)) - 2, (q + 1) as u32);
        if k > 0 {
            w.write(z, k);
        }
    } else {
        w.write((1u64 << ESCAPE) - 1, ESCAPE as u32);
        w.write(z, 64);
    }
}

/// Reads one value written by [`write`] with the same `k`; `None` if the bits run out.
pub(crate) fn read(r: &mut BitReader<'_>, k: u32) -> Option<u64> {
    let mut q = 0u64;
    while q < ESCAPE {
        if !r.bit()? {
            let low = if k > 0 { r.read(k)? } else { 0 };
            return Some((q << k) | low);
        }
        q += 1;
    }
    r.read(64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn zigzag_round_trips(x in any::<i64>()) {
            prop_assert_eq!(unzigzag(zigzag(x)), x);
        }

        #[test]
        fn rice_round_trips(values in proptest::collection::vec(any::<u64>(), 0..100), k in 0..=MAX_K) {
            let mut w = BitWriter::new();
            for &z in &values {
                write(&mut w, z, k);
            }
            let bytes = w.finish();
            let mut r = BitReader::new(&bytes);
            for &z in &values {
                prop_assert_eq!(read(&mut r, k), Some(z));
            }
        }
    }

    #[test]
    fn best_k_follows_the_spread() {
        assert_eq!(best_k(&[0, 0, 0, 1]), 0);
        assert!(best_k(&[1000, 1010, 990, 1005]) >= 8);
    }
}
