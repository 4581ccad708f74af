//! Payload encodings of [`crate::Features`]: CBOR (the default on the wire) and Protobuf
//! (for consumers that already speak it).
//!
//! Both encoders write into a caller's `&mut [u8]` sized by a `MAX_LEN` constant, so a
//! device needs no heap; both decoders borrow the input, allocate nothing, reject
//! malformed input with a [`DecodeError`] and never panic — they face whatever arrives on
//! a topic. The hub uses the same functions (with `std`).

pub mod cbor;
pub mod protobuf;

use core::fmt;

/// The output buffer is too small for the encoded record; nothing useful was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodeError {
    /// Bytes the record needs.
    pub needed: usize,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "output buffer too small: {} bytes needed", self.needed)
    }
}

impl core::error::Error for EncodeError {}

/// A vector of exactly `len` bytes filled by `encode`. The length comes from the
/// encoder's own `len`, so `encode` cannot run out of room; should it fail anyway, an
/// empty vector stands in for a panic.
#[cfg(feature = "alloc")]
fn to_sized_vec(
    len: usize,
    encode: impl FnOnce(&mut [u8]) -> Result<usize, EncodeError>,
) -> alloc::vec::Vec<u8> {
    let mut out = alloc::vec![0; len];
    match encode(&mut out) {
        Ok(n) => out.truncate(n),
        Err(_) => out.clear(),
    }
    out
}

/// Why a payload could not be decoded into a [`crate::Features`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ends in the middle of a value.
    Truncated,
    /// The input is not a well-formed record of the expected shape.
    Malformed {
        /// Byte offset where decoding gave up (best effort).
        position: usize,
    },
    /// A complete record is followed by more bytes (CBOR only: a Protobuf message has no
    /// end marker).
    TrailingBytes {
        /// Offset of the first extra byte.
        position: usize,
    },
    /// A repeated field holds more values than the record has room for.
    TooManyValues {
        /// Protobuf field number.
        field: u32,
    },
    /// An axis index is not below [`crate::MAX_AXES`].
    AxisOutOfRange {
        /// The index found.
        axis: u32,
    },
    /// Two per-axis records claim the same axis.
    DuplicateAxis {
        /// The index found twice.
        axis: u32,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("payload ends in the middle of a value"),
            Self::Malformed { position } => write!(f, "malformed payload at byte {position}"),
            Self::TrailingBytes { position } => {
                write!(f, "unexpected bytes after the record at byte {position}")
            }
            Self::TooManyValues { field } => write!(f, "too many values in field {field}"),
            Self::AxisOutOfRange { axis } => write!(f, "axis index {axis} out of range"),
            Self::DuplicateAxis { axis } => write!(f, "axis {axis} appears twice"),
        }
    }
}

impl core::error::Error for DecodeError {}
