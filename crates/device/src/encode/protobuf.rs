//! Protobuf form of [`Features`] (schema: `proto/features.proto`), by hand.
//!
//! For consumers that already run on Protobuf. One three-level message does not justify
//! `prost` (a code generator, a build script and `protoc` or its vendored copy); a
//! bounds-checked reader and writer of ~300 lines do, and they allocate nothing, so the
//! device can use them too. The decoder follows the proto3 rules a generated one would:
//! fields in any order, the last value of a scalar wins, unknown fields are skipped,
//! repeated floats are accepted packed or not. Beyond those it refuses what `Features`
//! cannot hold: more than [`HARMONICS`] values in a band, an axis index not below
//! [`MAX_AXES`](crate::MAX_AXES), or the same axis twice.

use super::{DecodeError, EncodeError};
use crate::features::{AxisFeatures, DefectBands, Features, HARMONICS};

/// Largest encoding of any [`Features`] (every value non-zero, every axis present, the
/// integers at their widest): the buffer size a device should reserve.
pub const MAX_LEN: usize = 505;

// Wire types (https://protobuf.dev/programming-guides/encoding/).
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LEN: u8 = 2;
const FIXED32: u8 = 5;

/// Exact encoded length of `features`.
pub fn len(features: &Features) -> usize {
    let mut n = uint_len(features.seq)
        + float_len(features.sample_rate_hz)
        + uint_len(features.window_len)
        + float_len(features.shaft_hz);
    for (axis, a) in features.axes.iter().enumerate() {
        if let Some(a) = a {
            n += nested_len(axis_len(axis as u32, a));
        }
    }
    n
}

/// Encodes `features` at the start of `buf` and returns the number of bytes written.
pub fn encode(features: &Features, buf: &mut [u8]) -> Result<usize, EncodeError> {
    let needed = len(features);
    let mut w = Writer {
        buf,
        pos: 0,
        needed,
    };
    if w.buf.len() < needed {
        return Err(EncodeError { needed });
    }
    w.uint(1, features.seq)?;
    w.float(2, features.sample_rate_hz)?;
    w.uint(3, features.window_len)?;
    w.float(4, features.shaft_hz)?;
    for (axis, a) in features.axes.iter().enumerate() {
        if let Some(a) = a {
            let axis = axis as u32;
            w.key(5, LEN)?;
            w.varint(axis_len(axis, a) as u64)?;
            w.axis(axis, a)?;
        }
    }
    Ok(w.pos)
}

/// Encodes `features` into a new vector.
#[cfg(feature = "alloc")]
pub fn to_vec(features: &Features) -> alloc::vec::Vec<u8> {
    let mut out = alloc::vec![0; len(features)];
    // Sized by `len`, so this cannot fail; an empty vector stands in for a panic.
    match encode(features, &mut out) {
        Ok(n) => out.truncate(n),
        Err(_) => out.clear(),
    }
    out
}

/// Decodes one `Features` message spanning all of `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Features, DecodeError> {
    let mut r = Reader {
        bytes,
        pos: 0,
        base: 0,
    };
    let mut f = Features::default();
    while !r.is_empty() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, VARINT) => f.seq = r.varint()? as u32,
            (2, FIXED32) => f.sample_rate_hz = r.float()?,
            (3, VARINT) => f.window_len = r.varint()? as u32,
            (4, FIXED32) => f.shaft_hz = r.float()?,
            (5, LEN) => {
                let (axis, a) = decode_axis(r.nested()?)?;
                let slot = f
                    .axes
                    .get_mut(axis as usize)
                    .ok_or(DecodeError::AxisOutOfRange { axis })?;
                if slot.is_some() {
                    return Err(DecodeError::DuplicateAxis { axis });
                }
                *slot = Some(a);
            }
            (1..=5, _) => return Err(r.malformed()),
            _ => r.skip(wire)?,
        }
    }
    Ok(f)
}

/// Decodes one `AxisFeatures` message and the axis index it names.
fn decode_axis(mut r: Reader<'_>) -> Result<(u32, AxisFeatures), DecodeError> {
    let mut axis = 0;
    let mut a = AxisFeatures::default();
    while !r.is_empty() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, VARINT) => axis = r.varint()? as u32,
            (2, FIXED32) => a.mean = r.float()?,
            (3, FIXED32) => a.rms = r.float()?,
            (4, FIXED32) => a.peak = r.float()?,
            (5, FIXED32) => a.crest = r.float()?,
            (6, FIXED32) => a.kurtosis = r.float()?,
            (7, FIXED32) => a.shaft_1x = r.float()?,
            (8, FIXED32) => a.shaft_2x = r.float()?,
            (9, FIXED32) => a.resonance = r.float()?,
            (10, LEN) => decode_bands(r.nested()?, &mut a.spectrum)?,
            (11, LEN) => decode_bands(r.nested()?, &mut a.envelope)?,
            (1..=11, _) => return Err(r.malformed()),
            _ => r.skip(wire)?,
        }
    }
    Ok((axis, a))
}

