//! The one error type of the store.
//!
//! Input problems (a non-finite value, a bad name, a malformed query) are separate
//! variants from disk problems so the pipeline can dead-letter the former and alert on
//! the latter.

use std::path::PathBuf;

/// Why an operation of the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A value is NaN or infinite; the whole batch was refused and nothing was written.
    #[error("value of {device}/{field} at {ts_ms} is not finite")]
    NonFinite {
        /// Device of the refused point.
        device: String,
        /// Field of the refused point.
        field: String,
        /// Timestamp of the refused point.
        ts_ms: i64,
    },
    /// A device or field name is empty or longer than [`crate::MAX_NAME_LEN`] bytes.
    #[error("invalid series name {0:?}: must be 1..={max} bytes", max = crate::MAX_NAME_LEN)]
    InvalidName(String),
    /// More points in one `append` than [`crate::MAX_BATCH_POINTS`].
    #[error("batch of {0} points is larger than {max}", max = crate::MAX_BATCH_POINTS)]
    BatchTooLarge(usize),
    /// The query cannot be answered as asked; the text says which rule it broke.
    #[error("invalid query: {0}")]
    InvalidQuery(&'static str),
    /// A file of the store failed its checksum or does not parse.
    #[error("{path} is corrupt: {why}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it.
        why: &'static str,
    },
    /// An earlier WAL write or fsync failed; since it is unknown what reached the disk,
    /// the store refuses further appends until it is reopened (which replays the WAL).
    #[error("the write-ahead log failed earlier; reopen the store")]
    WalFailed,
    /// A file system operation failed.
    #[error("{what} {path}: {source}")]
    Io {
        /// What the store was doing.
        what: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl Error {
    /// Wraps an I/O error with what was being done and on which path.
    pub(crate) fn io<'a>(
        what: &'static str,
        path: &'a std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> Error + 'a {
        move |source| Error::Io {
            what,
            path: path.to_owned(),
            source,
        }
    }
}

/// Why a string is not an [`crate::Agg`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown aggregation {0:?}: expected one of mean, min, max, count, last, p99")]
pub struct ParseAggError(pub String);
