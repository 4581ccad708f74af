//! Device payloads (JSON, CBOR, Protobuf, bosun's feature record) → one normalized
//! [`Message`], or a typed [`DecodeError`] that becomes a [`DeadLetter`].
//!
//! The pipeline builds an [`Input`] from what the hub hands it (device id, topic
//! properties, MQTT content type, payload, receive time) and calls
//! [`Decoder::decode`]. The decoder picks a [`Format`] (MQTT content type, else `$.ct`,
//! else the device's registered schema, else "it parses as JSON"), decodes within
//! [`Limits`], stamps the message with the device's time if sane (else the hub's), and
//! splits system from application properties. Nothing here does IO except the small
//! [`DeadLetterLog`], and no input can panic.
//!
//! Layout:
//! - [`format`]: content types and the resolution order.
//! - `json`, `cbor`, `protobuf`, `features`: one decoder per format.
//! - [`schema`]: run-time Protobuf schemas and per-device formats ([`SchemaRegistry`]).
//! - [`limits`]: the bounds ([`Limits`]); `number`: NaN checks and shortest `f32`s.
//! - [`timestamp`]: device time or hub time.
//! - [`message`]: [`Message`] and its flattened numbers.
//! - [`deadletter`]: [`DeadLetter`] lines and the rotating [`DeadLetterLog`].
//! - `error`: [`DecodeError`] and its `reason()`.

mod cbor;
pub mod deadletter;
mod error;
mod features;
pub mod format;
mod json;
pub mod limits;
pub mod message;
mod number;
mod protobuf;
pub mod schema;
pub mod timestamp;

use serde_json::{Map, Value};

pub use deadletter::{DeadLetter, DeadLetterLog};
pub use error::DecodeError;
pub use features::{features_body, AXIS_NAMES};
pub use format::{Format, FormatSource, FEATURES_CBOR, FEATURES_PROTOBUF};
pub use limits::Limits;
pub use message::{Message, SystemProperties, METADATA_KEYS};
pub use schema::{SchemaError, SchemaRegistry};
pub use timestamp::{TimestampIssue, TsSource};

/// One message as the hub hands it to the pipeline, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The device that sent it.
    pub device_id: &'a str,
    /// The device's group, if it has one (for group-wide registered schemas).
    pub group: Option<&'a str>,
    /// The topic's property bag, already percent-decoded by the hub.
    pub properties: &'a [(String, String)],
    /// The MQTT 5 content-type property, if sent.
    pub content_type: Option<&'a str>,
    /// The payload.
    pub payload: &'a [u8],
    /// When the hub received it (ms since the Unix epoch).
    pub received_ms: i64,
}

impl<'a> Input<'a> {
    /// A value of the topic's property bag, by name (`$.ct`, `capture-id`, …).
    pub fn property(&self, name: &str) -> Option<&'a str> {
        self.properties
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The content type the message declares, and where: the MQTT 5 property wins over
    /// the topic's `$.ct`; a blank one counts as none. The pipeline asks this too, to
    /// route capture chunks before decoding.
    pub fn declared_content_type(&self) -> Option<(&'a str, FormatSource)> {
        match (self.content_type, self.property("$.ct")) {
            (Some(ct), _) if !ct.trim().is_empty() => Some((ct, FormatSource::Mqtt)),
            (_, Some(ct)) if !ct.trim().is_empty() => Some((ct, FormatSource::Topic)),
            _ => None,
        }
    }
}

/// Decodes and normalizes messages; cheap to share (`&self`) across a pipeline's
/// workers, rebuilt when schemas or limits change.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    limits: Limits,
    registry: SchemaRegistry,
}

impl Decoder {
    /// A decoder with these bounds and schemas.
    pub fn new(limits: Limits, registry: SchemaRegistry) -> Self {
        Self { limits, registry }
    }

    /// The bounds in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The schemas, for registering more.
    pub fn registry_mut(&mut self) -> &mut SchemaRegistry {
        &mut self.registry
    }

