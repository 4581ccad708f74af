//! The documents rules evaluate over, one shape per source.
//!
//! `telemetry` (one device message):
//!
//! ```text
//! { <body fields…>, "deviceId": "pump-7", "tags": {twin tags},
//!   "properties": {application properties, strings},
//!   "$system": {"deviceId", "contentType", "receivedTime", "timestamp", …} }
//! ```
//!
//! Body fields sit at the top level so `WHERE rms_x > 0.8` reads naturally. The reserved
//! names ([`RESERVED_FIELDS`]) win over body fields of the same name: a body field called
//! `tags` is dropped rather than allowed to impersonate the twin's tags in a condition.
//!
//! `anomalies` (one anomaly assessment, see [`anomaly_document`]):
//!
//! ```text
//! { "deviceId", "score", "state", "transition", "top": [{"feature", "z"}], "tags" }
//! ```

use serde_json::{Map, Value};

/// The member holding system properties.
pub const SYSTEM_FIELD: &str = "$system";

/// Top-level names the pipeline fills; body fields with these names are dropped.
pub const RESERVED_FIELDS: [&str; 4] = ["deviceId", "tags", "properties", SYSTEM_FIELD];

/// Builds the `telemetry` document of one message. `system` gets `deviceId` if it lacks
/// one; `tags` is `{}` for a device without tags.
pub fn document(
    device_id: &str,
    body: Map<String, Value>,
    tags: Map<String, Value>,
    properties: impl IntoIterator<Item = (String, String)>,
    mut system: Map<String, Value>,
) -> Map<String, Value> {
    let mut doc = body;
    system
        .entry("deviceId")
        .or_insert_with(|| Value::from(device_id));
    let properties = properties
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    doc.insert("deviceId".into(), Value::from(device_id));
    doc.insert("tags".into(), Value::Object(tags));
    doc.insert("properties".into(), Value::Object(properties));
    doc.insert(SYSTEM_FIELD.into(), Value::Object(system));
    doc
}

/// The body part of a document: everything but the reserved names. `SELECT *` projects
/// this, so a rule storing "everything" stores the measurements, not the twin's tags.
pub(super) fn body_of(doc: &Map<String, Value>) -> Map<String, Value> {
    doc.iter()
        .filter(|(k, _)| !RESERVED_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// One anomaly assessment, as the analytics side reports it.
#[derive(Debug, Clone, Copy)]
pub struct AnomalyInput<'a> {
    /// Anomaly score (non-finite scores become `null`).
    pub score: f64,
    /// The detector's state after this assessment, e.g. `normal` or `anomalous`.
    pub state: &'a str,
    /// What changed, e.g. `entered`, `left`, or `none`; the default rule fires on
    /// `entered`.
    pub transition: &'a str,
    /// The features that contributed most, with their z-scores, strongest first.
    pub top: &'a [(String, f64)],
}

/// Builds the `anomalies` document of one assessment.
pub fn anomaly_document(
    device_id: &str,
    anomaly: &AnomalyInput<'_>,
    tags: Map<String, Value>,
) -> Map<String, Value> {
    let top = anomaly
        .top
        .iter()
        .map(|(feature, z)| {
            let mut item = Map::new();
            item.insert("feature".into(), Value::from(feature.as_str()));
            item.insert("z".into(), Value::from(*z));
            Value::Object(item)
        })
        .collect();
    let mut doc = Map::new();
    doc.insert("deviceId".into(), Value::from(device_id));
    doc.insert("score".into(), Value::from(anomaly.score));
    doc.insert("state".into(), Value::from(anomaly.state));
    doc.insert("transition".into(), Value::from(anomaly.transition));
    doc.insert("top".into(), Value::Array(top));
    doc.insert("tags".into(), Value::Object(tags));
    doc
}
