//! The four acknowledgements of QoS flows (PUBACK, PUBREC, PUBREL, PUBCOMP), which share
//! one shape, and AUTH.

use super::PacketId;
use crate::{Properties, ReasonCode};

/// PUBACK, PUBREC, PUBREL or PUBCOMP: which one is given by the [`crate::Packet`] variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// Identifier of the flow being acknowledged.
    pub packet_id: PacketId,
    /// v5 reason code; always `SUCCESS` on 3.1.1.
    pub code: ReasonCode,
    /// v5 properties (reason string, user properties).
    pub properties: Properties,
}

impl Ack {
    /// A successful acknowledgement without properties: what almost every flow sends.
    pub fn success(packet_id: PacketId) -> Ack {
        Ack {
            packet_id,
            code: ReasonCode::SUCCESS,
            properties: Properties::default(),
        }
    }
}

/// MQTT 5 AUTH: enhanced authentication, which bosun answers as not supported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    /// 0x00 success, 0x18 continue authentication, 0x19 re-authenticate.
    pub code: ReasonCode,
    /// Authentication method and data.
    pub properties: Properties,
}
