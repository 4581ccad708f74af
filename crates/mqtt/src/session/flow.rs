//! Flow control of QoS 1/2 PUBLISH: how many may be unacknowledged at once, and which
//! QoS 2 messages have been received but not yet released.
//!
//! Both bounds come from Receive Maximum (MQTT 5; 65535 when absent and on 3.1.1), the
//! number of QoS 1/2 PUBLISH a receiver is willing to hold open at a time.

use alloc::collections::BTreeSet;

use thiserror::Error;

use crate::{PacketId, ReasonCode};

/// Send quota for QoS 1/2 PUBLISH towards a peer that announced `receive_maximum`.
///
/// Acquire before sending a QoS 1/2 PUBLISH; once the quota is spent nothing more may
/// be sent at QoS > 0 until a PUBACK, a PUBCOMP or an error PUBREC releases a slot
/// [MQTT-4.9.0-2]. QoS 0 is not limited [MQTT-4.9.0-3].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InflightWindow {
    limit: u16,
    in_flight: u16,
}

impl InflightWindow {
    /// A window of `receive_maximum` slots. The decoder rejects a Receive Maximum of 0
    /// as a protocol error; should one get here, the window never opens.
    pub fn new(receive_maximum: u16) -> Self {
        InflightWindow {
            limit: receive_maximum,
            in_flight: 0,
        }
    }

    /// Takes a slot for one QoS 1/2 PUBLISH; `false` means wait for an acknowledgement
    /// (queue the message) instead of sending.
    pub fn try_acquire(&mut self) -> bool {
        if self.in_flight >= self.limit {
            return false;
        }
        self.in_flight += 1;
        true
    }

    /// Returns a slot when a flow completes. Releasing more than was acquired is
    /// ignored, so a stray acknowledgement cannot widen the window.
    pub fn release(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// How many more QoS 1/2 PUBLISH may be sent now.
    pub fn available(&self) -> u16 {
        self.limit - self.in_flight
    }

    /// How many QoS 1/2 PUBLISH are awaiting acknowledgement.
    pub fn in_flight(&self) -> u16 {
        self.in_flight
    }

    /// The peer's Receive Maximum.
    pub fn limit(&self) -> u16 {
        self.limit
    }
}

/// What to do with a received QoS 2 PUBLISH; either way the answer is PUBREC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qos2Publish {
    /// First time this identifier is seen: deliver the message.
    New,
    /// A retransmission before PUBREL: do not deliver it again [MQTT-4.3.3].
    Duplicate,
}

/// The peer has more QoS 2 messages awaiting PUBREL than the Receive Maximum we
/// announced; the connection must be closed with 0x93.
#[derive(Clone, Copy, Debug, Error, PartialEq, Eq)]
#[error("more than {receive_maximum} QoS 2 messages are awaiting PUBREL")]
pub struct ReceiveMaximumExceeded {
    /// The Receive Maximum we announced.
    pub receive_maximum: u16,
}

impl ReceiveMaximumExceeded {
    /// The DISCONNECT reason, Receive Maximum exceeded.
    pub fn reason_code(self) -> ReasonCode {
        ReasonCode::RECEIVE_MAXIMUM_EXCEEDED
    }
}

/// Receiver side of exactly-once delivery: the packet identifiers of QoS 2 messages for
/// which PUBREC was sent and PUBREL has not arrived yet.
///
/// Remembering them is what turns at-least-once transmission into exactly-once
/// delivery: a retransmitted PUBLISH with a remembered identifier is a duplicate. The
/// set is bounded by our Receive Maximum.
#[derive(Clone, Debug)]
pub struct Qos2Inbound {
    receive_maximum: u16,
    awaiting_release: BTreeSet<PacketId>,
}

impl Qos2Inbound {
    /// An empty set for a connection on which we announced `receive_maximum`.
    pub fn new(receive_maximum: u16) -> Self {
        Qos2Inbound {
            receive_maximum,
            awaiting_release: BTreeSet::new(),
        }
    }

