//! Maintenance: building blocks from sealed points, `tick` (seal on schedule, drop
//! expired data, compact) and `compact`.
//!
//! Expiry works on whole blocks: a raw chunk goes when its newest point is older than
//! the series' raw retention, a rollup block when its newest bucket is older than that
//! rollup's retention. Since chunks never span a partition, data outlives its retention
//! by at most one partition. A segment that loses blocks is rewritten without them (the
//! new file names the old one in `supersedes`); one that loses all is deleted.
//! Compaction, when there are more than `Options::max_segments` segments, merges all but
//! the `max_segments / 2` largest into one (so large old segments are not rewritten on
//! every round), re-encoding a series' chunks of one partition (from several seals,
//! possibly overlapping because of late points) into a single sorted chunk. `compact`
//! merges everything.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::codec::{decode_chunk, encode_chunk};
use crate::db::{Points, Tsdb};
use crate::error::Error;
use crate::options::ms;
use crate::rollup::{self, bucket_start, Row, HOUR_MS, MINUTE_MS};
use crate::segment::{BlockMeta, Kind, NewBlock, Segment};
use crate::wal::lock;

/// Span of one 1-minute rollup block (a day of rows), so it can expire on its own.
const MINUTE_BLOCK_MS: i64 = 24 * HOUR_MS;
/// Span of one 1-hour rollup block (30 days of rows).
const HOUR_BLOCK_MS: i64 = 30 * 24 * HOUR_MS;

/// Raw chunks and rollup blocks for sealed points.
pub(crate) fn build_blocks(frozen: &HashMap<u32, Points>, partition_ms: i64) -> Vec<NewBlock> {
    let mut ids: Vec<u32> = frozen.keys().copied().collect();
    ids.sort_unstable();
    let mut out = Vec::new();
    for id in ids {
        let Some(points) = frozen.get(&id) else {
            continue;
        };
        let mut points = points.clone();
        points.sort_by_key(|p| p.0);
        raw_blocks(id, &points, partition_ms, &mut out);
        let values: Vec<f64> = points.iter().map(|p| p.1).collect();
        let digits = crate::codec::values::decimal_digits(&values);
        let minutes = rollup::summarise(&points, MINUTE_MS, digits);
        rollup_blocks(id, Kind::Minute, minutes, &mut out);
        let hours = rollup::summarise(&points, HOUR_MS, digits);
        rollup_blocks(id, Kind::Hour, hours, &mut out);
    }
    out
}

/// One raw chunk per partition of time-sorted `points`.
fn raw_blocks(id: u32, points: &[(i64, f64)], partition_ms: i64, out: &mut Vec<NewBlock>) {
    for run in
        points.chunk_by(|a, b| bucket_start(a.0, partition_ms) == bucket_start(b.0, partition_ms))
    {
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            continue;
        };
        let ts: Vec<i64> = run.iter().map(|p| p.0).collect();
        let values: Vec<f64> = run.iter().map(|p| p.1).collect();
        out.push(NewBlock {
            series: id,
            kind: Kind::Raw,
            min_ts: first.0,
            max_ts: last.0,
            count: run.len() as u64,
            bytes: encode_chunk(&ts, &values),
        });
    }
}

/// Width of a rollup kind's buckets and the span of one of its blocks.
pub(crate) fn rollup_widths(kind: Kind) -> (i64, i64) {
    match kind {
        Kind::Hour => (HOUR_MS, HOUR_BLOCK_MS),
        _ => (MINUTE_MS, MINUTE_BLOCK_MS),
    }
}

/// Rollup blocks of sorted rows, split by block span.
fn rollup_blocks(id: u32, kind: Kind, rows: Vec<Row>, out: &mut Vec<NewBlock>) {
    let (width, span) = rollup_widths(kind);
    for run in rows.chunk_by(|a, b| bucket_start(a.start, span) == bucket_start(b.start, span)) {
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            continue;
        };
        out.push(NewBlock {
            series: id,
            kind,
            min_ts: first.start,
            max_ts: last.start.saturating_add(width - 1),
            count: run.len() as u64,
            bytes: rollup::encode(run),
        });
    }
}

impl Tsdb {
    /// Periodic maintenance, called by the pipeline (e.g. every few seconds) with the
    /// current time: seals heads when due, drops expired data, compacts segments.
    pub fn tick(&self, now_ms: i64) -> Result<(), Error> {
        let mut maint = lock(&self.maint);
        let last = *maint.last_seal_ms.get_or_insert(now_ms);
        let due = now_ms.saturating_sub(last) >= ms(self.options.seal_interval)
            || self.wal_current_bytes() >= self.options.seal_wal_bytes;
        if due {
            self.seal(&mut maint, Some(now_ms))?;
        }
        self.expire(now_ms)?;
        let mut segments = lock(&self.state).segments.clone();
        if segments.len() > self.options.max_segments {
            // Merge the smaller half: big, old segments are not rewritten every time.
            segments.sort_by_key(|s| s.size);
            let keep = self.options.max_segments / 2;
            segments.truncate(segments.len() - keep);
            if segments.len() > 1 {
                self.merge(&segments)?;
            }
        }
        Ok(())
    }

