//! Why a payload could not become a [`Message`](super::Message).
//!
//! Bad input is a normal event on an IoT hub (firmware bugs, wrong content types,
//! truncated radio frames), so every failure is a value with two faces: a stable
//! machine-readable [`DecodeError::reason`] for counters and dead letters, and a human
//! message (the `Display`) that says where the payload went wrong.

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The payload is larger than [`Limits::max_payload_bytes`](super::Limits).
    #[error("payload is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// Payload size.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// No content type says how to read the payload and it is not JSON, or the content
    /// type names a format bosun does not decode.
    #[error("unknown content type: {0}")]
    UnknownContentType(String),
    /// `$.ce` names an encoding other than UTF-8 for a JSON payload.
    #[error("unsupported content encoding {0:?} (JSON must be utf-8)")]
    UnsupportedEncoding(String),
    /// A JSON payload is not UTF-8.
    #[error("payload is not UTF-8 (invalid byte at offset {position})")]
    InvalidUtf8 {
        /// Offset of the first byte that is not part of valid UTF-8.
        position: usize,
    },
    /// A JSON payload does not parse.
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    InvalidJson {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// A CBOR payload is not well-formed (RFC 8949 §5.3.1) or uses something bosun does
    /// not map to JSON (a map key that is neither text nor an integer, an unassigned
    /// simple value).
    #[error("malformed CBOR at byte {position}: {message}")]
    CborMalformed {
        /// Offset where decoding gave up.
        position: usize,
        /// What was wrong.
        message: &'static str,
    },
    /// A CBOR payload ends in the middle of a value.
    #[error("CBOR payload ends in the middle of a value")]
    CborTruncated,
    /// A Protobuf payload is not a well-formed message.
    #[error("malformed Protobuf: {0}")]
    ProtobufMalformed(String),
    /// The Protobuf message type is not registered, or none was named.
    #[error("unknown Protobuf message type {0:?}")]
    UnknownMessageType(String),
    /// The payload is well-formed but does not fit the schema it was read with (a known
    /// field with the wrong wire type, too many values for a fixed-size field, ...).
    #[error("payload does not match its schema: {0}")]
    SchemaMismatch(String),
    /// A number is NaN or infinite. JSON cannot carry them, and a rule or a time series
    /// fed one would compute garbage, so the whole message is refused.
    #[error("field {path:?} is not a finite number")]
    NonFinite {
        /// Dotted path of the field (`x.envelope.bpfi.0`).
        path: String,
    },
    /// Objects and arrays nest deeper than [`Limits::max_depth`](super::Limits).
    #[error("nesting deeper than {limit} at {path:?}")]
    TooDeep {
        /// Dotted path where the limit was crossed.
        path: String,
        /// The limit in force.
        limit: usize,
    },
    /// An array has more items than [`Limits::max_array_len`](super::Limits).
    #[error("array at {path:?} has more than {limit} items")]
    ArrayTooLong {
        /// Dotted path of the array.
        path: String,
        /// The limit in force.
        limit: usize,
    },
    /// An object has more members than [`Limits::max_object_len`](super::Limits).
    #[error("object at {path:?} has more than {limit} members")]
    ObjectTooLarge {
        /// Dotted path of the object.
        path: String,
        /// The limit in force.
        limit: usize,
    },
}

impl DecodeError {
    /// Stable snake_case name of the failure, for counters and dead letters.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::UnknownContentType(_) => "unknown_content_type",
            Self::UnsupportedEncoding(_) => "unsupported_encoding",
            Self::InvalidUtf8 { .. } => "invalid_utf8",
            Self::InvalidJson { .. } => "invalid_json",
            Self::CborMalformed { .. } => "cbor_malformed",
            Self::CborTruncated => "cbor_truncated",
            Self::ProtobufMalformed(_) => "protobuf_malformed",
            Self::UnknownMessageType(_) => "unknown_message_type",
            Self::SchemaMismatch(_) => "schema_mismatch",
            Self::NonFinite { .. } => "non_finite",
            Self::TooDeep { .. } => "too_deep",
            Self::ArrayTooLong { .. } => "array_too_long",
            Self::ObjectTooLarge { .. } => "object_too_large",
        }
    }

    /// Prefixes the path of a path-carrying error with `segment`, as the error travels
    /// up out of a nested value; other errors pass unchanged. Building the path only on
    /// the way out keeps the success path free of string work.
    pub(crate) fn within(mut self, segment: &str) -> Self {
        if let Self::NonFinite { path }
        | Self::TooDeep { path, .. }
        | Self::ArrayTooLong { path, .. }
        | Self::ObjectTooLarge { path, .. } = &mut self
        {
            *path = if path.is_empty() {
                segment.to_owned()
            } else {
                format!("{segment}.{path}")
            };
        }
        self
    }

    /// A [`DecodeError::NonFinite`] at the current value (its path is filled in by
    /// [`DecodeError::within`] on the way out).
    pub(crate) fn non_finite() -> Self {
        Self::NonFinite {
            path: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_built_outwards() {
        let e = DecodeError::non_finite()
            .within("0")
            .within("bpfi")
            .within("x");
        assert_eq!(
            e,
            DecodeError::NonFinite {
                path: "x.bpfi.0".into()
            }
        );
        assert_eq!(e.reason(), "non_finite");
        let e = DecodeError::CborTruncated.within("x");
        assert_eq!(e, DecodeError::CborTruncated);
    }
}
