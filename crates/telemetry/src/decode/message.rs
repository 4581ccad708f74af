//! The normalized message every payload format decodes to, and its flattened numbers.

use serde::Serialize;
use serde_json::{Map, Value};

use super::timestamp::{TimestampIssue, TsSource};
use super::{FormatSource, Limits};

/// Top-level body keys that describe a record rather than measure anything; left out of
/// [`Message::numeric_fields`].
pub const METADATA_KEYS: [&str; 3] = ["seq", "sample_rate_hz", "window_len"];

/// One decoded device message, whatever its wire format. Serializes to JSON for routes
/// and the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// The device that sent it.
    pub device_id: String,
    /// The message's time (ms since the Unix epoch): the device's if sane, else the
    /// hub's receive time.
    pub ts_ms: i64,
    /// Whose clock `ts_ms` is.
    pub ts_source: TsSource,
    /// Set when the device gave a timestamp that was not used, and why.
    pub ts_issue: Option<TimestampIssue>,
    /// The body field the device's timestamp was read from, if any (excluded from
    /// [`Message::numeric_fields`]).
    pub ts_field: Option<&'static str>,
    /// The payload as a JSON object. A payload whose top level is not an object (a bare
    /// number, an array) is wrapped as `{"value": …}`.
    pub body: Map<String, Value>,
    /// The topic's application properties (those not starting with `$.` or `iothub-`),
    /// in order.
    pub app_properties: Vec<(String, String)>,
    /// Hub and protocol metadata.
    pub system: SystemProperties,
}

/// What the hub knows about a message besides its body.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SystemProperties {
    /// The content type the payload was decoded as (canonical form).
    pub content_type: String,
    /// Where that content type came from.
    pub content_type_source: Option<FormatSource>,
    /// `$.ce`, if given.
    pub content_encoding: Option<String>,
    /// When the hub received it (ms since the Unix epoch).
    pub received_ms: i64,
    /// `$.mid`: the device's message id, if given.
    pub message_id: Option<String>,
    /// `$.cid`: correlation id, if given.
    pub correlation_id: Option<String>,
    /// `$.uid`: user id, if given.
    pub user_id: Option<String>,
    /// Other system properties (`$.…`, `iothub-…`) as given, in order.
    pub other: Vec<(String, String)>,
    /// Payload size in bytes.
    pub payload_bytes: usize,
}

impl SystemProperties {
    /// Splits topic properties into system ones (into `self`) and application ones
    /// (returned). `$.ct` and `$.ce` are taken as content type and encoding elsewhere.
    pub(crate) fn split(&mut self, properties: &[(String, String)]) -> Vec<(String, String)> {
        let mut app = Vec::new();
        for (k, v) in properties {
            match k.as_str() {
                "$.ct" => {}
                "$.ce" => self.content_encoding = Some(v.clone()),
                "$.mid" => self.message_id = Some(v.clone()),
                "$.cid" => self.correlation_id = Some(v.clone()),
                "$.uid" => self.user_id = Some(v.clone()),
                _ if k.starts_with("$.") || k.starts_with("iothub-") => {
                    self.other.push((k.clone(), v.clone()));
                }
                _ => app.push((k.clone(), v.clone())),
            }
        }
        app
    }
}

impl Message {
    /// The body's numbers as flat `(path, value)` pairs, e.g. `("x.envelope.bpfi.0",
    /// 0.01)`: objects joined with `.`, array items by index, booleans as 0/1, strings
    /// and nulls skipped, the [`METADATA_KEYS`] and the timestamp field left out. At most
    /// [`Limits::max_numeric_fields`] (default) fields, in the body map's order.
    pub fn numeric_fields(&self) -> Vec<(String, f64)> {
        let limits = Limits::default();
        self.numeric_fields_limited(limits.max_numeric_fields, limits.max_depth)
    }

