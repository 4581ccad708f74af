//! Rollups: per-bucket summaries (min, max, sum, count, last) that outlive raw points.
//!
//! A [`Summary`] is what every aggregation except p99 needs, and summaries merge
//! associatively, so a bucket summarised in two seals (late points) is simply merged at
//! query time. Rollup blocks store one row per non-empty bucket as columns: bucket
//! starts, counts and last-point offsets through the delta-of-delta codec, min, max, sum
//! and last through the value codec.

use crate::codec::{dod, put_bytes, put_varint, values, Reader};

/// Width of the fine rollup, ms.
pub(crate) const MINUTE_MS: i64 = 60_000;
/// Width of the coarse rollup, ms.
pub(crate) const HOUR_MS: i64 = 3_600_000;

/// Start of the `width`-aligned bucket holding `ts` (aligned to the epoch), saturating at
/// `i64::MIN` instead of overflowing.
pub(crate) fn bucket_start(ts: i64, width: i64) -> i64 {
    if width <= 0 {
        return ts;
    }
    let start = i128::from(ts).div_euclid(i128::from(width)) * i128::from(width);
    i64::try_from(start).unwrap_or(i64::MIN)
}

/// The reduction of a bucket's points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Summary {
    /// Smallest value.
    pub(crate) min: f64,
    /// Largest value.
    pub(crate) max: f64,
    /// Sum of values.
    pub(crate) sum: f64,
    /// Number of points.
    pub(crate) count: u64,
    /// Value of the latest point.
    pub(crate) last: f64,
    /// Timestamp of the latest point.
    pub(crate) last_ts: i64,
}

impl Summary {
    /// The summary of one point.
    pub(crate) fn of(ts: i64, value: f64) -> Summary {
        Summary {
            min: value,
            max: value,
            sum: value,
            count: 1,
            last: value,
            last_ts: ts,
        }
    }

    /// Folds `other` into `self`; on equal last timestamps `other` wins (it came later).
    pub(crate) fn merge(&mut self, other: &Summary) {
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
        self.count += other.count;
        if other.last_ts >= self.last_ts {
            self.last = other.last;
            self.last_ts = other.last_ts;
        }
    }
}

/// One rollup row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Row {
    /// Bucket start, ms.
    pub(crate) start: i64,
    /// The bucket's summary.
    pub(crate) summary: Summary,
}

/// Summarises time-sorted points into `width` buckets. When every value has at most
/// `digits` fraction digits, sums are computed on the scaled integers: exact, and
/// themselves short decimals, so the sum column compresses like the values do.
pub(crate) fn summarise(points: &[(i64, f64)], width: i64, digits: Option<u8>) -> Vec<Row> {
    let scale = digits.map(|d| 10f64.powi(i32::from(d)));
    let mut rows: Vec<Row> = Vec::new();
    let mut sums: Vec<i128> = Vec::new();
    for &(ts, v) in points {
        let start = bucket_start(ts, width);
        let scaled = scale.map_or(0, |s| (v * s).round() as i128);
        match (rows.last_mut(), sums.last_mut()) {
            (Some(row), Some(sum)) if row.start == start => {
                row.summary.merge(&Summary::of(ts, v));
                *sum += scaled;
            }
            _ => {
                rows.push(Row {
                    start,
                    summary: Summary::of(ts, v),
                });
                sums.push(scaled);
            }
        }
    }
    if let Some(scale) = scale {
        for (row, sum) in rows.iter_mut().zip(sums) {
            if sum.unsigned_abs() < 1 << 53 {
                row.summary.sum = sum as f64 / scale;
            }
        }
    }
    rows
}

/// Merges rows (any order, repeated buckets allowed) into one row per bucket, sorted.
pub(crate) fn merge_rows(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_by_key(|r| r.start);
    let mut out: Vec<Row> = Vec::with_capacity(rows.len());
    for row in rows {
        match out.last_mut() {
            Some(prev) if prev.start == row.start => prev.summary.merge(&row.summary),
            _ => out.push(row),
        }
    }
    out
}

