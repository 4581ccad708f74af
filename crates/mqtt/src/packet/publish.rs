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
