//! Delta-of-delta timestamp column (Gorilla §4.1.1, with Rice-coded residuals).
//!
//! Devices report on a schedule, so the delta between consecutive timestamps barely
//! changes and its delta is zero or a few milliseconds of jitter. The first timestamp is
//! stored raw, then every delta-of-delta is zigzagged and Rice-coded with the parameter
//! that suits this column (stored as the first byte). All arithmetic wraps, so any
//! `i64` sequence — unsorted, or spanning `i64::MIN..=i64::MAX` — round-trips exactly.
//! The same codec stores the integer columns of rollups (counts, offsets).

use super::bits::{BitReader, BitWriter};
use super::rice;

/// Encodes `ts` (any order, any values).
pub(crate) fn encode(ts: &[i64]) -> Vec<u8> {
    let residuals = residuals(ts);
    let k = rice::best_k(&residuals);
    let mut w = BitWriter::new();
    if let Some(&first) = ts.first() {
        w.write(first as u64, 64);
    }
    for &z in &residuals {
        rice::write(&mut w, z, k);
    }
    let mut out = vec![k as u8];
    out.extend(w.finish());
    out
}

/// Zigzagged delta-of-deltas of `ts[1..]` (the first delta is taken against 0).
fn residuals(ts: &[i64]) -> Vec<u64> {
    let mut prev_delta = 0i64;
    ts.windows(2)
        .map(|pair| {
            let delta = pair[1].wrapping_sub(pair[0]);
            let dod = delta.wrapping_sub(prev_delta);
            prev_delta = delta;
            rice::zigzag(dod)
        })
        .collect()
}

/// Decodes `n` timestamps written by [`encode`]; `None` if the bytes are damaged.
pub(crate) fn decode(bytes: &[u8], n: usize) -> Option<Vec<i64>> {
    let (&k, bits) = bytes.split_first()?;
    let k = u32::from(k);
    if k > rice::MAX_K {
        return None;
    }
    let mut r = BitReader::new(bits);
    // Each value costs at least one bit: refuse counts the bytes cannot hold.
    if n > r.remaining() + 1 {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return Some(out);
    }
    let mut prev = r.read(64)? as i64;
    out.push(prev);
    let mut delta = 0i64;
    for _ in 1..n {
        let dod = rice::unzigzag(rice::read(&mut r, k)?);
        delta = delta.wrapping_add(dod);
        prev = prev.wrapping_add(delta);
        out.push(prev);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn extremes() -> impl Strategy<Value = i64> {
        prop_oneof![
            Just(i64::MIN),
            Just(i64::MAX),
            Just(0i64),
            Just(-1i64),
            any::<i64>(),
            1_600_000_000_000i64..1_700_000_000_000,
        ]
    }

    proptest! {
        #[test]
        fn any_sequence_round_trips(ts in proptest::collection::vec(extremes(), 0..200)) {
            let bytes = encode(&ts);
            prop_assert_eq!(decode(&bytes, ts.len()), Some(ts));
        }

        #[test]
        fn jittered_schedule_round_trips(start in 0i64..1_000_000_000_000, jitter in proptest::collection::vec(-20i64..20, 1..500)) {
            let ts: Vec<i64> = jitter.iter().enumerate().map(|(i, j)| start + i as i64 * 1000 + j).collect();
            let bytes = encode(&ts);
            prop_assert_eq!(decode(&bytes, ts.len()), Some(ts));
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64), n in 0usize..2000) {
            let _ = decode(&bytes, n);
        }
    }

    #[test]
    fn regular_schedule_costs_about_one_bit_per_point() {
        let ts: Vec<i64> = (0..1000).map(|i| 1_700_000_000_000 + i * 1000).collect();
        assert!(encode(&ts).len() < 1000 / 8 + 30);
    }
}
