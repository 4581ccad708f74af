//! Float value column: Gorilla XOR, or scaled decimals when that is smaller.
//!
//! Sensors report values with a few significant digits (`2.513`, `0.0481`). Their `f64`
//! bit patterns differ in almost every mantissa bit, so XOR saves little. When every
//! value of a column equals `m / 10^p` for an integer `m` (bit for bit) and a small `p`,
//! the column is stored as `p` plus Rice-coded deltas of `m`: sensor noise of a few
//! units of the last digit then costs a few bits. The encoder tries both forms and keeps
//! the shorter, so the decimal form can only help. Byte 0 says which form: 0 = XOR,
//! `1 + p` = decimal with `p` fraction digits.

use super::bits::{BitReader, BitWriter};
use super::{rice, xor};

/// Most fraction digits the decimal form tries.
const MAX_DIGITS: u8 = 9;
/// Scaled integers must stay exactly representable in an `f64`.
const MAX_SCALED: f64 = 9_007_199_254_740_992.0; // 2^53

/// Encodes a value column.
pub(crate) fn encode(values: &[f64]) -> Vec<u8> {
    let mut w = BitWriter::new();
    xor::encode(values, &mut w);
    let mut best = vec![0u8];
    best.extend(w.finish());
    if let Some((digits, scaled)) = as_decimals(values) {
        let decimal = encode_decimal(digits, &scaled);
        if decimal.len() < best.len() {
            best = decimal;
        }
    }
    best
}

/// The fewest fraction digits that represent every value exactly, if any do.
pub(crate) fn decimal_digits(values: &[f64]) -> Option<u8> {
    as_decimals(values).map(|(digits, _)| digits)
}

/// The fewest fraction digits that represent every value exactly, and the scaled values.
fn as_decimals(values: &[f64]) -> Option<(u8, Vec<i64>)> {
    (0..=MAX_DIGITS).find_map(|digits| {
        let scale = 10f64.powi(i32::from(digits));
        values
            .iter()
            .map(|&v| {
                let m = (v * scale).round();
                let exact = m.abs() <= MAX_SCALED && (m / scale).to_bits() == v.to_bits();
                exact.then_some(m as i64)
            })
            .collect::<Option<Vec<i64>>>()
            .map(|scaled| (digits, scaled))
    })
}

/// Byte `1 + digits`, byte `k`, the first scaled value raw, then Rice-coded deltas.
fn encode_decimal(digits: u8, scaled: &[i64]) -> Vec<u8> {
    let deltas: Vec<u64> = scaled
        .windows(2)
        .map(|p| rice::zigzag(p[1].wrapping_sub(p[0])))
        .collect();
    let k = rice::best_k(&deltas);
    let mut w = BitWriter::new();
    if let Some(&first) = scaled.first() {
        w.write(first as u64, 64);
    }
    for &z in &deltas {
        rice::write(&mut w, z, k);
    }
    let mut out = vec![1 + digits, k as u8];
    out.extend(w.finish());
    out
}

/// Decodes `n` values written by [`encode`]; `None` if the bytes are damaged.
pub(crate) fn decode(bytes: &[u8], n: usize) -> Option<Vec<f64>> {
    let (&mode, rest) = bytes.split_first()?;
    if mode == 0 {
        return xor::decode(&mut BitReader::new(rest), n);
    }
    let digits = mode - 1;
    if digits > MAX_DIGITS {
        return None;
    }
    let (&k, bits) = rest.split_first()?;
    let k = u32::from(k);
    if k > rice::MAX_K {
        return None;
    }
    let mut r = BitReader::new(bits);
    if n > r.remaining() + 1 {
        return None;
    }
    let scale = 10f64.powi(i32::from(digits));
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return Some(out);
    }
    let mut m = r.read(64)? as i64;
    out.push(m as f64 / scale);
    for _ in 1..n {
        m = m.wrapping_add(rice::unzigzag(rice::read(&mut r, k)?));
        out.push(m as f64 / scale);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bits(values: &[f64]) -> Vec<u64> {
        values.iter().map(|f| f.to_bits()).collect()
    }

    proptest! {
        #[test]
        fn any_bit_pattern_round_trips(raw in proptest::collection::vec(any::<u64>(), 0..100)) {
            let values: Vec<f64> = raw.iter().map(|&b| f64::from_bits(b)).collect();
            let decoded = decode(&encode(&values), values.len()).map(|v| bits(&v));
            prop_assert_eq!(decoded, Some(raw));
        }

        #[test]
        fn rounded_values_round_trip(digits in 0i32..6, raw in proptest::collection::vec(-1e5f64..1e5, 1..300)) {
            let scale = 10f64.powi(digits);
            let values: Vec<f64> = raw.iter().map(|v| (v * scale).round() / scale).collect();
            let decoded = decode(&encode(&values), values.len()).map(|v| bits(&v));
            prop_assert_eq!(decoded, Some(bits(&values)));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), n in 0usize..600) {
            let _ = decode(&bytes, n);
        }
    }

    #[test]
    fn rounded_noise_is_far_smaller_than_xor() {
        let values: Vec<f64> = (0..1000)
            .map(|i| ((2.5 + (i as f64 * 0.37).sin() * 0.01) * 1000.0).round() / 1000.0)
            .collect();
        let bytes = encode(&values);
        assert!(
            bytes[0] == 4,
            "expected 3 fraction digits, got mode {}",
            bytes[0]
        );
        assert!(bytes.len() < 1000, "{} bytes", bytes.len());
    }
}
