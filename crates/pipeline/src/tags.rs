//! Twin tags per device, cached: rules filter on them (`WHERE tags.line = 'A'`) for
//! every message, and reading the twin from the store each time would put a database
//! read on the path of every message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hub::service::Hub;
use serde_json::{Map, Value};

/// A device's tags and when they were read.
type Entry = (Map<String, Value>, Instant);

/// Devices' tags with the moment they were read.
pub(crate) struct TagCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

/// Entries kept at most; past this the cache is cleared (a fleet larger than this
/// reads tags more often, nothing breaks).
const MAX_ENTRIES: usize = 100_000;

impl TagCache {
    pub(crate) fn new(ttl: Duration) -> TagCache {
        TagCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The device's tags (empty if it has none or its twin cannot be read).
    pub(crate) async fn get(&self, hub: &Hub, device: &str) -> Map<String, Value> {
        if let Some(tags) = self.fresh(device) {
            return tags;
        }
        let tags = match hub.twin(device).await {
            Ok(view) => match view.json.get("tags") {
                Some(Value::Object(tags)) => tags.clone(),
                _ => Map::new(),
            },
            Err(_) => Map::new(),
        };
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(device.to_string(), (tags.clone(), Instant::now()));
        tags
    }

    fn fresh(&self, device: &str) -> Option<Map<String, Value>> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (tags, at) = entries.get(device)?;
        (at.elapsed() < self.ttl).then(|| tags.clone())
    }
}
