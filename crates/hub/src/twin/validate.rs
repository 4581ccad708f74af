//! Limits on twin documents and the checks that enforce them before a patch is applied.
//!
//! Checks look only at the patch (names, nesting) or at the patched result (size); the
//! patched result's names and nesting are then valid too, because every member of the
//! result either was already there or came from the patch at the same path.

use serde_json::{Map, Value};

use super::error::{KeyProblem, TwinError};

/// Azure IoT Hub's limits on twins, adjustable for tests and for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest serialized size of `tags`, of desired and of reported properties, each
    /// without `$metadata`/`$version` (Azure: 32 KiB). Keeps twins cheap to store and send.
    pub max_section_bytes: usize,
    /// Deepest nesting of objects and arrays below a section's root, which is level 0
    /// (Azure: 10). Bounds recursion everywhere twins are walked.
    pub max_depth: usize,
    /// Longest property name in UTF-8 bytes.
    pub max_key_len: usize,
}

impl Default for Limits {
    /// Azure's documented values: 32 KiB per section, depth 10, 128-byte names.
    fn default() -> Self {
        Limits {
            max_section_bytes: 32 * 1024,
            max_depth: 10,
            max_key_len: 128,
        }
    }
}

/// Checks that `patch` (found at `path`) is an object whose names and nesting obey
/// `limits`, and returns its members.
pub(super) fn check_patch<'a>(
    patch: &'a Value,
    path: &str,
    limits: &Limits,
) -> Result<&'a Map<String, Value>, TwinError> {
    let Value::Object(members) = patch else {
        return Err(TwinError::NotAnObject {
            path: path.to_owned(),
        });
    };
    check_object(members, path, 0, limits)?;
    Ok(members)
}

/// Checks the names in one object at nesting `level` and everything below it.
fn check_object(
    members: &Map<String, Value>,
    path: &str,
    level: usize,
    limits: &Limits,
) -> Result<(), TwinError> {
    for (key, value) in members {
        let child = format!("{path}.{key}");
        check_key(key, limits).map_err(|problem| TwinError::InvalidKey {
            path: child.clone(),
            problem,
        })?;
        check_value(value, &child, level + 1, limits)?;
    }
    Ok(())
}

/// Checks a member value that sits at nesting `level` (if it is an object or array).
/// Names inside arrays are not checked: arrays are opaque leaf values to twins.
fn check_value(value: &Value, path: &str, level: usize, limits: &Limits) -> Result<(), TwinError> {
    let too_deep = || TwinError::TooDeep {
        path: path.to_owned(),
        max: limits.max_depth,
    };
    match value {
        Value::Object(_) | Value::Array(_) if level > limits.max_depth => Err(too_deep()),
        Value::Object(members) => check_object(members, path, level, limits),
        Value::Array(items) => check_items(items, path, level, limits),
        _ => Ok(()),
    }
}

/// Checks only the nesting of a value at `level` inside an array.
fn check_nesting(
    value: &Value,
    path: &str,
    level: usize,
    limits: &Limits,
) -> Result<(), TwinError> {
    match value {
        Value::Object(_) | Value::Array(_) if level > limits.max_depth => Err(TwinError::TooDeep {
            path: path.to_owned(),
            max: limits.max_depth,
        }),
        Value::Object(members) => members.iter().try_for_each(|(key, item)| {
            check_nesting(item, &format!("{path}.{key}"), level + 1, limits)
        }),
        Value::Array(items) => check_items(items, path, level, limits),
        _ => Ok(()),
    }
}

/// Checks the nesting of the items of an array at `level`.
fn check_items(
    items: &[Value],
    path: &str,
    level: usize,
    limits: &Limits,
) -> Result<(), TwinError> {
    items
        .iter()
        .enumerate()
        .try_for_each(|(i, item)| check_nesting(item, &format!("{path}[{i}]"), level + 1, limits))
}

/// Checks one property name against Azure's rules.
fn check_key(key: &str, limits: &Limits) -> Result<(), KeyProblem> {
    if key.is_empty() {
        return Err(KeyProblem::Empty);
    }
    if key.len() > limits.max_key_len {
        return Err(KeyProblem::TooLong {
            len: key.len(),
            max: limits.max_key_len,
        });
    }
    match key
        .chars()
        .find(|c| matches!(c, '.' | ' ' | '$') || c.is_control())
    {
        Some(c) if c.is_control() => Err(KeyProblem::Control(u32::from(c))),
        Some(c) => Err(KeyProblem::Forbidden(c)),
        None => Ok(()),
    }
}

