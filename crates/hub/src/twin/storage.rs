//! The twin's storage format: one JSON object per twin, tagged with a format number so a
//! later layout can still read older rows.
//!
//! ```json
//! {"format":1,"deviceId":"d1","tags":{},
//!  "desired":{"properties":{},"metadata":{},"version":1},
//!  "reported":{"properties":{},"metadata":{},"version":1}}
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::TwinError;
use super::section::Section;
use super::Twin;

/// The only format written so far.
const FORMAT: u32 = 1;

/// A twin as written.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StoredRef<'a> {
    format: u32,
    device_id: &'a str,
    tags: &'a Value,
    desired: &'a Section,
    reported: &'a Section,
}

/// A twin as read; typed maps make serde reject non-object sections.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    format: u32,
    device_id: String,
    tags: Map<String, Value>,
    desired: Section,
    reported: Section,
}

impl Twin {
    /// Reads a twin written by [`Twin::to_json`].
    pub fn from_json(s: &str) -> Result<Twin, TwinError> {
        let stored: Stored = serde_json::from_str(s)?;
        if stored.format != FORMAT {
            return Err(TwinError::UnknownFormat(stored.format));
        }
        if stored.device_id.is_empty() {
            return Err(TwinError::EmptyDeviceId);
        }
        Ok(Twin {
            device_id: stored.device_id,
            tags: Value::Object(stored.tags),
            desired: stored.desired,
            reported: stored.reported,
        })
    }

    /// Writes the twin for storage (compact JSON).
    pub fn to_json(&self) -> String {
        let stored = StoredRef {
            format: FORMAT,
            device_id: &self.device_id,
            tags: &self.tags,
            desired: &self.desired,
            reported: &self.reported,
        };
        // Serializing string-keyed maps and plain values cannot fail.
        serde_json::to_string(&stored).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::twin::Limits;
    use serde_json::json;

    #[test]
    fn roundtrips() -> Result<(), TwinError> {
        let limits = Limits::default();
        let mut twin = Twin::new(
            "d1",
            Some(&json!({"site": "x"})),
            Some(&json!({"a": 1})),
            5,
            &limits,
        )?;
        twin.patch_reported(&json!({"b": {"c": true}}), 6, &limits)?;
        assert_eq!(Twin::from_json(&twin.to_json())?, twin);
        Ok(())
    }

    #[test]
    fn rejects_bad_text() {
        assert!(matches!(Twin::from_json("{"), Err(TwinError::Storage(_))));
        let wrong_tags = r#"{"format":1,"deviceId":"d","tags":[],
            "desired":{"properties":{},"metadata":{},"version":1},
            "reported":{"properties":{},"metadata":{},"version":1}}"#;
        assert!(matches!(
            Twin::from_json(wrong_tags),
            Err(TwinError::Storage(_))
        ));
        let future = wrong_tags
            .replace("\"format\":1", "\"format\":2")
            .replace("[]", "{}");
        assert!(matches!(
            Twin::from_json(&future),
            Err(TwinError::UnknownFormat(2))
        ));
    }
}
