//! PUBLISH: the application message, the only packet whose payload is not protocol.

use alloc::string::String;
use bytes::Bytes;

use super::{PacketId, QoS};
use crate::Properties;

/// One application message on the wire.
///
/// The payload is a [`Bytes`] slice of the receive buffer, so fanning a message out to
/// many subscribers never copies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish {
    /// Redelivery flag; set when a QoS 1/2 message is sent again.
    pub dup: bool,
    /// Delivery guarantee.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// Topic name; may be empty in v5 when a topic alias stands in for it.
    pub topic: String,
    /// Present exactly when `qos > 0`.
    pub packet_id: Option<PacketId>,
    /// v5 PUBLISH properties.
    pub properties: Properties,
    /// Application payload.
    pub payload: Bytes,
}

/// A PUBLISH with its topic, properties and payload borrowed.
///
/// A broker sends one shared message to many subscribers, each with its own packet id,
/// QoS and flags; encoding from a view avoids building (and queueing) a whole
/// [`Publish`] per subscriber. [`crate::encode_publish`] writes it.
#[derive(Clone, Copy, Debug)]
pub struct PublishView<'a> {
    /// Redelivery flag.
    pub dup: bool,
    /// Delivery guarantee.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// Topic name; empty when a topic alias stands in for it.
    pub topic: &'a str,
    /// Present exactly when `qos > 0`.
    pub packet_id: Option<PacketId>,
    /// v5 PUBLISH properties.
    pub properties: &'a Properties,
    /// Application payload.
    pub payload: &'a [u8],
}

impl Publish {
    /// Borrows this packet as a [`PublishView`].
    pub fn view(&self) -> PublishView<'_> {
        PublishView {
            dup: self.dup,
            qos: self.qos,
            retain: self.retain,
            topic: &self.topic,
            packet_id: self.packet_id,
            properties: &self.properties,
            payload: &self.payload,
        }
    }
}
