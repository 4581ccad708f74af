//! The broker's view of one application message, shared by every subscriber it goes to.
//!
//! A [`Message`] is created once per PUBLISH received and handed around as an
//! `Arc<Message>`; each delivery only builds the small per-subscriber packet header
//! (packet id, QoS, flags, subscription ids) around the shared topic, properties and payload.

use std::borrow::Cow;
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
    /// Properties forwarded to subscribers (topic alias and subscription ids removed);
    /// boxed and `None` when empty, because most telemetry carries none and a queued
    /// message should not pay for ~500 bytes of empty fields.
    pub properties: Option<Box<Properties>>,
    /// Session that published it, for No Local; `None` for wills and replays.
    pub publisher: Option<u64>,
    /// When the message stops being deliverable (from Message Expiry Interval).
    pub expires_at: Option<Instant>,
    /// Identifier in the durable log when the message was made durable.
    pub log_id: Option<u64>,
    /// Set by the in-process service: report when the client acknowledges it.
    pub receipt: Option<u64>,
}

/// Payloads below this size are copied out of the read buffer they were decoded from.
///
/// A zero-copy slice keeps its whole read buffer (up to 16 KiB) alive; for a small
/// message that waits in a queue that is a hundredfold overhead. One small copy per
/// message (not per subscriber) costs less than that; larger payloads stay zero-copy.
const DETACH_BELOW: usize = 1024;

fn detach_small(payload: Bytes) -> Bytes {
    if payload.len() < DETACH_BELOW {
        Bytes::copy_from_slice(&payload)
    } else {
        payload
    }
}

impl Message {
    /// Builds the shared message from a received PUBLISH.
    ///
    /// This and the methods below read the clock only for messages that carry an expiry
    /// interval: most telemetry has none, and these run once per message or delivery.
    pub(crate) fn from_publish(mut publish: Publish, publisher: Option<u64>) -> Message {
        publish.properties.topic_alias = None;
        publish.properties.subscription_identifiers.clear();
        let expires_at = publish
            .properties
            .message_expiry_interval
            .map(|secs| Instant::now() + Duration::from_secs(u64::from(secs)));
        Message {
            topic: Arc::from(publish.topic),
            payload: detach_small(publish.payload),
            qos: publish.qos,
            retain: publish.retain,
            properties: (!publish.properties.is_empty()).then(|| Box::new(publish.properties)),
            publisher,
            expires_at,
            log_id: None,
            receipt: None,
        }
    }

    /// The message's properties, empty ones included.
    pub(crate) fn properties(&self) -> &Properties {
        static EMPTY: std::sync::OnceLock<Properties> = std::sync::OnceLock::new();
        self.properties
            .as_deref()
            .unwrap_or_else(|| EMPTY.get_or_init(Properties::default))
    }

    /// True once the expiry interval has passed [MQTT-3.3.2-5].
    pub(crate) fn is_expired(&self) -> bool {
        self.expires_at.is_some_and(|at| at <= Instant::now())
    }

    /// The properties to send one subscriber: the shared ones as they are in the common
    /// case, a modified copy when the expiry interval must be lowered by the time the
    /// message waited [MQTT-3.3.2-6] or subscription identifiers added.
    pub(crate) fn properties_for(&self, sub_ids: &[u32]) -> Cow<'_, Properties> {
        if self.expires_at.is_none() && sub_ids.is_empty() {
            return Cow::Borrowed(self.properties());
        }
        let mut properties = self.properties().clone();
        if let Some(at) = self.expires_at {
            let left = at
                .saturating_duration_since(Instant::now())
                .as_secs_f64()
                .ceil() as u32;
            properties.message_expiry_interval = Some(left.max(1));
        }
        properties
            .subscription_identifiers
            .extend_from_slice(sub_ids);
        Cow::Owned(properties)
    }

    /// Approximate memory held by the message, for queue byte limits.
    pub(crate) fn weight(&self) -> usize {
        self.payload.len() + self.topic.len() + 64
    }

    /// Expiry as wall-clock seconds since the Unix epoch, for the durable log (an
    /// `Instant` means nothing after a restart).
    pub(crate) fn expiry_unix(&self) -> Option<u64> {
        let left = self.expires_at?.saturating_duration_since(Instant::now());
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
