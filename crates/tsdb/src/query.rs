//! Range aggregates.
//!
//! A query first snapshots, under the state lock, the heads and frozen points of the
//! series it needs plus the segment list, then reads and decodes blocks without any lock.
//! Raw points answer everything they cover. Where raw data has expired — before the
//! series' oldest raw point — and the step is a multiple of a rollup width, rollup rows
//! ending before that point are merged into the buckets (1-minute rows, or 1-hour ones
//! where no 1-minute rows are left); rollup rows must lie wholly inside `[from, to)`.
//! p99 always needs raw points.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::codec::decode_chunk;
use crate::db::{Points, Tsdb};
use crate::error::Error;
use crate::model::{Agg, Bucket, Query, SeriesResult};
use crate::rollup::{self, bucket_start, Row, Summary, HOUR_MS, MINUTE_MS};
use crate::segment::{Kind, Segment};
use crate::wal::lock;

/// Most buckets one query may span, so a tiny step over a huge range is refused early.
pub const MAX_BUCKETS: i64 = 1_000_000;

/// What a query needs of one series, copied out under the lock.
struct Snapshot {
    device: String,
    id: u32,
    /// Unsealed points in range.
    recent: Points,
    /// Oldest unsealed point (in or out of range).
    recent_min: i64,
}

/// A bucket being accumulated.
#[derive(Default)]
struct Acc {
    summary: Option<Summary>,
    values: Vec<f64>,
}

impl Acc {
    fn add(&mut self, ts: i64, v: f64, keep_values: bool) {
        self.merge(&Summary::of(ts, v));
        if keep_values {
            self.values.push(v);
        }
    }

    fn merge(&mut self, s: &Summary) {
        match &mut self.summary {
            Some(have) => have.merge(s),
            None => self.summary = Some(*s),
        }
    }

    fn value(mut self, agg: Agg) -> Option<f64> {
        let s = self.summary?;
        Some(match agg {
            Agg::Mean => s.sum / s.count as f64,
            Agg::Min => s.min,
            Agg::Max => s.max,
            Agg::Count => s.count as f64,
            Agg::Last => s.last,
            Agg::P99 => {
                self.values.sort_by(f64::total_cmp);
                let rank = (self.values.len() as f64 * 0.99).ceil() as usize;
                *self.values.get(rank.saturating_sub(1))?
            }
        })
    }
}

impl Tsdb {
    /// Aggregates one field over `[from_ms, to_ms)` per device (devices without points
    /// in the range are left out; results are sorted by device).
    pub fn query(&self, q: &Query) -> Result<Vec<SeriesResult>, Error> {
        validate(q)?;
        let (snapshots, segments) = self.snapshot(q);
        let mut out = Vec::new();
        for snap in snapshots {
            let buckets = answer(q, &snap, &segments)?;
            if !buckets.is_empty() {
                out.push(SeriesResult {
                    device: snap.device,
                    field: q.field.clone(),
                    buckets,
                });
            }
        }
        out.sort_by(|a, b| a.device.cmp(&b.device));
        Ok(out)
    }

    fn snapshot(&self, q: &Query) -> (Vec<Snapshot>, Vec<Arc<Segment>>) {
        let st = lock(&self.state);
        let ids: Vec<u32> = match &q.devices {
            Some(devices) => devices
                .iter()
                .filter_map(|d| st.find(d, &q.field))
                .collect(),
            None => (0..st.series.len() as u32)
                .filter(|&id| {
                    st.series
                        .get(id as usize)
                        .is_some_and(|s| s.field == q.field)
                })
                .collect(),
        };
        let snaps = ids
            .into_iter()
            .filter_map(|id| {
                let s = st.series.get(id as usize)?;
                let frozen = st.frozen.as_ref().and_then(|f| f.get(&id));
                let all = s.head.iter().chain(frozen.into_iter().flatten());
                let mut recent = Vec::new();
                let mut recent_min = i64::MAX;
                for &(ts, v) in all {
                    recent_min = recent_min.min(ts);
                    if ts >= q.from_ms && ts < q.to_ms {
                        recent.push((ts, v));
                    }
                }
                Some(Snapshot {
                    device: s.device.clone(),
                    id,
                    recent,
                    recent_min,
                })
            })
            .collect();
        (snaps, st.segments.clone())
    }
}

fn validate(q: &Query) -> Result<(), Error> {
    if q.to_ms <= q.from_ms {
        return Err(Error::InvalidQuery("`to` must be after `from`"));
    }
    if let Some(step) = q.step_ms {
        if step <= 0 {
            return Err(Error::InvalidQuery("step must be positive"));
        }
        let span = i128::from(q.to_ms) - i128::from(q.from_ms);
        if span / i128::from(step) > i128::from(MAX_BUCKETS) {
            return Err(Error::InvalidQuery("too many buckets: use a larger step"));
        }
    }
    Ok(())
}

