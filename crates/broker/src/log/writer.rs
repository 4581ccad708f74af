//! The writer thread: the only code that writes to the log directory after open.
//!
//! It owns the active segment, rotation, compaction and the size counter. Requests arrive
//! over a channel in the order callers made them and are executed in that order. Appends
//! are group-committed: the thread blocks for one request, then drains whatever else is
//! already queued (up to [`MAX_BATCH_RECORDS`] / [`MAX_BATCH_BYTES`]), writes the batch
//! with one `write`, makes it durable with one `fdatasync`, and only then runs the batch's
//! completions, in order. Requests that arrive during that fsync form the next batch, so
//! under load one fsync covers many connections' messages.
//!
//! When a write or fsync fails, the batch's completions are dropped without running (the
//! broker never acks those records), the segment is cut back to its last durable length,
//! and the next batch tries again.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::record;
use super::recover::Recovered;
use super::segment::{self, Kind, LogFile};
use super::{Completion, LogConfig};
use crate::metrics::Metrics;

/// Most records committed by one fsync; bounds the latency of the first record in a batch.
const MAX_BATCH_RECORDS: usize = 4096;
/// Most bytes committed by one fsync (a single larger record still forms its own batch).
const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// Write buffer used while streaming a snapshot to disk.
const SNAPSHOT_WRITE_BUFFER: usize = 1024 * 1024;

/// Work for the writer thread, executed in the order it was sent.
pub(crate) enum Request {
    /// Append a record whose length was already validated.
    Append {
        /// The payload.
        record: Bytes,
        /// Its on-disk length field.
        len: u32,
        /// Runs once the record is durable.
        done: Option<Completion>,
    },
    /// Run a completion once everything before it is durable.
    Barrier(Completion),
    /// Replace everything so far with these records.
    Compact(Vec<Bytes>),
    /// Make every batch write fail halfway until turned off (fault injection for tests).
    #[cfg(test)]
    FailWrites(bool),
}

/// Records drained from the channel, waiting for one write and one fsync.
#[derive(Default)]
struct Batch {
    buf: Vec<u8>,
    records: u64,
    done: Vec<Completion>,
}

impl Batch {
    fn push(&mut self, record: &[u8], len: u32, done: Option<Completion>) {
        record::encode_into(&mut self.buf, len, record);
        self.records += 1;
        self.done.extend(done);
    }

    fn is_full(&self) -> bool {
        self.records as usize >= MAX_BATCH_RECORDS || self.buf.len() >= MAX_BATCH_BYTES
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.done.is_empty()
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.records = 0;
        self.done.clear();
    }
}

/// The segment appends go to.
struct Active {
    file: File,
    seq: u64,
    /// Bytes known to be good (written, and fsynced when fsync is on).
    len: u64,
    /// A write or fsync failed and the file may hold bytes past `len`.
    damaged: bool,
    /// The directory entry naming this file is not known to be durable yet.
    needs_dir_sync: bool,
}

/// State owned by the writer thread.
pub(crate) struct Writer {
    dir: PathBuf,
    config: LogConfig,
    metrics: Arc<Metrics>,
    size: Arc<AtomicU64>,
    /// Live files no longer appended to, oldest first, with their lengths.
    sealed: Vec<(LogFile, u64)>,
    /// Created lazily, so a log that was just compacted or opened empty has none.
    active: Option<Active>,
    next_seq: u64,
    /// Batch writes fail on purpose while this is set.
    #[cfg(test)]
    failing_writes: bool,
}

impl Writer {
    /// Takes over the files found by recovery; the newest segment, if it is the newest
    /// file, keeps receiving appends.
    pub(crate) fn new(
        dir: &Path,
        config: LogConfig,
        metrics: Arc<Metrics>,
        recovered: Recovered,
    ) -> io::Result<Writer> {
        let Recovered {
            mut files,
            next_seq,
        } = recovered;
        let active = match files.last() {
            Some(&(file, len)) if file.kind == Kind::Segment => {
                files.pop();
                Some(open_existing(dir, file.seq, len)?)
            }
            _ => None,
        };
        let writer = Writer {
            dir: dir.to_path_buf(),
            config,
            metrics,
            size: Arc::new(AtomicU64::new(0)),
            sealed: files,
            active,
            next_seq,
            #[cfg(test)]
            failing_writes: false,
        };
        writer.publish_size();
        Ok(writer)
    }

