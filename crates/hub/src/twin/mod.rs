//! Device twins with Azure IoT Hub's semantics: tags (service only), desired properties
//! (service writes, device reads), reported properties (device writes, service reads),
//! each with a `$version` and, for properties, a `$metadata` tree.
//!
//! Pure logic: time comes in as milliseconds, storage is a JSON string the caller keeps,
//! and every change is a validated merge patch that either applies entirely or not at all.
//!
//! Layout:
//! - `error`: [`TwinError`], [`KeyProblem`].
//! - `validate`: [`Limits`] and the name/depth/size checks.
//! - `merge`: [`merge_patch`] (RFC 7386) and [`diff`].
//! - `metadata`: the `$metadata` tree.
//! - `section`: one versioned property section (prepare, then commit).
//! - `storage`: [`Twin::to_json`] / [`Twin::from_json`].
//! - `view`: the documents devices and the service API see.
//! - `time`: [`rfc3339`].

mod error;
mod merge;
mod metadata;
mod section;
mod storage;
mod time;
mod validate;
mod view;

use serde_json::{Map, Value};

pub use error::{KeyProblem, TwinError};
pub use merge::{diff, merge_patch};
pub use time::rfc3339;
pub use validate::Limits;

use section::{prepare_object, Kind, Section};

/// The path of the tags section in error messages and views.
const TAGS: &str = "tags";

/// One device's twin. Invariants: `tags` is an object; property names obey the naming
/// rules; every section is within its [`Limits`] as of its last change.
#[derive(Debug, Clone, PartialEq)]
pub struct Twin {
    /// The device this twin belongs to.
    device_id: String,
    /// Service-only labels (always an object); not versioned, no metadata.
    tags: Value,
    /// Desired properties.
    desired: Section,
    /// Reported properties.
    reported: Section,
}

impl Twin {
    /// Creates a device's twin with optional initial tags and desired properties (each a
    /// JSON object obeying `limits`). Both property sections start at `$version` 1.
    pub fn new(
        device_id: &str,
        tags: Option<&Value>,
        desired: Option<&Value>,
        now_ms: i64,
        limits: &Limits,
    ) -> Result<Twin, TwinError> {
        if device_id.is_empty() {
            return Err(TwinError::EmptyDeviceId);
        }
        let empty = Value::Object(Map::new());
        let tags = prepare_object(&Map::new(), tags.unwrap_or(&empty), TAGS, limits)?;
        let (mut desired_section, mut reported) = (Section::default(), Section::default());
        let desired = desired_section.prepare(desired.unwrap_or(&empty), Kind::Desired, limits)?;
        let no_change = reported.prepare(&empty, Kind::Reported, limits)?;
        desired_section.commit(desired, Kind::Desired, now_ms);
        reported.commit(no_change, Kind::Reported, now_ms);
        Ok(Twin {
            device_id: device_id.to_owned(),
            tags: Value::Object(tags.into_merged()),
            desired: desired_section,
            reported,
        })
    }

    /// The device this twin belongs to.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// `properties.desired.$version`, which devices use to order desired patches.
    pub fn desired_version(&self) -> u64 {
        self.desired.version
    }

    /// `properties.reported.$version`.
    pub fn reported_version(&self) -> u64 {
        self.reported.version
    }

    /// The desired properties alone (no `$version`/`$metadata`), e.g. to [`diff`] them.
    pub fn desired(&self) -> Value {
        Value::Object(self.desired.properties.clone())
    }

    /// The reported properties alone (no `$version`/`$metadata`).
    pub fn reported(&self) -> Value {
        Value::Object(self.reported.properties.clone())
    }

    /// The tags (always an object).
    pub fn tags(&self) -> &Value {
        &self.tags
    }

    /// Applies a device's reported-properties merge patch (from
    /// `$iothub/twin/PATCH/properties/reported`), bumps the reported `$version` and
    /// updates `$metadata`. Returns the new reported version.
    pub fn patch_reported(
        &mut self,
        patch: &Value,
        now_ms: i64,
        limits: &Limits,
    ) -> Result<u64, TwinError> {
        let prepared = self.reported.prepare(patch, Kind::Reported, limits)?;
        Ok(self.reported.commit(prepared, Kind::Reported, now_ms))
    }

    /// Applies a service patch `{"tags": {...}?, "properties": {"desired": {...}?}?}`;
    /// any other member (including `properties.reported`) is refused, as is the whole
    /// patch if any part is invalid. Returns the new desired version if desired
    /// properties were patched (devices must then be told), `None` if only tags were.
    pub fn patch_service(
        &mut self,
        patch: &Value,
        now_ms: i64,
        limits: &Limits,
    ) -> Result<Option<u64>, TwinError> {
        let (tags, desired) = split_service_patch(patch)?;
        let tags = match tags {
            Some(tags) => Some(prepare_tags(&self.tags, tags, limits)?),
            None => None,
        };
        let desired = match desired {
            Some(desired) => Some(self.desired.prepare(desired, Kind::Desired, limits)?),
            None => None,
        };
        if let Some(tags) = tags {
            self.tags = Value::Object(tags);
        }
        Ok(desired.map(|prepared| self.desired.commit(prepared, Kind::Desired, now_ms)))
    }
}

/// Validates and applies a tags patch to a copy of `current`.
fn prepare_tags(
    current: &Value,
    patch: &Value,
    limits: &Limits,
) -> Result<Map<String, Value>, TwinError> {
    let empty = Map::new();
    let current = current.as_object().unwrap_or(&empty);
    Ok(prepare_object(current, patch, TAGS, limits)?.into_merged())
}

/// The parts of a service patch: `(tags, properties.desired)`.
type ServicePatch<'a> = (Option<&'a Value>, Option<&'a Value>);

/// Splits a service patch into its tags and desired parts, refusing anything else.
fn split_service_patch(patch: &Value) -> Result<ServicePatch<'_>, TwinError> {
    let members = patch.as_object().ok_or_else(|| TwinError::NotAnObject {
        path: "patch".to_owned(),
    })?;
    if let Some(key) = members.keys().find(|k| *k != TAGS && *k != "properties") {
        return Err(TwinError::NotPatchable { path: key.clone() });
    }
    let desired = match members.get("properties") {
        None => None,
        Some(Value::Object(properties)) => {
            if let Some(key) = properties.keys().find(|k| *k != "desired") {
                return Err(TwinError::NotPatchable {
                    path: format!("properties.{key}"),
                });
            }
            properties.get("desired")
        }
        Some(_) => {
            return Err(TwinError::NotAnObject {
                path: "properties".to_owned(),
            })
        }
    };
    Ok((members.get(TAGS), desired))
}

#[cfg(test)]
mod tests;
