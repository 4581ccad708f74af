//! Cloud-to-device messages: the durable queue lives in the store; this module moves
//! messages onto the wire while the device is connected and subscribed, completes
//! them when the device acknowledges (feedback `delivered`), and expires them.
//!
//! Delivery is at least once: a message on the wire when the connection drops goes
//! again after the device returns, with the same `$.mid` so the device can tell.

use std::time::Duration;

use broker::service::SendOutcome;
use store::{C2dMessage, C2dOutcome, Feedback, StoreError};

use super::{now_ms, plain_publish, store_error, C2dSend, Hub, HubError, Receipt};
use crate::topics;

/// How often expired messages are moved to feedback.
const EXPIRY_SWEEP: Duration = Duration::from_secs(5);

impl Hub {
    /// Queues a message for a device and starts delivering it if the device is there.
    pub async fn send_c2d(&self, id: &str, message: C2dSend) -> Result<String, HubError> {
        self.device(id).await?;
        let config = &self.inner.config;
        let ttl = message.ttl.unwrap_or(config.default_c2d_ttl);
        if ttl.is_zero() || ttl > config.max_c2d_ttl {
            return Err(HubError::Invalid(format!(
                "ttl must be between 1 and {} seconds",
                config.max_c2d_ttl.as_secs()
            )));
        }
        if let Some((k, _)) = message
            .properties
            .iter()
            .find(|(k, _)| k.is_empty() || k.starts_with('$'))
        {
            return Err(HubError::Invalid(format!(
                "property name {k:?} is empty or reserved (names starting with $ are system properties)"
            )));
        }
        let now = now_ms();
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        let queued = C2dMessage {
            id: format!("{now:x}-{:x}", self.next_id()),
            device_id: id.to_string(),
            payload: message.payload,
            properties: message.properties,
            enqueued_ms: now,
            expires_ms: now.saturating_add(ttl_ms),
        };
        let message_id = queued.id.clone();
        let depth = config.max_c2d_depth;
        self.blocking(move |s| s.enqueue(&queued, depth))
            .await
            .map_err(|e| store_error(id, e))?;
        self.deliver_c2d(id).await;
        Ok(message_id)
    }

    /// Messages queued for a device, oldest first.
    pub async fn c2d_queue(&self, id: &str) -> Result<Vec<C2dMessage>, HubError> {
        self.device(id).await?;
        let owned = id.to_string();
        let depth = self.inner.config.max_c2d_depth;
        self.blocking(move |s| s.queued(&owned, depth))
            .await
            .map_err(|e| store_error(id, e))
    }

    /// Drops every queued message of a device (feedback `purged`).
    pub async fn purge_c2d(&self, id: &str) -> Result<usize, HubError> {
        self.device(id).await?;
        let owned = id.to_string();
        let purged = self
            .blocking(move |s| s.purge(&owned, now_ms()))
            .await
            .map_err(|e| store_error(id, e))?;
        self.volatile().c2d_on_wire.remove(id);
        Ok(purged)
    }

    /// Feedback records after sequence number `after`.
    pub async fn feedback(
        &self,
        device: Option<String>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Feedback>, HubError> {
        let limit = limit.clamp(1, 1000);
        self.blocking(move |s| s.feedback(device.as_deref(), after, limit))
            .await
            .map_err(|e| store_error("", e))
    }

    /// Puts queued messages on the wire up to the window; stops at the first the
    /// device cannot take now (offline or not subscribed).
    pub(super) async fn deliver_c2d(&self, device: &str) {
        let window = self.inner.config.c2d_window;
        let owned = device.to_string();
        let limit = window + self.on_wire_count(device);
        let Ok(queued) = self.blocking(move |s| s.queued(&owned, limit)).await else {
            return;
        };
        let now = now_ms();
        for message in queued {
            if message.expires_ms <= now {
                self.complete_c2d(message.id, C2dOutcome::Expired).await;
                continue;
            }
            let Some(receipt) = self.claim(device, &message.id, window) else {
                continue;
            };
            let topic = topics::c2d_topic(device, &system_properties(&message));
            let publish = plain_publish(topic, message.payload, mqtt::QoS::AtLeastOnce);
            let sent = self
                .inner
                .broker
                .send_to(device, publish, Some(receipt))
                .await;
            if !matches!(sent, Ok(SendOutcome::Accepted)) {
                self.release(device, &message.id, receipt);
                return;
            }
        }
    }

    /// Marks a message as on the wire unless it already is or the window is full.
    fn claim(&self, device: &str, message_id: &str, window: usize) -> Option<u64> {
        let receipt = self.next_id();
        let mut state = self.volatile();
        let on_wire = state.c2d_on_wire.entry(device.to_string()).or_default();
        if on_wire.len() >= window || on_wire.iter().any(|m| m == message_id) {
            return None;
        }
        on_wire.push(message_id.to_string());
        let r = Receipt::C2d {
            device: device.to_string(),
            message_id: message_id.to_string(),
        };
        state.receipts.insert(receipt, r);
        Some(receipt)
    }

    fn release(&self, device: &str, message_id: &str, receipt: u64) {
        let mut state = self.volatile();
        state.receipts.remove(&receipt);
        if let Some(on_wire) = state.c2d_on_wire.get_mut(device) {
            on_wire.retain(|m| m != message_id);
        }
    }

    fn on_wire_count(&self, device: &str) -> usize {
        self.volatile().c2d_on_wire.get(device).map_or(0, Vec::len)
    }

    /// The device acknowledged a message: record it and send the next.
    pub(super) async fn c2d_delivered(&self, device: String, message_id: String) {
        if let Some(on_wire) = self.volatile().c2d_on_wire.get_mut(&device) {
            on_wire.retain(|m| *m != message_id);
        }
        self.complete_c2d(message_id, C2dOutcome::Delivered).await;
        self.deliver_c2d(&device).await;
    }

    /// The device went away: what was on the wire goes again when it returns.
    pub(super) fn c2d_disconnected(&self, device: &str) {
        self.volatile().c2d_on_wire.remove(device);
    }

    async fn complete_c2d(&self, message_id: String, outcome: C2dOutcome) {
        let result = self
            .blocking(move |s| s.complete(&message_id, outcome, now_ms()))
            .await;
        match result {
            // Already completed (a duplicate acknowledgement, or purged meanwhile).
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(e) => tracing::warn!(error = %e, "cannot record C2D feedback"),
        }
    }

    /// Moves expired messages to feedback every few seconds, for as long as the hub runs.
    pub(super) async fn expire_c2d_periodically(self) {
        let mut tick = tokio::time::interval(EXPIRY_SWEEP);
        loop {
            tick.tick().await;
            match self.blocking(|s| s.expire(now_ms())).await {
                Ok(expired) if !expired.is_empty() => {
                    tracing::info!(count = expired.len(), "C2D messages expired");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "C2D expiry sweep failed"),
            }
        }
    }
}

/// The property bag of a C2D topic: IoT Hub's system properties, then the message's.
fn system_properties(message: &C2dMessage) -> Vec<(String, String)> {
    let mut props = vec![
        ("$.mid".to_string(), message.id.clone()),
        (
            "$.to".to_string(),
            format!("/devices/{}/messages/devicebound", message.device_id),
        ),
    ];
    props.extend(message.properties.iter().cloned());
    props
}
