//! The store's public data types: points in, queries and results out, statistics.

use std::fmt;
use std::str::FromStr;

use crate::error::ParseAggError;

/// One measurement as the pipeline hands it over; borrowed so a message's fields can be
/// appended without copying their names.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point<'a> {
    /// The device that measured it.
    pub device: &'a str,
    /// The feature name (e.g. `rms_x`).
    pub field: &'a str,
    /// Milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// The value; must be finite.
    pub value: f64,
}

/// Names one series: a device's field.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeriesKey {
    /// The device.
    pub device: String,
    /// The field.
    pub field: String,
}

/// How a query bucket's points are reduced to one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Agg {
    /// Arithmetic mean.
    Mean,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Number of points.
    Count,
    /// Value with the latest timestamp.
    Last,
    /// 99th percentile (nearest rank); needs raw points, so never served from rollups.
    P99,
}

impl Agg {
    /// The name `FromStr` accepts.
    pub fn as_str(self) -> &'static str {
        match self {
            Agg::Mean => "mean",
            Agg::Min => "min",
            Agg::Max => "max",
            Agg::Count => "count",
            Agg::Last => "last",
            Agg::P99 => "p99",
        }
    }
}

impl fmt::Display for Agg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Agg {
    type Err = ParseAggError;

    fn from_str(s: &str) -> Result<Agg, ParseAggError> {
        match s.to_ascii_lowercase().as_str() {
            "mean" | "avg" => Ok(Agg::Mean),
            "min" => Ok(Agg::Min),
            "max" => Ok(Agg::Max),
            "count" => Ok(Agg::Count),
            "last" => Ok(Agg::Last),
            "p99" => Ok(Agg::P99),
            _ => Err(ParseAggError(s.to_owned())),
        }
    }
}

/// A range aggregate over one field.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// The field queried.
    pub field: String,
    /// Devices to include; `None` means every device that has the field.
    pub devices: Option<Vec<String>>,
    /// Start of the range (inclusive), ms.
    pub from_ms: i64,
    /// End of the range (exclusive), ms.
    pub to_ms: i64,
    /// Bucket width in ms (buckets aligned to the epoch); `None` is one bucket for the
    /// whole range, labelled `from_ms`.
    pub step_ms: Option<i64>,
    /// The reduction.
    pub agg: Agg,
}

/// One aggregated bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Start of the bucket, ms.
    pub ts_ms: i64,
    /// The aggregate.
    pub value: f64,
}

/// The answer for one device; buckets without points are left out.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesResult {
    /// The device.
    pub device: String,
    /// The field (as queried).
    pub field: String,
    /// Non-empty buckets in time order.
    pub buckets: Vec<Bucket>,
}

/// Counters for `/metrics` and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Raw points held (sealed chunks plus unsealed heads; rollups not counted).
    pub points: u64,
    /// Series known.
    pub series: u64,
    /// Bytes of all segment and WAL files.
    pub bytes_on_disk: u64,
    /// Of which WAL (data written; a WAL file may be zero-filled up to 8 MiB beyond).
    pub wal_bytes: u64,
    /// Of which rollup blocks (the rest of the segment bytes are raw chunks and indexes).
    pub rollup_bytes: u64,
    /// Segment files.
    pub segments: u64,
    /// Points appended but not yet sealed into a segment.
    pub head_points: u64,
    /// Successful `append` calls since open.
    pub appends: u64,
    /// WAL fsyncs since open (fewer than `appends` when group commit shares them).
    pub wal_syncs: u64,
}
