//! Protobuf messages of types registered at run time → JSON values.
//!
//! `prost-reflect` decodes the bytes against the message descriptor (unknown fields are
//! skipped, as any proto3 reader does); this module maps the result. Fields are named by
//! their `.proto` names (`shaft_1x`, not the camel-case JSON name) so that a Protobuf
//! and a JSON device of the same model produce the same body. Fields without presence
//! appear with their default value, fields with presence (`optional`, `oneof`, message
//! fields) only when set. Enums become their value names (the number when unknown),
//! bytes become base64, 64-bit integers stay exact, map keys become strings.

use prost_reflect::{DynamicMessage, Kind, MapKey, MessageDescriptor, ReflectMessage, Value as Pv};
use serde_json::{Map, Value};

use super::deadletter::base64;
use super::limits::Limits;
use super::number::{finite, finite_f32};
use super::DecodeError;

/// Decodes `bytes` as one `desc` message and maps it to a JSON object.
pub(crate) fn decode(
    bytes: &[u8],
    desc: &MessageDescriptor,
    limits: &Limits,
) -> Result<Map<String, Value>, DecodeError> {
    let message = DynamicMessage::decode(desc.clone(), bytes).map_err(|e| {
        let text = e.to_string();
        if text.contains("wire type") {
            DecodeError::SchemaMismatch(format!("{}: {text}", desc.full_name()))
        } else {
            DecodeError::ProtobufMalformed(text)
        }
    })?;
    message_to_map(&message, limits, 1)
}

fn message_to_map(
    message: &DynamicMessage,
    limits: &Limits,
    depth: usize,
) -> Result<Map<String, Value>, DecodeError> {
    limits.enter(depth)?;
    let desc = message.descriptor();
    let mut map = Map::new();
    for field in desc.fields() {
        if field.supports_presence() && !message.has_field(&field) {
            continue;
        }
        if map.len() >= limits.max_object_len {
            return Err(limits.object_too_large());
        }
        let value = message.get_field(&field);
        let json = value_to_json(&value, &field.kind(), limits, depth + 1)
            .map_err(|e| e.within(field.name()))?;
        map.insert(field.name().to_owned(), json);
    }
    Ok(map)
}

fn value_to_json(
    value: &Pv,
    kind: &Kind,
    limits: &Limits,
    depth: usize,
) -> Result<Value, DecodeError> {
    Ok(match value {
        Pv::Bool(b) => Value::Bool(*b),
        Pv::I32(v) => Value::from(*v),
        Pv::I64(v) => Value::from(*v),
        Pv::U32(v) => Value::from(*v),
        Pv::U64(v) => Value::from(*v),
        Pv::F32(v) => finite_f32(*v)?,
        Pv::F64(v) => finite(*v)?,
        Pv::String(s) => Value::String(s.clone()),
        Pv::Bytes(b) => Value::String(base64::encode(b)),
        Pv::EnumNumber(n) => match kind {
            Kind::Enum(e) => e
                .get_value(*n)
                .map(|v| Value::String(v.name().to_owned()))
                .unwrap_or_else(|| Value::from(*n)),
            _ => Value::from(*n),
        },
        Pv::Message(m) => Value::Object(message_to_map(m, limits, depth)?),
        Pv::List(items) => {
            limits.enter(depth)?;
            limits.array_len(items.len())?;
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(
                    value_to_json(item, kind, limits, depth + 1)
                        .map_err(|e| e.within(&i.to_string()))?,
                );
            }
            Value::Array(out)
        }
        Pv::Map(entries) => {
            limits.enter(depth)?;
            limits.object_len(entries.len())?;
            let value_kind = match kind {
                // Field 2 of a map entry is its value; a pool built by prost-reflect
                // has checked that map fields have entries of that shape.
                Kind::Message(entry) => entry
                    .get_field(2)
                    .map(|f| f.kind())
                    .unwrap_or_else(|| kind.clone()),
                other => other.clone(),
            };
            let mut keys: Vec<_> = entries.iter().collect();
            keys.sort_by(|a, b| a.0.cmp(b.0));
            let mut out = Map::new();
            for (key, item) in keys {
                let key = map_key(key);
                let json = value_to_json(item, &value_kind, limits, depth + 1)
                    .map_err(|e| e.within(&key))?;
                out.insert(key, json);
            }
            Value::Object(out)
        }
    })
}

fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(v) => v.to_string(),
        MapKey::I64(v) => v.to_string(),
        MapKey::U32(v) => v.to_string(),
        MapKey::U64(v) => v.to_string(),
        MapKey::String(s) => s.clone(),
    }
}
