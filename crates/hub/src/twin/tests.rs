//! Tests of [`Twin`] as a whole: creation, both kinds of patch, views, atomicity.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

/// 2024-03-01T12:00:00.000Z
const T0: i64 = 1_709_294_400_000;

fn twin() -> Result<Twin, TwinError> {
    Twin::new(
        "dev1",
        Some(&json!({"site": "a"})),
        Some(&json!({"fan": {"speed": 3}})),
        T0,
        &Limits::default(),
    )
}

#[test]
fn new_twin_starts_at_version_one() -> Result<(), TwinError> {
    let twin = twin()?;
    assert_eq!((twin.desired_version(), twin.reported_version()), (1, 1));
    assert_eq!(twin.desired(), json!({"fan": {"speed": 3}}));
    assert_eq!(twin.reported(), json!({}));
    assert_eq!(twin.tags(), &json!({"site": "a"}));
    assert_eq!(twin.device_id(), "dev1");
    Ok(())
}

#[test]
fn new_refuses_bad_input() {
    let limits = Limits::default();
    assert!(matches!(
        Twin::new("", None, None, 0, &limits),
        Err(TwinError::EmptyDeviceId)
    ));
    let err = Twin::new("d", Some(&json!([])), None, 0, &limits).map_err(|e| e.to_string());
    assert_eq!(err, Err("tags: must be a JSON object".to_owned()));
    let err = Twin::new("d", None, Some(&json!({"a": {"b.c": 1}})), 0, &limits)
        .map_err(|e| e.to_string());
    assert_eq!(
        err,
        Err("properties.desired.a.b.c: key contains '.'".to_owned())
    );
}

#[test]
fn device_view_has_versions_only() -> Result<(), TwinError> {
    let mut twin = twin()?;
    twin.patch_reported(&json!({"mode": "eco"}), T0 + 1, &Limits::default())?;
    let expected = json!({
        "desired": {"fan": {"speed": 3}, "$version": 1},
        "reported": {"mode": "eco", "$version": 2},
    });
    assert_eq!(twin.device_view(), expected);
    Ok(())
}

#[test]
fn service_view_has_etag_and_metadata() -> Result<(), TwinError> {
    let mut twin = twin()?;
    twin.patch_reported(&json!({"mode": "eco"}), T0 + 250, &Limits::default())?;
    let at0 = "2024-03-01T12:00:00.000Z";
    let at1 = "2024-03-01T12:00:00.250Z";
    let expected = json!({
        "deviceId": "dev1",
        "etag": "\"7\"",
        "version": 7,
        "tags": {"site": "a"},
        "properties": {
            "desired": {
                "fan": {"speed": 3},
                "$metadata": {
                    "$lastUpdated": at0, "$lastUpdatedVersion": 1,
                    "fan": {
                        "$lastUpdated": at0, "$lastUpdatedVersion": 1,
                        "speed": {"$lastUpdated": at0, "$lastUpdatedVersion": 1},
                    },
                },
                "$version": 1,
            },
            "reported": {
                "mode": "eco",
                "$metadata": {"$lastUpdated": at1, "mode": {"$lastUpdated": at1}},
                "$version": 2,
            },
        },
    });
    assert_eq!(twin.service_view(7), expected);
    Ok(())
}

#[test]
fn reported_patch_merges_and_deletes() -> Result<(), TwinError> {
    let limits = Limits::default();
    let mut twin = twin()?;
    twin.patch_reported(&json!({"a": {"b": 1, "c": 2}}), T0, &limits)?;
    let version = twin.patch_reported(&json!({"a": {"b": null}}), T0, &limits)?;
    assert_eq!(version, 3);
    assert_eq!(twin.reported(), json!({"a": {"c": 2}}));
    // A patch that changes nothing still bumps the version, as Azure does.
    assert_eq!(twin.patch_reported(&json!({}), T0, &limits)?, 4);
    Ok(())
}

#[test]
fn service_patch_reports_desired_changes_only() -> Result<(), TwinError> {
    let limits = Limits::default();
    let mut twin = twin()?;
    assert_eq!(
        twin.patch_service(&json!({"tags": {"site": null, "floor": 2}}), T0, &limits)?,
        None
    );
    assert_eq!(twin.tags(), &json!({"floor": 2}));
    let patch = json!({"properties": {"desired": {"fan": {"speed": 5}}}});
    assert_eq!(twin.patch_service(&patch, T0, &limits)?, Some(2));
    assert_eq!(twin.desired(), json!({"fan": {"speed": 5}}));
    assert_eq!(twin.patch_service(&json!({}), T0, &limits)?, None);
    assert_eq!(twin.desired_version(), 2);
    Ok(())
}

