//! Which decoder reads a payload: content types, and the order in which bosun looks for
//! one.
//!
//! Order: the MQTT 5 content-type property; else the `$.ct` topic property (the hub has
//! already percent-decoded the property bag); else the device's registered schema
//! ([`SchemaRegistry`]); else a payload that parses as JSON is JSON, and anything else
//! is refused as an unknown content type.

use super::schema::SchemaRegistry;
use super::{DecodeError, Input};

/// Content type of bosun's device feature record in CBOR (`device::encode::cbor`).
pub const FEATURES_CBOR: &str = "application/vnd.bosun.features+cbor";
/// Content type of bosun's device feature record in Protobuf
/// (`device::encode::protobuf`).
pub const FEATURES_PROTOBUF: &str = "application/vnd.bosun.features+protobuf";

/// A payload format, with what it needs to be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// JSON text (UTF-8).
    Json,
    /// Generic CBOR.
    Cbor,
    /// `device::Features` in CBOR, named fields out.
    FeaturesCbor,
    /// `device::Features` in Protobuf, named fields out.
    FeaturesProtobuf,
    /// A Protobuf message of a type registered at run time; `None` means "the type the
    /// device's registered schema names".
    Protobuf(Option<String>),
}

impl Format {
    /// Parses a content type (`application/x-protobuf; messageType=pkg.Msg`, ...);
    /// `None` for one bosun does not decode. Media types and parameter names are
    /// case-insensitive, parameter values are not.
    pub fn from_content_type(content_type: &str) -> Option<Self> {
        let mut parts = content_type.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        match media.as_str() {
            FEATURES_CBOR => Some(Self::FeaturesCbor),
            FEATURES_PROTOBUF => Some(Self::FeaturesProtobuf),
            "application/json" | "text/json" => Some(Self::Json),
            "application/cbor" => Some(Self::Cbor),
            "application/x-protobuf"
            | "application/protobuf"
            | "application/x-protobuffer"
            | "application/vnd.google.protobuf" => Some(Self::Protobuf(message_param(parts))),
            m if m.ends_with("+json") => Some(Self::Json),
            m if m.ends_with("+cbor") => Some(Self::Cbor),
            _ => None,
        }
    }

    /// The canonical content type of this format, as recorded in the message.
    pub fn content_type(&self) -> String {
        match self {
            Self::Json => "application/json".into(),
            Self::Cbor => "application/cbor".into(),
            Self::FeaturesCbor => FEATURES_CBOR.into(),
            Self::FeaturesProtobuf => FEATURES_PROTOBUF.into(),
            Self::Protobuf(None) => "application/x-protobuf".into(),
            Self::Protobuf(Some(m)) => format!("application/x-protobuf; messageType={m}"),
        }
    }
}

/// The message type named by a `messageType=` or `proto=` parameter.
fn message_param<'a>(params: impl Iterator<Item = &'a str>) -> Option<String> {
    params.into_iter().find_map(|p| {
        let (name, value) = p.split_once('=')?;
        let name = name.trim().to_ascii_lowercase();
        (name == "messagetype" || name == "proto")
            .then(|| value.trim().trim_matches('"').to_owned())
            .filter(|v| !v.is_empty())
    })
}

/// Where the format came from (recorded for debugging a wrong content type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FormatSource {
    /// The MQTT 5 content-type property.
    Mqtt,
    /// The `$.ct` topic property.
    Topic,
    /// The device's (or its group's) registered schema.
    Registry,
    /// Nothing said; the payload parsed as JSON.
    Sniffed,
}

/// Picks the format of `input` in the documented order. A Protobuf content type without
/// a message type takes the one the device's registered schema names, if any.
pub(crate) fn resolve(
    input: &Input<'_>,
    registry: &SchemaRegistry,
) -> Result<(Format, FormatSource), DecodeError> {
    let registered = registry.lookup(input.device_id, input.group);
    if let Some((ct, source)) = input.declared_content_type() {
        let format = Format::from_content_type(ct)
            .ok_or_else(|| DecodeError::UnknownContentType(ct.to_owned()))?;
        let format = match (format, registered) {
            (Format::Protobuf(None), Some(Format::Protobuf(Some(m)))) => {
                Format::Protobuf(Some(m.clone()))
            }
            (format, _) => format,
        };
        return Ok((format, source));
    }
    if let Some(format) = registered {
        return Ok((format.clone(), FormatSource::Registry));
    }
    if serde_json::from_slice::<serde::de::IgnoredAny>(input.payload).is_ok() {
        return Ok((Format::Json, FormatSource::Sniffed));
    }
    Err(DecodeError::UnknownContentType(
        "none given, no schema registered, and the payload is not JSON".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let f = Format::from_content_type;
        assert_eq!(f("application/json"), Some(Format::Json));
        assert_eq!(f("Application/JSON; charset=utf-8"), Some(Format::Json));
        assert_eq!(f("application/senml+json"), Some(Format::Json));
        assert_eq!(f("application/cbor"), Some(Format::Cbor));
        assert_eq!(f(FEATURES_CBOR), Some(Format::FeaturesCbor));
        assert_eq!(f(FEATURES_PROTOBUF), Some(Format::FeaturesProtobuf));
        assert_eq!(
            f("application/x-protobuf; messageType=acme.Reading"),
            Some(Format::Protobuf(Some("acme.Reading".into())))
        );
        assert_eq!(
            f("application/protobuf; proto=\"acme.Reading\""),
            Some(Format::Protobuf(Some("acme.Reading".into())))
        );
        assert_eq!(f("application/protobuf"), Some(Format::Protobuf(None)));
        assert_eq!(f("text/plain"), None);
        assert_eq!(f(""), None);
    }
}
