//! One device of the pipeline bench: an MQTT connection with the device's own client id,
//! publishing telemetry at QoS 1 and counting what comes back (PUBACKs and C2D
//! messages on its devicebound topic, which it acknowledges).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use mqtt::{Ack, Packet, QoS};

use crate::client::{self, Client, Options};

/// The payload of the command the default anomaly rules send.
const CAPTURE: &str = r#"{"cmd":"capture","rate_hz":10000,"seconds":30}"#;

/// A connected device.
pub(super) struct Device {
    /// Its id, also its MQTT client id.
    pub(super) id: String,
    client: Client,
    topic: String,
    c2d_prefix: String,
    next_pid: u16,
    /// QoS 1 publishes sent.
    pub(super) sent: u64,
    /// PUBACKs received.
    pub(super) acked: u64,
    /// `capture` commands received.
    pub(super) captures: u32,
    /// When the first `capture` command arrived.
    pub(super) first_capture: Option<Instant>,
    /// Devicebound messages that were not the capture command.
    pub(super) other_c2d: u32,
}

impl Device {
    /// Connects as `id`, publishing on its events topic with property bag `bag`, and
    /// subscribes to its devicebound topic if `c2d`.
    pub(super) async fn connect(
        addr: SocketAddr,
        id: &str,
        bag: &str,
        c2d: bool,
    ) -> Result<Device> {
        let mut client = client::connect(addr, &Options::new(id))
            .await
            .with_context(|| format!("device {id}"))?;
        let c2d_prefix = format!("devices/{id}/messages/devicebound/");
        if c2d {
            client
                .subscribe(&format!("{c2d_prefix}#"), QoS::AtLeastOnce)
                .await
                .with_context(|| format!("device {id}"))?;
        }
        Ok(Device {
            id: id.to_owned(),
            client,
            topic: format!("devices/{id}/messages/events/{bag}"),
            c2d_prefix,
            next_pid: 1,
            sent: 0,
            acked: 0,
            captures: 0,
            first_capture: None,
            other_c2d: 0,
        })
    }

    /// Queues one QoS 1 message (sent by the next [`Device::flush`]).
    pub(super) fn push(&mut self, payload: Bytes) -> Result<()> {
        let pid = self.next_pid;
        self.next_pid = self.next_pid.checked_add(1).unwrap_or(1);
        let packet = client::publish(&self.topic, QoS::AtLeastOnce, Some(pid), payload);
        self.client.writer.push(&packet)?;
        self.sent += 1;
        Ok(())
    }

    /// Sends everything queued.
    pub(super) async fn flush(&mut self) -> Result<()> {
        self.client.writer.flush().await
    }

    /// Publishes `count` messages, `payload(k)` being message `k`, with at most
    /// `window` unacknowledged, and returns when all are acknowledged.
    pub(super) async fn publish_all<F>(&mut self, count: u64, window: u64, payload: F) -> Result<()>
    where
        F: Fn(u64) -> Bytes,
    {
        let (start, target) = (self.sent, self.sent + count);
        while self.acked < target {
            while self.sent < target && self.sent - self.acked < window.max(1) {
                self.push(payload(self.sent - start))?;
            }
            self.flush().await?;
            self.next_packet().await?;
        }
        Ok(())
    }

    /// Reads packets until `done` holds or `limit` has passed; says whether it held.
    pub(super) async fn wait_for<F>(&mut self, limit: Duration, done: F) -> Result<bool>
    where
        F: Fn(&Device) -> bool,
    {
        let deadline = tokio::time::Instant::now() + limit;
        while !done(self) {
            match tokio::time::timeout_at(deadline, self.next_packet()).await {
                Ok(read) => read?,
                Err(_) => return Ok(false),
            }
        }
        Ok(true)
    }

    /// Reads and handles one packet.
    async fn next_packet(&mut self) -> Result<()> {
        let packet = self
            .client
            .reader
            .next()
            .await
            .with_context(|| format!("device {}", self.id))?;
        match packet {
            Some(Packet::PubAck(_)) => self.acked += 1,
            Some(Packet::Publish(p)) if p.topic.starts_with(&self.c2d_prefix) => {
                let now = Instant::now();
                if let Some(id) = p.packet_id {
                    self.client.writer.push(&Packet::PubAck(Ack::success(id)))?;
                    self.flush().await?;
                }
                if is_capture(&p.payload) {
                    self.captures += 1;
                    self.first_capture.get_or_insert(now);
                } else {
                    self.other_c2d += 1;
                }
            }
            Some(other) => bail!("device {}: unexpected {}", self.id, other.name()),
            None => bail!("device {}: the broker closed the connection", self.id),
        }
        Ok(())
    }
}

/// Whether a C2D payload is the `capture` command (compared as JSON).
fn is_capture(payload: &[u8]) -> bool {
    let expected: Option<serde_json::Value> = serde_json::from_str(CAPTURE).ok();
    serde_json::from_slice::<serde_json::Value>(payload).ok() == expected
}

/// Milliseconds since the Unix epoch.
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_payloads() {
        assert!(is_capture(
            br#"{"seconds":30,"cmd":"capture","rate_hz":10000}"#
        ));
        assert!(!is_capture(br#"{"cmd":"capture"}"#));
        assert!(!is_capture(b"not json"));
    }
}
