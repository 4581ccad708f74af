//! The durable log: an append-only, checksummed, segmented record log with group commit.
//!
//! The broker acknowledges a QoS 1/2 PUBLISH only after the state change it causes is on
//! disk, and must come back from `kill -9` or a power cut with every acknowledged change.
//! This module owns the bytes on disk for that; it stores opaque records and knows nothing
//! of MQTT. The router owns the live state, serializes changes into records, appends them
//! here, and periodically compacts the log into a snapshot of that state.
//!
//! It is purpose-built rather than an embedded database because the access pattern is
//! narrow: append-mostly, read everything once at start, replace everything with a
//! snapshot now and then, never a random read (the live state is in memory). The on-disk
//! format, recovery rules and the reasoning are in `docs/storage.md`.
//!
//! Layout:
//! - `record`: framing and checksums of one record.
//! - `segment`: file names and ordering in the directory.
//! - `recover`: replay and torn-tail repair at open.
//! - `writer`: the writer thread: group commit, rotation, compaction.

mod record;
mod recover;
mod segment;
mod writer;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use bytes::Bytes;
use thiserror::Error;

use crate::metrics::Metrics;
use writer::{Request, Writer};

/// Largest record the log accepts. Anything longer on disk is taken for corruption, so a
/// damaged length field cannot make recovery allocate gigabytes.
pub const MAX_RECORD_LEN: usize = 64 * 1024 * 1024;

/// Name of the writer thread, so it is recognisable in `top -H`, profiles and panics.
const WRITER_THREAD_NAME: &str = "bosun-log";

/// Runs on the log's writer thread once the record it was given with is on disk.
///
/// It runs on the thread that does all the log's I/O, so it must be quick and must not
/// block (sending on a channel or waking a task is the intended use). If the record could
/// not be written, the completion is dropped without running.
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
    /// A [`Log::flush`] could not confirm durability: the write of its batch failed (the
    /// error log says why) or the writer thread has stopped.
    #[error("log writer could not make queued records durable")]
    WriteFailed,
}

/// Tuning knobs of the log; the defaults are what `bosun serve` uses.
#[derive(Clone, Debug)]
pub struct LogConfig {
    /// A segment is closed and a new one started past this size.
    pub segment_bytes: u64,
    /// When false, records are written but never fsynced (benchmarks of the non-durable
    /// mode only; never the default).
    pub fsync: bool,
    /// The owner rewrites the log as a snapshot of its live state once the log is past
    /// this size and twice the size of the previous snapshot.
    pub compact_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 64 * 1024 * 1024,
            fsync: true,
            compact_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Handle to the log; appends go to a dedicated writer thread.
///
/// Every method only queues work for the writer thread and returns at once (except
/// [`Log::flush`] and [`Log::close`], which wait), so it is safe to call from async code.
/// Requests are executed in the order they were made, whichever thread made them.
#[derive(Debug)]
pub struct Log {
    requests: Option<Sender<Request>>,
    writer: Option<JoinHandle<()>>,
    size: Arc<AtomicU64>,
}

impl Log {
    /// Opens (creating) the log in `dir` and calls `replay` with every intact record, in
    /// append order. A torn tail (a final record cut short or failing its checksum) is
    /// truncated away and logged.
    pub fn open(
        dir: &Path,
        config: LogConfig,
        metrics: Arc<Metrics>,
        mut replay: impl FnMut(&[u8]),
    ) -> Result<Log, LogError> {
        std::fs::create_dir_all(dir)?;
        let recovered = recover::recover(dir, &mut replay)?;
        let writer = Writer::new(dir, config, metrics, recovered)?;
        let size = writer.size_handle();
        let (requests, receiver) = mpsc::channel();
        let handle = thread::Builder::new()
            .name(WRITER_THREAD_NAME.to_owned())
            .spawn(move || writer.run(receiver))?;
        Ok(Log {
            requests: Some(requests),
            writer: Some(handle),
            size,
        })
    }

    /// Queues `record`; `done` runs on the writer thread after the record is durable.
    ///
    /// Never blocks. A record longer than [`MAX_RECORD_LEN`] is refused (logged, and `done`
    /// dropped without running) because recovery would take it for corruption.
    pub fn append(&self, record: Bytes, done: Option<Completion>) {
        let Some(len) = record::checked_len(record.len()) else {
            tracing::error!(
                len = record.len(),
                max = MAX_RECORD_LEN,
                "record too large for the durable log; dropped"
            );
            return;
        };
        self.send(Request::Append { record, len, done });
    }

    /// Runs `done` on the writer thread once every record queued before it is durable.
    ///
    /// Lets shutdown (or a test) wait for the log without a record of its own. Like an
    /// append's completion, `done` is dropped unrun if its batch fails to reach disk.
    pub fn barrier(&self, done: Completion) {
        self.send(Request::Barrier(done));
    }

    /// Blocks until every record queued before the call is durable.
    ///
    /// Blocking: call it from a plain thread or `spawn_blocking`, never from a completion
    /// (that would wait for itself; it is detected and refused).
    pub fn flush(&self) -> Result<(), LogError> {
        if self.on_writer_thread() {
            tracing::error!("Log::flush called from a log completion; refused");
            return Err(LogError::WriteFailed);
        }
        let (done, wait) = mpsc::sync_channel(1);
        self.barrier(Box::new(move || {
            let _ = done.send(());
        }));
        wait.recv().map_err(|_| LogError::WriteFailed)
    }

    /// Replaces everything logged so far with `snapshot` (records that rebuild the live
    /// state). Appends queued after this call land after the snapshot.
    ///
    /// If the snapshot cannot be written (or a record exceeds [`MAX_RECORD_LEN`]), the
    /// error is logged and the log keeps its previous contents, which stay correct.
    pub fn compact(&self, snapshot: Vec<Bytes>) {
        self.send(Request::Compact(snapshot));
    }

    /// Bytes on disk now, so the owner can decide when to compact.
    ///
    /// Updated by the writer after each batch, so it lags queued appends slightly.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Relaxed)
    }

    /// Writes and fsyncs everything queued, then stops the writer thread.
    ///
    /// Dropping the log does the same; `close` just makes the intent explicit.
    pub fn close(mut self) {
        self.shutdown();
    }

    /// Makes batch writes fail halfway while `fail` is set, to test the failure path.
    #[cfg(test)]
    pub(crate) fn fail_writes(&self, fail: bool) {
        self.send(Request::FailWrites(fail));
    }

    fn send(&self, request: Request) {
        let sent = self.requests.as_ref().map(|tx| tx.send(request));
        if !matches!(sent, Some(Ok(()))) {
            tracing::error!("durable log writer has stopped; request dropped");
        }
    }

    fn on_writer_thread(&self) -> bool {
        let writer = self.writer.as_ref().map(|h| h.thread().id());
        writer == Some(thread::current().id())
    }

    /// Hangs up the channel (the writer drains what is queued, then exits) and waits.
    fn shutdown(&mut self) {
        drop(self.requests.take());
        // If the last handle is dropped by a completion, the writer is exiting on its own
        // and joining it from itself would deadlock.
        if self.on_writer_thread() {
            return;
        }
        if let Some(handle) = self.writer.take() {
            if handle.join().is_err() {
                tracing::error!("durable log writer thread panicked");
            }
        }
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.shutdown();
    }
}