    /// Decodes one message.
    pub fn decode(&self, input: &Input<'_>) -> Result<Message, DecodeError> {
        let limits = &self.limits;
        if input.payload.len() > limits.max_payload_bytes {
            return Err(DecodeError::TooLarge {
                size: input.payload.len(),
                limit: limits.max_payload_bytes,
            });
        }
        let (format, source) = format::resolve(input, &self.registry)?;
        let encoding = input.property("$.ce");
        if let (Format::Json, Some(ce)) = (&format, encoding) {
            if !matches!(ce.to_ascii_lowercase().as_str(), "utf-8" | "utf8") {
                return Err(DecodeError::UnsupportedEncoding(ce.to_owned()));
            }
        }
        let body = self.body(&format, input.payload)?;
        let stamp = timestamp::stamp(&body, input.properties, input.received_ms, limits);
        let mut system = SystemProperties {
            content_type: format.content_type(),
            content_type_source: Some(source),
            received_ms: input.received_ms,
            payload_bytes: input.payload.len(),
            ..SystemProperties::default()
        };
        let app_properties = system.split(input.properties);
        Ok(Message {
            device_id: input.device_id.to_owned(),
            ts_ms: stamp.ts_ms,
            ts_source: stamp.source,
            ts_issue: stamp.issue,
            ts_field: stamp.field,
            body,
            app_properties,
            system,
        })
    }

