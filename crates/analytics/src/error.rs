//! The crate's one error type.
//!
//! Analytics runs on data from devices, disks and command lines, so every way it can
//! refuse input is a value here, never a panic: a bad record must not take the hub down.

/// Why a record, a configuration or a run was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range; the text says which rule it broke.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The record is too short for what was asked of it.
    #[error("record too short: {got} samples, need at least {need}")]
    TooShort {
        /// Samples available.
        got: usize,
        /// Samples needed.
        need: usize,
    },
    /// A sample is NaN or infinite: a sensor, driver or file fault.
    #[error("sample {index} is not a finite number")]
    NonFinite {
        /// Position of the first bad sample.
        index: usize,
    },
    /// A raw `f32` file whose length is not a whole number of samples.
    #[error("{len} bytes is not a whole number of 4-byte samples")]
    TornRecord {
        /// File length in bytes.
        len: usize,
    },
    /// A file could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What the OS said.
        message: String,
    },
    /// The device feature extractor refused a window.
    #[error("feature extraction: {0}")]
    Features(#[from] device::Error),
}
