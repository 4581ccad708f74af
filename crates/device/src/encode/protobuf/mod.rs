//! Protobuf form of [`Features`] (schema: `crates/device/proto/features.proto`), by hand.
//!
//! For consumers that already run on Protobuf. One three-level message does not justify
//! `prost` (a code generator, a build script and `protoc` or its vendored copy); a
//! bounds-checked reader and writer (`wire.rs`) and the mapping below do, and they
//! allocate nothing, so the device can use them too. The decoder follows the proto3
//! rules a generated one would: fields in any order, the last value of a scalar wins,
//! unknown fields are skipped, repeated floats are accepted packed or not. Beyond those
//! it refuses what `Features` cannot hold: more than [`HARMONICS`] values in a band, an
//! axis index not below [`MAX_AXES`](crate::MAX_AXES), or the same axis twice.

mod wire;

use wire::{float_len, nested_len, uint_len, Reader, Writer, FIXED32, LEN, VARINT};

use super::{DecodeError, EncodeError};
use crate::features::{AxisFeatures, DefectBands, Features, HARMONICS};

/// Largest encoding of any [`Features`] (every value non-zero, every axis present, the
/// integers at their widest): the buffer size a device should reserve.
pub const MAX_LEN: usize = 505;

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
    if buf.len() < needed {
        return Err(EncodeError { needed });
    }
    let mut w = Writer::new(buf, needed);
    w.uint(1, features.seq)?;
    w.float(2, features.sample_rate_hz)?;
    w.uint(3, features.window_len)?;
    w.float(4, features.shaft_hz)?;
    for (axis, a) in features.axes.iter().enumerate() {
        if let Some(a) = a {
            let axis = axis as u32;
            w.key(5, LEN)?;
            w.varint(axis_len(axis, a) as u64)?;
            write_axis(&mut w, axis, a)?;
        }
    }
    Ok(w.position())
}

/// Encodes `features` into a new vector.
#[cfg(feature = "alloc")]
pub fn to_vec(features: &Features) -> alloc::vec::Vec<u8> {
    super::to_sized_vec(len(features), |out| encode(features, out))
}

/// Decodes one `Features` message spanning all of `bytes`.
pub fn decode(bytes: &[u8]) -> Result<Features, DecodeError> {
    let mut r = Reader::new(bytes);
    let mut f = Features::default();
    while !r.is_empty() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, VARINT) => f.seq = r.uint()?,
            (2, FIXED32) => f.sample_rate_hz = r.float()?,
            (3, VARINT) => f.window_len = r.uint()?,
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

/// The eight scalar fields of `AxisFeatures`, numbered 2 to 9 in this order.
fn scalars(a: &AxisFeatures) -> [f32; 8] {
    [
        a.mean,
        a.rms,
        a.peak,
        a.crest,
        a.kurtosis,
        a.shaft_1x,
        a.shaft_2x,
        a.resonance,
    ]
}

/// Body length of one `AxisFeatures` message.
fn axis_len(axis: u32, a: &AxisFeatures) -> usize {
    let scalars: usize = scalars(a).iter().map(|&v| float_len(v)).sum();
    uint_len(axis).max(2) + scalars + bands_field_len(&a.spectrum) + bands_field_len(&a.envelope)
}

/// Bytes of a packed `repeated float` field of [`HARMONICS`] values, omitted when all
/// are +0.0.
fn packed_len(values: &[f32; HARMONICS]) -> usize {
    if values.iter().all(|v| v.to_bits() == 0) {
        0
    } else {
        nested_len(4 * HARMONICS)
    }
}

/// Body length of one `DefectBands` message.
fn bands_len(b: &DefectBands) -> usize {
    packed_len(&b.bpfo) + packed_len(&b.bpfi) + packed_len(&b.bsf) + packed_len(&b.ftf)
}

/// An all-zero `DefectBands` is omitted altogether: it decodes to the same zeros.
fn bands_field_len(b: &DefectBands) -> usize {
    match bands_len(b) {
        0 => 0,
        n => nested_len(n),
    }
}

fn write_axis(w: &mut Writer<'_>, axis: u32, a: &AxisFeatures) -> Result<(), EncodeError> {
    // The index is sent even when 0, so that an axis whose values are all zero still
    // arrives as a present axis (and `axis_len` counts it with `max(2)`).
    w.key(1, VARINT)?;
    w.varint(u64::from(axis))?;
    for (field, v) in (2..).zip(scalars(a)) {
        w.float(field, v)?;
    }
    write_bands(w, 10, &a.spectrum)?;
    write_bands(w, 11, &a.envelope)
}

fn write_bands(w: &mut Writer<'_>, field: u32, b: &DefectBands) -> Result<(), EncodeError> {
    let body = bands_len(b);
    if body == 0 {
        return Ok(());
    }
    w.key(field, LEN)?;
    w.varint(body as u64)?;
    for (field, values) in (1..).zip([&b.bpfo, &b.bpfi, &b.bsf, &b.ftf]) {
        if packed_len(values) > 0 {
            w.key(field, LEN)?;
            w.varint((4 * HARMONICS) as u64)?;
            values.iter().try_for_each(|&v| w.raw_float(v))?;
        }
    }
    Ok(())
}

/// Decodes one `AxisFeatures` message and the axis index it names.
fn decode_axis(mut r: Reader<'_>) -> Result<(u32, AxisFeatures), DecodeError> {
    let mut axis = 0;
    let mut a = AxisFeatures::default();
    while !r.is_empty() {
        let (field, wire) = r.key()?;
        match (field, wire) {
            (1, VARINT) => axis = r.uint()?,
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

/// Decodes one `DefectBands` message into `out`. Values are placed from harmonic 1 on,
/// packed or one by one; a later copy of the message starts again from harmonic 1.
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
        let mut push = |x: f32| {
            let slot = values
                .get_mut(*count)
                .ok_or(DecodeError::TooManyValues { field })?;
            *slot = x;
            *count += 1;
            Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

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
        // An all-zero axis 0 is still present: key 0x2a, length 2, axis field 08 00.
        let f = Features {
            axes: [Some(AxisFeatures::default()), None, None],
            ..Features::default()
        };
        let n = encode(&f, &mut buf).expect("fits");
        assert_eq!(&buf[..n], &[0x2a, 0x02, 0x08, 0x00]);
        assert_eq!(decode(&buf[..n]), Ok(f));
    }

    #[test]
    fn accepts_unpacked_floats_and_unknown_fields() {
        // axes { axis: 1, envelope { bpfi: 1.0, bpfi: 2.0 } } after an unknown field 99.
        let mut bytes = vec![0x98, 0x06, 0x07]; // field 99, varint 7
        let bands = [0x15, 0, 0, 0x80, 0x3f, 0x15, 0, 0, 0, 0x40]; // field 2, fixed32 ×2
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
        // Known field, wrong wire type; and a group.
        assert!(matches!(
            decode(&[0x0d, 0, 0, 0, 0]),
            Err(DecodeError::Malformed { .. })
        ));
        assert!(matches!(
            decode(&[0x0b]),
            Err(DecodeError::Malformed { .. })
        ));
    }
}
