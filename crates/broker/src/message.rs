//! The broker's view of one application message, shared by every subscriber it goes to.
//!
//! A [`Message`] is created once per PUBLISH received and handed around as an
//! `Arc<Message>`; each delivery only builds the small per-subscriber packet header
//! (packet id, QoS, flags, subscription ids) around the shared topic, properties and payload.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use mqtt::{Properties, Publish, QoS};

/// An application message as the broker stores and forwards it.
#[derive(Debug, Clone)]
pub(crate) struct Message {
    /// Full topic name (aliases already resolved).
    pub topic: Arc<str>,
    /// Application payload, a zero-copy slice of the receive buffer.
    pub payload: Bytes,
    /// QoS it was published with; deliveries use `min(this, subscription QoS)`.
    pub qos: QoS,
    /// RETAIN flag as published.
    pub retain: bool,
    /// Properties forwarded to subscribers (topic alias and subscription ids removed).
    pub properties: Properties,
    /// Session that published it, for No Local; `None` for wills and replays.
    pub publisher: Option<u64>,
    /// When the message stops being deliverable (from Message Expiry Interval).
    pub expires_at: Option<Instant>,
    /// Identifier in the durable log when the message was made durable.
    pub log_id: Option<u64>,
}

impl Message {
    /// Builds the shared message from a received PUBLISH.
    pub(crate) fn from_publish(
        mut publish: Publish,
        publisher: Option<u64>,
        now: Instant,
    ) -> Message {
        publish.properties.topic_alias = None;
        publish.properties.subscription_identifiers.clear();
        let expires_at = publish
            .properties
            .message_expiry_interval
            .map(|secs| now + Duration::from_secs(u64::from(secs)));
        Message {
            topic: Arc::from(publish.topic),
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties: publish.properties,
            publisher,
            expires_at,
            log_id: None,
        }
    }

    /// True once the expiry interval has passed [MQTT-3.3.2-5].
    pub(crate) fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// The PUBLISH to send one subscriber; the expiry interval is lowered by the time the
    /// message waited in the broker [MQTT-3.3.2-6].
    pub(crate) fn to_publish(
        &self,
        qos: QoS,
        retain: bool,
        packet_id: Option<u16>,
        sub_ids: &[u32],
        now: Instant,
    ) -> Publish {
        let mut properties = self.properties.clone();
        if let Some(at) = self.expires_at {
            let left = at.saturating_duration_since(now).as_secs_f64().ceil() as u32;
            properties.message_expiry_interval = Some(left.max(1));
        }
        properties
            .subscription_identifiers
            .extend_from_slice(sub_ids);
        Publish {
            dup: false,
            qos,
            retain,
            topic: String::from(&*self.topic),
            packet_id,
            properties,
            payload: self.payload.clone(),
        }
    }

    /// Approximate memory held by the message, for queue byte limits.
    pub(crate) fn weight(&self) -> usize {
        self.payload.len() + self.topic.len() + 64
    }

    /// Expiry as wall-clock seconds since the Unix epoch, for the durable log (an
    /// `Instant` means nothing after a restart).
    pub(crate) fn expiry_unix(&self, now: Instant) -> Option<u64> {
        let left = self.expires_at?.saturating_duration_since(now);
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Some((wall + left).as_secs())
    }

    /// Converts a wall-clock expiry read back from the log into an `Instant`.
    pub(crate) fn instant_from_unix(expiry: u64, now: Instant) -> Instant {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        now + Duration::from_secs(expiry).saturating_sub(wall)
    }
}
