//! Log files in the directory: their names, their order, and making the directory durable.
//!
//! The log directory holds three kinds of file, all named by a 20-digit sequence number
//! so that lexical and numeric order agree:
//!
//! - `{seq}.seg`: a segment of appended records; only the newest one is written to.
//! - `{seq}.snap`: a complete snapshot written by compaction. Its existence makes every
//!   file with a lower sequence number obsolete.
//! - `{seq}.snap.tmp`: a snapshot being written; never read, deleted on open.
//!
//! Sequence numbers are never reused, so no two files share one.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

const SEGMENT_SUFFIX: &str = ".seg";
const SNAPSHOT_SUFFIX: &str = ".snap";
const PARTIAL_SUFFIX: &str = ".snap.tmp";
/// Width of the zero-padded sequence number (enough for any `u64`).
const SEQ_DIGITS: usize = 20;

/// What a log file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Appended records.
    Segment,
    /// A compaction snapshot, complete and durable.
    Snapshot,
    /// A snapshot that was still being written.
    Partial,
}

/// One log file, identified by its sequence number and kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogFile {
    /// Position in the log; higher is newer.
    pub(crate) seq: u64,
    /// What the file holds.
    pub(crate) kind: Kind,
}

impl LogFile {
    /// A segment file with sequence number `seq`.
    pub(crate) fn segment(seq: u64) -> Self {
        LogFile {
            seq,
            kind: Kind::Segment,
        }
    }

    /// Recognises a log file name; other names are not ours.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        let (digits, kind) = if let Some(d) = name.strip_suffix(PARTIAL_SUFFIX) {
            (d, Kind::Partial)
        } else if let Some(d) = name.strip_suffix(SNAPSHOT_SUFFIX) {
            (d, Kind::Snapshot)
        } else {
            (name.strip_suffix(SEGMENT_SUFFIX)?, Kind::Segment)
        };
        if digits.len() != SEQ_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(LogFile {
            seq: digits.parse().ok()?,
            kind,
        })
    }

    /// The file's name inside the log directory.
    pub(crate) fn name(&self) -> String {
        let suffix = match self.kind {
            Kind::Segment => SEGMENT_SUFFIX,
            Kind::Snapshot => SNAPSHOT_SUFFIX,
            Kind::Partial => PARTIAL_SUFFIX,
        };
        format!("{:0width$}{suffix}", self.seq, width = SEQ_DIGITS)
    }

    /// The file's full path.
    pub(crate) fn path(&self, dir: &Path) -> PathBuf {
        dir.join(self.name())
    }
}

/// Every log file in `dir`, oldest first. Unrelated files are ignored.
pub(crate) fn list(dir: &Path) -> io::Result<Vec<LogFile>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(file) = entry.file_name().to_str().and_then(LogFile::parse) {
            files.push(file);
        }
    }
    files.sort_by_key(|f| f.seq);
    Ok(files)
}

/// Makes creations, renames and deletions of entries in `dir` durable.
///
/// fsync on a file covers its data, not the directory entry that names it; without this a
/// freshly created segment could vanish after a power cut together with acked records.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_numerically() {
        for kind in [Kind::Segment, Kind::Snapshot, Kind::Partial] {
            let file = LogFile { seq: 42, kind };
            assert_eq!(LogFile::parse(&file.name()), Some(file));
        }
        assert_eq!(LogFile::segment(7).name(), "00000000000000000007.seg");
        assert!(LogFile::segment(9).name() < LogFile::segment(10).name());
    }

    #[test]
    fn ignores_foreign_names() {
        for name in [
            "x.seg",
            "1.seg",
            "0000000000000000000a.seg",
            "00000000000000000001.log",
        ] {
            assert_eq!(LogFile::parse(name), None, "{name}");
        }
    }
}
