//! CBOR (RFC 8949) form of [`Features`], via `minicbor`'s derive.
//!
//! CBOR because it is what constrained devices already use (CoAP, COSE, LwM2M), it is
//! self-describing enough to debug with any CBOR viewer, and an `f32` costs 5 bytes.
//! The layout is fixed by the `#[n(…)]` indices in [`crate::features`]: each struct is a
//! CBOR array in index order, an absent axis is `null`. A single-axis record is about
//! 190 bytes.

use minicbor::encode::write::Cursor;

use super::{DecodeError, EncodeError};
use crate::features::Features;

/// Largest encoding of any [`Features`] (every axis present, `seq` and `window_len` at
/// their widest): the buffer size a device should reserve.
pub const MAX_LEN: usize = 535;

/// Exact encoded length of `features`.
pub fn len(features: &Features) -> usize {
    minicbor::len(features)
}

/// Encodes `features` at the start of `buf` and returns the number of bytes written.
pub fn encode(features: &Features, buf: &mut [u8]) -> Result<usize, EncodeError> {
    let needed = len(features);
    if buf.len() < needed {
        return Err(EncodeError { needed });
    }
    let mut cursor = Cursor::new(buf);
    minicbor::encode(features, &mut cursor).map_err(|_| EncodeError { needed })?;
    Ok(cursor.position())
}

/// Encodes `features` into a new vector.
#[cfg(feature = "alloc")]
pub fn to_vec(features: &Features) -> alloc::vec::Vec<u8> {
    super::to_sized_vec(len(features), |out| encode(features, out))
}

/// Decodes one record that must span all of `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Features, DecodeError> {
    let mut decoder = minicbor::Decoder::new(bytes);
    let features: Features = decoder.decode().map_err(|e| {
        if e.is_end_of_input() {
            DecodeError::Truncated
        } else {
            DecodeError::Malformed {
                position: e.position().unwrap_or(0),
            }
        }
    })?;
    match decoder.position() {
        end if end == bytes.len() => Ok(features),
        position => Err(DecodeError::TrailingBytes { position }),
    }
}
