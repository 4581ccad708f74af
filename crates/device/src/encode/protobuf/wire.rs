//! Protobuf wire format primitives: varints, keys, fixed32 floats, length-delimited
//! bodies, and the size of each, over a bounds-checked reader and writer.
//!
//! Knows nothing about `Features`; the message layout is in the parent module. Every
//! read and write checks its bounds and reports failure as a value, so neither a short
//! output buffer nor a hostile payload can panic.
//! Reference: <https://protobuf.dev/programming-guides/encoding/>.

use crate::encode::{DecodeError, EncodeError};

/// Wire type of varint fields (`uint32` here).
pub(super) const VARINT: u8 = 0;
/// Wire type of 8-byte fields (none here; skipped when unknown).
pub(super) const FIXED64: u8 = 1;
/// Wire type of length-delimited fields: nested messages and packed repeated values.
pub(super) const LEN: u8 = 2;
/// Wire type of 4-byte fields (`float` here).
pub(super) const FIXED32: u8 = 5;

/// Bytes of a varint holding `v`.
pub(super) const fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Bytes of an implicit-presence `uint32` field with a one-byte key (field < 16):
/// omitted when 0, as proto3 does.
pub(super) const fn uint_len(v: u32) -> usize {
    if v == 0 {
        0
    } else {
        1 + varint_len(v as u64)
    }
}

/// Bytes of an implicit-presence `float` field with a one-byte key: omitted only for
/// +0.0 (bit pattern 0), so that −0.0 survives a round trip.
pub(super) const fn float_len(v: f32) -> usize {
    if v.to_bits() == 0 {
        0
    } else {
        5
    }
}

/// Bytes of a length-delimited field with a one-byte key and a body of `body` bytes.
pub(super) const fn nested_len(body: usize) -> usize {
    1 + varint_len(body as u64) + body
}

/// Appends to a caller's buffer, refusing to run past its end.
pub(super) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
    /// Total length of the record, reported if the buffer runs out.
    needed: usize,
}

impl<'a> Writer<'a> {
    /// A writer for a record of `needed` bytes.
    pub(super) fn new(buf: &'a mut [u8], needed: usize) -> Self {
        Self {
            buf,
            pos: 0,
            needed,
        }
    }

    /// Bytes written so far.
    pub(super) fn position(&self) -> usize {
        self.pos
    }

    fn byte(&mut self, b: u8) -> Result<(), EncodeError> {
        let needed = self.needed;
        let slot = self.buf.get_mut(self.pos).ok_or(EncodeError { needed })?;
        *slot = b;
        self.pos += 1;
        Ok(())
    }

    pub(super) fn varint(&mut self, mut v: u64) -> Result<(), EncodeError> {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80)?;
            v >>= 7;
        }
        self.byte(v as u8)
    }

    pub(super) fn key(&mut self, field: u32, wire: u8) -> Result<(), EncodeError> {
        self.varint((u64::from(field) << 3) | u64::from(wire))
    }

    /// A `uint32` field, omitted when 0 (see [`uint_len`]).
    pub(super) fn uint(&mut self, field: u32, v: u32) -> Result<(), EncodeError> {
        if v == 0 {
            return Ok(());
        }
        self.key(field, VARINT)?;
        self.varint(u64::from(v))
    }

    /// The four little-endian bytes of a float, without a key (packed values).
    pub(super) fn raw_float(&mut self, v: f32) -> Result<(), EncodeError> {
        v.to_le_bytes().into_iter().try_for_each(|b| self.byte(b))
    }

    /// A `float` field, omitted for +0.0 (see [`float_len`]).
    pub(super) fn float(&mut self, field: u32, v: f32) -> Result<(), EncodeError> {
        if v.to_bits() == 0 {
            return Ok(());
        }
        self.key(field, FIXED32)?;
        self.raw_float(v)
    }
}

/// Reads one message body, every access bounds-checked.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Offset of `bytes` in the whole payload, for error positions.
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over a whole payload.
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            base: 0,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    pub(super) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    /// The error for a structurally wrong field at the current position.
    pub(super) fn malformed(&self) -> DecodeError {
        DecodeError::Malformed {
            position: self.base + self.pos,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    /// A base-128 varint of at most 10 bytes; a tenth byte above 1 would overflow 64 bits.
    pub(super) fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = *self.take(1)?.first().ok_or(DecodeError::Truncated)?;
            if i == 9 && b > 1 {
                return Err(self.malformed());
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.malformed())
    }

    /// A `uint32`: like generated decoders, keeps the low 32 bits of a wider varint.
    pub(super) fn uint(&mut self) -> Result<u32, DecodeError> {
        self.varint().map(|v| v as u32)
    }

    pub(super) fn float(&mut self) -> Result<f32, DecodeError> {
        match *self.take(4)? {
            [a, b, c, d] => Ok(f32::from_le_bytes([a, b, c, d])),
            _ => Err(DecodeError::Truncated),
        }
    }

    /// A field key: field numbers run from 1 to 2^29 − 1, wire types from 0 to 7.
    pub(super) fn key(&mut self) -> Result<(u32, u8), DecodeError> {
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return Err(self.malformed());
        }
        Ok((field as u32, (key & 7) as u8))
    }

    /// The body of a length-delimited field, as a reader of its own.
    pub(super) fn nested(&mut self) -> Result<Reader<'a>, DecodeError> {
        let len = usize::try_from(self.varint()?).map_err(|_| DecodeError::Truncated)?;
        let base = self.base + self.pos;
        Ok(Reader {
            bytes: self.take(len)?,
            pos: 0,
            base,
        })
    }

    /// Skips an unknown field's value. Groups (wire types 3 and 4) are deprecated and
    /// never valid here, so they are refused rather than skipped.
    pub(super) fn skip(&mut self, wire: u8) -> Result<(), DecodeError> {
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.take(8).map(drop),
            LEN => self.nested().map(drop),
            FIXED32 => self.take(4).map(drop),
            _ => Err(self.malformed()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_lengths() {
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(u64::from(u32::MAX)), 5);
        assert_eq!(varint_len(u64::MAX), 10);
    }

    #[test]
    fn varints_round_trip_and_overflow_is_refused() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut buf = [0u8; 10];
            let mut w = Writer::new(&mut buf, 10);
            w.varint(v).expect("fits");
            let n = w.position();
            assert_eq!(n, varint_len(v));
            assert_eq!(Reader::new(&buf[..n]).varint(), Ok(v));
        }
        assert!(matches!(
            Reader::new(&[0xff; 11]).varint(),
            Err(DecodeError::Malformed { .. })
        ));
        assert_eq!(Reader::new(&[0x80]).varint(), Err(DecodeError::Truncated));
    }

    #[test]
    fn writer_stops_at_the_end_of_its_buffer() {
        let mut buf = [0u8; 3];
        let mut w = Writer::new(&mut buf, 5);
        assert_eq!(w.float(1, 1.0), Err(EncodeError { needed: 5 }));
    }
}
