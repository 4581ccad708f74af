//! The telemetry hand-off to the data pipeline, with backpressure instead of loss.
//!
//! A tapped telemetry message carries its publisher's PUBACK ([`broker::service::Hold`]),
//! so no consumer may skip one: a message skipped would be acknowledged and never
//! stored. Each subscriber ([`Hub::telemetry`](super::Hub::telemetry)) therefore gets
//! its own bounded queue, and a message goes to every subscriber or waits.
//!
//! Where it waits matters. The hub's broker event loop serves every device's requests
//! (twins, methods, presence), and the broker drops events rather than wait for it, so
//! that loop never awaits room here. When a queue is full the message joins its
//! publisher's backlog and one task per backlogged publisher waits for room; the
//! publisher's later messages queue behind it (order is kept per device) while every
//! other publisher and the control plane carry on. The backlog is bounded by the
//! broker's receive maximum per connection: a publisher whose PUBACKs wait here stops
//! sending, which is MQTT's own flow control.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::mpsc;

use super::Telemetry;

/// Telemetry for one subscriber; see [`Hub::telemetry`](super::Hub::telemetry).
#[derive(Debug)]
pub struct TelemetryReceiver {
    rx: mpsc::Receiver<Telemetry>,
}

impl TelemetryReceiver {
    /// The next message; `None` once the hub has stopped.
    pub async fn recv(&mut self) -> Option<Telemetry> {
        self.rx.recv().await
    }

    /// The next message if one is queued, without waiting (for batching).
    pub fn try_recv(&mut self) -> Option<Telemetry> {
        self.rx.try_recv().ok()
    }

    /// Messages queued for this subscriber now.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// Whether no message is queued for this subscriber now.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }
}

/// The subscribers and the publishers waiting for room.
#[derive(Default)]
pub(super) struct Handoff {
    subscribers: Mutex<Vec<mpsc::Sender<Telemetry>>>,
    /// Messages waiting for room, per publisher, oldest first; a publisher has an entry
    /// exactly while its drain task runs.
    backlog: Mutex<HashMap<Arc<str>, VecDeque<Telemetry>>>,
    /// Messages that had to wait for room, ever.
    delayed: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Both maps stay consistent across a panic (single pushes and pops).
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Handoff {
    /// A new subscriber whose queue holds `capacity` messages (at least 1).
    pub(super) fn subscribe(&self, capacity: usize) -> TelemetryReceiver {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        lock(&self.subscribers).push(tx);
        TelemetryReceiver { rx }
    }

    /// Whether anyone listens; with no subscriber a message is not held at all.
    pub(super) fn listened(&self) -> bool {
        let mut subscribers = lock(&self.subscribers);
        subscribers.retain(|s| !s.is_closed());
        !subscribers.is_empty()
    }

    /// Hands `t` to every subscriber now, or queues it behind its publisher's backlog
    /// (starting that publisher's drain task); never waits.
    pub(super) fn offer(self: &Arc<Self>, t: Telemetry) {
        let mut backlog = lock(&self.backlog);
        if let Some(queue) = backlog.get_mut(&t.device_id) {
            queue.push_back(t);
            self.delayed.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Some(t) = self.try_deliver(t) {
            self.delayed.fetch_add(1, Ordering::Relaxed);
            let device = t.device_id.clone();
            backlog.insert(device.clone(), VecDeque::from([t]));
            drop(backlog);
            tokio::spawn(self.clone().drain(device));
        }
    }

    /// Delivers `t` to every subscriber if each has room; gives it back otherwise.
    fn try_deliver(&self, t: Telemetry) -> Option<Telemetry> {
        let subscribers = lock(&self.subscribers);
        let mut permits = Vec::with_capacity(subscribers.len());
        for s in subscribers.iter() {
            match s.try_reserve() {
                Ok(permit) => permits.push(permit),
                Err(mpsc::error::TrySendError::Full(())) => return Some(t),
                Err(mpsc::error::TrySendError::Closed(())) => {} // gone: not waited for
            }
        }
        send_all(permits, t);
        None
    }

    /// Moves `device`'s backlog to the subscribers as room appears, oldest first.
    async fn drain(self: Arc<Self>, device: Arc<str>) {
        loop {
            let subscribers = lock(&self.subscribers).clone();
            let mut permits = Vec::with_capacity(subscribers.len());
            for s in &subscribers {
                if let Ok(permit) = s.reserve().await {
                    permits.push(permit);
                }
            }
            // Sent under the lock, so a newer message of this publisher cannot overtake.
            let mut backlog = lock(&self.backlog);
            let Some(queue) = backlog.get_mut(&device) else {
                return;
            };
            let next = queue.pop_front();
            if queue.is_empty() {
                backlog.remove(&device);
            }
            let Some(t) = next else {
                return;
            };
            send_all(permits, t);
            if !backlog.contains_key(&device) {
                return;
            }
        }
    }

    /// Messages waiting for room, across publishers (for tests and gauges).
    pub(super) fn waiting(&self) -> usize {
        lock(&self.backlog).values().map(VecDeque::len).sum()
    }

    /// Messages that ever had to wait for room (a counter).
    pub(super) fn delayed(&self) -> u64 {
        self.delayed.load(Ordering::Relaxed)
    }
}

/// Sends `t` through every permit: a clone to each but the last, which gets `t`.
fn send_all(mut permits: Vec<mpsc::Permit<'_, Telemetry>>, t: Telemetry) {
    let Some(last) = permits.pop() else {
        return; // no subscriber left: nobody to hold the message for
    };
    for permit in permits {
        permit.send(t.clone());
    }
    last.send(t);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(device: &str, n: u8) -> Telemetry {
        Telemetry {
            device_id: Arc::from(device),
            properties: Vec::new(),
            content_type: None,
            payload: bytes::Bytes::from(vec![n]),
            received_ms: 0,
            arrived: std::time::Instant::now(),
            hold: None,
        }
    }

    #[tokio::test]
    async fn a_full_queue_waits_in_order_and_loses_nothing() {
        let handoff = Arc::new(Handoff::default());
        let mut rx = handoff.subscribe(2);
        for n in 0..10 {
            handoff.offer(message("a", n));
        }
        handoff.offer(message("b", 100));
        assert_eq!(rx.len(), 2);
        assert_eq!((handoff.waiting(), handoff.delayed()), (9, 9));
        let mut a = Vec::new();
        let mut b = Vec::new();
        while a.len() < 10 || b.is_empty() {
            let t = rx.recv().await.expect("open");
            let into = if &*t.device_id == "a" { &mut a } else { &mut b };
            into.push(t.payload[0]);
        }
        assert_eq!(a, (0..10).collect::<Vec<u8>>());
        assert_eq!(b, [100]);
        assert_eq!(handoff.waiting(), 0);
    }

    #[tokio::test]
    async fn every_subscriber_gets_every_message_and_a_dropped_one_is_forgotten() {
        let handoff = Arc::new(Handoff::default());
        let mut first = handoff.subscribe(4);
        let second = handoff.subscribe(1);
        handoff.offer(message("a", 1));
        handoff.offer(message("a", 2));
        assert_eq!(handoff.waiting(), 1);
        drop(second);
        assert_eq!(first.recv().await.map(|t| t.payload[0]), Some(1));
        assert_eq!(first.recv().await.map(|t| t.payload[0]), Some(2));
        assert!(handoff.listened());
        drop(first);
        assert!(!handoff.listened());
    }
}
