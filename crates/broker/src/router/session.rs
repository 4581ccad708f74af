//! One MQTT session as the router keeps it: subscriptions, the queue of messages not yet
//! sent, and the window of messages sent but not yet acknowledged.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use mqtt::{PacketId, QoS, Will};

use super::ConnHandle;
use crate::message::Message;

/// Options of one subscription, as the trie stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SubOptions {
    /// Maximum QoS granted.
    pub(crate) qos: QoS,
    /// Do not deliver the session's own messages.
    pub(crate) no_local: bool,
    /// Keep the RETAIN flag as published.
    pub(crate) retain_as_published: bool,
    /// Subscription identifier to attach to deliveries.
    pub(crate) sub_id: Option<u32>,
}

/// One message on its way to one session.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    /// The shared message.
    pub(crate) message: Arc<Message>,
    /// QoS of this delivery.
    pub(crate) qos: QoS,
    /// RETAIN flag to send.
    pub(crate) retain: bool,
    /// Subscription identifiers to send.
    pub(crate) sub_ids: Vec<u32>,
    /// The shared subscription group it came through, for redelivery elsewhere.
    pub(crate) shared: Option<Arc<str>>,
}

/// State of a QoS 1/2 delivery awaiting acknowledgement.
#[derive(Debug)]
pub(crate) struct Inflight {
    /// What was sent.
    pub(crate) delivery: Delivery,
    /// QoS 2 only: PUBREC arrived and PUBREL was sent; waiting for PUBCOMP.
    pub(crate) released: bool,
}

/// A session, connected or not.
#[derive(Debug)]
pub(crate) struct Session {
    /// Client identifier.
    pub(crate) client_id: Arc<str>,
    /// Seconds the session outlives its connection; 0 ends it with the connection.
    pub(crate) expiry: u32,
    /// The live connection, if any.
    pub(crate) conn: Option<ConnHandle>,
    /// Filter (as sent, `$share/…` included) to options. A vector: devices hold a
    /// handful of subscriptions, where a scan beats a hash map in time and memory.
    pub(crate) subscriptions: Vec<(Box<str>, SubOptions)>,
    /// Messages waiting for the connection or for room in the window.
    pub(crate) queue: VecDeque<Delivery>,
    /// Payload bytes held in `queue`.
    pub(crate) queued_bytes: usize,
    /// Sent, not yet acknowledged, by packet id.
    pub(crate) inflight: BTreeMap<PacketId, Inflight>,
    /// Last packet id handed out; the next search starts after it.
    pub(crate) last_packet_id: PacketId,
    /// Will of the current (or just lost) connection.
    pub(crate) will: Option<Box<Will>>,
    /// QoS 2 packet ids received and not yet released, carried across reconnects.
    /// A boxed slice, not a `Vec`: eight bytes less per session keeps `Session` in a
    /// smaller allocation class, and the list is only written when a connection ends.
    pub(crate) qos2_pending: Box<[PacketId]>,
    /// Pending expiry or delayed-will timers, to cancel on reconnect.
    pub(crate) timers: Vec<(Instant, u64)>,
}

impl Session {
    /// A fresh, empty session.
    pub(crate) fn new(client_id: Arc<str>, expiry: u32) -> Session {
        Session {
            client_id,
            expiry,
            conn: None,
            subscriptions: Vec::new(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            inflight: BTreeMap::new(),
            last_packet_id: 0,
            will: None,
            qos2_pending: Box::default(),
            timers: Vec::new(),
        }
    }

    /// Whether the session outlives its connection, and so is logged.
    pub(crate) fn persistent(&self) -> bool {
        self.expiry > 0
    }

    /// How many QoS 1/2 messages may be unacknowledged towards the client.
    pub(crate) fn window(&self, max_inflight: u16) -> usize {
        let client = self
            .conn
            .as_ref()
            .map_or(max_inflight, |c| c.receive_maximum);
        usize::from(client.min(max_inflight).max(1))
    }

    /// Adds or replaces the subscription to `filter`.
    pub(crate) fn set_subscription(&mut self, filter: &str, options: SubOptions) {
        match self.subscriptions.iter_mut().find(|(f, _)| &**f == filter) {
            Some((_, o)) => *o = options,
            None => self.subscriptions.push((filter.into(), options)),
        }
    }

    /// Removes the subscription to `filter`; false if there was none.
    pub(crate) fn remove_subscription(&mut self, filter: &str) -> bool {
        let before = self.subscriptions.len();
        self.subscriptions.retain(|(f, _)| &**f != filter);
        self.subscriptions.len() != before
    }

    /// Next free packet identifier, or `None` when all 65,535 are in flight.
    pub(crate) fn allocate_packet_id(&mut self) -> Option<PacketId> {
        let mut id = self.last_packet_id;
        for _ in 0..u16::MAX {
            id = if id == u16::MAX { 1 } else { id + 1 };
            if !self.inflight.contains_key(&id) {
                self.last_packet_id = id;
                return Some(id);
            }
        }
        None
    }
}
