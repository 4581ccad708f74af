//! JSON Merge Patch (RFC 7386) and its inverse, [`diff`].
//!
//! Twins change only through merge patches: devices send reported patches, the service
//! sends desired patches, and devices are told about desired changes with patches. These
//! two functions know nothing about twins, limits or metadata; [`super::validate`] decides
//! whether a patch is acceptable before it is applied.

use serde_json::{Map, Value};

/// Applies `patch` to `target` exactly as RFC 7386 section 2 says: an object patch merges
/// key by key (a `null` member deletes the key), anything else replaces the target.
///
/// Recursion follows the patch's object nesting; callers that take patches from outside
/// bound that depth first (see [`super::Limits::max_depth`]).
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(members) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(map) = target {
        merge_members(map, members);
    }
}

/// Merges an object patch's members into an object.
pub(super) fn merge_members(map: &mut Map<String, Value>, members: &Map<String, Value>) {
    for (key, value) in members {
        if value.is_null() {
            map.remove(key);
        } else {
            let slot = map.entry(key.clone()).or_insert(Value::Null);
            merge_patch(slot, value);
        }
    }
}

/// Computes a merge patch that turns `old` into `new`: changed keys carry their new value,
/// removed keys are `null`, nested objects are diffed key by key, unchanged keys are left
/// out. This is what a device is sent when the desired properties change wholesale.
///
/// `merge_patch(&mut old, &diff(&old, &new))` yields `new` whenever `new` holds no `null`
/// values inside objects (merge patches cannot express "set to null").
pub fn diff(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => Value::Object(diff_members(old, new)),
        _ => new.clone(),
    }
}

/// Diffs two objects member by member.
fn diff_members(old: &Map<String, Value>, new: &Map<String, Value>) -> Map<String, Value> {
    let mut patch = Map::new();
    for key in old.keys().filter(|k| !new.contains_key(*k)) {
        patch.insert(key.clone(), Value::Null);
    }
    for (key, value) in new {
        match old.get(key) {
            Some(before) if before == value => {}
            Some(before) => {
                patch.insert(key.clone(), diff(before, value));
            }
            None => {
                patch.insert(key.clone(), value.clone());
            }
        }
    }
    patch
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// The examples of RFC 7386 appendix A, as (target, patch, result).
    fn rfc_vectors() -> Vec<(Value, Value, Value)> {
        vec![
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ]
    }

    #[test]
    fn rfc7386_appendix_a() {
        for (mut target, patch, expected) in rfc_vectors() {
            merge_patch(&mut target, &patch);
            assert_eq!(target, expected, "patch {patch}");
        }
    }

    #[test]
    fn diff_marks_removed_keys_null_and_skips_unchanged() {
        let old = json!({"a":1,"b":{"c":2,"d":3},"e":4});
        let new = json!({"a":1,"b":{"c":2,"d":5},"f":[1]});
        assert_eq!(diff(&old, &new), json!({"b":{"d":5},"e":null,"f":[1]}));
    }

    #[test]
    fn diff_of_equal_objects_is_empty() {
        let doc = json!({"a":{"b":[1,2]}});
        assert_eq!(diff(&doc, &doc), json!({}));
    }

    /// Any JSON value, a few levels deep, with short keys so that keys collide often.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i32>().prop_map(Value::from),
            "[a-c]{0,2}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
                prop::collection::btree_map("[a-d]", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Any JSON object (the common case for targets and patches).
    fn json_object() -> impl Strategy<Value = Value> {
        prop::collection::btree_map("[a-d]", json_value(), 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect()))
    }

    /// Like [`json_value`], but with no `null` inside objects (what `diff` can reproduce).
    fn json_without_null_members() -> impl Strategy<Value = Value> {
        json_value().prop_map(strip_null_members)
    }

    fn strip_null_members(value: Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k, strip_null_members(v)))
                    .collect(),
            ),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(strip_null_members).collect())
            }
            other => other,
        }
    }

    /// Checks RFC 7386's promise for an object patch: every member it names is gone (null),
    /// an object merged further (object), or exactly the patch's value (anything else).
    fn obeys_patch(result: &Value, patch: &Map<String, Value>) -> bool {
        patch
            .iter()
            .all(|(key, value)| match (value, result.get(key)) {
                (Value::Null, found) => found.is_none(),
                (Value::Object(inner), Some(found @ Value::Object(_))) => obeys_patch(found, inner),
                (Value::Object(_), _) => false,
                (other, found) => found == Some(other),
            })
    }

    proptest! {
        #[test]
        fn merge_is_idempotent(target in json_value(), patch in json_value()) {
            let mut once = target;
            merge_patch(&mut once, &patch);
            let mut twice = once.clone();
            merge_patch(&mut twice, &patch);
            prop_assert_eq!(once, twice);
        }

        #[test]
        fn non_object_patch_replaces(target in json_value(), patch in json_value()) {
            let patch = if patch.is_object() { Value::Array(vec![patch]) } else { patch };
            let mut result = target;
            merge_patch(&mut result, &patch);
            prop_assert_eq!(result, patch);
        }

        #[test]
        fn object_patch_members_take_effect(target in json_value(), patch in json_value()) {
            let mut result = target;
            merge_patch(&mut result, &patch);
            if let Value::Object(members) = &patch {
                prop_assert!(result.is_object());
                prop_assert!(obeys_patch(&result, members));
            }
        }

        #[test]
        fn patch_keys_absent_from_patch_are_untouched(target in json_object(), patch in json_object()) {
            let mut result = target.clone();
            merge_patch(&mut result, &patch);
            if let (Value::Object(before), Value::Object(members)) = (&target, &patch) {
                for (key, value) in before.iter().filter(|(k, _)| !members.contains_key(*k)) {
                    prop_assert_eq!(result.get(key), Some(value));
                }
            }
        }

        #[test]
        fn diff_then_merge_roundtrips(old in json_value(), new in json_without_null_members()) {
            let mut patched = old.clone();
            merge_patch(&mut patched, &diff(&old, &new));
            prop_assert_eq!(patched, new);
        }
    }
}
