//! MQTT control packets, one file per packet kind, and the [`Packet`] enum that the
//! codec produces and consumes.
//!
//! The types are shared by MQTT 3.1.1 and 5.0: fields that only exist in 5.0
//! (properties, reason codes on acknowledgements) are simply empty or `SUCCESS` when
//! the connection speaks 3.1.1, and the encoder leaves them out.

use alloc::boxed::Box;

mod ack;
mod connect;
mod disconnect;
mod publish;
mod subscribe;

pub use ack::{Ack, Auth};
pub use connect::{ConnAck, Connect, Will};
pub use disconnect::Disconnect;
pub use publish::{Publish, PublishView};
pub use subscribe::{
    RetainHandling, SubAck, Subscribe, Subscription, SubscriptionOptions, UnsubAck, Unsubscribe,
};

/// The protocol level a connection negotiated in CONNECT; it decides how every later
/// packet on that connection is read and written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProtocolVersion {
    /// MQTT 3.1.1 (protocol level 4).
    V311,
    /// MQTT 5.0 (protocol level 5).
    V5,
}

impl ProtocolVersion {
    /// The protocol level byte of CONNECT.
    pub fn level(self) -> u8 {
        match self {
            ProtocolVersion::V311 => 4,
            ProtocolVersion::V5 => 5,
        }
    }
}

/// Delivery guarantee of one message; ordered so `min` gives the effective QoS of a
/// subscription match.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum QoS {
    /// Fire and forget.
    #[default]
    AtMostOnce = 0,
    /// Acknowledged with PUBACK; may be delivered twice.
    AtLeastOnce = 1,
    /// Four-step handshake; delivered exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// Reads the two QoS bits; `None` for the forbidden value 3 [MQTT-3.3.1-4].
    pub fn from_bits(bits: u8) -> Option<QoS> {
        match bits {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// Non-zero packet identifier of QoS 1/2 PUBLISH, SUBSCRIBE and UNSUBSCRIBE flows.
pub type PacketId = u16;

/// One decoded MQTT control packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// Client asks to open a session.
    Connect(Box<Connect>),
    /// Server's answer to CONNECT.
    ConnAck(ConnAck),
    /// Application message, in either direction.
    Publish(Publish),
    /// QoS 1 acknowledgement.
    PubAck(Ack),
    /// QoS 2 step 2: received.
    PubRec(Ack),
    /// QoS 2 step 3: release.
    PubRel(Ack),
    /// QoS 2 step 4: complete.
    PubComp(Ack),
    /// Client adds subscriptions.
    Subscribe(Subscribe),
    /// Server's per-filter answer to SUBSCRIBE.
    SubAck(SubAck),
    /// Client removes subscriptions.
    Unsubscribe(Unsubscribe),
    /// Server's answer to UNSUBSCRIBE.
    UnsubAck(UnsubAck),
    /// Keep-alive probe from the client.
    PingReq,
    /// Server's answer to PINGREQ.
    PingResp,
    /// Orderly end of a connection, from either side.
    Disconnect(Disconnect),
    /// MQTT 5 enhanced authentication exchange.
    Auth(Auth),
}

impl Packet {
    /// The packet's name as the specification spells it, for logs and metrics labels.
    pub fn name(&self) -> &'static str {
        match self {
            Packet::Connect(_) => "CONNECT",
            Packet::ConnAck(_) => "CONNACK",
            Packet::Publish(_) => "PUBLISH",
            Packet::PubAck(_) => "PUBACK",
            Packet::PubRec(_) => "PUBREC",
            Packet::PubRel(_) => "PUBREL",
            Packet::PubComp(_) => "PUBCOMP",
            Packet::Subscribe(_) => "SUBSCRIBE",
            Packet::SubAck(_) => "SUBACK",
            Packet::Unsubscribe(_) => "UNSUBSCRIBE",
            Packet::UnsubAck(_) => "UNSUBACK",
            Packet::PingReq => "PINGREQ",
            Packet::PingResp => "PINGRESP",
            Packet::Disconnect(_) => "DISCONNECT",
            Packet::Auth(_) => "AUTH",
        }
    }
}
