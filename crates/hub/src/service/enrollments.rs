//! Provisioning enrollments: who may register through the DPS protocol, with which
//! symmetric key, and what a registered device starts with (initial twin, device
//! group).
//!
//! An individual enrollment names one registration id and holds that device's key; a
//! group enrollment holds a group key from which each device's key is derived
//! ([`crate::auth::derive_device_key`]). Keys are secrets: [`EnrollmentInfo`] carries
//! them, and the API shows them to administrators only.
//!
//! An X.509 enrollment holds no key: its devices present a client certificate whose
//! CN is the registration id, signed by a registered device CA (named by the
//! enrollment; required for a group), optionally pinned to one certificate serial
//! (individual). Registered devices get auth kind `x509`.

use serde::Serialize;
use serde_json::{json, Value};
use store::{Enrollment, EnrollmentKind, StoreError, X509Attestation};

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
    /// An X.509 enrollment (no key) instead of a symmetric-key one.
    pub x509: Option<X509Attestation>,
}

impl std::fmt::Debug for EnrollmentSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key never reaches a log line.
        f.debug_struct("EnrollmentSpec")
            .field("x509", &self.x509)
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
    /// `symmetricKey` or `x509`: how devices prove who they are.
    pub attestation: &'static str,
    /// The symmetric key (base64); the API removes it for non-administrators. Absent
    /// for an X.509 enrollment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// For an X.509 enrollment: the CA and the pinned serial.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x509: Option<X509Info>,
    /// `{"tags": …, "desired": …}` given to registered devices.
    pub initial_twin: Value,
    /// The device group registered devices join.
    pub device_group: Option<String>,
    /// Registrations are refused.
    pub disabled: bool,
    /// When it was created or last replaced (RFC 3339).
    pub created_time: String,
}

/// An X.509 enrollment's attestation as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct X509Info {
    /// The registered device CA (`bosun ca list`) that must have signed the device
    /// certificate.
    pub ca: Option<String>,
    /// The one certificate serial (hex) accepted (individual enrollments).
    pub serial: Option<String>,
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
        let x509 = spec
            .x509
            .map(|x509| check_x509(kind, spec.key.is_some(), x509))
            .transpose()?;
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
                let key = match (key, &x509) {
                    (_, Some(_)) => String::new(),
                    (Some(key), None) => key,
                    (None, None) => match s.enrollment(kind, &owned) {
                        Ok(existing) if existing.x509.is_none() => existing.key,
                        Ok(_) | Err(StoreError::NotFound) => generated,
                        Err(e) => return Err(e),
                    },
                };
                let enrollment = Enrollment {
                    kind,
                    name: owned,
                    key,
                    x509,
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

/// Checks an X.509 attestation and normalises its serial: no key with it, a CA for a
/// group (it is what the group matches on), a serial only for one device.
fn check_x509(
    kind: EnrollmentKind,
    key_given: bool,
    x509: X509Attestation,
) -> Result<X509Attestation, HubError> {
    let invalid = |m: &str| Err(HubError::Invalid(m.to_string()));
    if key_given {
        return invalid("an X.509 enrollment has no key");
    }
    if kind == EnrollmentKind::Group && x509.ca.is_none() {
        return invalid("an X.509 group enrollment must name its CA (x509.ca)");
    }
    if kind == EnrollmentKind::Group && x509.serial.is_some() {
        return invalid("a group enrollment cannot be pinned to one serial");
    }
    // The names `bosun ca import --name` accepts (file stems under `ca/trusted/`).
    let ca_name = |ca: &str| {
        (1..=64).contains(&ca.len())
            && !ca.starts_with('.')
            && ca
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if x509.ca.as_deref().is_some_and(|ca| !ca_name(ca)) {
        return invalid("x509.ca is not a CA name (letters, digits, - _ .; see bosun ca list)");
    }
    let serial = match x509.serial {
        Some(serial) => match broker::device_ca::normalize_serial(&serial) {
            Some(serial) => Some(serial),
            None => return invalid("x509.serial is not a hex serial number"),
        },
        None => None,
    };
    Ok(X509Attestation {
        ca: x509.ca,
        serial,
    })
}

fn info(e: Enrollment) -> EnrollmentInfo {
    let (tags, desired) = initial_sections(&e);
    let (attestation, key, x509) = match e.x509 {
        Some(x509) => (
            "x509",
            None,
            Some(X509Info {
                ca: x509.ca,
                serial: x509.serial,
            }),
        ),
        None => ("symmetricKey", Some(e.key), None),
    };
    EnrollmentInfo {
        kind: e.kind.as_str(),
        name: e.name,
        attestation,
        key,
        x509,
        initial_twin: json!({ "tags": tags, "desired": desired }),
        device_group: e.device_group,
        disabled: e.disabled,
        created_time: rfc3339(e.created_ms),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn x509_attestations_are_checked_and_serials_normalised() {
        let group = EnrollmentKind::Group;
        let one = EnrollmentKind::Individual;
        let att = |ca: Option<&str>, serial: Option<&str>| X509Attestation {
            ca: ca.map(str::to_string),
            serial: serial.map(str::to_string),
        };
        let ok = check_x509(one, false, att(None, Some("00:4A:0B"))).unwrap();
        assert_eq!(ok.serial.as_deref(), Some("4a0b"));
        assert!(check_x509(group, false, att(Some("bosun"), None)).is_ok());
        for (kind, key, bad) in [
            (group, false, att(None, None)),
            (group, false, att(Some("bosun"), Some("01"))),
            (one, true, att(None, None)),
            (one, false, att(Some(""), None)),
            (one, false, att(Some("../x"), None)),
            (one, false, att(None, Some("xyz"))),
        ] {
            assert!(
                matches!(check_x509(kind, key, bad), Err(HubError::Invalid(_))),
                "{kind:?}"
            );
        }
    }
}
