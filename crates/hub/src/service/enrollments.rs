//! Provisioning enrollments: who may register through the DPS protocol, with which
//! symmetric key, and what a registered device starts with (initial twin, device
//! group).
//!
//! An individual enrollment names one registration id and holds that device's key; a
//! group enrollment holds a group key from which each device's key is derived
//! ([`crate::auth::derive_device_key`]). Keys are secrets: [`EnrollmentInfo`] carries
//! them, and the API shows them to administrators only.

use serde::Serialize;
use serde_json::{json, Value};
use store::{Enrollment, EnrollmentKind, StoreError};

use super::{now_ms, Hub, HubError};
use crate::twin::{rfc3339, Twin};

/// What an operator gives when creating or replacing an enrollment.
#[derive(Clone, Default)]
pub struct EnrollmentSpec {
    /// The symmetric key (base64); generated for a new enrollment when absent, kept
    /// when replacing one.
    pub key: Option<String>,
    /// Initial twin tags of devices registered through it.
    pub tags: Option<Value>,
    /// Initial desired properties.
    pub desired: Option<Value>,
    /// The device group registered devices join.
    pub device_group: Option<String>,
    /// Refuse registrations.
    pub disabled: bool,
}

impl std::fmt::Debug for EnrollmentSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never reaches a log line.
        f.debug_struct("EnrollmentSpec")
            .field("tags", &self.tags)
            .field("desired", &self.desired)
            .field("device_group", &self.device_group)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

/// An enrollment as the API shows it.
#[derive(Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentInfo {
    /// `individual` or `group`.
    pub kind: &'static str,
    /// The registration id (individual) or the group name (group).
    pub name: String,
    /// The symmetric key (base64); the API removes it for non-administrators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `{"tags": …, "desired": …}` given to registered devices.
    pub initial_twin: Value,
    /// The device group registered devices join.
    pub device_group: Option<String>,
    /// Registrations are refused.
    pub disabled: bool,
    /// When it was created or last replaced (RFC 3339).
    pub created_time: String,
}

impl std::fmt::Debug for EnrollmentInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollmentInfo")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

impl EnrollmentInfo {
    /// The same without its key, for callers that may not see secrets.
    pub fn redacted(mut self) -> EnrollmentInfo {
        self.key = None;
        self
    }
}

impl Hub {
    /// Creates or replaces an enrollment. The name must be a valid device id (a
    /// registration id becomes the device id); the initial twin is checked against
    /// the twin limits now, not at first registration.
    pub async fn put_enrollment(
        &self,
        kind: EnrollmentKind,
        name: &str,
        spec: EnrollmentSpec,
    ) -> Result<EnrollmentInfo, HubError> {
        super::registry::validate_id(name).map_err(|_| {
            HubError::Invalid(format!(
                "enrollment name {name:?} is not a valid name (same rules as device ids)"
            ))
        })?;
        // Checked the way a registration will build the twin.
        Twin::new(
            name,
            spec.tags.as_ref(),
            spec.desired.as_ref(),
            now_ms(),
            &self.inner.config.twin_limits,
        )
        .map_err(|e| HubError::Invalid(format!("initial twin: {e}")))?;
        let key = match spec.key {
            Some(key) => {
                crate::auth::check_key(&key).map_err(|e| HubError::Invalid(e.to_string()))?;
                Some(key)
            }
            None => None,
        };
        let initial_twin = json!({
            "tags": spec.tags.unwrap_or_else(|| json!({})),
            "desired": spec.desired.unwrap_or_else(|| json!({})),
        });
        let owned = name.to_string();
        let generated =
            crate::auth::generate_key().map_err(|e| HubError::Unavailable(e.to_string()))?;
        let stored = self
            .blocking(move |s| {
                let key = match key {
                    Some(key) => key,
                    None => match s.enrollment(kind, &owned) {
                        Ok(existing) => existing.key,
                        Err(StoreError::NotFound) => generated,
                        Err(e) => return Err(e),
                    },
                };
                let enrollment = Enrollment {
                    kind,
                    name: owned,
                    key,
                    initial_twin: initial_twin.to_string(),
                    device_group: spec.device_group,
                    disabled: spec.disabled,
                    created_ms: now_ms(),
                };
                s.put_enrollment(&enrollment)?;
                Ok(enrollment)
            })
            .await
            .map_err(|e| enrollment_error(name, e))?;
        Ok(info(stored))
    }

    /// One enrollment, key included.
    pub async fn enrollment(
        &self,
        kind: EnrollmentKind,
        name: &str,
    ) -> Result<EnrollmentInfo, HubError> {
        self.load_enrollment(kind, name).await.map(info)
    }

    /// The stored record.
    pub(super) async fn load_enrollment(
        &self,
        kind: EnrollmentKind,
        name: &str,
    ) -> Result<Enrollment, HubError> {
        let owned = name.to_string();
        self.blocking(move |s| s.enrollment(kind, &owned))
            .await
            .map_err(|e| enrollment_error(name, e))
    }

    /// Every enrollment of a kind (or all), keys included.
    pub async fn enrollments(
        &self,
        kind: Option<EnrollmentKind>,
    ) -> Result<Vec<EnrollmentInfo>, HubError> {
        self.blocking(move |s| s.enrollments(kind))
            .await
            .map(|all| all.into_iter().map(info).collect())
            .map_err(|e| enrollment_error("", e))
    }

    /// Removes an enrollment; devices it registered stay.
    pub async fn delete_enrollment(
        &self,
        kind: EnrollmentKind,
        name: &str,
    ) -> Result<(), HubError> {
        let owned = name.to_string();
        self.blocking(move |s| s.delete_enrollment(kind, &owned))
            .await
            .map_err(|e| enrollment_error(name, e))
    }
}

/// Maps a store failure about enrollment `name`.
fn enrollment_error(name: &str, e: StoreError) -> HubError {
    match e {
        StoreError::NotFound => HubError::NotFound(format!("enrollment {name}")),
        other => super::store_error(name, other),
    }
}

/// The initial twin's two sections, read back (an unreadable one is empty: the
/// document was written by `put_enrollment`).
pub(super) fn initial_sections(enrollment: &Enrollment) -> (Value, Value) {
    let doc: Value = serde_json::from_str(&enrollment.initial_twin).unwrap_or(Value::Null);
    let section = |name: &str| doc.get(name).cloned().unwrap_or_else(|| json!({}));
    (section("tags"), section("desired"))
}

fn info(e: Enrollment) -> EnrollmentInfo {
    let (tags, desired) = initial_sections(&e);
    EnrollmentInfo {
        kind: e.kind.as_str(),
        name: e.name,
        key: Some(e.key),
        initial_twin: json!({ "tags": tags, "desired": desired }),
        device_group: e.device_group,
        disabled: e.disabled,
        created_time: rfc3339(e.created_ms),
    }
}