    /// The counter [`Writer`] keeps equal to the bytes on disk.
    pub(crate) fn size_handle(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.size)
    }

    /// Serves requests until every sender is gone, then makes everything durable.
    pub(crate) fn run(mut self, requests: Receiver<Request>) {
        let mut batch = Batch::default();
        while let Ok(first) = requests.recv() {
            let mut next = Some(first);
            while let Some(request) = next.take() {
                self.accept(request, &mut batch);
                if batch.is_full() || batch.buf.len() as u64 >= self.room_in_segment() {
                    break;
                }
                next = requests.try_recv().ok();
            }
            self.commit(&mut batch);
        }
        self.finish();
    }

    fn accept(&mut self, request: Request, batch: &mut Batch) {
        match request {
            Request::Append { record, len, done } => batch.push(&record, len, done),
            Request::Barrier(done) => batch.done.push(done),
            Request::Compact(snapshot) => {
                // Everything queued before the compaction must be in the files it replaces.
                self.commit(batch);
                self.compact(&snapshot);
            }
            #[cfg(test)]
            Request::FailWrites(fail) => self.failing_writes = fail,
        }
    }

    /// Bytes the next batch can take before the segment it will go to is full. A batch
    /// never spans segments, so a segment overshoots `segment_bytes` by at most one record.
    fn room_in_segment(&self) -> u64 {
        let limit = self.config.segment_bytes;
        match &self.active {
            Some(active) if active.len < limit => limit - active.len,
            _ => limit, // the batch will start a fresh segment
        }
    }

    /// Writes and syncs `batch`, then runs its completions, or drops them on failure.
    fn commit(&mut self, batch: &mut Batch) {
        if batch.is_empty() {
            return;
        }
        match self.write_durably(&batch.buf) {
            Ok(()) => {
                self.metrics.log_appends.add(batch.records);
                self.metrics.log_bytes.add(batch.buf.len() as u64);
                self.publish_size();
                run_completions(&mut batch.done);
            }
            Err(error) => tracing::error!(
                %error,
                records = batch.records,
                "durable log write failed; these records are not acknowledged"
            ),
        }
        batch.clear();
    }

    fn write_durably(&mut self, bytes: &[u8]) -> io::Result<()> {
        let fsync = self.config.fsync;
        let metrics = Arc::clone(&self.metrics);
        if bytes.is_empty() {
            // Only barriers: earlier batches are durable already, unless one left damage.
            return self.active.as_mut().map_or(Ok(()), Active::repair);
        }
        let inject_failure = self.injected_failure();
        let active = self.writable_segment()?;
        let written = write_batch(&mut active.file, bytes, inject_failure).and_then(|()| {
            if fsync {
                timed_sync(&active.file, &metrics)
            } else {
                Ok(())
            }
        });
        match written {
            Ok(()) => active.len += bytes.len() as u64,
            Err(_) => {
                active.damaged = true;
                // Best effort now; `writable_segment` retries before the next write.
                let _ = active.repair();
            }
        }
        written
    }

    #[cfg(test)]
    fn injected_failure(&self) -> bool {
        self.failing_writes
    }

    #[cfg(not(test))]
    fn injected_failure(&self) -> bool {
        false
    }

    /// The active segment, repaired, with room, and with a durable directory entry.
    fn writable_segment(&mut self) -> io::Result<&mut Active> {
        if let Some(active) = self.active.as_mut() {
            active.repair()?;
        }
        let full = |a: &Active| a.len >= self.config.segment_bytes;
        if self.active.as_ref().is_none_or(full) {
            self.rotate()?;
        }
        let fsync = self.config.fsync;
        let dir = self.dir.clone();
        let active = self
            .active
            .as_mut()
            .ok_or_else(|| io::Error::other("no active segment"))?;
        if active.needs_dir_sync && fsync {
            segment::sync_dir(&dir)?;
        }
        active.needs_dir_sync = false;
        Ok(active)
    }

    /// Seals the active segment (already durable) and starts a new one.
    fn rotate(&mut self) -> io::Result<()> {
        self.seal_active();
        let seq = self.take_seq();
        let path = LogFile::segment(seq).path(&self.dir);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(path)?;
        tracing::debug!(seq, "started a new log segment");
        self.active = Some(Active {
            file,
            seq,
            len: 0,
            damaged: false,
            needs_dir_sync: true,
        });
        Ok(())
    }

    fn seal_active(&mut self) {
        if let Some(active) = self.active.take() {
            self.sealed.push((LogFile::segment(active.seq), active.len));
        }
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// Writes `snapshot` as a new `.snap` file and deletes everything older.
    ///
    /// Crash safety: the snapshot is written under a temporary name, synced, and renamed
    /// into place; recovery ignores temporary files and ignores everything older than the
    /// newest `.snap`. After the rename, appends go to a segment newer than the snapshot,
    /// so whichever of the old files or the snapshot survives a crash, order is kept.
    fn compact(&mut self, snapshot: &[Bytes]) {
        let snap = LogFile {
            seq: self.take_seq(),
            kind: Kind::Snapshot,
        };
        let len = match self.write_snapshot(snap, snapshot) {
            Ok(len) => len,
            Err(error) => {
                tracing::error!(%error, "log compaction failed; the log keeps its previous contents");
                return;
            }
        };
        self.seal_active();
        self.sealed.push((snap, len));
        self.publish_size();
        if self.config.fsync {
            if let Err(error) = segment::sync_dir(&self.dir) {
                tracing::error!(%error, "snapshot not yet durable; older log files kept until next open");
                return;
            }
        }
        self.delete_before(snap.seq);
        tracing::info!(records = snapshot.len(), bytes = len, "log compacted");
    }

    /// Writes, syncs and renames the snapshot into place; returns its length.
    fn write_snapshot(&self, snap: LogFile, records: &[Bytes]) -> io::Result<u64> {
        let partial = LogFile {
            seq: snap.seq,
            kind: Kind::Partial,
        }
        .path(&self.dir);
        let result = self
            .write_partial(&partial, records)
            .and_then(|len| std::fs::rename(&partial, snap.path(&self.dir)).map(|()| len));
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        result
    }

    fn write_partial(&self, path: &Path, records: &[Bytes]) -> io::Result<u64> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        let mut out = BufWriter::with_capacity(SNAPSHOT_WRITE_BUFFER, file);
        let mut len = 0u64;
        for record in records {
            let field = record::checked_len(record.len()).ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "snapshot record too large")
            })?;
            out.write_all(&record::header(field, record))?;
            out.write_all(record)?;
            len += record::framed_len(record.len()) as u64;
        }
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        if self.config.fsync {
            timed_sync(&file, &self.metrics)?;
        }
        Ok(len)
    }

    /// Deletes every sealed file older than `seq`; failures only cost disk space, since
    /// recovery ignores files older than the newest snapshot.
    fn delete_before(&mut self, seq: u64) {
        let dir = self.dir.clone();
        self.sealed.retain(|&(file, _)| {
            if file.seq >= seq {
                return true;
            }
            match std::fs::remove_file(file.path(&dir)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(error) => {
                    tracing::warn!(%error, file = %file.name(), "cannot delete old log file")
                }
            }
            false
        });
        self.publish_size();
        if self.config.fsync {
            if let Err(error) = segment::sync_dir(&self.dir) {
                tracing::warn!(%error, "cannot sync the log directory after deleting old files");
            }
        }
    }

    fn publish_size(&self) {
        let sealed: u64 = self.sealed.iter().map(|&(_, len)| len).sum();
        let active = self.active.as_ref().map_or(0, |a| a.len);
        self.size.store(sealed + active, Ordering::Relaxed);
    }

    /// Final sync on shutdown; only does work when per-batch fsync is off.
    fn finish(&mut self) {
        if self.config.fsync {
            return;
        }
        if let Some(active) = &self.active {
            if let Err(error) = timed_sync(&active.file, &self.metrics) {
                tracing::error!(%error, "final sync of the durable log failed");
            }
        }
    }
}

