//! bosun's embedded time-series store.
//!
//! A series is a device's field; its points are `(ts_ms, f64)`. Points are appended
//! durably (fsynced WAL with group commit), kept in per-series heads, and sealed into
//! immutable segment files as compressed chunks (delta-of-delta timestamps, Gorilla XOR
//! or scaled-decimal values), one chunk per series and time partition, with 1-minute and
//! 1-hour rollups that outlive raw points. A synchronous, thread-safe library: the
//! pipeline calls it from blocking threads. Design and numbers: `docs/timeseries.md`.
//!
//! Layout:
//! - `model`: points, queries, results, statistics (the public data types).
//! - `options`: tuning and retention rules.
//! - `error`: the error type.
//! - `db`: open, WAL replay, append, sealing.
//! - `wal`: the log file format and group commit.
//! - `segment`: the immutable file format.
//! - `codec`: bit-level encodings of chunk columns.
//! - `rollup`: per-bucket summaries.
//! - `maintain`: `tick`, expiry and compaction.
//! - `query`: range aggregates.

mod codec;
mod db;
mod error;
mod maintain;
mod model;
mod options;
mod query;
mod rollup;
mod segment;
mod wal;

pub use db::Tsdb;
pub use error::{Error, ParseAggError};
pub use model::{Agg, Bucket, Point, Query, SeriesKey, SeriesResult, Stats};
pub use options::{Options, Retention, RetentionRule};
pub use query::MAX_BUCKETS;

/// Longest device or field name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 255;
/// Most points one `append` may carry (bounds the size of one WAL record).
pub const MAX_BATCH_POINTS: usize = 100_000;

#[cfg(test)]
mod tests;