/// Encodes rows as a block.
pub(crate) fn encode(rows: &[Row]) -> Vec<u8> {
    let col = |f: fn(&Row) -> f64| values::encode(&rows.iter().map(f).collect::<Vec<_>>());
    let starts: Vec<i64> = rows.iter().map(|r| r.start).collect();
    let counts: Vec<i64> = rows.iter().map(|r| r.summary.count as i64).collect();
    let offsets: Vec<i64> = rows
        .iter()
        .map(|r| r.summary.last_ts.wrapping_sub(r.start))
        .collect();
    let mut out = Vec::new();
    put_varint(&mut out, rows.len() as u64);
    put_bytes(&mut out, &dod::encode(&starts));
    put_bytes(&mut out, &dod::encode(&counts));
    put_bytes(&mut out, &dod::encode(&offsets));
    put_bytes(&mut out, &col(|r| r.summary.min));
    put_bytes(&mut out, &col(|r| r.summary.max));
    put_bytes(&mut out, &col(|r| r.summary.sum));
    put_bytes(&mut out, &col(|r| r.summary.last));
    out
}

/// Decodes a block written by [`encode`]; `None` if damaged.
pub(crate) fn decode(bytes: &[u8]) -> Option<Vec<Row>> {
    let mut r = Reader::new(bytes);
    let n = usize::try_from(r.varint()?).ok()?;
    let starts = dod::decode(r.bytes()?, n)?;
    let counts = dod::decode(r.bytes()?, n)?;
    let offsets = dod::decode(r.bytes()?, n)?;
    let min = values::decode(r.bytes()?, n)?;
    let max = values::decode(r.bytes()?, n)?;
    let sum = values::decode(r.bytes()?, n)?;
    let last = values::decode(r.bytes()?, n)?;
    let rows = (0..n)
        .map(|i| {
            let start = *starts.get(i)?;
            Some(Row {
                start,
                summary: Summary {
                    min: *min.get(i)?,
                    max: *max.get(i)?,
                    sum: *sum.get(i)?,
                    count: u64::try_from(*counts.get(i)?).ok()?,
                    last: *last.get(i)?,
                    last_ts: start.wrapping_add(*offsets.get(i)?),
                },
            })
        })
        .collect::<Option<Vec<Row>>>()?;
    Some(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn blocks_round_trip(raw in proptest::collection::vec((0i64..10_000_000, -1e3f64..1e3), 1..300)) {
            let mut points = raw;
            points.sort_by_key(|p| p.0);
            let rows = summarise(&points, MINUTE_MS, None);
            prop_assert_eq!(decode(&encode(&rows)), Some(rows.clone()));
            let total: u64 = rows.iter().map(|r| r.summary.count).sum();
            prop_assert_eq!(total, points.len() as u64);
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn decimal_sums_are_exact() {
        let points: Vec<(i64, f64)> = (0..60).map(|i| (i * 1000, 0.1)).collect();
        let rows = summarise(&points, MINUTE_MS, Some(1));
        assert_eq!(rows[0].summary.sum, 6.0);
        let inexact = summarise(&points, MINUTE_MS, None);
        assert_ne!(inexact[0].summary.sum, 6.0, "float accumulation drifts");
    }

    #[test]
    fn bucket_start_handles_extremes() {
        assert_eq!(bucket_start(i64::MIN, 1000), i64::MIN);
        assert_eq!(bucket_start(-1, 1000), -1000);
        assert_eq!(bucket_start(i64::MAX, 1000), i64::MAX - i64::MAX % 1000);
    }

    #[test]
    fn merged_rows_keep_the_latest_last() {
        let a = Row {
            start: 0,
            summary: Summary::of(10, 1.0),
        };
        let b = Row {
            start: 0,
            summary: Summary::of(5, 2.0),
        };
        let merged = merge_rows(vec![a, b]);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].summary.last, 1.0);
        assert_eq!(merged[0].summary.count, 2);
    }
}
