//! Recovery at open: decide which files are live, replay them, repair a torn tail.
//!
//! This runs once, on the caller's thread, before the writer thread exists, so it owns the
//! directory exclusively. The rules (see `docs/storage.md`):
//!
//! 1. Partial snapshots (`.snap.tmp`) are deleted: they were never renamed into place.
//! 2. The newest `.snap` wins: every file with a lower sequence number is obsolete and
//!    deleted, whether or not compaction got round to deleting it before a crash.
//! 3. The remaining files are replayed oldest first. Damage in the last file, if it is a
//!    segment, is a torn tail: the file is truncated to its last intact record. Damage
//!    anywhere else (including in a snapshot, which is fsynced before it is renamed into
//!    place) is corruption and fails the open.

use std::fs::{File, OpenOptions};
use std::io::BufReader;
use std::path::Path;

use super::record::{read_frame, Frame};
use super::segment::{self, Kind, LogFile};
use super::LogError;

/// Read buffer for replay; large enough that a replay is a few big sequential reads.
const REPLAY_READ_BUFFER: usize = 1024 * 1024;

/// The live files after recovery.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// Live files, oldest first, with their lengths after any tail repair.
    pub(crate) files: Vec<(LogFile, u64)>,
    /// The first sequence number not used by any file seen, live or not.
    pub(crate) next_seq: u64,
}

/// Recovers the log in `dir`, calling `replay` with every intact record in order.
pub(crate) fn recover(dir: &Path, replay: &mut dyn FnMut(&[u8])) -> Result<Recovered, LogError> {
    let all = segment::list(dir)?;
    let next_seq = all.last().map_or(0, |f| f.seq.saturating_add(1));
    let live = discard_obsolete(dir, &all)?;
    let mut files = Vec::with_capacity(live.len());
    for (i, file) in live.iter().enumerate() {
        let may_be_torn = i + 1 == live.len() && file.kind == Kind::Segment;
        let len = replay_file(dir, *file, may_be_torn, replay)?;
        files.push((*file, len));
    }
    Ok(Recovered { files, next_seq })
}

/// Deletes partial snapshots and everything older than the newest snapshot; returns the
/// files that remain, oldest first.
fn discard_obsolete(dir: &Path, all: &[LogFile]) -> Result<Vec<LogFile>, LogError> {
    let base = all
        .iter()
        .filter(|f| f.kind == Kind::Snapshot)
        .map(|f| f.seq)
        .max()
        .unwrap_or(0);
    let (live, obsolete): (Vec<LogFile>, Vec<LogFile>) = all
        .iter()
        .partition(|f| f.kind != Kind::Partial && f.seq >= base);
    for file in &obsolete {
        tracing::info!(file = %file.name(), "deleting log file superseded by a snapshot");
        std::fs::remove_file(file.path(dir))?;
    }
    if !obsolete.is_empty() {
        segment::sync_dir(dir)?;
    }
    Ok(live)
}

/// Replays one file; returns its length after any repair.
fn replay_file(
    dir: &Path,
    file: LogFile,
    may_be_torn: bool,
    replay: &mut dyn FnMut(&[u8]),
) -> Result<u64, LogError> {
    let path = file.path(dir);
    let mut reader = BufReader::with_capacity(REPLAY_READ_BUFFER, File::open(&path)?);
    let mut payload = Vec::new();
    let mut offset = 0u64;
    loop {
        match read_frame(&mut reader, &mut payload)? {
            Frame::Record(framed) => {
                replay(&payload);
                offset += framed;
            }
            Frame::End => return Ok(offset),
            Frame::Bad(defect) if may_be_torn => {
                let file_len = reader.get_ref().metadata()?.len();
                tracing::warn!(
                    segment = %file.name(),
                    offset,
                    dropped_bytes = file_len.saturating_sub(offset),
                    %defect,
                    "truncating torn tail of the durable log"
                );
                truncate(&path, offset)?;
                return Ok(offset);
            }
            Frame::Bad(defect) => {
                tracing::error!(segment = %file.name(), offset, %defect, "durable log is corrupt");
                return Err(LogError::Corrupt {
                    segment: file.name(),
                    offset,
                });
            }
        }
    }
}

/// Cuts `path` to `len` bytes, durably, so a later append never lands after garbage.
fn truncate(path: &Path, len: u64) -> std::io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(len)?;
    file.sync_all()
}
