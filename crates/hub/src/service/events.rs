//! The broker's side of the conversation: presence from connects and disconnects,
//! device requests on `$iothub/…`, telemetry attribution, acknowledgement receipts;
//! `$dps/…` requests go to `provisioning.rs`.

use broker::service::{ServiceEvent, ServicePublish};
use serde_json::json;
use store::{ConnectionState, StoreError};
use tokio::sync::mpsc;

use super::{now_ms, Hub, Receipt};
use crate::topics::{self, DeviceTopic};

/// A topic a device's desired-update subscription matches.
const DESIRED_PROBE: &str = "$iothub/twin/PATCH/properties/desired/?$version=1";

impl Hub {
    /// Serves broker events until the broker stops.
    pub(super) async fn serve_broker(self, mut events: mpsc::Receiver<ServiceEvent>) {
        while let Some(event) = events.recv().await {
            self.on_event(event).await;
        }
        tracing::debug!("broker event stream ended");
    }

    async fn on_event(&self, event: ServiceEvent) {
        match event {
            ServiceEvent::Connected { client_id, .. } => {
                if self.inner.config.registrations.get(&client_id).is_some() {
                    return; // a provisioning client, not the device (yet)
                }
                self.presence(&client_id, ConnectionState::Connected, "connected")
                    .await;
                self.inner.arrivals.notify_waiters();
            }
            ServiceEvent::Disconnected { client_id, cause } => {
                if self.inner.config.registrations.remove(&client_id) {
                    return; // a provisioning client left
                }
                self.c2d_disconnected(&client_id);
                self.volatile().activity_written.remove(&*client_id);
                let reason = cause.describe();
                self.presence(&client_id, ConnectionState::Disconnected, reason)
                    .await;
            }
            ServiceEvent::Subscribed { client_id, filters } => {
                self.on_subscribed(&client_id, &filters).await;
            }
            ServiceEvent::Publish(publish) => self.on_device_publish(*publish).await,
            ServiceEvent::Delivered { receipt } => {
                let done = self.volatile().receipts.remove(&receipt);
                match done {
                    Some(Receipt::C2d { device, message_id }) => {
                        self.c2d_delivered(device, message_id).await;
                    }
                    Some(Receipt::Desired {
                        device,
                        json,
                        version,
                    }) => self.desired_delivered(device, json, version).await,
                    None => {}
                }
            }
        }
    }

    /// Records a connection change for a registered device and announces it.
    pub(super) async fn presence(
        &self,
        device: &str,
        state: ConnectionState,
        reason: &'static str,
    ) {
        if !self.inner.known.may_be_device(device) {
            return; // a plain MQTT client: no store trip on its connect
        }
        let owned = device.to_string();
        let result = self
            .blocking(move |s| s.set_connection(&owned, state, reason, now_ms()))
            .await;
        match result {
            Ok(()) => {
                if state == ConnectionState::Connected {
                    // The connect itself is activity (`set_connection` recorded it). Only
                    // registered devices get an entry: a plain MQTT client costs nothing.
                    let now = now_ms();
                    self.volatile()
                        .activity_written
                        .insert(device.to_string(), now);
                }
                let kind = match state {
                    ConnectionState::Connected => "deviceConnected",
                    ConnectionState::Disconnected => "deviceDisconnected",
                };
                self.announce(kind, device, json!({ "reason": reason }));
            }
            Err(StoreError::NotFound) => {} // a plain MQTT client, not a device
            Err(e) => tracing::warn!(device, error = %e, "cannot record presence"),
        }
    }

    /// A device subscribed: catch it up on desired properties and C2D messages, and
    /// wake method calls waiting for it.
    async fn on_subscribed(&self, device: &str, filters: &[String]) {
        let devicebound = format!("devices/{device}/messages/devicebound/probe");
        let matches = |topic: &str| filters.iter().any(|f| mqtt::topic::matches(f, topic));
        let (desired, c2d) = (matches(DESIRED_PROBE), matches(&devicebound));
        if (desired || c2d) && !self.ensure_registered(device).await {
            return;
        }
        if desired {
            self.sync_desired(device).await;
        }
        if c2d {
            self.deliver_c2d(device).await;
        }
        self.inner.arrivals.notify_waiters();
    }

    /// Records that a device did something, at most once a minute per device.
    async fn note_activity(&self, device: &str) {
        let now = now_ms();
        {
            let mut state = self.volatile();
            let last = state
                .activity_written
                .entry(device.to_string())
                .or_insert(0);
            if now - *last < super::ACTIVITY_RESOLUTION_MS {
                return;
            }
            *last = now;
        }
        let owned = device.to_string();
        match self.blocking(move |s| s.touch(&owned, now)).await {
            Ok(()) | Err(StoreError::NotFound) => {}
            Err(e) => tracing::warn!(device, error = %e, "cannot record activity"),
        }
    }

    /// Passes a device's telemetry to whoever listens (the data pipeline); while a
    /// listener is full the message waits with its publisher's PUBACK (`handoff`),
    /// never this loop.
    fn hand_over_telemetry(
        &self,
        device_id: std::sync::Arc<str>,
        properties: Vec<(String, String)>,
        p: &ServicePublish,
    ) {
        if !self.inner.telemetry.listened() {
            return;
        }
        let content_type = p
            .properties
            .as_ref()
            .and_then(|props| props.content_type.clone());
        self.inner.telemetry.offer(super::Telemetry {
            device_id,
            properties,
            content_type,
            payload: p.payload.clone(),
            received_ms: now_ms(),
            arrived: std::time::Instant::now(),
            hold: p.hold.clone(),
        });
    }

    /// A publish the hub consumed or tapped.
    async fn on_device_publish(&self, p: ServicePublish) {
        if p.topic.starts_with("$dps/") {
            // From a registration, not a device: no activity, no auto-registration.
            return self.on_provisioning_publish(p).await;
        }
        let device = &*p.client_id;
        self.note_activity(device).await;
        let parsed = match topics::parse(&p.topic) {
            None => return,
            Some(Err(e)) => {
                tracing::info!(device, topic = %p.topic, error = %e, "malformed device topic");
                return;
            }
            Some(Ok(t)) => t,
        };
        if let DeviceTopic::Telemetry {
            device_id,
            properties,
        } = parsed
        {
            if device_id == device {
                self.hand_over_telemetry(p.client_id.clone(), properties, &p);
            } else {
                // Attributed to the authenticated client, never to what the topic says.
                tracing::warn!(device, claimed = %device_id, "telemetry on another device's topic ignored");
            }
            return;
        }
        if !self.ensure_registered(device).await {
            tracing::info!(device, topic = %p.topic, "request from an unregistered device ignored");
            return;
        }
        match parsed {
            DeviceTopic::TwinGet { rid } => self.device_twin_get(device, &rid).await,
            DeviceTopic::TwinPatchReported { rid } => {
                self.device_reported_patch(device, &rid, &p.payload).await;
            }
            DeviceTopic::MethodResponse { status, rid } => {
                self.method_answer(device, status, &rid, &p.payload);
            }
            // Handled above, before the device checks.
            DeviceTopic::DpsRegister { .. } | DeviceTopic::DpsPoll { .. } => {}
            DeviceTopic::Telemetry { .. } => {}
        }
    }
}