/// Decodes one `DefectBands` message into `out`.
fn decode_bands(mut r: Reader<'_>, out: &mut DefectBands) -> Result<(), DecodeError> {
    let mut counts = [0usize; 4];
    while !r.is_empty() {
        let (field, wire) = r.key()?;
        let (values, count) = match field {
            1 => (&mut out.bpfo, &mut counts[0]),
            2 => (&mut out.bpfi, &mut counts[1]),
            3 => (&mut out.bsf, &mut counts[2]),
            4 => (&mut out.ftf, &mut counts[3]),
            _ => {
                r.skip(wire)?;
                continue;
            }
        };
        let mut push = |x: f32| match values.get_mut(*count) {
            Some(slot) => {
                *slot = x;
                *count += 1;
                Ok(())
            }
            None => Err(DecodeError::TooManyValues { field }),
        };
        match wire {
            FIXED32 => push(r.float()?)?,
            LEN => {
                let mut packed = r.nested()?;
                if packed.remaining() % 4 != 0 {
                    return Err(packed.malformed());
                }
                while !packed.is_empty() {
                    push(packed.float()?)?;
                }
            }
            _ => return Err(r.malformed()),
        }
    }
    Ok(())
}

/// Bytes of a varint holding `v`.
const fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Bytes of an implicit-presence `uint32` field (numbers below 16 have one-byte keys).
const fn uint_len(v: u32) -> usize {
    if v == 0 {
        0
    } else {
        1 + varint_len(v as u64)
    }
}

/// Bytes of an implicit-presence `float` field: omitted only for +0.0 (bit pattern 0),
/// so −0.0 survives a round trip.
const fn float_len(v: f32) -> usize {
    if v.to_bits() == 0 {
        0
    } else {
        5
    }
}

/// Bytes of a length-delimited field (key below 16) with a body of `body` bytes.
const fn nested_len(body: usize) -> usize {
    1 + varint_len(body as u64) + body
}

/// Bytes of a packed `repeated float` field with [`HARMONICS`] values, omitted when all
/// are +0.0.
fn packed_len(values: &[f32; HARMONICS]) -> usize {
    if values.iter().all(|v| v.to_bits() == 0) {
        0
    } else {
        nested_len(4 * HARMONICS)
    }
}

fn bands_len(b: &DefectBands) -> usize {
    packed_len(&b.bpfo) + packed_len(&b.bpfi) + packed_len(&b.bsf) + packed_len(&b.ftf)
}

/// An empty `DefectBands` is omitted altogether: it decodes to the same zeros.
fn bands_field_len(b: &DefectBands) -> usize {
    match bands_len(b) {
        0 => 0,
        n => nested_len(n),
    }
}

fn axis_len(axis: u32, a: &AxisFeatures) -> usize {
    1 + varint_len(axis as u64)
        + [
            a.mean,
            a.rms,
            a.peak,
            a.crest,
            a.kurtosis,
            a.shaft_1x,
            a.shaft_2x,
            a.resonance,
        ]
        .iter()
        .map(|&v| float_len(v))
        .sum::<usize>()
        + bands_field_len(&a.spectrum)
        + bands_field_len(&a.envelope)
}

/// Appends to a caller's buffer, refusing to run past its end.
struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
    /// Total length, reported if the buffer runs out.
    needed: usize,
}

impl Writer<'_> {
    fn byte(&mut self, b: u8) -> Result<(), EncodeError> {
        let slot = self.buf.get_mut(self.pos).ok_or(EncodeError {
            needed: self.needed,
        })?;
        *slot = b;
        self.pos += 1;
        Ok(())
    }

    fn varint(&mut self, mut v: u64) -> Result<(), EncodeError> {
        while v >= 0x80 {
            self.byte((v as u8) | 0x80)?;
            v >>= 7;
        }
        self.byte(v as u8)
    }

    fn key(&mut self, field: u32, wire: u8) -> Result<(), EncodeError> {
        self.varint((u64::from(field) << 3) | u64::from(wire))
    }

    fn uint(&mut self, field: u32, v: u32) -> Result<(), EncodeError> {
        if v == 0 {
            return Ok(());
        }
        self.key(field, VARINT)?;
        self.varint(u64::from(v))
    }

    fn float(&mut self, field: u32, v: f32) -> Result<(), EncodeError> {
        if v.to_bits() == 0 {
            return Ok(());
        }
        self.key(field, FIXED32)?;
        v.to_le_bytes().into_iter().try_for_each(|b| self.byte(b))
    }

    fn packed(&mut self, field: u32, values: &[f32; HARMONICS]) -> Result<(), EncodeError> {
        if packed_len(values) == 0 {
            return Ok(());
        }
        self.key(field, LEN)?;
        self.varint((4 * HARMONICS) as u64)?;
        values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .try_for_each(|b| self.byte(b))
    }

    fn bands(&mut self, field: u32, b: &DefectBands) -> Result<(), EncodeError> {
        let body = bands_len(b);
        if body == 0 {
            return Ok(());
        }
        self.key(field, LEN)?;
        self.varint(body as u64)?;
        self.packed(1, &b.bpfo)?;
        self.packed(2, &b.bpfi)?;
        self.packed(3, &b.bsf)?;
        self.packed(4, &b.ftf)
    }

    fn axis(&mut self, axis: u32, a: &AxisFeatures) -> Result<(), EncodeError> {
        // The index is sent even when 0 so that an axis whose values are all zero still
        // arrives as a present axis.
        self.key(1, VARINT)?;
        self.varint(u64::from(axis))?;
        let scalars = [
            a.mean,
            a.rms,
            a.peak,
            a.crest,
            a.kurtosis,
            a.shaft_1x,
            a.shaft_2x,
            a.resonance,
        ];
        for (field, v) in (2..).zip(scalars) {
            self.float(field, v)?;
        }
        self.bands(10, &a.spectrum)?;
        self.bands(11, &a.envelope)
    }
}

