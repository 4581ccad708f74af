//! The one error type of the feature pipeline.
//!
//! Every way a window can fail to become features is a value here rather than a panic:
//! firmware cannot unwind, and a bad configuration pushed from the hub or a glitching
//! sensor must not reset the device. Payload codecs have their own errors in
//! [`crate::encode`].

use core::fmt;

/// Why a configuration was refused or a window could not be analysed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of range; the text says which rule it broke.
    InvalidConfig(&'static str),
    /// A buffer does not have a length the transforms support or the window expects.
    WindowLength {
        /// Length that was given.
        got: usize,
    },
    /// The shaft speed is negative or not finite (0 is allowed and means "unknown":
    /// speed-dependent bands then read 0).
    InvalidShaftSpeed,
    /// A sample is NaN or infinite — a sensor or driver fault. Analysing it anyway would
    /// turn every feature into NaN, so the window is refused and the fault reported.
    NonFiniteSample {
        /// Position of the first bad sample in the window.
        index: usize,
    },
    /// [`crate::pipeline::Pipeline::compute`] was called before the window was full.
    NotReady {
        /// Samples per axis still missing.
        missing: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidConfig(why) => write!(f, "invalid feature configuration: {why}"),
            Self::WindowLength { got } => write!(f, "unsupported window length {got}"),
            Self::InvalidShaftSpeed => f.write_str("shaft speed must be finite and not negative"),
            Self::NonFiniteSample { index } => write!(f, "sample {index} is not a finite number"),
            Self::NotReady { missing } => {
                write!(f, "window not full: {missing} samples per axis missing")
            }
        }
    }
}

impl core::error::Error for Error {}
