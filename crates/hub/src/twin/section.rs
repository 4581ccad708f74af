//! One versioned property section (desired or reported): its properties, their
//! `$metadata` tree and its `$version`.
//!
//! Changing a section is two steps so that a twin can check every part of a patch before
//! touching any: [`Section::prepare`] validates and builds the patched properties without
//! changing anything, [`Section::commit`] installs them and cannot fail.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::TwinError;
use super::merge::merge_members;
use super::metadata::{record, Stamp};
use super::time::rfc3339;
use super::validate::{check_patch, check_size, Limits};

/// Which section, for error paths and for whether metadata records versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Written by the service; metadata records `$lastUpdatedVersion`.
    Desired,
    /// Written by the device; metadata records only times (as in Azure).
    Reported,
}

impl Kind {
    /// The section's path in the service view, used in error messages.
    pub(super) fn path(self) -> &'static str {
        match self {
            Kind::Desired => "properties.desired",
            Kind::Reported => "properties.reported",
        }
    }
}

/// A section's state; also its storage shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Section {
    /// The properties; names never contain `$`.
    pub(super) properties: Map<String, Value>,
    /// The `$metadata` tree mirroring `properties`.
    pub(super) metadata: Map<String, Value>,
    /// `$version`: bumped by every patch, even one that changes nothing (as Azure does).
    pub(super) version: u64,
}

/// A validated patch and the properties it produces, ready to commit.
#[derive(Debug)]
pub(super) struct Prepared<'a> {
    /// The patch's members, for metadata.
    patch: &'a Map<String, Value>,
    /// The patched properties.
    merged: Map<String, Value>,
}

/// Validates `patch` for the object `current` at `path` and merges it into a copy.
pub(super) fn prepare_object<'a>(
    current: &Map<String, Value>,
    patch: &'a Value,
    path: &'static str,
    limits: &Limits,
) -> Result<Prepared<'a>, TwinError> {
    let patch = check_patch(patch, path, limits)?;
    let mut merged = current.clone();
    merge_members(&mut merged, patch);
    check_size(path, &merged, limits)?;
    Ok(Prepared { patch, merged })
}

impl Prepared<'_> {
    /// The patched properties, for sections without metadata (tags).
    pub(super) fn into_merged(self) -> Map<String, Value> {
        self.merged
    }
}

impl Section {
    /// Checks `patch` and computes its result; `self` is not changed.
    pub(super) fn prepare<'a>(
        &self,
        patch: &'a Value,
        kind: Kind,
        limits: &Limits,
    ) -> Result<Prepared<'a>, TwinError> {
        prepare_object(&self.properties, patch, kind.path(), limits)
    }

    /// Installs a prepared patch made at `now_ms`; returns the new `$version`.
    pub(super) fn commit(&mut self, prepared: Prepared<'_>, kind: Kind, now_ms: i64) -> u64 {
        self.version = self.version.saturating_add(1);
        let version = (kind == Kind::Desired).then_some(self.version);
        let stamp = Stamp {
            time: rfc3339(now_ms),
            version,
        };
        record(&mut self.metadata, prepared.patch, &prepared.merged, &stamp);
        self.properties = prepared.merged;
        self.version
    }

    /// The section as Azure shows it: properties plus `$version`, and `$metadata` if asked.
    pub(super) fn view(&self, with_metadata: bool) -> Value {
        let mut out = self.properties.clone();
        if with_metadata {
            out.insert("$metadata".to_owned(), Value::Object(self.metadata.clone()));
        }
        out.insert("$version".to_owned(), Value::from(self.version));
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prepare_leaves_section_alone_and_commit_bumps_version() {
        let mut section = Section::default();
        let patch = json!({"a": 1});
        let prepared = section.prepare(&patch, Kind::Reported, &Limits::default());
        assert_eq!(section, Section::default());
        let Ok(prepared) = prepared else {
            panic!("valid patch refused")
        };
        assert_eq!(section.commit(prepared, Kind::Reported, 0), 1);
        assert_eq!(Value::Object(section.properties.clone()), json!({"a": 1}));
        assert_eq!(section.view(false), json!({"a": 1, "$version": 1}));
    }

    #[test]
    fn size_is_checked_after_merge() {
        let limits = Limits {
            max_section_bytes: 10,
            ..Limits::default()
        };
        let mut section = Section::default();
        section
            .properties
            .insert("big".into(), json!("xxxxxxxxxxxx"));
        // Removing the big member brings the section under the limit.
        assert!(section
            .prepare(&json!({"big": null, "a": 1}), Kind::Desired, &limits)
            .is_ok());
        let err = section
            .prepare(&json!({"a": 1}), Kind::Desired, &limits)
            .map(|_| ());
        assert!(matches!(
            err,
            Err(TwinError::SectionTooLarge {
                section: "properties.desired",
                ..
            })
        ));
    }
}