    /// [`Message::numeric_fields`] with explicit bounds: at most `max_fields` fields and
    /// nothing nested deeper than `max_depth` (the body's members are depth 1).
    pub fn numeric_fields_limited(
        &self,
        max_fields: usize,
        max_depth: usize,
    ) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        let mut path = String::new();
        for (key, value) in &self.body {
            if METADATA_KEYS.contains(&key.as_str()) || self.ts_field == Some(key.as_str()) {
                continue;
            }
            flatten(value, key, &mut path, 1, max_depth, max_fields, &mut out);
        }
        out
    }

    /// The body value at a dotted path (`x.rms`, `x.envelope.bpfi.0`), if present.
    pub fn get(&self, path: &str) -> Option<&Value> {
        let mut parts = path.split('.');
        let mut value = self.body.get(parts.next()?)?;
        for part in parts {
            value = match value {
                Value::Object(map) => map.get(part)?,
                Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(value)
    }
}

/// Appends the numbers under `value` (reached by `segment` from `path`) to `out`.
fn flatten(
    value: &Value,
    segment: &str,
    path: &mut String,
    depth: usize,
    max_depth: usize,
    max_fields: usize,
    out: &mut Vec<(String, f64)>,
) {
    if out.len() >= max_fields || depth > max_depth {
        return;
    }
    let len = path.len();
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(segment);
    match value {
        Value::Number(n) => {
            if let Some(f) = n.as_f64() {
                out.push((path.clone(), f));
            }
        }
        Value::Bool(b) => out.push((path.clone(), if *b { 1.0 } else { 0.0 })),
        Value::Object(map) => {
            for (k, v) in map {
                flatten(v, k, path, depth + 1, max_depth, max_fields, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(
                    v,
                    &i.to_string(),
                    path,
                    depth + 1,
                    max_depth,
                    max_fields,
                    out,
                );
            }
        }
        Value::Null | Value::String(_) => {}
    }
    path.truncate(len);
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn message(body: Value) -> Message {
        Message {
            device_id: "d1".into(),
            ts_ms: 0,
            ts_source: TsSource::Hub,
            ts_issue: None,
            ts_field: Some("ts"),
            body: body.as_object().cloned().unwrap_or_default(),
            app_properties: Vec::new(),
            system: SystemProperties::default(),
        }
    }

    #[test]
    fn flattening() {
        let m = message(json!({
            "seq": 7, "ts": 123, "window_len": 4096, "sample_rate_hz": 12000.0,
            "shaft_hz": 29.5,
            "x": {"rms": 0.2, "envelope": {"bpfi": [0.1, 0.2, 0.3]}},
            "ok": true, "name": "pump", "gone": null,
        }));
        let mut fields = m.numeric_fields();
        // The order is the body map's (sorted keys, or insertion order with
        // serde_json's `preserve_order`); compare sorted.
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        let want = [
            ("ok", 1.0),
            ("shaft_hz", 29.5),
            ("x.envelope.bpfi.0", 0.1),
            ("x.envelope.bpfi.1", 0.2),
            ("x.envelope.bpfi.2", 0.3),
            ("x.rms", 0.2),
        ]
        .map(|(n, v)| (n.to_owned(), v));
        assert_eq!(fields, want);
        assert_eq!(m.numeric_fields_limited(2, 32).len(), 2);
        let mut shallow = m.numeric_fields_limited(100, 1);
        shallow.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            shallow,
            [("ok".to_owned(), 1.0), ("shaft_hz".to_owned(), 29.5)]
        );
        assert_eq!(m.get("x.envelope.bpfi.1"), Some(&json!(0.2)));
        assert_eq!(m.get("x.envelope.bpfi.9"), None);
        assert_eq!(m.get("name.x"), None);
    }

    #[test]
    fn property_split() {
        let props: Vec<(String, String)> = [
            ("$.ct", "application/json"),
            ("$.ce", "utf-8"),
            ("$.mid", "m1"),
            ("alarm", "1"),
            ("iothub-creation-time-utc", "2024-06-01T12:00:00Z"),
            ("$.to", "/devices/d1/messages/events"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let mut sys = SystemProperties::default();
        let app = sys.split(&props);
        assert_eq!(app, vec![("alarm".to_owned(), "1".to_owned())]);
        assert_eq!(sys.message_id.as_deref(), Some("m1"));
        assert_eq!(sys.content_encoding.as_deref(), Some("utf-8"));
        assert_eq!(sys.other.len(), 2);
    }
}
