//! Bounds-checked reading of one packet body.
//!
//! The decoder never indexes the input directly: every field goes through [`Reader`],
//! which fails with `Malformed` instead of panicking when the body is shorter than its
//! fields claim. Slices are taken from the frozen frame, so binary fields and the
//! PUBLISH payload share the receive buffer instead of being copied.

use alloc::string::String;
use bytes::{Buf, Bytes};

use super::varint;
use crate::{DecodeError, PacketId};

/// Error for a field that runs past the end of its packet.
const SHORT: DecodeError = DecodeError::Malformed("packet shorter than its fields");

/// A cursor over one packet body (or one property block).
pub(crate) struct Reader {
    buf: Bytes,
}

impl Reader {
    /// Reads `buf` from its start.
    pub(crate) fn new(buf: Bytes) -> Reader {
        Reader { buf }
    }

    /// Bytes not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Whether everything has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// One byte.
    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        self.need(1)?;
        Ok(self.buf.get_u8())
    }

    /// Two Byte Integer [MQTT-1.5.2].
    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        self.need(2)?;
        Ok(self.buf.get_u16())
    }

    /// Four Byte Integer [MQTT-1.5.3].
    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        self.need(4)?;
        Ok(self.buf.get_u32())
    }

    /// Variable Byte Integer [MQTT-1.5.5]; running out of bytes is malformed here.
    pub(crate) fn varint(&mut self) -> Result<u32, DecodeError> {
        let (value, used) = varint::parse(&self.buf)?.ok_or(SHORT)?;
        self.buf.advance(used);
        Ok(value)
    }

    /// Packet Identifier, which must be non-zero [MQTT-2.2.1-3].
    pub(crate) fn packet_id(&mut self) -> Result<PacketId, DecodeError> {
        match self.u16()? {
            0 => Err(DecodeError::Protocol("packet identifier 0 [MQTT-2.2.1-3]")),
            id => Ok(id),
        }
    }

    /// Binary Data: 16-bit length then that many bytes [MQTT-1.5.6].
    pub(crate) fn bin(&mut self) -> Result<Bytes, DecodeError> {
        let len = usize::from(self.u16()?);
        self.take(len)
    }

    /// UTF-8 Encoded String: well-formed UTF-8 [MQTT-1.5.4-1] without U+0000
    /// [MQTT-1.5.4-2].
    pub(crate) fn str(&mut self) -> Result<String, DecodeError> {
        let raw = self.bin()?;
        let text = core::str::from_utf8(&raw)
            .map_err(|_| DecodeError::Malformed("string is not valid UTF-8 [MQTT-1.5.4-1]"))?;
        if text.contains('\0') {
            return Err(DecodeError::Malformed(
                "string contains U+0000 [MQTT-1.5.4-2]",
            ));
        }
        Ok(String::from(text))
    }

    /// The next `len` bytes, sharing the underlying buffer.
    pub(crate) fn take(&mut self, len: usize) -> Result<Bytes, DecodeError> {
        self.need(len)?;
        Ok(self.buf.split_to(len))
    }

    /// Everything left, sharing the underlying buffer.
    pub(crate) fn rest(&mut self) -> Bytes {
        core::mem::take(&mut self.buf)
    }

    /// Fails if bytes are left over: a packet must end where its fields end.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::Malformed(
                "unexpected bytes after the last field",
            ))
        }
    }

    fn need(&self, len: usize) -> Result<(), DecodeError> {
        if self.buf.len() < len {
            Err(SHORT)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn reader(bytes: &'static [u8]) -> Reader {
        Reader::new(Bytes::from_static(bytes))
    }

    #[test]
    fn integers_are_big_endian() {
        let mut r = reader(&[1, 0x12, 0x34, 0xDE, 0xAD, 0xBE, 0xEF]);
        assert_eq!(r.u8().unwrap(), 1);
        assert_eq!(r.u16().unwrap(), 0x1234);
        assert_eq!(r.u32().unwrap(), 0xDEAD_BEEF);
        assert!(r.is_empty());
        assert!(r.u8().is_err());
    }

    #[test]
    fn string_checks() {
        assert_eq!(reader(&[0, 2, b'h', b'i']).str().unwrap(), "hi");
        assert_eq!(reader(&[0, 0]).str().unwrap(), "");
        assert!(matches!(
            reader(&[0, 1, 0xFF]).str(),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            reader(&[0, 1, 0x00]).str(),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            reader(&[0, 3, b'a']).str(),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(reader(&[0]).str(), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn packet_id_zero_is_protocol_error() {
        assert!(matches!(
            reader(&[0, 0]).packet_id(),
            Err(DecodeError::Protocol(_))
        ));
        assert_eq!(reader(&[0, 7]).packet_id().unwrap(), 7);
    }

    #[test]
    fn finish_rejects_trailing_bytes() {
        let mut r = reader(&[1, 2]);
        r.u8().unwrap();
        assert!(r.finish().is_err());
        r.u8().unwrap();
        assert!(r.finish().is_ok());
    }
}
