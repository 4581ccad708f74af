//! bosun's own device feature record (`device::Features`) → named fields.
//!
//! The device SDK's decoders read the CBOR and Protobuf forms (one implementation for
//! device and hub); this module names what they return. The names are a contract: the
//! anomaly model and user rules refer to flattened names such as `x.rms` and
//! `x.envelope.bpfi.0`, which [`Message::numeric_fields`](super::Message::numeric_fields)
//! derives from this body:
//!
//! ```text
//! { "seq", "sample_rate_hz", "window_len", "shaft_hz",
//!   "x" | "y" | "z": { "mean", "rms", "peak", "crest", "kurtosis", "shaft_1x",
//!                      "shaft_2x", "resonance",
//!                      "spectrum": { "bpfo": [3], "bpfi": [3], "bsf": [3], "ftf": [3] },
//!                      "envelope": { same } } }
//! ```
//!
//! Absent axes are absent keys. A NaN or infinite value refuses the record.

use device::encode::DecodeError as DeviceError;
use device::{AxisFeatures, DefectBands, Features};
use serde_json::{Map, Value};

use super::number::finite_f32;
use super::DecodeError;

/// Body key of each axis index.
pub const AXIS_NAMES: [&str; device::MAX_AXES] = ["x", "y", "z"];

/// Decodes the CBOR form and names its fields.
pub(crate) fn decode_cbor(bytes: &[u8]) -> Result<Map<String, Value>, DecodeError> {
    let features = device::encode::cbor::decode(bytes).map_err(|e| match e {
        DeviceError::Truncated => DecodeError::CborTruncated,
        DeviceError::Malformed { position } | DeviceError::TrailingBytes { position } => {
            DecodeError::CborMalformed {
                position,
                message: "not a bosun feature record",
            }
        }
        other => DecodeError::SchemaMismatch(other.to_string()),
    })?;
    features_body(&features)
}

/// Decodes the Protobuf form and names its fields.
pub(crate) fn decode_protobuf(bytes: &[u8]) -> Result<Map<String, Value>, DecodeError> {
    let features = device::encode::protobuf::decode(bytes).map_err(|e| match e {
        DeviceError::Truncated | DeviceError::Malformed { .. } => {
            DecodeError::ProtobufMalformed(e.to_string())
        }
        other => DecodeError::SchemaMismatch(other.to_string()),
    })?;
    features_body(&features)
}

/// The named-field body of a feature record: what the hub stores for it, and the JSON a
/// device without CBOR or Protobuf would send. Refuses NaN and infinities with their
/// path.
pub fn features_body(f: &Features) -> Result<Map<String, Value>, DecodeError> {
    let mut body = Map::new();
    body.insert("seq".into(), Value::from(f.seq));
    body.insert(
        "sample_rate_hz".into(),
        named_f32("sample_rate_hz", f.sample_rate_hz)?,
    );
    body.insert("window_len".into(), Value::from(f.window_len));
    body.insert("shaft_hz".into(), named_f32("shaft_hz", f.shaft_hz)?);
    for (name, axis) in AXIS_NAMES.iter().zip(&f.axes) {
        if let Some(axis) = axis {
            let value = axis_body(axis).map_err(|e| e.within(name))?;
            body.insert((*name).into(), Value::Object(value));
        }
    }
    Ok(body)
}

fn named_f32(name: &str, v: f32) -> Result<Value, DecodeError> {
    finite_f32(v).map_err(|e| e.within(name))
}

fn axis_body(a: &AxisFeatures) -> Result<Map<String, Value>, DecodeError> {
    let mut out = Map::new();
    for (name, v) in a.scalars() {
        out.insert(name.into(), named_f32(name, v)?);
    }
    for (name, bands) in a.bands() {
        let value = bands_body(bands).map_err(|e| e.within(name))?;
        out.insert(name.into(), Value::Object(value));
    }
    Ok(out)
}

fn bands_body(b: &DefectBands) -> Result<Map<String, Value>, DecodeError> {
    let mut out = Map::new();
    for (name, values) in b.named() {
        let mut list = Vec::with_capacity(values.len());
        for (i, &v) in values.iter().enumerate() {
            list.push(finite_f32(v).map_err(|e| e.within(&i.to_string()).within(name))?);
        }
        out.insert(name.into(), Value::Array(list));
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use serde_json::json;

    use super::*;

    /// A realistic three-axis record (values of the order the extractor produces).
    pub(crate) fn sample() -> Features {
        let bands = |k: f32| DefectBands {
            bpfo: [0.012 * k, 0.004 * k, 0.001 * k],
            bpfi: [0.02 * k, 0.007 * k, 0.002 * k],
            bsf: [0.003 * k, 0.0011 * k, 0.0004 * k],
            ftf: [0.0008 * k, 0.0002 * k, 0.0001 * k],
        };
        let axis = |k: f32| AxisFeatures {
            mean: 0.01 * k,
            rms: 0.21 * k,
            peak: 0.93 * k,
            crest: 4.4,
            kurtosis: 3.2,
            shaft_1x: 0.031 * k,
            shaft_2x: 0.009 * k,
            resonance: 0.12 * k,
            spectrum: bands(k),
            envelope: bands(0.5 * k),
        };
        Features {
            seq: 42,
            sample_rate_hz: 12_000.0,
            window_len: 4096,
            shaft_hz: 29.95,
            axes: [Some(axis(1.0)), Some(axis(0.8)), Some(axis(1.3))],
        }
    }

    #[test]
    fn names_match_the_contract() -> Result<(), DecodeError> {
        let mut f = sample();
        f.axes[1] = None;
        let body = features_body(&f)?;
        assert_eq!(body["seq"], json!(42));
        assert_eq!(body["shaft_hz"], json!(29.95));
        assert_eq!(body["x"]["rms"], json!(0.21));
        assert_eq!(
            body["z"]["envelope"]["bpfi"].as_array().map(Vec::len),
            Some(3)
        );
        assert!(body.get("y").is_none());
        let cbor = device::encode::cbor::to_vec(&f);
        assert_eq!(decode_cbor(&cbor)?, body);
        let proto = device::encode::protobuf::to_vec(&f);
        assert_eq!(decode_protobuf(&proto)?, body);
        Ok(())
    }

    #[test]
    fn non_finite_is_refused_with_its_path() {
        let mut f = sample();
        if let Some(a) = f.axes[2].as_mut() {
            a.envelope.ftf[1] = f32::NAN;
        }
        let bytes = device::encode::protobuf::to_vec(&f);
        assert_eq!(
            decode_protobuf(&bytes),
            Err(DecodeError::NonFinite {
                path: "z.envelope.ftf.1".into()
            })
        );
    }
}