/// Reads one message body, every access bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Offset of `bytes` in the whole payload, for error positions.
    base: usize,
}

impl<'a> Reader<'a> {
    fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    fn malformed(&self) -> DecodeError {
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
    fn varint(&mut self) -> Result<u64, DecodeError> {
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

    fn float(&mut self) -> Result<f32, DecodeError> {
        match *self.take(4)? {
            [a, b, c, d] => Ok(f32::from_le_bytes([a, b, c, d])),
            _ => Err(DecodeError::Truncated),
        }
    }

    /// A field key: field numbers run from 1 to 2^29 − 1.
    fn key(&mut self) -> Result<(u32, u8), DecodeError> {
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 || field > (u32::MAX >> 3) as u64 {
            return Err(self.malformed());
        }
        Ok((field as u32, (key & 7) as u8))
    }

    /// The body of a length-delimited field, as a reader of its own.
    fn nested(&mut self) -> Result<Reader<'a>, DecodeError> {
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
    fn skip(&mut self, wire: u8) -> Result<(), DecodeError> {
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
    fn known_bytes() {
        // seq = 150 is the protobuf guide's example varint: 08 96 01.
        let f = Features {
            seq: 150,
            ..Features::default()
        };
        let mut buf = [0u8; MAX_LEN];
        let n = encode(&f, &mut buf).expect("fits");
        assert_eq!(&buf[..n], &[0x08, 0x96, 0x01]);
        assert_eq!(decode(&buf[..n]), Ok(f));
    }

    #[test]
    fn accepts_unpacked_floats_and_unknown_fields() {
        // axes { axis: 1, envelope { bpfi: 1.0, bpfi: 2.0 } } with an unknown varint field 99.
        let mut bytes = vec![0x98, 0x06, 0x07]; // field 99, varint 7
        let bands = [0x15, 0, 0, 0x80, 0x3f, 0x15, 0, 0, 0, 0x40]; // field 2 fixed32 ×2
        let mut axis = vec![0x08, 0x01, 0x5a, bands.len() as u8];
        axis.extend_from_slice(&bands);
        bytes.extend_from_slice(&[0x2a, axis.len() as u8]);
        bytes.extend_from_slice(&axis);
        let f = decode(&bytes).expect("valid");
        let a = f.axes[1].expect("axis 1");
        assert_eq!(a.envelope.bpfi, [1.0, 2.0, 0.0]);
        assert!(f.axes[0].is_none() && f.axes[2].is_none());
    }

    #[test]
    fn refuses_what_features_cannot_hold() {
        let axis3 = [0x2a, 0x02, 0x08, 0x03];
        assert_eq!(decode(&axis3), Err(DecodeError::AxisOutOfRange { axis: 3 }));
        let twice = [0x2a, 0x02, 0x08, 0x01, 0x2a, 0x02, 0x08, 0x01];
        assert_eq!(decode(&twice), Err(DecodeError::DuplicateAxis { axis: 1 }));
        // Four packed values in a three-harmonic band.
        let mut four = vec![0x2a, 20, 0x52, 18, 0x0a, 16];
        four.extend_from_slice(&[0; 16]);
        assert_eq!(decode(&four), Err(DecodeError::TooManyValues { field: 1 }));
        assert_eq!(decode(&[0x15, 0, 0]), Err(DecodeError::Truncated));
        assert!(matches!(
            decode(&[0x0b]),
            Err(DecodeError::Malformed { .. })
        ));
        assert!(matches!(
            decode(&[0xff; 11]),
            Err(DecodeError::Malformed { .. })
        ));
    }
}