#[test]
fn service_patch_refuses_other_members() -> Result<(), TwinError> {
    let limits = Limits::default();
    let mut twin = twin()?;
    let cases = [
        (json!({"deviceId": "x"}), "deviceId: not allowed in a service patch (only tags and properties.desired)"),
        (json!({"properties": {"reported": {}}}), "properties.reported: not allowed in a service patch (only tags and properties.desired)"),
        (json!({"properties": []}), "properties: must be a JSON object"),
        (json!({"properties": {"desired": 1}}), "properties.desired: must be a JSON object"),
        (json!("x"), "patch: must be a JSON object"),
    ];
    for (patch, message) in cases {
        let err = twin
            .patch_service(&patch, T0, &limits)
            .map_err(|e| e.to_string());
        assert_eq!(err, Err(message.to_owned()));
    }
    Ok(())
}

#[test]
fn failed_service_patch_changes_nothing() -> Result<(), TwinError> {
    let limits = Limits::default();
    let mut twin = twin()?;
    let before = twin.clone();
    // Tags are fine, desired is not: neither may be applied.
    let patch = json!({"tags": {"ok": 1}, "properties": {"desired": {"bad$": 1}}});
    assert!(twin.patch_service(&patch, T0 + 1, &limits).is_err());
    assert_eq!(twin, before);
    Ok(())
}

#[test]
fn size_limit_applies_per_section_after_patch() -> Result<(), TwinError> {
    let limits = Limits {
        max_section_bytes: 20,
        ..Limits::default()
    };
    let mut twin = Twin::new("d", None, None, T0, &limits)?;
    twin.patch_reported(&json!({"a": "0123456789"}), T0, &limits)?;
    let err = twin.patch_reported(&json!({"b": "0123456789"}), T0, &limits);
    assert!(matches!(
        err,
        Err(TwinError::SectionTooLarge {
            section: "properties.reported",
            ..
        })
    ));
    // Replacing instead of adding fits.
    assert_eq!(
        twin.patch_reported(&json!({"a": null, "b": "0123456789"}), T0, &limits)?,
        3
    );
    Ok(())
}

/// Patches with valid and invalid names, nulls, nesting and arrays.
fn patch_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<i16>().prop_map(Value::from),
        "[a-z]{0,3}".prop_map(Value::from),
        prop::collection::vec(any::<bool>(), 0..3).prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop::collection::btree_map("[a-c]|a\\.b|\\$x|", inner, 0..3)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    })
}

proptest! {
    #[test]
    fn reported_patch_is_merge_patch_or_no_change(patches in prop::collection::vec(patch_value(), 1..6)) {
        let limits = Limits { max_section_bytes: 60, max_depth: 2, max_key_len: 3 };
        let Ok(mut twin) = Twin::new("d", None, None, 0, &limits) else {
            return Err(TestCaseError::fail("new failed"));
        };
        for (i, patch) in patches.iter().enumerate() {
            let before = twin.clone();
            let mut expected = twin.reported();
            merge_patch(&mut expected, patch);
            match twin.patch_reported(patch, i64::try_from(i).unwrap_or(0), &limits) {
                Ok(version) => {
                    prop_assert_eq!(version, before.reported_version() + 1);
                    prop_assert_eq!(twin.reported(), expected);
                    prop_assert!(metadata_mirrors(&twin));
                }
                Err(_) => prop_assert_eq!(&twin, &before),
            }
            prop_assert_eq!(Twin::from_json(&twin.to_json()).ok(), Some(twin.clone()));
        }
    }
}

/// Every property has a metadata node and every metadata member names a property.
fn metadata_mirrors(twin: &Twin) -> bool {
    fn mirrors(props: &Value, meta: &Value) -> bool {
        let (Some(props), Some(meta)) = (props.as_object(), meta.as_object()) else {
            return false;
        };
        let extra = meta
            .keys()
            .any(|k| !k.starts_with('$') && !props.contains_key(k));
        let missing = props.iter().any(|(k, v)| match meta.get(k) {
            Some(node) if v.is_object() => !mirrors(v, node),
            Some(node) => !node.is_object(),
            None => true,
        });
        !extra && !missing && meta.get("$lastUpdated").is_some()
    }
    let view = twin.service_view(0);
    let reported = &view["properties"]["reported"];
    let mut props = reported.clone();
    if let Some(map) = props.as_object_mut() {
        map.retain(|k, _| !k.starts_with('$'));
    }
    mirrors(&props, &reported["$metadata"])
}

/// Found by the `twin_patch` fuzz target: without serde_json's `float_roundtrip`, a
/// reported 5.5555555555555556e32 came back from storage one bit off.
#[test]
fn reported_floats_survive_storage_bit_for_bit() -> Result<(), TwinError> {
    let limits = Limits::default();
    let mut twin = Twin::new("d1", None, None, 0, &limits)?;
    let patch: Value =
        serde_json::from_str(r#"{"x":[0,555555555555555555555555555555552,0.1,1e-300]}"#)
            .map_err(TwinError::Storage)?;
    twin.patch_reported(&patch, 1, &limits)?;
    assert_eq!(Twin::from_json(&twin.to_json())?, twin);
    Ok(())
}
