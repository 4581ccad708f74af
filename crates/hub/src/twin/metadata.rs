//! `$metadata`: when each property (and each object holding properties) last changed.
//!
//! The metadata tree mirrors the property tree. Every node carries `$lastUpdated` and, for
//! desired properties, `$lastUpdatedVersion`; property names never start with `$`, so the
//! two kinds of member cannot collide. Only the members a patch names are touched, plus
//! the objects on the way to them, which is how Azure reports it.

use serde_json::{Map, Value};

/// `$lastUpdated`, the RFC 3339 time of the last change.
const LAST_UPDATED: &str = "$lastUpdated";
/// `$lastUpdatedVersion`, the desired `$version` of the last change (desired only).
const LAST_UPDATED_VERSION: &str = "$lastUpdatedVersion";

/// What a change writes into each node it touches.
#[derive(Debug, Clone)]
pub(super) struct Stamp {
    /// RFC 3339 time of the change.
    pub(super) time: String,
    /// The section version the change produced, for sections that record it.
    pub(super) version: Option<u64>,
}

impl Stamp {
    /// Writes this stamp into a metadata node.
    fn mark(&self, node: &mut Map<String, Value>) {
        node.insert(LAST_UPDATED.to_owned(), Value::from(self.time.as_str()));
        if let Some(version) = self.version {
            node.insert(LAST_UPDATED_VERSION.to_owned(), Value::from(version));
        }
    }

    /// A fresh metadata node holding only this stamp.
    fn node(&self) -> Value {
        let mut node = Map::new();
        self.mark(&mut node);
        Value::Object(node)
    }
}

/// Updates `meta` (the metadata node of an object) for `patch`, which has already been
/// merged into that object, giving `merged`.
///
/// Recursion follows the patch's nesting, which validation has bounded.
pub(super) fn record(
    meta: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    merged: &Map<String, Value>,
    stamp: &Stamp,
) {
    stamp.mark(meta);
    for (key, change) in patch {
        match (change, merged.get(key)) {
            (Value::Object(inner), Some(Value::Object(merged_inner))) => {
                // A former leaf's node (or none) becomes the object's node.
                let mut node = match meta.remove(key) {
                    Some(Value::Object(node)) => node,
                    _ => Map::new(),
                };
                record(&mut node, inner, merged_inner, stamp);
                prune(&mut node, merged_inner);
                meta.insert(key.clone(), Value::Object(node));
            }
            (Value::Null, _) | (_, None) => {
                meta.remove(key);
            }
            _ => {
                meta.insert(key.clone(), stamp.node());
            }
        }
    }
}

/// Drops metadata of members that no longer exist (a leaf that was replaced by an object
/// keeps only its own `$` stamps; removed members vanish).
fn prune(meta: &mut Map<String, Value>, merged: &Map<String, Value>) {
    meta.retain(|key, _| key.starts_with('$') || merged.contains_key(key));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn stamp(time: &str, version: Option<u64>) -> Stamp {
        Stamp {
            time: time.to_owned(),
            version,
        }
    }

    #[test]
    fn stamps_patched_members_and_their_parents() {
        let mut meta = Map::new();
        let patch = object(json!({"a": {"b": 1}, "c": [1]}));
        record(&mut meta, &patch, &patch, &stamp("T1", Some(2)));
        let node = json!({"$lastUpdated": "T1", "$lastUpdatedVersion": 2});
        let expected = json!({
            "$lastUpdated": "T1", "$lastUpdatedVersion": 2,
            "a": {"$lastUpdated": "T1", "$lastUpdatedVersion": 2, "b": node},
            "c": node,
        });
        assert_eq!(Value::Object(meta), expected);
    }

    #[test]
    fn keeps_untouched_siblings_and_drops_deleted_members() {
        let mut meta = Map::new();
        let first = object(json!({"a": {"b": 1, "c": 2}, "d": 3}));
        record(&mut meta, &first, &first, &stamp("T1", None));
        let patch = object(json!({"a": {"b": null}, "d": null}));
        let merged = object(json!({"a": {"c": 2}}));
        record(&mut meta, &patch, &merged, &stamp("T2", None));
        let expected = json!({
            "$lastUpdated": "T2",
            "a": {"$lastUpdated": "T2", "c": {"$lastUpdated": "T1"}},
        });
        assert_eq!(Value::Object(meta), expected);
    }

    #[test]
    fn leaf_replaced_by_object_gets_fresh_node() {
        let mut meta = Map::new();
        let first = object(json!({"a": 1}));
        record(&mut meta, &first, &first, &stamp("T1", None));
        let patch = object(json!({"a": {"x": 1}}));
        record(&mut meta, &patch, &patch, &stamp("T2", None));
        let expected = json!({
            "$lastUpdated": "T2",
            "a": {"$lastUpdated": "T2", "x": {"$lastUpdated": "T2"}},
        });
        assert_eq!(Value::Object(meta), expected);
    }
}