/// The bucket a timestamp falls in.
fn bucket_of(q: &Query, ts: i64) -> i64 {
    q.step_ms.map_or(q.from_ms, |step| bucket_start(ts, step))
}

/// The buckets of one series.
fn answer(q: &Query, snap: &Snapshot, segments: &[Arc<Segment>]) -> Result<Vec<Bucket>, Error> {
    let keep_values = q.agg == Agg::P99;
    let mut raw = snap.recent.clone();
    let mut floor = snap.recent_min;
    for seg in segments {
        for b in seg.blocks_of(snap.id).filter(|b| b.kind == Kind::Raw) {
            floor = floor.min(b.min_ts);
            if b.max_ts >= q.from_ms && b.min_ts < q.to_ms {
                let bytes = seg.read_block(b)?;
                let (ts, values) = decode_chunk(&bytes).ok_or_else(|| corrupt(seg))?;
                raw.extend(
                    ts.into_iter()
                        .zip(values)
                        .filter(|p| p.0 >= q.from_ms && p.0 < q.to_ms),
                );
            }
        }
    }
    let mut buckets: BTreeMap<i64, Acc> = BTreeMap::new();
    for (start, summary) in rollup_buckets(q, snap.id, floor, segments)? {
        buckets.entry(start).or_default().merge(&summary);
    }
    for (ts, v) in raw {
        buckets
            .entry(bucket_of(q, ts))
            .or_default()
            .add(ts, v, keep_values);
    }
    Ok(buckets
        .into_iter()
        .filter_map(|(ts_ms, acc)| acc.value(q.agg).map(|value| Bucket { ts_ms, value }))
        .collect())
}

/// Rollup summaries of the time before the series' oldest raw point (`floor`), per
/// result bucket. Only rows that end at or before the rollup-aligned floor are used, so
/// they hold exactly the points whose raw data has expired: never one that raw data
/// still answers. 1-hour rows fill hours without any 1-minute row left.
fn rollup_buckets(
    q: &Query,
    id: u32,
    floor: i64,
    segments: &[Arc<Segment>],
) -> Result<BTreeMap<i64, Summary>, Error> {
    let mut out: BTreeMap<i64, Summary> = BTreeMap::new();
    let Some(step) = q.step_ms else {
        return Ok(out);
    };
    if q.agg == Agg::P99 || step % MINUTE_MS != 0 || q.from_ms >= floor {
        return Ok(out);
    }
    let minutes = rows(
        q,
        id,
        Kind::Minute,
        bucket_start(floor, MINUTE_MS),
        segments,
    )?;
    let covered: HashSet<i64> = minutes
        .iter()
        .map(|r| bucket_start(r.start, HOUR_MS))
        .collect();
    let hours = if step % HOUR_MS == 0 {
        rows(q, id, Kind::Hour, bucket_start(floor, HOUR_MS), segments)?
    } else {
        Vec::new()
    };
    let hours = hours.into_iter().filter(|r| !covered.contains(&r.start));
    for row in minutes.into_iter().chain(hours) {
        out.entry(bucket_of(q, row.start))
            .and_modify(|s| s.merge(&row.summary))
            .or_insert(row.summary);
    }
    Ok(out)
}

/// Rollup rows of one kind lying wholly inside `[from, to)` and starting before `cut`.
fn rows(
    q: &Query,
    id: u32,
    kind: Kind,
    cut: i64,
    segments: &[Arc<Segment>],
) -> Result<Vec<Row>, Error> {
    let width = if kind == Kind::Hour {
        HOUR_MS
    } else {
        MINUTE_MS
    };
    let mut out = Vec::new();
    for seg in segments {
        for b in seg.blocks_of(id).filter(|b| b.kind == kind) {
            if b.max_ts < q.from_ms || b.min_ts >= q.to_ms.min(cut) {
                continue;
            }
            let bytes = seg.read_block(b)?;
            let decoded = rollup::decode(&bytes).ok_or_else(|| corrupt(seg))?;
            out.extend(decoded.into_iter().filter(|r| {
                r.start >= q.from_ms && r.start < cut && r.start.saturating_add(width) <= q.to_ms
            }));
        }
    }
    Ok(out)
}

fn corrupt(seg: &Segment) -> Error {
    Error::Corrupt {
        path: seg.path().to_owned(),
        why: "block does not decode",
    }
}
