//! Retained messages: the last retained message of each topic, sent to new subscribers.
//!
//! A map by topic. A subscription without wildcards is a single lookup; a wildcard
//! subscription scans every retained topic. That scan is O(retained topics) per
//! wildcard SUBSCRIBE, acceptable for fleets that retain one state topic per device up
//! to about a million topics; a topic trie is the upgrade path if profiles say so.

use std::collections::HashMap;
use std::sync::Arc;

use mqtt::topic::matches;

use crate::message::Message;

/// The retained message store. Its size is exported as `bosun_mqtt_retained_messages`.
#[derive(Debug, Default)]
pub(crate) struct Retained {
    by_topic: HashMap<Arc<str>, Arc<Message>>,
}

impl Retained {
    /// Stores `message` as its topic's retained message; an empty payload clears it
    /// [MQTT-3.3.1-6/7].
    pub(crate) fn set(&mut self, message: Arc<Message>) {
        if message.payload.is_empty() {
            self.by_topic.remove(&message.topic);
        } else {
            self.by_topic.insert(message.topic.clone(), message);
        }
    }

    /// Retained messages whose topic matches `filter`.
    pub(crate) fn matching(&self, filter: &str) -> Vec<Arc<Message>> {
        if !filter.contains(['+', '#']) {
            return self.by_topic.get(filter).cloned().into_iter().collect();
        }
        self.by_topic
            .iter()
            .filter(|(t, _)| matches(filter, t))
            .map(|(_, m)| m.clone())
            .collect()
    }

    /// The retained message of exactly `topic`.
    pub(crate) fn get(&self, topic: &str) -> Option<&Arc<Message>> {
        self.by_topic.get(topic)
    }

    /// Every retained message, for snapshots.
    pub(crate) fn all(&self) -> impl Iterator<Item = &Arc<Message>> {
        self.by_topic.values()
    }

    /// Number of retained topics.
    pub(crate) fn len(&self) -> usize {
        self.by_topic.len()
    }
}
