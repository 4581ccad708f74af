//! The queue from the router (and the log's writer thread) to one connection task.
//!
//! A `VecDeque` and the task's waker behind one mutex, rather than a tokio channel: an idle
//! connection then holds no buffer at all (tokio's unbounded channel allocates a block of
//! 32 slots per channel up front, several KiB with our item size, which would dominate
//! the per-connection memory budget). The queue is unbounded by type but bounded by
//! policy: QoS 1/2 publishes are limited by the session's in-flight window, and QoS 0
//! publishes are shed once `bytes` passes `Config::max_outbound_bytes`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use mqtt::{Packet, PacketId, QoS, ReasonCode};

use crate::message::Message;

/// One thing for a connection to do.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A message delivery (counted in [`Outbox::bytes`] until written).
    Publish(Outgoing),
    /// Any other packet (acknowledgements, SUBACK, PINGRESP…).
    Packet(Box<Packet>),
    /// Send DISCONNECT with this reason code and reason string (v5 only) and close.
    Disconnect(ReasonCode, &'static str),
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

/// The queue and the connection task's waker, under one lock so a push can never slip
/// between the task's emptiness check and its going to sleep.
#[derive(Debug, Default)]
struct Inner {
    queue: VecDeque<Outbound>,
    waker: Option<Waker>,
}

impl Outgoing {
    /// The PUBLISH as it goes on the wire, with this connection's topic (empty when an
    /// alias stands in) and the per-subscriber properties.
    pub(crate) fn view<'a>(
        &'a self,
        topic: &'a str,
        properties: &'a mqtt::Properties,
    ) -> mqtt::PublishView<'a> {
        mqtt::PublishView {
            dup: self.dup,
            qos: self.qos,
            retain: self.retain,
            topic,
            packet_id: self.packet_id,
            properties,
            payload: &self.message.payload,
        }
    }
}

/// Per-connection outbound queue shared by the router and the connection task.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    inner: Mutex<Inner>,
    /// Payload bytes of queued publishes, for slow-consumer shedding.
    bytes: AtomicUsize,
    /// Set once the connection is gone, so producers stop queueing.
    closed: AtomicBool,
    /// When the client was last heard from, in [`clock_ms`] milliseconds.
    last_seen_ms: AtomicU64,
    /// 1.5 × the keep-alive in milliseconds [MQTT-3.1.2-22]; 0 disables the check.
    grace_ms: u64,
    /// When the client's credentials expire, in [`clock_ms`] milliseconds; 0: never.
    /// Read by the same once-a-second sweep as the keep-alive, so an expiring token
    /// costs no timer.
    expires_ms: u64,
}

/// Milliseconds on the broker's monotonic clock (since its first use), shared by the
/// connections that stamp activity and the router that sweeps for silence.
pub(crate) fn clock_ms() -> u64 {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    EPOCH
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

impl Outbox {
    /// An empty outbox for a connection with this keep-alive (`None`: no check).
    pub(crate) fn new(keep_alive: Option<std::time::Duration>) -> Outbox {
        let grace_ms = keep_alive.map_or(0, |k| k.as_millis() as u64);
        Outbox {
            last_seen_ms: AtomicU64::new(clock_ms()),
            grace_ms,
            ..Outbox::default()
        }
    }

    /// Sets when the client's credentials expire (`None`: never). Converted from wall
    /// clock to the monotonic [`clock_ms`] once, here, so a clock step afterwards
    /// neither shortens nor extends the connection; a time already past is 1 ms from
    /// the clock's start, due at the next sweep.
    pub(crate) fn expiring_at(mut self, at: Option<std::time::SystemTime>) -> Outbox {
        self.expires_ms = match at {
            None => 0,
            Some(at) => {
                let left = at
                    .duration_since(std::time::SystemTime::now())
                    .unwrap_or_default();
                clock_ms().saturating_add(left.as_millis() as u64).max(1)
            }
        };
        self
    }

    /// True once the client's credentials have expired.
    pub(crate) fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_ms > 0 && now_ms >= self.expires_ms
    }

    /// Records that the client was heard from just now.
    pub(crate) fn touch(&self) {
        self.last_seen_ms.store(clock_ms(), Ordering::Relaxed);
    }

    /// True once the client has been silent for longer than 1.5 × its keep-alive.
    pub(crate) fn is_silent(&self, now_ms: u64) -> bool {
        self.grace_ms > 0 && now_ms > self.last_seen_ms.load(Ordering::Relaxed) + self.grace_ms
    }

    /// Queues `item` and wakes the connection; false when the connection is gone.
    pub(crate) fn push(&self, item: Outbound) -> bool {
        if self.closed.load(Ordering::Acquire) {
            return false;
        }
        if let Outbound::Publish(p) = &item {
            self.bytes
                .fetch_add(p.message.payload.len(), Ordering::Relaxed);
        }
        let waker = {
            let mut inner = self.lock();
            inner.queue.push_back(item);
            inner.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    /// Takes everything queued; the connection writes it and then calls [`Outbox::written`].
    pub(crate) fn take(&self) -> VecDeque<Outbound> {
        std::mem::take(&mut self.lock().queue)
    }

    /// The lock; a poisoned lock still holds a consistent queue (pushes cannot panic
    /// half-way), so it is used as is.
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that `n` payload bytes left the queue.
    pub(crate) fn written(&self, n: usize) {
        self.bytes.fetch_sub(n, Ordering::Relaxed);
    }

    /// Payload bytes queued and not yet written.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Ready once something is queued; otherwise remembers the task's waker. A poll
    /// function rather than a future, so an idle connection's task holds no waiter.
    pub(crate) fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut inner = self.lock();
        if !inner.queue.is_empty() {
            return Poll::Ready(());
        }
        if !inner
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            inner.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Marks the connection gone; later pushes are refused.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}
