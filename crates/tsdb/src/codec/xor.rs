//! Gorilla XOR value column (Pelkonen et al., VLDB 2015, §4.1.2).
//!
//! Each value is XORed with the previous one. A zero XOR costs one bit (`0`); otherwise
//! the meaningful bits are written either inside the previous leading/trailing-zero
//! window (`10` + bits) or with a new window (`11` + 5 bits of leading zeros + 6 bits of
//! length − 1 + bits); unlike the paper, the encoder opens a new window whenever that
//! is shorter than reusing the old one. This is the fallback for values without a short decimal form; it
//! works on raw bit patterns, so every `f64` — NaN payloads and `-0.0` included —
//! round-trips bit for bit.

use super::bits::{BitReader, BitWriter};

/// Encodes `values` after the first, which goes in 64 raw bits.
pub(crate) fn encode(values: &[f64], w: &mut BitWriter) {
    let Some(first) = values.first() else {
        return;
    };
    let mut prev = first.to_bits();
    w.write(prev, 64);
    // (leading zeros, trailing zeros) of the current window; None until one is set.
    let mut window: Option<(u32, u32)> = None;
    for v in values.iter().skip(1) {
        let bits = v.to_bits();
        let x = bits ^ prev;
        prev = bits;
        if x == 0 {
            w.bit(false);
            continue;
        }
        let lead = x.leading_zeros().min(31);
        let trail = x.trailing_zeros();
        let len = 64 - lead - trail;
        match window {
            // Reuse the window only when that is no longer than opening a new one
            // (Gorilla always reuses; a wide window left by an outlier then costs
            // every later value). The decoder is the same either way.
            Some((wl, wt)) if lead >= wl && trail >= wt && 64 - wl - wt <= 11 + len => {
                w.write(0b10, 2);
                w.write(x >> wt, 64 - wl - wt);
            }
            _ => {
                w.write(0b11, 2);
                w.write(u64::from(lead), 5);
                w.write(u64::from(len - 1), 6);
                w.write(x >> trail, len);
                window = Some((lead, trail));
            }
        }
    }
}

/// Decodes `n` values written by [`encode`]; `None` if the bits are damaged.
pub(crate) fn decode(r: &mut BitReader<'_>, n: usize) -> Option<Vec<f64>> {
    if n > r.remaining() + 1 {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return Some(out);
    }
    let mut prev = r.read(64)?;
    out.push(f64::from_bits(prev));
    let mut window: Option<(u32, u32)> = None;
    for _ in 1..n {
        if r.bit()? {
            let (lead, trail) = if r.bit()? {
                let lead = r.read(5)? as u32;
                let len = r.read(6)? as u32 + 1;
                let trail = 64u32.checked_sub(lead + len)?;
                window = Some((lead, trail));
                (lead, trail)
            } else {
                window?
            };
            let meaningful = r.read(64 - lead - trail)?;
            prev ^= meaningful << trail;
        }
        out.push(f64::from_bits(prev));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(values: &[f64]) -> Option<Vec<u64>> {
        let mut w = BitWriter::new();
        encode(values, &mut w);
        let bytes = w.finish();
        decode(&mut BitReader::new(&bytes), values.len())
            .map(|v| v.iter().map(|f| f.to_bits()).collect())
    }

    proptest! {
        #[test]
        fn any_bit_pattern_round_trips(bits in proptest::collection::vec(any::<u64>(), 0..200)) {
            let values: Vec<f64> = bits.iter().map(|&b| f64::from_bits(b)).collect();
            prop_assert_eq!(round_trip(&values), Some(bits));
        }

        #[test]
        fn slowly_varying_values_round_trip(start in -1e6f64..1e6, steps in proptest::collection::vec(-1.0f64..1.0, 0..300)) {
            let mut v = start;
            let values: Vec<f64> = steps.iter().map(|s| { v += s; v }).collect();
            let bits: Vec<u64> = values.iter().map(|f| f.to_bits()).collect();
            prop_assert_eq!(round_trip(&values), Some(bits));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), n in 0usize..600) {
            let _ = decode(&mut BitReader::new(&bytes), n);
        }
    }

    #[test]
    fn special_values_round_trip() {
        let values = [
            f64::NAN,
            -0.0,
            0.0,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            f64::MAX,
            1.0,
            1.0,
        ];
        let bits: Vec<u64> = values.iter().map(|f| f.to_bits()).collect();
        assert_eq!(round_trip(&values), Some(bits));
    }
}
