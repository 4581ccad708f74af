//! Where the encoder writes: either a real buffer or a byte counter.
//!
//! Every packet body is written once, generically over [`Sink`]; running the same code
//! against [`Counter`] gives the exact remaining length (and `encoded_len`) without a
//! second, hand-maintained size calculation that could drift from the writer.

use bytes::BytesMut;

use super::varint;
use crate::EncodeError;

/// A destination for encoded bytes, with the MQTT data representations on top.
pub(crate) trait Sink {
    /// Appends raw bytes.
    fn put_slice(&mut self, bytes: &[u8]);

    /// One byte.
    fn put_u8(&mut self, value: u8) {
        self.put_slice(&[value]);
    }

    /// Two Byte Integer, big-endian [MQTT-1.5.2].
    fn put_u16(&mut self, value: u16) {
        self.put_slice(&value.to_be_bytes());
    }

    /// Four Byte Integer, big-endian [MQTT-1.5.3].
    fn put_u32(&mut self, value: u32) {
        self.put_slice(&value.to_be_bytes());
    }

    /// Variable Byte Integer [MQTT-1.5.5].
    fn put_varint(&mut self, value: u32) -> Result<(), EncodeError> {
        if value > varint::MAX {
            return Err(EncodeError::Invalid(
                "variable byte integer above 268,435,455",
            ));
        }
        let (bytes, used) = varint::to_bytes(value);
        self.put_slice(bytes.get(..used).unwrap_or(&bytes));
        Ok(())
    }

    /// UTF-8 Encoded String: no U+0000, at most 65,535 bytes [MQTT-1.5.4-2].
    fn put_str(&mut self, value: &str) -> Result<(), EncodeError> {
        if value.as_bytes().contains(&0) {
            return Err(EncodeError::Invalid(
                "string contains U+0000 [MQTT-1.5.4-2]",
            ));
        }
        self.put_bin(value.as_bytes())
    }

    /// Binary Data: a 16-bit length then the bytes [MQTT-1.5.6].
    fn put_bin(&mut self, value: &[u8]) -> Result<(), EncodeError> {
        let len = u16::try_from(value.len())
            .map_err(|_| EncodeError::Invalid("string or binary field longer than 65,535 bytes"))?;
        self.put_u16(len);
        self.put_slice(value);
        Ok(())
    }
}

impl Sink for BytesMut {
    fn put_slice(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Counts the bytes that would be written.
#[derive(Default)]
pub(crate) struct Counter(pub(crate) usize);

impl Sink for Counter {
    fn put_slice(&mut self, bytes: &[u8]) {
        self.0 = self.0.saturating_add(bytes.len());
    }
}