    /// Merges every segment into one (and re-encodes chunks split across seals).
    pub fn compact(&self) -> Result<(), Error> {
        let _maint = lock(&self.maint);
        let segments = lock(&self.state).segments.clone();
        if segments.len() > 1 {
            self.merge(&segments)?;
        }
        Ok(())
    }

    /// Rewrites or deletes segments holding expired blocks.
    fn expire(&self, now_ms: i64) -> Result<(), Error> {
        let (segments, fields) = {
            let st = lock(&self.state);
            let fields: Vec<String> = st.series.iter().map(|s| s.field.clone()).collect();
            (st.segments.clone(), fields)
        };
        for seg in segments {
            let keep: Vec<&BlockMeta> = seg
                .blocks
                .iter()
                .filter(|b| !self.expired(b, now_ms, &fields))
                .collect();
            if keep.len() == seg.blocks.len() {
                continue;
            }
            let mut blocks = Vec::with_capacity(keep.len());
            for b in keep {
                blocks.push(copy_block(&seg, b)?);
            }
            let replacement = if blocks.is_empty() {
                None
            } else {
                Some(self.write_segment(seg.wal_upto, &[seg.seq], &blocks)?)
            };
            self.install(&[seg.seq], replacement)?;
        }
        Ok(())
    }

    fn expired(&self, b: &BlockMeta, now_ms: i64, fields: &[String]) -> bool {
        let field = fields.get(b.series as usize).map_or("", String::as_str);
        let retention = self.options.retention_for(field);
        let keep = match b.kind {
            Kind::Raw => retention.raw,
            Kind::Minute => retention.rollup_1m,
            Kind::Hour => retention.rollup_1h,
        };
        b.max_ts < now_ms.saturating_sub(ms(keep))
    }

    /// Writes a segment with a fresh number.
    fn write_segment(
        &self,
        wal_upto: u64,
        supersedes: &[u64],
        blocks: &[NewBlock],
    ) -> Result<Segment, Error> {
        let (seq, names) = {
            let mut st = lock(&self.state);
            let seq = st.next_segment;
            st.next_segment += 1;
            let names: HashMap<u32, (String, String)> = blocks
                .iter()
                .map(|b| (b.series, st.names(b.series)))
                .collect();
            (seq, names)
        };
        let name = |id: u32| names.get(&id).cloned().unwrap_or_default();
        Segment::write(&self.dir, seq, wal_upto, supersedes, blocks, &name)
    }

    /// Swaps `old` segments for `new` in the list, then deletes their files.
    fn install(&self, old: &[u64], new: Option<Segment>) -> Result<(), Error> {
        let removed: Vec<Arc<Segment>> = {
            let mut st = lock(&self.state);
            let (removed, kept) = st.segments.drain(..).partition(|s| old.contains(&s.seq));
            st.segments = kept;
            st.segments.extend(new.map(Arc::new));
            removed
        };
        for seg in removed {
            std::fs::remove_file(seg.path()).map_err(Error::io("cannot delete", seg.path()))?;
        }
        crate::segment::sync_dir(&self.dir)
    }

    /// Merges `segments` into one.
    fn merge(&self, segments: &[Arc<Segment>]) -> Result<(), Error> {
        let partition_ms = ms(self.options.partition);
        let mut raw: BTreeMap<(u32, i64), Points> = BTreeMap::new();
        let mut rollups: BTreeMap<(u32, u8), Vec<Row>> = BTreeMap::new();
        for seg in segments {
            for b in &seg.blocks {
                let bytes = seg.read_block(b)?;
                let corrupt = || Error::Corrupt {
                    path: seg.path().to_owned(),
                    why: "block does not decode",
                };
                match b.kind {
                    Kind::Raw => {
                        let (ts, values) = decode_chunk(&bytes).ok_or_else(corrupt)?;
                        let key = (b.series, bucket_start(b.min_ts, partition_ms));
                        raw.entry(key)
                            .or_default()
                            .extend(ts.into_iter().zip(values));
                    }
                    kind => {
                        let rows = rollup::decode(&bytes).ok_or_else(corrupt)?;
                        let code = u8::from(kind == Kind::Hour);
                        rollups.entry((b.series, code)).or_default().extend(rows);
                    }
                }
            }
        }
        let mut blocks = Vec::new();
        for ((id, _), mut points) in raw {
            points.sort_by_key(|p| p.0);
            raw_blocks(id, &points, partition_ms, &mut blocks);
        }
        for ((id, code), rows) in rollups {
            let kind = if code == 1 { Kind::Hour } else { Kind::Minute };
            rollup_blocks(id, kind, rollup::merge_rows(rows), &mut blocks);
        }
        let seqs: Vec<u64> = segments.iter().map(|s| s.seq).collect();
        let wal_upto = segments.iter().map(|s| s.wal_upto).max().unwrap_or(0);
        let merged = self.write_segment(wal_upto, &seqs, &blocks)?;
        self.install(&seqs, Some(merged))
    }
}

/// A block of an existing segment, to be written again unchanged.
fn copy_block(seg: &Segment, b: &BlockMeta) -> Result<NewBlock, Error> {
    Ok(NewBlock {
        series: b.series,
        kind: b.kind,
        min_ts: b.min_ts,
        max_ts: b.max_ts,
        count: b.count,
        bytes: seg.read_block(b)?,
    })
}