impl Active {
    /// Cuts off whatever a failed write may have left past the last good byte.
    fn repair(&mut self) -> io::Result<()> {
        if self.damaged {
            self.file.set_len(self.len)?;
            self.damaged = false;
            tracing::info!(
                seq = self.seq,
                len = self.len,
                "log segment cut back after a failed write"
            );
        }
        Ok(())
    }
}

/// Opens a recovered segment to keep appending to it (`O_APPEND`: writes go to the end,
/// including after a repair shortened the file).
fn open_existing(dir: &Path, seq: u64, len: u64) -> io::Result<Active> {
    let file = OpenOptions::new()
        .append(true)
        .open(LogFile::segment(seq).path(dir))?;
    Ok(Active {
        file,
        seq,
        len,
        damaged: false,
        needs_dir_sync: false,
    })
}

/// `write_all`, or, when a test injects a failure, half a write and an error, as a disk
/// filling up mid-batch would do.
fn write_batch(file: &mut File, bytes: &[u8], inject_failure: bool) -> io::Result<()> {
    if inject_failure {
        file.write_all(&bytes[..bytes.len() / 2])?;
        return Err(io::Error::other("injected write failure"));
    }
    file.write_all(bytes)
}

/// `fdatasync`, counted and timed.
fn timed_sync(file: &File, metrics: &Metrics) -> io::Result<()> {
    let start = Instant::now();
    let result = file.sync_data();
    metrics.fsync_seconds.observe(start.elapsed());
    metrics.log_fsyncs.inc();
    result
}

/// Runs completions in order. A panicking completion is logged and does not take the
/// writer thread (and with it every later acknowledgement) down.
fn run_completions(done: &mut Vec<Completion>) {
    for completion in done.drain(..) {
        if std::panic::catch_unwind(AssertUnwindSafe(completion)).is_err() {
            tracing::error!("a durable log completion panicked");
        }
    }
}
