//! The queue from the router (and the log's writer thread) to one connection task.
//!
//! A `VecDeque` behind a mutex plus a `Notify`, rather than a tokio channel: an idle
//! connection then holds no buffer at all (tokio's unbounded channel allocates a block of
//! 32 slots per channel up front, several KiB with our item size, which would dominate
//! the per-connection memory budget). The queue is unbounded by type but bounded by
//! policy: QoS 1/2 publishes are limited by the session's in-flight window, and QoS 0
//! publishes are shed once `bytes` passes `Config::max_outbound_bytes`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mqtt::{Packet, PacketId, QoS, ReasonCode};
use tokio::sync::Notify;

use crate::message::Message;

/// One thing for a connection to do.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A message delivery (counted in [`Outbox::bytes`] until written).
    Publish(Outgoing),
    /// Any other packet (acknowledgements, SUBACK, PINGRESP…).
    Packet(Box<Packet>),
    /// Send DISCONNECT with this reason (v5 only) and close.
    Disconnect(ReasonCode),
}

/// One delivery of a shared message: only what differs per subscriber is here; the
/// connection encodes the PUBLISH straight from the shared message, so a queued
/// delivery costs tens of bytes rather than a whole packet.
#[derive(Debug)]
pub(crate) struct Outgoing {
    /// The shared message.
    pub(crate) message: Arc<Message>,
    /// QoS of this delivery.
    pub(crate) qos: QoS,
    /// RETAIN flag to send.
    pub(crate) retain: bool,
    /// Redelivery of an unacknowledged message [MQTT-4.4.0-1].
    pub(crate) dup: bool,
    /// Present exactly when `qos > 0`.
    pub(crate) packet_id: Option<PacketId>,
    /// Subscription identifiers to attach (v5).
    pub(crate) sub_ids: Vec<u32>,
}

/// Per-connection outbound queue shared by the router and the connection task.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    queue: Mutex<VecDeque<Outbound>>,
    notify: Notify,
    /// Payload bytes of queued publishes, for slow-consumer shedding.
    bytes: AtomicUsize,
    /// Set once the connection is gone, so producers stop queueing.
    closed: AtomicBool,
}

impl Outbox {
    /// Queues `item` and wakes the connection; false when the connection is gone.
    pub(crate) fn push(&self, item: Outbound) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        if let Outbound::Publish(p) = &item {
            self.bytes
                .fetch_add(p.message.payload.len(), Ordering::Relaxed);
        }
        match self.queue.lock() {
            Ok(mut q) => q.push_back(item),
            Err(poisoned) => poisoned.into_inner().push_back(item),
        }
        self.notify.notify_one();
        true
    }

    /// Takes everything queued; the connection writes it and then calls [`Outbox::written`].
    pub(crate) fn take(&self) -> VecDeque<Outbound> {
        match self.queue.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }

    /// Records that `n` payload bytes left the queue.
    pub(crate) fn written(&self, n: usize) {
        self.bytes.fetch_sub(n, Ordering::Relaxed);
    }

    /// Payload bytes queued and not yet written.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Waits until something is queued.
    pub(crate) async fn ready(&self) {
        self.notify.notified().await;
    }

    /// Marks the connection gone; later pushes are refused.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}