    /// Records a received QoS 2 PUBLISH and says whether it is new. A new identifier
    /// beyond the Receive Maximum is an error and is not recorded.
    pub fn on_publish(&mut self, id: PacketId) -> Result<Qos2Publish, ReceiveMaximumExceeded> {
        if self.awaiting_release.contains(&id) {
            return Ok(Qos2Publish::Duplicate);
        }
        if self.awaiting_release.len() >= usize::from(self.receive_maximum) {
            return Err(ReceiveMaximumExceeded {
                receive_maximum: self.receive_maximum,
            });
        }
        self.awaiting_release.insert(id);
        Ok(Qos2Publish::New)
    }

    /// Forgets an identifier on PUBREL. `false` means it was unknown: answer PUBCOMP
    /// with 0x92, Packet Identifier not found.
    pub fn on_pubrel(&mut self, id: PacketId) -> bool {
        self.awaiting_release.remove(&id)
    }

    /// Whether a PUBREL is awaited for `id`.
    pub fn contains(&self, id: PacketId) -> bool {
        self.awaiting_release.contains(&id)
    }

    /// Number of messages awaiting PUBREL.
    pub fn len(&self) -> usize {
        self.awaiting_release.len()
    }

    /// Whether no message awaits PUBREL.
    pub fn is_empty(&self) -> bool {
        self.awaiting_release.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_limits_unacknowledged_publishes() {
        let mut w = InflightWindow::new(2);
        assert_eq!(w.available(), 2);
        assert!(w.try_acquire());
        assert!(w.try_acquire());
        assert!(!w.try_acquire());
        assert_eq!((w.available(), w.in_flight(), w.limit()), (0, 2, 2));
        w.release();
        assert_eq!(w.available(), 1);
        assert!(w.try_acquire());
    }

    #[test]
    fn window_ignores_stray_releases() {
        let mut w = InflightWindow::new(1);
        w.release();
        assert_eq!(w.available(), 1);
        assert!(w.try_acquire());
        assert!(!w.try_acquire());
    }

    #[test]
    fn zero_window_never_opens() {
        let mut w = InflightWindow::new(0);
        assert!(!w.try_acquire());
        assert_eq!(w.available(), 0);
    }

    #[test]
    fn full_size_window() {
        let mut w = InflightWindow::new(u16::MAX);
        for _ in 0..u16::MAX {
            assert!(w.try_acquire());
        }
        assert!(!w.try_acquire());
    }

    #[test]
    fn qos2_duplicates_are_not_new() {
        let mut q = Qos2Inbound::new(10);
        assert_eq!(q.on_publish(7), Ok(Qos2Publish::New));
        assert_eq!(q.on_publish(7), Ok(Qos2Publish::Duplicate));
        assert!(q.contains(7));
        assert_eq!(q.len(), 1);
        assert!(q.on_pubrel(7));
        assert!(!q.on_pubrel(7));
        assert!(q.is_empty());
        assert_eq!(q.on_publish(7), Ok(Qos2Publish::New));
    }

    #[test]
    fn qos2_bounded_by_receive_maximum() {
        let mut q = Qos2Inbound::new(2);
        assert_eq!(q.on_publish(1), Ok(Qos2Publish::New));
        assert_eq!(q.on_publish(2), Ok(Qos2Publish::New));
        let err = ReceiveMaximumExceeded { receive_maximum: 2 };
        assert_eq!(q.on_publish(3), Err(err));
        assert_eq!(err.reason_code(), ReasonCode::RECEIVE_MAXIMUM_EXCEEDED);
        assert_eq!(q.on_publish(2), Ok(Qos2Publish::Duplicate));
        assert_eq!(q.len(), 2);
        assert!(q.on_pubrel(1));
        assert_eq!(q.on_publish(3), Ok(Qos2Publish::New));
    }
}
