//! Bounds on what one payload may cost, and the checks that enforce them on a JSON value.
//!
//! A device is untrusted input: without bounds, one 256 KiB payload of `[[[[…` or a CBOR
//! header claiming a billion items could take the pipeline's stack or memory. The
//! defaults are generous for telemetry (a three-axis feature record is depth 4 and about
//! 100 numbers) and every one can be changed by configuration.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::DecodeError;

/// Bounds applied while decoding and normalizing one message. Deserializes from a
/// configuration table in which every key is optional (missing ones keep the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest payload accepted, in bytes.
    pub max_payload_bytes: usize,
    /// Deepest nesting of objects and arrays (the body object itself is depth 1).
    pub max_depth: usize,
    /// Most items in one array.
    pub max_array_len: usize,
    /// Most members in one object.
    pub max_object_len: usize,
    /// Most fields [`Message::numeric_fields`](super::Message::numeric_fields) returns.
    pub max_numeric_fields: usize,
    /// How far in the future (ms past the hub's receive time) a device timestamp may be
    /// and still be believed: clocks drift, but not by hours.
    pub max_future_ms: i64,
    /// How old (ms before the hub's receive time) a device timestamp may be and still be
    /// believed: a device replaying a day of buffered data is normal, one stamping 1970
    /// has lost its clock.
    pub max_age_ms: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_payload_bytes: 256 * 1024,
            max_depth: 32,
            max_array_len: 4096,
            max_object_len: 1024,
            max_numeric_fields: 1024,
            max_future_ms: 5 * 60 * 1000,
            max_age_ms: 30 * 24 * 3600 * 1000,
        }
    }
}

impl Limits {
    /// Checks depth and sizes of a value that was parsed without them (JSON); `depth` is
    /// the nesting level of `value` itself (1 for the top).
    pub(crate) fn check(&self, value: &Value, depth: usize) -> Result<(), DecodeError> {
        match value {
            Value::Array(items) => {
                self.enter(depth)?;
                self.array_len(items.len())?;
                for (i, item) in items.iter().enumerate() {
                    self.check(item, depth + 1)
                        .map_err(|e| e.within(&i.to_string()))?;
                }
                Ok(())
            }
            Value::Object(map) => {
                self.enter(depth)?;
                self.object_len(map.len())?;
                for (key, item) in map {
                    self.check(item, depth + 1).map_err(|e| e.within(key))?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Refuses a container at nesting level `depth` if that is past the limit.
    pub(crate) fn enter(&self, depth: usize) -> Result<(), DecodeError> {
        if depth > self.max_depth {
            return Err(DecodeError::TooDeep {
                path: String::new(),
                limit: self.max_depth,
            });
        }
        Ok(())
    }

    /// Refuses an array of `len` items if that is past the limit.
    pub(crate) fn array_len(&self, len: usize) -> Result<(), DecodeError> {
        if len > self.max_array_len {
            return Err(self.array_too_long());
        }
        Ok(())
    }

    /// The error for an array past [`Limits::max_array_len`] (path filled in later).
    pub(crate) fn array_too_long(&self) -> DecodeError {
        DecodeError::ArrayTooLong {
            path: String::new(),
            limit: self.max_array_len,
        }
    }

    /// The error for an object past [`Limits::max_object_len`] (path filled in later).
    pub(crate) fn object_too_large(&self) -> DecodeError {
        DecodeError::ObjectTooLarge {
            path: String::new(),
            limit: self.max_object_len,
        }
    }

    /// Refuses an object of `len` members if that is past the limit.
    pub(crate) fn object_len(&self, len: usize) -> Result<(), DecodeError> {
        if len > self.max_object_len {
            return Err(self.object_too_large());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn partial_configuration_keeps_defaults() {
        let limits: Result<Limits, _> = serde_json::from_value(json!({"max_depth": 8}));
        assert_eq!(
            limits.ok(),
            Some(Limits {
                max_depth: 8,
                ..Limits::default()
            })
        );
        assert!(serde_json::from_value::<Limits>(json!({"max_dept": 8})).is_err());
    }

    #[test]
    fn limits_name_the_path() {
        let limits = Limits {
            max_depth: 3,
            max_array_len: 2,
            max_object_len: 2,
            ..Limits::default()
        };
        assert!(limits.check(&json!({"a": {"b": [1]}}), 1).is_ok());
        let deep = limits.check(&json!({"a": {"b": [[1]]}}), 1);
        assert_eq!(
            deep,
            Err(DecodeError::TooDeep {
                path: "a.b.0".into(),
                limit: 3
            })
        );
        let long = limits.check(&json!({"a": [1, 2, 3]}), 1);
        assert_eq!(long.map_err(|e| e.reason()), Err("array_too_long"));
        let wide = limits.check(&json!({"a": 1, "b": 2, "c": 3}), 1);
        assert_eq!(wide.map_err(|e| e.reason()), Err("object_too_large"));
    }
}