/// Checks the serialized size of a patched section.
pub(super) fn check_size(
    section: &'static str,
    members: &Map<String, Value>,
    limits: &Limits,
) -> Result<(), TwinError> {
    let size = serialized_len(members);
    if size > limits.max_section_bytes {
        return Err(TwinError::SectionTooLarge {
            section,
            size,
            max: limits.max_section_bytes,
        });
    }
    Ok(())
}

/// Size of the compact JSON text of `members`, without building the text.
fn serialized_len(members: &Map<String, Value>) -> usize {
    let mut counter = ByteCounter(0);
    match serde_json::to_writer(&mut counter, members) {
        Ok(()) => counter.0,
        // Cannot happen for a map with string keys; count it as too large to be safe.
        Err(_) => usize::MAX,
    }
}

/// A writer that only counts bytes.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(patch: Value) -> Result<(), String> {
        check_patch(&patch, "properties.desired", &Limits::default())
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn accepts_ordinary_patch() {
        assert_eq!(
            check(json!({"a": {"b": [1, {"x.y": 2}], "c": null}})),
            Ok(())
        );
    }

    #[test]
    fn names_the_path_of_a_bad_key() {
        assert_eq!(
            check(json!({"a": {"b.c": 1}})),
            Err("properties.desired.a.b.c: key contains '.'".into())
        );
        assert_eq!(
            check(json!({"$version": 1})),
            Err("properties.desired.$version: key contains '$'".into())
        );
        assert_eq!(
            check(json!({"a b": 1})),
            Err("properties.desired.a b: key contains ' '".into())
        );
        assert_eq!(
            check(json!({"": 1})),
            Err("properties.desired.: key is empty".into())
        );
        assert_eq!(
            check(json!({"a\u{1}": 1})),
            Err("properties.desired.a\u{1}: key contains control character U+0001".into())
        );
    }

    #[test]
    fn rejects_long_keys() {
        let key = "k".repeat(129);
        assert!(check(json!({ key: 1 })).is_err());
        assert_eq!(check(json!({ "k".repeat(128): 1 })), Ok(()));
    }

    #[test]
    fn rejects_non_objects() {
        assert_eq!(
            check(json!([1])),
            Err("properties.desired: must be a JSON object".into())
        );
        assert_eq!(
            check(json!(null)),
            Err("properties.desired: must be a JSON object".into())
        );
    }

    /// Azure's documented example: ten nested objects, a leaf inside the tenth.
    fn nested(levels: usize, leaf: Value) -> Value {
        (0..levels).fold(
            leaf,
            |inner, i| json!({ format!("l{}", levels - i): inner }),
        )
    }

    #[test]
    fn depth_ten_is_allowed_eleven_is_not() {
        assert_eq!(check(nested(10, json!({"property": "value"}))), Ok(()));
        assert_eq!(
            check(nested(10, json!({"property": []}))).map_err(|e| e.contains("deeper")),
            Err(true)
        );
        assert_eq!(check(nested(11, json!(1))), Ok(()));
        assert!(check(nested(11, json!({}))).is_err());
    }

    #[test]
    fn arrays_count_as_levels() {
        let deep = (0..12).fold(json!(1), |inner, _| json!([inner]));
        assert_eq!(
            check(json!({ "a": deep })).map_err(|e| e.starts_with("properties.desired.a[0]")),
            Err(true)
        );
    }

    #[test]
    fn size_is_measured_compact() {
        let limits = Limits {
            max_section_bytes: 7,
            ..Limits::default()
        };
        let small = json!({"a": 1});
        let Value::Object(map) = small else { return };
        assert!(check_size("tags", &map, &limits).is_ok());
        let limits = Limits {
            max_section_bytes: 6,
            ..limits
        };
        let err = check_size("tags", &map, &limits).map_err(|e| e.to_string());
        assert_eq!(err, Err("tags: 7 bytes after the patch (max 6)".into()));
    }
}
