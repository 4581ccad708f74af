//! A Protobuf schema registered at run time, as the pipeline would from a device
//! model's `FileDescriptorSet`: built here from `prost-types` structs (no `protoc`),
//! then messages encoded by hand are decoded through the whole [`Decoder`].

use prost_reflect::prost::Message as _;
use prost_reflect::prost_types::{
    field_descriptor_proto::{Label, Type},
    DescriptorProto, EnumDescriptorProto, EnumValueDescriptorProto, FieldDescriptorProto,
    FileDescriptorProto, FileDescriptorSet, MessageOptions,
};
use serde_json::json;
use telemetry::decode::{DecodeError, Decoder, Format, Input, Limits, SchemaRegistry, TsSource};

const NOW: i64 = 1_717_243_200_000;
const READING: &str = "application/x-protobuf; messageType=acme.Reading";

fn field(
    name: &str,
    number: i32,
    ty: Type,
    label: Label,
    type_name: Option<&str>,
) -> FieldDescriptorProto {
    FieldDescriptorProto {
        name: Some(name.into()),
        number: Some(number),
        label: Some(label as i32),
        r#type: Some(ty as i32),
        type_name: type_name.map(Into::into),
        ..Default::default()
    }
}

/// `acme.proto`:
/// ```proto
/// syntax = "proto3";
/// package acme;
/// enum Mode { MODE_UNKNOWN = 0; MODE_RUN = 1; }
/// message Inner { float rms = 1; }
/// message Reading {
///   double temp = 1; int64 ts = 2; repeated float samples = 3; Inner inner = 4;
///   Mode mode = 5; map<string, double> tags = 6; string label = 7; bytes blob = 9;
/// }
/// ```
fn descriptor_set() -> Vec<u8> {
    let opt = Label::Optional;
    let tags_entry = DescriptorProto {
        name: Some("TagsEntry".into()),
        field: vec![
            field("key", 1, Type::String, opt, None),
            field("value", 2, Type::Double, opt, None),
        ],
        options: Some(MessageOptions {
            map_entry: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    let reading = DescriptorProto {
        name: Some("Reading".into()),
        field: vec![
            field("temp", 1, Type::Double, opt, None),
            field("ts", 2, Type::Int64, opt, None),
            field("samples", 3, Type::Float, Label::Repeated, None),
            field("inner", 4, Type::Message, opt, Some(".acme.Inner")),
            field("mode", 5, Type::Enum, opt, Some(".acme.Mode")),
            field(
                "tags",
                6,
                Type::Message,
                Label::Repeated,
                Some(".acme.Reading.TagsEntry"),
            ),
            field("label", 7, Type::String, opt, None),
            field("blob", 9, Type::Bytes, opt, None),
        ],
        nested_type: vec![tags_entry],
        ..Default::default()
    };
    let inner = DescriptorProto {
        name: Some("Inner".into()),
        field: vec![field("rms", 1, Type::Float, opt, None)],
        ..Default::default()
    };
    let mode = EnumDescriptorProto {
        name: Some("Mode".into()),
        value: ["MODE_UNKNOWN", "MODE_RUN"]
            .iter()
            .zip(0..)
            .map(|(name, number)| EnumValueDescriptorProto {
                name: Some((*name).into()),
                number: Some(number),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let file = FileDescriptorProto {
        name: Some("acme.proto".into()),
        package: Some("acme".into()),
        message_type: vec![inner, reading],
        enum_type: vec![mode],
        syntax: Some("proto3".into()),
        ..Default::default()
    };
    FileDescriptorSet { file: vec![file] }.encode_to_vec()
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field.
fn nested(key: u8, body: &[u8], out: &mut Vec<u8>) {
    out.push(key);
    varint(body.len() as u64, out);
    out.extend_from_slice(body);
}

/// `Reading { temp: 21.5, ts: NOW - 5000, samples: [0.5, -1.0], inner { rms: 0.25 },
/// mode: MODE_RUN, tags { "k": 2.0 }, label: "pump", blob: [1, 2] }`, by hand.
fn reading() -> Vec<u8> {
    let mut m = vec![0x09];
    m.extend_from_slice(&21.5f64.to_le_bytes());
    m.push(0x10);
    varint((NOW - 5000) as u64, &mut m);
    let samples: Vec<u8> = [0.5f32, -1.0]
        .iter()
        .flat_map(|f| f.to_le_bytes())
        .collect();
    nested(0x1a, &samples, &mut m);
    let mut inner = vec![0x0d];
    inner.extend_from_slice(&0.25f32.to_le_bytes());
    nested(0x22, &inner, &mut m);
    m.extend_from_slice(&[0x28, 0x01]);
    let mut entry = vec![0x0a, 0x01, b'k', 0x11];
    entry.extend_from_slice(&2.0f64.to_le_bytes());
    nested(0x32, &entry, &mut m);
    nested(0x3a, b"pump", &mut m);
    nested(0x4a, &[1, 2], &mut m);
    m
}

fn decoder() -> Decoder {
    let mut registry = SchemaRegistry::new();
    let added = registry.register_descriptor_set(&descriptor_set());
    assert_eq!(
        added.map(|mut v| {
            v.sort();
            v
        }),
        Ok(vec![
            "acme.Inner".to_owned(),
            "acme.Reading".to_owned(),
            "acme.Reading.TagsEntry".to_owned()
        ])
    );
    registry.set_device("registered", Format::Protobuf(Some("acme.Reading".into())));
    Decoder::new(Limits::default(), registry)
}

fn input<'a>(device: &'a str, ct: Option<&'a str>, payload: &'a [u8]) -> Input<'a> {
    Input {
        device_id: device,
        group: None,
        properties: &[],
        content_type: ct,
        payload,
        received_ms: NOW,
    }
}

#[test]
fn runtime_schema_decodes_a_hand_encoded_message() -> Result<(), DecodeError> {
    let d = decoder();
    let payload = reading();
    let m = d.decode(&input("d1", Some(READING), &payload))?;
    let want = json!({
        "temp": 21.5, "ts": NOW - 5000, "samples": [0.5, -1.0], "inner": {"rms": 0.25},
        "mode": "MODE_RUN", "tags": {"k": 2.0}, "label": "pump", "blob": "AQI=",
    });
    assert_eq!(serde_json::Value::Object(m.body.clone()), want);
    assert_eq!((m.ts_ms, m.ts_source), (NOW - 5000, TsSource::Device));
    let mut fields = m.numeric_fields();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["inner.rms", "samples.0", "samples.1", "tags.k", "temp"]
    );

    // The device's registered schema names the type: with a bare Protobuf content type,
    // and with none at all.
    let bare = d.decode(&input("registered", Some("application/protobuf"), &payload))?;
    assert_eq!(bare.body, m.body);
    let none = d.decode(&input("registered", None, &payload))?;
    assert_eq!(none.body, m.body);

    // Implicit-presence fields appear with their defaults; an unset message does not.
    let empty = d.decode(&input("d1", Some(READING), &[]))?;
    assert_eq!(empty.body.get("temp"), Some(&json!(0.0)));
    assert_eq!(empty.body.get("mode"), Some(&json!("MODE_UNKNOWN")));
    assert!(!empty.body.contains_key("inner"));
    Ok(())
}

#[test]
fn bad_protobuf_is_refused_with_a_reason() {
    let d = decoder();
    let reason = |device: &str, ct: Option<&str>, payload: &[u8]| {
        d.decode(&input(device, ct, payload))
            .err()
            .map(|e| e.reason())
    };
    let payload = reading();
    // Truncated in the middle of the double.
    assert_eq!(
        reason("d1", Some(READING), &payload[..4]),
        Some("protobuf_malformed")
    );
    // `temp` (a double) sent as a varint.
    assert_eq!(
        reason("d1", Some(READING), &[0x08, 0x01]),
        Some("schema_mismatch")
    );
    // A NaN double is refused with its path.
    let mut nan = vec![0x09];
    nan.extend_from_slice(&f64::NAN.to_le_bytes());
    assert_eq!(
        d.decode(&input("d1", Some(READING), &nan)).err(),
        Some(DecodeError::NonFinite {
            path: "temp".into()
        })
    );
    // No type named and none registered.
    assert_eq!(
        reason("d1", Some("application/x-protobuf"), &payload),
        Some("unknown_message_type")
    );
    let other = "application/x-protobuf; messageType=acme.Missing";
    assert_eq!(
        reason("d1", Some(other), &payload),
        Some("unknown_message_type")
    );
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_against_a_registered_schema_never_panic(
        payload in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..128),
        splice in proptest::prelude::any::<bool>(),
    ) {
        let d = decoder();
        // Half the cases start from a valid message so the mutations reach deeper.
        let payload = if splice { [reading(), payload].concat() } else { payload };
        if let Ok(m) = d.decode(&input("d1", Some(READING), &payload)) {
            proptest::prop_assert!(m.numeric_fields().iter().all(|(_, v)| v.is_finite()));
        }
    }
}
