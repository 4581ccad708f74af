//! What applications built on the hub may do besides managing devices: publish into the
//! broker and raise their own events next to the device lifecycle events.
//!
//! The data pipeline is the first such application: its rules republish messages and
//! raise alerts and anomaly events. Going through the hub keeps one path for both
//! (`/api/events` listeners and `$bosun/events/…` subscribers see them all).

use serde_json::Value;

use super::{plain_publish, Hub, HubError};

impl Hub {
    /// Publishes `payload` on `topic` to whoever subscribed, as the hub itself (no ACL:
    /// the caller decided the topic).
    pub async fn publish(
        &self,
        topic: String,
        payload: Vec<u8>,
        qos: mqtt::QoS,
    ) -> Result<(), HubError> {
        self.inner
            .broker
            .publish(plain_publish(topic, payload, qos))
            .await
            .map_err(|_| HubError::Unavailable("the broker is stopping".into()))
    }

    /// Announces an application event about `device_id` (kind such as `anomaly` or
    /// `alert`) on `/api/events` and `$bosun/events/{kind}/{device}`.
    pub fn raise(&self, kind: &'static str, device_id: &str, detail: Value) {
        self.announce(kind, device_id, detail);
    }
}
