//! The durable log: an append-only, checksummed, segmented record log with group commit.
//! (Implementation in progress; see the interface below.)

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use thiserror::Error;

use crate::metrics::Metrics;

/// Runs on the log's writer thread once the record it was given with is on disk.
pub type Completion = Box<dyn FnOnce() + Send>;

/// Why the log could not be opened or written.
#[derive(Debug, Error)]
pub enum LogError {
    /// Filesystem failure.
    #[error("log i/o: {0}")]
    Io(#[from] std::io::Error),
    /// A record in the middle of the log failed its checksum (not a torn tail).
    #[error("log corrupt in {segment} at offset {offset}")]
    Corrupt {
        /// Segment file name.
        segment: String,
        /// Byte offset of the bad record.
        offset: u64,
    },
}

/// Tuning knobs of the log; the defaults are what `bosun serve` uses.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// A segment is closed and a new one started past this size.
    pub segment_bytes: u64,
    /// When false, records are written but never fsynced (benchmarks of the non-durable
    /// mode only; never the default).
    pub fsync: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { segment_bytes: 64 * 1024 * 1024, fsync: true }
    }
}

/// Handle to the log; appends go to a dedicated writer thread.
#[derive(Debug)]
pub struct Log {
    _metrics: Arc<Metrics>,
}

impl Log {
    /// Opens (creating) the log in `dir` and calls `replay` with every intact record, in
    /// append order. A torn tail (a final record cut short or failing its checksum) is
    /// truncated away and logged.
    pub fn open(
        dir: &Path,
        config: LogConfig,
        metrics: Arc<Metrics>,
        replay: impl FnMut(&[u8]),
    ) -> Result<Log, LogError> {
        let _ = (dir, config, replay);
        Ok(Log { _metrics: metrics })
    }

    /// Queues `record`; `done` runs on the writer thread after the record is durable.
    pub fn append(&self, record: Bytes, done: Option<Completion>) {
        let _ = record;
        if let Some(done) = done {
            done();
        }
    }

    /// Replaces everything logged so far with `snapshot` (records that rebuild the live
    /// state). Appends queued after this call land after the snapshot.
    pub fn compact(&self, snapshot: Vec<Bytes>) {
        let _ = snapshot;
    }

    /// Bytes on disk now, so the owner can decide when to compact.
    pub fn size(&self) -> u64 {
        0
    }

    /// Writes and fsyncs everything queued, then stops the writer thread.
    pub fn close(self) {}
}