    /// The payload as a body object in `format`.
    fn body(&self, format: &Format, payload: &[u8]) -> Result<Map<String, Value>, DecodeError> {
        let limits = &self.limits;
        let value = match format {
            Format::Json => json::decode(payload, limits)?,
            Format::Cbor => cbor::decode(payload, limits)?,
            Format::FeaturesCbor => return features::decode_cbor(payload),
            Format::FeaturesProtobuf => return features::decode_protobuf(payload),
            Format::Protobuf(name) => {
                let name = name.as_deref().unwrap_or("");
                let desc = self
                    .registry
                    .message(name)
                    .ok_or_else(|| DecodeError::UnknownMessageType(name.to_owned()))?;
                return protobuf::decode(payload, &desc, limits);
            }
        };
        Ok(match value {
            Value::Object(map) => map,
            other => {
                let mut map = Map::new();
                map.insert("value".into(), other);
                map
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_717_243_200_000;

    fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn input<'a>(
        props: &'a [(String, String)],
        ct: Option<&'a str>,
        payload: &'a [u8],
    ) -> Input<'a> {
        Input {
            device_id: "d1",
            group: Some("pumps"),
            properties: props,
            content_type: ct,
            payload,
            received_ms: NOW,
        }
    }

    #[test]
    fn json_end_to_end() -> Result<(), DecodeError> {
        let p = props(&[
            ("$.ct", "application/json"),
            ("$.ce", "utf-8"),
            ("alarm", "1"),
        ]);
        let payload = br#"{"ts": 1717243190000, "temp": 21.5, "seq": 3}"#;
        let m = Decoder::default().decode(&input(&p, None, payload))?;
        assert_eq!(m.ts_ms, NOW - 10_000);
        assert_eq!(m.ts_source, TsSource::Device);
        assert_eq!(m.app_properties, props(&[("alarm", "1")]));
        assert_eq!(m.system.content_type_source, Some(FormatSource::Topic));
        assert_eq!(m.numeric_fields(), vec![("temp".to_owned(), 21.5)]);
        let json = serde_json::to_value(&m).unwrap_or_default();
        assert_eq!(json["ts_source"], json!("device"));
        assert_eq!(json["system"]["content_type_source"], json!("topic"));
        assert_eq!(json["body"]["temp"], json!(21.5));
        Ok(())
    }

    #[test]
    fn resolution_order_and_sniffing() -> Result<(), DecodeError> {
        let d = Decoder::default();
        let cbor_props = props(&[("$.ct", "application/cbor")]);
        // The MQTT property wins over `$.ct`.
        let m = d.decode(&input(&cbor_props, Some("application/json"), b"[1]"))?;
        assert_eq!(
            m.body,
            json!({"value": [1]})
                .as_object()
                .cloned()
                .unwrap_or_default()
        );
        assert_eq!(m.system.content_type_source, Some(FormatSource::Mqtt));
        // `$.ct` alone.
        let m = d.decode(&input(&cbor_props, None, &[0xa1, 0x61, b'a', 0x01]))?;
        assert_eq!(m.get("a"), Some(&json!(1)));
        // Nothing given: JSON is sniffed, anything else is refused.
        let m = d.decode(&input(&[], None, b"{\"a\": 2}"))?;
        assert_eq!(m.system.content_type_source, Some(FormatSource::Sniffed));
        let e = d.decode(&input(&[], None, &[0xa1, 0x61, b'a', 0x01]));
        assert_eq!(
            e.map_err(|e| e.reason()).err(),
            Some("unknown_content_type")
        );
        // The group's registered format applies when nothing is said.
        let mut reg = SchemaRegistry::new();
        reg.set_group("pumps", Format::Cbor);
        let d = Decoder::new(Limits::default(), reg);
        let m = d.decode(&input(&[], None, &[0xa1, 0x61, b'a', 0x01]))?;
        assert_eq!(m.system.content_type_source, Some(FormatSource::Registry));
        Ok(())
    }

    #[test]
    fn refusals_have_reasons() {
        let d = Decoder::new(
            Limits {
                max_payload_bytes: 64,
                ..Limits::default()
            },
            SchemaRegistry::new(),
        );
        let reason = |p: &[(String, String)], ct: Option<&str>, payload: &[u8]| {
            d.decode(&input(p, ct, payload)).err().map(|e| e.reason())
        };
        let json_ct = Some("application/json");
        assert_eq!(reason(&[], json_ct, &[b'{'; 65]), Some("too_large"));
        assert_eq!(
            reason(&[], Some("text/plain"), b"1"),
            Some("unknown_content_type")
        );
        let latin = props(&[("$.ce", "iso-8859-1")]);
        assert_eq!(reason(&latin, json_ct, b"{}"), Some("unsupported_encoding"));
        assert_eq!(reason(&[], json_ct, b"{\"a\": \xff}"), Some("invalid_utf8"));
        assert_eq!(reason(&[], json_ct, b"{\"a\": }"), Some("invalid_json"));
        let proto = Some("application/x-protobuf; messageType=acme.Nope");
        assert_eq!(reason(&[], proto, b""), Some("unknown_message_type"));
        assert_eq!(
            reason(&[], Some(FEATURES_CBOR), &[0x85]),
            Some("cbor_truncated")
        );
        assert_eq!(
            reason(&[], Some(FEATURES_PROTOBUF), &[0x0d]),
            Some("protobuf_malformed")
        );
    }

    #[test]
    fn features_content_types() -> Result<(), DecodeError> {
        let f = features::tests::sample();
        let d = Decoder::default();
        let cbor = device::encode::cbor::to_vec(&f);
        let a = d.decode(&input(&[], Some(FEATURES_CBOR), &cbor))?;
        let proto = device::encode::protobuf::to_vec(&f);
        let b = d.decode(&input(&[], Some(FEATURES_PROTOBUF), &proto))?;
        assert_eq!(a.body, b.body);
        let names: Vec<String> = a.numeric_fields().into_iter().map(|(n, _)| n).collect();
        // shaft_hz + 3 axes × (8 scalars + 2 × 12 band values).
        assert_eq!(names.len(), 1 + 3 * 32);
        assert!(names.contains(&"x.envelope.bpfi.0".to_owned()));
        assert!(names.contains(&"z.spectrum.ftf.2".to_owned()));
        assert!(!names.contains(&"seq".to_owned()));
        Ok(())
    }

    const CONTENT_TYPES: [Option<&str>; 7] = [
        None,
        Some("application/json"),
        Some("application/cbor"),
        Some(FEATURES_CBOR),
        Some(FEATURES_PROTOBUF),
        Some("application/x-protobuf; messageType=google.protobuf.Nope"),
        Some("application/x-protobuf"),
    ];

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            payload in prop::collection::vec(any::<u8>(), 0..256),
            which in 0..CONTENT_TYPES.len(),
        ) {
            let d = Decoder::default();
            let ct = CONTENT_TYPES.get(which).copied().flatten();
            if let Ok(m) = d.decode(&input(&[], ct, &payload)) {
                let _ = m.numeric_fields();
            }
        }

        #[test]
        fn json_round_trips(value in cbor::tests::json_value()) {
            let payload = serde_json::to_vec(&value).unwrap_or_default();
            let d = Decoder::default();
            let m = d.decode(&input(&[], Some("application/json"), &payload));
            let want = match value {
                Value::Object(map) => map,
                other => [("value".to_owned(), other)].into_iter().collect(),
            };
            prop_assert_eq!(m.map(|m| m.body), Ok(want));
        }
    }
}
